/*
 * PostgreSQL backend of the store (store_int.h), over libpq. Several authd
 * processes share one database; everything that must be one truth across
 * them is decided by the database, never by a process's memory:
 *
 * - every write batch (the generic layer's group commit) starts with
 *   pg_advisory_xact_lock(PG_LOCK_BATCH): write batches of all instances
 *   are serialized, so the audit chain head read from the table inside the
 *   batch is the real head (one chain, no fork, no gap; a unique index on
 *   prev makes a fork impossible even if that ever failed), and taking this
 *   single lock first means batches can never deadlock on each other;
 * - challenge consumption is one UPDATE ... WHERE state = 0 AND expires > now
 *   RETURNING; redeem is INSERT ... ON CONFLICT DO NOTHING RETURNING;
 *   enrollment take is DELETE ... RETURNING; credential updates are a
 *   compare-and-swap UPDATE on the old data;
 * - lockout counters are read FOR UPDATE and written with
 *   INSERT ... ON CONFLICT DO UPDATE inside the batch;
 * - daily totals are read under pg_advisory_xact_lock(PG_LOCK_TOTAL,
 *   hashtext(customer)) in write batches, so the total and the approval
 *   that depends on it are atomic per customer.
 *
 * Lost connection: statements fail with AUTHD_ERR_UNAVAILABLE, the batch
 * (one transaction) is rolled back by the server, and the next begin
 * reconnects with exponential backoff (100 ms .. 2 s). Reads run in
 * REPEATABLE READ READ ONLY transactions. All of the PostgreSQL SQL is here.
 *
 * Nothing waits forever, and no instance can stall the others' writes for
 * long: TCP keepalives and tcp_user_timeout find a dead peer in ~25 s, a
 * write batch waits at most PG_LOCK_TIMEOUT_MS for a lock and the server
 * ends a batch left idle for PG_IDLE_TX_TIMEOUT_MS (releasing its lock: the
 * case of an instance that stalls or loses its network mid-batch), a read
 * statement runs at most PG_READ_TIMEOUT_MS. Each becomes
 * AUTHD_ERR_UNAVAILABLE for that batch or read.
 *
 * Threading: a connection is used by one thread at a time (store_int.h).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "audit.h"
#include "log.h"
#include "store_int.h"
#include "util.h"

#define PG_LOCK_BATCH 0x6175746864424154LL /* "authdBAT": write batches and the audit chain */
#define PG_LOCK_MIGRATE 0x617574686d494752LL /* "authmIGR": schema migrations */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define SCAN_CHUNK 2000
/*
 * A batch holds PG_LOCK_BATCH for milliseconds, so waiting 2 s for it means
 * the holder is stuck: fail this batch (the client may retry) rather than
 * queue every request behind it. 5 s idle inside a batch is not a slow
 * instance but a stopped or cut-off one: the server rolls its batch back.
 */
#define PG_LOCK_TIMEOUT_MS 2000
#define PG_IDLE_TX_TIMEOUT_MS 5000
#define PG_READ_TIMEOUT_MS 30000

/* Migration N here is the same logical schema N as in store_sqlite.c. */
static const char *const schema_v1[] = {
	"CREATE TABLE IF NOT EXISTS challenges(id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL,"
	" txn_id TEXT NOT NULL, txn_hash BYTEA NOT NULL, challenge BYTEA NOT NULL, created BIGINT NOT NULL,"
	" expires BIGINT NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL, body TEXT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS decisions(txn_id TEXT PRIMARY KEY, txn_hash BYTEA NOT NULL, result TEXT NOT NULL,"
	" reasons TEXT NOT NULL, challenge_id TEXT NOT NULL, created BIGINT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS approvals(txn_id TEXT PRIMARY KEY, customer TEXT NOT NULL, account_type INTEGER"
	" NOT NULL, currency TEXT NOT NULL, day BIGINT NOT NULL, amount BIGINT NOT NULL, device_id TEXT NOT NULL,"
	" ts BIGINT NOT NULL)",
	"CREATE INDEX IF NOT EXISTS approvals_day ON approvals(customer, day, account_type, currency)",
	"CREATE TABLE IF NOT EXISTS devices(customer TEXT NOT NULL, device_id TEXT NOT NULL, first_seen BIGINT"
	" NOT NULL, PRIMARY KEY(customer, device_id))",
	"CREATE TABLE IF NOT EXISTS frozen(account TEXT PRIMARY KEY, reason TEXT NOT NULL, since BIGINT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS lockouts(subject TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked INTEGER"
	" NOT NULL, last_failure BIGINT NOT NULL, total_failures INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS redeemed(jti TEXT PRIMARY KEY, exp BIGINT NOT NULL, ts BIGINT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS credentials(method TEXT NOT NULL, id BYTEA NOT NULL, subject TEXT NOT NULL,"
	" data BYTEA NOT NULL, created BIGINT NOT NULL, state INTEGER NOT NULL, ord BIGSERIAL,"
	" PRIMARY KEY(method, id))",
	"CREATE INDEX IF NOT EXISTS credentials_subject ON credentials(subject, method)",
	"CREATE TABLE IF NOT EXISTS enrollments(id TEXT PRIMARY KEY, subject TEXT NOT NULL, challenge BYTEA NOT NULL,"
	" expires BIGINT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS audit(seq BIGINT PRIMARY KEY CHECK (seq > 0), ts BIGINT NOT NULL, type TEXT,"
	" customer TEXT, account TEXT, txn_hash TEXT, result TEXT, reasons TEXT, method TEXT, jti TEXT, actor TEXT,"
	" prev TEXT NOT NULL, hash TEXT NOT NULL)",
	"CREATE UNIQUE INDEX IF NOT EXISTS audit_prev ON audit(prev)",
};

/* v2 changed only SQLite's physical layout (WITHOUT ROWID tables); nothing to do here. */
static const char *const schema_v2[] = {
	"SELECT 1",
};

/* v3: one running total per (customer, day, account type, currency) instead of a SUM over approvals. */
static const char *const schema_v3[] = {
	"CREATE TABLE IF NOT EXISTS daily_totals(customer TEXT NOT NULL, day BIGINT NOT NULL, account_type INTEGER"
	" NOT NULL, currency TEXT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY(customer, day, account_type,"
	" currency))",
	"INSERT INTO daily_totals SELECT customer, day, account_type, currency,"
	" LEAST(SUM(amount), 9223372036854775807)::bigint FROM approvals GROUP BY customer, day, account_type,"
	" currency ON CONFLICT DO NOTHING",
	"DROP INDEX IF EXISTS approvals_day",
};

/* v4: retention (store_prune_expired): daily totals keyed day first, the expiry columns indexed. */
static const char *const schema_v4[] = {
	"ALTER TABLE daily_totals DROP CONSTRAINT daily_totals_pkey,"
	" ADD PRIMARY KEY(day, customer, account_type, currency)",
	"CREATE INDEX IF NOT EXISTS challenges_expires ON challenges(expires)",
	"CREATE INDEX IF NOT EXISTS enrollments_expires ON enrollments(expires)",
	"CREATE INDEX IF NOT EXISTS redeemed_exp ON redeemed(exp) WHERE jti NOT LIKE 'txn:%'",
};

