/*
 * Face plugin: hostile and broken inputs are refused cleanly (JSON shape,
 * base64, image bytes: garbage, truncated, oversized, wrong type, huge
 * header dimensions, polyglots another OpenCV decoder would claim, 16-bit
 * PNG), never approved; configuration errors and missing models give a
 * clear error. Through the ABI struct of the built face.so. Also the
 * wiping free authd installs in jansson (util_json_free_wipe).
 */
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_face_common.h"

static const struct authd_record *tmpl;
static struct authd_enroll_out tmpl_out;

static int
group_setup(void **state)
{
	if (tf_setup(state) < 0)
		return -1;
	char *req = tf_req_files("obama_1.jpg", NULL);
	if (req == NULL || tf_enroll(req, &tmpl_out) != 0 || tmpl_out.n_records != 1) {
		free(req);
		return -1;
	}
	free(req);
	static struct authd_record rec;
	rec.id = tmpl_out.records[0].id;
	rec.id_len = 16;
	rec.data = tmpl_out.records[0].data;
	rec.data_len = tmpl_out.records[0].data_len;
	tmpl = &rec;
	return 0;
}

static int
group_teardown(void **state)
{
	tf_enroll_out_free(&tmpl_out);
	return tf_teardown(state);
}

/* Both ops refuse the request (negative return), never approve. */
static void
expect_bad_request(const char *req, size_t len)
{
	struct authd_verify_in in;
	struct authd_verify_out out;
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.size = sizeof(in);
	in.subject = "C-42";
	in.request_json = req;
	in.request_len = len;
	in.records = tmpl;
	in.n_records = 1;
	out.size = sizeof(out);
	int r = tf_api->verify(tf_state, &in, &out);
	if (r >= 0)
		fail_msg("verify accepted request %.60s", req ? req : "(null)");
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	assert_int_equal(out.amr, 0);

	struct authd_enroll_in ein;
	struct authd_enroll_out eout;
	memset(&ein, 0, sizeof(ein));
	memset(&eout, 0, sizeof(eout));
	ein.size = sizeof(ein);
	ein.subject = "C-42";
	ein.request_json = req;
	ein.request_len = len;
	eout.size = sizeof(eout);
	r = tf_api->enroll(tf_state, &ein, &eout);
	if (r >= 0)
		fail_msg("enroll accepted request %.60s", req ? req : "(null)");
	assert_int_equal(eout.verdict, AUTHD_VERDICT_DENY);
	assert_int_equal(eout.n_records, 0);
	assert_null(eout.info_json);
}

