/*
 * Request dispatch: one table {op, roles, handler} (ops.c) and the
 * handlers, one file per group (ops_txn.c: assess/redeem; ops_verify.c:
 * verify; ops_enroll.c: enrollment; ops_admin.c: admin ops; ops_info.c:
 * health, jwks; ops_login.c: PAM logins; ops_approve.c: four-eyes).
 * Handlers run on worker threads.
 */
#ifndef AUTHD_OPS_H
#define AUTHD_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "config.h"
#include "err.h"

struct authd;
struct authd_snap;

#define ROLE_CLIENT 0x1u
#define ROLE_ADMIN 0x2u
#define ROLE_PAM 0x4u

struct peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	unsigned roles;
};

struct op_ctx {
	struct authd *d;
	struct authd_snap *snap;
	const struct config *cfg;
	const struct peer *peer;
	int64_t now;
	char actor[32];
	char msg[256]; /* error message for the reply */
	char *token;   /* an approval token, the reply's last member (proto_encode_token) */
};

/* Handler: fills reply (an object) on success; on error returns < 0 with ctx->msg set or empty. */
typedef int (*op_fn)(struct op_ctx *ctx, const json_t *req, json_t *reply);

unsigned ops_roles_for(const struct config *cfg, uid_t uid, gid_t gid);

/*
 * Runs one frame payload (or reports frame_err when payload is NULL) and
 * encodes the reply frame. Never fails: *reply is always a frame to send
 * (NULL only when out of memory). Caller frees *reply.
 */
void ops_handle_frame(struct authd *d, const struct peer *peer, const uint8_t *payload, size_t len, int frame_err,
                      uint8_t **reply, size_t *reply_len);

/*
 * Every frame a worker took from one connection, in order: requests whose op
 * is split (below) share one store batch (store_write_many); any other op
 * runs alone after everything before it was answered. emit gets each reply
 * frame in request order (NULL when out of memory); it must copy it. last is
 * 1 on the final reply of a run: time to send what has been emitted.
 */
struct ops_frame {
	const uint8_t *payload; /* NULL: report err (a framing error) */
	size_t len;
	int err;
};
typedef void (*ops_emit_fn)(void *arg, const uint8_t *reply, size_t len, int last);
void ops_handle_frames(struct authd *d, const struct peer *peer, const struct ops_frame *f, size_t n,
                       ops_emit_fn emit, void *arg);

/*
 * An op in three steps, so that the store work of many requests can share a
 * batch: prepare (parse the request into st, which is state_size zeroed
 * bytes; on error it cleans up after itself), fn (the store work, run by
 * store_write_many with st), finish (gets fn's result, fills reply, releases
 * whatever st holds; always called once prepare succeeded).
 */
struct store_tx;
struct op_split {
	size_t state_size;
	int (*prepare)(struct op_ctx *ctx, const json_t *req, void *st);
	int (*fn)(struct store_tx *tx, void *st);
	int (*finish)(struct op_ctx *ctx, void *st, int r, json_t *reply);
	/* for store_work; STORE_WORK_RERUN: fn resets its outputs in st when it starts */
	unsigned store_flags;
};
extern const struct op_split op_assess_split, op_redeem_split;
/* The three steps one after the other, for a single request. */
int op_split_run(struct op_ctx *ctx, const struct op_split *sp, const json_t *req, json_t *reply) AUTHD_WUR;

/* Helpers for handlers (ops.c). Each sets ctx->msg naming the field on error. */
int op_get_str(struct op_ctx *ctx, const json_t *obj, const char *key, size_t max, int required,
               const char **out) AUTHD_WUR;
int op_get_int(struct op_ctx *ctx, const json_t *obj, const char *key, int64_t min, int64_t max, int required,
               int64_t *out) AUTHD_WUR;
/* Random id "<prefix><22 chars>" into out (cap >= strlen(prefix) + 23). */
int op_new_id(const char *prefix, char *out, size_t cap) AUTHD_WUR;
/* Reasons array from static strings, as JSON text (caller frees) or as an array (caller decrefs). */
char *op_reasons_text(const char *const *reasons, size_t n);
json_t *op_reasons_json(const char *const *reasons, size_t n);

/*
 * One code path for every step-up verification (ops_verify.c): verify
 * (kind "txn") and login_verify (kind "login") differ only in this.
 */
struct store_challenge;
struct verify_kind {
	const char *kind;        /* the challenge kind accepted: "txn" | "login" */
	const char *audit_type;  /* "verify" | "login_verify" */
	const char *locked_reason; /* "customer_locked" | "staff_locked" */
	const char *rp_id;       /* FIDO2 rp_id and origins handed to the plugin */
	const char *const *origins;
	size_t n_origins;
	/* Runs inside the commit of an approval (daily totals, step-up marks); body is the challenge body. */
	int (*on_approved)(struct store_tx *tx, struct op_ctx *ctx, const struct store_challenge *ch,
	                   const json_t *body);
	/*
	 * What a freeze names for this challenge (the transfer's account, the
	 * staff subject), checked inside the commit: frozen since the challenge
	 * was issued means no approval, whatever the proof. NULL: not checked.
	 */
	const char *(*frozen_key)(const struct store_challenge *ch, const json_t *body);
	const char *frozen_reason; /* "account_frozen" | "staff_frozen" */
};
int verify_challenge(struct op_ctx *ctx, const json_t *req, const struct verify_kind *k, json_t *reply) AUTHD_WUR;

