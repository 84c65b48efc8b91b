/*
 * Attestation statement formats `none` and `packed` (WebAuthn sections
 * 8.2 and 8.7). Packed x5c is checked for the certificate requirements of
 * section 8.2.1 and its signature; the trust path to a vendor root is not
 * evaluated (authd asks for attestation "none"; see docs/fido2.md).
 */
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fido2_int.h"

#define FIDO_GEN_CE_AAGUID_OID "1.3.6.1.4.1.45724.1.1.4"

struct packed_stmt {
	int64_t alg;
	const cbor_item_t *sig;
	const cbor_item_t *x5c;
};

static int
packed_collect(const cbor_item_t *stmt, struct packed_stmt *ps, const char **reason)
{
	struct cbor_pair *pairs;
	int have_alg = 0;

	memset(ps, 0, sizeof *ps);
	if (!cbor_isa_map(stmt))
		FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
	pairs = cbor_map_handle(stmt);
	for (size_t i = 0; i < cbor_map_size(stmt); i++) {
		const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
		if (fido2_cbor_text_is(k, "alg") && !have_alg) {
			if (fido2_cbor_int(v, &ps->alg) != 0)
				FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
			have_alg = 1;
		} else if (fido2_cbor_text_is(k, "sig") && ps->sig == NULL) {
			if (!cbor_isa_bytestring(v) || cbor_bytestring_length(v) == 0 ||
			    cbor_bytestring_length(v) > FIDO2_MAX_SIG)
				FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
			ps->sig = v;
		} else if (fido2_cbor_text_is(k, "x5c") && ps->x5c == NULL) {
			if (!cbor_isa_array(v) || cbor_array_size(v) == 0 ||
			    cbor_array_size(v) > FIDO2_MAX_X5C)
				FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
			for (size_t j = 0; j < cbor_array_size(v); j++)
				if (!cbor_isa_bytestring(cbor_array_handle(v)[j]))
					FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
			ps->x5c = v;
		} else {
			FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION); /* unknown or duplicate key */
		}
	}
	if (!have_alg || ps->sig == NULL)
		FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
	return 0;
}

static int
subject_has(X509_NAME *name, int nid, const char *value)
{
	int idx = X509_NAME_get_index_by_NID(name, nid, -1);
	const ASN1_STRING *s;

	if (idx < 0)
		return 0;
	if (value == NULL)
		return 1;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	return s != NULL && (size_t)ASN1_STRING_length(s) == strlen(value) &&
	       memcmp(ASN1_STRING_get0_data(s), value, strlen(value)) == 0;
}

/* WebAuthn 8.2.1: packed attestation statement certificate requirements. */
static int
att_cert_check(X509 *cert, const uint8_t aaguid[16])
{
	X509_NAME *subj = X509_get_subject_name(cert);
	ASN1_OBJECT *oid = NULL;
	int idx, ok = 0;

	if (X509_get_version(cert) != X509_VERSION_3 || subj == NULL)
		return 0;
	if (!subject_has(subj, NID_countryName, NULL) || !subject_has(subj, NID_organizationName, NULL) ||
	    !subject_has(subj, NID_organizationalUnitName, "Authenticator Attestation") ||
	    !subject_has(subj, NID_commonName, NULL))
		return 0;
	/* Basic Constraints CA must be false (absent extension means false). */
	if (X509_check_ca(cert) != 0)
		return 0;
	if ((oid = OBJ_txt2obj(FIDO_GEN_CE_AAGUID_OID, 1)) == NULL)
		return 0;
	idx = X509_get_ext_by_OBJ(cert, oid, -1);
	if (idx >= 0) {
		X509_EXTENSION *ext = X509_get_ext(cert, idx);
		const ASN1_OCTET_STRING *outer = X509_EXTENSION_get_data(ext);
		const unsigned char *q;
		ASN1_OCTET_STRING *inner = NULL;
		if (X509_EXTENSION_get_critical(ext) || X509_get_ext_by_OBJ(cert, oid, idx) >= 0 ||
		    outer == NULL)
			goto out;
		q = ASN1_STRING_get0_data(outer);
		inner = d2i_ASN1_OCTET_STRING(NULL, &q, ASN1_STRING_length(outer));
		if (inner == NULL || q != ASN1_STRING_get0_data(outer) + ASN1_STRING_length(outer) ||
		    ASN1_STRING_length(inner) != 16 ||
		    memcmp(ASN1_STRING_get0_data(inner), aaguid, 16) != 0) {
			ASN1_OCTET_STRING_free(inner);
			goto out;
		}
		ASN1_OCTET_STRING_free(inner);
	}
	ok = 1;
out:
	ASN1_OBJECT_free(oid);
	return ok;
}

