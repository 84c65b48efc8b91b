/*
 * Enrollment: FIDO2 registration (begin/finish) and face templates. The
 * plugin parses and checks what the client sent and returns opaque
 * records; they are sealed (tmpl.c) before they reach the store.
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "daemon.h"
#include "ops.h"
#include "store.h"
#include "util.h"

#define SUBJECT_MAX 128

struct enroll_commit {
	struct op_ctx *ctx;
	const char *subject, *method, *type;
	struct authd_enroll_out *out;
	const char *enrollment_id; /* FIDO2: the pending enrollment to consume */
	int deleted;
};

static int
enroll_commit_fn(struct store_tx *tx, void *arg)
{
	struct enroll_commit *e = arg;
	struct op_ctx *ctx = e->ctx;
	for (size_t i = 0; i < e->out->n_records; i++) {
		struct authd_new_record *nr = &e->out->records[i];
		struct store_cred c = {.created = ctx->now, .state = CRED_ACTIVE};
		if (nr->id_len == 0 || nr->id_len > sizeof c.id)
			return AUTHD_ERR_INTERNAL;
		snprintf(c.subject, sizeof c.subject, "%s", e->subject);
		snprintf(c.method, sizeof c.method, "%s", e->method);
		memcpy(c.id, nr->id, nr->id_len);
		c.id_len = nr->id_len;
		TRY(tmpl_seal(ctx->d->tmpl, e->subject, e->method, nr->id, nr->id_len, nr->data, nr->data_len, &c.data,
		              &c.data_len));
		int r = store_cred_add(tx, &c);
		free(c.data);
		if (r == AUTHD_ERR_CONFLICT)
			snprintf(ctx->msg, sizeof ctx->msg, "credential is already enrolled");
		TRY(r);
	}
	char *reasons = op_reasons_text(e->out->reasons, e->out->n_reasons);
	struct audit_rec rec = {.ts = ctx->now, .type = e->type, .customer = e->subject,
	                        .result = e->out->n_records ? "enrolled" : "rejected", .reasons = reasons,
	                        .method = e->method, .actor = ctx->actor};
	int r = reasons ? store_audit_append(tx, &rec) : AUTHD_ERR_NOMEM;
	free(reasons);
	return r;
}

static void
enroll_out_clear(struct authd_enroll_out *o)
{
	for (size_t i = 0; i < o->n_records && i < AUTHD_PLUGIN_MAX_RECORDS; i++) {
		free(o->records[i].id);
		util_free_secret(&o->records[i].data, o->records[i].data_len);
	}
	free(o->info_json);
	memset(o, 0, sizeof *o);
}

/* Runs a plugin's enroll and stores what it accepted. */
static int
enroll_run(struct op_ctx *ctx, const char *method, const char *subject, const uint8_t *challenge,
           const json_t *mobj, json_t *reply, const char *type)
{
	const struct plugin *p = plugin_find(ctx->d->plugins, method);
	struct authd_enroll_out out = {.size = sizeof out, .verdict = AUTHD_VERDICT_DENY};
	char *mjson = NULL;
	int r;
	if (p == NULL) {
		snprintf(ctx->msg, sizeof ctx->msg, "method '%s' is not available", method);
		return AUTHD_ERR_UNSUPPORTED;
	}
	if ((mjson = json_dumps(mobj, JSON_COMPACT)) == NULL)
		return AUTHD_ERR_NOMEM;
	struct authd_enroll_in in = {
		.size = sizeof in,
		.subject = subject,
		.challenge = challenge,
		.challenge_len = challenge ? 32 : 0,
		.request_json = mjson,
		.request_len = strlen(mjson),
		.flags = strcmp(ctx->cfg->fido2.user_verification, "required") == 0 ? AUTHD_VERIFY_UV_REQUIRED : 0,
		.rp_id = ctx->cfg->fido2.rp_id,
		.origins = (const char *const *)ctx->cfg->fido2.origins,
		.n_origins = ctx->cfg->fido2.n_origins,
	};
	r = p->api->enroll(p->state, &in, &out);
	free(mjson);
	if (r < 0 && r != AUTHD_ERR_BAD_REQUEST && r != AUTHD_ERR_TOO_LARGE && r != AUTHD_ERR_TRUNCATED)
		goto out;
	if (r < 0 || out.verdict != AUTHD_VERDICT_APPROVE)
		out.n_records = 0;
	if (out.n_records > AUTHD_PLUGIN_MAX_RECORDS || out.n_reasons > AUTHD_PLUGIN_MAX_REASONS) {
		r = AUTHD_ERR_INTERNAL;
		goto out;
	}
	struct enroll_commit e = {ctx, subject, method, type, &out, NULL, 0};
	if ((r = store_write(ctx->d->store, enroll_commit_fn, &e)) < 0)
		goto out;
	if (out.n_records == 0) {
		json_t *reasons = json_array();
		for (size_t i = 0; i < out.n_reasons; i++)
			json_array_append_new(reasons, json_string(out.reasons[i]));
		snprintf(ctx->msg, sizeof ctx->msg, "enrollment rejected");
		/* A rejected enrollment is an answer, not an error: say why. */
		json_object_set_new(reply, "result", json_string("rejected"));
		json_object_set_new(reply, "reasons", reasons);
		r = 0;
		goto out;
	}
	json_object_set_new(reply, "result", json_string("enrolled"));
	if (out.info_json != NULL) {
		json_t *info = json_loads(out.info_json, 0, NULL);
		if (json_is_object(info))
			json_object_update(reply, info);
		json_decref(info);
	}
	r = 0;
out:
	enroll_out_clear(&out);
	return r;
}

