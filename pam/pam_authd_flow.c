/* pam_authd's logic (see pam_authd_flow.h). */
#include "pam_authd_flow.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <fido.h>
#include <jansson.h>
#include <security/pam_appl.h>

#include "authd_client.h"

#define IMAGE_MAX (8u << 20)
#define MAX_DEVS 16
#define MAX_ALLOW 64

/* What a method's proof step came to. */
enum proof { PROOF_OK = 0, PROOF_UNAVAILABLE = 1, PROOF_ERROR = -1 };

static void flog(const struct pam_authd_io *io, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
flog(const struct pam_authd_io *io, int prio, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	if (io == NULL || io->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	io->log(io->ctx, prio, buf);
}

#define DBG(cfg, io, ...)                                                                                    \
	do {                                                                                                 \
		if ((cfg)->debug)                                                                            \
			flog(io, LOG_DEBUG, __VA_ARGS__);                                                    \
	} while (0)

static void
cue(const struct pam_authd_io *io, const char *msg)
{
	if (io != NULL && io->info != NULL)
		io->info(io->ctx, msg);
}

/* ---------------- encoding ---------------- */

static char *
b64url(const uint8_t *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(len / 3 * 4 + 5), *p = out;
	size_t i = 0;
	if (out == NULL)
		return NULL;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = tab[v >> 18 & 63];
		*p++ = tab[v >> 12 & 63];
		*p++ = tab[v >> 6 & 63];
		*p++ = tab[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		*p++ = tab[v >> 18 & 63];
		*p++ = tab[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = tab[v >> 18 & 63];
		*p++ = tab[v >> 12 & 63];
		*p++ = tab[v >> 6 & 63];
	}
	*p = '\0';
	return out;
}

static int
b64url_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes unpadded base64url into out (cap bytes); -1 on bad input. */
static int
b64url_dec(const char *s, uint8_t *out, size_t cap, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	for (; *s; s++) {
		int v = b64url_val(*s);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	*outlen = n;
	return 0;
}

static void
wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* ---------------- talking to authd ---------------- */

/* Maps a failed reply's error code for login_begin/login_verify. */
static int
error_code(const json_t *reply, char *code, size_t cap)
{
	const char *c = json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
	snprintf(code, cap, "%s", c ? c : "?");
	return json_is_true(json_object_get(reply, "ok")) ? 0 : -1;
}

/* Sends req (not stolen) and receives the reply: 0, or -1 when authd could not be heard (fail closed). */
static int
call(struct authd_client *c, json_t *req, json_t **reply, const struct pam_authd_io *io, const char *op)
{
	int r = req == NULL ? -1 : authd_client_call(c, req, reply);
	if (r < 0) {
		flog(io, LOG_ERR, "pam_authd: no answer from authd to %s (error %d): failing closed", op, r);
		return -1;
	}
	return 0;
}

/* ---------------- FIDO2 ---------------- */

static pthread_once_t fido_once = PTHREAD_ONCE_INIT;

static void
fido_setup(void)
{
	fido_init(0);
}

/* authenticatorData as returned by libfido2 is a CBOR byte string: strip the header. */
static int
cbor_bytes(const uint8_t *p, size_t n, const uint8_t **data, size_t *len)
{
	size_t hdr, l;
	if (n < 1 || (p[0] >> 5) != 2)
		return -1;
	uint8_t ai = p[0] & 0x1f;
	if (ai < 24) {
		hdr = 1;
		l = ai;
	} else if (ai == 24 && n >= 2) {
		hdr = 2;
		l = p[1];
	} else if (ai == 25 && n >= 3) {
		hdr = 3;
		l = (size_t)p[1] << 8 | p[2];
	} else
		return -1;
	if (hdr + l != n)
		return -1;
	*data = p + hdr;
	*len = l;
	return 0;
}

struct fido_req {
	const char *rp_id, *uv;
	char *cdj; /* clientDataJSON text */
	uint8_t ids[MAX_ALLOW][256];
	size_t id_len[MAX_ALLOW];
	size_t n_ids;
};

static fido_assert_t *
assert_build(const struct fido_req *q, int up, int uv)
{
	fido_assert_t *a = fido_assert_new();
	if (a == NULL)
		return NULL;
	int r = fido_assert_set_rp(a, q->rp_id);
	if (r == FIDO_OK)
		r = fido_assert_set_clientdata(a, (const unsigned char *)q->cdj, strlen(q->cdj));
	for (size_t i = 0; r == FIDO_OK && i < q->n_ids; i++)
		r = fido_assert_allow_cred(a, q->ids[i], q->id_len[i]);
	if (r == FIDO_OK)
		r = fido_assert_set_up(a, up ? FIDO_OPT_TRUE : FIDO_OPT_FALSE);
	if (r == FIDO_OK && uv)
		r = fido_assert_set_uv(a, FIDO_OPT_TRUE);
	if (r != FIDO_OK)
		fido_assert_free(&a);
	return a;
}

/* The proof object login_verify wants from assertion 0. */
static json_t *
assert_json(const fido_assert_t *a, const char *cdj)
{
	const uint8_t *ad = NULL;
	size_t adl = 0;
	json_t *o = NULL;
	if (fido_assert_count(a) < 1 ||
	    cbor_bytes(fido_assert_authdata_ptr(a, 0), fido_assert_authdata_len(a, 0), &ad, &adl) < 0)
		return NULL;
	char *id = b64url(fido_assert_id_ptr(a, 0), fido_assert_id_len(a, 0));
	char *auth = b64url(ad, adl);
	char *cd = b64url((const uint8_t *)cdj, strlen(cdj));
	char *sig = b64url(fido_assert_sig_ptr(a, 0), fido_assert_sig_len(a, 0));
	char *uh = fido_assert_user_id_len(a, 0)
	               ? b64url(fido_assert_user_id_ptr(a, 0), fido_assert_user_id_len(a, 0))
	               : NULL;
	if (id && auth && cd && sig)
		o = json_pack("{s:s,s:s,s:s,s:s,s:s?}", "credential_id", id, "authenticator_data", auth,
		              "client_data_json", cd, "signature", sig, "user_handle", uh);
	free(id);
	free(auth);
	free(cd);
	free(sig);
	free(uh);
	return o;
}

static int
fido2_parse(const struct pam_authd_cfg *cfg, const struct pam_authd_io *io, const json_t *ch,
            struct fido_req *q)
{
	const json_t *f = json_object_get(ch, "fido2"), *allow = json_object_get(f, "allow_credentials"), *v;
	const char *chal = json_string_value(json_object_get(f, "challenge"));
	size_t i;
	q->rp_id = json_string_value(json_object_get(f, "rp_id"));
	q->uv = json_string_value(json_object_get(f, "user_verification"));
	if (chal == NULL || q->rp_id == NULL || !json_is_array(allow)) {
		flog(io, LOG_ERR, "pam_authd: malformed FIDO2 challenge from authd");
		return PROOF_ERROR;
	}
	if (cfg->rp_id[0] != '\0' && strcmp(cfg->rp_id, q->rp_id) != 0) {
		flog(io, LOG_ERR, "pam_authd: authd asks for rp_id '%s' but the module is set to rp_id=%s",
		     q->rp_id, cfg->rp_id);
		return PROOF_ERROR;
	}
	json_array_foreach(allow, i, v)
	{
		const char *s = json_string_value(v);
		if (s == NULL || q->n_ids == MAX_ALLOW ||
		    b64url_dec(s, q->ids[q->n_ids], sizeof q->ids[0], &q->id_len[q->n_ids]) < 0)
			continue;
		q->n_ids++;
	}
	if (q->n_ids == 0) {
		DBG(cfg, io, "pam_authd: no FIDO2 credential enrolled");
		return PROOF_UNAVAILABLE;
	}
	/* What a browser would send: the FIDO2 plugin checks it like any WebAuthn assertion. */
	json_t *cd = json_pack("{s:s,s:s,s:s,s:b}", "type", "webauthn.get", "challenge", chal, "origin",
	                       q->rp_id, "crossOrigin", 0);
	q->cdj = cd ? json_dumps(cd, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(cd);
	return q->cdj ? PROOF_OK : PROOF_ERROR;
}

/* Silent probe (no touch): does dev hold one of the allowed credentials? */
static int
fido2_probe(fido_dev_t *dev, const struct fido_req *q)
{
	fido_assert_t *a = assert_build(q, 0, 0);
	int r = a ? fido_dev_get_assert(dev, a, NULL) : FIDO_ERR_INTERNAL;
	fido_assert_free(&a);
	return r == FIDO_OK;
}

static int
fido2_proof(const struct pam_authd_cfg *cfg, const struct pam_authd_io *io, const json_t *ch, json_t **proof)
{
	struct fido_req *q = calloc(1, sizeof *q);
	fido_dev_info_t *list = NULL;
	fido_dev_t *devs[MAX_DEVS] = {0}, *dev = NULL;
	fido_assert_t *a = NULL;
	size_t ndevs = 0, nopen = 0;
	char *pin = NULL;
	int rc = PROOF_ERROR, r;

	if (q == NULL)
		return PROOF_ERROR;
	if ((rc = fido2_parse(cfg, io, ch, q)) != PROOF_OK)
		goto out;
	rc = PROOF_ERROR;
	pthread_once(&fido_once, fido_setup);
	if ((list = fido_dev_info_new(MAX_DEVS)) == NULL)
		goto out;
	if ((r = fido_dev_info_manifest(list, MAX_DEVS, &ndevs)) != FIDO_OK || ndevs == 0) {
		flog(io, LOG_NOTICE, "pam_authd: no FIDO2 security key found (%s)",
		     r == FIDO_OK ? "none" : fido_strerr(r));
		rc = PROOF_UNAVAILABLE;
		goto out;
	}
	for (size_t i = 0; i < ndevs && i < MAX_DEVS; i++) {
		const fido_dev_info_t *di = fido_dev_info_ptr(list, i);
		fido_dev_t *d = fido_dev_new_with_info(di);
		if (d == NULL)
			continue;
		if ((r = fido_dev_open_with_info(d)) != FIDO_OK) {
			DBG(cfg, io, "pam_authd: cannot open %s: %s", fido_dev_info_path(di), fido_strerr(r));
			fido_dev_free(&d);
			continue;
		}
		devs[nopen++] = d;
	}
	/* Several keys: ask each silently which holds a credential, so only that one needs a touch. */
	for (size_t i = 0; i < nopen && dev == NULL; i++)
		if (nopen == 1 || fido2_probe(devs[i], q))
			dev = devs[i];
	if (dev == NULL) {
		flog(io, LOG_NOTICE, "pam_authd: no security key here holds a credential for this user");
		rc = PROOF_UNAVAILABLE;
		goto out;
	}
	int want_uv = q->uv != NULL && strcmp(q->uv, "discouraged") != 0;
	int need_uv = q->uv != NULL && strcmp(q->uv, "required") == 0;
	int uv_opt = 0;
	if (want_uv && fido_dev_has_uv(dev))
		uv_opt = 1; /* built-in verification (biometric) */
	else if (want_uv && fido_dev_has_pin(dev) && io && io->secret)
		pin = io->secret(io->ctx, "PIN for your security key: ");
	if (need_uv && !uv_opt && pin == NULL) {
		flog(io, LOG_NOTICE, "pam_authd: authd requires user verification and the key offers none");
		rc = PROOF_UNAVAILABLE;
		goto out;
	}
	if ((a = assert_build(q, 1, uv_opt)) == NULL)
		goto out;
	fido_dev_set_timeout(dev, cfg->timeout_s * 1000);
	if (cfg->cue)
		cue(io, cfg->cue_prompt[0] ? cfg->cue_prompt : "Please touch your security key.");
	if ((r = fido_dev_get_assert(dev, a, pin)) != FIDO_OK) {
		flog(io, LOG_NOTICE, "pam_authd: security key gave no assertion: %s", fido_strerr(r));
		rc = PROOF_UNAVAILABLE;
		goto out;
	}
	if ((*proof = assert_json(a, q->cdj)) == NULL) {
		flog(io, LOG_ERR, "pam_authd: malformed assertion from the security key");
		goto out;
	}
	rc = PROOF_OK;
out:
	wipe_free(pin);
	fido_assert_free(&a);
	for (size_t i = 0; i < nopen; i++) {
		fido_dev_close(devs[i]);
		fido_dev_free(&devs[i]);
	}
	fido_dev_info_free(&list, MAX_DEVS);
	if (q)
		free(q->cdj);
	free(q);
	return rc;
}

/* ---------------- face ---------------- */

static int
read_fd_all(int fd, uint8_t **out, size_t *len, int timeout_ms)
{
	size_t cap = 65536, n = 0;
	uint8_t *buf = malloc(cap);
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (buf == NULL)
		return -1;
	for (;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = timeout_ms -
		            ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			if (left > 0 && errno == EINTR)
				continue;
			break;
		}
		if (n == cap) {
			if (cap >= IMAGE_MAX)
				break;
			uint8_t *nb = realloc(buf, cap * 2);
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0) {
				*out = buf;
				*len = n;
				return 0;
			}
			break;
		}
		n += (size_t)k;
	}
	explicit_bzero(buf, n);
	free(buf);
	return -1;
}

static int
read_image_file(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	int r = -1;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && (size_t)st.st_size <= IMAGE_MAX)
		r = read_fd_all(fd, out, len, 10000);
	close(fd);
	return r;
}

/* Runs the camera helper (OpenCV lives there, not in sshd): one JPEG on its stdout. */
static int
capture_image(const struct pam_authd_cfg *cfg, const struct pam_authd_io *io, uint8_t **out, size_t *len)
{
	int p[2];
	char cam[16], tmo[16];
	snprintf(cam, sizeof cam, "%d", cfg->camera);
	snprintf(tmo, sizeof tmo, "%d", cfg->timeout_s);
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || dup2(devnull, 2) < 0)
			_exit(127);
		char a0[] = "authd-capture", a1[] = "--camera", a3[] = "--timeout",
		     e0[] = "PATH=/usr/bin:/bin";
		char *const argv[] = {a0, a1, cam, a3, tmo, NULL};
		char *const envp[] = {e0, NULL};
		execve(cfg->capture, argv, envp);
		_exit(127);
	}
	close(p[1]);
	int r = read_fd_all(p[0], out, len, (cfg->timeout_s + 5) * 1000);
	close(p[0]);
	if (r < 0)
		kill(pid, SIGKILL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		flog(io, LOG_NOTICE, "pam_authd: camera helper %s failed (status %d)", cfg->capture, st);
		explicit_bzero(*out, *len);
		free(*out);
		*out = NULL;
		r = -1;
	}
	return r;
}

