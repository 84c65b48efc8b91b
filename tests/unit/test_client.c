/*
 * libauthd-client. connect: a full listen backlog (EAGAIN on a Unix socket:
 * nothing connected) is retried until the timeout, not taken for a
 * connection; a missing socket fails at once. Calls, against a fake authd
 * in a thread: a timeout or any bad reply kills the connection (a retry on
 * it never gets the reply to the request that failed); a reply must carry
 * its request's id; the timeout bounds a whole reply or request, however
 * slowly it trickles; bad frames are errors, never crashes; the request
 * and reply buffers are wiped before free (linked with -Wl,--wrap=free).
 */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "authd_client.h"
#include "err.h"

struct lsock {
	char dir[64];
	char path[108];
	int fd;
	int fillers[64];
	int n_fillers;
};

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A listening socket whose backlog is full: further non-blocking connects get EAGAIN. */
static void
lsock_full(struct lsock *l)
{
	snprintf(l->dir, sizeof l->dir, "/tmp/authd-client-XXXXXX");
	assert_non_null(mkdtemp(l->dir));
	snprintf(l->path, sizeof l->path, "%s/s.sock", l->dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->path);
	l->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(l->fd, 0), 0);
	l->n_fillers = 0;
	for (;;) {
		assert_true(l->n_fillers < 64);
		int f = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(f >= 0);
		if (connect(f, (struct sockaddr *)&sa, sizeof sa) != 0) {
			assert_int_equal(errno, EAGAIN);
			close(f);
			break;
		}
		l->fillers[l->n_fillers++] = f;
	}
}

static void
lsock_free(struct lsock *l)
{
	for (int i = 0; i < l->n_fillers; i++)
		close(l->fillers[i]);
	close(l->fd);
	unlink(l->path);
	rmdir(l->dir);
}

static void
test_full_backlog_times_out(void **state)
{
	(void)state;
	struct lsock l;
	lsock_full(&l);
	struct authd_client *c = NULL;
	double t0 = now_s();
	int r = authd_client_connect(l.path, 300, &c);
	double took = now_s() - t0;
	assert_true(r < 0);
	assert_null(c);
	assert_true(took >= 0.25);
	assert_true(took < 5.0);
	lsock_free(&l);
}

static void *
accept_later(void *arg)
{
	struct lsock *l = arg;
	struct timespec ts = {0, 150 * 1000000};
	nanosleep(&ts, NULL);
	int a = accept(l->fd, NULL, NULL); /* frees a backlog slot */
	return (void *)(intptr_t)a;
}

static void
test_full_backlog_connects_once_room(void **state)
{
	(void)state;
	struct lsock l;
	lsock_full(&l);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, accept_later, &l), 0);
	struct authd_client *c = NULL;
	int r = authd_client_connect(l.path, 5000, &c);
	void *ret;
	pthread_join(th, &ret);
	assert_int_equal(r, 0);
	assert_non_null(c);
	/* really connected: the daemon side can accept it */
	int a = accept(l.fd, NULL, NULL);
	assert_true(a >= 0);
	close(a);
	close((int)(intptr_t)ret);
	authd_client_free(&c);
	lsock_free(&l);
}

static void
test_missing_socket_fails_at_once(void **state)
{
	(void)state;
	struct authd_client *c = NULL;
	double t0 = now_s();
	assert_true(authd_client_connect("/tmp/authd-client-nonexistent/none.sock", 5000, &c) < 0);
	assert_null(c);
	assert_true(now_s() - t0 < 1.0);
	char long_path[200];
	memset(long_path, 'a', sizeof long_path - 1);
	long_path[sizeof long_path - 1] = 0;
	assert_true(authd_client_connect(long_path, 100, &c) < 0);
	assert_null(c);
}

/* ---------------- a fake authd ---------------- */

struct fake;
typedef void (*fake_script)(struct fake *f, int fd);

struct fake {
	char dir[64];
	char path[108];
	int lfd;
	pthread_t th;
	fake_script script;
	int to_srv[2];     /* pipes: "done that step", test -> server */
	int to_test[2];    /* and server -> test */
	const char *reply; /* for script_reply: payload, @ID@ is the request's id */
	int got_more;      /* requests read after the first, by scripts that count them */
	int bad; /* the server thread's checks that failed (cmocka asserts only in the test's thread) */
};

