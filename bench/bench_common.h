/*
 * What the request-path benchmarks (authd-bench, authd-step-bench) share:
 * the allow-path assess request (personal account, small VND amount, one
 * device, src_ip 203.0.113.9; bench/bench.conf makes it an allow), so both
 * measure the same request, and their flag parsing.
 */
#ifndef AUTHD_BENCH_COMMON_H
#define AUTHD_BENCH_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The frame payload (JSON) for request id req_id (also the txn id), customer cust, into buf; snprintf's
 * result. */
static inline int
bench_assess_json(char *buf, size_t cap, const char *req_id, unsigned cust, unsigned amount)
{
	return snprintf(buf, cap,
	                "{\"v\":1,\"id\":\"%s\",\"op\":\"assess\",\"txn\":{"
	                "\"id\":\"%s\",\"customer\":\"C-bench-%u\",\"account\":\"90%08u\","
	                "\"account_type\":\"personal\",\"account_opened\":1600000000,"
	                "\"amount\":%u,\"currency\":\"VND\","
	                "\"payee\":{\"account\":\"9876543210\",\"bank\":\"VCB\",\"name\":\"Bench Payee\"},"
	                "\"channel\":\"internet_banking\",\"src_ip\":\"203.0.113.9\","
	                "\"device_id\":\"dev-bench\",\"risk_flag\":false}}",
	                req_id, req_id, cust, cust, amount);
}

/*
 * The customer of request seq (salt: e.g. the connection), spread over
 * customers with a multiplicative hash, so consecutive requests touch
 * unrelated rows (pages) of the per-customer tables, as a bank's do.
 */
static inline unsigned
bench_customer(unsigned long long seq, unsigned salt, unsigned customers)
{
	return (unsigned)((seq * 2654435761u + salt) % customers);
}

/* A whole decimal number in [min, max] into *out; -1 on anything else. */
static inline int
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

#endif
