/*
 * Encryption of enrolled records (face templates, FIDO2 credentials) at
 * rest: AES-256-GCM under a 32-byte key in STATE_DIR/template.key (0600,
 * generated on first start, refused when group/world accessible). The
 * associated data binds a record to its subject, method and id, so a
 * template cannot be moved to another customer. Thread-safe.
 *
 * Sealed format: 0x01 | nonce[12] | ciphertext | tag[16].
 */
#ifndef AUTHD_TMPL_H
#define AUTHD_TMPL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct tmpl_key;

int tmpl_key_load(const char *state_dir, struct tmpl_key **out, char *err, size_t errlen) AUTHD_WUR;
/* A key from raw bytes (tests). */
int tmpl_key_from_bytes(const uint8_t key[32], struct tmpl_key **out) AUTHD_WUR;
void tmpl_key_free(struct tmpl_key **k);

/* Caller frees *out (not secret). */
int tmpl_seal(const struct tmpl_key *k, const char *subject, const char *method, const uint8_t *id, size_t id_len,
              const uint8_t *plain, size_t len, uint8_t **out, size_t *out_len) AUTHD_WUR;
/* Caller frees *out with util_free_secret(out, *out_len). AUTHD_ERR_TAMPERED on any mismatch. */
int tmpl_open(const struct tmpl_key *k, const char *subject, const char *method, const uint8_t *id, size_t id_len,
              const uint8_t *sealed, size_t len, uint8_t **out, size_t *out_len) AUTHD_WUR;

#endif
