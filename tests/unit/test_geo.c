/*
 * geo.c: the RIR delegated-statistics parser (every kind of line, garbage
 * rejected with its line number), lookups at range edges, overlaps,
 * private/reserved/invalid addresses, IPv4-mapped IPv6, and the MaxMind
 * source through a tiny .mmdb the test writes itself (plus an optional
 * operator-supplied one in $AUTHD_TEST_MMDB).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "geo.h"

static char rir_path[64];
static char mmdb_path[64];

static void
write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text));
}

/* clang-format off */
static const char good_rir[] =
	"# comment line\n"
	"2|apnic|20251122|1234|19830613|20251121|+1000\n"
	"apnic|*|asn|*|100|summary\n"
	"apnic|*|ipv4|*|5|summary\n"
	"apnic|*|ipv6|*|3|summary\n"
	"\n"
	"apnic|AU|asn|173|1|20020801|allocated\n"
	"apnic|VN|ipv4|1.0.0.0|768|20110412|allocated\n"          /* 1.0.0.0 - 1.0.2.255: not a CIDR block */
	"apnic|JP|ipv4|1.0.3.0|5|20110412|assigned\n"             /* 1.0.3.0 - 1.0.3.4 */
	"apnic|vn|ipv4|203.0.113.0|256|20110412|allocated\n"      /* documentation range, placed; lower-case cc */
	"apnic||ipv4|1.0.4.0|256||available\n"                    /* not delegated: unlocated */
	"apnic|ZZ|ipv4|1.0.5.0|256|20110412|reserved\n"
	"ripencc|DE|ipv4|5.5.5.5|3|20120101|allocated|abc123|e-stats\r\n" /* extended format, CRLF */
	"apnic|AU|ipv6|2001:dc0::|32|20020801|allocated\n"
	"apnic|VN|ipv6|2405:4800::|32|20090313|allocated\n"
	"apnic|TH|ipv6|2405:4801:1::1|128|20090313|assigned\n"    /* one address */
	"arin|US|ipv4|8.0.0.0|256|19921201|allocated\n"           /* overlaps: lowest start wins */
	"arin|CA|ipv4|8.0.0.128|256|19921201|allocated\n"
	"arin|US|ipv4|9.0.0.0|65536|19921201|allocated\n"         /* nested: the outer range wins */
	"arin|DE|ipv4|9.0.5.0|256|19921201|allocated\n"
	"arin|FR|ipv4|11.0.0.0|256|19921201|allocated\n"          /* same start: earlier line wins */
	"arin|IT|ipv4|11.0.0.0|512|19921201|allocated\n"
	"arin|US|ipv4|255.255.255.254|2|19921201|allocated\n"     /* reserved space anyway: private */
	"arin|US|ipv4|223.255.255.0|256|19921201|allocated";      /* no final newline */

