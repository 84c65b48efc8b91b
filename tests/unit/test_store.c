/*
 * The generic store layer with the SQLite backend: [store] url dispatch,
 * schema version, single-use semantics shared by every backend, and
 * store_copy (every table, the audit chain verbatim, empty target only).
 * The PostgreSQL backend runs the same paths in tests/integration/test_pg.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audit.h"
#include "store.h"

static char dir[] = "/tmp/authd-store-XXXXXX";

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
	assert_int_equal(want, 2);
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
	struct store_approval a = {id, cust, "VND", "dev-1", 0, 1000 + f->i, 20000, 1700000000};
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

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_dispatch),
		cmocka_unit_test(test_schema_version),
		cmocka_unit_test(test_copy),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = r ? r : 1;
	return r;
}
