/* Soft FIDO2 key behind libfido2's io/transport hooks; see softdev.h. */
#include "softdev.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "softkey_int.h"

#define REPORT_LEN 64
#define INIT_DATA (REPORT_LEN - 7)
#define CONT_DATA (REPORT_LEN - 5)
#define MAX_MSG 7609 /* CTAPHID: 57 + 128 * 59 */
#define MAX_CREDS 32
#define MAX_DEVS 16

#define CMD_PING 0x01
#define CMD_INIT 0x06
#define CMD_CBOR 0x10
#define CMD_CANCEL 0x11
#define CMD_ERROR 0x3f
#define ERR_INVALID_CMD 0x01
#define ERR_INVALID_LEN 0x03
#define ERR_INVALID_SEQ 0x04

#define CTAP2_OK 0x00
#define CTAP2_ERR_INVALID_CBOR 0x12
#define CTAP2_ERR_MISSING_PARAMETER 0x14
#define CTAP2_ERR_CREDENTIAL_EXCLUDED 0x19
#define CTAP2_ERR_UNSUPPORTED_ALGORITHM 0x26
#define CTAP2_ERR_UNSUPPORTED_OPTION 0x2b
#define CTAP2_ERR_NO_CREDENTIALS 0x2e
#define CTAP2_ERR_USER_ACTION_TIMEOUT 0x2f
#define CTAP2_ERR_NOT_ALLOWED 0x30
#define CTAP1_ERR_INVALID_COMMAND 0x01
#define CTAP1_ERR_OTHER 0x7f

static const uint8_t softdev_aaguid[16] = {0x73, 0x6f, 0x66, 0x74, 0x64, 0x65, 0x76, 0x2d, 0x61,
                                           0x75, 0x74, 0x68, 0x64, 0x2d, 0x30, 0x31}; /* "softdev-authd-01" */

struct softdev_cred {
	struct softkey *key;
	int owned;
	char *rp_id;
	uint8_t *user_id;
	size_t user_id_len;
	int resident;
};

struct softdev {
	char path[32];
	int uv_capable;
	int present;
	enum softkey_fmt fmt;
	struct softdev_cred creds[MAX_CREDS];
	size_t n_creds;
	unsigned requests;
	uint8_t next_cid;
	/* request being reassembled from reports */
	uint8_t rx_cid[4];
	uint8_t rx_cmd;
	uint8_t rx_msg[MAX_MSG];
	size_t rx_need, rx_have;
	int rx_seq;
	/* response reports waiting for read(), or one message for rx() */
	uint8_t *out;
	size_t out_len, out_off;
	uint8_t resp_cmd;
	uint8_t *resp;
	size_t resp_len;
	/* getNextAssertion state */
	size_t next[MAX_CREDS];
	size_t n_next, next_pos;
	char *next_rp;
	uint8_t next_cdh[32];
	unsigned next_flags;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct softdev *registry[MAX_DEVS];
static unsigned registry_serial;

struct softdev *
softdev_new(void)
{
	struct softdev *d = calloc(1, sizeof *d);
	size_t slot = MAX_DEVS;

	if (d == NULL)
		return NULL;
	d->uv_capable = 1;
	d->present = 1;
	d->fmt = SOFTKEY_FMT_PACKED_SELF;
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < MAX_DEVS && slot == MAX_DEVS; i++)
		if (registry[i] == NULL)
			slot = i;
	if (slot < MAX_DEVS) {
		registry[slot] = d;
		snprintf(d->path, sizeof d->path, "softdev:%u", ++registry_serial);
	}
	pthread_mutex_unlock(&registry_lock);
	if (slot == MAX_DEVS) {
		free(d);
		return NULL;
	}
	return d;
}

void
softdev_free(struct softdev **dp)
{
	struct softdev *d;

	if (dp == NULL || (d = *dp) == NULL)
		return;
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < MAX_DEVS; i++)
		if (registry[i] == d)
			registry[i] = NULL;
	pthread_mutex_unlock(&registry_lock);
	for (size_t i = 0; i < d->n_creds; i++) {
		if (d->creds[i].owned)
			softkey_free(&d->creds[i].key);
		free(d->creds[i].rp_id);
		free(d->creds[i].user_id);
	}
	free(d->out);
	free(d->resp);
	free(d->next_rp);
	free(d);
	*dp = NULL;
}

