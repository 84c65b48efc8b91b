/*
 * SQLite backend of store.h: WAL mode, one writer thread doing group
 * commit, per-thread read-only connections. All of the SQLite SQL is here.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "audit.h"
#include "util.h"

#define BATCH_MAX 512
#define SCHEMA_VERSION 1

static const char *const schema_v1[] = {
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS challenges(id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,"
	" txn_id TEXT NOT NULL, txn_hash BLOB NOT NULL, challenge BLOB NOT NULL, created INTEGER NOT NULL,"
	" expires INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL, body TEXT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS decisions(txn_id TEXT PRIMARY KEY, txn_hash BLOB NOT NULL, result TEXT NOT NULL,"
	" reasons TEXT NOT NULL, challenge_id TEXT NOT NULL, created INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS approvals(txn_id TEXT PRIMARY KEY, customer TEXT NOT NULL, account_type INTEGER"
	" NOT NULL, currency TEXT NOT NULL, day INTEGER NOT NULL, amount INTEGER NOT NULL, device_id TEXT NOT NULL,"
	" ts INTEGER NOT NULL)",
	"CREATE INDEX IF NOT EXISTS approvals_day ON approvals(customer, day, account_type, currency)",
	"CREATE TABLE IF NOT EXISTS devices(customer TEXT NOT NULL, device_id TEXT NOT NULL, first_seen INTEGER"
	" NOT NULL, PRIMARY KEY(customer, device_id))",
	"CREATE TABLE IF NOT EXISTS frozen(account TEXT PRIMARY KEY, reason TEXT NOT NULL, since INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS lockouts(subject TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked INTEGER"
	" NOT NULL, last_failure INTEGER NOT NULL, total_failures INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS redeemed(jti TEXT PRIMARY KEY, exp INTEGER NOT NULL, ts INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS credentials(method TEXT NOT NULL, id BLOB NOT NULL, subject TEXT NOT NULL,"
	" data BLOB NOT NULL, created INTEGER NOT NULL, state INTEGER NOT NULL, PRIMARY KEY(method, id))",
	"CREATE INDEX IF NOT EXISTS credentials_subject ON credentials(subject, method)",
	"CREATE TABLE IF NOT EXISTS enrollments(id TEXT PRIMARY KEY, subject TEXT NOT NULL, challenge BLOB NOT NULL,"
	" expires INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT, customer TEXT,"
	" account TEXT, txn_hash TEXT, result TEXT, reasons TEXT, method TEXT, jti TEXT, actor TEXT,"
	" prev TEXT NOT NULL, hash TEXT NOT NULL)",
};

enum stmt_id {
	S_CH_PUT, S_CH_GET, S_CH_CONSUME, S_CH_ATTEMPT, S_CH_KILL,
	S_DEC_GET, S_DEC_PUT,
	S_APPR_ADD, S_DEV_ADD, S_TOTAL, S_DEV_SEEN,
	S_FROZEN_GET, S_FROZEN_ADD, S_FROZEN_DEL,
	S_LOCK_GET, S_LOCK_PUT,
	S_JTI,
	S_CRED_ADD, S_CRED_LIST, S_CRED_LIST_ALL, S_CRED_UPDATE, S_CRED_STATE, S_CRED_DEL,
	S_ENR_PUT, S_ENR_GET, S_ENR_DEL,
	S_AUDIT_ADD, S_AUDIT_SCAN, S_AUDIT_HEAD,
	S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
	[S_CH_PUT] = "INSERT INTO challenges VALUES(?,?,?,?,?,?,?,?,?,?,?)",
	[S_CH_GET] = "SELECT kind, subject, txn_id, txn_hash, challenge, created, expires, state, attempts, body"
	             " FROM challenges WHERE id = ?",
	[S_CH_CONSUME] = "UPDATE challenges SET state = 1 WHERE id = ? AND state = 0 AND expires > ?",
	[S_CH_ATTEMPT] = "UPDATE challenges SET attempts = attempts + 1 WHERE id = ?",
	[S_CH_KILL] = "UPDATE challenges SET attempts = attempts + 1, state = 2 WHERE id = ? AND state = 0",
	[S_DEC_GET] = "SELECT txn_hash, result, reasons, challenge_id, created FROM decisions WHERE txn_id = ?",
	[S_DEC_PUT] = "INSERT OR REPLACE INTO decisions VALUES(?,?,?,?,?,?)",
	[S_APPR_ADD] = "INSERT OR IGNORE INTO approvals VALUES(?,?,?,?,?,?,?,?)",
	[S_DEV_ADD] = "INSERT OR IGNORE INTO devices VALUES(?,?,?)",
	[S_TOTAL] = "SELECT COALESCE(SUM(amount), 0) FROM approvals WHERE customer = ? AND day = ? AND"
	            " account_type = ? AND currency = ?",
	[S_DEV_SEEN] = "SELECT 1 FROM devices WHERE customer = ? AND device_id = ?",
	[S_FROZEN_GET] = "SELECT 1 FROM frozen WHERE account = ?",
	[S_FROZEN_ADD] = "INSERT OR IGNORE INTO frozen VALUES(?,?,?)",
	[S_FROZEN_DEL] = "DELETE FROM frozen WHERE account = ?",
	[S_LOCK_GET] = "SELECT failures, locked, last_failure, total_failures FROM lockouts WHERE subject = ?",
	[S_LOCK_PUT] = "INSERT OR REPLACE INTO lockouts VALUES(?,?,?,?,?)",
	[S_JTI] = "INSERT OR IGNORE INTO redeemed VALUES(?,?,?)",
	[S_CRED_ADD] = "INSERT INTO credentials VALUES(?,?,?,?,?,?)",
	[S_CRED_LIST] = "SELECT subject, method, id, data, created, state FROM credentials WHERE subject = ? AND"
	                " method = ? ORDER BY created, rowid",
	[S_CRED_LIST_ALL] = "SELECT subject, method, id, data, created, state FROM credentials WHERE subject = ?"
	                    " ORDER BY created, rowid",
	[S_CRED_UPDATE] = "UPDATE credentials SET data = ? WHERE method = ? AND id = ? AND data = ? AND state = 0",
	[S_CRED_STATE] = "UPDATE credentials SET state = ? WHERE subject = ? AND method = ? AND id = ?",
	[S_CRED_DEL] = "DELETE FROM credentials WHERE subject = ? AND method = ?",
	[S_ENR_PUT] = "INSERT INTO enrollments VALUES(?,?,?,?)",
	[S_ENR_GET] = "SELECT subject, challenge, expires FROM enrollments WHERE id = ?",
	[S_ENR_DEL] = "DELETE FROM enrollments WHERE id = ?",
	[S_AUDIT_ADD] = "INSERT INTO audit VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[S_AUDIT_SCAN] = "SELECT seq, ts, type, customer, account, txn_hash, result, reasons, method, jti, actor,"
	                 " prev, hash FROM audit WHERE seq >= ? ORDER BY seq",
	[S_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[S__COUNT];
	struct conn *next; /* every connection, for closing */
};