static void
fake_signal(struct fake *f, const int pipe_fds[2])
{
	char b = 1;
	if (write(pipe_fds[1], &b, 1) != 1)
		f->bad++;
}

/* 0, or -1 after 10 s without a signal */
static int
fake_wait(const int pipe_fds[2])
{
	char b;
	struct pollfd p = {.fd = pipe_fds[0], .events = POLLIN};
	if (poll(&p, 1, 10000) != 1 || read(pipe_fds[0], &b, 1) != 1)
		return -1;
	return 0;
}

static int
srv_write(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
srv_read(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n > 0) {
		ssize_t r = recv(fd, b, n, 0);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One request frame into buf (NUL-terminated); its length, or -1 at EOF or when over cap. */
static long
srv_read_frame(int fd, char *buf, size_t cap)
{
	uint8_t h[4];
	if (srv_read(fd, h, 4) < 0)
		return -1;
	uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (n >= cap || srv_read(fd, buf, n) < 0)
		return -1;
	buf[n] = 0;
	return (long)n;
}

static void
srv_frame_hdr(uint8_t h[4], uint32_t n)
{
	h[0] = (uint8_t)(n >> 24);
	h[1] = (uint8_t)(n >> 16);
	h[2] = (uint8_t)(n >> 8);
	h[3] = (uint8_t)n;
}

static int
srv_write_frame(int fd, const char *payload)
{
	uint8_t h[4];
	srv_frame_hdr(h, (uint32_t)strlen(payload));
	if (srv_write(fd, h, 4) < 0)
		return -1;
	return srv_write(fd, payload, strlen(payload));
}

/* The id the client added to a request frame ("id":"cN"), into id; -1 if none. */
static int
srv_request_id(const char *frame, char *id, size_t cap)
{
	const char *p = strstr(frame, "\"id\":\"c");
	if (p == NULL)
		return -1;
	p += 6;
	size_t n = strcspn(p, "\"");
	if (n >= cap)
		return -1;
	memcpy(id, p, n);
	id[n] = 0;
	return 0;
}

/* Reads one request and answers f->reply, its @ID@ replaced by the request's id. */
static int
srv_answer(struct fake *f, int fd)
{
	char req[4096], id[64], out[4096];
	if (srv_read_frame(fd, req, sizeof req) < 0 || srv_request_id(req, id, sizeof id) < 0) {
		f->bad++;
		return -1;
	}
	const char *at = strstr(f->reply, "@ID@");
	if (at == NULL)
		snprintf(out, sizeof out, "%s", f->reply);
	else
		snprintf(out, sizeof out, "%.*s%s%s", (int)(at - f->reply), f->reply, id, at + 4);
	return srv_write_frame(fd, out);
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct timeval tv = {10, 0}; /* a broken test fails instead of hanging */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	f->script(f, fd);
	close(fd);
	return NULL;
}

/* Starts a fake authd running script on its one connection; returns a client connected to it. */
static struct authd_client *
fake_start(struct fake *f, fake_script script, int timeout_ms)
{
	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/authd-client-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/s.sock", f->dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pipe(f->to_srv), 0);
	assert_int_equal(pipe(f->to_test), 0);
	f->script = script;
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	struct authd_client *c = NULL;
	assert_int_equal(authd_client_connect(f->path, timeout_ms, &c), 0);
	return c;
}

static void
fake_stop(struct fake *f, struct authd_client **c)
{
	authd_client_free(c); /* the server sees EOF */
	pthread_join(f->th, NULL);
	assert_int_equal(f->bad, 0);
	close(f->lfd);
	for (int i = 0; i < 2; i++) {
		close(f->to_srv[i]);
		close(f->to_test[i]);
	}
	unlink(f->path);
	rmdir(f->dir);
}

static json_t *
assess(const char *txn_id)
{
	json_t *req = json_pack("{s:s,s:{s:s}}", "op", "assess", "txn", "id", txn_id);
	assert_non_null(req);
	return req;
}

/* Every later use of a dead connection fails at once, and does not touch the socket. */
static void
assert_dead(struct authd_client *c)
{
	json_t *req = assess("T-9"), *reply = (json_t *)1;
	double t0 = now_s();
	assert_int_equal(authd_client_call(c, req, &reply), AUTHD_ERR_IO);
	assert_null(reply);
	reply = (json_t *)1;
	assert_int_equal(authd_client_recv(c, &reply), AUTHD_ERR_IO);
	assert_null(reply);
	assert_int_equal(authd_client_send(c, req), AUTHD_ERR_IO);
	assert_int_equal(authd_client_send_raw(c, "x", 1), AUTHD_ERR_IO);
	assert_true(now_s() - t0 < 1.0);
	json_decref(req);
}

/* ---------------- normal calls ---------------- */

/* Answers every request with its own id ("allow" to the first); the first two must be T-1's and T-2's. */
static void
script_echo(struct fake *f, int fd)
{
	static const char *const want[] = {
	    "{\"op\":\"assess\",\"txn\":{\"id\":\"T-1\"},\"v\":1,\"id\":\"c1\"}",
	    "{\"op\":\"assess\",\"txn\":{\"id\":\"T-2\"},\"v\":1,\"id\":\"c2\"}",
	};
	char req[4096], out[4096];
	for (int i = 0;; i++) {
		if (srv_read_frame(fd, req, sizeof req) < 0)
			return;
		if (i < 2 && strcmp(req, want[i]) != 0)
			f->bad++;
		json_t *j = json_loads(req, 0, NULL);
		char *id = json_dumps(json_object_get(j, "id"), JSON_ENCODE_ANY);
		json_decref(j);
		if (id == NULL) {
			f->bad++;
			return;
		}
		const char *result = i == 0 ? "allow" : "step_up";
		snprintf(out, sizeof out, "{\"v\":1,\"id\":%s,\"ok\":true,\"result\":\"%s\"}", id, result);
		free(id);
		if (srv_write_frame(fd, out) < 0)
			return;
	}
}

static void
test_call_ok(void **state)
{
	(void)state;
	struct fake f;
	struct authd_client *c = fake_start(&f, script_echo, 5000);
	json_t *req = assess("T-1"), *reply = NULL;
	assert_int_equal(authd_client_call(c, req, &reply), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "result")), "allow");
	json_decref(req);
	json_decref(reply);
	req = assess("T-2");
	assert_int_equal(authd_client_call(c, req, &reply), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "id")), "c2");
	assert_string_equal(json_string_value(json_object_get(reply, "result")), "step_up");
	json_decref(req);
	json_decref(reply);

	json_t *a = assess("T-3"), *b = assess("T-4"), *ra = NULL, *rb = NULL;
	assert_int_equal(authd_client_send(c, a), 0);
	assert_int_equal(authd_client_send(c, b), 0);
	assert_int_equal(authd_client_recv(c, &ra), 0);
	assert_int_equal(authd_client_recv(c, &rb), 0);
	assert_true(json_equal(json_object_get(ra, "id"), json_object_get(a, "id")));
	assert_true(json_equal(json_object_get(rb, "id"), json_object_get(b, "id")));
	json_decref(a);
	json_decref(b);
	json_decref(ra);
	json_decref(rb);

	/* the caller's own id is kept, and matched */
	req = json_pack("{s:s,s:s}", "op", "health", "id", "req-7");
	assert_int_equal(authd_client_call(c, req, &reply), 0);
	assert_string_equal(json_string_value(json_object_get(reply, "id")), "req-7");
	json_decref(req);
	json_decref(reply);
	/* a request refused before sending leaves the connection usable */
	req = json_array();
	assert_int_equal(authd_client_call(c, req, &reply), AUTHD_ERR_BAD_REQUEST);
	assert_null(reply);
	json_decref(req);
	fake_stop(&f, &c);
}