const char *
softdev_path(const struct softdev *d)
{
	return d->path;
}

void
softdev_set_uv(struct softdev *d, int capable)
{
	d->uv_capable = capable;
}

void
softdev_set_presence(struct softdev *d, int present)
{
	d->present = present;
}

void
softdev_set_fmt(struct softdev *d, enum softkey_fmt fmt)
{
	d->fmt = fmt;
}

size_t
softdev_count(const struct softdev *d)
{
	return d->n_creds;
}

struct softkey *
softdev_key(const struct softdev *d, size_t i)
{
	return i < d->n_creds ? d->creds[i].key : NULL;
}

unsigned
softdev_requests(const struct softdev *d)
{
	return d->requests;
}

static int
add_cred(struct softdev *d, struct softkey *k, int owned, const char *rp_id, const uint8_t *user_id,
         size_t user_id_len, int resident)
{
	struct softdev_cred *c;

	if (d->n_creds == MAX_CREDS)
		return -1;
	c = &d->creds[d->n_creds];
	memset(c, 0, sizeof *c);
	if ((c->rp_id = strdup(rp_id)) == NULL)
		return -1;
	if (user_id_len > 0) {
		if ((c->user_id = malloc(user_id_len)) == NULL) {
			free(c->rp_id);
			return -1;
		}
		memcpy(c->user_id, user_id, user_id_len);
	}
	c->user_id_len = user_id_len;
	c->key = k;
	c->owned = owned;
	c->resident = resident;
	d->n_creds++;
	return 0;
}

int
softdev_add_key(struct softdev *d, struct softkey *k, const char *rp_id, const uint8_t *user_id,
                size_t user_id_len, int resident)
{
	return add_cred(d, k, 0, rp_id, user_id, user_id_len, resident);
}

/* ---- CBOR helpers ---- */

static const cbor_item_t *
map_get_int(const cbor_item_t *map, uint64_t key)
{
	struct cbor_pair *p = cbor_map_handle(map);

	for (size_t i = 0; i < cbor_map_size(map); i++)
		if (cbor_isa_uint(p[i].key) && cbor_get_int(p[i].key) == key)
			return p[i].value;
	return NULL;
}

static const cbor_item_t *
map_get_text(const cbor_item_t *map, const char *key)
{
	struct cbor_pair *p;
	size_t n = strlen(key);

	if (map == NULL || !cbor_isa_map(map))
		return NULL;
	p = cbor_map_handle(map);
	for (size_t i = 0; i < cbor_map_size(map); i++)
		if (cbor_isa_string(p[i].key) && cbor_string_length(p[i].key) == n &&
		    memcmp(cbor_string_handle(p[i].key), key, n) == 0)
			return p[i].value;
	return NULL;
}

static char *
text_dup(const cbor_item_t *it)
{
	char *s;

	if (it == NULL || !cbor_isa_string(it) || !cbor_string_is_definite(it))
		return NULL;
	if ((s = malloc(cbor_string_length(it) + 1)) == NULL)
		return NULL;
	memcpy(s, cbor_string_handle(it), cbor_string_length(it));
	s[cbor_string_length(it)] = '\0';
	return s;
}

/* Option value: -1 absent, 0 false, 1 true. */
static int
option(const cbor_item_t *opts, const char *name)
{
	const cbor_item_t *v = map_get_text(opts, name);

	if (v == NULL || !cbor_isa_float_ctrl(v) || !cbor_float_ctrl_is_ctrl(v))
		return -1;
	return cbor_get_bool(v) ? 1 : 0;
}

static int
put(cbor_item_t *map, cbor_item_t *key, cbor_item_t *value)
{
	if (key == NULL || value == NULL)
		return -1;
	return cbor_map_add(map, (struct cbor_pair){.key = cbor_move(key), .value = cbor_move(value)}) ? 0
	                                                                                               : -1;
}

