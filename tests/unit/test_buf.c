/* Bounded reader/writer (authd/buf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_buf_reads(void **state)
{
	static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a};
	struct buf b;
	uint8_t u8, tmp[3];
	uint16_t u16;
	uint32_t u32;
	const uint8_t *p;

	(void)state;
	buf_init(&b, in, sizeof in);
	assert_int_equal(buf_remaining(&b), 10);
	assert_int_equal(buf_get_u8(&b, &u8), 0);
	assert_int_equal(u8, 0x01);
	assert_int_equal(buf_get_u16be(&b, &u16), 0);
	assert_int_equal(u16, 0x0203);
	assert_int_equal(buf_get_u32be(&b, &u32), 0);
	assert_int_equal(u32, 0x04050607u);
	assert_ptr_equal(buf_ptr(&b), in + 7);
	assert_int_equal(buf_get_bytes(&b, 2, &p), 0);
	assert_ptr_equal(p, in + 7);
	assert_int_equal(buf_remaining(&b), 1);
	assert_int_equal(buf_expect_end(&b), AUTHD_ERR_BAD_REQUEST);
	assert_int_equal(buf_copy(&b, tmp, 1), 0);
	assert_int_equal(tmp[0], 0x0a);
	assert_int_equal(buf_expect_end(&b), 0);
}

static void
test_buf_short_reads_consume_nothing(void **state)
{
	static const uint8_t in[] = {0xff, 0xee, 0xdd};
	struct buf b;
	uint8_t u8, tmp[4];
	uint16_t u16;
	uint32_t u32;
	const uint8_t *p = NULL;

	(void)state;
	buf_init(&b, in, sizeof in);
	assert_int_equal(buf_get_u32be(&b, &u32), AUTHD_ERR_TRUNCATED);
	assert_int_equal(buf_remaining(&b), 3);
	assert_int_equal(buf_get_bytes(&b, 4, &p), AUTHD_ERR_TRUNCATED);
	assert_null(p);
	assert_int_equal(buf_copy(&b, tmp, 4), AUTHD_ERR_TRUNCATED);
	assert_int_equal(buf_skip(&b, SIZE_MAX), AUTHD_ERR_TRUNCATED);
	assert_int_equal(buf_remaining(&b), 3);
	assert_int_equal(buf_skip(&b, 2), 0);
	assert_int_equal(buf_get_u16be(&b, &u16), AUTHD_ERR_TRUNCATED);
	assert_int_equal(buf_get_u8(&b, &u8), 0);
	assert_int_equal(u8, 0xdd);
	assert_int_equal(buf_get_u8(&b, &u8), AUTHD_ERR_TRUNCATED);
	assert_int_equal(buf_get_bytes(&b, 0, &p), 0);
}

static void
test_buf_empty_and_null(void **state)
{
	struct buf b;
	uint8_t u8;

	(void)state;
	buf_init(&b, NULL, 100); /* NULL means empty whatever the length */
	assert_int_equal(buf_remaining(&b), 0);
	assert_int_equal(buf_get_u8(&b, &u8), AUTHD_ERR_TRUNCATED);
	assert_int_equal(buf_expect_end(&b), 0);
}

static void
test_wbuf(void **state)
{
	uint8_t out[7];
	struct wbuf w;
	static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef};

	(void)state;
	wbuf_init(&w, out, sizeof out);
	assert_int_equal(wbuf_put_u8(&w, 0xab), 0);
	assert_int_equal(wbuf_put_u16be(&w, 0x1234), 0);
	assert_int_equal(wbuf_put_u32be(&w, 0xdeadbeefu), 0);
	assert_int_equal(w.len, 7);
	assert_memory_equal(out, want, sizeof want);
	assert_int_equal(wbuf_put_u8(&w, 0), AUTHD_ERR_TOO_LARGE);
	assert_int_equal(wbuf_put_bytes(&w, want, SIZE_MAX), AUTHD_ERR_TOO_LARGE);
	assert_int_equal(w.len, 7);
	wbuf_init(&w, out, 3);
	assert_int_equal(wbuf_put_u32be(&w, 1), AUTHD_ERR_TOO_LARGE);
	assert_int_equal(w.len, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_reads),
	    cmocka_unit_test(test_buf_short_reads_consume_nothing),
	    cmocka_unit_test(test_buf_empty_and_null),
	    cmocka_unit_test(test_wbuf),
	};

	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
