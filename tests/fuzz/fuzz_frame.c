/*
 * The daemon's request path without a socket: wire framing
 * (proto_frame_peek), the envelope (proto_parse), the dispatch table and
 * every op handler's request parsing (op_get_str/op_get_int/txn_parse ...)
 * through ops_handle_frame, against a real struct authd: default config,
 * a small RIR file, signing keys, template key and a SQLite store in a
 * state dir on tmpfs, and the FIDO2 plugin linked in statically. The peer
 * holds every role (client, admin, pam).
 *
 * Byte 0 even: the rest is one frame payload. Byte 0 odd: the rest is a
 * byte stream cut into frames by their length prefixes, as server.c does
 * (a frame error ends the stream, as it closes the connection).
 *
 * The store is recreated every RESET_EVERY inputs so it does not grow
 * without bound over a long run; audit_verify and audit_export, which walk
 * the whole chain, are parsed but not dispatched.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authd_plugin.h"
#include "daemon.h"
#include "fuzz.h"
#include "ops.h"
#include "plugin.h"
#include "proto.h"
#include "util.h"

#define RESET_EVERY 5000
#define MAX_FRAME 65536

extern const struct authd_plugin authd_plugin_v1;

static struct authd d;
static struct peer peer = {.uid = 0, .gid = 0, .pid = 1, .roles = ROLE_CLIENT | ROLE_ADMIN | ROLE_PAM};
static char state_dir[64];
static unsigned long n_inputs;

static const char rir[] = "2|apnic|20250101|4|19830613|20250101|+1000\n"
                          "apnic|*|ipv4|*|2|summary\n"
                          "apnic|VN|ipv4|14.160.0.0|65536|20000101|allocated\n"
                          "arin|US|ipv4|8.8.8.0|256|19920101|assigned\n"
                          "apnic|VN|ipv6|2405:4800::|32|20080101|allocated\n";

static void
host_log(int prio, const char *msg)
{
	(void)prio;
	(void)msg;
}

static const char *
host_config(const char *section, const char *key)
{
	return d.snap ? config_get(d.snap->cfg, section, key) : NULL;
}

static const struct authd_plugin_host host = {
    .abi = AUTHD_PLUGIN_ABI,
    .size = sizeof(struct authd_plugin_host),
    .log = host_log,
    .config = host_config,
};

static void
rm_tree(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char p[512];
	if (dp == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(dp);
	rmdir(dir);
}

static void
open_store(void)
{
	char err[512];
	if (store_open(d.snap->cfg, &d.store, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_frame: store_open: %s\n", err);
		abort();
	}
}

static void
teardown(void)
{
	store_close(&d.store);
	token_keyring_free(&d.keys);
	tmpl_key_free(&d.tmpl);
	if (d.plugins != NULL) {
		for (size_t i = 0; i < d.plugins->n; i++)
			d.plugins->p[i].api->fini(d.plugins->p[i].state);
		free(d.plugins);
		d.plugins = NULL;
	}
	authd_snap_put(&d.snap);
	rm_tree(state_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *cfg = NULL;
	struct geo *geo = NULL;
	char err[512], rirpath[128];
	(void)argc;
	(void)argv;

	fuzz_wrap_init();
	snprintf(state_dir, sizeof state_dir, "%s",
	         access("/dev/shm", W_OK) == 0 ? "/dev/shm/authd-fuzz-XXXXXX" : "/tmp/authd-fuzz-XXXXXX");
	if (mkdtemp(state_dir) == NULL)
		abort();
	snprintf(rirpath, sizeof rirpath, "%s/rir.txt", state_dir);
	FILE *f = fopen(rirpath, "w");
	if (f == NULL || fputs(rir, f) < 0 || fclose(f) != 0)
		abort();
	if (config_load(NULL, &cfg, err, sizeof err) != 0)
		abort();
	free(cfg->server.state_dir);
	cfg->server.state_dir = strdup(state_dir);
	cfg->geo.rir_file = strdup(rirpath);
	cfg->server.max_frame = MAX_FRAME;
	if (cfg->server.state_dir == NULL || cfg->geo.rir_file == NULL ||
	    geo_load(cfg->geo.rir_file, NULL, &geo, err, sizeof err) != 0)
		abort();
	pthread_mutex_init(&d.snap_mu, NULL);
	d.started = util_now();
	authd_snap_set(&d, cfg, geo);
	if (token_keyring_load(state_dir, d.snap->cfg->token.alg, &d.keys, err, sizeof err) != 0 ||
	    tmpl_key_load(state_dir, &d.tmpl, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_frame: %s\n", err);
		abort();
	}
	open_store();
	if ((d.plugins = calloc(1, sizeof *d.plugins)) == NULL)
		abort();
	d.plugins->p[0].api = &authd_plugin_v1;
	snprintf(d.plugins->p[0].path, sizeof d.plugins->p[0].path, "(static)");
	if (authd_plugin_v1.init(&host, &d.plugins->p[0].state) != 0)
		abort();
	d.plugins->n = 1;
	atexit(teardown);
	return 0;
}

static int
skipped_op(const uint8_t *p, size_t n)
{
	struct proto_req req;
	char msg[256];
	int skip = 0;
	if (proto_parse(p, n, &req, msg, sizeof msg) == 0)
		skip = strcmp(req.op, "audit_verify") == 0 || strcmp(req.op, "audit_export") == 0;
	proto_req_clear(&req);
	return skip;
}

static void
check_reply(const uint8_t *reply, size_t rl)
{
	size_t pl = 0;
	if (reply == NULL) {
		/* Only out of memory may leave no reply. */
		FUZZ_ASSERT(fuzz_faults_enabled());
		return;
	}
	/* The reply is one well-formed frame holding a v1 envelope with "ok". */
	FUZZ_ASSERT(proto_frame_peek(reply, rl, PROTO_DEFAULT_MAX_FRAME, &pl) == 1 &&
	            pl + PROTO_HDR_LEN == rl);
	if (!fuzz_faults_enabled()) {
		json_error_t jerr;
		json_t *v = json_loadb((const char *)reply + PROTO_HDR_LEN, pl, 0, &jerr);
		FUZZ_ASSERT(v != NULL && json_is_boolean(json_object_get(v, "ok")));
		if (json_is_false(json_object_get(v, "ok")))
			FUZZ_ASSERT(json_is_string(json_object_get(json_object_get(v, "error"), "code")));
		json_decref(v);
	}
}

