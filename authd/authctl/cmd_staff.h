/*
 * authctl staff ...: enrolling bank staff for pam_authd, through the same
 * daemon ops and code path as customers (enroll_face / enroll_fido2_* with
 * "staff" instead of "customer"; subject "staff:<user>").
 *
 *   staff enroll-face --user U IMG...
 *   staff enroll-fido2 --user U [--device PATH] [--display-name TEXT]
 *       registers a real security key through libfido2 (fido_dev_make_cred)
 *       for the staff rp_id authd announces (pam://<host> by default);
 *       without --device, the first key found. The PIN, when the key needs
 *       one for user verification, comes from $AUTHD_FIDO2_PIN or the tty.
 *
 * Exit status: 0 enrolled, 1 refused or failed, 2 usage, 3 authd unreachable.
 * Single-threaded (authctl's main thread).
 */
#ifndef AUTHD_CMD_STAFF_H
#define AUTHD_CMD_STAFF_H

#include <stddef.h>

#include <fido.h>

struct authd_client;

/* argv[0] is "staff". socket: authd's socket path; json: print raw replies. */
int cmd_staff(int argc, char **argv, const char *socket, int timeout_ms, int json);

/*
 * The FIDO2 registration on an open device: enroll_fido2_begin for staff
 * user, fido_dev_make_cred, enroll_fido2_finish. pin may be NULL. On
 * success writes the credential id (base64url) into cred_id. 0 enrolled,
 * -1 refused or failed (msg says why), -3 no answer from authd.
 */
int staff_enroll_fido2_dev(struct authd_client *c, const char *user, const char *display, fido_dev_t *dev,
                           const char *pin, char *cred_id, size_t cred_cap, char *msg, size_t msglen);

#endif
