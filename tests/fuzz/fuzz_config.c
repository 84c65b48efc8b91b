/* INI configuration (config_load through inih) on a memfd, then config_get lookups. */
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

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
	static const char *const keys[][2] = {{"server", "socket"},       {"token", "alg"},
	                                      {"policy", "home_country"}, {"face", "threshold"},
	                                      {"fido2", "rp_id"},         {"nope", "nope"}};
	struct config *c = NULL;
	char path[64], err[512];
	int fd;

	if (size > 64 * 1024)
		return 0;
	if ((fd = fuzz_memfd(data, size, path, sizeof path)) < 0)
		return 0;
	fuzz_arm(data, size);
	err[0] = '\0';
	int r = config_load(path, &c, err, sizeof err);
	fuzz_disarm();
	if (r == 0) {
		FUZZ_ASSERT(c != NULL);
		FUZZ_ASSERT(c->server.socket != NULL && c->server.state_dir != NULL);
		FUZZ_ASSERT(c->token.alg != NULL &&
		            (strcmp(c->token.alg, "ES256") == 0 || strcmp(c->token.alg, "EdDSA") == 0));
		FUZZ_ASSERT(c->server.clients.n_uids <= CONFIG_MAX_IDS &&
		            c->fido2.n_origins <= CONFIG_MAX_ORIGINS);
		FUZZ_ASSERT(c->policy.n_currencies <= CONFIG_MAX_CURRENCIES);
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			(void)config_get(c, keys[i][0], keys[i][1]);
		(void)config_id_allowed(&c->server.clients, 0, 0);
		config_free(&c);
		FUZZ_ASSERT(c == NULL);
	} else {
		FUZZ_ASSERT(c == NULL);
		FUZZ_ASSERT(memchr(err, 0, sizeof err) != NULL);
	}
	close(fd);
	return 0;
}