/* Response = status byte + CBOR of map (map may be NULL). */
static int
reply(struct softdev *d, uint8_t status, cbor_item_t *map)
{
	uint8_t *enc = NULL;
	size_t len = 0, cap = 0;

	if (map != NULL && (len = cbor_serialize_alloc(map, &enc, &cap)) == 0)
		return -1;
	free(d->resp);
	if ((d->resp = malloc(len + 1)) == NULL) {
		free(enc);
		return -1;
	}
	d->resp[0] = status;
	if (len > 0)
		memcpy(d->resp + 1, enc, len);
	d->resp_len = len + 1;
	d->resp_cmd = CMD_CBOR;
	free(enc);
	return 0;
}

/* ---- CTAP2 commands ---- */

static int
ctap_get_info(struct softdev *d)
{
	/* CTAP2 canonical CBOR: map keys sorted (shorter text first), as libfido2 checks. */
	cbor_item_t *m = cbor_new_definite_map(5), *versions = cbor_new_definite_array(1),
	            *opts = cbor_new_definite_map(4), *algs = cbor_new_definite_array(0);
	int r = -1;

	(void)algs;
	if (m == NULL || versions == NULL || opts == NULL ||
	    !cbor_array_push(versions, cbor_move(cbor_build_string("FIDO_2_0"))) ||
	    put(opts, cbor_build_string("rk"), cbor_build_bool(true)) != 0 ||
	    put(opts, cbor_build_string("up"), cbor_build_bool(true)) != 0 ||
	    (d->uv_capable && put(opts, cbor_build_string("uv"), cbor_build_bool(true)) != 0) ||
	    put(opts, cbor_build_string("plat"), cbor_build_bool(false)) != 0 ||
	    put(m, cbor_build_uint8(1), cbor_incref(versions)) != 0 ||
	    put(m, cbor_build_uint8(3), cbor_build_bytestring(softdev_aaguid, 16)) != 0 ||
	    put(m, cbor_build_uint8(4), cbor_incref(opts)) != 0 ||
	    put(m, cbor_build_uint8(5), cbor_build_uint16(1200)) != 0)
		goto out;
	r = reply(d, CTAP2_OK, m);
out:
	if (algs != NULL)
		cbor_decref(&algs);
	if (versions != NULL)
		cbor_decref(&versions);
	if (opts != NULL)
		cbor_decref(&opts);
	if (m != NULL)
		cbor_decref(&m);
	return r;
}

static int
cred_id_eq(const struct softdev_cred *c, const cbor_item_t *desc)
{
	const cbor_item_t *id = map_get_text(desc, "id");
	size_t len;
	const uint8_t *mine = softkey_cred_id(c->key, &len);

	return id != NULL && cbor_isa_bytestring(id) && cbor_bytestring_length(id) == len &&
	       memcmp(cbor_bytestring_handle(id), mine, len) == 0;
}

