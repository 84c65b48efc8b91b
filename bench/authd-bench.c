/*
 * authd-bench: load generator for a running authd (issue 2, "Performance").
 *
 *   authd-bench --socket PATH --op assess --connections N --pipeline K
 *               --duration S [--warmup S] [--threads T] [--customers M]
 *
 * Opens N connections (libauthd-client), keeps K requests in flight on each
 * (pipelined: a new request is sent as soon as a reply comes back), and
 * measures every request's latency from the moment its frame is handed to
 * the kernel to the moment its whole reply frame has been read. Connections
 * are spread over T client threads, each an epoll loop (default 1 thread, so
 * that the load generator takes as little as possible of the CPUs it shares
 * with the daemon).
 *
 * Only replies that arrive after the warm-up and before the end of the
 * measured window count. Replies with "ok":false are counted as errors (and
 * their latency is still recorded). At the end, in-flight requests are
 * drained (not counted) so the daemon is left idle.
 *
 * stdout gets exactly one line:
 *   <op>: <req/s> req/s, p50 <us> us, p99 <us> us, errors <n>
 * Details (settings, p99.9, max, first error, non-allow results) go to stderr.
 *
 * Ops are a table of struct bench_op; an op formats its request frame and
 * judges its reply. assess is implemented; verify-fido2, verify-face and
 * redeem are reserved for later issues and report "unsupported op".
 *
 * Exit: 0 done, 1 runtime failure (connect, lost connection), 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "authd_client.h"

#define MAX_REPLY (64u << 20)
#define REQ_MAX 2048
#define DRAIN_SECONDS 10

/* ---------------- latency histogram ---------------- */

/*
 * Log-linear buckets over nanoseconds: values below 2^SUB_BITS are exact,
 * above that each power of two is split into 2^SUB_BITS buckets, so the
 * reported value is within 1/64 (1.6%) of the true one.
 */
#define SUB_BITS 6
#define SUB (1u << SUB_BITS)
#define N_BUCKETS ((64 - SUB_BITS + 1) * SUB)

struct hist {
	uint64_t b[N_BUCKETS];
	uint64_t n, max;
};

static unsigned
hist_index(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - SUB_BITS;
	return (shift + 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* Midpoint of bucket i. */
static double
hist_value(unsigned i)
{
	if (i < SUB)
		return i;
	unsigned shift = i / SUB - 1;
	uint64_t lo = ((uint64_t)(i % SUB) + SUB) << shift;
	return (double)lo + (double)((uint64_t)1 << shift) / 2.0;
}

static void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static void
hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < N_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->n += src->n;
	if (src->max > dst->max)
		dst->max = src->max;
}

static double
hist_quantile(const struct hist *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < N_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			double v = hist_value(i);
			return v > (double)h->max ? (double)h->max : v;
		}
	}
	return (double)h->max;
}

/* ---------------- ops ---------------- */

struct bench_conf {
	const char *socket;
	const char *op_name;
	unsigned connections, pipeline, threads, customers;
	double duration, warmup;
	char prefix[24]; /* per-run random prefix of ids */
};

static struct bench_conf g;

enum verdict { V_OK, V_OK_OTHER, V_ERROR };

struct bench_op {
	const char *name;
	/* NULL: reserved for a later issue ("unsupported op"). */
	int (*format)(char *buf, size_t cap, unsigned conn, uint64_t seq, const char *req_id);
	enum verdict (*judge)(const char *reply, size_t len);
};

static int
assess_format(char *buf, size_t cap, unsigned conn, uint64_t seq, const char *req_id)
{
	/* Personal account, small amount, known device: the allow path (see bench/bench.conf). */
	unsigned cust = bench_customer(seq, conn, g.customers);
	return bench_assess_json(buf, cap, req_id, cust, 10000u + (unsigned)(seq % 1000));
}

static enum verdict
reply_ok(const char *r, size_t len)
{
	if (memmem(r, len, "\"ok\":true", 9) != NULL)
		return V_OK;
	return V_ERROR;
}

static enum verdict
assess_judge(const char *r, size_t len)
{
	enum verdict v = reply_ok(r, len);
	if (v != V_OK)
		return v;
	return memmem(r, len, "\"result\":\"allow\"", 16) ? V_OK : V_OK_OTHER;
}

static const struct bench_op ops[] = {
	{"assess", assess_format, assess_judge},
	{"verify-fido2", NULL, NULL},
	{"verify-face", NULL, NULL},
	{"redeem", NULL, NULL},
};

static const struct bench_op *op;

/* ---------------- connections and client threads ---------------- */

struct conn {
	unsigned index;
	struct authd_client *client;
	int fd;
	uint64_t seq;
	/* send times of requests in flight, in order (ring of pipeline entries) */
	uint64_t *sent;
	unsigned head, inflight;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint8_t *in;
	size_t in_len, in_cap;
	int want_out, dead;
};

