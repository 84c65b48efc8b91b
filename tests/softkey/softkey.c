/* Software FIDO2 authenticator for tests; see softkey.h. */
#include "softkey.h"
#include "softkey_int.h"

#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CRED_ID_LEN 32

struct softkey {
	int alg;
	EVP_PKEY *pkey;
	uint8_t cred_id[CRED_ID_LEN];
	uint32_t counter;
	uint8_t aaguid[16];
	int aaguid_set;
};

static const uint8_t test_aaguid[16] = {0x73, 0x6f, 0x66, 0x74, 0x6b, 0x65, 0x79, 0x2d, 0x61,
                                        0x75, 0x74, 0x68, 0x64, 0x2d, 0x30, 0x31}; /* "softkey-authd-01" */

char *
softkey_b64url(const uint8_t *p, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	int n;

	if (out == NULL)
		return NULL;
	n = EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (int i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

int
softkey_b64url_decode(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s), padded = (n + 3) / 4 * 4;
	char *tmp = malloc(padded + 1);
	uint8_t *dec = malloc(padded / 4 * 3 + 1);
	int m;

	*out = NULL;
	*len = 0;
	if (tmp == NULL || dec == NULL || n % 4 == 1)
		goto fail;
	for (size_t i = 0; i < padded; i++)
		tmp[i] = i >= n ? '=' : s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	tmp[padded] = '\0';
	if ((m = EVP_DecodeBlock(dec, (unsigned char *)tmp, (int)padded)) < 0)
		goto fail;
	free(tmp);
	*out = dec;
	*len = (size_t)m - (padded - n);
	return 0;
fail:
	free(tmp);
	free(dec);
	return -1;
}

struct softkey *
softkey_new(int alg)
{
	struct softkey *k = calloc(1, sizeof *k);

	if (k == NULL)
		return NULL;
	k->alg = alg;
	if (alg == SOFTKEY_ES256)
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (alg == SOFTKEY_EDDSA)
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else if (alg == SOFTKEY_RS256)
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (k->pkey == NULL || RAND_bytes(k->cred_id, sizeof k->cred_id) != 1) {
		softkey_free(&k);
		return NULL;
	}
	return k;
}

void
softkey_free(struct softkey **k)
{
	if (k == NULL || *k == NULL)
		return;
	EVP_PKEY_free((*k)->pkey);
	free(*k);
	*k = NULL;
}

int
softkey_alg(const struct softkey *k)
{
	return k->alg;
}

const uint8_t *
softkey_cred_id(const struct softkey *k, size_t *len)
{
	*len = sizeof k->cred_id;
	return k->cred_id;
}

char *
softkey_cred_id_b64(const struct softkey *k)
{
	return softkey_b64url(k->cred_id, sizeof k->cred_id);
}

uint32_t
softkey_counter(const struct softkey *k)
{
	return k->counter;
}

void
softkey_set_counter(struct softkey *k, uint32_t counter)
{
	k->counter = counter;
}

void
softkey_set_aaguid(struct softkey *k, const uint8_t aaguid[16])
{
	memcpy(k->aaguid, aaguid, 16);
	k->aaguid_set = 1;
}

void *
softkey_evp_pkey(const struct softkey *k)
{
	return k->pkey;
}

static int
sign_with(EVP_PKEY *pkey, int ed, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = 0;
	int r = -1;

	*sig = NULL;
	*sig_len = 0;
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, ed ? NULL : EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, msg, len) != 1 || (*sig = malloc(n)) == NULL ||
	    EVP_DigestSign(ctx, *sig, &n, msg, len) != 1)
		goto out;
	*sig_len = n;
	r = 0;
out:
	if (r != 0) {
		free(*sig);
		*sig = NULL;
	}
	EVP_MD_CTX_free(ctx);
	return r;
}

int
softkey_sign(const struct softkey *k, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len)
{
	return sign_with(k->pkey, k->alg == SOFTKEY_EDDSA, msg, len, sig, sig_len);
}

