/* Audit chain through the SQLite store: append, verify, tampering cases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit.h"
#include "config.h"
#include "store.h"

static char dir[] = "/tmp/authd-audit-XXXXXX";

struct app {
	int i;
};

static int
append_fn(struct store_tx *tx, void *arg)
{
	struct app *a = arg;
	char cust[32];
	snprintf(cust, sizeof cust, "C-%d", a->i);
	struct audit_rec r = {.ts = 1700000000 + a->i, .type = "assess", .customer = cust, .result = "allow",
	                      .reasons = "[\"overseas\"]", .actor = "uid:0"};
	return store_audit_append(tx, &r);
}

static int
failing_fn(struct store_tx *tx, void *arg)
{
	TRY(append_fn(tx, arg));
	return AUTHD_ERR_CONFLICT; /* rolled back, and the chain head with it */
}

static struct store *
open_store(struct config **cfg)
{
	char err[256];
	struct store *s = NULL;
	config_free(cfg);
	assert_int_equal(config_load(NULL, cfg, err, sizeof err), 0);
	free((*cfg)->server.state_dir);
	(*cfg)->server.state_dir = strdup(dir);
	assert_int_equal(store_open(*cfg, &s, err, sizeof err), 0);
	return s;
}

static void
tamper(const char *sql)
{
	char path[300];
	sqlite3 *db;
	snprintf(path, sizeof path, "%s/authd.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_chain(void **state)
{
	struct config *cfg = NULL;
	struct audit_verify_result res;
	assert_non_null(mkdtemp(dir));
	struct store *s = open_store(&cfg);
	for (int i = 1; i <= 20; i++) {
		struct app a = {i};
		assert_int_equal(store_write(s, i == 7 ? failing_fn : append_fn, &a), i == 7 ? AUTHD_ERR_CONFLICT : 0);
	}
	assert_int_equal(audit_verify_store(s, &res), 0);
	assert_true(res.valid);
	assert_int_equal(res.records, 19);
	store_close(&s);

	/* reopen: the head is read back and appends continue the chain */
	s = open_store(&cfg);
	struct app a = {99};
	assert_int_equal(store_write(s, append_fn, &a), 0);
	assert_int_equal(audit_verify_store(s, &res), 0);
	assert_true(res.valid);
	assert_int_equal(res.records, 20);
	store_close(&s);

	tamper("UPDATE audit SET customer = 'C-evil' WHERE seq = 4");
	s = open_store(&cfg);
	assert_int_equal(audit_verify_store(s, &res), 0);
	assert_false(res.valid);
	assert_int_equal(res.first_bad_seq, 4);
	store_close(&s);
	tamper("UPDATE audit SET customer = 'C-4' WHERE seq = 4");

	tamper("DELETE FROM audit WHERE seq = 10");
	s = open_store(&cfg);
	assert_int_equal(audit_verify_store(s, &res), 0);
	assert_false(res.valid);
	assert_int_equal(res.first_bad_seq, 10);
	store_close(&s);

	/* reordering: swap two records' contents and hashes */
	tamper("DELETE FROM audit WHERE seq > 9; UPDATE audit SET seq = -1 WHERE seq = 2;"
	       "UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = -1");
	s = open_store(&cfg);
	assert_int_equal(audit_verify_store(s, &res), 0);
	assert_false(res.valid);
	assert_int_equal(res.first_bad_seq, 2);
	store_close(&s);
	config_free(&cfg);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The hash of a fixed record, computed independently (Python: sorted keys, no spaces). */
static void
test_hash_vector(void **state)
{
	(void)state;
	struct audit_rec r = {.seq = 7,
	                      .ts = 1700000000,
	                      .type = "assess",
	                      .customer = "C-1",
	                      .account = "ACC-9",
	                      .txn_hash = "abababababababababababababababababababababababababababababababab",
	                      .result = "allow",
	                      .reasons = "[\"overseas\",\"src_ip_unlocated\"]",
	                      .jti = "J1",
	                      .actor = "uid:0"};
	char h[65];
	assert_int_equal(
	    audit_hash("1111111111111111111111111111111111111111111111111111111111111111", &r, h), 0);
	assert_string_equal(h, "aafa5c1e6128e75a14b0833c059f88010c9a68017be2e017956533d9b7fe4769");
}

static void
test_check_json(void **state)
{
	struct audit_rec r = {.seq = 1, .ts = 5, .type = "freeze", .account = "A", .result = "done", .actor = "uid:0"};
	char why[128];
	memcpy(r.prev, AUDIT_GENESIS, 65);
	assert_int_equal(audit_hash(r.prev, &r, r.hash), 0);
	json_t *j = audit_rec_to_json(&r);
	assert_int_equal(audit_check_json(j, why, sizeof why), 0);
	json_object_set_new(j, "account", json_string("B"));
	assert_int_not_equal(audit_check_json(j, why, sizeof why), 0);
	json_object_set_new(j, "account", json_integer(3));
	assert_int_not_equal(audit_check_json(j, why, sizeof why), 0);
	json_decref(j);
	j = json_pack("[]");
	assert_int_not_equal(audit_check_json(j, why, sizeof why), 0);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chain),
	    cmocka_unit_test(test_hash_vector),
	    cmocka_unit_test(test_check_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
