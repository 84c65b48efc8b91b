/*
 * The writer's SQLite VFS (sqlite_walvfs.c): a WAL written through it is the
 * WAL SQLite would write. After every commit another connection on the
 * default VFS sees exactly the committed rows; a copy of the database and
 * WAL files taken without any checkpoint (what a crash leaves on disk)
 * recovers every committed transaction; integrity_check passes. Bigger
 * pages, commits bigger than one held run, a tiny page cache (frames
 * spilled before the commit and rewritten in place) and rolled-back
 * transactions go the same way. A commit of a few dozen frames is one or
 * two writes (the unix VFS's pwrite64 is counted through xSetSystemCall).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sqlite_walvfs.h"

static char dir[] = "/tmp/authd-walvfs-XXXXXX";

static sqlite3 *
open_db(const char *path, const char *vfs)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void
exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
}

static int64_t
count(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), coalesce(sum(length(v)), 0) FROM t", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void
copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static void
check_integrity(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

static int pwrites;
static sqlite3_syscall_ptr real_pwrite;

static ssize_t
counting_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	pwrites++;
	return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite)(fd, buf, n, off);
}

struct shape {
	int page_size;
	int rows;      /* per transaction */
	int min, span; /* row sizes: min + (i % span) bytes */
	int cache;     /* the writer's cache_size (pages); 0: the default */
	int updates;   /* also rewrite every row of the transaction this many times */
};

/* 20 transactions through the shim, checked from outside after each. */
static void
run(const char *name, struct shape sh)
{
	char path[200], copy[200], wal[256], copy_wal[256], sql[300];
	const char *vfs = sqlite_walvfs_name();
	assert_non_null(vfs);
	snprintf(path, sizeof path, "%s/%s.db", dir, name);
	snprintf(copy, sizeof copy, "%s/%s-copy.db", dir, name);
	snprintf(wal, sizeof wal, "%s-wal", path);
	snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);

	sqlite3 *w = open_db(path, vfs);
	snprintf(sql, sizeof sql, "PRAGMA page_size = %d", sh.page_size);
	exec(w, sql);
	if (sh.cache > 0) {
		snprintf(sql, sizeof sql, "PRAGMA cache_size = %d", sh.cache);
		exec(w, sql);
	}
	exec(w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;"
	        " CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)");
	sqlite3 *r = open_db(path, NULL);
	int64_t want = 0;
	for (int tx = 0; tx < 20; tx++) {
		exec(w, "BEGIN IMMEDIATE");
		for (int i = 0; i < sh.rows; i++) {
			snprintf(sql, sizeof sql, "INSERT INTO t(v) VALUES(randomblob(%d))",
			         sh.min + (tx * sh.rows + i) % sh.span);
			exec(w, sql);
		}
		for (int u = 0; u < sh.updates; u++) {
			snprintf(sql, sizeof sql, "UPDATE t SET v = randomblob(length(v)) WHERE k > %lld",
			         (long long)sqlite3_last_insert_rowid(w) - sh.rows);
			exec(w, sql);
		}
		if (tx % 7 == 3) {
			exec(w, "ROLLBACK"); /* nothing of it may show */
		} else {
			exec(w, "COMMIT");
			want += sh.rows;
		}
		assert_int_equal(count(r), want);
	}
	sqlite3_close(r);
	/* what is on disk now, without a checkpoint: a crash's leftovers */
	copy_file(path, copy);
	copy_file(wal, copy_wal);
	sqlite3 *c = open_db(copy, NULL);
	assert_int_equal(count(c), want);
	check_integrity(c);
	sqlite3_close(c);
	check_integrity(w);
	assert_int_equal(sqlite3_close(w), SQLITE_OK);
}

static void
test_wal_4k(void **state)
{
	(void)state;
	run("p4k", (struct shape){4096, 50, 100, 900, 0, 0});
}

static void
test_wal_64k(void **state)
{
	(void)state;
	run("p64k", (struct shape){65536, 50, 100, 900, 0, 0});
}

/* ~60 frames per commit: the run fills and is written mid-commit */
static void
test_wal_big_commits(void **state)
{
	(void)state;
	run("big", (struct shape){4096, 80, 2000, 2000, 0, 0});
}

/* a 10-page cache: SQLite spills frames before the commit and rewrites them in place */
static void
test_wal_spills(void **state)
{
	(void)state;
	run("spill", (struct shape){4096, 120, 500, 1500, 10, 2});
}

static void
test_commit_writes(void **state)
{
	(void)state;
	char path[200];
	snprintf(path, sizeof path, "%s/count.db", dir);
	sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
	assert_non_null(unix_vfs);
	real_pwrite = unix_vfs->xGetSystemCall(unix_vfs, "pwrite64");
	assert_non_null(real_pwrite);
	sqlite3 *w = open_db(path, sqlite_walvfs_name());
	exec(w, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;"
	        " CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)");
	assert_int_equal(unix_vfs->xSetSystemCall(unix_vfs, "pwrite64", (sqlite3_syscall_ptr)counting_pwrite),
	                 SQLITE_OK);
	for (int tx = 0; tx < 5; tx++) {
		exec(w, "BEGIN IMMEDIATE");
		for (int i = 0; i < 20; i++)
			exec(w, "INSERT INTO t(v) VALUES(randomblob(3000))"); /* ~20 pages */
		pwrites = 0;
		exec(w, "COMMIT");
		/* without the shim: two per frame, over 40 */
		assert_in_range(pwrites, 1, 2);
		/* nothing is left held after a commit */
		pwrites = 0;
		assert_int_equal(sqlite_walvfs_flush(w), SQLITE_OK);
		assert_int_equal(pwrites, 0);
	}
	assert_int_equal(unix_vfs->xSetSystemCall(unix_vfs, "pwrite64", real_pwrite), SQLITE_OK);
	sqlite3 *r = open_db(path, NULL);
	assert_int_equal(count(r), 100);
	assert_int_equal(sqlite_walvfs_flush(r), SQLITE_OK); /* not through the shim: nothing to do */
	sqlite3_close(r);
	assert_int_equal(sqlite3_close(w), SQLITE_OK);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wal_4k),
	    cmocka_unit_test(test_wal_64k),
	    cmocka_unit_test(test_wal_big_commits),
	    cmocka_unit_test(test_wal_spills),
	    cmocka_unit_test(test_commit_writes),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = r ? r : 1;
	return r;
}
