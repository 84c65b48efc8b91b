/*
 * Transfers: assess (policy decision, challenge or token), verify (step-up
 * through a plugin) and redeem (single use of a token).
 *
 * Every store change and its audit record commit together in one
 * store_write(); a token is signed only after that commit, so no token
 * leaves the daemon without its durable audit record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approval.h"
#include "audit.h"
#include "daemon.h"
#include "ops.h"
#include "policy.h"
#include "store.h"
#include "txn.h"
#include "util.h"

#define CHALLENGE_PREFIX "ch_"

_Static_assert(sizeof(((struct store_decision *)0)->account) == TXN_MAX_ID + 1,
               "a decision holds any account");

/* ---------------- assess ---------------- */

struct assess_job {
	struct op_ctx *ctx;
	const struct txn *t;
	const struct geo_result *geo;
	const char *methods_json; /* lent */
	/* out */
	struct policy_decision dec;
	int replay;               /* same txn id seen before */
	char result[16];
	char *reasons;            /* JSON text */
	json_t *reasons_json;     /* the same, parsed; NULL on a replay (then parsed from reasons) */
	char jti[40];             /* set when the result is allow */
	char jti_new[40];         /* drawn before the store work, which stays short */
	struct store_challenge ch;
	json_t *allow;            /* credential ids offered */
	char msg[256];
};

/* A new reference to the reasons array (parsed from the text on a replay); NULL when out of memory. */
static json_t *
reasons_of(const struct assess_job *j)
{
	return j->reasons_json ? json_incref(j->reasons_json) : json_loads(j->reasons, 0, NULL);
}

static int
assess_challenge(struct store_tx *tx, struct assess_job *j)
{
	const struct txn *t = j->t;
	const struct config *cfg = j->ctx->cfg;
	struct store_cred *creds = NULL;
	size_t n = 0;
	uint8_t rnd[32], buf[13 + 32 + 32];
	int r;

	memset(&j->ch, 0, sizeof j->ch);
	TRY(op_new_id(CHALLENGE_PREFIX, j->ch.id, sizeof j->ch.id));
	TRY(util_random(rnd, sizeof rnd));
	/* SHA-256("authd-chal-v1" || txn_hash || 32 random bytes): bound to this transfer. */
	memcpy(buf, "authd-chal-v1", 13);
	memcpy(buf + 13, t->hash, 32);
	memcpy(buf + 45, rnd, 32);
	TRY(util_sha256(buf, sizeof buf, j->ch.challenge));
	snprintf(j->ch.kind, sizeof j->ch.kind, "txn");
	snprintf(j->ch.subject, sizeof j->ch.subject, "%s", t->customer);
	snprintf(j->ch.txn_id, sizeof j->ch.txn_id, "%s", t->id);
	memcpy(j->ch.txn_hash, t->hash, 32);
	j->ch.created = j->ctx->now;
	j->ch.expires = j->ctx->now + cfg->fido2.challenge_ttl;
	j->ch.state = CHALLENGE_PENDING;

	if ((r = store_cred_list(tx, t->customer, "fido2", &creds, &n)) < 0)
		return r;
	json_decref(j->allow);
	j->allow = json_array();
	for (size_t i = 0; j->allow && i < n; i++) {
		if (creds[i].state != CRED_ACTIVE)
			continue;
		char *id = b64url_encode(creds[i].id, creds[i].id_len);
		if (id)
			json_array_append_new(j->allow, json_string(id));
		free(id);
	}
	store_creds_free(&creds, n);
	if (j->allow == NULL)
		return AUTHD_ERR_NOMEM;
	json_t *body =
	    json_pack("{s:s,s:s,s:i,s:I,s:s,s:s,s:O,s:o}", "customer", t->customer, "account", t->account,
	              "account_type", (int)t->account_type, "amount", (json_int_t)t->amount, "currency",
	              t->currency, "device_id", t->device_id, "allow", j->allow, "reasons", reasons_of(j));
	if (body == NULL)
		return AUTHD_ERR_NOMEM;
	j->ch.body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (j->ch.body == NULL)
		return AUTHD_ERR_NOMEM;
	return store_challenge_put(tx, &j->ch);
}

