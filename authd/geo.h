/*
 * IP geolocation from an RIR delegated-statistics file and/or a MaxMind
 * .mmdb (libmaxminddb). A struct geo is immutable after geo_load and may be
 * shared by every thread; SIGHUP builds a new one and swaps it in.
 */
#ifndef AUTHD_GEO_H
#define AUTHD_GEO_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

struct geo;

enum geo_status {
	GEO_LOCATED = 0,   /* country[] is set */
	GEO_UNLOCATED,     /* valid public address no source could place */
	GEO_PRIVATE,       /* private, loopback, link-local, reserved */
	GEO_INVALID,       /* unparseable */
};

struct geo_result {
	enum geo_status status;
	char country[3];   /* ISO 3166 alpha-2, upper case, when LOCATED */
	const char *source; /* "rir", "mmdb" or NULL; static */
};

/*
 * Loads the sources named (either may be NULL). On a parse error writes
 * "file:line: why" into err. Caller frees with geo_free.
 */
int geo_load(const char *rir_file, const char *mmdb_file, struct geo **out, char *err, size_t errlen) AUTHD_WUR;
void geo_free(struct geo **g);

/* Looks up an IPv4/IPv6 text address (IPv4-mapped IPv6 handled). g may be NULL. */
void geo_lookup(const struct geo *g, const char *ip, struct geo_result *res);

/* "located", "unlocated", "private", "invalid"; static. */
const char *geo_status_name(enum geo_status s);

/* {"status","country" (or null),"source" (or null)}; NULL on allocation failure; caller decrefs. */
json_t *geo_result_to_json(const struct geo_result *r);

/* Ranges loaded from the RIR file per family, and whether an .mmdb is open. g may be NULL. */
void geo_counts(const struct geo *g, size_t *n_ipv4, size_t *n_ipv6, int *has_mmdb);

/* Parser hard limits for the RIR file (geo_load refuses beyond them). */
#define GEO_RIR_MAX_FILE (512u << 20) /* bytes */
#define GEO_RIR_MAX_LINE 1024         /* bytes, newline excluded */
#define GEO_RIR_MAX_LINES 8000000u
#define GEO_RIR_MAX_RANGES 4000000u   /* ipv4 + ipv6 records kept */

#endif
