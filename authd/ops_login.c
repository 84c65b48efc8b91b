/*
 * Staff logins through PAM (DESIGN.md section 4 "Operations (PAM)"):
 * login_begin, login_verify, login_status. Peers in [server] pam only.
 *
 * Staff are subjects "staff:<user>", a namespace no customer operation can
 * write (ops_enroll.c refuses customer ids with that prefix). A login is a
 * challenge of kind "login" bound to who/where/how the login happens
 * (user, service, rhost, tty); rhost is geolocated so an overseas staff
 * login is flagged in the reply and the audit record. login_verify is
 * verify_challenge() (ops_verify.c) with the staff rp_id: the same plugins,
 * lockout, audit and token as a customer step-up.
 *
 * An approved login also leaves a step-up mark (a record of method
 * "stepup" under the staff subject, sealed like every credential, holding
 * the time); four-eyes approvals (ops_approve.c) require a recent one.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "approval.h"
#include "audit.h"
#include "daemon.h"
#include "geo.h"
#include "ops.h"
#include "store.h"
#include "util.h"

#define LOGIN_USER_MAX 64
#define STEPUP_METHOD "stepup"
#define STEPUP_ID "stepup-mark:"

int
staff_subject_is(const char *s)
{
	return s != NULL && strncmp(s, STAFF_PREFIX, sizeof STAFF_PREFIX - 1) == 0;
}

void
staff_rp_id(const struct config *cfg, char *out, size_t cap)
{
	char host[256] = "localhost";
	if (cfg->pam.rp_id != NULL && cfg->pam.rp_id[0] != '\0') {
		snprintf(out, cap, "%s", cfg->pam.rp_id);
		return;
	}
	if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(out, cap, "pam://%s", host);
}

/* POSIX-ish user names: what getpwnam() would accept, nothing that reads as an option or a path. */
int
staff_user_ok(const char *u)
{
	if (u[0] == '-' || u[0] == '.')
		return 0;
	for (const char *p = u; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-' || *p == '@' || *p == '$'))
			return 0;
	return 1;
}

static int
get_user(struct op_ctx *ctx, const json_t *req, char *subject, size_t cap)
{
	const char *user;
	TRY(op_get_str(ctx, req, "user", LOGIN_USER_MAX, 1, &user));
	if (!staff_user_ok(user)) {
		snprintf(ctx->msg, sizeof ctx->msg, "field 'user' is not a valid user name");
		return AUTHD_ERR_BAD_REQUEST;
	}
	snprintf(subject, cap, "%s%s", STAFF_PREFIX, user);
	return 0;
}

/* ---------------- step-up marks ---------------- */

static int
stepup_mark(struct store_tx *tx, struct op_ctx *ctx, const struct store_challenge *ch, const json_t *body)
{
	struct store_cred c = {.created = ctx->now, .state = CRED_ACTIVE};
	char data[64];
	int n, r;
	TRY(store_cred_delete(tx, ch->subject, STEPUP_METHOD, &n));
	snprintf(c.subject, sizeof c.subject, "%s", ch->subject);
	snprintf(c.method, sizeof c.method, STEPUP_METHOD);
	/* Credential ids are unique per method across subjects: name the subject in it. */
	c.id_len = (size_t)snprintf((char *)c.id, sizeof c.id, "%s%s", STEPUP_ID, ch->subject);
	n = snprintf(data, sizeof data, "%lld", (long long)ctx->now);
	/* Sealed: a row written into the database by hand does not open. */
	TRY(tmpl_seal(ctx->d->tmpl, ch->subject, STEPUP_METHOD, c.id, c.id_len, (const uint8_t *)data,
	              (size_t)n, &c.data, &c.data_len));
	r = store_cred_add(tx, &c);
	free(c.data);
	return r;
}

int
staff_stepup_recent(struct store_tx *tx, struct op_ctx *ctx, const char *user, int64_t *when)
{
	char subject[160];
	struct store_cred *creds = NULL;
	size_t n = 0;
	int r = AUTHD_ERR_UNAUTHORIZED;
	*when = 0;
	snprintf(subject, sizeof subject, "%s%s", STAFF_PREFIX, user);
	TRY(store_cred_list(tx, subject, STEPUP_METHOD, &creds, &n));
	for (size_t i = 0; i < n; i++) {
		uint8_t *plain = NULL;
		size_t pl = 0;
		char txt[32];
		if (creds[i].state != CRED_ACTIVE)
			continue; /* an admin revoked it */
		if (tmpl_open(ctx->d->tmpl, subject, STEPUP_METHOD, creds[i].id, creds[i].id_len,
		              creds[i].data, creds[i].data_len, &plain, &pl) < 0)
			continue;
		if (pl < sizeof txt) {
			memcpy(txt, plain, pl);
			txt[pl] = '\0';
			long long t = strtoll(txt, NULL, 10);
			if (t > *when)
				*when = t;
		}
		util_free_secret(&plain, pl);
	}
	store_creds_free(&creds, n);
	if (*when > 0 && *when <= ctx->now && ctx->now - *when <= (int64_t)ctx->cfg->admin.stepup_window)
		r = 0;
	return r;
}

/* ---------------- login_begin ---------------- */

struct login_job {
	struct op_ctx *ctx;
	const char *subject, *service, *rhost, *tty;
	json_t *reasons; /* array, borrowed */
	uint8_t hash[32];
	const char *rp_id;
	/* out */
	char result[16];
	struct store_challenge ch;
	json_t *allow, *methods;
};

/*
 * Who the login names, judged in this order: frozen (deny), locked, then by
 * the subject's credential rows. Only a subject with no row at all (never
 * enrolled: no key, no template, no step-up mark) is "unknown_user", the one
 * answer PAM's nouserok lets through. Rows but none active (revoked, or
 * disabled as a suspected clone) is a deny: revoking someone's last key must
 * not turn them into a user the module waves through. An active credential
 * whose plugin is not loaded is "unavailable": authd cannot check the proof
 * it would need, so the login fails closed.
 */
static int
login_begin_fn(struct store_tx *tx, void *arg)
{
	struct login_job *j = arg;
	struct op_ctx *ctx = j->ctx;
	struct store_cred *creds = NULL;
	struct store_lockout lo;
	size_t n = 0;
	int frozen = 0, has_fido2 = 0, has_face = 0, active = 0, r;
	char *reasons = NULL, hash_hex[65], missing[sizeof creds->method] = "";

	TRY(store_cred_list(tx, j->subject, NULL, &creds, &n));
	json_decref(j->allow);
	j->allow = json_array();
	for (size_t i = 0; j->allow && i < n; i++) {
		if (creds[i].state != CRED_ACTIVE || strcmp(creds[i].method, STEPUP_METHOD) == 0)
			continue;
		active = 1;
		if (strcmp(creds[i].method, "face") == 0) {
			has_face = 1;
		} else if (strcmp(creds[i].method, "fido2") == 0) {
			has_fido2 = 1;
			char *id = b64url_encode(creds[i].id, creds[i].id_len);
			if (id)
				json_array_append_new(j->allow, json_string(id));
			free(id);
		} else {
			/* A method no login can check. */
			snprintf(missing, sizeof missing, "%s", creds[i].method);
		}
	}
	store_creds_free(&creds, n);
	if (j->allow == NULL)
		return AUTHD_ERR_NOMEM;
	json_decref(j->methods);
	j->methods = json_array();
	if (has_fido2 && plugin_find(ctx->d->plugins, "fido2"))
		json_array_append_new(j->methods, json_string("fido2"));
	else if (has_fido2)
		snprintf(missing, sizeof missing, "fido2");
	if (has_face && plugin_find(ctx->d->plugins, "face"))
		json_array_append_new(j->methods, json_string("face"));
	else if (has_face)
		snprintf(missing, sizeof missing, "face");
	TRY(store_lockout_get(tx, j->subject, &lo));
	TRY(store_frozen_get(tx, j->subject, &frozen));

	if (frozen) {
		snprintf(j->result, sizeof j->result, "deny");
		json_array_append_new(j->reasons, json_string("staff_frozen"));
	} else if (lo.locked) {
		snprintf(j->result, sizeof j->result, "locked");
		json_array_append_new(j->reasons, json_string("staff_locked"));
	} else if (n == 0) {
		snprintf(j->result, sizeof j->result, "unknown_user");
		json_array_append_new(j->reasons, json_string("not_enrolled"));
	} else if (!active) {
		snprintf(j->result, sizeof j->result, "deny");
		json_array_append_new(j->reasons, json_string("no_active_credential"));
	} else if (json_array_size(j->methods) == 0) {
		char tmp[64];
		snprintf(j->result, sizeof j->result, "unavailable");
		snprintf(tmp, sizeof tmp, "plugin_missing:%s", missing);
		json_array_append_new(j->reasons, json_string(tmp));
	} else {
		uint8_t rnd[32], buf[13 + 32 + 32];
		snprintf(j->result, sizeof j->result, "step_up");
		memset(&j->ch, 0, sizeof j->ch);
		TRY(op_new_id("ch_", j->ch.id, sizeof j->ch.id));
		TRY(util_random(rnd, sizeof rnd));
		/* As for transfers: SHA-256("authd-chal-v1" || login hash || 32 random bytes). */
		memcpy(buf, "authd-chal-v1", 13);
		memcpy(buf + 13, j->hash, 32);
		memcpy(buf + 45, rnd, 32);
		TRY(util_sha256(buf, sizeof buf, j->ch.challenge));
		snprintf(j->ch.kind, sizeof j->ch.kind, "login");
		snprintf(j->ch.subject, sizeof j->ch.subject, "%s", j->subject);
		snprintf(j->ch.txn_id, sizeof j->ch.txn_id, "login:%s", j->ch.id);
		memcpy(j->ch.txn_hash, j->hash, 32);
		j->ch.created = ctx->now;
		j->ch.expires = ctx->now + ctx->cfg->fido2.challenge_ttl;
		j->ch.state = CHALLENGE_PENDING;
		json_t *body = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:O,s:O}", "customer", j->subject,
		                         "account", j->subject, "service", j->service, "rhost", j->rhost,
		                         "tty", j->tty, "allow", j->allow, "reasons", j->reasons);
		if (body == NULL)
			return AUTHD_ERR_NOMEM;
		j->ch.body = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (j->ch.body == NULL)
			return AUTHD_ERR_NOMEM;
		TRY(store_challenge_put(tx, &j->ch));
	}
	if ((reasons = json_dumps(j->reasons, JSON_COMPACT)) == NULL)
		return AUTHD_ERR_NOMEM;
	hex_encode(j->hash, 32, hash_hex);
	struct audit_rec rec = {.ts = ctx->now,
	                        .type = "login_begin",
	                        .customer = j->subject,
	                        .account = j->subject,
	                        .txn_hash = hash_hex,
	                        .result = j->result,
	                        .reasons = reasons,
	                        .actor = ctx->actor};
	r = store_audit_append(tx, &rec);
	free(reasons);
	return r;
}

