/*
 * The generic store layer with the SQLite backend: [store] url dispatch,
 * schema version, single-use semantics shared by every backend,
 * store_copy (every table, the audit chain verbatim, empty target only),
 * durability (no write returns, and no read shows a commit, before the WAL
 * flush that covers it; a failed flush fails the store closed until it is
 * opened again), the savepoint-free batches of re-runnable work, and a batch
 * whose transaction SQLite rolled back by itself (an I/O error) failing as a
 * whole.
 * The PostgreSQL backend runs the same paths in tests/integration/test_pg.py.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit.h"
#include "prune.h"
#include "store.h"

static char dir[] = "/tmp/authd-store-XXXXXX";
/* an account name as a store_fn argument */
#define ACCT(s) ((void *)(uintptr_t)(s))

/*
 * authd's own fdatasync calls (the store's WAL flush; SQLite's are inside
 * libsqlite3 and not wrapped), linked with -Wl,--wrap=fdatasync: counted,
 * slowed down or failed on demand.
 */
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
static atomic_int flushes, flush_fail, flush_slow_ms, freeze_ran, flushed_after_freeze;

int
__wrap_fdatasync(int fd)
{
	int ran = atomic_load(&freeze_ran);
	if (atomic_load(&flush_slow_ms) > 0)
		usleep((useconds_t)atomic_load(&flush_slow_ms) * 1000);
	int r = atomic_load(&flush_fail) ? (errno = EIO, -1) : __real_fdatasync(fd);
	if (ran && r == 0)
		atomic_store(&flushed_after_freeze, 1);
	atomic_fetch_add(&flushes, 1);
	return r;
}

static struct store *
open_at(const char *name, int flags)
{
	char url[300], err[256];
	struct store *s = NULL;
	snprintf(url, sizeof url, "sqlite:%s/%s", dir, name);
	assert_int_equal(store_open_url(url, dir, flags, &s, err, sizeof err), 0);
	return s;
}

static void
test_url_dispatch(void **state)
{
	(void)state;
	struct store *s = NULL;
	char err[256];
	assert_int_equal(store_open_url("mysql://db/authd", dir, 0, &s, err, sizeof err), AUTHD_ERR_CONFIG);
	assert_null(s);
	assert_non_null(strstr(err, "unsupported store"));
	/* unset: SQLite in the state dir */
	assert_int_equal(store_open_url(NULL, dir, 0, &s, err, sizeof err), 0);
	assert_string_equal(store_kind(s), "sqlite");
	assert_string_equal(store_health(s), "ok");
	store_close(&s);
	assert_null(s);
}

static void
test_schema_version(void **state)
{
	(void)state;
	int have = -1, want = -1;
	struct store *s = open_at("fresh.db", STORE_OPEN_NO_MIGRATE);
	assert_int_equal(store_schema_version(s, &have, &want), 0);
	assert_int_equal(have, 0);
	assert_int_equal(want, 5);
	store_close(&s);
	s = open_at("fresh.db", 0);
	assert_int_equal(store_schema_version(s, &have, &want), 0);
	assert_int_equal(have, want);
	store_close(&s);
}

struct fill {
	int i;
};

static int
fill_fn(struct store_tx *tx, void *arg)
{
	struct fill *f = arg;
	char id[32], cust[32];
	snprintf(id, sizeof id, "T-%d", f->i);
	snprintf(cust, sizeof cust, "C-%d", f->i % 3);
	struct store_approval a = {id, cust, "VND", "dev-1", 0, 1000 + f->i, 20000, 1700000000, 0};
	int added = 0;
	TRY(store_approval_add(tx, &a, &added));
	TRY(store_jti_redeem(tx, id, 1700000100, 1700000000));
	struct store_lockout lo = {.failures = f->i, .last_failure = 1700000000};
	TRY(store_lockout_put(tx, cust, &lo));
	uint8_t cid[4] = {1, 2, 3, (uint8_t)f->i}, data[3] = {9, 9, (uint8_t)f->i};
	struct store_cred c = {.created = f->i, .id_len = sizeof cid, .data = data, .data_len = sizeof data};
	snprintf(c.subject, sizeof c.subject, "%s", cust);
	snprintf(c.method, sizeof c.method, "fido2");
	memcpy(c.id, cid, sizeof cid);
	TRY(store_cred_add(tx, &c));
	struct audit_rec r = {.ts = 1700000000 + f->i, .type = "assess", .customer = cust, .result = "allow",
	                      .jti = id, .actor = "uid:0"};
	return store_audit_append(tx, &r);
}

static int
redeem_again_fn(struct store_tx *tx, void *arg)
{
	(void)arg;
	return store_jti_redeem(tx, "T-1", 1700000100, 1700000000);
}

struct sum {
	int64_t total;
	size_t creds;
};

static int
sum_fn(struct store_tx *tx, void *arg)
{
	struct sum *m = arg;
	struct store_cred *c = NULL;
	TRY(store_total_get(tx, "C-1", 0, "VND", 1001, &m->total));
	TRY(store_cred_list(tx, "C-1", "fido2", &c, &m->creds));
	store_creds_free(&c, m->creds);
	return 0;
}

