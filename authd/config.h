/*
 * Configuration: the INI keys of DESIGN.md section 3, their defaults, and
 * the parser (inih). A config is immutable once loaded; SIGHUP loads a new
 * one and swaps it in (see server.c). Thread-safe to read.
 */
#ifndef AUTHD_CONFIG_H
#define AUTHD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define CONFIG_MAX_IDS 32
#define CONFIG_MAX_ORIGINS 16

struct config_ids {
	uid_t uids[CONFIG_MAX_IDS];
	size_t n_uids;
	gid_t gids[CONFIG_MAX_IDS];
	size_t n_gids;
};

enum overseas_mode { OVERSEAS_OFF, OVERSEAS_FLAG, OVERSEAS_STEP_UP };

/* Rules that [policy] disabled_rules may switch off (extension), one bit each. */
enum config_rule {
	CONFIG_RULE_BUSINESS_HIGH_RISK = 1u << 0,
	CONFIG_RULE_BUSINESS_OVERSEAS = 1u << 1,
	CONFIG_RULE_BUSINESS_NEW_ENTITY = 1u << 2,
	CONFIG_RULE_PERSONAL_AMOUNT = 1u << 3,
	CONFIG_RULE_PERSONAL_DAILY_TOTAL = 1u << 4,
	CONFIG_RULE_NEW_DEVICE = 1u << 5,
	CONFIG_RULE_OVERSEAS = 1u << 6,
};

#define CONFIG_MAX_CURRENCIES 16

/*
 * Thresholds of one currency other than VND, in its minor unit (extension:
 * [policy] personal_amount.USD = 40000 ...). The unsuffixed DESIGN.md keys
 * are the VND thresholds and never apply to another currency.
 */
struct config_thresholds {
	char currency[4];
	int64_t personal_amount;
	int64_t personal_daily;
	int64_t business_new_amount;
	int64_t business_new_daily;
};

struct config {
	char *path; /* the file it came from, or NULL for the embedded default */
	struct {
		char *socket;
		char *state_dir;
		struct config_ids clients;
		struct config_ids admins;
		struct config_ids pam;       /* extension: peers allowed login_* */
		size_t max_frame;
		unsigned workers;            /* extension: worker threads */
		unsigned idle_timeout;       /* extension: seconds */
		unsigned max_connections;    /* extension */
		unsigned max_per_peer;       /* extension: connections per peer uid */
		char *user;                  /* extension: drop to this user after binding */
	} server;
	struct {
		char *alg; /* "ES256" or "EdDSA" */
		char *issuer;
		char *audience;
		unsigned ttl;
	} token;
	struct {
		char *home_country;
		unsigned lockout_after;
		int64_t personal_amount;
		int64_t personal_daily;
		int64_t business_new_amount;
		int64_t business_new_daily;
		int new_device;
		enum overseas_mode personal_overseas;
		int unknown_currency_step_up;  /* extension */
		unsigned business_new_months;  /* extension: "new entity" age */
		unsigned disabled_rules;       /* extension: enum config_rule bits */
		struct config_thresholds currencies[CONFIG_MAX_CURRENCIES]; /* extension */
		size_t n_currencies;
	} policy;
	struct {
		char *rir_file;
		char *mmdb;
	} geo;
	struct {
		char *rp_id;
		char *rp_name;
		char *origins[CONFIG_MAX_ORIGINS];
		size_t n_origins;
		char *user_verification; /* required | preferred | discouraged */
		unsigned challenge_ttl;
	} fido2;
	struct {
		char *models_dir;
		char *threshold;          /* kept as text: the plugin parses it */
		char *liveness_threshold;
		unsigned max_images;
	} face;
	struct {
		char *url;
		unsigned prune_interval; /* seconds between retention passes; 0: never */
		unsigned keep_expired;   /* seconds short-lived rows are kept after they expire */
	} store;
	struct {
		char *dir; /* extension: plugin directory */
	} plugins;
	struct {
		char *rp_id;              /* extension: staff FIDO2 rp_id; NULL = "pam://<hostname>" */
	} pam;
	struct {
		int four_eyes;            /* extension: sensitive admin ops on customers need a second staff member */
		unsigned four_eyes_ttl;   /* extension: seconds a pending action stays approvable */
		unsigned stepup_window;   /* extension: seconds a staff step-up (login_verify) counts as recent */
	} admin;
};

/*
 * Loads defaults, then overrides them from path when non-NULL. On error,
 * writes a message naming the file, line, section and key into err.
 * Caller frees *out with config_free.
 */
int config_load(const char *path, struct config **out, char *err, size_t errlen) AUTHD_WUR;
void config_free(struct config **c);

/* Raw lookup of a value by section and key as text (for plugins); lent. */
const char *config_get(const struct config *c, const char *section, const char *key);

int config_id_allowed(const struct config_ids *ids, uid_t uid, gid_t gid);

#endif
