/*
 * Four-eyes for sensitive admin actions ([admin] four_eyes, on by default):
 * unfreeze, unlock, enroll_face, enroll_fido2_finish, delete_face and
 * revoke_credential, asked by a staff member, do not run; they become a
 * pending action (a challenge row of kind "four_eyes", so every authd
 * instance sharing the store sees it) that a second, different staff
 * member approves with `approve` after passing step-up. One colluding
 * employee cannot unlock an account or put a fraudster's face on it alone.
 *
 * Who is a staff member: an admin peer is bound to the user name of its
 * SO_PEERCRED uid (getpwuid); the approver must have passed step-up as
 * that user (an approved login_verify for "staff:<user>" within
 * [admin] stepup_window seconds, see ops_login.c), must not be frozen or
 * locked as "staff:<user>" at the moment of approving, and must not be the
 * proposer (different uid and different name).
 *
 * Not subject to four-eyes: peers that are not admins (the banking
 * backend's customer self-service enrollments, as before) and the daemon's
 * own uid and root: they own the state directory, the keys and the
 * database, so no rule inside authd can bind them; they are the bootstrap
 * and automation identity, and the deployment keeps people off them
 * (docs/pam.md).
 *
 * Every step is audited: four_eyes_request, four_eyes_approve (approved or
 * refused, with why), then the action's own record with actor
 * "uid:<proposer>+uid:<approver>".
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "daemon.h"
#include "ops.h"
#include "store.h"
#include "util.h"

#define PENDING_KIND "four_eyes"

static const char *const sensitive_ops[] = {
    "unfreeze", "unlock", "enroll_face", "enroll_fido2_finish", "delete_face", "revoke_credential"};

/* The user name bound to the peer's uid. */
static int
peer_user(struct op_ctx *ctx, char *out, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(ctx->peer->uid, &pw, buf, sizeof buf, &res) != 0 || res == NULL ||
	    pw.pw_name[0] == '\0' || strlen(pw.pw_name) >= cap) {
		snprintf(ctx->msg, sizeof ctx->msg,
		         "uid %u has no user name: four-eyes needs a named staff member",
		         (unsigned)ctx->peer->uid);
		return AUTHD_ERR_UNAUTHORIZED;
	}
	snprintf(out, cap, "%s", pw.pw_name);
	return 0;
}

int
four_eyes_required(struct op_ctx *ctx, const char *op, const json_t *req)
{
	int sensitive = 0;
	for (size_t i = 0; i < sizeof sensitive_ops / sizeof sensitive_ops[0]; i++)
		sensitive |= strcmp(op, sensitive_ops[i]) == 0;
	if (!sensitive || !ctx->cfg->admin.four_eyes || (ctx->peer->roles & ROLE_ADMIN) == 0)
		return 0;
	/* The service account and root own the store and keys; four-eyes binds people. */
	if (ctx->peer->uid == geteuid() || ctx->peer->uid == 0)
		return 0;
	return 1;
}

/* Text of the request's target, for the audit record. */
static const char *
target_of(const json_t *req, const char *key)
{
	return json_string_value(json_object_get(req, key));
}

/* ---------------- propose ---------------- */

/* The fields the op will need, checked now: a malformed request is refused, not left pending. */
static int
propose_check(struct op_ctx *ctx, const char *op, const json_t *req)
{
	const char *v;
	if (strcmp(op, "unfreeze") == 0)
		return op_get_str(ctx, req, "account", 200, 1, &v);
	if (strcmp(op, "unlock") == 0)
		return op_get_str(ctx, req, "customer", 160, 1, &v);
	if (strcmp(op, "revoke_credential") == 0) {
		TRY(op_get_str(ctx, req, "customer", 160, 1, &v));
		return op_get_str(ctx, req, "credential_id", 1400, 1, &v);
	}
	if (strcmp(op, "delete_face") == 0 && json_object_get(req, "staff") == NULL)
		return op_get_str(ctx, req, "customer", 160, 1, &v);
	return 0;
}

struct propose_job {
	struct op_ctx *ctx;
	struct store_challenge ch;
	const char *op, *customer, *account;
	char *reasons;
};

static int
propose_fn(struct store_tx *tx, void *arg)
{
	struct propose_job *j = arg;
	char hash_hex[65];
	TRY(store_challenge_put(tx, &j->ch));
	hex_encode(j->ch.txn_hash, 32, hash_hex);
	struct audit_rec rec = {.ts = j->ctx->now,
	                        .type = "four_eyes_request",
	                        .customer = j->customer,
	                        .account = j->account,
	                        .txn_hash = hash_hex,
	                        .result = "pending",
	                        .reasons = j->reasons,
	                        .actor = j->ctx->actor};
	return store_audit_append(tx, &rec);
}

