/*
 * pam_authd.so: staff logins decided by authd (docs/pam.md). Only the
 * pam_sm_* entry points live here; options are parsed by
 * pam_authd_args.c and the logic is in pam_authd_flow.c. The version
 * script (pam_authd.map) exports nothing else.
 */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "pam_authd_args.h"
#include "pam_authd_flow.h"

/* Built with -fvisibility=hidden: only these three are made visible, and the version script agrees. */
#define EXPORT __attribute__((visibility("default")))

struct pam_io {
	pam_handle_t *pamh;
	int debug;
};

static void
io_info(void *ctx, const char *msg)
{
	struct pam_io *p = ctx;
	(void)pam_info(p->pamh, "%s", msg);
}

static char *
io_secret(void *ctx, const char *prompt)
{
	struct pam_io *p = ctx;
	char *resp = NULL;
	if (pam_prompt(p->pamh, PAM_PROMPT_ECHO_OFF, &resp, "%s", prompt) != PAM_SUCCESS)
		return NULL;
	return resp;
}

static void
io_log(void *ctx, int prio, const char *msg)
{
	struct pam_io *p = ctx;
	if (prio == LOG_DEBUG && !p->debug)
		return;
	pam_syslog(p->pamh, prio, "%s", msg);
}

static const char *
item(pam_handle_t *pamh, int type)
{
	const void *v = NULL;
	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS || v == NULL || ((const char *)v)[0] == '\0')
		return NULL;
	return v;
}

/* Options and user; on failure *rc is the (never successful) answer. */
static int
setup(pam_handle_t *pamh, int argc, const char **argv, struct pam_authd_cfg *cfg,
      struct pam_authd_login *login, int *rc)
{
	char err[320];
	if (pam_authd_args_parse(argc, argv, cfg, err, sizeof err) < 0) {
		pam_syslog(pamh, LOG_ERR,
		           "pam_authd: bad module configuration: %s; refusing every login until fixed", err);
		*rc = PAM_ABORT;
		return -1;
	}
	const char *user = NULL;
	int r = pam_get_user(pamh, &user, NULL);
	if (r != PAM_SUCCESS || user == NULL || user[0] == '\0') {
		pam_syslog(pamh, LOG_NOTICE, "pam_authd: no user name");
		*rc = r == PAM_SUCCESS || r == PAM_IGNORE ? PAM_USER_UNKNOWN : r;
		return -1;
	}
	login->user = user;
	login->service = item(pamh, PAM_SERVICE);
	login->rhost = item(pamh, PAM_RHOST);
	login->tty = item(pamh, PAM_TTY);
	return 0;
}

EXPORT PAM_EXTERN int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pam_authd_cfg *cfg = calloc(1, sizeof *cfg);
	struct pam_authd_login login = {0};
	int rc = PAM_ABORT;
	if (cfg == NULL)
		return PAM_BUF_ERR;
	if (setup(pamh, argc, argv, cfg, &login, &rc) == 0) {
		struct pam_io pio = {pamh, cfg->debug};
		/* PAM_SILENT: no cue messages (a PIN prompt is still a question, not a message). */
		struct pam_authd_io io = {&pio, (flags & PAM_SILENT) ? NULL : io_info, io_secret, io_log};
		rc = pam_authd_flow_auth(cfg, &login, &io);
	}
	free(cfg);
	return rc == PAM_IGNORE ? PAM_AUTH_ERR : rc;
}

EXPORT PAM_EXTERN int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	/* No credentials to establish: the proof was the login itself. */
	return PAM_SUCCESS;
}

EXPORT PAM_EXTERN int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pam_authd_cfg *cfg = calloc(1, sizeof *cfg);
	struct pam_authd_login login = {0};
	int rc = PAM_ABORT;
	(void)flags;
	if (cfg == NULL)
		return PAM_BUF_ERR;
	if (setup(pamh, argc, argv, cfg, &login, &rc) == 0) {
		struct pam_io pio = {pamh, cfg->debug};
		struct pam_authd_io io = {&pio, io_info, io_secret, io_log};
		rc = pam_authd_flow_account(cfg, &login, &io);
	}
	free(cfg);
	return rc == PAM_IGNORE ? PAM_PERM_DENIED : rc;
}
