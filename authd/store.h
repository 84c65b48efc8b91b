/*
 * The store: everything authd remembers (challenges, idempotent decisions,
 * approvals and daily totals, devices, frozen accounts, lockouts, redeemed
 * token ids, credentials and templates, the audit chain).
 *
 * Writes go through store_write(): the function runs on the store's single
 * writer thread inside a batch transaction together with other callers'
 * functions (one failure does not undo the others: each runs in its own
 * savepoint, or see STORE_WORK_RERUN), and store_write() returns only after
 * the batch is durably committed (group commit, then a flush). A function
 * that returns < 0 has all of its changes rolled back. Reads that need no
 * atomicity with a write use store_read() (a per-thread read-only
 * snapshot; it returns once what it saw is durable, and fails if the flush
 * that was to cover it failed: then what the function filled in is still
 * the caller's to free).
 *
 * The generic layer (store.c: writer thread, job queue, savepoints, audit
 * chain head) dispatches to a backend chosen by [store] url: SQLite
 * (default, "sqlite:PATH" or STATE_DIR/authd.db) or PostgreSQL
 * ("postgresql://...", "postgres://..." or a libpq keyword string), where
 * several authd processes share one database. All SQL lives in the backend
 * files (store_sqlite.c, store_pg.c).
 * Threading: store_write/store_read may be called from any thread; the
 * store_tx_* functions only from inside the fn they were handed to.
 */
#ifndef AUTHD_STORE_H
#define AUTHD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

struct store;
struct store_tx;
struct audit_rec;

typedef int (*store_fn)(struct store_tx *tx, void *arg);

int store_open(const struct config *cfg, struct store **out, char *err, size_t errlen) AUTHD_WUR;
void store_close(struct store **s);
int store_write(struct store *s, store_fn fn, void *arg) AUTHD_WUR;
/*
 * Runs n functions, in order, like n store_write() calls made back to back
 * (each in its own savepoint; usually all in one batch) and returns when all
 * are durable or failed: w[i].result is what store_write() would return.
 */
struct store_work {
	store_fn fn;
	void *arg;
	int result;
	/*
	 * STORE_WORK_RERUN: fn resets its outputs when it starts, so it may be
	 * run again after its whole batch was rolled back. A batch made only of
	 * such work runs without a savepoint per job; if one of them fails, the
	 * batch is rolled back and run again with savepoints.
	 */
	unsigned flags;
};
#define STORE_WORK_RERUN 1u
void store_write_many(struct store *s, struct store_work *w, size_t n);
int store_read(struct store *s, store_fn fn, void *arg) AUTHD_WUR;
/*
 * Opens the store named by url (NULL/"" = sqlite in state_dir), for tools.
 * flags: STORE_OPEN_NO_MIGRATE leaves the schema alone (store check).
 */
#define STORE_OPEN_NO_MIGRATE 1
int store_open_url(const char *url, const char *state_dir, int flags, struct store **out, char *err,
                   size_t errlen) AUTHD_WUR;
/* The schema version the store has now (0: none) and the one this build writes. */
int store_schema_version(struct store *s, int *have, int *want) AUTHD_WUR;
/*
 * Copies every table of from (audit chain verbatim) into to, which must be
 * empty, in one transaction of to; *rows = rows copied.
 */
int store_copy(struct store *from, struct store *to, int64_t *rows, char *err, size_t errlen) AUTHD_WUR;
/* "ok" or a short description of what is wrong; static. */
const char *store_health(struct store *s);
const char *store_kind(const struct store *s);

/* ---- challenges ---- */
enum challenge_state { CHALLENGE_PENDING = 0, CHALLENGE_USED = 1, CHALLENGE_DEAD = 2 };

struct store_challenge {
	char id[64];
	char kind[16];          /* "txn" or "login" */
	char subject[160];      /* customer id or staff:<user> */
	char txn_id[136];
	uint8_t txn_hash[32];
	uint8_t challenge[32];  /* FIDO2 challenge bytes */
	int64_t created, expires;
	int state;
	int attempts;
	char *body;             /* JSON text with what approval needs; caller frees */
};

int store_challenge_put(struct store_tx *tx, const struct store_challenge *c) AUTHD_WUR;
/* Fills *c (c->body malloc'd); AUTHD_ERR_NOT_FOUND when absent. */
int store_challenge_get(struct store_tx *tx, const char *id, struct store_challenge *c) AUTHD_WUR;
/* PENDING and unexpired -> USED atomically; else AUTHD_ERR_EXPIRED. */
int store_challenge_consume(struct store_tx *tx, const char *id, int64_t now) AUTHD_WUR;
int store_challenge_attempt(struct store_tx *tx, const char *id, int kill) AUTHD_WUR;

/* ---- idempotent decisions (assess) ---- */
struct store_decision {
	uint8_t txn_hash[32];
	char result[16];
	char *reasons;          /* JSON array text; caller frees */
	char challenge_id[64];
	int64_t created;
	char account[129];      /* the transfer's account (TXN_MAX_ID + 1); "" before schema 5 */
};
int store_decision_get(struct store_tx *tx, const char *txn_id, struct store_decision *d) AUTHD_WUR;
int store_decision_put(struct store_tx *tx, const char *txn_id, const struct store_decision *d) AUTHD_WUR;