/*
 * v5: a decision keeps its transfer's source account (a freeze is enforced at
 * redeem). The default keeps instances of the previous version, whose INSERT
 * names its columns, working on a version 5 store.
 */
static const char *const schema_v5[] = {
	"ALTER TABLE decisions ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT ''",
};

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
#define PG_LATEST ((int)(sizeof migrations / sizeof migrations[0]))

enum stmt_id {
	S_CH_PUT, S_CH_GET, S_CH_CONSUME, S_CH_ATTEMPT, S_CH_KILL,
	S_DEC_GET, S_DEC_PUT,
	S_APPR_ADD, S_DEV_ADD, S_TOTAL_LOCK, S_TOTAL, S_TOTAL_ADD, S_DEV_SEEN,
	S_FROZEN_GET, S_FROZEN_ADD, S_FROZEN_DEL,
	S_LOCK_GET, S_LOCK_GET_UPD, S_LOCK_PUT,
	S_JTI,
	S_CRED_ADD, S_CRED_LIST, S_CRED_LIST_ALL, S_CRED_UPDATE, S_CRED_STATE, S_CRED_DEL,
	S_ENR_PUT, S_ENR_TAKE,
	S_AUDIT_ADD, S_AUDIT_SCAN, S_AUDIT_HEAD,
	S_PRUNE_CH, S_PRUNE_ENR, S_PRUNE_JTI, S_PRUNE_TOTALS,
	S__COUNT
};
/* Raw row inserts (store copy) are prepared as S__COUNT + table. */
#define S_ROW_INSERT(t) ((int)S__COUNT + (int)(t))
_Static_assert((int)S__COUNT + (int)ST__COUNT <= 64, "store_conn.prepared has one bit per statement");

