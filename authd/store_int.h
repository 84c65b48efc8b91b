/*
 * Between the generic store layer (store.c) and its backends
 * (store_sqlite.c, store_pg.c). Not for callers of store.h.
 *
 * store.c owns the group-commit writer thread, the job queue, the savepoint
 * per job, the per-thread read connections, the audit chain arithmetic
 * (seq, prev, hash) and the health state. A backend owns connections, SQL
 * and schema migrations, and implements each store_* operation on one
 * connection. The generic layer checks that writes happen only inside
 * store_write() before calling the backend.
 *
 * Threading: a struct store_conn is used by one thread at a time (the
 * writer thread, or the reader thread it belongs to).
 */
#ifndef AUTHD_STORE_INT_H
#define AUTHD_STORE_INT_H

#include "store.h"

struct store_conn; /* backend-defined */

struct store_tx {
	struct store *s;
	struct store_conn *c;
	int writable;
	int head_loaded; /* head_seq/head_hash read inside this batch */
	int64_t head_seq;
	char head_hash[65];
};

/* The tables copied by store_copy(), with their columns in a fixed order. */
enum store_table_id {
	ST_CHALLENGES, ST_DECISIONS, ST_APPROVALS, ST_DAILY_TOTALS, ST_DEVICES, ST_FROZEN, ST_LOCKOUTS,
	ST_REDEEMED, ST_CREDENTIALS, ST_ENROLLMENTS, ST_AUDIT, ST__COUNT
};
struct store_table_desc {
	const char *name;
	const char *cols;  /* comma-separated column names */
	const char *types; /* one letter per column: T text, I integer, B blob */
};
extern const struct store_table_desc store_tables[ST__COUNT];

#define STORE_ROW_MAX 16
struct store_val {
	int null;
	int64_t i;
	const char *s;    /* T */
	const uint8_t *b; /* B */
	size_t len;       /* B */
};
struct store_row {
	int n;
	struct store_val v[STORE_ROW_MAX];
};
typedef int (*store_row_cb)(const struct store_row *row, void *arg);

struct store_backend {
	const char *kind;
	int latest_version; /* the schema version this build migrates to */
	/* Recognises a [store] url; 1 when this backend handles it. */
	int (*accepts)(const char *url);
	/* Opens a connection (the writer when !readonly). */
	int (*conn_open)(const char *url, int readonly, struct store_conn **out, char *err, size_t errlen);
	void (*conn_close)(struct store_conn *c);
	/*
	 * Applies the missing migrations (once, under a lock shared by every
	 * process using the store); *version = resulting schema version.
	 */
	int (*migrate)(struct store_conn *c, int *version, char *err, size_t errlen);
	/* Current schema version without changing anything (0 = no schema). */
	int (*schema_version)(struct store_conn *c, int *version);
	/*
	 * Starts a transaction. A write batch is serialized against every other
	 * writer of the same store (other processes included) from here to its
	 * commit or rollback. May reconnect (with backoff).
	 */
	int (*begin)(struct store_conn *c, int writable);
	int (*commit)(struct store_conn *c);
	/*
	 * NULL when commit is durable by itself. Otherwise makes every
	 * transaction committed on the writer connection so far durable; called
	 * by the syncer thread while the writer thread goes on using c, so it
	 * may touch only state of its own. A failure is fatal for the store
	 * until it is opened again (a later flush that succeeds proves
	 * nothing: the kernel reports a writeback error once): sync is not
	 * called again, and the backend itself must from then on not copy
	 * what may not be on disk (SQLite: no more checkpoints, none at close).
	 */
	int (*sync)(struct store_conn *c);
	void (*rollback)(struct store_conn *c);
	int (*savepoint)(struct store_conn *c);
	int (*savepoint_release)(struct store_conn *c);
	int (*savepoint_rollback)(struct store_conn *c);
	/*
	 * 1 while the transaction begun on c is still open (PostgreSQL: also
	 * when a failed statement aborted it: it can still be rolled back to a
	 * savepoint). SQLite rolls the whole transaction back by itself on some
	 * errors (I/O, disk full, out of memory); after that, a SAVEPOINT would
	 * start a new transaction and its RELEASE commit it alone, so the
	 * writer fails the whole batch instead.
	 */
	int (*in_tx)(struct store_conn *c);

