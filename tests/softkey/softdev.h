/*
 * softdev: a soft FIDO2 security key that libfido2 talks to as if it were
 * a USB HID device, for tests and demos (PAM, authctl). It speaks CTAPHID
 * framing (64-byte reports: INIT, CBOR, PING, CANCEL) and CTAP2
 * authenticatorGetInfo, authenticatorMakeCredential,
 * authenticatorGetAssertion and authenticatorGetNextAssertion, with keys
 * from softkey.h. No PIN; UV is "built in" (reported as uv=true and
 * performed on request) unless softdev_set_uv(d, 0).
 *
 * Two ways to hand it to libfido2:
 *
 *   fido_dev_t *dev = fido_dev_new();
 *   fido_dev_set_io_functions(dev, softdev_io());      // CTAPHID reports
 *   fido_dev_open(dev, softdev_path(d));
 *
 * or, for code that discovers devices through a fido_dev_info_t list,
 * softdev_info_set(d, list, i) and then fido_dev_new_with_info() +
 * fido_dev_open_with_info() (this path uses softdev_transport(), i.e.
 * fido_dev_set_transport_functions semantics: whole CTAPHID messages).
 *
 * Devices are found by path in a process-wide registry guarded by a mutex;
 * one device is used by one thread at a time.
 */
#ifndef AUTHD_SOFTDEV_H
#define AUTHD_SOFTDEV_H

#include <stddef.h>
#include <stdint.h>

#include <fido.h>

#include "softkey.h"

struct softdev;

/* New empty authenticator, registered under softdev_path(); NULL on failure. */
struct softdev *softdev_new(void);
/* Unregisters and frees d and the keys it created; NULL-safe, clears *d. */
void softdev_free(struct softdev **d);

/* "softdev:<n>", lent. */
const char *softdev_path(const struct softdev *d);

/* 1 (default): reports uv=true and sets UV when asked; 0: no UV capability. */
void softdev_set_uv(struct softdev *d, int capable);
/* 0: the user never touches the key (requests fail with CTAP2_ERR_USER_ACTION_TIMEOUT). */
void softdev_set_presence(struct softdev *d, int present);
/* Attestation for makeCredential (default SOFTKEY_FMT_PACKED_SELF). */
void softdev_set_fmt(struct softdev *d, enum softkey_fmt fmt);

/*
 * Adds an existing credential (e.g. one enrolled through softkey_make_credential)
 * for rp_id. The device borrows k: the caller keeps it alive while d is used.
 * resident: returned for an empty allowList, with its user id.
 */
int softdev_add_key(struct softdev *d, struct softkey *k, const char *rp_id, const uint8_t *user_id,
                    size_t user_id_len, int resident);

/* Credentials on the device (added or made); lent. */
size_t softdev_count(const struct softdev *d);
struct softkey *softdev_key(const struct softdev *d, size_t i);

/* CTAP2 commands processed so far (any status). */
unsigned softdev_requests(const struct softdev *d);

/*
 * Persistence for demos and cross-process tests: softdev_save writes every
 * credential (PRIVATE keys included: test data only) as JSON, mode 0600;
 * softdev_load makes a new registered device owning those credentials
 * (NULL on failure; a missing file gives an empty device).
 */
int softdev_save(const struct softdev *d, const char *path);
struct softdev *softdev_load(const char *path);

/* libfido2 glue, static tables. */
const fido_dev_io_t *softdev_io(void);
const fido_dev_transport_t *softdev_transport(void);

/* Fills entry i of a fido_dev_info_new() list with d's path, io and transport. */
int softdev_info_set(struct softdev *d, fido_dev_info_t *list, size_t i);

#endif