static int
bn_param(EVP_PKEY *pkey, const char *name, uint8_t *out, size_t len)
{
	BIGNUM *bn = NULL;
	int r = -1;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) == 1 && BN_bn2binpad(bn, out, (int)len) == (int)len)
		r = 0;
	BN_free(bn);
	return r;
}

static int
map_add(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
	int ok = key != NULL && value != NULL &&
	         cbor_map_add(map, (struct cbor_pair){.key = cbor_move(key), .value = cbor_move(value)});
	if (!ok) {
		/* cbor_move already released ownership on success paths only */
		return -1;
	}
	return 0;
}

/* Integer in its shortest encoding, as authenticators emit them. */
static cbor_item_t *
cbor_int(int64_t v)
{
	uint64_t u = v >= 0 ? (uint64_t)v : (uint64_t)(-1 - v);
	cbor_item_t *it;

	if (u <= 0xff)
		it = v >= 0 ? cbor_build_uint8((uint8_t)u) : cbor_build_negint8((uint8_t)u);
	else if (u <= 0xffff)
		it = v >= 0 ? cbor_build_uint16((uint16_t)u) : cbor_build_negint16((uint16_t)u);
	else if (u <= 0xffffffffu)
		it = v >= 0 ? cbor_build_uint32((uint32_t)u) : cbor_build_negint32((uint32_t)u);
	else
		it = v >= 0 ? cbor_build_uint64(u) : cbor_build_negint64(u);
	return it;
}

int
softkey_cose_key(const struct softkey *k, uint8_t **out, size_t *len)
{
	cbor_item_t *map = cbor_new_definite_map(k->alg == SOFTKEY_ES256 ? 5 : 4);
	uint8_t a[256], b[32];
	size_t cap = 0;
	int r = -1;

	*out = NULL;
	*len = 0;
	if (map == NULL)
		return -1;
	if (k->alg == SOFTKEY_ES256) {
		if (bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, a, 32) != 0 ||
		    bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, b, 32) != 0 ||
		    map_add(map, cbor_int(1), cbor_int(2)) != 0 ||
		    map_add(map, cbor_int(3), cbor_int(-7)) != 0 ||
		    map_add(map, cbor_int(-1), cbor_int(1)) != 0 ||
		    map_add(map, cbor_int(-2), cbor_build_bytestring(a, 32)) != 0 ||
		    map_add(map, cbor_int(-3), cbor_build_bytestring(b, 32)) != 0)
			goto out;
	} else if (k->alg == SOFTKEY_EDDSA) {
		size_t n = 32;
		if (EVP_PKEY_get_raw_public_key(k->pkey, a, &n) != 1 || n != 32 ||
		    map_add(map, cbor_int(1), cbor_int(1)) != 0 ||
		    map_add(map, cbor_int(3), cbor_int(-8)) != 0 ||
		    map_add(map, cbor_int(-1), cbor_int(6)) != 0 ||
		    map_add(map, cbor_int(-2), cbor_build_bytestring(a, 32)) != 0)
			goto out;
	} else {
		if (bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, a, 256) != 0 ||
		    bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, b, 3) != 0 ||
		    map_add(map, cbor_int(1), cbor_int(3)) != 0 ||
		    map_add(map, cbor_int(3), cbor_int(-257)) != 0 ||
		    map_add(map, cbor_int(-1), cbor_build_bytestring(a, 256)) != 0 ||
		    map_add(map, cbor_int(-2), cbor_build_bytestring(b, 3)) != 0)
			goto out;
	}
	if ((*len = cbor_serialize_alloc(map, out, &cap)) == 0)
		goto out;
	r = 0;
out:
	cbor_decref(&map);
	return r;
}