int
op_policy_facts(struct store_tx *tx, const struct txn *t, int64_t now, struct policy_facts *f)
{
	struct store_txn_facts sf;
	TRY(store_txn_facts(tx, t->account, t->customer, t->device_id, (int)t->account_type, t->currency,
	                    txn_day_vn(now), &sf));
	*f = (struct policy_facts){.account_frozen = sf.account_frozen,
	                           .customer_locked = sf.customer_locked,
	                           .device_seen = sf.device_seen,
	                           .approved_today_same_type = sf.approved_today};
	return 0;
}

static int
assess_fn(struct store_tx *tx, void *arg)
{
	struct assess_job *j = arg;
	const struct txn *t = j->t;
	struct op_ctx *ctx = j->ctx;
	struct store_decision prior = {0};
	char hash_hex[65];
	int r;

	/* STORE_WORK_RERUN: a rolled-back batch runs this again; start from the inputs alone. */
	free(j->reasons);
	free(j->ch.body);
	json_decref(j->allow);
	json_decref(j->reasons_json);
	j->reasons_json = NULL;
	j->reasons = NULL;
	j->allow = NULL;
	memset(&j->ch, 0, sizeof j->ch);
	j->replay = 0;
	j->result[0] = j->jti[0] = j->msg[0] = '\0';

	hex_encode(t->hash, 32, hash_hex);
	r = store_decision_get(tx, t->id, &prior);
	if (r == 0) {
		/* Idempotent retry: same decision, never counted twice. */
		if (!util_ct_equal(prior.txn_hash, 32, t->hash, 32)) {
			free(prior.reasons);
			snprintf(j->msg, sizeof j->msg, "transaction id '%.128s' was assessed with different content", t->id);
			return AUTHD_ERR_CONFLICT;
		}
		j->replay = 1;
		int frozen = 0;
		if (strcmp(prior.result, "deny") != 0 &&
		    (r = store_frozen_get(tx, t->account, &frozen)) < 0) {
			free(prior.reasons);
			return r;
		}
		if (frozen) {
			/* Frozen since the decision: no token, no challenge. The stored decision stays. */
			static const char *const why[] = {"account_frozen"};
			free(prior.reasons);
			snprintf(j->result, sizeof j->result, "deny");
			if ((j->reasons_json = op_reasons_json(why, 1)) == NULL ||
			    (j->reasons = json_dumps(j->reasons_json, JSON_COMPACT)) == NULL)
				return AUTHD_ERR_NOMEM;
			goto audit;
		}
		snprintf(j->result, sizeof j->result, "%s", prior.result);
		j->reasons = prior.reasons;
		if (strcmp(prior.result, "step_up") == 0) {
			struct store_challenge old;
			r = store_challenge_get(tx, prior.challenge_id, &old);
			if (r == 0 && old.state == CHALLENGE_PENDING && old.expires > ctx->now) {
				json_t *body = json_loads(old.body, 0, NULL);
				j->allow = json_incref(json_object_get(body, "allow"));
				json_decref(body);
				free(old.body);
				old.body = NULL;
				j->ch = old;
			} else {
				free(old.body);
				TRY(assess_challenge(tx, j));
				snprintf(prior.challenge_id, sizeof prior.challenge_id, "%s", j->ch.id);
				/* the same hash: the same account */
				snprintf(prior.account, sizeof prior.account, "%s", t->account);
				prior.reasons = j->reasons;
				TRY(store_decision_put(tx, t->id, &prior));
			}
		}
	} else if (r == AUTHD_ERR_NOT_FOUND) {
		struct policy_facts f;
		TRY(op_policy_facts(tx, t, ctx->now, &f));
		policy_decide(ctx->cfg, t, j->geo, &f, ctx->now, &j->dec);
		snprintf(j->result, sizeof j->result, "%s", policy_result_name(j->dec.result));
		if ((j->reasons_json = op_reasons_json(j->dec.reasons, j->dec.n_reasons)) == NULL ||
		    (j->reasons = json_dumps(j->reasons_json, JSON_COMPACT)) == NULL)
			return AUTHD_ERR_NOMEM;
		struct store_decision d = {.reasons = j->reasons, .created = ctx->now};
		memcpy(d.txn_hash, t->hash, 32);
		snprintf(d.account, sizeof d.account, "%s", t->account);
		snprintf(d.result, sizeof d.result, "%s", j->result);
		if (j->dec.result == POLICY_STEP_UP) {
			TRY(assess_challenge(tx, j));
			snprintf(d.challenge_id, sizeof d.challenge_id, "%s", j->ch.id);
		}
		TRY(store_decision_put(tx, t->id, &d));
		if (j->dec.result == POLICY_ALLOW) {
			struct store_approval a = {.txn_id = t->id,
			                           .customer = t->customer,
			                           .currency = t->currency,
			                           .device_id = t->device_id,
			                           .account_type = (int)t->account_type,
			                           .day = txn_day_vn(ctx->now),
			                           .amount = t->amount,
			                           .ts = ctx->now,
			                           .device_known = f.device_seen};
			int added;
			TRY(store_approval_add(tx, &a, &added));
		}
	} else
		return r;

audit:
	if (strcmp(j->result, "allow") == 0)
		memcpy(j->jti, j->jti_new, sizeof j->jti);
	struct audit_rec rec = {
		.ts = ctx->now,
		.type = j->replay ? "assess_retry" : "assess",
		.customer = t->customer,
		.account = t->account,
		.txn_hash = hash_hex,
		.result = j->result,
		.reasons = j->reasons,
		.reasons_json = j->reasons_json,
		.jti = j->jti[0] ? j->jti : NULL,
		.actor = ctx->actor,
	};
	return store_audit_append(tx, &rec);
}

