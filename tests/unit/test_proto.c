/* Framing and envelope: truncated, oversized, wrong-type and garbage input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

static void
test_frame_peek(void **state)
{
	uint8_t buf[16] = {0, 0, 0, 3, '{', '}', ' '};
	size_t n = 0;
	assert_int_equal(proto_frame_peek(buf, 0, 100, &n), 0);      /* nothing */
	assert_int_equal(proto_frame_peek(buf, 3, 100, &n), 0);      /* short prefix */
	assert_int_equal(proto_frame_peek(buf, 6, 100, &n), 0);      /* truncated payload */
	assert_int_equal(proto_frame_peek(buf, 7, 100, &n), 1);
	assert_int_equal(n, 3);
	uint8_t big[4] = {0x40, 0, 0, 0};                             /* 1 GiB */
	assert_int_equal(proto_frame_peek(big, 4, 8u << 20, &n), AUTHD_ERR_TOO_LARGE);
	uint8_t zero[4] = {0};
	assert_int_equal(proto_frame_peek(zero, 4, 100, &n), AUTHD_ERR_BAD_REQUEST);
	uint8_t edge[4] = {0, 0, 0, 101};
	assert_int_equal(proto_frame_peek(edge, 4, 100, &n), AUTHD_ERR_TOO_LARGE);
}

static int
parse(const char *s, struct proto_req *req)
{
	char msg[256];
	return proto_parse((const uint8_t *)s, strlen(s), req, msg, sizeof msg);
}

static void
test_envelope(void **state)
{
	struct proto_req req;
	assert_int_equal(parse("{\"v\":1,\"id\":\"a\",\"op\":\"health\",\"x\":[1]}", &req), 0);
	assert_string_equal(req.id, "a");
	assert_string_equal(req.op, "health");
	proto_req_clear(&req);
	static const char *const bad[] = {
		"", "{", "[]", "1", "\"s\"", "null", "{\"v\":1,\"op\":\"health\"}", "{\"v\":1,\"id\":1,\"op\":\"x\"}",
		"{\"v\":1,\"id\":\"\",\"op\":\"x\"}", "{\"v\":\"1\",\"id\":\"a\",\"op\":\"x\"}", "{\"id\":\"a\",\"op\":\"x\"}",
		"{\"v\":1,\"id\":\"a\"}", "{\"v\":1,\"id\":\"a\",\"op\":7}", "{\"v\":1,\"id\":\"a\",\"op\":\"\"}",
		"{\"v\":1,\"id\":\"a\",\"id\":\"b\",\"op\":\"x\"}", "{\"v\":1,\"id\":\"a\\u0000\",\"op\":\"x\"}",
		"{\"v\":1,\"id\":\"\\u0007\",\"op\":\"x\"}", "\xff\xfe", "{\"v\":1,\"id\":\"a\",\"op\":\"x\"} trailing",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_not_equal(parse(bad[i], &req), 0);
		proto_req_clear(&req);
	}
	assert_int_equal(parse("{\"v\":2,\"id\":\"a\",\"op\":\"x\"}", &req), AUTHD_ERR_UNSUPPORTED);
	assert_string_equal(req.id, "a"); /* the reply can still carry the id */
	proto_req_clear(&req);
	char longid[300];
	memset(longid, 'x', sizeof longid);
	snprintf(longid, sizeof longid, "{\"v\":1,\"op\":\"x\",\"id\":\"%0200d\"}", 0);
	assert_int_equal(parse(longid, &req), AUTHD_ERR_BAD_REQUEST);
	proto_req_clear(&req);
}

static void
test_replies(void **state)
{
	uint8_t *out = NULL;
	size_t len = 0;
	json_t *r = proto_reply_err("a", AUTHD_ERR_CONFLICT, "twice");
	assert_int_equal(proto_encode(r, &out, &len), 0);
	uint32_t n = (uint32_t)out[0] << 24 | (uint32_t)out[1] << 16 | (uint32_t)out[2] << 8 | out[3];
	assert_int_equal(n, len - 4);
	assert_non_null(memmem(out, len, "\"conflict\"", 10));
	free(out);
	json_decref(r);
	r = proto_reply_ok("b", json_pack("{s:s}", "status", "ok"));
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_int_equal(json_integer_value(json_object_get(r, "v")), 1);
	json_decref(r);
	assert_string_equal(authd_wire_code(AUTHD_ERR_NOMEM), "internal");
	assert_string_equal(authd_wire_code(12345), "internal");
	assert_string_equal(authd_wire_code(-999), "internal");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_peek),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
