/*
 * policy_decide (DESIGN.md section 6, docs/policy.md): a table of
 * transactions, facts and configurations with the expected result and the
 * exact reasons in their documented order; calendar-month arithmetic; the
 * explain JSON; the [policy] configuration extensions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "geo.h"
#include "policy.h"
#include "txn.h"

#define NOW INT64_C(1763881200) /* 2025-11-23 07:00:00 UTC = 14:00 in Hanoi */
#define DAY INT64_C(86400)
#define OPENED_OLD (NOW - 800 * DAY)
#define OPENED_NEW (NOW - 100 * DAY)
#define OPENED_NONE 0
#define P ACCOUNT_PERSONAL
#define B ACCOUNT_BUSINESS
#define M INT64_C(1000000)

/* Configuration variants applied on top of the built-in defaults. */
enum cfgv {
	C_DEFAULT,
	C_OVERSEAS_STEP_UP,
	C_OVERSEAS_OFF,
	C_NEW_DEVICE_OFF,
	C_UNKNOWN_CURRENCY_OFF,
	C_USD, /* USD thresholds: 40000 / 100000 / 500000 / 1000000 cents */
	C_HOME_SG,
	C_DISABLE_BIZ_OVERSEAS,
	C_DISABLE_PERSONAL_AMOUNT,
	C_DISABLE_ALL,
	C_NEW_MONTHS_0,
	C_NEW_MONTHS_24,
};

struct row {
	const char *name;
	enum cfgv cfg;
	enum account_type type;
	int64_t amount;
	const char *currency;
	int risk;
	int64_t opened;
	enum geo_status geo;
	const char *cc;
	const char *device; /* "" = absent */
	int device_seen;
	int64_t approved_today;
	int frozen, locked;
	enum policy_result want;
	const char *reasons; /* space separated, in order */
};

#define LOC GEO_LOCATED
#define UNL GEO_UNLOCATED
#define PRV GEO_PRIVATE
#define INV GEO_INVALID

