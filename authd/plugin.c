#include "plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Size of struct authd_plugin in ABI 1.0: the smallest a plugin may declare. */
#define PLUGIN_V1_0_SIZE (offsetof(struct authd_plugin, fini) + sizeof(void (*)(void *)))

static int
safe_file(const char *path, char *why, size_t whylen)
{
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		return AUTHD_ERR_IO;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(why, whylen, "owned by uid %u, neither root nor the daemon's user", (unsigned)st.st_uid);
		return AUTHD_ERR_CONFIG;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "writable by group or others");
		return AUTHD_ERR_CONFIG;
	}
	return 0;
}

int
plugin_load_file(const char *path, const struct authd_plugin_host *host, struct plugin *p, char *why,
                 size_t whylen)
{
	memset(p, 0, sizeof *p);
	snprintf(p->path, sizeof p->path, "%s", path);
	TRY(safe_file(path, why, whylen));
	if ((p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(why, whylen, "dlopen: %s", dlerror());
		return AUTHD_ERR_CONFIG;
	}
	const struct authd_plugin *api = dlsym(p->dl, AUTHD_PLUGIN_SYMBOL);
	const char *bad = NULL;
	if (api == NULL)
		bad = "does not export " AUTHD_PLUGIN_SYMBOL;
	else if (AUTHD_PLUGIN_MAJOR(api->abi) != AUTHD_PLUGIN_MAJOR(AUTHD_PLUGIN_ABI))
		bad = "ABI major version differs";
	else if (api->size < PLUGIN_V1_0_SIZE)
		bad = "struct smaller than ABI 1.0";
	else if (api->name == NULL || api->init == NULL || api->enroll == NULL || api->verify == NULL ||
	         api->fini == NULL)
		bad = "a required member is NULL";
	if (bad != NULL) {
		snprintf(why, whylen, "%s", bad);
		plugin_unload(p);
		return AUTHD_ERR_CONFIG;
	}
	p->api = api;
	int r = api->init(host, &p->state);
	if (r < 0) {
		snprintf(why, whylen, "init failed: %s", authd_strerror(r));
		p->api = NULL;
		plugin_unload(p);
		return r;
	}
	return 0;
}

void
plugin_unload(struct plugin *p)
{
	if (p->api != NULL)
		p->api->fini(p->state);
	if (p->dl != NULL)
		dlclose(p->dl);
	p->api = NULL;
	p->dl = NULL;
	p->state = NULL;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
plugin_load_dir(const char *dir, const struct authd_plugin_host *host, struct plugin_set **out)
{
	struct plugin_set *set = calloc(1, sizeof *set);
	char *names[64];
	size_t nn = 0;
	*out = NULL;
	if (set == NULL)
		return AUTHD_ERR_NOMEM;
	/*
	 * A directory that does not exist means no plugins (a build without
	 * them, a test), but say so. One that exists and cannot be read (mode,
	 * ProtectHome=, another user's home) stops startup: running without the
	 * authenticators the operator installed must not look like success.
	 */
	DIR *dp = opendir(dir);
	if (dp == NULL && errno == ENOENT) {
		log_msg(LOG_WARNING, "plugin directory %s does not exist: no authenticator plugins loaded",
		        dir);
	} else if (dp == NULL) {
		log_msg(LOG_ERR, "plugin directory %s cannot be opened: %s", dir, strerror(errno));
		free(set);
		return AUTHD_ERR_IO;
	} else {
		struct dirent *e;
		errno = 0;
		while (nn < 64 && (e = readdir(dp)) != NULL) {
			size_t l = strlen(e->d_name);
			if (l > 3 && strcmp(e->d_name + l - 3, ".so") == 0 && (names[nn] = strdup(e->d_name)))
				nn++;
			errno = 0;
		}
		int rerr = errno;
		closedir(dp);
		if (rerr != 0) {
			log_msg(LOG_ERR, "plugin directory %s cannot be read: %s", dir, strerror(rerr));
			while (nn > 0)
				free(names[--nn]);
			free(set);
			return AUTHD_ERR_IO;
		}
	}
	qsort(names, nn, sizeof names[0], by_name);
	for (size_t i = 0; i < nn; i++) {
		char path[4096], why[256] = "";
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		free(names[i]);
		if (set->n == PLUGIN_MAX)
			continue;
		struct plugin *p = &set->p[set->n];
		if (plugin_load_file(path, host, p, why, sizeof why) < 0) {
			size_t used = strlen(set->skipped);
			snprintf(set->skipped + used, sizeof set->skipped - used, "%s%s: %s", used ? "; " : "", path,
			         why);
			continue;
		}
		if (plugin_find(set, p->api->name) != NULL) {
			plugin_unload(p);
			continue;
		}
		set->n++;
	}
	*out = set;
	return 0;
}

const struct plugin *
plugin_find(const struct plugin_set *set, const char *name)
{
	if (set == NULL)
		return NULL;
	for (size_t i = 0; i < set->n; i++)
		if (set->p[i].api != NULL && strcmp(set->p[i].api->name, name) == 0)
			return &set->p[i];
	return NULL;
}

void
plugin_set_free(struct plugin_set **set)
{
	if (set == NULL || *set == NULL)
		return;
	for (size_t i = 0; i < (*set)->n; i++)
		plugin_unload(&(*set)->p[i]);
	free(*set);
	*set = NULL;
}
