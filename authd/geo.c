/*
 * IP geolocation (docs/policy.md, "Geolocation"): an RIR delegated-statistics
 * file loaded into two sorted, non-overlapping range arrays (IPv4: 32-bit,
 * IPv6: 128-bit as two 64-bit halves) searched by bisection, and/or a MaxMind
 * .mmdb through libmaxminddb. The RIR file is asked first; the first source
 * that places the address wins. A loaded struct geo is never written again,
 * so any number of threads may look up in it concurrently.
 */
#include "geo.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <maxminddb.h>

#define RIR_MAX_FIELDS 32

struct v6 {
	uint64_t hi, lo;
};

struct range4 {
	uint32_t start, end;
	uint32_t seq; /* line number: ties between equal starts go to the earlier line */
	char cc[2];
};

struct range6 {
	struct v6 start, end;
	uint32_t seq;
	char cc[2];
};

struct geo {
	struct range4 *v4;
	size_t n4, cap4;
	struct range6 *v6;
	size_t n6, cap6;
	int has_mmdb;
	MMDB_s mmdb;
};

/* ---- 128-bit helpers ---- */

static int
v6_cmp(struct v6 a, struct v6 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

static struct v6
v6_from_bytes(const uint8_t b[16])
{
	struct v6 v = {0, 0};
	for (int i = 0; i < 8; i++) {
		v.hi = v.hi << 8 | b[i];
		v.lo = v.lo << 8 | b[i + 8];
	}
	return v;
}

/* Host mask of a /plen (the bits after the prefix). */
static struct v6
v6_hostmask(unsigned plen)
{
	struct v6 m;
	m.hi = plen >= 64 ? 0 : (plen == 0 ? UINT64_MAX : UINT64_MAX >> plen);
	m.lo = plen >= 128 ? 0 : (plen <= 64 ? UINT64_MAX : UINT64_MAX >> (plen - 64));
	return m;
}

static struct v6
v6_inc(struct v6 a)
{
	a.lo++;
	if (a.lo == 0)
		a.hi++;
	return a;
}

/* ---- address classification ---- */

struct addr {
	int family; /* 4 or 6 */
	uint32_t v4;
	struct v6 v6;
};

/* Parses a text address; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4. */
static int
addr_parse(const char *ip, struct addr *a)
{
	struct in_addr in4;
	struct in6_addr in6;

	if (ip == NULL || ip[0] == '\0' || strlen(ip) >= INET6_ADDRSTRLEN)
		return -1;
	if (inet_pton(AF_INET, ip, &in4) == 1) {
		a->family = 4;
		a->v4 = ntohl(in4.s_addr);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &in6) != 1)
		return -1;
	const uint8_t *b = in6.s6_addr;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(b, mapped, sizeof mapped) == 0) {
		a->family = 4;
		a->v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
		return 0;
	}
	a->family = 6;
	a->v6 = v6_from_bytes(b);
	return 0;
}

/*
 * Non-global IPv4 ranges. The documentation ranges (192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24) are deliberately absent: they are
 * treated as ordinary public addresses that a source may place, so tests
 * and examples (DESIGN.md uses 203.0.113.9) can use them.
 */
static int
v4_is_private(uint32_t x)
{
	static const struct {
		uint32_t net;
		unsigned plen;
	} special[] = {
	    {0x00000000u, 8},  /* 0.0.0.0/8 "this network" */
	    {0x0a000000u, 8},  /* 10.0.0.0/8 RFC 1918 */
	    {0x64400000u, 10}, /* 100.64.0.0/10 CGNAT */
	    {0x7f000000u, 8},  /* 127.0.0.0/8 loopback */
	    {0xa9fe0000u, 16}, /* 169.254.0.0/16 link-local */
	    {0xac100000u, 12}, /* 172.16.0.0/12 RFC 1918 */
	    {0xc0000000u, 24}, /* 192.0.0.0/24 IETF protocol assignments */
	    {0xc0a80000u, 16}, /* 192.168.0.0/16 RFC 1918 */
	    {0xc6120000u, 15}, /* 198.18.0.0/15 benchmarking */
	    {0xe0000000u, 4},  /* 224.0.0.0/4 multicast */
	    {0xf0000000u, 4},  /* 240.0.0.0/4 reserved, incl. broadcast */
	};
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
		uint32_t mask = UINT32_MAX << (32 - special[i].plen);
		if ((x & mask) == special[i].net)
			return 1;
	}
	return 0;
}

