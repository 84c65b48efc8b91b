/*
 * Small shared helpers: cleanup attributes, base64url (over OpenSSL's
 * encoder), hex, randomness, constant-time compare. Thread-safe.
 */
#ifndef AUTHD_UTIL_H
#define AUTHD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "err.h"

void util_free_ptr(void *pp);
void util_close_fd(int *fd);

/* Frees (after OPENSSL_cleanse of len bytes if len > 0) at scope exit. */
#define AUTO_FREE __attribute__((cleanup(util_free_ptr)))
#define AUTO_CLOSE __attribute__((cleanup(util_close_fd)))

/* Zeroes len bytes in a way the compiler cannot elide. */
void util_wipe(void *p, size_t len);

/* Frees a secret buffer after wiping it; NULL-safe; clears *p. */
void util_free_secret(uint8_t **p, size_t len);

/*
 * jansson's free, installed by authd's main (json_set_alloc_funcs, with
 * plain malloc) before any thread: wipes a block of at least
 * UTIL_JSON_WIPE_MIN usable bytes (malloc_usable_size) before free(), so the
 * base64 face images of a request, and the lexer's buffers that held them,
 * never go back to the heap readable. Smaller blocks are freed as they are:
 * see util.c for why the threshold. NULL-safe.
 */
#define UTIL_JSON_WIPE_MIN 256
void util_json_free_wipe(void *p);
/* The same, ending in release(p) instead of free(p): lets a test look at the wiped block. */
void util_json_free_wipe_with(void *p, void (*release)(void *));

/*
 * base64url without padding (RFC 4648 section 5).
 * b64url_encode: caller frees the returned NUL-terminated string.
 * b64url_decode: rejects padding, whitespace and non-alphabet bytes,
 * and inputs longer than max_out decoded bytes; caller frees *out.
 */
char *b64url_encode(const uint8_t *in, size_t len) AUTHD_WUR;
int b64url_decode(const char *in, size_t in_len, size_t max_out, uint8_t **out, size_t *out_len) AUTHD_WUR;

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const uint8_t *in, size_t len, char *out);
int hex_decode(const char *in, uint8_t *out, size_t out_len) AUTHD_WUR;

/* Cryptographically secure random bytes (OpenSSL RAND_bytes). */
int util_random(uint8_t *out, size_t len) AUTHD_WUR;

/* Constant-time equality: 1 when equal. Lengths are not secret. */
int util_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Unix seconds, wall clock. */
int64_t util_now(void);
/* Monotonic nanoseconds. */
uint64_t util_mono_ns(void);

/* SHA-256 of len bytes into out[32]. */
int util_sha256(const void *in, size_t len, uint8_t out[32]) AUTHD_WUR;
/* SHA-256 for EVP calls: fetched once after util_crypto_init(), else the implicit one. */
const EVP_MD *util_sha256_md(void);
/* authd's main only: fetch (and at exit free) the algorithms used per request. */
int util_crypto_init(void) AUTHD_WUR;
void util_crypto_done(void);

/* Reads a whole file up to max bytes; caller frees *out. */
int util_read_file(const char *path, size_t max, uint8_t **out, size_t *len) AUTHD_WUR;
/* Writes a file atomically (tmp + fsync + rename + dir fsync) with mode. */
int util_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode) AUTHD_WUR;
/* fsync of the directory holding path: a new or renamed file's name is durable only then (0 or AUTHD_ERR_IO).
 */
int util_sync_dir_of(const char *path);

/* 1 when s is valid UTF-8 of len bytes with no NUL and no C0 control char. */
int util_is_clean_utf8(const char *s, size_t len);

#endif
