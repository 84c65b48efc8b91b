/*
 * Strict CBOR: before libcbor builds a tree from untrusted bytes, its
 * streaming decoder walks the input once so that depth, item counts,
 * indefinite lengths, tags and floats are refused without recursion.
 */
#include <string.h>

#include "fido2_int.h"

#define WALK_MAX_DEPTH 16

struct walk {
	const struct fido2_cbor_limits *lim;
	size_t stack[WALK_MAX_DEPTH]; /* children still expected per open container */
	size_t depth;
	size_t items;
	int bad;
	int done;
};

static void
walk_node(struct walk *w, size_t children)
{
	if (w->bad)
		return;
	if (w->done || ++w->items > w->lim->max_items || children > w->lim->max_items) {
		w->bad = 1;
		return;
	}
	if (w->depth > 0)
		w->stack[w->depth - 1]--;
	if (children > 0) {
		if (w->depth >= w->lim->max_depth || w->depth >= WALK_MAX_DEPTH) {
			w->bad = 1;
			return;
		}
		w->stack[w->depth++] = children;
	}
	while (w->depth > 0 && w->stack[w->depth - 1] == 0)
		w->depth--;
	if (w->depth == 0)
		w->done = 1;
}

static void
walk_refuse(void *ctx)
{
	((struct walk *)ctx)->bad = 1;
}

static void
walk_u8(void *ctx, uint8_t v)
{
	(void)v;
	walk_node(ctx, 0);
}

static void
walk_u16(void *ctx, uint16_t v)
{
	(void)v;
	walk_node(ctx, 0);
}

static void
walk_u32(void *ctx, uint32_t v)
{
	(void)v;
	walk_node(ctx, 0);
}

static void
walk_u64(void *ctx, uint64_t v)
{
	(void)v;
	walk_node(ctx, 0);
}

static void
walk_string(void *ctx, cbor_data data, size_t len)
{
	(void)data;
	(void)len;
	walk_node(ctx, 0);
}

static void
walk_array(void *ctx, size_t n)
{
	walk_node(ctx, n);
}

static void
walk_map(void *ctx, size_t n)
{
	struct walk *w = ctx;

	if (n > w->lim->max_items) {
		w->bad = 1;
		return;
	}
	walk_node(ctx, 2 * n);
}

static void
walk_tag(void *ctx, uint64_t v)
{
	(void)v;
	walk_refuse(ctx);
}

static void
walk_f4(void *ctx, float v)
{
	(void)v;
	walk_refuse(ctx);
}

static void
walk_f8(void *ctx, double v)
{
	(void)v;
	walk_refuse(ctx);
}

static void
walk_simple(void *ctx)
{
	struct walk *w = ctx;

	if (!w->lim->allow_simple)
		w->bad = 1;
	else
		walk_node(w, 0);
}

static void
walk_bool(void *ctx, bool v)
{
	(void)v;
	walk_simple(ctx);
}

static const struct cbor_callbacks walk_callbacks = {
    .uint8 = walk_u8,
    .uint16 = walk_u16,
    .uint32 = walk_u32,
    .uint64 = walk_u64,
    .negint8 = walk_u8,
    .negint16 = walk_u16,
    .negint32 = walk_u32,
    .negint64 = walk_u64,
    .byte_string_start = walk_refuse,
    .byte_string = walk_string,
    .string = walk_string,
    .string_start = walk_refuse,
    .indef_array_start = walk_refuse,
    .array_start = walk_array,
    .indef_map_start = walk_refuse,
    .map_start = walk_map,
    .tag = walk_tag,
    .float2 = walk_f4,
    .float4 = walk_f4,
    .float8 = walk_f8,
    .undefined = walk_refuse,
    .null = walk_simple,
    .boolean = walk_bool,
    .indef_break = walk_refuse,
};

int
fido2_cbor_check(const uint8_t *p, size_t len, const struct fido2_cbor_limits *lim, size_t *item_len,
                 const char *why, const char **reason)
{
	struct walk w;
	size_t off = 0;

	memset(&w, 0, sizeof w);
	w.lim = lim;
	*item_len = 0;
	if (p == NULL)
		FIDO2_REJECT(reason, why);
	while (!w.done) {
		struct cbor_decoder_result r = cbor_stream_decode(p + off, len - off, &walk_callbacks, &w);
		if (r.status != CBOR_DECODER_FINISHED || w.bad || r.read == 0 || r.read > len - off)
			FIDO2_REJECT(reason, why);
		off += r.read;
	}
	*item_len = off;
	return 0;
}

int
fido2_cbor_load_exact(const uint8_t *p, size_t len, const struct fido2_cbor_limits *lim, cbor_item_t **item,
                      const char *why, const char **reason)
{
	struct cbor_load_result res;
	size_t n;

	*item = NULL;
	TRY(fido2_cbor_check(p, len, lim, &n, why, reason));
	if (n != len)
		FIDO2_REJECT(reason, why); /* trailing bytes */
	*item = cbor_load(p, len, &res);
	if (*item == NULL) {
		if (res.error.code == CBOR_ERR_MEMERROR)
			return AUTHD_ERR_NOMEM;
		FIDO2_REJECT(reason, why);
	}
	if (res.read != len) {
		cbor_decref(item);
		FIDO2_REJECT(reason, why);
	}
	return 0;
}

int
fido2_cbor_int(const cbor_item_t *it, int64_t *v)
{
	uint64_t u;

	if (!cbor_isa_uint(it) && !cbor_isa_negint(it))
		return -1;
	u = cbor_get_int(it);
	if (u > INT64_MAX)
		return -1;
	*v = cbor_isa_uint(it) ? (int64_t)u : -1 - (int64_t)u;
	return 0;
}

int
fido2_cbor_text_is(const cbor_item_t *it, const char *s)
{
	size_t n = strlen(s);

	return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == n &&
	       memcmp(cbor_string_handle(it), s, n) == 0;
}
