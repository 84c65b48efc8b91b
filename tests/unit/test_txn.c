/*
 * txn.c: every kind of bad input gets AUTHD_ERR_BAD_REQUEST with a message
 * naming the field; txn_hash against the DESIGN.md example; the Hanoi
 * calendar day around 17:00 UTC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "txn.h"
#include "util.h"

#define NOW INT64_C(1763881200)

static const char base_json[] =
    "{\"id\":\"T-1001\",\"customer\":\"C-42\",\"account\":\"0123456789\","
    "\"account_type\":\"business\",\"account_opened\":1700000000,"
    "\"amount\":250000000,\"currency\":\"VND\","
    "\"payee\":{\"account\":\"9876543210\",\"bank\":\"VCB\",\"name\":\"Cong ty ABC\"},"
    "\"channel\":\"internet_banking\",\"src_ip\":\"203.0.113.9\","
    "\"device_id\":\"dev-7\",\"risk_flag\":true,\"ts\":1763881200}";

static json_t *
base(void)
{
	json_error_t e;
	json_t *j = json_loads(base_json, 0, &e);
	assert_non_null(j);
	return j;
}

static void
test_valid(void **state)
{
	struct txn t;
	char msg[256] = "";
	char hex[65];
	(void)state;
	json_t *j = base();
	assert_int_equal(txn_parse(j, NOW, &t, msg, sizeof msg), 0);
	assert_string_equal(t.id, "T-1001");
	assert_int_equal(t.account_type, ACCOUNT_BUSINESS);
	assert_int_equal(t.amount, 250000000);
	assert_int_equal(t.account_opened, 1700000000);
	assert_int_equal(t.risk_flag, 1);
	assert_int_equal(t.ts, 1763881200);
	assert_string_equal(t.payee_name, "Cong ty ABC");
	hex_encode(t.hash, 32, hex);
	/* sha256("authd-txn-v1\nT-1001\nC-42\n0123456789\n250000000\nVND\n9876543210\nVCB") */
	assert_string_equal(hex, "ed37ba3600b94c2543ec8541205d0cb9effd42cb2909c00022477cd9d191ffa3");
	json_decref(j);
}

/* A mutation of the base transaction: set (json text) or delete (NULL) a field, maybe inside payee. */
struct bad {
	const char *field; /* "amount" or "payee.name" */
	const char *value; /* JSON text, or NULL to delete */
	const char *want;  /* substring of the message; NULL = must be accepted */
};