static int
face_proof(const struct pam_authd_cfg *cfg, const struct pam_authd_io *io, json_t **proof)
{
	uint8_t *img = NULL;
	size_t len = 0;
	int r;
	if (cfg->face_src == PAM_AUTHD_FACE_FILE) {
		r = read_image_file(cfg->face_file, &img, &len);
		if (r < 0)
			flog(io, LOG_ERR, "pam_authd: cannot read face image %s", cfg->face_file);
	} else {
		if (cfg->cue)
			cue(io, "Please look at the camera.");
		r = capture_image(cfg, io, &img, &len);
	}
	if (r < 0)
		return PROOF_UNAVAILABLE;
	char *b = b64url(img, len);
	explicit_bzero(img, len);
	free(img);
	if (b == NULL)
		return PROOF_ERROR;
	*proof = json_pack("{s:[s]}", "images", b);
	wipe_free(b);
	return *proof ? PROOF_OK : PROOF_ERROR;
}

/* ---------------- the login ---------------- */

static int
offered(const json_t *methods, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(methods, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return 1;
	}
	return 0;
}

static int
verify(struct authd_client *c, const struct pam_authd_cfg *cfg, const struct pam_authd_io *io,
       const char *chid, const char *method, json_t *proof, const char *user)
{
	json_t *req = json_pack("{s:s,s:s,s:s,s:O}", "op", "login_verify", "challenge_id", chid, "method",
	                        method, method, proof);
	json_t *reply = NULL;
	char code[32];
	int rc;
	if (req == NULL)
		return PAM_ABORT;
	if (call(c, req, &reply, io, "login_verify") < 0) {
		rc = PAM_AUTHINFO_UNAVAIL;
		goto out;
	}
	if (error_code(reply, code, sizeof code) < 0) {
		flog(io, LOG_NOTICE, "pam_authd: login_verify for %s refused by authd: %s", user, code);
		rc = !strcmp(code, "expired") || !strcmp(code, "bad_request") || !strcmp(code, "not_found")
		         ? PAM_AUTH_ERR
		         : PAM_AUTHINFO_UNAVAIL;
		goto out;
	}
	const char *result = json_string_value(json_object_get(reply, "result"));
	if (result && strcmp(result, "approved") == 0)
		rc = PAM_SUCCESS;
	else if (result && strcmp(result, "rejected") == 0)
		rc = PAM_AUTH_ERR;
	else if (result && strcmp(result, "locked") == 0)
		rc = PAM_MAXTRIES;
	else
		rc = PAM_ABORT;
	flog(io, rc == PAM_SUCCESS ? LOG_INFO : LOG_NOTICE, "pam_authd: %s login for %s: %s", method, user,
	     result ? result : "?");
out:
	json_decref(req);
	json_decref(reply);
	return rc;
}