struct assess_st {
	struct assess_job j;
	struct txn t;
	struct geo_result geo;
};

static int
assess_prepare(struct op_ctx *ctx, const json_t *req, void *arg)
{
	struct assess_st *st = arg;
	TRY(txn_parse(json_object_get(req, "txn"), ctx->now, &st->t, ctx->msg, sizeof ctx->msg));
	geo_lookup(ctx->snap->geo, st->t.src_ip, &st->geo);
	TRY(op_new_id("", st->j.jti_new, sizeof st->j.jti_new));
	st->j.ctx = ctx;
	st->j.t = &st->t;
	st->j.geo = &st->geo;
	return 0;
}

static int
assess_store(struct store_tx *tx, void *arg)
{
	return assess_fn(tx, &((struct assess_st *)arg)->j);
}

static int
assess_finish(struct op_ctx *ctx, void *arg, int r, json_t *reply)
{
	struct assess_st *st = arg;
	struct assess_job *j = &st->j;
	const struct txn *t = &st->t;
	if (r < 0) {
		if (j->msg[0])
			snprintf(ctx->msg, sizeof ctx->msg, "%s", j->msg);
		goto out;
	}
	/* reasons first: json_object_set_new takes it even when it fails, so it can never leak. */
	json_t *reasons = reasons_of(j);
	if (reasons == NULL || json_object_set_new(reply, "reasons", reasons) != 0 ||
	    json_object_set_new(reply, "result", json_string(j->result)) != 0) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if (strcmp(j->result, "allow") == 0) {
		atomic_fetch_add(&ctx->d->n_allow, 1);
		struct approval a = {.subject = t->customer, .txn_id = t->id, .reasons = reasons, .jti = j->jti};
		memcpy(a.txn_hash, t->hash, 32);
		if ((r = approval_token(ctx, &a, &ctx->token)) < 0)
			goto out;
	} else if (strcmp(j->result, "step_up") == 0) {
		atomic_fetch_add(&ctx->d->n_step_up, 1);
		json_t *c = approval_challenge_json(ctx, &j->ch, j->allow);
		if (c == NULL || json_object_set_new(reply, "challenge", c) != 0) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
	} else
		atomic_fetch_add(&ctx->d->n_deny, 1);
	r = 0;
out:
	free(j->reasons);
	free(j->ch.body);
	json_decref(j->allow);
	json_decref(j->reasons_json);
	return r;
}

const struct op_split op_assess_split = {sizeof(struct assess_st), assess_prepare, assess_store,
                                         assess_finish, STORE_WORK_RERUN};

int
op_assess(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	return op_split_run(ctx, &op_assess_split, req, reply);
}

/* ---------------- redeem ---------------- */

struct redeem_job {
	struct op_ctx *ctx;
	const char *jti, *sub, *txn_id;
	int64_t exp;
	char txn_hash[65];
	/* out */
	char frozen[TXN_MAX_ID + 1]; /* the transfer's account, frozen since the token was issued */
};