/* clang-format off */
static const struct bad cases[] = {
	/* amount */
	{"amount", "-1", "'txn.amount' must be a positive amount"},
	{"amount", "0", "'txn.amount' must be a positive amount"},
	{"amount", "1.5", "'txn.amount' must be an integer, not a fraction"},
	{"amount", "100.0", "'txn.amount' must be an integer, not a fraction"},
	{"amount", "1e9", "'txn.amount' must be an integer, not a fraction"},
	{"amount", "\"100\"", "'txn.amount' must be an integer"},
	{"amount", "true", "'txn.amount' must be an integer"},
	{"amount", "[1]", "'txn.amount' must be an integer"},
	{"amount", "9007199254740993", "'txn.amount' exceeds 2^53"},
	{"amount", "9223372036854775807", "'txn.amount' exceeds 2^53"},
	{"amount", "-9223372036854775808", "'txn.amount' must be a positive amount"},
	{"amount", "9007199254740992", NULL},
	{"amount", "1", NULL},
	{"amount", NULL, "missing field 'txn.amount'"},
	{"amount", "null", "missing field 'txn.amount'"},
	/* account_type */
	{"account_type", "\"savings\"", "'txn.account_type' must be \"personal\" or \"business\""},
	{"account_type", "\"Business\"", "'txn.account_type'"},
	{"account_type", "1", "'txn.account_type' must be a string"},
	{"account_type", NULL, "missing field 'txn.account_type'"},
	{"account_type", "\"personal\"", NULL},
	/* src_ip */
	{"src_ip", NULL, "missing field 'txn.src_ip'"},
	{"src_ip", "\"\"", "'txn.src_ip' must not be empty"},
	{"src_ip", "\"1.2.3\"", "'txn.src_ip' is not an IPv4 or IPv6 address"},
	{"src_ip", "\"not-an-ip\"", "'txn.src_ip' is not an IPv4 or IPv6 address"},
	{"src_ip", "\"1.2.3.4:443\"", "'txn.src_ip' is not an IPv4 or IPv6 address"},
	{"src_ip", "\"1.2.3.4 \"", "'txn.src_ip'"},
	{"src_ip", "16909060", "'txn.src_ip' must be a string"},
	{"src_ip", "\"0000:0000:0000:0000:0000:ffff:192.168.100.200:1\"", "'txn.src_ip'"},
	{"src_ip", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "'txn.src_ip' is longer than 63"},
	{"src_ip", "\"::ffff:1.2.3.4\"", NULL},
	{"src_ip", "\"2001:db8::1\"", NULL},
	{"src_ip", "\"10.0.0.1\"", NULL}, /* private: accepted, reported by policy as src_ip_private */
	/* ts */
	{"ts", "1863881200", "'txn.ts' is more than 5 minutes after the server clock"},
	{"ts", "1763881501", "'txn.ts' is more than 5 minutes after the server clock"},
	{"ts", "1763881500", NULL},
	{"ts", "1700000000", "'txn.ts' is more than a year before the server clock"},
	{"ts", "0", "'txn.ts' is more than a year before"},
	{"ts", "-1", "'txn.ts' is more than a year before"},
	{"ts", "\"1763881200\"", "'txn.ts' must be an integer"},
	{"ts", "1763881200.5", "'txn.ts' must be an integer, not a fraction"},
	{"ts", NULL, NULL}, /* absent: server time */
	/* account_opened */
	{"account_opened", "1863881200", "'txn.account_opened' is in the future"},
	{"account_opened", "-2208988801", "'txn.account_opened' is before 1900"},
	{"account_opened", "\"2020-01-01\"", "'txn.account_opened' must be an integer"},
	{"account_opened", "-86400", NULL},
	{"account_opened", NULL, NULL},
	/* customer and other identifiers */
	{"customer", "\"C\\u0001\"", "'txn.customer' contains control characters"},
	{"customer", "\"C\\n42\"", "'txn.customer' contains control characters"},
	{"customer", "\"C\\t42\"", "'txn.customer' contains control characters"},
	{"customer", "\"C\\u007f\"", "'txn.customer' contains control characters"},
	{"customer", "\"C\\u0085\"", "'txn.customer' contains control characters"},
	{"customer", "\"C\\u0000X\"", "'txn.customer' contains control characters"},
	{"customer", "\"C\\u202e24\"", "'txn.customer' contains invisible formatting"},
	{"customer", "\"C\\u200b42\"", "'txn.customer' contains invisible formatting"},
	{"customer", "\"\\ufeffC42\"", "'txn.customer' contains invisible formatting"},
	{"customer", "\" C-42\"", "'txn.customer' has leading or trailing spaces"},
	{"customer", "\"C-42 \"", "'txn.customer' has leading or trailing spaces"},
	{"customer", "42", "'txn.customer' must be a string"},
	{"customer", "{}", "'txn.customer' must be a string"},
	{"customer", "\"\"", "'txn.customer' must not be empty"},
	{"customer", NULL, "missing field 'txn.customer'"},
	{"customer", "\"Nguy\\u1ec5n V\\u0103n A\"", NULL},
	{"id", "\"TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT\"",
	 "'txn.id' is longer than 128 bytes"},
	{"id", "\"TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT\"",
	 NULL},
	{"account", "1234", "'txn.account' must be a string"},
	{"device_id", "7", "'txn.device_id' must be a string"},
	{"device_id", "\"dev\\r7\"", "'txn.device_id' contains control characters"},
	{"device_id", NULL, NULL},
	{"channel", "[]", "'txn.channel' must be a string"},
	/* currency */
	{"currency", "\"vnd\"", "'txn.currency' must be an ISO 4217 code"},
	{"currency", "\"VN\"", "'txn.currency' must be an ISO 4217 code"},
	{"currency", "\"VNDX\"", "'txn.currency' is longer than 3 bytes"},
	{"currency", "704", "'txn.currency' must be a string"},
	{"currency", NULL, "missing field 'txn.currency'"},
	{"currency", "\"USD\"", NULL},
	/* payee */
	{"payee", NULL, "missing field 'txn.payee'"},
	{"payee", "\"VCB 9876543210\"", "'txn.payee' must be an object"},
	{"payee.account", NULL, "missing field 'txn.payee.account'"},
	{"payee.bank", "false", "'txn.payee.bank' must be a string"},
	{"payee.name", "\"Cong ty\\u202eCBA\"", "'txn.payee.name' contains invisible formatting"},
	{"payee.name", "\"C\\u00f4ng ty TNHH \\u0110\\u1ea1i Vi\\u1ec7t \"", NULL}, /* Vietnamese, trailing space ok */
	{"payee.name", NULL, NULL},
	/* risk_flag */
	{"risk_flag", "\"true\"", "'txn.risk_flag' must be a boolean"},
	{"risk_flag", "1", "'txn.risk_flag' must be a boolean"},
	{"risk_flag", "false", NULL},
	{"risk_flag", NULL, NULL},
};
/* clang-format on */