struct job {
	store_fn fn;
	void *arg;
	int result;
	int done;
	struct job *next;
};

struct store {
	char path[4096];
	struct conn *writer_conn;
	pthread_t writer;
	int writer_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	struct job *head, *tail;
	int stop;
	int broken; /* last commit failed */
	/* Audit chain head, owned by the writer thread. */
	int64_t head_seq;
	char head_hash[65];
	pthread_key_t reader_key;
	struct conn *all_conns;
	pthread_mutex_t conns_mu;
};

struct store_tx {
	struct store *s;
	struct conn *c;
	int writable;
	int64_t head_seq;
	char head_hash[65];
};

static int
conn_open(const char *path, int readonly, struct conn **out)
{
	struct conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return AUTHD_ERR_NOMEM;
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
	            SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
	if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(c->db, 5000);
	sqlite3_extended_result_codes(c->db, 1);
	const char *pragmas = readonly ? "PRAGMA query_only = 1;"
	                               : "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	                                 " PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";
	if (sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	*out = c;
	return 0;
fail:
	sqlite3_close(c->db);
	free(c);
	return AUTHD_ERR_UNAVAILABLE;
}

static void
conn_close(struct conn *c)
{
	for (int i = 0; i < S__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

/* Prepared statement, cached per connection; reset and unbound. */
static sqlite3_stmt *
stmt(struct store_tx *tx, enum stmt_id id)
{
	struct conn *c = tx->c;
	if (c->st[id] == NULL) {
		if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL) !=
		    SQLITE_OK)
			return NULL;
	}
	return c->st[id];
}

static void
done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : AUTHD_ERR_INTERNAL;
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) == SQLITE_OK ? 0 : AUTHD_ERR_INTERNAL;
}