int
pam_authd_flow_auth(const struct pam_authd_cfg *cfg, const struct pam_authd_login *login,
                    const struct pam_authd_io *io)
{
	struct authd_client *c = NULL;
	json_t *req = NULL, *reply = NULL;
	char code[32];
	int rc = PAM_ABORT;

	if (cfg == NULL || login == NULL || login->user == NULL || login->user[0] == '\0')
		return PAM_USER_UNKNOWN;
	if (authd_client_connect(cfg->socket, cfg->timeout_s * 1000, &c) < 0) {
		flog(io, LOG_ERR, "pam_authd: cannot reach authd at %s: failing closed", cfg->socket);
		return PAM_AUTHINFO_UNAVAIL;
	}
	req = json_pack("{s:s,s:s,s:s?,s:s?,s:s?}", "op", "login_begin", "user", login->user, "service",
	                login->service, "rhost", login->rhost, "tty", login->tty);
	if (req == NULL)
		goto out;
	if (call(c, req, &reply, io, "login_begin") < 0) {
		rc = PAM_AUTHINFO_UNAVAIL;
		goto out;
	}
	if (error_code(reply, code, sizeof code) < 0) {
		if (strcmp(code, "not_found") == 0) {
			if (cfg->nouserok) {
				/* authd answers not_found only for a user it never enrolled. */
				flog(io, LOG_WARNING,
				     "pam_authd: %s has nothing enrolled in authd; passing (nouserok)",
				     login->user);
				rc = PAM_SUCCESS;
			} else {
				flog(io, LOG_NOTICE, "pam_authd: %s has nothing enrolled in authd",
				     login->user);
				rc = PAM_USER_UNKNOWN;
			}
		} else if (strcmp(code, "bad_request") == 0) {
			flog(io, LOG_NOTICE, "pam_authd: authd refused the login of '%s' as malformed",
			     login->user);
			rc = PAM_USER_UNKNOWN;
		} else {
			flog(io, LOG_ERR, "pam_authd: authd answered login_begin with %s: failing closed",
			     code);
			rc = PAM_AUTHINFO_UNAVAIL;
		}
		goto out;
	}
	const char *result = json_string_value(json_object_get(reply, "result"));
	if (result == NULL) {
		rc = PAM_ABORT;
		goto out;
	}
	if (strcmp(result, "locked") == 0) {
		flog(io, LOG_NOTICE, "pam_authd: %s is locked in authd", login->user);
		rc = PAM_MAXTRIES;
		goto out;
	}
	if (strcmp(result, "step_up") != 0) {
		flog(io, LOG_NOTICE, "pam_authd: authd denies %s (%s)", login->user, result);
		rc = PAM_AUTH_ERR;
		goto out;
	}
	const json_t *ch = json_object_get(reply, "challenge"), *methods = json_object_get(ch, "methods");
	const char *chid = json_string_value(json_object_get(ch, "id"));
	if (chid == NULL || !json_is_array(methods)) {
		flog(io, LOG_ERR, "pam_authd: malformed challenge from authd");
		rc = PAM_ABORT;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_methods; i++) {
		const char *name = pam_authd_method_name(cfg->methods[i]);
		json_t *proof = NULL;
		if (!offered(methods, name)) {
			DBG(cfg, io, "pam_authd: %s not enrolled for %s", name, login->user);
			continue;
		}
		int pr = cfg->methods[i] == PAM_AUTHD_FIDO2 ? fido2_proof(cfg, io, ch, &proof)
		                                            : face_proof(cfg, io, &proof);
		if (pr == PROOF_UNAVAILABLE)
			continue;
		if (pr != PROOF_OK) {
			json_decref(proof);
			rc = PAM_ABORT;
			goto out;
		}
		rc = verify(c, cfg, io, chid, name, proof, login->user);
		json_decref(proof);
		goto out;
	}
	flog(io, LOG_NOTICE, "pam_authd: no usable authenticator for %s here", login->user);
	rc = PAM_AUTH_ERR;
out:
	json_decref(req);
	json_decref(reply);
	authd_client_free(&c);
	/* Belt and braces: whatever happened above, the module never answers "ignore me". */
	return rc == PAM_IGNORE ? PAM_AUTH_ERR : rc;
}