struct worker {
	pthread_t tid;
	unsigned first, count; /* connections [first, first+count) */
	struct conn *conns;
	int epfd;
	struct hist h;
	uint64_t done, errors, other, lost, total_replies;
	char first_error[256];
	int failed;
};

static atomic_int phase; /* 0 warm-up, 1 measuring, 2 draining */
static _Atomic uint64_t drain_deadline;

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("authd-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

static int
out_reserve(struct conn *c, size_t more)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + more <= c->out_cap)
		return 0;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_len + more <= c->out_cap)
			return 0;
	}
	size_t cap = c->out_cap ? c->out_cap * 2 : 16384;
	while (cap < c->out_len + more)
		cap *= 2;
	uint8_t *p = realloc(c->out, cap);
	if (p == NULL)
		return -1;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

/* Formats the next request of c into its output buffer; its clock starts at flush. */
static int
queue_request(struct conn *c)
{
	char id[64];
	if (out_reserve(c, REQ_MAX + 4) < 0)
		return -1;
	snprintf(id, sizeof id, "%s.%u.%" PRIu64, g.prefix, c->index, c->seq++);
	int n = op->format((char *)c->out + c->out_len + 4, REQ_MAX, c->index, c->seq, id);
	if (n <= 0 || n >= REQ_MAX)
		return -1;
	uint8_t *h = c->out + c->out_len;
	h[0] = (uint8_t)((uint32_t)n >> 24);
	h[1] = (uint8_t)((uint32_t)n >> 16);
	h[2] = (uint8_t)((uint32_t)n >> 8);
	h[3] = (uint8_t)n;
	c->out_len += 4 + (size_t)n;
	c->sent[(c->head + c->inflight) % g.pipeline] = 0; /* stamped by flush */
	c->inflight++;
	return 0;
}

static void
set_out_interest(struct worker *w, struct conn *c, int want)
{
	if (c->want_out == want || c->dead)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = want;
}

static void
conn_lost(struct worker *w, struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (atomic_load(&phase) < 2) {
		fprintf(stderr, "authd-bench: connection %u lost: %s\n", c->index, why);
		w->failed = 1;
	}
	w->lost += c->inflight;
	c->dead = 1;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Writes what is buffered; stamps the send time of requests as they go out. */
static void
flush(struct worker *w, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_lost(w, c, strerror(errno));
		return;
	}
	/* Requests fully handed to the kernel get their clock started now. */
	uint64_t t = now_ns();
	for (unsigned i = 0; i < c->inflight; i++) {
		uint64_t *s = &c->sent[(c->head + i) % g.pipeline];
		if (*s == 0)
			*s = t;
	}
	/* (A partially sent last frame is stamped a little early: harmless, and only under back-pressure.) */
	set_out_interest(w, c, c->out_off < c->out_len);
}

static void
on_reply(struct worker *w, struct conn *c, const uint8_t *p, size_t len, uint64_t t)
{
	if (c->inflight == 0) {
		conn_lost(w, c, "reply without a request");
		return;
	}
	uint64_t sent = c->sent[c->head];
	c->head = (c->head + 1) % g.pipeline;
	c->inflight--;
	w->total_replies++;
	enum verdict v = op->judge((const char *)p, len);
	if (atomic_load_explicit(&phase, memory_order_relaxed) == 1) {
		w->done++;
		hist_add(&w->h, t - sent);
		if (v == V_ERROR) {
			w->errors++;
			if (w->first_error[0] == '\0')
				snprintf(w->first_error, sizeof w->first_error, "%.*s", (int)(len > 200 ? 200 : len),
				         (const char *)p);
		} else if (v == V_OK_OTHER) {
			w->other++;
			if (w->first_error[0] == '\0')
				snprintf(w->first_error, sizeof w->first_error, "%.*s", (int)(len > 200 ? 200 : len),
				         (const char *)p);
		}
	}
	if (atomic_load_explicit(&phase, memory_order_relaxed) < 2 && queue_request(c) < 0)
		conn_lost(w, c, "cannot format request");
}

