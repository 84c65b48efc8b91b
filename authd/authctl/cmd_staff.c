/* authctl staff enroll-face / enroll-fido2 (see cmd_staff.h). */
#include "cmd_staff.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "authd_client.h"
#include "util.h"

static int
usage(void)
{
	fprintf(stderr, "usage: authctl staff enroll-face --user U IMG...\n"
	                "       authctl staff enroll-fido2 --user U [--device PATH] [--display-name TEXT]\n");
	return 2;
}

/* Sends req (not stolen): 0 with *reply set, -3 when authd gives no answer. */
static int
call(struct authd_client *c, json_t *req, json_t **reply)
{
	if (req == NULL || authd_client_call(c, req, reply) < 0)
		return -3;
	return 0;
}

static const char *
reply_error(const json_t *reply)
{
	const char *m = json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
	return m ? m : "error";
}

/* ---------------- CBOR, just enough for an attestationObject ---------------- */

struct cb {
	uint8_t *p;
	size_t n, cap;
	int bad;
};

static void
cb_put(struct cb *b, const void *d, size_t n)
{
	if (b->bad || n == 0)
		return;
	if (b->n + n > b->cap) {
		size_t cap = (b->n + n) * 2;
		uint8_t *np = realloc(b->p, cap);
		if (np == NULL) {
			b->bad = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void
cb_head(struct cb *b, uint8_t major, size_t n)
{
	uint8_t h[3];
	if (n < 24) {
		h[0] = (uint8_t)(major << 5 | n);
		cb_put(b, h, 1);
	} else if (n < 256) {
		h[0] = (uint8_t)(major << 5 | 24);
		h[1] = (uint8_t)n;
		cb_put(b, h, 2);
	} else if (n < 65536) {
		h[0] = (uint8_t)(major << 5 | 25);
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		cb_put(b, h, 3);
	} else
		b->bad = 1;
}

static void
cb_text(struct cb *b, const char *s)
{
	cb_head(b, 3, strlen(s));
	cb_put(b, s, strlen(s));
}

/* {"fmt", "attStmt", "authData"} from what libfido2 returned. Caller frees. */
static uint8_t *
attestation_object(const fido_cred_t *cred, size_t *len)
{
	struct cb b = {0};
	const char *fmt = fido_cred_fmt(cred);
	static const uint8_t empty_map = 0xa0;
	const uint8_t *st = fido_cred_attstmt_ptr(cred);
	size_t stl = fido_cred_attstmt_len(cred);
	cb_head(&b, 5, 3);
	cb_text(&b, "fmt");
	cb_text(&b, fmt ? fmt : "none");
	cb_text(&b, "attStmt");
	if (st == NULL || stl == 0 || fmt == NULL || strcmp(fmt, "none") == 0)
		cb_put(&b, &empty_map, 1);
	else
		cb_put(&b, st, stl);
	cb_text(&b, "authData");
	cb_head(&b, 2, fido_cred_authdata_raw_len(cred));
	cb_put(&b, fido_cred_authdata_raw_ptr(cred), fido_cred_authdata_raw_len(cred));
	if (b.bad) {
		free(b.p);
		return NULL;
	}
	*len = b.n;
	return b.p;
}

/* ---------------- FIDO2 ---------------- */

int
staff_enroll_fido2_dev(struct authd_client *c, const char *user, const char *display, fido_dev_t *dev,
                       const char *pin, char *cred_id, size_t cred_cap, char *msg, size_t msglen)
{
	json_t *req = NULL, *reply = NULL, *cd = NULL, *fin = NULL, *freply = NULL;
	fido_cred_t *cred = NULL;
	uint8_t *uid = NULL, *ao = NULL;
	size_t uidl = 0, aol = 0;
	char *cdj = NULL, *b_id = NULL, *b_cd = NULL, *b_ao = NULL;
	int rc = -1, r;

	msg[0] = '\0';
	req = json_pack("{s:s,s:s,s:s?}", "op", "enroll_fido2_begin", "staff", user, "display_name", display);
	if ((rc = call(c, req, &reply)) < 0)
		goto out;
	rc = -1;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		snprintf(msg, msglen, "authd refused enroll_fido2_begin: %s", reply_error(reply));
		goto out;
	}
	const char *eid = json_string_value(json_object_get(reply, "enrollment_id"));
	const json_t *reg = json_object_get(reply, "registration");
	const char *chal = json_string_value(json_object_get(reg, "challenge"));
	const char *rp_id = json_string_value(json_object_get(json_object_get(reg, "rp"), "id"));
	const char *rp_name = json_string_value(json_object_get(json_object_get(reg, "rp"), "name"));
	const json_t *u = json_object_get(reg, "user");
	const char *uid_b64 = json_string_value(json_object_get(u, "id"));
	const char *uname = json_string_value(json_object_get(u, "name"));
	const char *udisp = json_string_value(json_object_get(u, "display_name"));
	const char *uv = json_string_value(json_object_get(reg, "user_verification"));
	if (eid == NULL || chal == NULL || rp_id == NULL || uid_b64 == NULL ||
	    b64url_decode(uid_b64, strlen(uid_b64), 64, &uid, &uidl) < 0) {
		snprintf(msg, msglen, "malformed registration from authd");
		goto out;
	}
	/* What a browser would send; the origin of a PAM rp_id is the rp_id itself. */
	cd = json_pack("{s:s,s:s,s:s,s:b}", "type", "webauthn.create", "challenge", chal, "origin", rp_id,
	               "crossOrigin", 0);
	if (cd == NULL || (cdj = json_dumps(cd, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	if ((cred = fido_cred_new()) == NULL)
		goto out;
	int want_uv = uv != NULL && strcmp(uv, "discouraged") != 0;
	if ((r = fido_cred_set_type(cred, COSE_ES256)) != FIDO_OK ||
	    (r = fido_cred_set_clientdata(cred, (const unsigned char *)cdj, strlen(cdj))) != FIDO_OK ||
	    (r = fido_cred_set_rp(cred, rp_id, rp_name)) != FIDO_OK ||
	    (r = fido_cred_set_user(cred, uid, uidl, uname, udisp, NULL)) != FIDO_OK ||
	    (r = fido_cred_set_rk(cred, FIDO_OPT_OMIT)) != FIDO_OK ||
	    (want_uv && pin == NULL && fido_dev_has_uv(dev) &&
	     (r = fido_cred_set_uv(cred, FIDO_OPT_TRUE)) != FIDO_OK)) {
		snprintf(msg, msglen, "libfido2: %s", fido_strerr(r));
		goto out;
	}
	fprintf(stderr, "authctl: touch the security key to register it for %s (%s)\n", user, rp_id);
	if ((r = fido_dev_make_cred(dev, cred, pin)) != FIDO_OK) {
		snprintf(msg, msglen, "the security key did not register a credential: %s", fido_strerr(r));
		goto out;
	}
	if ((ao = attestation_object(cred, &aol)) == NULL ||
	    (b_id = b64url_encode(fido_cred_id_ptr(cred), fido_cred_id_len(cred))) == NULL ||
	    (b_cd = b64url_encode((const uint8_t *)cdj, strlen(cdj))) == NULL ||
	    (b_ao = b64url_encode(ao, aol)) == NULL)
		goto out;
	fin = json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "op", "enroll_fido2_finish", "enrollment_id", eid,
	                "fido2", "credential_id", b_id, "client_data_json", b_cd, "attestation_object", b_ao);
	if ((rc = call(c, fin, &freply)) < 0)
		goto out;
	rc = -1;
	if (!json_is_true(json_object_get(freply, "ok"))) {
		snprintf(msg, msglen, "authd refused the key: %s", reply_error(freply));
		goto out;
	}
	const char *result = json_string_value(json_object_get(freply, "result"));
	if (result && strcmp(result, "pending") == 0) {
		snprintf(msg, msglen,
		         "four-eyes: pending action %s awaits a second staff member ('authctl approve %s')",
		         json_string_value(json_object_get(freply, "pending_id")),
		         json_string_value(json_object_get(freply, "pending_id")));
		rc = 1;
		goto out;
	}
	if (result == NULL || strcmp(result, "enrolled") != 0) {
		char *t = json_dumps(json_object_get(freply, "reasons"), JSON_COMPACT);
		snprintf(msg, msglen, "authd rejected the key: %s", t ? t : "?");
		free(t);
		goto out;
	}
	snprintf(cred_id, cred_cap, "%s", b_id);
	rc = 0;
out:
	json_decref(req);
	json_decref(reply);
	json_decref(cd);
	json_decref(fin);
	json_decref(freply);
	fido_cred_free(&cred);
	free(uid);
	free(ao);
	free(cdj);
	free(b_id);
	free(b_cd);
	free(b_ao);
	return rc;
}

/* The PIN from $AUTHD_FIDO2_PIN or the terminal (echo off); NULL when none. Caller wipes and frees. */
static char *
read_pin(void)
{
	const char *env = getenv("AUTHD_FIDO2_PIN");
	if (env != NULL)
		return strdup(env);
	if (!isatty(STDIN_FILENO))
		return NULL;
	struct termios old, quiet;
	char buf[128];
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return NULL;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	fprintf(stderr, "PIN for the security key: ");
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	char *r = fgets(buf, sizeof buf, stdin);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fprintf(stderr, "\n");
	if (r == NULL)
		return NULL;
	buf[strcspn(buf, "\n")] = '\0';
	char *pin = strdup(buf);
	util_wipe(buf, sizeof buf);
	return pin;
}

static int
enroll_fido2(struct authd_client *c, const char *user, const char *display, const char *path)
{
	fido_dev_info_t *list = NULL;
	fido_dev_t *dev = NULL;
	char *pin = NULL, msg[512], cid[1500];
	size_t n = 0;
	int rc = 1, r;

	fido_init(0);
	if (path == NULL) {
		if ((list = fido_dev_info_new(16)) == NULL ||
		    fido_dev_info_manifest(list, 16, &n) != FIDO_OK || n == 0) {
			fprintf(stderr, "authctl: no FIDO2 security key found (use --device PATH)\n");
			goto out;
		}
		path = fido_dev_info_path(fido_dev_info_ptr(list, 0));
	}
	if ((dev = fido_dev_new()) == NULL || (r = fido_dev_open(dev, path)) != FIDO_OK) {
		fprintf(stderr, "authctl: cannot open security key %s\n", path);
		goto out;
	}
	if (!fido_dev_has_uv(dev) && fido_dev_has_pin(dev))
		pin = read_pin();
	r = staff_enroll_fido2_dev(c, user, display, dev, pin, cid, sizeof cid, msg, sizeof msg);
	if (r == 0) {
		printf("enrolled staff:%s fido2 credential %s\n", user, cid);
		rc = 0;
	} else {
		fprintf(stderr, "authctl: %s\n", msg[0] ? msg : "no answer from authd");
		rc = r == -3 ? 3 : 1;
	}
out:
	if (pin)
		util_wipe(pin, strlen(pin));
	free(pin);
	if (dev)
		fido_dev_close(dev);
	fido_dev_free(&dev);
	fido_dev_info_free(&list, 16);
	return rc;
}

static int
enroll_face(struct authd_client *c, const char *user, int nimg, char **imgs, int json)
{
	json_t *arr = json_array(), *req = NULL, *reply = NULL;
	int rc = 1;
	for (int i = 0; arr && i < nimg; i++) {
		uint8_t *data = NULL;
		size_t len = 0;
		if (util_read_file(imgs[i], 16u << 20, &data, &len) < 0) {
			fprintf(stderr, "authctl: cannot read %s\n", imgs[i]);
			rc = 2;
			goto out;
		}
		char *b = b64url_encode(data, len);
		util_free_secret(&data, len);
		if (b == NULL)
			goto out;
		json_array_append_new(arr, json_string(b));
		util_wipe(b, strlen(b));
		free(b);
	}
	req = json_pack("{s:s,s:s,s:O}", "op", "enroll_face", "staff", user, "images", arr);
	if (call(c, req, &reply) < 0) {
		fprintf(stderr, "authctl: no answer from authd\n");
		rc = 3;
		goto out;
	}
	if (json) {
		char *t = json_dumps(reply, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", t ? t : "");
		free(t);
	}
	const char *result = json_string_value(json_object_get(reply, "result"));
	if (!json_is_true(json_object_get(reply, "ok")))
		fprintf(stderr, "authctl: authd refused enroll_face: %s\n", reply_error(reply));
	else if (result && strcmp(result, "enrolled") == 0) {
		if (!json)
			printf("enrolled staff:%s face\n", user);
		rc = 0;
	} else if (result && strcmp(result, "pending") == 0)
		fprintf(stderr, "authctl: four-eyes: pending action %s awaits a second staff member\n",
		        json_string_value(json_object_get(reply, "pending_id")));
	else {
		char *t = json_dumps(json_object_get(reply, "reasons"), JSON_COMPACT);
		fprintf(stderr, "authctl: face enrollment rejected: %s\n", t ? t : "?");
		free(t);
	}
out:
	json_decref(arr);
	json_decref(req);
	json_decref(reply);
	return rc;
}

int
cmd_staff(int argc, char **argv, const char *socket, int timeout_ms, int json)
{
	const char *user = NULL, *device = NULL, *display = NULL;
	char **pos = calloc((size_t)argc + 1, sizeof *pos);
	int npos = 0, rc = 2;
	struct authd_client *c = NULL;

	if (pos == NULL)
		return 1;
	if (argc < 2)
		goto out;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--user") && i + 1 < argc)
			user = argv[++i];
		else if (!strcmp(argv[i], "--device") && i + 1 < argc)
			device = argv[++i];
		else if (!strcmp(argv[i], "--display-name") && i + 1 < argc)
			display = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1] == '-')
			goto out;
		else
			pos[npos++] = argv[i];
	}
	if (user == NULL || user[0] == '\0')
		goto out;
	int face = !strcmp(argv[1], "enroll-face"), fido2 = !strcmp(argv[1], "enroll-fido2");
	if ((face && npos == 0) || (fido2 && npos != 0) || (!face && !fido2))
		goto out;
	if (authd_client_connect(socket, timeout_ms, &c) < 0) {
		fprintf(stderr, "authctl: cannot reach authd at %s: %s\n", socket,
		        strerror(errno ? errno : ECONNREFUSED));
		rc = 3;
		goto out;
	}
	rc = face ? enroll_face(c, user, npos, pos, json) : enroll_fido2(c, user, display, device);
out:
	if (rc == 2)
		usage();
	authd_client_free(&c);
	free(pos);
	return rc;
}
