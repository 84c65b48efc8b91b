/*
 * The allow-path assess request of the benchmarks (authd-bench,
 * authd-step-bench): personal account, small VND amount, one device,
 * src_ip 203.0.113.9; bench/bench.conf makes it an allow. One copy, so
 * both benchmarks measure the same request.
 */
#ifndef AUTHD_BENCH_ASSESS_REQ_H
#define AUTHD_BENCH_ASSESS_REQ_H

#include <stdio.h>

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

#endif
