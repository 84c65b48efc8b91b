#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "util.h"

enum key_type { K_STR, K_UINT, K_I64, K_BOOL, K_IDS, K_ORIGINS, K_OVERSEAS, K_SIZE, K_RULES };

struct key_def {
	const char *section;
	const char *key;
	enum key_type type;
	size_t off;
	int64_t min, max;
};

#define F(field) offsetof(struct config, field)
static const struct key_def keys[] = {
	{"server", "socket", K_STR, F(server.socket), 0, 0},
	{"server", "state_dir", K_STR, F(server.state_dir), 0, 0},
	{"server", "clients", K_IDS, F(server.clients), 0, 0},
	{"server", "admins", K_IDS, F(server.admins), 0, 0},
	{"server", "pam", K_IDS, F(server.pam), 0, 0},
	{"server", "max_frame", K_SIZE, F(server.max_frame), 64, 64 << 20},
	{"server", "workers", K_UINT, F(server.workers), 1, 1024},
	{"server", "idle_timeout", K_UINT, F(server.idle_timeout), 1, 86400},
	{"server", "max_connections", K_UINT, F(server.max_connections), 1, 1000000},
	{"server", "max_per_peer", K_UINT, F(server.max_per_peer), 1, 1000000},
	{"server", "user", K_STR, F(server.user), 0, 0},
	{"token", "alg", K_STR, F(token.alg), 0, 0},
	{"token", "issuer", K_STR, F(token.issuer), 0, 0},
	{"token", "audience", K_STR, F(token.audience), 0, 0},
	{"token", "ttl", K_UINT, F(token.ttl), 10, 86400},
	{"policy", "home_country", K_STR, F(policy.home_country), 0, 0},
	{"policy", "lockout_after", K_UINT, F(policy.lockout_after), 1, 1000},
	{"policy", "personal_amount", K_I64, F(policy.personal_amount), 0, INT64_C(1) << 53},
	{"policy", "personal_daily", K_I64, F(policy.personal_daily), 0, INT64_C(1) << 53},
	{"policy", "business_new_amount", K_I64, F(policy.business_new_amount), 0, INT64_C(1) << 53},
	{"policy", "business_new_daily", K_I64, F(policy.business_new_daily), 0, INT64_C(1) << 53},
	{"policy", "new_device", K_BOOL, F(policy.new_device), 0, 0},
	{"policy", "personal_overseas", K_OVERSEAS, F(policy.personal_overseas), 0, 0},
	{"policy", "unknown_currency", K_BOOL, F(policy.unknown_currency_step_up), 0, 0},
	{"policy", "business_new_months", K_UINT, F(policy.business_new_months), 0, 1200},
	{"policy", "disabled_rules", K_RULES, F(policy.disabled_rules), 0, 0},
	{"geo", "rir_file", K_STR, F(geo.rir_file), 0, 0},
	{"geo", "mmdb", K_STR, F(geo.mmdb), 0, 0},
	{"fido2", "rp_id", K_STR, F(fido2.rp_id), 0, 0},
	{"fido2", "rp_name", K_STR, F(fido2.rp_name), 0, 0},
	{"fido2", "origins", K_ORIGINS, F(fido2.origins), 0, 0},
	{"fido2", "user_verification", K_STR, F(fido2.user_verification), 0, 0},
	{"fido2", "challenge_ttl", K_UINT, F(fido2.challenge_ttl), 10, 3600},
	{"face", "models_dir", K_STR, F(face.models_dir), 0, 0},
	{"face", "threshold", K_STR, F(face.threshold), 0, 0},
	{"face", "liveness_threshold", K_STR, F(face.liveness_threshold), 0, 0},
	{"face", "max_images", K_UINT, F(face.max_images), 1, 5},
	{"store", "url", K_STR, F(store.url), 0, 0},
	{"store", "prune_interval", K_UINT, F(store.prune_interval), 0, 86400},
	{"store", "keep_expired", K_UINT, F(store.keep_expired), 3600, 366 * 86400},
	{"plugins", "dir", K_STR, F(plugins.dir), 0, 0},
	{"pam", "rp_id", K_STR, F(pam.rp_id), 0, 0},
	{"admin", "four_eyes", K_BOOL, F(admin.four_eyes), 0, 0},
	{"admin", "four_eyes_ttl", K_UINT, F(admin.four_eyes_ttl), 60, 30 * 86400},
	{"admin", "stepup_window", K_UINT, F(admin.stepup_window), 10, 86400},
};
#undef F

