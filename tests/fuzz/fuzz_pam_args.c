/*
 * pam_authd module arguments (pam_authd_args_parse): the input split at NUL
 * or newline bytes is argv, as sshd/sudo's PAM stack hands the options over.
 */
#include <string.h>

#include "fuzz.h"
#include "pam_authd_args.h"

#define MAX_ARGS 64

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_wrap_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[16384 + 1];
	const char *args[MAX_ARGS];
	struct pam_authd_cfg cfg;
	char err[512];
	int argc = 0;

	if (size > sizeof text - 1)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	char *p = text, *end = text + size;
	while (p <= end && argc < MAX_ARGS) {
		char *q = p;
		while (q < end && *q != '\0' && *q != '\n')
			q++;
		*q = '\0';
		args[argc++] = p;
		p = q + 1;
	}
	memset(&cfg, 0, sizeof cfg);
	err[0] = '\0';
	fuzz_arm(data, size);
	int r = pam_authd_args_parse(argc, args, &cfg, err, sizeof err);
	fuzz_disarm();
	FUZZ_ASSERT(r == 0 || r == -1);
	FUZZ_ASSERT(memchr(err, 0, sizeof err) != NULL);
	if (r == 0) {
		FUZZ_ASSERT(cfg.n_methods >= 1 && cfg.n_methods <= PAM_AUTHD_MAX_METHODS);
		FUZZ_ASSERT(memchr(cfg.socket, 0, sizeof cfg.socket) != NULL);
		FUZZ_ASSERT(memchr(cfg.cue_prompt, 0, sizeof cfg.cue_prompt) != NULL);
		FUZZ_ASSERT(memchr(cfg.face_file, 0, sizeof cfg.face_file) != NULL);
		FUZZ_ASSERT(memchr(cfg.capture, 0, sizeof cfg.capture) != NULL);
		FUZZ_ASSERT(memchr(cfg.rp_id, 0, sizeof cfg.rp_id) != NULL);
		for (size_t i = 0; i < cfg.n_methods; i++)
			FUZZ_ASSERT(cfg.methods[i] == PAM_AUTHD_FIDO2 || cfg.methods[i] == PAM_AUTHD_FACE);
		FUZZ_ASSERT(cfg.timeout_s > 0);
		(void)pam_authd_method_name(cfg.methods[0]);
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}
	return 0;
}
