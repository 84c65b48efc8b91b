// authd-capture: grabs one frame from a camera with OpenCV VideoCapture and
// writes it as JPEG to stdout. pam_authd runs it as a child process so that
// sshd/login/sudo never load OpenCV (a large image-parsing attack surface).
//
//   authd-capture [--camera N] [--timeout S] [--warmup K]
//
// Exit status: 0 one JPEG written; 1 no camera or no frame; 2 usage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

static int
usage()
{
	std::fprintf(stderr, "usage: authd-capture [--camera N] [--timeout S] [--warmup K]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	int camera = 0, timeout_s = 10, warmup = 5;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		char *end = nullptr;
		long v = std::strtol(argv[i + 1], &end, 10);
		if (*argv[i + 1] == '\0' || *end != '\0' || v < 0 || v > 600)
			return usage();
		if (!std::strcmp(argv[i], "--camera"))
			camera = static_cast<int>(v);
		else if (!std::strcmp(argv[i], "--timeout"))
			timeout_s = static_cast<int>(v);
		else if (!std::strcmp(argv[i], "--warmup"))
			warmup = static_cast<int>(v);
		else
			return usage();
		i++;
	}
	cv::VideoCapture cap(camera);
	if (!cap.isOpened()) {
		std::fprintf(stderr, "authd-capture: cannot open camera %d\n", camera);
		return 1;
	}
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
	cv::Mat frame;
	int good = 0;
	// Auto-exposure needs a few frames; keep the last good one.
	while (std::chrono::steady_clock::now() < deadline && good <= warmup) {
		cv::Mat f;
		if (cap.read(f) && !f.empty()) {
			frame = f;
			good++;
		}
	}
	if (frame.empty()) {
		std::fprintf(stderr, "authd-capture: no frame from camera %d\n", camera);
		return 1;
	}
	std::vector<uchar> jpg;
	if (!cv::imencode(".jpg", frame, jpg, {cv::IMWRITE_JPEG_QUALITY, 95}) || jpg.empty())
		return 1;
	if (std::fwrite(jpg.data(), 1, jpg.size(), stdout) != jpg.size() || std::fflush(stdout) != 0)
		return 1;
	return 0;
}
