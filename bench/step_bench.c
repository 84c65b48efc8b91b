/*
 * authd-step-bench: the CPU one allow-path assess costs inside authd, with
 * no socket, no load generator and one worker thread: the floor under
 * bench/run-assess.sh's figure, and where it goes (docs/performance.md).
 *
 *   authd-step-bench [--config FILE] [--requests N] [--group K] [--customers M]
 *
 * Sets up a real daemon state in a fresh temporary directory under $TMPDIR
 * (/tmp): FILE's configuration (bench/bench.conf makes the request of
 * bench/bench_common.h an allow), signing keys, the SQLite store with its
 * writer, syncer and checkpoint threads. Then, on this thread, times each
 * step of the request path N times in CPU time (CLOCK_THREAD_CPUTIME_ID):
 *   - raw ES256 sign of a digest through EVP (the reference: what
 *     `openssl speed ecdsap256` measures, on the same core, same run);
 *   - the envelope parse (proto_parse), txn_parse, the approval token
 *     (approval_token: claims, JSON, base64url, sign), the reply encode
 *     (proto_reply_ok + proto_encode_token), the audit record hash (audit_hash);
 * and last the whole request: ops_handle_frames over groups of K frames
 * (default 32, as a worker takes them from a pipelined connection), N
 * requests with fresh transaction ids spread over M customers as
 * authd-bench spreads them (default 100000, as authd-bench's: each request
 * touches its own pages of the per-customer tables), counting the CPU of every thread of
 * the process (CLOCK_PROCESS_CPUTIME_ID: the store threads' SQL, audit
 * append, commit and fdatasync included), and of that the store writer's
 * (from /proc: the serial part of the request). Every reply must be an
 * allow.
 *
 * The last line gives the ceiling that floor implies on two dedicated
 * cores, against two cores' raw sign rate (2 x the one-core reference).
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "approval.h"
#include "bench_common.h"
#include "audit.h"
#include "daemon.h"
#include "ops.h"
#include "proto.h"
#include "txn.h"
#include "util.h"

static struct authd d;
static const struct peer peer = {.uid = 0, .gid = 0, .pid = 1, .roles = ROLE_CLIENT};

static double
cpu_us(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "authd-step-bench: %s: %s\n", what, why);
	exit(1);
}

static void
report(const char *step, double us_total, long n)
{
	printf("  %-44s %8.2f us\n", step, us_total / (double)n);
}

/*
 * The reference: ES256 over a SHA-256 digest with a fresh P-256 key, as openssl
 * speed does. Not inlined: bench/ir-assess.sh counts its instructions by name.
 */
__attribute__((noinline)) static double
raw_sign_us(long n)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	EVP_PKEY_CTX *ctx = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
	uint8_t md[32] = {1}, sig[80];
	if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1)
		die("reference key", "EVP_EC_gen / EVP_PKEY_sign_init failed");
	double t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		size_t sl = sizeof sig;
		if (EVP_PKEY_sign(ctx, sig, &sl, md, sizeof md) != 1)
			die("reference sign", "EVP_PKEY_sign failed");
	}
	double us = cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	return us;
}

/* CPU (us) of this process's threads named name (authd-writer, authd-sync, authd-ckpt), from /proc. */
static double
threads_cpu_us(const char *name)
{
	double us = 0;
	long tick = sysconf(_SC_CLK_TCK);
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	if (dir == NULL || tick <= 0)
		die("/proc/self/task", "cannot read");
	while ((e = readdir(dir)) != NULL) {
		char path[300], comm[32] = "", stat[1024];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof comm, f) == NULL)
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, name) != 0)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		size_t n = fread(stat, 1, sizeof stat - 1, f);
		fclose(f);
		stat[n] = '\0';
		/* utime and stime: fields 14 and 15, counted after the ")" that ends the name */
		const char *p = strrchr(stat, ')');
		unsigned long ut = 0, st = 0;
		if (p != NULL &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			us += (double)(ut + st) * 1e6 / (double)tick;
	}
	closedir(dir);
	return us;
}

struct emitted {
	long replies, allow;
};

static void
count_reply(void *arg, const uint8_t *reply, size_t len, int last)
{
	struct emitted *e = arg;
	(void)last;
	e->replies++;
	if (reply != NULL && memmem(reply, len, "\"result\":\"allow\"", 16) != NULL)
		e->allow++;
}

