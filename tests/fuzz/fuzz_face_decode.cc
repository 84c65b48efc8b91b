/*
 * Face image decode entry point: the container probe the face pipeline runs
 * first (face_image_probe: format and size from the header alone), then,
 * when the probe accepts and the size is within limits, the OpenCV decode
 * the pipeline does next (face_pipeline.cc decode(): IMREAD_COLOR, or
 * IMREAD_UNCHANGED for PNG), with the probe's size checked against what
 * the decoder produced. Size-limited: inputs up to 256 KiB and 1024 pixels
 * a side, so the fuzzer is not dominated by large legitimate decodes
 * (the daemon allows 8 MiB and 4096 pixels: FACE_MAX_BYTES/FACE_MAX_SIDE).
 */
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>

#include "face_pipeline.h"
#include "fuzz.h"

/*
 * AUTHD_FUZZ_MKSEEDS=DIR: writes small JPEG/JPEG 2000/PNG seeds encoded by
 * OpenCV into DIR and exits (gen_corpus.py has no image encoder to hand).
 */
static void
make_seeds(const char *dir)
{
	cv::Mat img(40, 32, CV_8UC3);
	for (int y = 0; y < img.rows; y++)
		for (int x = 0; x < img.cols; x++)
			img.at<cv::Vec3b>(y, x) =
			    cv::Vec3b((uchar)(x * 7), (uchar)(y * 5), (uchar)((x ^ y) * 3));
	const struct {
		const char *name, *ext;
		std::vector<int> params;
	} seeds[] = {
	    {"cv_baseline.jpg", ".jpg", {cv::IMWRITE_JPEG_QUALITY, 50}},
	    {"cv_progressive.jpg", ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1, cv::IMWRITE_JPEG_QUALITY, 40}},
	    {"cv_small.jp2", ".jp2", {}},
	    {"cv_small.png", ".png", {cv::IMWRITE_PNG_COMPRESSION, 9}},
	};
	for (const auto &s : seeds) {
		std::vector<uchar> out;
		if (!cv::imencode(s.ext, img, out, s.params))
			continue;
		std::string path = std::string(dir) + "/" + s.name;
		FILE *f = std::fopen(path.c_str(), "wb");
		if (f != nullptr) {
			std::fwrite(out.data(), 1, out.size(), f);
			std::fclose(f);
		}
	}
	std::exit(0);
}

extern "C" int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	cv::setNumThreads(1);
	cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
	if (const char *d = std::getenv("AUTHD_FUZZ_MKSEEDS"))
		make_seeds(d);
	return 0;
}

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *fmt = nullptr;
	int w = 0, h = 0;

	if (size > 256 * 1024)
		return 0;
	fuzz_arm(data, size);
	int r = face_image_probe(data, size, &fmt, &w, &h);
	fuzz_disarm();
	FUZZ_ASSERT(r <= 0);
	if (r != 0)
		return 0;
	FUZZ_ASSERT(fmt != nullptr && w > 0 && h > 0);
	if (w > 1024 || h > 1024)
		return 0;
	try {
		cv::Mat raw(1, (int)size, CV_8U, const_cast<uint8_t *>(data));
		cv::Mat m =
		    cv::imdecode(raw, std::strcmp(fmt, "png") == 0 ? cv::IMREAD_UNCHANGED : cv::IMREAD_COLOR);
		/*
		 * The probe's size must bound what the decoder produced (EXIF
		 * rotation may swap the sides): otherwise the pipeline's size
		 * limit could be bypassed with a header that lies.
		 */
		if (!m.empty())
			FUZZ_ASSERT(std::max(m.cols, m.rows) <= std::max(w, h) &&
			            (int64_t)m.cols * m.rows <= (int64_t)w * h);
	} catch (const cv::Exception &) {
		/* A decoder refusing the input is a clean error. */
	}
	return 0;
}
