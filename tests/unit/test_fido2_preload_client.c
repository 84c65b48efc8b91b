/*
 * Helper for test_fido2_softdev: a plain libfido2 program (no softkey
 * code) that finds a key with fido_dev_info_manifest, as pam_authd and
 * authctl do. Run under LD_PRELOAD=libsoftdev_preload.so it talks to the
 * soft key.
 *
 *   client assert RP_ID CDH_B64URL CRED_ID_B64URL
 *       -> {"credential_id","authenticator_data","signature","user_handle"}
 *   client make RP_ID USER_ID_B64URL -> {"credential_id"}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <fido.h>
#include <jansson.h>

#include "util.h"

static int
open_first(fido_dev_t **dev, fido_dev_info_t **list)
{
	size_t n = 0;

	*list = fido_dev_info_new(8);
	if (*list == NULL || fido_dev_info_manifest(*list, 8, &n) != FIDO_OK || n == 0)
		return -1;
	if ((*dev = fido_dev_new_with_info(fido_dev_info_ptr(*list, 0))) == NULL ||
	    fido_dev_open_with_info(*dev) != FIDO_OK)
		return -1;
	return 0;
}

static int
put_b64(json_t *o, const char *key, const unsigned char *p, size_t len)
{
	char *s = b64url_encode(p, len);
	int r = s == NULL ? -1 : json_object_set_new(o, key, json_string(s));

	free(s);
	return r;
}

static int
do_assert(fido_dev_t *dev, const char *rp, const char *cdh_b64, const char *id_b64)
{
	fido_assert_t *a = fido_assert_new();
	uint8_t *cdh = NULL, *id = NULL;
	size_t cdh_len, id_len;
	struct cbor_load_result res;
	cbor_item_t *ad = NULL;
	json_t *o = json_object();
	char *text;
	int r;

	if (b64url_decode(cdh_b64, strlen(cdh_b64), 32, &cdh, &cdh_len) != 0 ||
	    b64url_decode(id_b64, strlen(id_b64), 1023, &id, &id_len) != 0 ||
	    fido_assert_set_rp(a, rp) != FIDO_OK ||
	    fido_assert_set_clientdata_hash(a, cdh, cdh_len) != FIDO_OK ||
	    fido_assert_allow_cred(a, id, id_len) != FIDO_OK ||
	    fido_assert_set_uv(a, FIDO_OPT_TRUE) != FIDO_OK)
		return 2;
	if ((r = fido_dev_get_assert(dev, a, NULL)) != FIDO_OK) {
		fprintf(stderr, "fido_dev_get_assert: %s\n", fido_strerr(r));
		return 3;
	}
	/* fido_assert_authdata_ptr is CBOR-wrapped: hand over the raw bytes. */
	ad = cbor_load(fido_assert_authdata_ptr(a, 0), fido_assert_authdata_len(a, 0), &res);
	if (ad == NULL || !cbor_isa_bytestring(ad) ||
	    put_b64(o, "credential_id", fido_assert_id_ptr(a, 0), fido_assert_id_len(a, 0)) != 0 ||
	    put_b64(o, "authenticator_data", cbor_bytestring_handle(ad), cbor_bytestring_length(ad)) != 0 ||
	    put_b64(o, "signature", fido_assert_sig_ptr(a, 0), fido_assert_sig_len(a, 0)) != 0 ||
	    (fido_assert_user_id_len(a, 0) > 0 &&
	     put_b64(o, "user_handle", fido_assert_user_id_ptr(a, 0), fido_assert_user_id_len(a, 0)) != 0) ||
	    (text = json_dumps(o, JSON_COMPACT)) == NULL)
		return 4;
	puts(text);
	free(text);
	json_decref(o);
	cbor_decref(&ad);
	free(cdh);
	free(id);
	fido_assert_free(&a);
	return 0;
}

static int
do_make(fido_dev_t *dev, const char *rp, const char *uid_b64)
{
	fido_cred_t *c = fido_cred_new();
	uint8_t cdh[32] = {1}, *uid = NULL;
	size_t uid_len;
	json_t *o = json_object();
	char *text;
	int r;

	if (b64url_decode(uid_b64, strlen(uid_b64), 64, &uid, &uid_len) != 0 ||
	    fido_cred_set_type(c, COSE_ES256) != FIDO_OK ||
	    fido_cred_set_clientdata_hash(c, cdh, 32) != FIDO_OK ||
	    fido_cred_set_rp(c, rp, NULL) != FIDO_OK ||
	    fido_cred_set_user(c, uid, uid_len, "user", NULL, NULL) != FIDO_OK ||
	    fido_cred_set_rk(c, FIDO_OPT_TRUE) != FIDO_OK)
		return 2;
	if ((r = fido_dev_make_cred(dev, c, NULL)) != FIDO_OK) {
		fprintf(stderr, "fido_dev_make_cred: %s\n", fido_strerr(r));
		return 3;
	}
	if (fido_cred_verify_self(c) != FIDO_OK ||
	    put_b64(o, "credential_id", fido_cred_id_ptr(c), fido_cred_id_len(c)) != 0 ||
	    (text = json_dumps(o, JSON_COMPACT)) == NULL)
		return 4;
	puts(text);
	free(text);
	json_decref(o);
	free(uid);
	fido_cred_free(&c);
	return 0;
}

int
main(int argc, char **argv)
{
	fido_dev_info_t *list = NULL;
	fido_dev_t *dev = NULL;
	int r = 1;

	fido_init(0);
	if (open_first(&dev, &list) != 0) {
		fprintf(stderr, "no device\n");
		return 1;
	}
	if (argc == 5 && strcmp(argv[1], "assert") == 0)
		r = do_assert(dev, argv[2], argv[3], argv[4]);
	else if (argc == 4 && strcmp(argv[1], "make") == 0)
		r = do_make(dev, argv[2], argv[3]);
	fido_dev_close(dev);
	fido_dev_free(&dev);
	fido_dev_info_free(&list, 8);
	return r;
}
