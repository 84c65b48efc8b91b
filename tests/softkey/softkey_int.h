/* Internals shared by softkey.c and softdev.c; not for tests. */
#ifndef AUTHD_SOFTKEY_INT_H
#define AUTHD_SOFTKEY_INT_H

#include <cbor.h>

#include "softkey.h"

/* authenticatorData for k (attested: with AT credential data); caller frees *out. */
int softkey_auth_data(const struct softkey *k, const char *rp_id, unsigned flags, uint32_t counter,
                      int attested, const struct softkey_opts *o, uint8_t **out, size_t *len);

/* attStmt for fmt over ad || cdh; caller cbor_decref()s. */
cbor_item_t *softkey_att_stmt(const struct softkey *k, enum softkey_fmt fmt, const uint8_t *ad, size_t ad_len,
                              const uint8_t cdh[32], const struct softkey_opts *o);

#endif