static void
on_readable(struct worker *w, struct conn *c)
{
	for (;;) {
		if (c->in_cap - c->in_len < 65536) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
			uint8_t *p = realloc(c->in, cap);
			if (p == NULL) {
				conn_lost(w, c, "out of memory");
				return;
			}
			c->in = p;
			c->in_cap = cap;
		}
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n == 0) {
			conn_lost(w, c, "closed by authd");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_lost(w, c, strerror(errno));
			return;
		}
		c->in_len += (size_t)n;
		if ((size_t)n < 65536)
			break;
	}
	uint64_t t = now_ns();
	size_t off = 0;
	while (c->in_len - off >= 4) {
		const uint8_t *h = c->in + off;
		uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		if (len == 0 || len > MAX_REPLY) {
			conn_lost(w, c, "bad reply frame length");
			return;
		}
		if (c->in_len - off - 4 < len)
			break;
		on_reply(w, c, h + 4, len, t);
		if (c->dead)
			return;
		off += 4 + len;
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	flush(w, c);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	unsigned live = w->count;

	for (unsigned i = 0; i < w->count; i++) {
		struct conn *c = &w->conns[i];
		for (unsigned k = 0; k < g.pipeline; k++)
			if (queue_request(c) < 0)
				conn_lost(w, c, "cannot format request");
		flush(w, c);
	}
	for (;;) {
		int ph = atomic_load(&phase);
		live = 0;
		for (unsigned i = 0; i < w->count; i++)
			if (!w->conns[i].dead && (ph < 2 || w->conns[i].inflight > 0))
				live++;
		if (live == 0)
			break;
		if (ph == 2 && now_ns() > atomic_load(&drain_deadline)) {
			for (unsigned i = 0; i < w->count; i++)
				w->lost += w->conns[i].dead ? 0 : w->conns[i].inflight;
			fprintf(stderr, "authd-bench: replies still missing after %d s of drain\n", DRAIN_SECONDS);
			w->failed = 1;
			break;
		}
		int n = epoll_wait(w->epfd, evs, 64, 100);
		if (n < 0 && errno != EINTR) {
			perror("authd-bench: epoll_wait");
			w->failed = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->dead)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_readable(w, c);
			if (!c->dead && (evs[i].events & EPOLLOUT))
				flush(w, c);
		}
	}
	return NULL;
}

/* ---------------- main ---------------- */

static void
usage(FILE *f)
{
	fprintf(f, "usage: authd-bench --socket PATH --op OP --connections N --pipeline K --duration S\n"
	           "                   [--warmup S] [--threads T] [--customers M]\n"
	           "  --socket PATH      authd's socket (default $AUTHD_SOCKET, else /run/authd/authd.sock)\n"
	           "  --op OP            assess (verify-fido2, verify-face, redeem: later)\n"
	           "  --connections N    connections to open (1..4096, default 16)\n"
	           "  --pipeline K       requests kept in flight per connection (1..1024, default 8)\n"
	           "  --duration S       measured seconds (default 10)\n"
	           "  --warmup S         seconds of load before measuring (default 2)\n"
	           "  --threads T        client threads, each an epoll loop (default 1)\n"
	           "  --customers M      distinct customers/accounts the requests spread over (default 100000)\n"
	           "prints one line: OP: <req/s> req/s, p50 <us> us, p99 <us> us, errors <n>\n");
}

static int
parse_secs(const char *s, double min, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min) || v > 86400)
		return -1;
	*out = v;
	return 0;
}

