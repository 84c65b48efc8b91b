/*
 * The generic store layer: backend choice by [store] url, the single writer
 * thread doing group commit (one batch transaction, one savepoint per job),
 * per-thread read connections, the audit chain arithmetic and the health
 * state. Backends (store_sqlite.c, store_pg.c) hold all of the SQL.
 *
 * Durability: when the backend's commit is not durable by itself (SQLite:
 * it has a sync hook), the writer hands each committed batch to the syncer
 * thread and starts the next batch at once; the syncer makes everything
 * committed so far durable in one call (a WAL fdatasync) and only then
 * wakes the batches' callers. So the disk flush of batch N overlaps the SQL
 * of batch N+1, and one flush covers every batch committed while the last
 * one ran. Reads wait for the same flush (store_read), so nothing read is
 * less durable than what was answered.
 *
 * A failed flush is fatal until the store is opened again (authd restarted),
 * as a failed fsync is for PostgreSQL: Linux reports a writeback error once
 * and marks the pages clean, so the next flush succeeds although frames of
 * the failed one may never reach the disk, and after a crash SQLite's WAL
 * recovery stops at the first missing frame and drops every later one. So
 * from then on no write is acknowledged and no read answered (both fail
 * with AUTHD_ERR_UNAVAILABLE), health says a restart is needed, and the log
 * says so once.
 *
 * SQLite rolls a whole transaction back by itself on some errors (I/O, disk
 * full, out of memory). A batch whose transaction is gone, or whose
 * savepoint cannot be rolled back or released, fails as a whole: otherwise
 * the next job's SAVEPOINT would open a new transaction and commit alone,
 * after an audit record that vanished.
 *
 * The audit chain head is never cached across batches: the first append of
 * a batch reads (seq, hash) from the table, inside the batch transaction,
 * which the backend serializes against every other writer (BEGIN IMMEDIATE
 * for SQLite, an advisory lock for PostgreSQL). So several processes on one
 * database append to one chain without fork or gap.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit.h"
#include "log.h"
#include "store_int.h"
#include "util.h"

#define BATCH_MAX 512
#define IDLE_MS 1000

/* STATE_FAILED (a flush failed) is for good: only opening the store again clears it. */
enum store_state { STATE_OK = 0, STATE_COMMIT_FAILED = 1, STATE_UNAVAILABLE = 2, STATE_FAILED = 3 };

/* One caller of store_write_many(), waiting for its jobs; woken alone, never by a broadcast. */
struct waiter {
	pthread_cond_t cv;
	size_t left;
};

struct job {
	struct store_work *w;
	struct waiter *waiter;
	struct job *next;
};

struct rconn {
	struct store_conn *c;
	struct rconn *next;
};

struct store {
	const struct store_backend *be;
	char url[4096];
	struct store_conn *writer_conn;
	pthread_t writer;
	int writer_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work;
	struct job *head, *tail;
	int stop;
	/* syncer (only when be->sync): committed batches waiting for their flush, under mu */
	pthread_t syncer;
	int syncer_started, sync_stop;
	pthread_cond_t cv_sync, cv_synced;
	struct job *sync_head, *sync_tail;
	/* numbers of batches: the last whose COMMIT began, the last handed to the syncer, the last flushed */
	uint64_t commit_no, sync_upto, synced;
	int last_batch_ok; /* the last batch handed to the syncer committed */
	int flush_failed;  /* a flush failed: synced stays where it was, for good (state is STATE_FAILED) */
	atomic_int state;
	int schema_version;
	pthread_key_t reader_key;
	struct rconn *readers;
	pthread_mutex_t readers_mu;
};