/* ---------------- FIDO2 ---------------- */

struct begin_job {
	struct store_enrollment e;
};

static int
begin_fn(struct store_tx *tx, void *arg)
{
	return store_enrollment_put(tx, &((struct begin_job *)arg)->e);
}

int
op_enroll_fido2_begin(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *customer, *display;
	struct begin_job j = {0};
	TRY(op_get_str(ctx, req, "customer", SUBJECT_MAX, 1, &customer));
	TRY(op_get_str(ctx, req, "display_name", 256, 0, &display));
	if (plugin_find(ctx->d->plugins, "fido2") == NULL) {
		snprintf(ctx->msg, sizeof ctx->msg, "method 'fido2' is not available");
		return AUTHD_ERR_UNSUPPORTED;
	}
	TRY(op_new_id("en_", j.e.id, sizeof j.e.id));
	snprintf(j.e.subject, sizeof j.e.subject, "%s", customer);
	TRY(util_random(j.e.challenge, 32));
	j.e.expires = ctx->now + ctx->cfg->fido2.challenge_ttl;
	TRY(store_write(ctx->d->store, begin_fn, &j));
	char *chal = b64url_encode(j.e.challenge, 32);
	/* WebAuthn user.id: the subject's bytes (what userHandle must match). */
	char *uid = b64url_encode((const uint8_t *)customer, strlen(customer));
	json_t *reg = json_pack("{s:s,s:{s:s,s:s},s:{s:s,s:s,s:s},s:[i,i,i],s:s,s:s,s:i}", "challenge", chal, "rp", "id",
	                        ctx->cfg->fido2.rp_id, "name", ctx->cfg->fido2.rp_name, "user", "id", uid, "name",
	                        customer, "display_name", display ? display : customer, "pub_key_cred_params", -7,
	                        -8, -257, "attestation", "none", "user_verification",
	                        ctx->cfg->fido2.user_verification, "timeout_ms",
	                        (int)ctx->cfg->fido2.challenge_ttl * 1000);
	free(chal);
	free(uid);
	if (reg == NULL)
		return AUTHD_ERR_NOMEM;
	json_object_set_new(reply, "enrollment_id", json_string(j.e.id));
	json_object_set_new(reply, "registration", reg);
	return 0;
}

struct take_job {
	const char *id;
	int64_t now;
	struct store_enrollment e;
};

static int
take_fn(struct store_tx *tx, void *arg)
{
	struct take_job *t = arg;
	int r = store_enrollment_take(tx, t->id, t->now, &t->e);
	/* An expired enrollment is deleted all the same: commit, then report. */
	return r == AUTHD_ERR_EXPIRED ? 1 : r;
}

int
op_enroll_fido2_finish(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *eid;
	TRY(op_get_str(ctx, req, "enrollment_id", 63, 1, &eid));
	const json_t *mobj = json_object_get(req, "fido2");
	if (!json_is_object(mobj)) {
		snprintf(ctx->msg, sizeof ctx->msg, "field 'fido2' must be an object");
		return AUTHD_ERR_BAD_REQUEST;
	}
	struct take_job t = {.id = eid, .now = ctx->now};
	int r = store_write(ctx->d->store, take_fn, &t);
	if (r == AUTHD_ERR_NOT_FOUND)
		snprintf(ctx->msg, sizeof ctx->msg, "no such enrollment");
	if (r == 1) {
		snprintf(ctx->msg, sizeof ctx->msg, "enrollment expired");
		r = AUTHD_ERR_EXPIRED;
	}
	TRY(r);
	return enroll_run(ctx, "fido2", t.e.subject, t.e.challenge, mobj, reply, "enroll");
}

/* ---------------- face ---------------- */

int
op_enroll_face(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *customer;
	TRY(op_get_str(ctx, req, "customer", SUBJECT_MAX, 1, &customer));
	json_t *images = json_object_get(req, "images");
	if (!json_is_array(images) || json_array_size(images) == 0 || json_array_size(images) > 5) {
		snprintf(ctx->msg, sizeof ctx->msg, "field 'images' must be an array of 1 to 5 base64url images");
		return AUTHD_ERR_BAD_REQUEST;
	}
	json_t *mobj = json_pack("{s:O}", "images", images);
	if (mobj == NULL)
		return AUTHD_ERR_NOMEM;
	int r = enroll_run(ctx, "face", customer, NULL, mobj, reply, "enroll");
	json_decref(mobj);
	return r;
}

static int
delete_fn(struct store_tx *tx, void *arg)
{
	struct enroll_commit *e = arg;
	TRY(store_cred_delete(tx, e->subject, "face", &e->deleted));
	struct audit_rec rec = {.ts = e->ctx->now, .type = "delete_face", .customer = e->subject,
	                        .result = "deleted", .method = "face", .actor = e->ctx->actor};
	return store_audit_append(tx, &rec);
}

int
op_delete_face(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *customer;
	TRY(op_get_str(ctx, req, "customer", SUBJECT_MAX, 1, &customer));
	struct enroll_commit e = {.ctx = ctx, .subject = customer};
	TRY(store_write(ctx->d->store, delete_fn, &e));
	json_object_set_new(reply, "deleted", json_integer(e.deleted));
	return 0;
}
