/*
 * COSE_Key (RFC 9053) for the three algorithms authd accepts, and their
 * conversion to libfido2 and OpenSSL key objects.
 */
#include <string.h>

#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <fido/rs256.h>
#include <openssl/evp.h>

#include "fido2_int.h"

#define COSE_KTY 1
#define COSE_ALG 3
#define COSE_CRV (-1) /* EC2/OKP; RSA: n */
#define COSE_X (-2)   /* EC2/OKP; RSA: e */
#define COSE_Y (-3)

#define COSE_KTY_OKP 1
#define COSE_KTY_EC2 2
#define COSE_KTY_RSA 3
#define COSE_CRV_P256 1
#define COSE_CRV_ED25519 6

static const struct fido2_cbor_limits cose_limits = {.max_depth = 1, .max_items = 32, .allow_simple = 0};

struct cose_fields {
	int64_t kty, alg, crv;
	int have_kty, have_alg, have_crv;
	const cbor_item_t *m1, *m2, *m3; /* labels -1, -2, -3 */
};

static int
cose_collect(const cbor_item_t *map, struct cose_fields *f, const char **reason)
{
	struct cbor_pair *pairs = cbor_map_handle(map);
	size_t n = cbor_map_size(map);

	memset(f, 0, sizeof *f);
	for (size_t i = 0; i < n; i++) {
		int64_t label, v;
		if (fido2_cbor_int(pairs[i].key, &label) != 0)
			FIDO2_REJECT(reason, FIDO2_R_BAD_PUBLIC_KEY);
		/* Duplicate labels are refused: two parsers must never disagree. */
		for (size_t j = 0; j < i; j++) {
			int64_t other;
			if (fido2_cbor_int(pairs[j].key, &other) == 0 && other == label)
				FIDO2_REJECT(reason, FIDO2_R_BAD_PUBLIC_KEY);
		}
		switch (label) {
		case COSE_KTY:
		case COSE_ALG:
			if (fido2_cbor_int(pairs[i].value, &v) != 0)
				FIDO2_REJECT(reason, FIDO2_R_BAD_PUBLIC_KEY);
			if (label == COSE_KTY) {
				f->kty = v;
				f->have_kty = 1;
			} else {
				f->alg = v;
				f->have_alg = 1;
			}
			break;
		case COSE_CRV:
			f->m1 = pairs[i].value;
			if (fido2_cbor_int(pairs[i].value, &v) == 0) {
				f->crv = v;
				f->have_crv = 1;
			}
			break;
		case COSE_X:
			f->m2 = pairs[i].value;
			break;
		case COSE_Y:
			f->m3 = pairs[i].value;
			break;
		default:
			break; /* kid, key_ops, ...: not used */
		}
	}
	if (!f->have_kty || !f->have_alg)
		FIDO2_REJECT(reason, FIDO2_R_BAD_PUBLIC_KEY);
	return 0;
}

static int
bstr_exact(const cbor_item_t *it, size_t len)
{
	return it != NULL && cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it) &&
	       cbor_bytestring_length(it) == len;
}

