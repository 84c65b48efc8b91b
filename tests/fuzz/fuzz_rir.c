/*
 * RIR delegated-statistics parser (geo_load) on a memfd, then lookups of
 * addresses taken from the input so loaded ranges are exercised.
 */
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "geo.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const probes[] = {
	    "1.0.0.1",      "14.160.0.1",      "8.8.8.8", "10.0.0.1", "::ffff:14.160.0.1", "2001:db8::1",
	    "2405:4800::1", "255.255.255.255", "0.0.0.0", "::",       "not-an-ip",         ""};
	struct geo *g = NULL;
	struct geo_result res;
	char path[64], err[512];
	int fd;

	if (size > 256 * 1024)
		return 0;
	if ((fd = fuzz_memfd(data, size, path, sizeof path)) < 0)
		return 0;
	fuzz_arm(data, size);
	err[0] = '\0';
	int r = geo_load(path, NULL, &g, err, sizeof err);
	fuzz_disarm();
	if (r == 0) {
		FUZZ_ASSERT(g != NULL);
		size_t n4, n6;
		int mm;
		geo_counts(g, &n4, &n6, &mm);
		FUZZ_ASSERT(mm == 0);
		for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
			geo_lookup(g, probes[i], &res);
			FUZZ_ASSERT(res.status <= GEO_INVALID);
			if (res.status == GEO_LOCATED)
				FUZZ_ASSERT(strlen(res.country) == 2);
		}
		/* Addresses the input itself names ("|ipv4|A.B.C.D|" fields). */
		const char *p = (const char *)data, *end = p + size;
		for (int k = 0; k < 8 && p < end; k++) {
			const char *bar = memchr(p, '|', (size_t)(end - p));
			if (bar == NULL)
				break;
			const char *e2 = memchr(bar + 1, '|', (size_t)(end - bar - 1));
			size_t l = e2 ? (size_t)(e2 - bar - 1) : 0;
			if (l > 0 && l < 64) {
				char ip[64];
				memcpy(ip, bar + 1, l);
				ip[l] = '\0';
				geo_lookup(g, ip, &res);
			}
			p = bar + 1;
		}
		geo_free(&g);
	} else {
		FUZZ_ASSERT(g == NULL);
		FUZZ_ASSERT(memchr(err, 0, sizeof err) != NULL);
	}
	close(fd);
	return 0;
}