static int
setup(void **state)
{
	(void)state;
	strcpy(rir_path, "/tmp/authd-test-rir-XXXXXX");
	int fd = mkstemp(rir_path);
	if (fd < 0)
		return -1;
	close(fd);
	strcpy(mmdb_path, "/tmp/authd-test-mmdb-XXXXXX");
	fd = mkstemp(mmdb_path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(rir_path);
	unlink(mmdb_path);
	return 0;
}

static struct geo *
load_rir(const char *text)
{
	struct geo *g = NULL;
	char err[256];
	write_text(rir_path, text);
	int r = geo_load(rir_path, NULL, &g, err, sizeof err);
	if (r != 0)
		print_error("geo_load: %s\n", err);
	assert_int_equal(r, 0);
	return g;
}

static void
expect(const struct geo *g, const char *ip, enum geo_status st, const char *cc, const char *source)
{
	struct geo_result res;
	geo_lookup(g, ip, &res);
	if (res.status != st || (cc && strcmp(res.country, cc) != 0) || (!cc && res.country[0] != '\0') ||
	    (source == NULL) != (res.source == NULL) || (source && strcmp(source, res.source) != 0))
		fail_msg("%s: got %s %s %s, want %s %s %s", ip, geo_status_name(res.status), res.country,
		         res.source ? res.source : "-", geo_status_name(st), cc ? cc : "", source ? source : "-");
}

static void
test_rir_lookup(void **state)
{
	(void)state;
	struct geo *g = load_rir(good_rir);
	size_t n4, n6;
	int mm;
	geo_counts(g, &n4, &n6, &mm);
	assert_int_equal(mm, 0);
	assert_int_equal(n6, 3);
	assert_true(n4 >= 8);

	expect(g, "1.0.0.0", GEO_LOCATED, "VN", "rir");
	expect(g, "1.0.1.77", GEO_LOCATED, "VN", "rir");
	expect(g, "1.0.2.255", GEO_LOCATED, "VN", "rir");
	expect(g, "1.0.3.0", GEO_LOCATED, "JP", "rir");
	expect(g, "1.0.3.4", GEO_LOCATED, "JP", "rir");
	expect(g, "1.0.3.5", GEO_UNLOCATED, NULL, NULL);
	expect(g, "0.255.255.255", GEO_PRIVATE, NULL, NULL);
	expect(g, "1.0.4.1", GEO_UNLOCATED, NULL, NULL); /* available */
	expect(g, "1.0.5.1", GEO_UNLOCATED, NULL, NULL); /* reserved */
	expect(g, "203.0.113.9", GEO_LOCATED, "VN", "rir");
	expect(g, "5.5.5.4", GEO_UNLOCATED, NULL, NULL);
	expect(g, "5.5.5.5", GEO_LOCATED, "DE", "rir");
	expect(g, "5.5.5.7", GEO_LOCATED, "DE", "rir");
	expect(g, "5.5.5.8", GEO_UNLOCATED, NULL, NULL);
	expect(g, "223.255.255.255", GEO_LOCATED, "US", "rir");
	expect(g, "255.255.255.255", GEO_PRIVATE, NULL, NULL);
	/* overlaps */
	expect(g, "8.0.0.200", GEO_LOCATED, "US", "rir");
	expect(g, "8.0.1.50", GEO_LOCATED, "CA", "rir");
	expect(g, "8.0.1.128", GEO_UNLOCATED, NULL, NULL);
	expect(g, "9.0.5.1", GEO_LOCATED, "US", "rir");
	expect(g, "11.0.0.1", GEO_LOCATED, "FR", "rir");
	expect(g, "11.0.1.1", GEO_LOCATED, "IT", "rir");
	/* IPv6 */
	expect(g, "2001:dc0::", GEO_LOCATED, "AU", "rir");
	expect(g, "2001:dc0:ffff:ffff:ffff:ffff:ffff:ffff", GEO_LOCATED, "AU", "rir");
	expect(g, "2001:dc1::", GEO_UNLOCATED, NULL, NULL);
	expect(g, "2001:dbf:ffff:ffff:ffff:ffff:ffff:ffff", GEO_UNLOCATED, NULL, NULL);
	expect(g, "2405:4800:abcd::1", GEO_LOCATED, "VN", "rir");
	expect(g, "2405:4801:1::1", GEO_LOCATED, "TH", "rir");
	expect(g, "2405:4801:1::2", GEO_UNLOCATED, NULL, NULL);
	expect(g, "2405:4801:1::", GEO_UNLOCATED, NULL, NULL);
	/* IPv4-mapped IPv6 is looked up as IPv4 */
	expect(g, "::ffff:1.0.1.1", GEO_LOCATED, "VN", "rir");
	expect(g, "::FFFF:203.0.113.200", GEO_LOCATED, "VN", "rir");
	expect(g, "::ffff:0100:0303", GEO_LOCATED, "JP", "rir");
	expect(g, "::ffff:10.0.0.1", GEO_PRIVATE, NULL, NULL);
	expect(g, "::ffff:1.0.3.5", GEO_UNLOCATED, NULL, NULL);
	geo_free(&g);
	assert_null(g);
	geo_free(&g);
	geo_free(NULL);
}

static void
test_special_addresses(void **state)
{
	static const char *const priv[] = {
		"10.1.2.3",    "192.168.1.1",  "127.0.0.1",   "169.254.1.1", "100.64.0.1",    "100.127.255.255",
		"172.16.0.1",  "172.31.255.255", "0.1.2.3",   "224.0.0.1",   "239.255.255.255", "240.0.0.1",
		"192.0.0.8",   "198.18.0.1",   "198.19.255.255", "::1",      "::",            "fe80::1",
		"fc00::1",     "fd12:3456::1", "ff02::1",     "2001::1",     "2001:1ff::1",   "64:ff9b::1.2.3.4",
		"::1.2.3.4",   "100::1",       "::ffff:127.0.0.1",
	};
	static const char *const pub[] = {
		"172.32.0.1", "172.15.255.255", "100.63.255.255", "100.128.0.0", "198.20.0.1", "192.0.2.1",
		"198.51.100.1", "203.0.113.1", "8.8.8.8", "2001:db8::1", "2001:200::1", "2002:c000:0204::1",
		"3fff::1", "2a00:1450::1", "223.255.255.255",
	};
	static const char *const bad[] = {
		"",          "1.2.3",          "1.2.3.256",     "01.2.3.4",   "1.2.3.4 ",    " 1.2.3.4",
		"abc",       "1.2.3.4/24",     "fe80::1%eth0",  "::ffff:1.2.3.4.5", "2001:db8:::1", "[::1]",
		"1.2.3.4:80", "0x01.2.3.4",    "12345::",       "1.2.3.-4",
	};
	struct geo_result r;
	(void)state;
	for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++)
		expect(NULL, priv[i], GEO_PRIVATE, NULL, NULL);
	for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++)
		expect(NULL, pub[i], GEO_UNLOCATED, NULL, NULL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect(NULL, bad[i], GEO_INVALID, NULL, NULL);
	geo_lookup(NULL, NULL, &r);
	assert_int_equal(r.status, GEO_INVALID);
	char longip[200];
	memset(longip, '1', sizeof longip - 1);
	longip[sizeof longip - 1] = '\0';
	geo_lookup(NULL, longip, &r);
	assert_int_equal(r.status, GEO_INVALID);
}

