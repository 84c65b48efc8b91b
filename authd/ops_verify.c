/*
 * verify: step-up for a challenged transfer through an authenticator
 * plugin. The plugin runs on the worker thread outside any store
 * transaction (it may take tens of milliseconds); its verdict is then
 * committed atomically with the challenge consumption, the lockout counter,
 * the daily total and the audit record.
 *
 * verify_challenge() is the one code path for every kind of challenge:
 * verify (kind "txn") and login_verify (kind "login", ops_login.c) differ
 * only in the struct verify_kind they pass (rp_id, origins, what an
 * approval adds to the store, the audit type).
 */
#include <stdio.h>
#include <string.h>

#include "approval.h"
#include "audit.h"
#include "daemon.h"
#include "ops.h"
#include "store.h"
#include "txn.h"
#include "util.h"

struct verify_load {
	const char *challenge_id, *method;
	struct store_challenge ch;
	struct store_lockout lo;
	struct store_cred *creds;
	size_t n_creds;
};

static int
verify_load_fn(struct store_tx *tx, void *arg)
{
	struct verify_load *l = arg;
	TRY(store_challenge_get(tx, l->challenge_id, &l->ch));
	TRY(store_lockout_get(tx, l->ch.subject, &l->lo));
	return store_cred_list(tx, l->ch.subject, l->method, &l->creds, &l->n_creds);
}

struct verify_commit {
	struct op_ctx *ctx;
	const struct verify_kind *k;
	const struct verify_load *l;
	const char *method;
	int approved;
	const struct store_cred *used;   /* record the plugin used, or NULL */
	const uint8_t *updated;          /* new plaintext record data, or NULL */
	size_t updated_len;
	int disable_used;
	const char *const *reasons;
	size_t n_reasons;
	/* out */
	char result[16];
	char *reasons_text;
	char jti[40];
	int attempts_left;
	int cas_lost;
};

