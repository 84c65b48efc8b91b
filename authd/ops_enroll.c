/*
 * Enrollment: FIDO2 registration (begin/finish) and face templates. The
 * plugin parses and checks what the client sent and returns opaque
 * records; they are sealed (tmpl.c) before they reach the store.
 *
 * The same code path enrolls bank staff: a request naming "staff" instead
 * of "customer" (admin peers only) enrolls subject "staff:<user>", FIDO2
 * keys under the PAM rp_id (ops_login.c). Customer ids may not use the
 * staff prefix, so the two namespaces never meet. A staff FIDO2 enrollment
 * is bound to the admin uid that began it (the uid is part of its id,
 * "ens_<uid>_…"): only that uid, still an admin peer, finishes it, so the
 * finish meets the same role and four-eyes rules as the begin.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "daemon.h"
#include "ops.h"
#include "store.h"
#include "util.h"

#define SUBJECT_MAX 128
#define STAFF_ENROLL_PREFIX "ens_"

/* The subject a request names: "customer" (a customer id) or "staff" (a user name, admin peers only). */
static int
enroll_subject(struct op_ctx *ctx, const json_t *req, char *out, size_t cap)
{
	const char *customer = NULL, *staff = NULL;
	TRY(op_get_str(ctx, req, "staff", 64, 0, &staff));
	if (staff != NULL) {
		if ((ctx->peer->roles & ROLE_ADMIN) == 0) {
			snprintf(ctx->msg, sizeof ctx->msg, "only admin peers enroll staff");
			return AUTHD_ERR_UNAUTHORIZED;
		}
		if (json_object_get(req, "customer") != NULL || !staff_user_ok(staff)) {
			snprintf(ctx->msg, sizeof ctx->msg, "field 'staff' must be a user name, without 'customer'");
			return AUTHD_ERR_BAD_REQUEST;
		}
		snprintf(out, cap, "%s%s", STAFF_PREFIX, staff);
		return 0;
	}
	TRY(op_get_str(ctx, req, "customer", SUBJECT_MAX, 1, &customer));
	if (staff_subject_is(customer)) {
		snprintf(ctx->msg, sizeof ctx->msg, "customer ids may not start with '%s'", STAFF_PREFIX);
		return AUTHD_ERR_BAD_REQUEST;
	}
	snprintf(out, cap, "%s", customer);
	return 0;
}

struct enroll_commit {
	struct op_ctx *ctx;
	const char *subject, *method, *type;
	struct authd_enroll_out *out;  /* the plugin's records, sealed here; or NULL with held */
	const json_t *held;            /* records sealed earlier ([{"id","data"}], four-eyes), or NULL */
	const char *enrollment_id;     /* FIDO2: the pending enrollment to consume */
	int deleted;
};

/* One record of a held enrollment: id and sealed data, base64url. */
static int
held_record(const json_t *h, struct store_cred *c)
{
	const char *id = json_string_value(json_object_get(h, "id"));
	const char *data = json_string_value(json_object_get(h, "data"));
	uint8_t *raw = NULL;
	size_t rl = 0;
	if (id == NULL || data == NULL || b64url_decode(id, strlen(id), sizeof c->id, &raw, &rl) < 0 || rl == 0) {
		free(raw);
		return AUTHD_ERR_INTERNAL;
	}
	memcpy(c->id, raw, rl);
	c->id_len = rl;
	free(raw);
	if (b64url_decode(data, strlen(data), 16u << 20, &c->data, &c->data_len) < 0)
		return AUTHD_ERR_INTERNAL;
	return 0;
}

