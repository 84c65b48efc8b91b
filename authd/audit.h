/*
 * The tamper-evident audit chain of DESIGN.md section 8.
 *
 * Record hash: hash = SHA-256(prev_bytes || canonical), where prev_bytes is
 * the previous record's 32-byte hash (32 zero bytes for seq 1) and
 * canonical is the record as a JSON object WITHOUT "prev" and "hash", keys
 * sorted, no whitespace, UTF-8 as is (Python: json.dumps(r, sort_keys=True,
 * separators=(",",":"), ensure_ascii=False).encode()). Text fields hold no
 * control characters (every writer validates them), so no escaping rule is
 * needed beyond \" and \\. Absent text fields are null; reasons is an array
 * of strings.
 *
 * Thread-safe (pure functions); the store serializes appends.
 */
#ifndef AUTHD_AUDIT_H
#define AUTHD_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct store;

struct audit_rec {
	int64_t seq;
	int64_t ts;
	const char *type;      /* assess, verify, redeem, enroll, freeze, ... */
	const char *customer;  /* subject; NULL when none */
	const char *account;
	const char *txn_hash;  /* hex */
	const char *result;    /* allow, step_up, deny, approved, rejected, ... */
	const char *reasons;   /* JSON array text, NULL = [] */
	json_t *reasons_json;  /* optional: the same array already parsed (saves parsing it again) */
	const char *method;    /* fido2, face, NULL */
	const char *jti;       /* token id when one was issued */
	const char *actor;     /* peer that asked: "uid:N" */
	char prev[65];         /* hex, set by the store */
	char hash[65];         /* hex, set by the store */
};

/* Computes rec->hash from prev_hex (64 hex chars) and the record's fields. */
int audit_hash(const char *prev_hex, const struct audit_rec *rec, char out_hex[65]) AUTHD_WUR;
/* The record as JSON with prev and hash (for export and display); caller decrefs. */
json_t *audit_rec_to_json(const struct audit_rec *rec);

extern const char AUDIT_GENESIS[65];

struct audit_verify_result {
	int valid;
	int64_t records;
	int64_t first_bad_seq;
	char why[128];
	char head_hash[65];
	int64_t head_seq;
};
/* Walks the whole chain in the store. */
int audit_verify_store(struct store *s, struct audit_verify_result *res) AUTHD_WUR;

/*
 * Checks one record given as JSON (from an export bundle): fields typed as
 * above, recomputes the hash from its prev. 0 when it matches.
 */
int audit_check_json(const json_t *rec, char *why, size_t whylen) AUTHD_WUR;

#endif
