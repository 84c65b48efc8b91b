/*
 * Admin ops (peers in [server] admins): account freezes, lockouts,
 * credentials, key rotation, the audit chain, policy dry runs, stats.
 * Every change is audited with the acting peer.
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "daemon.h"
#include "ops.h"
#include "policy.h"
#include "store.h"
#include "token.h"
#include "txn.h"
#include "util.h"

struct admin_job {
	struct op_ctx *ctx;
	const char *account, *customer, *reason;
	int flag;
	int changed;
	const uint8_t *cred_id;
	size_t cred_id_len;
	const char *method;
};

static int
audit_admin(struct store_tx *tx, struct admin_job *j, const char *type, const char *result)
{
	/* The dumped text as is: escaping can make it several times the reason's length. */
	char *reasons = NULL;
	if (j->reason != NULL) {
		json_t *a = json_pack("[s]", j->reason);
		reasons = a ? json_dumps(a, JSON_COMPACT) : NULL;
		json_decref(a);
		if (reasons == NULL)
			return AUTHD_ERR_NOMEM;
	}
	struct audit_rec rec = {.ts = j->ctx->now,
	                        .type = type,
	                        .customer = j->customer,
	                        .account = j->account,
	                        .result = result,
	                        .reasons = reasons ? reasons : "[]",
	                        .method = j->method,
	                        .actor = j->ctx->actor};
	int r = store_audit_append(tx, &rec);
	free(reasons);
	return r;
}

static int
freeze_fn(struct store_tx *tx, void *arg)
{
	struct admin_job *j = arg;
	TRY(store_frozen_set(tx, j->account, j->flag, j->reason, j->ctx->now, &j->changed));
	return audit_admin(tx, j, j->flag ? "freeze" : "unfreeze", j->changed ? "done" : "unchanged");
}

static int
freeze_common(struct op_ctx *ctx, const json_t *req, json_t *reply, int frozen)
{
	struct admin_job j = {.ctx = ctx, .flag = frozen};
	TRY(op_get_str(ctx, req, "account", TXN_MAX_ID, 1, &j.account));
	TRY(op_get_str(ctx, req, "reason", 200, frozen, &j.reason));
	TRY(store_write(ctx->d->store, freeze_fn, &j));
	json_object_set_new(reply, "account", json_string(j.account));
	json_object_set_new(reply, "frozen", json_boolean(frozen));
	json_object_set_new(reply, "changed", json_boolean(j.changed));
	return 0;
}

int
op_freeze(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	return freeze_common(ctx, req, reply, 1);
}

int
op_unfreeze(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	return freeze_common(ctx, req, reply, 0);
}

static int
unlock_fn(struct store_tx *tx, void *arg)
{
	struct admin_job *j = arg;
	struct store_lockout lo;
	TRY(store_lockout_get(tx, j->customer, &lo));
	j->changed = lo.locked || lo.failures;
	memset(&lo, 0, sizeof lo);
	TRY(store_lockout_put(tx, j->customer, &lo));
	return audit_admin(tx, j, "unlock", j->changed ? "done" : "unchanged");
}

int
op_unlock(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct admin_job j = {.ctx = ctx};
	TRY(op_get_str(ctx, req, "customer", 160, 1, &j.customer));
	TRY(op_get_str(ctx, req, "reason", 200, 0, &j.reason));
	TRY(store_write(ctx->d->store, unlock_fn, &j));
	json_object_set_new(reply, "customer", json_string(j.customer));
	json_object_set_new(reply, "changed", json_boolean(j.changed));
	return 0;
}

struct list_job {
	const char *customer;
	struct store_cred *creds;
	size_t n;
};

static int
list_fn(struct store_tx *tx, void *arg)
{
	struct list_job *l = arg;
	return store_cred_list(tx, l->customer, NULL, &l->creds, &l->n);
}

int
op_list_credentials(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	static const char *const states[] = {"active", "revoked", "disabled"};
	struct list_job l = {0};
	TRY(op_get_str(ctx, req, "customer", 160, 1, &l.customer));
	int r = store_read(ctx->d->store, list_fn, &l);
	if (r < 0) {
		/* the list may be filled and the read still fail (its flush failed) */
		store_creds_free(&l.creds, l.n);
		return r;
	}
	json_t *a = json_array();
	for (size_t i = 0; a && i < l.n; i++) {
		char *id = b64url_encode(l.creds[i].id, l.creds[i].id_len);
		int st = l.creds[i].state;
		json_array_append_new(a, json_pack("{s:s,s:s?,s:I,s:s}", "method", l.creds[i].method, "credential_id", id,
		                                   "created", (json_int_t)l.creds[i].created, "state",
		                                   st >= 0 && st <= 2 ? states[st] : "unknown"));
		free(id);
	}
	store_creds_free(&l.creds, l.n);
	if (a == NULL)
		return AUTHD_ERR_NOMEM;
	json_object_set_new(reply, "credentials", a);
	return 0;
}