/* clientDataJSON as browsers serialize it (WebAuthn 5.8.1.1). */
static char *
client_data(const char *type, const uint8_t *challenge, size_t challenge_len, const char *origin,
            const struct softkey_opts *o)
{
	char *chal = softkey_b64url(challenge, challenge_len), *text = NULL;
	json_t *obj = json_object();

	if (o != NULL && o->client_data_json != NULL) {
		free(chal);
		json_decref(obj);
		return strdup(o->client_data_json);
	}
	if (chal != NULL && obj != NULL &&
	    json_object_set_new(obj, "type", json_string(o != NULL && o->type != NULL ? o->type : type)) ==
	        0 &&
	    json_object_set_new(obj, "challenge", json_string(chal)) == 0 &&
	    json_object_set_new(obj, "origin", json_string(origin)) == 0 &&
	    json_object_set_new(obj, "crossOrigin", json_boolean(o != NULL && o->cross_origin)) == 0)
		text = json_dumps(obj, JSON_COMPACT);
	free(chal);
	json_decref(obj);
	return text;
}

/* authenticatorData header + optional attested credential data, into a malloc'd buffer. */
int
softkey_auth_data(const struct softkey *k, const char *rp_id, unsigned flags, uint32_t counter, int attested,
                  const struct softkey_opts *o, uint8_t **out, size_t *len)
{
	uint8_t *cose = NULL, *p;
	size_t cose_len = 0, n;
	const uint8_t *cid = k->cred_id;
	size_t cid_len = sizeof k->cred_id;
	const uint8_t *aaguid = k->aaguid_set ? k->aaguid : test_aaguid;

	*out = NULL;
	if (attested && o != NULL && o->cose_key != NULL) {
		if ((cose = malloc(o->cose_key_len + 1)) == NULL)
			return -1;
		memcpy(cose, o->cose_key, o->cose_key_len);
		cose_len = o->cose_key_len;
	} else if (attested && softkey_cose_key(k, &cose, &cose_len) != 0)
		return -1;
	if (o != NULL && o->cred_id_in_auth_data != NULL) {
		cid = o->cred_id_in_auth_data;
		cid_len = o->cred_id_in_auth_data_len;
	}
	n = 37 + (attested ? 16 + 2 + cid_len + cose_len : 0) + (o != NULL ? o->append_len : 0);
	if ((p = malloc(n)) == NULL) {
		free(cose);
		return -1;
	}
	if (o != NULL && o->rp_id_hash != NULL)
		memcpy(p, o->rp_id_hash, 32);
	else
		EVP_Digest(rp_id, strlen(rp_id), p, NULL, EVP_sha256(), NULL);
	if (attested)
		flags |= SOFTKEY_AT;
	if (o != NULL)
		flags &= ~(unsigned)o->clear_flags;
	p[32] = (uint8_t)flags;
	p[33] = (uint8_t)(counter >> 24);
	p[34] = (uint8_t)(counter >> 16);
	p[35] = (uint8_t)(counter >> 8);
	p[36] = (uint8_t)counter;
	n = 37;
	if (attested) {
		memcpy(p + n, aaguid, 16);
		p[n + 16] = (uint8_t)(cid_len >> 8);
		p[n + 17] = (uint8_t)cid_len;
		memcpy(p + n + 18, cid, cid_len);
		memcpy(p + n + 18 + cid_len, cose, cose_len);
		n += 18 + cid_len + cose_len;
	}
	if (o != NULL && o->append_len > 0) {
		memcpy(p + n, o->append, o->append_len);
		n += o->append_len;
	}
	free(cose);
	*out = p;
	*len = n;
	return 0;
}

static int
json_put_b64(json_t *obj, const char *key, const uint8_t *p, size_t len)
{
	char *s = softkey_b64url(p, len);
	int r = s == NULL ? -1 : json_object_set_new(obj, key, json_string(s));

	free(s);
	return r;
}

