/*
 * Request dispatch: one table {op, roles, handler} (ops.c) and the
 * handlers, one file per group (ops_txn.c: assess/verify/redeem;
 * ops_enroll.c: enrollment; ops_admin.c: admin ops; ops_info.c: health,
 * jwks). Handlers run on worker threads.
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

/* Helpers for handlers (ops.c). Each sets ctx->msg naming the field on error. */
int op_get_str(struct op_ctx *ctx, const json_t *obj, const char *key, size_t max, int required,
               const char **out) AUTHD_WUR;
int op_get_int(struct op_ctx *ctx, const json_t *obj, const char *key, int64_t min, int64_t max, int required,
               int64_t *out) AUTHD_WUR;
/* Random id "<prefix><22 chars>" into out (cap >= strlen(prefix) + 23). */
int op_new_id(const char *prefix, char *out, size_t cap) AUTHD_WUR;
/* Reasons array text from static strings. Caller frees. */
char *op_reasons_text(const char *const *reasons, size_t n);

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

#endif