static int
revoke_fn(struct store_tx *tx, void *arg)
{
	struct admin_job *j = arg;
	TRY(store_cred_set_state(tx, j->customer, j->method, j->cred_id, j->cred_id_len, CRED_REVOKED));
	return audit_admin(tx, j, "revoke_credential", "done");
}

int
op_revoke_credential(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct admin_job j = {.ctx = ctx};
	const char *cid;
	uint8_t *id = NULL;
	size_t idl = 0;
	TRY(op_get_str(ctx, req, "customer", 160, 1, &j.customer));
	TRY(op_get_str(ctx, req, "credential_id", 1400, 1, &cid));
	TRY(op_get_str(ctx, req, "method", 15, 0, &j.method));
	TRY(op_get_str(ctx, req, "reason", 200, 0, &j.reason));
	if (j.method == NULL)
		j.method = "fido2";
	if (b64url_decode(cid, strlen(cid), 1024, &id, &idl) < 0) {
		snprintf(ctx->msg, sizeof ctx->msg, "field 'credential_id' must be base64url");
		return AUTHD_ERR_BAD_REQUEST;
	}
	j.cred_id = id;
	j.cred_id_len = idl;
	int r = store_write(ctx->d->store, revoke_fn, &j);
	free(id);
	if (r == AUTHD_ERR_NOT_FOUND)
		snprintf(ctx->msg, sizeof ctx->msg, "no such credential for this customer");
	TRY(r);
	json_object_set_new(reply, "revoked", json_true());
	return 0;
}

struct stats_job {
	int64_t v[8];
};

static int
stats_fn(struct store_tx *tx, void *arg)
{
	static const char *const what[] = {"audit", "challenges", "decisions", "approvals", "frozen", "redeemed",
	                                   "credentials", "lockouts"};
	struct stats_job *s = arg;
	for (size_t i = 0; i < 8; i++)
		TRY(store_count(tx, what[i], &s->v[i]));
	return 0;
}

int
op_stats(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct stats_job s = {0};
	struct authd *d = ctx->d;
	TRY(store_read(d->store, stats_fn, &s));
	json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "audit_records", (json_int_t)s.v[0], "challenges",
	                      (json_int_t)s.v[1], "decisions", (json_int_t)s.v[2], "approvals", (json_int_t)s.v[3],
	                      "frozen_accounts", (json_int_t)s.v[4], "redeemed_tokens", (json_int_t)s.v[5],
	                      "credentials", (json_int_t)s.v[6], "locked_subjects", (json_int_t)s.v[7]);
	json_t *p = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "uptime", (json_int_t)(ctx->now - d->started),
	                      "requests", (json_int_t)d->n_requests, "errors", (json_int_t)d->n_errors, "allow",
	                      (json_int_t)d->n_allow, "step_up", (json_int_t)d->n_step_up, "deny",
	                      (json_int_t)d->n_deny, "approved", (json_int_t)d->n_approved, "rejected",
	                      (json_int_t)d->n_rejected);
	if (o == NULL || p == NULL) {
		json_decref(o);
		json_decref(p);
		return AUTHD_ERR_NOMEM;
	}
	json_object_set_new(reply, "store", o);
	json_object_set_new(reply, "process", p);
	return 0;
}

struct rotate_job {
	struct op_ctx *ctx;
	const char *kid;
	int audited;
};

static int
rotate_audit_fn(struct store_tx *tx, void *arg)
{
	struct rotate_job *j = arg;
	char reasons[128];
	snprintf(reasons, sizeof reasons, "[\"kid:%s\"]", j->kid);
	struct audit_rec rec = {.ts = j->ctx->now, .type = "rotate_key", .result = "done", .reasons = reasons,
	                        .actor = j->ctx->actor};
	return store_audit_append(tx, &rec);
}

/* Runs inside the rotation, after the new key is made and before it is installed. */
static int
rotate_commit(const char *kid, void *arg)
{
	struct rotate_job *j = arg;
	j->kid = kid;
	TRY(store_write(j->ctx->d->store, rotate_audit_fn, j));
	j->audited = 1;
	return 0;
}

