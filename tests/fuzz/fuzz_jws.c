/*
 * JWS parsing (token_verify) against a fixed key set: one ES256 and one
 * EdDSA key made by token_keyring_load in a temp dir at start-up.
 *
 * First byte selects the mode:
 *   0  the rest is a compact JWS, verified attached with typ checked;
 *   1  the rest is HEADER NUL PAYLOAD: the harness signs the two as given
 *      (EdDSA when bit 2 of byte 0 is set) so parsing after the
 *      signature check is reached ("@K0"/"@K1" in HEADER become the
 *      kids of the two keys, which are random per run);
 *   2  the rest is a JWS with a detached payload over fixed bytes;
 *   3  the rest is JWKS NUL JWS: an untrusted key set (authctl --jwks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fuzz.h"
#include "token.h"
#include "util.h"

static json_t *jwks;
static EVP_PKEY *priv[2]; /* 0: ES256, 1: EdDSA */
static char kid[2][128];

static void
setup_ring(const char *alg, int i)
{
	char dir[] = "/tmp/authd-fuzz-jws-XXXXXX", err[256], path[512];
	struct token_keyring *kr = NULL;
	if (mkdtemp(dir) == NULL || token_keyring_load(dir, alg, &kr, err, sizeof err) != 0)
		abort();
	json_t *j = token_jwks(kr);
	json_t *k = json_array_get(json_object_get(j, "keys"), 0);
	json_array_append(json_object_get(jwks, "keys"), k);
	snprintf(kid[i], sizeof kid[i], "%s", json_string_value(json_object_get(k, "kid")));
	json_decref(j);
	snprintf(path, sizeof path, "%s/keys/current.pem", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL || (priv[i] = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		abort();
	fclose(f);
	token_keyring_free(&kr);
	remove(path);
	snprintf(path, sizeof path, "%s/keys", dir);
	remove(path);
	remove(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	jwks = json_pack("{s:[]}", "keys");
	setup_ring("ES256", 0);
	setup_ring("EdDSA", 1);
	return 0;
}

/* Signs "h.p" raw (ES256 r||s or Ed25519) into a compact JWS; caller frees. */
static char *
sign_compact(int ed, const char *h, const char *p)
{
	size_t hl = strlen(h), pl = strlen(p);
	char *input = malloc(hl + pl + 2), *out = NULL, *sb = NULL;
	uint8_t der[128], sig[64];
	size_t dl = sizeof der;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = NULL;

	if (input == NULL || md == NULL)
		goto done;
	snprintf(input, hl + pl + 2, "%s.%s", h, p);
	if (EVP_DigestSignInit(md, NULL, ed ? NULL : EVP_sha256(), NULL, priv[ed]) != 1)
		goto done;
	if (ed) {
		size_t sl = 64;
		if (EVP_DigestSign(md, sig, &sl, (const uint8_t *)input, hl + pl + 1) != 1)
			goto done;
	} else {
		const uint8_t *q = der;
		if (EVP_DigestSign(md, der, &dl, (const uint8_t *)input, hl + pl + 1) != 1 ||
		    (es = d2i_ECDSA_SIG(NULL, &q, (long)dl)) == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
			goto done;
	}
	if ((sb = b64url_encode(sig, 64)) == NULL || (out = malloc(hl + pl + strlen(sb) + 3)) == NULL)
		goto done;
	sprintf(out, "%s.%s", input, sb);
done:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	free(input);
	free(sb);
	return out;
}

/* HEADER with "@K0"/"@K1" replaced by the kids; caller frees. */
static char *
subst_kid(const char *h)
{
	size_t n = strlen(h), cap = n * 24 + 1, o = 0;
	char *out = malloc(cap);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n;) {
		if (i + 3 <= n && h[i] == '@' && h[i + 1] == 'K' && (h[i + 2] == '0' || h[i + 2] == '1')) {
			size_t kl = strlen(kid[h[i + 2] - '0']);
			memcpy(out + o, kid[h[i + 2] - '0'], kl);
			o += kl;
			i += 3;
		} else {
			out[o++] = h[i++];
		}
	}
	out[o] = '\0';
	return out;
}

static void
check(const json_t *set, const char *jws, const void *payload, size_t plen)
{
	json_t *claims = NULL;
	char why[256];
	why[0] = '\0';
	int r = token_verify(set, jws, TOKEN_TYP, payload, plen, &claims, why, sizeof why);
	FUZZ_ASSERT(r <= 0);
	if (r == 0 && payload == NULL)
		FUZZ_ASSERT(json_is_object(claims));
	if (r != 0)
		FUZZ_ASSERT(claims == NULL);
	json_decref(claims);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t detached[] = "authd audit export bundle";
	char *s = NULL, *jws = NULL, *hb = NULL, *pb = NULL;
	json_t *set = NULL;
	json_error_t jerr;

	if (size < 1 || size > TOKEN_MAX_LEN + 64)
		return 0;
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] & 3) {
	case 0:
		fuzz_arm(data, size);
		check(jwks, s, NULL, 0);
		break;
	case 1: {
		size_t hl = strlen(s);
		const char *pay = hl + 1 < size - 1 ? s + hl + 1 : "";
		int ed = (data[0] >> 2) & 1;
		char *h = subst_kid(s);
		if (h == NULL)
			break;
		hb = b64url_encode((const uint8_t *)h, strlen(h));
		free(h);
		if (hb == NULL || (pb = b64url_encode((const uint8_t *)pay, strnlen(pay, size))) == NULL)
			break;
		if ((jws = sign_compact(ed, hb, pb)) == NULL)
			break;
		fuzz_arm(data, size);
		check(jwks, jws, NULL, 0);
		break;
	}
	case 2:
		fuzz_arm(data, size);
		check(jwks, s, detached, sizeof detached - 1);
		break;
	default: {
		size_t jl = strlen(s);
		set = json_loadb(s, jl, 0, &jerr);
		if (set == NULL || jl + 1 >= size - 1)
			break;
		fuzz_arm(data, size);
		check(set, s + jl + 1, NULL, 0);
		break;
	}
	}
	fuzz_disarm();
	json_decref(set);
	free(hb);
	free(pb);
	free(jws);
	free(s);
	return 0;
}
