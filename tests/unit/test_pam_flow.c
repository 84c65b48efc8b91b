/*
 * pam_authd's flow against a scripted fake authd (a thread on a Unix
 * socket): every odd or failed answer maps to a failing PAM code, never
 * PAM_SUCCESS and never PAM_IGNORE. The real daemon is exercised by
 * tests/integration/test_pam.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pam_authd_flow.h"

struct fake {
	int lfd;
	char path[108];
	const char *replies[4]; /* JSON bodies sent in order, one per request; NULL: close */
	int n;
	pthread_t th;
	char last_req[2048];
};

static int
read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = read(fd, p, n);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	for (int i = 0; fd >= 0 && i < f->n; i++) {
		uint8_t hdr[4];
		if (read_full(fd, hdr, 4) < 0)
			break;
		uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
		char *req = calloc(1, n + 1);
		if (req == NULL || read_full(fd, req, n) < 0) {
			free(req);
			break;
		}
		snprintf(f->last_req, sizeof f->last_req, "%s", req);
		if (f->replies[i] == NULL) {
			free(req);
			break;
		}
		/* like authd, the reply carries the request's id (the client checks it) */
		json_t *rq = json_loads(req, 0, NULL), *rp = json_loads(f->replies[i], 0, NULL);
		free(req);
		char *out = NULL;
		if (rp != NULL && json_object_set(rp, "id", json_object_get(rq, "id")) == 0)
			out = json_dumps(rp, JSON_COMPACT);
		json_decref(rq);
		json_decref(rp);
		if (out == NULL)
			break;
		size_t len = strlen(out);
		uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
		                (uint8_t)len};
		int sent = write(fd, h, 4) == 4 && write(fd, out, len) == (ssize_t)len;
		free(out);
		if (!sent)
			break;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void
fake_start(struct fake *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(f->path, sizeof f->path, "/tmp/pam-flow-%d-%p.sock", (int)getpid(), (void *)f);
	unlink(f->path);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
}

static int
run(const char *const *replies, int n, const char *extra_arg, int account)
{
	struct fake f = {.n = n};
	struct pam_authd_cfg cfg;
	char err[256], sock[128], img[64], face[96];
	for (int i = 0; i < n; i++)
		f.replies[i] = replies[i];
	/* The fake does not look at the image: any regular file will do. */
	snprintf(img, sizeof img, "/tmp/pam-flow-%d.jpg", (int)getpid());
	FILE *fp = fopen(img, "w");
	assert_non_null(fp);
	fputs("not really a jpeg", fp);
	fclose(fp);
	snprintf(face, sizeof face, "face_source=file:%s", img);
	fake_start(&f);
	snprintf(sock, sizeof sock, "socket=%s", f.path);
	const char *argv[] = {sock, "timeout=2", "methods=face", face, extra_arg};
	assert_int_equal(pam_authd_args_parse(extra_arg ? 5 : 4, argv, &cfg, err, sizeof err), 0);
	struct pam_authd_login login = {
	    .user = "alice", .service = "sshd", .rhost = "203.0.113.9", .tty = "pts/1"};
	int rc =
	    account ? pam_authd_flow_account(&cfg, &login, NULL) : pam_authd_flow_auth(&cfg, &login, NULL);
	fake_stop(&f);
	unlink(img);
	assert_int_not_equal(rc, PAM_IGNORE);
	return rc;
}

#define CH                                                                                                   \
	"{\"v\":1,\"id\":\"c1\",\"ok\":true,\"result\":\"step_up\",\"reasons\":[],\"challenge\":{\"id\":"    \
	"\"ch_1\",\"methods\":[\"face\"],\"fido2\":{}}}"

static void
test_login_begin_answers(void **state)
{
	const char *nf[] = {"{\"ok\":false,\"error\":{\"code\":\"not_found\",\"message\":\"x\"}}"};
	assert_int_equal(run(nf, 1, NULL, 0), PAM_USER_UNKNOWN);
	assert_int_equal(run(nf, 1, "nouserok", 0),
	                 PAM_SUCCESS); /* the one documented, dangerous exception */
	const char *internal[] = {"{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"x\"}}"};
	assert_int_equal(run(internal, 1, "nouserok", 0), PAM_AUTHINFO_UNAVAIL);
	const char *unauth[] = {"{\"ok\":false,\"error\":{\"code\":\"unauthorized\",\"message\":\"x\"}}"};
	assert_int_equal(run(unauth, 1, NULL, 0), PAM_AUTHINFO_UNAVAIL);
	const char *locked[] = {"{\"ok\":true,\"result\":\"locked\"}"};
	assert_int_equal(run(locked, 1, NULL, 0), PAM_MAXTRIES);
	const char *deny[] = {"{\"ok\":true,\"result\":\"deny\"}"};
	assert_int_equal(run(deny, 1, NULL, 0), PAM_AUTH_ERR);
	/* Credentials all revoked (authd: deny) or a plugin missing (unavailable): nouserok does not apply.
	 */
	const char *revoked[] = {"{\"ok\":true,\"result\":\"deny\",\"reasons\":[\"no_active_credential\"]}"};
	assert_int_equal(run(revoked, 1, "nouserok", 0), PAM_AUTH_ERR);
	const char *noplugin[] = {"{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"x\"}}"};
	assert_int_equal(run(noplugin, 1, "nouserok", 0), PAM_AUTHINFO_UNAVAIL);
	const char *allow[] = {"{\"ok\":true,\"result\":\"allow\"}"}; /* not a thing for logins: no success */
	assert_int_equal(run(allow, 1, NULL, 0), PAM_AUTH_ERR);
	const char *noresult[] = {"{\"ok\":true}"};
	assert_int_equal(run(noresult, 1, NULL, 0), PAM_ABORT);
	const char *nochal[] = {"{\"ok\":true,\"result\":\"step_up\"}"};
	assert_int_equal(run(nochal, 1, NULL, 0), PAM_ABORT);
	const char *garbage[] = {"not json"};
	assert_int_equal(run(garbage, 1, NULL, 0), PAM_AUTHINFO_UNAVAIL);
	const char *closed[] = {NULL};
	assert_int_equal(run(closed, 1, NULL, 0), PAM_AUTHINFO_UNAVAIL);
	const char *nomethod[] = {
	    "{\"ok\":true,\"result\":\"step_up\",\"challenge\":{\"id\":\"c\",\"methods\":[\"fido2\"]}}"};
	assert_int_equal(run(nomethod, 1, NULL, 0), PAM_AUTH_ERR); /* nothing usable here */
}

