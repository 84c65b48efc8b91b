/*
 * The FIDO2 plugin's key-object cache under concurrency: a tiny cache
 * hammered by threads so entries are evicted while in use (run under
 * ASan), and the plugin's verify called from several threads at once
 * through the ABI, as the host's workers do.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fido.h>
#include <fido/es256.h>
#include <openssl/evp.h>

#include "fido2_int.h"
#include "test_fido2.h"

#define N_KEYS 8
#define N_THREADS 4

static struct fido2_pubkey keys[N_KEYS];
static struct fido2_keycache *cache;
static int thread_failures;

static void *
hammer(void *arg)
{
	unsigned seed = (unsigned)(size_t)arg;

	for (int i = 0; i < 2000; i++) {
		struct fido2_keyref ref;
		const struct fido2_pubkey *pk = &keys[rand_r(&seed) % N_KEYS];
		EVP_PKEY *e;
		if (fido2_keycache_get(cache, pk, &ref) != 0 || ref.pk == NULL) {
			__atomic_add_fetch(&thread_failures, 1, __ATOMIC_RELAXED);
			continue;
		}
		/* Use the object while other threads evict its slot. */
		if ((e = es256_pk_to_EVP_PKEY(ref.pk)) == NULL)
			__atomic_add_fetch(&thread_failures, 1, __ATOMIC_RELAXED);
		EVP_PKEY_free(e);
		fido2_keycache_put(cache, &ref);
	}
	return NULL;
}

static void
test_keycache_eviction_under_threads(void **state)
{
	pthread_t th[N_THREADS];

	(void)state;
	for (size_t i = 0; i < N_KEYS; i++) {
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		es256_pk_t *pk = es256_pk_new();
		size_t n = 0;
		unsigned char buf[65];
		assert_non_null(k);
		assert_int_equal(es256_pk_from_EVP_PKEY(pk, k), FIDO_OK);
		assert_int_equal(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", buf, sizeof buf, &n),
		                 1);
		assert_int_equal(n, 65);
		keys[i].alg = FIDO2_COSE_ES256;
		memcpy(keys[i].raw, buf + 1, 64);
		keys[i].raw_len = 64;
		es256_pk_free(&pk);
		EVP_PKEY_free(k);
	}
	assert_int_equal(fido2_keycache_new(&cache, 2), 0);
	for (size_t i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)(i + 1)), 0);
	for (size_t i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(thread_failures, 0);
	fido2_keycache_free(&cache);
	assert_null(cache);
}

static void
test_keycache_bad_key(void **state)
{
	struct fido2_pubkey bad = {.alg = FIDO2_COSE_ES256, .raw_len = 64};
	struct fido2_keyref ref;

	(void)state;
	memset(bad.raw, 1, sizeof bad.raw); /* not on the curve */
	assert_int_equal(fido2_keycache_new(&cache, 4), 0);
	assert_int_equal(fido2_keycache_get(cache, &bad, &ref), AUTHD_ERR_CRYPTO);
	assert_int_equal(fido2_keycache_get(NULL, &bad, &ref), AUTHD_ERR_CRYPTO);
	fido2_keycache_free(&cache);
}

/* ---- concurrent verify through the ABI ---- */

struct job {
	struct t_cred *cred;
	char *json[50];
	uint8_t chal[50][32];
	int approved;
};

static void *
verify_many(void *arg)
{
	struct job *j = arg;
	const struct t_cred *list[1] = {j->cred};

	for (size_t i = 0; i < 50; i++) {
		struct authd_verify_out out;
		if (t_verify_json(T_SUBJECT, j->json[i], j->chal[i], 32, list, 1, AUTHD_VERIFY_UV_REQUIRED,
		                  &out) == 0 &&
		    out.verdict == AUTHD_VERDICT_APPROVE)
			j->approved++;
		free(out.updated_data);
	}
	return NULL;
}

static void
test_plugin_concurrent_verify(void **state)
{
	static const int algs[N_THREADS] = {SOFTKEY_ES256, SOFTKEY_EDDSA, SOFTKEY_ES256, SOFTKEY_RS256};
	struct t_cred creds[N_THREADS];
	struct job jobs[N_THREADS];
	pthread_t th[N_THREADS];
	const char *reason = NULL;

	(void)state;
	for (size_t t = 0; t < N_THREADS; t++) {
		assert_int_equal(t_enroll(&creds[t], algs[t], SOFTKEY_FMT_NONE, SOFTKEY_UP | SOFTKEY_UV,
		                          AUTHD_VERIFY_UV_REQUIRED, NULL, &reason),
		                 AUTHD_VERDICT_APPROVE);
		memset(&jobs[t], 0, sizeof jobs[t]);
		jobs[t].cred = &creds[t];
		for (size_t i = 0; i < 50; i++) {
			t_challenge(jobs[t].chal[i]);
			/* Each verify sees the stored counter 0 and a fresh, higher one. */
			assert_int_equal(softkey_get_assertion(creds[t].key, T_RP_ID, T_ORIGIN,
			                                       jobs[t].chal[i], 32, SOFTKEY_UP | SOFTKEY_UV,
			                                       NULL, &jobs[t].json[i]),
			                 0);
		}
	}
	for (size_t t = 0; t < N_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, verify_many, &jobs[t]), 0);
	for (size_t t = 0; t < N_THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	for (size_t t = 0; t < N_THREADS; t++) {
		assert_int_equal(jobs[t].approved, 50);
		for (size_t i = 0; i < 50; i++)
			free(jobs[t].json[i]);
		t_cred_free(&creds[t]);
	}
}

static int
group_setup(void **state)
{
	(void)state;
	return t_plugin_load();
}

static int
group_teardown(void **state)
{
	(void)state;
	t_plugin_unload();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keycache_eviction_under_threads),
	    cmocka_unit_test(test_keycache_bad_key),
	    cmocka_unit_test(test_plugin_concurrent_verify),
	};

	return cmocka_run_group_tests_name("fido2_keycache", tests, group_setup, group_teardown);
}
