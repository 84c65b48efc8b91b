/*
 * Loading authenticator plugins (plugins/authd_plugin.h) with dlopen and
 * checking them before use: file ownership and mode, ABI major version,
 * struct size, every required pointer. Loaded once at startup from the main
 * thread; lookups are read-only afterwards and thread-safe.
 */
#ifndef AUTHD_PLUGIN_LOADER_H
#define AUTHD_PLUGIN_LOADER_H

#include <stddef.h>

#include "authd_plugin.h"
#include "err.h"

#define PLUGIN_MAX 8

struct plugin {
	void *dl;
	const struct authd_plugin *api;
	void *state;
	char path[4096];
};

struct plugin_set {
	struct plugin p[PLUGIN_MAX];
	size_t n;
	char skipped[1024]; /* "face: why; ..." for health and logs */
};

/*
 * Loads every *.so in dir. A plugin that fails its checks or its init is
 * skipped and named in set->skipped; a missing dir yields an empty set (and
 * a warning); a dir that exists but cannot be read is an error.
 * Caller frees with plugin_set_free.
 */
int plugin_load_dir(const char *dir, const struct authd_plugin_host *host, struct plugin_set **out) AUTHD_WUR;
/* Checks and loads one file (used by authctl for the face tools). */
int plugin_load_file(const char *path, const struct authd_plugin_host *host, struct plugin *p, char *why,
                     size_t whylen) AUTHD_WUR;
void plugin_unload(struct plugin *p);
const struct plugin *plugin_find(const struct plugin_set *set, const char *name);
void plugin_set_free(struct plugin_set **set);

#endif
