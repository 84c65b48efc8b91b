/*
 * Fault injection for the fuzz targets (libfido2 fuzz/wrap.c style).
 *
 * Each function named here is linked with -Wl,--wrap=NAME (the list in
 * tests/fuzz/CMakeLists.txt must match WRAP_FUNCTIONS below), so calls from
 * authd and plugin code reach __wrap_NAME, which fails with probability
 * 1/AUTHD_FUZZ_FAIL while armed and otherwise calls the real function.
 *
 * jansson's own allocations are NOT failed (json_set_alloc_funcs): jansson
 * 2.14 aborts in json_loadb when its lexer's buffer cannot grow
 * (load.c:255 lex_unget_unsave: Assertion `c == d', akheron/jansson#362,
 * unfixed upstream). The jansson calls authd makes are wrapped instead and
 * fail the way jansson documents (NULL / -1, reference stolen).
 *
 * The PRNG is seeded by a hash of the current input and advanced with an
 * atomic counter (splitmix64), so a single-threaded target reproduces a
 * failure from the input alone; threads of the code under test (the
 * store's writer) draw from the same sequence.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cbor.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "fuzz.h"

static unsigned long fail_every; /* 0: injection off */
static atomic_int armed;
static atomic_uint_fast64_t prng_seed, prng_ctr;
static atomic_ulong injected;
static int inited;

static uint64_t
splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int
should_fail(void)
{
	if (fail_every == 0 || !atomic_load_explicit(&armed, memory_order_relaxed))
		return 0;
	uint64_t n = atomic_fetch_add(&prng_ctr, 1);
	if (splitmix64(atomic_load(&prng_seed) ^ (n * 0x2545f4914f6cdd1dull)) % fail_every != 0)
		return 0;
	atomic_fetch_add(&injected, 1);
	return 1;
}

/* ---- allocation ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *
__wrap_malloc(size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, n);
}

char *
__wrap_strdup(const char *s)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}

char *
__wrap_strndup(const char *s, size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strndup(s, n);
}

/*
 * ---- library calls: a failing call returns what the library returns on
 * error (NULL, 0 or an error code) ----
 */
#define WRAP_PTR(ret, name, params, args)                                                                    \
	ret __real_##name params;                                                                            \
	ret __wrap_##name params;                                                                            \
	ret __wrap_##name params                                                                             \
	{                                                                                                    \
		if (should_fail())                                                                           \
			return NULL;                                                                         \
		return __real_##name args;                                                                   \
	}
#define WRAP_INT(ret, name, failv, params, args)                                                             \
	ret __real_##name params;                                                                            \
	ret __wrap_##name params;                                                                            \
	ret __wrap_##name params                                                                             \
	{                                                                                                    \
		if (should_fail())                                                                           \
			return failv;                                                                        \
		return __real_##name args;                                                                   \
	}