static void
test_bad_input(void **state)
{
	size_t failures = 0;
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct bad *c = &cases[i];
		json_t *j = base();
		json_t *obj = j;
		const char *key = c->field;
		char msg[256] = "";
		struct txn t;
		if (strncmp(key, "payee.", 6) == 0) {
			obj = json_object_get(j, "payee");
			key += 6;
		}
		if (c->value == NULL)
			json_object_del(obj, key);
		else {
			json_error_t e;
			json_t *v = json_loads(c->value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
			if (v == NULL)
				fail_msg("case %zu: bad test JSON %s: %s", i, c->value, e.text);
			json_object_set_new(obj, key, v);
		}
		int r = txn_parse(j, NOW, &t, msg, sizeof msg);
		if (c->want == NULL && r != 0) {
			print_error("case %zu (%s=%s): rejected: %s\n", i, c->field,
			            c->value ? c->value : "(deleted)", msg);
			failures++;
		} else if (c->want != NULL && (r != AUTHD_ERR_BAD_REQUEST || strstr(msg, c->want) == NULL)) {
			print_error("case %zu (%s=%s): r=%d msg '%s', want '%s'\n", i, c->field,
			            c->value ? c->value : "(deleted)", r, msg, c->want);
			failures++;
		}
		json_decref(j);
	}
	assert_int_equal(failures, 0);
}

static void
test_not_object(void **state)
{
	struct txn t;
	char msg[256];
	(void)state;
	json_t *a = json_array();
	assert_int_equal(txn_parse(a, NOW, &t, msg, sizeof msg), AUTHD_ERR_BAD_REQUEST);
	assert_non_null(strstr(msg, "'txn'"));
	json_decref(a);
	assert_int_equal(txn_parse(NULL, NOW, &t, msg, sizeof msg), AUTHD_ERR_BAD_REQUEST);
	/* invalid UTF-8 smuggled past the JSON decoder */
	json_t *j = base();
	json_object_set_new(j, "customer", json_stringn_nocheck("C\xff\xfe", 3));
	assert_int_equal(txn_parse(j, NOW, &t, msg, sizeof msg), AUTHD_ERR_BAD_REQUEST);
	assert_non_null(strstr(msg, "'txn.customer'"));
	json_object_set_new(j, "customer", json_stringn_nocheck("C\xc0\xaf", 3)); /* overlong '/' */
	assert_int_equal(txn_parse(j, NOW, &t, msg, sizeof msg), AUTHD_ERR_BAD_REQUEST);
	json_decref(j);
}

/* Hanoi midnight is 17:00 UTC; no DST; the host TZ plays no part. */
static void
test_day_vn(void **state)
{
	(void)state;
	setenv("TZ", "America/New_York", 1);
	/* 2025-11-23: day 20415 since 1970-01-01 */
	assert_int_equal(txn_day_vn(INT64_C(1763917199)), 20415); /* 16:59:59 UTC = 23:59:59 Hanoi */
	assert_int_equal(txn_day_vn(INT64_C(1763917200)), 20416); /* 17:00:00 UTC = 00:00:00 Hanoi next day */
	assert_int_equal(txn_day_vn(INT64_C(1763830800)), 20415); /* 2025-11-22 17:00:00 UTC = 23 Nov 00:00 */
	assert_int_equal(txn_day_vn(INT64_C(1763830799)), 20414);
	assert_int_equal(txn_day_vn(NOW), 20415); /* 07:00 UTC = 14:00 Hanoi */
	/* the epoch: 1970-01-01 00:00 UTC is 07:00 in Hanoi, day 0; -7h is Hanoi midnight */
	assert_int_equal(txn_day_vn(0), 0);
	assert_int_equal(txn_day_vn(-7 * 3600), 0);
	assert_int_equal(txn_day_vn(-7 * 3600 - 1), -1);
	assert_int_equal(txn_day_vn(-7 * 3600 - 86400), -1);
	assert_int_equal(txn_day_vn(-7 * 3600 - 86401), -2);
	/* leap day 2024-02-29 (day 19782) in Hanoi */
	assert_int_equal(txn_day_vn(INT64_C(1709139600)), 19782); /* 2024-02-28 17:00 UTC */
	assert_int_equal(txn_day_vn(INT64_C(1709225999)), 19782); /* 2024-02-29 16:59:59 UTC */
	assert_int_equal(txn_day_vn(INT64_C(1709226000)), 19783);
	unsetenv("TZ");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_not_object),
	    cmocka_unit_test(test_day_vn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