/*
 * Only 2000::/3 is global unicast; everything else (::, ::1, fc00::/7,
 * fe80::/10, ff00::/8, 64:ff9b::/96, ...) is private or reserved, and so is
 * 2001::/23 (IETF protocol assignments, Teredo). 2001:db8::/32 and
 * 3fff::/20 (documentation) are treated as public, as for IPv4.
 */
static int
v6_is_private(struct v6 x)
{
	if ((x.hi >> 61) != 1) /* not 2000::/3 */
		return 1;
	if ((x.hi >> 41) == (UINT64_C(0x2001) << 7)) /* 2001::/23 */
		return 1;
	return 0;
}

/* ---- RIR delegated-statistics parser ---- */

struct rir_ctx {
	struct geo *g;
	const char *file;
	unsigned long line;
	char *err;
	size_t errlen;
};

static int rir_fail(struct rir_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "file:line: why" into the caller's err buffer. */
static int
rir_fail(struct rir_ctx *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s:%lu: %s", c->file, c->line, why);
	return AUTHD_ERR_CONFIG;
}

static int
all_digits(const char *s, size_t max_len)
{
	size_t n = strlen(s);
	if (n == 0 || n > max_len)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int
is_version_line(char **f, size_t nf)
{
	/* "2|apnic|20231122|87411|19830613|20231121|+1000": version, registry, serial, ... */
	const char *v = f[0];
	if (!isdigit((unsigned char)v[0]) || nf < 6)
		return 0;
	for (; *v; v++)
		if (!isdigit((unsigned char)*v) && *v != '.')
			return 0;
	return 1;
}

static int
push4(struct rir_ctx *c, uint32_t start, uint32_t end, const char *cc)
{
	struct geo *g = c->g;
	if (g->n4 + g->n6 >= GEO_RIR_MAX_RANGES)
		return rir_fail(c, "more than %u ranges", GEO_RIR_MAX_RANGES);
	if (g->n4 == g->cap4) {
		size_t cap = g->cap4 ? g->cap4 * 2 : 1024;
		struct range4 *p = realloc(g->v4, cap * sizeof *p);
		if (p == NULL)
			return AUTHD_ERR_NOMEM;
		g->v4 = p;
		g->cap4 = cap;
	}
	struct range4 *r = &g->v4[g->n4++];
	r->start = start;
	r->end = end;
	r->seq = (uint32_t)c->line;
	r->cc[0] = (char)toupper((unsigned char)cc[0]);
	r->cc[1] = (char)toupper((unsigned char)cc[1]);
	return 0;
}

static int
push6(struct rir_ctx *c, struct v6 start, struct v6 end, const char *cc)
{
	struct geo *g = c->g;
	if (g->n4 + g->n6 >= GEO_RIR_MAX_RANGES)
		return rir_fail(c, "more than %u ranges", GEO_RIR_MAX_RANGES);
	if (g->n6 == g->cap6) {
		size_t cap = g->cap6 ? g->cap6 * 2 : 1024;
		struct range6 *p = realloc(g->v6, cap * sizeof *p);
		if (p == NULL)
			return AUTHD_ERR_NOMEM;
		g->v6 = p;
		g->cap6 = cap;
	}
	struct range6 *r = &g->v6[g->n6++];
	r->start = start;
	r->end = end;
	r->seq = (uint32_t)c->line;
	r->cc[0] = (char)toupper((unsigned char)cc[0]);
	r->cc[1] = (char)toupper((unsigned char)cc[1]);
	return 0;
}

/* One record: registry|cc|type|start|value|date|status[|opaque-id[|extensions...]] */
static int
rir_record(struct rir_ctx *c, char **f, size_t nf)
{
	const char *registry = f[0], *cc = f[1], *type = f[2], *start = f[3], *value = f[4], *date = f[5],
	           *status = f[6];

	if (registry[0] == '\0')
		return rir_fail(c, "empty registry name");
	for (const char *p = registry; *p; p++)
		if (!isalnum((unsigned char)*p))
			return rir_fail(c, "bad registry name '%s'", registry);
	if (strcmp(type, "asn") == 0)
		return 0;
	if (strcmp(type, "ipv4") != 0 && strcmp(type, "ipv6") != 0)
		return rir_fail(c, "unknown type '%s' (expected asn, ipv4 or ipv6)", type);
	if (date[0] != '\0' && !all_digits(date, 8))
		return rir_fail(c, "bad date '%s' (expected YYYYMMDD)", date);
	if (strcmp(status, "available") == 0 || strcmp(status, "reserved") == 0)
		return 0; /* not delegated to anyone: leaves the range unlocated */
	if (strcmp(status, "allocated") != 0 && strcmp(status, "assigned") != 0)
		return rir_fail(c, "unknown status '%s'", status);
	if (strlen(cc) != 2 || !isalpha((unsigned char)cc[0]) || !isalpha((unsigned char)cc[1]))
		return rir_fail(c, "bad country code '%s'", cc);
	if (!all_digits(value, 10))
		return rir_fail(c, "bad value '%s' (expected a decimal count or prefix length)", value);
	unsigned long long n = strtoull(value, NULL, 10);

	if (type[3] == '4') {
		struct in_addr in4;
		if (inet_pton(AF_INET, start, &in4) != 1)
			return rir_fail(c, "bad IPv4 start address '%s'", start);
		uint64_t s = ntohl(in4.s_addr);
		if (n == 0 || s + n - 1 > UINT32_MAX)
			return rir_fail(c, "IPv4 count '%s' is zero or runs past 255.255.255.255", value);
		return push4(c, (uint32_t)s, (uint32_t)(s + n - 1), cc);
	}
	struct in6_addr in6;
	if (inet_pton(AF_INET6, start, &in6) != 1)
		return rir_fail(c, "bad IPv6 start address '%s'", start);
	if (n > 128)
		return rir_fail(c, "IPv6 prefix length '%s' is over 128", value);
	struct v6 s = v6_from_bytes(in6.s6_addr), m = v6_hostmask((unsigned)n);
	if ((s.hi & m.hi) != 0 || (s.lo & m.lo) != 0)
		return rir_fail(c, "IPv6 start '%s' has bits set beyond its prefix length", start);
	struct v6 e = {s.hi | m.hi, s.lo | m.lo};
	(void)nf;
	return push6(c, s, e, cc);
}

static int
rir_line(struct rir_ctx *c, char *line)
{
	char *f[RIR_MAX_FIELDS];
	size_t nf = 0;

	size_t len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';
	if (len == 0 || line[0] == '#')
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return rir_fail(c, "control or non-ASCII byte in line");
	for (char *p = line;;) {
		if (nf == RIR_MAX_FIELDS)
			return rir_fail(c, "more than %d '|' fields", RIR_MAX_FIELDS);
		f[nf++] = p;
		char *bar = strchr(p, '|');
		if (bar == NULL)
			break;
		*bar = '\0';
		p = bar + 1;
	}
	if (is_version_line(f, nf))
		return 0;
	if (nf >= 6 && strcmp(f[1], "*") == 0 && strcmp(f[5], "summary") == 0) {
		if (strcmp(f[2], "asn") != 0 && strcmp(f[2], "ipv4") != 0 && strcmp(f[2], "ipv6") != 0)
			return rir_fail(c, "summary line with unknown type '%s'", f[2]);
		if (!all_digits(f[4], 10))
			return rir_fail(c, "summary line with bad count '%s'", f[4]);
		return 0;
	}
	if (nf < 7)
		return rir_fail(c, "%s (%zu fields; expected registry|cc|type|start|value|date|status)",
		                nf == 1 ? "not a record" : "truncated record", nf);
	return rir_record(c, f, nf);
}

static int
cmp4(const void *a, const void *b)
{
	const struct range4 *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
cmp6(const void *a, const void *b)
{
	const struct range6 *x = a, *y = b;
	int r = v6_cmp(x->start, y->start);
	if (r != 0)
		return r;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Sorts and makes the ranges disjoint: where ranges overlap, an address
 * belongs to the range with the lowest start, ties going to the earlier
 * line; the later range keeps only its part past the earlier one's end.
 * Adjacent ranges of the same country are merged.
 */
static void
normalize4(struct geo *g)
{
	size_t n = 0;
	if (g->n4 == 0)
		return;
	qsort(g->v4, g->n4, sizeof *g->v4, cmp4);
	for (size_t i = 0; i < g->n4; i++) {
		struct range4 r = g->v4[i];
		if (n > 0) {
			struct range4 *last = &g->v4[n - 1];
			if (r.end <= last->end)
				continue;
			if (r.start <= last->end)
				r.start = last->end + 1;
			if (r.start == last->end + 1 && memcmp(r.cc, last->cc, 2) == 0) {
				last->end = r.end;
				continue;
			}
		}
		g->v4[n++] = r;
	}
	g->n4 = n;
}

static void
normalize6(struct geo *g)
{
	size_t n = 0;
	if (g->n6 == 0)
		return;
	qsort(g->v6, g->n6, sizeof *g->v6, cmp6);
	for (size_t i = 0; i < g->n6; i++) {
		struct range6 r = g->v6[i];
		if (n > 0) {
			struct range6 *last = &g->v6[n - 1];
			if (v6_cmp(r.end, last->end) <= 0)
				continue;
			struct v6 next = v6_inc(last->end); /* last->end < r.end, so no wrap */
			if (v6_cmp(r.start, last->end) <= 0)
				r.start = next;
			if (v6_cmp(r.start, next) == 0 && memcmp(r.cc, last->cc, 2) == 0) {
				last->end = r.end;
				continue;
			}
		}
		g->v6[n++] = r;
	}
	g->n6 = n;
}

static int
rir_load(struct geo *g, const char *file, char *err, size_t errlen)
{
	struct rir_ctx c = {g, file, 0, err, errlen};
	char buf[GEO_RIR_MAX_LINE + 1];
	unsigned long long total = 0;
	struct stat st;
	int r = 0;
	FILE *fp = fopen(file, "re");

	if (fp == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
		return AUTHD_ERR_IO;
	}
	if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) &&
	    (unsigned long long)st.st_size > GEO_RIR_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %u bytes", file, GEO_RIR_MAX_FILE);
		r = AUTHD_ERR_TOO_LARGE;
		goto out;
	}
	for (;;) {
		size_t len = 0;
		int ch, too_long = 0, nul = 0;
		while ((ch = getc_unlocked(fp)) != EOF && ch != '\n') {
			if (ch == '\0')
				nul = 1;
			if (len < GEO_RIR_MAX_LINE)
				buf[len] = (char)ch;
			else
				too_long = 1;
			len++;
			if (too_long)
				break;
		}
		if (ch == EOF && len == 0)
			break;
		buf[len < GEO_RIR_MAX_LINE ? len : GEO_RIR_MAX_LINE] = '\0';
		c.line++;
		total += len + 1;
		if (total > GEO_RIR_MAX_FILE) {
			snprintf(err, errlen, "%s: larger than %u bytes", file, GEO_RIR_MAX_FILE);
			r = AUTHD_ERR_TOO_LARGE;
			goto out;
		}
		if (c.line > GEO_RIR_MAX_LINES) {
			r = rir_fail(&c, "more than %u lines", GEO_RIR_MAX_LINES);
			goto out;
		}
		if (too_long) {
			r = rir_fail(&c, "line longer than %d bytes", GEO_RIR_MAX_LINE);
			goto out;
		}
		if (nul) {
			r = rir_fail(&c, "NUL byte in line");
			goto out;
		}
		if ((r = rir_line(&c, buf)) < 0)
			goto out;
		if (ch == EOF)
			break;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error: %s", file, strerror(errno));
		r = AUTHD_ERR_IO;
		goto out;
	}
	normalize4(g);
	normalize6(g);
out:
	fclose(fp);
	return r;
}

/* ---- public API ---- */

int
geo_load(const char *rir_file, const char *mmdb_file, struct geo **out, char *err, size_t errlen)
{
	struct geo *g = calloc(1, sizeof *g);
	int r = 0;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (g == NULL)
		return AUTHD_ERR_NOMEM;
	if (rir_file != NULL && (r = rir_load(g, rir_file, err, errlen)) < 0)
		goto fail;
	if (mmdb_file != NULL) {
		int mr = MMDB_open(mmdb_file, MMDB_MODE_MMAP, &g->mmdb);
		if (mr != MMDB_SUCCESS) {
			snprintf(err, errlen, "%s: %s", mmdb_file, MMDB_strerror(mr));
			r = mr == MMDB_FILE_OPEN_ERROR ? AUTHD_ERR_IO : AUTHD_ERR_CONFIG;
			goto fail;
		}
		g->has_mmdb = 1;
	}
	*out = g;
	return 0;
fail:
	if (r == AUTHD_ERR_NOMEM && errlen > 0 && err[0] == '\0')
		snprintf(err, errlen, "%s: out of memory", rir_file ? rir_file : "geo");
	geo_free(&g);
	return r;
}

void
geo_free(struct geo **gp)
{
	if (gp == NULL || *gp == NULL)
		return;
	struct geo *g = *gp;
	if (g->has_mmdb)
		MMDB_close(&g->mmdb);
	free(g->v4);
	free(g->v6);
	free(g);
	*gp = NULL;
}

static const char *
lookup4(const struct geo *g, uint32_t x)
{
	size_t lo = 0, hi = g->n4; /* first range with start > x */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->v4[mid].start <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || g->v4[lo - 1].end < x)
		return NULL;
	return g->v4[lo - 1].cc;
}

static const char *
lookup6(const struct geo *g, struct v6 x)
{
	size_t lo = 0, hi = g->n6;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v6_cmp(g->v6[mid].start, x) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || v6_cmp(g->v6[lo - 1].end, x) < 0)
		return NULL;
	return g->v6[lo - 1].cc;
}