static const char *const stmt_sql[S__COUNT] = {
	[S_CH_PUT] = "INSERT INTO challenges(id, kind, subject, txn_id, txn_hash, challenge, created, expires, state,"
	             " attempts, body) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
	[S_CH_GET] = "SELECT kind, subject, txn_id, txn_hash, challenge, created, expires, state, attempts, body"
	             " FROM challenges WHERE id = $1",
	[S_CH_CONSUME] = "UPDATE challenges SET state = 1 WHERE id = $1 AND state = 0 AND expires > $2 RETURNING id",
	[S_CH_ATTEMPT] = "UPDATE challenges SET attempts = attempts + 1 WHERE id = $1",
	[S_CH_KILL] = "UPDATE challenges SET attempts = attempts + 1, state = 2 WHERE id = $1 AND state = 0",
	[S_DEC_GET] = "SELECT txn_hash, result, reasons, challenge_id, created, account FROM decisions"
	              " WHERE txn_id = $1",
	[S_DEC_PUT] = "INSERT INTO decisions(txn_id, txn_hash, result, reasons, challenge_id, created,"
	              " account) VALUES($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (txn_id) DO UPDATE SET"
	              " txn_hash = EXCLUDED.txn_hash,"
	              " result = EXCLUDED.result, reasons = EXCLUDED.reasons, challenge_id = EXCLUDED.challenge_id,"
	              " created = EXCLUDED.created, account = EXCLUDED.account",
	[S_APPR_ADD] = "INSERT INTO approvals(txn_id, customer, account_type, currency, day, amount, device_id, ts)"
	               " VALUES($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
	[S_DEV_ADD] = "INSERT INTO devices(customer, device_id, first_seen) VALUES($1, $2, $3) ON CONFLICT DO NOTHING",
	/* Key space 0x61757468 ("auth") + hashtext(customer): daily totals. */
	[S_TOTAL_LOCK] = "SELECT pg_advisory_xact_lock(1635020904, hashtext($1::text))",
	[S_TOTAL] = "SELECT amount FROM daily_totals WHERE customer = $1 AND day = $2 AND account_type = $3 AND"
	            " currency = $4",
	/* saturating: a total never overflows */
	[S_TOTAL_ADD] = "INSERT INTO daily_totals(customer, day, account_type, currency, amount)"
	                " VALUES($1, $2, $3, $4, $5) ON CONFLICT (customer, day, account_type, currency) DO UPDATE"
	                " SET amount = CASE WHEN daily_totals.amount > 9223372036854775807 - EXCLUDED.amount"
	                " THEN 9223372036854775807 ELSE daily_totals.amount + EXCLUDED.amount END",
	[S_DEV_SEEN] = "SELECT 1 FROM devices WHERE customer = $1 AND device_id = $2",
	[S_FROZEN_GET] = "SELECT 1 FROM frozen WHERE account = $1",
	[S_FROZEN_ADD] = "INSERT INTO frozen(account, reason, since) VALUES($1, $2, $3) ON CONFLICT DO NOTHING",
	[S_FROZEN_DEL] = "DELETE FROM frozen WHERE account = $1",
	[S_LOCK_GET] = "SELECT failures, locked, last_failure, total_failures FROM lockouts WHERE subject = $1",
	[S_LOCK_GET_UPD] = "SELECT failures, locked, last_failure, total_failures FROM lockouts WHERE subject = $1"
	                   " FOR UPDATE",
	[S_LOCK_PUT] = "INSERT INTO lockouts(subject, failures, locked, last_failure, total_failures)"
	               " VALUES($1, $2, $3, $4, $5) ON CONFLICT (subject) DO UPDATE SET failures = EXCLUDED.failures,"
	               " locked = EXCLUDED.locked, last_failure = EXCLUDED.last_failure,"
	               " total_failures = EXCLUDED.total_failures",
	[S_JTI] = "INSERT INTO redeemed(jti, exp, ts) VALUES($1, $2, $3) ON CONFLICT DO NOTHING RETURNING jti",
	[S_CRED_ADD] = "INSERT INTO credentials(method, id, subject, data, created, state) VALUES($1, $2, $3, $4, $5, $6)",
	[S_CRED_LIST] = "SELECT subject, method, id, data, created, state FROM credentials WHERE subject = $1 AND"
	                " method = $2 ORDER BY created, ord",
	[S_CRED_LIST_ALL] = "SELECT subject, method, id, data, created, state FROM credentials WHERE subject = $1"
	                    " ORDER BY created, ord",
	[S_CRED_UPDATE] = "UPDATE credentials SET data = $1 WHERE method = $2 AND id = $3 AND data = $4 AND state = 0",
	[S_CRED_STATE] = "UPDATE credentials SET state = $1 WHERE subject = $2 AND method = $3 AND id = $4",
	[S_CRED_DEL] = "DELETE FROM credentials WHERE subject = $1 AND method = $2",
	[S_ENR_PUT] = "INSERT INTO enrollments(id, subject, challenge, expires) VALUES($1, $2, $3, $4)",
	[S_ENR_TAKE] = "DELETE FROM enrollments WHERE id = $1 RETURNING subject, challenge, expires",
	[S_AUDIT_ADD] = "INSERT INTO audit(seq, ts, type, customer, account, txn_hash, result, reasons, method, jti,"
	                " actor, prev, hash) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
	[S_AUDIT_SCAN] = "SELECT seq, ts, type, customer, account, txn_hash, result, reasons, method, jti, actor,"
	                 " prev, hash FROM audit WHERE seq >= $1 ORDER BY seq LIMIT 2000",
	[S_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	/*
	 * $1 expired before (day before for totals), $2 at most this many rows:
	 * each finds its rows on its v4 index; = ANY(ARRAY(...)) makes the
	 * delete an index (or TID) lookup per row, never a scan of the table.
	 */
	[S_PRUNE_CH] = "DELETE FROM challenges WHERE id = ANY(ARRAY(SELECT id FROM challenges WHERE expires < $1"
	               " LIMIT $2))",
	[S_PRUNE_ENR] = "DELETE FROM enrollments WHERE id = ANY(ARRAY(SELECT id FROM enrollments WHERE expires < $1"
	                " LIMIT $2))",
	[S_PRUNE_JTI] = "DELETE FROM redeemed WHERE jti = ANY(ARRAY(SELECT jti FROM redeemed WHERE exp < $1 AND jti"
	                " NOT LIKE 'txn:%' LIMIT $2))",
	[S_PRUNE_TOTALS] = "DELETE FROM daily_totals WHERE ctid = ANY(ARRAY(SELECT ctid FROM daily_totals WHERE day <"
	                   " $1 LIMIT $2))",
};

struct store_conn {
	PGconn *pg;
	uint64_t prepared; /* bit per statement id, cleared on reconnect */
	int64_t next_try_ms;
	int backoff_ms;
	int sp_open; /* a job savepoint exists: released together with the next SAVEPOINT (one round trip) */
	int readonly;
	int ready; /* connected and session_setup() done since the last (re)connect */
	char url[4096];
};

/* ---------------- connection ---------------- */

static int
pg_accepts(const char *url)
{
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
		return 1;
	/* A libpq keyword string: "host=... dbname=...". */
	return strncmp(url, "sqlite:", 7) != 0 && strchr(url, '=') != NULL && strstr(url, "://") == NULL;
}

static PGconn *
connect_url(const char *url)
{
	/*
	 * Defaults first: the url, expanded in place of dbname, overrides each
	 * one it sets itself (libpq keeps the last value of a keyword). A dead
	 * server or network path is found in ~25 s whatever the connection is
	 * doing: idle or waiting for a reply, keepalive probes after 10 s, every
	 * 5 s, 3 unanswered; sending, tcp_user_timeout. Without them a
	 * half-open connection blocks a statement for ~15 min (retransmissions)
	 * or forever (a reply that never comes). Unix sockets ignore them.
	 */
	const char *const keys[] = {"connect_timeout",
	                            "application_name",
	                            "keepalives",
	                            "keepalives_idle",
	                            "keepalives_interval",
	                            "keepalives_count",
	                            "tcp_user_timeout",
	                            "dbname",
	                            NULL};
	const char *const vals[] = {"3", "authd", "1", "10", "5", "3", "25000", url, NULL};
	return PQconnectdbParams(keys, vals, 1);
}

/*
 * libpq's notice receiver: what the server says outside a result (warnings,
 * and why it ends a session, e.g. 25P03) goes to the log, not to stderr.
 */
static void
notice_log(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	int quiet = sev != NULL && (strcmp(sev, "NOTICE") == 0 || strcmp(sev, "INFO") == 0 ||
	                            strcmp(sev, "LOG") == 0 || strcmp(sev, "DEBUG") == 0);
	(void)arg;
	log_msg(quiet ? LOG_INFO : LOG_WARNING, "store: PostgreSQL %s %s: %s", sev ? sev : "?", st ? st : "?",
	        m ? m : "");
}

/*
 * Session settings, after every (re)connect; 0, or an authd_err with err
 * set. The writer pins synchronous_commit on, whatever the server, database,
 * role or url say: a reply leaves only once its audit record is durable
 * (DESIGN §8). remote_apply, stronger, is kept. A server (or pooler) that
 * does not then report it on is refused. Readers get a statement_timeout, so
 * a reader thread never waits forever (behind a DDL lock, on a stalled
 * server). The writer does not: migrations run on its connection and may be
 * long, and a statement_timeout firing while COMMIT waits for a synchronous
 * standby cancels the wait and reports success with the commit local only.
 * Its batch limits are set per batch (pg_begin).
 */
static int
session_setup(struct store_conn *c, char *err, size_t errlen)
{
	char sql[160];
	if (c->readonly)
		snprintf(sql, sizeof sql, "SET statement_timeout = %d", PG_READ_TIMEOUT_MS);
	else
		snprintf(sql, sizeof sql,
		         "SELECT set_config('synchronous_commit', 'on', false) WHERE"
		         " current_setting('synchronous_commit') <> 'remote_apply'; SHOW synchronous_commit");
	PGresult *res = PQexec(c->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int r = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *m = PQerrorMessage(c->pg);
		snprintf(err, errlen, "cannot set up the PostgreSQL session: %.*s", (int)strcspn(m, "\n"), m);
		r = AUTHD_ERR_UNAVAILABLE;
	} else if (!c->readonly) {
		const char *v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
		if (strcmp(v, "on") != 0 && strcmp(v, "remote_apply") != 0) {
			snprintf(err, errlen,
			         "PostgreSQL reports synchronous_commit '%.32s' after authd set it on:"
			         " authd needs each audit record durable before its reply",
			         v);
			r = AUTHD_ERR_CONFIG;
		}
	}
	PQclear(res);
	return r;
}

static int
pg_conn_open(const char *url, int readonly, struct store_conn **out, char *err, size_t errlen)
{
	struct store_conn *c = calloc(1, sizeof *c);
	int r;
	if (c == NULL)
		return AUTHD_ERR_NOMEM;
	snprintf(c->url, sizeof c->url, "%s", url);
	c->readonly = readonly;
	c->pg = connect_url(url);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
		         c->pg ? PQerrorMessage(c->pg) : "out of memory");
		/* libpq messages end with a newline. */
		size_t n = strlen(err);
		if (n > 0 && err[n - 1] == '\n')
			err[n - 1] = '\0';
		r = c->pg == NULL ? AUTHD_ERR_NOMEM : AUTHD_ERR_UNAVAILABLE;
		goto fail;
	}
	PQsetNoticeReceiver(c->pg, notice_log, NULL); /* kept across PQreset */
	if ((r = session_setup(c, err, errlen)) < 0)
		goto fail;
	c->ready = 1;
	*out = c;
	return 0;
fail:
	PQfinish(c->pg);
	free(c);
	return r;
}

