/*
 * FIDO2 / WebAuthn authenticator plugin: registration (attestation `none`
 * and `packed`) and assertion verification per WebAuthn Level 3 sections
 * 7.1 and 7.2, signatures checked by libfido2's fido_assert_verify.
 *
 * The host lends the issued challenge, the relying party id, the allowed
 * origins and (for verify) the subject's active records that were offered
 * in allow_credentials. Every failed check is reported as a verdict of
 * DENY with one stable reason (docs/fido2.md); a negative return means the
 * plugin could not decide (allocation, library failure, damaged record).
 *
 * User handle: the user.id authd registers credentials under is the raw
 * bytes of the subject string (customer id, or "staff:<user>"), so a
 * userHandle returned in an assertion must equal those bytes.
 *
 * Threading: enroll and verify may run concurrently on any thread; the
 * only shared state is the key-object cache, which locks itself.
 */
#include <stdlib.h>
#include <string.h>

#include <fido.h>
#include <jansson.h>
#include <syslog.h>

#include "authd_plugin.h"
#include "fido2_int.h"
#include "util.h"

#define FIDO2_KEYCACHE_SLOTS 4096

struct fido2_state {
	const struct authd_plugin_host *host;
	struct fido2_keycache *keys; /* thread-safe */
};

/* One base64url field of the request object. */
struct req_field {
	const char *name;
	size_t max;
	int optional;
	uint8_t *data; /* decoded, caller frees */
	size_t len;
	int present;
};

static void
req_fields_free(struct req_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].data);
		f[i].data = NULL;
	}
}

static int
req_fields_parse(const char *json, size_t len, struct req_field *f, size_t n, const char **reason)
{
	json_t *root = NULL;
	json_error_t jerr;
	int r = AUTHD_ERR_BAD_REQUEST;

	if (json == NULL || len == 0 || len > FIDO2_MAX_REQUEST)
		FIDO2_REJECT(reason, FIDO2_R_MALFORMED_REQUEST);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root) || json_object_size(root) > 16)
		goto reject;
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(root, f[i].name);
		if ((v == NULL || json_is_null(v)) && f[i].optional)
			continue;
		if (!json_is_string(v))
			goto reject;
		if (f[i].optional && json_string_length(v) == 0)
			continue; /* some browsers send an empty userHandle for "none" */
		r = b64url_decode(json_string_value(v), json_string_length(v), f[i].max, &f[i].data,
		                  &f[i].len);
		if (r == AUTHD_ERR_NOMEM)
			goto out;
		if (r != 0 || f[i].len == 0)
			goto reject;
		f[i].present = 1;
	}
	r = 0;
	goto out;
reject:
	*reason = FIDO2_R_MALFORMED_REQUEST;
	r = AUTHD_ERR_BAD_REQUEST;
out:
	json_decref(root);
	return r;
}

static void
add_reason(const char **reasons, size_t *n, const char *reason)
{
	if (*n < AUTHD_PLUGIN_MAX_REASONS)
		reasons[(*n)++] = reason;
}

/* ---- registration ---- */

static const struct fido2_cbor_limits att_obj_limits = {.max_depth = 4, .max_items = 64, .allow_simple = 0};

static int
enroll_attestation(const struct authd_enroll_in *in, const uint8_t *att, size_t att_len,
                   const uint8_t cdh[32], const uint8_t *cred_id, size_t cred_id_len,
                   struct fido2_record *rec, const char **reason)
{
	cbor_item_t *obj = NULL;
	const cbor_item_t *fmt = NULL, *stmt = NULL, *ad_item = NULL;
	struct cbor_pair *pairs;
	struct fido2_authdata ad;
	enum fido2_fmt kind = FIDO2_FMT_NONE;
	int r;