static void
test_login_verify_answers(void **state)
{
	const char *ok[] = {CH, "{\"ok\":true,\"result\":\"approved\",\"token\":\"t\"}"};
	assert_int_equal(run(ok, 2, NULL, 0), PAM_SUCCESS);
	const char *rej[] = {CH, "{\"ok\":true,\"result\":\"rejected\",\"attempts_left\":2}"};
	assert_int_equal(run(rej, 2, NULL, 0), PAM_AUTH_ERR);
	const char *lock[] = {CH, "{\"ok\":true,\"result\":\"locked\"}"};
	assert_int_equal(run(lock, 2, NULL, 0), PAM_MAXTRIES);
	const char *odd[] = {CH, "{\"ok\":true,\"result\":\"APPROVED\"}"};
	assert_int_equal(run(odd, 2, NULL, 0), PAM_ABORT);
	const char *okfalse[] = {CH,
	                         "{\"ok\":false,\"result\":\"approved\",\"error\":{\"code\":\"internal\"}}"};
	assert_int_equal(run(okfalse, 2, NULL, 0), PAM_AUTHINFO_UNAVAIL);
	const char *expired[] = {CH, "{\"ok\":false,\"error\":{\"code\":\"expired\",\"message\":\"x\"}}"};
	assert_int_equal(run(expired, 2, NULL, 0), PAM_AUTH_ERR);
	const char *gone[] = {CH, NULL};
	assert_int_equal(run(gone, 2, NULL, 0), PAM_AUTHINFO_UNAVAIL);
}

static void
test_account_answers(void **state)
{
	const char *ok[] = {"{\"ok\":true,\"enrolled\":true,\"locked\":false,\"frozen\":false}"};
	assert_int_equal(run(ok, 1, NULL, 1), PAM_SUCCESS);
	const char *frozen[] = {"{\"ok\":true,\"enrolled\":true,\"locked\":false,\"frozen\":true}"};
	assert_int_equal(run(frozen, 1, NULL, 1), PAM_PERM_DENIED);
	const char *locked[] = {"{\"ok\":true,\"enrolled\":true,\"locked\":true,\"frozen\":false}"};
	assert_int_equal(run(locked, 1, NULL, 1), PAM_PERM_DENIED);
	const char *none[] = {"{\"ok\":true,\"enrolled\":false,\"locked\":false,\"frozen\":false}"};
	assert_int_equal(run(none, 1, NULL, 1), PAM_USER_UNKNOWN);
	assert_int_equal(run(none, 1, "nouserok", 1), PAM_USER_UNKNOWN); /* no "known": not "never seen" */
	const char *never[] = {
	    "{\"ok\":true,\"enrolled\":false,\"known\":false,\"locked\":false,\"frozen\":false}"};
	assert_int_equal(run(never, 1, NULL, 1), PAM_USER_UNKNOWN);
	assert_int_equal(run(never, 1, "nouserok", 1), PAM_SUCCESS);
	const char *revoked[] = {
	    "{\"ok\":true,\"enrolled\":false,\"known\":true,\"locked\":false,\"frozen\":false}"};
	assert_int_equal(run(revoked, 1, NULL, 1), PAM_PERM_DENIED);
	assert_int_equal(run(revoked, 1, "nouserok", 1), PAM_PERM_DENIED);
	const char *err[] = {"{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"x\"}}"};
	assert_int_equal(run(err, 1, NULL, 1), PAM_AUTHINFO_UNAVAIL);
}

static void
test_unreachable(void **state)
{
	struct pam_authd_cfg cfg;
	char err[256];
	const char *argv[] = {"socket=/nonexistent/authd.sock", "timeout=1"};
	assert_int_equal(pam_authd_args_parse(2, argv, &cfg, err, sizeof err), 0);
	struct pam_authd_login login = {.user = "alice"};
	assert_int_equal(pam_authd_flow_auth(&cfg, &login, NULL), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(pam_authd_flow_account(&cfg, &login, NULL), PAM_AUTHINFO_UNAVAIL);
	struct pam_authd_login nobody = {.user = ""};
	assert_int_equal(pam_authd_flow_auth(&cfg, &nobody, NULL), PAM_USER_UNKNOWN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_login_begin_answers),
	    cmocka_unit_test(test_login_verify_answers),
	    cmocka_unit_test(test_account_answers),
	    cmocka_unit_test(test_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
