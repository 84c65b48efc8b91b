/*
 * libauthd-client connect: a full listen backlog (EAGAIN on a Unix socket:
 * nothing connected) is retried until the timeout, not taken for a
 * connection; a missing socket fails at once.
 */
#include <errno.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_backlog_times_out),
	    cmocka_unit_test(test_full_backlog_connects_once_room),
	    cmocka_unit_test(test_missing_socket_fails_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
