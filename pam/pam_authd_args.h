/*
 * pam_authd module options (docs/pam.md), parsed into one struct. Pure C,
 * no PAM calls: tested directly (tests/unit/test_pam_args.c).
 *
 *   socket=PATH            authd's socket (default /run/authd/authd.sock)
 *   methods=fido2,face     methods to try, in order of preference
 *   timeout=S              seconds for authd (connect and each reply) and for the key touch (default 30)
 *   cue                    tell the user to touch the key / look at the camera
 *   cue_prompt=TEXT        the cue for FIDO2 (implies cue)
 *   face_source=camera:N|file:PATH   where the face image comes from (default camera:0)
 *   capture=PATH           the camera helper (default: authd-capture next to the build/install)
 *   rp_id=ID               only accept a challenge for this FIDO2 rp_id (default: authd's)
 *   nouserok               DANGEROUS: a user with nothing enrolled in authd passes
 *   debug                  log each step to syslog (auth.debug)
 *
 * Anything else, a repeated option, or a bad value is an error: the module
 * logs it and fails (never succeeds) with PAM_ABORT.
 */
#ifndef PAM_AUTHD_ARGS_H
#define PAM_AUTHD_ARGS_H

#include <stddef.h>

#define PAM_AUTHD_MAX_METHODS 2
#define PAM_AUTHD_PATH_MAX 4096

enum pam_authd_method { PAM_AUTHD_FIDO2 = 1, PAM_AUTHD_FACE = 2 };
enum pam_authd_face_src { PAM_AUTHD_FACE_CAMERA = 0, PAM_AUTHD_FACE_FILE = 1 };

struct pam_authd_cfg {
	char socket[108]; /* sun_path */
	enum pam_authd_method methods[PAM_AUTHD_MAX_METHODS];
	size_t n_methods;
	int timeout_s;
	int cue;
	char cue_prompt[256];
	enum pam_authd_face_src face_src;
	int camera;
	char face_file[PAM_AUTHD_PATH_MAX];
	char capture[PAM_AUTHD_PATH_MAX];
	char rp_id[256]; /* empty: whatever authd says */
	int nouserok;
	int debug;
};

/*
 * Fills cfg from the module arguments. Returns 0, or -1 with a message
 * naming the offending argument in err (cfg is then unusable).
 */
int pam_authd_args_parse(int argc, const char **argv, struct pam_authd_cfg *cfg, char *err, size_t errlen);

/* "fido2" / "face". */
const char *pam_authd_method_name(enum pam_authd_method m);

#endif