/* clang-format off */
static const struct row rows[] = {
	/* personal, one rule at a time */
	{"personal small domestic known device", C_DEFAULT, P, 500000, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"personal amount exactly 10M", C_DEFAULT, P, 10 * M, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"personal amount 10M+1", C_DEFAULT, P, 10 * M + 1, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "personal_amount"},
	{"personal daily 15M+6M", C_DEFAULT, P, 6 * M, "VND", 0, 0, LOC, "VN", "d1", 1, 15 * M, 0, 0, POLICY_STEP_UP, "personal_daily_total"},
	{"personal daily exactly 20M", C_DEFAULT, P, 5 * M, "VND", 0, 0, LOC, "VN", "d1", 1, 15 * M, 0, 0, POLICY_ALLOW, ""},
	{"personal daily 20M+1", C_DEFAULT, P, 5 * M + 1, "VND", 0, 0, LOC, "VN", "d1", 1, 15 * M, 0, 0, POLICY_STEP_UP, "personal_daily_total"},
	{"personal amount 25M trips both", C_DEFAULT, P, 25 * M, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "personal_amount personal_daily_total"},
	{"personal overseas flagged only", C_DEFAULT, P, 500000, "VND", 0, 0, LOC, "US", "d1", 1, 0, 0, 0, POLICY_ALLOW, "overseas"},
	{"personal overseas step_up", C_OVERSEAS_STEP_UP, P, 500000, "VND", 0, 0, LOC, "US", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "overseas"},
	{"personal overseas off", C_OVERSEAS_OFF, P, 500000, "VND", 0, 0, LOC, "US", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"personal domestic with step_up config", C_OVERSEAS_STEP_UP, P, 500000, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"personal private ip", C_DEFAULT, P, 500000, "VND", 0, 0, PRV, NULL, "d1", 1, 0, 0, 0, POLICY_ALLOW, "overseas src_ip_private"},
	{"personal invalid ip", C_DEFAULT, P, 500000, "VND", 0, 0, INV, NULL, "d1", 1, 0, 0, 0, POLICY_ALLOW, "overseas src_ip_invalid"},
	{"personal unlocated ip", C_DEFAULT, P, 500000, "VND", 0, 0, UNL, NULL, "d1", 1, 0, 0, 0, POLICY_ALLOW, "overseas src_ip_unlocated"},
	{"personal private ip, step_up config", C_OVERSEAS_STEP_UP, P, 500000, "VND", 0, 0, PRV, NULL, "d1", 1, 0, 0, 0, POLICY_STEP_UP, "overseas src_ip_private"},
	{"personal private ip, overseas off", C_OVERSEAS_OFF, P, 500000, "VND", 0, 0, PRV, NULL, "d1", 1, 0, 0, 0, POLICY_ALLOW, "src_ip_private"},
	{"personal new device", C_DEFAULT, P, 500000, "VND", 0, 0, LOC, "VN", "d1", 0, 0, 0, 0, POLICY_STEP_UP, "new_device"},
	{"personal missing device_id", C_DEFAULT, P, 500000, "VND", 0, 0, LOC, "VN", "", 1, 0, 0, 0, POLICY_STEP_UP, "new_device"},
	{"personal new device, rule off", C_NEW_DEVICE_OFF, P, 500000, "VND", 0, 0, LOC, "VN", "d1", 0, 0, 0, 0, POLICY_ALLOW, ""},
	{"personal risk_flag ignored", C_DEFAULT, P, 500000, "VND", 1, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"personal frozen", C_DEFAULT, P, 500000, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 1, 0, POLICY_DENY, "account_frozen"},
	{"personal locked", C_DEFAULT, P, 500000, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 1, POLICY_DENY, "customer_locked"},
	{"personal everything at once", C_DEFAULT, P, 30 * M, "VND", 1, 0, PRV, NULL, "", 0, 0, 1, 1, POLICY_DENY,
	 "account_frozen customer_locked personal_amount personal_daily_total overseas new_device src_ip_private"},
	{"personal amount + new device + overseas", C_DEFAULT, P, 11 * M, "VND", 0, 0, LOC, "TH", "d2", 0, 0, 0, 0, POLICY_STEP_UP,
	 "personal_amount overseas new_device"},
	/* currencies */
	{"USD never uses VND thresholds", C_DEFAULT, P, 15 * M, "USD", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "unknown_currency"},
	{"unknown currency, flag only", C_UNKNOWN_CURRENCY_OFF, P, 15 * M, "USD", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, "unknown_currency"},
	{"USD configured, over personal_amount", C_USD, P, 50000, "USD", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "personal_amount"},
	{"USD configured, under", C_USD, P, 30000, "USD", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"USD configured, daily", C_USD, P, 40000, "USD", 0, 0, LOC, "VN", "d1", 1, 70000, 0, 0, POLICY_STEP_UP, "personal_daily_total"},
	{"VND still VND with USD configured", C_USD, P, 15 * M, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "personal_amount"},
	{"EUR unknown with USD configured", C_USD, P, 100, "EUR", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "unknown_currency"},
	/* business, one rule at a time */
	{"business plain", C_DEFAULT, B, 500 * M, "VND", 0, OPENED_OLD, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"business high risk", C_DEFAULT, B, 1 * M, "VND", 1, OPENED_OLD, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_high_risk"},
	{"business overseas", C_DEFAULT, B, 1 * M, "VND", 0, OPENED_OLD, LOC, "SG", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_overseas"},
	{"business unlocated fails closed", C_DEFAULT, B, 1 * M, "VND", 0, OPENED_OLD, UNL, NULL, "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_overseas src_ip_unlocated"},
	{"business private fails closed", C_DEFAULT, B, 1 * M, "VND", 0, OPENED_OLD, PRV, NULL, "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_overseas src_ip_private"},
	{"business invalid fails closed", C_DEFAULT, B, 1 * M, "VND", 0, OPENED_OLD, INV, NULL, "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_overseas src_ip_invalid"},
	{"business overseas ignores personal_overseas=off", C_OVERSEAS_OFF, B, 1 * M, "VND", 0, OPENED_OLD, LOC, "SG", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_overseas"},
	{"business new entity, exactly 50M", C_DEFAULT, B, 50 * M, "VND", 0, OPENED_NEW, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_new_entity"},
	{"business new entity, 50M-1", C_DEFAULT, B, 50 * M - 1, "VND", 0, OPENED_NEW, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"business new entity, day 60M+45M", C_DEFAULT, B, 45 * M, "VND", 0, OPENED_NEW, LOC, "VN", "d1", 1, 60 * M, 0, 0, POLICY_STEP_UP, "business_new_entity"},
	{"business new entity, day exactly 100M", C_DEFAULT, B, 45 * M, "VND", 0, OPENED_NEW, LOC, "VN", "d1", 1, 55 * M, 0, 0, POLICY_ALLOW, ""},
	{"business old entity, big day", C_DEFAULT, B, 45 * M, "VND", 0, OPENED_OLD, LOC, "VN", "d1", 1, 900 * M, 0, 0, POLICY_ALLOW, ""},
	{"business opened unknown = new, 60M", C_DEFAULT, B, 60 * M, "VND", 0, OPENED_NONE, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_new_entity"},
	{"business opened unknown, small", C_DEFAULT, B, 1 * M, "VND", 0, OPENED_NONE, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"business new device", C_DEFAULT, B, 1 * M, "VND", 0, OPENED_OLD, LOC, "VN", "d9", 0, 0, 0, 0, POLICY_STEP_UP, "new_device"},
	{"business no personal_amount", C_DEFAULT, B, 15 * M, "VND", 0, OPENED_OLD, LOC, "VN", "d1", 1, 30 * M, 0, 0, POLICY_ALLOW, ""},
	{"business all step-up rules", C_DEFAULT, B, 60 * M, "VND", 1, OPENED_NEW, LOC, "CN", "", 0, 0, 0, 0, POLICY_STEP_UP,
	 "business_high_risk business_overseas business_new_entity new_device"},
	{"business frozen", C_DEFAULT, B, 1 * M, "VND", 0, OPENED_OLD, LOC, "VN", "d1", 1, 0, 1, 0, POLICY_DENY, "account_frozen"},
	{"business locked + risk", C_DEFAULT, B, 1 * M, "VND", 1, OPENED_OLD, LOC, "VN", "d1", 1, 0, 0, 1, POLICY_DENY, "customer_locked business_high_risk"},
	{"business frozen + overseas + unknown currency", C_DEFAULT, B, 1 * M, "EUR", 0, OPENED_OLD, LOC, "FR", "d1", 1, 0, 1, 0, POLICY_DENY,
	 "account_frozen unknown_currency business_overseas"},
	{"business EUR new entity cannot be judged", C_DEFAULT, B, 60 * M, "EUR", 0, OPENED_NEW, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "unknown_currency"},
	{"business USD configured new entity", C_USD, B, 600000, "USD", 0, OPENED_NEW, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_new_entity"},
	{"business USD configured below", C_USD, B, 400000, "USD", 0, OPENED_NEW, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	/* configuration */
	{"home SG, business in SG", C_HOME_SG, B, 1 * M, "VND", 0, OPENED_OLD, LOC, "SG", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"home SG, personal in VN", C_HOME_SG, P, 1 * M, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, "overseas"},
	{"disabled business_overseas", C_DISABLE_BIZ_OVERSEAS, B, 1 * M, "VND", 0, OPENED_OLD, LOC, "SG", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"disabled personal_amount", C_DISABLE_PERSONAL_AMOUNT, P, 15 * M, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"disabled everything but deny/geo", C_DISABLE_ALL, B, 60 * M, "VND", 1, OPENED_NEW, PRV, NULL, "", 0, 0, 0, 0, POLICY_ALLOW, "src_ip_private"},
	{"disabled everything, frozen still denies", C_DISABLE_ALL, P, 60 * M, "VND", 0, 0, LOC, "VN", "", 0, 0, 1, 0, POLICY_DENY, "account_frozen"},
	{"business_new_months 0", C_NEW_MONTHS_0, B, 60 * M, "VND", 0, OPENED_NEW, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_ALLOW, ""},
	{"business_new_months 24, 18 months old", C_NEW_MONTHS_24, B, 60 * M, "VND", 0, NOW - 548 * DAY, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "business_new_entity"},
	/* extremes */
	{"approved total saturates", C_DEFAULT, P, 1000, "VND", 0, 0, LOC, "VN", "d1", 1, INT64_MAX, 0, 0, POLICY_STEP_UP, "personal_daily_total"},
	{"negative store total treated as 0", C_DEFAULT, P, 1000, "VND", 0, 0, LOC, "VN", "d1", 1, -5, 0, 0, POLICY_ALLOW, ""},
	{"amount 2^53", C_DEFAULT, P, TXN_MAX_AMOUNT, "VND", 0, 0, LOC, "VN", "d1", 1, 0, 0, 0, POLICY_STEP_UP, "personal_amount personal_daily_total"},
};
/* clang-format on */

static struct config *
make_config(enum cfgv v)
{
	struct config *c = NULL;
	char err[256];
	assert_int_equal(config_load(NULL, &c, err, sizeof err), 0);
	switch (v) {
	case C_DEFAULT:
		break;
	case C_OVERSEAS_STEP_UP:
		c->policy.personal_overseas = OVERSEAS_STEP_UP;
		break;
	case C_OVERSEAS_OFF:
		c->policy.personal_overseas = OVERSEAS_OFF;
		break;
	case C_NEW_DEVICE_OFF:
		c->policy.new_device = 0;
		break;
	case C_UNKNOWN_CURRENCY_OFF:
		c->policy.unknown_currency_step_up = 0;
		break;
	case C_USD: {
		struct config_thresholds *t = &c->policy.currencies[c->policy.n_currencies++];
		memcpy(t->currency, "USD", 4);
		t->personal_amount = 40000;
		t->personal_daily = 100000;
		t->business_new_amount = 500000;
		t->business_new_daily = 1000000;
		break;
	}
	case C_HOME_SG:
		strcpy(c->policy.home_country, "SG"); /* same length as the default "VN" */
		break;
	case C_DISABLE_BIZ_OVERSEAS:
		c->policy.disabled_rules = CONFIG_RULE_BUSINESS_OVERSEAS;
		break;
	case C_DISABLE_PERSONAL_AMOUNT:
		c->policy.disabled_rules = CONFIG_RULE_PERSONAL_AMOUNT;
		break;
	case C_DISABLE_ALL:
		c->policy.disabled_rules = CONFIG_RULE_BUSINESS_HIGH_RISK | CONFIG_RULE_BUSINESS_OVERSEAS |
		                           CONFIG_RULE_BUSINESS_NEW_ENTITY | CONFIG_RULE_PERSONAL_AMOUNT |
		                           CONFIG_RULE_PERSONAL_DAILY_TOTAL | CONFIG_RULE_NEW_DEVICE |
		                           CONFIG_RULE_OVERSEAS;
		break;
	case C_NEW_MONTHS_0:
		c->policy.business_new_months = 0;
		break;
	case C_NEW_MONTHS_24:
		c->policy.business_new_months = 24;
		break;
	}
	return c;
}

static void
make_txn(const struct row *r, struct txn *t)
{
	memset(t, 0, sizeof *t);
	strcpy(t->id, "T-1");
	strcpy(t->customer, "C-42");
	strcpy(t->account, "0123456789");
	t->account_type = r->type;
	t->account_opened = r->opened;
	t->amount = r->amount;
	snprintf(t->currency, sizeof t->currency, "%s", r->currency);
	strcpy(t->payee_account, "9876543210");
	strcpy(t->payee_bank, "VCB");
	strcpy(t->src_ip, "203.0.113.9");
	snprintf(t->device_id, sizeof t->device_id, "%s", r->device);
	t->risk_flag = r->risk;
	t->ts = NOW;
}

static void
reasons_text(const struct policy_decision *d, char *buf, size_t cap)
{
	buf[0] = '\0';
	for (size_t i = 0; i < d->n_reasons; i++) {
		strncat(buf, d->reasons[i], cap - strlen(buf) - 1);
		if (i + 1 < d->n_reasons)
			strncat(buf, " ", cap - strlen(buf) - 1);
	}
}

static void
test_table(void **state)
{
	(void)state;
	size_t failures = 0;
	assert_true(sizeof rows / sizeof rows[0] >= 40);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		struct config *c = make_config(r->cfg);
		struct txn t;
		struct geo_result g = {r->geo, "", NULL};
		struct policy_facts f = {r->frozen, r->locked, r->device_seen, r->approved_today};
		struct policy_decision d;
		char got[512];

		if (r->cc != NULL) {
			memcpy(g.country, r->cc, 3);
			g.source = "rir";
		}
		make_txn(r, &t);
		policy_decide(c, &t, &g, &f, NOW, &d);
		reasons_text(&d, got, sizeof got);
		if (d.result != r->want || strcmp(got, r->reasons) != 0) {
			print_error("row %zu '%s': got %s [%s], want %s [%s]\n", i, r->name,
			            policy_result_name(d.result), got, policy_result_name(r->want),
			            r->reasons);
			failures++;
		}
		/* Every rule is always reported, fired or not, in the same order. */
		assert_int_equal(d.n_rules, 11);
		assert_string_equal(d.rules[0].rule, "account_frozen");
		assert_string_equal(d.rules[10].rule, "src_ip");
		for (size_t k = 0; k < d.n_rules; k++) {
			assert_non_null(d.rules[k].detail);
			assert_true(!d.rules[k].step_up || d.rules[k].fired);
		}
		config_free(&c);
	}
	assert_int_equal(failures, 0);
}

static void
test_rule_order(void **state)
{
	static const char *const want[] = {"account_frozen",
	                                   "customer_locked",
	                                   "unknown_currency",
	                                   "business_high_risk",
	                                   "business_overseas",
	                                   "business_new_entity",
	                                   "personal_amount",
	                                   "personal_daily_total",
	                                   "overseas",
	                                   "new_device",
	                                   "src_ip"};
	struct config *c = make_config(C_DEFAULT);
	struct txn t;
	struct policy_decision d;
	(void)state;
	make_txn(&rows[0], &t);
	policy_decide(c, &t, NULL, NULL, NOW, &d);
	assert_int_equal(d.n_rules, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < d.n_rules; i++)
		assert_string_equal(d.rules[i].rule, want[i]);
	/* NULL geo = unlocated; NULL facts = nothing known (device unseen). */
	assert_int_equal(d.result, POLICY_STEP_UP);
	assert_int_equal(d.n_reasons, 3);
	assert_string_equal(d.reasons[0], "overseas");
	assert_string_equal(d.reasons[1], "new_device");
	assert_string_equal(d.reasons[2], "src_ip_unlocated");
	assert_int_equal(d.geo.status, GEO_UNLOCATED);
	/* No config or no txn: refuse. */
	policy_decide(NULL, &t, NULL, NULL, NOW, &d);
	assert_int_equal(d.result, POLICY_DENY);
	assert_string_equal(d.reasons[0], "policy_error");
	config_free(&c);
}

static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	/* days_from_civil, independent of the code under test's implementation details */
	int64_t yy = y - (mo <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	return days * DAY + h * 3600 + mi * 60 + s;
}

static void
test_add_months(void **state)
{
	(void)state;
	assert_int_equal(utc(2025, 11, 23, 7, 0, 0), NOW);
	/* Hanoi local 2025-01-15 10:00 (03:00 UTC) + 12 months */
	assert_int_equal(policy_add_months_vn(utc(2025, 1, 15, 3, 0, 0), 12), utc(2026, 1, 15, 3, 0, 0));
	/* Jan 31 + 1 month = Feb 28 (2025), Feb 29 (2024) */
	assert_int_equal(policy_add_months_vn(utc(2025, 1, 31, 3, 0, 0), 1), utc(2025, 2, 28, 3, 0, 0));
	assert_int_equal(policy_add_months_vn(utc(2024, 1, 31, 3, 0, 0), 1), utc(2024, 2, 29, 3, 0, 0));
	/* Feb 29 2024 + 12 = Feb 28 2025; Mar 31 + 1 = Apr 30; Dec + 1 = next Jan */
	assert_int_equal(policy_add_months_vn(utc(2024, 2, 29, 3, 0, 0), 12), utc(2025, 2, 28, 3, 0, 0));
	assert_int_equal(policy_add_months_vn(utc(2025, 3, 31, 3, 0, 0), 1), utc(2025, 4, 30, 3, 0, 0));
	assert_int_equal(policy_add_months_vn(utc(2025, 12, 10, 3, 0, 0), 1), utc(2026, 1, 10, 3, 0, 0));
	/* The month is Hanoi's: 2025-01-31 17:30 UTC is 2025-02-01 00:30 in Hanoi, + 1 month = 2025-03-01
	 * 00:30 */
	assert_int_equal(policy_add_months_vn(utc(2025, 1, 31, 17, 30, 0), 1), utc(2025, 2, 28, 17, 30, 0));
	/* ... while 16:30 UTC is still Jan 31 in Hanoi: + 1 month = Feb 28 23:30 Hanoi */
	assert_int_equal(policy_add_months_vn(utc(2025, 1, 31, 16, 30, 0), 1), utc(2025, 2, 28, 16, 30, 0));
	assert_int_equal(policy_add_months_vn(utc(2025, 5, 5, 3, 0, 0), 0), utc(2025, 5, 5, 3, 0, 0));
	assert_int_equal(policy_add_months_vn(utc(2025, 5, 5, 3, 0, 0), 120), utc(2035, 5, 5, 3, 0, 0));
	/* before 1970 */
	assert_int_equal(policy_add_months_vn(utc(1965, 8, 31, 3, 0, 0), 6), utc(1966, 2, 28, 3, 0, 0));
}

/* The 12-month boundary of business_new_entity, to the second. */
static void
test_new_entity_boundary(void **state)
{
	struct config *c = make_config(C_DEFAULT);
	struct txn t;
	struct policy_decision d;
	struct geo_result g = {GEO_LOCATED, "VN", "rir"};
	struct policy_facts f = {0, 0, 1, 0};
	(void)state;
	make_txn(&rows[0], &t);
	t.account_type = ACCOUNT_BUSINESS;
	t.amount = 50 * M;
	/* opened 2024-11-23 07:00 UTC; 12 calendar months later is NOW exactly: no longer new */
	t.account_opened = utc(2024, 11, 23, 7, 0, 0);
	policy_decide(c, &t, &g, &f, NOW, &d);
	assert_int_equal(d.result, POLICY_ALLOW);
	policy_decide(c, &t, &g, &f, NOW - 1, &d);
	assert_int_equal(d.result, POLICY_STEP_UP);
	assert_string_equal(d.reasons[0], "business_new_entity");
	/* 365 days is not 12 months across a leap day: opened 2024-02-28 12:00 UTC, now 2025-02-27 12:00 UTC
	 */
	t.account_opened = utc(2024, 2, 28, 12, 0, 0);
	policy_decide(c, &t, &g, &f, utc(2025, 2, 27, 12, 0, 0), &d);
	assert_int_equal(d.result, POLICY_STEP_UP);
	policy_decide(c, &t, &g, &f, utc(2025, 2, 28, 12, 0, 0), &d);
	assert_int_equal(d.result, POLICY_ALLOW);
	config_free(&c);
}

static void
test_json(void **state)
{
	struct config *c = make_config(C_DEFAULT);
	struct txn t;
	struct policy_decision d;
	struct geo_result g = {GEO_LOCATED, "US", "mmdb"};
	struct policy_facts f = {0, 0, 0, 15 * M};
	(void)state;
	make_txn(&rows[0], &t);
	t.amount = 11 * M;
	policy_decide(c, &t, &g, &f, NOW, &d);
	json_t *j = policy_decision_to_json(&d);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "result")), "step_up");
	json_t *reasons = json_object_get(j, "reasons");
	assert_int_equal(json_array_size(reasons), 4);
	assert_string_equal(json_string_value(json_array_get(reasons, 0)), "personal_amount");
	assert_string_equal(json_string_value(json_array_get(reasons, 1)), "personal_daily_total");
	assert_string_equal(json_string_value(json_array_get(reasons, 2)), "overseas");
	assert_string_equal(json_string_value(json_array_get(reasons, 3)), "new_device");
	json_t *rules = json_object_get(j, "rules");
	assert_int_equal(json_array_size(rules), 11);
	json_t *pa = json_array_get(rules, 6);
	assert_string_equal(json_string_value(json_object_get(pa, "rule")), "personal_amount");
	assert_true(json_is_true(json_object_get(pa, "fired")));
	assert_true(json_is_true(json_object_get(pa, "step_up")));
	assert_int_equal(json_integer_value(json_object_get(pa, "value")), 11 * M);
	assert_int_equal(json_integer_value(json_object_get(pa, "threshold")), 10 * M);
	json_t *pd = json_array_get(rules, 7);
	assert_int_equal(json_integer_value(json_object_get(pd, "value")), 26 * M);
	json_t *ov = json_array_get(rules, 8);
	assert_true(json_is_true(json_object_get(ov, "fired")));
	assert_true(json_is_false(json_object_get(ov, "step_up")));
	assert_non_null(json_string_value(json_object_get(ov, "detail")));
	json_t *geo = json_object_get(j, "geo");
	assert_string_equal(json_string_value(json_object_get(geo, "status")), "located");
	assert_string_equal(json_string_value(json_object_get(geo, "country")), "US");
	assert_string_equal(json_string_value(json_object_get(geo, "source")), "mmdb");
	json_decref(j);

	f.account_frozen = 1;
	policy_decide(c, &t, &g, &f, NOW, &d);
	j = policy_decision_to_json(&d);
	assert_string_equal(json_string_value(json_object_get(j, "result")), "deny");
	assert_true(json_is_true(json_object_get(json_array_get(json_object_get(j, "rules"), 0), "deny")));
	json_decref(j);
	config_free(&c);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_config_keys(void **state)
{
	char path[] = "/tmp/authd-test-policy-XXXXXX";
	char err[512];
	struct config *c = NULL;
	int fd = mkstemp(path);
	(void)state;
	assert_true(fd >= 0);
	close(fd);

	write_file(path, "[policy]\n"
	                 "personal_amount.USD = 40000\npersonal_daily.USD = 100000\n"
	                 "business_new_amount.USD = 200000\nbusiness_new_daily.USD = 400000\n"
	                 "personal_amount.VND = 5000000\n"
	                 "disabled_rules = new_device, business_high_risk\n");
	assert_int_equal(config_load(path, &c, err, sizeof err), 0);
	assert_int_equal(c->policy.n_currencies, 1);
	assert_string_equal(c->policy.currencies[0].currency, "USD");
	assert_int_equal(c->policy.currencies[0].personal_amount, 40000);
	assert_int_equal(c->policy.currencies[0].business_new_daily, 400000);
	assert_int_equal(c->policy.personal_amount, 5000000);
	assert_int_equal(c->policy.personal_daily, 20000000);
	assert_int_equal(c->policy.disabled_rules, CONFIG_RULE_NEW_DEVICE | CONFIG_RULE_BUSINESS_HIGH_RISK);
	config_free(&c);

	/* a currency needs all four thresholds */
	write_file(path, "[policy]\npersonal_amount.USD = 40000\n");
	assert_int_not_equal(config_load(path, &c, err, sizeof err), 0);
	assert_non_null(strstr(err, "personal_daily.USD"));
	/* currency code must be three capitals */
	write_file(path, "[policy]\npersonal_amount.usd = 40000\n");
	assert_int_not_equal(config_load(path, &c, err, sizeof err), 0);
	assert_non_null(strstr(err, "personal_amount.usd"));
	/* unknown base key with a suffix is still an unknown key */
	write_file(path, "[policy]\nlockout_after.USD = 3\n");
	assert_int_not_equal(config_load(path, &c, err, sizeof err), 0);
	assert_non_null(strstr(err, "unknown key"));
	/* unknown rule name */
	write_file(path, "[policy]\ndisabled_rules = business_overseas, typo\n");
	assert_int_not_equal(config_load(path, &c, err, sizeof err), 0);
	assert_non_null(strstr(err, "disabled_rules"));
	/* thresholds above 2^53 */
	write_file(path, "[policy]\npersonal_amount.EUR = 9007199254740993\n");
	assert_int_not_equal(config_load(path, &c, err, sizeof err), 0);
	unlink(path);
}

/* [store] prune_interval and keep_expired: defaults, bounds, wrong types and garbage stop the load. */
static void
test_config_store_retention(void **state)
{
	static const char *const bad[] = {
	    "prune_interval = 86401", "prune_interval = -1",   "prune_interval = ten", "prune_interval = 1e3",
	    "prune_interval = 600s",  "prune_interval =",      "keep_expired = 3599",  "keep_expired = 31622401",
	    "keep_expired = 0x1000",  "keep_expired = 99999999999999999999",
	};
	char path[] = "/tmp/authd-test-retention-XXXXXX";
	char err[512], text[128];
	struct config *c = NULL;
	int fd = mkstemp(path);
	(void)state;
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(config_load(NULL, &c, err, sizeof err), 0);
	assert_int_equal(c->store.prune_interval, 600);
	assert_int_equal(c->store.keep_expired, 86400);
	config_free(&c);
	write_file(path, "[store]\nprune_interval = 0\nkeep_expired = 3600\n");
	assert_int_equal(config_load(path, &c, err, sizeof err), 0);
	assert_int_equal(c->store.prune_interval, 0);
	assert_int_equal(c->store.keep_expired, 3600);
	config_free(&c);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "[store]\n%s\n", bad[i]);
		write_file(path, text);
		assert_int_not_equal(config_load(path, &c, err, sizeof err), 0);
		assert_null(c);
		assert_non_null(strstr(err, bad[i][0] == 'p' ? "prune_interval" : "keep_expired"));
	}
	unlink(path);
}

/* End to end: DESIGN.md's example transaction through txn_parse, geo_lookup (an RIR file) and policy_decide.
 */
static void
test_design_example(void **state)
{
	static const char txn_json[] =
	    "{\"id\":\"T-1001\",\"customer\":\"C-42\",\"account\":\"0123456789\","
	    "\"account_type\":\"business\",\"account_opened\":1700000000,"
	    "\"amount\":250000000,\"currency\":\"VND\","
	    "\"payee\":{\"account\":\"9876543210\",\"bank\":\"VCB\",\"name\":\"Cong ty ABC\"},"
	    "\"channel\":\"internet_banking\",\"src_ip\":\"203.0.113.9\","
	    "\"device_id\":\"dev-7\",\"risk_flag\":true,\"ts\":1763881200}";
	char path[] = "/tmp/authd-test-policy-rir-XXXXXX";
	char err[256], msg[256];
	struct config *c = make_config(C_DEFAULT);
	struct geo *g = NULL;
	struct geo_result geo;
	struct txn t;
	struct policy_decision d;
	struct policy_facts f = {0, 0, 1, 0};
	char got[256];
	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	write_file(path, "2|test|20251123|2|19830101|20251122|+0700\n"
	                 "apnic|VN|ipv4|203.0.113.0|128|20251123|allocated\n"
	                 "apnic|SG|ipv4|203.0.113.128|128|20251123|allocated\n");
	assert_int_equal(geo_load(path, NULL, &g, err, sizeof err), 0);
	json_t *j = json_loads(txn_json, 0, NULL);
	assert_non_null(j);
	assert_int_equal(txn_parse(j, NOW, &t, msg, sizeof msg), 0);

	/* 24 months old, domestic, known device: only the risk flag */
	geo_lookup(g, t.src_ip, &geo);
	assert_int_equal(geo.status, GEO_LOCATED);
	assert_string_equal(geo.source, "rir");
	policy_decide(c, &t, &geo, &f, NOW, &d);
	reasons_text(&d, got, sizeof got);
	assert_int_equal(d.result, POLICY_STEP_UP);
	assert_string_equal(got, "business_high_risk");

	/* from the SG half of the block, a new device */
	strcpy(t.src_ip, "203.0.113.200");
	f.device_seen = 0;
	geo_lookup(g, t.src_ip, &geo);
	policy_decide(c, &t, &geo, &f, NOW, &d);
	reasons_text(&d, got, sizeof got);
	assert_string_equal(got, "business_high_risk business_overseas new_device");

	/* without any geolocation source: fail closed */
	geo_lookup(NULL, t.src_ip, &geo);
	policy_decide(c, &t, &geo, &f, NOW, &d);
	reasons_text(&d, got, sizeof got);
	assert_string_equal(got, "business_high_risk business_overseas new_device src_ip_unlocated");

	json_decref(j);
	geo_free(&g);
	config_free(&c);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),          cmocka_unit_test(test_rule_order),
	    cmocka_unit_test(test_add_months),     cmocka_unit_test(test_new_entity_boundary),
	    cmocka_unit_test(test_json),           cmocka_unit_test(test_config_keys),
	    cmocka_unit_test(test_design_example),
	    cmocka_unit_test(test_config_store_retention),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