static void
pg_conn_close(struct store_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	free(c);
}

/* Connected, or reconnected now if the backoff allows; else UNAVAILABLE. */
static int
ensure(struct store_conn *c)
{
	if (c->ready && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	int64_t now = store_now_ms();
	if (now < c->next_try_ms)
		return AUTHD_ERR_UNAVAILABLE;
	PQreset(c->pg);
	c->prepared = 0;
	char err[320] = "";
	c->ready = PQstatus(c->pg) == CONNECTION_OK && session_setup(c, err, sizeof err) == 0;
	if (c->ready) {
		if (c->backoff_ms != 0)
			log_msg(LOG_NOTICE, "store: reconnected to PostgreSQL");
		c->backoff_ms = 0;
		c->next_try_ms = 0;
		return 0;
	}
	if (c->backoff_ms == 0)
		log_msg(LOG_ERR, "store: PostgreSQL unavailable, reconnecting with backoff%s%s",
		        err[0] ? ": " : "", err);
	c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN_MS
	                                   : (c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2);
	c->next_try_ms = now + c->backoff_ms;
	return AUTHD_ERR_UNAVAILABLE;
}

static int
map_err(struct store_conn *c, const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/*
	 * Our limits: 55P03 lock_not_available (lock_timeout: another session
	 * holds a lock too long), 57014 query_canceled (a reader's
	 * statement_timeout), 25P03 idle_in_transaction_session_timeout and
	 * 25P04 transaction_timeout (the server ended the session). Worth a log
	 * line: this or another instance, or a DBA's session, is stuck.
	 */
	if (st != NULL && (strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0 || strcmp(st, "25P03") == 0 ||
	                   strcmp(st, "25P04") == 0)) {
		const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		log_msg(LOG_WARNING, "store: PostgreSQL %s: %s", st, m ? m : "");
		return AUTHD_ERR_UNAVAILABLE;
	}
	if (PQstatus(c->pg) != CONNECTION_OK || st == NULL)
		return AUTHD_ERR_UNAVAILABLE;
	if (strcmp(st, "23505") == 0) /* unique_violation */
		return AUTHD_ERR_CONFLICT;
	/* connection, operator intervention, resources, rollback (deadlock, serialization), aborted tx. */
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "57", 2) == 0 || strncmp(st, "53", 2) == 0 ||
	    strncmp(st, "40", 2) == 0 || strcmp(st, "25P02") == 0)
		return AUTHD_ERR_UNAVAILABLE;
	log_msg(LOG_WARNING, "store: PostgreSQL error %s: %s", st, PQresultErrorMessage(res));
	return AUTHD_ERR_INTERNAL;
}

/* Runs a command with no parameters; 0 or an authd_err. */
static int
exec_cmd(struct store_conn *c, const char *sql)
{
	PGresult *res = PQexec(c->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : map_err(c, res);
	PQclear(res);
	return r;
}

/* ---------------- parameters and results ---------------- */

struct params {
	int n;
	const char *v[STORE_ROW_MAX];
	int len[STORE_ROW_MAX];
	int fmt[STORE_ROW_MAX];
	char num[STORE_ROW_MAX][24];
};

static void
p_text(struct params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void
p_i64(struct params *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof p->num[0], "%lld", (long long)v);
	p_text(p, p->num[p->n]);
}

static void
p_blob(struct params *p, const void *b, size_t n)
{
	p->v[p->n] = b != NULL ? b : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n++] = 1;
}

static int
prepare(struct store_conn *c, int id, const char *sql)
{
	char name[16];
	if (c->prepared & (UINT64_C(1) << id))
		return 0;
	snprintf(name, sizeof name, "a%d", id);
	PGresult *res = PQprepare(c->pg, name, sql, 0, NULL);
	int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : map_err(c, res);
	PQclear(res);
	if (r == 0)
		c->prepared |= UINT64_C(1) << id;
	return r;
}

/* Runs prepared statement id; *res (caller PQclears) on success. */
static int
run_id(struct store_conn *c, int id, const char *sql, const struct params *p, PGresult **res)
{
	char name[16];
	*res = NULL;
	TRY(prepare(c, id, sql));
	snprintf(name, sizeof name, "a%d", id);
	PGresult *r0 = PQexecPrepared(c->pg, name, p->n, p->v, p->len, p->fmt, 0);
	ExecStatusType st = PQresultStatus(r0);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*res = r0;
		return 0;
	}
	int r = map_err(c, r0);
	PQclear(r0);
	return r;
}

static int
run(struct store_tx *tx, enum stmt_id id, const struct params *p, PGresult **res)
{
	return run_id(tx->c, (int)id, stmt_sql[id], p, res);
}

/* Runs a statement whose rows do not matter; *changed = affected rows when non-NULL. */
static int
run_n(struct store_tx *tx, enum stmt_id id, const struct params *p, int *changed)
{
	PGresult *res;
	TRY(run(tx, id, p, &res));
	if (changed != NULL)
		*changed = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : atoi(PQcmdTuples(res));
	PQclear(res);
	return 0;
}

static int64_t
get_i64(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void
get_copy(const PGresult *res, int row, int col, char *dst, size_t cap)
{
	snprintf(dst, cap, "%s", PQgetvalue(res, row, col));
}

/* bytea (text output "\x...") into a malloc'd buffer; caller PQfreemem()s *out. */
static int
get_bytea(const PGresult *res, int row, int col, unsigned char **out, size_t *len)
{
	*out = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), len);
	return *out != NULL ? 0 : AUTHD_ERR_NOMEM;
}

static int
get_fixed(const PGresult *res, int row, int col, uint8_t *dst, size_t len)
{
	unsigned char *b;
	size_t n;
	TRY(get_bytea(res, row, col, &b, &n));
	int r = n == len ? 0 : AUTHD_ERR_TAMPERED;
	if (r == 0)
		memcpy(dst, b, len);
	PQfreemem(b);
	return r;
}

/* ---------------- challenges ---------------- */

static int
pg_challenge_put(struct store_tx *tx, const struct store_challenge *c)
{
	struct params p = {0};
	p_text(&p, c->id);
	p_text(&p, c->kind);
	p_text(&p, c->subject);
	p_text(&p, c->txn_id);
	p_blob(&p, c->txn_hash, 32);
	p_blob(&p, c->challenge, 32);
	p_i64(&p, c->created);
	p_i64(&p, c->expires);
	p_i64(&p, c->state);
	p_i64(&p, c->attempts);
	p_text(&p, c->body ? c->body : "{}");
	return run_n(tx, S_CH_PUT, &p, NULL);
}

