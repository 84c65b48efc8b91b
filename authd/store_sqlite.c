/*
 * SQLite backend of the store (store_int.h): WAL mode; the generic layer
 * (store.c) drives one writer connection doing group commit and per-thread
 * read-only connections. The writer commits with synchronous=NORMAL (no
 * flush inside COMMIT) and sq_sync() then fdatasyncs the WAL from the
 * syncer thread: a commit is durable once a flush that began after it has
 * returned, and the store answers nobody before that.
 * BEGIN IMMEDIATE serializes write batches against any other process on
 * the same file. All of the SQLite SQL is here.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit.h"
#include "sqlite_walvfs.h"
#include "store_int.h"
#include "util.h"

/*
 * Versioned migrations; the numbering is shared with store_pg.c (migration
 * N brings both backends to the same logical schema N). The version is in
 * meta('schema_version').
 */
static const char *const schema_v1[] = {
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

/*
 * v2: the tables written on every request become WITHOUT ROWID, so a row and
 * its key live in one B-tree and a commit writes half the pages (the logical
 * schema is unchanged; store_pg.c's v2 is empty).
 */
#define REBUILD(t, cols)                                                                                            \
	"CREATE TABLE " t "_v2(" cols ") WITHOUT ROWID", "INSERT INTO " t "_v2 SELECT * FROM " t, "DROP TABLE " t,   \
	    "ALTER TABLE " t "_v2 RENAME TO " t
static const char *const schema_v2[] = {
	REBUILD("decisions", "txn_id TEXT PRIMARY KEY, txn_hash BLOB NOT NULL, result TEXT NOT NULL, reasons TEXT NOT"
	                     " NULL, challenge_id TEXT NOT NULL, created INTEGER NOT NULL"),
	REBUILD("approvals", "txn_id TEXT PRIMARY KEY, customer TEXT NOT NULL, account_type INTEGER NOT NULL, currency"
	                     " TEXT NOT NULL, day INTEGER NOT NULL, amount INTEGER NOT NULL, device_id TEXT NOT NULL,"
	                     " ts INTEGER NOT NULL"),
	"CREATE INDEX IF NOT EXISTS approvals_day ON approvals(customer, day, account_type, currency)",
	REBUILD("devices", "customer TEXT NOT NULL, device_id TEXT NOT NULL, first_seen INTEGER NOT NULL,"
	                   " PRIMARY KEY(customer, device_id)"),
	REBUILD("redeemed", "jti TEXT PRIMARY KEY, exp INTEGER NOT NULL, ts INTEGER NOT NULL"),
};
#undef REBUILD

/*
 * v3: the day's approved total per (customer, day, account type, currency)
 * is one row, added to with each approval, instead of a SUM over the
 * customer's approvals (which grew with every transfer of a busy business
 * account, on the serial writer). Filled from the approvals already there.
 */
static const char *const schema_v3[] = {
	"CREATE TABLE IF NOT EXISTS daily_totals(customer TEXT NOT NULL, day INTEGER NOT NULL, account_type INTEGER"
	" NOT NULL, currency TEXT NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY(customer, day, account_type,"
	" currency)) WITHOUT ROWID",
	"INSERT INTO daily_totals SELECT customer, day, account_type, currency, SUM(amount) FROM approvals"
	" GROUP BY customer, day, account_type, currency",
	"DROP INDEX IF EXISTS approvals_day",
};

/*
 * v4: retention (store_prune_expired). Daily totals are keyed day first, so a
 * day's rows are one range (today's are the pages assess touches; past days
 * go as ranges), and the expiry columns of the short-lived tables are
 * indexed (redeemed: only token ids, never the "txn:" entries that are kept).
 */
static const char *const schema_v4[] = {
	"CREATE TABLE daily_totals_v4(customer TEXT NOT NULL, day INTEGER NOT NULL, account_type INTEGER NOT NULL,"
	" currency TEXT NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY(day, customer, account_type, currency))"
	" WITHOUT ROWID",
	"INSERT INTO daily_totals_v4 SELECT * FROM daily_totals",
	"DROP TABLE daily_totals",
	"ALTER TABLE daily_totals_v4 RENAME TO daily_totals",
	"CREATE INDEX IF NOT EXISTS challenges_expires ON challenges(expires)",
	"CREATE INDEX IF NOT EXISTS enrollments_expires ON enrollments(expires)",
	"CREATE INDEX IF NOT EXISTS redeemed_exp ON redeemed(exp) WHERE jti NOT LIKE 'txn:%'",
};

/*
 * v5: a decision keeps its transfer's source account, so a freeze can be
 * enforced when a token of the transfer is redeemed (the token names the
 * transfer, not the account).
 */
static const char *const schema_v5[] = {
	"ALTER TABLE decisions ADD COLUMN account TEXT NOT NULL DEFAULT ''",
};

enum stmt_id {
	S_CH_PUT, S_CH_GET, S_CH_CONSUME, S_CH_ATTEMPT, S_CH_KILL,
	S_DEC_GET, S_DEC_PUT,
	S_APPR_ADD, S_DEV_ADD, S_TOTAL, S_TOTAL_ADD, S_DEV_SEEN, S_TXN_FACTS,
	S_FROZEN_GET, S_FROZEN_ADD, S_FROZEN_DEL,
	S_LOCK_GET, S_LOCK_PUT,
	S_JTI,
	S_CRED_ADD, S_CRED_LIST, S_CRED_LIST_ALL, S_CRED_UPDATE, S_CRED_STATE, S_CRED_DEL,
	S_ENR_PUT, S_ENR_GET, S_ENR_DEL,
	S_AUDIT_ADD, S_AUDIT_SCAN, S_AUDIT_HEAD,
	S_PRUNE_CH, S_PRUNE_ENR, S_PRUNE_JTI, S_PRUNE_TOTALS_AT, S_PRUNE_TOTALS_BEFORE, S_PRUNE_TOTALS_UPTO,
	S_TX_BEGIN_W, S_TX_BEGIN_R, S_TX_COMMIT, S_TX_SAVEPOINT, S_TX_RELEASE, S_TX_ROLLBACK_TO,
	S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
	[S_CH_PUT] = "INSERT INTO challenges VALUES(?,?,?,?,?,?,?,?,?,?,?)",
	[S_CH_GET] = "SELECT kind, subject, txn_id, txn_hash, challenge, created, expires, state, attempts, body"
	             " FROM challenges WHERE id = ?",
	[S_CH_CONSUME] = "UPDATE challenges SET state = 1 WHERE id = ? AND state = 0 AND expires > ?",
	[S_CH_ATTEMPT] = "UPDATE challenges SET attempts = attempts + 1 WHERE id = ?",
	[S_CH_KILL] = "UPDATE challenges SET attempts = attempts + 1, state = 2 WHERE id = ? AND state = 0",
	[S_DEC_GET] = "SELECT txn_hash, result, reasons, challenge_id, created, account FROM decisions"
	              " WHERE txn_id = ?",
	[S_DEC_PUT] = "INSERT OR REPLACE INTO decisions(txn_id, txn_hash, result, reasons, challenge_id,"
	              " created, account) VALUES(?,?,?,?,?,?,?)",
	[S_APPR_ADD] = "INSERT OR IGNORE INTO approvals VALUES(?,?,?,?,?,?,?,?)",
	[S_DEV_ADD] = "INSERT OR IGNORE INTO devices VALUES(?,?,?)",
	[S_TOTAL] = "SELECT amount FROM daily_totals WHERE customer = ? AND day = ? AND account_type = ? AND"
	            " currency = ?",
	/* saturating: a total never wraps */
	[S_TOTAL_ADD] = "INSERT INTO daily_totals VALUES(?, ?, ?, ?, ?) ON CONFLICT(customer, day, account_type, currency)"
	                " DO UPDATE SET amount = CASE"
	                " WHEN amount > 9223372036854775807 - excluded.amount THEN 9223372036854775807"
	                " ELSE amount + excluded.amount END",
	[S_DEV_SEEN] = "SELECT 1 FROM devices WHERE customer = ? AND device_id = ?",
	/* S_FROZEN_GET, S_LOCK_GET's locked, S_DEV_SEEN and S_TOTAL in one step */
	[S_TXN_FACTS] = "SELECT EXISTS(SELECT 1 FROM frozen WHERE account = ?1),"
	                " coalesce((SELECT locked FROM lockouts WHERE subject = ?2), 0),"
	                " EXISTS(SELECT 1 FROM devices WHERE customer = ?2 AND device_id = ?3),"
	                " coalesce((SELECT amount FROM daily_totals WHERE customer = ?2 AND day = ?4 AND"
	                " account_type = ?5 AND currency = ?6), 0)",
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
	/* ?1 expired before, ?2 at most this many rows; each walks its v4 index */
	[S_PRUNE_CH] = "DELETE FROM challenges WHERE id IN (SELECT id FROM challenges WHERE expires < ?1 LIMIT ?2)",
	[S_PRUNE_ENR] = "DELETE FROM enrollments WHERE id IN (SELECT id FROM enrollments WHERE expires < ?1 LIMIT ?2)",
	[S_PRUNE_JTI] = "DELETE FROM redeemed WHERE jti IN (SELECT jti FROM redeemed WHERE exp < ?1 AND jti NOT LIKE"
	                " 'txn:%' LIMIT ?2)",
	/*
	 * Daily totals go as key ranges: a row-value IN list would make SQLite
	 * walk the whole day for each key (measured: ~150 ms for 500 rows of a
	 * 1.2 million row day). AT finds the limit-th key before day ?1.
	 */
	[S_PRUNE_TOTALS_AT] = "SELECT day, customer FROM daily_totals WHERE day < ?1 ORDER BY day, customer LIMIT 1"
	                      " OFFSET ?2",
	[S_PRUNE_TOTALS_BEFORE] = "DELETE FROM daily_totals WHERE day < ?1",
	[S_PRUNE_TOTALS_UPTO] = "DELETE FROM daily_totals WHERE day = ?1 AND customer <= ?2",
	/* IMMEDIATE: the write lock is taken now, so batches never interleave. */
	[S_TX_BEGIN_W] = "BEGIN IMMEDIATE",
	[S_TX_BEGIN_R] = "BEGIN",
	[S_TX_COMMIT] = "COMMIT",
	[S_TX_SAVEPOINT] = "SAVEPOINT job",
	[S_TX_RELEASE] = "RELEASE job",
	[S_TX_ROLLBACK_TO] = "ROLLBACK TO job",
};

/*
 * WAL checkpoints. A writable connection does not checkpoint inside its
 * commits (that would stall every request of the batch): once the WAL holds
 * CKPT_FRAMES frames, a thread with its own connection copies them back
 * (PASSIVE: it never blocks the writer), at most one round per
 * CKPT_INTERVAL_MS. A page that commits rewrite again and again (a leaf of
 * daily totals, the tail of the audit table, interior pages) is then copied
 * once per round instead of once per commit. A round repeats its checkpoint
 * until one ends with every frame copied (at most CKPT_ROUNDS times).
 * SQLite starts the WAL over only at a write transaction that begins with
 * every frame copied. Under steady load the writer's next transaction has
 * always begun by then, so only the writer's own checkpoint, between two of
 * its commits, gets there: it runs once the WAL reaches CKPT_INLINE_FRAMES,
 * which bounds the WAL (a 20-30 ms stall at full load: docs/performance.md).
 *
 * After a failed WAL flush (sq_sync) nothing is checkpointed any more, not
 * even when the connections close: the frames of the failed flush may not
 * be on disk while the kernel's copy looks clean, and a checkpoint would
 * copy whatever it reads of them into the database file, unchecked. Left
 * in the WAL, they go through SQLite's recovery at the next open, which
 * checks every frame's checksum and keeps only a whole prefix.
 */
#define CKPT_FRAMES 1000
#define CKPT_INTERVAL_MS 200
#define CKPT_ROUNDS 16
#define CKPT_INLINE_FRAMES 16000

struct ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int want, resting, stop;
	atomic_int halted; /* a WAL flush failed: no checkpoint, ever (set by sq_sync) */
	sqlite3 *db;
};