static void
setup(const char *config_path, char *dir, size_t dirlen)
{
	struct config *cfg = NULL;
	struct geo *geo = NULL;
	char err[512];
	const char *tmp = getenv("TMPDIR");
	if (util_crypto_init() < 0) /* as authd's main does */
		die("OpenSSL", "no SHA-256");
	snprintf(dir, dirlen, "%s/authd-step-bench.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", dir);
	if (config_load(config_path, &cfg, err, sizeof err) != 0)
		die("config", err);
	free(cfg->server.state_dir);
	if ((cfg->server.state_dir = strdup(dir)) == NULL)
		die("config", "out of memory");
	if (geo_load(cfg->geo.rir_file, cfg->geo.mmdb, &geo, err, sizeof err) != 0)
		die("geolocation", err);
	pthread_mutex_init(&d.snap_mu, NULL);
	d.started = util_now();
	authd_snap_set(&d, cfg, geo);
	if (token_keyring_load(dir, d.snap->cfg->token.alg, &d.keys, err, sizeof err) != 0)
		die("signing keys", err);
	if (store_open(d.snap->cfg, &d.store, err, sizeof err) != 0)
		die("store", err);
	if ((d.plugins = calloc(1, sizeof *d.plugins)) == NULL)
		die("plugins", "out of memory");
}

