#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "proto.h"
#include "store.h"
#include "util.h"

/* The op is a sensitive admin action: four-eyes may turn it into a pending action (ops_approve.c). */
#define OP_FOUR_EYES 0x1u

static const struct op_def {
	const char *name;
	unsigned roles;
	op_fn fn;
	unsigned flags;
	const struct op_split *split; /* the op can share a store batch with its neighbours */
} op_table[] = {
	{"health", ROLE_CLIENT | ROLE_ADMIN | ROLE_PAM, op_health, 0, NULL},
	{"jwks", ROLE_CLIENT | ROLE_ADMIN | ROLE_PAM, op_jwks, 0, NULL},
	{"assess", ROLE_CLIENT, op_assess, 0, &op_assess_split},
	{"verify", ROLE_CLIENT, op_verify, 0, NULL},
	{"redeem", ROLE_CLIENT, op_redeem, 0, &op_redeem_split},
	/* Admins enroll staff ("staff" field) and, under four-eyes, change customers' enrollments. */
	{"enroll_fido2_begin", ROLE_CLIENT | ROLE_ADMIN, op_enroll_fido2_begin, 0, NULL},
	{"enroll_fido2_finish", ROLE_CLIENT | ROLE_ADMIN, op_enroll_fido2_finish, OP_FOUR_EYES, NULL},
	{"enroll_face", ROLE_CLIENT | ROLE_ADMIN, op_enroll_face, OP_FOUR_EYES, NULL},
	{"delete_face", ROLE_CLIENT | ROLE_ADMIN, op_delete_face, OP_FOUR_EYES, NULL},
	{"freeze", ROLE_ADMIN, op_freeze, 0, NULL},
	{"unfreeze", ROLE_ADMIN, op_unfreeze, OP_FOUR_EYES, NULL},
	{"unlock", ROLE_ADMIN, op_unlock, OP_FOUR_EYES, NULL},
	{"list_credentials", ROLE_ADMIN, op_list_credentials, 0, NULL},
	{"revoke_credential", ROLE_ADMIN, op_revoke_credential, OP_FOUR_EYES, NULL},
	{"stats", ROLE_ADMIN, op_stats, 0, NULL},
	{"rotate_key", ROLE_ADMIN, op_rotate_key, 0, NULL},
	{"audit_verify", ROLE_ADMIN, op_audit_verify, 0, NULL},
	{"audit_export", ROLE_ADMIN, op_audit_export, 0, NULL},
	{"policy_explain", ROLE_ADMIN, op_policy_explain, 0, NULL},
	{"geo_lookup", ROLE_ADMIN, op_geo_lookup, 0, NULL},
	{"login_begin", ROLE_PAM, op_login_begin, 0, NULL},
	{"login_verify", ROLE_PAM, op_login_verify, 0, NULL},
	{"login_status", ROLE_PAM, op_login_status, 0, NULL},
	{"approve", ROLE_ADMIN, op_approve, 0, NULL},
	{"pending_show", ROLE_ADMIN, op_pending_show, 0, NULL},
};

unsigned
ops_roles_for(const struct config *cfg, uid_t uid, gid_t gid)
{
	unsigned roles = 0;
	if (config_id_allowed(&cfg->server.clients, uid, gid))
		roles |= ROLE_CLIENT;
	if (config_id_allowed(&cfg->server.admins, uid, gid))
		roles |= ROLE_ADMIN;
	if (config_id_allowed(&cfg->server.pam, uid, gid))
		roles |= ROLE_PAM;
	return roles;
}

int
op_split_run(struct op_ctx *ctx, const struct op_split *sp, const json_t *req, json_t *reply)
{
	void *st = calloc(1, sp->state_size);
	int r;
	if (st == NULL)
		return AUTHD_ERR_NOMEM;
	if ((r = sp->prepare(ctx, req, st)) == 0)
		r = sp->finish(ctx, st, store_write(ctx->d->store, sp->fn, st), reply);
	free(st);
	return r;
}

/*
 * One request from frame to reply: begin (envelope, op, roles), run (the
 * handler, or a split op's steps), end (the reply envelope).
 */
struct slot {
	struct op_ctx ctx;
	struct proto_req req;
	const struct op_def *def;
	json_t *body;
	void *st; /* a split op's state while its store work is pending */
	int r;
};