static int
ctap_make_credential(struct softdev *d, const cbor_item_t *req)
{
	const cbor_item_t *cdh = map_get_int(req, 1), *rp = map_get_int(req, 2), *user = map_get_int(req, 3),
	                  *params = map_get_int(req, 4), *excl = map_get_int(req, 5),
	                  *opts = map_get_int(req, 7);
	const cbor_item_t *uid;
	cbor_item_t *m = NULL, *stmt = NULL;
	struct softkey *k = NULL;
	char *rp_id = NULL;
	uint8_t *ad = NULL;
	size_t ad_len = 0;
	unsigned flags = SOFTKEY_UP;
	int alg = 0, rk, uv, r = -1;
	uint8_t status = CTAP2_ERR_MISSING_PARAMETER;

	if (cdh == NULL || !cbor_isa_bytestring(cdh) || cbor_bytestring_length(cdh) != 32 || rp == NULL ||
	    user == NULL || params == NULL || !cbor_isa_array(params) ||
	    (rp_id = text_dup(map_get_text(rp, "id"))) == NULL || (uid = map_get_text(user, "id")) == NULL ||
	    !cbor_isa_bytestring(uid))
		goto fail;
	for (size_t i = 0; i < cbor_array_size(params) && alg == 0; i++) {
		const cbor_item_t *a = map_get_text(cbor_array_handle(params)[i], "alg");
		int64_t v;
		if (a == NULL || !(cbor_isa_negint(a) || cbor_isa_uint(a)))
			continue;
		v = cbor_isa_negint(a) ? -1 - (int64_t)cbor_get_int(a) : (int64_t)cbor_get_int(a);
		if (v == SOFTKEY_ES256 || v == SOFTKEY_EDDSA || v == SOFTKEY_RS256)
			alg = (int)v;
	}
	status = CTAP2_ERR_UNSUPPORTED_ALGORITHM;
	if (alg == 0)
		goto fail;
	if (excl != NULL && cbor_isa_array(excl)) {
		for (size_t i = 0; i < cbor_array_size(excl); i++)
			for (size_t j = 0; j < d->n_creds; j++)
				if (strcmp(d->creds[j].rp_id, rp_id) == 0 &&
				    cred_id_eq(&d->creds[j], cbor_array_handle(excl)[i])) {
					status = CTAP2_ERR_CREDENTIAL_EXCLUDED;
					goto fail;
				}
	}
	rk = option(opts, "rk");
	uv = option(opts, "uv");
	status = CTAP2_ERR_UNSUPPORTED_OPTION;
	if (uv == 1 && !d->uv_capable)
		goto fail;
	status = CTAP2_ERR_USER_ACTION_TIMEOUT;
	if (!d->present)
		goto fail;
	if (uv == 1)
		flags |= SOFTKEY_UV;
	status = CTAP1_ERR_OTHER;
	if ((k = softkey_new(alg)) == NULL)
		goto fail;
	softkey_set_aaguid(k, softdev_aaguid);
	if (softkey_auth_data(k, rp_id, flags, softkey_counter(k), 1, NULL, &ad, &ad_len) != 0 ||
	    (stmt = softkey_att_stmt(k, d->fmt, ad, ad_len, cbor_bytestring_handle(cdh), NULL)) == NULL ||
	    (m = cbor_new_definite_map(3)) == NULL ||
	    put(m, cbor_build_uint8(1), cbor_build_string(d->fmt == SOFTKEY_FMT_NONE ? "none" : "packed")) !=
	        0 ||
	    put(m, cbor_build_uint8(2), cbor_build_bytestring(ad, ad_len)) != 0 ||
	    put(m, cbor_build_uint8(3), cbor_incref(stmt)) != 0 ||
	    add_cred(d, k, 1, rp_id, cbor_bytestring_handle(uid), cbor_bytestring_length(uid), rk == 1) != 0)
		goto fail;
	k = NULL; /* owned by the device now */
	r = reply(d, CTAP2_OK, m);
	goto out;
fail:
	r = reply(d, status, NULL);
out:
	softkey_free(&k);
	if (stmt != NULL)
		cbor_decref(&stmt);
	if (m != NULL)
		cbor_decref(&m);
	free(ad);
	free(rp_id);
	return r;
}

