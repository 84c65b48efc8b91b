/*
 * authd-geo-bench: geolocation lookups per second against a full-size
 * synthetic RIR delegated-statistics file (default 150,000 ranges: 80 %
 * IPv4 of random, mostly non-CIDR sizes, 20 % IPv6 prefixes).
 *
 *   authd-geo-bench [--ranges N] [--lookups N] [--seed S] [--keep FILE]
 *
 * Reports the load time of the file and lookups/s of geo_lookup (text
 * parsing included, as assess calls it) for IPv4 hits, IPv4 misses, IPv6,
 * IPv4-mapped IPv6, and a mix. Single thread; geo_lookup is lock-free, so
 * it scales with the number of worker threads.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "config.h"
#include "geo.h"
#include "policy.h"
#include "util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t
rng(void)
{
	/* splitmix64: reproducible, no libc rand() */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static const char *const ccs[] = {"VN", "US", "CN", "JP", "KR", "SG", "TH", "DE", "FR", "GB",
                                  "AU", "IN", "ID", "MY", "PH", "BR", "RU", "NL", "CA", "HK"};
#define N_CC (sizeof ccs / sizeof ccs[0])

static void
usage(void)
{
	fprintf(stderr, "usage: authd-geo-bench [--ranges N] [--lookups N] [--seed S] [--keep FILE]\n");
	exit(2);
}

static int
generate(const char *path, size_t n_ranges, uint32_t **v4_starts, size_t *n_v4)
{
	FILE *f = fopen(path, "w");
	size_t n6 = n_ranges / 5, n4 = n_ranges - n6;
	if (f == NULL)
		return -1;
	*v4_starts = malloc(n4 * sizeof **v4_starts);
	if (*v4_starts == NULL) {
		fclose(f);
		return -1;
	}
	fprintf(f, "# synthetic delegated-statistics file for authd-geo-bench\n");
	fprintf(f, "2|bench|20251123|%zu|19830101|20251122|+0000\n", n_ranges);
	fprintf(f, "bench|*|ipv4|*|%zu|summary\nbench|*|ipv6|*|%zu|summary\n", n4, n6);
	/* IPv4: walk 1.0.0.0 .. 223.255.255.255 with random gaps and random counts. */
	uint64_t span = (uint64_t)0xdfffffffu - 0x01000000u;
	uint64_t step = span / n4;
	uint64_t a = 0x01000000u;
	size_t k = 0;
	for (size_t i = 0; i < n4; i++) {
		uint64_t count = 1 + rng() % (step * 3 / 4);
		if (rng() % 4 == 0)
			count = (uint64_t)1 << (8 + rng() % 4); /* some CIDR-sized ones too */
		if (count > step)
			count = step;
		uint32_t s = (uint32_t)a;
		fprintf(f, "bench|%s|ipv4|%u.%u.%u.%u|%llu|20100101|%s\n", ccs[rng() % N_CC], s >> 24,
		        (s >> 16) & 255, (s >> 8) & 255, s & 255, (unsigned long long)count,
		        rng() % 2 ? "allocated" : "assigned");
		(*v4_starts)[k++] = s;
		a += step;
	}
	*n_v4 = k;
	/* IPv6: /32 and /48 prefixes under 2400::/12 .. 2a00::/12, in order. */
	for (size_t i = 0; i < n6; i++) {
		unsigned hi = 0x2400 + (unsigned)(i / 65536) * 0x100;
		unsigned mid = (unsigned)(i % 65536);
		if (i % 3 == 0)
			fprintf(f, "bench|%s|ipv6|%x:%x::|32|20100101|allocated\n", ccs[rng() % N_CC], hi,
			        mid);
		else
			fprintf(f, "bench|%s|ipv6|%x:%x:%x::|48|20100101|allocated\n", ccs[rng() % N_CC], hi,
			        mid, (unsigned)(rng() % 65536));
	}
	return fclose(f) == 0 ? 0 : -1;
}

struct set {
	const char *name;
	char (*ips)[48];
	size_t n;
};

static double
run(const struct geo *g, const struct set *s, size_t lookups, size_t *located)
{
	struct geo_result r;
	size_t hits = 0;
	uint64_t t0 = util_mono_ns();
	for (size_t i = 0; i < lookups; i++) {
		geo_lookup(g, s->ips[i % s->n], &r);
		hits += r.status == GEO_LOCATED;
	}
	uint64_t t1 = util_mono_ns();
	*located = hits;
	return (double)lookups / ((double)(t1 - t0) / 1e9);
}

/* geo_lookup + policy_decide, as assess does them (store facts aside). */
static double
run_policy(const struct geo *g, const struct set *s, size_t n)
{
	struct config *c = NULL;
	char err[256];
	struct txn t;
	struct policy_facts f = {0, 0, 1, 5000000};
	struct policy_decision d;
	size_t step_ups = 0;
	if (config_load(NULL, &c, err, sizeof err) < 0)
		return 0;
	memset(&t, 0, sizeof t);
	strcpy(t.id, "T-1");
	strcpy(t.customer, "C-42");
	strcpy(t.account, "0123456789");
	t.account_type = ACCOUNT_BUSINESS;
	t.account_opened = util_now() - 100 * 86400;
	strcpy(t.currency, "VND");
	strcpy(t.device_id, "dev-7");
	uint64_t t0 = util_mono_ns();
	for (size_t i = 0; i < n; i++) {
		struct geo_result r;
		geo_lookup(g, s->ips[i % s->n], &r);
		t.amount = (int64_t)(i % 97) * 1000000 + 1;
		policy_decide(c, &t, &r, &f, INT64_C(1763881200), &d);
		step_ups += d.result == POLICY_STEP_UP;
	}
	uint64_t t1 = util_mono_ns();
	config_free(&c);
	return step_ups > n ? 0 : (double)n / ((double)(t1 - t0) / 1e9);
}

