/*
 * WebAuthn clientDataJSON (fido2_client_data_check). Byte 0 picks the
 * expected type (webauthn.get / webauthn.create) and how many origins are
 * allowed; the rest is the clientDataJSON as received.
 */
#include <string.h>

#include "fido2_int.h"
#include "fuzz.h"
#include "fuzz_fido2.h"

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
	static const char *const origins[] = {FZ_ORIGIN, FZ_ORIGIN2};
	const char *reason = NULL;

	if (size < 1 || size > 2 * FIDO2_MAX_CLIENT_DATA)
		return 0;
	fuzz_arm(data, size);
	int r = fido2_client_data_check(
	    data + 1, size - 1, (data[0] & 1) ? "webauthn.create" : "webauthn.get",
	    (const uint8_t *)FZ_CHALLENGE, 32, origins, (data[0] & 2) ? 1 : 2, &reason);
	fuzz_disarm();
	FUZZ_ASSERT(r <= 0);
	if (r == AUTHD_ERR_BAD_REQUEST)
		FUZZ_ASSERT(reason != NULL);
	if (r == 0)
		FUZZ_ASSERT(reason == NULL);
	return 0;
}