static void
teardown(const char *dir)
{
	char cmd[600];
	store_close(&d.store);
	token_keyring_free(&d.keys);
	free(d.plugins);
	authd_snap_put(&d.snap);
	util_crypto_done();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "authd-step-bench: could not remove %s\n", dir);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"requests", required_argument, NULL, 'n'},
	    {"group", required_argument, NULL, 'g'},  {"customers", required_argument, NULL, 'u'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	const char *config_path = NULL;
	unsigned un = 20000, ugroup = 32, customers = 100000;
	int o, bad = 0;
	while (!bad && (o = getopt_long(argc, argv, "c:n:g:u:h", opts, NULL)) != -1) {
		if (o == 'c')
			config_path = optarg;
		else if (o == 'n')
			bad = parse_uint(optarg, 100, 10000000, &un);
		else if (o == 'g')
			bad = parse_uint(optarg, 1, 1024, &ugroup);
		else if (o == 'u')
			bad = parse_uint(optarg, 1, 100000000, &customers);
		else {
			fprintf(stderr, "usage: authd-step-bench [--config FILE] [--requests N] [--group K] "
			                "[--customers M]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	if (bad || optind != argc) {
		fprintf(
		    stderr,
		    "authd-step-bench: --requests takes 100 to 10000000, --group 1 to 1024, --customers 1 "
		    "to 100000000; no other arguments\n");
		return 2;
	}
	long n = un, group = ugroup;

	char dir[512], buf[2048], msg[256];
	setup(config_path, dir, sizeof dir);
	printf("authd-step-bench: %ld requests, groups of %ld, %u customers, config %s, state %s\n", n, group,
	       customers, config_path ? config_path : "(embedded default)", dir);

	double ref = raw_sign_us(n);
	report("ES256 raw sign (EVP on a digest; reference)", ref, n);

	/* A sample request for the steps (its id never reaches the store). */
	int len = bench_assess_json(buf, sizeof buf, "S.0.0", 7, 10500);
	double t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		struct proto_req req = {0};
		if (proto_parse((const uint8_t *)buf, (size_t)len, &req, msg, sizeof msg) < 0)
			die("proto_parse", msg);
		proto_req_clear(&req);
	}
	report("envelope parse + free (proto_parse)", cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0, n);

	struct proto_req req = {0};
	struct txn t;
	struct op_ctx ctx = {.d = &d, .peer = &peer, .now = util_now()};
	if (proto_parse((const uint8_t *)buf, (size_t)len, &req, msg, sizeof msg) < 0)
		die("proto_parse", msg);
	ctx.snap = authd_snap_get(&d);
	ctx.cfg = ctx.snap->cfg;
	t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++)
		if (txn_parse(json_object_get(req.root, "txn"), ctx.now, &t, msg, sizeof msg) < 0)
			die("txn_parse", msg);
	report("txn_parse (fields, limits, txn hash)", cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0, n);

	json_t *reasons = json_pack("[s,s]", "overseas", "src_ip_unlocated");
	struct approval a = {
	    .subject = t.customer, .txn_id = t.id, .reasons = reasons, .jti = "bench-jti-0123456789ab"};
	memcpy(a.txn_hash, t.hash, 32);
	char *token = NULL;
	t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		free(token);
		if (approval_token(&ctx, &a, &token) < 0)
			die("approval_token", "failed");
	}
	report("approval token (claims, JSON, base64url, sign)", cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0, n);

	t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		json_t *body = json_pack("{s:O,s:s}", "reasons", reasons, "result", "allow");
		json_t *reply = body ? proto_reply_ok(req.id, body) : NULL;
		uint8_t *out = NULL;
		size_t out_len = 0;
		if (reply == NULL || proto_encode_token(reply, token, &out, &out_len) < 0)
			die("reply", "failed");
		free(out);
		json_decref(reply);
	}
	report("reply envelope + encode (proto_encode_token)", cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0, n);

	char hash_hex[65], out_hex[65];
	hex_encode(t.hash, 32, hash_hex);
	struct audit_rec rec = {.ts = ctx.now,
	                        .type = "assess",
	                        .customer = t.customer,
	                        .account = t.account,
	                        .txn_hash = hash_hex,
	                        .result = "allow",
	                        .reasons_json = reasons,
	                        .jti = a.jti,
	                        .actor = "uid:0"};
	memset(rec.prev, '0', 64);
	t0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		rec.seq = i + 1;
		if (audit_hash(rec.prev, &rec, out_hex) < 0)
			die("audit_hash", "failed");
	}
	report("audit record hash (audit_hash)", cpu_us(CLOCK_THREAD_CPUTIME_ID) - t0, n);
	free(token);
	json_decref(reasons);
	proto_req_clear(&req);
	authd_snap_put(&ctx.snap);

	/* The whole request, in groups, with fresh ids: every thread's CPU. */
	struct ops_frame *f = calloc((size_t)group, sizeof *f);
	char(*payload)[1024] = calloc((size_t)group, sizeof *payload);
	struct emitted e = {0};
	uint8_t r[6];
	char prefix[16], id[64];
	if (f == NULL || payload == NULL || util_random(r, sizeof r) < 0)
		die("setup", "out of memory");
	snprintf(prefix, sizeof prefix, "S%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
	double wr0 = threads_cpu_us("authd-writer");
	double p0 = cpu_us(CLOCK_PROCESS_CPUTIME_ID), w0 = cpu_us(CLOCK_MONOTONIC);
	for (long done = 0; done < n;) {
		long k = n - done < group ? n - done : group;
		for (long i = 0; i < k; i++) {
			snprintf(id, sizeof id, "%s.%ld", prefix, done + i);
			int pl =
			    bench_assess_json(payload[i], sizeof payload[i], id,
			                      bench_customer((unsigned long long)(done + i), 0, customers),
			                      10000u + (unsigned)((done + i) % 1000));
			if (pl < 0 || (size_t)pl >= sizeof payload[i])
				die("request", "does not fit its buffer");
			f[i] = (struct ops_frame){(const uint8_t *)payload[i], (size_t)pl, 0};
		}
		ops_handle_frames(&d, &peer, f, (size_t)k, count_reply, &e);
		done += k;
	}
	double cpu = cpu_us(CLOCK_PROCESS_CPUTIME_ID) - p0, wall = cpu_us(CLOCK_MONOTONIC) - w0;
	double wr = threads_cpu_us("authd-writer") - wr0;
	report("whole assess (ops_handle_frames; all threads)", cpu, n);
	report("  of which the store's writer (serial)", wr, n);
	printf("  %-44s %8.2f us\n", "  wall time per assess (one worker)", wall / (double)n);
	free(f);
	free(payload);
	teardown(dir);
	if (e.replies != n || e.allow != n) {
		fprintf(stderr,
		        "authd-step-bench: %ld replies, %ld allow, want %ld of each (use bench/bench.conf)\n",
		        e.replies, e.allow, n);
		return 1;
	}
	double per = cpu / (double)n, sign1 = 1e6 / (ref / (double)n);
	printf("floor: %.1f us of CPU per assess -> at most %.0f assess/s on two dedicated cores = %.1f%% of "
	       "two "
	       "cores' raw sign rate (2 x %.0f/s; target 40%%)\n",
	       per, 2e6 / per, 100.0 * (2e6 / per) / (2 * sign1), sign1);
	return 0;
}