const struct store_table_desc store_tables[ST__COUNT] = {
	[ST_CHALLENGES] = {"challenges", "id,kind,subject,txn_id,txn_hash,challenge,created,expires,state,attempts,body",
	                   "TTTTBBIIIIT"},
	[ST_DECISIONS] = {"decisions", "txn_id,txn_hash,result,reasons,challenge_id,created,account",
	                  "TBTTTIT"},
	[ST_APPROVALS] = {"approvals", "txn_id,customer,account_type,currency,day,amount,device_id,ts", "TTITIITI"},
	[ST_DAILY_TOTALS] = {"daily_totals", "customer,day,account_type,currency,amount", "TIITI"},
	[ST_DEVICES] = {"devices", "customer,device_id,first_seen", "TTI"},
	[ST_FROZEN] = {"frozen", "account,reason,since", "TTI"},
	[ST_LOCKOUTS] = {"lockouts", "subject,failures,locked,last_failure,total_failures", "TIIII"},
	[ST_REDEEMED] = {"redeemed", "jti,exp,ts", "TII"},
	[ST_CREDENTIALS] = {"credentials", "method,id,subject,data,created,state", "TBTBII"},
	[ST_ENROLLMENTS] = {"enrollments", "id,subject,challenge,expires", "TTBI"},
	[ST_AUDIT] = {"audit", "seq,ts,type,customer,account,txn_hash,result,reasons,method,jti,actor,prev,hash",
	              "IITTTTTTTTTTT"},
};

int64_t
store_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct store_backend *const backends[] = {&store_backend_sqlite, &store_backend_pg};

static const struct store_backend *
backend_for(const char *url)
{
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (backends[i]->accepts(url))
			return backends[i];
	return NULL;
}

static void
set_state(struct store *s, int r)
{
	int want = r == 0 ? STATE_OK : r == AUTHD_ERR_UNAVAILABLE ? STATE_UNAVAILABLE : STATE_COMMIT_FAILED;
	int cur = atomic_load(&s->state);
	while (cur != STATE_FAILED && !atomic_compare_exchange_weak(&s->state, &cur, want))
		;
}

/* ---------------- the writer ---------------- */

static void
fail_all(struct job *batch, int r)
{
	for (struct job *j = batch; j; j = j->next)
		j->w->result = r;
}

/*
 * The batch's transaction is gone (the backend rolled it back by itself) or
 * a savepoint could not be rolled back or released, so what is left of the
 * transaction holds no known state: roll it back, forget the chain head read
 * in it (the next batch reads it from the store again), and fail every job
 * (fail closed: none may report success), as a failed COMMIT does.
 */
static int
batch_lost(struct store *s, struct store_tx *tx, struct job *batch)
{
	s->be->rollback(s->writer_conn);
	tx->head_loaded = 0;
	set_state(s, AUTHD_ERR_UNAVAILABLE);
	fail_all(batch, AUTHD_ERR_UNAVAILABLE);
	return AUTHD_ERR_UNAVAILABLE;
}

/*
 * Runs the batch in one transaction. Each job gets a savepoint, so a failing
 * job's changes are undone alone, unless every job is STORE_WORK_RERUN: then
 * the savepoints (a copy of every page a job touches) are skipped, and the
 * first failure rolls the whole batch back and runs it again with them.
 * Either way the transaction must still be open after each job: else the
 * next job would run in a transaction of its own (or none), committed alone.
 * 0: the batch is committed (every job's result is set); < 0: it failed as
 * a whole.
 */
static int
run_batch(struct store *s, struct job *batch)
{
	const struct store_backend *be = s->be;
	struct store_conn *c = s->writer_conn;
	int fast = 1;
	if (atomic_load(&s->state) == STATE_FAILED) {
		/* a flush failed: nothing is written until the store is opened again */
		fail_all(batch, AUTHD_ERR_UNAVAILABLE);
		return AUTHD_ERR_UNAVAILABLE;
	}
	for (struct job *j = batch; j; j = j->next)
		if (!(j->w->flags & STORE_WORK_RERUN))
			fast = 0;
	for (;;) {
		struct store_tx tx = {.s = s, .c = c, .writable = 1};
		int r = be->begin(c, 1), retry = 0;
		if (r < 0) {
			set_state(s, AUTHD_ERR_UNAVAILABLE);
			fail_all(batch, AUTHD_ERR_UNAVAILABLE);
			return r;
		}
		for (struct job *j = batch; j && !retry; j = j->next) {
			if (fast) {
				j->w->result = j->w->fn(&tx, j->w->arg);
				if (!be->in_tx(c))
					return batch_lost(s, &tx, batch);
				if (j->w->result < 0)
					retry = 1;
				continue;
			}
			int loaded0 = tx.head_loaded;
			int64_t seq0 = tx.head_seq;
			char hash0[65];
			memcpy(hash0, tx.head_hash, 65);
			/* (PostgreSQL: SAVEPOINT also releases the previous job's) */
			if (be->savepoint(c) < 0)
				return batch_lost(s, &tx, batch);
			j->w->result = j->w->fn(&tx, j->w->arg);
			if (j->w->result < 0) {
				if (be->savepoint_rollback(c) < 0)
					return batch_lost(s, &tx, batch);
				tx.head_loaded = loaded0;
				tx.head_seq = seq0;
				memcpy(tx.head_hash, hash0, 65);
			}
			if (be->savepoint_release(c) < 0 || !be->in_tx(c))
				return batch_lost(s, &tx, batch);
		}
		if (retry) {
			be->rollback(c);
			fast = 0;
			continue;
		}
		/* from here a reader may see the batch: it waits for this number's flush (store_read) */
		pthread_mutex_lock(&s->mu);
		s->commit_no++;
		pthread_mutex_unlock(&s->mu);
		if ((r = be->commit(c)) < 0) {
			be->rollback(c);
			set_state(s, r == AUTHD_ERR_UNAVAILABLE ? r : AUTHD_ERR_INTERNAL);
			/* Nothing of the batch is known to be durable: no job may report success. */
			fail_all(batch, AUTHD_ERR_UNAVAILABLE);
			return r;
		}
		/* with a syncer, health turns ok only once the flush succeeded */
		if (be->sync == NULL)
			set_state(s, 0);
		return 0;
	}
}

