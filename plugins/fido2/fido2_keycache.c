/*
 * Cache of libfido2 public-key objects, keyed by the key bytes.
 *
 * es256_pk_from_ptr() and friends build (and validate) an OpenSSL key each
 * time, which costs a sizeable fraction of an ECDSA verification; a
 * customer's credential is used again and again, so the object is built
 * once. Direct-mapped, a fixed number of slots; entries are reference
 * counted so an entry evicted while another thread verifies with it is
 * freed by its last user. Only public keys are held.
 *
 * Threading: any thread; one mutex guards the table, held only for the
 * lookup and the swap, never during a verification.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fido2_int.h"

struct kc_entry {
	struct fido2_pubkey key;
	void *pk; /* es256_pk_t / eddsa_pk_t / rs256_pk_t */
	unsigned refs;
	int orphan; /* evicted while in use */
};

struct fido2_keycache {
	pthread_mutex_t lock;
	size_t n;
	struct kc_entry **slots;
};

static void
entry_free(struct kc_entry *e)
{
	if (e == NULL)
		return;
	fido2_pubkey_free_fido(e->key.alg, &e->pk);
	free(e);
}

static size_t
slot_of(const struct fido2_keycache *c, const struct fido2_pubkey *pk)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)(uint32_t)pk->alg; /* FNV-1a */

	for (size_t i = 0; i < pk->raw_len; i++)
		h = (h ^ pk->raw[i]) * 0x100000001b3ull;
	return (size_t)(h % c->n);
}

static int
same_key(const struct kc_entry *e, const struct fido2_pubkey *pk)
{
	return e != NULL && e->key.alg == pk->alg && e->key.raw_len == pk->raw_len &&
	       memcmp(e->key.raw, pk->raw, pk->raw_len) == 0;
}

int
fido2_keycache_new(struct fido2_keycache **out, size_t slots)
{
	struct fido2_keycache *c;

	*out = NULL;
	if (slots == 0 || (c = calloc(1, sizeof *c)) == NULL)
		return AUTHD_ERR_NOMEM;
	if ((c->slots = calloc(slots, sizeof *c->slots)) == NULL) {
		free(c);
		return AUTHD_ERR_NOMEM;
	}
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->slots);
		free(c);
		return AUTHD_ERR_INTERNAL;
	}
	c->n = slots;
	*out = c;
	return 0;
}

void
fido2_keycache_free(struct fido2_keycache **cp)
{
	struct fido2_keycache *c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		entry_free(c->slots[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->slots);
	free(c);
	*cp = NULL;
}

int
fido2_keycache_get(struct fido2_keycache *c, const struct fido2_pubkey *pk, struct fido2_keyref *ref)
{
	struct kc_entry *e, *old;
	size_t i;

	memset(ref, 0, sizeof *ref);
	if (c == NULL) {
		/* No cache: a private object, freed by put. */
		ref->alg = pk->alg;
		return fido2_pubkey_to_fido(pk, &ref->pk);
	}
	i = slot_of(c, pk);
	pthread_mutex_lock(&c->lock);
	e = c->slots[i];
	if (same_key(e, pk)) {
		e->refs++;
		pthread_mutex_unlock(&c->lock);
		ref->alg = pk->alg;
		ref->pk = e->pk;
		ref->entry = e;
		return 0;
	}
	pthread_mutex_unlock(&c->lock);

	if ((e = calloc(1, sizeof *e)) == NULL)
		return AUTHD_ERR_NOMEM;
	e->key = *pk;
	if (fido2_pubkey_to_fido(pk, &e->pk) != 0) {
		free(e);
		return AUTHD_ERR_CRYPTO;
	}
	e->refs = 1;
	pthread_mutex_lock(&c->lock);
	old = c->slots[i];
	c->slots[i] = e;
	if (old != NULL) {
		if (old->refs == 0) {
			pthread_mutex_unlock(&c->lock);
			entry_free(old);
			pthread_mutex_lock(&c->lock);
		} else {
			old->orphan = 1;
		}
	}
	pthread_mutex_unlock(&c->lock);
	ref->alg = pk->alg;
	ref->pk = e->pk;
	ref->entry = e;
	return 0;
}

void
fido2_keycache_put(struct fido2_keycache *c, struct fido2_keyref *ref)
{
	struct kc_entry *e = ref->entry;
	int drop = 0;

	if (ref->pk == NULL)
		return;
	if (c == NULL || e == NULL) {
		fido2_pubkey_free_fido(ref->alg, &ref->pk);
		return;
	}
	pthread_mutex_lock(&c->lock);
	e->refs--;
	drop = e->orphan && e->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (drop)
		entry_free(e);
	memset(ref, 0, sizeof *ref);
}
