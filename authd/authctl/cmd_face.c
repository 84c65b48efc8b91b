/*
 * authctl face-score / face-check (see cmd_face.h). Loads the face plugin
 * once per command and calls it through `struct authd_plugin`; images are
 * read into memory and wiped after use.
 */
#include "cmd_face.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "authd_plugin.h"
#include "err.h"

#ifndef AUTHD_BUILD_PLUGIN_DIR
#define AUTHD_BUILD_PLUGIN_DIR "build/lib/authd/plugins"
#endif

/* Read a little more than the plugin accepts so it can say bad_image. */
#define FACE_FILE_MAX ((size_t)8 * 1024 * 1024 + 1)

static const char *(*cfg_get)(const char *section, const char *key);

static struct {
	const char *models_dir, *threshold, *live_threshold;
} opt;

void
cmd_face_set_config(const char *(*get)(const char *section, const char *key))
{
	cfg_get = get;
}

static void
host_log(int prio, const char *msg)
{
	if (prio <= LOG_WARNING)
		fprintf(stderr, "authctl: %s\n", msg);
}

static const char *
host_config(const char *section, const char *key)
{
	if (strcmp(section, "face") == 0) {
		if (strcmp(key, "models_dir") == 0 && opt.models_dir != NULL)
			return opt.models_dir;
		if (strcmp(key, "threshold") == 0 && opt.threshold != NULL)
			return opt.threshold;
		if (strcmp(key, "liveness_threshold") == 0 && opt.live_threshold != NULL)
			return opt.live_threshold;
	}
	return cfg_get != NULL ? cfg_get(section, key) : NULL;
}

static const struct authd_plugin_host face_host = {
    .abi = AUTHD_PLUGIN_ABI,
    .size = sizeof(struct authd_plugin_host),
    .log = host_log,
    .config = host_config,
};

struct face_plugin {
	void *dl;
	const struct authd_plugin *api;
	void *state;
};

static int
face_load(struct face_plugin *fp)
{
	const char *dir = getenv("AUTHD_PLUGIN_DIR");
	char path[4096];
	const size_t need = offsetof(struct authd_plugin, check) + sizeof(((struct authd_plugin *)0)->check);
	int r;

	memset(fp, 0, sizeof(*fp));
	if (dir == NULL || *dir == '\0')
		dir = AUTHD_BUILD_PLUGIN_DIR;
	if ((size_t)snprintf(path, sizeof(path), "%s/face.so", dir) >= sizeof(path))
		return AUTHD_ERR_CONFIG;
	if ((fp->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "authctl: cannot load %s: %s\n", path, dlerror());
		return AUTHD_ERR_UNAVAILABLE;
	}
	fp->api = dlsym(fp->dl, AUTHD_PLUGIN_SYMBOL);
	if (fp->api == NULL || AUTHD_PLUGIN_MAJOR(fp->api->abi) != AUTHD_PLUGIN_MAJOR(AUTHD_PLUGIN_ABI) ||
	    fp->api->size < need || fp->api->init == NULL || fp->api->fini == NULL ||
	    fp->api->compare == NULL || fp->api->check == NULL) {
		fprintf(stderr, "authctl: %s is not a face plugin with compare/check\n", path);
		dlclose(fp->dl);
		fp->dl = NULL;
		return AUTHD_ERR_UNSUPPORTED;
	}
	if ((r = fp->api->init(&face_host, &fp->state)) < 0) {
		fprintf(stderr, "authctl: face plugin init failed: %s\n", authd_strerror(r));
		dlclose(fp->dl);
		fp->dl = NULL;
		return r;
	}
	return 0;
}

static void
face_unload(struct face_plugin *fp)
{
	if (fp->dl == NULL)
		return;
	fp->api->fini(fp->state);
	dlclose(fp->dl);
	memset(fp, 0, sizeof(*fp));
}

static void
wipe_free(uint8_t *p, size_t len)
{
	if (p == NULL)
		return;
	volatile uint8_t *v = p;
	for (size_t i = 0; i < len; i++)
		v[i] = 0;
	free(p);
}

