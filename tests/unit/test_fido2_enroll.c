/*
 * FIDO2 plugin: registration (WebAuthn 7.1) through the real plugin ABI,
 * attestation `none` / `packed` (self, x5c) for ES256, EdDSA and RS256, the
 * registration mutations, and malformed CBOR in attestationObjects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "test_fido2.h"

#define UPUV (SOFTKEY_UP | SOFTKEY_UV)
#define UVREQ AUTHD_VERIFY_UV_REQUIRED

static const int algs[] = {SOFTKEY_ES256, SOFTKEY_EDDSA, SOFTKEY_RS256};

/* One key per algorithm for the raw attestationObject tests, so that the
 * credential_id sent always matches the one inside the object. */
static struct softkey *raw_keys[3];

static struct softkey *
raw_key(int alg)
{
	size_t i = alg == SOFTKEY_ES256 ? 0 : alg == SOFTKEY_EDDSA ? 1 : 2;

	if (raw_keys[i] == NULL)
		raw_keys[i] = softkey_new(alg);
	assert_non_null(raw_keys[i]);
	return raw_keys[i];
}

static void
expect_enroll(int alg, enum softkey_fmt fmt, unsigned ad_flags, uint32_t flags, const struct softkey_opts *o,
              const char *reason)
{
	struct t_cred cred;
	const char *got = NULL;
	int verdict = t_enroll(&cred, alg, fmt, ad_flags, flags, o, &got);

	if (verdict != AUTHD_VERDICT_DENY)
		t_unexpected_approvals++;
	assert_int_equal(verdict, AUTHD_VERDICT_DENY);
	assert_non_null(got);
	assert_string_equal(got, reason);
	t_cred_free(&cred);
}

/* Enrolls the raw attestationObject bytes att for a fresh key; returns the reason. */
static const char *
enroll_raw_att_alg(int alg, const uint8_t *att, size_t len)
{
	struct softkey *k = raw_key(alg);
	struct softkey_opts o = {.att_obj = att, .att_obj_len = len};
	uint8_t chal[32];
	char *json = NULL;
	const char *reason = NULL;
	int verdict;

	assert_non_null(k);
	t_challenge(chal);
	assert_int_equal(
	    softkey_make_credential(k, T_RP_ID, T_ORIGIN, chal, 32, UPUV, SOFTKEY_FMT_NONE, &o, &json), 0);
	assert_int_equal(t_enroll_json(json, chal, 32, UVREQ, NULL, &verdict, &reason), 0);
	if (verdict != AUTHD_VERDICT_DENY)
		t_unexpected_approvals++;
	assert_int_equal(verdict, AUTHD_VERDICT_DENY);
	assert_non_null(reason);
	free(json);
	return reason;
}

static const char *
enroll_raw_att(const uint8_t *att, size_t len)
{
	return enroll_raw_att_alg(SOFTKEY_ES256, att, len);
}

/* A valid attestationObject (and the key and challenge it was made for). */
static void
real_att(int alg, enum softkey_fmt fmt, uint8_t **att, size_t *len)
{
	struct softkey *k = raw_key(alg);
	uint8_t chal[32];
	char *json = NULL;
	json_t *req;

	assert_non_null(k);
	t_challenge(chal);
	assert_int_equal(softkey_make_credential(k, T_RP_ID, T_ORIGIN, chal, 32, UPUV, fmt, NULL, &json), 0);
	req = json_loads(json, 0, NULL);
	assert_non_null(req);
	assert_int_equal(
	    softkey_b64url_decode(json_string_value(json_object_get(req, "attestation_object")), att, len),
	    0);
	json_decref(req);
	free(json);
}

/* ---- acceptance ---- */

