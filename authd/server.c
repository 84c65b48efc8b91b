#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "ops.h"
#include "proto.h"
#include "util.h"

#define READ_CHUNK 65536
#define OUT_PAUSE (4u << 20) /* stop reading a connection whose replies pile up */
/*
 * Bytes of requests read but not yet done: reading a connection pauses when
 * its own reach QUEUE_CONN (or one max_frame, if larger) or everyone's reach
 * QUEUE_ALL, and resumes below half. Without this, 256 queued frames of
 * 8 MiB each on every connection could take all the machine's memory.
 */
#define QUEUE_CONN ((size_t)16 << 20)
#define QUEUE_ALL ((size_t)256 << 20)

struct pending {
	uint8_t *payload; /* NULL: a framing error to report (err) */
	size_t len;
	int err;
	struct pending *next;
};

struct conn {
	int fd;
	struct server *srv;
	struct peer peer;
	atomic_int refs;
	pthread_mutex_t mu;
	/* I/O thread only */
	uint8_t *in;
	size_t in_len, in_cap;
	uint64_t last_ns, partial_ns;
	uint64_t held_ns; /* when reading was paused (back-pressure): the peer's clocks stop meanwhile */
	int registered;
	struct conn *prev_all, *next_all;
	/* under mu */
	struct pending *q_head, *q_tail;
	size_t q_n;
	size_t q_bytes;   /* payload bytes queued or being worked on */
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint64_t out_ns;  /* replies blocked (EAGAIN) since, or last sent some of them */
	int scheduled;    /* queued for or held by a worker */
	int read_closed;  /* peer sent EOF or a fatal framing error: no more requests */
	int dead;         /* write failed: drop everything */
	int paused;       /* EPOLLIN off for back-pressure */
	int want_out;     /* replies blocked (EAGAIN): EPOLLOUT on */
	uint32_t watched; /* the events c is in the epoll set for; 0: not in it */
	int attention;    /* on the I/O thread's attention list */
	struct conn *next_run, *next_attn;
};

struct server {
	struct authd *d;
	const struct server_opts *o;
	int epfd, lfd, sigfd, evfd;
	struct conn *all;
	unsigned n_conns;
	pthread_t *workers;
	unsigned n_workers;
	pthread_mutex_t run_mu;
	pthread_cond_t run_cv;
	struct conn *run_head, *run_tail;
	int stopping;
	pthread_mutex_t attn_mu;
	struct conn *attn;
	struct conn *grave; /* dropped this loop turn; unref'd after the event batch */
	uint64_t accept_resume_ns; /* accepting paused until then (out of descriptors); 0: not paused */
	uint64_t accept_warned_ns; /* last warning about it */
	unsigned accept_pauses;    /* since that warning */
	atomic_size_t q_bytes;     /* every connection's q_bytes */
	uint64_t queue_warned_ns;  /* last warning about QUEUE_ALL */
	uint64_t refused_warned_ns; /* last warning about a refused connection */
	unsigned refused;           /* connections refused since that warning */
};

/* Warnings about an ongoing condition: at most one a minute. */
static int
warn_due(uint64_t *last_ns, uint64_t now)
{
	if (*last_ns != 0 && now - *last_ns <= 60000000000ull)
		return 0;
	*last_ns = now;
	return 1;
}

/* Out of descriptors (or kernel memory): how long accepting pauses before trying again. */
#define ACCEPT_PAUSE_NS 100000000ull