static int
redeem_fn(struct store_tx *tx, void *arg)
{
	struct redeem_job *j = arg;
	/*
	 * A freeze stops the transfer even after its approval: the backend
	 * redeems the token right before it moves the money. Decisions made
	 * before schema 5 do not know their account and cannot be checked.
	 */
	struct store_decision d;
	int r = store_decision_get(tx, j->txn_id, &d), frozen = 0;
	j->frozen[0] = '\0';
	if (r < 0 && r != AUTHD_ERR_NOT_FOUND)
		return r;
	free(d.reasons);
	if (r == 0 && d.account[0] != '\0') {
		TRY(store_frozen_get(tx, d.account, &frozen));
		if (frozen) {
			snprintf(j->frozen, sizeof j->frozen, "%s", d.account);
			return AUTHD_ERR_CONFLICT;
		}
	}
	TRY(store_jti_redeem(tx, j->jti, j->exp, j->ctx->now));
	/*
	 * A retried assess of an allowed transfer issues a fresh token: the
	 * transfer itself is single use too, whichever of its tokens comes first.
	 */
	char key[TXN_MAX_ID + 8];
	snprintf(key, sizeof key, "txn:%s", j->txn_id);
	TRY(store_jti_redeem(tx, key, j->exp, j->ctx->now));
	struct audit_rec rec = {.ts = j->ctx->now, .type = "redeem", .customer = j->sub,
	                        .txn_hash = j->txn_hash[0] ? j->txn_hash : NULL, .result = "redeemed",
	                        .jti = j->jti, .actor = j->ctx->actor};
	return store_audit_append(tx, &rec);
}

struct redeem_st {
	struct redeem_job j;
	json_t *claims;
};

static int
redeem_prepare(struct op_ctx *ctx, const json_t *req, void *arg)
{
	struct redeem_st *st = arg;
	struct redeem_job *j = &st->j;
	const char *token;
	int r;

	TRY(op_get_str(ctx, req, "token", TOKEN_MAX_LEN, 1, &token));
	if ((r = approval_check(ctx, token, &st->claims)) < 0)
		return r;
	json_t *claims = st->claims;
	j->ctx = ctx;
	j->jti = json_string_value(json_object_get(claims, "jti"));
	j->sub = json_string_value(json_object_get(claims, "sub"));
	j->txn_id = json_string_value(json_object_get(json_object_get(claims, "txn"), "id"));
	if (j->jti == NULL || j->sub == NULL || j->txn_id == NULL || strlen(j->txn_id) > TXN_MAX_ID) {
		json_decref(st->claims);
		st->claims = NULL;
		snprintf(ctx->msg, sizeof ctx->msg, "token rejected: missing claims");
		return AUTHD_ERR_BAD_REQUEST;
	}
	j->exp = json_integer_value(json_object_get(claims, "exp"));
	const char *h = json_string_value(json_object_get(json_object_get(claims, "txn"), "hash"));
	if (h != NULL) {
		size_t hl = strlen(h);
		uint8_t *dec = NULL;
		size_t dl = 0;
		if (hl < 64 && b64url_decode(h, hl, 32, &dec, &dl) == 0 && dl == 32)
			hex_encode(dec, 32, j->txn_hash);
		free(dec);
	}
	return 0;
}

static int
redeem_store(struct store_tx *tx, void *arg)
{
	return redeem_fn(tx, &((struct redeem_st *)arg)->j);
}

static int
redeem_finish(struct op_ctx *ctx, void *arg, int r, json_t *reply)
{
	struct redeem_st *st = arg;
	if (r == AUTHD_ERR_CONFLICT && st->j.frozen[0] != '\0')
		snprintf(ctx->msg, sizeof ctx->msg, "account '%s' is frozen: the transfer may not proceed",
		         st->j.frozen);
	else if (r == AUTHD_ERR_CONFLICT)
		snprintf(ctx->msg, sizeof ctx->msg, "token or transfer was already redeemed");
	else if (r == 0)
		r = json_object_set_new(reply, "result", json_string("redeemed")) == 0 ? 0 : AUTHD_ERR_NOMEM;
	json_decref(st->claims);
	return r;
}

/* redeem_fn has no outputs besides its result: it can run again as it is. */
const struct op_split op_redeem_split = {sizeof(struct redeem_st), redeem_prepare, redeem_store,
                                         redeem_finish, STORE_WORK_RERUN};

int
op_redeem(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	return op_split_run(ctx, &op_redeem_split, req, reply);
}