static void
test_enroll_and_verify_all(void **state)
{
	static const enum softkey_fmt fmts[] = {SOFTKEY_FMT_NONE, SOFTKEY_FMT_PACKED_SELF,
	                                        SOFTKEY_FMT_PACKED_X5C};
	static const char *const fmt_names[] = {"none", "packed", "packed"};
	static const char *const att_types[] = {"none", "self", "basic"};

	(void)state;
	for (size_t a = 0; a < 3; a++) {
		for (size_t f = 0; f < 3; f++) {
			struct t_cred cred;
			struct authd_verify_out out;
			const char *reason = NULL;
			uint8_t chal[32];
			json_t *info;
			char *id_b64;

			assert_int_equal(t_enroll(&cred, algs[a], fmts[f], UPUV, UVREQ, NULL, &reason),
			                 AUTHD_VERDICT_APPROVE);
			info = json_loads(cred.info_json, 0, NULL);
			assert_non_null(info);
			id_b64 = softkey_cred_id_b64(cred.key);
			assert_string_equal(json_string_value(json_object_get(info, "credential_id")),
			                    id_b64);
			assert_string_equal(json_string_value(json_object_get(info, "fmt")), fmt_names[f]);
			assert_string_equal(json_string_value(json_object_get(info, "attestation_type")),
			                    att_types[f]);
			assert_string_equal(json_string_value(json_object_get(info, "aaguid")),
			                    "736f6674-6b65-792d-6175-7468642d3031");
			assert_int_equal(json_integer_value(json_object_get(info, "alg")), algs[a]);
			assert_true(json_is_true(json_object_get(info, "user_verified")));
			free(id_b64);
			json_decref(info);
			/* The record id is the raw credential id. */
			size_t id_len;
			const uint8_t *id = softkey_cred_id(cred.key, &id_len);
			assert_int_equal(cred.id_len, id_len);
			assert_memory_equal(cred.id, id, id_len);

			t_challenge(chal);
			assert_int_equal(t_assert(&cred, chal, UPUV, UVREQ, NULL, &out), 0);
			assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
			assert_int_equal(out.amr, AUTHD_AMR_HWK | AUTHD_AMR_USER);
			t_verify_out_free(&out);
			t_cred_free(&cred);
		}
	}
}

static void
test_enroll_uv_optional(void **state)
{
	struct t_cred cred;
	const char *reason = NULL;
	json_t *info;

	(void)state;
	assert_int_equal(t_enroll(&cred, SOFTKEY_ES256, SOFTKEY_FMT_NONE, SOFTKEY_UP, 0, NULL, &reason),
	                 AUTHD_VERDICT_APPROVE);
	info = json_loads(cred.info_json, 0, NULL);
	assert_true(json_is_false(json_object_get(info, "user_verified")));
	json_decref(info);
	t_cred_free(&cred);
}

