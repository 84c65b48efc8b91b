#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "proto.h"
#include "util.h"

struct token_key {
	EVP_PKEY *pkey;
	uint64_t serial; /* unique per process: names the key in per-thread signing caches */
	int eddsa;
	char kid[48];
	json_t *jwk;
};

struct token_keyring {
	pthread_rwlock_t lock;
	char dir[4096];
	char alg[8];
	struct token_key *current, *previous;
};

static void
key_free(struct token_key **k)
{
	if (k == NULL || *k == NULL)
		return;
	EVP_PKEY_free((*k)->pkey);
	json_decref((*k)->jwk);
	free(*k);
	*k = NULL;
}

static int
bn_param_fixed(const EVP_PKEY *pkey, const char *name, uint8_t out[32])
{
	BIGNUM *bn = NULL;
	int ok = EVP_PKEY_get_bn_param(pkey, name, &bn) == 1 && BN_bn2binpad(bn, out, 32) == 32;
	BN_free(bn);
	return ok ? 0 : AUTHD_ERR_CRYPTO;
}

/* Public JWK and its RFC 7638 thumbprint. */
static int
key_describe(struct token_key *k)
{
	uint8_t x[32], y[32];
	size_t xl = sizeof x;
	char *xs = NULL, *ys = NULL;
	json_t *thumb = NULL;
	int r = AUTHD_ERR_CRYPTO;

	if (k->eddsa) {
		if (EVP_PKEY_get_raw_public_key(k->pkey, x, &xl) != 1 || xl != 32)
			goto out;
		if ((xs = b64url_encode(x, 32)) == NULL)
			goto out;
		thumb = json_pack("{s:s,s:s,s:s}", "crv", "Ed25519", "kty", "OKP", "x", xs);
	} else {
		if (bn_param_fixed(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, x) < 0 ||
		    bn_param_fixed(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, y) < 0)
			goto out;
		if ((xs = b64url_encode(x, 32)) == NULL || (ys = b64url_encode(y, 32)) == NULL)
			goto out;
		thumb = json_pack("{s:s,s:s,s:s,s:s}", "crv", "P-256", "kty", "EC", "x", xs, "y", ys);
	}
	if (thumb == NULL || token_jwk_thumbprint(thumb, k->kid, sizeof k->kid) < 0)
		goto out;
	k->jwk = json_deep_copy(thumb);
	if (k->jwk == NULL ||
	    json_object_set_new(k->jwk, "kid", json_string(k->kid)) != 0 ||
	    json_object_set_new(k->jwk, "use", json_string("sig")) != 0 ||
	    json_object_set_new(k->jwk, "alg", json_string(k->eddsa ? "EdDSA" : "ES256")) != 0)
		goto out;
	r = 0;
out:
	free(xs);
	free(ys);
	json_decref(thumb);
	return r;
}

int
token_jwk_thumbprint(const json_t *jwk, char *out, size_t outlen)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *x = json_string_value(json_object_get(jwk, "x"));
	const char *y = json_string_value(json_object_get(jwk, "y"));
	json_t *t = NULL;
	char *canon = NULL, *b64 = NULL;
	uint8_t md[32];
	int r = AUTHD_ERR_CRYPTO;
	if (kty != NULL && strcmp(kty, "EC") == 0 && crv != NULL && x != NULL && y != NULL)
		t = json_pack("{s:s,s:s,s:s,s:s}", "crv", crv, "kty", kty, "x", x, "y", y);
	else if (kty != NULL && strcmp(kty, "OKP") == 0 && crv != NULL && x != NULL)
		t = json_pack("{s:s,s:s,s:s}", "crv", crv, "kty", kty, "x", x);
	if (t != NULL && (canon = json_dumps(t, JSON_SORT_KEYS | JSON_COMPACT)) != NULL &&
	    util_sha256(canon, strlen(canon), md) == 0 && (b64 = b64url_encode(md, 32)) != NULL &&
	    strlen(b64) < outlen) {
		memcpy(out, b64, strlen(b64) + 1);
		r = 0;
	}
	json_decref(t);
	free(canon);
	free(b64);
	return r;
}

