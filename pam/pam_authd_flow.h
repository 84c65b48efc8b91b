/*
 * The logic of pam_authd, free of PAM calls so tests drive it directly:
 * ask authd for a login challenge (login_begin), prove presence with a
 * local FIDO2 key (libfido2) or a face image (file or camera helper), and
 * let authd decide (login_verify). Returns PAM codes:
 *
 *   PAM_SUCCESS           authd approved
 *   PAM_AUTH_ERR          rejected, refused (frozen), or no usable authenticator here
 *   PAM_MAXTRIES          the staff user is locked in authd
 *   PAM_USER_UNKNOWN      nothing enrolled for this user (PAM_SUCCESS with nouserok)
 *   PAM_AUTHINFO_UNAVAIL  authd unreachable, timed out or refused the peer: fail closed
 *   PAM_ABORT             internal error in the module
 *
 * Never PAM_SUCCESS on an error path, never PAM_IGNORE. One thread at a
 * time per call; no global state beyond libfido2's fido_init.
 */
#ifndef PAM_AUTHD_FLOW_H
#define PAM_AUTHD_FLOW_H

#include "pam_authd_args.h"

struct pam_authd_io {
	void *ctx;
	/* Shows a message to the user (the cue); may be NULL. */
	void (*info)(void *ctx, const char *msg);
	/* Asks for hidden input (a key's PIN); returns a malloc'd string the caller wipes and frees, or NULL.
	 */
	char *(*secret)(void *ctx, const char *prompt);
	/* syslog priority and text; may be NULL. */
	void (*log)(void *ctx, int prio, const char *msg);
};

struct pam_authd_login {
	const char *user;    /* required */
	const char *service; /* PAM_SERVICE, PAM_RHOST, PAM_TTY: NULL when unset */
	const char *rhost;
	const char *tty;
};

int pam_authd_flow_auth(const struct pam_authd_cfg *cfg, const struct pam_authd_login *login,
                        const struct pam_authd_io *io);
/* Account management: PAM_SUCCESS, PAM_PERM_DENIED (frozen or locked), PAM_USER_UNKNOWN,
 * PAM_AUTHINFO_UNAVAIL. */
int pam_authd_flow_account(const struct pam_authd_cfg *cfg, const struct pam_authd_login *login,
                           const struct pam_authd_io *io);

#endif
