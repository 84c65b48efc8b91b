/*
 * Internals of the FIDO2 plugin: WebAuthn parsing and checks. Not part of
 * any ABI; every function is pure (no shared state) and may be called from
 * any thread.
 *
 * Convention: functions return 0 or a negative authd_err. When the input is
 * at fault they return AUTHD_ERR_BAD_REQUEST and set *reason to one of the
 * static FIDO2_R_* strings (documented in docs/fido2.md); any other error
 * (allocation, library failure) leaves *reason untouched.
 */
#ifndef AUTHD_FIDO2_INT_H
#define AUTHD_FIDO2_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "err.h"

/* Size limits on untrusted fields (decoded bytes). */
#define FIDO2_MAX_REQUEST 65536
#define FIDO2_MAX_CRED_ID 1023
#define FIDO2_MAX_CLIENT_DATA 4096
#define FIDO2_MAX_ATT_OBJ 16384
#define FIDO2_MAX_AUTH_DATA 4096
#define FIDO2_MAX_SIG 1024
#define FIDO2_MAX_USER_HANDLE 64
#define FIDO2_MAX_X5C 4

/* authenticatorData flags (WebAuthn section 6.1). */
#define FIDO2_AD_UP 0x01u
#define FIDO2_AD_UV 0x04u
#define FIDO2_AD_BE 0x08u
#define FIDO2_AD_BS 0x10u
#define FIDO2_AD_AT 0x40u
#define FIDO2_AD_ED 0x80u

/* COSE algorithms (IANA). */
#define FIDO2_COSE_ES256 (-7)
#define FIDO2_COSE_EDDSA (-8)
#define FIDO2_COSE_RS256 (-257)

/* Reasons (stable, on the wire and in the audit log). */
#define FIDO2_R_MALFORMED_REQUEST "malformed_request"
#define FIDO2_R_BAD_CLIENT_DATA "bad_client_data"
#define FIDO2_R_WRONG_TYPE "wrong_type"
#define FIDO2_R_CHALLENGE_MISMATCH "challenge_mismatch"
#define FIDO2_R_ORIGIN_NOT_ALLOWED "origin_not_allowed"
#define FIDO2_R_CROSS_ORIGIN "cross_origin_not_allowed"
#define FIDO2_R_MALFORMED_AUTH_DATA "malformed_authenticator_data"
#define FIDO2_R_RP_ID_MISMATCH "rp_id_mismatch"
#define FIDO2_R_USER_NOT_PRESENT "user_not_present"
#define FIDO2_R_USER_NOT_VERIFIED "user_not_verified"
#define FIDO2_R_BACKUP_STATE_INVALID "backup_state_invalid"
#define FIDO2_R_BACKUP_ELIGIBILITY_CHANGED "backup_eligibility_changed"
#define FIDO2_R_UNKNOWN_CREDENTIAL "unknown_credential"
#define FIDO2_R_USER_HANDLE_MISMATCH "user_handle_mismatch"
#define FIDO2_R_BAD_SIGNATURE "bad_signature"
#define FIDO2_R_CLONED "possible_cloned_authenticator"
#define FIDO2_R_MALFORMED_ATTESTATION "malformed_attestation_object"
#define FIDO2_R_UNSUPPORTED_FMT "unsupported_attestation_format"
#define FIDO2_R_BAD_ATTESTATION "bad_attestation"
#define FIDO2_R_BAD_ATT_CERT "bad_attestation_certificate"
#define FIDO2_R_MISSING_CRED_DATA "missing_attested_credential_data"
#define FIDO2_R_CRED_ID_MISMATCH "credential_id_mismatch"
#define FIDO2_R_CRED_ID_TOO_LONG "credential_id_too_long"
#define FIDO2_R_UNSUPPORTED_ALG "unsupported_algorithm"
#define FIDO2_R_BAD_PUBLIC_KEY "bad_public_key"
#define FIDO2_R_BAD_RECORD "bad_stored_record"

#define FIDO2_REJECT(reasonp, why)                                                                           \
	do {                                                                                                 \
		*(reasonp) = (why);                                                                          \
		return AUTHD_ERR_BAD_REQUEST;                                                                \
	} while (0)

/* ---- strict CBOR (fido2_cbor.c) ---- */

struct fido2_cbor_limits {
	size_t max_depth; /* nested containers, top-level one counts as 1 */
	size_t max_items; /* data items in total, and per container */
	int allow_simple; /* booleans and null (extension outputs) */
};

/*
 * Checks that buf starts with one well-formed, definite-length CBOR item
 * within limits (no tags, floats, undefined, indefinite lengths) and sets
 * *item_len to its encoded length. Rejects with reason `why`.
 */
int fido2_cbor_check(const uint8_t *p, size_t len, const struct fido2_cbor_limits *lim, size_t *item_len,
                     const char *why, const char **reason) AUTHD_WUR;

/*
 * fido2_cbor_check, then that the item spans exactly len bytes, then loads
 * it; caller cbor_decref()s *item.
 */
int fido2_cbor_load_exact(const uint8_t *p, size_t len, const struct fido2_cbor_limits *lim,
                          cbor_item_t **item, const char *why, const char **reason) AUTHD_WUR;

/* 1 when it is a definite text string equal to s. */
int fido2_cbor_text_is(const cbor_item_t *it, const char *s);