/* Raw text of every key set from the file, for config_get. */
struct raw_kv {
	char *section, *key, *value;
};

struct config_priv {
	struct config pub;
	struct raw_kv raw[sizeof keys / sizeof keys[0]];
	size_t n_raw;
};

struct parse_ctx {
	struct config_priv *cp;
	char *err;
	size_t errlen;
	int failed;
	FILE *f;
	int line;     /* lines handed to inih so far */
	int bad_line; /* first line naming an unknown section (inih reports none for empty ones) */
};

static int
known_section(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strlen(keys[i].section) == len && strncmp(keys[i].section, name, len) == 0)
			return 1;
	return 0;
}

/*
 * Line reader for inih: it parses; this only notices section headers, so an
 * unknown section with no keys in it stops startup too.
 */
static char *
config_read_line(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	char *r = fgets(str, num, ctx->f);
	if (r == NULL)
		return NULL;
	ctx->line++;
	const char *p = str;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[' && !ctx->failed) {
		const char *end = strchr(p, ']');
		if (end != NULL && !known_section(p + 1, (size_t)(end - p - 1))) {
			snprintf(ctx->err, ctx->errlen, "unknown section [%.*s]", (int)(end - p - 1) > 64 ? 64 : (int)(end - p - 1),
			         p + 1);
			ctx->failed = 1;
			ctx->bad_line = ctx->line;
		}
	}
	return r;
}

static int
set_str(char **dst, const char *v)
{
	char *s = strdup(v);
	if (s == NULL)
		return AUTHD_ERR_NOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int
parse_i64(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0]))
		return AUTHD_ERR_CONFIG;
	long long n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return AUTHD_ERR_CONFIG;
	*out = n;
	return 0;
}

static int
parse_size(const char *v, int64_t min, int64_t max, size_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)v[0]))
		return AUTHD_ERR_CONFIG;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned long long mul = 1;
	if (strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0)
		mul = 1024;
	else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
		mul = 1024 * 1024;
	else if (*end != '\0')
		return AUTHD_ERR_CONFIG;
	if (errno != 0 || n > (unsigned long long)max / mul || n * mul < (unsigned long long)min)
		return AUTHD_ERR_CONFIG;
	*out = (size_t)(n * mul);
	return 0;
}

static int
parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = 0;
	else
		return AUTHD_ERR_CONFIG;
	return 0;
}

/* "1000, 1001, @staff, alice": numbers are uids, @name or @number gids. */
static int
parse_ids(const char *v, struct config_ids *ids)
{
	char buf[1024];
	if (strlen(v) >= sizeof buf)
		return AUTHD_ERR_CONFIG;
	strcpy(buf, v);
	ids->n_uids = ids->n_gids = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		int is_group = tok[0] == '@';
		const char *name = tok + is_group;
		char *end;
		errno = 0;
		unsigned long n = strtoul(name, &end, 10);
		int numeric = isdigit((unsigned char)name[0]) && *end == '\0' && errno == 0 && n < UINT32_MAX;
		if (is_group) {
			if (!numeric) {
				struct group *g = getgrnam(name);
				if (g == NULL)
					return AUTHD_ERR_CONFIG;
				n = g->gr_gid;
			}
			if (ids->n_gids == CONFIG_MAX_IDS)
				return AUTHD_ERR_CONFIG;
			ids->gids[ids->n_gids++] = (gid_t)n;
		} else {
			if (!numeric) {
				struct passwd *p = getpwnam(name);
				if (p == NULL)
					return AUTHD_ERR_CONFIG;
				n = p->pw_uid;
			}
			if (ids->n_uids == CONFIG_MAX_IDS)
				return AUTHD_ERR_CONFIG;
			ids->uids[ids->n_uids++] = (uid_t)n;
		}
	}
	return 0;
}