static int
pg_challenge_get(struct store_tx *tx, const char *id, struct store_challenge *c)
{
	struct params p = {0};
	PGresult *res;
	int r;
	memset(c, 0, sizeof *c);
	p_text(&p, id);
	TRY(run(tx, S_CH_GET, &p, &res));
	if (PQntuples(res) != 1) {
		r = AUTHD_ERR_NOT_FOUND;
		goto out;
	}
	snprintf(c->id, sizeof c->id, "%s", id);
	get_copy(res, 0, 0, c->kind, sizeof c->kind);
	get_copy(res, 0, 1, c->subject, sizeof c->subject);
	get_copy(res, 0, 2, c->txn_id, sizeof c->txn_id);
	if ((r = get_fixed(res, 0, 3, c->txn_hash, 32)) < 0 || (r = get_fixed(res, 0, 4, c->challenge, 32)) < 0)
		goto out;
	c->created = get_i64(res, 0, 5);
	c->expires = get_i64(res, 0, 6);
	c->state = (int)get_i64(res, 0, 7);
	c->attempts = (int)get_i64(res, 0, 8);
	r = (c->body = strdup(PQgetvalue(res, 0, 9))) == NULL ? AUTHD_ERR_NOMEM : 0;
out:
	PQclear(res);
	return r;
}

static int
pg_challenge_consume(struct store_tx *tx, const char *id, int64_t now)
{
	struct params p = {0};
	int n = 0;
	p_text(&p, id);
	p_i64(&p, now);
	TRY(run_n(tx, S_CH_CONSUME, &p, &n));
	return n == 1 ? 0 : AUTHD_ERR_EXPIRED;
}

static int
pg_challenge_attempt(struct store_tx *tx, const char *id, int kill)
{
	struct params p = {0};
	p_text(&p, id);
	return run_n(tx, kill ? S_CH_KILL : S_CH_ATTEMPT, &p, NULL);
}

/* ---------------- decisions ---------------- */

static int
pg_decision_get(struct store_tx *tx, const char *txn_id, struct store_decision *d)
{
	struct params p = {0};
	PGresult *res;
	int r;
	memset(d, 0, sizeof *d);
	p_text(&p, txn_id);
	TRY(run(tx, S_DEC_GET, &p, &res));
	if (PQntuples(res) != 1) {
		r = AUTHD_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = get_fixed(res, 0, 0, d->txn_hash, 32)) < 0)
		goto out;
	get_copy(res, 0, 1, d->result, sizeof d->result);
	get_copy(res, 0, 3, d->challenge_id, sizeof d->challenge_id);
	d->created = get_i64(res, 0, 4);
	get_copy(res, 0, 5, d->account, sizeof d->account);
	r = (d->reasons = strdup(PQgetvalue(res, 0, 2))) == NULL ? AUTHD_ERR_NOMEM : 0;
out:
	PQclear(res);
	return r;
}

static int
pg_decision_put(struct store_tx *tx, const char *txn_id, const struct store_decision *d)
{
	struct params p = {0};
	p_text(&p, txn_id);
	p_blob(&p, d->txn_hash, 32);
	p_text(&p, d->result);
	p_text(&p, d->reasons ? d->reasons : "[]");
	p_text(&p, d->challenge_id);
	p_i64(&p, d->created);
	p_text(&p, d->account);
	return run_n(tx, S_DEC_PUT, &p, NULL);
}

/* ---------------- approvals, totals, devices ---------------- */

static int
pg_approval_add(struct store_tx *tx, const struct store_approval *a, int *added)
{
	struct params p = {0};
	int n = 0;
	p_text(&p, a->txn_id);
	p_text(&p, a->customer);
	p_i64(&p, a->account_type);
	p_text(&p, a->currency);
	p_i64(&p, a->day);
	p_i64(&p, a->amount);
	p_text(&p, a->device_id ? a->device_id : "");
	p_i64(&p, a->ts);
	TRY(run_n(tx, S_APPR_ADD, &p, &n));
	*added = n;
	if (n > 0) {
		struct params t = {0};
		p_text(&t, a->customer);
		p_i64(&t, a->day);
		p_i64(&t, a->account_type);
		p_text(&t, a->currency);
		p_i64(&t, a->amount);
		TRY(run_n(tx, S_TOTAL_ADD, &t, NULL));
	}
	if (a->device_id != NULL && a->device_id[0] != '\0' && !a->device_known) {
		struct params q = {0};
		p_text(&q, a->customer);
		p_text(&q, a->device_id);
		p_i64(&q, a->ts);
		TRY(run_n(tx, S_DEV_ADD, &q, NULL));
	}
	return 0;
}

static int
pg_total_get(struct store_tx *tx, const char *customer, int account_type, const char *currency, int64_t day,
             int64_t *sum)
{
	struct params p = {0};
	PGresult *res;
	*sum = 0;
	if (tx->writable) {
		/* Held to commit: the total and the approval that depends on it are one step per customer. */
		struct params l = {0};
		p_text(&l, customer);
		TRY(run_n(tx, S_TOTAL_LOCK, &l, NULL));
	}
	p_text(&p, customer);
	p_i64(&p, day);
	p_i64(&p, account_type);
	p_text(&p, currency);
	TRY(run(tx, S_TOTAL, &p, &res));
	int r = PQntuples(res) <= 1 ? 0 : AUTHD_ERR_INTERNAL;
	if (r == 0 && PQntuples(res) == 1)
		*sum = get_i64(res, 0, 0); /* no row: nothing approved yet */
	PQclear(res);
	return r;
}

static int
exists(struct store_tx *tx, enum stmt_id id, const char *a, const char *b, int *found)
{
	struct params p = {0};
	*found = 0;
	p_text(&p, a);
	if (b != NULL)
		p_text(&p, b);
	return run_n(tx, id, &p, found);
}

static int
pg_device_seen(struct store_tx *tx, const char *customer, const char *device_id, int *seen)
{
	TRY(exists(tx, S_DEV_SEEN, customer, device_id, seen));
	*seen = *seen > 0;
	return 0;
}

/* ---------------- frozen, lockouts ---------------- */

static int
pg_frozen_get(struct store_tx *tx, const char *account, int *frozen)
{
	TRY(exists(tx, S_FROZEN_GET, account, NULL, frozen));
	*frozen = *frozen > 0;
	return 0;
}

static int
pg_frozen_set(struct store_tx *tx, const char *account, int frozen, const char *reason, int64_t now,
              int *changed)
{
	struct params p = {0};
	p_text(&p, account);
	if (frozen) {
		p_text(&p, reason ? reason : "");
		p_i64(&p, now);
	}
	return run_n(tx, frozen ? S_FROZEN_ADD : S_FROZEN_DEL, &p, changed);
}

static int
pg_lockout_get(struct store_tx *tx, const char *subject, struct store_lockout *l)
{
	struct params p = {0};
	PGresult *res;
	memset(l, 0, sizeof *l);
	p_text(&p, subject);
	/* In a write batch the row stays locked until commit: the counter is read-modify-write. */
	TRY(run(tx, tx->writable ? S_LOCK_GET_UPD : S_LOCK_GET, &p, &res));
	if (PQntuples(res) == 1) {
		l->failures = (int)get_i64(res, 0, 0);
		l->locked = (int)get_i64(res, 0, 1);
		l->last_failure = get_i64(res, 0, 2);
		l->total_failures = (int)get_i64(res, 0, 3);
	}
	PQclear(res);
	return 0;
}