int
fido2_cose_parse(const uint8_t *p, size_t len, struct fido2_pubkey *pk, const char **reason)
{
	cbor_item_t *map = NULL;
	struct cose_fields f;
	EVP_PKEY *evp = NULL;
	int r;

	memset(pk, 0, sizeof *pk);
	TRY(fido2_cbor_load_exact(p, len, &cose_limits, &map, FIDO2_R_BAD_PUBLIC_KEY, reason));
	if (!cbor_isa_map(map)) {
		*reason = FIDO2_R_BAD_PUBLIC_KEY;
		r = AUTHD_ERR_BAD_REQUEST;
		goto out;
	}
	if ((r = cose_collect(map, &f, reason)) != 0)
		goto out;
	r = AUTHD_ERR_BAD_REQUEST;
	*reason = FIDO2_R_BAD_PUBLIC_KEY;
	if (f.alg == FIDO2_COSE_ES256) {
		if (f.kty != COSE_KTY_EC2 || !f.have_crv || f.crv != COSE_CRV_P256 || !bstr_exact(f.m2, 32) ||
		    !bstr_exact(f.m3, 32))
			goto out;
		memcpy(pk->raw, cbor_bytestring_handle(f.m2), 32);
		memcpy(pk->raw + 32, cbor_bytestring_handle(f.m3), 32);
		pk->raw_len = 64;
	} else if (f.alg == FIDO2_COSE_EDDSA) {
		if (f.kty != COSE_KTY_OKP || !f.have_crv || f.crv != COSE_CRV_ED25519 ||
		    !bstr_exact(f.m2, 32) || f.m3 != NULL)
			goto out;
		memcpy(pk->raw, cbor_bytestring_handle(f.m2), 32);
		pk->raw_len = 32;
	} else if (f.alg == FIDO2_COSE_RS256) {
		/* libfido2's rs256_pk_t holds RSA-2048 with a 3-byte exponent. */
		if (f.kty != COSE_KTY_RSA || !bstr_exact(f.m1, 256) || !bstr_exact(f.m2, 3) || f.m3 != NULL)
			goto out;
		memcpy(pk->raw, cbor_bytestring_handle(f.m1), 256);
		memcpy(pk->raw + 256, cbor_bytestring_handle(f.m2), 3);
		pk->raw_len = 259;
	} else {
		*reason = FIDO2_R_UNSUPPORTED_ALG;
		goto out;
	}
	pk->alg = (int)f.alg;
	/* The key must load into OpenSSL (ES256: point on the curve). */
	if ((r = fido2_pubkey_to_evp(pk, &evp)) != 0) {
		if (r == AUTHD_ERR_CRYPTO) {
			*reason = FIDO2_R_BAD_PUBLIC_KEY;
			r = AUTHD_ERR_BAD_REQUEST;
		}
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(evp);
	if (map != NULL)
		cbor_decref(&map);
	return r;
}

int
fido2_pubkey_to_fido(const struct fido2_pubkey *pk, void **out)
{
	*out = NULL;
	switch (pk->alg) {
	case FIDO2_COSE_ES256: {
		es256_pk_t *k = es256_pk_new();
		if (k == NULL)
			return AUTHD_ERR_NOMEM;
		if (pk->raw_len != 64 || es256_pk_from_ptr(k, pk->raw, pk->raw_len) != FIDO_OK) {
			es256_pk_free(&k);
			return AUTHD_ERR_CRYPTO;
		}
		*out = k;
		break;
	}
	case FIDO2_COSE_EDDSA: {
		eddsa_pk_t *k = eddsa_pk_new();
		if (k == NULL)
			return AUTHD_ERR_NOMEM;
		if (pk->raw_len != 32 || eddsa_pk_from_ptr(k, pk->raw, pk->raw_len) != FIDO_OK) {
			eddsa_pk_free(&k);
			return AUTHD_ERR_CRYPTO;
		}
		*out = k;
		break;
	}
	case FIDO2_COSE_RS256: {
		rs256_pk_t *k = rs256_pk_new();
		if (k == NULL)
			return AUTHD_ERR_NOMEM;
		if (pk->raw_len != 259 || rs256_pk_from_ptr(k, pk->raw, pk->raw_len) != FIDO_OK) {
			rs256_pk_free(&k);
			return AUTHD_ERR_CRYPTO;
		}
		*out = k;
		break;
	}
	default:
		return AUTHD_ERR_CRYPTO;
	}
	return 0;
}

void
fido2_pubkey_free_fido(int alg, void **pk)
{
	if (pk == NULL || *pk == NULL)
		return;
	if (alg == FIDO2_COSE_ES256) {
		es256_pk_t *k = *pk;
		es256_pk_free(&k);
	} else if (alg == FIDO2_COSE_EDDSA) {
		eddsa_pk_t *k = *pk;
		eddsa_pk_free(&k);
	} else if (alg == FIDO2_COSE_RS256) {
		rs256_pk_t *k = *pk;
		rs256_pk_free(&k);
	}
	*pk = NULL;
}

int
fido2_pubkey_to_evp(const struct fido2_pubkey *pk, EVP_PKEY **out)
{
	void *fpk = NULL;

	*out = NULL;
	TRY(fido2_pubkey_to_fido(pk, &fpk));
	if (pk->alg == FIDO2_COSE_ES256)
		*out = es256_pk_to_EVP_PKEY(fpk);
	else if (pk->alg == FIDO2_COSE_EDDSA)
		*out = eddsa_pk_to_EVP_PKEY(fpk);
	else
		*out = rs256_pk_to_EVP_PKEY(fpk);
	fido2_pubkey_free_fido(pk->alg, &fpk);
	return *out == NULL ? AUTHD_ERR_CRYPTO : 0;
}

int
fido2_sig_verify(int alg, EVP_PKEY *key, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                 size_t sig_len)
{
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md = NULL;
	int want, r = AUTHD_ERR_CRYPTO;

	switch (alg) {
	case FIDO2_COSE_ES256:
		want = EVP_PKEY_EC, md = EVP_sha256();
		break;
	case FIDO2_COSE_EDDSA:
		want = EVP_PKEY_ED25519;
		break;
	case FIDO2_COSE_RS256:
		want = EVP_PKEY_RSA, md = EVP_sha256();
		break;
	default:
		return AUTHD_ERR_CRYPTO;
	}
	if (key == NULL || EVP_PKEY_get_base_id(key) != want)
		return AUTHD_ERR_CRYPTO;
	if (alg == FIDO2_COSE_ES256) {
		char group[32];
		if (EVP_PKEY_get_group_name(key, group, sizeof group, NULL) != 1 ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
			return AUTHD_ERR_CRYPTO;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return AUTHD_ERR_NOMEM;
	if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
	    EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1)
		r = 0;
	EVP_MD_CTX_free(ctx);
	return r;
}
