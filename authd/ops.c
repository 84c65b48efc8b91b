#include "ops.h"

#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "proto.h"
#include "util.h"

/* The op is a sensitive admin action: four-eyes may turn it into a pending action (ops_approve.c). */
#define OP_FOUR_EYES 0x1u

static const struct op_def {
	const char *name;
	unsigned roles;
	op_fn fn;
	unsigned flags;
} op_table[] = {
	{"health", ROLE_CLIENT | ROLE_ADMIN | ROLE_PAM, op_health, 0},
	{"jwks", ROLE_CLIENT | ROLE_ADMIN | ROLE_PAM, op_jwks, 0},
	{"assess", ROLE_CLIENT, op_assess, 0},
	{"verify", ROLE_CLIENT, op_verify, 0},
	{"redeem", ROLE_CLIENT, op_redeem, 0},
	/* Admins enroll staff ("staff" field) and, under four-eyes, change customers' enrollments. */
	{"enroll_fido2_begin", ROLE_CLIENT | ROLE_ADMIN, op_enroll_fido2_begin, 0},
	{"enroll_fido2_finish", ROLE_CLIENT | ROLE_ADMIN, op_enroll_fido2_finish, OP_FOUR_EYES},
	{"enroll_face", ROLE_CLIENT | ROLE_ADMIN, op_enroll_face, OP_FOUR_EYES},
	{"delete_face", ROLE_CLIENT | ROLE_ADMIN, op_delete_face, OP_FOUR_EYES},
	{"freeze", ROLE_ADMIN, op_freeze, 0},
	{"unfreeze", ROLE_ADMIN, op_unfreeze, OP_FOUR_EYES},
	{"unlock", ROLE_ADMIN, op_unlock, OP_FOUR_EYES},
	{"list_credentials", ROLE_ADMIN, op_list_credentials, 0},
	{"revoke_credential", ROLE_ADMIN, op_revoke_credential, OP_FOUR_EYES},
	{"stats", ROLE_ADMIN, op_stats, 0},
	{"rotate_key", ROLE_ADMIN, op_rotate_key, 0},
	{"audit_verify", ROLE_ADMIN, op_audit_verify, 0},
	{"audit_export", ROLE_ADMIN, op_audit_export, 0},
	{"policy_explain", ROLE_ADMIN, op_policy_explain, 0},
	{"geo_lookup", ROLE_ADMIN, op_geo_lookup, 0},
	{"login_begin", ROLE_PAM, op_login_begin, 0},
	{"login_verify", ROLE_PAM, op_login_verify, 0},
	{"login_status", ROLE_PAM, op_login_status, 0},
	{"approve", ROLE_ADMIN, op_approve, 0},
	{"pending_show", ROLE_ADMIN, op_pending_show, 0},
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

static json_t *
dispatch(struct authd *d, const struct peer *peer, const uint8_t *payload, size_t len, int frame_err)
{
	struct proto_req req = {0};
	struct op_ctx ctx = {.d = d, .peer = peer};
	json_t *reply = NULL, *body = NULL;
	int r;

	atomic_fetch_add(&d->n_requests, 1);
	if (payload == NULL) {
		r = frame_err;
		snprintf(ctx.msg, sizeof ctx.msg, r == AUTHD_ERR_TOO_LARGE ? "frame larger than max_frame; closing"
		                                                             : "invalid frame length; closing");
		goto fail;
	}
	if ((r = proto_parse(payload, len, &req, ctx.msg, sizeof ctx.msg)) < 0)
		goto fail;
	const struct op_def *def = NULL;
	for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
		if (strcmp(op_table[i].name, req.op) == 0)
			def = &op_table[i];
	if (def == NULL) {
		r = AUTHD_ERR_UNSUPPORTED;
		snprintf(ctx.msg, sizeof ctx.msg, "unknown op '%.64s'", req.op);
		goto fail;
	}
	if ((def->roles & peer->roles) == 0) {
		r = AUTHD_ERR_UNAUTHORIZED;
		snprintf(ctx.msg, sizeof ctx.msg, "op '%s' is not allowed for this peer (uid %u)", def->name,
		         (unsigned)peer->uid);
		goto fail;
	}
	ctx.snap = authd_snap_get(d);
	ctx.cfg = ctx.snap->cfg;
	ctx.now = util_now();
	snprintf(ctx.actor, sizeof ctx.actor, "uid:%u", (unsigned)peer->uid);
	if ((body = json_object()) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto fail;
	}
	if ((def->flags & OP_FOUR_EYES) && four_eyes_required(&ctx, def->name, req.root))
		r = four_eyes_propose(&ctx, def->name, req.root, body);
	else
		r = def->fn(&ctx, req.root, body);
	if (r < 0)
		goto fail;
	reply = proto_reply_ok(req.id, body);
	body = NULL;
	goto out;
fail:
	atomic_fetch_add(&d->n_errors, 1);
	if (r == AUTHD_ERR_INTERNAL || r == AUTHD_ERR_NOMEM || r == AUTHD_ERR_CRYPTO || r == AUTHD_ERR_IO)
		log_msg(LOG_ERR, "op %s failed: %s %s", req.op ? req.op : "?", authd_strerror(r), ctx.msg);
	/* Internal detail stays in the log; the peer learns only the code. */
	if (authd_wire_code(r)[0] == 'i' && ctx.msg[0] != '\0')
		snprintf(ctx.msg, sizeof ctx.msg, "internal error");
	reply = proto_reply_err(req.id, r, ctx.msg);
out:
	json_decref(body);
	authd_snap_put(&ctx.snap);
	proto_req_clear(&req);
	return reply;
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

void
ops_handle_frame(struct authd *d, const struct peer *peer, const uint8_t *payload, size_t len, int frame_err,
                 uint8_t **reply, size_t *reply_len)
{
	json_t *v = dispatch(d, peer, payload, len, frame_err);
	*reply = NULL;
	*reply_len = 0;
	if (v != NULL && proto_encode(v, reply, reply_len) < 0) {
		*reply = NULL;
		*reply_len = 0;
	}
	json_decref(v);
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

int
op_new_id(const char *prefix, char *out, size_t cap)
{
	uint8_t rnd[16];
	TRY(util_random(rnd, sizeof rnd));
	char *b = b64url_encode(rnd, sizeof rnd);
	if (b == NULL)
		return AUTHD_ERR_NOMEM;
	int n = snprintf(out, cap, "%s%s", prefix, b);
	free(b);
	return n > 0 && (size_t)n < cap ? 0 : AUTHD_ERR_INTERNAL;
}

char *
op_reasons_text(const char *const *reasons, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(reasons[i]));
	char *t = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return t;
}