/* ES256 signatures/s over a JWS-sized input: the cost a policy decision must stay well under. */
static double
run_es256(size_t n)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	unsigned char msg[300], sig[80];
	double rate = 0;
	memset(msg, 'a', sizeof msg);
	if (k == NULL)
		return 0;
	uint64_t t0 = util_mono_ns();
	for (size_t i = 0; i < n; i++) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		size_t siglen = sizeof sig;
		if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) != 1 ||
		    EVP_DigestSign(md, sig, &siglen, msg, sizeof msg) != 1) {
			EVP_MD_CTX_free(md);
			goto out;
		}
		EVP_MD_CTX_free(md);
	}
	rate = (double)n / ((double)(util_mono_ns() - t0) / 1e9);
out:
	EVP_PKEY_free(k);
	return rate;
}

int
main(int argc, char **argv)
{
	size_t n_ranges = 150000, lookups = 4000000;
	const char *keep = NULL;
	char path[] = "/tmp/authd-geo-bench-XXXXXX";
	char err[512];
	struct geo *g = NULL;
	uint32_t *starts = NULL;
	size_t n_starts = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ranges") == 0 && i + 1 < argc)
			n_ranges = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc)
			lookups = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			rng_state = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
			keep = argv[++i];
		else
			usage();
	}
	if (n_ranges < 10 || lookups == 0)
		usage();
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	if (generate(keep ? keep : path, n_ranges, &starts, &n_starts) < 0) {
		perror("generate");
		return 1;
	}
	uint64_t t0 = util_mono_ns();
	if (geo_load(keep ? keep : path, NULL, &g, err, sizeof err) < 0) {
		fprintf(stderr, "geo_load: %s\n", err);
		return 1;
	}
	double load_ms = (double)(util_mono_ns() - t0) / 1e6;
	unlink(path);
	size_t n4, n6;
	geo_counts(g, &n4, &n6, NULL);

	enum { N_IPS = 65536 };
	struct set sets[5] = {
	    {"ipv4 (in a range)", NULL, N_IPS}, {"ipv4 (random public)", NULL, N_IPS}, {"ipv6", NULL, N_IPS},
	    {"ipv4-mapped ipv6", NULL, N_IPS},  {"mixed 70/30 v4/v6", NULL, N_IPS},
	};
	for (size_t s = 0; s < 5; s++) {
		sets[s].ips = calloc(N_IPS, sizeof *sets[s].ips);
		if (sets[s].ips == NULL)
			return 1;
	}
	for (size_t i = 0; i < N_IPS; i++) {
		uint32_t a = starts[rng() % n_starts];
		uint32_t b = 0x01000000u + (uint32_t)(rng() % 0xdf000000u);
		snprintf(sets[0].ips[i], 48, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
		         a & 255);
		snprintf(sets[1].ips[i], 48, "%u.%u.%u.%u", b >> 24, (b >> 16) & 255, (b >> 8) & 255,
		         b & 255);
		size_t j = rng() % (n_ranges / 5);
		snprintf(sets[2].ips[i], 48, "%x:%x:%x::%x", 0x2400 + (unsigned)(j / 65536) * 0x100,
		         (unsigned)(j % 65536), (unsigned)(rng() % 65536), (unsigned)(rng() % 65536));
		snprintf(sets[3].ips[i], 48, "::ffff:%s", sets[0].ips[i]);
		memcpy(sets[4].ips[i], rng() % 10 < 7 ? sets[1].ips[i] : sets[2].ips[i], 48);
	}

	printf("authd-geo-bench: %zu synthetic RIR records -> %zu IPv4 + %zu IPv6 ranges after merging, "
	       "loaded in %.1f ms\n",
	       n_ranges, n4, n6, load_ms);
	printf("%-24s %14s %10s\n", "set", "lookups/s", "located");
	double total = 0;
	for (size_t s = 0; s < 5; s++) {
		size_t hits;
		double rate = run(g, &sets[s], lookups, &hits);
		total += rate;
		printf("%-24s %14.0f %9.1f%%\n", sets[s].name, rate, 100.0 * (double)hits / (double)lookups);
	}
	printf("%-24s %14.0f\n", "average", total / 5);
	double pol = run_policy(g, &sets[4], lookups);
	double sig = run_es256(20000);
	printf("%-24s %14.0f   (%.2f us each)\n", "geo + policy_decide", pol, pol > 0 ? 1e6 / pol : 0);
	printf("%-24s %14.0f   (%.2f us each; reference)\n", "ES256 sign (OpenSSL)", sig,
	       sig > 0 ? 1e6 / sig : 0);
	for (size_t s = 0; s < 5; s++)
		free(sets[s].ips);
	free(starts);
	geo_free(&g);
	return 0;
}