/*
 * The audit record comes first: no token may be signed with a key the audit
 * log does not name. Undoing an installed key when its record fails instead
 * would need more file writes, which can fail too and leave the files and
 * the ring in memory apart, and tokens signed in between would stop
 * verifying. So a record that cannot be committed leaves the ring untouched
 * (a retry starts from the same keys); a key that cannot be saved after its
 * record committed leaves a record naming a kid that never signed anything.
 */
int
op_rotate_key(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct rotate_job j = {.ctx = ctx};
	char kid[64];
	int r = token_keyring_rotate_commit(ctx->d->keys, rotate_commit, &j, kid, sizeof kid);
	if (r < 0) {
		snprintf(ctx->msg, sizeof ctx->msg, "%s: %s; the key was not rotated",
		         j.kid == NULL ? "cannot make a new key"
		         : !j.audited  ? "cannot write the audit record"
		                       : "cannot save the new key",
		         authd_strerror(r));
		return r;
	}
	json_object_set_new(reply, "kid", json_string(kid));
	return 0;
}

int
op_audit_verify(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct audit_verify_result res;
	TRY(audit_verify_store(ctx->d->store, &res));
	json_object_set_new(reply, "valid", json_boolean(res.valid));
	json_object_set_new(reply, "records", json_integer(res.records));
	if (!res.valid) {
		json_object_set_new(reply, "first_bad_seq", json_integer(res.first_bad_seq));
		json_object_set_new(reply, "why", json_string(res.why));
	} else {
		json_object_set_new(reply, "head_seq", json_integer(res.head_seq));
		json_object_set_new(reply, "head_hash", json_string(res.head_hash));
	}
	return 0;
}

/* ---------------- audit export ---------------- */

#define EXPORT_MAX_RECORDS 100000
/* Links from the first exported record to the last, matching or not. */
#define EXPORT_MAX_LINKS (4 * EXPORT_MAX_RECORDS)

struct export_job {
	const char *account, *customer;
	int64_t since, until;
	json_t *records, *links;
	int64_t first_seq, last_seq, head_seq;
	char head_hash[65];
	int too_many, too_long, nomem;
};

static int
export_cb(const struct audit_rec *rec, void *arg)
{
	struct export_job *e = arg;
	e->head_seq = rec->seq;
	memcpy(e->head_hash, rec->hash, 65);
	int in_range = rec->ts >= e->since && rec->ts <= e->until;
	int match = in_range && (e->account == NULL || (rec->account && !strcmp(rec->account, e->account))) &&
	            (e->customer == NULL || (rec->customer && !strcmp(rec->customer, e->customer)));
	if (match) {
		if (json_array_size(e->records) >= EXPORT_MAX_RECORDS) {
			e->too_many = 1;
			return 1;
		}
		if (e->first_seq == 0)
			e->first_seq = rec->seq;
		e->last_seq = rec->seq;
		if (json_array_append_new(e->records, audit_rec_to_json(rec)) != 0) {
			e->nomem = 1;
			return 1;
		}
	}
	/*
	 * Links of the whole segment from the first exported record on, so gaps
	 * show. Past the limit only a later match needs one (links after the
	 * last exported record are trimmed): that export fails, never a bundle
	 * with a record outside its links.
	 */
	if (e->first_seq != 0) {
		if (json_array_size(e->links) >= EXPORT_MAX_LINKS) {
			if (match) {
				e->too_long = 1;
				return 1;
			}
		} else if (json_array_append_new(e->links,
		                                 json_pack("[I,s]", (json_int_t)rec->seq, rec->hash)) != 0) {
			e->nomem = 1;
			return 1;
		}
	}
	return 0;
}

static int
export_fn(struct store_tx *tx, void *arg)
{
	return store_audit_scan(tx, 1, export_cb, arg);
}