static void
test_copy(void **state)
{
	(void)state;
	struct store *src = open_at("src.db", 0), *dst = open_at("dst.db", 0);
	char err[256];
	int64_t rows = 0;
	for (int i = 0; i < 9; i++) {
		struct fill f = {i};
		assert_int_equal(store_write(src, fill_fn, &f), 0);
	}
	assert_int_equal(store_write(src, redeem_again_fn, NULL), AUTHD_ERR_CONFLICT);
	assert_int_equal(store_copy(src, dst, &rows, err, sizeof err), 0);
	assert_true(rows > 9 * 4);
	struct audit_verify_result vs, vd;
	assert_int_equal(audit_verify_store(src, &vs), 0);
	assert_int_equal(audit_verify_store(dst, &vd), 0);
	assert_true(vd.valid);
	assert_int_equal(vd.records, 9);
	assert_string_equal(vd.head_hash, vs.head_hash);
	/* the copy behaves like the original: redeemed ids stay redeemed, totals and credentials are there */
	assert_int_equal(store_write(dst, redeem_again_fn, NULL), AUTHD_ERR_CONFLICT);
	struct sum m = {0};
	assert_int_equal(store_read(dst, sum_fn, &m), 0);
	assert_int_equal(m.total, 20000);
	assert_int_equal(m.creds, 3);
	/* and continues the same chain */
	struct fill f = {42};
	assert_int_equal(store_write(dst, fill_fn, &f), 0);
	assert_int_equal(audit_verify_store(dst, &vd), 0);
	assert_true(vd.valid);
	assert_int_equal(vd.records, 10);
	/* a non-empty target is refused, and nothing is written */
	assert_int_equal(store_copy(src, dst, &rows, err, sizeof err), AUTHD_ERR_CONFLICT);
	assert_non_null(strstr(err, "not empty"));
	assert_int_equal(audit_verify_store(dst, &vd), 0);
	assert_int_equal(vd.records, 10);
	store_close(&src);
	store_close(&dst);
}

/* Approvals for the daily-total tests: n of them, txn ids "<prefix>-<i>", on one customer. */
struct approvals_job {
	const char *prefix, *customer, *currency;
	int account_type, n;
	int64_t day, amount;
	int added;
};

static int
approvals_fn(struct store_tx *tx, void *arg)
{
	struct approvals_job *j = arg;
	j->added = 0;
	for (int i = 0; i < j->n; i++) {
		char id[64];
		int added = 0;
		snprintf(id, sizeof id, "%s-%d", j->prefix, i);
		struct store_approval a = {id, j->customer, j->currency, "dev", j->account_type, j->day, j->amount,
		                           1700000000, 0};
		TRY(store_approval_add(tx, &a, &added));
		j->added += added;
	}
	return 0;
}

struct total_q {
	const char *customer, *currency;
	int account_type;
	int64_t day, total;
};

static int
total_fn(struct store_tx *tx, void *arg)
{
	struct total_q *q = arg;
	return store_total_get(tx, q->customer, q->account_type, q->currency, q->day, &q->total);
}

static int64_t
total_of(struct store *s, const char *customer, int account_type, const char *currency, int64_t day)
{
	struct total_q q = {customer, currency, account_type, day, -1};
	assert_int_equal(store_read(s, total_fn, &q), 0);
	return q.total;
}

static int
device_fn(struct store_tx *tx, void *arg)
{
	int seen = 0;
	TRY(store_device_seen(tx, arg, "dev", &seen));
	return seen;
}

static void
test_daily_totals(void **state)
{
	(void)state;
	struct store *s = open_at("totals.db", 0);
	/* nothing approved yet: 0 */
	assert_int_equal(total_of(s, "BIZ", 2, "VND", 20000), 0);
	struct approvals_job j = {"T", "BIZ", "VND", 2, 500, 20000, 1000000, 0};
	assert_int_equal(store_write(s, approvals_fn, &j), 0);
	assert_int_equal(j.added, 500);
	assert_int_equal(total_of(s, "BIZ", 2, "VND", 20000), 500 * 1000000LL);
	/* an approval records its device as seen */
	assert_int_equal(store_read(s, device_fn, ACCT("BIZ")), 1);
	assert_int_equal(store_read(s, device_fn, ACCT("NOBODY")), 0);
	/* the same transfers again are not counted twice */
	assert_int_equal(store_write(s, approvals_fn, &j), 0);
	assert_int_equal(j.added, 0);
	assert_int_equal(total_of(s, "BIZ", 2, "VND", 20000), 500 * 1000000LL);
	/* another day, account type or currency is another total */
	struct approvals_job k = {"U", "BIZ", "USD", 2, 3, 20000, 7, 0};
	assert_int_equal(store_write(s, approvals_fn, &k), 0);
	assert_int_equal(total_of(s, "BIZ", 2, "USD", 20000), 21);
	assert_int_equal(total_of(s, "BIZ", 1, "VND", 20000), 0);
	assert_int_equal(total_of(s, "BIZ", 2, "VND", 20001), 0);
	assert_int_equal(total_of(s, "OTHER", 2, "VND", 20000), 0);
	/* a total saturates instead of wrapping */
	struct approvals_job big = {"B", "HUGE", "VND", 1, 3, 20000, INT64_MAX / 2, 0};
	assert_int_equal(store_write(s, approvals_fn, &big), 0);
	assert_int_equal(total_of(s, "HUGE", 1, "VND", 20000), INT64_MAX);
	store_close(&s);
}