/* Integer value of a uint/negint item into *v; -1 when not an int or out of range. */
int fido2_cbor_int(const cbor_item_t *it, int64_t *v);

/* ---- COSE keys (fido2_cose.c) ---- */

#define FIDO2_PK_MAX 259 /* RS256: n (256) || e (3) */

struct fido2_pubkey {
	int alg;                   /* FIDO2_COSE_* */
	uint8_t raw[FIDO2_PK_MAX]; /* ES256: x||y; EdDSA: 32 bytes; RS256: n||e */
	size_t raw_len;
};

/* Parses a COSE_Key (the exact bytes of one CBOR map) into *pk. */
int fido2_cose_parse(const uint8_t *p, size_t len, struct fido2_pubkey *pk, const char **reason) AUTHD_WUR;

/* OpenSSL key for pk; caller EVP_PKEY_free()s *out. */
int fido2_pubkey_to_evp(const struct fido2_pubkey *pk, EVP_PKEY **out) AUTHD_WUR;

/* libfido2 key object for pk (es256_pk_t / eddsa_pk_t / rs256_pk_t); free with fido2_pubkey_free_fido. */
int fido2_pubkey_to_fido(const struct fido2_pubkey *pk, void **out) AUTHD_WUR;
void fido2_pubkey_free_fido(int alg, void **pk);

/*
 * Verifies sig over msg with key under COSE algorithm alg (ES256: DER ECDSA
 * over SHA-256; EdDSA: Ed25519; RS256: PKCS#1 v1.5 SHA-256). Returns 0 when
 * valid, AUTHD_ERR_CRYPTO when not.
 */
int fido2_sig_verify(int alg, EVP_PKEY *key, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                     size_t sig_len) AUTHD_WUR;

/* ---- key object cache (fido2_keycache.c) ---- */

struct fido2_keycache;

/* A borrowed libfido2 key object; give it back with fido2_keycache_put. */
struct fido2_keyref {
	int alg;
	void *pk;    /* lent: es256_pk_t / eddsa_pk_t / rs256_pk_t */
	void *entry; /* internal */
};

int fido2_keycache_new(struct fido2_keycache **out, size_t slots) AUTHD_WUR;
void fido2_keycache_free(struct fido2_keycache **c);
/* Key object for pk (c may be NULL: then a private one). AUTHD_ERR_CRYPTO when pk does not load. */
int fido2_keycache_get(struct fido2_keycache *c, const struct fido2_pubkey *pk,
                       struct fido2_keyref *ref) AUTHD_WUR;
void fido2_keycache_put(struct fido2_keycache *c, struct fido2_keyref *ref);

/* ---- authenticatorData (fido2_authdata.c) ---- */

struct fido2_authdata {
	const uint8_t *rp_id_hash; /* 32 bytes, lent from the input */
	uint8_t flags;
	uint32_t sign_count;
	/* attested credential data (flags & AT) */
	uint8_t aaguid[16];
	const uint8_t *cred_id; /* lent */
	size_t cred_id_len;
	struct fido2_pubkey pk;
};

/*
 * Parses authenticatorData strictly: fixed header, attested credential data
 * when AT is set (required when attested != 0, forbidden otherwise), the
 * extensions map when ED is set, and nothing after.
 */
int fido2_authdata_parse(const uint8_t *p, size_t len, int attested, struct fido2_authdata *ad,
                         const char **reason) AUTHD_WUR;

/*
 * The checks common to registration and assertion: rpIdHash, UP, UV when
 * required, BS only with BE.
 */
int fido2_authdata_check(const struct fido2_authdata *ad, const char *rp_id, int uv_required,
                         const char **reason) AUTHD_WUR;

/* ---- clientDataJSON (fido2_clientdata.c) ---- */

int fido2_client_data_check(const uint8_t *cdj, size_t len, const char *type, const uint8_t *challenge,
                            size_t challenge_len, const char *const *origins, size_t n_origins,
                            const char **reason) AUTHD_WUR;

/* ---- attestation statements (fido2_attest.c) ---- */

enum fido2_fmt {
	FIDO2_FMT_NONE = 0,
	FIDO2_FMT_PACKED_SELF = 1,
	FIDO2_FMT_PACKED_X5C = 2,
};

/*
 * Verifies attStmt of format fmt over authData || clientDataHash for the
 * credential in ad. Sets *kind.
 */
int fido2_attest_verify(const char *fmt, size_t fmt_len, const cbor_item_t *att_stmt,
                        const uint8_t *auth_data, size_t auth_data_len, const uint8_t cdh[32],
                        const struct fido2_authdata *ad, enum fido2_fmt *kind, const char **reason) AUTHD_WUR;

/* ---- stored record (fido2_record.c) ---- */

#define FIDO2_RECORD_V1 1
#define FIDO2_REC_BE 0x01u
#define FIDO2_REC_BS 0x02u
#define FIDO2_REC_UV_INIT 0x04u

struct fido2_record {
	uint8_t flags; /* FIDO2_REC_* */
	uint8_t fmt;   /* enum fido2_fmt at registration */
	uint32_t sign_count;
	uint8_t aaguid[16];
	struct fido2_pubkey pk;
};

/* Serializes rec; caller frees *out. */
int fido2_record_encode(const struct fido2_record *rec, uint8_t **out, size_t *len) AUTHD_WUR;
int fido2_record_decode(const uint8_t *p, size_t len, struct fido2_record *rec) AUTHD_WUR;

#endif