/* Signs one assertion with creds[idx]; n_total > 1 adds numberOfCredentials. */
static int
assertion_reply(struct softdev *d, size_t idx, const char *rp_id, const uint8_t cdh[32], unsigned flags,
                size_t n_total)
{
	struct softdev_cred *c = &d->creds[idx];
	cbor_item_t *m = NULL, *desc = NULL, *user = NULL;
	uint8_t *ad = NULL, *msg = NULL, *sig = NULL;
	size_t ad_len = 0, sig_len = 0, id_len;
	const uint8_t *id = softkey_cred_id(c->key, &id_len);
	uint32_t counter = softkey_counter(c->key) + 1;
	int r = -1, with_user = c->resident && c->user_id_len > 0;

	if (softkey_auth_data(c->key, rp_id, flags, counter, 0, NULL, &ad, &ad_len) != 0 ||
	    (msg = malloc(ad_len + 32)) == NULL)
		goto out;
	memcpy(msg, ad, ad_len);
	memcpy(msg + ad_len, cdh, 32);
	if (softkey_sign(c->key, msg, ad_len + 32, &sig, &sig_len) != 0)
		goto out;
	softkey_set_counter(c->key, counter);
	if ((m = cbor_new_definite_map(3 + (size_t)with_user + (n_total > 1))) == NULL ||
	    (desc = cbor_new_definite_map(2)) == NULL ||
	    put(desc, cbor_build_string("id"), cbor_build_bytestring(id, id_len)) != 0 ||
	    put(desc, cbor_build_string("type"), cbor_build_string("public-key")) != 0 ||
	    put(m, cbor_build_uint8(1), cbor_incref(desc)) != 0 ||
	    put(m, cbor_build_uint8(2), cbor_build_bytestring(ad, ad_len)) != 0 ||
	    put(m, cbor_build_uint8(3), cbor_build_bytestring(sig, sig_len)) != 0)
		goto out;
	if (with_user &&
	    ((user = cbor_new_definite_map(1)) == NULL ||
	     put(user, cbor_build_string("id"), cbor_build_bytestring(c->user_id, c->user_id_len)) != 0 ||
	     put(m, cbor_build_uint8(4), cbor_incref(user)) != 0))
		goto out;
	if (n_total > 1 && put(m, cbor_build_uint8(5), cbor_build_uint8((uint8_t)n_total)) != 0)
		goto out;
	r = reply(d, CTAP2_OK, m);
out:
	if (user != NULL)
		cbor_decref(&user);
	if (desc != NULL)
		cbor_decref(&desc);
	if (m != NULL)
		cbor_decref(&m);
	free(sig);
	free(msg);
	free(ad);
	return r;
}

static int
ctap_get_assertion(struct softdev *d, const cbor_item_t *req)
{
	const cbor_item_t *rp = map_get_int(req, 1), *cdh = map_get_int(req, 2), *allow = map_get_int(req, 3),
	                  *opts = map_get_int(req, 5);
	char *rp_id = NULL;
	unsigned flags = 0;
	int up, uv, r;
	uint8_t status = CTAP2_ERR_MISSING_PARAMETER;

	d->n_next = d->next_pos = 0;
	if ((rp_id = text_dup(rp)) == NULL || cdh == NULL || !cbor_isa_bytestring(cdh) ||
	    cbor_bytestring_length(cdh) != 32)
		goto fail;
	up = option(opts, "up");
	uv = option(opts, "uv");
	status = CTAP2_ERR_UNSUPPORTED_OPTION;
	if (uv == 1 && !d->uv_capable)
		goto fail;
	for (size_t j = 0; j < d->n_creds; j++) {
		int match = 0;
		if (strcmp(d->creds[j].rp_id, rp_id) != 0)
			continue;
		if (allow != NULL && cbor_isa_array(allow) && cbor_array_size(allow) > 0) {
			for (size_t i = 0; i < cbor_array_size(allow) && !match; i++)
				match = cred_id_eq(&d->creds[j], cbor_array_handle(allow)[i]);
		} else {
			match = d->creds[j].resident;
		}
		if (match)
			d->next[d->n_next++] = j;
	}
	status = CTAP2_ERR_NO_CREDENTIALS;
	if (d->n_next == 0)
		goto fail;
	status = CTAP2_ERR_USER_ACTION_TIMEOUT;
	if (up != 0 && !d->present)
		goto fail;
	if (up != 0)
		flags |= SOFTKEY_UP;
	if (uv == 1)
		flags |= SOFTKEY_UV;
	free(d->next_rp);
	d->next_rp = rp_id;
	rp_id = NULL;
	memcpy(d->next_cdh, cbor_bytestring_handle(cdh), 32);
	d->next_flags = flags;
	d->next_pos = 1;
	return assertion_reply(d, d->next[0], d->next_rp, d->next_cdh, flags, d->n_next);
fail:
	d->n_next = 0;
	r = reply(d, status, NULL);
	free(rp_id);
	return r;
}

static int
ctap_get_next_assertion(struct softdev *d)
{
	if (d->next_pos >= d->n_next || d->next_rp == NULL)
		return reply(d, CTAP2_ERR_NOT_ALLOWED, NULL);
	d->next_pos++;
	return assertion_reply(d, d->next[d->next_pos - 1], d->next_rp, d->next_cdh, d->next_flags, 0);
}

