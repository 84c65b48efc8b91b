/*
 * The soft security key (tests/softkey/softdev.h) driven by libfido2 over
 * CTAPHID reports (fido_dev_set_io_functions) and whole messages
 * (fido_dev_info_set transport): fido_dev_make_cred / fido_dev_get_assert
 * end to end, and an assertion from it verified by the fido2 plugin the
 * way pam_authd will build it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cbor.h>
#include <cmocka.h>
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <fido/rs256.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "softdev.h"
#include "test_fido2.h"

#define PAM_RP "pam://bastion"
#define STAFF "staff:alice"

struct dfx {
	struct softdev *sd;
	fido_dev_t *dev;
};

static int
dfx_setup(void **state)
{
	struct dfx *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	assert_non_null(fx->sd = softdev_new());
	assert_non_null(fx->dev = fido_dev_new());
	assert_int_equal(fido_dev_set_io_functions(fx->dev, softdev_io()), FIDO_OK);
	assert_int_equal(fido_dev_open(fx->dev, softdev_path(fx->sd)), FIDO_OK);
	*state = fx;
	return 0;
}

static int
dfx_teardown(void **state)
{
	struct dfx *fx = *state;

	fido_dev_close(fx->dev);
	fido_dev_free(&fx->dev);
	softdev_free(&fx->sd);
	free(fx);
	return 0;
}

static void
cdh_of(const char *s, uint8_t out[32])
{
	assert_int_equal(EVP_Digest(s, strlen(s), out, NULL, EVP_sha256(), NULL), 1);
}

static fido_cred_t *
make_cred(fido_dev_t *dev, int alg, fido_opt_t rk, int expect)
{
	fido_cred_t *cred = fido_cred_new();
	uint8_t cdh[32];

	cdh_of("registration", cdh);
	assert_non_null(cred);
	assert_int_equal(fido_cred_set_type(cred, alg), FIDO_OK);
	assert_int_equal(fido_cred_set_clientdata_hash(cred, cdh, 32), FIDO_OK);
	assert_int_equal(fido_cred_set_rp(cred, PAM_RP, "bastion"), FIDO_OK);
	assert_int_equal(
	    fido_cred_set_user(cred, (const unsigned char *)STAFF, strlen(STAFF), "alice", "Alice", NULL),
	    FIDO_OK);
	assert_int_equal(fido_cred_set_uv(cred, FIDO_OPT_TRUE), FIDO_OK);
	assert_int_equal(fido_cred_set_rk(cred, rk), FIDO_OK);
	assert_int_equal(fido_dev_make_cred(dev, cred, NULL), expect);
	return cred;
}

static void
verify_with_cred(const fido_assert_t *a, const fido_cred_t *cred, int alg)
{
	const unsigned char *pk = fido_cred_pubkey_ptr(cred);
	size_t len = fido_cred_pubkey_len(cred);
	int r;

	if (alg == COSE_ES256) {
		es256_pk_t *k = es256_pk_new();
		assert_int_equal(es256_pk_from_ptr(k, pk, len), FIDO_OK);
		r = fido_assert_verify(a, 0, alg, k);
		es256_pk_free(&k);
	} else if (alg == COSE_EDDSA) {
		eddsa_pk_t *k = eddsa_pk_new();
		assert_int_equal(eddsa_pk_from_ptr(k, pk, len), FIDO_OK);
		r = fido_assert_verify(a, 0, alg, k);
		eddsa_pk_free(&k);
	} else {
		rs256_pk_t *k = rs256_pk_new();
		assert_int_equal(rs256_pk_from_ptr(k, pk, len), FIDO_OK);
		r = fido_assert_verify(a, 0, alg, k);
		rs256_pk_free(&k);
	}
	assert_int_equal(r, FIDO_OK);
}

static void
test_softdev_info(void **state)
{
	struct dfx *fx = *state;

	assert_true(fido_dev_is_fido2(fx->dev));
	assert_true(fido_dev_has_uv(fx->dev));
	assert_false(fido_dev_has_pin(fx->dev));
}

static void
test_softdev_make_cred_and_assert(void **state)
{
	struct dfx *fx = *state;
	static const int algs[] = {COSE_ES256, COSE_EDDSA, COSE_RS256};

	for (size_t i = 0; i < 3; i++) {
		fido_cred_t *cred = make_cred(fx->dev, algs[i], FIDO_OPT_OMIT, FIDO_OK);
		fido_assert_t *a = fido_assert_new();
		uint8_t cdh[32];

		/* packed self attestation, checked by libfido2 */
		assert_string_equal(fido_cred_fmt(cred), "packed");
		assert_int_equal(fido_cred_verify_self(cred), FIDO_OK);
		assert_true(fido_cred_flags(cred) & 0x04); /* UV */

		cdh_of("login challenge", cdh);
		assert_int_equal(fido_assert_set_rp(a, PAM_RP), FIDO_OK);
		assert_int_equal(fido_assert_set_clientdata_hash(a, cdh, 32), FIDO_OK);
		assert_int_equal(fido_assert_allow_cred(a, fido_cred_id_ptr(cred), fido_cred_id_len(cred)),
		                 FIDO_OK);
		assert_int_equal(fido_assert_set_uv(a, FIDO_OPT_TRUE), FIDO_OK);
		assert_int_equal(fido_dev_get_assert(fx->dev, a, NULL), FIDO_OK);
		assert_int_equal(fido_assert_count(a), 1);
		assert_int_equal(fido_assert_flags(a, 0) & 0x05, 0x05); /* UP | UV */
		assert_int_equal(fido_assert_sigcount(a, 0), 1);
		verify_with_cred(a, cred, algs[i]);
		fido_assert_free(&a);
		fido_cred_free(&cred);
	}
	assert_int_equal(softdev_count(fx->sd), 3);
}