static void
conn_ref(struct conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

static void
conn_unref(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (struct pending *p = c->q_head, *n; p; p = n) {
		n = p->next;
		util_free_secret(&p->payload, p->len);
		free(p);
	}
	atomic_fetch_sub(&c->srv->q_bytes, c->q_bytes);
	close(c->fd);
	util_free_secret(&c->in, c->in_cap);
	util_free_secret(&c->out, c->out_cap);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/*
 * Puts c in the epoll set for what its state needs: input while it may read,
 * EPOLLOUT while replies are blocked. With neither it leaves the set, since
 * epoll reports EPOLLHUP for any mask: a peer that half-closed or went away
 * while its requests still run would otherwise wake the I/O thread in a
 * loop. Caller holds c->mu (workers change want_out), so the mask always
 * matches the state it was computed from.
 */
static void
watch(struct server *s, struct conn *c)
{
	/* dead: never (re)added, so a dropped connection cannot come back after conn_drop */
	uint32_t want = (c->paused || c->read_closed ? 0 : EPOLLIN | EPOLLRDHUP) | (c->want_out ? EPOLLOUT : 0);
	if (c->dead)
		want = 0;
	if (want == c->watched)
		return;
	struct epoll_event ev = {.events = want, .data.ptr = c};
	int op = want == 0 ? EPOLL_CTL_DEL : c->watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (epoll_ctl(s->epfd, op, c->fd, &ev) == 0)
		c->watched = want;
	else
		c->dead = 1; /* cannot be watched: cannot be served */
}

/* Asks the I/O thread to look at c (resume reading, close). Caller holds c->mu. */
static void
need_attention(struct server *s, struct conn *c)
{
	if (c->attention)
		return;
	c->attention = 1;
	conn_ref(c);
	pthread_mutex_lock(&s->attn_mu);
	c->next_attn = s->attn;
	s->attn = c;
	pthread_mutex_unlock(&s->attn_mu);
	uint64_t one = 1;
	(void)!write(s->evfd, &one, sizeof one);
}

/* Writes what it can of c->out. Caller holds c->mu. */
static void
flush_out(struct server *s, struct conn *c)
{
	int progressed = 0;
	while (c->out_off < c->out_len && !c->dead) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (size_t)n;
			progressed = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (progressed || !c->want_out)
				c->out_ns = util_mono_ns();
			if (!c->want_out) {
				c->want_out = 1;
				watch(s, c);
			}
			return;
		}
		c->dead = 1;
	}
	c->out_off = c->out_len = 0;
	if (c->want_out) {
		c->want_out = 0;
		watch(s, c);
	}
}

