#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

void
util_free_ptr(void *pp)
{
	void **p = pp;
	free(*p);
	*p = NULL;
}

void
util_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void
util_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

void
util_free_secret(uint8_t **p, size_t len)
{
	if (p == NULL || *p == NULL)
		return;
	OPENSSL_cleanse(*p, len);
	free(*p);
	*p = NULL;
}

/*
 * Why a threshold: jansson allocates for every node, key and string of every
 * request, and the assess path makes thousands of small allocations per
 * millisecond; wiping each would cost for nothing. A face image arrives as a
 * base64url string of tens of kilobytes: jansson's lexer collects it in a
 * buffer that starts at 16 bytes and doubles, freeing the old one each time,
 * then copies it into the string value. Every buffer from 256 bytes up is
 * wiped, and so is the string value; the 16..128-byte buffers hold fewer than
 * the first 128 characters (under 96 bytes of the image: its container
 * header, no pixels).
 */
void
util_json_free_wipe_with(void *p, void (*release)(void *))
{
	if (p == NULL)
		return;
	size_t n = malloc_usable_size(p);
	if (n >= UTIL_JSON_WIPE_MIN)
		OPENSSL_cleanse(p, n);
	release(p);
}

void
util_json_free_wipe(void *p)
{
	util_json_free_wipe_with(p, free);
}

char *
b64url_encode(const uint8_t *in, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;
	char *out = malloc(cap);
	if (out == NULL || len > INT32_MAX)
		goto fail;
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	if (n < 0)
		goto fail;
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (int i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
fail:
	free(out);
	return NULL;
}

int
b64url_decode(const char *in, size_t in_len, size_t max_out, uint8_t **out, size_t *out_len)
{
	char *tmp = NULL;
	uint8_t *dec = NULL;
	int r = AUTHD_ERR_BAD_REQUEST;

	*out = NULL;
	*out_len = 0;
	if (in_len % 4 == 1)
		return AUTHD_ERR_BAD_REQUEST;
	if (in_len > (max_out / 3 + 1) * 4)
		return AUTHD_ERR_TOO_LARGE;
	size_t padded = (in_len + 3) / 4 * 4;
	if ((tmp = malloc(padded + 1)) == NULL || (dec = malloc(padded / 4 * 3 + 1)) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < in_len; i++) {
		char c = in[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			goto out; /* rejects '=', '+', '/', whitespace, NUL */
		tmp[i] = c;
	}
	for (size_t i = in_len; i < padded; i++)
		tmp[i] = '=';
	tmp[padded] = '\0';
	int n = padded ? EVP_DecodeBlock(dec, (unsigned char *)tmp, (int)padded) : 0;
	if (n < 0)
		goto out;
	n -= (int)(padded - in_len); /* EVP_DecodeBlock counts padding as zero bytes */
	if (n < 0 || (size_t)n > max_out) {
		r = n < 0 ? AUTHD_ERR_BAD_REQUEST : AUTHD_ERR_TOO_LARGE;
		goto out;
	}
	/* Reject non-canonical encodings (non-zero trailing bits). */
	{
		char *re = b64url_encode(dec, (size_t)n);
		int same = re != NULL && strlen(re) == in_len && memcmp(re, in, in_len) == 0;
		free(re);
		if (!same)
			goto out;
	}
	*out = dec;
	*out_len = (size_t)n;
	dec = NULL;
	r = 0;
out:
	free(tmp);
	free(dec);
	return r;
}

void
hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
hex_decode(const char *in, uint8_t *out, size_t out_len)
{
	if (strlen(in) != 2 * out_len)
		return AUTHD_ERR_BAD_REQUEST;
	for (size_t i = 0; i < out_len; i++) {
		int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return AUTHD_ERR_BAD_REQUEST;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int
util_random(uint8_t *out, size_t len)
{
	if (len > INT32_MAX || RAND_bytes(out, (int)len) != 1)
		return AUTHD_ERR_CRYPTO;
	return 0;
}

int
util_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return 0;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

int64_t
util_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t
util_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * SHA-256 fetched once by util_crypto_init() (authd's main): an implicit
 * fetch per call costs as much as hashing a short message. Plugins that
 * link this file never call it (a cached fetch would leak when they are
 * dlclose'd), so they keep the implicit fetch.
 */
static EVP_MD *sha256_md;

int
util_crypto_init(void)
{
	if (sha256_md == NULL && (sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return AUTHD_ERR_CRYPTO;
	return 0;
}

void
util_crypto_done(void)
{
	EVP_MD_free(sha256_md);
	sha256_md = NULL;
}

const EVP_MD *
util_sha256_md(void)
{
	return sha256_md != NULL ? sha256_md : EVP_sha256();
}

int
util_sha256(const void *in, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	if (EVP_Digest(in, len, out, &n, util_sha256_md(), NULL) != 1 || n != 32)
		return AUTHD_ERR_CRYPTO;
	return 0;
}

int
util_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	AUTO_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	*out = NULL;
	*len = 0;
	if (fd < 0)
		return errno == ENOENT ? AUTHD_ERR_NOT_FOUND : AUTHD_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return AUTHD_ERR_IO;
	if ((size_t)st.st_size > max)
		return AUTHD_ERR_TOO_LARGE;
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return AUTHD_ERR_NOMEM;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return AUTHD_ERR_IO;
		}
		got += (size_t)n;
	}
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

int
util_sync_dir_of(const char *path)
{
	char dir[4096];
	if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
		return AUTHD_ERR_IO;
	int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return AUTHD_ERR_IO;
	int r = fsync(fd);
	close(fd);
	return r == 0 ? 0 : AUTHD_ERR_IO;
}

int
util_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
		return AUTHD_ERR_IO;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return AUTHD_ERR_IO;
	const uint8_t *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		p += n;
		left -= (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto fail;
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return AUTHD_ERR_IO;
	}
	(void)util_sync_dir_of(path);
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return AUTHD_ERR_IO;
}

int
util_is_clean_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned c = p[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		unsigned min;
		if ((c & 0xe0) == 0xc0) {
			n = 1, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, min = 0x10000, c &= 0x07;
		} else
			return 0;
		if (i + n >= len)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			c = c << 6 | (p[i + k] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || (c >= 0x80 && c < 0xa0))
			return 0;
		i += n + 1;
	}
	return 1;
}
