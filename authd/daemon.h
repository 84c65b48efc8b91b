/*
 * The daemon's shared state: what every op handler can reach. Created in
 * main.c, read by the worker threads. The config and geo sources can be
 * replaced by SIGHUP; handlers use a refcounted snapshot taken at the start
 * of each request so a reload never pulls them out from under a request.
 */
#ifndef AUTHD_DAEMON_H
#define AUTHD_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "geo.h"
#include "plugin.h"
#include "store.h"
#include "tmpl.h"
#include "token.h"

struct authd_snap {
	struct config *cfg;
	struct geo *geo;
	atomic_int refs;
};

struct authd {
	pthread_mutex_t snap_mu;
	struct authd_snap *snap;
	struct store *store;
	struct token_keyring *keys;
	struct plugin_set *plugins;
	struct tmpl_key *tmpl;
	int64_t started;
	atomic_uint_fast64_t n_requests, n_errors, n_allow, n_step_up, n_deny, n_approved, n_rejected;
};

struct authd_snap *authd_snap_get(struct authd *d);
void authd_snap_put(struct authd_snap **s);
/* Installs cfg/geo as the new snapshot (takes ownership). */
void authd_snap_set(struct authd *d, struct config *cfg, struct geo *geo);

#endif