/* Wakes the callers of a finished batch; caller holds s->mu. */
static void
wake_batch(struct job *batch)
{
	for (struct job *j = batch; j;) {
		struct job *next = j->next; /* j may vanish once its waiter is woken */
		struct waiter *w = j->waiter;
		if (--w->left == 0)
			pthread_cond_signal(&w->cv);
		j = next;
	}
}

static void
log_flush_failed(int err)
{
	log_msg(
	    LOG_CRIT,
	    "store: flushing the WAL to disk failed (%s); changes committed since the last good flush may be"
	    " lost in a crash. Every write and read now fails: restart authd (after checking the disk)",
	    strerror(err));
}

/*
 * The syncer: flushes every batch committed so far with one be->sync(), then
 * wakes their callers. A failed flush fails every job it covered: their
 * changes are committed but of unknown durability, so none may be answered
 * as a success (fail closed). It is fatal (see the top of this file): every
 * later batch is failed without a flush, synced never moves again (readers
 * fail), health says so, and the log says it once.
 */
static void *
syncer_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->sync_head == NULL && !s->sync_stop)
			pthread_cond_wait(&s->cv_sync, &s->mu);
		if (s->sync_head == NULL)
			break;
		struct job *batch = s->sync_head;
		uint64_t upto = s->sync_upto;
		int last_ok = s->last_batch_ok, failed = s->flush_failed;
		s->sync_head = s->sync_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		int r = failed ? AUTHD_ERR_IO : s->be->sync(s->writer_conn), err = errno;
		if (r < 0) {
			for (struct job *j = batch; j; j = j->next)
				if (j->w->result >= 0)
					j->w->result = AUTHD_ERR_UNAVAILABLE;
			if (!failed) {
				atomic_store(&s->state, STATE_FAILED);
				log_flush_failed(err);
			}
		} else if (last_ok)
			set_state(s, 0); /* else the writer's failure state stands */
		pthread_mutex_lock(&s->mu);
		if (r < 0)
			s->flush_failed = 1;
		else
			s->synced = upto;
		pthread_cond_broadcast(&s->cv_synced);
		wake_batch(batch);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Idle: when the store is unavailable, try to get it back (the backend applies its backoff). */
static void
idle_probe(struct store *s)
{
	if (atomic_load(&s->state) != STATE_UNAVAILABLE)
		return;
	if (s->be->begin(s->writer_conn, 0) == 0) {
		(void)s->be->commit(s->writer_conn);
		set_state(s, 0);
	}
}

