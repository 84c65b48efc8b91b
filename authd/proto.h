/*
 * Wire protocol v1 (DESIGN.md section 4): the one parser for frames and the
 * request envelope, and the reply encoder. Pure functions; thread-safe.
 */
#ifndef AUTHD_PROTO_H
#define AUTHD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define PROTO_VERSION 1
#define PROTO_HDR_LEN 4
#define PROTO_MAX_ID 128
#define PROTO_DEFAULT_MAX_FRAME (8u << 20)

/*
 * Looks at buffered bytes: returns 0 when a whole frame is not there yet,
 * 1 with *payload_len set when buf holds PROTO_HDR_LEN + *payload_len bytes
 * of a frame, AUTHD_ERR_TOO_LARGE when the announced length exceeds
 * max_frame, AUTHD_ERR_BAD_REQUEST for a zero length.
 */
int proto_frame_peek(const uint8_t *buf, size_t len, size_t max_frame, size_t *payload_len);

struct proto_req {
	json_t *root;   /* owned; free with proto_req_clear */
	char id[PROTO_MAX_ID + 1];
	const char *op; /* borrowed from root */
};

/*
 * Parses a frame payload into the envelope. On error, req->id holds the
 * request id when it could be read ("" otherwise) and msg says why.
 */
int proto_parse(const uint8_t *payload, size_t len, struct proto_req *req, char *msg, size_t msglen) AUTHD_WUR;
void proto_req_clear(struct proto_req *req);

/* Reply envelopes. body (stolen) holds the op's fields; NULL for none. */
json_t *proto_reply_ok(const char *id, json_t *body);
json_t *proto_reply_err(const char *id, int err, const char *msg);

/*
 * The compact JSON text of v (JSON_COMPACT | flags), for any caller (token
 * claims, audit records): in buf when it fits in cap bytes, else in *heap,
 * which the caller frees (NULL when buf was used). Not NUL-terminated; *len
 * is its length. NULL on error (invalid UTF-8 in v, out of memory).
 */
const char *proto_json_text(const json_t *v, size_t flags, char *buf, size_t cap, char **heap, size_t *len);

/* Serialises a JSON value as one frame (length prefix + compact JSON). Caller frees *out. */
int proto_encode(const json_t *v, uint8_t **out, size_t *len) AUTHD_WUR;

/*
 * proto_encode of the object obj plus a last member "token" whose value is a
 * JWS compact serialisation: base64url and '.', which JSON never escapes, so
 * it is copied as is rather than through jansson's per-character string
 * writer (a token is most of an approval's reply). Anything outside that
 * alphabet, an empty token or one over TOKEN_MAX_LEN is refused
 * (AUTHD_ERR_INTERNAL), as is an obj that already has "token". token NULL:
 * proto_encode(obj).
 */
int proto_encode_token(const json_t *obj, const char *token, uint8_t **out, size_t *len) AUTHD_WUR;

#endif
