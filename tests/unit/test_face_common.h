/*
 * Shared helpers of the face plugin tests: load face.so through dlopen and
 * its ABI struct, read dev-set images from $AUTHD_FACES_DIR (never copied
 * into the repository), build {"images":[...]} requests, run enroll/verify.
 */
#ifndef TEST_FACE_COMMON_H
#define TEST_FACE_COMMON_H

#include <dlfcn.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authd_plugin.h"
#include "err.h"
#include "util.h"

static void *tf_dl;
static const struct authd_plugin *tf_api;
static void *tf_state;
static char tf_last_log[2048];
static const char *tf_cfg_models, *tf_cfg_threshold, *tf_cfg_live, *tf_cfg_max;
static const char *tf_cfg_xkey, *tf_cfg_xval; /* one extra [face] key */

static void
tf_log(int prio, const char *msg)
{
	(void)prio;
	snprintf(tf_last_log, sizeof(tf_last_log), "%s", msg);
}

static const char *
tf_config(const char *section, const char *key)
{
	if (strcmp(section, "face") != 0)
		return NULL;
	if (strcmp(key, "models_dir") == 0)
		return tf_cfg_models;
	if (strcmp(key, "threshold") == 0)
		return tf_cfg_threshold;
	if (strcmp(key, "liveness_threshold") == 0)
		return tf_cfg_live;
	if (strcmp(key, "max_images") == 0)
		return tf_cfg_max;
	if (tf_cfg_xkey != NULL && strcmp(key, tf_cfg_xkey) == 0)
		return tf_cfg_xval;
	return NULL;
}

static const struct authd_plugin_host tf_host = {
    .abi = AUTHD_PLUGIN_ABI,
    .size = sizeof(struct authd_plugin_host),
    .log = tf_log,
    .config = tf_config,
};

static const char *
tf_plugin_path(void)
{
	static char path[4096];
	const char *b = getenv("AUTHD_BUILD_DIR");
	if (b != NULL && *b != '\0') {
		snprintf(path, sizeof(path), "%s/lib/authd/plugins/face.so", b);
		return path;
	}
	return AUTHD_TEST_PLUGIN;
}

static const char *
tf_models_dir(void)
{
	static char path[4096];
	const char *b = getenv("AUTHD_BUILD_DIR");
	if (b != NULL && *b != '\0') {
		snprintf(path, sizeof(path), "%s/share/authd/models", b);
		return path;
	}
	return NULL; /* plugin default: the build tree */
}

static const char *
tf_face_path(const char *name)
{
	static char path[4][4096];
	static int k;
	const char *d = getenv("AUTHD_FACES_DIR");
	char *p = path[k++ & 3];
	if (d != NULL && *d != '\0')
		snprintf(p, 4096, "%s/%s", d, name);
	else
		snprintf(p, 4096, "%s/../shared/faces/dev/%s",
		         getenv("AUTHD_SOURCE_DIR") ? getenv("AUTHD_SOURCE_DIR") : ".", name);
	return p;
}

/* Loads face.so and resolves its ABI struct (no init). */
static int
tf_open(void)
{
	tf_dl = dlopen(tf_plugin_path(), RTLD_NOW | RTLD_LOCAL);
	if (tf_dl == NULL) {
		fprintf(stderr, "dlopen %s: %s\n", tf_plugin_path(), dlerror());
		return -1;
	}
	tf_api = dlsym(tf_dl, AUTHD_PLUGIN_SYMBOL);
	return tf_api == NULL ? -1 : 0;
}

static int
tf_setup(void **unused)
{
	(void)unused;
	if (tf_open() < 0)
		return -1;
	tf_cfg_models = tf_models_dir();
	if (tf_api->init(&tf_host, &tf_state) != 0) {
		fprintf(stderr, "face init failed: %s\n", tf_last_log);
		return -1;
	}
	return 0;
}

static int
tf_teardown(void **unused)
{
	(void)unused;
	if (tf_api != NULL && tf_state != NULL)
		tf_api->fini(tf_state);
	tf_state = NULL;
	if (tf_dl != NULL)
		dlclose(tf_dl);
	tf_dl = NULL;
	tf_api = NULL;
	return 0;
}

static uint8_t *
tf_read(const char *name, size_t *len)
{
	uint8_t *buf = NULL;
	if (util_read_file(tf_face_path(name), 16u << 20, &buf, len) != 0) {
		fprintf(stderr, "cannot read %s\n", tf_face_path(name));
		return NULL;
	}
	return buf;
}

/* {"images":[b64url(bytes)...]} from raw buffers; caller frees. */
static char *
tf_req_raw(size_t n, const uint8_t *const *bufs, const size_t *lens)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char *b = b64url_encode(bufs[i], lens[i]);
		json_array_append_new(arr, json_string(b));
		free(b);
	}
	json_t *o = json_pack("{s:o}", "images", arr);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Request from dev-set file names (NULL-terminated). */
static char *
tf_req_files(const char *first, ...)
{
	const uint8_t *bufs[8] = {0}; /* zeroed: gcc -O1 warns otherwise */
	uint8_t *owned[8];
	size_t lens[8] = {0}, n = 0;
	va_list ap;
	va_start(ap, first);
	for (const char *f = first; f != NULL && n < 8; f = va_arg(ap, const char *)) {
		owned[n] = tf_read(f, &lens[n]);
		bufs[n] = owned[n];
		if (owned[n] == NULL) {
			va_end(ap);
			while (n > 0)
				free(owned[--n]);
			return NULL;
		}
		n++;
	}
	va_end(ap);
	char *s = tf_req_raw(n, bufs, lens);
	for (size_t i = 0; i < n; i++)
		free(owned[i]);
	return s;
}

static void
tf_enroll_out_free(struct authd_enroll_out *out)
{
	for (size_t i = 0; i < out->n_records; i++) {
		util_free_secret(&out->records[i].data, out->records[i].data_len);
		free(out->records[i].id);
	}
	free(out->info_json);
	memset(out, 0, sizeof(*out));
}

static int
tf_enroll(const char *req, struct authd_enroll_out *out)
{
	struct authd_enroll_in in;
	memset(&in, 0, sizeof(in));
	memset(out, 0, sizeof(*out));
	in.size = sizeof(in);
	in.subject = "C-42";
	in.request_json = req;
	in.request_len = req != NULL ? strlen(req) : 0;
	out->size = sizeof(*out);
	return tf_api->enroll(tf_state, &in, out);
}

static int
tf_verify(const char *req, const struct authd_record *recs, size_t n, struct authd_verify_out *out)
{
	struct authd_verify_in in;
	memset(&in, 0, sizeof(in));
	memset(out, 0, sizeof(*out));
	in.size = sizeof(in);
	in.subject = "C-42";
	in.request_json = req;
	in.request_len = req != NULL ? strlen(req) : 0;
	in.records = recs;
	in.n_records = n;
	out->size = sizeof(*out);
	out->verdict = AUTHD_VERDICT_DENY;
	return tf_api->verify(tf_state, &in, out);
}

static int
tf_has_reason(const struct authd_verify_out *out, const char *why)
{
	for (size_t i = 0; i < out->n_reasons; i++)
		if (strcmp(out->reasons[i], why) == 0)
			return 1;
	return 0;
}

#endif