/* ---- approvals, daily totals, devices ---- */
struct store_approval {
	const char *txn_id, *customer, *currency, *device_id;
	int account_type;
	int64_t day, amount, ts;
	int device_known; /* the caller saw device_id recorded for customer in this transaction: not written again */
};
/* Idempotent per txn_id: *added = 0 when it was already counted. Records device_id as seen. */
int store_approval_add(struct store_tx *tx, const struct store_approval *a, int *added) AUTHD_WUR;
int store_total_get(struct store_tx *tx, const char *customer, int account_type, const char *currency,
                    int64_t day, int64_t *sum) AUTHD_WUR;
int store_device_seen(struct store_tx *tx, const char *customer, const char *device_id, int *seen) AUTHD_WUR;

/* What a transfer's policy reads: store_frozen_get, store_lockout_get's locked, store_device_seen and
 * store_total_get at once (SQLite: one statement; the same values and locks as the four calls). */
struct store_txn_facts {
	int account_frozen;
	int customer_locked;
	int device_seen;
	int64_t approved_today; /* customer's approved total for day, account_type and currency */
};
int store_txn_facts(struct store_tx *tx, const char *account, const char *customer, const char *device_id,
                    int account_type, const char *currency, int64_t day, struct store_txn_facts *f) AUTHD_WUR;

/* ---- frozen accounts, lockouts ---- */
int store_frozen_get(struct store_tx *tx, const char *account, int *frozen) AUTHD_WUR;
/* *changed = 0 when the account was already in that state. */
int store_frozen_set(struct store_tx *tx, const char *account, int frozen, const char *reason, int64_t now,
                     int *changed) AUTHD_WUR;
struct store_lockout {
	int failures;          /* consecutive */
	int locked;
	int64_t last_failure;
	int total_failures;    /* since the last admin unlock */
};
int store_lockout_get(struct store_tx *tx, const char *subject, struct store_lockout *l) AUTHD_WUR;
int store_lockout_put(struct store_tx *tx, const char *subject, const struct store_lockout *l) AUTHD_WUR;

/* ---- single-use tokens ---- */
/* AUTHD_ERR_CONFLICT when jti was redeemed before. */
int store_jti_redeem(struct store_tx *tx, const char *jti, int64_t exp, int64_t now) AUTHD_WUR;

/* ---- credentials and templates (opaque, encrypted by the caller) ---- */
enum cred_state { CRED_ACTIVE = 0, CRED_REVOKED = 1, CRED_DISABLED = 2 };
struct store_cred {
	char subject[160];
	char method[16];
	uint8_t id[1024];
	size_t id_len;
	uint8_t *data;          /* caller frees */
	size_t data_len;
	int64_t created;
	int state;
};
int store_cred_add(struct store_tx *tx, const struct store_cred *c) AUTHD_WUR;
/* Every credential of subject for method (method NULL: all); caller frees with store_creds_free. */
int store_cred_list(struct store_tx *tx, const char *subject, const char *method, struct store_cred **out,
                    size_t *n) AUTHD_WUR;
void store_creds_free(struct store_cred **c, size_t n);
/* Replaces data only if it still equals old (compare-and-swap); AUTHD_ERR_CONFLICT otherwise. */
int store_cred_update(struct store_tx *tx, const char *method, const uint8_t *id, size_t id_len,
                      const uint8_t *old, size_t old_len, const uint8_t *data, size_t data_len) AUTHD_WUR;
int store_cred_set_state(struct store_tx *tx, const char *subject, const char *method, const uint8_t *id,
                         size_t id_len, int state) AUTHD_WUR;
/* Deletes every record of subject+method; *n = how many. */
int store_cred_delete(struct store_tx *tx, const char *subject, const char *method, int *n) AUTHD_WUR;

/* ---- pending FIDO2 enrollments ---- */
struct store_enrollment {
	char id[64];
	char subject[160];
	uint8_t challenge[32];
	int64_t expires;
};
int store_enrollment_put(struct store_tx *tx, const struct store_enrollment *e) AUTHD_WUR;
/* Fetches and deletes in one step (single use); NOT_FOUND/EXPIRED. */
int store_enrollment_take(struct store_tx *tx, const char *id, int64_t now, struct store_enrollment *e) AUTHD_WUR;

/* ---- audit chain (see audit.h for the record) ---- */
/* Assigns seq, prev and hash, then inserts. rec is updated in place. */
int store_audit_append(struct store_tx *tx, struct audit_rec *rec) AUTHD_WUR;
typedef int (*store_audit_cb)(const struct audit_rec *rec, void *arg);
/* Calls cb for records with from <= seq (ascending), stopping when cb returns != 0. */
int store_audit_scan(struct store_tx *tx, int64_t from_seq, store_audit_cb cb, void *arg) AUTHD_WUR;

/* ---- retention of short-lived state (prune.c runs it) ---- */
/*
 * Rows nothing can use any more: challenges (every kind) and enrollments
 * that expired before expired_before, redeemed token ids whose token
 * expired before it (never the "txn:" entries: a retried assess of an
 * allowed transfer issues a fresh token, and the transfer stays single
 * use), daily totals of days before day_before. At most limit rows of each
 * kind per call; *out counts what went. Decisions, approvals, the audit
 * chain, devices, frozen accounts, lockouts and credentials are records and
 * are never pruned.
 */
struct store_prune {
	int64_t expired_before; /* unix seconds */
	int64_t day_before;     /* txn_day_vn() day */
	int64_t limit;
};
struct store_pruned {
	int64_t challenges, enrollments, redeemed, daily_totals;
};
int store_prune_expired(struct store_tx *tx, const struct store_prune *p, struct store_pruned *out) AUTHD_WUR;

/* ---- counters for stats ---- */
int store_count(struct store_tx *tx, const char *what, int64_t *n) AUTHD_WUR;

#endif
