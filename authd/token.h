/*
 * Approval tokens (DESIGN.md section 5): JWS compact serialization with
 * ES256 or EdDSA over OpenSSL 3 EVP, RFC 7638 thumbprints as kid, and the
 * signing key ring (current + previous) kept in STATE_DIR/keys.
 *
 * Threading: token_sign, token_jwks and token_verify may run on any thread
 * concurrently with one another and with token_keyring_rotate/reload (a
 * read-write lock guards the ring).
 */
#ifndef AUTHD_TOKEN_H
#define AUTHD_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define TOKEN_TYP "authd-approval+jwt"
#define TOKEN_MAX_LEN 16384

struct token_keyring;

/*
 * Loads STATE_DIR/keys/{current,previous}.pem, generating the current key
 * (alg "ES256" or "EdDSA") on first start. Refuses key files readable by
 * group or others. Caller frees with token_keyring_free.
 */
int token_keyring_load(const char *state_dir, const char *alg, struct token_keyring **out, char *err,
                       size_t errlen) AUTHD_WUR;
void token_keyring_free(struct token_keyring **kr);
/* New current key (of the configured alg); the old current becomes previous. */
int token_keyring_rotate(struct token_keyring *kr, char *new_kid, size_t kidlen) AUTHD_WUR;
/*
 * The same, with commit(new kid, arg) called after the key is made and
 * before it is installed: when commit fails, neither the key files nor the
 * ring change and its error is returned. Rotations run one at a time.
 */
int token_keyring_rotate_commit(struct token_keyring *kr, int (*commit)(const char *kid, void *arg),
                                void *arg, char *new_kid, size_t kidlen) AUTHD_WUR;
/* Re-reads the key files (SIGHUP); alg applies to a key generated later. */
int token_keyring_reload(struct token_keyring *kr, const char *alg, char *err, size_t errlen) AUTHD_WUR;

/* Signs claims with the current key; header typ as given. Caller frees *jws. */
int token_sign(struct token_keyring *kr, const char *typ, const json_t *claims, char **jws) AUTHD_WUR;
/* JWS with a detached payload (RFC 7515 appendix F) over the given bytes. Caller frees *jws. */
int token_sign_detached(struct token_keyring *kr, const char *typ, const void *payload, size_t len,
                        char **jws) AUTHD_WUR;
/* {"keys":[current, previous?]}; caller decrefs. */
json_t *token_jwks(struct token_keyring *kr);
/* kid of the current key into out. */
void token_current_kid(struct token_keyring *kr, char *out, size_t outlen);

/*
 * Verifies a compact JWS against a JWKS object (as `jwks` returns):
 * alg must be ES256 or EdDSA and match the key's type, kid must name a
 * key in the set, typ must equal expect_typ when non-NULL. When payload is
 * non-NULL the JWS is detached and payload is what it signs. On success
 * *claims (caller decrefs) holds the decoded payload object (NULL for
 * detached). Claims (exp, aud, ...) are the caller's to check.
 */
/* The RFC 7638 thumbprint (base64url) of a public JWK (EC P-256 or OKP Ed25519 members); < 0 if malformed. */
int token_jwk_thumbprint(const json_t *jwk, char *out, size_t outlen) AUTHD_WUR;

int token_verify(const json_t *jwks, const char *jws, const char *expect_typ, const void *payload, size_t len,
                 json_t **claims, char *why, size_t whylen) AUTHD_WUR;

/*
 * The claim checks every consumer of an approval token makes (RFC 8725):
 * iss and aud equal the expected values, exp an integer in the future,
 * iat and nbf (when present) integers not in the future beyond leeway
 * seconds, jti a string, txn an object. AUTHD_ERR_EXPIRED when exp has
 * passed, AUTHD_ERR_TAMPERED for anything else, with why set.
 */
int token_check_claims(const json_t *claims, const char *iss, const char *aud, int64_t now, int64_t leeway,
                       char *why, size_t whylen) AUTHD_WUR;

#endif