/* ---------------- timeout: the stale reply is never returned ---------------- */

static void
script_slow_then_stale(struct fake *f, int fd)
{
	char req[4096];
	if (srv_read_frame(fd, req, sizeof req) < 0 || strstr(req, "T-1") == NULL ||
	    fake_wait(f->to_srv) < 0) {
		f->bad++; /* fake_wait: until the client has timed out */
		return;
	}
	srv_write_frame(
	    fd, "{\"v\":1,\"id\":\"c1\",\"ok\":true,\"result\":\"allow\",\"token\":\"TOKEN-FOR-T-1\"}");
	fake_signal(f, f->to_test); /* the stale reply is on its way */
	/* answer anything more, as a slow daemon would */
	while (srv_read_frame(fd, req, sizeof req) >= 0) {
		f->got_more++;
		srv_write_frame(fd, "{\"v\":1,\"id\":\"c2\",\"ok\":true,\"result\":\"step_up\"}");
	}
}

static void
test_timeout_kills_connection(void **state)
{
	(void)state;
	struct fake f;
	struct authd_client *c = fake_start(&f, script_slow_then_stale, 200);
	json_t *req = assess("T-1"), *reply = (json_t *)1;
	double t0 = now_s();
	assert_int_equal(authd_client_call(c, req, &reply), AUTHD_ERR_UNAVAILABLE);
	assert_true(now_s() - t0 >= 0.15);
	assert_null(reply);
	json_decref(req);
	fake_signal(&f, f.to_srv);
	assert_int_equal(fake_wait(f.to_test), 0);
	/* before: 0 with T-1's allow and token */
	req = assess("T-2");
	reply = (json_t *)1;
	assert_int_equal(authd_client_call(c, req, &reply), AUTHD_ERR_IO);
	assert_null(reply);
	json_decref(req);
	assert_dead(c);
	fake_stop(&f, &c);
	assert_int_equal(f.got_more, 0); /* nothing more was sent on the dead connection */
}

