#include "proto.h"

#include <stdio.h>
#include <string.h>

#include "token.h"
#include "util.h"

int
proto_frame_peek(const uint8_t *buf, size_t len, size_t max_frame, size_t *payload_len)
{
	if (len < PROTO_HDR_LEN)
		return 0;
	uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	if (n > max_frame)
		return AUTHD_ERR_TOO_LARGE;
	if (n == 0)
		return AUTHD_ERR_BAD_REQUEST;
	if (len - PROTO_HDR_LEN < n)
		return 0;
	*payload_len = n;
	return 1;
}

void
proto_req_clear(struct proto_req *req)
{
	json_decref(req->root);
	memset(req, 0, sizeof *req);
}

int
proto_parse(const uint8_t *payload, size_t len, struct proto_req *req, char *msg, size_t msglen)
{
	json_error_t jerr;
	memset(req, 0, sizeof *req);
	/* jansson rejects invalid UTF-8 and \u0000; duplicate keys are refused too. */
	req->root = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req->root == NULL) {
		/* jansson's text may quote the input, cut mid-character: never echo it unless it is clean. */
		if (util_is_clean_utf8(jerr.text, strlen(jerr.text)))
			snprintf(msg, msglen, "invalid JSON: %s at byte %d", jerr.text, jerr.position);
		else
			snprintf(msg, msglen, "invalid JSON at byte %d", jerr.position);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (!json_is_object(req->root)) {
		snprintf(msg, msglen, "request must be a JSON object");
		return AUTHD_ERR_BAD_REQUEST;
	}
	json_t *id = json_object_get(req->root, "id");
	if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > PROTO_MAX_ID ||
	    !util_is_clean_utf8(json_string_value(id), json_string_length(id))) {
		snprintf(msg, msglen, "'id' must be a non-empty string of at most %d characters", PROTO_MAX_ID);
		return AUTHD_ERR_BAD_REQUEST;
	}
	memcpy(req->id, json_string_value(id), json_string_length(id) + 1);
	json_t *v = json_object_get(req->root, "v");
	if (!json_is_integer(v)) {
		snprintf(msg, msglen, "'v' must be the integer %d", PROTO_VERSION);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (json_integer_value(v) != PROTO_VERSION) {
		snprintf(msg, msglen, "protocol version %lld is not supported (this is v%d)",
		         (long long)json_integer_value(v), PROTO_VERSION);
		return AUTHD_ERR_UNSUPPORTED;
	}
	json_t *op = json_object_get(req->root, "op");
	if (!json_is_string(op) || json_string_length(op) == 0 || json_string_length(op) > 64) {
		snprintf(msg, msglen, "'op' must be a non-empty string");
		return AUTHD_ERR_BAD_REQUEST;
	}
	req->op = json_string_value(op);
	return 0;
}

json_t *
proto_reply_ok(const char *id, json_t *body)
{
	json_t *r = body ? body : json_object();
	if (r == NULL)
		return NULL;
	if (json_object_set_new(r, "v", json_integer(PROTO_VERSION)) != 0 ||
	    json_object_set_new(r, "id", id && id[0] ? json_string(id) : json_null()) != 0 ||
	    json_object_set_new(r, "ok", json_true()) != 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

json_t *
proto_reply_err(const char *id, int err, const char *msg)
{
	return json_pack("{s:i,s:o,s:b,s:{s:s,s:s}}", "v", PROTO_VERSION, "id",
	                 id && id[0] ? json_string(id) : json_null(), "ok", 0, "error", "code",
	                 authd_wire_code(err), "message", msg && msg[0] ? msg : authd_strerror(err));
}

struct outbuf {
	uint8_t *buf;
	size_t len, cap;
	int failed;
};

static int
outbuf_add(const char *data, size_t n, void *arg)
{
	struct outbuf *b = arg;
	if (n > UINT32_MAX - b->len) {
		b->failed = AUTHD_ERR_TOO_LARGE;
		return -1;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *nb = realloc(b->buf, cap);
		if (nb == NULL) {
			b->failed = AUTHD_ERR_NOMEM;
			return -1;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	return 0;
}

const char *
proto_json_text(const json_t *v, size_t flags, char *buf, size_t cap, char **heap, size_t *len)
{
	*heap = NULL;
	*len = json_dumpb(v, buf, cap, JSON_COMPACT | flags);
	if (*len == 0)
		return NULL;
	if (*len <= cap)
		return buf;
	/* too long for buf: jansson counted it; dump again into the heap */
	if ((*heap = json_dumps(v, JSON_COMPACT | flags)) == NULL) {
		*len = 0;
		return NULL;
	}
	*len = strlen(*heap);
	return *heap;
}

/* base64url and '.': the JWS compact alphabet, none of which JSON escapes */
static int
jws_compact_ok(const char *t, size_t n)
{
	if (n == 0 || n > TOKEN_MAX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

int
proto_encode_token(const json_t *obj, const char *token, uint8_t **out, size_t *len)
{
	/* One serialisation pass into a buffer that grows; the length prefix is filled in after. */
	struct outbuf b = {.len = PROTO_HDR_LEN};
	int r = 0;
	*out = NULL;
	*len = 0;
	if (token == NULL)
		r = json_dump_callback(obj, outbuf_add, &b, JSON_COMPACT);
	else {
		size_t n = strlen(token);
		static const char key[] = "\"token\":\"";
		if (!json_is_object(obj) || json_object_get(obj, "token") != NULL ||
		    !jws_compact_ok(token, n)) {
			free(b.buf);
			return AUTHD_ERR_INTERNAL;
		}
		/* {members,"token":"..."}: JSON_EMBED leaves out the object's braces */
		r = outbuf_add("{", 1, &b) ||
		    json_dump_callback(obj, outbuf_add, &b, JSON_COMPACT | JSON_EMBED) ||
		    (json_object_size(obj) > 0 && outbuf_add(",", 1, &b)) ||
		    outbuf_add(key, sizeof key - 1, &b) || outbuf_add(token, n, &b) ||
		    outbuf_add("\"}", 2, &b);
	}
	if (r != 0 || b.len == PROTO_HDR_LEN) {
		free(b.buf);
		return b.failed == AUTHD_ERR_NOMEM ? AUTHD_ERR_NOMEM : AUTHD_ERR_INTERNAL;
	}
	size_t n = b.len - PROTO_HDR_LEN;
	b.buf[0] = (uint8_t)(n >> 24);
	b.buf[1] = (uint8_t)(n >> 16);
	b.buf[2] = (uint8_t)(n >> 8);
	b.buf[3] = (uint8_t)n;
	*out = b.buf;
	*len = b.len;
	return 0;
}

int
proto_encode(const json_t *v, uint8_t **out, size_t *len)
{
	return proto_encode_token(v, NULL, out, len);
}
