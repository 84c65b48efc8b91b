#include "prune.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "txn.h"
#include "util.h"

/* The first pass soon after a start (a daemon restarted often still prunes), then every interval. */
#define FIRST_PASS_MAX_S 30
/* Pause between two rounds of one pass: the writer's other batches go in between. */
#define ROUND_PAUSE_MS 10

struct pruner {
	struct store *s;
	unsigned interval, keep;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_int stop; /* set under mu (for the wait); read without it between rounds */
};

struct round {
	struct store_prune p;
	struct store_pruned got;
};

static int
round_fn(struct store_tx *tx, void *arg)
{
	struct round *r = arg;
	return store_prune_expired(tx, &r->p, &r->got);
}

int
prune_pass(struct store *s, int64_t now, unsigned keep, const atomic_int *stop, struct store_pruned *out)
{
	struct round r = {.p = {.expired_before = now - (int64_t)keep,
	                        .day_before = txn_day_vn(now - (int64_t)keep),
	                        .limit = PRUNE_ROUND_ROWS}};
	for (;;) {
		if (stop != NULL && atomic_load(stop))
			return 0;
		TRY(store_write(s, round_fn, &r));
		out->challenges += r.got.challenges;
		out->enrollments += r.got.enrollments;
		out->redeemed += r.got.redeemed;
		out->daily_totals += r.got.daily_totals;
		if (r.got.challenges < PRUNE_ROUND_ROWS && r.got.enrollments < PRUNE_ROUND_ROWS &&
		    r.got.redeemed < PRUNE_ROUND_ROWS && r.got.daily_totals < PRUNE_ROUND_ROWS)
			return 0;
		struct timespec pause = {0, ROUND_PAUSE_MS * 1000000L};
		nanosleep(&pause, NULL);
	}
}

/* Waits s seconds or until stopped; 1 when stopped. Called with p->mu held. */
static int
wait_stop(struct pruner *p, unsigned s)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += s;
	while (!atomic_load(&p->stop))
		if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0)
			break;
	return atomic_load(&p->stop);
}

static void *
pruner_main(void *arg)
{
	struct pruner *p = arg;
	unsigned wait = p->interval < FIRST_PASS_MAX_S ? p->interval : FIRST_PASS_MAX_S;
	pthread_mutex_lock(&p->mu);
	while (!wait_stop(p, wait)) {
		pthread_mutex_unlock(&p->mu);
		struct store_pruned n = {0};
		int r = prune_pass(p->s, util_now(), p->keep, &p->stop, &n);
		if (r < 0)
			log_msg(LOG_WARNING, "store: pruning expired rows failed (%s); next try in %u s",
			        authd_strerror(r), p->interval);
		else if (n.challenges + n.enrollments + n.redeemed + n.daily_totals > 0)
			log_msg(LOG_INFO,
			        "store: pruned %lld challenges, %lld enrollments, %lld token ids and %lld daily totals"
			        " expired over %u s ago",
			        (long long)n.challenges, (long long)n.enrollments, (long long)n.redeemed,
			        (long long)n.daily_totals, p->keep);
		wait = p->interval;
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
pruner_start(struct store *s, unsigned interval, unsigned keep, struct pruner **out)
{
	*out = NULL;
	if (interval == 0)
		return 0;
	struct pruner *p = calloc(1, sizeof *p);
	pthread_condattr_t ca;
	if (p == NULL)
		return AUTHD_ERR_NOMEM;
	p->s = s;
	p->interval = interval;
	p->keep = keep;
	atomic_init(&p->stop, 0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&p->thread, NULL, pruner_main, p) != 0) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return AUTHD_ERR_INTERNAL;
	}
	(void)pthread_setname_np(p->thread, "authd-prune");
	*out = p;
	return 0;
}

void
pruner_stop(struct pruner **pp)
{
	struct pruner *p;
	if (pp == NULL || (p = *pp) == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
	*pp = NULL;
}
