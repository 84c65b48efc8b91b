/*
 * The face pipeline behind the plugin ABI. See face_pipeline.h for the
 * threading model. Nothing here writes an image or an embedding anywhere:
 * every cv::Mat holding pixels or derived pixels is wiped before release.
 *
 * Model conventions (DESIGN.md section 7, checked against the JavaScript
 * reference code shipped in the npm package):
 *  - fr_detect.onnx (Ultra-Light-Fast RFB-320): input [1,3,240,320] RGB
 *    (x-127)/128; outputs `boxes` [1,4420,4] already decoded against the
 *    priors as normalised corners (x1,y1,x2,y2), `scores` [1,4420,2] already
 *    softmaxed (column 1 = face).
 *  - fr_landmark.onnx: input [1,1,64,64] grey /256 of the face box; output
 *    136 values, 68 (x,y) pairs normalised to the crop.
 *  - fr_feature.onnx: input [1,3,112,112] RGB (x-127)/128 aligned to the
 *    ArcFace 5-point reference; output 512 floats.
 *  - fr_liveness.onnx (MiniFASNet-style): input [1,3,128,128] raw 0..255 of
 *    the 2.7x context crop; output 3 logits. See face_live_attack().
 */
#include "face_pipeline.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

extern "C" {
#include "err.h"
}

namespace
{

struct model_file {
	const char *name;
	const char *sha256;
};

/* Pinned in DESIGN.md section 7; scripts/fetch-models.sh checks the same. */
const model_file kModels[4] = {
    {"fr_detect.onnx", "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854"},
    {"fr_landmark.onnx", "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258"},
    {"fr_feature.onnx", "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"},
    {"fr_liveness.onnx", "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d"},
};

/* ArcFace 112x112 reference points: eyes, nose tip, mouth corners. */
const float kRef[5][2] = {
    {38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f},
    {41.5493f, 92.3655f}, {70.7299f, 92.2041f},
};

#ifndef FACE_LIVE_SWAPRB
#define FACE_LIVE_SWAPRB false
#endif
#ifndef FACE_LIVE_ATTACK
#define FACE_LIVE_ATTACK(p) ((p)[1])
#endif

const int kDetW = 320, kDetH = 240;
const float kNmsIou = 0.4f;
const double kLiveScale = 2.7;

struct net_set {
	cv::dnn::Net det, lmk, feat, live;
};

/* Zeroes a Mat's pixels before it is released (data may be shared). */
void
wipe(cv::Mat &m)
{
	if (m.empty())
		return;
	if (m.isContinuous())
		OPENSSL_cleanse(m.data, m.total() * m.elemSize());
	else
		m.setTo(cv::Scalar::all(0));
	m.release();
}

struct mat_guard {
	cv::Mat &m;
	explicit mat_guard(cv::Mat &mm) : m(mm)
	{
	}
	~mat_guard()
	{
		wipe(m);
	}
	mat_guard(const mat_guard &) = delete;
	mat_guard &operator=(const mat_guard &) = delete;
};

/* The same for the several outputs of one forward(). */
struct mats_guard {
	std::vector<cv::Mat> &v;
	explicit mats_guard(std::vector<cv::Mat> &vv) : v(vv)
	{
	}
	~mats_guard()
	{
		for (cv::Mat &m : v)
			wipe(m);
	}
	mats_guard(const mats_guard &) = delete;
	mats_guard &operator=(const mats_guard &) = delete;
};

struct det_face {
	cv::Rect2f box;
	float score;
};

int
read_model(const std::string &path, const char *want_sha, std::vector<uchar> &buf)
{
	FILE *f = std::fopen(path.c_str(), "rb");
	if (f == nullptr)
		return AUTHD_ERR_NOT_FOUND;
	uchar tmp[65536];
	size_t n;
	while ((n = std::fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf.insert(buf.end(), tmp, tmp + n);
	int bad = std::ferror(f);
	std::fclose(f);
	if (bad)
		return AUTHD_ERR_IO;
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_Digest(buf.data(), buf.size(), md, &mdlen, EVP_sha256(), nullptr) != 1 || mdlen != 32)
		return AUTHD_ERR_CRYPTO;
	char hex[65];
	for (int i = 0; i < 32; i++)
		std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return std::strcmp(hex, want_sha) == 0 ? 0 : AUTHD_ERR_TAMPERED;
}

} // namespace

struct face_pipeline {
	face_params p;
	std::vector<std::unique_ptr<net_set>> sets;
	std::vector<net_set *> idle;
	std::mutex mu;
	std::condition_variable cv;

