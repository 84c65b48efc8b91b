/* health and jwks: open to every allowed peer. */
#include <string.h>

#include "daemon.h"
#include "ops.h"

int
op_health(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	const char *store = store_health(ctx->d->store);
	json_t *plugins = json_array();
	if (plugins == NULL)
		return AUTHD_ERR_NOMEM;
	for (size_t i = 0; i < ctx->d->plugins->n; i++)
		json_array_append_new(plugins, json_string(ctx->d->plugins->p[i].api->name));
	/* failed: no write or read is served until a restart (store.c); degraded may pass by itself */
	const char *status = strcmp(store, "ok") == 0           ? "ok"
	                     : strncmp(store, "failed", 6) == 0 ? "failed"
	                                                        : "degraded";
	json_object_set_new(reply, "status", json_string(status));
	json_object_set_new(reply, "version", json_string(AUTHD_VERSION));
	json_object_set_new(reply, "plugins", plugins);
	json_object_set_new(reply, "store", json_pack("{s:s,s:s}", "kind", store_kind(ctx->d->store), "state", store));
	return 0;
}

int
op_jwks(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	json_t *j = token_jwks(ctx->d->keys);
	if (j == NULL)
		return AUTHD_ERR_NOMEM;
	json_object_update(reply, j);
	json_decref(j);
	return 0;
}