static void
test_enroll_backup_flags(void **state)
{
	/* A synced passkey: BE and BS at registration, BE kept on assertion. */
	struct t_cred cred;
	struct authd_verify_out out;
	const char *reason = NULL;
	uint8_t chal[32];
	json_t *info;

	(void)state;
	assert_int_equal(t_enroll(&cred, SOFTKEY_ES256, SOFTKEY_FMT_NONE, UPUV | SOFTKEY_BE | SOFTKEY_BS,
	                          UVREQ, NULL, &reason),
	                 AUTHD_VERDICT_APPROVE);
	info = json_loads(cred.info_json, 0, NULL);
	assert_true(json_is_true(json_object_get(info, "backup_eligible")));
	assert_true(json_is_true(json_object_get(info, "backup_state")));
	json_decref(info);
	t_challenge(chal);
	assert_int_equal(t_assert(&cred, chal, UPUV | SOFTKEY_BE, UVREQ, NULL, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	t_challenge(chal);
	assert_int_equal(t_assert(&cred, chal, UPUV, UVREQ, NULL, &out), 0);
	t_expect_reject(&out, 0, "backup_eligibility_changed");
	t_cred_free(&cred);
}

static void
test_enroll_with_extensions(void **state)
{
	/* ED: {"credProtect": 2} after the COSE key, signed by packed self attestation. */
	static const uint8_t ext[] = {0xa1, 0x6b, 'c', 'r', 'e', 'd', 'P',
	                              'r',  'o',  't', 'e', 'c', 't', 0x02};
	static const uint8_t ext_bool[] = {0xa1, 0x6b, 'h', 'm', 'a', 'c', '-',
	                                   's',  'e',  'c', 'r', 'e', 't', 0xf5};
	struct softkey_opts o = {.append = ext, .append_len = sizeof ext};
	struct t_cred cred;
	const char *reason = NULL;

	(void)state;
	assert_int_equal(
	    t_enroll(&cred, SOFTKEY_ES256, SOFTKEY_FMT_PACKED_SELF, UPUV | SOFTKEY_ED, UVREQ, &o, &reason),
	    AUTHD_VERDICT_APPROVE);
	t_cred_free(&cred);
	o.append = ext_bool;
	o.append_len = sizeof ext_bool;
	assert_int_equal(
	    t_enroll(&cred, SOFTKEY_EDDSA, SOFTKEY_FMT_NONE, UPUV | SOFTKEY_ED, UVREQ, &o, &reason),
	    AUTHD_VERDICT_APPROVE);
	t_cred_free(&cred);
	/* Extensions present but ED clear: trailing bytes. */
	expect_enroll(SOFTKEY_ES256, SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &o,
	              "malformed_authenticator_data");
}

static void
test_enroll_client_data_extra_members(void **state)
{
	/* Unknown members (as newer browsers add) are ignored; topOrigin without crossOrigin too. */
	struct softkey *k = softkey_new(SOFTKEY_ES256);
	uint8_t chal[32];
	char cdj[512], *chal_b64, *json = NULL;
	struct softkey_opts o = {.client_data_json = cdj};
	const char *reason = NULL;
	int verdict;

	(void)state;
	t_challenge(chal);
	chal_b64 = softkey_b64url(chal, 32);
	snprintf(cdj, sizeof cdj,
	         "{\"type\":\"webauthn.create\",\"challenge\":\"%s\",\"origin\":\"https://bank.example\","
	         "\"crossOrigin\":false,\"other_keys_can_be_added_here\":\"do not compare clientDataJSON "
	         "against a "
	         "template. See https://goo.gl/yabPex\"}",
	         chal_b64);
	assert_int_equal(
	    softkey_make_credential(k, T_RP_ID, T_ORIGIN, chal, 32, UPUV, SOFTKEY_FMT_PACKED_SELF, &o, &json),
	    0);
	assert_int_equal(t_enroll_json(json, chal, 32, UVREQ, NULL, &verdict, &reason), 0);
	assert_int_equal(verdict, AUTHD_VERDICT_APPROVE);
	free(json);
	free(chal_b64);
	softkey_free(&k);
}

/* ---- registration mutations ---- */

static void
test_enroll_mut_client_data(void **state)
{
	struct softkey_opts o = {.type = "webauthn.get"};
	struct softkey_opts x = {.cross_origin = 1};
	struct softkey_opts garbage = {.client_data_json = "{\"type\":\"webauthn.create\"}"};
	struct softkey *k = softkey_new(SOFTKEY_ES256);
	uint8_t chal[32], other[32];
	char *json = NULL;
	const char *reason = NULL;
	int verdict;

	(void)state;
	for (size_t a = 0; a < 3; a++) {
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &o, "wrong_type");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &x, "cross_origin_not_allowed");
		expect_enroll(algs[a], SOFTKEY_FMT_NONE, UPUV, UVREQ, &garbage, "bad_client_data");
	}
	/* Made for another registration challenge. */
	t_challenge(chal);
	t_challenge(other);
	assert_int_equal(softkey_make_credential(k, T_RP_ID, T_ORIGIN, other, 32, UPUV,
	                                         SOFTKEY_FMT_PACKED_SELF, NULL, &json),
	                 0);
	assert_int_equal(t_enroll_json(json, chal, 32, UVREQ, NULL, &verdict, &reason), 0);
	assert_int_equal(verdict, AUTHD_VERDICT_DENY);
	assert_string_equal(reason, "challenge_mismatch");
	free(json);
	/* From a foreign origin. */
	assert_int_equal(softkey_make_credential(k, T_RP_ID, "https://evil.example", chal, 32, UPUV,
	                                         SOFTKEY_FMT_PACKED_SELF, NULL, &json),
	                 0);
	assert_int_equal(t_enroll_json(json, chal, 32, UVREQ, NULL, &verdict, &reason), 0);
	assert_int_equal(verdict, AUTHD_VERDICT_DENY);
	assert_string_equal(reason, "origin_not_allowed");
	free(json);
	softkey_free(&k);
}

