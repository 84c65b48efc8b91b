#include "tmpl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "util.h"

#define TMPL_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define TMPL_MAX (1u << 20)

struct tmpl_key {
	uint8_t k[32];
};

int
tmpl_key_from_bytes(const uint8_t key[32], struct tmpl_key **out)
{
	struct tmpl_key *k = malloc(sizeof *k);
	if (k == NULL)
		return AUTHD_ERR_NOMEM;
	memcpy(k->k, key, 32);
	*out = k;
	return 0;
}

int
tmpl_key_load(const char *state_dir, struct tmpl_key **out, char *err, size_t errlen)
{
	char path[4096];
	uint8_t *data = NULL, fresh[32];
	size_t len = 0;
	struct stat st;
	int r;

	*out = NULL;
	snprintf(path, sizeof path, "%s/template.key", state_dir);
	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: template key is accessible by group or others; chmod 600 it", path);
		return AUTHD_ERR_CONFIG;
	}
	r = util_read_file(path, 64, &data, &len);
	if (r == AUTHD_ERR_NOT_FOUND) {
		TRY(util_random(fresh, sizeof fresh));
		if ((r = util_write_file_atomic(path, fresh, sizeof fresh, 0600)) < 0) {
			snprintf(err, errlen, "cannot create %s", path);
			util_wipe(fresh, sizeof fresh);
			return r;
		}
		r = tmpl_key_from_bytes(fresh, out);
		util_wipe(fresh, sizeof fresh);
		return r;
	}
	if (r < 0 || len != 32) {
		snprintf(err, errlen, "%s: cannot read a 32-byte key", path);
		util_free_secret(&data, len);
		return r < 0 ? r : AUTHD_ERR_CONFIG;
	}
	r = tmpl_key_from_bytes(data, out);
	util_free_secret(&data, len);
	return r;
}

void
tmpl_key_free(struct tmpl_key **k)
{
	if (k == NULL || *k == NULL)
		return;
	util_wipe((*k)->k, sizeof (*k)->k);
	free(*k);
	*k = NULL;
}

/* AAD = "authd-tmpl-v1" 0 subject 0 method 0 id */
static int
aad_update(EVP_CIPHER_CTX *c, const char *subject, const char *method, const uint8_t *id, size_t id_len)
{
	int outl;
	static const char tag[] = "authd-tmpl-v1";
	return EVP_CipherUpdate(c, NULL, &outl, (const uint8_t *)tag, sizeof tag) == 1 &&
	       EVP_CipherUpdate(c, NULL, &outl, (const uint8_t *)subject, (int)strlen(subject) + 1) == 1 &&
	       EVP_CipherUpdate(c, NULL, &outl, (const uint8_t *)method, (int)strlen(method) + 1) == 1 &&
	       (id_len == 0 || EVP_CipherUpdate(c, NULL, &outl, id, (int)id_len) == 1);
}

int
tmpl_seal(const struct tmpl_key *k, const char *subject, const char *method, const uint8_t *id, size_t id_len,
          const uint8_t *plain, size_t len, uint8_t **out, size_t *out_len)
{
	EVP_CIPHER_CTX *c = NULL;
	uint8_t *buf = NULL;
	int outl = 0, r = AUTHD_ERR_CRYPTO;

	*out = NULL;
	*out_len = 0;
	if (len > TMPL_MAX)
		return AUTHD_ERR_TOO_LARGE;
	if ((buf = malloc(1 + NONCE_LEN + len + TAG_LEN)) == NULL)
		return AUTHD_ERR_NOMEM;
	buf[0] = TMPL_VERSION;
	if ((r = util_random(buf + 1, NONCE_LEN)) < 0)
		goto out;
	r = AUTHD_ERR_CRYPTO;
	if ((c = EVP_CIPHER_CTX_new()) == NULL || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->k, buf + 1) != 1 ||
	    !aad_update(c, subject, method, id, id_len) ||
	    EVP_EncryptUpdate(c, buf + 1 + NONCE_LEN, &outl, plain, (int)len) != 1 || (size_t)outl != len ||
	    EVP_EncryptFinal_ex(c, buf + 1 + NONCE_LEN + len, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, buf + 1 + NONCE_LEN + len) != 1)
		goto out;
	*out = buf;
	*out_len = 1 + NONCE_LEN + len + TAG_LEN;
	buf = NULL;
	r = 0;
out:
	EVP_CIPHER_CTX_free(c);
	free(buf);
	return r;
}

int
tmpl_open(const struct tmpl_key *k, const char *subject, const char *method, const uint8_t *id, size_t id_len,
          const uint8_t *sealed, size_t len, uint8_t **out, size_t *out_len)
{
	EVP_CIPHER_CTX *c = NULL;
	uint8_t *buf = NULL, tag[TAG_LEN];
	int outl = 0, r = AUTHD_ERR_TAMPERED;

	*out = NULL;
	*out_len = 0;
	if (len < 1 + NONCE_LEN + TAG_LEN || len > TMPL_MAX + 1 + NONCE_LEN + TAG_LEN || sealed[0] != TMPL_VERSION)
		return AUTHD_ERR_TAMPERED;
	size_t n = len - 1 - NONCE_LEN - TAG_LEN;
	if ((buf = malloc(n ? n : 1)) == NULL)
		return AUTHD_ERR_NOMEM;
	memcpy(tag, sealed + len - TAG_LEN, TAG_LEN);
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k->k, sealed + 1) != 1 ||
	    !aad_update(c, subject, method, id, id_len) ||
	    EVP_DecryptUpdate(c, buf, &outl, sealed + 1 + NONCE_LEN, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 || EVP_DecryptFinal_ex(c, buf + outl, &outl) != 1)
		goto out;
	*out = buf;
	*out_len = n;
	buf = NULL;
	r = 0;
out:
	EVP_CIPHER_CTX_free(c);
	util_free_secret(&buf, n);
	return r;
}
