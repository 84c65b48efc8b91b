/*
 * softkey: a software FIDO2 authenticator plus the browser around it, for
 * tests and benchmarks only (keys live in process memory, unprotected).
 *
 * It makes real credentials (P-256 / ES256, Ed25519 / EdDSA, RSA-2048 /
 * RS256 with OpenSSL), real attestationObjects (fmt "none", "packed" self
 * attestation and "packed" with an x5c certificate, encoded with libcbor)
 * and real assertions, and hands them over as a browser-fed front end
 * would: the JSON objects of DESIGN.md section 4, every binary field
 * base64url without padding, clientDataJSON serialized exactly as browsers
 * do ({"type","challenge","origin","crossOrigin"} in that order, compact).
 *
 *   struct softkey *k = softkey_new(SOFTKEY_ES256);
 *   char *reg = NULL, *asr = NULL;
 *   softkey_make_credential(k, "bank.example", "https://bank.example",
 *       reg_chal, 32, SOFTKEY_UP | SOFTKEY_UV, SOFTKEY_FMT_PACKED_SELF, NULL, &reg);
 *   // reg = {"credential_id":…,"client_data_json":…,"attestation_object":…}
 *   softkey_get_assertion(k, "bank.example", "https://bank.example",
 *       chal, 32, SOFTKEY_UP | SOFTKEY_UV, NULL, &asr);
 *   // asr = {"credential_id":…,"authenticator_data":…,"client_data_json":…,
 *   //        "signature":…}   (+ "user_handle" when opts->user_handle is set)
 *   free(reg); free(asr); softkey_free(&k);
 *
 * struct softkey_opts (NULL = a faithful browser) are the knobs the
 * mutation tests use to break exactly one thing; fields that change signed
 * bytes are applied before signing, so only the targeted check can fail.
 *
 * Counters: each assertion uses counter+1, like a hardware key, so
 * assertions must reach authd in the order they were made. For benchmarks
 * that pre-generate many assertions and verify them in any order, use
 * softkey_set_counter(k, 0) and opts->keep_counter = 1 (a counter-less
 * authenticator: signCount 0 is accepted while the stored one is 0), or
 * one key per in-flight request.
 *
 * Functions return 0 or -1. Threading: a struct softkey is used by one
 * thread at a time; different keys are independent.
 */
#ifndef AUTHD_SOFTKEY_H
#define AUTHD_SOFTKEY_H

#include <stddef.h>
#include <stdint.h>

/* COSE algorithm identifiers. */
#define SOFTKEY_ES256 (-7)
#define SOFTKEY_EDDSA (-8)
#define SOFTKEY_RS256 (-257)

/* authenticatorData flag bits (WebAuthn 6.1), for the flags arguments. */
#define SOFTKEY_UP 0x01u
#define SOFTKEY_UV 0x04u
#define SOFTKEY_BE 0x08u
#define SOFTKEY_BS 0x10u
#define SOFTKEY_AT 0x40u /* set by make_credential; clear it through opts->clear_flags */
#define SOFTKEY_ED 0x80u

enum softkey_fmt {
	SOFTKEY_FMT_NONE = 0,
	SOFTKEY_FMT_PACKED_SELF = 1,
	SOFTKEY_FMT_PACKED_X5C = 2,
};

struct softkey_opts {
	/* clientDataJSON */
	const char *type;             /* instead of webauthn.create / webauthn.get */
	int cross_origin;             /* 1: "crossOrigin":true */
	const char *client_data_json; /* verbatim replacement (then type/origin/challenge unused) */
	/* authenticatorData (signed as modified) */
	const uint8_t *rp_id_hash; /* 32 bytes instead of SHA-256(rp_id) */
	uint8_t clear_flags;       /* flag bits cleared after flags were set */
	const uint8_t *append;     /* bytes appended to authenticatorData before signing */
	size_t append_len;
	size_t truncate;  /* >0: authenticatorData cut to this length after signing */
	int keep_counter; /* assertion reuses the current counter instead of counter+1 */
	/* signature / attestation */
	int flip_sig;         /* flip one bit of the (assertion or attestation) signature */
	int att_alg;          /* packed: "alg" written in attStmt (0: the right one) */
	int x5c_ca;           /* packed x5c: certificate says CA:TRUE */
	int x5c_wrong_aaguid; /* packed x5c: certificate AAGUID extension differs */
	const uint8_t
	    *cred_id_in_auth_data; /* make_credential: credId in authData differs from credential_id */
	size_t cred_id_in_auth_data_len;
	const uint8_t *cose_key; /* make_credential: verbatim credentialPublicKey bytes */
	size_t cose_key_len;
	/* request object */
	const uint8_t *cred_id; /* credential_id sent instead of the key's */
	size_t cred_id_len;
	const uint8_t *user_handle; /* assertion user_handle (absent when NULL) */
	size_t user_handle_len;
	const uint8_t *att_obj; /* make_credential: verbatim attestationObject bytes */
	size_t att_obj_len;
};

struct softkey;

/* New credential for alg (SOFTKEY_*); NULL on failure. Free with softkey_free. */
struct softkey *softkey_new(int alg);
void softkey_free(struct softkey **k);

int softkey_alg(const struct softkey *k);
/* Credential id (32 random bytes), lent. */
const uint8_t *softkey_cred_id(const struct softkey *k, size_t *len);
/* base64url credential id; caller frees. */
char *softkey_cred_id_b64(const struct softkey *k);
/* Signature counter: the last value used. Assertions use counter+1 and store it. */
uint32_t softkey_counter(const struct softkey *k);
void softkey_set_counter(struct softkey *k, uint32_t counter);
/* AAGUID reported at registration (default: the test AAGUID "softkey-authd-01"). */
void softkey_set_aaguid(struct softkey *k, const uint8_t aaguid[16]);
/* Private key as an OpenSSL EVP_PKEY (lent), e.g. for benchmarks. */
void *softkey_evp_pkey(const struct softkey *k);

/*
 * Registration: JSON object text for enroll_fido2_finish's "fido2" member;
 * caller frees *json_out. flags are authenticatorData flags (AT is added).
 */
int softkey_make_credential(struct softkey *k, const char *rp_id, const char *origin,
                            const uint8_t *challenge, size_t challenge_len, unsigned flags,
                            enum softkey_fmt fmt, const struct softkey_opts *opts, char **json_out);

/* Assertion: JSON object text for verify's "fido2" member; caller frees *json_out. */
int softkey_get_assertion(struct softkey *k, const char *rp_id, const char *origin, const uint8_t *challenge,
                          size_t challenge_len, unsigned flags, const struct softkey_opts *opts,
                          char **json_out);

/* Raw signature over msg with the credential key (DER ECDSA / Ed25519 / PKCS#1); caller frees *sig. */
int softkey_sign(const struct softkey *k, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len);

/* COSE_Key encoding of the public key; caller frees *out. */
int softkey_cose_key(const struct softkey *k, uint8_t **out, size_t *len);

/*
 * A key as JSON text {"alg","cred_id","counter","aaguid","key_pem"} holding
 * the PRIVATE key (test data only); caller frees. softkey_import reverses it
 * (NULL on bad input); free the result with softkey_free.
 */
char *softkey_export(const struct softkey *k);
struct softkey *softkey_import(const char *json);

/* base64url without padding; caller frees. Decoding: -1 on bad input. */
char *softkey_b64url(const uint8_t *p, size_t len);
int softkey_b64url_decode(const char *s, uint8_t **out, size_t *len);

#endif