static int
bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC) == SQLITE_OK ? 0 : AUTHD_ERR_INTERNAL;
}

static int
bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(st, i, v) == SQLITE_OK ? 0 : AUTHD_ERR_INTERNAL;
}

static int
map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return AUTHD_ERR_CONFLICT;
	case SQLITE_NOMEM:
		return AUTHD_ERR_NOMEM;
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
		return AUTHD_ERR_UNAVAILABLE;
	default:
		return AUTHD_ERR_INTERNAL;
	}
}

/* Runs a statement expecting no rows; *changes = rows changed when non-NULL. */
static int
exec_done(struct store_tx *tx, sqlite3_stmt *st, int *changes)
{
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_DONE ? 0 : map_rc(rc);
	if (rc == SQLITE_ROW)
		r = AUTHD_ERR_INTERNAL;
	if (changes != NULL)
		*changes = sqlite3_changes(tx->c->db);
	done(st);
	return r;
}

#define BIND(x)                        \
	do {                               \
		if ((r = (x)) < 0)             \
			goto out;                  \
	} while (0)

static int
must_write(struct store_tx *tx)
{
	return tx->writable ? 0 : AUTHD_ERR_INTERNAL;
}

static char *
col_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return strdup(t ? (const char *)t : "");
}

static void
col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int
col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t len)
{
	if ((size_t)sqlite3_column_bytes(st, i) != len)
		return AUTHD_ERR_TAMPERED;
	memcpy(dst, sqlite3_column_blob(st, i), len);
	return 0;
}

/* ---------------- challenges ---------------- */

int
store_challenge_put(struct store_tx *tx, const struct store_challenge *c)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_CH_PUT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, c->id));
	BIND(bind_text(st, 2, c->kind));
	BIND(bind_text(st, 3, c->subject));
	BIND(bind_text(st, 4, c->txn_id));
	BIND(bind_blob(st, 5, c->txn_hash, 32));
	BIND(bind_blob(st, 6, c->challenge, 32));
	BIND(bind_i64(st, 7, c->created));
	BIND(bind_i64(st, 8, c->expires));
	BIND(bind_i64(st, 9, c->state));
	BIND(bind_i64(st, 10, c->attempts));
	BIND(bind_text(st, 11, c->body ? c->body : "{}"));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

int
store_challenge_get(struct store_tx *tx, const char *id, struct store_challenge *c)
{
	sqlite3_stmt *st = stmt(tx, S_CH_GET);
	int r;
	memset(c, 0, sizeof *c);
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, id));
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? AUTHD_ERR_NOT_FOUND : map_rc(rc);
		goto out;
	}
	snprintf(c->id, sizeof c->id, "%s", id);
	col_copy(st, 0, c->kind, sizeof c->kind);
	col_copy(st, 1, c->subject, sizeof c->subject);
	col_copy(st, 2, c->txn_id, sizeof c->txn_id);
	BIND(col_blob(st, 3, c->txn_hash, 32));
	BIND(col_blob(st, 4, c->challenge, 32));
	c->created = sqlite3_column_int64(st, 5);
	c->expires = sqlite3_column_int64(st, 6);
	c->state = sqlite3_column_int(st, 7);
	c->attempts = sqlite3_column_int(st, 8);
	if ((c->body = col_strdup(st, 9)) == NULL)
		r = AUTHD_ERR_NOMEM;
out:
	done(st);
	return r;
}

int
store_challenge_consume(struct store_tx *tx, const char *id, int64_t now)
{
	sqlite3_stmt *st;
	int r, n = 0;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_CH_CONSUME)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, id));
	BIND(bind_i64(st, 2, now));
	TRY(exec_done(tx, st, &n));
	return n == 1 ? 0 : AUTHD_ERR_EXPIRED;
out:
	done(st);
	return r;
}

int
store_challenge_attempt(struct store_tx *tx, const char *id, int kill)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, kill ? S_CH_KILL : S_CH_ATTEMPT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, id));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

/* ---------------- decisions ---------------- */

int
store_decision_get(struct store_tx *tx, const char *txn_id, struct store_decision *d)
{
	sqlite3_stmt *st = stmt(tx, S_DEC_GET);
	int r;
	memset(d, 0, sizeof *d);
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, txn_id));
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? AUTHD_ERR_NOT_FOUND : map_rc(rc);
		goto out;
	}
	BIND(col_blob(st, 0, d->txn_hash, 32));
	col_copy(st, 1, d->result, sizeof d->result);
	col_copy(st, 3, d->challenge_id, sizeof d->challenge_id);
	d->created = sqlite3_column_int64(st, 4);
	r = (d->reasons = col_strdup(st, 2)) == NULL ? AUTHD_ERR_NOMEM : 0;
