/*
 * The risk policy of DESIGN.md section 6 (docs/policy.md). Every rule is
 * evaluated for every transaction, in one fixed order; that order is the
 * order of the reasons in the reply, the token's rsn claim and the audit
 * record. Pure: no I/O, no clock, no host TZ.
 */
#include "policy.h"

#include <string.h>

/* The rules in evaluation (= reason) order; indexes into d->rules. */
enum {
	R_ACCOUNT_FROZEN,
	R_CUSTOMER_LOCKED,
	R_UNKNOWN_CURRENCY,
	R_BUSINESS_HIGH_RISK,
	R_BUSINESS_OVERSEAS,
	R_BUSINESS_NEW_ENTITY,
	R_PERSONAL_AMOUNT,
	R_PERSONAL_DAILY_TOTAL,
	R_OVERSEAS,
	R_NEW_DEVICE,
	R_SRC_IP,
	R__COUNT,
};

static const char *const rule_names[R__COUNT] = {
    "account_frozen",    "customer_locked",     "unknown_currency", "business_high_risk",
    "business_overseas", "business_new_entity", "personal_amount",  "personal_daily_total",
    "overseas",          "new_device",          "src_ip",
};

struct thresholds {
	int64_t personal_amount, personal_daily, business_new_amount, business_new_daily;
};

