/*
 * The risk policy of DESIGN.md section 6: a pure function from a
 * transaction, the store's facts about it, and the configuration to a
 * decision with every reason. No I/O; thread-safe.
 */
#ifndef AUTHD_POLICY_H
#define AUTHD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "geo.h"
#include "txn.h"

#define POLICY_MAX_REASONS 16

enum policy_result { POLICY_ALLOW = 0, POLICY_STEP_UP = 1, POLICY_DENY = 2 };

/*
 * What the store knows, read inside the same transaction that records the
 * decision. approved_today_same_type: the customer's approved total for the
 * Hanoi day txn_day_vn(now), same account type and currency, NOT counting
 * this transaction id (policy_decide adds t->amount itself).
 */
struct policy_facts {
	int account_frozen;
	int customer_locked;
	int device_seen;                 /* this customer used device_id before */
	int64_t approved_today_same_type; /* approved total today, same account type & currency */
};

struct policy_rule_verdict {
	const char *rule;   /* static */
	int fired;          /* 1: the rule's condition holds */
	int step_up;        /* 1: it demands step-up (0: flag only) */
	const char *detail; /* static short text for explain */
	int deny;           /* extension: 1 when it fired and denies (account_frozen, customer_locked) */
	int64_t value;      /* extension: the figure compared (amount, day total), or -1 */
	int64_t threshold;  /* extension: the configured limit it was compared with, or -1 */
};

struct policy_decision {
	enum policy_result result;
	const char *reasons[POLICY_MAX_REASONS]; /* static strings, stable order */
	size_t n_reasons;
	struct policy_rule_verdict rules[POLICY_MAX_REASONS]; /* every rule evaluated, for explain */
	size_t n_rules;
	struct geo_result geo;
};

/* Decides; never fails: anything it cannot judge becomes a step-up reason. */
void policy_decide(const struct config *cfg, const struct txn *t, const struct geo_result *geo,
                   const struct policy_facts *facts, int64_t now, struct policy_decision *d);

/* "allow", "step_up", "deny"; static. */
const char *policy_result_name(enum policy_result r);

/*
 * {"result","reasons":[...],"rules":[{"rule","fired","step_up","detail",
 * "deny"?,"value"?,"threshold"?}],"geo":{"status","country","source"}}.
 * NULL on allocation failure; caller decrefs.
 */
json_t *policy_decision_to_json(const struct policy_decision *d);

/*
 * t plus months calendar months on the Hanoi calendar (UTC+7): same local
 * time of day, day of month clamped to the month's length (Jan 31 + 1 month
 * = Feb 28/29). Independent of the host TZ.
 */
int64_t policy_add_months_vn(int64_t t, unsigned months);

#endif
