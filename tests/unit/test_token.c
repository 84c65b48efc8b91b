/* JWS signing/verification, rotation, and misuse (alg, kid, typ, tampering). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "token.h"
#include "util.h"

static char dir[] = "/tmp/authd-token-XXXXXX";

static int
setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
sign_verify(const char *alg)
{
	struct token_keyring *kr = NULL;
	char err[256], why[128], sub[300], kid[64];
	char *jws = NULL, *jws2 = NULL;
	json_t *claims = json_pack("{s:s,s:i}", "sub", "C-42", "exp", 2000000000), *out = NULL;
	snprintf(sub, sizeof sub, "%s/%s", dir, alg);
	mkdir(sub, 0700);
	assert_int_equal(token_keyring_load(sub, alg, &kr, err, sizeof err), 0);
	assert_int_equal(token_sign(kr, TOKEN_TYP, claims, &jws), 0);
	json_t *jwks = token_jwks(kr);
	assert_int_equal(token_verify(jwks, jws, TOKEN_TYP, NULL, 0, &out, why, sizeof why), 0);
	assert_string_equal(json_string_value(json_object_get(out, "sub")), "C-42");
	json_decref(out);
	/* wrong typ */
	assert_int_not_equal(token_verify(jwks, jws, "other+jwt", NULL, 0, NULL, why, sizeof why), 0);
	/* flipped payload byte */
	char *dot = strchr(jws, '.'), saved = dot[3];
	dot[3] = saved == 'A' ? 'B' : 'A';
	assert_int_not_equal(token_verify(jwks, jws, TOKEN_TYP, NULL, 0, NULL, why, sizeof why), 0);
	dot[3] = saved;
	/* rotate: old still verifies with the new jwks, new one too */
	assert_int_equal(token_keyring_rotate(kr, kid, sizeof kid), 0);
	json_t *jwks2 = token_jwks(kr);
	assert_int_equal(json_array_size(json_object_get(jwks2, "keys")), 2);
	assert_int_equal(token_verify(jwks2, jws, TOKEN_TYP, NULL, 0, NULL, why, sizeof why), 0);
	assert_int_equal(token_sign(kr, TOKEN_TYP, claims, &jws2), 0);
	assert_int_equal(token_verify(jwks2, jws2, TOKEN_TYP, NULL, 0, NULL, why, sizeof why), 0);
	/* the pre-rotation set does not know the new kid */
	assert_int_not_equal(token_verify(jwks, jws2, TOKEN_TYP, NULL, 0, NULL, why, sizeof why), 0);
	assert_string_equal(why, "unknown kid");
	/* a key set naming a key by another key's kid (its thumbprint) is refused */
	json_t *swapped = json_deep_copy(jwks2), *k0 = json_array_get(json_object_get(swapped, "keys"), 0),
	       *k1 = json_array_get(json_object_get(swapped, "keys"), 1);
	json_t *kid0 = json_incref(json_object_get(k0, "kid"));
	json_object_set(k0, "kid", json_object_get(k1, "kid"));
	json_object_set_new(k1, "kid", kid0);
	assert_int_not_equal(token_verify(swapped, jws2, TOKEN_TYP, NULL, 0, NULL, why, sizeof why), 0);
	assert_string_equal(why, "kid is not the key's thumbprint");
	json_decref(swapped);
	/* key files are 0600 and refused when readable by others */
	char path[400];
	snprintf(path, sizeof path, "%s/keys/current.pem", sub);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	chmod(path, 0644);
	struct token_keyring *kr2 = NULL;
	assert_int_not_equal(token_keyring_load(sub, alg, &kr2, err, sizeof err), 0);
	assert_non_null(strstr(err, "group or others"));
	chmod(path, 0600);
	json_decref(jwks);
	json_decref(jwks2);
	json_decref(claims);
	free(jws);
	free(jws2);
	token_keyring_free(&kr);
}

static void
test_es256(void **state)
{
	sign_verify("ES256");
}

static void
test_eddsa(void **state)
{
	sign_verify("EdDSA");
}

static char *
b64(const char *s)
{
	return b64url_encode((const uint8_t *)s, strlen(s));
}

static void
test_misuse(void **state)
{
	struct token_keyring *kr = NULL;
	char err[256], why[128], sub[300], forged[2048];
	snprintf(sub, sizeof sub, "%s/misuse", dir);
	mkdir(sub, 0700);
	assert_int_equal(token_keyring_load(sub, "ES256", &kr, err, sizeof err), 0);
	json_t *jwks = token_jwks(kr);
	const char *kid = json_string_value(json_object_get(json_array_get(json_object_get(jwks, "keys"), 0), "kid"));
	char *payload = b64("{\"sub\":\"C-42\"}");
	static const char *const algs[] = {"\"none\"", "\"HS256\"", "\"EdDSA\"", "\"ES256\",\"crit\":[\"x\"]"};
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		char h[256];
		snprintf(h, sizeof h, "{\"kid\":\"%s\",\"typ\":\"authd-approval+jwt\",\"alg\":%s}", kid, algs[i]);
		char *hb = b64(h);
		snprintf(forged, sizeof forged, "%s.%s.%s", hb, payload,
		         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
		assert_int_not_equal(token_verify(jwks, forged, TOKEN_TYP, NULL, 0, NULL, why, sizeof why), 0);
		free(hb);
	}
	static const char *const garbage[] = {"", ".", "..", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.", "e30.e30.AAAA"};
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
		assert_int_not_equal(token_verify(jwks, garbage[i], NULL, NULL, 0, NULL, why, sizeof why), 0);
	/* detached signature over other bytes */
	char *sig = NULL;
	assert_int_equal(token_sign_detached(kr, "authd-audit+jws", "abc", 3, &sig), 0);
	assert_int_equal(token_verify(jwks, sig, "authd-audit+jws", "abc", 3, NULL, why, sizeof why), 0);
	assert_int_not_equal(token_verify(jwks, sig, "authd-audit+jws", "abd", 3, NULL, why, sizeof why), 0);
	free(sig);
	free(payload);
	json_decref(jwks);
	token_keyring_free(&kr);
}

/*
 * A key file of another curve or type is refused with a clear error, at
 * start and on SIGHUP: never loaded (a secp256k1 key has 32-byte
 * coordinates too, and would be published as P-256), never freed twice.
 */
static void
test_foreign_keys(void **state)
{
	static const char *const curves[] = {"secp384r1", "secp256k1", "secp521r1", NULL /* RSA */};
	for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
		char sub[300], path[400], err[256] = "";
		snprintf(sub, sizeof sub, "%s/foreign-%zu", dir, i);
		assert_int_equal(mkdir(sub, 0700), 0);
		snprintf(path, sizeof path, "%s/keys", sub);
		assert_int_equal(mkdir(path, 0700), 0);
		snprintf(path, sizeof path, "%s/keys/current.pem", sub);
		EVP_PKEY *pkey = curves[i] ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i])
		                           : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		assert_non_null(pkey);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
		fclose(f);
		EVP_PKEY_free(pkey);
		assert_int_equal(chmod(path, 0600), 0);
		struct token_keyring *kr = NULL;
		assert_int_not_equal(token_keyring_load(sub, "ES256", &kr, err, sizeof err), 0);
		assert_null(kr);
		assert_non_null(strstr(err, "unsupported key type"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_es256),
	    cmocka_unit_test(test_eddsa),
	    cmocka_unit_test(test_misuse),
	    cmocka_unit_test(test_foreign_keys),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