static int
parse_origins(const char *v, struct config *c)
{
	char buf[4096];
	if (strlen(v) >= sizeof buf)
		return AUTHD_ERR_CONFIG;
	strcpy(buf, v);
	for (size_t i = 0; i < c->fido2.n_origins; i++)
		free(c->fido2.origins[i]);
	c->fido2.n_origins = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (c->fido2.n_origins == CONFIG_MAX_ORIGINS)
			return AUTHD_ERR_CONFIG;
		/* https anywhere; plain http only for the loopback host itself (tests, demos). */
		int http_local = (strncmp(tok, "http://localhost", 16) == 0 && (tok[16] == '\0' || tok[16] == ':')) ||
		                 (strncmp(tok, "http://127.0.0.1", 16) == 0 && (tok[16] == '\0' || tok[16] == ':'));
		if ((strncmp(tok, "https://", 8) != 0 || tok[8] == '\0') && !http_local &&
		    strncmp(tok, "android:apk-key-hash:", 21) != 0)
			return AUTHD_ERR_CONFIG;
		if ((c->fido2.origins[c->fido2.n_origins] = strdup(tok)) == NULL)
			return AUTHD_ERR_NOMEM;
		c->fido2.n_origins++;
	}
	return c->fido2.n_origins > 0 ? 0 : AUTHD_ERR_CONFIG;
}

/* "business_high_risk, new_device": rule names of enum config_rule; "" or "none" for none. */
static int
parse_rules(const char *v, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} rules[] = {
		{"business_high_risk", CONFIG_RULE_BUSINESS_HIGH_RISK},
		{"business_overseas", CONFIG_RULE_BUSINESS_OVERSEAS},
		{"business_new_entity", CONFIG_RULE_BUSINESS_NEW_ENTITY},
		{"personal_amount", CONFIG_RULE_PERSONAL_AMOUNT},
		{"personal_daily_total", CONFIG_RULE_PERSONAL_DAILY_TOTAL},
		{"new_device", CONFIG_RULE_NEW_DEVICE},
		{"overseas", CONFIG_RULE_OVERSEAS},
	};
	char buf[1024];
	unsigned bits = 0;
	if (strlen(v) >= sizeof buf)
		return AUTHD_ERR_CONFIG;
	strcpy(buf, v);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		size_t i;
		if (strcmp(tok, "none") == 0)
			continue;
		for (i = 0; i < sizeof rules / sizeof rules[0]; i++)
			if (strcmp(tok, rules[i].name) == 0)
				break;
		if (i == sizeof rules / sizeof rules[0])
			return AUTHD_ERR_CONFIG;
		bits |= rules[i].bit;
	}
	*out = bits;
	return 0;
}

/*
 * [policy] personal_amount.USD = 40000 and the like: the thresholds of one
 * currency. Returns 1 when name is such a key (and applies it), 0 when it is
 * not, or a negative error for a bad value or too many currencies.
 */