static void
test_enroll_mut_auth_data(void **state)
{
	uint8_t h[32], long_id[1024];
	static const uint8_t extra[] = {0x00};
	struct softkey_opts rp = {.rp_id_hash = h};
	struct softkey_opts no_at = {.clear_flags = SOFTKEY_AT};
	struct softkey_opts trailing = {.append = extra, .append_len = 1};
	struct softkey_opts too_long = {.cred_id_in_auth_data = long_id,
	                                .cred_id_in_auth_data_len = sizeof long_id};
	struct softkey_opts other_id = {.cred_id_in_auth_data = long_id, .cred_id_in_auth_data_len = 32};
	struct softkey_opts trunc = {0};

	(void)state;
	memset(long_id, 0x5a, sizeof long_id);
	assert_int_equal(EVP_Digest("evil.example", 12, h, NULL, EVP_sha256(), NULL), 1);
	for (size_t a = 0; a < 3; a++) {
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &rp, "rp_id_mismatch");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, SOFTKEY_UV, UVREQ, NULL, "user_not_present");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, SOFTKEY_UP, UVREQ, NULL, "user_not_verified");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV | SOFTKEY_BS, UVREQ, NULL,
		              "backup_state_invalid");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &no_at,
		              "missing_attested_credential_data");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &trailing,
		              "malformed_authenticator_data");
		expect_enroll(algs[a], SOFTKEY_FMT_NONE, UPUV, UVREQ, &too_long, "credential_id_too_long");
		expect_enroll(algs[a], SOFTKEY_FMT_NONE, UPUV, UVREQ, &other_id, "credential_id_mismatch");
		for (size_t n = 1; n < 37 + 16 + 2 + 32 + 10; n += 7) {
			trunc.truncate = n;
			expect_enroll(algs[a], SOFTKEY_FMT_NONE, UPUV, UVREQ, &trunc,
			              "malformed_authenticator_data");
		}
	}
}

static void
test_enroll_mut_attestation(void **state)
{
	struct softkey_opts flip = {.flip_sig = 1};
	struct softkey_opts ca = {.x5c_ca = 1};
	struct softkey_opts aaguid = {.x5c_wrong_aaguid = 1};
	struct softkey_opts wrong_alg = {0};

	(void)state;
	for (size_t a = 0; a < 3; a++) {
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &flip, "bad_attestation");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_X5C, UPUV, UVREQ, &flip, "bad_attestation");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_X5C, UPUV, UVREQ, &ca,
		              "bad_attestation_certificate");
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_X5C, UPUV, UVREQ, &aaguid,
		              "bad_attestation_certificate");
		wrong_alg.att_alg = algs[(a + 1) % 3];
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_SELF, UPUV, UVREQ, &wrong_alg, "bad_attestation");
		/* softkey's attestation certificate key is P-256: claim EdDSA / RS256. */
		wrong_alg.att_alg = a == 2 ? SOFTKEY_RS256 : SOFTKEY_EDDSA;
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_X5C, UPUV, UVREQ, &wrong_alg, "bad_attestation");
		wrong_alg.att_alg = -35;
		expect_enroll(algs[a], SOFTKEY_FMT_PACKED_X5C, UPUV, UVREQ, &wrong_alg, "bad_attestation");
	}
}

/* Re-encodes a valid attestationObject with one member changed. */
static const char *
att_with(const char *fmt_text, cbor_item_t *stmt_override, int drop_stmt, int add_extra, int dup_fmt)
{
	uint8_t *att = NULL, *out = NULL;
	size_t len = 0, cap = 0, n;
	struct cbor_load_result res;
	cbor_item_t *obj, *copy = cbor_new_definite_map(4);
	const char *reason;

	real_att(SOFTKEY_ES256, SOFTKEY_FMT_NONE, &att, &len);
	obj = cbor_load(att, len, &res);
	assert_non_null(obj);
	for (size_t i = 0; i < cbor_map_size(obj); i++) {
		struct cbor_pair p = cbor_map_handle(obj)[i];
		const char *key = (const char *)cbor_string_handle(p.key);
		size_t klen = cbor_string_length(p.key);
		if (klen == 3 && memcmp(key, "fmt", 3) == 0 && fmt_text != NULL) {
			assert_true(cbor_map_add(
			    copy, (struct cbor_pair){.key = p.key,
			                             .value = cbor_move(cbor_build_string(fmt_text))}));
			if (dup_fmt)
				assert_true(
				    cbor_map_add(copy, (struct cbor_pair){.key = p.key, .value = p.value}));
		} else if (klen == 7 && memcmp(key, "attStmt", 7) == 0 &&
		           (stmt_override != NULL || drop_stmt)) {
			if (!drop_stmt)
				assert_true(cbor_map_add(
				    copy, (struct cbor_pair){.key = p.key, .value = stmt_override}));
		} else {
			assert_true(cbor_map_add(copy, p));
		}
	}
	if (add_extra)
		assert_true(
		    cbor_map_add(copy, (struct cbor_pair){.key = cbor_move(cbor_build_string("epAtt")),
		                                          .value = cbor_move(cbor_build_uint8(1))}));
	n = cbor_serialize_alloc(copy, &out, &cap);
	assert_true(n > 0);
	reason = enroll_raw_att(out, n);
	free(out);
	free(att);
	cbor_decref(&obj);
	cbor_decref(&copy);
	return reason;
}