static int
ctap_cbor(struct softdev *d, const uint8_t *msg, size_t len)
{
	cbor_item_t *req = NULL;
	struct cbor_load_result res;
	int r;

	d->requests++;
	if (len == 0)
		return reply(d, CTAP1_ERR_INVALID_COMMAND, NULL);
	if (msg[0] == 0x04)
		return ctap_get_info(d);
	if (msg[0] == 0x08)
		return ctap_get_next_assertion(d);
	if (msg[0] != 0x01 && msg[0] != 0x02)
		return reply(d, CTAP1_ERR_INVALID_COMMAND, NULL);
	req = cbor_load(msg + 1, len - 1, &res);
	if (req == NULL || res.read != len - 1 || !cbor_isa_map(req)) {
		if (req != NULL)
			cbor_decref(&req);
		return reply(d, CTAP2_ERR_INVALID_CBOR, NULL);
	}
	r = msg[0] == 0x01 ? ctap_make_credential(d, req) : ctap_get_assertion(d, req);
	cbor_decref(&req);
	return r;
}

/* One CTAPHID message in, one out (d->resp_cmd, d->resp). */
static int
ctaphid_message(struct softdev *d, const uint8_t cid[4], uint8_t cmd, const uint8_t *msg, size_t len)
{
	free(d->resp);
	d->resp = NULL;
	d->resp_len = 0;
	switch (cmd) {
	case CMD_INIT: {
		static const uint8_t broadcast[4] = {0xff, 0xff, 0xff, 0xff};
		uint8_t *p;
		if (len != 8 || (p = malloc(17)) == NULL)
			break;
		memcpy(p, msg, 8);
		if (memcmp(cid, broadcast, 4) == 0) {
			d->next_cid++;
			p[8] = 0x5d, p[9] = 0x00, p[10] = 0x00, p[11] = (uint8_t)(d->next_cid | 1);
		} else {
			memcpy(p + 8, cid, 4);
		}
		p[12] = 2;    /* CTAPHID protocol version */
		p[13] = 1;    /* major */
		p[14] = 0;    /* minor */
		p[15] = 0;    /* build */
		p[16] = 0x0c; /* CAPABILITY_CBOR | CAPABILITY_NMSG */
		d->resp = p;
		d->resp_len = 17;
		d->resp_cmd = CMD_INIT;
		return 0;
	}
	case CMD_PING:
		if ((d->resp = malloc(len + 1)) == NULL)
			return -1;
		memcpy(d->resp, msg, len);
		d->resp_len = len;
		d->resp_cmd = CMD_PING;
		return 0;
	case CMD_CBOR:
		return ctap_cbor(d, msg, len);
	case CMD_CANCEL:
		return 0; /* no response */
	default:
		break;
	}
	if ((d->resp = malloc(1)) == NULL)
		return -1;
	d->resp[0] = ERR_INVALID_CMD;
	d->resp_len = 1;
	d->resp_cmd = CMD_ERROR;
	return 0;
}

/* Splits the pending response into 64-byte reports for read(). */
static int
ctaphid_frame(struct softdev *d, const uint8_t cid[4])
{
	size_t n_reports = 1, off = 0;

	if (d->resp_len > INIT_DATA)
		n_reports += (d->resp_len - INIT_DATA + CONT_DATA - 1) / CONT_DATA;
	free(d->out);
	d->out_len = d->out_off = 0;
	if ((d->out = calloc(n_reports, REPORT_LEN)) == NULL)
		return -1;
	for (size_t i = 0; i < n_reports; i++) {
		uint8_t *rep = d->out + i * REPORT_LEN;
		size_t room = i == 0 ? INIT_DATA : CONT_DATA, take;
		memcpy(rep, cid, 4);
		if (i == 0) {
			rep[4] = (uint8_t)(0x80 | d->resp_cmd);
			rep[5] = (uint8_t)(d->resp_len >> 8);
			rep[6] = (uint8_t)d->resp_len;
		} else {
			rep[4] = (uint8_t)(i - 1);
		}
		take = d->resp_len - off < room ? d->resp_len - off : room;
		if (take > 0)
			memcpy(rep + (i == 0 ? 7 : 5), d->resp + off, take);
		off += take;
	}
	d->out_len = n_reports * REPORT_LEN;
	return 0;
}