static int
sha256(const void *p, size_t len, uint8_t out[32])
{
	return EVP_Digest(p, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

/* Self-signed attestation certificate per WebAuthn 8.2.1. */
static X509 *
att_cert(EVP_PKEY *key, const uint8_t aaguid[16], const struct softkey_opts *o)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509_EXTENSION *ext = NULL;
	ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.45724.1.1.4", 1);
	uint8_t id[16], *der = NULL;
	int der_len, ok = 0;

	memcpy(id, aaguid, 16);
	if (o != NULL && o->x5c_wrong_aaguid)
		id[0] ^= 0xff;
	if (x == NULL || name == NULL || inner == NULL || outer == NULL || oid == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"VN", -1, -1, 0) !=
	        1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"authd softkey", -1,
	                               -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
	                               (const unsigned char *)"Authenticator Attestation", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"softkey attestation",
	                               -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
	    X509_set_pubkey(x, key) != 1)
		goto out;
	if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
	                               o != NULL && o->x5c_ca ? "critical,CA:TRUE" : "critical,CA:FALSE")) ==
	        NULL ||
	    X509_add_ext(x, ext, -1) != 1)
		goto out;
	X509_EXTENSION_free(ext);
	ext = NULL;
	if (ASN1_OCTET_STRING_set(inner, id, 16) != 1 ||
	    (der_len = i2d_ASN1_OCTET_STRING(inner, &der)) <= 0 ||
	    ASN1_OCTET_STRING_set(outer, der, der_len) != 1 ||
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, outer)) == NULL ||
	    X509_add_ext(x, ext, -1) != 1 || X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	ok = 1;
out:
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(inner);
	ASN1_OCTET_STRING_free(outer);
	ASN1_OBJECT_free(oid);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