static int
key_from_pkey(EVP_PKEY *pkey, struct token_key **out)
{
	struct token_key *k = calloc(1, sizeof *k);
	if (k == NULL)
		return AUTHD_ERR_NOMEM;
	static atomic_uint_fast64_t next_serial = 1;
	k->pkey = pkey;
	k->serial = atomic_fetch_add(&next_serial, 1);
	/* ES256 means P-256: any other curve (P-384, secp256k1...) would sign tokens no backend verifies */
	char group[32] = "";
	if (EVP_PKEY_is_a(pkey, "ED25519"))
		k->eddsa = 1;
	else if (!EVP_PKEY_is_a(pkey, "EC") ||
	         EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
	                                        NULL) != 1 ||
	         strcmp(group, SN_X9_62_prime256v1) != 0) {
		free(k);
		return AUTHD_ERR_CRYPTO;
	}
	if (key_describe(k) < 0) {
		k->pkey = NULL; /* the caller still owns pkey */
		key_free(&k);
		return AUTHD_ERR_CRYPTO;
	}
	*out = k;
	return 0;
}

static int
key_generate(const char *alg, struct token_key **out)
{
	EVP_PKEY *pkey = strcmp(alg, "EdDSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL)
		return AUTHD_ERR_CRYPTO;
	int r = key_from_pkey(pkey, out);
	if (r < 0)
		EVP_PKEY_free(pkey);
	return r;
}

static int
key_path(const struct token_keyring *kr, const char *name, char *out, size_t len)
{
	return snprintf(out, len, "%s/%s.pem", kr->dir, name) < (int)len ? 0 : AUTHD_ERR_CONFIG;
}

/* Loads a PEM private key; refuses one readable by group or others. */
static int
key_load(const char *path, struct token_key **out, char *err, size_t errlen)
{
	struct stat st;
	*out = NULL;
	if (stat(path, &st) != 0)
		return errno == ENOENT ? AUTHD_ERR_NOT_FOUND : AUTHD_ERR_IO;
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: signing key is accessible by group or others (mode %03o); chmod 600 it",
		         path, (unsigned)(st.st_mode & 0777));
		return AUTHD_ERR_CONFIG;
	}
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return AUTHD_ERR_IO;
	EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pkey == NULL) {
		snprintf(err, errlen, "%s: not a PEM private key", path);
		return AUTHD_ERR_CONFIG;
	}
	int r = key_from_pkey(pkey, out);
	if (r < 0) {
		EVP_PKEY_free(pkey);
		snprintf(err, errlen, "%s: unsupported key type (need P-256 or Ed25519)", path);
	}
	return r;
}

static int
key_save(const struct token_key *k, const char *path)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	int r = AUTHD_ERR_CRYPTO;
	if (bio == NULL)
		return AUTHD_ERR_NOMEM;
	if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		long n = BIO_get_mem_data(bio, &data);
		r = n > 0 ? util_write_file_atomic(path, data, (size_t)n, 0600) : AUTHD_ERR_CRYPTO;
	}
	BIO_free_all(bio); /* BIO_s_mem frees with cleanse via BUF_MEM_free */
	return r;
}

static int
ring_read(struct token_keyring *kr, struct token_key **cur, struct token_key **prev, char *err, size_t errlen)
{
	char path[4200];
	int r;
	*cur = *prev = NULL;
	TRY(key_path(kr, "current", path, sizeof path));
	r = key_load(path, cur, err, errlen);
	if (r == AUTHD_ERR_NOT_FOUND) {
		if ((r = key_generate(kr->alg, cur)) < 0 || (r = key_save(*cur, path)) < 0) {
			snprintf(err, errlen, "cannot create signing key %s", path);
			key_free(cur);
			return r;
		}
	} else if (r < 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "cannot read signing key %s", path);
		return r;
	}
	TRY(key_path(kr, "previous", path, sizeof path));
	r = key_load(path, prev, err, errlen);
	if (r < 0 && r != AUTHD_ERR_NOT_FOUND) {
		key_free(cur);
		return r;
	}
	return 0;
}