/* 0: run the op; < 0 (also in sl->r): the reply is that error. */
static int
slot_begin(struct authd *d, const struct peer *peer, const uint8_t *payload, size_t len, int frame_err,
           struct slot *sl)
{
	struct op_ctx *ctx = &sl->ctx;
	ctx->d = d;
	ctx->peer = peer;
	atomic_fetch_add(&d->n_requests, 1);
	if (payload == NULL) {
		snprintf(ctx->msg, sizeof ctx->msg, frame_err == AUTHD_ERR_TOO_LARGE ? "frame larger than max_frame; closing"
		                                                                     : "invalid frame length; closing");
		return sl->r = frame_err;
	}
	if ((sl->r = proto_parse(payload, len, &sl->req, ctx->msg, sizeof ctx->msg)) < 0)
		return sl->r;
	for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
		if (strcmp(op_table[i].name, sl->req.op) == 0)
			sl->def = &op_table[i];
	if (sl->def == NULL) {
		snprintf(ctx->msg, sizeof ctx->msg, "unknown op '%.64s'", sl->req.op);
		return sl->r = AUTHD_ERR_UNSUPPORTED;
	}
	if ((sl->def->roles & peer->roles) == 0) {
		snprintf(ctx->msg, sizeof ctx->msg, "op '%s' is not allowed for this peer (uid %u)", sl->def->name,
		         (unsigned)peer->uid);
		return sl->r = AUTHD_ERR_UNAUTHORIZED;
	}
	ctx->snap = authd_snap_get(d);
	ctx->cfg = ctx->snap->cfg;
	ctx->now = util_now();
	snprintf(ctx->actor, sizeof ctx->actor, "uid:%u", (unsigned)peer->uid);
	if ((sl->body = json_object()) == NULL)
		return sl->r = AUTHD_ERR_NOMEM;
	return 0;
}

static void
slot_run(struct slot *sl)
{
	struct op_ctx *ctx = &sl->ctx;
	const struct op_def *def = sl->def;
	if ((def->flags & OP_FOUR_EYES) && four_eyes_required(ctx, def->name, sl->req.root))
		sl->r = four_eyes_propose(ctx, def->name, sl->req.root, sl->body);
	else
		sl->r = def->fn(ctx, sl->req.root, sl->body);
}

/* The reply frame of a finished slot; frees the slot's contents. *out NULL when out of memory. */
static void
slot_end(struct authd *d, struct slot *sl, uint8_t **out, size_t *out_len)
{
	struct op_ctx *ctx = &sl->ctx;
	json_t *reply;
	int r = sl->r;
	if (r == 0) {
		reply = proto_reply_ok(sl->req.id, sl->body);
		sl->body = NULL;
	} else {
		atomic_fetch_add(&d->n_errors, 1);
		if (r == AUTHD_ERR_INTERNAL || r == AUTHD_ERR_NOMEM || r == AUTHD_ERR_CRYPTO || r == AUTHD_ERR_IO)
			log_msg(LOG_ERR, "op %s failed: %s %s", sl->req.op ? sl->req.op : "?", authd_strerror(r), ctx->msg);
		/* Internal detail stays in the log; the peer learns only the code. */
		if (authd_wire_code(r)[0] == 'i' && ctx->msg[0] != '\0')
			snprintf(ctx->msg, sizeof ctx->msg, "internal error");
		reply = proto_reply_err(sl->req.id, r, ctx->msg);
		/* A message that is not valid UTF-8 cannot be sent: the code alone still is. */
		if (reply == NULL)
			reply = proto_reply_err(sl->req.id, r, NULL);
	}
	*out = NULL;
	*out_len = 0;
	if (reply != NULL && proto_encode_token(reply, r == 0 ? ctx->token : NULL, out, out_len) < 0) {
		*out = NULL;
		*out_len = 0;
	}
	free(ctx->token);
	ctx->token = NULL;
	json_decref(reply);
	json_decref(sl->body);
	sl->body = NULL;
	authd_snap_put(&ctx->snap);
	proto_req_clear(&sl->req);
}

void
ops_handle_frame(struct authd *d, const struct peer *peer, const uint8_t *payload, size_t len, int frame_err,
                 uint8_t **reply, size_t *reply_len)
{
	struct slot sl = {0};
	if (slot_begin(d, peer, payload, len, frame_err, &sl) == 0) {
		if (sl.def->split != NULL && !(sl.def->flags & OP_FOUR_EYES))
			sl.r = op_split_run(&sl.ctx, sl.def->split, sl.req.root, sl.body);
		else
			slot_run(&sl);
	}
	slot_end(d, &sl, reply, reply_len);
}

/*
 * The split ops among sl[from..to) share one store_write_many(); then the
 * replies of every slot in that range go out in order.
 */
static void
group_flush(struct authd *d, struct slot *sl, struct store_work *w, size_t from, size_t to, ops_emit_fn emit,
            void *arg)
{
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		if (sl[i].st != NULL)
			w[n++] = (struct store_work){sl[i].def->split->fn, sl[i].st, 0,
			                             sl[i].def->split->store_flags};
	store_write_many(d->store, w, n);
	n = 0;
	for (size_t i = from; i < to; i++) {
		if (sl[i].st != NULL) {
			const struct op_split *sp = sl[i].def->split;
			sl[i].r = sp->finish(&sl[i].ctx, sl[i].st, w[n++].result, sl[i].body);
			free(sl[i].st);
			sl[i].st = NULL;
		}
		uint8_t *out;
		size_t out_len;
		slot_end(d, &sl[i], &out, &out_len);
		emit(arg, out, out_len, i + 1 == to);
		free(out);
	}
}