	net_set *borrow()
	{
		std::unique_lock<std::mutex> lk(mu);
		cv.wait(lk, [this] { return !idle.empty(); });
		net_set *s = idle.back();
		idle.pop_back();
		return s;
	}
	void give_back(net_set *s)
	{
		{
			std::lock_guard<std::mutex> lk(mu);
			idle.push_back(s);
		}
		cv.notify_one();
	}
};

namespace
{

struct slot_guard {
	face_pipeline *fp;
	net_set *s;
	explicit slot_guard(face_pipeline *f) : fp(f), s(f->borrow())
	{
	}
	~slot_guard()
	{
		fp->give_back(s);
	}
	slot_guard(const slot_guard &) = delete;
	slot_guard &operator=(const slot_guard &) = delete;
};

/*
 * Decodes to 8-bit BGR. JPEG and JPEG 2000 go through IMREAD_COLOR, which
 * in OpenCV 4.6 applies the EXIF orientation and expands greyscale. PNG is
 * read unchanged so an alpha channel can be composited over white (a
 * transparent background's hidden RGB is often black or garbage); 16-bit
 * PNG never gets here (face_image_probe refuses it).
 */
int
decode(const uint8_t *img, size_t len, const char *format, cv::Mat &bgr)
{
	cv::Mat raw(1, (int)len, CV_8U, const_cast<uint8_t *>(img));
	if (std::strcmp(format, "png") != 0) {
		bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
		return bgr.empty() ? -1 : 0;
	}
	cv::Mat u = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
	mat_guard gu(u);
	if (u.empty() || u.depth() != CV_8U)
		return -1;
	switch (u.channels()) {
	case 1:
		cv::cvtColor(u, bgr, cv::COLOR_GRAY2BGR);
		break;
	case 3:
		bgr = u.clone();
		break;
	case 4: {
		bgr.create(u.rows, u.cols, CV_8UC3);
		for (int y = 0; y < u.rows; y++) {
			const uchar *s = u.ptr<uchar>(y);
			uchar *d = bgr.ptr<uchar>(y);
			for (int x = 0; x < u.cols; x++, s += 4, d += 3) {
				int a = s[3];
				for (int c = 0; c < 3; c++)
					d[c] = (uchar)((s[c] * a + 255 * (255 - a) + 127) / 255);
			}
		}
		break;
	}
	default:
		return -1;
	}
	return 0;
}

/* Box scaled by `scale` around its centre, shifted inside the image. */
cv::Rect
context_crop(const cv::Mat &img, const cv::Rect2f &b, double scale)
{
	double W = img.cols, H = img.rows;
	double bw = std::max(1.0f, b.width), bh = std::max(1.0f, b.height);
	double s = std::min({(H - 1) / bh, (W - 1) / bw, scale});
	double nw = bw * s, nh = bh * s;
	double cx = b.x + bw / 2, cy = b.y + bh / 2;
	double x1 = cx - nw / 2, y1 = cy - nh / 2, x2 = cx + nw / 2, y2 = cy + nh / 2;
	if (x1 < 0) {
		x2 -= x1;
		x1 = 0;
	}
	if (y1 < 0) {
		y2 -= y1;
		y1 = 0;
	}
	if (x2 > W - 1) {
		x1 -= x2 - W + 1;
		x2 = W - 1;
	}
	if (y2 > H - 1) {
		y1 -= y2 - H + 1;
		y2 = H - 1;
	}
	cv::Rect r((int)std::max(0.0, x1), (int)std::max(0.0, y1), (int)(x2 - x1), (int)(y2 - y1));
	r &= cv::Rect(0, 0, img.cols, img.rows);
	if (r.width < 1 || r.height < 1)
		r = cv::Rect(0, 0, img.cols, img.rows);
	return r;
}

/*
 * NCHW float blob from an 8-bit BGR or grey image: (px - mean) * scale,
 * channels reversed to RGB when to_rgb. Written out because
 * cv::dnn::blobFromImage costs more (6 ms for 320x240 in OpenCV 4.6 here)
 * than the detector itself.
 */
cv::Mat
make_blob(const cv::Mat &img, float mean, float scale, bool to_rgb)
{
	const int ch = img.channels(), rows = img.rows, cols = img.cols;
	int sz[4] = {1, ch, rows, cols};
	cv::Mat blob(4, sz, CV_32F);
	float *dst = blob.ptr<float>();
	const size_t plane = (size_t)rows * cols;
	float *planes[3] = {dst, dst + (ch > 1 ? plane : 0), dst + (ch > 2 ? 2 * plane : 0)};
	if (to_rgb && ch == 3)
		std::swap(planes[0], planes[2]);
	for (int y = 0; y < rows; y++) {
		const uchar *s = img.ptr<uchar>(y);
		const size_t o = (size_t)y * cols;
		for (int x = 0; x < cols; x++)
			for (int c = 0; c < ch; c++)
				planes[c][o + x] = ((float)s[x * ch + c] - mean) * scale;
	}
	return blob;
}

std::vector<det_face>
detect(net_set &ns, const cv::Mat &bgr, float thr)
{
	/* Letterbox into 320x240 so portraits are not squashed 3:1. */
	double s = std::min((double)kDetW / bgr.cols, (double)kDetH / bgr.rows);
	int nw = std::max(1, (int)std::lround(bgr.cols * s));
	int nh = std::max(1, (int)std::lround(bgr.rows * s));
	cv::Mat canvas(kDetH, kDetW, CV_8UC3, cv::Scalar::all(127));
	mat_guard gc(canvas);
	{
		cv::Mat roi = canvas(cv::Rect(0, 0, std::min(nw, kDetW), std::min(nh, kDetH)));
		/* INTER_AREA only where bilinear would alias (0.9 ms vs 0.1 ms). */
		cv::resize(bgr, roi, roi.size(), 0, 0, s < 0.5 ? cv::INTER_AREA : cv::INTER_LINEAR);
	}
	cv::Mat blob = make_blob(canvas, 127.f, 1.f / 128, true);
	mat_guard gb(blob);
	ns.det.setInput(blob);
	std::vector<cv::Mat> outs;
	mats_guard go(outs);
	static const std::vector<cv::String> names = {"boxes", "scores"};
	ns.det.forward(outs, names);
	if (outs.size() != 2)
		return {};
	const cv::Mat &boxes = outs[0], &scores = outs[1];
	int n = boxes.size[1];
	std::vector<cv::Rect2d> rects;
	std::vector<float> conf;
	const float *bp = boxes.ptr<float>(), *sp = scores.ptr<float>();
	for (int i = 0; i < n; i++) {
		float sc = sp[2 * i + 1];
		if (!(sc >= thr))
			continue;
		double x1 = bp[4 * i] * kDetW / s, y1 = bp[4 * i + 1] * kDetH / s;
		double x2 = bp[4 * i + 2] * kDetW / s, y2 = bp[4 * i + 3] * kDetH / s;
		x1 = std::clamp(x1, 0.0, (double)bgr.cols);
		x2 = std::clamp(x2, 0.0, (double)bgr.cols);
		y1 = std::clamp(y1, 0.0, (double)bgr.rows);
		y2 = std::clamp(y2, 0.0, (double)bgr.rows);
		if (x2 - x1 < 2 || y2 - y1 < 2)
			continue;
		rects.emplace_back(x1, y1, x2 - x1, y2 - y1);
		conf.push_back(sc);
	}
	std::vector<int> keep;
	cv::dnn::NMSBoxes(rects, conf, thr, kNmsIou, keep);
	std::vector<det_face> faces;
	for (int k : keep)
		faces.push_back({cv::Rect2f((float)rects[k].x, (float)rects[k].y, (float)rects[k].width,
		                            (float)rects[k].height),
		                 conf[k]});
	std::sort(faces.begin(), faces.end(), [](const det_face &a, const det_face &b) {
		return std::max(a.box.width, a.box.height) > std::max(b.box.width, b.box.height);
	});
	return faces;
}

/* Square box of side = height centred on the detection (as the model's
 * reference code feeds the landmark and liveness models). */
cv::Rect2f
square_box(const cv::Rect2f &b)
{
	float side = b.height;
	float cx = b.x + b.width / 2, cy = b.y + b.height / 2;
	return cv::Rect2f(cx - side / 2, cy - side / 2, side, side);
}

int
landmarks5(net_set &ns, const cv::Mat &bgr, const cv::Rect2f &sq, cv::Point2f pts[5])
{
	cv::Rect r = context_crop(bgr, sq, 1.0);
	cv::Mat small, grey;
	mat_guard g1(small), g2(grey);
	cv::resize(bgr(r), small, cv::Size(64, 64), 0, 0, cv::INTER_AREA);
	cv::cvtColor(small, grey, cv::COLOR_BGR2GRAY);
	cv::Mat blob = make_blob(grey, 0.f, 1.f / 256, false);
	mat_guard gb(blob);
	ns.lmk.setInput(blob);
	cv::Mat out = ns.lmk.forward();
	mat_guard go(out);
	if (out.total() != 136)
		return AUTHD_ERR_INTERNAL;
	const float *v = out.ptr<float>();
	auto P = [&](int i) { return cv::Point2f(v[2 * i] * r.width + r.x, v[2 * i + 1] * r.height + r.y); };
	pts[0] = (P(37) + P(38) + P(40) + P(41)) * 0.25f; /* left eye (image left) */
	pts[1] = (P(43) + P(44) + P(46) + P(47)) * 0.25f; /* right eye */
	pts[2] = P(30);                                   /* nose tip */
	pts[3] = (P(48) + P(60)) * 0.5f;                  /* mouth corners */
	pts[4] = (P(54) + P(64)) * 0.5f;
	for (int i = 0; i < 5; i++)
		if (!std::isfinite(pts[i].x) || !std::isfinite(pts[i].y))
			return AUTHD_ERR_INTERNAL;
	return 0;
}

/* Least-squares similarity (rotation, uniform scale, translation) src->ref. */
cv::Mat
similarity(const cv::Point2f src[5])
{
	double mx = 0, my = 0, rx = 0, ry = 0;
	for (int i = 0; i < 5; i++) {
		mx += src[i].x;
		my += src[i].y;
		rx += kRef[i][0];
		ry += kRef[i][1];
	}
	mx /= 5, my /= 5, rx /= 5, ry /= 5;
	double ss = 0, a = 0, b = 0;
	for (int i = 0; i < 5; i++) {
		double sx = src[i].x - mx, sy = src[i].y - my;
		double dx = kRef[i][0] - rx, dy = kRef[i][1] - ry;
		ss += sx * sx + sy * sy;
		a += sx * dx + sy * dy;
		b += sx * dy - sy * dx;
	}
	if (ss < 1e-6)
		ss = 1e-6;
	a /= ss, b /= ss;
	cv::Mat M = (cv::Mat_<double>(2, 3) << a, -b, rx - (a * mx - b * my), b, a, ry - (b * mx + a * my));
	return M;
}

int
embed(net_set &ns, const cv::Mat &aligned, float *emb)
{
	cv::Mat blob = make_blob(aligned, 127.f, 1.f / 128, true);
	mat_guard gb(blob);
	ns.feat.setInput(blob);
	cv::Mat out = ns.feat.forward();
	mat_guard go(out);
	if (out.total() != FACE_EMB_DIM)
		return AUTHD_ERR_INTERNAL;
	const float *v = out.ptr<float>();
	double n2 = 0;
	for (int i = 0; i < FACE_EMB_DIM; i++)
		n2 += (double)v[i] * v[i];
	if (!(n2 > 1e-12) || !std::isfinite(n2))
		return AUTHD_ERR_INTERNAL;
	double inv = 1.0 / std::sqrt(n2);
	for (int i = 0; i < FACE_EMB_DIM; i++)
		emb[i] = (float)(v[i] * inv);
	return 0;
}

/*
 * Probability that the 2.7x context crop is a presentation attack. The
 * model has three classes; DESIGN.md section 7 names class 1 the attack
 * class (see docs/face.md for how this was checked on the dev set).
 */
float
liveness(net_set &ns, const cv::Mat &bgr, const cv::Rect2f &sq, float probs[3])
{
	cv::Rect r = context_crop(bgr, sq, kLiveScale);
	cv::Mat crop;
	mat_guard g1(crop);
	cv::resize(bgr(r), crop, cv::Size(128, 128), 0, 0, cv::INTER_LINEAR);
	cv::Mat blob = make_blob(crop, 0.f, 1.f, FACE_LIVE_SWAPRB);
	mat_guard gb(blob);
	ns.live.setInput(blob);
	cv::Mat out = ns.live.forward();
	mat_guard go(out);
	if (out.total() != 3)
		return 1.0f;
	const float *v = out.ptr<float>();
	float m = std::max({v[0], v[1], v[2]});
	double e[3], sum = 0;
	for (int i = 0; i < 3; i++)
		sum += e[i] = std::exp((double)v[i] - m);
	for (int i = 0; i < 3; i++)
		probs[i] = (float)(e[i] / sum);
	return FACE_LIVE_ATTACK(probs);
}

#ifdef FACE_PROFILE
#include <chrono>
#define PROF_MARK(name)                                                                                      \
	do {                                                                                                 \
		auto now_ = std::chrono::steady_clock::now();                                                \
		std::fprintf(stderr, "%s %.2f ms\n", name,                                                   \
		             std::chrono::duration<double, std::milli>(now_ - prof_t).count());              \
		prof_t = now_;                                                                               \
	} while (0)
#else
#define PROF_MARK(name) (void)0
#endif

int
analyze(face_pipeline *fp, const uint8_t *img, size_t len, int want_live, face_analysis *a)
{
#ifdef FACE_PROFILE
	auto prof_t = std::chrono::steady_clock::now();
#endif
	int w = 0, h = 0;
	const char *fmt = nullptr;

	a->reason = FACE_R_BAD_IMAGE;
	if (img == nullptr || len == 0 || len > FACE_MAX_BYTES)
		return 0;
	int pr = face_image_probe(img, len, &fmt, &w, &h);
	if (pr == 0 || pr == AUTHD_ERR_TOO_LARGE) { /* a refused size is reported too */
		a->format = fmt;
		a->width = w;
		a->height = h;
	}
	if (pr < 0)
		return 0;

	/*
	 * Borrow the net set before decoding: a decode can take ~90 MB
	 * (FACE_MAX_PIXELS of RGBA plus the BGR copy), so as many run at once
	 * as there are slots, not as there are worker threads.
	 */
	slot_guard slot(fp);
	net_set &ns = *slot.s;

	cv::Mat bgr;
	mat_guard gbgr(bgr);
	if (decode(img, len, fmt, bgr) < 0 || bgr.type() != CV_8UC3)
		return 0;
	PROF_MARK("decode");
	/*
	 * Exactly the size the probe read from the header (sides swapped only
	 * by a JPEG's EXIF orientation): a decoder other than the one the
	 * probe parsed for, or a header that lies, never gets further.
	 */
	bool same = bgr.cols == w && bgr.rows == h;
	bool turned = std::strcmp(fmt, "jpeg") == 0 && bgr.cols == h && bgr.rows == w;
	if (!same && !turned)
		return 0;
	a->width = bgr.cols;
	a->height = bgr.rows;
	if (bgr.cols < 16 || bgr.rows < 16)
		return 0;

	std::vector<det_face> faces = detect(ns, bgr, (float)fp->p.det_threshold);
	a->n_faces = (int)faces.size();
	PROF_MARK("detect");
	if (faces.empty()) {
		a->reason = FACE_R_NO_FACE;
		return 0;
	}
	const det_face &f = faces[0];
	a->det_score = f.score;
	a->box[0] = f.box.x;
	a->box[1] = f.box.y;
	a->box[2] = f.box.x + f.box.width;
	a->box[3] = f.box.y + f.box.height;
	a->face_px = std::max(f.box.width, f.box.height);
	if (faces.size() > 1)
		a->second_ratio = std::max(faces[1].box.width, faces[1].box.height) / a->face_px;
	if (a->second_ratio > fp->p.multi_ratio) {
		a->reason = FACE_R_MULTIPLE;
		return 0;
	}
	if (a->face_px < fp->p.min_face_px) {
		a->reason = FACE_R_TOO_SMALL;
		return 0;
	}

	cv::Rect2f sq = square_box(f.box);
	cv::Point2f pts[5];
	TRY(landmarks5(ns, bgr, sq, pts));
	PROF_MARK("landmarks");
	{
		float eye = (float)cv::norm(pts[1] - pts[0]);
		cv::Point2f mid = (pts[0] + pts[1]) * 0.5f;
		a->yaw_ratio = eye > 1 ? (pts[2].x - mid.x) / eye : 0;
	}
	cv::Mat M = similarity(pts);
	cv::Mat aligned, grey, lap;
	mat_guard g1(aligned), g2(grey), g3(lap);
	cv::warpAffine(bgr, aligned, M, cv::Size(112, 112), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
	               cv::Scalar::all(0));
	cv::cvtColor(aligned, grey, cv::COLOR_BGR2GRAY);
	cv::Laplacian(grey, lap, CV_64F);
	cv::Scalar mean, sd;
	cv::meanStdDev(lap, mean, sd);
	a->sharpness = (float)(sd[0] * sd[0]);
	PROF_MARK("align+sharpness");

	if (want_live) {
		a->attack = liveness(ns, bgr, sq, a->live_probs);
		a->live_done = 1;
		PROF_MARK("liveness");
	}
	TRY(embed(ns, aligned, a->emb));
	a->emb_done = 1;
	PROF_MARK("embed");
	if (a->sharpness < fp->p.min_sharpness) {
		a->reason = FACE_R_BLURRY;
		return 0;
	}
	a->reason = nullptr;
	return 0;
}

} // namespace

extern "C" int
face_pipeline_load(const char *dir, int slots, const face_params *p, face_pipeline **out, char *err,
                   size_t errlen)
{
	*out = nullptr;
	if (dir == nullptr || p == nullptr || slots < 1) {
		std::snprintf(err, errlen, "face: invalid arguments");
		return AUTHD_ERR_CONFIG;
	}
	try {
		cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
		std::vector<uchar> bufs[4];
		for (int i = 0; i < 4; i++) {
			std::string path = std::string(dir) + "/" + kModels[i].name;
			int r = read_model(path, kModels[i].sha256, bufs[i]);
			if (r == AUTHD_ERR_NOT_FOUND) {
				std::snprintf(err, errlen,
				              "face: model %s not found; fetch the models with: "
				              "scripts/fetch-models.sh %s",
				              path.c_str(), dir);
				return AUTHD_ERR_UNAVAILABLE;
			}
			if (r == AUTHD_ERR_TAMPERED) {
				std::snprintf(err, errlen,
				              "face: model %s does not match its pinned SHA-256; re-fetch "
				              "with: scripts/fetch-models.sh %s",
				              path.c_str(), dir);
				return AUTHD_ERR_TAMPERED;
			}
			if (r < 0) {
				std::snprintf(err, errlen, "face: cannot read model %s", path.c_str());
				return r;
			}
		}
		auto fp = std::make_unique<face_pipeline>();
		fp->p = *p;
		for (int k = 0; k < slots; k++) {
			auto ns = std::make_unique<net_set>();
			cv::dnn::Net *nets[4] = {&ns->det, &ns->lmk, &ns->feat, &ns->live};
			for (int i = 0; i < 4; i++) {
				*nets[i] = cv::dnn::readNetFromONNX(bufs[i]);
				nets[i]->setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
				nets[i]->setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
			}
			fp->idle.push_back(ns.get());
			fp->sets.push_back(std::move(ns));
		}
		/* Warm up every slot once so the first request is not slow. */
		cv::Mat warm(240, 320, CV_8UC3, cv::Scalar::all(127));
		std::vector<uchar> jpg;
		cv::imencode(".jpg", warm, jpg);
		for (int k = 0; k < slots; k++) {
			net_set &ns = *fp->sets[k];
			(void)detect(ns, warm, 0.99f);
			cv::Mat a(112, 112, CV_8UC3, cv::Scalar::all(127));
			float emb[FACE_EMB_DIM], pr[3];
			(void)embed(ns, a, emb);
			(void)liveness(ns, warm, cv::Rect2f(100, 80, 80, 80), pr);
			cv::Point2f pts[5];
			(void)landmarks5(ns, warm, cv::Rect2f(100, 80, 80, 80), pts);
		}
		*out = fp.release();
		return 0;
	} catch (const std::exception &e) {
		std::snprintf(err, errlen, "face: loading models from %s failed: %s", dir, e.what());
		return AUTHD_ERR_UNAVAILABLE;
	}
}

extern "C" void
face_pipeline_set_threads(const char *n)
{
	int t = 1;
	if (n != nullptr && *n != '\0') {
		t = std::atoi(n);
		if (t < 1 || t > 64)
			t = 1;
	}
	try {
		cv::setNumThreads(t);
	} catch (const std::exception &) {
	}
}

extern "C" void
face_pipeline_free(face_pipeline **pp)
{
	if (pp == nullptr || *pp == nullptr)
		return;
	delete *pp;
	*pp = nullptr;
}

extern "C" int
face_pipeline_analyze(face_pipeline *fp, const uint8_t *img, size_t len, int want_liveness, face_analysis *a)
{
	std::memset(a, 0, sizeof(*a));
	if (fp == nullptr)
		return AUTHD_ERR_INTERNAL;
	try {
		return analyze(fp, img, len, want_liveness, a);
	} catch (const cv::Exception &) {
		/* A decoder or layer rejected the input: treat as unusable. */
		face_analysis_wipe(a);
		a->reason = FACE_R_BAD_IMAGE;
		return 0;
	} catch (const std::bad_alloc &) {
		face_analysis_wipe(a);
		return AUTHD_ERR_NOMEM;
	} catch (const std::exception &) {
		face_analysis_wipe(a);
		return AUTHD_ERR_INTERNAL;
	}
}

extern "C" void
face_analysis_wipe(face_analysis *a)
{
	if (a != nullptr)
		OPENSSL_cleanse(a, sizeof(*a));
}

extern "C" double
face_cosine(const float *a, const float *b)
{
	double s = 0;
	for (int i = 0; i < FACE_EMB_DIM; i++)
		s += (double)a[i] * b[i];
	return s;
}
