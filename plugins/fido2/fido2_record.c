/*
 * Stored credential record, version 1 (all integers big-endian):
 *
 *   u8  version (1)
 *   u8  flags: 0x01 BE, 0x02 BS, 0x04 UV initialized
 *   u8  fmt at registration: 0 none, 1 packed self, 2 packed x5c
 *   u32 COSE algorithm (two's complement: -7, -8, -257)
 *   u32 signCount (last accepted)
 *   16  AAGUID
 *   u16 public key length, then the key: ES256 x||y (64), EdDSA (32),
 *       RS256 n (256) || e (3)
 *
 * Nothing may follow. Decoding re-checks every field, so a damaged record
 * is refused rather than trusted.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fido2_int.h"

#define RECORD_MAX (1 + 1 + 1 + 4 + 4 + 16 + 2 + FIDO2_PK_MAX)

int
fido2_record_encode(const struct fido2_record *rec, uint8_t **out, size_t *len)
{
	uint8_t tmp[RECORD_MAX];
	struct wbuf w;

	*out = NULL;
	*len = 0;
	wbuf_init(&w, tmp, sizeof tmp);
	TRY(wbuf_put_u8(&w, FIDO2_RECORD_V1));
	TRY(wbuf_put_u8(&w, rec->flags));
	TRY(wbuf_put_u8(&w, rec->fmt));
	TRY(wbuf_put_u32be(&w, (uint32_t)(int32_t)rec->pk.alg));
	TRY(wbuf_put_u32be(&w, rec->sign_count));
	TRY(wbuf_put_bytes(&w, rec->aaguid, sizeof rec->aaguid));
	TRY(wbuf_put_u16be(&w, (uint16_t)rec->pk.raw_len));
	TRY(wbuf_put_bytes(&w, rec->pk.raw, rec->pk.raw_len));
	if ((*out = malloc(w.len)) == NULL)
		return AUTHD_ERR_NOMEM;
	memcpy(*out, tmp, w.len);
	*len = w.len;
	return 0;
}

int
fido2_record_decode(const uint8_t *p, size_t len, struct fido2_record *rec)
{
	struct buf b;
	uint8_t version;
	uint32_t alg;
	uint16_t pk_len;

	memset(rec, 0, sizeof *rec);
	buf_init(&b, p, len);
	TRY(buf_get_u8(&b, &version));
	if (version != FIDO2_RECORD_V1)
		return AUTHD_ERR_UNSUPPORTED;
	TRY(buf_get_u8(&b, &rec->flags));
	TRY(buf_get_u8(&b, &rec->fmt));
	TRY(buf_get_u32be(&b, &alg));
	TRY(buf_get_u32be(&b, &rec->sign_count));
	TRY(buf_copy(&b, rec->aaguid, sizeof rec->aaguid));
	TRY(buf_get_u16be(&b, &pk_len));
	if (pk_len > sizeof rec->pk.raw)
		return AUTHD_ERR_BAD_REQUEST;
	TRY(buf_copy(&b, rec->pk.raw, pk_len));
	TRY(buf_expect_end(&b));
	rec->pk.alg = (int)(int32_t)alg;
	rec->pk.raw_len = pk_len;
	if ((rec->pk.alg == FIDO2_COSE_ES256 && pk_len != 64) ||
	    (rec->pk.alg == FIDO2_COSE_EDDSA && pk_len != 32) ||
	    (rec->pk.alg == FIDO2_COSE_RS256 && pk_len != 259) ||
	    (rec->pk.alg != FIDO2_COSE_ES256 && rec->pk.alg != FIDO2_COSE_EDDSA &&
	     rec->pk.alg != FIDO2_COSE_RS256))
		return AUTHD_ERR_BAD_REQUEST;
	return 0;
}