/* Staff identities (ops_login.c): "staff:<user>" subjects, the PAM rp_id, recent step-ups. */
#define STAFF_PREFIX "staff:"
/* 1 when s names a staff subject. */
int staff_subject_is(const char *s);
/* 1 when u is acceptable as a staff user name (letters, digits, . _ - @ $; not starting with - or .). */
int staff_user_ok(const char *u);
/* [pam] rp_id, else "pam://<hostname>", into out. */
void staff_rp_id(const struct config *cfg, char *out, size_t cap);
/* 0 when user passed step-up (an approved login_verify) within [admin] stepup_window; AUTHD_ERR_UNAUTHORIZED if not. */
int staff_stepup_recent(struct store_tx *tx, struct op_ctx *ctx, const char *user, int64_t *when) AUTHD_WUR;

struct txn;
struct policy_facts;
/* What policy_decide needs to know from the store about t, on the Hanoi day of now (assess, policy_explain). */
int op_policy_facts(struct store_tx *tx, const struct txn *t, int64_t now, struct policy_facts *f) AUTHD_WUR;

/* Four-eyes (ops_approve.c): 1 when this request must become a pending action. */
int four_eyes_required(struct op_ctx *ctx, const char *op, const json_t *req);
/* Stores the request as a pending action and fills reply {"result":"pending","pending_id",...}. */
int four_eyes_propose(struct op_ctx *ctx, const char *op, const json_t *req, json_t *reply) AUTHD_WUR;
/* Runs the handler of a registered op (ops.c), for an approved pending action. */
int ops_run(struct op_ctx *ctx, const char *op, const json_t *req, json_t *reply) AUTHD_WUR;

/* FIDO2 enrollment in two steps (ops_enroll.c), so four-eyes can hold a finish: take the pending
 * enrollment named by req (single use), later complete it with req's "fido2" object. */
struct store_enrollment;
int enroll_fido2_take(struct op_ctx *ctx, const json_t *req, struct store_enrollment *e) AUTHD_WUR;
int enroll_fido2_complete(struct op_ctx *ctx, const struct store_enrollment *e, const json_t *req,
                          json_t *reply) AUTHD_WUR;

/*
 * Face enrollment held for four-eyes (ops_enroll.c): the plugin runs now; what it accepted is
 * sealed into *held (caller decrefs; NULL when it rejected, reply then says why) and stored
 * only by enroll_commit_held. No raw image is kept.
 */
int enroll_face_hold(struct op_ctx *ctx, const json_t *req, json_t *reply, json_t **held) AUTHD_WUR;
int enroll_commit_held(struct op_ctx *ctx, const json_t *held, json_t *reply) AUTHD_WUR;

/* handlers */
int op_health(struct op_ctx *, const json_t *, json_t *);
int op_jwks(struct op_ctx *, const json_t *, json_t *);
int op_assess(struct op_ctx *, const json_t *, json_t *);
int op_verify(struct op_ctx *, const json_t *, json_t *);
int op_redeem(struct op_ctx *, const json_t *, json_t *);
int op_enroll_fido2_begin(struct op_ctx *, const json_t *, json_t *);
int op_enroll_fido2_finish(struct op_ctx *, const json_t *, json_t *);
int op_enroll_face(struct op_ctx *, const json_t *, json_t *);
int op_delete_face(struct op_ctx *, const json_t *, json_t *);
int op_freeze(struct op_ctx *, const json_t *, json_t *);
int op_unfreeze(struct op_ctx *, const json_t *, json_t *);
int op_unlock(struct op_ctx *, const json_t *, json_t *);
int op_list_credentials(struct op_ctx *, const json_t *, json_t *);
int op_revoke_credential(struct op_ctx *, const json_t *, json_t *);
int op_stats(struct op_ctx *, const json_t *, json_t *);
int op_rotate_key(struct op_ctx *, const json_t *, json_t *);
int op_audit_verify(struct op_ctx *, const json_t *, json_t *);
int op_audit_export(struct op_ctx *, const json_t *, json_t *);
int op_policy_explain(struct op_ctx *, const json_t *, json_t *);
int op_geo_lookup(struct op_ctx *, const json_t *, json_t *);
int op_login_begin(struct op_ctx *, const json_t *, json_t *);
int op_login_verify(struct op_ctx *, const json_t *, json_t *);
int op_login_status(struct op_ctx *, const json_t *, json_t *);
int op_approve(struct op_ctx *, const json_t *, json_t *);
int op_pending_show(struct op_ctx *, const json_t *, json_t *);

#endif
