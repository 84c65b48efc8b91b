/*
 * FIDO2 plugin: assertion verification (WebAuthn 7.2) through the real
 * plugin ABI. Every mutation test breaks exactly one condition, with the
 * authenticator signing the broken bytes, and expects that check's own
 * reason. Each test runs for ES256, EdDSA and RS256 credentials.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "test_fido2.h"

#define UPUV (SOFTKEY_UP | SOFTKEY_UV)
#define UVREQ AUTHD_VERIFY_UV_REQUIRED

struct fx {
	int alg;
	struct t_cred cred;
	uint8_t chal[32];
	struct authd_verify_out out;
};

static int alg_es256 = SOFTKEY_ES256, alg_eddsa = SOFTKEY_EDDSA, alg_rs256 = SOFTKEY_RS256;

static int
fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	const char *reason = NULL;

	assert_non_null(fx);
	fx->alg = *(int *)*state;
	assert_int_equal(t_enroll(&fx->cred, fx->alg, SOFTKEY_FMT_NONE, UPUV, UVREQ, NULL, &reason),
	                 AUTHD_VERDICT_APPROVE);
	t_challenge(fx->chal);
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *fx = *state;

	t_verify_out_free(&fx->out);
	t_cred_free(&fx->cred);
	free(fx);
	return 0;
}

/* Assertion with opts over fx->chal, expecting reason. */
static void
expect(struct fx *fx, unsigned ad_flags, const struct softkey_opts *o, const char *reason)
{
	int rc = t_assert(&fx->cred, fx->chal, ad_flags, UVREQ, o, &fx->out);

	t_expect_reject(&fx->out, rc, reason);
	assert_int_equal(fx->out.record_index, strcmp(reason, "unknown_credential") == 0 ? -1 : 0);
	if (strcmp(reason, "possible_cloned_authenticator") != 0)
		assert_int_equal(fx->out.disable_record, 0);
	t_verify_out_free(&fx->out);
}

static void
approve(struct fx *fx, unsigned ad_flags, uint32_t flags, const struct softkey_opts *o)
{
	int rc = t_assert(&fx->cred, fx->chal, ad_flags, flags, o, &fx->out);

	assert_int_equal(rc, 0);
	assert_int_equal(fx->out.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(fx->out.record_index, 0);
	assert_int_equal(fx->out.disable_record, 0);
	assert_int_equal(fx->out.n_reasons, 0);
	t_verify_out_free(&fx->out);
}

/* ---- acceptance ---- */

static void
test_verify_ok_uv(void **state)
{
	struct fx *fx = *state;

	approve(fx, UPUV, UVREQ, NULL);
	assert_int_equal(fx->out.amr, AUTHD_AMR_HWK | AUTHD_AMR_USER);
	/* The updated record carries the new counter: the next one is accepted too. */
	t_challenge(fx->chal);
	approve(fx, UPUV, UVREQ, NULL);
}

static void
test_verify_ok_up_only(void **state)
{
	struct fx *fx = *state;

	approve(fx, SOFTKEY_UP, 0, NULL);
	assert_int_equal(fx->out.amr, AUTHD_AMR_HWK);
}

static void
test_verify_ok_user_handle(void **state)
{
	struct fx *fx = *state;
	struct softkey_opts o = {.user_handle = (const uint8_t *)T_SUBJECT,
	                         .user_handle_len = strlen(T_SUBJECT)};

	approve(fx, UPUV, UVREQ, &o);
}

static void
test_verify_ok_zero_counter(void **state)
{
	struct fx *fx = *state;
	struct softkey_opts o = {.keep_counter = 1};

	/* Authenticators without a counter always send 0: accepted while both are 0. */
	approve(fx, UPUV, UVREQ, &o);
	t_challenge(fx->chal);
	approve(fx, UPUV, UVREQ, &o);
}

static void
test_verify_ok_extensions(void **state)
{
	struct fx *fx = *state;
	static const uint8_t empty_map[] = {0xa0};
	struct softkey_opts o = {.append = empty_map, .append_len = 1};

	approve(fx, UPUV | SOFTKEY_ED, UVREQ, &o);
}

static void
test_verify_ok_second_origin(void **state)
{
	struct fx *fx = *state;
	char *json = NULL;
	const struct t_cred *list[1] = {&fx->cred};

	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, t_origins[1], fx->chal, 32, UPUV, NULL, &json), 0);
	assert_int_equal(t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out), 0);
	free(json);
	assert_int_equal(fx->out.verdict, AUTHD_VERDICT_APPROVE);
	t_verify_out_free(&fx->out);
}