/* Reads up to FACE_FILE_MAX bytes; caller frees with wipe_free. */
static int
read_image(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	*out = NULL;
	*len = 0;
	if (f == NULL)
		return AUTHD_ERR_NOT_FOUND;
	if ((buf = malloc(FACE_FILE_MAX)) == NULL) {
		fclose(f);
		return AUTHD_ERR_NOMEM;
	}
	n = fread(buf, 1, FACE_FILE_MAX, f);
	if (ferror(f)) {
		fclose(f);
		wipe_free(buf, FACE_FILE_MAX);
		return AUTHD_ERR_IO;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

/* Parses the shared options; returns the index of the first operand or -1. */
static int
parse_opts(int argc, char **argv, const char **pairs)
{
	int i;

	memset(&opt, 0, sizeof(opt));
	if (pairs != NULL)
		*pairs = NULL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1;
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (i + 1 >= argc)
			return -1;
		if (strcmp(a, "--models-dir") == 0)
			opt.models_dir = argv[++i];
		else if (strcmp(a, "--threshold") == 0)
			opt.threshold = argv[++i];
		else if (strcmp(a, "--liveness-threshold") == 0)
			opt.live_threshold = argv[++i];
		else if (pairs != NULL && strcmp(a, "--pairs") == 0)
			*pairs = argv[++i];
		else
			return -1;
	}
	return i;
}

/* Scores one pair; prints "<score>,<match|nomatch>" or "error:<reason>,nomatch". */
static int
score_pair(struct face_plugin *fp, const char *pa, const char *pb, char sep, FILE *out)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	double score = 0;
	int match = 0, r;
	const char *reason = NULL;

	if (read_image(pa, &a, &alen) < 0 || read_image(pb, &b, &blen) < 0) {
		reason = "not_found";
		r = 0;
		goto out;
	}
	r = fp->api->compare(fp->state, a, alen, b, blen, &score, &match, &reason);
	if (r < 0)
		reason = "internal";
out:
	if (reason != NULL)
		fprintf(out, "error:%s%cnomatch\n", reason, sep);
	else
		fprintf(out, "%.4f%c%s\n", score, sep, match ? "match" : "nomatch");
	wipe_free(a, alen);
	wipe_free(b, blen);
	return reason == NULL ? 0 : 1;
}

static char *
trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* A relative path that does not exist as given is tried next to FILE. */
static const char *
resolve(const char *p, const char *base, char *buf, size_t len)
{
	if (p[0] == '/' || base == NULL || access(p, F_OK) == 0)
		return p;
	if ((size_t)snprintf(buf, len, "%s/%s", base, p) >= len)
		return p;
	return buf;
}

static int
score_pairs(struct face_plugin *fp, const char *file)
{
	FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	char *line = NULL, *dcopy = NULL, *base = NULL;
	size_t cap = 0;
	int errors = 0;

	if (in == NULL) {
		fprintf(stderr, "authctl: cannot open %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (in != stdin && (dcopy = strdup(file)) != NULL)
		base = dirname(dcopy);
	while (getline(&line, &cap, in) >= 0) {
		char *l = trim(line), *comma, bufa[4096], bufb[4096];
		if (*l == '\0' || *l == '#')
			continue;
		if ((comma = strchr(l, ',')) == NULL) {
			fprintf(stderr, "authctl: skipping malformed line: %s\n", l);
			errors++;
			continue;
		}
		*comma = '\0';
		char *pa = trim(l), *pb = trim(comma + 1);
		fprintf(stdout, "%s,%s,", pa, pb);
		if (score_pair(fp, resolve(pa, base, bufa, sizeof(bufa)),
		               resolve(pb, base, bufb, sizeof(bufb)), ',', stdout) != 0)
			errors++;
		fflush(stdout);
	}
	free(line);
	free(dcopy);
	if (in != stdin)
		fclose(in);
	(void)errors; /* per-line errors are in the output; the run itself succeeded */
	return 0;
}

int
cmd_face_score(int argc, char **argv)
{
	struct face_plugin fp;
	const char *pairs = NULL;
	int i = parse_opts(argc, argv, &pairs), rc;

	if (i < 0 || (pairs == NULL && argc - i != 2) || (pairs != NULL && argc - i != 0)) {
		fprintf(stderr,
		        "usage: authctl face-score [--models-dir DIR] [--threshold T] A B\n"
		        "       authctl face-score [--models-dir DIR] [--threshold T] --pairs FILE\n");
		return 2;
	}
	if (face_load(&fp) < 0)
		return 1;
	if (pairs != NULL)
		rc = score_pairs(&fp, pairs);
	else
		rc = score_pair(&fp, argv[i], argv[i + 1], ' ', stdout);
	face_unload(&fp);
	return rc;
}

int
cmd_face_check(int argc, char **argv)
{
	struct face_plugin fp;
	int i = parse_opts(argc, argv, NULL), rc = 0;

	if (i < 0 || argc - i < 1) {
		fprintf(stderr,
		        "usage: authctl face-check [--models-dir DIR] [--liveness-threshold T] IMG...\n");
		return 2;
	}
	if (face_load(&fp) < 0)
		return 1;
	for (; i < argc; i++) {
		uint8_t *img = NULL;
		size_t len = 0;
		char *json = NULL;
		int r = read_image(argv[i], &img, &len);
		if (r == 0)
			r = fp.api->check(fp.state, img, len, &json);
		wipe_free(img, len);
		if (r < 0) {
			fprintf(stderr, "authctl: %s: %s\n", argv[i], authd_strerror(r));
			rc = 1;
			continue;
		}
		if (argc > 3 || i + 1 < argc)
			printf("%s ", argv[i]);
		printf("%s\n", json);
		if (strstr(json, "\"usable\":false") != NULL)
			rc = 1;
		free(json);
	}
	face_unload(&fp);
	return rc;
}
