#include "txn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

#define TS_SKEW (366 * 86400)           /* ts more than a year off the server clock is refused */
#define TS_AHEAD 300                    /* ts and account_opened: clock skew tolerated, seconds */
#define OPENED_MIN INT64_C(-2208988800) /* account_opened: 1900-01-01 */

/*
 * Invisible formatting characters (zero-width, bidi embeddings/overrides/
 * isolates, BOM) that make two different strings look alike or reorder a
 * payee name on screen. util_is_clean_utf8 has already refused C0, DEL, C1.
 */
static int
has_format_chars(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i + 2 < len; i++) {
		if (p[i] == 0xe2 && p[i + 1] == 0x80 &&
		    ((p[i + 2] >= 0x8b && p[i + 2] <= 0x8f) || /* U+200B..200F */
		     (p[i + 2] >= 0xaa && p[i + 2] <= 0xae)))  /* U+202A..202E */
			return 1;
		if (p[i] == 0xe2 && p[i + 1] == 0x81 &&
		    ((p[i + 2] >= 0xa0 && p[i + 2] <= 0xa4) || /* U+2060..2064 */
		     (p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9)))  /* U+2066..2069 */
			return 1;
		if (p[i] == 0xef && p[i + 1] == 0xbb && p[i + 2] == 0xbf) /* U+FEFF */
			return 1;
	}
	return 0;
}

