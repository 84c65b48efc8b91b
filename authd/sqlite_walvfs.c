/*
 * An SQLite VFS shim for the store's writer connection: SQLite writes each
 * WAL frame as two pwrite calls, its 24-byte header and then its page, and a
 * commit of n pages as 2n calls. Here the frames of a transaction wait in
 * the file object, one contiguous run, and go out as one write when the
 * commit frame's page arrives or the run is full (RUN_MAX: 31 frames of
 * 4 KiB pages): about two writes per commit. Each syscall is expensive on
 * the virtual machines authd runs on, and the writer thread is the one
 * serial part of a request.
 *
 * Why nobody sees the file without what is still held here:
 * - SQLite appends the frames of a commit (header, page, header, page, ...),
 *   the commit frame last (its header's "database size after commit" field
 *   is not zero), and only then publishes them in the WAL index. The run is
 *   written as soon as the commit frame's page is in it, before SQLite
 *   publishes anything. Readers and checkpointers read only the pages of
 *   published frames.
 * - Frames of a transaction not committed yet (cache spills) are invisible
 *   to others anyway. Every other call on the file (read, sync, size,
 *   truncate, lock, file control, close, a write that does not continue the
 *   run) writes the run first, so this connection never misses it either.
 * - Only writes that continue an append are held: the WAL header at offset
 *   0, a frame header that continues the run, a page right after the frame
 *   header before it. A header written when nothing is held (a commit's
 *   first frame, or SQLite rewriting frame checksums after a spill, where
 *   no page follows) goes out at once; a page that follows such a header
 *   starts the run. So a header never waits for a page that never comes.
 * - sqlite_walvfs_flush(), after every COMMIT, writes anything still held
 *   (nothing, by the above) before the store's syncer flushes the WAL.
 * Every other VFS method is the default VFS's.
 */
#include "sqlite_walvfs.h"

#include <pthread.h>
#include <string.h>

#include <sqlite3.h>

#define WAL_HDR 32
#define FRAME_HDR 24
/* the unix VFS writes at most 128 KiB - 1 bytes per call (its seekAndWriteFd) */
#define RUN_MAX (128 * 1024 - 1)

struct wal_file {
	sqlite3_file base; /* pMethods: ours, or NULL when the real open failed */
	sqlite3_file *real;
	int wal;
	/* WAL files: bytes not yet written, for offsets [run_off, run_off + run_len) */
	unsigned char *run;
	int run_len;
	sqlite3_int64 run_off;
	/* the frame header last written or held: its page is expected at page_off */
	sqlite3_int64 page_off; /* -1: none */
	int commit;             /* that frame ends a commit */
};

static sqlite3_vfs walvfs;

static sqlite3_vfs *
real_vfs(void)
{
	return walvfs.pAppData;
}

static int
flush_run(struct wal_file *f)
{
	if (f->run_len == 0)
		return SQLITE_OK;
	int n = f->run_len;
	f->run_len = 0;
	return f->real->pMethods->xWrite(f->real, f->run, n, f->run_off);
}

/* Any call but a write: what is held goes out, and no page is expected any more. */
static int
settle(struct wal_file *f)
{
	f->page_off = -1;
	return flush_run(f);
}

static int
w_close(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	int rc2 = f->real->pMethods->xClose(f->real);
	sqlite3_free(f->run);
	f->run = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
w_read(sqlite3_file *p, void *buf, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, buf, amt, off);
}

/* Room for amt more bytes in the run (RUN_MAX bytes, allocated on first use); 0 when there is none. */
static int
run_room(struct wal_file *f, int amt)
{
	if (amt > RUN_MAX - f->run_len)
		return 0;
	if (f->run == NULL && (f->run = sqlite3_malloc(RUN_MAX)) == NULL)
		return 0;
	return 1;
}

static int
w_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc;
	if (!f->wal)
		return f->real->pMethods->xWrite(f->real, data, amt, off);
	int continues = f->run_len > 0 && off == f->run_off + f->run_len;
	int page = off == f->page_off; /* the page of the frame header before it */
	int commit = page && f->commit;
	int hdr = amt == FRAME_HDR;
	int hold = (continues && (page || hdr)) || (f->run_len == 0 && (page || (off == 0 && amt == WAL_HDR)));
	f->page_off = -1;
	if (hdr) {
		const unsigned char *h = data;
		f->page_off = off + FRAME_HDR;
		f->commit = (h[4] | h[5] | h[6] | h[7]) != 0;
	}
	if (!hold || !run_room(f, amt)) {
		if ((rc = flush_run(f)) != SQLITE_OK)
			return rc;
		return f->real->pMethods->xWrite(f->real, data, amt, off);
	}
	if (f->run_len == 0)
		f->run_off = off;
	memcpy(f->run + f->run_len, data, (size_t)amt);
	f->run_len += amt;
	/* a commit frame's page completes the commit: out before SQLite publishes it */
	return commit ? flush_run(f) : SQLITE_OK;
}