/* What the policy sees of a staff login: where it comes from. */
static int
login_reasons(struct op_ctx *ctx, const struct login_job *j, json_t *a)
{
	char tmp[320];
	json_array_append_new(a, json_string("staff_login"));
	if (j->service) {
		snprintf(tmp, sizeof tmp, "service:%s", j->service);
		json_array_append_new(a, json_string(tmp));
	}
	if (j->tty) {
		snprintf(tmp, sizeof tmp, "tty:%s", j->tty);
		json_array_append_new(a, json_string(tmp));
	}
	if (j->rhost == NULL)
		return json_array_append_new(a, json_string("local")) == 0 ? 0 : AUTHD_ERR_NOMEM;
	snprintf(tmp, sizeof tmp, "rhost:%s", j->rhost);
	json_array_append_new(a, json_string(tmp));
	struct geo_result g;
	geo_lookup(ctx->snap->geo, j->rhost, &g);
	switch (g.status) {
	case GEO_LOCATED:
		snprintf(tmp, sizeof tmp, "country:%s", g.country);
		json_array_append_new(a, json_string(tmp));
		if (strcmp(g.country, ctx->cfg->policy.home_country) != 0)
			json_array_append_new(a, json_string("overseas"));
		break;
	case GEO_UNLOCATED:
		/* A public address no source places: treated like abroad, as for business transfers. */
		json_array_append_new(a, json_string("location_unknown"));
		json_array_append_new(a, json_string("overseas"));
		break;
	case GEO_PRIVATE:
		json_array_append_new(a, json_string("private_network"));
		break;
	case GEO_INVALID:
		json_array_append_new(a, json_string("rhost_not_ip"));
		break;
	}
	return json_array_size(a) > 0 ? 0 : AUTHD_ERR_NOMEM;
}