static int
mmdb_country(const struct geo *g, const struct addr *a, char cc[3])
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	const struct sockaddr *sa;
	int mmdb_err = 0;

	if (a->family == 4) {
		memset(&s4, 0, sizeof s4);
		s4.sin_family = AF_INET;
		s4.sin_addr.s_addr = htonl(a->v4);
		sa = (const struct sockaddr *)&s4;
	} else {
		memset(&s6, 0, sizeof s6);
		s6.sin6_family = AF_INET6;
		for (int i = 0; i < 8; i++) {
			s6.sin6_addr.s6_addr[i] = (uint8_t)(a->v6.hi >> (56 - 8 * i));
			s6.sin6_addr.s6_addr[i + 8] = (uint8_t)(a->v6.lo >> (56 - 8 * i));
		}
		sa = (const struct sockaddr *)&s6;
	}
	MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&g->mmdb, sa, &mmdb_err);
	if (mmdb_err != MMDB_SUCCESS || !res.found_entry)
		return 0;
	static const char *const paths[][3] = {{"country", "iso_code", NULL},
	                                       {"registered_country", "iso_code", NULL}};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		MMDB_entry_data_s data;
		MMDB_entry_s entry = res.entry;
		if (MMDB_get_value(&entry, &data, paths[i][0], paths[i][1], NULL) != MMDB_SUCCESS ||
		    !data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2)
			continue;
		if (!isalpha((unsigned char)data.utf8_string[0]) ||
		    !isalpha((unsigned char)data.utf8_string[1]))
			continue;
		cc[0] = (char)toupper((unsigned char)data.utf8_string[0]);
		cc[1] = (char)toupper((unsigned char)data.utf8_string[1]);
		cc[2] = '\0';
		return 1;
	}
	return 0;
}