	int (*challenge_put)(struct store_tx *tx, const struct store_challenge *c);
	int (*challenge_get)(struct store_tx *tx, const char *id, struct store_challenge *c);
	int (*challenge_consume)(struct store_tx *tx, const char *id, int64_t now);
	int (*challenge_attempt)(struct store_tx *tx, const char *id, int kill);
	int (*decision_get)(struct store_tx *tx, const char *txn_id, struct store_decision *d);
	int (*decision_put)(struct store_tx *tx, const char *txn_id, const struct store_decision *d);
	int (*approval_add)(struct store_tx *tx, const struct store_approval *a, int *added);
	int (*total_get)(struct store_tx *tx, const char *customer, int account_type, const char *currency,
	                 int64_t day, int64_t *sum);
	int (*device_seen)(struct store_tx *tx, const char *customer, const char *device_id, int *seen);
	/* optional: store_txn_facts in one step (device_id NULL when there is none); else the four calls */
	int (*txn_facts)(struct store_tx *tx, const char *account, const char *customer, const char *device_id,
	                 int account_type, const char *currency, int64_t day, struct store_txn_facts *f);
	int (*frozen_get)(struct store_tx *tx, const char *account, int *frozen);
	int (*frozen_set)(struct store_tx *tx, const char *account, int frozen, const char *reason, int64_t now,
	                  int *changed);
	int (*lockout_get)(struct store_tx *tx, const char *subject, struct store_lockout *l);
	int (*lockout_put)(struct store_tx *tx, const char *subject, const struct store_lockout *l);
	int (*jti_redeem)(struct store_tx *tx, const char *jti, int64_t exp, int64_t now);
	int (*cred_add)(struct store_tx *tx, const struct store_cred *c);
	int (*cred_list)(struct store_tx *tx, const char *subject, const char *method, struct store_cred **out,
	                 size_t *n);
	int (*cred_update)(struct store_tx *tx, const char *method, const uint8_t *id, size_t id_len,
	                   const uint8_t *old, size_t old_len, const uint8_t *data, size_t data_len);
	int (*cred_set_state)(struct store_tx *tx, const char *subject, const char *method, const uint8_t *id,
	                      size_t id_len, int state);
	int (*cred_delete)(struct store_tx *tx, const char *subject, const char *method, int *n);
	int (*enrollment_put)(struct store_tx *tx, const struct store_enrollment *e);
	int (*enrollment_take)(struct store_tx *tx, const char *id, int64_t now, struct store_enrollment *e);
	/* The chain head as stored (seq 0 and AUDIT_GENESIS when empty). */
	int (*audit_head)(struct store_tx *tx, int64_t *seq, char hash[65]);
	int (*audit_insert)(struct store_tx *tx, const struct audit_rec *rec);
	int (*audit_scan)(struct store_tx *tx, int64_t from_seq, store_audit_cb cb, void *arg);
	int (*count)(struct store_tx *tx, const char *what, int64_t *n);
	/* store_prune_expired, after the generic checks */
	int (*prune)(struct store_tx *tx, const struct store_prune *p, struct store_pruned *out);
	/* Raw rows, for store_copy(). */
	int (*rows_scan)(struct store_tx *tx, enum store_table_id t, store_row_cb cb, void *arg);
	int (*row_insert)(struct store_tx *tx, enum store_table_id t, const struct store_row *row);
	int (*rows_count)(struct store_tx *tx, enum store_table_id t, int64_t *n);
};

extern const struct store_backend store_backend_sqlite;
extern const struct store_backend store_backend_pg;

/* Milliseconds on a monotonic clock (backoff timers). */
int64_t store_now_ms(void);

#endif
