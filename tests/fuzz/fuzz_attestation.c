/*
 * attestationObject: CBOR map {fmt, attStmt, authData} and the attestation
 * statement checks (fido2_cbor_load_exact, fido2_authdata_parse,
 * fido2_attest_verify), then the same bytes through the plugin's enroll
 * (ABI) with a matching credential id and a valid clientDataJSON, so the
 * whole registration path runs. Byte 0: bit 0 = UV required; bit 1 = the
 * rest is the enroll request_json itself rather than an attestationObject.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "authd_plugin.h"
#include "fido2_int.h"
#include "fuzz.h"
#include "fuzz_fido2.h"
#include "util.h"

extern const struct authd_plugin authd_plugin_v1;

static void *pstate;
static char *cdj_b64;
static uint8_t cdh[32];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char cdj[256], *ch;
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	if (authd_plugin_v1.init(NULL, &pstate) != 0)
		abort();
	if ((ch = b64url_encode((const uint8_t *)FZ_CHALLENGE, 32)) == NULL)
		abort();
	snprintf(cdj, sizeof cdj, "{\"type\":\"webauthn.create\",\"challenge\":\"%s\",\"origin\":\"%s\"}", ch,
	         FZ_ORIGIN);
	free(ch);
	if ((cdj_b64 = b64url_encode((const uint8_t *)cdj, strlen(cdj))) == NULL ||
	    util_sha256(cdj, strlen(cdj), cdh) != 0)
		abort();
	return 0;
}

static int
text_is(const cbor_item_t *it, const char *s)
{
	return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == strlen(s) &&
	       memcmp(cbor_string_handle(it), s, strlen(s)) == 0;
}

/* The attestation object alone, through the plugin internals; lends the credential id found. */
static void
run_internals(const uint8_t *p, size_t n, uint8_t *cred_id, size_t *cred_id_len)
{
	static const struct fido2_cbor_limits lim = {.max_depth = 4, .max_items = 64, .allow_simple = 0};
	cbor_item_t *obj = NULL;
	const cbor_item_t *fmt = NULL, *stmt = NULL, *adi = NULL;
	const char *reason = NULL;
	struct fido2_authdata ad;
	enum fido2_fmt kind;

	*cred_id_len = 0;
	if (fido2_cbor_load_exact(p, n, &lim, &obj, FIDO2_R_MALFORMED_ATTESTATION, &reason) != 0)
		return;
	if (!cbor_isa_map(obj) || cbor_map_size(obj) != 3)
		goto out;
	struct cbor_pair *pairs = cbor_map_handle(obj);
	for (size_t i = 0; i < 3; i++) {
		if (text_is(pairs[i].key, "fmt"))
			fmt = pairs[i].value;
		else if (text_is(pairs[i].key, "attStmt"))
			stmt = pairs[i].value;
		else if (text_is(pairs[i].key, "authData"))
			adi = pairs[i].value;
	}
	if (fmt == NULL || !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt) || stmt == NULL ||
	    !cbor_isa_map(stmt) || adi == NULL || !cbor_isa_bytestring(adi) ||
	    !cbor_bytestring_is_definite(adi))
		goto out;
	if (fido2_authdata_parse(cbor_bytestring_handle(adi), cbor_bytestring_length(adi), 1, &ad, &reason) !=
	    0)
		goto out;
	if (ad.cred_id_len > 0 && ad.cred_id_len <= FIDO2_MAX_CRED_ID) {
		memcpy(cred_id, ad.cred_id, ad.cred_id_len);
		*cred_id_len = ad.cred_id_len;
	}
	reason = NULL;
	int r = fido2_attest_verify((const char *)cbor_string_handle(fmt), cbor_string_length(fmt), stmt,
	                            cbor_bytestring_handle(adi), cbor_bytestring_length(adi), cdh, &ad, &kind,
	                            &reason);
	FUZZ_ASSERT(r <= 0);
	if (r == 0)
		FUZZ_ASSERT(kind == FIDO2_FMT_NONE || kind == FIDO2_FMT_PACKED_SELF ||
		            kind == FIDO2_FMT_PACKED_X5C);
out:
	cbor_decref(&obj);
}

static void
run_enroll(const char *req, size_t len, int uv)
{
	static const char *const origins[] = {FZ_ORIGIN, FZ_ORIGIN2};
	struct authd_enroll_in in = {
	    .size = sizeof in,
	    .subject = FZ_SUBJECT,
	    .challenge = (const uint8_t *)FZ_CHALLENGE,
	    .challenge_len = 32,
	    .request_json = req,
	    .request_len = len,
	    .flags = uv ? AUTHD_VERIFY_UV_REQUIRED : 0,
	    .rp_id = FZ_RP_ID,
	    .origins = origins,
	    .n_origins = 2,
	};
	struct authd_enroll_out out;
	memset(&out, 0, sizeof out);
	out.size = sizeof out;
	int r = authd_plugin_v1.enroll(pstate, &in, &out);
	FUZZ_ASSERT(r <= 0);
	if (r < 0)
		FUZZ_ASSERT(out.verdict != AUTHD_VERDICT_APPROVE);
	if (out.verdict == AUTHD_VERDICT_APPROVE)
		FUZZ_ASSERT(out.n_records == 1 && out.info_json != NULL && out.n_reasons == 0);
	else
		FUZZ_ASSERT(out.n_records == 0);
	FUZZ_ASSERT(out.n_records <= AUTHD_PLUGIN_MAX_RECORDS && out.n_reasons <= AUTHD_PLUGIN_MAX_REASONS);
	for (size_t i = 0; i < out.n_records; i++) {
		free(out.records[i].id);
		free(out.records[i].data);
	}
	free(out.info_json);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t cred_id[FIDO2_MAX_CRED_ID];
	size_t cred_id_len = 0;
	char *att = NULL, *cid = NULL, *req = NULL;

	if (size < 1 || size > FIDO2_MAX_ATT_OBJ)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	int uv = data[0] & 1;
	if (data[0] & 2) {
		fuzz_arm(data, size);
		run_enroll((const char *)p, n, uv);
		fuzz_disarm();
		return 0;
	}
	fuzz_arm(data, size);
	run_internals(p, n, cred_id, &cred_id_len);
	fuzz_disarm();
	/* The whole registration, with the credential id the authenticatorData names. */
	if ((att = b64url_encode(p, n)) == NULL ||
	    (cid = b64url_encode(cred_id_len ? cred_id : (const uint8_t *)"x",
	                         cred_id_len ? cred_id_len : 1)) == NULL)
		goto out;
	size_t rl = strlen(att) + strlen(cid) + strlen(cdj_b64) + 128;
	if ((req = malloc(rl)) == NULL)
		goto out;
	snprintf(req, rl,
	         "{\"credential_id\":\"%s\",\"client_data_json\":\"%s\",\"attestation_object\":\"%s\"}", cid,
	         cdj_b64, att);
	fuzz_arm(data, size);
	run_enroll(req, strlen(req), uv);
	fuzz_disarm();
out:
	free(att);
	free(cid);
	free(req);
	return 0;
}
