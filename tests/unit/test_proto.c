/* Framing and envelope: truncated, oversized, wrong-type and garbage input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "token.h"

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

/* The frame's JSON, parsed back by jansson (NULL when it is not JSON). */
static json_t *
frame_json(const uint8_t *out, size_t len)
{
	assert_true(len > 4);
	uint32_t n = (uint32_t)out[0] << 24 | (uint32_t)out[1] << 16 | (uint32_t)out[2] << 8 | out[3];
	assert_int_equal(n, len - 4);
	return json_loadb((const char *)out + 4, len - 4, JSON_REJECT_DUPLICATES, NULL);
}

static void
test_encode_token(void **state)
{
	(void)state;
	static const char tok[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjLTEifQ.a-b_c0";
	uint8_t *out = NULL;
	size_t len = 0;

	/* the token is the last member, byte for byte; everything else as proto_encode writes it */
	json_t *r = proto_reply_ok("b", json_pack("{s:s,s:[s]}", "result", "allow", "reasons", "x\"y"));
	assert_int_equal(proto_encode_token(r, tok, &out, &len), 0);
	json_t *back = frame_json(out, len);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "token")), tok);
	assert_string_equal(json_string_value(json_object_get(back, "result")), "allow");
	assert_string_equal(json_string_value(json_array_get(json_object_get(back, "reasons"), 0)), "x\"y");
	assert_int_equal(json_object_size(back), json_object_size(r) + 1);
	assert_memory_equal(out + len - sizeof tok - 1, tok, sizeof tok - 1);
	json_decref(back);
	free(out);

	/* an empty object gets the token alone; NULL is proto_encode */
	json_t *empty = json_object();
	assert_int_equal(proto_encode_token(empty, tok, &out, &len), 0);
	assert_int_equal(len - 4, strlen("{\"token\":\"\"}") + strlen(tok));
	assert_memory_equal(out + 4, "{\"token\":\"", 10);
	free(out);
	assert_int_equal(proto_encode_token(empty, NULL, &out, &len), 0);
	assert_int_equal(len, 4 + 2);
	free(out);

	/* refused: outside the JWS alphabet (quote, backslash, space, control, non-ASCII), empty, too long */
	static const char *const bad[] = {"a.b\"c", "a\\b", "a b", "a\nb", "a.b\xc3\xa9", "a=b", "a+b/c", ""};
	static uint8_t stale[1];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		out = stale;
		len = 1;
		assert_int_equal(proto_encode_token(r, bad[i], &out, &len), AUTHD_ERR_INTERNAL);
		assert_null(out);
		assert_int_equal(len, 0);
	}
	char *big = malloc(TOKEN_MAX_LEN + 2);
	assert_non_null(big);
	memset(big, 'A', TOKEN_MAX_LEN + 1);
	big[TOKEN_MAX_LEN + 1] = '\0';
	assert_int_equal(proto_encode_token(r, big, &out, &len), AUTHD_ERR_INTERNAL);
	big[TOKEN_MAX_LEN] = '\0';
	assert_int_equal(proto_encode_token(r, big, &out, &len), 0);
	free(out);
	free(big);

	/* refused: not an object, or one that already has a token */
	json_t *arr = json_array();
	assert_int_equal(proto_encode_token(arr, tok, &out, &len), AUTHD_ERR_INTERNAL);
	assert_int_equal(json_object_set_new(empty, "token", json_string("t")), 0);
	assert_int_equal(proto_encode_token(empty, tok, &out, &len), AUTHD_ERR_INTERNAL);
	assert_null(out);
	json_decref(arr);
	json_decref(empty);
	json_decref(r);
}

static void
test_json_text(void **state)
{
	(void)state;
	char buf[16], *heap;
	size_t n;
	json_t *small = json_pack("{s:i}", "a", 1);
	const char *t = proto_json_text(small, 0, buf, sizeof buf, &heap, &n);
	assert_ptr_equal(t, buf); /* fits: the caller's buffer, nothing to free */
	assert_null(heap);
	assert_int_equal(n, 7);
	assert_memory_equal(t, "{\"a\":1}", 7);

	/* longer than the buffer: the heap, whole */
	json_t *big = json_pack("{s:s}", "k", "0123456789abcdefghij");
	t = proto_json_text(big, 0, buf, sizeof buf, &heap, &n);
	assert_non_null(heap);
	assert_ptr_equal(t, heap);
	assert_int_equal(n, strlen("{\"k\":\"0123456789abcdefghij\"}"));
	assert_memory_equal(t, "{\"k\":\"0123456789abcdefghij\"}", n);
	free(heap);

	/* flags are passed on; any value, not only objects */
	json_t *two = json_pack("{s:i,s:i}", "b", 2, "a", 1);
	t = proto_json_text(two, JSON_SORT_KEYS, buf, sizeof buf, &heap, &n);
	assert_memory_equal(t, "{\"a\":1,\"b\":2}", n);
	json_t *arr = json_pack("[i,i]", 1, 2);
	t = proto_json_text(arr, 0, buf, sizeof buf, &heap, &n);
	assert_memory_equal(t, "[1,2]", n);

	/* a string that is not UTF-8 cannot be written, in the buffer or the heap */
	json_t *bad = json_object();
	assert_int_equal(json_object_set_new(bad, "x", json_stringn_nocheck("\xff\xfe", 2)), 0);
	assert_null(proto_json_text(bad, 0, buf, sizeof buf, &heap, &n));
	assert_null(heap);
	assert_int_equal(n, 0);
	assert_int_equal(json_object_set_new(bad, "y", json_string("0123456789abcdefghij")), 0);
	assert_null(proto_json_text(bad, 0, buf, 4, &heap, &n));
	assert_null(heap);
	json_decref(small);
	json_decref(big);
	json_decref(two);
	json_decref(arr);
	json_decref(bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_peek),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_encode_token),
		cmocka_unit_test(test_json_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