static void
test_verify_picks_offered_record(void **state)
{
	struct fx *fx = *state;
	struct t_cred other;
	const char *reason = NULL;
	char *json = NULL;

	assert_int_equal(t_enroll(&other, fx->alg, SOFTKEY_FMT_NONE, UPUV, UVREQ, NULL, &reason),
	                 AUTHD_VERDICT_APPROVE);
	const struct t_cred *list[2] = {&other, &fx->cred};
	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &json), 0);
	assert_int_equal(t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 2, UVREQ, &fx->out), 0);
	free(json);
	assert_int_equal(fx->out.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(fx->out.record_index, 1);
	t_verify_out_free(&fx->out);
	t_cred_free(&other);
}

/* ---- mutations: clientDataJSON ---- */

static void
test_mut_wrong_type(void **state)
{
	struct softkey_opts o = {.type = "webauthn.create"};

	expect(*state, UPUV, &o, "wrong_type");
	o.type = "payment.get";
	expect(*state, UPUV, &o, "wrong_type");
}

static void
test_mut_wrong_challenge(void **state)
{
	struct fx *fx = *state;
	uint8_t issued[32];
	char *json = NULL;
	const struct t_cred *list[1] = {&fx->cred};

	/* The authenticator signed a different challenge than the one issued. */
	memcpy(issued, fx->chal, 32);
	issued[31] ^= 0x01;
	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &json), 0);
	t_expect_reject(&fx->out, t_verify_json(T_SUBJECT, json, issued, 32, list, 1, UVREQ, &fx->out),
	                "challenge_mismatch");
	free(json);
	/* A prefix of the challenge is not the challenge. */
	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 31, UPUV, NULL, &json), 0);
	t_expect_reject(&fx->out, t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out),
	                "challenge_mismatch");
	free(json);
}

/* DESIGN.md 4: challenge = SHA-256("authd-chal-v1" || txn_hash || 32 random bytes). */
static void
txn_challenge(const char *txn_text, const uint8_t nonce[32], uint8_t out[32])
{
	uint8_t txn_hash[32], msg[13 + 32 + 32];

	assert_int_equal(EVP_Digest(txn_text, strlen(txn_text), txn_hash, NULL, EVP_sha256(), NULL), 1);
	memcpy(msg, "authd-chal-v1", 13);
	memcpy(msg + 13, txn_hash, 32);
	memcpy(msg + 45, nonce, 32);
	assert_int_equal(EVP_Digest(msg, sizeof msg, out, NULL, EVP_sha256(), NULL), 1);
}

static void
test_mut_challenge_other_transfer(void **state)
{
	struct fx *fx = *state;
	uint8_t nonce[32], mine[32], theirs[32];
	char *json = NULL;
	const struct t_cred *list[1] = {&fx->cred};

	t_challenge(nonce);
	txn_challenge("authd-txn-v1\nT-1001\nC-42\n0123456789\n250000000\nVND\n9876543210\nVCB", nonce, mine);
	txn_challenge("authd-txn-v1\nT-1002\nC-42\n0123456789\n250000000\nVND\n1111111111\nVCB", nonce,
	              theirs);
	/* An assertion made for transfer T-1002 is presented for T-1001. */
	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, theirs, 32, UPUV, NULL, &json), 0);
	t_expect_reject(&fx->out, t_verify_json(T_SUBJECT, json, mine, 32, list, 1, UVREQ, &fx->out),
	                "challenge_mismatch");
	free(json);
}

static void
test_mut_wrong_origin(void **state)
{
	struct fx *fx = *state;
	static const char *const bad[] = {"https://evil.example",
	                                  "http://bank.example",
	                                  "https://bank.example:443",
	                                  "https://bank.example/",
	                                  "https://bank.example.evil.example",
	                                  "https://BANK.example",
	                                  "https://sub.bank.example",
	                                  ""};
	const struct t_cred *list[1] = {&fx->cred};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *json = NULL;
		assert_int_equal(
		    softkey_get_assertion(fx->cred.key, T_RP_ID, bad[i], fx->chal, 32, UPUV, NULL, &json), 0);
		t_expect_reject(&fx->out,
		                t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out),
		                "origin_not_allowed");
		free(json);
	}
}