int
token_keyring_load(const char *state_dir, const char *alg, struct token_keyring **out, char *err, size_t errlen)
{
	struct token_keyring *kr = calloc(1, sizeof *kr);
	int r;
	*out = NULL;
	err[0] = '\0';
	if (kr == NULL)
		return AUTHD_ERR_NOMEM;
	pthread_rwlock_init(&kr->lock, NULL);
	snprintf(kr->alg, sizeof kr->alg, "%s", alg);
	if (snprintf(kr->dir, sizeof kr->dir, "%s/keys", state_dir) >= (int)sizeof kr->dir) {
		r = AUTHD_ERR_CONFIG;
		goto fail;
	}
	if (mkdir(kr->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", kr->dir, strerror(errno));
		r = AUTHD_ERR_IO;
		goto fail;
	}
	if ((r = ring_read(kr, &kr->current, &kr->previous, err, errlen)) < 0)
		goto fail;
	*out = kr;
	return 0;
fail:
	token_keyring_free(&kr);
	return r;
}

void
token_keyring_free(struct token_keyring **krp)
{
	if (krp == NULL || *krp == NULL)
		return;
	struct token_keyring *kr = *krp;
	key_free(&kr->current);
	key_free(&kr->previous);
	pthread_rwlock_destroy(&kr->lock);
	free(kr);
	*krp = NULL;
}

/*
 * One order keeps the audit log, the key files and the ring in memory in
 * agreement:
 *  1. The new key is made and commit (op_rotate_key: the audit record naming
 *     its kid) runs before anything is installed; if it fails, nothing has
 *     changed anywhere, and a retry starts from the same ring.
 *  2. Both files are written under temporary names: the writes are what a
 *     full disk or an I/O error makes fail, and nothing live changes if they do.
 *  3. Renames within the directory, which need no space, move them in; the
 *     ring in memory follows. Should the second rename still fail,
 *     previous.pem already holds the current key, so the ring drops its
 *     previous key to match.
 * Rotations run one at a time (so records and installs come in the same
 * order); the ring's lock is held for steps 2 and 3 only, so signing never
 * waits on the store.
 */
int
token_keyring_rotate_commit(struct token_keyring *kr, int (*commit)(const char *kid, void *arg), void *arg,
                            char *new_kid, size_t kidlen)
{
	static pthread_mutex_t serial = PTHREAD_MUTEX_INITIALIZER;
	struct token_key *fresh = NULL;
	char cur_path[4200], prev_path[4200], cur_tmp[4240], prev_tmp[4240], alg[sizeof kr->alg];
	int r;
	TRY(key_path(kr, "current", cur_path, sizeof cur_path));
	TRY(key_path(kr, "previous", prev_path, sizeof prev_path));
	snprintf(cur_tmp, sizeof cur_tmp, "%s.new.%ld", cur_path, (long)getpid());
	snprintf(prev_tmp, sizeof prev_tmp, "%s.new.%ld", prev_path, (long)getpid());
	pthread_mutex_lock(&serial);
	pthread_rwlock_rdlock(&kr->lock);
	memcpy(alg, kr->alg, sizeof alg);
	pthread_rwlock_unlock(&kr->lock);
	if ((r = key_generate(alg, &fresh)) < 0 || (commit != NULL && (r = commit(fresh->kid, arg)) < 0))
		goto out;
	pthread_rwlock_wrlock(&kr->lock);
	if ((r = key_save(kr->current, prev_tmp)) < 0 || (r = key_save(fresh, cur_tmp)) < 0)
		goto unlock;
	if (rename(prev_tmp, prev_path) != 0) {
		r = AUTHD_ERR_IO;
		goto unlock;
	}
	if (rename(cur_tmp, cur_path) != 0) {
		key_free(&kr->previous);
		r = AUTHD_ERR_IO;
		goto unlock;
	}
	(void)util_sync_dir_of(cur_path);
	key_free(&kr->previous);
	kr->previous = kr->current;
	kr->current = fresh;
	fresh = NULL;
	snprintf(new_kid, kidlen, "%s", kr->current->kid);
unlock:
	unlink(prev_tmp); /* ENOENT once renamed */
	unlink(cur_tmp);
	pthread_rwlock_unlock(&kr->lock);
out:
	pthread_mutex_unlock(&serial);
	key_free(&fresh);
	return r;
}

int
token_keyring_rotate(struct token_keyring *kr, char *new_kid, size_t kidlen)
{
	return token_keyring_rotate_commit(kr, NULL, NULL, new_kid, kidlen);
}

int
token_keyring_reload(struct token_keyring *kr, const char *alg, char *err, size_t errlen)
{
	struct token_key *cur, *prev;
	err[0] = '\0';
	pthread_rwlock_wrlock(&kr->lock);
	snprintf(kr->alg, sizeof kr->alg, "%s", alg);
	int r = ring_read(kr, &cur, &prev, err, errlen);
	if (r == 0) {
		key_free(&kr->current);
		key_free(&kr->previous);
		kr->current = cur;
		kr->previous = prev;
	}
	pthread_rwlock_unlock(&kr->lock);
	return r;
}

/*
 * ES256 signing context per thread, set up once per key: creating an
 * EVP_PKEY_CTX and fetching the algorithm costs about as much as the
 * signature. It holds its own reference to the key, so a rotation cannot
 * free the key under it; the serial says when it is stale.
 */
/* Per signing thread: the ES256 context and the last protected header, each for one key serial. */
struct sign_cache {
	uint64_t serial;
	EVP_PKEY_CTX *ctx;
	uint64_t hdr_serial;
	char hdr_typ[64];
	char *hdr; /* base64url of {"alg","kid","typ"} */
};
static pthread_key_t sign_cache_key;
static pthread_once_t sign_cache_once = PTHREAD_ONCE_INIT;

static void
sign_cache_free(void *p)
{
	struct sign_cache *c = p;
	if (c != NULL) {
		EVP_PKEY_CTX_free(c->ctx);
		free(c->hdr);
	}
	free(c);
}

static void
sign_cache_init(void)
{
	(void)pthread_key_create(&sign_cache_key, sign_cache_free);
}

static struct sign_cache *
sign_cache(void)
{
	(void)pthread_once(&sign_cache_once, sign_cache_init);
	struct sign_cache *c = pthread_getspecific(sign_cache_key);
	if (c == NULL) {
		if ((c = calloc(1, sizeof *c)) == NULL)
			return NULL;
		if (pthread_setspecific(sign_cache_key, c) != 0) {
			free(c);
			return NULL;
		}
	}
	return c;
}

static EVP_PKEY_CTX *
es256_ctx(const struct token_key *k)
{
	struct sign_cache *c = sign_cache();
	if (c == NULL)
		return NULL;
	if (c->ctx != NULL && c->serial == k->serial)
		return c->ctx;
	EVP_PKEY_CTX_free(c->ctx);
	c->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	c->serial = 0;
	if (c->ctx == NULL || EVP_PKEY_sign_init(c->ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(c->ctx, EVP_sha256()) != 1) {
		EVP_PKEY_CTX_free(c->ctx);
		c->ctx = NULL;
		return NULL;
	}
	c->serial = k->serial;
	return c->ctx;
}

/* Raw signature (ES256: r||s, 64 bytes; EdDSA: 64 bytes) over msg. */
static int
raw_sign(const struct token_key *k, const void *msg, size_t len, uint8_t sig[64])
{
	uint8_t der[80], md[32];
	size_t dl = sizeof der;
	ECDSA_SIG *es = NULL;
	int r = AUTHD_ERR_CRYPTO;

	if (k->eddsa) {
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		size_t sl = 64;
		if (mctx == NULL)
			return AUTHD_ERR_NOMEM;
		if (EVP_DigestSignInit(mctx, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestSign(mctx, sig, &sl, msg, len) == 1 && sl == 64)
			r = 0;
		EVP_MD_CTX_free(mctx);
		return r;
	}
	EVP_PKEY_CTX *ctx = es256_ctx(k);
	const uint8_t *p = der;
	if (ctx == NULL || util_sha256(msg, len, md) < 0 || EVP_PKEY_sign(ctx, der, &dl, md, sizeof md) != 1)
		goto out;
	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)dl)) == NULL)
		goto out;
	if (BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 || BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
		goto out;
	r = 0;
out:
	OPENSSL_cleanse(md, sizeof md);
	ECDSA_SIG_free(es);
	return r;
}