static int
verify_commit_fn(struct store_tx *tx, void *arg)
{
	struct verify_commit *v = arg;
	struct op_ctx *ctx = v->ctx;
	const struct store_challenge *ch = &v->l->ch;
	struct store_lockout lo;
	char hash_hex[65];
	json_t *body = json_loads(ch->body, 0, NULL);
	int r = 0;

	hex_encode(ch->txn_hash, 32, hash_hex);
	if (body == NULL)
		return AUTHD_ERR_INTERNAL;
	if ((r = store_lockout_get(tx, ch->subject, &lo)) < 0)
		goto out;
	int frozen = 0;
	if (v->k->frozen_key != NULL) {
		const char *fkey = v->k->frozen_key(ch, body);
		if (fkey == NULL) {
			r = AUTHD_ERR_INTERNAL; /* a challenge body without what a freeze names: never approve it */
			goto out;
		}
		if ((r = store_frozen_get(tx, fkey, &frozen)) < 0)
			goto out;
	}
	if (frozen) {
		/* The challenge dies; not the customer's failure, so the lockout counter stays. */
		const char *const why[] = {v->k->frozen_reason};
		if ((r = store_challenge_attempt(tx, ch->id, 1)) < 0)
			goto out;
		snprintf(v->result, sizeof v->result, "rejected");
		v->attempts_left = 0;
		v->reasons_text = op_reasons_text(why, 1);
	} else if (v->approved && !lo.locked) {
		if (v->updated != NULL) {
			uint8_t *sealed = NULL;
			size_t sl = 0;
			r = tmpl_seal(ctx->d->tmpl, ch->subject, v->method, v->used->id, v->used->id_len, v->updated,
			              v->updated_len, &sealed, &sl);
			if (r == 0)
				r = store_cred_update(tx, v->method, v->used->id, v->used->id_len, v->used->data,
				                      v->used->data_len, sealed, sl);
			free(sealed);
			if (r == AUTHD_ERR_CONFLICT) {
				/* Another verify used this credential meanwhile: this one loses. */
				v->cas_lost = 1;
				goto out;
			}
			if (r < 0)
				goto out;
		}
		if ((r = store_challenge_consume(tx, ch->id, ctx->now)) < 0)
			goto out;
		lo.failures = 0;
		if ((r = store_lockout_put(tx, ch->subject, &lo)) < 0)
			goto out;
		if ((r = v->k->on_approved(tx, ctx, ch, body)) < 0 || (r = op_new_id("", v->jti, sizeof v->jti)) < 0)
			goto out;
		snprintf(v->result, sizeof v->result, "approved");
		v->reasons_text = json_dumps(json_object_get(body, "reasons"), JSON_COMPACT);
	} else {
		if (lo.locked) {
			snprintf(v->result, sizeof v->result, "locked");
		} else {
			lo.failures++;
			lo.total_failures++;
			lo.last_failure = ctx->now;
			if ((unsigned)lo.failures >= ctx->cfg->policy.lockout_after)
				lo.locked = 1;
			snprintf(v->result, sizeof v->result, "%s", lo.locked ? "locked" : "rejected");
			if ((r = store_lockout_put(tx, ch->subject, &lo)) < 0 ||
			    (r = store_challenge_attempt(tx, ch->id, lo.locked)) < 0)
				goto out;
			if (v->disable_used && v->used != NULL &&
			    (r = store_cred_set_state(tx, ch->subject, v->method, v->used->id, v->used->id_len,
			                              CRED_DISABLED)) < 0)
				goto out;
		}
		v->attempts_left = lo.locked ? 0 : (int)ctx->cfg->policy.lockout_after - lo.failures;
		v->reasons_text = op_reasons_text(v->reasons, v->n_reasons);
	}
	if (v->reasons_text == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	struct audit_rec rec = {.ts = ctx->now, .type = v->k->audit_type, .customer = ch->subject,
	                        .account = json_string_value(json_object_get(body, "account")),
	                        .txn_hash = hash_hex, .result = v->result, .reasons = v->reasons_text,
	                        .method = v->method, .jti = v->jti[0] ? v->jti : NULL, .actor = ctx->actor};
	r = store_audit_append(tx, &rec);
out:
	json_decref(body);
	return r;
}

/* Decrypts the subject's active records, keeping FIDO2 ones offered in the challenge. */
static int
open_records(struct op_ctx *ctx, struct verify_load *l, struct authd_record *recs, uint8_t **plain, size_t *plain_len,
             size_t *idx, size_t *n)
{
	json_t *body = json_loads(l->ch.body, 0, NULL);
	json_t *allow = json_object_get(body, "allow");
	*n = 0;
	for (size_t i = 0; i < l->n_creds && *n < 64; i++) {
		struct store_cred *c = &l->creds[i];
		if (c->state != CRED_ACTIVE)
			continue;
		if (strcmp(l->method, "fido2") == 0) {
			char *id = b64url_encode(c->id, c->id_len);
			int offered = 0;
			size_t k;
			json_t *v;
			json_array_foreach(allow, k, v) offered |= id && json_is_string(v) && !strcmp(json_string_value(v), id);
			free(id);
			if (!offered)
				continue;
		}
		int r = tmpl_open(ctx->d->tmpl, l->ch.subject, l->method, c->id, c->id_len, c->data, c->data_len,
		                  &plain[*n], &plain_len[*n]);
		if (r < 0) {
			json_decref(body);
			snprintf(ctx->msg, sizeof ctx->msg, "a stored record failed its integrity check");
			return r;
		}
		recs[*n] = (struct authd_record){c->id, c->id_len, plain[*n], plain_len[*n]};
		idx[*n] = i;
		(*n)++;
	}
	json_decref(body);
	return 0;
}

static const char *
txn_account(const struct store_challenge *ch, const json_t *body)
{
	(void)ch;
	return json_string_value(json_object_get(body, "account"));
}

/* Daily totals: an approved transfer counts towards the customer's day. */
static int
txn_approved(struct store_tx *tx, struct op_ctx *ctx, const struct store_challenge *ch, const json_t *body)
{
	struct store_approval a = {
		.txn_id = ch->txn_id,
		.customer = ch->subject,
		.currency = json_string_value(json_object_get(body, "currency")),
		.device_id = json_string_value(json_object_get(body, "device_id")),
		.account_type = (int)json_integer_value(json_object_get(body, "account_type")),
		.day = txn_day_vn(ctx->now),
		.amount = json_integer_value(json_object_get(body, "amount")),
		.ts = ctx->now,
	};
	int added;
	if (a.currency == NULL)
		return AUTHD_ERR_INTERNAL;
	return store_approval_add(tx, &a, &added);
}

int
op_verify(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const struct verify_kind k = {
		.kind = "txn",
		.audit_type = "verify",
		.locked_reason = "customer_locked",
		.rp_id = ctx->cfg->fido2.rp_id,
		.origins = (const char *const *)ctx->cfg->fido2.origins,
		.n_origins = ctx->cfg->fido2.n_origins,
		.on_approved = txn_approved,
		.frozen_key = txn_account,
		.frozen_reason = "account_frozen",
	};
	return verify_challenge(ctx, req, &k, reply);
}

int
verify_challenge(struct op_ctx *ctx, const json_t *req, const struct verify_kind *k, json_t *reply)
{
	const char *chid, *method;
	struct verify_load l = {0};
	struct authd_record recs[64];
	uint8_t *plain[64] = {0};
	size_t plain_len[64] = {0}, idx[64], n = 0;
	char *mjson = NULL;
	struct authd_verify_out out = {.size = sizeof out, .verdict = AUTHD_VERDICT_DENY, .record_index = -1};
	struct verify_commit v = {.ctx = ctx, .k = k};
	int r;

	TRY(op_get_str(ctx, req, "challenge_id", 63, 1, &chid));
	TRY(op_get_str(ctx, req, "method", 15, 1, &method));
	const json_t *mobj = json_object_get(req, method);
	if (!json_is_object(mobj)) {
		snprintf(ctx->msg, sizeof ctx->msg, "field '%s' must be an object", method);
		return AUTHD_ERR_BAD_REQUEST;
	}
	const struct plugin *p = plugin_find(ctx->d->plugins, method);
	if (p == NULL) {
		snprintf(ctx->msg, sizeof ctx->msg, "method '%s' is not available", method);
		return AUTHD_ERR_UNSUPPORTED;
	}
	l.challenge_id = chid;
	l.method = method;
	if ((r = store_read(ctx->d->store, verify_load_fn, &l)) < 0) {
		if (r == AUTHD_ERR_NOT_FOUND)
			snprintf(ctx->msg, sizeof ctx->msg, "no such challenge");
		goto out;
	}
	if (strcmp(l.ch.kind, k->kind) != 0) {
		r = AUTHD_ERR_NOT_FOUND;
		snprintf(ctx->msg, sizeof ctx->msg, "no such challenge");
		goto out;
	}
	if (l.ch.state != CHALLENGE_PENDING || l.ch.expires <= ctx->now) {
		r = AUTHD_ERR_EXPIRED;
		snprintf(ctx->msg, sizeof ctx->msg, "challenge expired or already used");
		goto out;
	}
	v.l = &l;
	v.method = method;
	const char *const locked_reason[] = {k->locked_reason ? k->locked_reason : "customer_locked"};
	static const char *const none_reason[] = {"not_enrolled"};
	if (!l.lo.locked && (r = open_records(ctx, &l, recs, plain, plain_len, idx, &n)) < 0)
		goto out;
	if (l.lo.locked) {
		v.reasons = locked_reason;
		v.n_reasons = 1;
	} else if (n == 0) {
		/* Nothing enrolled (or offered) for this method: a failed attempt, never a plugin call. */
		v.reasons = none_reason;
		v.n_reasons = 1;
	} else {
		if ((mjson = json_dumps(mobj, JSON_COMPACT)) == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		struct authd_verify_in in = {
			.size = sizeof in,
			.subject = l.ch.subject,
			.challenge = l.ch.challenge,
			.challenge_len = 32,
			.request_json = mjson,
			.request_len = strlen(mjson),
			.records = recs,
			.n_records = n,
			.flags = strcmp(ctx->cfg->fido2.user_verification, "required") == 0 ? AUTHD_VERIFY_UV_REQUIRED : 0,
			.rp_id = k->rp_id,
			.origins = k->origins,
			.n_origins = k->n_origins,
		};
		int pr = p->api->verify(p->state, &in, &out);
		if (pr < 0 && pr != AUTHD_ERR_BAD_REQUEST && pr != AUTHD_ERR_TOO_LARGE && pr != AUTHD_ERR_TRUNCATED) {
			r = pr;
			snprintf(ctx->msg, sizeof ctx->msg, "%s verification failed", method);
			goto out;
		}
		int valid_idx = out.record_index >= 0 && (size_t)out.record_index < n;
		v.approved = pr == 0 && out.verdict == AUTHD_VERDICT_APPROVE && valid_idx;
		if (valid_idx) {
			v.used = &l.creds[idx[out.record_index]];
			v.disable_used = out.disable_record;
		}
		if (v.approved && out.updated_data != NULL) {
			v.updated = out.updated_data;
			v.updated_len = out.updated_len;
		}
		v.reasons = out.reasons;
		v.n_reasons = out.n_reasons < AUTHD_PLUGIN_MAX_REASONS ? out.n_reasons : AUTHD_PLUGIN_MAX_REASONS;
		static const char *const bad_input[] = {"malformed_input"};
		if (!v.approved && v.n_reasons == 0) {
			v.reasons = bad_input;
			v.n_reasons = 1;
		}
	}
	r = store_write(ctx->d->store, verify_commit_fn, &v);
	if (r == 0 && v.cas_lost)
		r = AUTHD_ERR_CONFLICT;
	if (r < 0) {
		if (r == AUTHD_ERR_EXPIRED || r == AUTHD_ERR_CONFLICT)
			snprintf(ctx->msg, sizeof ctx->msg, "challenge expired or already used");
		goto out;
	}
	if (json_object_set_new(reply, "result", json_string(v.result)) != 0) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if (strcmp(v.result, "approved") == 0) {
		atomic_fetch_add(&ctx->d->n_approved, 1);
		json_t *reasons = json_loads(v.reasons_text, 0, NULL);
		struct approval a = {.subject = l.ch.subject, .txn_id = l.ch.txn_id, .reasons = reasons, .jti = v.jti,
		                     .amr = out.amr};
		memcpy(a.txn_hash, l.ch.txn_hash, 32);
		r = approval_token(ctx, &a, &ctx->token);
		json_decref(reasons);
		if (r < 0)
			goto out;
	} else {
		atomic_fetch_add(&ctx->d->n_rejected, 1);
		if (strcmp(v.result, "rejected") == 0 &&
		    (json_object_set_new(reply, "reasons", json_loads(v.reasons_text, 0, NULL)) != 0 ||
		     json_object_set_new(reply, "attempts_left", json_integer(v.attempts_left)) != 0)) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
	}
	r = 0;
out:
	for (size_t i = 0; i < n; i++)
		util_free_secret(&plain[i], plain_len[i]);
	util_free_secret(&out.updated_data, out.updated_len);
	if (mjson != NULL) /* the method's input: face images, or a signature over the challenge */
		util_wipe(mjson, strlen(mjson));
	free(mjson);
	free(v.reasons_text);
	free(l.ch.body);
	store_creds_free(&l.creds, l.n_creds);
	return r;
}
