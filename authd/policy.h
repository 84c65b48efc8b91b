/*
 * The risk policy of DESIGN.md section 6: a pure function from a
 * transaction, the store's facts about it, and the configuration to a
 * decision with every reason. No I/O; thread-safe.
 */
#ifndef AUTHD_POLICY_H
#define AUTHD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "geo.h"
#include "txn.h"

#define POLICY_MAX_REASONS 16

enum policy_result { POLICY_ALLOW = 0, POLICY_STEP_UP = 1, POLICY_DENY = 2 };

/* What the store knows, read inside the same transaction that records the decision. */
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

const char *policy_result_name(enum policy_result r);

#endif