/* A schema v2 database (totals summed from approvals) gets its daily totals when migrated to v3. */
static void
test_migrate_totals(void **state)
{
	(void)state;
	char path[300];
	struct store *s = open_at("v2.db", 0);
	struct approvals_job a = {"A", "C-9", "VND", 1, 4, 20000, 250, 0}, b = {"B", "C-9", "VND", 1, 2, 20001, 5, 0};
	assert_int_equal(store_write(s, approvals_fn, &a), 0);
	assert_int_equal(store_write(s, approvals_fn, &b), 0);
	store_close(&s);
	/* back to v2: no daily_totals, the approvals index, no decisions.account, version 2 */
	sqlite3 *db = NULL;
	snprintf(path, sizeof path, "%s/v2.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DROP TABLE daily_totals; ALTER TABLE decisions DROP COLUMN account;"
	                              " CREATE INDEX approvals_day ON approvals(customer, day, account_type, currency);"
	                              " UPDATE meta SET v = '2' WHERE k = 'schema_version'",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	s = open_at("v2.db", 0);
	int have = 0, want = 0;
	assert_int_equal(store_schema_version(s, &have, &want), 0);
	assert_int_equal(have, 5); /* v3 made the totals, v4 keyed them by day first, v5: decisions.account */
	assert_int_equal(total_of(s, "C-9", 1, "VND", 20000), 1000);
	assert_int_equal(total_of(s, "C-9", 1, "VND", 20001), 10);
	store_close(&s);
}

/* ---- retention ---- */

#define T0 INT64_C(1800000000) /* "now" of the retention tests: day 20833 in Vietnam's time */

/* Challenges and enrollments "<kind>-old" (expired before T0), "-edge" (at T0), "-new"; token ids. */
static int
short_lived_fn(struct store_tx *tx, void *arg)
{
	(void)arg;
	static const struct {
		const char *id;
		int64_t expires;
	} rows[] = {{"old", T0 - 100}, {"edge", T0}, {"new", T0 + 100}};
	char body[] = "{}";
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct store_challenge c = {.created = T0 - 1000, .expires = rows[i].expires, .body = body};
		struct store_enrollment e = {.expires = rows[i].expires};
		snprintf(c.id, sizeof c.id, "ch-%s", rows[i].id);
		snprintf(c.kind, sizeof c.kind, "txn");
		snprintf(c.subject, sizeof c.subject, "C-1");
		snprintf(c.txn_id, sizeof c.txn_id, "T-%zu", i);
		snprintf(e.id, sizeof e.id, "en-%s", rows[i].id);
		snprintf(e.subject, sizeof e.subject, "C-1");
		TRY(store_challenge_put(tx, &c));
		TRY(store_enrollment_put(tx, &e));
	}
	/* three expired token ids, one alive, and an old transfer entry (kept: the transfer stays single use) */
	TRY(store_jti_redeem(tx, "jti-a", T0 - 10, T0 - 100));
	TRY(store_jti_redeem(tx, "jti-b", T0 - 10, T0 - 100));
	TRY(store_jti_redeem(tx, "jti-c", T0 - 1, T0 - 100));
	TRY(store_jti_redeem(tx, "jti-alive", T0 + 60, T0 - 100));
	return store_jti_redeem(tx, "txn:T-1", T0 - 100000, T0 - 100000);
}

static int
audit_one_fn(struct store_tx *tx, void *arg)
{
	(void)arg;
	struct audit_rec r = {.ts = T0 - 5 * 86400, .type = "assess", .customer = "C-1", .result = "allow",
	                      .actor = "uid:0"};
	return store_audit_append(tx, &r);
}

struct prune_job {
	struct store_prune p;
	struct store_pruned got;
};

static int
prune_fn(struct store_tx *tx, void *arg)
{
	struct prune_job *j = arg;
	return store_prune_expired(tx, &j->p, &j->got);
}

static int
challenge_fn(struct store_tx *tx, void *arg)
{
	struct store_challenge c;
	int r = store_challenge_get(tx, arg, &c);
	if (r == 0)
		free(c.body);
	return r;
}

static int
redeem_fn(struct store_tx *tx, void *arg)
{
	return store_jti_redeem(tx, arg, T0 + 60, T0);
}

#define STR(s) ((void *)(uintptr_t)(s))

/*
 * store_prune_expired: only what expired before the cut-off goes (the
 * edge stays), at most limit rows of each kind per call, "txn:" entries
 * and the kept days' totals stay; approvals and the audit chain are
 * untouched.
 */