int
pam_authd_flow_account(const struct pam_authd_cfg *cfg, const struct pam_authd_login *login,
                       const struct pam_authd_io *io)
{
	struct authd_client *c = NULL;
	json_t *req = NULL, *reply = NULL;
	char code[32];
	int rc = PAM_AUTHINFO_UNAVAIL;

	if (cfg == NULL || login == NULL || login->user == NULL || login->user[0] == '\0')
		return PAM_USER_UNKNOWN;
	if (authd_client_connect(cfg->socket, cfg->timeout_s * 1000, &c) < 0) {
		flog(io, LOG_ERR, "pam_authd: cannot reach authd at %s: failing closed", cfg->socket);
		return PAM_AUTHINFO_UNAVAIL;
	}
	req = json_pack("{s:s,s:s}", "op", "login_status", "user", login->user);
	if (call(c, req, &reply, io, "login_status") < 0)
		goto out;
	if (error_code(reply, code, sizeof code) < 0) {
		rc = strcmp(code, "bad_request") == 0 ? PAM_USER_UNKNOWN : PAM_AUTHINFO_UNAVAIL;
		flog(io, LOG_ERR, "pam_authd: authd answered login_status with %s", code);
		goto out;
	}
	if (json_is_true(json_object_get(reply, "frozen")) ||
	    json_is_true(json_object_get(reply, "locked"))) {
		flog(io, LOG_NOTICE, "pam_authd: %s is %s in authd", login->user,
		     json_is_true(json_object_get(reply, "frozen")) ? "frozen" : "locked");
		rc = PAM_PERM_DENIED;
	} else if (!json_is_true(json_object_get(reply, "enrolled"))) {
		/*
		 * nouserok passes only a user authd says it has never seen ("known": false);
		 * one whose credentials were all revoked or disabled is refused. A reply
		 * without "known" (an older authd) is never taken as "never seen".
		 */
		const json_t *known = json_object_get(reply, "known");
		if (json_is_true(known)) {
			flog(io, LOG_NOTICE,
			     "pam_authd: %s has no active credential in authd (revoked or disabled)",
			     login->user);
			rc = PAM_PERM_DENIED;
		} else
			rc = cfg->nouserok && json_is_false(known) ? PAM_SUCCESS : PAM_USER_UNKNOWN;
	} else
		rc = PAM_SUCCESS;
out:
	json_decref(req);
	json_decref(reply);
	authd_client_free(&c);
	return rc;
}