out:
	done(st);
	return r;
}

int
store_decision_put(struct store_tx *tx, const char *txn_id, const struct store_decision *d)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_DEC_PUT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, txn_id));
	BIND(bind_blob(st, 2, d->txn_hash, 32));
	BIND(bind_text(st, 3, d->result));
	BIND(bind_text(st, 4, d->reasons ? d->reasons : "[]"));
	BIND(bind_text(st, 5, d->challenge_id));
	BIND(bind_i64(st, 6, d->created));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

/* ---------------- approvals, totals, devices ---------------- */

int
store_approval_add(struct store_tx *tx, const struct store_approval *a, int *added)
{
	sqlite3_stmt *st;
	int r, n = 0;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_APPR_ADD)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, a->txn_id));
	BIND(bind_text(st, 2, a->customer));
	BIND(bind_i64(st, 3, a->account_type));
	BIND(bind_text(st, 4, a->currency));
	BIND(bind_i64(st, 5, a->day));
	BIND(bind_i64(st, 6, a->amount));
	BIND(bind_text(st, 7, a->device_id ? a->device_id : ""));
	BIND(bind_i64(st, 8, a->ts));
	TRY(exec_done(tx, st, &n));
	*added = n;
	if (a->device_id != NULL && a->device_id[0] != '\0') {
		if ((st = stmt(tx, S_DEV_ADD)) == NULL)
			return AUTHD_ERR_INTERNAL;
		BIND(bind_text(st, 1, a->customer));
		BIND(bind_text(st, 2, a->device_id));
		BIND(bind_i64(st, 3, a->ts));
		TRY(exec_done(tx, st, NULL));
	}
	return 0;
out:
	done(st);
	return r;
}

int
store_total_get(struct store_tx *tx, const char *customer, int account_type, const char *currency, int64_t day,
                int64_t *sum)
{
	sqlite3_stmt *st = stmt(tx, S_TOTAL);
	int r;
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, customer));
	BIND(bind_i64(st, 2, day));
	BIND(bind_i64(st, 3, account_type));
	BIND(bind_text(st, 4, currency));
	int rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? 0 : map_rc(rc) ? map_rc(rc) : AUTHD_ERR_INTERNAL;
	*sum = r == 0 ? sqlite3_column_int64(st, 0) : 0;
out:
	done(st);
	return r;
}

static int
exists(struct store_tx *tx, enum stmt_id id, const char *a, const char *b, int *found)
{
	sqlite3_stmt *st = stmt(tx, id);
	int r;
	*found = 0;
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, a));
	if (b != NULL)
		BIND(bind_text(st, 2, b));
	int rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc);
out:
	done(st);
	return r;
}

int
store_device_seen(struct store_tx *tx, const char *customer, const char *device_id, int *seen)
{
	if (device_id == NULL || device_id[0] == '\0') {
		*seen = 0;
		return 0;
	}
	return exists(tx, S_DEV_SEEN, customer, device_id, seen);
}

/* ---------------- frozen, lockouts ---------------- */

int
store_frozen_get(struct store_tx *tx, const char *account, int *frozen)
{
	return exists(tx, S_FROZEN_GET, account, NULL, frozen);
}

int
store_frozen_set(struct store_tx *tx, const char *account, int frozen, const char *reason, int64_t now,
                 int *changed)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, frozen ? S_FROZEN_ADD : S_FROZEN_DEL)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, account));
	if (frozen) {
		BIND(bind_text(st, 2, reason ? reason : ""));
		BIND(bind_i64(st, 3, now));
	}
	return exec_done(tx, st, changed);
out:
	done(st);
	return r;
}

int
store_lockout_get(struct store_tx *tx, const char *subject, struct store_lockout *l)
{
	sqlite3_stmt *st = stmt(tx, S_LOCK_GET);
	int r;
	memset(l, 0, sizeof *l);
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, subject));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		l->failures = sqlite3_column_int(st, 0);
		l->locked = sqlite3_column_int(st, 1);
		l->last_failure = sqlite3_column_int64(st, 2);
		l->total_failures = sqlite3_column_int(st, 3);
	}
	r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc);