struct store_conn {
	sqlite3 *db;
	sqlite3_stmt *st[S__COUNT];
	struct ckpt *ckpt; /* writable connections */
	/* the syncer's own (sq_sync): the WAL file, and its descriptor (-1: not open) */
	char *wal_path;
	int wal_fd;
	struct store_conn *next; /* every connection, for closing */
};

/* Checkpoints until every frame of the WAL is in the database (or CKPT_ROUNDS tries, an error, halted). */
static void
ckpt_round(struct ckpt *k)
{
	sqlite3 *db = k->db;
	for (int i = 0; i < CKPT_ROUNDS && !atomic_load(&k->halted); i++) {
		int log = 0, done = 0;
		if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) != SQLITE_OK ||
		    done >= log)
			return;
	}
}

static void *
ckpt_main(void *arg)
{
	struct ckpt *k = arg;
	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->want && !k->stop)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->stop)
			break;
		k->want = 0;
		pthread_mutex_unlock(&k->mu);
		ckpt_round(k);
		pthread_mutex_lock(&k->mu);
		/* rest: commits meanwhile only add frames for the next round */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += CKPT_INTERVAL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		k->resting = 1;
		while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &until) == 0)
			;
		k->resting = 0;
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct ckpt *k = arg;
	if (atomic_load(&k->halted))
		return SQLITE_OK;
	if (frames >= CKPT_INLINE_FRAMES) {
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	} else if (frames >= CKPT_FRAMES) {
		pthread_mutex_lock(&k->mu);
		if (!k->want) {
			k->want = 1;
			if (!k->resting)
				pthread_cond_signal(&k->cv);
		}
		pthread_mutex_unlock(&k->mu);
	}
	return SQLITE_OK;
}