static void *
writer_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->head == NULL && !s->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += IDLE_MS / 1000;
			if (pthread_cond_timedwait(&s->cv_work, &s->mu, &ts) != 0 && s->head == NULL && !s->stop) {
				pthread_mutex_unlock(&s->mu);
				idle_probe(s);
				pthread_mutex_lock(&s->mu);
			}
		}
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
		int r = run_batch(s, batch);
		pthread_mutex_lock(&s->mu);
		if (s->be->sync != NULL) {
			/*
			 * Durable only after the syncer's flush: hand it over (failed
			 * batches too, so readers' waits always end) and go on with the
			 * next batch.
			 */
			if (s->sync_tail)
				s->sync_tail->next = batch;
			else
				s->sync_head = batch;
			s->sync_tail = last;
			s->sync_upto = s->commit_no;
			s->last_batch_ok = r == 0;
			pthread_cond_signal(&s->cv_sync);
		} else
			wake_batch(batch);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

#define MANY_STACK 64

void
store_write_many(struct store *s, struct store_work *w, size_t n)
{
	struct job stack_jobs[MANY_STACK], *jobs = stack_jobs;
	struct waiter wt = {.left = n};

	if (n == 0)
		return;
	if (n > MANY_STACK && (jobs = calloc(n, sizeof *jobs)) == NULL) {
		for (size_t i = 0; i < n; i++)
			w[i].result = AUTHD_ERR_NOMEM;
		return;
	}
	for (size_t i = 0; i < n; i++)
		jobs[i] = (struct job){&w[i], &wt, i + 1 < n ? &jobs[i + 1] : NULL};
	pthread_cond_init(&wt.cv, NULL);
	pthread_mutex_lock(&s->mu);
	if (s->stop || atomic_load(&s->state) == STATE_FAILED) {
		for (size_t i = 0; i < n; i++)
			w[i].result = AUTHD_ERR_UNAVAILABLE;
	} else {
		if (s->tail)
			s->tail->next = &jobs[0];
		else
			s->head = &jobs[0];
		s->tail = &jobs[n - 1];
		pthread_cond_signal(&s->cv_work);
		while (wt.left > 0)
			pthread_cond_wait(&wt.cv, &s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	pthread_cond_destroy(&wt.cv);
	if (jobs != stack_jobs)
		free(jobs);
}

int
store_write(struct store *s, store_fn fn, void *arg)
{
	struct store_work w = {fn, arg, 0, 0};
	store_write_many(s, &w, 1);
	return w.result;
}

/* ---------------- readers ---------------- */

static struct store_conn *
reader_conn(struct store *s)
{
	struct rconn *rc = pthread_getspecific(s->reader_key);
	if (rc != NULL)
		return rc->c;
	char err[256];
	if ((rc = calloc(1, sizeof *rc)) == NULL)
		return NULL;
	if (s->be->conn_open(s->url, 1, &rc->c, err, sizeof err) < 0) {
		free(rc);
		return NULL;
	}
	pthread_mutex_lock(&s->readers_mu);
	rc->next = s->readers;
	s->readers = rc;
	pthread_mutex_unlock(&s->readers_mu);
	pthread_setspecific(s->reader_key, rc);
	return rc->c;
}

int
store_read(struct store *s, store_fn fn, void *arg)
{
	/* after a failed flush, what a read sees may never be durable */
	if (atomic_load(&s->state) == STATE_FAILED)
		return AUTHD_ERR_UNAVAILABLE;
	struct store_conn *c = reader_conn(s);
	if (c == NULL)
		return AUTHD_ERR_UNAVAILABLE;
	struct store_tx tx = {.s = s, .c = c};
	if (s->be->begin(c, 0) < 0)
		return AUTHD_ERR_UNAVAILABLE;
	int r = fn(&tx, arg);
	if (s->be->commit(c) < 0)
		s->be->rollback(c);
	if (s->be->sync != NULL) {
		/* What this read saw may be committed but not yet flushed: answer only once it is durable. */
		pthread_mutex_lock(&s->mu);
		uint64_t want = s->commit_no;
		while (s->synced < want && !s->flush_failed)
			pthread_cond_wait(&s->cv_synced, &s->mu);
		/* the flush that was to cover what it saw failed: not answered */
		if (s->synced < want && r >= 0)
			r = AUTHD_ERR_UNAVAILABLE;
		pthread_mutex_unlock(&s->mu);
	}
	return r;
}

const char *
store_health(struct store *s)
{
	switch (atomic_load(&s->state)) {
	case STATE_OK: return "ok";
	case STATE_UNAVAILABLE: return "unavailable (reconnecting)";
	case STATE_FAILED:
		return "failed: WAL flush error, restart authd";
	default: return "last commit failed";
	}
}

const char *
store_kind(const struct store *s)
{
	return s->be->kind;
}

/* ---------------- open / close ---------------- */

int
store_open_url(const char *url, const char *state_dir, int flags, struct store **out, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof *s);
	int r;

	*out = NULL;
	err[0] = '\0';
	if (s == NULL)
		return AUTHD_ERR_NOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->readers_mu, NULL);
	pthread_cond_init(&s->cv_work, NULL);
	pthread_cond_init(&s->cv_sync, NULL);
	pthread_cond_init(&s->cv_synced, NULL);
	pthread_key_create(&s->reader_key, NULL);
	int n = url != NULL && url[0] != '\0' ? snprintf(s->url, sizeof s->url, "%s", url)
	                                      : snprintf(s->url, sizeof s->url, "sqlite:%s/authd.db", state_dir);
	if (n < 0 || (size_t)n >= sizeof s->url) {
		snprintf(err, errlen, "[store] url too long");
		r = AUTHD_ERR_CONFIG;
		goto fail;
	}
	if ((s->be = backend_for(s->url)) == NULL) {
		snprintf(err, errlen,
		         "[store] url: unsupported store '%.200s' (sqlite:PATH, postgresql://..., postgres://... or a"
		         " libpq keyword string)",
		         s->url);
		r = AUTHD_ERR_CONFIG;
		goto fail;
	}
	mode_t old = umask(077);
	r = s->be->conn_open(s->url, 0, &s->writer_conn, err, errlen);
	umask(old);
	if (r < 0)
		goto fail;
	if (!(flags & STORE_OPEN_NO_MIGRATE) && (r = s->be->migrate(s->writer_conn, &s->schema_version, err, errlen)) < 0)
		goto fail;
	if (s->be->sync != NULL) {
		if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
			r = AUTHD_ERR_INTERNAL;
			goto fail;
		}
		s->syncer_started = 1;
		(void)pthread_setname_np(s->syncer, "authd-sync");
	}
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		r = AUTHD_ERR_INTERNAL;
		goto fail;
	}
	s->writer_started = 1;
	(void)pthread_setname_np(s->writer, "authd-writer");
	*out = s;
	return 0;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "cannot open store: %s", authd_strerror(r));
	store_close(&s);
	return r;
}