static void
test_softdev_discoverable(void **state)
{
	struct dfx *fx = *state;
	fido_cred_t *c1 = make_cred(fx->dev, COSE_ES256, FIDO_OPT_TRUE, FIDO_OK);
	fido_cred_t *c2 = make_cred(fx->dev, COSE_EDDSA, FIDO_OPT_TRUE, FIDO_OK);
	fido_assert_t *a = fido_assert_new();
	uint8_t cdh[32];

	cdh_of("discoverable", cdh);
	assert_int_equal(fido_assert_set_rp(a, PAM_RP), FIDO_OK);
	assert_int_equal(fido_assert_set_clientdata_hash(a, cdh, 32), FIDO_OK);
	assert_int_equal(fido_dev_get_assert(fx->dev, a, NULL), FIDO_OK);
	assert_int_equal(fido_assert_count(a), 2); /* getNextAssertion */
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(fido_assert_user_id_len(a, i), strlen(STAFF));
		assert_memory_equal(fido_assert_user_id_ptr(a, i), STAFF, strlen(STAFF));
	}
	fido_assert_free(&a);
	fido_cred_free(&c1);
	fido_cred_free(&c2);
}

static void
test_softdev_errors(void **state)
{
	struct dfx *fx = *state;
	fido_cred_t *cred = make_cred(fx->dev, COSE_ES256, FIDO_OPT_OMIT, FIDO_OK);
	fido_cred_t *again;
	fido_assert_t *a = fido_assert_new();
	uint8_t cdh[32], other_id[32];

	cdh_of("x", cdh);
	memset(other_id, 7, sizeof other_id);
	assert_int_equal(fido_assert_set_rp(a, PAM_RP), FIDO_OK);
	assert_int_equal(fido_assert_set_clientdata_hash(a, cdh, 32), FIDO_OK);
	assert_int_equal(fido_assert_allow_cred(a, other_id, sizeof other_id), FIDO_OK);
	assert_int_equal(fido_dev_get_assert(fx->dev, a, NULL), FIDO_ERR_NO_CREDENTIALS);
	fido_assert_free(&a);

	a = fido_assert_new();
	assert_int_equal(fido_assert_set_rp(a, PAM_RP), FIDO_OK);
	assert_int_equal(fido_assert_set_clientdata_hash(a, cdh, 32), FIDO_OK);
	assert_int_equal(fido_assert_allow_cred(a, fido_cred_id_ptr(cred), fido_cred_id_len(cred)), FIDO_OK);
	softdev_set_presence(fx->sd, 0);
	assert_int_equal(fido_dev_get_assert(fx->dev, a, NULL), FIDO_ERR_USER_ACTION_TIMEOUT);
	softdev_set_presence(fx->sd, 1);
	assert_int_equal(fido_dev_get_assert(fx->dev, a, NULL), FIDO_OK);
	fido_assert_free(&a);

	/* excludeList */
	again = fido_cred_new();
	assert_int_equal(fido_cred_set_type(again, COSE_ES256), FIDO_OK);
	assert_int_equal(fido_cred_set_clientdata_hash(again, cdh, 32), FIDO_OK);
	assert_int_equal(fido_cred_set_rp(again, PAM_RP, NULL), FIDO_OK);
	assert_int_equal(
	    fido_cred_set_user(again, (const unsigned char *)STAFF, strlen(STAFF), NULL, NULL, NULL),
	    FIDO_OK);
	assert_int_equal(fido_cred_exclude(again, fido_cred_id_ptr(cred), fido_cred_id_len(cred)), FIDO_OK);
	assert_int_equal(fido_dev_make_cred(fx->dev, again, NULL), FIDO_ERR_CREDENTIAL_EXCLUDED);
	fido_cred_free(&again);
	fido_cred_free(&cred);
}