static void
test_mut_cross_origin(void **state)
{
	struct softkey_opts o = {.cross_origin = 1};

	expect(*state, UPUV, &o, "cross_origin_not_allowed");
}

static void
test_mut_bad_client_data(void **state)
{
	static const char *const bad[] = {
	    "not json",
	    "[]",
	    "{\"type\":\"webauthn.get\"}",
	    "{\"type\":1,\"challenge\":\"AA\",\"origin\":\"https://bank.example\"}",
	    "{\"type\":\"webauthn.get\",\"type\":\"webauthn.get\",\"challenge\":\"AA\",\"origin\":\"x\"}",
	    "{\"type\":\"webauthn.get\",\"challenge\":\"AA\",\"origin\":\"x\",\"crossOrigin\":\"false\"}",
	    "{\"type\":\"webauthn.get\",\"challenge\":\"AA\",\"origin\":\"https://bank.example\"} trailing",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct softkey_opts o = {.client_data_json = bad[i]};
		expect(*state, UPUV, &o, "bad_client_data");
	}
}

/* ---- mutations: authenticatorData ---- */

static void
test_mut_rp_id_hash(void **state)
{
	uint8_t h[32];
	struct softkey_opts o = {.rp_id_hash = h};

	assert_int_equal(EVP_Digest("evil.example", 12, h, NULL, EVP_sha256(), NULL), 1);
	expect(*state, UPUV, &o, "rp_id_mismatch");
	memset(h, 0, sizeof h);
	expect(*state, UPUV, &o, "rp_id_mismatch");
}

static void
test_mut_up_clear(void **state)
{
	expect(*state, SOFTKEY_UV, NULL, "user_not_present");
}

static void
test_mut_uv_clear(void **state)
{
	expect(*state, SOFTKEY_UP, NULL, "user_not_verified");
}

static void
test_mut_bs_without_be(void **state)
{
	expect(*state, UPUV | SOFTKEY_BS, NULL, "backup_state_invalid");
}

static void
test_mut_be_changed(void **state)
{
	/* Registered without BE; an assertion now claims BE. */
	expect(*state, UPUV | SOFTKEY_BE, NULL, "backup_eligibility_changed");
}

static void
test_mut_truncated_auth_data(void **state)
{
	struct softkey_opts o = {0};

	for (size_t n = 1; n <= 36; n += 5) {
		o.truncate = n;
		expect(*state, UPUV, &o, "malformed_authenticator_data");
	}
}

static void
test_mut_trailing_bytes(void **state)
{
	static const uint8_t extra[] = {0x00};
	static const uint8_t map_and_more[] = {0xa0, 0x00};
	struct softkey_opts o = {.append = extra, .append_len = 1};

	expect(*state, UPUV, &o, "malformed_authenticator_data");
	/* ED set: one extensions map, then nothing. */
	o.append = map_and_more;
	o.append_len = 2;
	expect(*state, UPUV | SOFTKEY_ED, &o, "malformed_authenticator_data");
}

static void
test_mut_bad_extensions(void **state)
{
	static const uint8_t not_map[] = {0x80};
	static const uint8_t indefinite[] = {0xbf, 0xff};
	struct softkey_opts o = {0};

	expect(*state, UPUV | SOFTKEY_ED, &o, "malformed_authenticator_data"); /* ED without data */
	o.append = not_map;
	o.append_len = 1;
	expect(*state, UPUV | SOFTKEY_ED, &o, "malformed_authenticator_data");
	o.append = indefinite;
	o.append_len = 2;
	expect(*state, UPUV | SOFTKEY_ED, &o, "malformed_authenticator_data");
}

static void
test_mut_at_in_assertion(void **state)
{
	expect(*state, UPUV | SOFTKEY_AT, NULL, "malformed_authenticator_data");
}

/* ---- mutations: signature ---- */

static void
test_mut_flipped_signature(void **state)
{
	struct softkey_opts o = {.flip_sig = 1};

	expect(*state, UPUV, &o, "bad_signature");
}