struct bad_file {
	const char *text;
	const char *want; /* substring of the error, with the line number */
};

static void
test_rir_garbage(void **state)
{
	static const struct bad_file bad[] = {
		{"apnic|VN|ipv4|1.0.0.0|256|20110412\n", ":1: truncated record"},
		{"# c\n2|apnic|1|2|3|4|5\napnic|VN|ipv4\n", ":3: truncated record"},
		{"apnic|VN|ipv4|1.0.0.0|256|20110412|allocated\nhello world\n", ":2: not a record"},
		{"apnic|VN|ipv5|1.0.0.0|256|20110412|allocated\n", ":1: unknown type 'ipv5'"},
		{"apnic|VN|ipv4|1.0.0|256|20110412|allocated\n", ":1: bad IPv4 start address '1.0.0'"},
		{"apnic|VN|ipv4|2001:db8::|256|20110412|allocated\n", ":1: bad IPv4 start"},
		{"apnic|VN|ipv6|1.2.3.4|32|20110412|allocated\n", ":1: bad IPv6 start"},
		{"apnic|VN|ipv4|1.0.0.0|0|20110412|allocated\n", ":1: IPv4 count '0'"},
		{"apnic|VN|ipv4|255.255.255.0|512|20110412|allocated\n", ":1: IPv4 count '512'"},
		{"apnic|VN|ipv4|1.0.0.0|99999999999|20110412|allocated\n", ":1: bad value '99999999999'"},
		{"apnic|VN|ipv4|1.0.0.0|-1|20110412|allocated\n", ":1: bad value '-1'"},
		{"apnic|VN|ipv4|1.0.0.0|25x|20110412|allocated\n", ":1: bad value '25x'"},
		{"apnic|VN|ipv6|2001:db8::|129|20110412|allocated\n", ":1: IPv6 prefix length '129'"},
		{"apnic|VN|ipv6|2001:db8::1|32|20110412|allocated\n", ":1: IPv6 start '2001:db8::1' has bits"},
		{"apnic|VN|ipv4|1.0.0.0|256|20110412|stolen\n", ":1: unknown status 'stolen'"},
		{"apnic|V|ipv4|1.0.0.0|256|20110412|allocated\n", ":1: bad country code 'V'"},
		{"apnic|V1|ipv4|1.0.0.0|256|20110412|allocated\n", ":1: bad country code 'V1'"},
		{"apnic||ipv4|1.0.0.0|256|20110412|allocated\n", ":1: bad country code ''"},
		{"apnic|VN|ipv4|1.0.0.0|256|2011-04-12|allocated\n", ":1: bad date"},
		{"ap nic|VN|ipv4|1.0.0.0|256|20110412|allocated\n", ":1: bad registry name"},
		{"|VN|ipv4|1.0.0.0|256|20110412|allocated\n", ":1: empty registry name"},
		{"apnic|*|ipv9|*|5|summary\n", ":1: summary line with unknown type"},
		{"apnic|*|ipv4|*|x|summary\n", ":1: summary line with bad count"},
		{"apnic|VN|ipv4|1.0.0.0|256|20110412|allocated\napnic|VN|ipv4|1.0.1.0|256|2011\t0412|allocated\n",
		 ":2: control or non-ASCII byte"},
		{"a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r|s|t|u|v|w|x|y|z|1|2|3|4|5|6|7|8\n", ":1: more than 32"},
	};
	char err[256];
	struct geo *g = NULL;
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_text(rir_path, bad[i].text);
		err[0] = '\0';
		int r = geo_load(rir_path, NULL, &g, err, sizeof err);
		if (r == 0 || strstr(err, bad[i].want) == NULL || strncmp(err, rir_path, strlen(rir_path)) != 0)
			fail_msg("case %zu: r=%d err='%s', want '%s'", i, r, err, bad[i].want);
		assert_null(g);
	}

	/* An over-long line, on line 2 */
	char *big = malloc(4000);
	assert_non_null(big);
	strcpy(big, "# ok\napnic|VN|ipv4|1.0.0.0|256|20110412|allocated|");
	size_t n = strlen(big);
	memset(big + n, 'x', 2000);
	strcpy(big + n + 2000, "\n");
	write_text(rir_path, big);
	assert_int_not_equal(geo_load(rir_path, NULL, &g, err, sizeof err), 0);
	assert_non_null(strstr(err, ":2: line longer than 1024"));
	/* A line of exactly 1024 bytes is fine (a comment). */
	memset(big, '#', 1024);
	strcpy(big + 1024, "\n");
	write_text(rir_path, big);
	assert_int_equal(geo_load(rir_path, NULL, &g, err, sizeof err), 0);
	geo_free(&g);
	free(big);

	/* A NUL byte hidden in line 3 */
	static const char withnul[] = "# a\n# b\napnic|VN|ipv4|1.0.0.0|256|2011\0" "0412|allocated\n";
	/* clang-format on */
	write_bytes(rir_path, withnul, sizeof withnul - 1);
	assert_int_not_equal(geo_load(rir_path, NULL, &g, err, sizeof err), 0);
	assert_non_null(strstr(err, ":3: NUL byte"));

	/* Missing file */
	assert_int_equal(geo_load("/nonexistent/rir.txt", NULL, &g, err, sizeof err), AUTHD_ERR_IO);
	assert_non_null(strstr(err, "/nonexistent/rir.txt"));

	/* Empty file and comment-only file: loaded, places nothing */
	write_text(rir_path, "");
	assert_int_equal(geo_load(rir_path, NULL, &g, err, sizeof err), 0);
	expect(g, "1.0.0.1", GEO_UNLOCATED, NULL, NULL);
	geo_free(&g);

	/* No sources at all */
	assert_int_equal(geo_load(NULL, NULL, &g, err, sizeof err), 0);
	expect(g, "8.8.8.8", GEO_UNLOCATED, NULL, NULL);
	expect(g, "10.0.0.1", GEO_PRIVATE, NULL, NULL);
	geo_free(&g);
}