out:
	done(st);
	return r;
}

int
store_lockout_put(struct store_tx *tx, const char *subject, const struct store_lockout *l)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_LOCK_PUT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, subject));
	BIND(bind_i64(st, 2, l->failures));
	BIND(bind_i64(st, 3, l->locked));
	BIND(bind_i64(st, 4, l->last_failure));
	BIND(bind_i64(st, 5, l->total_failures));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

/* ---------------- redeemed tokens ---------------- */

int
store_jti_redeem(struct store_tx *tx, const char *jti, int64_t exp, int64_t now)
{
	sqlite3_stmt *st;
	int r, n = 0;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_JTI)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, jti));
	BIND(bind_i64(st, 2, exp));
	BIND(bind_i64(st, 3, now));
	TRY(exec_done(tx, st, &n));
	return n == 1 ? 0 : AUTHD_ERR_CONFLICT;
out:
	done(st);
	return r;
}

/* ---------------- credentials ---------------- */

int
store_cred_add(struct store_tx *tx, const struct store_cred *c)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_CRED_ADD)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, c->method));
	BIND(bind_blob(st, 2, c->id, c->id_len));
	BIND(bind_text(st, 3, c->subject));
	BIND(bind_blob(st, 4, c->data, c->data_len));
	BIND(bind_i64(st, 5, c->created));
	BIND(bind_i64(st, 6, c->state));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

void
store_creds_free(struct store_cred **c, size_t n)
{
	if (c == NULL || *c == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		util_free_secret(&(*c)[i].data, (*c)[i].data_len);
	free(*c);
	*c = NULL;
}

int
store_cred_list(struct store_tx *tx, const char *subject, const char *method, struct store_cred **out, size_t *n)
{
	sqlite3_stmt *st = stmt(tx, method ? S_CRED_LIST : S_CRED_LIST_ALL);
	struct store_cred *v = NULL;
	size_t cnt = 0;
	int r, rc;

	*out = NULL;
	*n = 0;
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, subject));
	if (method)
		BIND(bind_text(st, 2, method));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == 256) {
			r = AUTHD_ERR_TOO_LARGE;
			goto out;
		}
		struct store_cred *nv = realloc(v, (cnt + 1) * sizeof *v);
		if (nv == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		v = nv;
		struct store_cred *c = &v[cnt];
		memset(c, 0, sizeof *c);
		col_copy(st, 0, c->subject, sizeof c->subject);
		col_copy(st, 1, c->method, sizeof c->method);
		int idl = sqlite3_column_bytes(st, 2);
		int dl = sqlite3_column_bytes(st, 3);
		if (idl < 0 || (size_t)idl > sizeof c->id || dl <= 0) {
			r = AUTHD_ERR_TAMPERED;
			goto out;
		}
		memcpy(c->id, sqlite3_column_blob(st, 2), (size_t)idl);
		c->id_len = (size_t)idl;
		if ((c->data = malloc((size_t)dl)) == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		cnt++;
		memcpy(c->data, sqlite3_column_blob(st, 3), (size_t)dl);
		c->data_len = (size_t)dl;
		c->created = sqlite3_column_int64(st, 4);
		c->state = sqlite3_column_int(st, 5);
	}
	if (rc != SQLITE_DONE) {
		r = map_rc(rc) ? map_rc(rc) : AUTHD_ERR_INTERNAL;
		goto out;
	}
	*out = v;
	*n = cnt;
	v = NULL;
	r = 0;
out:
	store_creds_free(&v, cnt);
	done(st);
	return r;
}

int
store_cred_update(struct store_tx *tx, const char *method, const uint8_t *id, size_t id_len, const uint8_t *old,
                  size_t old_len, const uint8_t *data, size_t data_len)
{
	sqlite3_stmt *st;
	int r, n = 0;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_CRED_UPDATE)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_blob(st, 1, data, data_len));
	BIND(bind_text(st, 2, method));
	BIND(bind_blob(st, 3, id, id_len));
	BIND(bind_blob(st, 4, old, old_len));
	TRY(exec_done(tx, st, &n));
	return n == 1 ? 0 : AUTHD_ERR_CONFLICT;
out:
	done(st);
	return r;
}

