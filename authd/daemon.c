#include "daemon.h"

#include <stdlib.h>

struct authd_snap *
authd_snap_get(struct authd *d)
{
	pthread_mutex_lock(&d->snap_mu);
	struct authd_snap *s = d->snap;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&d->snap_mu);
	return s;
}

void
authd_snap_put(struct authd_snap **sp)
{
	struct authd_snap *s;
	if (sp == NULL || (s = *sp) == NULL)
		return;
	*sp = NULL;
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	config_free(&s->cfg);
	geo_free(&s->geo);
	free(s);
}

void
authd_snap_set(struct authd *d, struct config *cfg, struct geo *geo)
{
	struct authd_snap *s = calloc(1, sizeof *s);
	if (s == NULL) {
		config_free(&cfg);
		geo_free(&geo);
		return;
	}
	s->cfg = cfg;
	s->geo = geo;
	atomic_init(&s->refs, 1);
	pthread_mutex_lock(&d->snap_mu);
	struct authd_snap *old = d->snap;
	d->snap = s;
	pthread_mutex_unlock(&d->snap_mu);
	authd_snap_put(&old);
}