static int
append_out(struct conn *c, const uint8_t *data, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		uint8_t *n = realloc(c->out, cap);
		if (n == NULL)
			return AUTHD_ERR_NOMEM;
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

static void
schedule(struct server *s, struct conn *c)
{
	/* caller holds c->mu */
	if (c->scheduled || c->q_head == NULL)
		return;
	c->scheduled = 1;
	conn_ref(c);
	pthread_mutex_lock(&s->run_mu);
	c->next_run = NULL;
	if (s->run_tail)
		s->run_tail->next_run = c;
	else
		s->run_head = c;
	s->run_tail = c;
	pthread_cond_signal(&s->run_cv);
	pthread_mutex_unlock(&s->run_mu);
}

/* Frames a worker takes from a connection at once (their store work shares a batch). */
#define TAKE_MAX 64

static void
emit_reply(void *arg, const uint8_t *reply, size_t len, int last)
{
	struct conn *c = arg;
	pthread_mutex_lock(&c->mu);
	/* No reply (out of memory) would shift every later reply onto the wrong request: close instead. */
	if (reply == NULL || (!c->dead && append_out(c, reply, len) < 0))
		c->dead = 1;
	if (last && !c->dead)
		flush_out(c->srv, c);
	pthread_mutex_unlock(&c->mu);
}

static void *
worker_main(void *arg)
{
	struct server *s = arg;
	struct pending *taken[TAKE_MAX];
	struct ops_frame f[TAKE_MAX];
	for (;;) {
		pthread_mutex_lock(&s->run_mu);
		while (s->run_head == NULL && !s->stopping)
			pthread_cond_wait(&s->run_cv, &s->run_mu);
		struct conn *c = s->run_head;
		if (c == NULL) {
			pthread_mutex_unlock(&s->run_mu);
			return NULL;
		}
		s->run_head = c->next_run;
		if (s->run_head == NULL)
			s->run_tail = NULL;
		pthread_mutex_unlock(&s->run_mu);

		/* Everything the connection has queued (up to TAKE_MAX), in order. */
		size_t n = 0;
		pthread_mutex_lock(&c->mu);
		while (c->q_head != NULL && n < TAKE_MAX) {
			struct pending *p = c->q_head;
			c->q_head = p->next;
			c->q_n--;
			taken[n] = p;
			f[n] = (struct ops_frame){p->payload, p->len, p->err};
			n++;
		}
		if (c->q_head == NULL)
			c->q_tail = NULL;
		int dead = c->dead;
		pthread_mutex_unlock(&c->mu);

		if (!dead)
			ops_handle_frames(s->d, &c->peer, f, n, emit_reply, c);
		size_t done_bytes = 0;
		for (size_t i = 0; i < n; i++) {
			done_bytes += taken[i]->len;
			util_free_secret(&taken[i]->payload, taken[i]->len);
			free(taken[i]);
		}

		pthread_mutex_lock(&c->mu);
		c->q_bytes -= done_bytes;
		atomic_fetch_sub(&s->q_bytes, done_bytes);
		c->scheduled = 0;
		if (!c->dead && c->q_head != NULL)
			schedule(s, c);
		else if (c->dead || c->read_closed || c->paused)
			need_attention(s, c);
		pthread_mutex_unlock(&c->mu);
		conn_unref(c);
	}
}

static void
conn_drop(struct server *s, struct conn *c)
{
	if (!c->registered)
		return;
	c->registered = 0;
	/* under mu: a worker's flush_out in between cannot put c back into the set (watch) */
	pthread_mutex_lock(&c->mu);
	c->dead = 1;
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->watched = 0;
	pthread_mutex_unlock(&c->mu);
	shutdown(c->fd, SHUT_RDWR);
	if (c->prev_all)
		c->prev_all->next_all = c->next_all;
	else
		s->all = c->next_all;
	if (c->next_all)
		c->next_all->prev_all = c->prev_all;
	s->n_conns--;
	/* Later events of this epoll batch may still name c: free it after the batch. */
	c->next_all = s->grave;
	s->grave = c;
}

static void
bury(struct server *s)
{
	while (s->grave) {
		struct conn *c = s->grave;
		s->grave = c->next_all;
		conn_unref(c);
	}
}

static size_t
queue_conn_limit(const struct server *s)
{
	return s->o->max_frame > QUEUE_CONN ? s->o->max_frame : QUEUE_CONN;
}

/* I/O thread: decide whether a connection is finished or may read again. */
static void
conn_review(struct server *s, struct conn *c)
{
	if (!c->registered)
		return;
	pthread_mutex_lock(&c->mu);
	int idle = !c->scheduled && c->q_head == NULL && c->out_len == 0;
	int finished = c->dead || (c->read_closed && idle);
	if (!finished && c->paused && c->q_n < s->o->max_inflight / 2 && c->out_len < OUT_PAUSE / 2 &&
	    c->q_bytes < queue_conn_limit(s) / 2 && atomic_load(&s->q_bytes) < QUEUE_ALL / 2 && !s->stopping) {
		c->paused = 0;
		watch(s, c);
		/* time spent paused by authd counts neither as idle nor against a partial frame */
		uint64_t now = util_mono_ns(), held = now > c->held_ns ? now - c->held_ns : 0;
		if (c->partial_ns)
			c->partial_ns += held;
		c->last_ns = now;
	}
	pthread_mutex_unlock(&c->mu);
	if (finished)
		conn_drop(s, c);
}

static void
enqueue(struct server *s, struct conn *c, uint8_t *payload, size_t len, int err)
{
	struct pending *p = calloc(1, sizeof *p);
	pthread_mutex_lock(&c->mu);
	if (p == NULL) {
		c->dead = 1;
		free(payload);
	} else {
		p->payload = payload;
		p->len = len;
		p->err = err;
		if (c->q_tail)
			c->q_tail->next = p;
		else
			c->q_head = p;
		c->q_tail = p;
		c->q_n++;
		c->q_bytes += len;
		size_t all = atomic_fetch_add(&s->q_bytes, len) + len;
		schedule(s, c);
		if (c->q_n >= s->o->max_inflight || c->out_len >= OUT_PAUSE || c->q_bytes >= queue_conn_limit(s) ||
		    all >= QUEUE_ALL) {
			c->paused = 1;
			watch(s, c);
			uint64_t now = util_mono_ns();
			c->held_ns = now;
			if (all >= QUEUE_ALL && warn_due(&s->queue_warned_ns, now))
				log_msg(LOG_WARNING, "requests waiting for workers hold %zu MiB: pausing reads until below %zu MiB",
				        all >> 20, (QUEUE_ALL / 2) >> 20);
		}
	}
	pthread_mutex_unlock(&c->mu);
}

static void
conn_read(struct server *s, struct conn *c)
{
	if (!c->registered)
		return;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		int stop = c->paused || c->read_closed || c->dead;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		if (c->in_cap - c->in_len < READ_CHUNK) {
			/*
			 * Double (a big frame costs O(size) copies, not one per
			 * chunk), up to what one incomplete frame plus a chunk needs.
			 * Not realloc: the old buffer may hold an image; it is wiped.
			 */
			size_t cap = c->in_cap * 2 > c->in_len + READ_CHUNK ? c->in_cap * 2 : c->in_len + READ_CHUNK;
			size_t most = s->o->max_frame + PROTO_HDR_LEN + READ_CHUNK;
			if (cap > most)
				cap = most > c->in_len + READ_CHUNK ? most : c->in_len + READ_CHUNK;
			uint8_t *n = malloc(cap);
			if (n == NULL) {
				conn_drop(s, c);
				return;
			}
			if (c->in_len > 0)
				memcpy(n, c->in, c->in_len);
			util_free_secret(&c->in, c->in_cap);
			c->in = n;
			c->in_cap = cap;
		}
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			pthread_mutex_lock(&c->mu);
			c->read_closed = 1;
			watch(s, c);
			pthread_mutex_unlock(&c->mu);
			break;
		}
		c->in_len += (size_t)n;
		c->last_ns = util_mono_ns();
		/* Cut out every whole frame. */
		size_t off = 0;
		for (;;) {
			size_t plen = 0;
			int r = proto_frame_peek(c->in + off, c->in_len - off, s->o->max_frame, &plen);
			if (r == 0)
				break;
			if (r < 0) {
				/* Framing is lost: report, then close after the queue drains. */
				enqueue(s, c, NULL, 0, r);
				pthread_mutex_lock(&c->mu);
				c->read_closed = 1;
				watch(s, c);
				pthread_mutex_unlock(&c->mu);
				off = c->in_len;
				break;
			}
			uint8_t *payload = malloc(plen);
			if (payload == NULL) {
				conn_drop(s, c);
				return;
			}
			memcpy(payload, c->in + off + PROTO_HDR_LEN, plen);
			enqueue(s, c, payload, plen, 0);
			off += PROTO_HDR_LEN + plen;
		}
		if (off > 0) {
			memmove(c->in, c->in + off, c->in_len - off);
			c->in_len -= off;
		}
		/* The slowloris clock runs from the first byte of the frame still incomplete. */
		if (c->in_len == 0)
			c->partial_ns = 0;
		else if (off > 0 || c->partial_ns == 0)
			c->partial_ns = c->last_ns;
		/* Keep big frame buffers from lingering. */
		if (c->in_len == 0 && c->in_cap > 4 * READ_CHUNK) {
			util_free_secret(&c->in, c->in_cap);
			c->in_cap = 0;
		}
	}
	conn_review(s, c);
}