static void
test_softdev_no_uv(void **state)
{
	struct softdev *sd = softdev_new();
	fido_dev_t *dev = fido_dev_new();
	fido_cred_t *cred;

	(void)state;
	softdev_set_uv(sd, 0);
	assert_int_equal(fido_dev_set_io_functions(dev, softdev_io()), FIDO_OK);
	assert_int_equal(fido_dev_open(dev, softdev_path(sd)), FIDO_OK);
	assert_false(fido_dev_has_uv(dev));
	cred = make_cred(dev, COSE_ES256, FIDO_OPT_OMIT, FIDO_ERR_UNSUPPORTED_OPTION);
	fido_cred_free(&cred);
	fido_dev_close(dev);
	fido_dev_free(&dev);
	softdev_free(&sd);
}

static void
test_softdev_transport_path(void **state)
{
	/* Discovery style: a fido_dev_info_t entry carrying io + transport. */
	struct softdev *sd = softdev_new();
	fido_dev_info_t *list = fido_dev_info_new(1);
	fido_dev_t *dev;
	fido_cred_t *cred;

	(void)state;
	assert_int_equal(softdev_info_set(sd, list, 0), 0);
	assert_string_equal(fido_dev_info_path(fido_dev_info_ptr(list, 0)), softdev_path(sd));
	assert_non_null(dev = fido_dev_new_with_info(fido_dev_info_ptr(list, 0)));
	assert_int_equal(fido_dev_open_with_info(dev), FIDO_OK);
	assert_true(fido_dev_is_fido2(dev));
	cred = make_cred(dev, COSE_RS256, FIDO_OPT_OMIT, FIDO_OK);
	assert_int_equal(fido_cred_verify_self(cred), FIDO_OK);
	fido_cred_free(&cred);
	fido_dev_close(dev);
	fido_dev_free(&dev);
	fido_dev_info_free(&list, 1);
	softdev_free(&sd);
}