static int
apply_currency_key(struct config *c, const char *name, const char *v)
{
	static const char *const bases[] = {"personal_amount", "personal_daily", "business_new_amount",
	                                    "business_new_daily"};
	const char *dot = strchr(name, '.');
	size_t b;
	int64_t n;

	if (dot == NULL)
		return 0;
	for (b = 0; b < sizeof bases / sizeof bases[0]; b++)
		if (strlen(bases[b]) == (size_t)(dot - name) && strncmp(name, bases[b], (size_t)(dot - name)) == 0)
			break;
	if (b == sizeof bases / sizeof bases[0])
		return 0;
	const char *cur = dot + 1;
	if (strlen(cur) != 3 || !isupper((unsigned char)cur[0]) || !isupper((unsigned char)cur[1]) ||
	    !isupper((unsigned char)cur[2]))
		return AUTHD_ERR_CONFIG;
	TRY(parse_i64(v, 0, INT64_C(1) << 53, &n));
	if (strcmp(cur, "VND") == 0) {
		int64_t *vnd[] = {&c->policy.personal_amount, &c->policy.personal_daily,
		                  &c->policy.business_new_amount, &c->policy.business_new_daily};
		*vnd[b] = n;
		return 1;
	}
	struct config_thresholds *th = NULL;
	for (size_t i = 0; i < c->policy.n_currencies; i++)
		if (strcmp(c->policy.currencies[i].currency, cur) == 0)
			th = &c->policy.currencies[i];
	if (th == NULL) {
		if (c->policy.n_currencies == CONFIG_MAX_CURRENCIES)
			return AUTHD_ERR_CONFIG;
		th = &c->policy.currencies[c->policy.n_currencies++];
		memcpy(th->currency, cur, 4);
		th->personal_amount = th->personal_daily = th->business_new_amount = th->business_new_daily = -1;
	}
	int64_t *f[] = {&th->personal_amount, &th->personal_daily, &th->business_new_amount, &th->business_new_daily};
	*f[b] = n;
	return 1;
}

static int
apply_key(struct config *c, const struct key_def *k, const char *v)
{
	void *field = (char *)c + k->off;
	int64_t n;
	switch (k->type) {
	case K_STR:
		if (*v == '\0')
			return AUTHD_ERR_CONFIG;
		return set_str(field, v);
	case K_UINT:
		TRY(parse_i64(v, k->min, k->max, &n));
		*(unsigned *)field = (unsigned)n;
		return 0;
	case K_I64:
		TRY(parse_i64(v, k->min, k->max, &n));
		*(int64_t *)field = n;
		return 0;
	case K_SIZE:
		return parse_size(v, k->min, k->max, field);
	case K_BOOL:
		return parse_bool(v, field);
	case K_IDS:
		return parse_ids(v, field);
	case K_ORIGINS:
		return parse_origins(v, c);
	case K_RULES:
		return parse_rules(v, field);
	case K_OVERSEAS:
		if (!strcmp(v, "off"))
			c->policy.personal_overseas = OVERSEAS_OFF;
		else if (!strcmp(v, "flag"))
			c->policy.personal_overseas = OVERSEAS_FLAG;
		else if (!strcmp(v, "step_up"))
			c->policy.personal_overseas = OVERSEAS_STEP_UP;
		else
			return AUTHD_ERR_CONFIG;
		return 0;
	}
	return AUTHD_ERR_INTERNAL;
}

static int
config_ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	if (ctx->failed)
		return 0;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key_def *k = &keys[i];
		if (strcmp(k->section, section) != 0 || strcmp(k->key, name) != 0)
			continue;
		if (apply_key(&ctx->cp->pub, k, value) < 0) {
			snprintf(ctx->err, ctx->errlen, "invalid value for [%s] %s", section, name);
			ctx->failed = 1;
			return 0;
		}
		struct raw_kv *kv = NULL;
		for (size_t j = 0; j < ctx->cp->n_raw; j++)
			if (!strcmp(ctx->cp->raw[j].section, section) && !strcmp(ctx->cp->raw[j].key, name))
				kv = &ctx->cp->raw[j];
		if (kv == NULL) {
			/* Count the slot only once it is whole: later lookups strcmp every slot. */
			char *sec = strdup(section), *key = strdup(name);
			if (sec == NULL || key == NULL) {
				free(sec);
				free(key);
				snprintf(ctx->err, ctx->errlen, "out of memory");
				ctx->failed = 1;
				return 0;
			}
			kv = &ctx->cp->raw[ctx->cp->n_raw++];
			kv->section = sec;
			kv->key = key;
		}
		free(kv->value);
		if ((kv->value = strdup(value)) == NULL) {
			snprintf(ctx->err, ctx->errlen, "out of memory");
			ctx->failed = 1;
			return 0;
		}
		return 1;
	}
	if (strcmp(section, "policy") == 0) {
		int cr = apply_currency_key(&ctx->cp->pub, name, value);
		if (cr == 1)
			return 1;
		if (cr < 0) {
			snprintf(ctx->err, ctx->errlen, "invalid value for [%s] %s (or more than %d currencies)", section,
			         name, CONFIG_MAX_CURRENCIES);
			ctx->failed = 1;
			return 0;
		}
	}
	int known_section = 0;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		known_section |= !strcmp(keys[i].section, section);
	if (known_section)
		snprintf(ctx->err, ctx->errlen, "unknown key '%s' in section [%s]", name, section);
	else
		snprintf(ctx->err, ctx->errlen, "unknown section [%s] (key '%s')", section, name);
	ctx->failed = 1;
	return 0;
}

