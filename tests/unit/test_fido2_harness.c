#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "test_fido2.h"

const struct authd_plugin *t_plugin;
void *t_state;
const char *const t_origins[] = {"https://bank.example", "android:apk-key-hash:c29mdGtleQ"};
const size_t t_n_origins = 2;
unsigned t_unexpected_approvals;
static void *t_dl;

static void
t_log(int prio, const char *msg)
{
	(void)prio;
	(void)msg;
}

static const char *
t_config(const char *section, const char *key)
{
	(void)section;
	(void)key;
	return NULL;
}

static const struct authd_plugin_host t_host = {
    .abi = AUTHD_PLUGIN_ABI,
    .size = sizeof(struct authd_plugin_host),
    .log = t_log,
    .config = t_config,
};

int
t_plugin_load(void)
{
	const char *dir = getenv("AUTHD_BUILD_DIR");
	char path[4096];

	if (t_plugin != NULL)
		return 0;
	if (dir == NULL ||
	    snprintf(path, sizeof path, "%s/lib/authd/plugins/fido2.so", dir) >= (int)sizeof path)
		return -1;
	if ((t_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		return -1;
	}
	t_plugin = dlsym(t_dl, AUTHD_PLUGIN_SYMBOL);
	if (t_plugin == NULL || AUTHD_PLUGIN_MAJOR(t_plugin->abi) != 1 || t_plugin->size < sizeof *t_plugin ||
	    t_plugin->init == NULL || t_plugin->enroll == NULL || t_plugin->verify == NULL ||
	    t_plugin->fini == NULL)
		return -1;
	return t_plugin->init(&t_host, &t_state);
}

void
t_plugin_unload(void)
{
	if (t_plugin != NULL)
		t_plugin->fini(t_state);
	t_plugin = NULL;
	t_state = NULL;
	if (t_dl != NULL)
		dlclose(t_dl);
	t_dl = NULL;
}

void
t_challenge(uint8_t out[32])
{
	assert_int_equal(RAND_bytes(out, 32), 1);
}

static void
enroll_out_free(struct authd_enroll_out *out)
{
	for (size_t i = 0; i < out->n_records; i++) {
		free(out->records[i].id);
		if (out->records[i].data != NULL)
			OPENSSL_cleanse(out->records[i].data, out->records[i].data_len);
		free(out->records[i].data);
	}
	free(out->info_json);
}

int
t_enroll_json(const char *json, const uint8_t *chal, size_t chal_len, uint32_t flags, struct t_cred *cred,
              int *verdict, const char **reason)
{
	struct authd_enroll_in in = {
	    .size = sizeof in,
	    .subject = T_SUBJECT,
	    .challenge = chal,
	    .challenge_len = chal_len,
	    .request_json = json,
	    .request_len = json != NULL ? strlen(json) : 0,
	    .flags = flags,
	    .rp_id = T_RP_ID,
	    .origins = t_origins,
	    .n_origins = t_n_origins,
	};
	struct authd_enroll_out out = {.size = sizeof out};
	int rc = t_plugin->enroll(t_state, &in, &out);

	*verdict = out.verdict;
	*reason = out.n_reasons > 0 ? out.reasons[0] : NULL;
	if (out.verdict == AUTHD_VERDICT_APPROVE) {
		/* An approval must come with exactly one record and no reason. */
		assert_int_equal(rc, 0);
		assert_int_equal(out.n_records, 1);
		assert_int_equal(out.n_reasons, 0);
		assert_non_null(out.info_json);
		if (cred != NULL) {
			cred->id = out.records[0].id;
			cred->id_len = out.records[0].id_len;
			cred->data = out.records[0].data;
			cred->data_len = out.records[0].data_len;
			cred->info_json = out.info_json;
			return rc;
		}
	} else {
		assert_int_equal(out.n_records, 0);
	}
	enroll_out_free(&out);
	return rc;
}

int
t_enroll(struct t_cred *cred, int alg, enum softkey_fmt fmt, unsigned ad_flags, uint32_t flags,
         const struct softkey_opts *opts, const char **reason)
{
	uint8_t chal[32];
	char *json = NULL;
	int verdict, rc;

	memset(cred, 0, sizeof *cred);
	cred->key = softkey_new(alg);
	assert_non_null(cred->key);
	t_challenge(chal);
	assert_int_equal(softkey_make_credential(cred->key, T_RP_ID, T_ORIGIN, chal, sizeof chal, ad_flags,
	                                         fmt, opts, &json),
	                 0);
	rc = t_enroll_json(json, chal, sizeof chal, flags, cred, &verdict, reason);
	free(json);
	assert_int_equal(rc, 0);
	return verdict;
}

int
t_verify_json(const char *subject, const char *json, const uint8_t *chal, size_t chal_len,
              const struct t_cred *const *creds, size_t n, uint32_t flags, struct authd_verify_out *out)
{
	struct authd_record recs[AUTHD_PLUGIN_MAX_RECORDS];
	struct authd_verify_in in = {
	    .size = sizeof in,
	    .subject = subject,
	    .challenge = chal,
	    .challenge_len = chal_len,
	    .request_json = json,
	    .request_len = json != NULL ? strlen(json) : 0,
	    .records = recs,
	    .n_records = n,
	    .flags = flags,
	    .rp_id = T_RP_ID,
	    .origins = t_origins,
	    .n_origins = t_n_origins,
	};

	assert_true(n <= AUTHD_PLUGIN_MAX_RECORDS);
	for (size_t i = 0; i < n; i++) {
		recs[i].id = creds[i]->id;
		recs[i].id_len = creds[i]->id_len;
		recs[i].data = creds[i]->data;
		recs[i].data_len = creds[i]->data_len;
	}
	memset(out, 0, sizeof *out);
	out->size = sizeof *out;
	out->verdict = AUTHD_VERDICT_DENY;
	return t_plugin->verify(t_state, &in, out);
}

int
t_assert(struct t_cred *cred, const uint8_t *chal, unsigned ad_flags, uint32_t flags,
         const struct softkey_opts *opts, struct authd_verify_out *out)
{
	const struct t_cred *list[1] = {cred};
	char *json = NULL;
	int rc;

	assert_int_equal(softkey_get_assertion(cred->key, T_RP_ID, T_ORIGIN, chal, 32, ad_flags, opts, &json),
	                 0);
	rc = t_verify_json(T_SUBJECT, json, chal, 32, list, 1, flags, out);
	free(json);
	if (rc == 0 && out->verdict == AUTHD_VERDICT_APPROVE) {
		assert_non_null(out->updated_data);
		free(cred->data);
		cred->data = out->updated_data;
		cred->data_len = out->updated_len;
		out->updated_data = NULL;
		out->updated_len = 0;
	}
	return rc;
}

void
t_cred_free(struct t_cred *cred)
{
	softkey_free(&cred->key);
	free(cred->id);
	free(cred->data);
	free(cred->info_json);
	memset(cred, 0, sizeof *cred);
}

void
t_verify_out_free(struct authd_verify_out *out)
{
	free(out->updated_data);
	out->updated_data = NULL;
}

void
t_expect_reject(const struct authd_verify_out *out, int rc, const char *reason)
{
	if (out->verdict != AUTHD_VERDICT_DENY)
		t_unexpected_approvals++;
	assert_int_equal(out->verdict, AUTHD_VERDICT_DENY);
	assert_int_equal(rc, 0);
	assert_null(out->updated_data);
	assert_int_equal(out->amr, 0);
	assert_true(out->n_reasons >= 1);
	assert_string_equal(out->reasons[0], reason);
}