/* ---- libfido2 io: HID reports ---- */

static void *
io_open(const char *path)
{
	struct softdev *d = NULL;

	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < MAX_DEVS && d == NULL; i++)
		if (registry[i] != NULL && path != NULL && strcmp(registry[i]->path, path) == 0)
			d = registry[i];
	pthread_mutex_unlock(&registry_lock);
	if (d != NULL) {
		d->rx_need = d->rx_have = 0;
		free(d->out);
		d->out = NULL;
		d->out_len = d->out_off = 0;
	}
	return d;
}

static void
io_close(void *handle)
{
	(void)handle;
}

static int
io_write(void *handle, const unsigned char *buf, size_t len)
{
	struct softdev *d = handle;
	const uint8_t *rep = buf + 1; /* buf[0] is the HID report id */

	if (d == NULL || len != REPORT_LEN + 1)
		return -1;
	if (rep[4] & 0x80) {
		memcpy(d->rx_cid, rep, 4);
		d->rx_cmd = rep[4] & 0x7f;
		d->rx_need = (size_t)rep[5] << 8 | rep[6];
		d->rx_have = 0;
		d->rx_seq = 0;
		if (d->rx_need > MAX_MSG) {
			d->rx_need = 0;
			return -1;
		}
		d->rx_have = d->rx_need < INIT_DATA ? d->rx_need : INIT_DATA;
		memcpy(d->rx_msg, rep + 7, d->rx_have);
	} else {
		size_t take;
		if (memcmp(d->rx_cid, rep, 4) != 0 || rep[4] != d->rx_seq || d->rx_have >= d->rx_need)
			return -1;
		d->rx_seq++;
		take = d->rx_need - d->rx_have < CONT_DATA ? d->rx_need - d->rx_have : CONT_DATA;
		memcpy(d->rx_msg + d->rx_have, rep + 5, take);
		d->rx_have += take;
	}
	if (d->rx_have == d->rx_need) {
		if (ctaphid_message(d, d->rx_cid, d->rx_cmd, d->rx_msg, d->rx_need) != 0)
			return -1;
		if (d->resp != NULL && ctaphid_frame(d, d->rx_cid) != 0)
			return -1;
	}
	return (int)len;
}

static int
io_read(void *handle, unsigned char *buf, size_t len, int ms)
{
	struct softdev *d = handle;

	(void)ms;
	if (d == NULL || len != REPORT_LEN || d->out_off >= d->out_len)
		return -1; /* nothing pending: a timeout */
	memcpy(buf, d->out + d->out_off, REPORT_LEN);
	d->out_off += REPORT_LEN;
	return REPORT_LEN;
}

static const fido_dev_io_t softdev_io_table = {
    .open = io_open,
    .close = io_close,
    .read = io_read,
    .write = io_write,
};

const fido_dev_io_t *
softdev_io(void)
{
	return &softdev_io_table;
}

/* ---- libfido2 transport: whole CTAPHID messages ---- */

static int
tr_tx(struct fido_dev *dev, uint8_t cmd, const unsigned char *buf, size_t count)
{
	struct softdev *d = fido_dev_io_handle(dev);
	static const uint8_t cid[4] = {0xff, 0xff, 0xff, 0xff};

	if (d == NULL || count > MAX_MSG)
		return -1;
	return ctaphid_message(d, cid, cmd & 0x7f, buf, count) == 0 ? 0 : -1;
}

static int
tr_rx(struct fido_dev *dev, uint8_t cmd, unsigned char *buf, size_t count, int ms)
{
	struct softdev *d = fido_dev_io_handle(dev);
	size_t n;

	(void)ms;
	if (d == NULL || d->resp == NULL || d->resp_cmd != (cmd & 0x7f) || d->resp_len > count)
		return -1;
	n = d->resp_len;
	memcpy(buf, d->resp, n);
	free(d->resp);
	d->resp = NULL;
	d->resp_len = 0;
	return (int)n;
}