static void
test_mut_signed_by_other_key(void **state)
{
	struct fx *fx = *state;
	struct softkey *thief = softkey_new(fx->alg);
	size_t id_len;
	const uint8_t *id = softkey_cred_id(fx->cred.key, &id_len);
	struct softkey_opts o = {.cred_id = id, .cred_id_len = id_len};
	char *json = NULL;
	const struct t_cred *list[1] = {&fx->cred};

	assert_non_null(thief);
	assert_int_equal(softkey_get_assertion(thief, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, &o, &json), 0);
	t_expect_reject(&fx->out, t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out),
	                "bad_signature");
	free(json);
	softkey_free(&thief);
}

static void
test_mut_every_byte(void **state)
{
	/* Flip each byte of authenticatorData, clientDataJSON and the signature in turn. */
	struct fx *fx = *state;
	static const char *const fields[] = {"authenticator_data", "client_data_json", "signature"};
	const struct t_cred *list[1] = {&fx->cred};
	char *json = NULL;
	json_t *req;

	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &json), 0);
	req = json_loads(json, 0, NULL);
	free(json);
	assert_non_null(req);
	for (size_t f = 0; f < 3; f++) {
		uint8_t *raw = NULL;
		size_t len = 0;
		assert_int_equal(
		    softkey_b64url_decode(json_string_value(json_object_get(req, fields[f])), &raw, &len), 0);
		for (size_t i = 0; i < len; i++) {
			json_t *m = json_deep_copy(req);
			char *b64, *text;
			raw[i] ^= 0x20;
			b64 = softkey_b64url(raw, len);
			raw[i] ^= 0x20;
			json_object_set_new(m, fields[f], json_string(b64));
			text = json_dumps(m, JSON_COMPACT);
			assert_int_equal(
			    t_verify_json(T_SUBJECT, text, fx->chal, 32, list, 1, UVREQ, &fx->out), 0);
			if (fx->out.verdict != AUTHD_VERDICT_DENY)
				t_unexpected_approvals++;
			assert_int_equal(fx->out.verdict, AUTHD_VERDICT_DENY);
			assert_int_equal(fx->out.n_reasons, 1);
			t_verify_out_free(&fx->out);
			free(text);
			free(b64);
			json_decref(m);
		}
		free(raw);
	}
	json_decref(req);
}

/* ---- mutations: counter, credential, user handle ---- */

static void
test_mut_sign_count_replay(void **state)
{
	struct fx *fx = *state;
	struct softkey_opts o = {.keep_counter = 1};

	approve(fx, UPUV, UVREQ, NULL); /* counter 1 stored */
	t_challenge(fx->chal);
	expect(fx, UPUV, &o, "possible_cloned_authenticator"); /* 1 again */
	assert_int_equal(fx->out.disable_record, 1);
	softkey_set_counter(fx->cred.key, 0); /* goes backwards: 1 -> 1 */
	expect(fx, UPUV, NULL, "possible_cloned_authenticator");
	assert_int_equal(fx->out.disable_record, 1);
	softkey_set_counter(fx->cred.key, 0); /* stored 1, new 0 */
	expect(fx, UPUV, &o, "possible_cloned_authenticator");
	assert_int_equal(fx->out.disable_record, 1);
}

static void
test_mut_replay_same_assertion(void **state)
{
	/* The very same assertion presented twice: the second is a counter replay. */
	struct fx *fx = *state;
	const struct t_cred *list[1] = {&fx->cred};
	char *json = NULL;

	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &json), 0);
	assert_int_equal(t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out), 0);
	assert_int_equal(fx->out.verdict, AUTHD_VERDICT_APPROVE);
	free(fx->cred.data);
	fx->cred.data = fx->out.updated_data;
	fx->cred.data_len = fx->out.updated_len;
	fx->out.updated_data = NULL;
	t_expect_reject(&fx->out, t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out),
	                "possible_cloned_authenticator");
	assert_int_equal(fx->out.disable_record, 1);
	free(json);
}

