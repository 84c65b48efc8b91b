/*
 * audit_check_json: one audit record from an export bundle (authctl audit
 * check). Input: JSON text; each element when it is an array.
 */
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	json_error_t jerr;
	json_t *o, *v;
	size_t i;

	if (size > 65536)
		return 0;
	fuzz_arm(data, size);
	o = json_loadb((const char *)data, size, 0, &jerr);
	if (o == NULL)
		goto out;
	if (json_is_array(o)) {
		json_array_foreach(o, i, v)
		{
			why[0] = '\0';
			int r = audit_check_json(v, why, sizeof why);
			FUZZ_ASSERT(r <= 0);
		}
	} else {
		why[0] = '\0';
		int r = audit_check_json(o, why, sizeof why);
		FUZZ_ASSERT(r <= 0);
		/* A record that checks must round-trip through the hash of its own fields. */
		if (r == 0 && !fuzz_faults_enabled())
			FUZZ_ASSERT(json_is_string(json_object_get(o, "hash")) &&
			            json_string_length(json_object_get(o, "hash")) == 64);
	}
out:
	fuzz_disarm();
	json_decref(o);
	return 0;
}