int
four_eyes_propose(struct op_ctx *ctx, const char *op, const json_t *req, json_t *reply)
{
	char user[128];
	struct propose_job j = {.ctx = ctx, .op = op};
	json_t *request = NULL, *body = NULL, *enr = NULL, *held = NULL;
	int r;

	TRY(peer_user(ctx, user, sizeof user));
	TRY(propose_check(ctx, op, req));
	if ((request = json_deep_copy(req)) == NULL)
		return AUTHD_ERR_NOMEM;
	json_object_del(request, "v");
	json_object_del(request, "id");
	json_object_del(request, "op");
	if (strcmp(op, "enroll_fido2_finish") == 0) {
		/* Take the enrollment now: it would expire long before a second person approves. */
		struct store_enrollment e;
		if ((r = enroll_fido2_take(ctx, req, &e)) < 0)
			goto out;
		char *chal = b64url_encode(e.challenge, 32);
		enr = chal ? json_pack("{s:s,s:s}", "subject", e.subject, "challenge", chal) : NULL;
		free(chal);
		if (enr == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		json_object_set_new(request, "customer", json_string(e.subject));
	}
	if (strcmp(op, "enroll_face") == 0) {
		/*
		 * The plugin runs now (a bad image is answered at once, not after approval) and
		 * what it accepted waits sealed: raw images are never stored, not even pending.
		 */
		if ((r = enroll_face_hold(ctx, req, reply, &held)) < 0 || held == NULL)
			goto out; /* error, or a rejection already in reply */
		json_object_set_new(
		    request, "images",
		    json_integer((json_int_t)json_array_size(json_object_get(req, "images"))));
	}
	j.customer = target_of(request, "customer");
	if (j.customer == NULL && target_of(request, "staff") != NULL)
		j.customer = target_of(request, "staff");
	j.account = target_of(request, "account");
	body = json_pack("{s:s,s:O,s:s,s:I,s:I,s:O?,s:O?}", "op", op, "request", request, "proposer", user,
	                 "proposer_uid", (json_int_t)ctx->peer->uid, "created", (json_int_t)ctx->now,
	                 "enrollment", enr, "held", held);
	if (body == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if ((r = op_new_id("pa_", j.ch.id, sizeof j.ch.id)) < 0 || (r = util_random(j.ch.challenge, 32)) < 0)
		goto out;
	snprintf(j.ch.kind, sizeof j.ch.kind, PENDING_KIND);
	snprintf(j.ch.subject, sizeof j.ch.subject, "%s%s", STAFF_PREFIX, user);
	snprintf(j.ch.txn_id, sizeof j.ch.txn_id, "%s", op);
	j.ch.created = ctx->now;
	j.ch.expires = ctx->now + ctx->cfg->admin.four_eyes_ttl;
	j.ch.state = CHALLENGE_PENDING;
	if ((j.ch.body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	/* The audit record's hash field names exactly what was proposed. */
	if ((r = util_sha256(j.ch.body, strlen(j.ch.body), j.ch.txn_hash)) < 0)
		goto out;
	char rsn[3][200];
	snprintf(rsn[0], sizeof rsn[0], "op:%s", op);
	snprintf(rsn[1], sizeof rsn[1], "pending:%s", j.ch.id);
	snprintf(rsn[2], sizeof rsn[2], "proposer:%s", user);
	const char *const reasons[] = {rsn[0], rsn[1], rsn[2]};
	if ((j.reasons = op_reasons_text(reasons, 3)) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if ((r = store_write(ctx->d->store, propose_fn, &j)) < 0)
		goto out;
	json_object_set_new(reply, "result", json_string("pending"));
	json_object_set_new(reply, "pending_id", json_string(j.ch.id));
	json_object_set_new(reply, "op", json_string(op));
	json_object_set_new(reply, "expires_at", json_integer(j.ch.expires));
	json_object_set_new(reply, "message",
	                    json_string("four-eyes: a second staff member who passed step-up must run "
	                                "'authctl approve <pending_id>'"));
	r = 0;
out:
	free(j.reasons);
	free(j.ch.body);
	json_decref(body);
	json_decref(request);
	json_decref(enr);
	json_decref(held);
	return r;
}

/* ---------------- show / approve ---------------- */

struct pending_load {
	const char *id;
	struct store_challenge ch;
};

static int
pending_load_fn(struct store_tx *tx, void *arg)
{
	struct pending_load *l = arg;
	return store_challenge_get(tx, l->id, &l->ch);
}

/* Loads a pending action that can still be approved; *body: caller decrefs. */
static int
pending_get(struct op_ctx *ctx, const char *id, struct store_challenge *ch, json_t **body)
{
	struct pending_load l = {.id = id};
	int r = store_read(ctx->d->store, pending_load_fn, &l);
	*body = NULL;
	if (r == 0 && strcmp(l.ch.kind, PENDING_KIND) != 0)
		r = AUTHD_ERR_NOT_FOUND;
	if (r == AUTHD_ERR_NOT_FOUND)
		snprintf(ctx->msg, sizeof ctx->msg, "no such pending action");
	if (r == 0 && (l.ch.state != CHALLENGE_PENDING || l.ch.expires <= ctx->now)) {
		snprintf(ctx->msg, sizeof ctx->msg, "pending action expired or already decided");
		r = AUTHD_ERR_EXPIRED;
	}
	if (r == 0 && (*body = json_loads(l.ch.body, 0, NULL)) == NULL)
		r = AUTHD_ERR_INTERNAL;
	free(l.ch.body);
	l.ch.body = NULL;
	*ch = l.ch;
	return r;
}

int
op_pending_show(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *id;
	struct store_challenge ch;
	json_t *body = NULL;
	TRY(op_get_str(ctx, req, "id", 63, 1, &id));
	TRY(pending_get(ctx, id, &ch, &body));
	json_object_del(body, "enrollment");
	json_object_del(body, "held");
	json_object_update(reply, body);
	json_object_set_new(reply, "pending_id", json_string(ch.id));
	json_object_set_new(reply, "expires_at", json_integer(ch.expires));
	json_decref(body);
	return 0;
}

struct approve_job {
	struct op_ctx *ctx;
	const struct store_challenge *ch;
	const char *approver, *proposer, *op, *customer, *account;
	int self;
	/* out */
	const char *refused; /* reason, or NULL when approved */
	int64_t stepup_at;
};

static int
approve_fn(struct store_tx *tx, void *arg)
{
	struct approve_job *j = arg;
	char hash_hex[65], rsn[5][200], subject[160];
	struct store_lockout lo;
	int frozen = 0, r;
	j->refused = NULL;
	/* In this transaction: a freeze or lockout committed before it stops the approval. */
	snprintf(subject, sizeof subject, "%s%s", STAFF_PREFIX, j->approver);
	TRY(store_frozen_get(tx, subject, &frozen));
	TRY(store_lockout_get(tx, subject, &lo));
	if (j->self)
		j->refused = "approver_is_proposer";
	else if (frozen)
		j->refused = "approver_frozen";
	else if (lo.locked)
		j->refused = "approver_locked";
	else if ((r = staff_stepup_recent(tx, j->ctx, j->approver, &j->stepup_at)) == AUTHD_ERR_UNAUTHORIZED)
		j->refused = "approver_no_recent_stepup";
	else if (r < 0)
		return r;
	if (j->refused == NULL)
		TRY(store_challenge_consume(tx, j->ch->id, j->ctx->now));
	snprintf(rsn[0], sizeof rsn[0], "op:%s", j->op);
	snprintf(rsn[1], sizeof rsn[1], "pending:%s", j->ch->id);
	snprintf(rsn[2], sizeof rsn[2], "proposer:%s", j->proposer);
	snprintf(rsn[3], sizeof rsn[3], "approver:%s", j->approver);
	snprintf(rsn[4], sizeof rsn[4], "%s", j->refused ? j->refused : "approver_stepup_recent");
	const char *const reasons[] = {rsn[0], rsn[1], rsn[2], rsn[3], rsn[4]};
	char *text = op_reasons_text(reasons, 5);
	if (text == NULL)
		return AUTHD_ERR_NOMEM;
	hex_encode(j->ch->txn_hash, 32, hash_hex);
	struct audit_rec rec = {.ts = j->ctx->now,
	                        .type = "four_eyes_approve",
	                        .customer = j->customer,
	                        .account = j->account,
	                        .txn_hash = hash_hex,
	                        .result = j->refused ? "refused" : "approved",
	                        .reasons = text,
	                        .actor = j->ctx->actor};
	r = store_audit_append(tx, &rec);
	free(text);
	return r;
}

struct exec_fail_job {
	struct op_ctx *ctx;
	const char *op, *customer, *account, *error;
};

static int
exec_fail_fn(struct store_tx *tx, void *arg)
{
	struct exec_fail_job *j = arg;
	char rsn[2][200];
	snprintf(rsn[0], sizeof rsn[0], "op:%s", j->op);
	snprintf(rsn[1], sizeof rsn[1], "error:%s", j->error);
	const char *const reasons[] = {rsn[0], rsn[1]};
	char *text = op_reasons_text(reasons, 2);
	if (text == NULL)
		return AUTHD_ERR_NOMEM;
	struct audit_rec rec = {.ts = j->ctx->now,
	                        .type = "four_eyes_execute",
	                        .customer = j->customer,
	                        .account = j->account,
	                        .result = "failed",
	                        .reasons = text,
	                        .actor = j->ctx->actor};
	int r = store_audit_append(tx, &rec);
	free(text);
	return r;
}

int
op_approve(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *id;
	char approver[128];
	struct store_challenge ch;
	json_t *body = NULL, *inner = NULL;
	int r;

	TRY(op_get_str(ctx, req, "id", 63, 1, &id));
	TRY(peer_user(ctx, approver, sizeof approver));
	TRY(pending_get(ctx, id, &ch, &body));
	const json_t *request = json_object_get(body, "request");
	struct approve_job j = {
	    .ctx = ctx,
	    .ch = &ch,
	    .approver = approver,
	    .proposer = json_string_value(json_object_get(body, "proposer")),
	    .op = json_string_value(json_object_get(body, "op")),
	    .customer = target_of(request, "customer"),
	    .account = target_of(request, "account"),
	};
	json_int_t puid = json_integer_value(json_object_get(body, "proposer_uid"));
	if (j.proposer == NULL || j.op == NULL || !json_is_object(request)) {
		r = AUTHD_ERR_INTERNAL;
		goto out;
	}
	j.self = strcmp(j.proposer, approver) == 0 || puid == (json_int_t)ctx->peer->uid;
	if ((r = store_write(ctx->d->store, approve_fn, &j)) < 0) {
		if (r == AUTHD_ERR_EXPIRED)
			snprintf(ctx->msg, sizeof ctx->msg, "pending action expired or already decided");
		goto out;
	}
	if (j.refused != NULL) {
		if (j.self)
			snprintf(ctx->msg, sizeof ctx->msg,
			         "four-eyes: the proposer cannot approve their own action");
		else if (strcmp(j.refused, "approver_frozen") == 0)
			snprintf(ctx->msg, sizeof ctx->msg,
			         "four-eyes: the approver staff:%s is frozen in authd", approver);
		else if (strcmp(j.refused, "approver_locked") == 0)
			snprintf(ctx->msg, sizeof ctx->msg,
			         "four-eyes: the approver staff:%s is locked in authd", approver);
		else
			snprintf(ctx->msg, sizeof ctx->msg,
			         "four-eyes: the approver has not passed step-up recently (log in through "
			         "pam_authd)");
		r = AUTHD_ERR_UNAUTHORIZED;
		goto out;
	}
	/* Approved and consumed: run it once, both people named in its audit record. */
	snprintf(ctx->actor, sizeof ctx->actor, "uid:%u+uid:%u", (unsigned)puid, (unsigned)ctx->peer->uid);
	if ((inner = json_object()) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if (strcmp(j.op, "enroll_fido2_finish") == 0) {
		const json_t *enr = json_object_get(body, "enrollment");
		const char *subj = json_string_value(json_object_get(enr, "subject"));
		const char *chal = json_string_value(json_object_get(enr, "challenge"));
		struct store_enrollment e = {0};
		uint8_t *raw = NULL;
		size_t rl = 0;
		if (subj == NULL || chal == NULL || b64url_decode(chal, strlen(chal), 32, &raw, &rl) < 0 ||
		    rl != 32) {
			free(raw);
			r = AUTHD_ERR_INTERNAL;
			goto out;
		}
		memcpy(e.challenge, raw, 32);
		free(raw);
		snprintf(e.subject, sizeof e.subject, "%s", subj);
		r = enroll_fido2_complete(ctx, &e, request, inner);
	} else if (strcmp(j.op, "enroll_face") == 0)
		r = enroll_commit_held(ctx, json_object_get(body, "held"), inner);
	else
		r = ops_run(ctx, j.op, request, inner);
	if (r < 0) {
		struct exec_fail_job f = {ctx, j.op, j.customer, j.account, authd_wire_code(r)};
		if (store_write(ctx->d->store, exec_fail_fn, &f) < 0)
			r = AUTHD_ERR_INTERNAL;
		goto out;
	}
	json_object_set_new(reply, "result", json_string("executed"));
	json_object_set_new(reply, "pending_id", json_string(ch.id));
	json_object_set_new(reply, "op", json_string(j.op));
	json_object_set_new(reply, "proposer", json_string(j.proposer));
	json_object_set_new(reply, "approver", json_string(approver));
	json_object_set(reply, "reply", inner);
	r = 0;
out:
	json_decref(inner);
	json_decref(body);
	return r;
}
