/*
 * clientDataJSON (WebAuthn section 5.8.1): the exact bytes the browser
 * produced. Hashing happens on those bytes elsewhere; here they are parsed
 * (jansson, duplicates refused) only to check type, challenge and origin.
 */
#include <string.h>

#include <jansson.h>

#include "fido2_int.h"
#include "util.h"

static int
origin_allowed(const char *origin, size_t len, const char *const *origins, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (origins[i] != NULL && strlen(origins[i]) == len && memcmp(origins[i], origin, len) == 0)
			return 1;
	return 0;
}

int
fido2_client_data_check(const uint8_t *cdj, size_t len, const char *type, const uint8_t *challenge,
                        size_t challenge_len, const char *const *origins, size_t n_origins,
                        const char **reason)
{
	json_t *root = NULL, *jt, *jc, *jo, *jx;
	json_error_t jerr;
	uint8_t *chal = NULL;
	size_t chal_len = 0;
	int r = AUTHD_ERR_BAD_REQUEST;

	if (len == 0 || len > FIDO2_MAX_CLIENT_DATA || !util_is_clean_utf8((const char *)cdj, len))
		FIDO2_REJECT(reason, FIDO2_R_BAD_CLIENT_DATA);
	root = json_loadb((const char *)cdj, len, JSON_REJECT_DUPLICATES, &jerr);
	*reason = FIDO2_R_BAD_CLIENT_DATA;
	if (root == NULL || !json_is_object(root))
		goto out;
	jt = json_object_get(root, "type");
	jc = json_object_get(root, "challenge");
	jo = json_object_get(root, "origin");
	jx = json_object_get(root, "crossOrigin");
	if (!json_is_string(jt) || !json_is_string(jc) || !json_is_string(jo) ||
	    (jx != NULL && !json_is_boolean(jx)))
		goto out;
	if (json_string_length(jt) != strlen(type) ||
	    memcmp(json_string_value(jt), type, strlen(type)) != 0) {
		*reason = FIDO2_R_WRONG_TYPE;
		goto out;
	}
	*reason = FIDO2_R_CHALLENGE_MISMATCH;
	r = b64url_decode(json_string_value(jc), json_string_length(jc), 1024, &chal, &chal_len);
	if (r == AUTHD_ERR_NOMEM)
		goto out_err;
	r = AUTHD_ERR_BAD_REQUEST;
	if (chal == NULL || challenge == NULL || !util_ct_equal(chal, chal_len, challenge, challenge_len))
		goto out;
	if (!origin_allowed(json_string_value(jo), json_string_length(jo), origins, n_origins)) {
		*reason = FIDO2_R_ORIGIN_NOT_ALLOWED;
		goto out;
	}
	if (jx != NULL && json_is_true(jx)) {
		*reason = FIDO2_R_CROSS_ORIGIN;
		goto out;
	}
	*reason = NULL;
	r = 0;
out:
	free(chal);
	json_decref(root);
	return r;
out_err:
	*reason = NULL;
	goto out;
}
