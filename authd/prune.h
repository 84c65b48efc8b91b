/*
 * Retention of the store's short-lived state: a thread (authd-prune) that
 * every [store] prune_interval seconds deletes what nothing can use any
 * more (store_prune_expired: expired challenges, enrollments and token ids,
 * past days' totals), [store] keep_expired seconds after it expired. It
 * works in small rounds, each one write job, so no batch of requests waits
 * long behind it.
 */
#ifndef AUTHD_PRUNE_H
#define AUTHD_PRUNE_H

#include <stdatomic.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

/* Rows of each kind one round deletes at most. */
#define PRUNE_ROUND_ROWS 500

struct pruner;

/* Starts the thread (interval 0: none, *out = NULL). The store must outlive it. */
int pruner_start(struct store *s, unsigned interval, unsigned keep, struct pruner **out) AUTHD_WUR;
/* Stops the thread (between rounds) and frees it; NULL is fine. */
void pruner_stop(struct pruner **p);

/*
 * One pass as of now: rounds until one deletes fewer than PRUNE_ROUND_ROWS
 * rows of every kind, or *stop becomes non-zero (stop may be NULL); *out
 * adds up what went.
 */
int prune_pass(struct store *s, int64_t now, unsigned keep, const atomic_int *stop,
               struct store_pruned *out) AUTHD_WUR;

#endif
