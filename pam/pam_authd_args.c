/* Option parsing for pam_authd (see pam_authd_args.h). */
#include "pam_authd_args.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PAM_AUTHD_CAPTURE_PATH
#define PAM_AUTHD_CAPTURE_PATH "/usr/libexec/authd/authd-capture"
#endif

#define SEEN_SOCKET 0x001u
#define SEEN_METHODS 0x002u
#define SEEN_TIMEOUT 0x004u
#define SEEN_CUE 0x008u
#define SEEN_PROMPT 0x010u
#define SEEN_FACE 0x020u
#define SEEN_RPID 0x040u
#define SEEN_NOUSEROK 0x080u
#define SEEN_DEBUG 0x100u
#define SEEN_CAPTURE 0x200u

const char *
pam_authd_method_name(enum pam_authd_method m)
{
	return m == PAM_AUTHD_FIDO2 ? "fido2" : m == PAM_AUTHD_FACE ? "face" : "?";
}

static int
fail(char *err, size_t errlen, const char *why, const char *arg)
{
	snprintf(err, errlen, "%s: '%.200s'", why, arg);
	return -1;
}

/* Copies v into dst (cap bytes) refusing empty, too long, or control characters. */
static int
copy_text(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

static int
parse_uint(const char *v, long lo, long hi, int *out)
{
	char *end = NULL;
	if (*v < '0' || *v > '9')
		return -1;
	long x = strtol(v, &end, 10);
	if (*end != '\0' || x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

static int
parse_methods(const char *v, struct pam_authd_cfg *cfg)
{
	char buf[64];
	char *save = NULL;
	if (copy_text(buf, sizeof buf, v) < 0 || v[strlen(v) - 1] == ',' || v[0] == ',' || strstr(v, ",,"))
		return -1;
	cfg->n_methods = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		enum pam_authd_method m;
		if (strcmp(t, "fido2") == 0)
			m = PAM_AUTHD_FIDO2;
		else if (strcmp(t, "face") == 0)
			m = PAM_AUTHD_FACE;
		else
			return -1;
		for (size_t i = 0; i < cfg->n_methods; i++)
			if (cfg->methods[i] == m)
				return -1;
		if (cfg->n_methods == PAM_AUTHD_MAX_METHODS)
			return -1;
		cfg->methods[cfg->n_methods++] = m;
	}
	return cfg->n_methods > 0 ? 0 : -1;
}

static int
parse_face(const char *v, struct pam_authd_cfg *cfg)
{
	if (strncmp(v, "camera:", 7) == 0) {
		cfg->face_src = PAM_AUTHD_FACE_CAMERA;
		return parse_uint(v + 7, 0, 63, &cfg->camera);
	}
	if (strncmp(v, "file:", 5) == 0 && v[5] == '/') {
		cfg->face_src = PAM_AUTHD_FACE_FILE;
		return copy_text(cfg->face_file, sizeof cfg->face_file, v + 5);
	}
	return -1;
}

int
pam_authd_args_parse(int argc, const char **argv, struct pam_authd_cfg *cfg, char *err, size_t errlen)
{
	unsigned seen = 0;
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->socket, sizeof cfg->socket, "/run/authd/authd.sock");
	cfg->methods[0] = PAM_AUTHD_FIDO2;
	cfg->methods[1] = PAM_AUTHD_FACE;
	cfg->n_methods = 2;
	cfg->timeout_s = 30;
	cfg->face_src = PAM_AUTHD_FACE_CAMERA;
	snprintf(cfg->capture, sizeof cfg->capture, "%s", PAM_AUTHD_CAPTURE_PATH);
	if (err && errlen)
		err[0] = '\0';
	if (argc < 0 || (argc > 0 && argv == NULL))
		return fail(err, errlen, "bad argument vector", "");
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *eq = a ? strchr(a, '=') : NULL;
		const char *v = eq ? eq + 1 : NULL;
		size_t klen = eq ? (size_t)(eq - a) : (a ? strlen(a) : 0);
		unsigned bit;
		int bad;
#define KEY(name) (klen == sizeof(name) - 1 && strncmp(a, name, klen) == 0)
		if (a == NULL)
			return fail(err, errlen, "null module argument", "");
		if (KEY("socket") && v) {
			bit = SEEN_SOCKET;
			bad = v[0] != '/' || copy_text(cfg->socket, sizeof cfg->socket, v) < 0;
		} else if (KEY("methods") && v) {
			bit = SEEN_METHODS;
			bad = parse_methods(v, cfg) < 0;
		} else if (KEY("timeout") && v) {
			bit = SEEN_TIMEOUT;
			bad = parse_uint(v, 1, 600, &cfg->timeout_s) < 0;
		} else if (KEY("cue") && !v) {
			bit = SEEN_CUE;
			bad = 0;
			cfg->cue = 1;
		} else if (KEY("cue_prompt") && v) {
			bit = SEEN_PROMPT;
			bad = copy_text(cfg->cue_prompt, sizeof cfg->cue_prompt, v) < 0;
			cfg->cue = 1;
		} else if (KEY("face_source") && v) {
			bit = SEEN_FACE;
			bad = parse_face(v, cfg) < 0;
		} else if (KEY("capture") && v) {
			bit = SEEN_CAPTURE;
			bad = v[0] != '/' || copy_text(cfg->capture, sizeof cfg->capture, v) < 0;
		} else if (KEY("rp_id") && v) {
			bit = SEEN_RPID;
			bad = copy_text(cfg->rp_id, sizeof cfg->rp_id, v) < 0;
		} else if (KEY("nouserok") && !v) {
			bit = SEEN_NOUSEROK;
			bad = 0;
			cfg->nouserok = 1;
		} else if (KEY("debug") && !v) {
			bit = SEEN_DEBUG;
			bad = 0;
			cfg->debug = 1;
		} else
			return fail(err, errlen, "unknown module argument", a);
#undef KEY
		if (bad)
			return fail(err, errlen, "invalid value in module argument", a);
		if (seen & bit)
			return fail(err, errlen, "module argument given twice", a);
		seen |= bit;
	}
	return 0;
}
