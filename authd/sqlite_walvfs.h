/*
 * SQLite VFS for the store's writer connection: the default (unix) VFS with
 * the WAL frames of a commit written in about two calls instead of two per
 * frame (sqlite_walvfs.c).
 */
#ifndef AUTHD_SQLITE_WALVFS_H
#define AUTHD_SQLITE_WALVFS_H

#define SQLITE_WALVFS_NAME "authd-wal"

/* Registers it once; its name, or NULL (use the default VFS) when the default is not the unix VFS. */
const char *sqlite_walvfs_name(void);

struct sqlite3;
/* Writes whatever db's WAL file (if opened through this VFS) still holds; an SQLite result code. */
int sqlite_walvfs_flush(struct sqlite3 *db);

#endif