static int
set_defaults(struct config *c)
{
	uid_t me = geteuid();
	c->server.clients.uids[0] = me;
	c->server.clients.n_uids = 1;
	c->server.admins.uids[0] = me;
	c->server.admins.n_uids = 1;
	c->server.pam.uids[0] = me;
	c->server.pam.uids[1] = 0;
	c->server.pam.n_uids = me == 0 ? 1 : 2;
	c->server.max_frame = 8u << 20;
	c->server.workers = 0; /* 0: chosen from the core count */
	c->server.idle_timeout = 60;
	c->server.max_connections = 4096;
	c->server.max_per_peer = 1024;
	c->token.ttl = 120;
	c->store.prune_interval = 600;
	c->store.keep_expired = 86400;
	c->policy.lockout_after = 5;
	c->policy.personal_amount = 10000000;
	c->policy.personal_daily = 20000000;
	c->policy.business_new_amount = 50000000;
	c->policy.business_new_daily = 100000000;
	c->policy.new_device = 1;
	c->policy.personal_overseas = OVERSEAS_FLAG;
	c->policy.unknown_currency_step_up = 1;
	c->policy.business_new_months = 12;
	c->fido2.challenge_ttl = 120;
	c->face.max_images = 3;
	c->admin.four_eyes = 1;
	c->admin.four_eyes_ttl = 86400;
	c->admin.stepup_window = 300;
	TRY(set_str(&c->server.socket, "/run/authd/authd.sock"));
	TRY(set_str(&c->server.state_dir, "/var/lib/authd"));
	TRY(set_str(&c->token.alg, "ES256"));
	TRY(set_str(&c->token.issuer, "authd"));
	TRY(set_str(&c->token.audience, "bank-backend"));
	TRY(set_str(&c->policy.home_country, "VN"));
	TRY(set_str(&c->fido2.rp_id, "localhost"));
	TRY(set_str(&c->fido2.rp_name, "authd"));
	TRY(set_str(&c->fido2.user_verification, "required"));
	if ((c->fido2.origins[0] = strdup("https://localhost")) == NULL)
		return AUTHD_ERR_NOMEM;
	c->fido2.n_origins = 1;
	return 0;
}