static char *
b64url_json(const json_t *obj)
{
	/* claims fit the stack buffer; jansson's json_dumps would grow its own from 16 bytes */
	char buf[2048], *heap;
	size_t n;
	const char *text = proto_json_text(obj, 0, buf, sizeof buf, &heap, &n);
	char *enc = text ? b64url_encode((const uint8_t *)text, n) : NULL;
	free(heap);
	return enc;
}

/* The protected header for k and typ, base64url; the calling thread's cache keeps it until its next call. */
static const char *
header_b64(const struct token_key *k, const char *typ)
{
	struct sign_cache *c = sign_cache();
	if (c == NULL)
		return NULL;
	if (c->hdr != NULL && c->hdr_serial == k->serial && strcmp(c->hdr_typ, typ) == 0)
		return c->hdr;
	free(c->hdr);
	c->hdr = NULL;
	json_t *h =
	    json_pack("{s:s,s:s,s:s}", "alg", k->eddsa ? "EdDSA" : "ES256", "kid", k->kid, "typ", typ);
	if (h != NULL && (c->hdr = b64url_json(h)) != NULL) {
		c->hdr_serial = k->serial;
		if (snprintf(c->hdr_typ, sizeof c->hdr_typ, "%s", typ) >= (int)sizeof c->hdr_typ)
			c->hdr_typ[0] = '\0'; /* too long to remember: never matches */
	}
	json_decref(h);
	return c->hdr;
}