int
store_open(const struct config *cfg, struct store **out, char *err, size_t errlen)
{
	return store_open_url(cfg->store.url, cfg->server.state_dir, 0, out, err, errlen);
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
	if (s->syncer_started) {
		/* after the writer: it flushes what the writer's last batches committed */
		pthread_mutex_lock(&s->mu);
		s->sync_stop = 1;
		pthread_cond_signal(&s->cv_sync);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->syncer, NULL);
	}
	if (s->writer_conn)
		s->be->conn_close(s->writer_conn);
	for (struct rconn *c = s->readers, *n; c; c = n) {
		n = c->next;
		s->be->conn_close(c->c);
		free(c);
	}
	pthread_key_delete(s->reader_key);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->readers_mu);
	pthread_cond_destroy(&s->cv_work);
	pthread_cond_destroy(&s->cv_sync);
	pthread_cond_destroy(&s->cv_synced);
	free(s);
	*sp = NULL;
}

/* ---------------- operations: checks, then the backend ---------------- */

static int
must_write(struct store_tx *tx)
{
	return tx->writable ? 0 : AUTHD_ERR_INTERNAL;
}

#define BE(tx) ((tx)->s->be)

int
store_challenge_put(struct store_tx *tx, const struct store_challenge *c)
{
	TRY(must_write(tx));
	return BE(tx)->challenge_put(tx, c);
}

int
store_challenge_get(struct store_tx *tx, const char *id, struct store_challenge *c)
{
	return BE(tx)->challenge_get(tx, id, c);
}

int
store_challenge_consume(struct store_tx *tx, const char *id, int64_t now)
{
	TRY(must_write(tx));
	return BE(tx)->challenge_consume(tx, id, now);
}

int
store_challenge_attempt(struct store_tx *tx, const char *id, int kill)
{
	TRY(must_write(tx));
	return BE(tx)->challenge_attempt(tx, id, kill);
}

