#include "buf.h"

#include <string.h>

void
buf_init(struct buf *b, const void *p, size_t len)
{
	b->p = p;
	b->len = p == NULL ? 0 : len;
	b->off = 0;
}

size_t
buf_remaining(const struct buf *b)
{
	return b->len - b->off;
}

const uint8_t *
buf_ptr(const struct buf *b)
{
	return b->p == NULL ? NULL : b->p + b->off;
}

int
buf_get_bytes(struct buf *b, size_t n, const uint8_t **p)
{
	if (n > buf_remaining(b))
		return AUTHD_ERR_TRUNCATED;
	*p = b->p + b->off;
	b->off += n;
	return 0;
}

int
buf_copy(struct buf *b, void *dst, size_t n)
{
	const uint8_t *p;

	TRY(buf_get_bytes(b, n, &p));
	if (n > 0)
		memcpy(dst, p, n);
	return 0;
}

int
buf_skip(struct buf *b, size_t n)
{
	const uint8_t *p;

	return buf_get_bytes(b, n, &p);
}

int
buf_get_u8(struct buf *b, uint8_t *v)
{
	const uint8_t *p;

	TRY(buf_get_bytes(b, 1, &p));
	*v = p[0];
	return 0;
}

int
buf_get_u16be(struct buf *b, uint16_t *v)
{
	const uint8_t *p;

	TRY(buf_get_bytes(b, 2, &p));
	*v = (uint16_t)((unsigned)p[0] << 8 | p[1]);
	return 0;
}

int
buf_get_u32be(struct buf *b, uint32_t *v)
{
	const uint8_t *p;

	TRY(buf_get_bytes(b, 4, &p));
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return 0;
}

int
buf_expect_end(const struct buf *b)
{
	return buf_remaining(b) == 0 ? 0 : AUTHD_ERR_BAD_REQUEST;
}

void
wbuf_init(struct wbuf *w, void *p, size_t cap)
{
	w->p = p;
	w->cap = p == NULL ? 0 : cap;
	w->len = 0;
}

int
wbuf_put_bytes(struct wbuf *w, const void *src, size_t n)
{
	if (n > w->cap - w->len)
		return AUTHD_ERR_TOO_LARGE;
	if (n > 0)
		memcpy(w->p + w->len, src, n);
	w->len += n;
	return 0;
}

int
wbuf_put_u8(struct wbuf *w, uint8_t v)
{
	return wbuf_put_bytes(w, &v, 1);
}

int
wbuf_put_u16be(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return wbuf_put_bytes(w, b, sizeof b);
}

int
wbuf_put_u32be(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	return wbuf_put_bytes(w, b, sizeof b);
}