static void
test_prune(void **state)
{
	(void)state;
	struct store *s = open_at("prune.db", 0);
	assert_int_equal(store_write(s, short_lived_fn, NULL), 0);
	/* totals: 3 rows on day D-2, one each on D-1 and D */
	const int64_t d = 20800;
	struct approvals_job old[3] = {{"A", "C-1", "VND", 1, 1, d - 2, 5, 0},
	                               {"B", "C-2", "VND", 1, 1, d - 2, 5, 0},
	                               {"C", "C-3", "USD", 2, 1, d - 2, 5, 0}};
	struct approvals_job yday = {"Y", "C-1", "VND", 1, 1, d - 1, 7, 0}, today = {"Z", "C-1", "VND", 1, 1, d, 9, 0};
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_write(s, approvals_fn, &old[i]), 0);
	assert_int_equal(store_write(s, approvals_fn, &yday), 0);
	assert_int_equal(store_write(s, approvals_fn, &today), 0);
	assert_int_equal(store_write(s, audit_one_fn, NULL), 0);

	/* limit 2: two of each kind that has more, then the rest */
	struct prune_job j = {{T0, d - 1, 2}, {0}};
	assert_int_equal(store_write(s, prune_fn, &j), 0);
	assert_int_equal(j.got.challenges, 1);
	assert_int_equal(j.got.enrollments, 1);
	assert_int_equal(j.got.redeemed, 2);
	assert_int_equal(j.got.daily_totals, 2);
	assert_int_equal(store_write(s, prune_fn, &j), 0);
	assert_int_equal(j.got.challenges + j.got.enrollments, 0);
	assert_int_equal(j.got.redeemed, 1);
	assert_int_equal(j.got.daily_totals, 1);
	assert_int_equal(store_write(s, prune_fn, &j), 0);
	assert_int_equal(j.got.challenges + j.got.enrollments + j.got.redeemed + j.got.daily_totals, 0);

	assert_int_equal(store_read(s, challenge_fn, STR("ch-old")), AUTHD_ERR_NOT_FOUND);
	assert_int_equal(store_read(s, challenge_fn, STR("ch-edge")), 0);
	assert_int_equal(store_read(s, challenge_fn, STR("ch-new")), 0);
	/* the transfer entry and the live token id are still redeemed; the expired ids are gone */
	assert_int_equal(store_write(s, redeem_fn, STR("txn:T-1")), AUTHD_ERR_CONFLICT);
	assert_int_equal(store_write(s, redeem_fn, STR("jti-alive")), AUTHD_ERR_CONFLICT);
	assert_int_equal(store_write(s, redeem_fn, STR("jti-a")), 0);
	assert_int_equal(total_of(s, "C-1", 1, "VND", d - 2), 0);
	assert_int_equal(total_of(s, "C-3", 2, "USD", d - 2), 0);
	assert_int_equal(total_of(s, "C-1", 1, "VND", d - 1), 7);
	assert_int_equal(total_of(s, "C-1", 1, "VND", d), 9);
	/* an approval already counted is still not counted twice: approvals are records, never pruned */
	assert_int_equal(store_write(s, approvals_fn, &old[0]), 0);
	assert_int_equal(old[0].added, 0);
	struct audit_verify_result v;
	assert_int_equal(audit_verify_store(s, &v), 0);
	assert_true(v.valid);
	assert_int_equal(v.records, 1);
	/* with no limit, or outside a write, nothing happens */
	j.p.limit = 0;
	assert_int_equal(store_write(s, prune_fn, &j), AUTHD_ERR_BAD_REQUEST);
	j.p.limit = 2;
	assert_int_equal(store_read(s, prune_fn, &j), AUTHD_ERR_INTERNAL);
	store_close(&s);
}

/* PRUNE_ROUND_ROWS + 300 customers' totals on one day. */
static int
many_totals_fn(struct store_tx *tx, void *arg)
{
	int64_t day = *(int64_t *)arg;
	for (int i = 0; i < PRUNE_ROUND_ROWS + 300; i++) {
		char id[32], cust[32];
		int added = 0;
		snprintf(id, sizeof id, "M-%lld-%d", (long long)day, i);
		snprintf(cust, sizeof cust, "C-%05d", i);
		struct store_approval a = {id, cust, "VND", "dev", 1, day, 3, T0, 0};
		TRY(store_approval_add(tx, &a, &added));
	}
	return 0;
}

/* prune_pass goes in rounds of PRUNE_ROUND_ROWS until every old row is gone, and stops when told. */
static void
test_prune_pass(void **state)
{
	(void)state;
	struct store *s = open_at("prune-pass.db", 0);
	/* keeping one day at T0: days before 20832 go */
	int64_t days[] = {20819, 20831, 20832, 20833};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(store_write(s, many_totals_fn, &days[i]), 0);
	struct store_pruned n = {0};
	assert_int_equal(prune_pass(s, T0, 86400, NULL, &n), 0);
	assert_int_equal(n.daily_totals, 2 * (PRUNE_ROUND_ROWS + 300));
	assert_int_equal(total_of(s, "C-00007", 1, "VND", 20831), 0);
	assert_int_equal(total_of(s, "C-00007", 1, "VND", 20832), 3);
	assert_int_equal(total_of(s, "C-00007", 1, "VND", 20833), 3);
	atomic_int stop = 1;
	struct store_pruned none = {0};
	assert_int_equal(prune_pass(s, T0 + 10 * 86400, 86400, &stop, &none), 0);
	assert_int_equal(none.daily_totals, 0);
	assert_int_equal(total_of(s, "C-00007", 1, "VND", 20833), 3);
	store_close(&s);
}