static void
test_mut_unknown_credential(void **state)
{
	struct fx *fx = *state;
	uint8_t id[32];
	struct softkey_opts o = {.cred_id = id, .cred_id_len = sizeof id};
	char *json = NULL;

	assert_int_equal(RAND_bytes(id, sizeof id), 1);
	expect(fx, UPUV, &o, "unknown_credential");
	/* Revoked or not offered: the host passes no record for it. */
	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &json), 0);
	t_expect_reject(&fx->out, t_verify_json(T_SUBJECT, json, fx->chal, 32, NULL, 0, UVREQ, &fx->out),
	                "unknown_credential");
	free(json);
}

static void
test_mut_other_customers_credential(void **state)
{
	/* C-77's credential presented in C-42's flow: only C-42's records are offered. */
	struct fx *fx = *state;
	struct t_cred theirs;
	const char *reason = NULL;
	const struct t_cred *list[1] = {&fx->cred};
	char *json = NULL;

	assert_int_equal(t_enroll(&theirs, fx->alg, SOFTKEY_FMT_NONE, UPUV, UVREQ, NULL, &reason),
	                 AUTHD_VERDICT_APPROVE);
	assert_int_equal(
	    softkey_get_assertion(theirs.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &json), 0);
	t_expect_reject(&fx->out, t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out),
	                "unknown_credential");
	free(json);
	t_cred_free(&theirs);
}

static void
test_mut_user_handle(void **state)
{
	struct softkey_opts o = {.user_handle = (const uint8_t *)"C-77", .user_handle_len = 4};

	expect(*state, UPUV, &o, "user_handle_mismatch");
	o.user_handle = (const uint8_t *)"C-4";
	o.user_handle_len = 3;
	expect(*state, UPUV, &o, "user_handle_mismatch");
	o.user_handle = (const uint8_t *)"C-42\0";
	o.user_handle_len = 5;
	expect(*state, UPUV, &o, "user_handle_mismatch");
}

/* ---- malformed request objects ---- */

static void
test_mut_request_json(void **state)
{
	struct fx *fx = *state;
	const struct t_cred *list[1] = {&fx->cred};
	char *good = NULL, *big;
	json_t *req;
	static const char *const fields[] = {"credential_id", "authenticator_data", "client_data_json",
	                                     "signature"};
	static const char *const garbage[] = {
	    "", "null", "[]", "\"x\"", "{", "{}", "{\"credential_id\":1}", "\xff\xfe"};

	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
		t_expect_reject(&fx->out,
		                t_verify_json(T_SUBJECT, garbage[i], fx->chal, 32, list, 1, UVREQ, &fx->out),
		                "malformed_request");
	}
	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &good), 0);
	req = json_loads(good, 0, NULL);
	assert_non_null(req);
	for (size_t f = 0; f < 4; f++) {
		json_t *bad_values[] = {NULL,
		                        json_null(),
		                        json_integer(7),
		                        json_true(),
		                        json_array(),
		                        json_object(),
		                        json_string(""),
		                        json_string("AA=="),
		                        json_string("A"),
		                        json_string("AA AA"),
		                        json_string("AA+/"),
		                        json_string("AB")};
		for (size_t v = 0; v < sizeof bad_values / sizeof bad_values[0]; v++) {
			json_t *m = json_deep_copy(req);
			char *text;
			if (bad_values[v] == NULL)
				json_object_del(m, fields[f]);
			else
				json_object_set_new(m, fields[f], bad_values[v]);
			text = json_dumps(m, JSON_COMPACT);
			t_expect_reject(
			    &fx->out, t_verify_json(T_SUBJECT, text, fx->chal, 32, list, 1, UVREQ, &fx->out),
			    "malformed_request");
			free(text);
			json_decref(m);
		}
	}
	/* Oversized fields. */
	big = malloc(200001);
	assert_non_null(big);
	memset(big, 'A', 200000);
	big[200000] = '\0';
	for (size_t f = 0; f < 4; f++) {
		json_t *m = json_deep_copy(req);
		char *text;
		big[f == 0 ? 1400 : 6000] = '\0';
		json_object_set_new(m, fields[f], json_string(big));
		big[f == 0 ? 1400 : 6000] = 'A';
		text = json_dumps(m, JSON_COMPACT);
		t_expect_reject(&fx->out,
		                t_verify_json(T_SUBJECT, text, fx->chal, 32, list, 1, UVREQ, &fx->out),
		                "malformed_request");
		free(text);
		json_decref(m);
	}
	/* Whole request over the limit. */
	{
		json_t *m = json_deep_copy(req);
		char *text;
		json_object_set_new(m, "padding", json_string(big));
		text = json_dumps(m, JSON_COMPACT);
		t_expect_reject(&fx->out,
		                t_verify_json(T_SUBJECT, text, fx->chal, 32, list, 1, UVREQ, &fx->out),
		                "malformed_request");
		free(text);
		json_decref(m);
	}
	/* Duplicate keys. */
	{
		size_t n = strlen(good);
		char *dup = malloc(n + 64);
		assert_non_null(dup);
		snprintf(dup, n + 64, "{\"signature\":\"AAAA\",%s", good + 1);
		t_expect_reject(&fx->out,
		                t_verify_json(T_SUBJECT, dup, fx->chal, 32, list, 1, UVREQ, &fx->out),
		                "malformed_request");
		free(dup);
	}
	free(big);
	free(good);
	json_decref(req);
}