void
geo_lookup(const struct geo *g, const char *ip, struct geo_result *res)
{
	struct addr a = {0}; /* gcc -O1 cannot see that addr_parse sets it */
	const char *cc = NULL;

	memset(res, 0, sizeof *res);
	if (addr_parse(ip, &a) < 0) {
		res->status = GEO_INVALID;
		return;
	}
	if (a.family == 4 ? v4_is_private(a.v4) : v6_is_private(a.v6)) {
		res->status = GEO_PRIVATE;
		return;
	}
	res->status = GEO_UNLOCATED;
	if (g == NULL)
		return;
	cc = a.family == 4 ? lookup4(g, a.v4) : lookup6(g, a.v6);
	if (cc != NULL) {
		res->status = GEO_LOCATED;
		res->country[0] = cc[0];
		res->country[1] = cc[1];
		res->country[2] = '\0';
		res->source = "rir";
		return;
	}
	if (g->has_mmdb && mmdb_country(g, &a, res->country)) {
		res->status = GEO_LOCATED;
		res->source = "mmdb";
	}
}

const char *
geo_status_name(enum geo_status s)
{
	switch (s) {
	case GEO_LOCATED:
		return "located";
	case GEO_UNLOCATED:
		return "unlocated";
	case GEO_PRIVATE:
		return "private";
	case GEO_INVALID:
		return "invalid";
	}
	return "invalid";
}

json_t *
geo_result_to_json(const struct geo_result *r)
{
	int located = r->status == GEO_LOCATED;
	return json_pack("{s:s, s:o, s:o}", "status", geo_status_name(r->status), "country",
	                 located ? json_stringn(r->country, 2) : json_null(), "source",
	                 located && r->source ? json_string(r->source) : json_null());
}

void
geo_counts(const struct geo *g, size_t *n_ipv4, size_t *n_ipv6, int *has_mmdb)
{
	if (n_ipv4)
		*n_ipv4 = g ? g->n4 : 0;
	if (n_ipv6)
		*n_ipv6 = g ? g->n6 : 0;
	if (has_mmdb)
		*has_mmdb = g ? g->has_mmdb : 0;
}