/* ---------------- reply ids ---------------- */

static void
script_reply(struct fake *f, int fd)
{
	srv_answer(f, fd);
	char req[4096];
	while (srv_read_frame(fd, req, sizeof req) >= 0)
		f->got_more++;
}

static void
call_with_reply(const char *reply_fmt, int want_r)
{
	struct fake f;
	struct authd_client *c = fake_start(&f, script_reply, 5000);
	f.reply = reply_fmt;
	json_t *req = assess("T-1"), *reply = (json_t *)1;
	int r = authd_client_call(c, req, &reply);
	json_decref(req);
	assert_int_equal(r, want_r);
	if (r == 0) {
		assert_non_null(reply);
		json_decref(reply);
	} else {
		assert_null(reply);
		assert_dead(c);
	}
	fake_stop(&f, &c);
	assert_int_equal(f.got_more, 0);
}

static void
test_reply_id_must_match(void **state)
{
	(void)state;
	/* another request's reply */
	call_with_reply("{\"v\":1,\"id\":\"c0\",\"ok\":true,\"result\":\"allow\",\"x\":\"@ID@\"}",
	                AUTHD_ERR_TAMPERED);
	call_with_reply("{\"v\":1,\"id\":\"@ID@-\",\"ok\":true,\"result\":\"allow\"}", AUTHD_ERR_TAMPERED);
	/* an id of another type */
	call_with_reply("{\"v\":1,\"id\":1,\"ok\":true,\"result\":\"allow\",\"x\":\"@ID@\"}",
	                AUTHD_ERR_TAMPERED);
	call_with_reply("{\"v\":1,\"id\":[\"@ID@\"],\"ok\":true,\"result\":\"allow\"}", AUTHD_ERR_TAMPERED);
	/* no id at all: not authd's answer (it always sends one) */
	call_with_reply("{\"v\":1,\"ok\":true,\"result\":\"allow\",\"x\":\"@ID@\"}", AUTHD_ERR_TAMPERED);
	/* "id":null is authd's answer to a frame whose id it could not read: only as an error */
	call_with_reply("{\"v\":1,\"id\":null,\"ok\":true,\"result\":\"allow\",\"x\":\"@ID@\"}",
	                AUTHD_ERR_TAMPERED);
	call_with_reply(
	    "{\"v\":1,\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"@ID@\"}}",
	    0);
	/* the matching id */
	call_with_reply("{\"v\":1,\"id\":\"@ID@\",\"ok\":true,\"result\":\"allow\"}", 0);
}

/* ---------------- bad frames: errors, never crashes ---------------- */

struct bad_frame {
	const void *bytes;
	size_t len;
	int want_r;
};

static const struct bad_frame *bad_now;

static void
script_bad_frame(struct fake *f, int fd)
{
	char req[4096];
	if (srv_read_frame(fd, req, sizeof req) < 0)
		return;
	srv_write(fd, bad_now->bytes, bad_now->len);
	/* keep the connection open (no EOF) until the client closes it */
	while (srv_read_frame(fd, req, sizeof req) >= 0)
		f->got_more++;
}