static void
test_enroll_mut_att_object_members(void **state)
{
	cbor_item_t *stmt;

	(void)state;
	assert_string_equal(att_with("tpm", NULL, 0, 0, 0), "unsupported_attestation_format");
	assert_string_equal(att_with("fido-u2f", NULL, 0, 0, 0), "unsupported_attestation_format");
	assert_string_equal(att_with("None", NULL, 0, 0, 0), "unsupported_attestation_format");
	assert_string_equal(att_with(NULL, NULL, 1, 0, 0), "malformed_attestation_object");
	assert_string_equal(att_with(NULL, NULL, 0, 1, 0), "malformed_attestation_object");
	assert_string_equal(att_with("none", NULL, 1, 0, 1), "malformed_attestation_object");
	/* none with a non-empty statement */
	stmt = cbor_new_definite_map(1);
	assert_true(cbor_map_add(
	    stmt, (struct cbor_pair){.key = cbor_move(cbor_build_string("sig")),
	                             .value = cbor_move(cbor_build_bytestring((const uint8_t *)"x", 1))}));
	assert_string_equal(att_with(NULL, stmt, 0, 0, 0), "bad_attestation");
	/* packed without sig */
	assert_string_equal(att_with("packed", stmt, 0, 0, 0), "bad_attestation");
	cbor_decref(&stmt);
	/* attStmt of the wrong type */
	stmt = cbor_build_uint8(0);
	assert_string_equal(att_with(NULL, stmt, 0, 0, 0), "malformed_attestation_object");
	cbor_decref(&stmt);
}

static void
test_enroll_mut_cose_key(void **state)
{
	/* credentialPublicKey variants, with attestation none so only the key check can fail. */
	static const uint8_t es384[] = {0xa5, 0x01, 0x02, 0x03, 0x38, 0x22, 0x20, 0x02, 0x21, 0x58, 0x30};
	uint8_t buf[128];
	struct softkey_opts o = {.cose_key = buf};
	size_t n;

	(void)state;
	/* ES384 (-35): unsupported */
	n = 0;
	memcpy(buf, es384, sizeof es384);
	n = sizeof es384;
	memset(buf + n, 1, 48);
	n += 48;
	buf[n++] = 0x22;
	buf[n++] = 0x58;
	buf[n++] = 0x30;
	memset(buf + n, 2, 48);
	n += 48;
	o.cose_key_len = n;
	expect_enroll(SOFTKEY_ES256, SOFTKEY_FMT_NONE, UPUV, UVREQ, &o, "unsupported_algorithm");

	/* ES256 with a point that is not on the curve */
	n = 0;
	static const uint8_t hdr[] = {0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20};
	memcpy(buf, hdr, sizeof hdr);
	n = sizeof hdr;
	memset(buf + n, 1, 32);
	n += 32;
	buf[n++] = 0x22;
	buf[n++] = 0x58;
	buf[n++] = 0x20;
	memset(buf + n, 2, 32);
	n += 32;
	o.cose_key_len = n;
	expect_enroll(SOFTKEY_ES256, SOFTKEY_FMT_NONE, UPUV, UVREQ, &o, "bad_public_key");

	/* ES256 with a short x */
	static const uint8_t short_x[] = {0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01,
	                                  0x21, 0x41, 0x00, 0x22, 0x41, 0x00};
	o.cose_key = short_x;
	o.cose_key_len = sizeof short_x;
	expect_enroll(SOFTKEY_ES256, SOFTKEY_FMT_NONE, UPUV, UVREQ, &o, "bad_public_key");

	/* Duplicate label */
	static const uint8_t dup[] = {0xa3, 0x01, 0x02, 0x01, 0x02, 0x03, 0x26};
	o.cose_key = dup;
	o.cose_key_len = sizeof dup;
	expect_enroll(SOFTKEY_ES256, SOFTKEY_FMT_NONE, UPUV, UVREQ, &o, "bad_public_key");

	/* Not a map, missing kty, EdDSA with the wrong curve */
	static const uint8_t arr[] = {0x82, 0x01, 0x02};
	static const uint8_t no_kty[] = {0xa1, 0x03, 0x26};
	static const uint8_t ed_crv[] = {0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x07, 0x21, 0x41, 0x00};
	o.cose_key = arr;
	o.cose_key_len = sizeof arr;
	expect_enroll(SOFTKEY_ES256, SOFTKEY_FMT_NONE, UPUV, UVREQ, &o, "bad_public_key");
	o.cose_key = no_kty;
	o.cose_key_len = sizeof no_kty;
	expect_enroll(SOFTKEY_ES256, SOFTKEY_FMT_NONE, UPUV, UVREQ, &o, "bad_public_key");
	o.cose_key = ed_crv;
	o.cose_key_len = sizeof ed_crv;
	expect_enroll(SOFTKEY_EDDSA, SOFTKEY_FMT_NONE, UPUV, UVREQ, &o, "bad_public_key");
}