static void
test_bad_json(void **unused)
{
	(void)unused;
	static const char *cases[] = {
	    "",
	    "null",
	    "[]",
	    "{}",
	    "\"images\"",
	    "{\"images\":null}",
	    "{\"images\":\"abc\"}",
	    "{\"images\":[]}",
	    "{\"images\":[1]}",
	    "{\"images\":[null]}",
	    "{\"images\":[{}]}",
	    "{\"images\":[\"AAAA\"]",                        /* truncated */
	    "{\"images\":[\"AAAA\"],\"images\":[\"AAAA\"]}", /* duplicate key */
	    "{\"images\":[\"not base64!\"]}",
	    "{\"images\":[\"A\"]}",
	    "{\"images\":[\"AA AA\"]}",
	    "{\"images\":[\"AA=A\"]}",
	    "{\"images\":[\"AAAA\",\"AAAA\",\"AAAA\",\"AAAA\",\"AAAA\",\"AAAA\"]}", /* > 5 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad_request(cases[i], strlen(cases[i]));
	expect_bad_request(NULL, 0);
	/* embedded NUL */
	static const char nul[] = "{\"images\":[\"AAAA\"]}\0{}";
	expect_bad_request(nul, sizeof(nul) - 1);
	/* bad in/out sizes */
	struct authd_verify_in in;
	struct authd_verify_out out;
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.size = 4;
	out.size = sizeof(out);
	assert_true(tf_api->verify(tf_state, &in, &out) < 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
}

/* Image bytes that are not a usable picture: verdict deny, reason bad_image. */
static void
expect_bad_image(const uint8_t *img, size_t len, const char *what)
{
	const uint8_t *bufs[1] = {img};
	size_t lens[1] = {len};
	char *req = tf_req_raw(1, bufs, lens);
	struct authd_verify_out out;
	int r = tf_verify(req, tmpl, 1, &out);
	if (r != 0 || out.verdict != AUTHD_VERDICT_DENY || !tf_has_reason(&out, "bad_image"))
		fail_msg("%s: r=%d verdict=%d reason=%s", what, r, out.verdict,
		         out.n_reasons ? out.reasons[0] : "-");
	struct authd_enroll_out eout;
	assert_int_equal(tf_enroll(req, &eout), 0);
	assert_int_equal(eout.verdict, AUTHD_VERDICT_DENY);
	assert_int_equal(eout.n_records, 0);
	assert_string_equal(eout.reasons[0], "bad_image");
	tf_enroll_out_free(&eout);
	double score;
	int match;
	const char *reason;
	assert_int_equal(tf_api->compare(tf_state, img, len, img, len, &score, &match, &reason), 0);
	assert_string_equal(reason, "bad_image");
	free(req);
}

/* The plugin's check() figures for one image; caller json_decrefs. */
static json_t *
check_image(const uint8_t *img, size_t len)
{
	char *s = NULL;
	assert_int_equal(tf_api->check(tf_state, img, len, &s), 0);
	assert_non_null(s);
	json_t *o = json_loads(s, 0, NULL);
	assert_non_null(o);
	free(s);
	return o;
}

/*
 * Refused by the header probe itself (no decoder ran): bad_image, and check()
 * reports no format, which it does for anything the probe accepted.
 */
static void
expect_probe_refusal(const uint8_t *img, size_t len, const char *what)
{
	expect_bad_image(img, len, what);
	json_t *o = check_image(img, len);
	if (json_object_get(o, "format") != NULL)
		fail_msg("%s: passed the probe as %s", what, json_string_value(json_object_get(o, "format")));
	json_decref(o);
}

/* check() on an image: its format, decoded size and reason ("" = usable). */
static void
expect_checked(const uint8_t *img, size_t len, const char *format, int w, int h, const char *reason,
               const char *what)
{
	json_t *o = check_image(img, len);
	const char *f = json_string_value(json_object_get(o, "format"));
	const char *r = json_string_value(json_object_get(o, "reason"));
	if (f == NULL || strcmp(f, format) != 0 || json_integer_value(json_object_get(o, "width")) != w ||
	    json_integer_value(json_object_get(o, "height")) != h || strcmp(r ? r : "", reason) != 0)
		fail_msg("%s: format %s %dx%d reason %s", what, f ? f : "-",
		         (int)json_integer_value(json_object_get(o, "width")),
		         (int)json_integer_value(json_object_get(o, "height")), r ? r : "-");
	json_decref(o);
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/*
 * A 48x40 colour gradient encoded by OpenCV 4.6 / OpenJPEG 2.5 as JP2 (it
 * decodes, and has no face). Box layout: signature (0), ftyp (12),
 * jp2h (32) holding ihdr (40, height at 48, width at 52) and colr, jp2c (77)
 * whose codestream starts at 85 (SIZ Xsiz at 93, Ysiz at 97).
 */
static const uint8_t jp2_small[255] = {
    0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a, 0x00, 0x00, 0x00, 0x14, 0x66,
    0x74, 0x79, 0x70, 0x6a, 0x70, 0x32, 0x20, 0x00, 0x00, 0x00, 0x00, 0x6a, 0x70, 0x32, 0x20, 0x00, 0x00,
    0x00, 0x2d, 0x6a, 0x70, 0x32, 0x68, 0x00, 0x00, 0x00, 0x16, 0x69, 0x68, 0x64, 0x72, 0x00, 0x00, 0x00,
    0x28, 0x00, 0x00, 0x00, 0x30, 0x00, 0x03, 0x07, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x63, 0x6f,
    0x6c, 0x72, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0xb2, 0x6a, 0x70, 0x32, 0x63,
    0xff, 0x4f, 0xff, 0x51, 0x00, 0x2f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x28, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x07, 0x01, 0x01, 0x07, 0x01, 0x01, 0x07, 0x01, 0x01,
    0xff, 0x52, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x05, 0x04, 0x04, 0x00, 0x01, 0xff, 0x5c, 0x00,
    0x13, 0x40, 0x40, 0x48, 0x48, 0x50, 0x48, 0x48, 0x50, 0x48, 0x48, 0x50, 0x48, 0x48, 0x50, 0x48, 0x48,
    0x50, 0xff, 0x64, 0x00, 0x25, 0x00, 0x01, 0x43, 0x72, 0x65, 0x61, 0x74, 0x65, 0x64, 0x20, 0x62, 0x79,
    0x20, 0x4f, 0x70, 0x65, 0x6e, 0x4a, 0x50, 0x45, 0x47, 0x20, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e,
    0x20, 0x32, 0x2e, 0x35, 0x2e, 0x30, 0xff, 0x90, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2b, 0x00,
    0x01, 0xff, 0x93, 0xdc, 0x10, 0x07, 0xd7, 0xdf, 0x00, 0x60, 0x06, 0x42, 0xa1, 0xdc, 0x10, 0x09, 0x40,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0xff, 0xd9,
};
enum { JP2_FTYP = 12, JP2_JP2H = 32, JP2_IHDR_H = 48, JP2_IHDR_W = 52, JP2_JP2C = 77, JP2_CS = 85 };

/* jp2_small with ihdr and SIZ claiming other sizes. */
static void
jp2_sized(uint8_t out[sizeof(jp2_small)], uint32_t ihdr_w, uint32_t ihdr_h, uint32_t siz_w, uint32_t siz_h)
{
	memcpy(out, jp2_small, sizeof(jp2_small));
	assert_memory_equal(out + JP2_IHDR_H - 4, "ihdr", 4);
	assert_memory_equal(out + JP2_CS, "\xff\x4f\xff\x51", 4);
	put_be32(out + JP2_IHDR_H, ihdr_h);
	put_be32(out + JP2_IHDR_W, ihdr_w);
	put_be32(out + JP2_CS + 8, siz_w); /* XOsiz = YOsiz = 0 */
	put_be32(out + JP2_CS + 12, siz_h);
}

static void
test_bad_images(void **unused)
{
	(void)unused;
	size_t len;
	uint8_t *jpg = tf_read("obama_1.jpg", &len);
	assert_non_null(jpg);

	/* garbage */
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 2654435761u >> 13);
	expect_bad_image(junk, sizeof(junk), "garbage");
	expect_bad_image(junk, 1, "one byte");

	/* truncated JPEG at several points */
	expect_bad_image(jpg, 10, "jpeg 10 bytes");
	expect_bad_image(jpg, 600, "jpeg header only");
	expect_bad_image(jpg, len / 2, "jpeg half");
	expect_bad_image(jpg, len - 2, "jpeg without EOI");

	/* JPEG magic then garbage */
	uint8_t fake[2048];
	memcpy(fake, jpg, 4);
	memcpy(fake + 4, junk, sizeof(fake) - 4);
	expect_bad_image(fake, sizeof(fake), "jpeg magic + garbage");

	/* wrong types OpenCV could decode but we do not accept: BMP, GIF, PPM */
	uint8_t bmp[64] = {'B', 'M'}, gif[64] = {'G', 'I', 'F', '8', '9', 'a'}, ppm[64] = "P6\n20 20\n255\n";
	expect_bad_image(bmp, sizeof(bmp), "bmp");
	expect_bad_image(gif, sizeof(gif), "gif");
	expect_bad_image(ppm, sizeof(ppm), "ppm");

	/* PNG whose header claims 5000x5000: refused before decoding */
	uint8_t png[64] = {0x89, 'P', 'N', 'G',  0x0d, 0x0a, 0x1a, 0x0a, 0,    0, 0, 13, 'I', 'H', 'D',
	                   'R',  0,   0,   0x13, 0x88, 0,    0,    0x13, 0x88, 8, 6, 0,  0,   0};
	expect_bad_image(png, sizeof(png), "png 5000x5000");
	/* JPEG 2000 (JP2) whose header and codestream claim 4097x100 */
	uint8_t jp2[sizeof(jp2_small)];
	jp2_sized(jp2, 4097, 100, 4097, 100);
	expect_bad_image(jp2, sizeof(jp2), "jp2 4097 wide");
	expect_checked(jp2, sizeof(jp2), "jp2", 4097, 100, "bad_image", "jp2 4097 wide");
	/* JPEG whose frame header claims 8000 px high (walks the segments) */
	size_t plen;
	uint8_t *big = tf_read("obama_5_480p.jpg", &plen);
	size_t i = 2;
	while (i + 9 < plen && big[i] == 0xff) {
		uint8_t m = big[i + 1];
		if (m >= 0xc0 && m <= 0xc2) {
			big[i + 5] = 0x1f;
			big[i + 6] = 0x40;
			break;
		}
		i += 2 + ((size_t)big[i + 2] << 8 | big[i + 3]);
	}
	assert_true(i + 9 < plen);
	expect_bad_image(big, plen, "jpeg 8000 high");
	free(big);

	/* over 8 MiB of bytes (a valid JPEG followed by padding) */
	size_t blen = (8u << 20) + 1;
	big = calloc(1, blen);
	memcpy(big, jpg, len);
	expect_bad_image(big, blen, "9 MiB");
	free(big);
	free(jpg);
}

/* A PNG whose IDAT checksum is wrong: libpng refuses it, so do we. */
static void
test_corrupt_png(void **unused)
{
	(void)unused;
	/* 16x16 grey PNG with a corrupted zlib stream (bad Adler-32). */
	static const uint8_t tiny[] = {
	    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
	    0x44, 0x52, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x08, 0x00, 0x00, 0x00,
	    0x00, 0x3a, 0x98, 0xa0, 0xbd, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78,
	    0xda, 0x63, 0x60, 0x18, 0x05, 0x00, 0x00, 0x01, 0x10, 0x00, 0x01, 0x96, 0x43, 0x7c,
	    0x2b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
	};
	const uint8_t *bufs[1] = {tiny};
	size_t lens[1] = {sizeof(tiny)};
	char *req = tf_req_raw(1, bufs, lens);
	struct authd_verify_out out;
	assert_int_equal(tf_verify(req, tmpl, 1, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	assert_true(tf_has_reason(&out, "bad_image"));
	free(req);
}

/* ---- polyglots, JP2 layout, 16-bit PNG, pixel cap ---- */

static uint32_t
crc32_png(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return c ^ 0xffffffffu;
}

/* Appends a PNG chunk (length, type, data, CRC) at out; returns its size. */
static size_t
png_chunk(uint8_t *out, const char *type, const uint8_t *data, size_t n)
{
	put_be32(out, (uint32_t)n);
	memcpy(out + 4, type, 4);
	if (n > 0)
		memcpy(out + 8, data, n);
	put_be32(out + 8 + n, crc32_png(out + 4, n + 4));
	return 12 + n;
}

/*
 * A w x h grey PNG of 8 or 16 bits per sample, a gradient, IDAT as stored
 * (uncompressed) deflate blocks. Caller frees.
 */
static uint8_t *
png_grey(uint32_t w, uint32_t h, int depth, size_t *len)
{
	size_t row = 1 + (size_t)w * (size_t)(depth / 8), raw = row * h;
	size_t nblk = (raw + 65534) / 65535, zlen = 2 + raw + 5 * nblk + 4;
	uint8_t *z = malloc(zlen), *png = malloc(8 + 25 + 12 + zlen + 12), *q = z;
	uint32_t a = 1, b = 0;
	assert_non_null(z);
	assert_non_null(png);
	*q++ = 0x78, *q++ = 0x01;
	for (size_t off = 0; off < raw;) {
		size_t n = raw - off < 65535 ? raw - off : 65535;
		*q++ = off + n == raw;
		*q++ = (uint8_t)n, *q++ = (uint8_t)(n >> 8), *q++ = (uint8_t)~n, *q++ = (uint8_t)(~n >> 8);
		for (size_t i = off; i < off + n; i++) {
			size_t x = i % row, y = i / row;
			uint8_t v = x == 0 ? 0 : (uint8_t)((x - 1) * 3 + y * 2); /* filter 0, then samples */
			*q++ = v;
			a = (a + v) % 65521, b = (b + a) % 65521;
		}
		off += n;
	}
	put_be32(q, b << 16 | a);
	uint8_t ihdr[13] = {0};
	put_be32(ihdr, w);
	put_be32(ihdr + 4, h);
	ihdr[8] = (uint8_t)depth; /* colour type 0 (grey), deflate, no filter, no interlace */
	memcpy(png, "\x89PNG\r\n\x1a\n", 8);
	size_t n = 8 + png_chunk(png + 8, "IHDR", ihdr, sizeof(ihdr));
	n += png_chunk(png + n, "IDAT", z, zlen);
	n += png_chunk(png + n, "IEND", NULL, 0);
	free(z);
	*len = n;
	return png;
}

/*
 * OpenCV picks a decoder by signature, its own way: Debian's 4.6 tries the
 * DICOM (GDCM) decoder before JPEG 2000, and it claims anything with "DICM"
 * at offset 128. A JP2 header there + a DICOM body (12000x12000 deflated)
 * passed the probe as a small JP2 and made imdecode allocate ~1 GB. Now
 * "DICM" at 128 is refused in every format, by the probe.
 */
static void
test_dicom_polyglots(void **unused)
{
	(void)unused;
	/* JP2 boxes declaring 100x100 (ihdr and SIZ agree), "DICM" at 128 */
	uint8_t jp2[sizeof(jp2_small)];
	jp2_sized(jp2, 100, 100, 100, 100);
	memcpy(jp2 + 128, "DICM", 4);
	expect_probe_refusal(jp2, sizeof(jp2), "jp2 + DICM at 128");
	/* the same bytes without DICM get past the probe: the DICM test refused it */
	memcpy(jp2 + 128, "DICX", 4);
	json_t *o = check_image(jp2, sizeof(jp2));
	assert_string_equal(json_string_value(json_object_get(o, "format")), "jp2");
	json_decref(o);

	/* a real JPEG with a comment segment putting DICM at 128 */
	size_t len;
	uint8_t *jpg = tf_read("obama_1.jpg", &len);
	assert_non_null(jpg);
	size_t clen = 2 + 130, plen = 2 + 2 + clen + (len - 2);
	uint8_t *poly = calloc(1, plen);
	assert_non_null(poly);
	memcpy(poly, jpg, 2); /* SOI */
	poly[2] = 0xff, poly[3] = 0xfe, poly[4] = (uint8_t)(clen >> 8), poly[5] = (uint8_t)clen;
	memset(poly + 6, 'x', clen - 2);
	memcpy(poly + 2 + 2 + clen, jpg + 2, len - 2);
	memcpy(poly + 128, "DICM", 4);
	expect_probe_refusal(poly, plen, "jpeg + DICM at 128");
	memcpy(poly + 128, "DICX", 4);
	expect_checked(poly, plen, "jpeg", 910, 1137, "", "jpeg with a comment");
	free(poly);
	free(jpg);

	/* a real PNG with a tEXt chunk putting DICM at 128 */
	uint8_t *png = tf_read("lacamoire_3.png", &len);
	assert_non_null(png);
	uint8_t text[100];
	memset(text, 'x', sizeof(text));
	memcpy(text, "Comment", 8);
	memcpy(text + 128 - 33 - 8, "DICM", 4); /* chunk at 33 (after IHDR), data at 41 */
	plen = len + 12 + sizeof(text);
	poly = malloc(plen);
	assert_non_null(poly);
	memcpy(poly, png, 33);
	png_chunk(poly + 33, "tEXt", text, sizeof(text));
	memcpy(poly + 33 + 12 + sizeof(text), png + 33, len - 33);
	assert_memory_equal(poly + 128, "DICM", 4);
	expect_probe_refusal(poly, plen, "png + DICM at 128");
	memcpy(text + 128 - 33 - 8, "DICX", 4);
	png_chunk(poly + 33, "tEXt", text, sizeof(text));
	expect_checked(poly, plen, "png", 424, 394, "", "png with a tEXt chunk");
	free(poly);
	free(png);
}

/* JP2 must have the standard box layout, and its codestream agree with ihdr. */
static void
test_jp2_layout(void **unused)
{
	(void)unused;
	/* the well-formed file, and its codestream alone (J2K), decode */
	expect_checked(jp2_small, sizeof(jp2_small), "jp2", 48, 40, "no_face", "small jp2");
	expect_checked(jp2_small + JP2_CS, sizeof(jp2_small) - JP2_CS, "j2k", 48, 40, "no_face", "small j2k");

	/* ihdr claims 100x100 over a 48x40 codestream */
	uint8_t bad[sizeof(jp2_small) + 64];
	jp2_sized(bad, 100, 100, 48, 40);
	expect_probe_refusal(bad, sizeof(jp2_small), "jp2 ihdr 100x100, SIZ 48x40");
	jp2_sized(bad, 48, 40, 48, 41);
	expect_probe_refusal(bad, sizeof(jp2_small), "jp2 ihdr 48x40, SIZ 48x41");

	/* no File Type box after the signature */
	memcpy(bad, jp2_small, JP2_FTYP);
	memcpy(bad + JP2_FTYP, jp2_small + JP2_JP2H, sizeof(jp2_small) - JP2_JP2H);
	expect_probe_refusal(bad, sizeof(jp2_small) - (JP2_JP2H - JP2_FTYP), "jp2 without ftyp");

	/* ftyp without "jp2 " among the compatible brands */
	memcpy(bad, jp2_small, sizeof(jp2_small));
	memcpy(bad + JP2_JP2H - 4, "jpx ", 4);
	expect_probe_refusal(bad, sizeof(jp2_small), "jp2 ftyp without jp2 brand");

	/* codestream box before the header box */
	memcpy(bad, jp2_small, JP2_JP2H);
	memcpy(bad + JP2_JP2H, jp2_small + JP2_JP2C, sizeof(jp2_small) - JP2_JP2C);
	memcpy(bad + JP2_JP2H + sizeof(jp2_small) - JP2_JP2C, jp2_small + JP2_JP2H, JP2_JP2C - JP2_JP2H);
	expect_probe_refusal(bad, sizeof(jp2_small), "jp2c before jp2h");

	/* no codestream box at all */
	expect_probe_refusal(jp2_small, JP2_JP2C, "jp2 without jp2c");

	/* a codestream box that does not hold a codestream */
	memcpy(bad, jp2_small, sizeof(jp2_small));
	bad[JP2_CS + 1] = 0x50;
	expect_probe_refusal(bad, sizeof(jp2_small), "jp2c without SOC");

	/* two header boxes */
	memcpy(bad, jp2_small, JP2_JP2C);
	memcpy(bad + JP2_JP2C, jp2_small + JP2_JP2H, JP2_JP2C - JP2_JP2H);
	memcpy(bad + JP2_JP2C + (JP2_JP2C - JP2_JP2H), jp2_small + JP2_JP2C, sizeof(jp2_small) - JP2_JP2C);
	expect_probe_refusal(bad, sizeof(jp2_small) + (JP2_JP2C - JP2_JP2H), "jp2 with two jp2h");
}

/* 16-bit PNG is refused by the probe: twice the memory, nothing gained. */
static void
test_png_16bit(void **unused)
{
	(void)unused;
	size_t len;
	uint8_t *png = png_grey(32, 24, 8, &len);
	expect_checked(png, len, "png", 32, 24, "no_face", "8-bit grey png");
	free(png);
	png = png_grey(32, 24, 16, &len);
	expect_probe_refusal(png, len, "16-bit grey png");
	free(png);
}

/*
 * Width x height is capped (12.6 MP, 4096 x 3072) in the probe, whatever the
 * sides: a JPEG whose frame header claims 4096 x 3200 (13.1 MP) is refused
 * before decoding. libjpeg would decode it, padding the missing data.
 */
static void
test_pixel_cap(void **unused)
{
	(void)unused;
	static const uint16_t sizes[][2] = {{4096, 3200}, {3200, 4096}, {4000, 4000}};
	size_t len;
	uint8_t *jpg = tf_read("obama_5_480p.jpg", &len);
	assert_non_null(jpg);
	size_t i = 2;
	while (i + 9 < len && jpg[i] == 0xff && !(jpg[i + 1] >= 0xc0 && jpg[i + 1] <= 0xc2))
		i += 2 + ((size_t)jpg[i + 2] << 8 | jpg[i + 3]);
	assert_true(i + 9 < len && jpg[i] == 0xff);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		jpg[i + 5] = (uint8_t)(sizes[k][1] >> 8), jpg[i + 6] = (uint8_t)sizes[k][1];
		jpg[i + 7] = (uint8_t)(sizes[k][0] >> 8), jpg[i + 8] = (uint8_t)sizes[k][0];
		expect_bad_image(jpg, len, "jpeg over the pixel cap");
		expect_checked(jpg, len, "jpeg", sizes[k][0], sizes[k][1], "bad_image",
		               "jpeg over the pixel cap");
	}
	free(jpg);
}

/* ---- jansson's wiping free (authd/main.c installs util_json_free_wipe) ---- */

static const char wipe_marker[] = "Wq7-FaceMarker_";
static size_t wipe_large_marked, wipe_large_after, wipe_small_after;

static int
has_marker(const void *p, size_t n)
{
	return memmem(p, n, wipe_marker, sizeof(wipe_marker) - 1) != NULL;
}

/* The last step of util_json_free_wipe_with: looks at the block, then frees it. */
static void
wipe_observe_release(void *p)
{
	size_t n = malloc_usable_size(p);
	if (has_marker(p, n))
		*(n >= UTIL_JSON_WIPE_MIN ? &wipe_large_after : &wipe_small_after) += 1;
	free(p);
}

static void
wipe_observed_free(void *p)
{
	if (p != NULL && malloc_usable_size(p) >= UTIL_JSON_WIPE_MIN && has_marker(p, malloc_usable_size(p)))
		wipe_large_marked++;
	util_json_free_wipe_with(p, wipe_observe_release);
}

static void
test_json_free_wipe(void **unused)
{
	(void)unused;
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const size_t n = 100000;
	char *req = malloc(n + 32);
	assert_non_null(req);
	size_t k = (size_t)sprintf(req, "{\"images\":[\"");
	for (size_t i = 0; i < n; i++)
		req[k + i] = b64[(i * 2654435761u >> 7) & 63];
	for (size_t i = 0; i + sizeof(wipe_marker) < n; i += 64) /* a marker in every 256-byte block */
		memcpy(req + k + i, wipe_marker, sizeof(wipe_marker) - 1);
	k += n;
	k += (size_t)sprintf(req + k, "\"]}");

	json_set_alloc_funcs(malloc, wipe_observed_free);
	json_error_t jerr;
	json_t *o = json_loadb(req, k, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(o);
	assert_int_equal(json_string_length(json_array_get(json_object_get(o, "images"), 0)), n);
	json_t *small = json_string(wipe_marker);
	json_decref(small);
	json_decref(o);
	json_set_alloc_funcs(malloc, free);

	/*
	 * The lexer's buffers of 256 B .. 128 KiB (ten doublings) and the
	 * string value held the image: all were wiped before free. Blocks under
	 * the threshold (the small string, the lexer's first buffers) were not.
	 */
	assert_true(wipe_large_marked >= 11);
	assert_int_equal(wipe_large_after, 0);
	assert_true(wipe_small_after >= 1);

	/* and the real thing, as authd installs it */
	json_set_alloc_funcs(malloc, util_json_free_wipe);
	o = json_loadb(req, k, 0, &jerr);
	assert_non_null(o);
	json_decref(o);
	json_set_alloc_funcs(malloc, free);
	free(req);
}

static void
test_config_errors(void **unused)
{
	(void)unused;
	void *st = NULL;
	const char *saved = tf_cfg_models;

	tf_cfg_models = "/nonexistent/models";
	tf_last_log[0] = '\0';
	assert_int_equal(tf_api->init(&tf_host, &st), AUTHD_ERR_UNAVAILABLE);
	assert_null(st);
	assert_non_null(strstr(tf_last_log, "fr_detect.onnx"));
	assert_non_null(strstr(tf_last_log, "scripts/fetch-models.sh"));
	tf_cfg_models = saved;

	const char *bad_thr[] = {"abc", "0", "1", "1.5", "-0.2", "0.4x", "nan"};
	for (size_t i = 0; i < sizeof(bad_thr) / sizeof(bad_thr[0]); i++) {
		tf_cfg_threshold = bad_thr[i];
		assert_int_equal(tf_api->init(&tf_host, &st), AUTHD_ERR_CONFIG);
		tf_cfg_threshold = NULL;
		tf_cfg_live = bad_thr[i];
		assert_int_equal(tf_api->init(&tf_host, &st), AUTHD_ERR_CONFIG);
		tf_cfg_live = NULL;
	}
	const char *bad_extra[][2] = {{"multi_face_ratio", "0"}, {"multi_face_ratio", "1.5"},
	                              {"min_face_size", "8"},    {"min_face_size", "5000"},
	                              {"min_sharpness", "-1"},   {"min_sharpness", "x"}};
	for (size_t i = 0; i < sizeof(bad_extra) / sizeof(bad_extra[0]); i++) {
		tf_cfg_xkey = bad_extra[i][0];
		tf_cfg_xval = bad_extra[i][1];
		assert_int_equal(tf_api->init(&tf_host, &st), AUTHD_ERR_CONFIG);
	}
	tf_cfg_xkey = tf_cfg_xval = NULL;
	const char *bad_max[] = {"0", "6", "x", ""};
	for (size_t i = 0; i < 3; i++) {
		tf_cfg_max = bad_max[i];
		assert_int_equal(tf_api->init(&tf_host, &st), AUTHD_ERR_CONFIG);
	}
	tf_cfg_max = NULL;
}

/* A stricter configured threshold is honoured; max_images = 1 too. */
static void
test_config_values(void **unused)
{
	(void)unused;
	void *st = NULL;
	tf_cfg_threshold = "0.99";
	tf_cfg_max = "1";
	assert_int_equal(tf_api->init(&tf_host, &st), 0);
	tf_cfg_threshold = NULL;
	tf_cfg_max = NULL;
	char *req = tf_req_files("obama_2.jpg", NULL);
	struct authd_verify_in in;
	struct authd_verify_out out;
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.size = sizeof(in);
	in.request_json = req;
	in.request_len = strlen(req);
	in.records = tmpl;
	in.n_records = 1;
	out.size = sizeof(out);
	assert_int_equal(tf_api->verify(st, &in, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	assert_true(tf_has_reason(&out, "no_match"));
	assert_true(out.score > 0.4 && out.score < 0.99);
	free(req);
	req = tf_req_files("obama_2.jpg", "obama_4.jpg", NULL);
	in.request_json = req;
	in.request_len = strlen(req);
	assert_int_equal(tf_api->verify(st, &in, &out), AUTHD_ERR_BAD_REQUEST);
	free(req);
	tf_api->fini(st);

	/* Quality gates from the (extension) keys: a huge minimum face size. */
	tf_cfg_xkey = "min_face_size";
	tf_cfg_xval = "2000";
	assert_int_equal(tf_api->init(&tf_host, &st), 0);
	tf_cfg_xkey = tf_cfg_xval = NULL;
	req = tf_req_files("obama_2.jpg", NULL);
	in.request_json = req;
	in.request_len = strlen(req);
	assert_int_equal(tf_api->verify(st, &in, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	assert_true(tf_has_reason(&out, "face_too_small"));
	free(req);
	tf_api->fini(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_json),      cmocka_unit_test(test_bad_images),
	    cmocka_unit_test(test_corrupt_png),   cmocka_unit_test(test_dicom_polyglots),
	    cmocka_unit_test(test_jp2_layout),    cmocka_unit_test(test_png_16bit),
	    cmocka_unit_test(test_pixel_cap),     cmocka_unit_test(test_json_free_wipe),
	    cmocka_unit_test(test_config_errors), cmocka_unit_test(test_config_values),
	};
	return cmocka_run_group_tests_name("face_inputs", tests, group_setup, group_teardown);
}