static void
ckpt_stop(struct ckpt **kp)
{
	struct ckpt *k = *kp;
	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	if (atomic_load(&k->halted))
		(void)sqlite3_db_config(k->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	sqlite3_close(k->db);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
	*kp = NULL;
}

static int
ckpt_start(struct store_conn *c, const char *path)
{
	struct ckpt *k = calloc(1, sizeof *k);
	if (k == NULL)
		return AUTHD_ERR_NOMEM;
	if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE,
	                    NULL) != SQLITE_OK) {
		sqlite3_close(k->db);
		free(k);
		return AUTHD_ERR_UNAVAILABLE;
	}
	sqlite3_busy_timeout(k->db, 5000);
	/* a checkpoint flushes the WAL before copying it and the database after */
	if (sqlite3_exec(k->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(k->db);
		free(k);
		return AUTHD_ERR_UNAVAILABLE;
	}
	pthread_condattr_t ca;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&k->thread, NULL, ckpt_main, k) != 0) {
		sqlite3_close(k->db);
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
		free(k);
		return AUTHD_ERR_NOMEM;
	}
	(void)pthread_setname_np(k->thread, "authd-ckpt");
	c->ckpt = k;
	sqlite3_wal_hook(c->db, wal_hook, k);
	return 0;
}

static int
conn_open_path(const char *path, int readonly, struct store_conn **out)
{
	struct store_conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return AUTHD_ERR_NOMEM;
	c->wal_fd = -1;
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
	            SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
	/* the writer writes the WAL: a commit's frames in about two writes (sqlite_walvfs.c) */
	if (sqlite3_open_v2(path, &c->db, flags, readonly ? NULL : sqlite_walvfs_name()) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(c->db, 5000);
	sqlite3_extended_result_codes(c->db, 1);
	/*
	 * The writer's cache holds the hot index pages across batches (64 MiB);
	 * statement journals in memory. synchronous=NORMAL is durable here only
	 * because of sq_sync(), which needs WAL mode: anything else is refused.
	 */
	const char *pragmas = readonly ? "PRAGMA query_only = 1;"
	                               : "PRAGMA synchronous = NORMAL;"
	                                 " PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;"
	                                 " PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";
	if (!readonly) {
		char mode[8] = "";
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (strcmp(mode, "wal") != 0)
			goto fail;
		size_t n = strlen(path) + sizeof "-wal";
		if ((c->wal_path = malloc(n)) == NULL)
			goto fail;
		snprintf(c->wal_path, n, "%s-wal", path);
	}
	if (sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (!readonly && ckpt_start(c, path) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	sqlite3_close(c->db);
	free(c->wal_path);
	free(c);
	return AUTHD_ERR_UNAVAILABLE;
}

static void
sq_conn_close(struct store_conn *c)
{
	if (c->ckpt != NULL && atomic_load(&c->ckpt->halted))
		(void)sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	ckpt_stop(&c->ckpt);
	if (c->wal_fd >= 0)
		close(c->wal_fd);
	free(c->wal_path);
	for (int i = 0; i < S__COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

static int map_rc(int rc);

/* Runs a prepared statement that returns no rows (transaction control). */
static int
conn_exec(struct store_conn *c, enum stmt_id id)
{
	if (c->st[id] == NULL &&
	    sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL) != SQLITE_OK)
		return AUTHD_ERR_INTERNAL;
	int rc = sqlite3_step(c->st[id]);
	sqlite3_reset(c->st[id]);
	return rc == SQLITE_DONE ? 0 : map_rc(rc);
}

/*
 * Prepared statement, cached per connection; reset and unbound. NULL outside
 * a transaction: after SQLite rolled the batch back by itself, a job that
 * went on would have each statement committed alone (store.c fails the batch).
 */
static sqlite3_stmt *
stmt(struct store_tx *tx, enum stmt_id id)
{
	struct store_conn *c = tx->c;
	if (sqlite3_get_autocommit(c->db))
		return NULL;
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

static int
sq_challenge_put(struct store_tx *tx, const struct store_challenge *c)
{
	sqlite3_stmt *st;
	int r;
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

static int
sq_challenge_get(struct store_tx *tx, const char *id, struct store_challenge *c)
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

static int
sq_challenge_consume(struct store_tx *tx, const char *id, int64_t now)
{
	sqlite3_stmt *st;
	int r, n = 0;
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

static int
sq_challenge_attempt(struct store_tx *tx, const char *id, int kill)
{
	sqlite3_stmt *st;
	int r;
	if ((st = stmt(tx, kill ? S_CH_KILL : S_CH_ATTEMPT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, id));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

/* ---------------- decisions ---------------- */

static int
sq_decision_get(struct store_tx *tx, const char *txn_id, struct store_decision *d)
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
	col_copy(st, 5, d->account, sizeof d->account);
	r = (d->reasons = col_strdup(st, 2)) == NULL ? AUTHD_ERR_NOMEM : 0;
out:
	done(st);
	return r;
}

static int
sq_decision_put(struct store_tx *tx, const char *txn_id, const struct store_decision *d)
{
	sqlite3_stmt *st;
	int r;
	if ((st = stmt(tx, S_DEC_PUT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, txn_id));
	BIND(bind_blob(st, 2, d->txn_hash, 32));
	BIND(bind_text(st, 3, d->result));
	BIND(bind_text(st, 4, d->reasons ? d->reasons : "[]"));
	BIND(bind_text(st, 5, d->challenge_id));
	BIND(bind_i64(st, 6, d->created));
	BIND(bind_text(st, 7, d->account));
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

/* ---------------- approvals, totals, devices ---------------- */

static int
sq_approval_add(struct store_tx *tx, const struct store_approval *a, int *added)
{
	sqlite3_stmt *st;
	int r, n = 0;
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
	if (n > 0) {
		if ((st = stmt(tx, S_TOTAL_ADD)) == NULL)
			return AUTHD_ERR_INTERNAL;
		BIND(bind_text(st, 1, a->customer));
		BIND(bind_i64(st, 2, a->day));
		BIND(bind_i64(st, 3, a->account_type));
		BIND(bind_text(st, 4, a->currency));
		BIND(bind_i64(st, 5, a->amount));
		TRY(exec_done(tx, st, NULL));
	}
	if (a->device_id != NULL && a->device_id[0] != '\0' && !a->device_known) {
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

static int
sq_total_get(struct store_tx *tx, const char *customer, int account_type, const char *currency, int64_t day,
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
	r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc);
	*sum = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0; /* no row: nothing approved yet */
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

static int
sq_device_seen(struct store_tx *tx, const char *customer, const char *device_id, int *seen)
{
	return exists(tx, S_DEV_SEEN, customer, device_id, seen);
}

static int
sq_txn_facts(struct store_tx *tx, const char *account, const char *customer, const char *device_id,
             int account_type, const char *currency, int64_t day, struct store_txn_facts *f)
{
	sqlite3_stmt *st = stmt(tx, S_TXN_FACTS);
	int r;
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_text(st, 1, account));
	BIND(bind_text(st, 2, customer));
	BIND(bind_text(st, 3, device_id)); /* NULL: no device, never seen */
	BIND(bind_i64(st, 4, day));
	BIND(bind_i64(st, 5, account_type));
	BIND(bind_text(st, 6, currency));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		f->account_frozen = sqlite3_column_int(st, 0) != 0;
		f->customer_locked = sqlite3_column_int(st, 1);
		f->device_seen = sqlite3_column_int(st, 2) != 0;
		f->approved_today = sqlite3_column_int64(st, 3);
		r = 0;
	} else
		r = rc == SQLITE_DONE ? AUTHD_ERR_INTERNAL : map_rc(rc);
out:
	done(st);
	return r;
}

/* ---------------- frozen, lockouts ---------------- */

static int
sq_frozen_get(struct store_tx *tx, const char *account, int *frozen)
{
	return exists(tx, S_FROZEN_GET, account, NULL, frozen);
}

static int
sq_frozen_set(struct store_tx *tx, const char *account, int frozen, const char *reason, int64_t now,
                 int *changed)
{
	sqlite3_stmt *st;
	int r;
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

static int
sq_lockout_get(struct store_tx *tx, const char *subject, struct store_lockout *l)
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

static int
sq_lockout_put(struct store_tx *tx, const char *subject, const struct store_lockout *l)
{
	sqlite3_stmt *st;
	int r;
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

static int
sq_jti_redeem(struct store_tx *tx, const char *jti, int64_t exp, int64_t now)
{
	sqlite3_stmt *st;
	int r, n = 0;
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

static int
sq_cred_add(struct store_tx *tx, const struct store_cred *c)
{
	sqlite3_stmt *st;
	int r;
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

static int
sq_cred_list(struct store_tx *tx, const char *subject, const char *method, struct store_cred **out, size_t *n)
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

static int
sq_cred_update(struct store_tx *tx, const char *method, const uint8_t *id, size_t id_len, const uint8_t *old,
                  size_t old_len, const uint8_t *data, size_t data_len)
{
	sqlite3_stmt *st;
	int r, n = 0;
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

static int
sq_cred_set_state(struct store_tx *tx, const char *subject, const char *method, const uint8_t *id,
                     size_t id_len, int state)
{
	sqlite3_stmt *st;
	int r, n = 0;
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

static int
sq_cred_delete(struct store_tx *tx, const char *subject, const char *method, int *n)
{
	sqlite3_stmt *st;
	int r;
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

static int
sq_enrollment_put(struct store_tx *tx, const struct store_enrollment *e)
{
	sqlite3_stmt *st;
	int r;
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

static int
sq_enrollment_take(struct store_tx *tx, const char *id, int64_t now, struct store_enrollment *e)
{
	sqlite3_stmt *st;
	int r;
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

static int
sq_audit_head(struct store_tx *tx, int64_t *seq, char hash[65])
{
	sqlite3_stmt *st = stmt(tx, S_AUDIT_HEAD);
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	*seq = 0;
	memcpy(hash, AUDIT_GENESIS, 65);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		col_copy(st, 1, hash, 65);
	}
	done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc) ? map_rc(rc) : AUTHD_ERR_INTERNAL;
}

static int
sq_audit_insert(struct store_tx *tx, const struct audit_rec *rec)
{
	sqlite3_stmt *st;
	int r;
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
	return exec_done(tx, st, NULL);
out:
	done(st);
	return r;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static int
sq_audit_scan(struct store_tx *tx, int64_t from_seq, store_audit_cb cb, void *arg)
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

static int
sq_count(struct store_tx *tx, const char *what, int64_t *n)
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

/* Runs a prune statement: ?1 = v1, ?2 = t2 when set, else v2 when >= 0; *n = rows deleted. */
static int
prune_step(struct store_tx *tx, enum stmt_id id, int64_t v1, const char *t2, int64_t v2, int *n)
{
	sqlite3_stmt *st = stmt(tx, id);
	int r;
	if (st == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_i64(st, 1, v1));
	if (t2 != NULL)
		BIND(bind_text(st, 2, t2));
	else if (v2 >= 0)
		BIND(bind_i64(st, 2, v2));
	return exec_done(tx, st, n);
out:
	done(st);
	return r;
}

static int
sq_prune(struct store_tx *tx, const struct store_prune *p, struct store_pruned *out)
{
	const struct {
		enum stmt_id id;
		int64_t *n;
	} steps[] = {{S_PRUNE_CH, &out->challenges}, {S_PRUNE_ENR, &out->enrollments}, {S_PRUNE_JTI, &out->redeemed}};
	sqlite3_stmt *st;
	int r, n = 0;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		TRY(prune_step(tx, steps[i].id, p->expired_before, NULL, p->limit, &n));
		*steps[i].n = n;
	}
	/* Daily totals: every old row up to the limit-th old key (day, customer), or all of them when fewer. */
	if ((st = stmt(tx, S_PRUNE_TOTALS_AT)) == NULL)
		return AUTHD_ERR_INTERNAL;
	BIND(bind_i64(st, 1, p->day_before));
	BIND(bind_i64(st, 2, p->limit - 1));
	int rc = sqlite3_step(st);
	int64_t day = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : p->day_before;
	char *customer = rc == SQLITE_ROW ? col_strdup(st, 1) : NULL;
	done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return map_rc(rc);
	if (rc == SQLITE_ROW && customer == NULL)
		return AUTHD_ERR_NOMEM;
	/* the days before that key's: fewer than limit rows */
	if ((r = prune_step(tx, S_PRUNE_TOTALS_BEFORE, day, NULL, -1, &n)) == 0) {
		out->daily_totals = n;
		if (customer != NULL && (r = prune_step(tx, S_PRUNE_TOTALS_UPTO, day, customer, -1, &n)) == 0)
			out->daily_totals += n;
	}
	free(customer);
	return r;
out:
	done(st);
	return r;
}

/* ---------------- transactions ---------------- */

static int
exec_sql(struct store_conn *c, const char *sql)
{
	return map_rc(sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static int
sq_begin(struct store_conn *c, int writable)
{
	return conn_exec(c, writable ? S_TX_BEGIN_W : S_TX_BEGIN_R) < 0 ? AUTHD_ERR_UNAVAILABLE : 0;
}

static int
sq_commit(struct store_conn *c)
{
	int r = conn_exec(c, S_TX_COMMIT);
	/* nothing of the commit may wait in the WAL shim when the syncer flushes the file */
	if (r >= 0 && sqlite_walvfs_flush(c->db) != SQLITE_OK)
		r = AUTHD_ERR_IO;
	return r < 0 ? AUTHD_ERR_UNAVAILABLE : 0;
}

/*
 * Makes every commit so far durable: fdatasync of the WAL, which holds every
 * committed frame not yet checkpointed (a checkpoint flushes the WAL before
 * it copies it and the database after, so nothing copied is less durable).
 * The descriptor is the syncer's own; it is reopened (and the directory
 * flushed, for the new name) whenever the WAL file was replaced. A failure
 * is for good (store_int.h): later calls fail at once, checkpoints stop.
 */
static int
sq_sync(struct store_conn *c)
{
	struct stat a, b;
	int r = 0;
	if (atomic_load(&c->ckpt->halted))
		return AUTHD_ERR_IO; /* an earlier flush failed: nothing proves durable any more */
	if (c->wal_fd >= 0 && (fstat(c->wal_fd, &a) != 0 || stat(c->wal_path, &b) != 0 ||
	                       a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
		close(c->wal_fd);
		c->wal_fd = -1;
	}
	if (c->wal_fd < 0 &&
	    ((c->wal_fd = open(c->wal_path, O_RDWR | O_CLOEXEC)) < 0 || util_sync_dir_of(c->wal_path) < 0))
		r = -1;
	if (r == 0) {
		do
			r = fdatasync(c->wal_fd);
		while (r < 0 && errno == EINTR);
	}
	if (r == 0)
		return 0;
	/* for good, errno left as the failed call set it: see the checkpoint notes above */
	atomic_store(&c->ckpt->halted, 1);
	return AUTHD_ERR_IO;
}

static void
sq_rollback(struct store_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		(void)exec_sql(c, "ROLLBACK");
}

static int
sq_savepoint(struct store_conn *c)
{
	return conn_exec(c, S_TX_SAVEPOINT);
}

static int
sq_savepoint_release(struct store_conn *c)
{
	return conn_exec(c, S_TX_RELEASE);
}

static int
sq_savepoint_rollback(struct store_conn *c)
{
	return conn_exec(c, S_TX_ROLLBACK_TO);
}

static int
sq_in_tx(struct store_conn *c)
{
	/* autocommit inside a batch: SQLite rolled it back by itself (I/O error, disk full, no memory) */
	return !sqlite3_get_autocommit(c->db);
}

static int
sq_accepts(const char *url)
{
	return strncmp(url, "sqlite:", 7) == 0;
}

static int
sq_conn_open(const char *url, int readonly, struct store_conn **out, char *err, size_t errlen)
{
	const char *path = url + 7;
	int r = conn_open_path(path, readonly, out);
	if (r < 0)
		snprintf(err, errlen, "cannot open store %s", path);
	return r;
}

/* ---------------- schema ---------------- */

static const struct {
	const char *const *sql;
	size_t n;
} migrations[] = {
	{schema_v1, sizeof schema_v1 / sizeof schema_v1[0]},
	{schema_v2, sizeof schema_v2 / sizeof schema_v2[0]},
	{schema_v3, sizeof schema_v3 / sizeof schema_v3[0]},
	{schema_v4, sizeof schema_v4 / sizeof schema_v4[0]},
	{schema_v5, sizeof schema_v5 / sizeof schema_v5[0]},
};
#define SQ_LATEST ((int)(sizeof migrations / sizeof migrations[0]))

static int
read_version(struct store_conn *c, int *version)
{
	sqlite3_stmt *st = NULL;
	*version = 0;
	int rc = sqlite3_prepare_v2(c->db, "SELECT v FROM meta WHERE k = 'schema_version'", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		/* No meta table: no schema at all. */
		sqlite3_finalize(st);
		return 0;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = atoi((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(rc);
}

static int
sq_schema_version(struct store_conn *c, int *version)
{
	return read_version(c, version);
}

static int
sq_migrate(struct store_conn *c, int *version, char *err, size_t errlen)
{
	char sql[96];
	int r = exec_sql(c, "BEGIN IMMEDIATE"), v = 0;
	if (r < 0)
		goto fail;
	if ((r = exec_sql(c, "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL)")) < 0 ||
	    (r = read_version(c, &v)) < 0)
		goto fail_rb;
	if (v > SQ_LATEST) {
		snprintf(err, errlen, "store schema version %d is newer than this authd (%d)", v, SQ_LATEST);
		r = AUTHD_ERR_CONFIG;
		goto fail_rb;
	}
	for (int m = v; m < SQ_LATEST; m++) {
		for (size_t i = 0; i < migrations[m].n; i++)
			if ((r = exec_sql(c, migrations[m].sql[i])) < 0)
				goto fail_rb;
		snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta VALUES('schema_version', '%d')", m + 1);
		if ((r = exec_sql(c, sql)) < 0)
			goto fail_rb;
	}
	if ((r = exec_sql(c, "COMMIT")) < 0)
		goto fail;
	*version = SQ_LATEST;
	return 0;
fail_rb:
	(void)exec_sql(c, "ROLLBACK");
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "cannot initialise store: %s", sqlite3_errmsg(c->db));
	return r < 0 ? r : AUTHD_ERR_UNAVAILABLE;
}

/* ---------------- raw rows (store copy) ---------------- */

static int
sq_rows_scan(struct store_tx *tx, enum store_table_id t, store_row_cb cb, void *arg)
{
	const struct store_table_desc *d = &store_tables[t];
	char sql[512];
	sqlite3_stmt *st = NULL;
	int rc, r = 0;
	/* Insertion order where there is a rowid; key order for the WITHOUT ROWID tables (schema v2). */
	snprintf(sql, sizeof sql, "SELECT %s FROM %s ORDER BY rowid", d->cols, d->name);
	if (sqlite3_prepare_v2(tx->c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(sql, sizeof sql, "SELECT %s FROM %s", d->cols, d->name);
		if (sqlite3_prepare_v2(tx->c->db, sql, -1, &st, NULL) != SQLITE_OK)
			return AUTHD_ERR_INTERNAL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_row row = {.n = (int)strlen(d->types)};
		for (int i = 0; i < row.n; i++) {
			struct store_val *v = &row.v[i];
			v->null = sqlite3_column_type(st, i) == SQLITE_NULL;
			switch (d->types[i]) {
			case 'I': v->i = sqlite3_column_int64(st, i); break;
			case 'B':
				v->b = sqlite3_column_blob(st, i);
				v->len = (size_t)sqlite3_column_bytes(st, i);
				break;
			default: v->s = (const char *)sqlite3_column_text(st, i); break;
			}
		}
		if (cb(&row, arg) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(rc) ? map_rc(rc) : AUTHD_ERR_INTERNAL;
out:
	sqlite3_finalize(st);
	return r;
}

static int
sq_row_insert(struct store_tx *tx, enum store_table_id t, const struct store_row *row)
{
	const struct store_table_desc *d = &store_tables[t];
	char sql[512];
	size_t n = strlen(d->types);
	sqlite3_stmt *st = NULL;
	int r = 0;
	int off = snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES(?", d->name, d->cols);
	for (size_t i = 1; i < n; i++)
		off += snprintf(sql + off, sizeof sql - (size_t)off, ",?");
	snprintf(sql + off, sizeof sql - (size_t)off, ")");
	/* never outside the transaction: see stmt() */
	if ((size_t)row->n != n || sqlite3_get_autocommit(tx->c->db) ||
	    sqlite3_prepare_v2(tx->c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return AUTHD_ERR_INTERNAL;
	for (int i = 0; i < row->n; i++) {
		const struct store_val *v = &row->v[i];
		if (v->null)
			BIND(sqlite3_bind_null(st, i + 1) == SQLITE_OK ? 0 : AUTHD_ERR_INTERNAL);
		else if (d->types[i] == 'I')
			BIND(bind_i64(st, i + 1, v->i));
		else if (d->types[i] == 'B')
			BIND(bind_blob(st, i + 1, v->b ? v->b : (const uint8_t *)"", v->len));
		else
			BIND(bind_text(st, i + 1, v->s));
	}
	r = map_rc(sqlite3_step(st));
out:
	sqlite3_finalize(st);
	return r;
}

static int
sq_rows_count(struct store_tx *tx, enum store_table_id t, int64_t *n)
{
	char sql[128];
	sqlite3_stmt *st = NULL;
	snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", store_tables[t].name);
	*n = 0;
	if (sqlite3_prepare_v2(tx->c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return AUTHD_ERR_INTERNAL;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : map_rc(rc) ? map_rc(rc) : AUTHD_ERR_INTERNAL;
}

const struct store_backend store_backend_sqlite = {
    .kind = "sqlite",
    .latest_version = SQ_LATEST,
    .accepts = sq_accepts,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .sync = sq_sync,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .savepoint_release = sq_savepoint_release,
    .savepoint_rollback = sq_savepoint_rollback,
    .in_tx = sq_in_tx,
    .challenge_put = sq_challenge_put,
    .challenge_get = sq_challenge_get,
    .challenge_consume = sq_challenge_consume,
    .challenge_attempt = sq_challenge_attempt,
    .decision_get = sq_decision_get,
    .decision_put = sq_decision_put,
    .approval_add = sq_approval_add,
    .total_get = sq_total_get,
    .device_seen = sq_device_seen,
    .txn_facts = sq_txn_facts,
    .frozen_get = sq_frozen_get,
    .frozen_set = sq_frozen_set,
    .lockout_get = sq_lockout_get,
    .lockout_put = sq_lockout_put,
    .jti_redeem = sq_jti_redeem,
    .cred_add = sq_cred_add,
    .cred_list = sq_cred_list,
    .cred_update = sq_cred_update,
    .cred_set_state = sq_cred_set_state,
    .cred_delete = sq_cred_delete,
    .enrollment_put = sq_enrollment_put,
    .enrollment_take = sq_enrollment_take,
    .audit_head = sq_audit_head,
    .audit_insert = sq_audit_insert,
    .audit_scan = sq_audit_scan,
    .count = sq_count,
    .prune = sq_prune,
    .rows_scan = sq_rows_scan,
    .row_insert = sq_row_insert,
    .rows_count = sq_rows_count,
};