/* ---- malformed CBOR ---- */

static void
test_cbor_truncated(void **state)
{
	(void)state;
	for (size_t a = 0; a < 3; a++) {
		uint8_t *att = NULL;
		size_t len = 0;
		real_att(algs[a], SOFTKEY_FMT_PACKED_X5C, &att, &len);
		for (size_t n = 1; n < len; n += (a == 0 ? 1 : 13))
			assert_string_equal(enroll_raw_att_alg(algs[a], att, n),
			                    "malformed_attestation_object");
		free(att);
	}
}

static void
test_cbor_trailing(void **state)
{
	uint8_t *att = NULL, *more;
	size_t len = 0;

	(void)state;
	real_att(SOFTKEY_ES256, SOFTKEY_FMT_PACKED_SELF, &att, &len);
	more = malloc(len + 1);
	memcpy(more, att, len);
	more[len] = 0x00;
	assert_string_equal(enroll_raw_att(more, len + 1), "malformed_attestation_object");
	more[len] = 0xa0;
	assert_string_equal(enroll_raw_att(more, len + 1), "malformed_attestation_object");
	free(more);
	free(att);
}

static void
test_cbor_deeply_nested(void **state)
{
	size_t depth = 5000; /* within the 16 KiB attestationObject limit */
	uint8_t *p = malloc(3 * depth + 2);
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < depth; i++)
		p[n++] = 0x81; /* [[[[...]]]] */
	p[n++] = 0x00;
	assert_string_equal(enroll_raw_att(p, n), "malformed_attestation_object");
	n = 0;
	for (size_t i = 0; i < depth; i++) {
		p[n++] = 0xa1; /* {"a": {"a": ...}} */
		p[n++] = 0x61;
		p[n++] = 'a';
	}
	p[n++] = 0xa0;
	assert_string_equal(enroll_raw_att(p, n), "malformed_attestation_object");
	/* Nesting inside attStmt, within the size limit. */
	static const uint8_t head[] = {0xa3, 0x63, 'f', 'm', 't', 0x66, 'p', 'a',  'c',  'k', 'e', 'd', 0x67,
	                               'a',  't',  't', 'S', 't', 'm',  't', 0xa1, 0x63, 'x', '5', 'c'};
	n = 0;
	memcpy(p, head, sizeof head);
	n = sizeof head;
	for (size_t i = 0; i < 64; i++)
		p[n++] = 0x81;
	p[n++] = 0x40;
	memcpy(p + n,
	       "\x68"
	       "authData"
	       "\x40",
	       10);
	n += 10;
	assert_string_equal(enroll_raw_att(p, n), "malformed_attestation_object");
	free(p);
}

