/*
 * authd authenticator plugin ABI.
 *
 * A plugin is a shared object exporting one symbol, AUTHD_PLUGIN_SYMBOL, of
 * type `const struct authd_plugin`. Its first two members are the ABI version
 * (AUTHD_PLUGIN_MKVERSION(major, minor)) and sizeof the struct the plugin was
 * built with. The host refuses a plugin whose major version differs, whose
 * size is smaller than the v1.0 struct, or whose required pointers are NULL;
 * it calls a member appended in a later minor version only when `size`
 * covers it. Members are only ever appended, never reordered.
 *
 * Every in/out struct also starts with `size`, set by its creator, so both
 * sides can grow.
 *
 * Verdicts are out-parameters separate from the return code and start as
 * AUTHD_VERDICT_DENY: an error can never become an approval. A plugin
 * returns 0 when it reached a verdict (approve or deny, with reasons) and a
 * negative authd_err (see authd/err.h) when it could not; the host denies
 * on any non-zero return whatever the verdict says.
 *
 * Threading: init and fini are called once, from the main thread. enroll,
 * verify and the optional members may be called concurrently from any
 * worker thread with the same state; a plugin guards its own shared data.
 *
 * Memory: everything `in` points to is lent by the host for the call.
 * Buffers a plugin returns in `out` (records, info_json) are allocated with
 * malloc and freed by the host (after OPENSSL_cleanse for records).
 */
#ifndef AUTHD_PLUGIN_H
#define AUTHD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AUTHD_PLUGIN_MKVERSION(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define AUTHD_PLUGIN_MAJOR(v) ((uint32_t)(v) >> 16)
#define AUTHD_PLUGIN_ABI AUTHD_PLUGIN_MKVERSION(1, 0)
#define AUTHD_PLUGIN_SYMBOL "authd_plugin_v1"

enum authd_verdict {
	AUTHD_VERDICT_DENY = 0,
	AUTHD_VERDICT_APPROVE = 1,
};

/* Authentication method references reported on approval (RFC 8176). */
#define AUTHD_AMR_HWK 0x01u  /* proof of possession of a hardware key */
#define AUTHD_AMR_USER 0x02u /* user presence/verification gesture (UV) */
#define AUTHD_AMR_FACE 0x04u /* facial biometric */
#define AUTHD_AMR_PIN 0x08u  /* PIN entered on the authenticator */
#define AUTHD_AMR_SWK 0x10u  /* proof of possession of a software key */

/* verify flags */
#define AUTHD_VERIFY_UV_REQUIRED 0x01u

#define AUTHD_PLUGIN_MAX_REASONS 8
#define AUTHD_PLUGIN_MAX_RECORDS 8

/* Services the host offers a plugin. */
struct authd_plugin_host {
	uint32_t abi;
	uint32_t size;
	/* syslog(3)-style priority; never pass secrets, tokens or images. */
	void (*log)(int prio, const char *msg);
	/* Configuration value of [section] key, or NULL when unset. Lent. */
	const char *(*config)(const char *section, const char *key);
};

/* An enrolled credential (FIDO2) or template (face), opaque to the host. */
struct authd_record {
	const uint8_t *id; /* record id (FIDO2: credential id) */
	size_t id_len;
	const uint8_t *data; /* plugin-defined serialized record */
	size_t data_len;
};

/* A record a plugin creates; buffers are malloc'd, host frees. */
struct authd_new_record {
	uint8_t *id;
	size_t id_len;
	uint8_t *data;
	size_t data_len;
};

struct authd_enroll_in {
	uint32_t size;
	const char *subject;          /* customer id, or "staff:<user>" */
	const uint8_t *challenge;     /* FIDO2 registration challenge, else NULL */
	size_t challenge_len;
	const char *request_json;     /* method object as received: untrusted */
	size_t request_len;
	uint32_t flags;               /* AUTHD_VERIFY_UV_REQUIRED */
	const char *rp_id;            /* FIDO2 relying party id for this flow */
	const char *const *origins;   /* FIDO2 allowed origins (exact match) */
	size_t n_origins;
};

struct authd_enroll_out {
	uint32_t size;
	int verdict;                  /* APPROVE when at least one record made */
	const char *reasons[AUTHD_PLUGIN_MAX_REASONS]; /* static strings */
	size_t n_reasons;
	struct authd_new_record records[AUTHD_PLUGIN_MAX_RECORDS];
	size_t n_records;
	char *info_json;              /* JSON object merged into the reply, or NULL */
};

struct authd_verify_in {
	uint32_t size;
	const char *subject;
	const uint8_t *challenge;     /* the challenge issued for this transfer/login */
	size_t challenge_len;
	const char *request_json;     /* method object as received: untrusted */
	size_t request_len;
	const struct authd_record *records; /* subject's active, offered records */
	size_t n_records;
	uint32_t flags;               /* AUTHD_VERIFY_UV_REQUIRED */
	const char *rp_id;            /* FIDO2 relying party id for this flow */
	const char *const *origins;   /* FIDO2 allowed origins (exact match) */
	size_t n_origins;
};

struct authd_verify_out {
	uint32_t size;
	int verdict;                  /* starts AUTHD_VERDICT_DENY */
	const char *reasons[AUTHD_PLUGIN_MAX_REASONS]; /* static strings */
	size_t n_reasons;
	long record_index;            /* record used or matched, -1 for none */
	uint8_t *updated_data;        /* replacement data for that record, or NULL */
	size_t updated_len;
	uint32_t amr;                 /* AUTHD_AMR_* on approval */
	double score;                 /* method-specific (face: best cosine) */
	int disable_record;           /* 1: host must disable records[record_index] */
};

struct authd_plugin {
	uint32_t abi;                 /* AUTHD_PLUGIN_ABI */
	uint32_t size;                /* sizeof(struct authd_plugin) */
	const char *name;             /* method name on the wire: "fido2", "face" */
	int (*init)(const struct authd_plugin_host *host, void **state);
	int (*enroll)(void *state, const struct authd_enroll_in *in, struct authd_enroll_out *out);
	int (*verify)(void *state, const struct authd_verify_in *in, struct authd_verify_out *out);
	void (*fini)(void *state);
	/* ---- v1.0 ends here; append only below, guarded by `size`. ---- */

	/*
	 * Face tools (authctl face-score / face-check, benchmarks). Optional:
	 * NULL in plugins that do not score images; a host calls them only when
	 * `size` covers the member and the pointer is non-NULL. Same threading
	 * as verify. Images are lent encoded bytes (JPEG/PNG/JPEG 2000).
	 *
	 * compare: scores two images (face: cosine of the embeddings, higher =
	 * more alike). Returns 0 when both images were examined: then either
	 * *reason is NULL and *score / *match (1 when *score reaches the
	 * configured threshold) hold, or *reason is the static reason why an
	 * image has no usable face ("no_face", "bad_image", ...). Negative
	 * authd_err when it could not run.
	 *
	 * check: detection, quality and liveness figures of one image as a JSON
	 * object in *json_out (malloc'd, caller frees). 0 or a negative authd_err.
	 */
	int (*compare)(void *state, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, double *score,
	               int *match, const char **reason);
	int (*check)(void *state, const uint8_t *img, size_t len, char **json_out);
};

#ifdef __cplusplus
}
#endif

#endif