static int
validate(const struct config *c, char *err, size_t errlen)
{
	if (strcmp(c->token.alg, "ES256") != 0 && strcmp(c->token.alg, "EdDSA") != 0) {
		snprintf(err, errlen, "[token] alg must be ES256 or EdDSA");
		return AUTHD_ERR_CONFIG;
	}
	if (strcmp(c->fido2.user_verification, "required") != 0 &&
	    strcmp(c->fido2.user_verification, "preferred") != 0 &&
	    strcmp(c->fido2.user_verification, "discouraged") != 0) {
		snprintf(err, errlen, "[fido2] user_verification must be required, preferred or discouraged");
		return AUTHD_ERR_CONFIG;
	}
	if (strlen(c->policy.home_country) != 2 || !isupper((unsigned char)c->policy.home_country[0]) ||
	    !isupper((unsigned char)c->policy.home_country[1])) {
		snprintf(err, errlen, "[policy] home_country must be a two-letter ISO 3166 code");
		return AUTHD_ERR_CONFIG;
	}
	for (size_t i = 0; i < c->policy.n_currencies; i++) {
		const struct config_thresholds *th = &c->policy.currencies[i];
		const char *missing = th->personal_amount < 0       ? "personal_amount"
		                      : th->personal_daily < 0      ? "personal_daily"
		                      : th->business_new_amount < 0 ? "business_new_amount"
		                      : th->business_new_daily < 0  ? "business_new_daily"
		                                                    : NULL;
		if (missing != NULL) {
			snprintf(err, errlen, "[policy] %s.%s is missing: a currency needs all four thresholds", missing,
			         th->currency);
			return AUTHD_ERR_CONFIG;
		}
	}
	return 0;
}

int
config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct config_priv *cp = calloc(1, sizeof *cp);
	struct config *c;
	int r;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (cp == NULL)
		return AUTHD_ERR_NOMEM;
	c = &cp->pub;
	if ((r = set_defaults(c)) < 0)
		goto fail;
	if (path != NULL) {
		struct parse_ctx ctx = {.cp = cp};
		char inner[512] = "";
		ctx.err = inner;
		ctx.errlen = sizeof inner;
		ctx.f = fopen(path, "re");
		int line = ctx.f ? ini_parse_stream(config_read_line, &ctx, config_ini_cb, &ctx) : -1;
		if (ctx.f)
			fclose(ctx.f);
		if (line == 0 && ctx.bad_line)
			line = ctx.bad_line;
		if (line > 0 && ctx.bad_line && ctx.bad_line < line)
			line = ctx.bad_line;
		if (line == -1) {
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
			r = AUTHD_ERR_CONFIG;
			goto fail;
		}
		if (line != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, line,
			         inner[0] ? inner : "syntax error (expected [section] or key = value)");
			r = AUTHD_ERR_CONFIG;
			goto fail;
		}
		if ((c->path = strdup(path)) == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto fail;
		}
	}
	if ((r = validate(c, err, errlen)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	c = &cp->pub;
	config_free(&c);
	return r < 0 ? r : AUTHD_ERR_CONFIG;
}

void
config_free(struct config **cc)
{
	if (cc == NULL || *cc == NULL)
		return;
	struct config_priv *cp = (struct config_priv *)*cc;
	struct config *c = &cp->pub;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (keys[i].type == K_STR)
			free(*(char **)((char *)c + keys[i].off));
	for (size_t i = 0; i < c->fido2.n_origins; i++)
		free(c->fido2.origins[i]);
	for (size_t i = 0; i < cp->n_raw; i++) {
		free(cp->raw[i].section);
		free(cp->raw[i].key);
		free(cp->raw[i].value);
	}
	free(c->path);
	free(cp);
	*cc = NULL;
}

const char *
config_get(const struct config *c, const char *section, const char *key)
{
	const struct config_priv *cp = (const struct config_priv *)c;
	for (size_t i = 0; i < cp->n_raw; i++)
		if (!strcmp(cp->raw[i].section, section) && !strcmp(cp->raw[i].key, key))
			return cp->raw[i].value;
	/* Typed defaults that plugins read as text. */
	if (!strcmp(section, "fido2") && !strcmp(key, "rp_id"))
		return c->fido2.rp_id;
	if (!strcmp(section, "face") && !strcmp(key, "models_dir"))
		return c->face.models_dir;
	return NULL;
}

int
config_id_allowed(const struct config_ids *ids, uid_t uid, gid_t gid)
{
	for (size_t i = 0; i < ids->n_uids; i++)
		if (ids->uids[i] == uid)
			return 1;
	for (size_t i = 0; i < ids->n_gids; i++)
		if (ids->gids[i] == gid)
			return 1;
	return 0;
}