static void
test_cbor_wrong_types(void **state)
{
	static const uint8_t top_array[] = {0x83, 0x63, 'f', 'm', 't', 0x64, 'n', 'o', 'n', 'e', 0xa0};
	static const uint8_t top_bstr[] = {0x43, 0x01, 0x02, 0x03};
	static const uint8_t top_int[] = {0x18, 0x2a};
	static const uint8_t top_text[] = {0x64, 'n', 'o', 'n', 'e'};
	static const uint8_t fmt_bstr[] = {0xa3, 0x63, 'f', 'm', 't', 0x44, 'n', 'o', 'n',  'e',
	                                   0x67, 'a',  't', 't', 'S', 't',  'm', 't', 0xa0, 0x68,
	                                   'a',  'u',  't', 'h', 'D', 'a',  't', 'a', 0x40};
	static const uint8_t ad_text[] = {0xa3, 0x63, 'f', 'm', 't', 0x64, 'n', 'o', 'n',  'e',
	                                  0x67, 'a',  't', 't', 'S', 't',  'm', 't', 0xa0, 0x68,
	                                  'a',  'u',  't', 'h', 'D', 'a',  't', 'a', 0x60};
	static const uint8_t stmt_array[] = {0xa3, 0x63, 'f', 'm', 't', 0x64, 'n', 'o', 'n',  'e',
	                                     0x67, 'a',  't', 't', 'S', 't',  'm', 't', 0x80, 0x68,
	                                     'a',  'u',  't', 'h', 'D', 'a',  't', 'a', 0x40};
	static const uint8_t int_keys[] = {0xa3, 0x01, 0x64, 'n', 'o', 'n', 'e', 0x02, 0xa0, 0x03, 0x40};
	static const uint8_t tagged[] = {0xd8, 0x18, 0xa0};
	static const uint8_t float_v[] = {0xa1, 0x63, 'f', 'm', 't', 0xf9, 0x3c, 0x00};
	static const uint8_t undef_v[] = {0xa1, 0x63, 'f', 'm', 't', 0xf7};
	static const uint8_t bool_v[] = {0xa1, 0x63, 'f', 'm', 't', 0xf5};
	static const uint8_t reserved[] = {0x1c};
	static const uint8_t brk[] = {0xff};
	const struct {
		const uint8_t *p;
		size_t n;
	} cases[] = {
	    {top_array, sizeof top_array},   {top_bstr, sizeof top_bstr}, {top_int, sizeof top_int},
	    {top_text, sizeof top_text},     {fmt_bstr, sizeof fmt_bstr}, {ad_text, sizeof ad_text},
	    {stmt_array, sizeof stmt_array}, {int_keys, sizeof int_keys}, {tagged, sizeof tagged},
	    {float_v, sizeof float_v},       {undef_v, sizeof undef_v},   {bool_v, sizeof bool_v},
	    {reserved, sizeof reserved},     {brk, sizeof brk},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_string_equal(enroll_raw_att(cases[i].p, cases[i].n), "malformed_attestation_object");
}

static void
test_cbor_oversized_lengths(void **state)
{
	static const uint8_t huge_bstr[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
	static const uint8_t huge_text[] = {0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
	static const uint8_t huge_array[] = {0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00};
	static const uint8_t huge_map[] = {0xba, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00};
	static const uint8_t long_bstr[] = {0x5a, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x02};
	static const uint8_t ad_too_long[] = {0xa3, 0x63, 'f', 'm', 't', 0x64, 'n',  'o',  'n',  'e', 0x67,
	                                      'a',  't',  't', 'S', 't', 'm',  't',  0xa0, 0x68, 'a', 'u',
	                                      't',  'h',  'D', 'a', 't', 'a',  0x59, 0xff, 0xff, 0x00};
	static const uint8_t many_keys[] = {0xb9, 0x01, 0x00, 0x00, 0x00};
	const struct {
		const uint8_t *p;
		size_t n;
	} cases[] = {
	    {huge_bstr, sizeof huge_bstr}, {huge_text, sizeof huge_text}, {huge_array, sizeof huge_array},
	    {huge_map, sizeof huge_map},   {long_bstr, sizeof long_bstr}, {ad_too_long, sizeof ad_too_long},
	    {many_keys, sizeof many_keys},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_string_equal(enroll_raw_att(cases[i].p, cases[i].n), "malformed_attestation_object");
}

static void
test_cbor_indefinite(void **state)
{
	uint8_t *att = NULL, *ind;
	size_t len = 0;
	static const uint8_t indef_bstr[] = {0xa3, 0x63, 'f', 'm', 't', 0x64, 'n',  'o',  'n',  'e', 0x67,
	                                     'a',  't',  't', 'S', 't', 'm',  't',  0xa0, 0x68, 'a', 'u',
	                                     't',  'h',  'D', 'a', 't', 'a',  0x5f, 0x41, 0x00, 0xff};
	static const uint8_t indef_text[] = {0xa3, 0x63, 'f', 'm', 't', 0x7f, 0x64, 'n', 'o', 'n',  'e',
	                                     0xff, 0x67, 'a', 't', 't', 'S',  't',  'm', 't', 0xa0, 0x68,
	                                     'a',  'u',  't', 'h', 'D', 'a',  't',  'a', 0x40};
	static const uint8_t indef_array[] = {0x9f, 0xff};

	(void)state;
	/* The real object with its top-level map made indefinite. */
	real_att(SOFTKEY_ES256, SOFTKEY_FMT_NONE, &att, &len);
	ind = malloc(len + 1);
	memcpy(ind, att, len);
	assert_int_equal(ind[0], 0xa3);
	ind[0] = 0xbf;
	ind[len] = 0xff;
	assert_string_equal(enroll_raw_att(ind, len + 1), "malformed_attestation_object");
	free(ind);
	free(att);
	assert_string_equal(enroll_raw_att(indef_bstr, sizeof indef_bstr), "malformed_attestation_object");
	assert_string_equal(enroll_raw_att(indef_text, sizeof indef_text), "malformed_attestation_object");
	assert_string_equal(enroll_raw_att(indef_array, sizeof indef_array), "malformed_attestation_object");
}

static void
test_cbor_every_byte(void **state)
{
	/* Flip each byte of a packed (self) attestationObject: never accepted, never a crash. */
	(void)state;
	for (size_t a = 0; a < 3; a++) {
		uint8_t *att = NULL;
		size_t len = 0;
		real_att(algs[a], SOFTKEY_FMT_PACKED_SELF, &att, &len);
		for (size_t i = 0; i < len; i += (a == 2 ? 3 : 1)) {
			att[i] ^= 0x41;
			(void)enroll_raw_att_alg(algs[a], att, len);
			att[i] ^= 0x41;
		}
		free(att);
	}
}

static void
test_enroll_request_json(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{}",
	    "{\"credential_id\":\"AAAA\"}",
	    "{\"credential_id\":1,\"client_data_json\":\"AAAA\",\"attestation_object\":\"AAAA\"}",
	    "{\"credential_id\":\"AA==\",\"client_data_json\":\"AAAA\",\"attestation_object\":\"AAAA\"}",
	    "{\"credential_id\":\"AAAA\",\"client_data_json\":null,\"attestation_object\":\"AAAA\"}",
	    "{\"credential_id\":\"AAAA\",\"client_data_json\":\"AAAA\",\"attestation_object\":[\"AAAA\"]}",
	};
	uint8_t chal[32];

	(void)state;
	t_challenge(chal);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int verdict;
		const char *reason = NULL;
		assert_int_equal(t_enroll_json(bad[i], chal, 32, UVREQ, NULL, &verdict, &reason), 0);
		assert_int_equal(verdict, AUTHD_VERDICT_DENY);
		assert_string_equal(reason, "malformed_request");
	}
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
	for (size_t i = 0; i < 3; i++)
		softkey_free(&raw_keys[i]);
	t_plugin_unload();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enroll_and_verify_all),
	    cmocka_unit_test(test_enroll_uv_optional),
	    cmocka_unit_test(test_enroll_backup_flags),
	    cmocka_unit_test(test_enroll_with_extensions),
	    cmocka_unit_test(test_enroll_client_data_extra_members),
	    cmocka_unit_test(test_enroll_mut_client_data),
	    cmocka_unit_test(test_enroll_mut_auth_data),
	    cmocka_unit_test(test_enroll_mut_attestation),
	    cmocka_unit_test(test_enroll_mut_att_object_members),
	    cmocka_unit_test(test_enroll_mut_cose_key),
	    cmocka_unit_test(test_cbor_truncated),
	    cmocka_unit_test(test_cbor_trailing),
	    cmocka_unit_test(test_cbor_deeply_nested),
	    cmocka_unit_test(test_cbor_wrong_types),
	    cmocka_unit_test(test_cbor_oversized_lengths),
	    cmocka_unit_test(test_cbor_indefinite),
	    cmocka_unit_test(test_cbor_every_byte),
	    cmocka_unit_test(test_enroll_request_json),
	    cmocka_unit_test(test_zero_acceptances),
	};

	return cmocka_run_group_tests_name("fido2_enroll", tests, group_setup, group_teardown);
}