const char *
policy_result_name(enum policy_result r)
{
	switch (r) {
	case POLICY_ALLOW:
		return "allow";
	case POLICY_STEP_UP:
		return "step_up";
	case POLICY_DENY:
		return "deny";
	}
	return "deny";
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned
days_in_month(int64_t y, unsigned m)
{
	static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dim[m - 1];
}

int64_t
policy_add_months_vn(int64_t t, unsigned months)
{
	const int64_t off = 7 * 3600;
	int64_t local = t + off;
	int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t sod = local - days * 86400;
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	int64_t m0 = (int64_t)m - 1 + months;
	y += m0 / 12;
	m = (unsigned)(m0 % 12) + 1;
	if (d > days_in_month(y, m))
		d = days_in_month(y, m);
	return days_from_civil(y, m, d) * 86400 + sod - off;
}

/* The thresholds for t's currency; 0 when none are configured for it. */
static int
thresholds_for(const struct config *cfg, const char *currency, struct thresholds *th)
{
	if (strcmp(currency, "VND") == 0) {
		th->personal_amount = cfg->policy.personal_amount;
		th->personal_daily = cfg->policy.personal_daily;
		th->business_new_amount = cfg->policy.business_new_amount;
		th->business_new_daily = cfg->policy.business_new_daily;
		return 1;
	}
	for (size_t i = 0; i < cfg->policy.n_currencies && i < CONFIG_MAX_CURRENCIES; i++) {
		const struct config_thresholds *c = &cfg->policy.currencies[i];
		if (strcmp(c->currency, currency) == 0) {
			th->personal_amount = c->personal_amount;
			th->personal_daily = c->personal_daily;
			th->business_new_amount = c->business_new_amount;
			th->business_new_daily = c->business_new_daily;
			return 1;
		}
	}
	return 0;
}

static void
set(struct policy_rule_verdict *v, int fired, int step_up, const char *detail)
{
	v->fired = fired;
	v->step_up = fired && step_up;
	v->detail = detail;
}

static void
set_values(struct policy_rule_verdict *v, int64_t value, int64_t threshold)
{
	v->value = value;
	v->threshold = threshold;
}

static int
domestic(const struct geo_result *geo, const char *home)
{
	return geo->status == GEO_LOCATED && strncmp(geo->country, home, 2) == 0 && geo->country[2] == '\0';
}

static void
decide_overseas(const struct config *cfg, const struct txn *t, const struct geo_result *geo,
                struct policy_rule_verdict *v)
{
	unsigned off = cfg->policy.disabled_rules;
	int dom = domestic(geo, cfg->policy.home_country);
	const char *where = dom                            ? "src_ip is in home_country"
	                    : geo->status == GEO_LOCATED   ? "src_ip is outside home_country"
	                    : geo->status == GEO_UNLOCATED ? "src_ip cannot be located (fail closed)"
	                    : geo->status == GEO_PRIVATE   ? "src_ip is private or reserved (fail closed)"
	                                                   : "src_ip is invalid (fail closed)";

	if (t->account_type != ACCOUNT_BUSINESS)
		set(&v[R_BUSINESS_OVERSEAS], 0, 0, "not a business account");
	else if (off & CONFIG_RULE_BUSINESS_OVERSEAS)
		set(&v[R_BUSINESS_OVERSEAS], 0, 0, "disabled by [policy] disabled_rules");
	else
		set(&v[R_BUSINESS_OVERSEAS], !dom, 1, where);

	if (t->account_type != ACCOUNT_PERSONAL)
		set(&v[R_OVERSEAS], 0, 0, "not a personal account");
	else if ((off & CONFIG_RULE_OVERSEAS) || cfg->policy.personal_overseas == OVERSEAS_OFF)
		set(&v[R_OVERSEAS], 0, 0, "personal_overseas = off");
	else
		set(&v[R_OVERSEAS], !dom, cfg->policy.personal_overseas == OVERSEAS_STEP_UP, where);

	switch (geo->status) {
	case GEO_LOCATED:
		set(&v[R_SRC_IP], 0, 0, "located");
		break;
	case GEO_UNLOCATED:
		set(&v[R_SRC_IP], 1, 0, "no source places this public address");
		break;
	case GEO_PRIVATE:
		set(&v[R_SRC_IP], 1, 0, "private, loopback, link-local, CGNAT or reserved address");
		break;
	default:
		set(&v[R_SRC_IP], 1, 0, "not an IPv4 or IPv6 address");
		break;
	}
}

static int64_t
sat_add(int64_t a, int64_t b)
{
	if (a < 0)
		a = 0;
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static void
decide_amounts(const struct config *cfg, const struct txn *t, const struct policy_facts *f, int64_t now,
               int have_th, const struct thresholds *th, struct policy_rule_verdict *v)
{
	unsigned off = cfg->policy.disabled_rules;
	int64_t total = sat_add(f->approved_today_same_type, t->amount);

	/* business_new_entity (Circular 77/2025) */
	struct policy_rule_verdict *ne = &v[R_BUSINESS_NEW_ENTITY];
	if (t->account_type != ACCOUNT_BUSINESS)
		set(ne, 0, 0, "not a business account");
	else if (off & CONFIG_RULE_BUSINESS_NEW_ENTITY)
		set(ne, 0, 0, "disabled by [policy] disabled_rules");
	else if (!have_th)
		set(ne, 0, 0, "no thresholds for this currency");
	else {
		int is_new = t->account_opened == 0 ||
		             now < policy_add_months_vn(t->account_opened, cfg->policy.business_new_months);
		if (!is_new)
			set(ne, 0, 0, "account older than business_new_months");
		else if (t->amount >= th->business_new_amount) {
			set(ne, 1, 1,
			    t->account_opened == 0
			        ? "account_opened unknown (treated as new) and amount >= business_new_amount"
			        : "new account and amount >= business_new_amount");
			set_values(ne, t->amount, th->business_new_amount);
		} else if (total > th->business_new_daily) {
			set(ne, 1, 1,
			    t->account_opened == 0
			        ? "account_opened unknown (treated as new) and day total > business_new_daily"
			        : "new account and day total > business_new_daily");
			set_values(ne, total, th->business_new_daily);
		} else {
			set(ne, 0, 0, "new account, amount and day total within limits");
			set_values(ne, total, th->business_new_daily);
		}
	}

	struct policy_rule_verdict *pa = &v[R_PERSONAL_AMOUNT];
	if (t->account_type != ACCOUNT_PERSONAL)
		set(pa, 0, 0, "not a personal account");
	else if (off & CONFIG_RULE_PERSONAL_AMOUNT)
		set(pa, 0, 0, "disabled by [policy] disabled_rules");
	else if (!have_th)
		set(pa, 0, 0, "no thresholds for this currency");
	else {
		int fired = t->amount > th->personal_amount;
		set(pa, fired, 1, fired ? "amount > personal_amount" : "amount <= personal_amount");
		set_values(pa, t->amount, th->personal_amount);
	}

	struct policy_rule_verdict *pd = &v[R_PERSONAL_DAILY_TOTAL];
	if (t->account_type != ACCOUNT_PERSONAL)
		set(pd, 0, 0, "not a personal account");
	else if (off & CONFIG_RULE_PERSONAL_DAILY_TOTAL)
		set(pd, 0, 0, "disabled by [policy] disabled_rules");
	else if (!have_th)
		set(pd, 0, 0, "no thresholds for this currency");
	else {
		int fired = total > th->personal_daily;
		set(pd, fired, 1,
		    fired ? "day total incl. this transfer > personal_daily" : "day total <= personal_daily");
		set_values(pd, total, th->personal_daily);
	}
}

void
policy_decide(const struct config *cfg, const struct txn *t, const struct geo_result *geo,
              const struct policy_facts *facts, int64_t now, struct policy_decision *d)
{
	static const struct geo_result no_geo = {GEO_UNLOCATED, "", NULL};
	static const struct policy_facts no_facts = {0, 0, 0, 0};
	struct policy_rule_verdict *v = d->rules;
	struct thresholds th = {0, 0, 0, 0};
	int have_th;

	memset(d, 0, sizeof *d);
	if (cfg == NULL || t == NULL) {
		/* Cannot judge at all: refuse rather than guess. */
		d->result = POLICY_DENY;
		d->reasons[d->n_reasons++] = "policy_error";
		return;
	}
	if (geo == NULL)
		geo = &no_geo;
	if (facts == NULL)
		facts = &no_facts;
	d->geo = *geo;
	d->n_rules = R__COUNT;
	for (size_t i = 0; i < R__COUNT; i++) {
		v[i].rule = rule_names[i];
		v[i].value = v[i].threshold = -1;
	}

	set(&v[R_ACCOUNT_FROZEN], facts->account_frozen != 0, 0,
	    facts->account_frozen ? "account is frozen" : "account is not frozen");
	v[R_ACCOUNT_FROZEN].deny = facts->account_frozen != 0;
	set(&v[R_CUSTOMER_LOCKED], facts->customer_locked != 0, 0,
	    facts->customer_locked ? "customer is locked" : "customer is not locked");
	v[R_CUSTOMER_LOCKED].deny = facts->customer_locked != 0;

	have_th = thresholds_for(cfg, t->currency, &th);
	if (have_th)
		set(&v[R_UNKNOWN_CURRENCY], 0, 0, "thresholds configured for this currency");
	else
		set(&v[R_UNKNOWN_CURRENCY], 1, cfg->policy.unknown_currency_step_up,
		    "no thresholds configured for this currency");

	if (t->account_type != ACCOUNT_BUSINESS)
		set(&v[R_BUSINESS_HIGH_RISK], 0, 0, "not a business account");
	else if (cfg->policy.disabled_rules & CONFIG_RULE_BUSINESS_HIGH_RISK)
		set(&v[R_BUSINESS_HIGH_RISK], 0, 0, "disabled by [policy] disabled_rules");
	else
		set(&v[R_BUSINESS_HIGH_RISK], t->risk_flag != 0, 1,
		    t->risk_flag ? "risk_flag is true" : "risk_flag is false");

	decide_overseas(cfg, t, geo, v);
	decide_amounts(cfg, t, facts, now, have_th, &th, v);

	if (cfg->policy.disabled_rules & CONFIG_RULE_NEW_DEVICE)
		set(&v[R_NEW_DEVICE], 0, 0, "disabled by [policy] disabled_rules");
	else if (!cfg->policy.new_device)
		set(&v[R_NEW_DEVICE], 0, 0, "new_device = off");
	else if (t->device_id[0] == '\0')
		set(&v[R_NEW_DEVICE], 1, 1, "no device_id (counts as new)");
	else
		set(&v[R_NEW_DEVICE], !facts->device_seen, 1,
		    facts->device_seen ? "device used before by this customer"
		                       : "first transfer from this device");

	d->result = POLICY_ALLOW;
	for (size_t i = 0; i < R__COUNT; i++) {
		if (!v[i].fired)
			continue;
		const char *reason = v[i].rule;
		if (i == R_SRC_IP)
			reason = geo->status == GEO_PRIVATE   ? "src_ip_private"
			         : geo->status == GEO_INVALID ? "src_ip_invalid"
			                                      : "src_ip_unlocated";
		if (d->n_reasons < POLICY_MAX_REASONS)
			d->reasons[d->n_reasons++] = reason;
		if (v[i].deny)
			d->result = POLICY_DENY;
		else if (v[i].step_up && d->result == POLICY_ALLOW)
			d->result = POLICY_STEP_UP;
	}
}

json_t *
policy_decision_to_json(const struct policy_decision *d)
{
	json_t *o = json_object();
	json_t *reasons = json_array();
	json_t *rules = json_array();
	json_t *geo = geo_result_to_json(&d->geo);
	int r_set;

	if (o == NULL || reasons == NULL || rules == NULL || geo == NULL)
		goto fail;
	for (size_t i = 0; i < d->n_reasons; i++)
		if (json_array_append_new(reasons, json_string(d->reasons[i])) < 0)
			goto fail;
	for (size_t i = 0; i < d->n_rules; i++) {
		const struct policy_rule_verdict *v = &d->rules[i];
		json_t *r = json_pack("{s:s, s:b, s:b, s:s}", "rule", v->rule, "fired", v->fired, "step_up",
		                      v->step_up, "detail", v->detail ? v->detail : "");
		if (r == NULL)
			goto fail;
		if ((v->deny && json_object_set_new(r, "deny", json_true()) < 0) ||
		    (v->value >= 0 && json_object_set_new(r, "value", json_integer(v->value)) < 0) ||
		    (v->threshold >= 0 &&
		     json_object_set_new(r, "threshold", json_integer(v->threshold)) < 0)) {
			json_decref(r);
			goto fail;
		}
		/* json_array_append_new consumes r even when it fails. */
		if (json_array_append_new(rules, r) < 0)
			goto fail;
	}
	/* json_object_set_new consumes the value even when it fails. */
	if (json_object_set_new(o, "result", json_string(policy_result_name(d->result))) < 0)
		goto fail;
	r_set = json_object_set_new(o, "reasons", reasons);
	reasons = NULL;
	if (r_set < 0)
		goto fail;
	r_set = json_object_set_new(o, "rules", rules);
	rules = NULL;
	if (r_set < 0)
		goto fail;
	r_set = json_object_set_new(o, "geo", geo);
	geo = NULL;
	if (r_set < 0)
		goto fail;
	return o;
fail:
	json_decref(reasons);
	json_decref(rules);
	json_decref(geo);
	json_decref(o);
	return NULL;
}
