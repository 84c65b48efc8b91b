/*
 * Face quality gates on images synthesised at test time from a dev-set PNG
 * (decoded and re-encoded here with zlib; nothing is written to disk):
 *  - a heavily blurred face   -> too_blurry
 *  - a face shrunk to ~45 px   -> face_too_small
 *  - the greyscale version    -> usable, and matches the colour original
 *  - an 8-bit palette-free grey 16x16 picture -> no_face
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <zlib.h>

#include "test_face_common.h"

struct img {
	int w, h, ch; /* ch: 1 grey, 3 RGB */
	uint8_t *px;
};

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int
paeth(int a, int b, int c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
	return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Decodes an 8-bit, non-interlaced RGB/RGBA PNG into RGB (alpha over white). */
static int
png_decode(const uint8_t *d, size_t len, struct img *out)
{
	size_t off = 8, zcap = len, zlen = 0;
	uint8_t *z = malloc(zcap);
	int w = 0, h = 0, ct = -1;
	while (off + 12 <= len) {
		uint32_t n = be32(d + off);
		const uint8_t *type = d + off + 4, *body = d + off + 8;
		if (off + 12 + n > len)
			break;
		if (memcmp(type, "IHDR", 4) == 0) {
			w = (int)be32(body);
			h = (int)be32(body + 4);
			if (body[8] != 8 || body[12] != 0)
				return -1;
			ct = body[9];
		} else if (memcmp(type, "IDAT", 4) == 0) {
			memcpy(z + zlen, body, n);
			zlen += n;
		}
		off += 12 + n;
	}
	int sch = ct == 2 ? 3 : ct == 6 ? 4 : 0;
	if (sch == 0)
		return -1;
	size_t stride = (size_t)w * sch, rawlen = (stride + 1) * h;
	uint8_t *raw = malloc(rawlen);
	uLongf rl = rawlen;
	if (uncompress(raw, &rl, z, zlen) != Z_OK || rl != rawlen)
		return -1;
	free(z);
	uint8_t *cur = malloc(stride * h);
	for (int y = 0; y < h; y++) {
		uint8_t ft = raw[y * (stride + 1)];
		const uint8_t *src = raw + y * (stride + 1) + 1;
		uint8_t *row = cur + y * stride, *up = y ? row - stride : NULL;
		for (size_t x = 0; x < stride; x++) {
			int a = x >= (size_t)sch ? row[x - sch] : 0, b = up ? up[x] : 0,
			    c = (up && x >= (size_t)sch) ? up[x - sch] : 0, v = src[x];
			switch (ft) {
			case 1:
				v += a;
				break;
			case 2:
				v += b;
				break;
			case 3:
				v += (a + b) / 2;
				break;
			case 4:
				v += paeth(a, b, c);
				break;
			default:
				break;
			}
			row[x] = (uint8_t)v;
		}
	}
	free(raw);
	out->w = w;
	out->h = h;
	out->ch = 3;
	out->px = malloc((size_t)w * h * 3);
	for (size_t i = 0; i < (size_t)w * h; i++) {
		int al = sch == 4 ? cur[i * 4 + 3] : 255;
		for (int c = 0; c < 3; c++)
			out->px[i * 3 + c] = (uint8_t)((cur[i * sch + c] * al + 255 * (255 - al)) / 255);
	}
	free(cur);
	return 0;
}

static void
put_chunk(uint8_t **p, const char *type, const uint8_t *body, uint32_t n)
{
	uint8_t *q = *p;
	q[0] = (uint8_t)(n >> 24), q[1] = (uint8_t)(n >> 16), q[2] = (uint8_t)(n >> 8), q[3] = (uint8_t)n;
	memcpy(q + 4, type, 4);
	if (n)
		memcpy(q + 8, body, n);
	uint32_t crc = (uint32_t)crc32(0, q + 4, n + 4);
	q[8 + n] = (uint8_t)(crc >> 24), q[9 + n] = (uint8_t)(crc >> 16), q[10 + n] = (uint8_t)(crc >> 8);
	q[11 + n] = (uint8_t)crc;
	*p = q + 12 + n;
}

/* Encodes grey or RGB 8-bit PNG; caller frees. */
static uint8_t *
png_encode(const struct img *im, size_t *len)
{
	size_t stride = (size_t)im->w * im->ch, rawlen = (stride + 1) * im->h;
	uint8_t *raw = malloc(rawlen);
	for (int y = 0; y < im->h; y++) {
		raw[y * (stride + 1)] = 0;
		memcpy(raw + y * (stride + 1) + 1, im->px + y * stride, stride);
	}
	uLongf zl = compressBound(rawlen);
	uint8_t *z = malloc(zl);
	assert_int_equal(compress(z, &zl, raw, rawlen), Z_OK);
	free(raw);
	uint8_t *out = malloc(zl + 64), *p = out;
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
	memcpy(p, sig, 8);
	p += 8;
	uint8_t ihdr[13] = {0};
	ihdr[0] = (uint8_t)(im->w >> 24), ihdr[1] = (uint8_t)(im->w >> 16), ihdr[2] = (uint8_t)(im->w >> 8);
	ihdr[3] = (uint8_t)im->w;
	ihdr[4] = (uint8_t)(im->h >> 24), ihdr[5] = (uint8_t)(im->h >> 16), ihdr[6] = (uint8_t)(im->h >> 8);
	ihdr[7] = (uint8_t)im->h;
	ihdr[8] = 8;
	ihdr[9] = im->ch == 1 ? 0 : 2;
	put_chunk(&p, "IHDR", ihdr, 13);
	put_chunk(&p, "IDAT", z, (uint32_t)zl);
	put_chunk(&p, "IEND", NULL, 0);
	free(z);
	*len = (size_t)(p - out);
	return out;
}

/* Separable box blur of radius r, applied `passes` times (~Gaussian). */
static void
blur(struct img *im, int r, int passes)
{
	size_t n = (size_t)im->w * im->h * 3;
	uint8_t *tmp = malloc(n);
	for (int pass = 0; pass < passes; pass++) {
		for (int dir = 0; dir < 2; dir++) {
			for (int y = 0; y < im->h; y++)
				for (int x = 0; x < im->w; x++)
					for (int c = 0; c < 3; c++) {
						int s = 0, k = 0;
						for (int d = -r; d <= r; d++) {
							int xx = dir ? x : x + d, yy = dir ? y + d : y;
							if (xx < 0 || yy < 0 || xx >= im->w || yy >= im->h)
								continue;
							s += im->px[((size_t)yy * im->w + xx) * 3 + c];
							k++;
						}
						tmp[((size_t)y * im->w + x) * 3 + c] = (uint8_t)(s / k);
					}
			memcpy(im->px, tmp, n);
		}
	}
	free(tmp);
}

static struct img original;
static struct authd_enroll_out tmpl_out;
static struct authd_record tmpl;

static int
group_setup(void **state)
{
	if (tf_setup(state) < 0)
		return -1;
	size_t len;
	uint8_t *png = tf_read("miranda_1.png", &len);
	if (png == NULL || png_decode(png, len, &original) < 0)
		return -1;
	free(png);
	char *req = tf_req_files("miranda_1.png", NULL);
	if (tf_enroll(req, &tmpl_out) != 0 || tmpl_out.n_records != 1)
		return -1;
	free(req);
	tmpl.id = tmpl_out.records[0].id;
	tmpl.id_len = 16;
	tmpl.data = tmpl_out.records[0].data;
	tmpl.data_len = tmpl_out.records[0].data_len;
	return 0;
}

static int
group_teardown(void **state)
{
	free(original.px);
	tf_enroll_out_free(&tmpl_out);
	return tf_teardown(state);
}

/* Verifies one synthesised image against the template. */
static void
verify_img(const struct img *im, struct authd_verify_out *out, char **check_json)
{
	size_t len;
	uint8_t *png = png_encode(im, &len);
	const uint8_t *bufs[1] = {png};
	size_t lens[1] = {len};
	char *req = tf_req_raw(1, bufs, lens);
	assert_int_equal(tf_verify(req, &tmpl, 1, out), 0);
	assert_int_equal(tf_api->check(tf_state, png, len, check_json), 0);
	free(req);
	free(png);
}

static struct img
copy_img(const struct img *src)
{
	struct img im = *src;
	im.px = malloc((size_t)im.w * im.h * im.ch);
	memcpy(im.px, src->px, (size_t)im.w * im.h * im.ch);
	return im;
}

static void
test_reencoded_matches(void **unused)
{
	(void)unused;
	struct authd_verify_out out;
	char *json = NULL;
	verify_img(&original, &out, &json);
	if (out.verdict != AUTHD_VERDICT_APPROVE)
		fail_msg("re-encoded original: %s (%s)", out.n_reasons ? out.reasons[0] : "-", json);
	free(json);
}

static void
test_too_blurry(void **unused)
{
	(void)unused;
	struct img im = copy_img(&original);
	blur(&im, 6, 3);
	struct authd_verify_out out;
	char *json = NULL;
	verify_img(&im, &out, &json);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	if (!tf_has_reason(&out, "too_blurry"))
		fail_msg("blurred: %s (%s)", out.n_reasons ? out.reasons[0] : "-", json);
	free(json);
	free(im.px);
}

static void
test_face_too_small(void **unused)
{
	(void)unused;
	/* shrink by 8 (box filter) into the middle of a 320x240 grey canvas */
	const int f = 8;
	struct img im = {320, 240, 3, malloc(320 * 240 * 3)};
	memset(im.px, 128, 320 * 240 * 3);
	int sw = original.w / f, sh = original.h / f, ox = (320 - sw) / 2, oy = (240 - sh) / 2;
	for (int y = 0; y < sh; y++)
		for (int x = 0; x < sw; x++)
			for (int c = 0; c < 3; c++) {
				int s = 0;
				for (int dy = 0; dy < f; dy++)
					for (int dx = 0; dx < f; dx++)
						s +=
						    original
						        .px[((size_t)(y * f + dy) * original.w + x * f + dx) *
						                3 +
						            c];
				im.px[((size_t)(y + oy) * 320 + x + ox) * 3 + c] = (uint8_t)(s / (f * f));
			}
	struct authd_verify_out out;
	char *json = NULL;
	verify_img(&im, &out, &json);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	if (!tf_has_reason(&out, "face_too_small"))
		fail_msg("small: %s (%s)", out.n_reasons ? out.reasons[0] : "-", json);
	free(json);
	free(im.px);
}

static void
test_greyscale(void **unused)
{
	(void)unused;
	struct img im = {original.w, original.h, 1, malloc((size_t)original.w * original.h)};
	for (size_t i = 0; i < (size_t)im.w * im.h; i++)
		im.px[i] = (uint8_t)((original.px[i * 3] * 77 + original.px[i * 3 + 1] * 150 +
		                      original.px[i * 3 + 2] * 29) >>
		                     8);
	struct authd_verify_out out;
	char *json = NULL;
	verify_img(&im, &out, &json);
	if (out.verdict != AUTHD_VERDICT_APPROVE)
		fail_msg("grey: %s score %.3f (%s)", out.n_reasons ? out.reasons[0] : "-", out.score, json);
	free(json);
	free(im.px);
}

static void
test_no_face(void **unused)
{
	(void)unused;
	struct img im = {200, 150, 3, malloc(200 * 150 * 3)};
	for (size_t i = 0; i < 200 * 150 * 3; i++)
		im.px[i] = (uint8_t)(i / 3 % 200);
	struct authd_verify_out out;
	char *json = NULL;
	verify_img(&im, &out, &json);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	if (!tf_has_reason(&out, "no_face"))
		fail_msg("gradient: %s (%s)", out.n_reasons ? out.reasons[0] : "-", json);
	free(json);
	free(im.px);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reencoded_matches), cmocka_unit_test(test_too_blurry),
	    cmocka_unit_test(test_face_too_small),    cmocka_unit_test(test_greyscale),
	    cmocka_unit_test(test_no_face),
	};
	return cmocka_run_group_tests_name("face_quality", tests, group_setup, group_teardown);
}