int
store_decision_get(struct store_tx *tx, const char *txn_id, struct store_decision *d)
{
	return BE(tx)->decision_get(tx, txn_id, d);
}

int
store_decision_put(struct store_tx *tx, const char *txn_id, const struct store_decision *d)
{
	TRY(must_write(tx));
	return BE(tx)->decision_put(tx, txn_id, d);
}

int
store_approval_add(struct store_tx *tx, const struct store_approval *a, int *added)
{
	TRY(must_write(tx));
	return BE(tx)->approval_add(tx, a, added);
}

int
store_total_get(struct store_tx *tx, const char *customer, int account_type, const char *currency, int64_t day,
                int64_t *sum)
{
	return BE(tx)->total_get(tx, customer, account_type, currency, day, sum);
}

int
store_device_seen(struct store_tx *tx, const char *customer, const char *device_id, int *seen)
{
	if (device_id == NULL || device_id[0] == '\0') {
		*seen = 0;
		return 0;
	}
	return BE(tx)->device_seen(tx, customer, device_id, seen);
}

int
store_txn_facts(struct store_tx *tx, const char *account, const char *customer, const char *device_id,
                int account_type, const char *currency, int64_t day, struct store_txn_facts *f)
{
	struct store_lockout lo;
	memset(f, 0, sizeof *f);
	if (device_id != NULL && device_id[0] == '\0')
		device_id = NULL;
	if (BE(tx)->txn_facts != NULL)
		return BE(tx)->txn_facts(tx, account, customer, device_id, account_type, currency, day, f);
	TRY(store_frozen_get(tx, account, &f->account_frozen));
	TRY(store_lockout_get(tx, customer, &lo));
	f->customer_locked = lo.locked;
	TRY(store_device_seen(tx, customer, device_id, &f->device_seen));
	return store_total_get(tx, customer, account_type, currency, day, &f->approved_today);
}

int
store_frozen_get(struct store_tx *tx, const char *account, int *frozen)
{
	return BE(tx)->frozen_get(tx, account, frozen);
}

int
store_frozen_set(struct store_tx *tx, const char *account, int frozen, const char *reason, int64_t now,
                 int *changed)
{
	TRY(must_write(tx));
	return BE(tx)->frozen_set(tx, account, frozen, reason, now, changed);
}

int
store_lockout_get(struct store_tx *tx, const char *subject, struct store_lockout *l)
{
	return BE(tx)->lockout_get(tx, subject, l);
}

int
store_lockout_put(struct store_tx *tx, const char *subject, const struct store_lockout *l)
{
	TRY(must_write(tx));
	return BE(tx)->lockout_put(tx, subject, l);
}

int
store_jti_redeem(struct store_tx *tx, const char *jti, int64_t exp, int64_t now)
{
	TRY(must_write(tx));
	return BE(tx)->jti_redeem(tx, jti, exp, now);
}

int
store_cred_add(struct store_tx *tx, const struct store_cred *c)
{
	TRY(must_write(tx));
	return BE(tx)->cred_add(tx, c);
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
	*out = NULL;
	*n = 0;
	return BE(tx)->cred_list(tx, subject, method, out, n);
}

int
store_cred_update(struct store_tx *tx, const char *method, const uint8_t *id, size_t id_len, const uint8_t *old,
                  size_t old_len, const uint8_t *data, size_t data_len)
{
	TRY(must_write(tx));
	return BE(tx)->cred_update(tx, method, id, id_len, old, old_len, data, data_len);
}

int
store_cred_set_state(struct store_tx *tx, const char *subject, const char *method, const uint8_t *id,
                     size_t id_len, int state)
{
	TRY(must_write(tx));
	return BE(tx)->cred_set_state(tx, subject, method, id, id_len, state);
}

int
store_cred_delete(struct store_tx *tx, const char *subject, const char *method, int *n)
{
	TRY(must_write(tx));
	return BE(tx)->cred_delete(tx, subject, method, n);
}

int
store_enrollment_put(struct store_tx *tx, const struct store_enrollment *e)
{
	TRY(must_write(tx));
	return BE(tx)->enrollment_put(tx, e);
}