static void
test_bad_frames(void **state)
{
	(void)state;
	static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, '{', '}'};
	static const uint8_t over[] = {0x04, 0x00, 0x00, 0x01, '{', '}'}; /* 64 MiB + 1 */
	static const uint8_t zero[] = {0, 0, 0, 0, 0, 0, 0, 2, '{', '}'};
	static const uint8_t garbage[] = {0, 0, 0, 6, '{', '"', 'o', 'k', '"', 0xff};
	static const uint8_t array[] = {0, 0, 0, 2, '[', ']'};
	static const uint8_t nul[] = {0, 0, 0, 3, '{', 0, '}'};
	static const uint8_t two[] = {0, 0, 0, 4, '{', '}', '{', '}'};
	static const uint8_t trunc_body[] = {0, 0, 0, 100, '{', '"', 'v', '"'};
	static const uint8_t trunc_hdr[] = {0, 0};
	const struct bad_frame cases[] = {
	    {huge, sizeof huge, AUTHD_ERR_TOO_LARGE},
	    {over, sizeof over, AUTHD_ERR_TOO_LARGE},
	    {zero, sizeof zero, AUTHD_ERR_TOO_LARGE},
	    {garbage, sizeof garbage, AUTHD_ERR_BAD_REQUEST},
	    {array, sizeof array, AUTHD_ERR_BAD_REQUEST},
	    {nul, sizeof nul, AUTHD_ERR_BAD_REQUEST},
	    {two, sizeof two, AUTHD_ERR_BAD_REQUEST},
	    /* truncated, and the daemon silent: the timeout */
	    {trunc_body, sizeof trunc_body, AUTHD_ERR_UNAVAILABLE},
	    {trunc_hdr, sizeof trunc_hdr, AUTHD_ERR_UNAVAILABLE},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fake f;
		bad_now = &cases[i];
		struct authd_client *c = fake_start(&f, script_bad_frame, 300);
		json_t *req = assess("T-1"), *reply = (json_t *)1;
		int r = authd_client_call(c, req, &reply);
		if (r != cases[i].want_r)
			fail_msg("case %zu: %d, want %d", i, r, cases[i].want_r);
		assert_null(reply);
		json_decref(req);
		assert_dead(c);
		fake_stop(&f, &c);
		assert_int_equal(f.got_more, 0);
	}
}

static void
script_eof(struct fake *f, int fd)
{
	char req[4096];
	if (srv_read_frame(fd, req, sizeof req) < 0)
		return;
	srv_write(fd, bad_now->bytes, bad_now->len);
	shutdown(fd, SHUT_WR); /* the daemon closes */
	while (srv_read_frame(fd, req, sizeof req) >= 0)
		f->got_more++;
}

static void
test_truncated_then_closed(void **state)
{
	(void)state;
	static const uint8_t none[1] = {0};
	static const uint8_t hdr[] = {0, 0, 0};
	static const uint8_t body[] = {0, 0, 0, 40, '{', '"', 'v', '"', ':', '1'};
	const struct bad_frame cases[] = {{none, 0, 0}, {hdr, sizeof hdr, 0}, {body, sizeof body, 0}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fake f;
		bad_now = &cases[i];
		struct authd_client *c = fake_start(&f, script_eof, 5000);
		json_t *req = assess("T-1"), *reply = (json_t *)1;
		double t0 = now_s();
		assert_int_equal(authd_client_call(c, req, &reply), AUTHD_ERR_UNAVAILABLE);
		assert_true(now_s() - t0 < 4.0); /* at EOF, not at the timeout */
		assert_null(reply);
		json_decref(req);
		assert_dead(c);
		fake_stop(&f, &c);
	}
}

/* ---------------- the timeout bounds a whole reply or request ---------------- */

static void
script_trickle(struct fake *f, int fd)
{
	(void)f;
	char req[4096];
	if (srv_read_frame(fd, req, sizeof req) < 0)
		return;
	const char *s = "{\"v\":1,\"id\":\"c1\",\"ok\":true,\"result\":\"allow\"}";
	uint8_t h[4];
	srv_frame_hdr(h, (uint32_t)strlen(s));
	/* header and payload a byte at a time, 50 ms apart: 2.4 s in all */
	for (size_t i = 0; i < 4 + strlen(s); i++) {
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
		if (srv_write(fd, i < 4 ? (const void *)&h[i] : (const void *)&s[i - 4], 1) < 0)
			break; /* the client gave up */
	}
}