/* Adjacent same-country ranges merge; different countries stay apart; whole-space edges. */
static void
test_rir_edges(void **state)
{
	(void)state;
	struct geo *g = load_rir("x|US|ipv4|1.0.0.0|256||allocated\n"
	                         "x|US|ipv4|1.0.1.0|256||allocated\n"
	                         "x|CA|ipv4|1.0.2.0|1||allocated\n"
	                         "x|US|ipv4|1.0.2.1|1||assigned\n"
	                         "x|AQ|ipv6|2000::|3||allocated\n"    /* all of 2000::/3 */
	                         "x|FR|ipv6|2a01::|16||allocated\n"); /* inside it: shadowed */
	size_t n4, n6;
	geo_counts(g, &n4, &n6, NULL);
	assert_int_equal(n4, 3);
	assert_int_equal(n6, 1);
	expect(g, "1.0.1.255", GEO_LOCATED, "US", "rir");
	expect(g, "1.0.2.0", GEO_LOCATED, "CA", "rir");
	expect(g, "1.0.2.1", GEO_LOCATED, "US", "rir");
	expect(g, "1.0.2.2", GEO_UNLOCATED, NULL, NULL);
	expect(g, "2a01::1", GEO_LOCATED, "AQ", "rir");
	expect(g, "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", GEO_LOCATED, "AQ", "rir");
	geo_free(&g);
}

