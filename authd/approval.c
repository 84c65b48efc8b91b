#include "approval.h"

#include <stdio.h>
#include <string.h>

#include "authd_plugin.h"
#include "daemon.h"
#include "ops.h"
#include "store.h"
#include "token.h"
#include "util.h"

static json_t *
amr_json(uint32_t amr)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {{AUTHD_AMR_HWK, "hwk"}, {AUTHD_AMR_SWK, "swk"}, {AUTHD_AMR_FACE, "face"},
	             {AUTHD_AMR_USER, "user"}, {AUTHD_AMR_PIN, "pin"}};
	json_t *a = json_array();
	for (size_t i = 0; a && i < sizeof names / sizeof names[0]; i++)
		if (amr & names[i].bit)
			json_array_append_new(a, json_string(names[i].name));
	return a;
}

int
approval_token(struct op_ctx *ctx, const struct approval *a, char **token)
{
	char *hash = b64url_encode(a->txn_hash, 32);
	json_t *claims = NULL;
	int r = AUTHD_ERR_NOMEM;
	*token = NULL;
	if (hash == NULL)
		goto out;
	claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:o,s:{s:s,s:s},s:O}", "iss", ctx->cfg->token.issuer, "aud",
	                   ctx->cfg->token.audience, "sub", a->subject, "iat", (json_int_t)ctx->now, "exp",
	                   (json_int_t)(ctx->now + ctx->cfg->token.ttl), "jti", a->jti, "acr",
	                   a->amr ? "urn:authd:acr:stepup" : "urn:authd:acr:none", "amr", amr_json(a->amr), "txn",
	                   "id", a->txn_id, "hash", hash, "rsn", a->reasons);
	if (claims == NULL)
		goto out;
	r = token_sign(ctx->d->keys, TOKEN_TYP, claims, token);
out:
	free(hash);
	json_decref(claims);
	return r;
}

json_t *
approval_challenge_json(struct op_ctx *ctx, const struct store_challenge *ch, json_t *allow)
{
	char *chal = b64url_encode(ch->challenge, 32);
	json_t *methods = json_array(), *c = NULL;
	/* Our own reference, handed to json_pack with "o" (taken even when packing fails). */
	json_t *allow_list = allow ? json_incref(allow) : json_array();
	if (chal == NULL || methods == NULL || allow_list == NULL) {
		json_decref(allow_list);
		goto out;
	}
	for (size_t i = 0; i < ctx->d->plugins->n; i++)
		json_array_append_new(methods, json_string(ctx->d->plugins->p[i].api->name));
	c = json_pack("{s:s,s:I,s:O,s:{s:s,s:s,s:o,s:s,s:I},s:{s:i}}", "id", ch->id, "expires_at",
	              (json_int_t)ch->expires, "methods", methods, "fido2", "challenge", chal, "rp_id",
	              ctx->cfg->fido2.rp_id, "allow_credentials", allow_list, "user_verification",
	              ctx->cfg->fido2.user_verification, "timeout_ms",
	              (json_int_t)((ch->expires - ctx->now) * 1000), "face", "max_images", (int)ctx->cfg->face.max_images);
out:
	free(chal);
	json_decref(methods);
	return c;
}

int
approval_check(struct op_ctx *ctx, const char *token, json_t **claims)
{
	json_t *jwks = token_jwks(ctx->d->keys), *c = NULL;
	char why[128] = "";
	int r;
	*claims = NULL;
	if (jwks == NULL)
		return AUTHD_ERR_NOMEM;
	r = token_verify(jwks, token, TOKEN_TYP, NULL, 0, &c, why, sizeof why);
	json_decref(jwks);
	if (r < 0) {
		snprintf(ctx->msg, sizeof ctx->msg, "token rejected: %s", why);
		return AUTHD_ERR_BAD_REQUEST;
	}
	/* 5 s leeway: instances sharing a store may differ by that much. */
	r = token_check_claims(c, ctx->cfg->token.issuer, ctx->cfg->token.audience, ctx->now, 5, why, sizeof why);
	if (r < 0) {
		snprintf(ctx->msg, sizeof ctx->msg, r == AUTHD_ERR_EXPIRED ? "token expired" : "token rejected: %s", why);
		json_decref(c);
		return r == AUTHD_ERR_EXPIRED ? r : AUTHD_ERR_BAD_REQUEST;
	}
	*claims = c;
	return 0;
}
