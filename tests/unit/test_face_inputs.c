/*
 * Face plugin: hostile and broken inputs are refused cleanly (JSON shape,
 * base64, image bytes: garbage, truncated, oversized, wrong type, huge
 * header dimensions), never approved; configuration errors and missing
 * models give a clear error. Through the ABI struct of the built face.so.
 */
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
	/* JPEG 2000 (JP2) header claiming 4097x100 */
	uint8_t jp2[80] = {0, 0,  0,   12,  'j', 'P', ' ',  ' ',  0x0d, 0x0a, 0x87, 0x0a, 0,   0,
	                   0, 45, 'j', 'p', '2', 'h', 0,    0,    0,    22,   'i',  'h',  'd', 'r',
	                   0, 0,  0,   100, 0,   0,   0x10, 0x01, 0,    3,    7,    7,    0,   0};
	expect_bad_image(jp2, sizeof(jp2), "jp2 4097 wide");
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
	    cmocka_unit_test(test_corrupt_png),   cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_config_values),
	};
	return cmocka_run_group_tests_name("face_inputs", tests, group_setup, group_teardown);
}
