/*
 * The transaction object of DESIGN.md section 4: the one parser for it
 * (field types, lengths, ranges) and txn_hash. Thread-safe.
 */
#ifndef AUTHD_TXN_H
#define AUTHD_TXN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define TXN_MAX_ID 128       /* id, customer, account, device_id, payee fields */
#define TXN_MAX_NAME 256     /* payee.name */
#define TXN_MAX_AMOUNT (INT64_C(1) << 53)

enum account_type { ACCOUNT_PERSONAL = 1, ACCOUNT_BUSINESS = 2 };

struct txn {
	char id[TXN_MAX_ID + 1];
	char customer[TXN_MAX_ID + 1];
	char account[TXN_MAX_ID + 1];
	enum account_type account_type;
	int64_t account_opened;   /* Unix seconds; 0 when absent */
	int64_t amount;           /* minor units, 1 .. 2^53 */
	char currency[4];         /* ISO 4217, upper case */
	char payee_account[TXN_MAX_ID + 1];
	char payee_bank[TXN_MAX_ID + 1];
	char payee_name[TXN_MAX_NAME + 1];
	char channel[TXN_MAX_ID + 1];
	char src_ip[64];          /* as given; validated by geo */
	char device_id[TXN_MAX_ID + 1];
	int risk_flag;
	int64_t ts;
	uint8_t hash[32];         /* txn_hash */
};

/*
 * Parses and validates a transaction object; computes its hash. On
 * AUTHD_ERR_BAD_REQUEST writes a message naming the field into msg.
 * now: server time, to reject absurd timestamps.
 */
int txn_parse(const json_t *obj, int64_t now, struct txn *out, char *msg, size_t msglen) AUTHD_WUR;

/* txn_hash of DESIGN.md section 4 over the fields of t. */
int txn_hash(const struct txn *t, uint8_t out[32]) AUTHD_WUR;

/* Hanoi calendar day (UTC+7, no DST) of a Unix time: days since epoch. */
int64_t txn_day_vn(int64_t unix_seconds);

#endif