int
store_cred_set_state(struct store_tx *tx, const char *subject, const char *method, const uint8_t *id,
                     size_t id_len, int state)
{
	sqlite3_stmt *st;
	int r, n = 0;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_CRED_STATE)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_i64(st, 1, state));
	BIND(bind_text(st, 2, subject));
	BIND(bind_text(st, 3, method));
	BIND(bind_blob(st, 4, id, id_len));
	TRY(exec_done(tx, st, &n));
	return n == 1 ? 0 : AUTHD_ERR_NOT_FOUND;
out:
	done(st);
	return r;
}

int
store_cred_delete(struct store_tx *tx, const char *subject, const char *method, int *n)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_CRED_DEL)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, subject));
	BIND(bind_text(st, 2, method));
	return exec_done(tx, st, n);
out:
	done(st);
	return r;
}

/* ---------------- enrollments ---------------- */

int
store_enrollment_put(struct store_tx *tx, const struct store_enrollment *e)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	if ((st = stmt(tx, S_ENR_PUT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, e->id));
	BIND(bind_text(st, 2, e->subject));
	BIND(bind_blob(st, 3, e->challenge, 32));
	BIND(bind_i64(st, 4, e->expires));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

int
store_enrollment_take(struct store_tx *tx, const char *id, int64_t now, struct store_enrollment *e)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	memset(e, 0, sizeof *e);
	if ((st = stmt(tx, S_ENR_GET)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, id));
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? AUTHD_ERR_NOT_FOUND : map_rc(rc);
		goto out;
	}
	snprintf(e->id, sizeof e->id, "%s", id);
	col_copy(st, 0, e->subject, sizeof e->subject);
	BIND(col_blob(st, 1, e->challenge, 32));
	e->expires = sqlite3_column_int64(st, 2);
	done(st);
	if ((st = stmt(tx, S_ENR_DEL)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, id));
	TRY(exec_done(tx, st, NULL));
	return e->expires > now ? 0 : AUTHD_ERR_EXPIRED;
out:
	done(st);
	return r;
}

/* ---------------- audit ---------------- */

