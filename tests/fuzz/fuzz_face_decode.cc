/*
 * Face image decode entry point: the container probe the face pipeline runs
 * first (face_image_probe: format and size from the header alone), then,
 * when the probe accepts and the size is within limits, the OpenCV decode
 * the pipeline does next (face_pipeline.cc decode(): IMREAD_COLOR, or
 * IMREAD_UNCHANGED for PNG), with the probe's size checked against what
 * the decoder produced. Size-limited: inputs up to 256 KiB and 1024 pixels
 * a side, so the fuzzer is not dominated by large legitimate decodes
 * (the daemon allows 8 MiB, 4096 pixels a side and 12.6 MP:
 * FACE_MAX_BYTES/FACE_MAX_SIDE/FACE_MAX_PIXELS).
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
#include <opencv2/imgproc.hpp>

#include "face_pipeline.h"
#include "fuzz.h"

/*
 * AUTHD_FUZZ_MKSEEDS=DIR: writes the seed corpus (small synthetic JPEG,
 * JPEG 2000 and PNG images encoded by OpenCV, a lying JPEG header, and a JP2
 * with "DICM" at offset 128, which OpenCV's DICOM decoder would claim) into
 * DIR and exits. Images are not committed to the repository: ctest runs this
 * as a fixture before the face_decode fuzz tests, scripts/fuzz.sh before a run.
 */
static void
write_file(const std::string &path, const uint8_t *p, size_t n)
{
	FILE *f = std::fopen(path.c_str(), "wb");
	if (f == nullptr || std::fwrite(p, 1, n, f) != n) {
		std::fprintf(stderr, "AUTHD_FUZZ_MKSEEDS: cannot write %s\n", path.c_str());
		std::exit(1);
	}
	std::fclose(f);
}

static void
make_seeds(const char *dir)
{
	cv::Mat img(40, 32, CV_8UC3), rgba, grey16;
	for (int y = 0; y < img.rows; y++)
		for (int x = 0; x < img.cols; x++)
			img.at<cv::Vec3b>(y, x) =
			    cv::Vec3b((uchar)(x * 7), (uchar)(y * 5), (uchar)((x ^ y) * 3));
	cv::cvtColor(img, rgba, cv::COLOR_BGR2BGRA);
	cv::cvtColor(img, grey16, cv::COLOR_BGR2GRAY);
	grey16.convertTo(grey16, CV_16U, 257.0);
	const struct {
		const char *name, *ext;
		const cv::Mat *img;
		std::vector<int> params;
	} seeds[] = {
	    {"cv_baseline.jpg", ".jpg", &img, {cv::IMWRITE_JPEG_QUALITY, 50}},
	    {"cv_progressive.jpg", ".jpg", &img, {cv::IMWRITE_JPEG_PROGRESSIVE, 1, cv::IMWRITE_JPEG_QUALITY, 40}},
	    {"cv_small.jp2", ".jp2", &img, {}},
	    {"cv_small.png", ".png", &img, {cv::IMWRITE_PNG_COMPRESSION, 9}},
	    {"rgba.png", ".png", &rgba, {}},
	    {"grey16.png", ".png", &grey16, {}},
	};
	for (const auto &s : seeds) {
		std::vector<uchar> out;
		if (!cv::imencode(s.ext, *s.img, out, s.params)) {
			std::fprintf(stderr, "AUTHD_FUZZ_MKSEEDS: OpenCV cannot encode %s\n", s.name);
			std::exit(1);
		}
		write_file(std::string(dir) + "/" + s.name, out.data(), out.size());
		if (std::strcmp(s.name, "cv_small.jp2") == 0 && out.size() >= 132) {
			std::memcpy(out.data() + 128, "DICM", 4);
			write_file(std::string(dir) + "/jp2_dicm.jp2", out.data(), out.size());
		}
	}
	/* a JPEG header that claims 2x2 and is otherwise junk */
	static const uint8_t liar[] = {0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x02, 0x00, 0x02, 0x03,
	                               0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xd9};
	write_file(std::string(dir) + "/liar.jpg", liar, sizeof liar);
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