static void
test_damaged_record(void **state)
{
	struct fx *fx = *state;
	const struct t_cred *list[1] = {&fx->cred};
	char *json = NULL;
	int rc;

	assert_int_equal(
	    softkey_get_assertion(fx->cred.key, T_RP_ID, T_ORIGIN, fx->chal, 32, UPUV, NULL, &json), 0);
	fx->cred.data[0] = 99; /* unknown version */
	rc = t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out);
	assert_true(rc < 0);
	assert_int_equal(fx->out.verdict, AUTHD_VERDICT_DENY);
	fx->cred.data_len -= 1; /* truncated */
	fx->cred.data[0] = 1;
	rc = t_verify_json(T_SUBJECT, json, fx->chal, 32, list, 1, UVREQ, &fx->out);
	assert_true(rc < 0);
	assert_int_equal(fx->out.verdict, AUTHD_VERDICT_DENY);
	free(json);
}

static void
test_zero_acceptances(void **state)
{
	(void)state;
	assert_int_equal(t_unexpected_approvals, 0);
}

static int
group_setup(void **state)
{
	(void)state;
	return t_plugin_load();
}

static int
group_teardown(void **state)
{
	(void)state;
	t_plugin_unload();
	return 0;
}

#define T(f, alg) cmocka_unit_test_prestate_setup_teardown(f, fx_setup, fx_teardown, &alg)
#define ALL(alg)                                                                                             \
	T(test_verify_ok_uv, alg), T(test_verify_ok_up_only, alg), T(test_verify_ok_user_handle, alg),       \
	    T(test_verify_ok_zero_counter, alg), T(test_verify_ok_extensions, alg),                          \
	    T(test_verify_ok_second_origin, alg), T(test_verify_picks_offered_record, alg),                  \
	    T(test_mut_wrong_type, alg), T(test_mut_wrong_challenge, alg),                                   \
	    T(test_mut_challenge_other_transfer, alg), T(test_mut_wrong_origin, alg),                        \
	    T(test_mut_cross_origin, alg), T(test_mut_bad_client_data, alg), T(test_mut_rp_id_hash, alg),    \
	    T(test_mut_up_clear, alg), T(test_mut_uv_clear, alg), T(test_mut_bs_without_be, alg),            \
	    T(test_mut_be_changed, alg), T(test_mut_truncated_auth_data, alg),                               \
	    T(test_mut_trailing_bytes, alg), T(test_mut_bad_extensions, alg),                                \
	    T(test_mut_at_in_assertion, alg), T(test_mut_flipped_signature, alg),                            \
	    T(test_mut_signed_by_other_key, alg), T(test_mut_every_byte, alg),                               \
	    T(test_mut_sign_count_replay, alg), T(test_mut_replay_same_assertion, alg),                      \
	    T(test_mut_unknown_credential, alg), T(test_mut_other_customers_credential, alg),                \
	    T(test_mut_user_handle, alg), T(test_mut_request_json, alg), T(test_damaged_record, alg)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    ALL(alg_es256),
	    ALL(alg_eddsa),
	    ALL(alg_rs256),
	    cmocka_unit_test(test_zero_acceptances),
	};

	return cmocka_run_group_tests_name("fido2_verify", tests, group_setup, group_teardown);
}
