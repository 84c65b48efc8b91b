/*
 * What an approval looks like on the wire: the signed token's claims
 * (DESIGN.md section 5), the challenge object handed to the backend
 * (section 4), and the check of a presented token. Thread-safe.
 */
#ifndef AUTHD_APPROVAL_H
#define AUTHD_APPROVAL_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct op_ctx;
struct store_challenge;

struct approval {
	const char *subject;
	const char *txn_id;
	uint8_t txn_hash[32];
	const json_t *reasons; /* array */
	const char *jti;
	uint32_t amr;          /* AUTHD_AMR_* bits; 0 = no step-up */
};

/* Signs the approval token. Caller frees *token. */
int approval_token(struct op_ctx *ctx, const struct approval *a, char **token) AUTHD_WUR;
/* The challenge object C of DESIGN.md section 4; caller decrefs. */
json_t *approval_challenge_json(struct op_ctx *ctx, const struct store_challenge *ch, json_t *allow);
/*
 * Checks a token authd issued: signature by a key in the ring, typ, iss,
 * aud, exp (AUTHD_ERR_EXPIRED), jti and txn present. *claims: caller decrefs.
 */
int approval_check(struct op_ctx *ctx, const char *token, json_t **claims) AUTHD_WUR;

#endif