static void
sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"socket", required_argument, NULL, 's'},   {"op", required_argument, NULL, 'o'},
		{"connections", required_argument, NULL, 'c'}, {"pipeline", required_argument, NULL, 'p'},
		{"duration", required_argument, NULL, 'd'}, {"warmup", required_argument, NULL, 'w'},
		{"threads", required_argument, NULL, 't'},  {"customers", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	g.connections = 16;
	g.pipeline = 8;
	g.threads = 1;
	g.customers = 100000;
	g.duration = 10;
	g.warmup = 2;
	int ch, li = 0;
	while ((ch = getopt_long(argc, argv, "", lopts, &li)) != -1) {
		int bad = 0;
		switch (ch) {
		case 's': g.socket = optarg; break;
		case 'o': g.op_name = optarg; break;
		case 'c': bad = parse_uint(optarg, 1, 4096, &g.connections); break;
		case 'p': bad = parse_uint(optarg, 1, 1024, &g.pipeline); break;
		case 't': bad = parse_uint(optarg, 1, 256, &g.threads); break;
		case 'u': bad = parse_uint(optarg, 1, 100000000, &g.customers); break;
		case 'd': bad = parse_secs(optarg, 0.1, &g.duration); break;
		case 'w': bad = parse_secs(optarg, 0, &g.warmup); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (bad) {
			fprintf(stderr, "authd-bench: bad value for --%s: '%s'\n", lopts[li].name, optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "authd-bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (g.op_name == NULL) {
		fprintf(stderr, "authd-bench: --op is required\n");
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(ops[i].name, g.op_name) == 0)
			op = &ops[i];
	if (op == NULL) {
		fprintf(stderr, "authd-bench: unknown op '%s'\n", g.op_name);
		usage(stderr);
		return 2;
	}
	if (op->format == NULL) {
		fprintf(stderr, "authd-bench: unsupported op '%s' (not implemented yet)\n", g.op_name);
		return 2;
	}
	if (g.socket == NULL)
		g.socket = authd_client_default_socket();
	if (g.threads > g.connections)
		g.threads = g.connections;

	/* Per-run random prefix: txn ids never repeat across runs against the same state dir. */
	{
		uint8_t r[6] = {0};
		FILE *f = fopen("/dev/urandom", "rb");
		if (f == NULL || fread(r, 1, sizeof r, f) != sizeof r)
			die(1, "cannot read /dev/urandom");
		fclose(f);
		snprintf(g.prefix, sizeof g.prefix, "B%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
	}
	signal(SIGPIPE, SIG_IGN);

	struct conn *conns = calloc(g.connections, sizeof *conns);
	struct worker *ws = calloc(g.threads, sizeof *ws);
	if (conns == NULL || ws == NULL)
		die(1, "out of memory");
	for (unsigned i = 0; i < g.connections; i++) {
		struct conn *c = &conns[i];
		c->index = i;
		int r = authd_client_connect(g.socket, 5000, &c->client);
		if (r < 0)
			die(1, "cannot connect to %s (connection %u): error %d%s%s", g.socket, i, r,
			    errno ? ": " : "", errno ? strerror(errno) : "");
		c->fd = authd_client_fd(c->client);
		c->sent = calloc(g.pipeline, sizeof *c->sent);
		if (c->sent == NULL)
			die(1, "out of memory");
	}
	for (unsigned t = 0, first = 0; t < g.threads; t++) {
		struct worker *w = &ws[t];
		w->first = first;
		w->count = g.connections / g.threads + (t < g.connections % g.threads);
		w->conns = &conns[first];
		first += w->count;
		if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
			die(1, "epoll_create1: %s", strerror(errno));
		for (unsigned i = 0; i < w->count; i++) {
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->conns[i]};
			if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->conns[i].fd, &ev) < 0)
				die(1, "epoll_ctl: %s", strerror(errno));
		}
	}

	uint64_t t0 = now_ns();
	atomic_store(&phase, g.warmup > 0 ? 0 : 1);
	for (unsigned t = 0; t < g.threads; t++)
		if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0)
			die(1, "pthread_create failed");
	uint64_t t_meas = t0 + (uint64_t)(g.warmup * 1e9);
	sleep_until(t_meas);
	atomic_store(&phase, 1);
	uint64_t m0 = now_ns();
	sleep_until(m0 + (uint64_t)(g.duration * 1e9));
	uint64_t m1 = now_ns();
	/* Drain: the workers stop sending and exit once their requests are answered. */
	atomic_store(&drain_deadline, m1 + (uint64_t)DRAIN_SECONDS * 1000000000u);
	atomic_store(&phase, 2);
	for (unsigned t = 0; t < g.threads; t++)
		pthread_join(ws[t].tid, NULL);

	struct hist *h = calloc(1, sizeof *h);
	if (h == NULL)
		die(1, "out of memory");
	uint64_t done = 0, errors = 0, other = 0, lost = 0;
	int failed = 0;
	const char *first_error = NULL;
	for (unsigned t = 0; t < g.threads; t++) {
		hist_merge(h, &ws[t].h);
		done += ws[t].done;
		errors += ws[t].errors;
		other += ws[t].other;
		lost += ws[t].lost;
		failed |= ws[t].failed;
		if (first_error == NULL && ws[t].first_error[0])
			first_error = ws[t].first_error;
	}
	double secs = (double)(m1 - m0) / 1e9;
	double rate = (double)done / secs;
	fprintf(stderr,
	        "authd-bench: op %s, %u connections x pipeline %u, %u client thread(s), %.1f s measured after %.1f s "
	        "warm-up\n"
	        "authd-bench: %" PRIu64 " replies, p90 %.0f us, p99.9 %.0f us, max %.0f us, errors %" PRIu64
	        ", ok-but-not-allow %" PRIu64 ", lost %" PRIu64 "\n",
	        g.op_name, g.connections, g.pipeline, g.threads, secs, g.warmup, done, hist_quantile(h, 0.90) / 1e3,
	        hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3, errors, other, lost);
	if (first_error)
		fprintf(stderr, "authd-bench: first unexpected reply: %s\n", first_error);
	printf("%s: %.0f req/s, p50 %.0f us, p99 %.0f us, errors %" PRIu64 "\n", g.op_name, rate,
	       hist_quantile(h, 0.50) / 1e3, hist_quantile(h, 0.99) / 1e3, errors);
	fflush(stdout);
	for (unsigned i = 0; i < g.connections; i++) {
		authd_client_free(&conns[i].client);
		free(conns[i].sent);
		free(conns[i].in);
		free(conns[i].out);
	}
	for (unsigned t = 0; t < g.threads; t++)
		close(ws[t].epfd);
	free(h);
	free(conns);
	free(ws);
	return failed ? 1 : 0;
}