int
op_audit_export(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct export_job e = {0};
	char *canon = NULL, *sig = NULL;
	json_t *bundle = NULL;
	int r;
	e.until = INT64_MAX;
	TRY(op_get_str(ctx, req, "account", TXN_MAX_ID, 0, &e.account));
	TRY(op_get_str(ctx, req, "customer", 160, 0, &e.customer));
	TRY(op_get_int(ctx, req, "since", 0, INT64_C(1) << 40, 0, &e.since));
	TRY(op_get_int(ctx, req, "until", 0, INT64_C(1) << 40, 0, &e.until));
	e.records = json_array();
	e.links = json_array();
	if (e.records == NULL || e.links == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if ((r = store_read(ctx->d->store, export_fn, &e)) < 0)
		goto out;
	if (e.nomem) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if (e.too_many) {
		r = AUTHD_ERR_TOO_LARGE;
		snprintf(ctx->msg, sizeof ctx->msg, "more than %d records match: narrow since/until", EXPORT_MAX_RECORDS);
		goto out;
	}
	if (e.too_long) {
		r = AUTHD_ERR_TOO_LARGE;
		snprintf(ctx->msg, sizeof ctx->msg,
		         "the matching records span more than %d chain records: narrow since/until",
		         EXPORT_MAX_LINKS);
		goto out;
	}
	/* Trim links after the last exported record. */
	while (json_array_size(e.links) > 0) {
		json_t *last = json_array_get(e.links, json_array_size(e.links) - 1);
		if (json_integer_value(json_array_get(last, 0)) <= e.last_seq)
			break;
		json_array_remove(e.links, json_array_size(e.links) - 1);
	}
	char kid[64];
	token_current_kid(ctx->d->keys, kid, sizeof kid);
	bundle = json_pack("{s:O,s:{s:I,s:I,s:I,s:s,s:O,s:I,s:s?,s:s?,s:I,s:I,s:s}}", "records", e.records, "proof",
	                   "first_seq", (json_int_t)e.first_seq, "last_seq", (json_int_t)e.last_seq, "head_seq",
	                   (json_int_t)e.head_seq, "head_hash", e.head_seq ? e.head_hash : AUDIT_GENESIS, "links",
	                   e.links, "exported_at", (json_int_t)ctx->now, "account", e.account, "customer", e.customer,
	                   "since", (json_int_t)e.since, "until", (json_int_t)e.until, "kid", kid);
	if (bundle == NULL || (canon = json_dumps(bundle, JSON_SORT_KEYS | JSON_COMPACT)) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if ((r = token_sign_detached(ctx->d->keys, "authd-audit+jws", canon, strlen(canon), &sig)) < 0)
		goto out;
	json_object_set(reply, "records", json_object_get(bundle, "records"));
	json_object_set(reply, "proof", json_object_get(bundle, "proof"));
	json_object_set_new(reply, "signature", json_string(sig));
	json_object_set_new(reply, "jwks", token_jwks(ctx->d->keys));
	r = 0;
out:
	json_decref(e.records);
	json_decref(e.links);
	json_decref(bundle);
	free(canon);
	free(sig);
	return r;
}

/* ---------------- policy dry run, geo ---------------- */

struct explain_job {
	struct op_ctx *ctx;
	const struct txn *t;
	struct policy_facts f;
};

static int
explain_fn(struct store_tx *tx, void *arg)
{
	struct explain_job *j = arg;
	return op_policy_facts(tx, j->t, j->ctx->now, &j->f);
}

int
op_policy_explain(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	struct txn t;
	struct geo_result geo;
	struct policy_decision dec;
	TRY(txn_parse(json_object_get(req, "txn"), ctx->now, &t, ctx->msg, sizeof ctx->msg));
	geo_lookup(ctx->snap->geo, t.src_ip, &geo);
	struct explain_job j = {.ctx = ctx, .t = &t};
	TRY(store_read(ctx->d->store, explain_fn, &j));
	policy_decide(ctx->cfg, &t, &geo, &j.f, ctx->now, &dec);
	json_t *o = policy_decision_to_json(&dec);
	if (o == NULL)
		return AUTHD_ERR_NOMEM;
	json_object_update(reply, o);
	json_decref(o);
	json_object_set_new(reply, "facts",
	                    json_pack("{s:b,s:b,s:b,s:I}", "account_frozen", j.f.account_frozen, "customer_locked",
	                              j.f.customer_locked, "device_seen", j.f.device_seen, "approved_today",
	                              (json_int_t)j.f.approved_today_same_type));
	return 0;
}

int
op_geo_lookup(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *ip;
	struct geo_result g;
	TRY(op_get_str(ctx, req, "ip", 63, 1, &ip));
	geo_lookup(ctx->snap->geo, ip, &g);
	json_t *o = geo_result_to_json(&g);
	if (o == NULL)
		return AUTHD_ERR_NOMEM;
	json_object_update(reply, o);
	json_decref(o);
	return 0;
}