int
store_audit_append(struct store_tx *tx, struct audit_rec *rec)
{
	sqlite3_stmt *st;
	int r;
	TRY(must_write(tx));
	rec->seq = tx->head_seq + 1;
	memcpy(rec->prev, tx->head_hash, 65);
	TRY(audit_hash(rec->prev, rec, rec->hash));
	if ((st = stmt(tx, S_AUDIT_ADD)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_i64(st, 1, rec->seq));
	BIND(bind_i64(st, 2, rec->ts));
	BIND(bind_text(st, 3, rec->type));
	BIND(bind_text(st, 4, rec->customer));
	BIND(bind_text(st, 5, rec->account));
	BIND(bind_text(st, 6, rec->txn_hash));
	BIND(bind_text(st, 7, rec->result));
	BIND(bind_text(st, 8, rec->reasons ? rec->reasons : "[]"));
	BIND(bind_text(st, 9, rec->method));
	BIND(bind_text(st, 10, rec->jti));
	BIND(bind_text(st, 11, rec->actor));
	BIND(bind_text(st, 12, rec->prev));
	BIND(bind_text(st, 13, rec->hash));
	TRY(exec_done(tx, st, NULL));
	tx->head_seq = rec->seq;
	memcpy(tx->head_hash, rec->hash, 65);
	return 0;
out:
	done(st);
	return r;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

int
store_audit_scan(struct store_tx *tx, int64_t from_seq, store_audit_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt(tx, S_AUDIT_SCAN);
	int r = 0, rc;
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_i64(st, 1, from_seq));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct audit_rec rec = {
			.seq = sqlite3_column_int64(st, 0),
			.ts = sqlite3_column_int64(st, 1),
			.type = col_text(st, 2),
			.customer = col_text(st, 3),
			.account = col_text(st, 4),
			.txn_hash = col_text(st, 5),
			.result = col_text(st, 6),
			.reasons = col_text(st, 7),
			.method = col_text(st, 8),
			.jti = col_text(st, 9),
			.actor = col_text(st, 10),
		};
		col_copy(st, 11, rec.prev, sizeof rec.prev);
		col_copy(st, 12, rec.hash, sizeof rec.hash);
		if (cb(&rec, arg) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(rc) ? map_rc(rc) : AUTHD_ERR_INTERNAL;
out:
	done(st);
	return r;
}

int
store_count(struct store_tx *tx, const char *what, int64_t *n)
{
	static const char *const tables[] = {"audit", "challenges", "decisions", "approvals", "frozen",
	                                     "redeemed", "credentials", "lockouts"};
	char sql[128];
	*n = 0;
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		if (strcmp(what, tables[i]) != 0)
			continue;
		if (strcmp(what, "lockouts") == 0)
			snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM lockouts WHERE locked = 1");
		else
			snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", tables[i]);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(tx->c->db, sql, -1, &st, NULL) != SQLITE_OK)
			return AUTHD_ERR_INTERNAL;
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		return rc == SQLITE_ROW ? 0 : map_rc(rc);
	}
	return AUTHD_ERR_NOT_FOUND;
}

/* ---------------- transactions and the writer ---------------- */

static int
exec_sql(struct conn *c, const char *sql)
{
	return map_rc(sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static void
run_batch(struct store *s, struct job *batch)
{
	struct store_tx tx = {s, s->writer_conn, 1, s->head_seq, ""};
	memcpy(tx.head_hash, s->head_hash, 65);
	int r = exec_sql(s->writer_conn, "BEGIN IMMEDIATE");
	if (r < 0) {
		for (struct job *j = batch; j; j = j->next)
			j->result = AUTHD_ERR_UNAVAILABLE;
		return;
	}
	for (struct job *j = batch; j; j = j->next) {
		int64_t seq0 = tx.head_seq;
		char hash0[65];
		memcpy(hash0, tx.head_hash, 65);
		if (exec_sql(s->writer_conn, "SAVEPOINT job") < 0) {
			j->result = AUTHD_ERR_UNAVAILABLE;
			continue;
		}
		j->result = j->fn(&tx, j->arg);
		if (j->result < 0) {
			(void)exec_sql(s->writer_conn, "ROLLBACK TO job");
			tx.head_seq = seq0;
			memcpy(tx.head_hash, hash0, 65);
		}
		(void)exec_sql(s->writer_conn, "RELEASE job");
	}
	if (exec_sql(s->writer_conn, "COMMIT") < 0) {
		(void)exec_sql(s->writer_conn, "ROLLBACK");
		s->broken = 1;
		for (struct job *j = batch; j; j = j->next)
			j->result = AUTHD_ERR_UNAVAILABLE;
		return;
	}
	s->broken = 0;
	s->head_seq = tx.head_seq;
	memcpy(s->head_hash, tx.head_hash, 65);
}

static void *
writer_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->head == NULL && !s->stop)
			pthread_cond_wait(&s->cv_work, &s->mu);
		if (s->head == NULL && s->stop)
			break;
		struct job *batch = s->head, *last = batch;
		int n = 1;
		while (last->next != NULL && n < BATCH_MAX) {
			last = last->next;
			n++;
		}
		s->head = last->next;
		if (s->head == NULL)
			s->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&s->mu);
		run_batch(s, batch);
		pthread_mutex_lock(&s->mu);
		for (struct job *j = batch; j;) {
			struct job *next = j->next; /* j may vanish once done is seen */
			j->done = 1;
			j = next;
		}
		pthread_cond_broadcast(&s->cv_done);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int
store_write(struct store *s, store_fn fn, void *arg)
{
	struct job j = {fn, arg, 0, 0, NULL};
	pthread_mutex_lock(&s->mu);
	if (s->stop) {
		pthread_mutex_unlock(&s->mu);
		return AUTHD_ERR_UNAVAILABLE;
	}
	if (s->tail)
		s->tail->next = &j;
	else
		s->head = &j;
	s->tail = &j;
	pthread_cond_signal(&s->cv_work);
	while (!j.done)
		pthread_cond_wait(&s->cv_done, &s->mu);
	pthread_mutex_unlock(&s->mu);
	return j.result;
}

static struct conn *
reader_conn(struct store *s)
{
	struct conn *c = pthread_getspecific(s->reader_key);
	if (c != NULL)
		return c;
	if (conn_open(s->path, 1, &c) < 0)
		return NULL;
	pthread_mutex_lock(&s->conns_mu);
	c->next = s->all_conns;
	s->all_conns = c;
	pthread_mutex_unlock(&s->conns_mu);
	pthread_setspecific(s->reader_key, c);
	return c;
}

int
store_read(struct store *s, store_fn fn, void *arg)
{
	struct conn *c = reader_conn(s);
	if (c == NULL)
		return AUTHD_ERR_UNAVAILABLE;
	struct store_tx tx = {s, c, 0, 0, ""};
	if (exec_sql(c, "BEGIN") < 0)
		return AUTHD_ERR_UNAVAILABLE;
	int r = fn(&tx, arg);
	(void)exec_sql(c, "COMMIT");
	return r;
}

const char *
store_health(struct store *s)
{
	return s->broken ? "last commit failed" : "ok";
}

const char *
store_kind(const struct store *s)
{
	(void)s;
	return "sqlite";
}

static int
migrate(struct store *s, char *err, size_t errlen)
{
	struct conn *c = s->writer_conn;
	int r = exec_sql(c, "BEGIN IMMEDIATE");
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < sizeof schema_v1 / sizeof schema_v1[0]; i++)
		if ((r = exec_sql(c, schema_v1[i])) < 0)
			goto fail_rb;
	{
		sqlite3_stmt *st = NULL;
		int version = 0;
		if (sqlite3_prepare_v2(c->db, "SELECT v FROM meta WHERE k = 'schema_version'", -1, &st, NULL) ==
		        SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			version = atoi((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (version > SCHEMA_VERSION) {
			snprintf(err, errlen, "store schema version %d is newer than this authd (%d)", version,
			         SCHEMA_VERSION);
			r = AUTHD_ERR_CONFIG;
			goto fail_rb;
		}
		if ((r = exec_sql(c, "INSERT OR REPLACE INTO meta VALUES('schema_version', '1')")) < 0)
			goto fail_rb;
	}
	if ((r = exec_sql(c, "COMMIT")) < 0)
		goto fail;
	/* Chain head. */
	{
		struct store_tx tx = {s, c, 1, 0, ""};
		sqlite3_stmt *st = stmt(&tx, S_AUDIT_HEAD);
		if (st == NULL)
			goto fail;
		memcpy(s->head_hash, AUDIT_GENESIS, 65);
		s->head_seq = 0;
		if (sqlite3_step(st) == SQLITE_ROW) {
			s->head_seq = sqlite3_column_int64(st, 0);
			col_copy(st, 1, s->head_hash, sizeof s->head_hash);
		}
		done(st);
	}
	return 0;
fail_rb:
	(void)exec_sql(c, "ROLLBACK");
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "cannot initialise store %s: %s", s->path, sqlite3_errmsg(c->db));
	return r < 0 ? r : AUTHD_ERR_UNAVAILABLE;
}

int
store_open(const struct config *cfg, struct store **out, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof *s);
	int r;

	*out = NULL;
	err[0] = '\0';
	if (s == NULL)
		return AUTHD_ERR_NOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->conns_mu, NULL);
	pthread_cond_init(&s->cv_work, NULL);
	pthread_cond_init(&s->cv_done, NULL);
	pthread_key_create(&s->reader_key, NULL);
	const char *url = cfg->store.url;
	if (url != NULL && strncmp(url, "sqlite:", 7) == 0)
		snprintf(s->path, sizeof s->path, "%s", url + 7);
	else if (url != NULL) {
		snprintf(err, errlen, "[store] url: unsupported store '%s' (this build knows sqlite:PATH)", url);
		r = AUTHD_ERR_CONFIG;
		goto fail;
	} else if (snprintf(s->path, sizeof s->path, "%s/authd.db", cfg->server.state_dir) >= (int)sizeof s->path) {
		r = AUTHD_ERR_CONFIG;
		goto fail;
	}
	mode_t old = umask(077);
	r = conn_open(s->path, 0, &s->writer_conn);
	umask(old);
	if (r < 0) {
		snprintf(err, errlen, "cannot open store %s", s->path);
		goto fail;
	}
	if ((r = migrate(s, err, errlen)) < 0)
		goto fail;
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		r = AUTHD_ERR_INTERNAL;
		goto fail;
	}
	s->writer_started = 1;
	*out = s;
	return 0;
fail:
	store_close(&s);
	return r;
}

void
store_close(struct store **sp)
{
	struct store *s;
	if (sp == NULL || (s = *sp) == NULL)
		return;
	if (s->writer_started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_signal(&s->cv_work);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
	}
	if (s->writer_conn)
		conn_close(s->writer_conn);
	for (struct conn *c = s->all_conns, *n; c; c = n) {
		n = c->next;
		conn_close(c);
	}
	pthread_key_delete(s->reader_key);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->conns_mu);
	pthread_cond_destroy(&s->cv_work);
	pthread_cond_destroy(&s->cv_done);
	free(s);
	*sp = NULL;
}