/* Copies a required (or optional) string field, checking type, length, charset. */
static int
get_str(const json_t *obj, const char *path, const char *key, int required, char *dst, size_t cap, char *msg,
        size_t msglen)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v)) {
		if (!required) {
			dst[0] = '\0';
			return 0;
		}
		snprintf(msg, msglen, "missing field '%s'", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (!json_is_string(v)) {
		snprintf(msg, msglen, "field '%s' must be a string", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);
	if (len == 0 && required) {
		snprintf(msg, msglen, "field '%s' must not be empty", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (len >= cap) {
		snprintf(msg, msglen, "field '%s' is longer than %zu bytes", path, cap - 1);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (!util_is_clean_utf8(s, len)) {
		snprintf(msg, msglen, "field '%s' contains control characters or invalid UTF-8", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (has_format_chars(s, len)) {
		snprintf(msg, msglen,
		         "field '%s' contains invisible formatting characters (zero-width or bidi)", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	/* Identifiers key daily totals and device history: "C-42 " must not pass for another customer. */
	if (len > 0 && (s[0] == ' ' || s[len - 1] == ' ') && strcmp(path, "txn.payee.name") != 0) {
		snprintf(msg, msglen, "field '%s' has leading or trailing spaces", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	memcpy(dst, s, len + 1);
	return 0;
}

/* Integer field; below/above: the message for a value out of [min, max] (NULL: generic). */
static int
get_int(const json_t *obj, const char *path, const char *key, int required, int64_t min, int64_t max,
        const char *below, const char *above, int64_t *out, char *msg, size_t msglen)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v)) {
		if (!required) {
			*out = 0;
			return 0;
		}
		snprintf(msg, msglen, "missing field '%s'", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (json_is_real(v)) {
		snprintf(msg, msglen, "field '%s' must be an integer, not a fraction or exponent", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	if (!json_is_integer(v)) {
		snprintf(msg, msglen, "field '%s' must be an integer", path);
		return AUTHD_ERR_BAD_REQUEST;
	}
	json_int_t n = json_integer_value(v);
	if (n < min || n > max) {
		const char *why = n < min ? below : above;
		if (why != NULL)
			snprintf(msg, msglen, "field '%s' %s", path, why);
		else
			snprintf(msg, msglen, "field '%s' is out of range [%lld, %lld]", path, (long long)min,
			         (long long)max);
		return AUTHD_ERR_BAD_REQUEST;
	}
	*out = n;
	return 0;
}

int
txn_parse(const json_t *obj, int64_t now, struct txn *t, char *msg, size_t msglen)
{
	char type[16];
	int64_t n;

	memset(t, 0, sizeof *t);
	if (!json_is_object(obj)) {
		snprintf(msg, msglen, "field 'txn' must be an object");
		return AUTHD_ERR_BAD_REQUEST;
	}
	TRY(get_str(obj, "txn.id", "id", 1, t->id, sizeof t->id, msg, msglen));
	TRY(get_str(obj, "txn.customer", "customer", 1, t->customer, sizeof t->customer, msg, msglen));
	TRY(get_str(obj, "txn.account", "account", 1, t->account, sizeof t->account, msg, msglen));
	TRY(get_str(obj, "txn.account_type", "account_type", 1, type, sizeof type, msg, msglen));
	if (strcmp(type, "personal") == 0)
		t->account_type = ACCOUNT_PERSONAL;
	else if (strcmp(type, "business") == 0)
		t->account_type = ACCOUNT_BUSINESS;
	else {
		snprintf(msg, msglen, "field 'txn.account_type' must be \"personal\" or \"business\"");
		return AUTHD_ERR_BAD_REQUEST;
	}
	TRY(get_int(obj, "txn.account_opened", "account_opened", 0, OPENED_MIN, now + TS_AHEAD,
	            "is before 1900", "is in the future", &t->account_opened, msg, msglen));
	TRY(get_int(obj, "txn.amount", "amount", 1, 1, TXN_MAX_AMOUNT,
	            "must be a positive amount in minor units (at least 1)", "exceeds 2^53 minor units",
	            &t->amount, msg, msglen));
	TRY(get_str(obj, "txn.currency", "currency", 1, t->currency, sizeof t->currency, msg, msglen));
	if (strlen(t->currency) != 3 || t->currency[0] < 'A' || t->currency[0] > 'Z' ||
	    t->currency[1] < 'A' || t->currency[1] > 'Z' || t->currency[2] < 'A' || t->currency[2] > 'Z') {
		snprintf(msg, msglen,
		         "field 'txn.currency' must be an ISO 4217 code (three capital letters)");
		return AUTHD_ERR_BAD_REQUEST;
	}
	json_t *payee = json_object_get(obj, "payee");
	if (!json_is_object(payee)) {
		snprintf(msg, msglen,
		         payee ? "field 'txn.payee' must be an object" : "missing field 'txn.payee'");
		return AUTHD_ERR_BAD_REQUEST;
	}
	TRY(get_str(payee, "txn.payee.account", "account", 1, t->payee_account, sizeof t->payee_account, msg,
	            msglen));
	TRY(get_str(payee, "txn.payee.bank", "bank", 1, t->payee_bank, sizeof t->payee_bank, msg, msglen));
	TRY(get_str(payee, "txn.payee.name", "name", 0, t->payee_name, sizeof t->payee_name, msg, msglen));
	TRY(get_str(obj, "txn.channel", "channel", 0, t->channel, sizeof t->channel, msg, msglen));
	TRY(get_str(obj, "txn.src_ip", "src_ip", 1, t->src_ip, sizeof t->src_ip, msg, msglen));
	{
		struct in_addr a4;
		struct in6_addr a6;
		if (inet_pton(AF_INET, t->src_ip, &a4) != 1 && inet_pton(AF_INET6, t->src_ip, &a6) != 1) {
			snprintf(msg, msglen, "field 'txn.src_ip' is not an IPv4 or IPv6 address");
			return AUTHD_ERR_BAD_REQUEST;
		}
	}
	TRY(get_str(obj, "txn.device_id", "device_id", 0, t->device_id, sizeof t->device_id, msg, msglen));
	json_t *rf = json_object_get(obj, "risk_flag");
	if (rf != NULL && !json_is_null(rf) && !json_is_boolean(rf)) {
		snprintf(msg, msglen, "field 'txn.risk_flag' must be a boolean");
		return AUTHD_ERR_BAD_REQUEST;
	}
	t->risk_flag = json_is_true(rf);
	TRY(get_int(obj, "txn.ts", "ts", 0, now - TS_SKEW, now + TS_AHEAD,
	            "is more than a year before the server clock",
	            "is more than 5 minutes after the server clock", &n, msg, msglen));
	t->ts = n ? n : now;
	return txn_hash(t, t->hash);
}

int
txn_hash(const struct txn *t, uint8_t out[32])
{
	char amount[32];
	const char *parts[] = {"authd-txn-v1", t->id,       t->customer,      t->account,
	                       amount,         t->currency, t->payee_account, t->payee_bank};
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	int r = AUTHD_ERR_CRYPTO;

	snprintf(amount, sizeof amount, "%lld", (long long)t->amount);
	if (md == NULL || EVP_DigestInit_ex(md, util_sha256_md(), NULL) != 1)
		goto out;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (i > 0 && EVP_DigestUpdate(md, "\n", 1) != 1)
			goto out;
		if (EVP_DigestUpdate(md, parts[i], strlen(parts[i])) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(md, out, &len) != 1 || len != 32)
		goto out;
	r = 0;
out:
	EVP_MD_CTX_free(md);
	return r;
}

int64_t
txn_day_vn(int64_t t)
{
	int64_t s = t + 7 * 3600;
	return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}