/* OpenSSL */
WRAP_PTR(EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
WRAP_INT(int, EVP_DigestVerifyInit, 0,
         (EVP_MD_CTX * ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey),
         (ctx, pctx, type, e, pkey))
WRAP_INT(int, EVP_DigestVerify, -1,
         (EVP_MD_CTX * ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t tbslen),
         (ctx, sig, siglen, tbs, tbslen))
WRAP_INT(int, EVP_DigestUpdate, 0, (EVP_MD_CTX * ctx, const void *d, size_t cnt), (ctx, d, cnt))
WRAP_PTR(BIGNUM *, BN_bin2bn, (const unsigned char *s, int len, BIGNUM *ret), (s, len, ret))
WRAP_PTR(EVP_PKEY *, EVP_PKEY_new_raw_public_key,
         (int type, ENGINE *e, const unsigned char *key, size_t keylen), (type, e, key, keylen))
WRAP_PTR(EVP_PKEY_CTX *, EVP_PKEY_CTX_new_from_name,
         (OSSL_LIB_CTX * libctx, const char *name, const char *propquery), (libctx, name, propquery))
WRAP_INT(int, EVP_PKEY_fromdata, 0,
         (EVP_PKEY_CTX * ctx, EVP_PKEY **ppkey, int selection, OSSL_PARAM params[]),
         (ctx, ppkey, selection, params))
WRAP_PTR(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_new, (void), ())
WRAP_PTR(OSSL_PARAM *, OSSL_PARAM_BLD_to_param, (OSSL_PARAM_BLD * bld), (bld))
WRAP_PTR(X509 *, d2i_X509, (X509 * *a, const unsigned char **in, long len), (a, in, len))
WRAP_PTR(ECDSA_SIG *, d2i_ECDSA_SIG, (ECDSA_SIG * *a, const unsigned char **in, long len), (a, in, len))
WRAP_PTR(EVP_PKEY *, X509_get_pubkey, (X509 * x), (x))
WRAP_PTR(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_new, (void), ())
WRAP_INT(int, BN_bn2binpad, -1, (const BIGNUM *a, unsigned char *to, int tolen), (a, to, tolen))

/* libcbor */
cbor_item_t *__real_cbor_load(cbor_data source, size_t source_size, struct cbor_load_result *result);
cbor_item_t *__wrap_cbor_load(cbor_data source, size_t source_size, struct cbor_load_result *result);
cbor_item_t *
__wrap_cbor_load(cbor_data source, size_t source_size, struct cbor_load_result *result)
{
	if (should_fail()) {
		memset(result, 0, sizeof *result);
		result->error.code = CBOR_ERR_MEMERROR;
		return NULL;
	}
	return __real_cbor_load(source, source_size, result);
}

/* jansson (the API calls authd makes; json_pack is variadic and left alone) */
WRAP_PTR(json_t *, json_object, (void), ())
WRAP_PTR(json_t *, json_array, (void), ())
WRAP_PTR(json_t *, json_string, (const char *v), (v))
WRAP_PTR(json_t *, json_integer, (json_int_t v), (v))
WRAP_PTR(char *, json_dumps, (const json_t *j, size_t flags), (j, flags))
WRAP_PTR(json_t *, json_deep_copy, (const json_t *j), (j))

json_t *__real_json_loadb(const char *b, size_t n, size_t flags, json_error_t *e);
json_t *__wrap_json_loadb(const char *b, size_t n, size_t flags, json_error_t *e);
json_t *
__wrap_json_loadb(const char *b, size_t n, size_t flags, json_error_t *e)
{
	if (should_fail()) {
		if (e != NULL) {
			memset(e, 0, sizeof *e);
			snprintf(e->text, sizeof e->text, "out of memory");
		}
		return NULL;
	}
	return __real_json_loadb(b, n, flags, e);
}

json_t *__real_json_loads(const char *s, size_t flags, json_error_t *e);
json_t *__wrap_json_loads(const char *s, size_t flags, json_error_t *e);
json_t *
__wrap_json_loads(const char *s, size_t flags, json_error_t *e)
{
	if (should_fail()) {
		if (e != NULL) {
			memset(e, 0, sizeof *e);
			snprintf(e->text, sizeof e->text, "out of memory");
		}
		return NULL;
	}
	return __real_json_loads(s, flags, e);
}

/* The _new setters steal the value even when they fail. */
int __real_json_object_set_new(json_t *o, const char *k, json_t *v);
int __wrap_json_object_set_new(json_t *o, const char *k, json_t *v);
int
__wrap_json_object_set_new(json_t *o, const char *k, json_t *v)
{
	if (should_fail()) {
		json_decref(v);
		return -1;
	}
	return __real_json_object_set_new(o, k, v);
}

int __real_json_array_append_new(json_t *a, json_t *v);
int __wrap_json_array_append_new(json_t *a, json_t *v);
int
__wrap_json_array_append_new(json_t *a, json_t *v)
{
	if (should_fail()) {
		json_decref(v);
		return -1;
	}
	return __real_json_array_append_new(a, v);
}

/* SQLite */
WRAP_INT(int, sqlite3_prepare_v2, SQLITE_NOMEM,
         (sqlite3 * db, const char *sql, int n, sqlite3_stmt **st, const char **tail), (db, sql, n, st, tail))
WRAP_INT(int, sqlite3_step, SQLITE_IOERR, (sqlite3_stmt * st), (st))

/* ---- control ---- */

void
fuzz_wrap_init(void)
{
	if (inited)
		return;
	inited = 1;
	const char *e = getenv("AUTHD_FUZZ_FAIL");
	if (e != NULL && *e != '\0') {
		char *end;
		unsigned long v = strtoul(e, &end, 10);
		fail_every = (*end == '\0') ? v : 0;
	}
}

void
fuzz_arm(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	fuzz_wrap_init();
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ull;
	atomic_store(&prng_seed, h);
	atomic_store(&prng_ctr, 0);
	atomic_store(&armed, 1);
}

void
fuzz_disarm(void)
{
	atomic_store(&armed, 0);
}

int
fuzz_faults_enabled(void)
{
	fuzz_wrap_init();
	return fail_every != 0;
}

unsigned long
fuzz_faults_injected(void)
{
	return atomic_load(&injected);
}

int
fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < size;) {
		ssize_t n = write(fd, data + off, size - off);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}

void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}