static void
test_json(void **state)
{
	struct geo_result r = {GEO_LOCATED, "VN", "rir"};
	(void)state;
	json_t *j = geo_result_to_json(&r);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "located");
	assert_string_equal(json_string_value(json_object_get(j, "country")), "VN");
	assert_string_equal(json_string_value(json_object_get(j, "source")), "rir");
	json_decref(j);
	struct geo_result p = {GEO_PRIVATE, "", NULL};
	j = geo_result_to_json(&p);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "private");
	assert_true(json_is_null(json_object_get(j, "country")));
	assert_true(json_is_null(json_object_get(j, "source")));
	json_decref(j);
	assert_string_equal(geo_status_name(GEO_UNLOCATED), "unlocated");
	assert_string_equal(geo_status_name(GEO_INVALID), "invalid");
}

/* ---- a minimal MaxMind DB writer (format 2.0, IPv4 tree, 24-bit records) ---- */

#define MM_EMPTY UINT32_MAX
#define MM_DATA 0x80000000u

struct mm {
	uint32_t rec[256][2];
	uint32_t n;
	uint8_t data[512];
	size_t dlen;
};

static uint32_t
mm_node(struct mm *m)
{
	assert_true(m->n < 256);
	m->rec[m->n][0] = m->rec[m->n][1] = MM_EMPTY;
	return m->n++;
}

static void
mm_put(uint8_t *b, size_t *len, const void *p, size_t n)
{
	memcpy(b + *len, p, n);
	*len += n;
}

static void
mm_str(uint8_t *b, size_t *len, const char *s)
{
	uint8_t c = (uint8_t)(0x40 | strlen(s));
	mm_put(b, len, &c, 1);
	mm_put(b, len, s, strlen(s));
}

/* Inserts net/plen (non-overlapping prefixes only) mapping to {"country":{"iso_code":cc}}. */
static void
mm_insert(struct mm *m, uint32_t net, unsigned plen, const char *cc)
{
	uint32_t off = (uint32_t)m->dlen;
	uint8_t c = 0xe1;
	mm_put(m->data, &m->dlen, &c, 1);
	mm_str(m->data, &m->dlen, "country");
	mm_put(m->data, &m->dlen, &c, 1);
	mm_str(m->data, &m->dlen, "iso_code");
	mm_str(m->data, &m->dlen, cc);
	uint32_t node = 0;
	for (unsigned depth = 0; depth < plen; depth++) {
		unsigned bit = (net >> (31 - depth)) & 1;
		if (depth == plen - 1) {
			m->rec[node][bit] = MM_DATA | off;
			break;
		}
		if (m->rec[node][bit] == MM_EMPTY) {
			uint32_t nn = mm_node(m);
			m->rec[node][bit] = nn;
		}
		node = m->rec[node][bit];
	}
}