static int
pg_lockout_put(struct store_tx *tx, const char *subject, const struct store_lockout *l)
{
	struct params p = {0};
	p_text(&p, subject);
	p_i64(&p, l->failures);
	p_i64(&p, l->locked);
	p_i64(&p, l->last_failure);
	p_i64(&p, l->total_failures);
	return run_n(tx, S_LOCK_PUT, &p, NULL);
}

/* ---------------- redeemed tokens ---------------- */

static int
pg_jti_redeem(struct store_tx *tx, const char *jti, int64_t exp, int64_t now)
{
	struct params p = {0};
	int n = 0;
	p_text(&p, jti);
	p_i64(&p, exp);
	p_i64(&p, now);
	TRY(run_n(tx, S_JTI, &p, &n));
	return n == 1 ? 0 : AUTHD_ERR_CONFLICT;
}

/* ---------------- credentials ---------------- */

static int
pg_cred_add(struct store_tx *tx, const struct store_cred *c)
{
	struct params p = {0};
	p_text(&p, c->method);
	p_blob(&p, c->id, c->id_len);
	p_text(&p, c->subject);
	p_blob(&p, c->data, c->data_len);
	p_i64(&p, c->created);
	p_i64(&p, c->state);
	return run_n(tx, S_CRED_ADD, &p, NULL);
}

static int
pg_cred_list(struct store_tx *tx, const char *subject, const char *method, struct store_cred **out, size_t *n)
{
	struct params p = {0};
	PGresult *res;
	struct store_cred *v = NULL;
	size_t cnt = 0;
	int r = 0;

	p_text(&p, subject);
	if (method)
		p_text(&p, method);
	TRY(run(tx, method ? S_CRED_LIST : S_CRED_LIST_ALL, &p, &res));
	int rows = PQntuples(res);
	if (rows > 256) {
		r = AUTHD_ERR_TOO_LARGE;
		goto out;
	}
	if (rows > 0 && (v = calloc((size_t)rows, sizeof *v)) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		struct store_cred *c = &v[cnt];
		unsigned char *b = NULL;
		size_t bl = 0;
		get_copy(res, i, 0, c->subject, sizeof c->subject);
		get_copy(res, i, 1, c->method, sizeof c->method);
		if ((r = get_bytea(res, i, 2, &b, &bl)) < 0)
			goto out;
		if (bl > sizeof c->id) {
			PQfreemem(b);
			r = AUTHD_ERR_TAMPERED;
			goto out;
		}
		memcpy(c->id, b, bl);
		c->id_len = bl;
		PQfreemem(b);
		if ((r = get_bytea(res, i, 3, &b, &bl)) < 0)
			goto out;
		if (bl == 0 || (c->data = malloc(bl)) == NULL) {
			PQfreemem(b);
			r = bl == 0 ? AUTHD_ERR_TAMPERED : AUTHD_ERR_NOMEM;
			goto out;
		}
		memcpy(c->data, b, bl);
		OPENSSL_cleanse(b, bl);
		PQfreemem(b);
		c->data_len = bl;
		c->created = get_i64(res, i, 4);
		c->state = (int)get_i64(res, i, 5);
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
out:
	store_creds_free(&v, cnt);
	PQclear(res);
	return r;
}

static int
pg_cred_update(struct store_tx *tx, const char *method, const uint8_t *id, size_t id_len, const uint8_t *old,
               size_t old_len, const uint8_t *data, size_t data_len)
{
	struct params p = {0};
	int n = 0;
	p_blob(&p, data, data_len);
	p_text(&p, method);
	p_blob(&p, id, id_len);
	p_blob(&p, old, old_len);
	TRY(run_n(tx, S_CRED_UPDATE, &p, &n));
	return n == 1 ? 0 : AUTHD_ERR_CONFLICT;
}

static int
pg_cred_set_state(struct store_tx *tx, const char *subject, const char *method, const uint8_t *id, size_t id_len,
                  int state)
{
	struct params p = {0};
	int n = 0;
	p_i64(&p, state);
	p_text(&p, subject);
	p_text(&p, method);
	p_blob(&p, id, id_len);
	TRY(run_n(tx, S_CRED_STATE, &p, &n));
	return n == 1 ? 0 : AUTHD_ERR_NOT_FOUND;
}

static int
pg_cred_delete(struct store_tx *tx, const char *subject, const char *method, int *n)
{
	struct params p = {0};
	p_text(&p, subject);
	p_text(&p, method);
	return run_n(tx, S_CRED_DEL, &p, n);
}

/* ---------------- enrollments ---------------- */

static int
pg_enrollment_put(struct store_tx *tx, const struct store_enrollment *e)
{
	struct params p = {0};
	p_text(&p, e->id);
	p_text(&p, e->subject);
	p_blob(&p, e->challenge, 32);
	p_i64(&p, e->expires);
	return run_n(tx, S_ENR_PUT, &p, NULL);
}

static int
pg_enrollment_take(struct store_tx *tx, const char *id, int64_t now, struct store_enrollment *e)
{
	struct params p = {0};
	PGresult *res;
	int r;
	p_text(&p, id);
	TRY(run(tx, S_ENR_TAKE, &p, &res));
	if (PQntuples(res) != 1) {
		r = AUTHD_ERR_NOT_FOUND;
		goto out;
	}
	snprintf(e->id, sizeof e->id, "%s", id);
	get_copy(res, 0, 0, e->subject, sizeof e->subject);
	if ((r = get_fixed(res, 0, 1, e->challenge, 32)) < 0)
		goto out;
	e->expires = get_i64(res, 0, 2);
	r = e->expires > now ? 0 : AUTHD_ERR_EXPIRED;
out:
	PQclear(res);
	return r;
}

/* ---------------- audit ---------------- */

static int
pg_audit_head(struct store_tx *tx, int64_t *seq, char hash[65])
{
	struct params p = {0};
	PGresult *res;
	*seq = 0;
	memcpy(hash, AUDIT_GENESIS, 65);
	TRY(run(tx, S_AUDIT_HEAD, &p, &res));
	if (PQntuples(res) == 1) {
		*seq = get_i64(res, 0, 0);
		get_copy(res, 0, 1, hash, 65);
	}
	PQclear(res);
	return 0;
}

static int
pg_audit_insert(struct store_tx *tx, const struct audit_rec *rec)
{
	struct params p = {0};
	p_i64(&p, rec->seq);
	p_i64(&p, rec->ts);
	p_text(&p, rec->type);
	p_text(&p, rec->customer);
	p_text(&p, rec->account);
	p_text(&p, rec->txn_hash);
	p_text(&p, rec->result);
	p_text(&p, rec->reasons ? rec->reasons : "[]");
	p_text(&p, rec->method);
	p_text(&p, rec->jti);
	p_text(&p, rec->actor);
	p_text(&p, rec->prev);
	p_text(&p, rec->hash);
	return run_n(tx, S_AUDIT_ADD, &p, NULL);
}

static const char *
get_text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int
pg_audit_scan(struct store_tx *tx, int64_t from_seq, store_audit_cb cb, void *arg)
{
	for (;;) {
		struct params p = {0};
		PGresult *res;
		p_i64(&p, from_seq);
		TRY(run(tx, S_AUDIT_SCAN, &p, &res));
		int rows = PQntuples(res);
		for (int i = 0; i < rows; i++) {
			struct audit_rec rec = {
				.seq = get_i64(res, i, 0),
				.ts = get_i64(res, i, 1),
				.type = get_text_or_null(res, i, 2),
				.customer = get_text_or_null(res, i, 3),
				.account = get_text_or_null(res, i, 4),
				.txn_hash = get_text_or_null(res, i, 5),
				.result = get_text_or_null(res, i, 6),
				.reasons = get_text_or_null(res, i, 7),
				.method = get_text_or_null(res, i, 8),
				.jti = get_text_or_null(res, i, 9),
				.actor = get_text_or_null(res, i, 10),
			};
			get_copy(res, i, 11, rec.prev, sizeof rec.prev);
			get_copy(res, i, 12, rec.hash, sizeof rec.hash);
			from_seq = rec.seq + 1;
			if (cb(&rec, arg) != 0) {
				PQclear(res);
				return 0;
			}
		}
		PQclear(res);
		if (rows < SCAN_CHUNK)
			return 0;
	}
}

static int
pg_count(struct store_tx *tx, const char *what, int64_t *n)
{
	static const char *const tables[] = {"audit", "challenges", "decisions", "approvals", "frozen",
	                                     "redeemed", "credentials", "lockouts"};
	char sql[128];
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		if (strcmp(what, tables[i]) != 0)
			continue;
		if (strcmp(what, "lockouts") == 0)
			snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM lockouts WHERE locked = 1");
		else
			snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", tables[i]);
		PGresult *res = PQexec(tx->c->pg, sql);
		int r = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 ? 0 : map_err(tx->c, res);
		if (r == 0)
			*n = get_i64(res, 0, 0);
		PQclear(res);
		return r;
	}
	return AUTHD_ERR_NOT_FOUND;
}