/*
 * accept4 failing for want of descriptors or memory leaves the connection in
 * the backlog and the level-triggered listening socket readable: retrying at
 * once would spin. Stop watching the socket for ACCEPT_PAUSE_NS instead (the
 * pending peers wait in the backlog and are served once descriptors free up),
 * with one warning per minute at most.
 */
static void
accept_pause(struct server *s, int err)
{
	uint64_t now = util_mono_ns();
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
	s->accept_resume_ns = now + ACCEPT_PAUSE_NS;
	s->accept_pauses++;
	if (warn_due(&s->accept_warned_ns, now)) {
		log_msg(LOG_WARNING,
		        "cannot accept connections: %s (%u open); accept paused for %llu ms at a time (%u pauses in the "
		        "last minute)",
		        strerror(err), s->n_conns, ACCEPT_PAUSE_NS / 1000000ull, s->accept_pauses);
		s->accept_pauses = 0;
	}
}

static void
accept_resume(struct server *s, uint64_t now)
{
	if (s->accept_resume_ns == 0 || now < s->accept_resume_ns)
		return;
	s->accept_resume_ns = 0;
	if (s->stopping)
		return;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->lfd};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) != 0) {
		log_msg(LOG_ERR, "cannot watch the listening socket again: %s", strerror(errno));
		s->accept_resume_ns = now + ACCEPT_PAUSE_NS;
	}
}