int
store_enrollment_take(struct store_tx *tx, const char *id, int64_t now, struct store_enrollment *e)
{
	memset(e, 0, sizeof *e);
	TRY(must_write(tx));
	return BE(tx)->enrollment_take(tx, id, now, e);
}

/* ---------------- audit chain ---------------- */

int
store_audit_append(struct store_tx *tx, struct audit_rec *rec)
{
	TRY(must_write(tx));
	if (!tx->head_loaded) {
		/* Inside the batch's serialization: nobody else can append until we commit. */
		TRY(BE(tx)->audit_head(tx, &tx->head_seq, tx->head_hash));
		tx->head_loaded = 1;
	}
	rec->seq = tx->head_seq + 1;
	memcpy(rec->prev, tx->head_hash, 65);
	TRY(audit_hash(rec->prev, rec, rec->hash));
	TRY(BE(tx)->audit_insert(tx, rec));
	tx->head_seq = rec->seq;
	memcpy(tx->head_hash, rec->hash, 65);
	return 0;
}

int
store_audit_scan(struct store_tx *tx, int64_t from_seq, store_audit_cb cb, void *arg)
{
	return BE(tx)->audit_scan(tx, from_seq, cb, arg);
}

int
store_prune_expired(struct store_tx *tx, const struct store_prune *p, struct store_pruned *out)
{
	memset(out, 0, sizeof *out);
	TRY(must_write(tx));
	if (p->limit < 1)
		return AUTHD_ERR_BAD_REQUEST;
	return BE(tx)->prune(tx, p, out);
}

int
store_count(struct store_tx *tx, const char *what, int64_t *n)
{
	*n = 0;
	return BE(tx)->count(tx, what, n);
}

/* ---------------- tools: schema version, copy ---------------- */

struct version_job {
	int *have;
};

static int
version_fn(struct store_tx *tx, void *arg)
{
	return tx->s->be->schema_version(tx->c, ((struct version_job *)arg)->have);
}

int
store_schema_version(struct store *s, int *have, int *want)
{
	struct version_job j = {have};
	*have = 0;
	*want = s->be->latest_version;
	return store_read(s, version_fn, &j);
}

struct copy_ctx {
	struct store *from;
	struct store_tx *to;
	enum store_table_id t;
	int64_t rows;
	int r;
	char *err;
	size_t errlen;
};

static int
copy_row_cb(const struct store_row *row, void *arg)
{
	struct copy_ctx *c = arg;
	if ((c->r = c->to->s->be->row_insert(c->to, c->t, row)) < 0) {
		snprintf(c->err, c->errlen, "inserting into %s failed: %s", store_tables[c->t].name,
		         authd_strerror(c->r));
		return 1;
	}
	c->rows++;
	return 0;
}

static int
copy_scan_fn(struct store_tx *tx, void *arg)
{
	struct copy_ctx *c = arg;
	return tx->s->be->rows_scan(tx, c->t, copy_row_cb, c);
}

static int
copy_all_fn(struct store_tx *tx, void *arg)
{
	struct copy_ctx *c = arg;
	c->to = tx;
	for (int t = 0; t < ST__COUNT; t++) {
		int64_t n = 0;
		TRY(tx->s->be->rows_count(tx, (enum store_table_id)t, &n));
		if (n != 0) {
			snprintf(c->err, c->errlen, "target is not empty (table %s has %lld rows)", store_tables[t].name,
			         (long long)n);
			return AUTHD_ERR_CONFLICT;
		}
	}
	for (int t = 0; t < ST__COUNT; t++) {
		c->t = (enum store_table_id)t;
		c->r = 0;
		int r = store_read(c->from, copy_scan_fn, c);
		if (c->r < 0)
			return c->r;
		if (r < 0) {
			snprintf(c->err, c->errlen, "reading %s failed: %s", store_tables[t].name, authd_strerror(r));
			return r;
		}
	}
	return 0;
}

int
store_copy(struct store *from, struct store *to, int64_t *rows, char *err, size_t errlen)
{
	struct copy_ctx c = {.from = from, .err = err, .errlen = errlen};
	err[0] = '\0';
	*rows = 0;
	int r = store_write(to, copy_all_fn, &c);
	if (r < 0 && err[0] == '\0')
		snprintf(err, errlen, "copy failed: %s", authd_strerror(r));
	if (r == 0)
		*rows = c.rows;
	return r;
}