static int
pg_prune(struct store_tx *tx, const struct store_prune *p, struct store_pruned *out)
{
	const struct {
		enum stmt_id id;
		int64_t before;
		int64_t *n;
	} steps[] = {{S_PRUNE_CH, p->expired_before, &out->challenges},
	             {S_PRUNE_ENR, p->expired_before, &out->enrollments},
	             {S_PRUNE_JTI, p->expired_before, &out->redeemed},
	             {S_PRUNE_TOTALS, p->day_before, &out->daily_totals}};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct params q = {0};
		int n = 0;
		p_i64(&q, steps[i].before);
		p_i64(&q, p->limit);
		TRY(run_n(tx, steps[i].id, &q, &n));
		*steps[i].n = n;
	}
	return 0;
}

/* ---------------- transactions ---------------- */

static int
pg_begin(struct store_conn *c, int writable)
{
	/*
	 * Write batches: one at a time across every instance, lock taken before
	 * anything else. READ COMMITTED whatever default_transaction_isolation
	 * says: every statement then reads what was committed when it started,
	 * so what the batch reads after the lock (audit chain head, daily
	 * totals, lockout counters) includes every batch serialized before it.
	 * Under REPEATABLE READ or SERIALIZABLE the snapshot would be taken by
	 * the lock-acquiring SELECT, before the lock is granted: a stale chain
	 * head (a unique violation on prev) and stale totals (40001).
	 * The limits are local to the batch (SET LOCAL): the migrations, on the
	 * same connection, must be able to wait for each other's lock.
	 */
	char sql[256];
	if (writable)
		snprintf(
		    sql, sizeof sql,
		    "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE; SET LOCAL lock_timeout = %d;"
		    " SET LOCAL idle_in_transaction_session_timeout = %d; SELECT pg_advisory_xact_lock(%lld)",
		    PG_LOCK_TIMEOUT_MS, PG_IDLE_TX_TIMEOUT_MS, (long long)PG_LOCK_BATCH);
	else
		snprintf(sql, sizeof sql, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	c->sp_open = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		TRY(ensure(c));
		int r = exec_cmd(c, sql);
		if (r == 0)
			return 0;
		if (PQstatus(c->pg) == CONNECTION_OK) {
			(void)exec_cmd(c, "ROLLBACK");
			return r;
		}
		/* The server went away since the last batch: one immediate reconnect. */
		c->next_try_ms = 0;
	}
	return AUTHD_ERR_UNAVAILABLE;
}

static int
pg_commit(struct store_conn *c)
{
	PGresult *res = PQexec(c->pg, "COMMIT");
	int r;
	c->sp_open = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = map_err(c, res);
	else /* an aborted transaction "commits" as ROLLBACK */
		r = strcmp(PQcmdStatus(res), "COMMIT") == 0 ? 0 : AUTHD_ERR_UNAVAILABLE;
	PQclear(res);
	return r;
}

static void
pg_rollback(struct store_conn *c)
{
	c->sp_open = 0;
	if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		(void)exec_cmd(c, "ROLLBACK");
}

static int
pg_savepoint(struct store_conn *c)
{
	int r = exec_cmd(c, c->sp_open ? "RELEASE SAVEPOINT job; SAVEPOINT job" : "SAVEPOINT job");
	c->sp_open = r == 0;
	return r;
}

static int
pg_savepoint_release(struct store_conn *c)
{
	/* Deferred to the next job's SAVEPOINT, or to COMMIT (which releases it). */
	(void)c;
	return 0;
}

static int
pg_savepoint_rollback(struct store_conn *c)
{
	/* The savepoint stays; the next SAVEPOINT releases it. */
	return exec_cmd(c, "ROLLBACK TO SAVEPOINT job");
}

static int
pg_in_tx(struct store_conn *c)
{
	/* INERROR: a statement failed, the transaction is still there to roll back (to the savepoint) */
	PGTransactionStatusType t = PQtransactionStatus(c->pg);
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* ---------------- schema ---------------- */

static int
read_version(struct store_conn *c, int *version)
{
	*version = 0;
	PGresult *res = PQexec(c->pg, "SELECT v FROM meta WHERE k = 'schema_version'");
	int r = 0;
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		if (PQntuples(res) == 1)
			*version = atoi(PQgetvalue(res, 0, 0));
	} else {
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		/* 42P01: no meta table, so no schema. */
		r = st != NULL && strcmp(st, "42P01") == 0 ? 0 : map_err(c, res);
	}
	PQclear(res);
	return r;
}