	TRY(fido2_cbor_load_exact(att, att_len, &att_obj_limits, &obj, FIDO2_R_MALFORMED_ATTESTATION,
	                          reason));
	r = AUTHD_ERR_BAD_REQUEST;
	*reason = FIDO2_R_MALFORMED_ATTESTATION;
	if (!cbor_isa_map(obj) || cbor_map_size(obj) != 3)
		goto out;
	pairs = cbor_map_handle(obj);
	for (size_t i = 0; i < 3; i++) {
		if (fido2_cbor_text_is(pairs[i].key, "fmt") && fmt == NULL)
			fmt = pairs[i].value;
		else if (fido2_cbor_text_is(pairs[i].key, "attStmt") && stmt == NULL)
			stmt = pairs[i].value;
		else if (fido2_cbor_text_is(pairs[i].key, "authData") && ad_item == NULL)
			ad_item = pairs[i].value;
		else
			goto out; /* unknown or duplicate key */
	}
	if (fmt == NULL || !cbor_isa_string(fmt) || stmt == NULL || !cbor_isa_map(stmt) || ad_item == NULL ||
	    !cbor_isa_bytestring(ad_item))
		goto out;
	*reason = NULL;
	if ((r = fido2_authdata_parse(cbor_bytestring_handle(ad_item), cbor_bytestring_length(ad_item), 1,
	                              &ad, reason)) != 0 ||
	    (r = fido2_authdata_check(&ad, in->rp_id, (in->flags & AUTHD_VERIFY_UV_REQUIRED) != 0, reason)) !=
	        0)
		goto out;
	if (ad.cred_id_len != cred_id_len || memcmp(ad.cred_id, cred_id, cred_id_len) != 0) {
		*reason = FIDO2_R_CRED_ID_MISMATCH;
		r = AUTHD_ERR_BAD_REQUEST;
		goto out;
	}
	if ((r = fido2_attest_verify((const char *)cbor_string_handle(fmt), cbor_string_length(fmt), stmt,
	                             cbor_bytestring_handle(ad_item), cbor_bytestring_length(ad_item), cdh,
	                             &ad, &kind, reason)) != 0)
		goto out;
	memset(rec, 0, sizeof *rec);
	rec->flags = (uint8_t)(((ad.flags & FIDO2_AD_BE) ? FIDO2_REC_BE : 0) |
	                       ((ad.flags & FIDO2_AD_BS) ? FIDO2_REC_BS : 0) |
	                       ((ad.flags & FIDO2_AD_UV) ? FIDO2_REC_UV_INIT : 0));
	rec->fmt = (uint8_t)kind;
	rec->sign_count = ad.sign_count;
	memcpy(rec->aaguid, ad.aaguid, sizeof rec->aaguid);
	rec->pk = ad.pk;
	r = 0;
out:
	cbor_decref(&obj);
	return r;
}

static char *
enroll_info_json(const struct fido2_record *rec, const uint8_t *cred_id, size_t cred_id_len)
{
	static const char *const fmt_names[] = {"none", "packed", "packed"};
	static const char *const att_types[] = {"none", "self", "basic"};
	char aaguid[37], hex[33], *id = NULL, *text = NULL;
	json_t *o = NULL;

	hex_encode(rec->aaguid, sizeof rec->aaguid, hex);
	memcpy(aaguid, hex, 8);
	aaguid[8] = '-';
	memcpy(aaguid + 9, hex + 8, 4);
	aaguid[13] = '-';
	memcpy(aaguid + 14, hex + 12, 4);
	aaguid[18] = '-';
	memcpy(aaguid + 19, hex + 16, 4);
	aaguid[23] = '-';
	memcpy(aaguid + 24, hex + 20, 12);
	aaguid[36] = '\0';
	if ((id = b64url_encode(cred_id, cred_id_len)) == NULL)
		goto out;
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:b, s:b}", "credential_id", id, "aaguid", aaguid,
	              "fmt", fmt_names[rec->fmt % 3], "attestation_type", att_types[rec->fmt % 3], "alg",
	              (json_int_t)rec->pk.alg, "user_verified", (rec->flags & FIDO2_REC_UV_INIT) != 0,
	              "backup_eligible", (rec->flags & FIDO2_REC_BE) != 0, "backup_state",
	              (rec->flags & FIDO2_REC_BS) != 0);
	if (o != NULL)
		text = json_dumps(o, JSON_COMPACT);
