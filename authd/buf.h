/*
 * Bounded reader for untrusted bytes (OpenSSH sshbuf style), plus a bounded
 * writer for the few fixed layouts authd serializes itself.
 *
 * Every read checks the remaining length first and returns 0 or a negative
 * authd_err (AUTHD_ERR_TRUNCATED when the input ends early); a failed read
 * consumes nothing. Never index raw input by hand: take it through here.
 *
 * A struct buf lends the caller's bytes; it owns nothing and needs no free.
 * Threading: a buf is used by one thread at a time; no shared state.
 */
#ifndef AUTHD_BUF_H
#define AUTHD_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct buf {
	const uint8_t *p; /* lent, not freed */
	size_t len;
	size_t off;
};

/* Starts reading len bytes at p (p may be NULL when len is 0). */
void buf_init(struct buf *b, const void *p, size_t len);

/* Bytes left to read. */
size_t buf_remaining(const struct buf *b);

/* Read position pointer (lent); valid for buf_remaining() bytes. */
const uint8_t *buf_ptr(const struct buf *b);

int buf_get_u8(struct buf *b, uint8_t *v) AUTHD_WUR;
int buf_get_u16be(struct buf *b, uint16_t *v) AUTHD_WUR;
int buf_get_u32be(struct buf *b, uint32_t *v) AUTHD_WUR;

/* Lends the next n bytes through *p (caller does not free) and consumes them. */
int buf_get_bytes(struct buf *b, size_t n, const uint8_t **p) AUTHD_WUR;

/* Copies the next n bytes into dst and consumes them. */
int buf_copy(struct buf *b, void *dst, size_t n) AUTHD_WUR;

/* Consumes n bytes. */
int buf_skip(struct buf *b, size_t n) AUTHD_WUR;

/* 0 when every byte was consumed, AUTHD_ERR_BAD_REQUEST when bytes trail. */
int buf_expect_end(const struct buf *b) AUTHD_WUR;

/*
 * Bounded writer into a caller-provided array of cap bytes. Every put
 * checks the space left and returns AUTHD_ERR_TOO_LARGE when it runs out;
 * a failed put writes nothing.
 */
struct wbuf {
	uint8_t *p; /* lent, not freed */
	size_t cap;
	size_t len;
};

void wbuf_init(struct wbuf *w, void *p, size_t cap);
int wbuf_put_u8(struct wbuf *w, uint8_t v) AUTHD_WUR;
int wbuf_put_u16be(struct wbuf *w, uint16_t v) AUTHD_WUR;
int wbuf_put_u32be(struct wbuf *w, uint32_t v) AUTHD_WUR;
int wbuf_put_bytes(struct wbuf *w, const void *src, size_t n) AUTHD_WUR;

#endif