static int
enroll_commit_fn(struct store_tx *tx, void *arg)
{
	struct enroll_commit *e = arg;
	struct op_ctx *ctx = e->ctx;
	size_t n = e->held ? json_array_size(e->held) : e->out->n_records;
	for (size_t i = 0; i < n; i++) {
		struct store_cred c = {.created = ctx->now, .state = CRED_ACTIVE};
		snprintf(c.subject, sizeof c.subject, "%s", e->subject);
		snprintf(c.method, sizeof c.method, "%s", e->method);
		if (e->held) {
			TRY(held_record(json_array_get(e->held, i), &c));
		} else {
			struct authd_new_record *nr = &e->out->records[i];
			if (nr->id_len == 0 || nr->id_len > sizeof c.id)
				return AUTHD_ERR_INTERNAL;
			memcpy(c.id, nr->id, nr->id_len);
			c.id_len = nr->id_len;
			TRY(tmpl_seal(ctx->d->tmpl, e->subject, e->method, nr->id, nr->id_len, nr->data, nr->data_len,
			              &c.data, &c.data_len));
		}
		int r = store_cred_add(tx, &c);
		free(c.data);
		if (r == AUTHD_ERR_CONFLICT)
			snprintf(ctx->msg, sizeof ctx->msg, "credential is already enrolled");
		TRY(r);
	}
	char *reasons = e->out ? op_reasons_text(e->out->reasons, e->out->n_reasons) : op_reasons_text(NULL, 0);
	struct audit_rec rec = {.ts = ctx->now, .type = e->type, .customer = e->subject,
	                        .result = n ? "enrolled" : "rejected", .reasons = reasons,
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

/*
 * Seals what the plugin accepted into *held = {"subject","method","records":[{"id","data"}],"info"}
 * without storing it: a four-eyes enrollment waits sealed (no raw image, no plaintext template).
 */
static int
enroll_hold(struct op_ctx *ctx, const char *subject, const char *method, const struct authd_enroll_out *out,
            json_t **held)
{
	json_t *recs = json_array();
	int r = 0;
	for (size_t i = 0; recs && r == 0 && i < out->n_records; i++) {
		const struct authd_new_record *nr = &out->records[i];
		uint8_t *sealed = NULL;
		size_t sl = 0;
		if ((r = tmpl_seal(ctx->d->tmpl, subject, method, nr->id, nr->id_len, nr->data, nr->data_len, &sealed,
		                   &sl)) < 0)
			break;
		char *id = b64url_encode(nr->id, nr->id_len), *data = b64url_encode(sealed, sl);
		free(sealed);
		if (id == NULL || data == NULL || json_array_append_new(recs, json_pack("{s:s,s:s}", "id", id, "data", data)))
			r = AUTHD_ERR_NOMEM;
		free(id);
		free(data);
	}
	json_t *info = out->info_json ? json_loads(out->info_json, 0, NULL) : NULL;
	if (r == 0 && recs != NULL)
		*held = json_pack("{s:s,s:s,s:O,s:O?}", "subject", subject, "method", method, "records", recs, "info", info);
	json_decref(info);
	json_decref(recs);
	return r < 0 ? r : *held ? 0 : AUTHD_ERR_NOMEM;
}

/* Runs a plugin's enroll and stores what it accepted (or, with held, seals it for later). */
static int
enroll_run(struct op_ctx *ctx, const char *method, const char *subject, const uint8_t *challenge,
           const json_t *mobj, json_t *reply, const char *type, json_t **held)
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
	/* Staff keys belong to the PAM rp_id, whose only origin is itself. */
	char staff_rp[300];
	const char *staff_origins[1] = {staff_rp};
	int staff = staff_subject_is(subject);
	if (staff)
		staff_rp_id(ctx->cfg, staff_rp, sizeof staff_rp);
	struct authd_enroll_in in = {
		.size = sizeof in,
		.subject = subject,
		.challenge = challenge,
		.challenge_len = challenge ? 32 : 0,
		.request_json = mjson,
		.request_len = strlen(mjson),
		.flags = strcmp(ctx->cfg->fido2.user_verification, "required") == 0 ? AUTHD_VERIFY_UV_REQUIRED : 0,
		.rp_id = staff ? staff_rp : ctx->cfg->fido2.rp_id,
		.origins = staff ? staff_origins : (const char *const *)ctx->cfg->fido2.origins,
		.n_origins = staff ? 1 : ctx->cfg->fido2.n_origins,
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
	if (held != NULL && out.n_records > 0) {
		r = enroll_hold(ctx, subject, method, &out, held);
		goto out;
	}
	struct enroll_commit e = {.ctx = ctx, .subject = subject, .method = method, .type = type, .out = &out};
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
	const char *display;
	char subject[160], staff_rp[300];
	const char *customer = subject, *rp_id = ctx->cfg->fido2.rp_id;
	struct begin_job j = {0};
	TRY(enroll_subject(ctx, req, subject, sizeof subject));
	TRY(op_get_str(ctx, req, "display_name", 256, 0, &display));
	if (staff_subject_is(subject)) {
		staff_rp_id(ctx->cfg, staff_rp, sizeof staff_rp);
		rp_id = staff_rp;
	}
	if (plugin_find(ctx->d->plugins, "fido2") == NULL) {
		snprintf(ctx->msg, sizeof ctx->msg, "method 'fido2' is not available");
		return AUTHD_ERR_UNSUPPORTED;
	}
	char prefix[32] = "en_";
	if (staff_subject_is(subject))
		snprintf(prefix, sizeof prefix, STAFF_ENROLL_PREFIX "%u_", (unsigned)ctx->peer->uid);
	TRY(op_new_id(prefix, j.e.id, sizeof j.e.id));
	snprintf(j.e.subject, sizeof j.e.subject, "%s", customer);
	TRY(util_random(j.e.challenge, 32));
	j.e.expires = ctx->now + ctx->cfg->fido2.challenge_ttl;
	TRY(store_write(ctx->d->store, begin_fn, &j));
	char *chal = b64url_encode(j.e.challenge, 32);
	/* WebAuthn user.id: the subject's bytes (what userHandle must match). */
	char *uid = b64url_encode((const uint8_t *)customer, strlen(customer));
	json_t *reg = json_pack("{s:s,s:{s:s,s:s},s:{s:s,s:s,s:s},s:[i,i,i],s:s,s:s,s:i}", "challenge", chal, "rp", "id",
	                        rp_id, "name", ctx->cfg->fido2.rp_name, "user", "id", uid, "name",
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
	const struct peer *peer;
	struct store_enrollment e;
};

/* 1 when peer may finish staff enrollment id: an admin peer with the uid that began it. */
static int
staff_enroll_owner(const struct peer *peer, const char *id)
{
	const size_t pl = sizeof STAFF_ENROLL_PREFIX - 1;
	char *end = NULL;
	if ((peer->roles & ROLE_ADMIN) == 0 || strncmp(id, STAFF_ENROLL_PREFIX, pl) != 0 || id[pl] < '0' ||
	    id[pl] > '9')
		return 0;
	errno = 0;
	unsigned long uid = strtoul(id + pl, &end, 10);
	return errno == 0 && *end == '_' && uid == (unsigned long)peer->uid;
}

static int
take_fn(struct store_tx *tx, void *arg)
{
	struct take_job *t = arg;
	int r = store_enrollment_take(tx, t->id, t->now, &t->e);
	/* Someone else's staff enrollment: refused and rolled back, so it stays for its owner. */
	if ((r == 0 || r == AUTHD_ERR_EXPIRED) && staff_subject_is(t->e.subject) &&
	    !staff_enroll_owner(t->peer, t->e.id))
		return AUTHD_ERR_UNAUTHORIZED;
	/* An expired enrollment is deleted all the same: commit, then report. */
	return r == AUTHD_ERR_EXPIRED ? 1 : r;
}

int
enroll_fido2_take(struct op_ctx *ctx, const json_t *req, struct store_enrollment *e)
{
	const char *eid;
	TRY(op_get_str(ctx, req, "enrollment_id", 63, 1, &eid));
	if (!json_is_object(json_object_get(req, "fido2"))) {
		snprintf(ctx->msg, sizeof ctx->msg, "field 'fido2' must be an object");
		return AUTHD_ERR_BAD_REQUEST;
	}
	struct take_job t = {.id = eid, .now = ctx->now, .peer = ctx->peer};
	int r = store_write(ctx->d->store, take_fn, &t);
	if (r == AUTHD_ERR_NOT_FOUND)
		snprintf(ctx->msg, sizeof ctx->msg, "no such enrollment");
	if (r == AUTHD_ERR_UNAUTHORIZED)
		snprintf(ctx->msg, sizeof ctx->msg,
		         "a staff enrollment is finished only by the admin peer (same uid) that began it");
	if (r == 1) {
		snprintf(ctx->msg, sizeof ctx->msg, "enrollment expired");
		r = AUTHD_ERR_EXPIRED;
	}
	TRY(r);
	*e = t.e;
	return 0;
}

int
enroll_fido2_complete(struct op_ctx *ctx, const struct store_enrollment *e, const json_t *req, json_t *reply)
{
	return enroll_run(ctx, "fido2", e->subject, e->challenge, json_object_get(req, "fido2"), reply, "enroll", NULL);
}

int
op_enroll_fido2_finish(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct store_enrollment e;
	TRY(enroll_fido2_take(ctx, req, &e));
	return enroll_fido2_complete(ctx, &e, req, reply);
}

/* ---------------- face ---------------- */

static int
enroll_face_run(struct op_ctx *ctx, const json_t *req, json_t *reply, json_t **held)
{
	char customer[160];
	TRY(enroll_subject(ctx, req, customer, sizeof customer));
	json_t *images = json_object_get(req, "images");
	if (!json_is_array(images) || json_array_size(images) == 0 || json_array_size(images) > 5) {
		snprintf(ctx->msg, sizeof ctx->msg, "field 'images' must be an array of 1 to 5 base64url images");
		return AUTHD_ERR_BAD_REQUEST;
	}
	json_t *mobj = json_pack("{s:O}", "images", images);
	if (mobj == NULL)
		return AUTHD_ERR_NOMEM;
	int r = enroll_run(ctx, "face", customer, NULL, mobj, reply, "enroll", held);
	json_decref(mobj);
	return r;
}

int
op_enroll_face(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	return enroll_face_run(ctx, req, reply, NULL);
}

int
enroll_face_hold(struct op_ctx *ctx, const json_t *req, json_t *reply, json_t **held)
{
	*held = NULL;
	return enroll_face_run(ctx, req, reply, held);
}

int
enroll_commit_held(struct op_ctx *ctx, const json_t *held, json_t *reply)
{
	const char *subject = json_string_value(json_object_get(held, "subject"));
	const char *method = json_string_value(json_object_get(held, "method"));
	const json_t *recs = json_object_get(held, "records");
	if (subject == NULL || method == NULL || !json_is_array(recs) || json_array_size(recs) == 0)
		return AUTHD_ERR_INTERNAL;
	struct enroll_commit e = {.ctx = ctx, .subject = subject, .method = method, .type = "enroll", .held = recs};
	TRY(store_write(ctx->d->store, enroll_commit_fn, &e));
	json_object_set_new(reply, "result", json_string("enrolled"));
	if (json_is_object(json_object_get(held, "info")))
		json_object_update(reply, json_object_get(held, "info"));
	return 0;
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
	char customer[160];
	TRY(enroll_subject(ctx, req, customer, sizeof customer));
	struct enroll_commit e = {.ctx = ctx, .subject = customer};
	TRY(store_write(ctx->d->store, delete_fn, &e));
	json_object_set_new(reply, "deleted", json_integer(e.deleted));
	return 0;
}
