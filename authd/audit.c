#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "store.h"
#include "util.h"

const char AUDIT_GENESIS[65] = "0000000000000000000000000000000000000000000000000000000000000000";

static json_t *
str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/*
 * The canonical object: every field but prev and hash, its keys inserted in
 * sorted order, so that dumping it in insertion order (no JSON_SORT_KEYS:
 * no sort per record on the writer thread) gives the sorted-key text.
 */
static json_t *
canonical_obj(const struct audit_rec *r)
{
	json_t *reasons = NULL;
	if (r->reasons_json != NULL) {
		if (!json_is_array(r->reasons_json))
			return NULL;
		reasons = json_incref(r->reasons_json);
	} else if (r->reasons != NULL) {
		reasons = json_loads(r->reasons, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_array(reasons)) {
			json_decref(reasons);
			return NULL;
		}
	} else
		reasons = json_array();
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:o,s:o}", "account", str_or_null(r->account),
	                 "actor", str_or_null(r->actor), "customer", str_or_null(r->customer), "jti",
	                 str_or_null(r->jti), "method", str_or_null(r->method), "reasons", reasons, "result",
	                 str_or_null(r->result), "seq", (json_int_t)r->seq, "ts", (json_int_t)r->ts,
	                 "txn_hash", str_or_null(r->txn_hash), "type", str_or_null(r->type));
}

/* hash = SHA-256(prev || canonical text), hex. */
static int
hash_canonical(const char *prev_hex, const json_t *obj, char out_hex[65])
{
	uint8_t prev[32], md[32];
	unsigned int mdlen = 0;
	int r = AUTHD_ERR_CRYPTO;

	if (hex_decode(prev_hex, prev, sizeof prev) < 0)
		return AUTHD_ERR_TAMPERED;
	char buf[4096], *heap;
	size_t n;
	const char *text = proto_json_text(obj, JSON_PRESERVE_ORDER, buf, sizeof buf, &heap, &n);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (text == NULL || ctx == NULL)
		r = AUTHD_ERR_NOMEM;
	else if (EVP_DigestInit_ex(ctx, util_sha256_md(), NULL) == 1 &&
	         EVP_DigestUpdate(ctx, prev, sizeof prev) == 1 && EVP_DigestUpdate(ctx, text, n) == 1 &&
	         EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
		hex_encode(md, 32, out_hex);
		r = 0;
	}
	EVP_MD_CTX_free(ctx);
	free(heap);
	return r;
}

int
audit_hash(const char *prev_hex, const struct audit_rec *rec, char out_hex[65])
{
	json_t *obj = canonical_obj(rec);
	if (obj == NULL)
		return AUTHD_ERR_BAD_REQUEST;
	int r = hash_canonical(prev_hex, obj, out_hex);
	json_decref(obj);
	return r;
}

json_t *
audit_rec_to_json(const struct audit_rec *rec)
{
	json_t *obj = canonical_obj(rec);
	if (obj == NULL)
		return NULL;
	if (json_object_set_new(obj, "prev", json_string(rec->prev)) != 0 ||
	    json_object_set_new(obj, "hash", json_string(rec->hash)) != 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

struct verify_walk {
	struct audit_verify_result *res;
	int64_t expect_seq;
	char prev[65];
};

static int
verify_cb(const struct audit_rec *rec, void *arg)
{
	struct verify_walk *w = arg;
	char h[65];

	if (rec->seq != w->expect_seq) {
		snprintf(w->res->why, sizeof w->res->why, "sequence gap: expected %lld, found %lld",
		         (long long)w->expect_seq, (long long)rec->seq);
		w->res->first_bad_seq = w->expect_seq;
		return 1;
	}
	if (strcmp(rec->prev, w->prev) != 0) {
		snprintf(w->res->why, sizeof w->res->why, "prev does not link to the preceding record");
		w->res->first_bad_seq = rec->seq;
		return 1;
	}
	if (audit_hash(rec->prev, rec, h) < 0 || strcmp(h, rec->hash) != 0) {
		snprintf(w->res->why, sizeof w->res->why, "hash does not match the record's content");
		w->res->first_bad_seq = rec->seq;
		return 1;
	}
	memcpy(w->prev, rec->hash, 65);
	w->expect_seq++;
	w->res->records++;
	return 0;
}

static int
verify_fn(struct store_tx *tx, void *arg)
{
	struct verify_walk *w = arg;
	return store_audit_scan(tx, 1, verify_cb, w);
}

int
audit_verify_store(struct store *s, struct audit_verify_result *res)
{
	struct verify_walk w = {res, 1, ""};
	memset(res, 0, sizeof *res);
	memcpy(w.prev, AUDIT_GENESIS, 65);
	int r = store_read(s, verify_fn, &w);
	if (r < 0)
		return r;
	res->valid = res->first_bad_seq == 0;
	res->head_seq = w.expect_seq - 1;
	memcpy(res->head_hash, w.prev, 65);
	return 0;
}

int
audit_check_json(const json_t *rec, char *why, size_t whylen)
{
	static const char *const text_fields[] = {"type", "customer", "account", "txn_hash", "result",
	                                          "method", "jti", "actor"};
	json_t *copy = NULL;
	char h[65];
	int r = AUTHD_ERR_TAMPERED;

	if (!json_is_object(rec) || !json_is_integer(json_object_get(rec, "seq")) ||
	    !json_is_integer(json_object_get(rec, "ts")) || !json_is_array(json_object_get(rec, "reasons")) ||
	    !json_is_string(json_object_get(rec, "prev")) || !json_is_string(json_object_get(rec, "hash"))) {
		snprintf(why, whylen, "record is not of the audit record form");
		return AUTHD_ERR_TAMPERED;
	}
	for (size_t i = 0; i < sizeof text_fields / sizeof text_fields[0]; i++) {
		json_t *v = json_object_get(rec, text_fields[i]);
		if (v == NULL || !(json_is_string(v) || json_is_null(v))) {
			snprintf(why, whylen, "field '%s' missing or not text", text_fields[i]);
			return AUTHD_ERR_TAMPERED;
		}
	}
	if ((copy = json_deep_copy(rec)) == NULL)
		return AUTHD_ERR_NOMEM;
	const char *prev = json_string_value(json_object_get(rec, "prev"));
	const char *hash = json_string_value(json_object_get(rec, "hash"));
	json_object_del(copy, "prev");
	json_object_del(copy, "hash");
	if (json_object_size(copy) != 11) {
		snprintf(why, whylen, "record has unexpected fields");
		goto out;
	}
	if (hash_canonical(prev, copy, h) < 0 || strcmp(h, hash) != 0) {
		snprintf(why, whylen, "hash does not match the record's content");
		goto out;
	}
	r = 0;
out:
	json_decref(copy);
	return r;
}