/* pam_authd's flow: clientDataJSON built locally, assertion from the key, verified by the plugin. */
static void
test_softdev_plugin_end_to_end(void **state)
{
	struct dfx *fx = *state;
	struct t_cred cred;
	struct authd_verify_out out;
	const char *reason = NULL;
	uint8_t chal[32], cdh[32];
	char *chal_b64, *cdj, *text;
	json_t *cd, *req;
	fido_assert_t *a = fido_assert_new();
	struct cbor_load_result res;
	cbor_item_t *ad;
	size_t id_len;
	const uint8_t *id;
	const struct t_cred *list[1] = {&cred};

	assert_int_equal(t_enroll(&cred, SOFTKEY_ES256, SOFTKEY_FMT_NONE, SOFTKEY_UP | SOFTKEY_UV,
	                          AUTHD_VERIFY_UV_REQUIRED, NULL, &reason),
	                 AUTHD_VERDICT_APPROVE);
	assert_int_equal(
	    softdev_add_key(fx->sd, cred.key, T_RP_ID, (const uint8_t *)T_SUBJECT, strlen(T_SUBJECT), 1), 0);
	t_challenge(chal);
	chal_b64 = softkey_b64url(chal, 32);
	cd = json_pack("{s:s, s:s, s:s, s:b}", "type", "webauthn.get", "challenge", chal_b64, "origin",
	               T_ORIGIN, "crossOrigin", 0);
	cdj = json_dumps(cd, JSON_COMPACT);
	cdh_of(cdj, cdh);

	id = softkey_cred_id(cred.key, &id_len);
	assert_int_equal(fido_assert_set_rp(a, T_RP_ID), FIDO_OK);
	assert_int_equal(fido_assert_set_clientdata_hash(a, cdh, 32), FIDO_OK);
	assert_int_equal(fido_assert_allow_cred(a, id, id_len), FIDO_OK);
	assert_int_equal(fido_assert_set_uv(a, FIDO_OPT_TRUE), FIDO_OK);
	assert_int_equal(fido_dev_get_assert(fx->dev, a, NULL), FIDO_OK);

	/* fido_assert_authdata_ptr is the CBOR byte string; the plugin wants the raw bytes. */
	ad = cbor_load(fido_assert_authdata_ptr(a, 0), fido_assert_authdata_len(a, 0), &res);
	assert_non_null(ad);
	assert_true(cbor_isa_bytestring(ad));
	req = json_object();
	char *s_id = softkey_b64url(fido_assert_id_ptr(a, 0), fido_assert_id_len(a, 0));
	char *s_ad = softkey_b64url(cbor_bytestring_handle(ad), cbor_bytestring_length(ad));
	char *s_cd = softkey_b64url((const uint8_t *)cdj, strlen(cdj));
	char *s_sig = softkey_b64url(fido_assert_sig_ptr(a, 0), fido_assert_sig_len(a, 0));
	char *s_uh = softkey_b64url(fido_assert_user_id_ptr(a, 0), fido_assert_user_id_len(a, 0));
	json_object_set_new(req, "credential_id", json_string(s_id));
	json_object_set_new(req, "authenticator_data", json_string(s_ad));
	json_object_set_new(req, "client_data_json", json_string(s_cd));
	json_object_set_new(req, "signature", json_string(s_sig));
	json_object_set_new(req, "user_handle", json_string(s_uh));
	text = json_dumps(req, JSON_COMPACT);

	assert_int_equal(t_verify_json(T_SUBJECT, text, chal, 32, list, 1, AUTHD_VERIFY_UV_REQUIRED, &out),
	                 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(out.amr, AUTHD_AMR_HWK | AUTHD_AMR_USER);
	free(cred.data);
	cred.data = out.updated_data;
	cred.data_len = out.updated_len;
	out.updated_data = NULL;
	/* The same assertion again: the stored counter caught up, so it is a replay. */
	assert_int_equal(t_verify_json(T_SUBJECT, text, chal, 32, list, 1, AUTHD_VERIFY_UV_REQUIRED, &out),
	                 0);
	t_expect_reject(&out, 0, "possible_cloned_authenticator");

	free(s_id);
	free(s_ad);
	free(s_cd);
	free(s_sig);
	free(s_uh);
	free(text);
	json_decref(req);
	cbor_decref(&ad);
	fido_assert_free(&a);
	free(cdj);
	free(chal_b64);
	json_decref(cd);
	softdev_free(&fx->sd); /* before the borrowed key goes */
	t_cred_free(&cred);
}

static void
test_softdev_save_load(void **state)
{
	struct dfx *fx = *state;
	fido_cred_t *cred = make_cred(fx->dev, COSE_EDDSA, FIDO_OPT_TRUE, FIDO_OK);
	char path[] = "/tmp/softdev-test-XXXXXX";
	int fd = mkstemp(path);
	struct softdev *again;
	fido_dev_t *dev = fido_dev_new();
	fido_assert_t *a = fido_assert_new();
	uint8_t cdh[32];

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(softdev_save(fx->sd, path), 0);
	assert_non_null(again = softdev_load(path));
	assert_int_equal(softdev_count(again), 1);
	/* The reloaded key still signs for the credential libfido2 made. */
	assert_int_equal(fido_dev_set_io_functions(dev, softdev_io()), FIDO_OK);
	assert_int_equal(fido_dev_open(dev, softdev_path(again)), FIDO_OK);
	cdh_of("after reload", cdh);
	assert_int_equal(fido_assert_set_rp(a, PAM_RP), FIDO_OK);
	assert_int_equal(fido_assert_set_clientdata_hash(a, cdh, 32), FIDO_OK);
	assert_int_equal(fido_dev_get_assert(dev, a, NULL), FIDO_OK);
	verify_with_cred(a, cred, COSE_EDDSA);
	assert_memory_equal(fido_assert_user_id_ptr(a, 0), STAFF, strlen(STAFF));
	fido_assert_free(&a);
	fido_dev_close(dev);
	fido_dev_free(&dev);
	softdev_free(&again);
	fido_cred_free(&cred);
	unlink(path);
}

/* Runs the plain libfido2 client under the LD_PRELOAD shim; returns its stdout (caller frees). */
static char *
run_client(const char *state_path, const char *args)
{
	const char *dir = getenv("AUTHD_BUILD_DIR");
	char cmd[8192], *out = calloc(1, 65536);
	size_t n = 0;
	FILE *p;

	assert_non_null(dir);
	assert_non_null(out);
	snprintf(
	    cmd, sizeof cmd,
	    "AUTHD_SOFTDEV_STATE='%s' LD_PRELOAD='%s/lib/libsoftdev_preload.so' "
	    "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 '%s/tests/test_fido2_preload_client' %s",
	    state_path, dir, dir, args);
	assert_non_null(p = popen(cmd, "r"));
	n = fread(out, 1, 65535, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	return out;
}

static void
test_softdev_preload_end_to_end(void **state)
{
	/* An enrolled credential on a soft key in a state file; an unmodified libfido2 program signs. */
	struct softdev *sd = softdev_new(), *after;
	struct t_cred cred;
	struct authd_verify_out out;
	const char *reason = NULL;
	char path[] = "/tmp/softdev-preload-XXXXXX", args[1024], *chal_b64, *cdh_b64, *id_b64, *cdj, *cdj_b64,
	     *text, *made;
	uint8_t chal[32], cdh[32];
	int fd = mkstemp(path);
	json_t *req, *cd;
	const struct t_cred *list[1] = {&cred};

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(t_enroll(&cred, SOFTKEY_ES256, SOFTKEY_FMT_NONE, SOFTKEY_UP | SOFTKEY_UV,
	                          AUTHD_VERIFY_UV_REQUIRED, NULL, &reason),
	                 AUTHD_VERDICT_APPROVE);
	assert_int_equal(
	    softdev_add_key(sd, cred.key, T_RP_ID, (const uint8_t *)T_SUBJECT, strlen(T_SUBJECT), 1), 0);
	assert_int_equal(softdev_save(sd, path), 0);
	softdev_free(&sd);

	t_challenge(chal);
	chal_b64 = softkey_b64url(chal, 32);
	cd = json_pack("{s:s, s:s, s:s, s:b}", "type", "webauthn.get", "challenge", chal_b64, "origin",
	               T_ORIGIN, "crossOrigin", 0);
	cdj = json_dumps(cd, JSON_COMPACT);
	cdh_of(cdj, cdh);
	cdh_b64 = softkey_b64url(cdh, 32);
	id_b64 = softkey_cred_id_b64(cred.key);
	snprintf(args, sizeof args, "assert %s %s %s", T_RP_ID, cdh_b64, id_b64);
	text = run_client(path, args);
	assert_non_null(req = json_loads(text, 0, NULL));
	cdj_b64 = softkey_b64url((const uint8_t *)cdj, strlen(cdj));
	json_object_set_new(req, "client_data_json", json_string(cdj_b64));
	free(text);
	text = json_dumps(req, JSON_COMPACT);
	assert_int_equal(t_verify_json(T_SUBJECT, text, chal, 32, list, 1, AUTHD_VERIFY_UV_REQUIRED, &out),
	                 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(out.amr, AUTHD_AMR_HWK | AUTHD_AMR_USER);
	t_verify_out_free(&out);

	/* The shim saved the counter, and a credential made through it persists. */
	made = run_client(path, "make pam://bastion c3RhZmY6Ym9i");
	assert_non_null(strstr(made, "credential_id"));
	assert_non_null(after = softdev_load(path));
	assert_int_equal(softdev_count(after), 2);
	assert_int_equal(softkey_counter(softdev_key(after, 0)), 1);
	softdev_free(&after);

	free(made);
	free(text);
	free(cdj_b64);
	json_decref(req);
	free(id_b64);
	free(cdh_b64);
	free(cdj);
	json_decref(cd);
	free(chal_b64);
	t_cred_free(&cred);
	unlink(path);
}

static int
group_setup(void **state)
{
	(void)state;
	fido_init(0);
	return t_plugin_load();
}

static int
group_teardown(void **state)
{
	(void)state;
	t_plugin_unload();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_softdev_info, dfx_setup, dfx_teardown),
	    cmocka_unit_test_setup_teardown(test_softdev_make_cred_and_assert, dfx_setup, dfx_teardown),
	    cmocka_unit_test_setup_teardown(test_softdev_discoverable, dfx_setup, dfx_teardown),
	    cmocka_unit_test_setup_teardown(test_softdev_errors, dfx_setup, dfx_teardown),
	    cmocka_unit_test(test_softdev_no_uv),
	    cmocka_unit_test(test_softdev_transport_path),
	    cmocka_unit_test_setup_teardown(test_softdev_plugin_end_to_end, dfx_setup, dfx_teardown),
	    cmocka_unit_test_setup_teardown(test_softdev_save_load, dfx_setup, dfx_teardown),
	    cmocka_unit_test(test_softdev_preload_end_to_end),
	};

	return cmocka_run_group_tests_name("fido2_softdev", tests, group_setup, group_teardown);
}
