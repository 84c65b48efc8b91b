/*
 * SQLite VFS for the store's writer connection: the default (unix) VFS with
 * each WAL frame written in one call instead of two (sqlite_walvfs.c).
 */
#ifndef AUTHD_SQLITE_WALVFS_H
#define AUTHD_SQLITE_WALVFS_H

#define SQLITE_WALVFS_NAME "authd-wal"

/* Registers it once; its name, or NULL (use the default VFS) when the default is not the unix VFS. */
const char *sqlite_walvfs_name(void);

#endif
