/*
 * The socket server: one I/O thread (epoll: accept, read, frame, write
 * back-pressure, idle and slowloris timeouts, signals) and a pool of worker
 * threads that run requests. A connection's requests run one at a time in
 * arrival order, so pipelined replies come back in order; different
 * connections run in parallel, so a slow face match on one never delays
 * another's assess. Started and stopped from the main thread.
 */
#ifndef AUTHD_SERVER_H
#define AUTHD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct authd;

struct server_opts {
	const char *socket_path;
	unsigned workers;
	size_t max_frame;
	unsigned idle_timeout;    /* seconds without a request before closing an idle connection */
	unsigned frame_timeout;   /* seconds a partial frame may take to arrive */
	unsigned max_connections;
	unsigned max_inflight;    /* queued requests per connection before reading pauses */
	unsigned max_per_peer;    /* open connections per peer uid */
	int listen_fd;            /* from server_listen() */
	int socket_bound;         /* server_listen() bound socket_path: removed at exit */
	/* Called on SIGHUP from the I/O thread. */
	void (*reload)(struct authd *d);
};

/*
 * Binds socket_path (or takes the socket systemd passed) and listens; done
 * first in main so privileges can be dropped before anything else is opened.
 * *bound is 1 when authd bound socket_path itself, so only then is the file
 * authd's to remove; 0 for systemd's socket (socket activation).
 */
int server_listen(const char *socket_path, int *fd, int *bound) AUTHD_WUR;

/* Serves until SIGTERM/SIGINT, then drains in-flight requests and returns. */
int server_run(struct authd *d, const struct server_opts *o) AUTHD_WUR;

#endif