static int
pg_schema_version(struct store_conn *c, int *version)
{
	/* Inside a read transaction: a failed query would abort it, so probe with to_regclass first. */
	PGresult *res = PQexec(c->pg, "SELECT to_regclass('meta') IS NOT NULL");
	int r = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : map_err(c, res);
	int have = r == 0 && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	*version = 0;
	if (r < 0 || !have)
		return r;
	return read_version(c, version);
}

static int
pg_migrate(struct store_conn *c, int *version, char *err, size_t errlen)
{
	char sql[128];
	int r, v = 0;

	/* Session lock: one process migrates, the others wait and then find nothing to do. */
	snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)PG_LOCK_MIGRATE);
	if ((r = exec_cmd(c, sql)) < 0)
		goto fail;
	if ((r = exec_cmd(c, "SET client_min_messages = warning")) < 0 ||
	    (r = exec_cmd(c, "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL)")) < 0 ||
	    (r = read_version(c, &v)) < 0)
		goto unlock;
	if (v > PG_LATEST) {
		snprintf(err, errlen, "store schema version %d is newer than this authd (%d)", v, PG_LATEST);
		r = AUTHD_ERR_CONFIG;
		goto unlock;
	}
	for (int m = v; m < PG_LATEST; m++) {
		if ((r = exec_cmd(c, "BEGIN")) < 0)
			goto unlock;
		for (size_t i = 0; i < migrations[m].n && r == 0; i++)
			r = exec_cmd(c, migrations[m].sql[i]);
		snprintf(sql, sizeof sql,
		         "INSERT INTO meta VALUES('schema_version', '%d') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
		         m + 1);
		if (r == 0)
			r = exec_cmd(c, sql);
		if (r == 0)
			r = pg_commit(c);
		if (r < 0) {
			pg_rollback(c);
			snprintf(err, errlen, "PostgreSQL migration %d failed: %s", m + 1, PQerrorMessage(c->pg));
			goto unlock;
		}
		log_msg(LOG_NOTICE, "store: PostgreSQL schema migrated to version %d", m + 1);
	}
	*version = PG_LATEST;
unlock:
	snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", (long long)PG_LOCK_MIGRATE);
	(void)exec_cmd(c, sql);
fail:
	if (r < 0 && err[0] == '\0')
		snprintf(err, errlen, "cannot initialise PostgreSQL store: %s", PQerrorMessage(c->pg));
	return r;
}

/* ---------------- raw rows (store copy) ---------------- */

static int
pg_rows_scan(struct store_tx *tx, enum store_table_id t, store_row_cb cb, void *arg)
{
	const struct store_table_desc *d = &store_tables[t];
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT %s FROM %s%s", d->cols, d->name,
	         t == ST_AUDIT ? " ORDER BY seq" : t == ST_CREDENTIALS ? " ORDER BY ord" : "");
	PGresult *res = PQexec(tx->c->pg, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int r = map_err(tx->c, res);
		PQclear(res);
		return r;
	}
	int rows = PQntuples(res), r = 0;
	for (int i = 0; i < rows && r == 0; i++) {
		struct store_row row = {.n = (int)strlen(d->types)};
		unsigned char *blobs[STORE_ROW_MAX] = {0};
		for (int k = 0; k < row.n; k++) {
			struct store_val *v = &row.v[k];
			v->null = PQgetisnull(res, i, k);
			if (d->types[k] == 'I')
				v->i = get_i64(res, i, k);
			else if (d->types[k] == 'B' && !v->null) {
				if ((r = get_bytea(res, i, k, &blobs[k], &v->len)) < 0)
					break;
				v->b = blobs[k];
			} else
				v->s = v->null ? NULL : PQgetvalue(res, i, k);
		}
		if (r == 0 && cb(&row, arg) != 0)
			i = rows;
		for (int k = 0; k < row.n; k++)
			PQfreemem(blobs[k]);
	}
	PQclear(res);
	return r;
}

static int
pg_row_insert(struct store_tx *tx, enum store_table_id t, const struct store_row *row)
{
	const struct store_table_desc *d = &store_tables[t];
	char sql[512];
	size_t n = strlen(d->types);
	struct params p = {0};
	PGresult *res;
	if ((size_t)row->n != n)
		return AUTHD_ERR_INTERNAL;
	int off = snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES($1", d->name, d->cols);
	for (size_t i = 1; i < n; i++)
		off += snprintf(sql + off, sizeof sql - (size_t)off, ", $%zu", i + 1);
	snprintf(sql + off, sizeof sql - (size_t)off, ")");
	for (int i = 0; i < row->n; i++) {
		const struct store_val *v = &row->v[i];
		if (v->null)
			p_text(&p, NULL);
		else if (d->types[i] == 'I')
			p_i64(&p, v->i);
		else if (d->types[i] == 'B')
			p_blob(&p, v->b, v->len);
		else
			p_text(&p, v->s);
	}
	TRY(run_id(tx->c, S_ROW_INSERT(t), sql, &p, &res));
	PQclear(res);
	return 0;
}

static int
pg_rows_count(struct store_tx *tx, enum store_table_id t, int64_t *n)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", store_tables[t].name);
	PGresult *res = PQexec(tx->c->pg, sql);
	int r = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 ? 0 : map_err(tx->c, res);
	*n = r == 0 ? get_i64(res, 0, 0) : 0;
	PQclear(res);
	return r;
}

const struct store_backend store_backend_pg = {
	.kind = "postgresql",
	.latest_version = PG_LATEST,
	.accepts = pg_accepts,
	.conn_open = pg_conn_open,
	.conn_close = pg_conn_close,
	.migrate = pg_migrate,
	.schema_version = pg_schema_version,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.savepoint = pg_savepoint,
	.savepoint_release = pg_savepoint_release,
	.savepoint_rollback = pg_savepoint_rollback,
	.in_tx = pg_in_tx,
	.challenge_put = pg_challenge_put,
	.challenge_get = pg_challenge_get,
	.challenge_consume = pg_challenge_consume,
	.challenge_attempt = pg_challenge_attempt,
	.decision_get = pg_decision_get,
	.decision_put = pg_decision_put,
	.approval_add = pg_approval_add,
	.total_get = pg_total_get,
	.device_seen = pg_device_seen,
	.frozen_get = pg_frozen_get,
	.frozen_set = pg_frozen_set,
	.lockout_get = pg_lockout_get,
	.lockout_put = pg_lockout_put,
	.jti_redeem = pg_jti_redeem,
	.cred_add = pg_cred_add,
	.cred_list = pg_cred_list,
	.cred_update = pg_cred_update,
	.cred_set_state = pg_cred_set_state,
	.cred_delete = pg_cred_delete,
	.enrollment_put = pg_enrollment_put,
	.enrollment_take = pg_enrollment_take,
	.audit_head = pg_audit_head,
	.audit_insert = pg_audit_insert,
	.audit_scan = pg_audit_scan,
	.count = pg_count,
	.prune = pg_prune,
	.rows_scan = pg_rows_scan,
	.row_insert = pg_row_insert,
	.rows_count = pg_rows_count,
};
