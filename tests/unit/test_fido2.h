/*
 * Harness shared by the FIDO2 plugin tests: loads the built fido2.so with
 * dlopen (AUTHD_BUILD_DIR/lib/authd/plugins/fido2.so) and drives it through
 * the real ABI struct, with credentials from tests/softkey.
 */
#ifndef AUTHD_TEST_FIDO2_H
#define AUTHD_TEST_FIDO2_H

#include <stddef.h>
#include <stdint.h>

#include "authd_plugin.h"
#include "softkey.h"

#define T_RP_ID "bank.example"
#define T_ORIGIN "https://bank.example"
#define T_SUBJECT "C-42"

extern const struct authd_plugin *t_plugin;
extern void *t_state;
extern const char *const t_origins[];
extern const size_t t_n_origins;
/* Approvals seen in tests that expect a rejection (must stay 0). */
extern unsigned t_unexpected_approvals;

/* An enrolled credential as the host would store it. */
struct t_cred {
	struct softkey *key;
	uint8_t *id;
	size_t id_len;
	uint8_t *data;
	size_t data_len;
	char *info_json;
};

/* Loads the plugin and calls init once; 0 or -1. */
int t_plugin_load(void);
void t_plugin_unload(void);

/* A fresh 32-byte challenge, as the host issues. */
void t_challenge(uint8_t out[32]);

/*
 * Calls enroll with request JSON text; returns the plugin's return code,
 * sets *reason (NULL when none) and, when approved, fills cred (id/data).
 */
int t_enroll_json(const char *json, const uint8_t *chal, size_t chal_len, uint32_t flags, struct t_cred *cred,
                  int *verdict, const char **reason);

/* softkey_make_credential + t_enroll_json; asserts the plugin returned 0. */
int t_enroll(struct t_cred *cred, int alg, enum softkey_fmt fmt, unsigned ad_flags, uint32_t flags,
             const struct softkey_opts *opts, const char **reason);

/* Calls verify with request JSON; records are the given creds. */
int t_verify_json(const char *subject, const char *json, const uint8_t *chal, size_t chal_len,
                  const struct t_cred *const *creds, size_t n, uint32_t flags, struct authd_verify_out *out);

/*
 * softkey_get_assertion(cred->key) over chal + t_verify_json against
 * {cred}. On approval, cred->data is replaced by out->updated_data.
 */
int t_assert(struct t_cred *cred, const uint8_t *chal, unsigned ad_flags, uint32_t flags,
             const struct softkey_opts *opts, struct authd_verify_out *out);

void t_cred_free(struct t_cred *cred);
void t_verify_out_free(struct authd_verify_out *out);

/* Expect a deny with exactly this first reason; counts unexpected approvals. */
void t_expect_reject(const struct authd_verify_out *out, int rc, const char *reason);

#endif
