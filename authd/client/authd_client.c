#include "authd_client.h"

#include <errno.h>
#include <fcntl.h>
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
#define CLIENT_MAX_REPLY (64u << 20)

struct authd_client {
	int fd;
	int timeout_ms;
	unsigned long next_id;
};

const char *
authd_client_default_socket(void)
{
	const char *s = getenv("AUTHD_SOCKET");
	return s && *s ? s : "/run/authd/authd.sock";
}

static int
wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	for (;;) {
		int n = poll(&p, 1, timeout_ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return E_UNAVAILABLE;
		if (errno != EINTR)
			return E_IO;
	}
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

int
authd_client_send_raw(struct authd_client *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
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
			int r = wait_fd(c->fd, POLLOUT, c->timeout_ms);
			if (r < 0)
				return r;
			continue;
		}
		return E_UNAVAILABLE;
	}
	return 0;
}

static int
read_full(struct authd_client *c, uint8_t *buf, size_t len)
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
			int r = wait_fd(c->fd, POLLIN, c->timeout_ms);
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
	free(buf);
	return r;
}

int
authd_client_recv(struct authd_client *c, json_t **reply)
{
	uint8_t hdr[4];
	*reply = NULL;
	int r = read_full(c, hdr, 4);
	if (r < 0)
		return r;
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (n == 0 || n > CLIENT_MAX_REPLY)
		return E_TOO_LARGE;
	uint8_t *buf = malloc(n);
	if (buf == NULL)
		return E_NOMEM;
	if ((r = read_full(c, buf, n)) == 0) {
		*reply = json_loadb((const char *)buf, n, 0, NULL);
		if (!json_is_object(*reply)) {
			json_decref(*reply);
			*reply = NULL;
			r = E_BAD;
		}
	}
	free(buf);
	return r;
}

int
authd_client_call(struct authd_client *c, json_t *req, json_t **reply)
{
	int r = authd_client_send(c, req);
	if (r < 0) {
		*reply = NULL;
		return r;
	}
	return authd_client_recv(c, reply);
}