static int
sign_with(struct token_keyring *kr, const char *typ, const char *payload_b64, int detached, char **jws)
{
	char *input = NULL, *sig_b64 = NULL;
	const char *hdr;
	uint8_t sig[64];
	int r = AUTHD_ERR_NOMEM;

	*jws = NULL;
	pthread_rwlock_rdlock(&kr->lock);
	const struct token_key *k = kr->current;
	if ((hdr = header_b64(k, typ)) == NULL)
		goto out;
	size_t hl = strlen(hdr), pl = strlen(payload_b64);
	if ((input = malloc(hl + 1 + pl + 1 + 88)) == NULL)
		goto out;
	memcpy(input, hdr, hl);
	input[hl] = '.';
	memcpy(input + hl + 1, payload_b64, pl + 1);
	if ((r = raw_sign(k, input, hl + 1 + pl, sig)) < 0)
		goto out;
	if ((sig_b64 = b64url_encode(sig, 64)) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if (detached)
		input[hl + 1] = '\0';
	strcat(input, ".");
	strcat(input, sig_b64);
	*jws = input;
	input = NULL;
	r = 0;
out:
	pthread_rwlock_unlock(&kr->lock);
	free(input);
	free(sig_b64);
	return r;
}

int
token_sign(struct token_keyring *kr, const char *typ, const json_t *claims, char **jws)
{
	char *payload = b64url_json(claims);
	if (payload == NULL)
		return AUTHD_ERR_NOMEM;
	int r = sign_with(kr, typ, payload, 0, jws);
	free(payload);
	return r;
}

int
token_sign_detached(struct token_keyring *kr, const char *typ, const void *data, size_t len, char **jws)
{
	char *payload = b64url_encode(data, len);
	if (payload == NULL)
		return AUTHD_ERR_NOMEM;
	int r = sign_with(kr, typ, payload, 1, jws);
	free(payload);
	return r;
}

json_t *
token_jwks(struct token_keyring *kr)
{
	json_t *keys = json_array();
	pthread_rwlock_rdlock(&kr->lock);
	if (keys != NULL) {
		json_array_append(keys, kr->current->jwk);
		if (kr->previous != NULL && strcmp(kr->previous->kid, kr->current->kid) != 0)
			json_array_append(keys, kr->previous->jwk);
	}
	pthread_rwlock_unlock(&kr->lock);
	return keys ? json_pack("{s:o}", "keys", keys) : NULL;
}

void
token_current_kid(struct token_keyring *kr, char *out, size_t outlen)
{
	pthread_rwlock_rdlock(&kr->lock);
	snprintf(out, outlen, "%s", kr->current->kid);
	pthread_rwlock_unlock(&kr->lock);
}

/* ---------------- verification ---------------- */

static int
jwk_field(const json_t *jwk, const char *name, uint8_t out[32])
{
	const char *s = json_string_value(json_object_get(jwk, name));
	uint8_t *dec = NULL;
	size_t n = 0;
	if (s == NULL || b64url_decode(s, strlen(s), 32, &dec, &n) < 0 || n != 32) {
		free(dec);
		return AUTHD_ERR_BAD_REQUEST;
	}
	memcpy(out, dec, 32);
	free(dec);
	return 0;
}

static EVP_PKEY *
jwk_to_pkey(const json_t *jwk, int *eddsa)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	uint8_t x[32], y[32], pub[65];
	if (kty == NULL || crv == NULL || jwk_field(jwk, "x", x) < 0)
		return NULL;
	if (!strcmp(kty, "OKP") && !strcmp(crv, "Ed25519")) {
		*eddsa = 1;
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
	}
	if (strcmp(kty, "EC") != 0 || strcmp(crv, "P-256") != 0 || jwk_field(jwk, "y", y) < 0)
		return NULL;
	*eddsa = 0;
	pub[0] = 4;
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	if (b == NULL || OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(b)) == NULL || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static int
raw_verify(EVP_PKEY *pkey, int eddsa, const void *msg, size_t len, const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = NULL;
	uint8_t *der = NULL;
	int ok = 0;
	if (md == NULL || siglen != 64)
		goto out;
	if (EVP_DigestVerifyInit(md, NULL, eddsa ? NULL : EVP_sha256(), NULL, pkey) != 1)
		goto out;
	if (eddsa) {
		ok = EVP_DigestVerify(md, sig, 64, msg, len) == 1;
	} else {
		BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
		if ((es = ECDSA_SIG_new()) == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			goto out;
		}
		int dl = i2d_ECDSA_SIG(es, &der);
		ok = dl > 0 && EVP_DigestVerify(md, der, (size_t)dl, msg, len) == 1;
	}
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return ok;
}

static json_t *
b64url_to_json(const char *s, size_t len)
{
	uint8_t *dec = NULL;
	size_t n = 0;
	if (b64url_decode(s, len, TOKEN_MAX_LEN, &dec, &n) < 0)
		return NULL;
	json_t *j = json_loadb((const char *)dec, n, JSON_REJECT_DUPLICATES, NULL);
	free(dec);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int
token_verify(const json_t *jwks, const char *jws, const char *expect_typ, const void *payload, size_t plen,
             json_t **claims, char *why, size_t whylen)
{
	json_t *hdr = NULL, *body = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t *sig = NULL;
	char *input = NULL;
	size_t sl = 0;
	int eddsa = 0, r = AUTHD_ERR_TAMPERED;

	if (claims)
		*claims = NULL;
	size_t len = strnlen(jws, TOKEN_MAX_LEN + 1);
	const char *d1 = memchr(jws, '.', len), *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jws)) : NULL;
	if (len > TOKEN_MAX_LEN || d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jws))) {
		snprintf(why, whylen, "not a compact JWS");
		return AUTHD_ERR_BAD_REQUEST;
	}
	if ((hdr = b64url_to_json(jws, (size_t)(d1 - jws))) == NULL) {
		snprintf(why, whylen, "header is not base64url JSON");
		goto out;
	}
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	const char *kid = json_string_value(json_object_get(hdr, "kid"));
	const char *typ = json_string_value(json_object_get(hdr, "typ"));
	if (alg == NULL || (strcmp(alg, "ES256") != 0 && strcmp(alg, "EdDSA") != 0)) {
		snprintf(why, whylen, "alg not allowed");
		goto out;
	}
	if (json_object_get(hdr, "crit") != NULL) {
		snprintf(why, whylen, "crit header not supported");
		goto out;
	}
	if (expect_typ != NULL && (typ == NULL || strcmp(typ, expect_typ) != 0)) {
		snprintf(why, whylen, "wrong typ");
		goto out;
	}
	const json_t *jwk = NULL;
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(jwks, "keys"), i, k)
	{
		const char *kk = json_string_value(json_object_get(k, "kid"));
		if (kid != NULL && kk != NULL && strcmp(kid, kk) == 0)
			jwk = k;
	}
	if (jwk == NULL) {
		snprintf(why, whylen, "unknown kid");
		goto out;
	}
	/* §5: a kid is its key's thumbprint; a key set that names a key otherwise proves nothing */
	char tp[64];
	if (token_jwk_thumbprint(jwk, tp, sizeof tp) < 0 || strcmp(tp, kid) != 0) {
		snprintf(why, whylen, "kid is not the key's thumbprint");
		goto out;
	}
	if ((pkey = jwk_to_pkey(jwk, &eddsa)) == NULL) {
		snprintf(why, whylen, "unusable key in key set");
		goto out;
	}
	if (eddsa != (strcmp(alg, "EdDSA") == 0)) {
		snprintf(why, whylen, "alg does not match the key type");
		goto out;
	}
	const char *sig_b64 = d2 + 1;
	if (b64url_decode(sig_b64, strlen(sig_b64), 64, &sig, &sl) < 0 || sl != 64) {
		snprintf(why, whylen, "malformed signature");
		goto out;
	}
	size_t hl = (size_t)(d1 - jws);
	if (payload != NULL) {
		if (d2 != d1 + 1) {
			snprintf(why, whylen, "expected a detached payload");
			goto out;
		}
		char *pb = b64url_encode(payload, plen);
		if (pb == NULL || (input = malloc(hl + 2 + strlen(pb))) == NULL) {
			free(pb);
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		memcpy(input, jws, hl + 1);
		strcpy(input + hl + 1, pb);
		free(pb);
	} else {
		if ((input = strndup(jws, (size_t)(d2 - jws))) == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
	}
	if (!raw_verify(pkey, eddsa, input, strlen(input), sig, sl)) {
		snprintf(why, whylen, "bad signature");
		goto out;
	}
	if (payload == NULL) {
		if ((body = b64url_to_json(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL) {
			snprintf(why, whylen, "payload is not a JSON object");
			goto out;
		}
		if (claims) {
			*claims = body;
			body = NULL;
		}
	}
	r = 0;
out:
	json_decref(hdr);
	json_decref(body);
	EVP_PKEY_free(pkey);
	free(sig);
	free(input);
	return r;
}

int
token_check_claims(const json_t *c, const char *iss, const char *aud, int64_t now, int64_t leeway, char *why,
                   size_t whylen)
{
	const char *ci = json_string_value(json_object_get(c, "iss"));
	const char *ca = json_string_value(json_object_get(c, "aud"));
	json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat"), *nbf = json_object_get(c, "nbf");
	if (ci == NULL || strcmp(ci, iss) != 0) {
		snprintf(why, whylen, "wrong issuer");
		return AUTHD_ERR_TAMPERED;
	}
	if (ca == NULL || strcmp(ca, aud) != 0) {
		snprintf(why, whylen, "wrong audience");
		return AUTHD_ERR_TAMPERED;
	}
	if (!json_is_integer(exp) || !json_is_string(json_object_get(c, "jti")) ||
	    !json_is_object(json_object_get(c, "txn"))) {
		snprintf(why, whylen, "missing or mistyped claims");
		return AUTHD_ERR_TAMPERED;
	}
	if ((iat != NULL && (!json_is_integer(iat) || json_integer_value(iat) > now + leeway)) ||
	    (nbf != NULL && (!json_is_integer(nbf) || json_integer_value(nbf) > now + leeway))) {
		snprintf(why, whylen, "not yet valid");
		return AUTHD_ERR_TAMPERED;
	}
	if (json_integer_value(exp) <= now) {
		snprintf(why, whylen, "expired");
		return AUTHD_ERR_EXPIRED;
	}
	return 0;
}
