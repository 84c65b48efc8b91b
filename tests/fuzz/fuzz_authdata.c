/*
 * FIDO2 binary parsers and the assertion path. Byte 0 picks:
 *   0  authenticatorData of an assertion (fido2_authdata_parse, attested 0) + checks
 *   1  authenticatorData of a registration (attested 1) + checks
 *   2  a COSE_Key (fido2_cose_parse) and its conversion to OpenSSL/libfido2 keys
 *   3  a stored record (fido2_record_decode; re-encode must round-trip)
 *   4+ the plugin's verify (ABI) with the rest as request_json, against one
 *      enrolled ES256 record (FZ_CRED_ID, key FZ_PUB_XY)
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authd_plugin.h"
#include "fido2_int.h"
#include "fuzz.h"
#include "fuzz_fido2.h"

extern const struct authd_plugin authd_plugin_v1;

static void *pstate;
static uint8_t *rec_data;
static size_t rec_len;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t xy[64] = FZ_PUB_XY;
	struct fido2_record rec = {0};
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	if (authd_plugin_v1.init(NULL, &pstate) != 0)
		abort();
	/* One ES256 credential with a fixed key: the seeds are signed with its private half. */
	rec.fmt = FIDO2_FMT_NONE;
	rec.pk.alg = FIDO2_COSE_ES256;
	memcpy(rec.pk.raw, xy, 64);
	rec.pk.raw_len = 64;
	rec.sign_count = 5;
	if (fido2_record_encode(&rec, &rec_data, &rec_len) != 0)
		abort();
	return 0;
}

static void
run_authdata(const uint8_t *p, size_t n, int attested)
{
	struct fido2_authdata ad;
	const char *reason = NULL;
	int r = fido2_authdata_parse(p, n, attested, &ad, &reason);
	FUZZ_ASSERT(r <= 0);
	if (r == AUTHD_ERR_BAD_REQUEST)
		FUZZ_ASSERT(reason != NULL);
	if (r != 0)
		return;
	FUZZ_ASSERT(ad.rp_id_hash >= p && ad.rp_id_hash + 32 <= p + n);
	if (attested) {
		FUZZ_ASSERT(ad.cred_id_len <= FIDO2_MAX_CRED_ID);
		FUZZ_ASSERT(ad.cred_id >= p && ad.cred_id + ad.cred_id_len <= p + n);
		FUZZ_ASSERT(ad.pk.raw_len <= FIDO2_PK_MAX);
	}
	reason = NULL;
	r = fido2_authdata_check(&ad, FZ_RP_ID, n & 1, &reason);
	FUZZ_ASSERT(r <= 0);
}

static void
run_cose(const uint8_t *p, size_t n)
{
	struct fido2_pubkey pk;
	const char *reason = NULL;
	EVP_PKEY *e = NULL;
	void *fk = NULL;
	if (fido2_cose_parse(p, n, &pk, &reason) != 0)
		return;
	FUZZ_ASSERT(pk.raw_len <= FIDO2_PK_MAX);
	FUZZ_ASSERT(pk.alg == FIDO2_COSE_ES256 || pk.alg == FIDO2_COSE_EDDSA || pk.alg == FIDO2_COSE_RS256);
	if (fido2_pubkey_to_evp(&pk, &e) == 0)
		EVP_PKEY_free(e);
	if (fido2_pubkey_to_fido(&pk, &fk) == 0)
		fido2_pubkey_free_fido(pk.alg, &fk);
}

static void
run_record(const uint8_t *p, size_t n)
{
	struct fido2_record rec;
	uint8_t *out = NULL;
	size_t ol = 0;
	if (fido2_record_decode(p, n, &rec) != 0)
		return;
	if (fido2_record_encode(&rec, &out, &ol) == 0) {
		if (!fuzz_faults_enabled())
			FUZZ_ASSERT(ol == n && memcmp(out, p, n) == 0);
		free(out);
	}
}

static void
run_verify(const uint8_t *p, size_t n, int uv)
{
	static const char *const origins[] = {FZ_ORIGIN, FZ_ORIGIN2};
	struct authd_record recs[1] = {
	    {(const uint8_t *)FZ_CRED_ID, sizeof FZ_CRED_ID - 1, rec_data, rec_len}};
	struct authd_verify_in in = {
	    .size = sizeof in,
	    .subject = FZ_SUBJECT,
	    .challenge = (const uint8_t *)FZ_CHALLENGE,
	    .challenge_len = 32,
	    .request_json = (const char *)p,
	    .request_len = n,
	    .records = recs,
	    .n_records = 1,
	    .flags = uv ? AUTHD_VERIFY_UV_REQUIRED : 0,
	    .rp_id = FZ_RP_ID,
	    .origins = origins,
	    .n_origins = 2,
	};
	struct authd_verify_out out;
	memset(&out, 0, sizeof out);
	out.size = sizeof out;
	int r = authd_plugin_v1.verify(pstate, &in, &out);
	FUZZ_ASSERT(r <= 0);
	/* An error is never an approval; an approval needs no error and one known record. */
	if (r < 0)
		FUZZ_ASSERT(out.verdict != AUTHD_VERDICT_APPROVE);
	if (out.verdict == AUTHD_VERDICT_APPROVE)
		FUZZ_ASSERT(out.record_index == 0 && out.n_reasons == 0);
	FUZZ_ASSERT(out.n_reasons <= AUTHD_PLUGIN_MAX_REASONS);
	free(out.updated_data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > FIDO2_MAX_REQUEST)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	fuzz_arm(data, size);
	switch (data[0] & 7) {
	case 0:
		run_authdata(p, n, 0);
		break;
	case 1:
		run_authdata(p, n, 1);
		break;
	case 2:
		run_cose(p, n);
		break;
	case 3:
		run_record(p, n);
		break;
	default:
		run_verify(p, n, data[0] & 8);
		break;
	}
	fuzz_disarm();
	return 0;
}