static int
freeze_fn(struct store_tx *tx, void *arg)
{
	int changed = 0;
	TRY(store_frozen_set(tx, arg, 1, "test", 1700000000, &changed));
	atomic_store(&freeze_ran, 1);
	return 0;
}

static int
frozen_fn(struct store_tx *tx, void *arg)
{
	int frozen = 0;
	TRY(store_frozen_get(tx, arg, &frozen));
	return frozen;
}

struct facts_q {
	const char *account, *customer, *device, *currency;
	int account_type;
	int64_t day;
	struct store_txn_facts f;
};

/* store_txn_facts, checked against the four calls it stands for, in the same transaction. */
static int
facts_fn(struct store_tx *tx, void *arg)
{
	struct facts_q *q = arg;
	struct store_lockout lo;
	int frozen = -1, seen = -1;
	int64_t total = -1;
	TRY(store_txn_facts(tx, q->account, q->customer, q->device, q->account_type, q->currency, q->day, &q->f));
	TRY(store_frozen_get(tx, q->account, &frozen));
	TRY(store_lockout_get(tx, q->customer, &lo));
	TRY(store_device_seen(tx, q->customer, q->device, &seen));
	TRY(store_total_get(tx, q->customer, q->account_type, q->currency, q->day, &total));
	if (q->f.account_frozen != frozen || q->f.customer_locked != lo.locked || q->f.device_seen != seen ||
	    q->f.approved_today != total)
		return AUTHD_ERR_INTERNAL;
	return 0;
}

static int
lock_fn(struct store_tx *tx, void *arg)
{
	struct store_lockout lo = {5, 1, 1700000000, 5};
	return store_lockout_put(tx, arg, &lo);
}

static struct store_txn_facts
facts_of(struct store *s, int write, const char *account, const char *customer, const char *device,
         int account_type, const char *currency, int64_t day)
{
	struct facts_q q = {account, customer, device, currency, account_type, day, {-1, -1, -1, -1}};
	assert_int_equal(write ? store_write(s, facts_fn, &q) : store_read(s, facts_fn, &q), 0);
	return q.f;
}

static void
test_txn_facts(void **state)
{
	(void)state;
	struct store *s = open_at("facts.db", 0);
	struct approvals_job j = {"F", "C-1", "VND", 1, 3, 20000, 100, 0};
	assert_int_equal(store_write(s, approvals_fn, &j), 0);
	assert_int_equal(store_write(s, freeze_fn, ACCT("ACC-F")), 0);
	assert_int_equal(store_write(s, lock_fn, ACCT("C-L")), 0);
	for (int w = 0; w <= 1; w++) {
		struct store_txn_facts f = facts_of(s, w, "ACC-1", "C-1", "dev", 1, "VND", 20000);
		assert_int_equal(f.account_frozen, 0);
		assert_int_equal(f.customer_locked, 0);
		assert_int_equal(f.device_seen, 1);
		assert_int_equal(f.approved_today, 300);
		/* another device, day, type or currency */
		f = facts_of(s, w, "ACC-1", "C-1", "other", 1, "VND", 20001);
		assert_int_equal(f.device_seen, 0);
		assert_int_equal(f.approved_today, 0);
		assert_int_equal(facts_of(s, w, "ACC-1", "C-1", "dev", 2, "VND", 20000).approved_today, 0);
		assert_int_equal(facts_of(s, w, "ACC-1", "C-1", "dev", 1, "USD", 20000).approved_today, 0);
		/* no device: never seen */
		assert_int_equal(facts_of(s, w, "ACC-1", "C-1", "", 1, "VND", 20000).device_seen, 0);
		assert_int_equal(facts_of(s, w, "ACC-1", "C-1", NULL, 1, "VND", 20000).device_seen, 0);
		/* frozen account, locked customer, unknown customer */
		f = facts_of(s, w, "ACC-F", "C-L", "dev", 1, "VND", 20000);
		assert_int_equal(f.account_frozen, 1);
		assert_int_equal(f.customer_locked, 1);
		assert_int_equal(f.device_seen, 0);
		assert_int_equal(f.approved_today, 0);
	}
	store_close(&s);
}

/* Runs f with stderr going to a file; how many lines of what it logged contain needle. */
static int
logged_lines(void (*f)(void *), void *arg, const char *needle)
{
	char path[300], line[1024];
	snprintf(path, sizeof path, "%s/stderr.log", dir);
	FILE *log = fopen(path, "w+");
	assert_non_null(log);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(log), 2), 2);
	f(arg);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	rewind(log);
	int n = 0;
	while (fgets(line, sizeof line, log) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(log);
	return n;
}

/* Three writes, the first with a failed flush (no asserts here: stderr is not restored by a failure). */
struct failed_flush {
	struct store *s;
	int r[3];
};

static void
failed_flush_writes(void *arg)
{
	struct failed_flush *f = arg;
	atomic_store(&flush_fail, 1);
	f->r[0] = store_write(f->s, freeze_fn, ACCT("ACC-2"));
	atomic_store(&flush_fail, 0);
	f->r[1] = store_write(f->s, freeze_fn, ACCT("ACC-3"));
	f->r[2] = store_write(f->s, freeze_fn, ACCT("ACC-4"));
}