static void
write_mmdb(const char *path)
{
	static struct mm m;
	static uint8_t file[16384];
	size_t len = 0;
	memset(&m, 0, sizeof m);
	mm_node(&m);
	mm_insert(&m, 0xc6336400u, 24, "VN"); /* 198.51.100.0/24 */
	mm_insert(&m, 0x08080800u, 24, "US"); /* 8.8.8.0/24 */
	mm_insert(&m, 0xcb007100u, 24, "KR"); /* 203.0.113.0/24: the RIR file says VN and wins */
	for (uint32_t i = 0; i < m.n; i++)
		for (int k = 0; k < 2; k++) {
			uint32_t v = m.rec[i][k];
			v = v == MM_EMPTY ? m.n : (v & MM_DATA) ? m.n + 16 + (v & ~MM_DATA) : v;
			uint8_t b[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
			mm_put(file, &len, b, 3);
		}
	static const uint8_t zero[16];
	mm_put(file, &len, zero, 16);
	mm_put(file, &len, m.data, m.dlen);
	mm_put(file, &len, "\xab\xcd\xefMaxMind.com", 14);
	uint8_t c = 0xe9; /* map of 9 */
	mm_put(file, &len, &c, 1);
	mm_str(file, &len, "node_count");
	uint8_t nc[] = {0xc2, (uint8_t)(m.n >> 8), (uint8_t)m.n};
	mm_put(file, &len, nc, sizeof nc);
	mm_str(file, &len, "record_size");
	mm_put(file, &len, "\xa1\x18", 2);
	mm_str(file, &len, "ip_version");
	mm_put(file, &len, "\xa1\x04", 2);
	mm_str(file, &len, "database_type");
	mm_str(file, &len, "authd-test");
	mm_str(file, &len, "languages");
	mm_put(file, &len, "\x01\x04", 2);
	mm_str(file, &len, "en");
	mm_str(file, &len, "binary_format_major_version");
	mm_put(file, &len, "\xa1\x02", 2);
	mm_str(file, &len, "binary_format_minor_version");
	mm_put(file, &len, "\xa0", 1);
	mm_str(file, &len, "build_epoch");
	mm_put(file, &len, "\x01\x02\x01", 3);
	mm_str(file, &len, "description");
	mm_put(file, &len, "\xe1", 1);
	mm_str(file, &len, "en");
	mm_str(file, &len, "authd test");
	write_bytes(path, file, len);
}

static void
test_mmdb(void **state)
{
	struct geo *g = NULL;
	char err[256];
	int mm;
	(void)state;
	write_mmdb(mmdb_path);
	int r = geo_load(NULL, mmdb_path, &g, err, sizeof err);
	if (r != 0)
		fail_msg("geo_load mmdb: %s", err);
	geo_counts(g, NULL, NULL, &mm);
	assert_int_equal(mm, 1);
	expect(g, "198.51.100.7", GEO_LOCATED, "VN", "mmdb");
	expect(g, "::ffff:198.51.100.7", GEO_LOCATED, "VN", "mmdb");
	expect(g, "8.8.8.8", GEO_LOCATED, "US", "mmdb");
	expect(g, "8.8.9.8", GEO_UNLOCATED, NULL, NULL);
	expect(g, "2001:db8::1", GEO_UNLOCATED, NULL, NULL); /* IPv6 in an IPv4-only database */
	expect(g, "10.0.0.1", GEO_PRIVATE, NULL, NULL);
	geo_free(&g);

	/* Both sources: the RIR file is asked first. */
	write_text(rir_path, "x|VN|ipv4|203.0.113.0|256||allocated\nx|TH|ipv4|8.8.8.0|128||allocated\n");
	assert_int_equal(geo_load(rir_path, mmdb_path, &g, err, sizeof err), 0);
	expect(g, "203.0.113.5", GEO_LOCATED, "VN", "rir");
	expect(g, "8.8.8.8", GEO_LOCATED, "TH", "rir");
	expect(g, "8.8.8.200", GEO_LOCATED, "US", "mmdb");
	expect(g, "198.51.100.1", GEO_LOCATED, "VN", "mmdb");
	geo_free(&g);

	/* Not a MaxMind DB */
	write_text(mmdb_path, "this is not a database\n");
	assert_int_not_equal(geo_load(NULL, mmdb_path, &g, err, sizeof err), 0);
	assert_non_null(strstr(err, mmdb_path));
	assert_null(g);
	assert_int_not_equal(geo_load(NULL, "/nonexistent.mmdb", &g, err, sizeof err), 0);
	assert_non_null(strstr(err, "/nonexistent.mmdb"));
}

/* An operator's real database (GeoLite2-Country, DB-IP lite): AUTHD_TEST_MMDB=/path/file.mmdb */
static void
test_mmdb_operator(void **state)
{
	const char *path = getenv("AUTHD_TEST_MMDB");
	struct geo *g = NULL;
	struct geo_result r;
	char err[256];
	(void)state;
	if (path == NULL || access(path, R_OK) != 0)
		skip();
	assert_int_equal(geo_load(NULL, path, &g, err, sizeof err), 0);
	geo_lookup(g, "8.8.8.8", &r);
	assert_int_equal(r.status, GEO_LOCATED);
	assert_string_equal(r.source, "mmdb");
	geo_lookup(g, "2001:4860:4860::8888", &r);
	assert_int_equal(r.status, GEO_LOCATED);
	geo_free(&g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rir_lookup),    cmocka_unit_test(test_special_addresses),
	    cmocka_unit_test(test_rir_garbage),   cmocka_unit_test(test_rir_edges),
	    cmocka_unit_test(test_json),          cmocka_unit_test(test_mmdb),
	    cmocka_unit_test(test_mmdb_operator),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