static void
one_frame(const uint8_t *p, size_t n, int frame_err)
{
	uint8_t *reply = NULL;
	size_t rl = 0;

	if (p != NULL && skipped_op(p, n))
		return;
	ops_handle_frame(&d, &peer, p, n, frame_err, &reply, &rl);
	check_reply(reply, rl);
	free(reply);
}

static void
emit_check(void *arg, const uint8_t *reply, size_t rl, int last)
{
	(void)last;
	(*(size_t *)arg)++;
	check_reply(reply, rl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > MAX_FRAME)
		return 0;
	if (++n_inputs % RESET_EVERY == 0) {
		char db[128];
		store_close(&d.store);
		snprintf(db, sizeof db, "%s/authd.db", state_dir);
		unlink(db);
		snprintf(db, sizeof db, "%s/authd.db-wal", state_dir);
		unlink(db);
		snprintf(db, sizeof db, "%s/authd.db-shm", state_dir);
		unlink(db);
		open_store();
	}
	fuzz_arm(data, size);
	if ((data[0] & 1) == 0) {
		one_frame(data + 1, size - 1, 0);
	} else {
		/* A pipelined stream: the frames a worker takes from one connection at once. */
		struct ops_frame f[16];
		const uint8_t *p = data + 1;
		size_t left = size - 1, pl = 0, n = 0, replies = 0;
		while (n < 16 && left > 0) {
			int r = proto_frame_peek(p, left, MAX_FRAME, &pl);
			if (r == 0)
				break; /* incomplete: the server waits for more */
			if (r < 0) {
				f[n++] = (struct ops_frame){NULL, 0, r};
				break;
			}
			FUZZ_ASSERT(pl > 0 && pl <= MAX_FRAME && pl + PROTO_HDR_LEN <= left);
			if (!skipped_op(p + PROTO_HDR_LEN, pl))
				f[n++] = (struct ops_frame){p + PROTO_HDR_LEN, pl, 0};
			p += PROTO_HDR_LEN + pl;
			left -= PROTO_HDR_LEN + pl;
		}
		ops_handle_frames(&d, &peer, f, n, emit_check, &replies);
		FUZZ_ASSERT(replies == n);
	}
	fuzz_disarm();
	return 0;
}