cbor_item_t *
softkey_att_stmt(const struct softkey *k, enum softkey_fmt fmt, const uint8_t *ad, size_t ad_len,
                 const uint8_t cdh[32], const struct softkey_opts *o)
{
	cbor_item_t *stmt = NULL, *x5c = NULL;
	EVP_PKEY *att_key = NULL;
	X509 *cert = NULL;
	uint8_t *msg = NULL, *sig = NULL, *der = NULL;
	size_t sig_len = 0;
	int der_len, alg = k->alg, ok = 0;

	if (fmt == SOFTKEY_FMT_NONE)
		return cbor_new_definite_map(0);
	if ((msg = malloc(ad_len + 32)) == NULL)
		return NULL;
	memcpy(msg, ad, ad_len);
	memcpy(msg + ad_len, cdh, 32);
	if (fmt == SOFTKEY_FMT_PACKED_SELF) {
		if (softkey_sign(k, msg, ad_len + 32, &sig, &sig_len) != 0)
			goto out;
	} else {
		alg = SOFTKEY_ES256;
		if ((att_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
		    (cert = att_cert(att_key, k->aaguid_set ? k->aaguid : test_aaguid, o)) == NULL ||
		    (der_len = i2d_X509(cert, &der)) <= 0 ||
		    sign_with(att_key, 0, msg, ad_len + 32, &sig, &sig_len) != 0)
			goto out;
		if ((x5c = cbor_new_definite_array(1)) == NULL ||
		    !cbor_array_push(x5c, cbor_move(cbor_build_bytestring(der, (size_t)der_len))))
			goto out;
	}
	if (o != NULL && o->flip_sig)
		sig[sig_len / 2] ^= 0x01;
	if (o != NULL && o->att_alg != 0)
		alg = o->att_alg;
	if ((stmt = cbor_new_definite_map(x5c != NULL ? 3 : 2)) == NULL ||
	    map_add(stmt, cbor_build_string("alg"), cbor_int(alg)) != 0 ||
	    map_add(stmt, cbor_build_string("sig"), cbor_build_bytestring(sig, sig_len)) != 0 ||
	    (x5c != NULL && map_add(stmt, cbor_build_string("x5c"), cbor_incref(x5c)) != 0))
		goto out;
	ok = 1;
out:
	if (x5c != NULL)
		cbor_decref(&x5c);
	if (!ok && stmt != NULL)
		cbor_decref(&stmt);
	OPENSSL_free(der);
	X509_free(cert);
	EVP_PKEY_free(att_key);
	free(msg);
	free(sig);
	return stmt;
}

int
softkey_make_credential(struct softkey *k, const char *rp_id, const char *origin, const uint8_t *challenge,
                        size_t challenge_len, unsigned flags, enum softkey_fmt fmt,
                        const struct softkey_opts *o, char **json_out)
{
	char *cdj = NULL;
	uint8_t *ad = NULL, *att = NULL, cdh[32];
	size_t ad_len = 0, att_len = 0, cap = 0;
	cbor_item_t *obj = NULL, *stmt = NULL;
	json_t *req = NULL;
	int r = -1;

	*json_out = NULL;
	if (k == NULL ||
	    (cdj = client_data("webauthn.create", challenge, challenge_len, origin, o)) == NULL ||
	    sha256(cdj, strlen(cdj), cdh) != 0 ||
	    softkey_auth_data(k, rp_id, flags, k->counter, 1, o, &ad, &ad_len) != 0)
		goto out;
	if ((stmt = softkey_att_stmt(k, fmt, ad, ad_len, cdh, o)) == NULL)
		goto out;
	if (o != NULL && o->truncate > 0 && o->truncate < ad_len)
		ad_len = o->truncate;
	if ((obj = cbor_new_definite_map(3)) == NULL ||
	    map_add(obj, cbor_build_string("fmt"),
	            cbor_build_string(fmt == SOFTKEY_FMT_NONE ? "none" : "packed")) != 0 ||
	    map_add(obj, cbor_build_string("attStmt"), cbor_incref(stmt)) != 0 ||
	    map_add(obj, cbor_build_string("authData"), cbor_build_bytestring(ad, ad_len)) != 0 ||
	    (att_len = cbor_serialize_alloc(obj, &att, &cap)) == 0)
		goto out;
	if ((req = json_object()) == NULL)
		goto out;
	if (o != NULL && o->cred_id != NULL) {
		if (json_put_b64(req, "credential_id", o->cred_id, o->cred_id_len) != 0)
			goto out;
	} else if (json_put_b64(req, "credential_id", k->cred_id, sizeof k->cred_id) != 0)
		goto out;
	if (json_put_b64(req, "client_data_json", (const uint8_t *)cdj, strlen(cdj)) != 0 ||
	    json_put_b64(req, "attestation_object", o != NULL && o->att_obj != NULL ? o->att_obj : att,
	                 o != NULL && o->att_obj != NULL ? o->att_obj_len : att_len) != 0 ||
	    (*json_out = json_dumps(req, JSON_COMPACT)) == NULL)
		goto out;
	r = 0;
out:
	json_decref(req);
	if (obj != NULL)
		cbor_decref(&obj);
	if (stmt != NULL)
		cbor_decref(&stmt);
	free(att);
	free(ad);
	free(cdj);
	return r;
}

int
softkey_get_assertion(struct softkey *k, const char *rp_id, const char *origin, const uint8_t *challenge,
                      size_t challenge_len, unsigned flags, const struct softkey_opts *o, char **json_out)
{
	char *cdj = NULL;
	uint8_t *ad = NULL, *msg = NULL, *sig = NULL;
	size_t ad_len = 0, sig_len = 0;
	uint32_t counter;
	json_t *req = NULL;
	int r = -1;

	*json_out = NULL;
	if (k == NULL)
		return -1;
	counter = (o != NULL && o->keep_counter) ? k->counter : k->counter + 1;
	if ((cdj = client_data("webauthn.get", challenge, challenge_len, origin, o)) == NULL ||
	    softkey_auth_data(k, rp_id, flags, counter, 0, o, &ad, &ad_len) != 0 ||
	    (msg = malloc(ad_len + 32)) == NULL)
		goto out;
	memcpy(msg, ad, ad_len);
	if (sha256(cdj, strlen(cdj), msg + ad_len) != 0 ||
	    softkey_sign(k, msg, ad_len + 32, &sig, &sig_len) != 0)
		goto out;
	k->counter = counter;
	if (o != NULL && o->flip_sig)
		sig[sig_len / 2] ^= 0x01;
	if (o != NULL && o->truncate > 0 && o->truncate < ad_len)
		ad_len = o->truncate;
	if ((req = json_object()) == NULL)
		goto out;
	if (o != NULL && o->cred_id != NULL) {
		if (json_put_b64(req, "credential_id", o->cred_id, o->cred_id_len) != 0)
			goto out;
	} else if (json_put_b64(req, "credential_id", k->cred_id, sizeof k->cred_id) != 0)
		goto out;
	if (json_put_b64(req, "authenticator_data", ad, ad_len) != 0 ||
	    json_put_b64(req, "client_data_json", (const uint8_t *)cdj, strlen(cdj)) != 0 ||
	    json_put_b64(req, "signature", sig, sig_len) != 0)
		goto out;
	if (o != NULL && o->user_handle != NULL &&
	    json_put_b64(req, "user_handle", o->user_handle, o->user_handle_len) != 0)
		goto out;
	if ((*json_out = json_dumps(req, JSON_COMPACT)) == NULL)
		goto out;
	r = 0;
out:
	json_decref(req);
	free(sig);
	free(msg);
	free(ad);
	free(cdj);
	return r;
}

char *
softkey_export(const struct softkey *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, *id = NULL, *aaguid = NULL, *text = NULL;
	long n;
	json_t *o = NULL;

	if (bio == NULL || PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (n = BIO_get_mem_data(bio, &pem)) <= 0)
		goto out;
	id = softkey_b64url(k->cred_id, sizeof k->cred_id);
	aaguid = softkey_b64url(k->aaguid_set ? k->aaguid : test_aaguid, 16);
	if (id == NULL || aaguid == NULL)
		goto out;
	o = json_pack("{s:i, s:s, s:I, s:s, s:s%}", "alg", k->alg, "cred_id", id, "counter",
	              (json_int_t)k->counter, "aaguid", aaguid, "key_pem", pem, (size_t)n);
	if (o != NULL)
		text = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	free(id);
	free(aaguid);
	BIO_free(bio);
	return text;
}

struct softkey *
softkey_import(const char *json)
{
	json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	struct softkey *k = calloc(1, sizeof *k);
	const char *id, *aaguid, *pem;
	json_int_t alg, counter;
	uint8_t *raw = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int ok = 0;

	if (o == NULL || k == NULL ||
	    json_unpack(o, "{s:I, s:s, s:I, s:s, s:s}", "alg", &alg, "cred_id", &id, "counter", &counter,
	                "aaguid", &aaguid, "key_pem", &pem) != 0)
		goto out;
	k->alg = (int)alg;
	k->counter = (uint32_t)counter;
	if (softkey_b64url_decode(id, &raw, &len) != 0 || len != sizeof k->cred_id)
		goto out;
	memcpy(k->cred_id, raw, len);
	free(raw);
	raw = NULL;
	if (softkey_b64url_decode(aaguid, &raw, &len) != 0 || len != 16)
		goto out;
	memcpy(k->aaguid, raw, 16);
	k->aaguid_set = 1;
	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		goto out;
	ok = (k->alg == SOFTKEY_ES256 && EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_EC) ||
	     (k->alg == SOFTKEY_EDDSA && EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_ED25519) ||
	     (k->alg == SOFTKEY_RS256 && EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_RSA);
out:
	free(raw);
	BIO_free(bio);
	json_decref(o);
	if (!ok)
		softkey_free(&k);
	return k;
}
