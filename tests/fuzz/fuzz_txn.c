/*
 * Transaction object (txn_parse, txn_hash) and the policy input built from
 * it (policy_decide, policy_decision_to_json). Input: a JSON text; its last
 * byte (when the text is followed by a NUL) picks the policy facts.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "fuzz.h"
#include "geo.h"
#include "policy.h"
#include "txn.h"

static struct config *cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	if (config_load(NULL, &cfg, err, sizeof err) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t now = 1763856000; /* 2025-11-23 */
	struct policy_facts facts = {0};
	struct geo_result geo = {.status = GEO_UNLOCATED};
	struct policy_decision d;
	struct txn t;
	char msg[256];
	json_error_t jerr;
	json_t *o, *dj = NULL;
	const uint8_t *nul = memchr(data, 0, size);

	if (size > 16384)
		return 0;
	if (nul != NULL && (size_t)(nul - data) + 1 < size) {
		uint8_t f = nul[1];
		facts.account_frozen = f & 1;
		facts.customer_locked = (f >> 1) & 1;
		facts.device_seen = (f >> 2) & 1;
		facts.approved_today_same_type = (int64_t)(f >> 3) * 1000000000;
		geo.status = (enum geo_status)((f >> 5) & 3);
		memcpy(geo.country, (f & 0x80) ? "US" : "VN", 3);
		geo.source = "rir";
		size = (size_t)(nul - data);
	}
	fuzz_arm(data, size);
	o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL)
		goto out;
	memset(msg, 0, sizeof msg);
	if (txn_parse(o, now, &t, msg, sizeof msg) == 0) {
		uint8_t h[32];
		FUZZ_ASSERT(t.amount >= 1 && t.amount <= TXN_MAX_AMOUNT);
		FUZZ_ASSERT(strlen(t.currency) == 3);
		FUZZ_ASSERT(t.account_type == ACCOUNT_PERSONAL || t.account_type == ACCOUNT_BUSINESS);
		if (txn_hash(&t, h) == 0)
			FUZZ_ASSERT(memcmp(h, t.hash, 32) == 0);
		policy_decide(cfg, &t, &geo, &facts, now, &d);
		FUZZ_ASSERT(d.result == POLICY_ALLOW || d.result == POLICY_STEP_UP ||
		            d.result == POLICY_DENY);
		FUZZ_ASSERT(d.n_reasons <= POLICY_MAX_REASONS);
		/* Never allow a frozen account or a locked customer. */
		if (facts.account_frozen || facts.customer_locked)
			FUZZ_ASSERT(d.result == POLICY_DENY);
		dj = policy_decision_to_json(&d);
		(void)txn_day_vn(t.ts);
	} else {
		FUZZ_ASSERT(memchr(msg, 0, sizeof msg) != NULL);
	}
out:
	fuzz_disarm();
	json_decref(dj);
	json_decref(o);
	return 0;
}