int
op_login_begin(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	char subject[160], rp_id[300];
	struct login_job j = {.ctx = ctx, .subject = subject};
	json_t *c = NULL;
	int r;

	TRY(get_user(ctx, req, subject, sizeof subject));
	TRY(op_get_str(ctx, req, "service", 64, 0, &j.service));
	TRY(op_get_str(ctx, req, "rhost", 255, 0, &j.rhost));
	TRY(op_get_str(ctx, req, "tty", 64, 0, &j.tty));
	staff_rp_id(ctx->cfg, rp_id, sizeof rp_id);
	j.rp_id = rp_id;
	{
		/* The login this challenge is bound to (audited as its txn_hash). */
		char *t = NULL;
		int tl =
		    asprintf(&t, "authd-login-v1\n%s\n%s\n%s\n%s\n%lld", subject, j.service ? j.service : "",
		             j.rhost ? j.rhost : "", j.tty ? j.tty : "", (long long)ctx->now);
		if (tl < 0)
			return AUTHD_ERR_NOMEM;
		r = util_sha256((const uint8_t *)t, (size_t)tl, j.hash);
		free(t);
		TRY(r);
	}
	if ((j.reasons = json_array()) == NULL)
		return AUTHD_ERR_NOMEM;
	if ((r = login_reasons(ctx, &j, j.reasons)) < 0)
		goto out;
	if ((r = store_write(ctx->d->store, login_begin_fn, &j)) < 0)
		goto out;
	if (strcmp(j.result, "unknown_user") == 0) {
		/* The PAM module maps not_found to PAM_USER_UNKNOWN, or with nouserok to PAM_SUCCESS. */
		snprintf(ctx->msg, sizeof ctx->msg, "no staff credential was ever enrolled for this user");
		r = AUTHD_ERR_NOT_FOUND;
		goto out;
	}
	if (strcmp(j.result, "unavailable") == 0) {
		/* The module maps unavailable to PAM_AUTHINFO_UNAVAIL: fail closed, never "unknown". */
		snprintf(ctx->msg, sizeof ctx->msg, "an enrolled staff method has no plugin loaded (%s)",
		         json_string_value(json_array_get(j.reasons, json_array_size(j.reasons) - 1)));
		r = AUTHD_ERR_UNAVAILABLE;
		goto out;
	}
	json_object_set_new(reply, "result", json_string(j.result));
	json_object_set(reply, "reasons", j.reasons);
	if (strcmp(j.result, "step_up") == 0) {
		if ((c = approval_challenge_json(ctx, &j.ch, j.allow)) == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		/* Staff keys are registered for the PAM rp_id; only enrolled methods are offered. */
		json_object_set_new(json_object_get(c, "fido2"), "rp_id", json_string(rp_id));
		json_object_set(c, "methods", j.methods);
		json_object_set_new(reply, "challenge", c);
	}
	r = 0;
out:
	free(j.ch.body);
	json_decref(j.allow);
	json_decref(j.methods);
	json_decref(j.reasons);
	return r;
}

/* ---------------- login_verify ---------------- */

/* A staff member frozen between login_begin and login_verify does not log in. */
static const char *
login_subject(const struct store_challenge *ch, const json_t *body)
{
	(void)body;
	return ch->subject;
}

int
op_login_verify(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	char rp_id[300];
	staff_rp_id(ctx->cfg, rp_id, sizeof rp_id);
	/* The PAM module builds clientDataJSON with origin = the rp_id (as pam-u2f does). */
	const char *origins[1] = {rp_id};
	const struct verify_kind k = {
	    .kind = "login",
	    .audit_type = "login_verify",
	    .locked_reason = "staff_locked",
	    .rp_id = rp_id,
	    .origins = origins,
	    .n_origins = 1,
	    .on_approved = stepup_mark,
	    .frozen_key = login_subject,
	    .frozen_reason = "staff_frozen",
	};
	return verify_challenge(ctx, req, &k, reply);
}

/* ---------------- login_status (PAM account management) ---------------- */

/*
 * enrolled: an active fido2 or face credential; known: any credential row at
 * all (also revoked, disabled, or a step-up mark). The module lets nouserok
 * pass only a user authd does not know, as login_begin's not_found.
 */
struct status_job {
	const char *subject;
	int enrolled, known, locked, frozen;
};

static int
status_fn(struct store_tx *tx, void *arg)
{
	struct status_job *s = arg;
	struct store_cred *creds = NULL;
	struct store_lockout lo;
	size_t n = 0;
	TRY(store_cred_list(tx, s->subject, NULL, &creds, &n));
	s->known = n > 0;
	for (size_t i = 0; i < n; i++)
		s->enrolled |= creds[i].state == CRED_ACTIVE &&
		               (!strcmp(creds[i].method, "fido2") || !strcmp(creds[i].method, "face"));
	store_creds_free(&creds, n);
	TRY(store_lockout_get(tx, s->subject, &lo));
	s->locked = lo.locked;
	return store_frozen_get(tx, s->subject, &s->frozen);
}

int
op_login_status(struct op_ctx *ctx, const json_t *req, json_t *reply)
{
	char subject[160];
	struct status_job s = {.subject = subject};
	TRY(get_user(ctx, req, subject, sizeof subject));
	TRY(store_read(ctx->d->store, status_fn, &s));
	json_t *o = json_pack("{s:s,s:b,s:b,s:b,s:b}", "subject", subject, "enrolled", s.enrolled, "known",
	                      s.known, "locked", s.locked, "frozen", s.frozen);
	if (o == NULL)
		return AUTHD_ERR_NOMEM;
	json_object_update(reply, o);
	json_decref(o);
	return 0;
}
