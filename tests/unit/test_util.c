/* base64url, hex, UTF-8 checks, template sealing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tmpl.h"
#include "util.h"

static void
test_b64url(void **state)
{
	uint8_t *out = NULL;
	size_t n = 0;
	char *e = b64url_encode((const uint8_t *)"\xfb\xff", 2);
	assert_string_equal(e, "-_8");
	free(e);
	assert_int_equal(b64url_decode("-_8", 3, 16, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\xfb\xff", 2);
	free(out);
	static const char *const bad[] = {"-_8=", "+/8", "a b", "a", "-_9", "ab\n", "ab%c"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_not_equal(b64url_decode(bad[i], strlen(bad[i]), 16, &out, &n), 0);
	assert_int_equal(b64url_decode("AAAAAAAA", 8, 5, &out, &n), AUTHD_ERR_TOO_LARGE);
	assert_int_equal(b64url_decode("", 0, 5, &out, &n), 0);
	assert_int_equal(n, 0);
	free(out);
}

static void
test_utf8(void **state)
{
	assert_true(util_is_clean_utf8("Công ty ABC", strlen("Công ty ABC")));
	assert_false(util_is_clean_utf8("a\x01", 2));
	assert_false(util_is_clean_utf8("\xc3", 1));           /* truncated */
	assert_false(util_is_clean_utf8("\xc0\xaf", 2));       /* overlong */
	assert_false(util_is_clean_utf8("\xed\xa0\x80", 3));   /* surrogate */
	assert_false(util_is_clean_utf8("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

static void
test_tmpl(void **state)
{
	uint8_t key[32] = {1}, *sealed = NULL, *plain = NULL;
	size_t sl = 0, pl = 0;
	struct tmpl_key *k = NULL;
	assert_int_equal(tmpl_key_from_bytes(key, &k), 0);
	assert_int_equal(tmpl_seal(k, "C-1", "face", (const uint8_t *)"id", 2, (const uint8_t *)"embedding", 9, &sealed, &sl), 0);
	assert_int_equal(tmpl_open(k, "C-1", "face", (const uint8_t *)"id", 2, sealed, sl, &plain, &pl), 0);
	assert_memory_equal(plain, "embedding", 9);
	util_free_secret(&plain, pl);
	/* moved to another customer, method or id: refused */
	assert_int_equal(tmpl_open(k, "C-2", "face", (const uint8_t *)"id", 2, sealed, sl, &plain, &pl), AUTHD_ERR_TAMPERED);
	assert_int_equal(tmpl_open(k, "C-1", "fido2", (const uint8_t *)"id", 2, sealed, sl, &plain, &pl), AUTHD_ERR_TAMPERED);
	assert_int_equal(tmpl_open(k, "C-1", "face", (const uint8_t *)"iX", 2, sealed, sl, &plain, &pl), AUTHD_ERR_TAMPERED);
	sealed[sl / 2] ^= 1;
	assert_int_equal(tmpl_open(k, "C-1", "face", (const uint8_t *)"id", 2, sealed, sl, &plain, &pl), AUTHD_ERR_TAMPERED);
	assert_int_equal(tmpl_open(k, "C-1", "face", (const uint8_t *)"id", 2, sealed, 10, &plain, &pl), AUTHD_ERR_TAMPERED);
	assert_null(plain);
	free(sealed);
	tmpl_key_free(&k);
	assert_null(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_tmpl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