static void
conn_accept(struct server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_pause(s, errno);
			return;
		}
		struct ucred cred;
		socklen_t cl = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
			close(fd);
			continue;
		}
		struct authd_snap *snap = authd_snap_get(s->d);
		unsigned roles = ops_roles_for(snap->cfg, cred.uid, cred.gid);
		authd_snap_put(&snap);
		unsigned same_peer = 0;
		for (struct conn *o = s->all; o != NULL && roles != 0; o = o->next_all)
			same_peer += o->peer.uid == cred.uid;
		if (roles == 0 || s->n_conns >= s->o->max_connections || same_peer >= s->o->max_per_peer ||
		    s->stopping) {
			/* the socket is open to every local user: one line a minute, with a count, never a
			 * flood */
			s->refused += !s->stopping;
			if (!s->stopping && warn_due(&s->refused_warned_ns, util_mono_ns())) {
				if (roles == 0)
					log_msg(LOG_WARNING,
					        "refused connection from uid %u gid %u pid %d: not an allowed peer "
					        "(%u refused since the last such warning)",
					        (unsigned)cred.uid, (unsigned)cred.gid, (int)cred.pid, s->refused);
				else
					log_msg(LOG_WARNING,
					        "refused connection from uid %u: %u open (%u for this peer) "
					        "(%u refused since the last such warning)",
					        (unsigned)cred.uid, s->n_conns, same_peer, s->refused);
				s->refused = 0;
			}
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->srv = s;
		c->peer.uid = cred.uid;
		c->peer.gid = cred.gid;
		c->peer.pid = cred.pid;
		c->peer.roles = roles;
		atomic_init(&c->refs, 1);
		pthread_mutex_init(&c->mu, NULL);
		c->last_ns = util_mono_ns();
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			conn_unref(c);
			continue;
		}
		c->watched = ev.events;
		c->registered = 1;
		c->next_all = s->all;
		if (s->all)
			s->all->prev_all = c;
		s->all = c;
		s->n_conns++;
	}
}

static void
sweep_timeouts(struct server *s)
{
	uint64_t now = util_mono_ns();
	for (struct conn *c = s->all, *n; c; c = n) {
		n = c->next_all;
		pthread_mutex_lock(&c->mu);
		int idle = !c->scheduled && c->q_head == NULL && c->out_len == 0;
		int paused = c->paused; /* authd stopped reading it: its clocks wait (conn_review) */
		int stalled = c->want_out && c->out_len > 0 && !c->dead && now > c->out_ns &&
		              now - c->out_ns > (uint64_t)s->o->idle_timeout * 1000000000ull;
		pthread_mutex_unlock(&c->mu);
		if (stalled) {
			log_msg(LOG_INFO, "closing connection of uid %u: replies not read for %us", (unsigned)c->peer.uid,
			        s->o->idle_timeout);
			conn_drop(s, c);
		} else if (paused)
			conn_review(s, c); /* also resumes one paused by everyone's queue (QUEUE_ALL), not its own */
		else if (c->partial_ns && now - c->partial_ns > (uint64_t)s->o->frame_timeout * 1000000000ull) {
			log_msg(LOG_INFO, "closing connection of uid %u: frame not completed in %us", (unsigned)c->peer.uid,
			        s->o->frame_timeout);
			conn_drop(s, c);
		} else if (idle && c->in_len == 0 && now - c->last_ns > (uint64_t)s->o->idle_timeout * 1000000000ull)
			conn_drop(s, c);
	}
}