static int
w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int
w_sync(sqlite3_file *p, int flags)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
w_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int
w_lock(sqlite3_file *p, int level)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int
w_unlock(sqlite3_file *p, int level)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, level);
}

static int
w_check_reserved(sqlite3_file *p, int *out)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int
w_file_control(sqlite3_file *p, int op, void *arg)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int
w_sector_size(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xSectorSize(f->real);
}

static int
w_device_characteristics(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int
w_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, out);
}

static int
w_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void
w_shm_barrier(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	f->real->pMethods->xShmBarrier(f->real);
}

static int
w_shm_unmap(sqlite3_file *p, int del)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xShmUnmap(f->real, del);
}

static int
w_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **out)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = settle(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int
w_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xUnfetch(f->real, off, ptr);
}

static const sqlite3_io_methods methods = {
	.iVersion = 3,
	.xClose = w_close,
	.xRead = w_read,
	.xWrite = w_write,
	.xTruncate = w_truncate,
	.xSync = w_sync,
	.xFileSize = w_file_size,
	.xLock = w_lock,
	.xUnlock = w_unlock,
	.xCheckReservedLock = w_check_reserved,
	.xFileControl = w_file_control,
	.xSectorSize = w_sector_size,
	.xDeviceCharacteristics = w_device_characteristics,
	.xShmMap = w_shm_map,
	.xShmLock = w_shm_lock,
	.xShmBarrier = w_shm_barrier,
	.xShmUnmap = w_shm_unmap,
	.xFetch = w_fetch,
	.xUnfetch = w_unfetch,
};

static int
w_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags, int *out_flags)
{
	(void)vfs;
	struct wal_file *f = (struct wal_file *)p;
	memset(f, 0, sizeof *f);
	f->real = (sqlite3_file *)(f + 1);
	f->page_off = -1;
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = real_vfs()->xOpen(real_vfs(), name, f->real, flags, out_flags);
	if (f->real->pMethods == NULL)
		return rc;
	if (f->real->pMethods->iVersion < 3) {
		/* not the unix VFS this mirrors: refuse rather than forward to missing methods */
		f->real->pMethods->xClose(f->real);
		return SQLITE_CANTOPEN;
	}
	f->base.pMethods = &methods;
	return rc;
}

/* The rest of the VFS is the default one's, called with the default VFS. */
static int
v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	(void)v;
	return real_vfs()->xDelete(real_vfs(), name, sync_dir);
}

static int
v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return real_vfs()->xAccess(real_vfs(), name, flags, out);
}

static int
v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return real_vfs()->xFullPathname(real_vfs(), name, n, out);
}

static void *
v_dlopen(sqlite3_vfs *v, const char *name)
{
	(void)v;
	return real_vfs()->xDlOpen(real_vfs(), name);
}

static void
v_dlerror(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	real_vfs()->xDlError(real_vfs(), n, out);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	return real_vfs()->xDlSym(real_vfs(), h, sym);
}

static void
v_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	real_vfs()->xDlClose(real_vfs(), h);
}

static int
v_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs()->xRandomness(real_vfs(), n, out);
}

static int
v_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return real_vfs()->xSleep(real_vfs(), us);
}

static int
v_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return real_vfs()->xCurrentTime(real_vfs(), out);
}

static int
v_get_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs()->xGetLastError(real_vfs(), n, out);
}

static int
v_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return real_vfs()->xCurrentTimeInt64(real_vfs(), out);
}

static pthread_once_t walvfs_once = PTHREAD_ONCE_INIT;
static int walvfs_ok;

static void
walvfs_register(void)
{
	sqlite3_vfs *def = sqlite3_vfs_find(NULL);
	/* Only over the unix VFS, whose files (io methods version 3) this mirrors. */
	if (def == NULL || def->iVersion < 2 || strcmp(def->zName, "unix") != 0)
		return;
	walvfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct wal_file) + def->szOsFile,
		.mxPathname = def->mxPathname,
		.zName = SQLITE_WALVFS_NAME,
		.pAppData = def,
		.xOpen = w_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_get_last_error,
		.xCurrentTimeInt64 = v_current_time_int64,
	};
	walvfs_ok = sqlite3_vfs_register(&walvfs, 0) == SQLITE_OK;
}

const char *
sqlite_walvfs_name(void)
{
	(void)pthread_once(&walvfs_once, walvfs_register);
	return walvfs_ok ? SQLITE_WALVFS_NAME : NULL;
}

int
sqlite_walvfs_flush(sqlite3 *db)
{
	sqlite3_file *j = NULL;
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &j) != SQLITE_OK || j == NULL ||
	    j->pMethods != &methods)
		return SQLITE_OK;
	return settle((struct wal_file *)j);
}
