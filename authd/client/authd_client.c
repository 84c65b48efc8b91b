#include "authd_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define E_INTERNAL (-1)
#define E_NOMEM (-2)
#define E_BAD (-3)
#define E_TOO_LARGE (-8)
#define E_UNAVAILABLE (-10)
#define E_IO (-11)
#define E_TAMPERED (-15)
#define CLIENT_MAX_REPLY (64u << 20)

struct authd_client {
	int fd;
	int timeout_ms;
	unsigned long next_id;
	/* set by a failed send/receive: the stream may be out of step, refuse to use it */
	int dead;
};

const char *
authd_client_default_socket(void)
{
	const char *s = getenv("AUTHD_SOCKET");
	return s && *s ? s : "/run/authd/authd.sock";
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for ev until the absolute deadline (now_ms() clock): a timeout is -10. */
static int
wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return E_UNAVAILABLE;
		int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return E_IO;
	}
}

/* Replies may hold tokens and requests face images: wipe before free (no OpenSSL here). */
static void
free_wiped(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/*
 * After a failed send or receive part of a frame may be on the wire or
 * unread: a later reply could answer an earlier request. Shut the socket
 * down (the fd stays open, so its number is not reused, until _free) and
 * refuse every later call.
 */
static int
client_fail(struct authd_client *c, int r)
{
	if (!c->dead) {
		c->dead = 1;
		shutdown(c->fd, SHUT_RDWR);
	}
	return r;
}

int
authd_client_connect(const char *path, int timeout_ms, struct authd_client **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	*out = NULL;
	if (path == NULL)
		path = authd_client_default_socket();
	if (strlen(path) >= sizeof sa.sun_path)
		return E_BAD;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return E_IO;
	/*
	 * A non-blocking connect on a Unix socket either completes or fails:
	 * EAGAIN means the daemon's backlog is full and nothing was connected
	 * (unlike TCP's EINPROGRESS). Retry, backing off from 1 ms to 50 ms,
	 * until the timeout: a daemon busy accepting a flood serves us soon.
	 */
	int budget_ms = timeout_ms > 0 ? timeout_ms : 30000;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long pause_us = 1000;; pause_us = pause_us < 50000 ? pause_us * 2 : 50000) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			break;
		int e = errno;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long spent_ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (e == EISCONN)
			break;
		if (e == EINTR)
			continue;
		if (e != EAGAIN || spent_ms >= budget_ms) {
			close(fd);
			errno = e;
			return E_UNAVAILABLE;
		}
		struct timespec ts = {0, pause_us * 1000};
		nanosleep(&ts, NULL);
	}
	struct authd_client *c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);
		return E_NOMEM;
	}
	c->fd = fd;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	*out = c;
	return 0;
}

void
authd_client_free(struct authd_client **c)
{
	if (c == NULL || *c == NULL)
		return;
	close((*c)->fd);
	free(*c);
	*c = NULL;
}

int
authd_client_fd(const struct authd_client *c)
{
	return c->fd;
}

static int
send_full(struct authd_client *c, const uint8_t *p, size_t len)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(c->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		return E_UNAVAILABLE;
	}
	return 0;
}

int
authd_client_send_raw(struct authd_client *c, const void *buf, size_t len)
{
	if (c->dead)
		return E_IO;
	int r = send_full(c, buf, len);
	return r < 0 ? client_fail(c, r) : 0;
}

static int
read_full(struct authd_client *c, uint8_t *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return E_UNAVAILABLE;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int r = wait_fd(c->fd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		return E_UNAVAILABLE;
	}
	return 0;
}

int
authd_client_send(struct authd_client *c, json_t *req)
{
	char idbuf[32];
	if (c->dead)
		return E_IO;
	if (!json_is_object(req))
		return E_BAD;
	if (json_object_get(req, "v") == NULL)
		json_object_set_new(req, "v", json_integer(1));
	if (json_object_get(req, "id") == NULL) {
		snprintf(idbuf, sizeof idbuf, "c%lu", ++c->next_id);
		json_object_set_new(req, "id", json_string(idbuf));
	}
	size_t n = json_dumpb(req, NULL, 0, JSON_COMPACT);
	if (n == 0 || n > UINT32_MAX)
		return E_BAD;
	uint8_t *buf = malloc(n + 4);
	if (buf == NULL)
		return E_NOMEM;
	json_dumpb(req, (char *)buf + 4, n, JSON_COMPACT);
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	int r = authd_client_send_raw(c, buf, n + 4);
	free_wiped(buf, n + 4);
	return r;
}

int
authd_client_recv(struct authd_client *c, json_t **reply)
{
	uint8_t hdr[4];
	uint8_t *buf = NULL;
	uint32_t n = 0;
	*reply = NULL;
	if (c->dead)
		return E_IO;
	int64_t deadline = now_ms() + c->timeout_ms;
	int r = read_full(c, hdr, 4, deadline);
	if (r < 0)
		goto out;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (n == 0 || n > CLIENT_MAX_REPLY) {
		r = E_TOO_LARGE;
		goto out;
	}
	if ((buf = malloc(n)) == NULL) {
		r = E_NOMEM;
		goto out;
	}
	if ((r = read_full(c, buf, n, deadline)) < 0)
		goto out;
	*reply = json_loadb((const char *)buf, n, 0, NULL);
	if (!json_is_object(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		r = E_BAD;
	}
out:
	free_wiped(buf, n);
	return r < 0 ? client_fail(c, r) : 0;
}

/*
 * Does reply answer req? Its id must be req's. One exception: authd
 * answers a frame whose id it could not read with "id":null and ok:false
 * (protocol.md), still in step and never an approval. A reply with no id
 * is not authd's.
 */
static int
reply_matches(json_t *req, json_t *reply)
{
	json_t *want = json_object_get(req, "id");
	json_t *got = json_object_get(reply, "id");
	if (got == NULL)
		return 0; /* authd always answers with an id */
	if (json_is_null(got))
		return !json_is_true(json_object_get(reply, "ok"));
	return want != NULL && json_equal(want, got);
}

int
authd_client_call(struct authd_client *c, json_t *req, json_t **reply)
{
	int r = authd_client_send(c, req);
	if (r < 0) {
		*reply = NULL;
		return r;
	}
	if ((r = authd_client_recv(c, reply)) < 0)
		return r;
	if (!reply_matches(req, *reply)) {
		json_decref(*reply);
		*reply = NULL;
		return client_fail(c, E_TAMPERED);
	}
	return 0;
}