static void
test_trickled_reply_times_out(void **state)
{
	(void)state;
	struct fake f;
	struct authd_client *c = fake_start(&f, script_trickle, 300);
	json_t *req = assess("T-1"), *reply = (json_t *)1;
	double t0 = now_s();
	/* before: each byte restarted the 300 ms, and the call took 2.4 s */
	assert_int_equal(authd_client_call(c, req, &reply), AUTHD_ERR_UNAVAILABLE);
	double took = now_s() - t0;
	assert_true(took >= 0.25);
	assert_true(took < 0.9);
	assert_null(reply);
	json_decref(req);
	assert_dead(c);
	fake_stop(&f, &c);
}

static void
script_slow_reader(struct fake *f, int fd)
{
	static char sink[32768];
	(void)f;
	/* 32 KiB every 25 ms (1.3 MB/s): the client's socket turns writable often, never for long */
	for (;;) {
		ssize_t n = recv(fd, sink, sizeof sink, 0);
		if (n <= 0)
			break;
		struct timespec ts = {0, 25 * 1000000};
		nanosleep(&ts, NULL);
	}
}

static void
test_slow_reader_send_times_out(void **state)
{
	(void)state;
	struct fake f;
	struct authd_client *c = fake_start(&f, script_slow_reader, 300);
	int sndbuf = 65536;
	assert_int_equal(setsockopt(authd_client_fd(c), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
	size_t len = 8u << 20;
	char *big = malloc(len);
	assert_non_null(big);
	memset(big, 'a', len);
	double t0 = now_s();
	/* before: each drained chunk restarted the 300 ms, and the send took over 6 s */
	assert_int_equal(authd_client_send_raw(c, big, len), AUTHD_ERR_UNAVAILABLE);
	double took = now_s() - t0;
	assert_true(took >= 0.25);
	assert_true(took < 0.9);
	free(big);
	assert_dead(c);
	fake_stop(&f, &c);
}

/* ---------------- buffers wiped before free ---------------- */

#define FACE_MARK "FACE-IMAGE-BYTES-7f3a9c"
#define TOKEN_MARK "TOKEN-SECRET-5b2e81"

void __wrap_free(void *p);
void __real_free(void *p);

/* Counted only in the thread that arms them: the fake server's frees are not the library's. */
static _Thread_local int wipe_armed;
static _Thread_local int frees_seen, frees_unwiped;

void
__wrap_free(void *p)
{
	if (wipe_armed && p != NULL) {
		size_t n = malloc_usable_size(p);
		frees_seen++;
		if (memmem(p, n, FACE_MARK, strlen(FACE_MARK)) ||
		    memmem(p, n, TOKEN_MARK, strlen(TOKEN_MARK)))
			frees_unwiped++;
	}
	__real_free(p);
}

static void
test_buffers_wiped(void **state)
{
	(void)state;
	struct fake f;
	struct authd_client *c = fake_start(&f, script_reply, 5000);
	f.reply =
	    "{\"v\":1,\"id\":\"@ID@\",\"ok\":true,\"result\":\"approved\",\"token\":\"" TOKEN_MARK "\"}";
	json_t *req = json_pack("{s:s,s:{s:[s]}}", "op", "verify", "face", "images", FACE_MARK),
	       *reply = NULL;
	wipe_armed = 1;
	frees_seen = frees_unwiped = 0;
	int r = authd_client_call(c, req, &reply);
	wipe_armed = 0;
	assert_int_equal(r, 0);
	assert_string_equal(json_string_value(json_object_get(reply, "token")), TOKEN_MARK);
	assert_true(frees_seen >= 2); /* the request and reply buffers went through __wrap_free */
	assert_int_equal(frees_unwiped, 0);
	json_decref(req);
	json_decref(reply);
	fake_stop(&f, &c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_backlog_times_out),
	    cmocka_unit_test(test_full_backlog_connects_once_room),
	    cmocka_unit_test(test_missing_socket_fails_at_once),
	    cmocka_unit_test(test_call_ok),
	    cmocka_unit_test(test_timeout_kills_connection),
	    cmocka_unit_test(test_reply_id_must_match),
	    cmocka_unit_test(test_bad_frames),
	    cmocka_unit_test(test_truncated_then_closed),
	    cmocka_unit_test(test_trickled_reply_times_out),
	    cmocka_unit_test(test_slow_reader_send_times_out),
	    cmocka_unit_test(test_buffers_wiped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