static void
handle_attention(struct server *s)
{
	uint64_t v;
	(void)!read(s->evfd, &v, sizeof v);
	pthread_mutex_lock(&s->attn_mu);
	struct conn *list = s->attn;
	s->attn = NULL;
	pthread_mutex_unlock(&s->attn_mu);
	while (list) {
		struct conn *c = list;
		list = c->next_attn;
		pthread_mutex_lock(&c->mu);
		c->attention = 0;
		pthread_mutex_unlock(&c->mu);
		conn_review(s, c);
		conn_unref(c);
	}
}

static void
conn_writable(struct server *s, struct conn *c)
{
	if (!c->registered)
		return;
	pthread_mutex_lock(&c->mu);
	flush_out(s, c);
	pthread_mutex_unlock(&c->mu);
	conn_review(s, c);
}

int
server_listen(const char *path, int *out, int *bound)
{
	*bound = 0;
	/* unsets LISTEN_FDS: the answer is kept in *bound, never asked again */
	int fds = sd_listen_fds(1);
	if (fds == 1 && sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) > 0) {
		*out = SD_LISTEN_FDS_START;
		(void)fcntl(*out, F_SETFL, O_NONBLOCK);
		log_msg(LOG_INFO, "using the socket passed by systemd");
		return 0;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		log_msg(LOG_ERR, "socket path too long: %s", path);
		return AUTHD_ERR_CONFIG;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return AUTHD_ERR_IO;
	/* A stale socket file from a dead daemon is replaced; a live one is not. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_msg(LOG_ERR, "%s exists and is not a socket", path);
			close(fd);
			return AUTHD_ERR_CONFIG;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
			log_msg(LOG_ERR, "another daemon is listening on %s", path);
			close(probe);
			close(fd);
			return AUTHD_ERR_CONFIG;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	mode_t old = umask(0111); /* 0666: access is decided by SO_PEERCRED, before any parsing */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r != 0 || listen(fd, SOMAXCONN) != 0) {
		log_msg(LOG_ERR, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return AUTHD_ERR_IO;
	}
	*out = fd;
	*bound = 1;
	return 0;
}

static int
all_drained(struct server *s)
{
	for (struct conn *c = s->all; c; c = c->next_all) {
		pthread_mutex_lock(&c->mu);
		int busy = c->scheduled || c->q_head != NULL || (c->out_len > 0 && !c->dead);
		pthread_mutex_unlock(&c->mu);
		if (busy)
			return 0;
	}
	return 1;
}

