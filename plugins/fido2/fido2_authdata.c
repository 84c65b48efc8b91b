/*
 * authenticatorData (WebAuthn section 6.1), read only through struct buf:
 *   rpIdHash[32] flags[1] signCount[4 BE]
 *   [AT] aaguid[16] credIdLen[2 BE] credId[credIdLen] credentialPublicKey(COSE)
 *   [ED] extensions (CBOR map)
 * and nothing after.
 */
#include <string.h>

#include "buf.h"
#include "fido2_int.h"
#include "util.h"

static const struct fido2_cbor_limits cose_scan = {.max_depth = 1, .max_items = 32, .allow_simple = 0};
static const struct fido2_cbor_limits ext_limits = {.max_depth = 4, .max_items = 64, .allow_simple = 1};

int
fido2_authdata_parse(const uint8_t *p, size_t len, int attested, struct fido2_authdata *ad,
                     const char **reason)
{
	struct buf b;
	uint16_t id_len;
	size_t n;
	const char *why = FIDO2_R_MALFORMED_AUTH_DATA;

	memset(ad, 0, sizeof *ad);
	if (len > FIDO2_MAX_AUTH_DATA)
		FIDO2_REJECT(reason, why);
	buf_init(&b, p, len);
	if (buf_get_bytes(&b, 32, &ad->rp_id_hash) != 0 || buf_get_u8(&b, &ad->flags) != 0 ||
	    buf_get_u32be(&b, &ad->sign_count) != 0)
		FIDO2_REJECT(reason, why);
	if (attested && !(ad->flags & FIDO2_AD_AT))
		FIDO2_REJECT(reason, FIDO2_R_MISSING_CRED_DATA);
	if (!attested && (ad->flags & FIDO2_AD_AT))
		FIDO2_REJECT(reason, why);
	if (ad->flags & FIDO2_AD_AT) {
		if (buf_copy(&b, ad->aaguid, sizeof ad->aaguid) != 0 || buf_get_u16be(&b, &id_len) != 0)
			FIDO2_REJECT(reason, why);
		if (id_len > FIDO2_MAX_CRED_ID)
			FIDO2_REJECT(reason, FIDO2_R_CRED_ID_TOO_LONG);
		if (id_len == 0 || buf_get_bytes(&b, id_len, &ad->cred_id) != 0)
			FIDO2_REJECT(reason, why);
		ad->cred_id_len = id_len;
		/* The COSE key's length is only known by decoding it. */
		TRY(fido2_cbor_check(buf_ptr(&b), buf_remaining(&b), &cose_scan, &n, why, reason));
		TRY(fido2_cose_parse(buf_ptr(&b), n, &ad->pk, reason));
		if (buf_skip(&b, n) != 0)
			FIDO2_REJECT(reason, why);
	}
	if (ad->flags & FIDO2_AD_ED) {
		struct buf peek = b;
		uint8_t initial;
		TRY(fido2_cbor_check(buf_ptr(&b), buf_remaining(&b), &ext_limits, &n, why, reason));
		/* major type 5 (map) in the initial byte */
		if (buf_get_u8(&peek, &initial) != 0 || initial >> 5 != 5 || buf_skip(&b, n) != 0)
			FIDO2_REJECT(reason, why);
	}
	if (buf_expect_end(&b) != 0)
		FIDO2_REJECT(reason, why); /* trailing bytes */
	return 0;
}

int
fido2_authdata_check(const struct fido2_authdata *ad, const char *rp_id, int uv_required, const char **reason)
{
	uint8_t want[32];

	TRY(util_sha256(rp_id, strlen(rp_id), want));
	if (!util_ct_equal(ad->rp_id_hash, 32, want, sizeof want))
		FIDO2_REJECT(reason, FIDO2_R_RP_ID_MISMATCH);
	if (!(ad->flags & FIDO2_AD_UP))
		FIDO2_REJECT(reason, FIDO2_R_USER_NOT_PRESENT);
	if (uv_required && !(ad->flags & FIDO2_AD_UV))
		FIDO2_REJECT(reason, FIDO2_R_USER_NOT_VERIFIED);
	if ((ad->flags & FIDO2_AD_BS) && !(ad->flags & FIDO2_AD_BE))
		FIDO2_REJECT(reason, FIDO2_R_BACKUP_STATE_INVALID);
	return 0;
}
