/*
 * An SQLite VFS shim for the store's writer connection: SQLite writes each
 * WAL frame as two pwrite calls, its 24-byte header and then the page right
 * after it. Here the header waits in the file object and goes out with its
 * page as one write. Each syscall is expensive on the virtual machines authd
 * runs on, and the writer thread is the one serial part of a request.
 *
 * Nothing else changes: every other call on the file (read, sync, size,
 * truncate, lock, file control, close, a write elsewhere) first writes a
 * waiting header, so no call ever sees the file without it. SQLite writes a
 * frame's page immediately after its header on the same thread, and only
 * then publishes the frame in the WAL index, so readers can never look for
 * a header that is still here. Every other VFS method is the default VFS's.
 */
#include "sqlite_walvfs.h"

#include <pthread.h>
#include <string.h>

#include <sqlite3.h>

#define FRAME_HDR 24

struct wal_file {
	sqlite3_file base; /* pMethods: ours, or NULL when the real open failed */
	sqlite3_file *real;
	int wal;
	int pending; /* hdr holds a frame header for offset pend_off */
	sqlite3_int64 pend_off;
	unsigned char hdr[FRAME_HDR];
	unsigned char *buf; /* header + page, one write */
	int buf_cap;
};

static sqlite3_vfs walvfs;

static sqlite3_vfs *
real_vfs(void)
{
	return walvfs.pAppData;
}

static int
flush_hdr(struct wal_file *f)
{
	if (!f->pending)
		return SQLITE_OK;
	f->pending = 0;
	return f->real->pMethods->xWrite(f->real, f->hdr, FRAME_HDR, f->pend_off);
}

static int
w_close(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = flush_hdr(f);
	int rc2 = f->real->pMethods->xClose(f->real);
	sqlite3_free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
w_read(sqlite3_file *p, void *buf, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = flush_hdr(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int
w_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc;
	if (f->pending && off == f->pend_off + FRAME_HDR && amt > 0 && amt <= 65536) {
		if (f->buf_cap < FRAME_HDR + amt) {
			unsigned char *n = sqlite3_realloc(f->buf, FRAME_HDR + amt);
			if (n == NULL)
				return flush_hdr(f) != SQLITE_OK ? SQLITE_IOERR_WRITE
				                                 : f->real->pMethods->xWrite(f->real, data, amt, off);
			f->buf = n;
			f->buf_cap = FRAME_HDR + amt;
		}
		memcpy(f->buf, f->hdr, FRAME_HDR);
		memcpy(f->buf + FRAME_HDR, data, (size_t)amt);
		f->pending = 0;
		return f->real->pMethods->xWrite(f->real, f->buf, FRAME_HDR + amt, f->pend_off);
	}
	if ((rc = flush_hdr(f)) != SQLITE_OK)
		return rc;
	if (f->wal && amt == FRAME_HDR) {
		memcpy(f->hdr, data, FRAME_HDR);
		f->pend_off = off;
		f->pending = 1;
		return SQLITE_OK;
	}
	return f->real->pMethods->xWrite(f->real, data, amt, off);
}

static int
w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = flush_hdr(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int
w_sync(sqlite3_file *p, int flags)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = flush_hdr(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int
w_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = flush_hdr(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int
w_lock(sqlite3_file *p, int level)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = flush_hdr(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int
w_unlock(sqlite3_file *p, int level)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = flush_hdr(f);
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
	int rc = flush_hdr(f);
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
	int rc = flush_hdr(f);
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