static const fido_dev_transport_t softdev_transport_table = {
    .rx = tr_rx,
    .tx = tr_tx,
};

const fido_dev_transport_t *
softdev_transport(void)
{
	return &softdev_transport_table;
}

int
softdev_info_set(struct softdev *d, fido_dev_info_t *list, size_t i)
{
	return fido_dev_info_set(list, i, d->path, "authd", "softdev", &softdev_io_table,
	                         &softdev_transport_table) == FIDO_OK
	           ? 0
	           : -1;
}

/* ---- persistence ---- */

int
softdev_save(const struct softdev *d, const char *path)
{
	json_t *root = json_object(), *creds = json_array();
	char *text = NULL, tmp[4096];
	int fd = -1, r = -1;
	size_t len, off = 0;

	if (root == NULL || creds == NULL || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		goto out;
	for (size_t i = 0; i < d->n_creds; i++) {
		const struct softdev_cred *c = &d->creds[i];
		char *key = softkey_export(c->key), *uid = softkey_b64url(c->user_id, c->user_id_len);
		json_t *jk = key != NULL ? json_loads(key, 0, NULL) : NULL;
		json_t *jc = jk != NULL && uid != NULL
		                 ? json_pack("{s:s, s:s, s:b, s:o}", "rp_id", c->rp_id, "user_id", uid,
		                             "resident", c->resident, "key", jk)
		                 : NULL;
		if (key != NULL)
			OPENSSL_cleanse(key, strlen(key));
		free(key);
		free(uid);
		if (jc == NULL || json_array_append_new(creds, jc) != 0)
			goto out;
	}
	if (json_object_set_new(root, "v", json_integer(1)) != 0 ||
	    json_object_set_new(root, "uv", json_boolean(d->uv_capable)) != 0 ||
	    json_object_set_new(root, "fmt", json_integer(d->fmt)) != 0 ||
	    json_object_set(root, "creds", creds) != 0 || (text = json_dumps(root, JSON_INDENT(1))) == NULL)
		goto out;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		goto out;
	len = strlen(text);
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	r = rename(tmp, path) == 0 ? 0 : -1;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	json_decref(creds);
	json_decref(root);
	return r;
}

struct softdev *
softdev_load(const char *path)
{
	struct softdev *d = softdev_new();
	json_error_t jerr;
	json_t *root, *creds, *jc;
	size_t i;

	if (d == NULL)
		return NULL;
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		if (access(path, F_OK) != 0)
			return d; /* no state yet: an empty key */
		softdev_free(&d);
		return NULL;
	}
	if (json_is_boolean(json_object_get(root, "uv")))
		d->uv_capable = json_is_true(json_object_get(root, "uv"));
	if (json_is_integer(json_object_get(root, "fmt")))
		d->fmt = (enum softkey_fmt)json_integer_value(json_object_get(root, "fmt"));
	creds = json_object_get(root, "creds");
	json_array_foreach(creds, i, jc)
	{
		const char *rp_id = NULL, *uid = NULL;
		int resident = 0;
		json_t *jk = NULL;
		char *key_text;
		struct softkey *k;
		uint8_t *user_id = NULL;
		size_t user_id_len = 0;

		if (json_unpack(jc, "{s:s, s:s, s:b, s:o}", "rp_id", &rp_id, "user_id", &uid, "resident",
		                &resident, "key", &jk) != 0 ||
		    (key_text = json_dumps(jk, JSON_COMPACT)) == NULL)
			goto fail;
		k = softkey_import(key_text);
		OPENSSL_cleanse(key_text, strlen(key_text));
		free(key_text);
		if (k == NULL || softkey_b64url_decode(uid, &user_id, &user_id_len) != 0 ||
		    add_cred(d, k, 1, rp_id, user_id, user_id_len, resident) != 0) {
			softkey_free(&k);
			free(user_id);
			goto fail;
		}
		free(user_id);
	}
	json_decref(root);
	return d;
fail:
	json_decref(root);
	softdev_free(&d);
	return NULL;
}