int
server_run(struct authd *d, const struct server_opts *o)
{
	struct server s = {.d = d, .o = o, .epfd = -1, .lfd = -1, .sigfd = -1, .evfd = -1};
	int r = AUTHD_ERR_IO;
	sigset_t mask;
	uint64_t drain_deadline = 0;

	pthread_mutex_init(&s.run_mu, NULL);
	pthread_cond_init(&s.run_cv, NULL);
	pthread_mutex_init(&s.attn_mu, NULL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if ((s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    (s.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 || (s.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		goto out;
	s.lfd = o->listen_fd;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s.lfd};
	if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.lfd, &ev) != 0)
		goto out;
	ev.data.ptr = &s.sigfd;
	if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.sigfd, &ev) != 0)
		goto out;
	ev.data.ptr = &s.evfd;
	if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.evfd, &ev) != 0)
		goto out;
	if ((s.workers = calloc(o->workers, sizeof *s.workers)) == NULL)
		goto out;
	for (; s.n_workers < o->workers; s.n_workers++) {
		if (pthread_create(&s.workers[s.n_workers], NULL, worker_main, &s) != 0)
			goto out;
		(void)pthread_setname_np(s.workers[s.n_workers], "authd-worker"); /* top -H, perf */
	}

	log_msg(LOG_INFO, "listening on %s with %u workers", o->socket_path, o->workers);
	sd_notify(0, "READY=1\nSTATUS=serving");
	uint64_t last_sweep = util_mono_ns();
	for (;;) {
		struct epoll_event evs[128];
		int wait_ms = 250;
		if (s.accept_resume_ns != 0) {
			uint64_t now = util_mono_ns();
			wait_ms = now >= s.accept_resume_ns ? 0 : (int)((s.accept_resume_ns - now) / 1000000ull) + 1;
			wait_ms = wait_ms < 250 ? wait_ms : 250;
		}
		int n = epoll_wait(s.epfd, evs, 128, wait_ms);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &s.lfd) {
				conn_accept(&s);
			} else if (p == &s.sigfd) {
				struct signalfd_siginfo si;
				while (read(s.sigfd, &si, sizeof si) == sizeof si) {
					if (si.ssi_signo == SIGHUP) {
						sd_notify(0, "RELOADING=1");
						if (o->reload)
							o->reload(d);
						sd_notify(0, "READY=1");
					} else if (!s.stopping) {
						log_msg(LOG_INFO, "signal %u: draining", si.ssi_signo);
						sd_notify(0, "STOPPING=1");
						s.stopping = 1;
						drain_deadline = util_mono_ns() + 10000000000ull;
						(void)epoll_ctl(s.epfd, EPOLL_CTL_DEL, s.lfd, NULL);
						for (struct conn *c = s.all; c; c = c->next_all) {
							pthread_mutex_lock(&c->mu);
							c->read_closed = 1;
							watch(&s, c);
							pthread_mutex_unlock(&c->mu);
						}
					}
				}
			} else if (p == &s.evfd) {
				handle_attention(&s);
			} else {
				struct conn *c = p;
				/* a peer gone while replies wait: the send fails and marks c dead */
				if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
					conn_writable(&s, c);
				if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					conn_read(&s, c);
			}
		}
		bury(&s);
		uint64_t now = util_mono_ns();
		accept_resume(&s, now);
		if (now - last_sweep > 1000000000ull) {
			sweep_timeouts(&s);
			last_sweep = now;
		}
		if (s.stopping) {
			for (struct conn *c = s.all, *nx; c; c = nx) {
				nx = c->next_all;
				conn_review(&s, c);
			}
			bury(&s);
			if (all_drained(&s) || now > drain_deadline)
				break;
		}
	}
	r = 0;
out:
	pthread_mutex_lock(&s.run_mu);
	s.stopping = 1;
	pthread_cond_broadcast(&s.run_cv);
	pthread_mutex_unlock(&s.run_mu);
	for (unsigned i = 0; i < s.n_workers; i++)
		pthread_join(s.workers[i], NULL);
	free(s.workers);
	while (s.all)
		conn_drop(&s, s.all);
	handle_attention(&s);
	bury(&s);
	if (s.lfd >= 0) {
		close(s.lfd);
		if (o->socket_bound) /* systemd's socket unit owns its file: it outlives this process */
			unlink(o->socket_path);
	}
	if (s.epfd >= 0)
		close(s.epfd);
	if (s.sigfd >= 0)
		close(s.sigfd);
	if (s.evfd >= 0)
		close(s.evfd);
	pthread_mutex_destroy(&s.run_mu);
	pthread_cond_destroy(&s.run_cv);
	pthread_mutex_destroy(&s.attn_mu);
	return r;
}