static void
test_write_returns_after_flush(void **state)
{
	(void)state;
	struct store *s = open_at("durable.db", 0);
	atomic_store(&freeze_ran, 0);
	atomic_store(&flushed_after_freeze, 0);
	assert_int_equal(store_write(s, freeze_fn, ACCT("ACC-1")), 0);
	/* the flush ran after the change and before store_write returned */
	assert_int_equal(atomic_load(&flushed_after_freeze), 1);
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-1")), 1);

	/*
	 * A failed flush is fatal for the store until it is opened again, even
	 * once flushes work again. Linux reports a writeback error once and
	 * marks the pages clean, so the next fdatasync succeeds although the
	 * failed frames may never reach the disk; after a crash SQLite's WAL
	 * recovery stops at the first missing frame and drops every later one,
	 * acknowledged or not. So nothing after the failure is answered as
	 * durable: writes fail (without another flush), reads fail, health says
	 * a restart is needed, and the log says so once.
	 */
	struct failed_flush f = {s, {0, 0, 0}};
	int before = atomic_load(&flushes);
	assert_int_equal(logged_lines(failed_flush_writes, &f, "restart authd"), 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(f.r[i], AUTHD_ERR_UNAVAILABLE);
	assert_int_equal(atomic_load(&flushes), before + 1);
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-1")), AUTHD_ERR_UNAVAILABLE);
	assert_non_null(strstr(store_health(s), "restart"));
	assert_string_not_equal(store_health(s), "ok");
	store_close(&s);

	/* opened again (authd restarted): what was acknowledged is there, nothing written after the failure
	 */
	s = open_at("durable.db", 0);
	assert_string_equal(store_health(s), "ok");
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-1")), 1);
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-3")), 0);
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-4")), 0);
	assert_int_equal(store_write(s, freeze_fn, ACCT("ACC-5")), 0);
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-5")), 1);
	assert_string_equal(store_health(s), "ok");
	store_close(&s);
}

struct bg_write {
	struct store *s;
	int r;
};

static void *
bg_freeze(void *arg)
{
	struct bg_write *b = arg;
	b->r = store_write(b->s, freeze_fn, ACCT("ACC-9"));
	return NULL;
}

/* Starts bg_freeze on another thread and returns once its job ran (the flush may still be under way). */
static void
bg_freeze_started(struct bg_write *b, pthread_t *t)
{
	atomic_store(&freeze_ran, 0);
	assert_int_equal(pthread_create(t, NULL, bg_freeze, b), 0);
	while (!atomic_load(&freeze_ran))
		usleep(1000);
}

static void
test_read_waits_for_flush(void **state)
{
	(void)state;
	struct store *s = open_at("readwait.db", 0);
	struct bg_write b = {s, -1};
	pthread_t t;
	atomic_store(&flushed_after_freeze, 0);
	atomic_store(&flush_slow_ms, 300);
	bg_freeze_started(&b, &t);
	/* committed or not yet, the change may be seen only once it is durable */
	int seen;
	do {
		seen = store_read(s, frozen_fn, ACCT("ACC-9"));
		assert_true(seen >= 0);
		if (seen == 1)
			assert_int_equal(atomic_load(&flushed_after_freeze), 1);
	} while (seen == 0);
	pthread_join(t, NULL);
	atomic_store(&flush_slow_ms, 0);
	assert_int_equal(b.r, 0);
	store_close(&s);
}

/* A read that saw a commit whose flush then fails is not answered: the change may never be durable. */
static void
test_read_after_failed_flush(void **state)
{
	(void)state;
	struct store *s = open_at("readfail.db", 0);
	struct bg_write b = {s, -1};
	pthread_t t;
	atomic_store(&flush_slow_ms, 300);
	atomic_store(&flush_fail, 1);
	bg_freeze_started(&b, &t);
	int seen;
	do
		seen = store_read(s, frozen_fn, ACCT("ACC-9"));
	while (seen == 0);
	assert_int_equal(seen, AUTHD_ERR_UNAVAILABLE);
	pthread_join(t, NULL);
	atomic_store(&flush_slow_ms, 0);
	atomic_store(&flush_fail, 0);
	assert_int_equal(b.r, AUTHD_ERR_UNAVAILABLE);
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-9")), AUTHD_ERR_UNAVAILABLE);
	store_close(&s);
}

static void
one_failed_flush(void *arg)
{
	struct failed_flush *f = arg;
	atomic_store(&flush_fail, 1);
	f->r[0] = store_write(f->s, freeze_fn, ACCT("ACC-2"));
	atomic_store(&flush_fail, 0);
}

static off_t
wal_size(const char *name)
{
	char path[300];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s-wal", dir, name);
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/*
 * After a failed flush nothing is checkpointed, not even at close: the WAL
 * stays for SQLite's recovery at the next open, which checks each frame,
 * instead of being copied into the database unchecked.
 */
static void
test_no_checkpoint_after_failed_flush(void **state)
{
	(void)state;
	/* the premise: the writer, closed last, checkpoints and removes the WAL */
	struct store *s = open_at("nockpt.db", 0);
	assert_int_equal(store_write(s, freeze_fn, ACCT("ACC-1")), 0);
	assert_true(wal_size("nockpt.db") > 0);
	store_close(&s);
	assert_int_equal(wal_size("nockpt.db"), -1);

	s = open_at("nockpt.db", 0);
	struct failed_flush f = {s, {0, 0, 0}};
	assert_int_equal(logged_lines(one_failed_flush, &f, "restart authd"), 1);
	assert_int_equal(f.r[0], AUTHD_ERR_UNAVAILABLE);
	store_close(&s);
	assert_true(wal_size("nockpt.db") > 0);
	s = open_at("nockpt.db", 0);
	assert_string_equal(store_health(s), "ok");
	assert_int_equal(store_read(s, frozen_fn, ACCT("ACC-1")), 1);
	store_close(&s);
}

/* Re-runnable work that fails on demand after writing, and counts its runs. */
struct rerun_job {
	const char *account;
	int fail;
	int runs;
};

static int
rerun_fn(struct store_tx *tx, void *arg)
{
	struct rerun_job *j = arg;
	int changed = 0;
	j->runs++;
	TRY(store_frozen_set(tx, j->account, 1, "test", 1700000000, &changed));
	struct audit_rec r = {
	    .ts = 1700000000, .type = "freeze", .customer = j->account, .result = "ok", .actor = "uid:0"};
	TRY(store_audit_append(tx, &r));
	return j->fail ? AUTHD_ERR_CONFLICT : 0;
}

static void
test_rerun_batches(void **state)
{
	(void)state;
	struct store *s = open_at("rerun.db", 0);
	struct rerun_job jobs[4] = {{"R-0", 0, 0}, {"R-1", 0, 0}, {"R-2", 1, 0}, {"R-3", 0, 0}};
	struct store_work w[4];
	for (int i = 0; i < 4; i++)
		w[i] = (struct store_work){rerun_fn, &jobs[i], 0, STORE_WORK_RERUN};
	store_write_many(s, w, 4);
	/* the failing job's writes (frozen row, audit record) are gone; the others' are there, once */
	assert_int_equal(w[0].result, 0);
	assert_int_equal(w[1].result, 0);
	assert_int_equal(w[2].result, AUTHD_ERR_CONFLICT);
	assert_int_equal(w[3].result, 0);
	assert_int_equal(store_read(s, frozen_fn, ACCT("R-0")), 1);
	assert_int_equal(store_read(s, frozen_fn, ACCT("R-2")), 0);
	assert_int_equal(store_read(s, frozen_fn, ACCT("R-3")), 1);
	struct audit_verify_result v;
	assert_int_equal(audit_verify_store(s, &v), 0);
	assert_true(v.valid);
	assert_int_equal(v.records, 3);
	/* one batch: run without savepoints up to the failure, then all again with them */
	assert_int_equal(jobs[0].runs, 2);
	assert_int_equal(jobs[2].runs, 2);
	assert_int_equal(jobs[3].runs, 1);

	/* without failures: one run each, every change kept */
	struct rerun_job ok[3] = {{"S-0", 0, 0}, {"S-1", 0, 0}, {"S-2", 0, 0}};
	for (int i = 0; i < 3; i++)
		w[i] = (struct store_work){rerun_fn, &ok[i], 0, STORE_WORK_RERUN};
	store_write_many(s, w, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(w[i].result, 0);
		assert_int_equal(ok[i].runs, 1);
	}
	assert_int_equal(audit_verify_store(s, &v), 0);
	assert_true(v.valid);
	assert_int_equal(v.records, 6);
	store_close(&s);
}

/*
 * Reads through SQLite's unix VFS fail on the thread that sets pread_fail:
 * a job makes the writer's next read of a page not in its cache fail in the
 * middle of a batch. SQLite answers SQLITE_IOERR_READ and rolls back the
 * whole transaction by itself, savepoints and all. (ESTALE, as from an NFS
 * server: SQLite reads EIO as corruption, SQLITE_CORRUPT, which does not
 * roll back.)
 */
typedef ssize_t (*pread_t)(int fd, void *buf, size_t n, off_t off);
static pread_t real_pread, real_pread64;
static _Thread_local int pread_fail;

static ssize_t
failing_pread(int fd, void *buf, size_t n, off_t off)
{
	return pread_fail ? (errno = ESTALE, -1) : real_pread(fd, buf, n, off);
}

static ssize_t
failing_pread64(int fd, void *buf, size_t n, off_t off)
{
	return pread_fail ? (errno = ESTALE, -1) : real_pread64(fd, buf, n, off);
}

static void
preads_wrap(int on)
{
	sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
	assert_non_null(unix_vfs);
	if (on) {
		real_pread = (pread_t)unix_vfs->xGetSystemCall(unix_vfs, "pread");
		real_pread64 = (pread_t)unix_vfs->xGetSystemCall(unix_vfs, "pread64");
		assert_true(real_pread != NULL || real_pread64 != NULL);
	}
	if (real_pread != NULL)
		assert_int_equal(
		    unix_vfs->xSetSystemCall(unix_vfs, "pread",
		                             (sqlite3_syscall_ptr)(on ? failing_pread : real_pread)),
		    SQLITE_OK);
	if (real_pread64 != NULL)
		assert_int_equal(
		    unix_vfs->xSetSystemCall(unix_vfs, "pread64",
		                             (sqlite3_syscall_ptr)(on ? failing_pread64 : real_pread64)),
		    SQLITE_OK);
}

/* A job whose read fails with an I/O error; it returns the error, or swallows it and claims success. */
struct io_fail_job {
	int swallow;
	int r;
};

static int
io_fail_fn(struct store_tx *tx, void *arg)
{
	struct io_fail_job *j = arg;
	int64_t total = 0;
	pread_fail = 1;
	/* daily_totals: no page of it is in the writer's cache (the store was just opened) */
	j->r = store_total_get(tx, "COLD", 1, "VND", 20000, &total);
	pread_fail = 0;
	return j->swallow ? 0 : j->r;
}

static int
frozen_any_fn(struct store_tx *tx, void *arg)
{
	const char *const *accounts = arg;
	int n = 0;
	for (; *accounts != NULL; accounts++) {
		int frozen = 0;
		TRY(store_frozen_get(tx, *accounts, &frozen));
		n += frozen;
	}
	return n;
}

/*
 * A batch whose transaction SQLite rolled back by itself fails as a whole:
 * job 1 appends an audit record, job 2 hits an I/O error (SQLite rolls back
 * everything, job 1's record too), job 3 would append after the vanished
 * record in a new transaction of its own (its SAVEPOINT, or in autocommit
 * mode without savepoints) and commit it alone. Each way (savepoints or
 * re-runnable work; job 2 returning its error or swallowing it): no job
 * reports success, nothing of the batch is in the store, and the chain
 * stays whole for the next batch.
 */
static void
test_lost_transaction(void **state)
{
	(void)state;
	static const char *const accounts[] = {"L-0", "L-2", NULL};
	struct store *s = open_at("lost.db", 0);
	struct approvals_job seed = {"P", "COLD", "VND", 1, 200, 20000, 5, 0};
	assert_int_equal(store_write(s, approvals_fn, &seed), 0);
	assert_int_equal(store_write(s, audit_one_fn, NULL), 0);
	preads_wrap(1);
	for (int round = 0; round < 4; round++) {
		int swallow = round & 1;
		unsigned flags = round & 2 ? STORE_WORK_RERUN : 0;
		/* opened again: a cold cache, so job 2 reads from the file */
		store_close(&s);
		s = open_at("lost.db", 0);
		struct rerun_job j0 = {"L-0", 0, 0}, j2 = {"L-2", 0, 0};
		struct io_fail_job j1 = {swallow, 0};
		struct store_work w[3] = {
		    {rerun_fn, &j0, 1, flags}, {io_fail_fn, &j1, 1, flags}, {rerun_fn, &j2, 1, flags}};
		store_write_many(s, w, 3);
		/* the injected error happened */
		assert_int_equal(j1.r, AUTHD_ERR_UNAVAILABLE);
		for (int i = 0; i < 3; i++)
			assert_int_equal(w[i].result, AUTHD_ERR_UNAVAILABLE);
		assert_string_not_equal(store_health(s), "ok");
		assert_int_equal(store_read(s, frozen_any_fn, (void *)(uintptr_t)accounts), 0);
		struct audit_verify_result v;
		assert_int_equal(audit_verify_store(s, &v), 0);
		assert_true(v.valid);
		assert_int_equal(v.records, 1);
	}
	preads_wrap(0);
	/* the next batch re-reads the chain head and continues the chain */
	struct rerun_job ok[2] = {{"L-0", 0, 0}, {"L-2", 0, 0}};
	struct store_work w[2] = {{rerun_fn, &ok[0], 1, 0}, {rerun_fn, &ok[1], 1, 0}};
	store_write_many(s, w, 2);
	assert_int_equal(w[0].result, 0);
	assert_int_equal(w[1].result, 0);
	assert_int_equal(store_read(s, frozen_any_fn, (void *)(uintptr_t)accounts), 2);
	struct audit_verify_result v;
	assert_int_equal(audit_verify_store(s, &v), 0);
	assert_true(v.valid);
	assert_int_equal(v.records, 3);
	assert_string_equal(store_health(s), "ok");
	store_close(&s);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_dispatch),
	    cmocka_unit_test(test_schema_version),
	    cmocka_unit_test(test_copy),
	    cmocka_unit_test(test_daily_totals),
	    cmocka_unit_test(test_txn_facts),
	    cmocka_unit_test(test_migrate_totals),
	    cmocka_unit_test(test_prune),
	    cmocka_unit_test(test_prune_pass),
	    cmocka_unit_test(test_write_returns_after_flush),
	    cmocka_unit_test(test_read_waits_for_flush),
	    cmocka_unit_test(test_read_after_failed_flush),
	    cmocka_unit_test(test_no_checkpoint_after_failed_flush),
	    cmocka_unit_test(test_rerun_batches),
	    cmocka_unit_test(test_lost_transaction),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = r ? r : 1;
	return r;
}