static int
packed_verify(const cbor_item_t *stmt, const uint8_t *msg, size_t msg_len, const struct fido2_authdata *ad,
              enum fido2_fmt *kind, const char **reason)
{
	struct packed_stmt ps;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	TRY(packed_collect(stmt, &ps, reason));
	if (ps.x5c == NULL) {
		/* Self attestation: alg is the credential's, signed by its key. */
		if (ps.alg != ad->pk.alg)
			FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
		TRY(fido2_pubkey_to_evp(&ad->pk, &key));
		*kind = FIDO2_FMT_PACKED_SELF;
	} else {
		if (ps.alg != FIDO2_COSE_ES256 && ps.alg != FIDO2_COSE_EDDSA && ps.alg != FIDO2_COSE_RS256)
			FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
		for (size_t i = 0; i < cbor_array_size(ps.x5c); i++) {
			const cbor_item_t *der = cbor_array_handle(ps.x5c)[i];
			const unsigned char *q = cbor_bytestring_handle(der);
			size_t n = cbor_bytestring_length(der);
			X509 *c = n > 0 && n <= 8192 ? d2i_X509(NULL, &q, (long)n) : NULL;
			if (c == NULL || q != cbor_bytestring_handle(der) + n) {
				X509_free(c);
				X509_free(cert);
				FIDO2_REJECT(reason, FIDO2_R_BAD_ATT_CERT);
			}
			if (i == 0)
				cert = c;
			else
				X509_free(c);
		}
		if (!att_cert_check(cert, ad->aaguid) || (key = X509_get_pubkey(cert)) == NULL) {
			X509_free(cert);
			FIDO2_REJECT(reason, FIDO2_R_BAD_ATT_CERT);
		}
		X509_free(cert);
		*kind = FIDO2_FMT_PACKED_X5C;
	}
	r = fido2_sig_verify((int)ps.alg, key, msg, msg_len, cbor_bytestring_handle(ps.sig),
	                     cbor_bytestring_length(ps.sig));
	EVP_PKEY_free(key);
	if (r == AUTHD_ERR_CRYPTO)
		FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
	return r;
}

int
fido2_attest_verify(const char *fmt, size_t fmt_len, const cbor_item_t *att_stmt, const uint8_t *auth_data,
                    size_t auth_data_len, const uint8_t cdh[32], const struct fido2_authdata *ad,
                    enum fido2_fmt *kind, const char **reason)
{
	uint8_t *msg = NULL;
	int r;

	if (fmt_len == 4 && memcmp(fmt, "none", 4) == 0) {
		if (!cbor_isa_map(att_stmt) || cbor_map_size(att_stmt) != 0)
			FIDO2_REJECT(reason, FIDO2_R_BAD_ATTESTATION);
		*kind = FIDO2_FMT_NONE;
		return 0;
	}
	if (fmt_len != 6 || memcmp(fmt, "packed", 6) != 0)
		FIDO2_REJECT(reason, FIDO2_R_UNSUPPORTED_FMT);
	if ((msg = malloc(auth_data_len + 32)) == NULL)
		return AUTHD_ERR_NOMEM;
	memcpy(msg, auth_data, auth_data_len);
	memcpy(msg + auth_data_len, cdh, 32);
	r = packed_verify(att_stmt, msg, auth_data_len + 32, ad, kind, reason);
	free(msg);
	return r;
}