out:
	free(id);
	json_decref(o);
	return text;
}

static int
fido2_enroll(void *state, const struct authd_enroll_in *in, struct authd_enroll_out *out)
{
	struct req_field f[] = {
	    {.name = "credential_id", .max = FIDO2_MAX_CRED_ID},
	    {.name = "client_data_json", .max = FIDO2_MAX_CLIENT_DATA},
	    {.name = "attestation_object", .max = FIDO2_MAX_ATT_OBJ},
	};
	struct fido2_record rec;
	struct authd_new_record *nr;
	const char *reason = NULL;
	uint8_t cdh[32];
	int r;

	(void)state;
	if (out == NULL || out->size < sizeof *out)
		return AUTHD_ERR_INTERNAL;
	out->verdict = AUTHD_VERDICT_DENY;
	if (in == NULL || in->size < sizeof *in || in->rp_id == NULL || in->challenge == NULL ||
	    in->challenge_len == 0 || out->n_records >= AUTHD_PLUGIN_MAX_RECORDS)
		return AUTHD_ERR_INTERNAL;
	if ((r = req_fields_parse(in->request_json, in->request_len, f, 3, &reason)) != 0)
		goto out;
	if ((r = fido2_client_data_check(f[1].data, f[1].len, "webauthn.create", in->challenge,
	                                 in->challenge_len, in->origins, in->n_origins, &reason)) != 0)
		goto out;
	if ((r = util_sha256(f[1].data, f[1].len, cdh)) != 0)
		goto out;
	if ((r = enroll_attestation(in, f[2].data, f[2].len, cdh, f[0].data, f[0].len, &rec, &reason)) != 0)
		goto out;
	nr = &out->records[out->n_records];
	if ((r = fido2_record_encode(&rec, &nr->data, &nr->data_len)) != 0)
		goto out;
	if ((out->info_json = enroll_info_json(&rec, f[0].data, f[0].len)) == NULL) {
		util_free_secret(&nr->data, nr->data_len);
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	nr->id = f[0].data;
	nr->id_len = f[0].len;
	f[0].data = NULL;
	out->n_records++;
	out->verdict = AUTHD_VERDICT_APPROVE;
out:
	if (r != 0 && reason != NULL)
		add_reason(out->reasons, &out->n_reasons, reason);
	if (r == AUTHD_ERR_BAD_REQUEST && reason != NULL)
		r = 0; /* a verdict: the client's input was refused */
	req_fields_free(f, 3);
	return r;
}

/* ---- assertion ---- */

static int
assert_signature(struct fido2_state *st, const struct authd_verify_in *in, const struct fido2_record *rec,
                 const uint8_t cdh[32], const uint8_t *ad, size_t ad_len, const uint8_t *sig, size_t sig_len,
                 const char **reason)
{
	fido_assert_t *a = NULL;
	struct fido2_keyref key;
	int r, fr;

	if ((r = fido2_keycache_get(st != NULL ? st->keys : NULL, &rec->pk, &key)) != 0)
		return r == AUTHD_ERR_CRYPTO ? AUTHD_ERR_TAMPERED : r; /* stored key no longer loads */
	if ((a = fido_assert_new()) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	r = AUTHD_ERR_INTERNAL;
	if (fido_assert_set_count(a, 1) != FIDO_OK ||
	    fido_assert_set_clientdata_hash(a, cdh, 32) != FIDO_OK ||
	    fido_assert_set_rp(a, in->rp_id) != FIDO_OK || fido_assert_set_up(a, FIDO_OPT_TRUE) != FIDO_OK ||
	    fido_assert_set_uv(a, (in->flags & AUTHD_VERIFY_UV_REQUIRED) ? FIDO_OPT_TRUE : FIDO_OPT_OMIT) !=
	        FIDO_OK)
		goto out;
	if (fido_assert_set_authdata_raw(a, 0, ad, ad_len) != FIDO_OK) {
		*reason = FIDO2_R_MALFORMED_AUTH_DATA;
		r = AUTHD_ERR_BAD_REQUEST;
		goto out;
	}
	if (fido_assert_set_sig(a, 0, sig, sig_len) != FIDO_OK)
		goto out;
	fr = fido_assert_verify(a, 0, rec->pk.alg, key.pk);
	if (fr == FIDO_OK) {
		r = 0;
	} else if (fr == FIDO_ERR_INVALID_SIG || fr == FIDO_ERR_INVALID_PARAM) {
		*reason = FIDO2_R_BAD_SIGNATURE;
		r = AUTHD_ERR_BAD_REQUEST;
	}
out:
	fido_assert_free(&a);
	fido2_keycache_put(st != NULL ? st->keys : NULL, &key);
	return r;
}

static int
verify_run(struct fido2_state *st, const struct authd_verify_in *in, struct authd_verify_out *out,
           struct req_field *f, struct fido2_record *rec, struct fido2_authdata *ad, const char **reason)
{
	const struct req_field *id = &f[0], *adf = &f[1], *cdj = &f[2], *sig = &f[3], *uh = &f[4];
	uint8_t cdh[32];
	int uv_required = (in->flags & AUTHD_VERIFY_UV_REQUIRED) != 0;

	TRY(req_fields_parse(in->request_json, in->request_len, f, 5, reason));
	/* 7.2 steps 5-6: the credential is one of those offered to this subject. */
	for (size_t i = 0; i < in->n_records; i++) {
		const struct authd_record *cand = &in->records[i];
		if (cand->id != NULL && cand->id_len == id->len && memcmp(cand->id, id->data, id->len) == 0) {
			out->record_index = (long)i;
			break;
		}
	}
	if (out->record_index < 0)
		FIDO2_REJECT(reason, FIDO2_R_UNKNOWN_CREDENTIAL);
	if (fido2_record_decode(in->records[out->record_index].data, in->records[out->record_index].data_len,
	                        rec) != 0) {
		*reason = FIDO2_R_BAD_RECORD;
		return AUTHD_ERR_TAMPERED;
	}
	if (uh->present && !util_ct_equal(uh->data, uh->len, in->subject, strlen(in->subject)))
		FIDO2_REJECT(reason, FIDO2_R_USER_HANDLE_MISMATCH);
	/* 7.2 steps 10-15: clientDataJSON as received. */
	TRY(fido2_client_data_check(cdj->data, cdj->len, "webauthn.get", in->challenge, in->challenge_len,
	                            in->origins, in->n_origins, reason));
	/* 7.2 steps 15-18: authenticatorData. */
	TRY(fido2_authdata_parse(adf->data, adf->len, 0, ad, reason));
	TRY(fido2_authdata_check(ad, in->rp_id, uv_required, reason));
	if (((ad->flags & FIDO2_AD_BE) != 0) != ((rec->flags & FIDO2_REC_BE) != 0))
		FIDO2_REJECT(reason, FIDO2_R_BACKUP_ELIGIBILITY_CHANGED);
	/* 7.2 steps 19-21: signature over authenticatorData || SHA-256(clientDataJSON). */
	TRY(util_sha256(cdj->data, cdj->len, cdh));
	TRY(assert_signature(st, in, rec, cdh, adf->data, adf->len, sig->data, sig->len, reason));
	/* 7.2 step 22: signature counter. */
	if ((rec->sign_count != 0 || ad->sign_count != 0) && ad->sign_count <= rec->sign_count) {
		out->disable_record = 1;
		FIDO2_REJECT(reason, FIDO2_R_CLONED);
	}
	return 0;
}

static int
fido2_verify(void *state, const struct authd_verify_in *in, struct authd_verify_out *out)
{
	struct req_field f[] = {
	    {.name = "credential_id", .max = FIDO2_MAX_CRED_ID},
	    {.name = "authenticator_data", .max = FIDO2_MAX_AUTH_DATA},
	    {.name = "client_data_json", .max = FIDO2_MAX_CLIENT_DATA},
	    {.name = "signature", .max = FIDO2_MAX_SIG},
	    {.name = "user_handle", .max = FIDO2_MAX_USER_HANDLE, .optional = 1},
	};
	struct fido2_record rec;
	struct fido2_authdata ad;
	const char *reason = NULL;
	int r;

	if (out == NULL || out->size < sizeof *out)
		return AUTHD_ERR_INTERNAL;
	out->verdict = AUTHD_VERDICT_DENY;
	out->record_index = -1;
	out->disable_record = 0;
	out->updated_data = NULL;
	out->updated_len = 0;
	out->amr = 0;
	if (in == NULL || in->size < sizeof *in || in->subject == NULL || in->rp_id == NULL ||
	    in->challenge == NULL || in->challenge_len == 0 || (in->records == NULL && in->n_records > 0))
		return AUTHD_ERR_INTERNAL;
	memset(&rec, 0, sizeof rec);
	r = verify_run(state, in, out, f, &rec, &ad, &reason);
	if (r == 0) {
		rec.sign_count = ad.sign_count;
		rec.flags =
		    (uint8_t)((rec.flags & ~FIDO2_REC_BS) | ((ad.flags & FIDO2_AD_BS) ? FIDO2_REC_BS : 0) |
		              ((ad.flags & FIDO2_AD_UV) ? FIDO2_REC_UV_INIT : 0));
		if ((r = fido2_record_encode(&rec, &out->updated_data, &out->updated_len)) == 0) {
			out->amr = AUTHD_AMR_HWK | ((ad.flags & FIDO2_AD_UV) ? AUTHD_AMR_USER : 0);
			out->verdict = AUTHD_VERDICT_APPROVE;
		}
	}
	if (reason != NULL)
		add_reason(out->reasons, &out->n_reasons, reason);
	if (r == AUTHD_ERR_BAD_REQUEST && reason != NULL)
		r = 0;
	req_fields_free(f, 5);
	return r;
}

/* ---- lifecycle ---- */

static int
fido2_init(const struct authd_plugin_host *host, void **state)
{
	struct fido2_state *st;

	if (state == NULL)
		return AUTHD_ERR_INTERNAL;
	fido_init(0);
	if ((st = calloc(1, sizeof *st)) == NULL)
		return AUTHD_ERR_NOMEM;
	st->host = host;
	if (fido2_keycache_new(&st->keys, FIDO2_KEYCACHE_SLOTS) != 0) {
		free(st);
		return AUTHD_ERR_NOMEM;
	}
	if (host != NULL && host->log != NULL)
		host->log(LOG_INFO, "fido2: ready (ES256, EdDSA, RS256; attestation none, packed)");
	*state = st;
	return 0;
}

static void
fido2_fini(void *state)
{
	struct fido2_state *st = state;

	if (st == NULL)
		return;
	fido2_keycache_free(&st->keys);
	free(st);
}

__attribute__((visibility("default"))) const struct authd_plugin authd_plugin_v1 = {
    .abi = AUTHD_PLUGIN_ABI,
    .size = sizeof(struct authd_plugin),
    .name = "fido2",
    .init = fido2_init,
    .enroll = fido2_enroll,
    .verify = fido2_verify,
    .fini = fido2_fini,
    .compare = NULL,
    .check = NULL,
};
