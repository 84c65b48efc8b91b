/*
 * authctl store ...: see cmd_store.h. The store layer is linked directly
 * (authd_core), so these work with no daemon running.
 */
#include "cmd_store.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "store.h"

static const char *
arg_value(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int
store_usage(void)
{
	fprintf(stderr, "usage: authctl store migrate --url URL\n"
	                "       authctl store check --url URL\n"
	                "       authctl store copy --from URL --to URL\n"
	                "URL: sqlite:PATH | postgresql://... | postgres://... | libpq keyword string\n");
	return 2;
}

static int
open_url(const char *url, int flags, struct store **s)
{
	char err[512];
	if (store_open_url(url, ".", flags, s, err, sizeof err) < 0) {
		fprintf(stderr, "authctl: %s\n", err);
		return 1;
	}
	return 0;
}

/* Prints the chain verdict; 0 when valid. */
static int
verify_chain(struct store *s, const char *what)
{
	struct audit_verify_result v;
	int r = audit_verify_store(s, &v);
	if (r < 0) {
		fprintf(stderr, "authctl: %s: audit verify failed: %s\n", what, authd_strerror(r));
		return 1;
	}
	if (!v.valid) {
		printf("%s: audit chain INVALID at seq %lld: %s\n", what, (long long)v.first_bad_seq, v.why);
		return 1;
	}
	printf("%s: audit chain valid: %lld records, head %s\n", what, (long long)v.records, v.head_hash);
	return 0;
}

static int
store_migrate(const char *url)
{
	struct store *s = NULL;
	int have = 0, want = 0;
	if (open_url(url, 0, &s) != 0)
		return 1;
	int r = store_schema_version(s, &have, &want);
	if (r == 0)
		printf("%s store: schema version %d (latest %d)\n", store_kind(s), have, want);
	else
		fprintf(stderr, "authctl: cannot read the schema version: %s\n", authd_strerror(r));
	store_close(&s);
	return r == 0 && have == want ? 0 : 1;
}

static int
store_check(const char *url)
{
	struct store *s = NULL;
	int have = 0, want = 0, rc = 1;
	if (open_url(url, STORE_OPEN_NO_MIGRATE, &s) != 0)
		return 1;
	int r = store_schema_version(s, &have, &want);
	if (r < 0) {
		fprintf(stderr, "authctl: cannot read the schema version: %s\n", authd_strerror(r));
		goto out;
	}
	printf("%s store: schema version %d (this authd: %d)%s\n", store_kind(s), have, want,
	       have < want ? " - run 'authctl store migrate'" : have > want ? " - NEWER than this authd" : "");
	if (have == 0 || have > want)
		goto out;
	rc = verify_chain(s, "store");
	if (have < want)
		rc = 1;
out:
	store_close(&s);
	return rc;
}

static int
store_copy_cmd(const char *from_url, const char *to_url)
{
	struct store *from = NULL, *to = NULL;
	char err[512];
	int64_t rows = 0;
	int rc = 1;
	if (open_url(from_url, STORE_OPEN_NO_MIGRATE, &from) != 0)
		return 1;
	int have = 0, want = 0;
	if (store_schema_version(from, &have, &want) < 0 || have != want) {
		fprintf(stderr, "authctl: source schema version %d, this authd copies version %d (migrate it first)\n",
		        have, want);
		goto out;
	}
	if (verify_chain(from, "source") != 0)
		goto out;
	if (open_url(to_url, 0, &to) != 0)
		goto out;
	if (store_copy(from, to, &rows, err, sizeof err) < 0) {
		fprintf(stderr, "authctl: store copy: %s (nothing was written)\n", err);
		goto out;
	}
	printf("copied %lld rows from %s to %s\n", (long long)rows, store_kind(from), store_kind(to));
	rc = verify_chain(to, "target");
out:
	store_close(&from);
	store_close(&to);
	return rc;
}

int
cmd_store(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	if (strcmp(sub, "migrate") == 0 && arg_value(argc, argv, "--url"))
		return store_migrate(arg_value(argc, argv, "--url"));
	if (strcmp(sub, "check") == 0 && arg_value(argc, argv, "--url"))
		return store_check(arg_value(argc, argv, "--url"));
	if (strcmp(sub, "copy") == 0 && arg_value(argc, argv, "--from") && arg_value(argc, argv, "--to"))
		return store_copy_cmd(arg_value(argc, argv, "--from"), arg_value(argc, argv, "--to"));
	return store_usage();
}