void
ops_handle_frames(struct authd *d, const struct peer *peer, const struct ops_frame *f, size_t n, ops_emit_fn emit,
                  void *arg)
{
	struct slot *sl = calloc(n, sizeof *sl);
	struct store_work *w = calloc(n, sizeof *w);
	size_t from = 0;

	if (sl == NULL || w == NULL) {
		free(sl);
		free(w);
		for (size_t i = 0; i < n; i++) {
			uint8_t *out;
			size_t out_len;
			ops_handle_frame(d, peer, f[i].payload, f[i].len, f[i].err, &out, &out_len);
			emit(arg, out, out_len, 1);
			free(out);
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (slot_begin(d, peer, f[i].payload, f[i].len, f[i].err, &sl[i]) < 0)
			continue; /* its error reply keeps its place */
		const struct op_split *sp = sl[i].def->split;
		if (sp != NULL && !(sl[i].def->flags & OP_FOUR_EYES)) {
			if ((sl[i].st = calloc(1, sp->state_size)) == NULL)
				sl[i].r = AUTHD_ERR_NOMEM;
			else if ((sl[i].r = sp->prepare(&sl[i].ctx, sl[i].req.root, sl[i].st)) < 0) {
				free(sl[i].st);
				sl[i].st = NULL;
			}
			continue;
		}
		/* Anything else runs alone, after everything before it has been answered. */
		group_flush(d, sl, w, from, i, emit, arg);
		slot_run(&sl[i]);
		group_flush(d, sl, w, i, i + 1, emit, arg);
		from = i + 1;
	}
	group_flush(d, sl, w, from, n, emit, arg);
	free(sl);
	free(w);
}

int
ops_run(struct op_ctx *ctx, const char *op, const json_t *req, json_t *reply)
{
	for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
		if (strcmp(op_table[i].name, op) == 0)
			return op_table[i].fn(ctx, req, reply);
	snprintf(ctx->msg, sizeof ctx->msg, "unknown op '%.64s'", op);
	return AUTHD_ERR_UNSUPPORTED;
}

int
op_get_str(struct op_ctx *ctx, const json_t *obj, const char *key, size_t max, int required, const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		snprintf(ctx->msg, sizeof ctx->msg, "missing field '%s'", key);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (!json_is_string(v)) {
		snprintf(ctx->msg, sizeof ctx->msg, "field '%s' must be a string", key);
		return AUTHD_ERR_BAD_REQUEST;
	}
	size_t len = json_string_length(v);
	if (len == 0 || len > max) {
		snprintf(ctx->msg, sizeof ctx->msg, "field '%s' must be 1 to %zu bytes", key, max);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (!util_is_clean_utf8(json_string_value(v), len)) {
		snprintf(ctx->msg, sizeof ctx->msg, "field '%s' contains control characters", key);
		return AUTHD_ERR_BAD_REQUEST;
	}
	*out = json_string_value(v);
	return 0;
}

int
op_get_int(struct op_ctx *ctx, const json_t *obj, const char *key, int64_t min, int64_t max, int required,
           int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		snprintf(ctx->msg, sizeof ctx->msg, "missing field '%s'", key);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(ctx->msg, sizeof ctx->msg, "field '%s' must be an integer in [%lld, %lld]", key,
		         (long long)min, (long long)max);
		return AUTHD_ERR_BAD_REQUEST;
	}
	*out = json_integer_value(v);
	return 0;
}

/*
 * Ids are public (token and challenge ids), so each thread draws their
 * randomness 32 ids at a time: one DRBG call (with its fork check) instead
 * of one per id. Bytes handed out are wiped from the pool.
 */
static _Thread_local struct {
	uint8_t b[512];
	size_t left;
} id_pool;

int
op_new_id(const char *prefix, char *out, size_t cap)
{
	uint8_t rnd[16];
	if (id_pool.left < sizeof rnd) {
		TRY(util_random(id_pool.b, sizeof id_pool.b));
		id_pool.left = sizeof id_pool.b;
	}
	uint8_t *p = id_pool.b + sizeof id_pool.b - id_pool.left;
	memcpy(rnd, p, sizeof rnd);
	util_wipe(p, sizeof rnd);
	id_pool.left -= sizeof rnd;
	char *b = b64url_encode(rnd, sizeof rnd);
	if (b == NULL)
		return AUTHD_ERR_NOMEM;
	int n = snprintf(out, cap, "%s%s", prefix, b);
	free(b);
	return n > 0 && (size_t)n < cap ? 0 : AUTHD_ERR_INTERNAL;
}

json_t *
op_reasons_json(const char *const *reasons, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(reasons[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

char *
op_reasons_text(const char *const *reasons, size_t n)
{
	json_t *a = op_reasons_json(reasons, n);
	char *t = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return t;
}
