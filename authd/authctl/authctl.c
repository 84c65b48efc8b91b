/*
 * authctl: one subcommand per authd operation, plus offline tools
 * (audit check, token verify, face-score, face-check). Human-readable
 * output by default, the daemon's reply as JSON with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "authd_client.h"
#include "cmd_face.h"
#include "cmd_staff.h"
#include "cmd_store.h"
#include "err.h"
#include "token.h"
#include "util.h"

static const char *opt_socket;
static int opt_json;
static int opt_timeout = 30000;

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: authctl [--socket PATH] [--json] [--timeout MS] COMMAND [ARGS]\n"
	        "The socket is --socket, else $AUTHD_SOCKET, else /run/authd/authd.sock.\n\n"
	        "client commands:\n"
	        "  health | jwks\n"
	        "  assess TXN.json|-                 ask for a decision on a transaction\n"
	        "  verify REQUEST.json|-             send a verify request body\n"
	        "  redeem TOKEN                      single-use check of a token\n"
	        "  enroll-face CUSTOMER IMG...       enroll face images\n"
	        "  delete-face CUSTOMER              erase a customer's face templates\n"
	        "admin commands:\n"
	        "  freeze ACCOUNT --reason TEXT | unfreeze ACCOUNT [--reason TEXT]\n"
	        "  unlock CUSTOMER [--reason TEXT]\n"
	        "  credentials list CUSTOMER | credentials revoke CUSTOMER CREDENTIAL_ID [--method M]\n"
	        "  stats | rotate-key\n"
	        "  audit verify\n"
	        "  audit export [--account A] [--customer C] [--since T] [--until T] [-o FILE]\n"
	        "  policy explain TXN.json|-          decision and every rule's verdict, nothing stored\n"
	        "  geo lookup IP\n"
	        "staff (pam_authd) and four-eyes:\n"
	        "  staff enroll-face --user U IMG...  enroll a staff member's face\n"
	        "  staff enroll-fido2 --user U [--device PATH]  register a staff security key\n"
	        "  pending show ID                    what a pending four-eyes action would do\n"
	        "  approve ID                         approve another staff member's pending action\n"
	        "offline tools:\n"
	        "  audit check BUNDLE.json [--jwks FILE]  verify an exported evidence bundle (against the\n"
	        "                                    bank's published keys with --jwks)\n"
	        "  token verify TOKEN [--jwks FILE] [--issuer I] [--audience A]\n"
	        "                                    verify a token: signature, typ, iss, aud, exp, iat/nbf\n"
	        "  face-score A B | face-score --pairs FILE | face-check IMG\n"
	        "  store migrate --url URL           create/upgrade the schema (sqlite:PATH, postgresql://...)\n"
	        "  store check --url URL             schema version and audit chain verify\n"
	        "  store copy --from URL --to URL    copy a store (audit chain verbatim) into an empty one\n"
	        "  raw OP [JSON]                      send any op with a JSON body\n");
}

static int
die(const char *what, const char *arg)
{
	fprintf(stderr, "authctl: %s: %s\n", what, arg);
	return 1;
}

static json_t *
load_json_arg(const char *path)
{
	json_error_t e;
	json_t *j = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &e)
	                                   : json_load_file(path, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL)
		fprintf(stderr, "authctl: %s: %s (line %d)\n", path, e.text, e.line);
	return j;
}

static void
print_value(const char *prefix, json_t *v, int depth)
{
	const char *k;
	json_t *x;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach(v, k, x)
		{
			if (json_is_object(x) || (json_is_array(x) && json_array_size(x) > 0 && !json_is_string(json_array_get(x, 0)))) {
				printf("%*s%s:\n", depth * 2, "", k);
				print_value(prefix, x, depth + 1);
			} else {
				printf("%*s%s: ", depth * 2, "", k);
				print_value(prefix, x, -1);
				printf("\n");
			}
		}
	} else if (json_is_array(v)) {
		if (depth < 0) {
			json_array_foreach(v, i, x)
			{
				printf(i ? ", " : "");
				print_value(prefix, x, -1);
			}
		} else {
			json_array_foreach(v, i, x)
			{
				printf("%*s- ", depth * 2, "");
				if (json_is_object(x)) {
					char *t = json_dumps(x, JSON_COMPACT);
					printf("%s\n", t ? t : "");
					free(t);
				} else {
					print_value(prefix, x, -1);
					printf("\n");
				}
			}
		}
	} else if (json_is_string(v))
		printf("%s", json_string_value(v));
	else {
		char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		printf("%s", t ? t : "");
		free(t);
	}
}

/* Sends op with body (stolen) and prints the reply. Exit: 0 ok, 1 error reply, 3 unreachable. */
static int
call(const char *op, json_t *body, json_t **keep)
{
	struct authd_client *c = NULL;
	json_t *reply = NULL;
	const char *path = opt_socket ? opt_socket : authd_client_default_socket();
	int rc = 1;
	if (body == NULL)
		body = json_object();
	json_object_set_new(body, "op", json_string(op));
	int r = authd_client_connect(path, opt_timeout, &c);
	if (r < 0) {
		fprintf(stderr, "authctl: cannot reach authd at %s: %s\n", path, strerror(errno ? errno : ECONNREFUSED));
		rc = 3;
		goto out;
	}
	if ((r = authd_client_call(c, body, &reply)) < 0) {
		fprintf(stderr, "authctl: no reply from authd at %s: %s\n", path, authd_strerror(r));
		rc = 3;
		goto out;
	}
	if (json_is_true(json_object_get(reply, "ok"))) {
		rc = 0;
		json_object_del(reply, "v");
		json_object_del(reply, "id");
		json_object_del(reply, "ok");
	}
	if (opt_json && keep == NULL) {
		char *t = json_dumps(reply, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", t ? t : "");
		free(t);
	} else if (rc != 0) {
		json_t *e = json_object_get(reply, "error");
		fprintf(stderr, "authctl: authd at %s refused %s: %s: %s\n", path, op,
		        json_string_value(json_object_get(e, "code")), json_string_value(json_object_get(e, "message")));
	} else if (keep == NULL)
		print_value("", reply, 0);
	if (keep != NULL && rc == 0) {
		*keep = reply;
		reply = NULL;
	}
out:
	json_decref(body);
	json_decref(reply);
	authd_client_free(&c);
	return rc;
}

/* --name VALUE options after the positional arguments. */
static const char *
opt_value(int argc, char **argv, const char *name)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int
file_b64(const char *path, json_t *arr)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (util_read_file(path, 16u << 20, &data, &len) < 0)
		return die("cannot read", path);
	char *b = b64url_encode(data, len);
	util_free_secret(&data, len);
	if (b == NULL)
		return 1;
	json_array_append_new(arr, json_string(b));
	util_wipe(b, strlen(b));
	free(b);
	return 0;
}

/* Decodes a compact JWS's header (part 0) or payload (part 1) as JSON (no trust implied). */
static json_t *
jws_part(const char *jws, int part)
{
	const char *d1 = strchr(jws, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	const char *from = part == 0 ? jws : d1 + 1, *to = part == 0 ? d1 : d2;
	uint8_t *dec = NULL;
	size_t n = 0;
	if (d2 == NULL || b64url_decode(from, (size_t)(to - from), 65536, &dec, &n) < 0)
		return NULL;
	json_t *j = json_loadb((const char *)dec, n, 0, NULL);
	free(dec);
	return j;
}

static int
cmd_assess(const char *path)
{
	json_t *txn = load_json_arg(path), *reply = NULL;
	if (txn == NULL)
		return 2;
	int rc = call("assess", json_pack("{s:o}", "txn", txn), opt_json ? NULL : &reply);
	if (reply != NULL) {
		printf("result: %s\n", json_string_value(json_object_get(reply, "result")));
		printf("reasons: ");
		print_value("", json_object_get(reply, "reasons"), -1);
		printf("\n");
		json_t *ch = json_object_get(reply, "challenge");
		if (ch) {
			printf("challenge:\n");
			print_value("", ch, 1);
		}
		const char *tok = json_string_value(json_object_get(reply, "token"));
		if (tok) {
			json_t *claims = jws_part(tok, 1);
			printf("token: %s\nclaims:\n", tok);
			print_value("", claims, 1);
			json_decref(claims);
		}
		json_decref(reply);
	}
	return rc;
}

/*
 * Verifies an evidence bundle offline. The signature proves who made the
 * bundle only against keys the investigator trusts: --jwks FILE (the
 * bank's published `authctl jwks`); without it, the key set that came in
 * the bundle is used and the kid printed is to be compared with the
 * bank's keys (a kid is its key's thumbprint, checked by token_verify, so
 * another key cannot borrow a published kid).
 */
static int
cmd_audit_check(const char *path, const char *jwks_path)
{
	json_t *b = load_json_arg(path), *trusted = NULL, *hdr = NULL;
	char why[160] = "";
	int rc = 1;
	if (b == NULL)
		return 2;
	if (jwks_path != NULL && (trusted = load_json_arg(jwks_path)) == NULL) {
		json_decref(b);
		return 2;
	}
	json_t *records = json_object_get(b, "records"), *proof = json_object_get(b, "proof");
	const char *sig = json_string_value(json_object_get(b, "signature"));
	json_t *jwks = trusted ? trusted : json_object_get(b, "jwks");
	const char *kid = json_string_value(json_object_get(proof, "kid"));
	if (!json_is_array(records) || !json_is_object(proof) || sig == NULL || !json_is_object(jwks) ||
	    kid == NULL) {
		fprintf(stderr, "authctl: %s is not an audit bundle\n", path);
		goto out;
	}
	hdr = jws_part(sig, 0);
	const char *hkid = json_string_value(json_object_get(hdr, "kid"));
	if (hkid == NULL || strcmp(hkid, kid) != 0) {
		printf("INVALID: the signature's kid is not the kid the proof names\n");
		goto out;
	}
	/* 1. the signature over the canonical {records, proof} */
	json_t *signed_part = json_pack("{s:O,s:O}", "records", records, "proof", proof);
	char *canon = signed_part ? json_dumps(signed_part, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(signed_part);
	int r = canon ? token_verify(jwks, sig, "authd-audit+jws", canon, strlen(canon), NULL, why, sizeof why)
	              : AUTHD_ERR_NOMEM;
	free(canon);
	if (r < 0) {
		printf("INVALID: signature: %s\n", why);
		goto out;
	}
	/* 2. every record's hash from its content and prev */
	size_t i;
	json_t *rec;
	json_array_foreach(records, i, rec)
	{
		if (audit_check_json(rec, why, sizeof why) < 0) {
			printf("INVALID: record %zu (seq %lld): %s\n", i,
			       (long long)json_integer_value(json_object_get(rec, "seq")), why);
			goto out;
		}
	}
	/* 3. the links: consecutive, and each exported record's hash in place */
	json_t *links = json_object_get(proof, "links"), *l;
	long long prev_seq = 0;
	json_array_foreach(links, i, l)
	{
		long long s = json_integer_value(json_array_get(l, 0));
		if (prev_seq && s != prev_seq + 1) {
			printf("INVALID: chain links skip from %lld to %lld\n", prev_seq, s);
			goto out;
		}
		prev_seq = s;
	}
	json_array_foreach(records, i, rec)
	{
		long long s = json_integer_value(json_object_get(rec, "seq"));
		const char *h = json_string_value(json_object_get(rec, "hash"));
		const char *p = json_string_value(json_object_get(rec, "prev"));
		long long first = json_integer_value(json_object_get(proof, "first_seq"));
		json_t *link = s >= first ? json_array_get(links, (size_t)(s - first)) : NULL;
		json_t *before = s > first ? json_array_get(links, (size_t)(s - first - 1)) : NULL;
		const char *lh = json_string_value(json_array_get(link, 1));
		const char *bh = json_string_value(json_array_get(before, 1));
		if (lh == NULL || h == NULL || p == NULL || strcmp(lh, h) != 0 ||
		    json_integer_value(json_array_get(link, 0)) != s ||
		    (before && (bh == NULL || strcmp(bh, p) != 0))) {
			printf("INVALID: record seq %lld does not sit in the chain links\n", s);
			goto out;
		}
	}
	printf("VALID: %zu records, signature by kid %s, chain head seq %lld\n", json_array_size(records),
	       kid, (long long)json_integer_value(json_object_get(proof, "head_seq")));
	if (trusted != NULL)
		printf("The signing key is one of %s.\n", jwks_path);
	else
		printf("The signing key came with the bundle: check that kid %s is one of the bank's "
		       "published authd keys, or run again with --jwks FILE.\n",
		       kid);
	rc = 0;
out:
	json_decref(hdr);
	json_decref(trusted);
	json_decref(b);
	return rc;
}

static int
cmd_token_verify(const char *tok, const char *jwks_path, int argc, char **argv)
{
	json_t *jwks = NULL, *claims = NULL;
	char why[160] = "";
	if (jwks_path) {
		if ((jwks = load_json_arg(jwks_path)) == NULL)
			return 2;
	} else if (call("jwks", NULL, &jwks) != 0)
		return 3;
	int r = token_verify(jwks, tok, TOKEN_TYP, NULL, 0, &claims, why, sizeof why);
	json_decref(jwks);
	if (r < 0) {
		printf("INVALID: %s\n", why);
		return 1;
	}
	r = token_check_claims(claims, opt_value(argc, argv, "--issuer") ? opt_value(argc, argv, "--issuer") : "authd",
	                       opt_value(argc, argv, "--audience") ? opt_value(argc, argv, "--audience") : "bank-backend",
	                       util_now(), 5, why, sizeof why);
	if (r < 0) {
		printf("INVALID: %s\n", why);
		json_decref(claims);
		return 1;
	}
	printf("VALID\n");
	print_value("", claims, 0);
	json_decref(claims);
	return 0;
}
/* authctl staff ...: delegated to cmd_staff.c. */
static int
staff_cmd(int argc, char **argv)
{
	return cmd_staff(argc, argv, opt_socket ? opt_socket : authd_client_default_socket(), opt_timeout, opt_json);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;
	/* Options only before the command; the rest belongs to it. */
	while ((c = getopt_long(argc, argv, "+s:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': opt_socket = optarg; break;
		case 'j': opt_json = 1; break;
		case 't': opt_timeout = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[0];
	const char *a1 = argc > 1 ? argv[1] : NULL, *a2 = argc > 2 ? argv[2] : NULL;

	if (!strcmp(cmd, "staff"))
		return staff_cmd(argc, argv);
	if (!strcmp(cmd, "approve") && a1)
		return call("approve", json_pack("{s:s}", "id", a1), NULL);
	if (!strcmp(cmd, "pending") && a1 && !strcmp(a1, "show") && a2)
		return call("pending_show", json_pack("{s:s}", "id", a2), NULL);
	if (!strcmp(cmd, "face-score"))
		return cmd_face_score(argc, argv);
	if (!strcmp(cmd, "face-check"))
		return cmd_face_check(argc, argv);
	if (!strcmp(cmd, "store"))
		return cmd_store(argc, argv);
	if (!strcmp(cmd, "health") || !strcmp(cmd, "jwks") || !strcmp(cmd, "stats"))
		return call(cmd, NULL, NULL);
	if (!strcmp(cmd, "rotate-key"))
		return call("rotate_key", NULL, NULL);
	if (!strcmp(cmd, "assess") && a1)
		return cmd_assess(a1);
	if (!strcmp(cmd, "verify") && a1) {
		json_t *b = load_json_arg(a1);
		return b ? call("verify", b, NULL) : 2;
	}
	if (!strcmp(cmd, "redeem") && a1)
		return call("redeem", json_pack("{s:s}", "token", a1), NULL);
	if ((!strcmp(cmd, "freeze") || !strcmp(cmd, "unfreeze")) && a1) {
		const char *reason = opt_value(argc, argv, "--reason");
		if (!strcmp(cmd, "freeze") && reason == NULL)
			return die("needs --reason TEXT", cmd);
		return call(cmd, json_pack("{s:s,s:s?}", "account", a1, "reason", reason), NULL);
	}
	if (!strcmp(cmd, "unlock") && a1)
		return call("unlock", json_pack("{s:s,s:s?}", "customer", a1, "reason", opt_value(argc, argv, "--reason")),
		            NULL);
	if (!strcmp(cmd, "credentials") && a1 && !strcmp(a1, "list") && a2)
		return call("list_credentials", json_pack("{s:s}", "customer", a2), NULL);
	if (!strcmp(cmd, "credentials") && a1 && !strcmp(a1, "revoke") && argc > 3)
		return call("revoke_credential",
		            json_pack("{s:s,s:s,s:s?}", "customer", a2, "credential_id", argv[3], "method",
		                      opt_value(argc, argv, "--method")),
		            NULL);
	if (!strcmp(cmd, "enroll-face") && argc > 2) {
		json_t *imgs = json_array();
		for (int i = 2; i < argc; i++)
			if (file_b64(argv[i], imgs) != 0) {
				json_decref(imgs);
				return 2;
			}
		return call("enroll_face", json_pack("{s:s,s:o}", "customer", a1, "images", imgs), NULL);
	}
	if (!strcmp(cmd, "delete-face") && a1)
		return call("delete_face", json_pack("{s:s}", "customer", a1), NULL);
	if (!strcmp(cmd, "audit") && a1 && !strcmp(a1, "verify")) {
		json_t *r = NULL;
		int rc = call("audit_verify", NULL, &r);
		if (r && opt_json) {
			char *t = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			printf("%s\n", t ? t : "");
			free(t);
			/* scripts read the exit code */
			rc = json_is_true(json_object_get(r, "valid")) ? 0 : 1;
		} else if (r) {
			if (json_is_true(json_object_get(r, "valid")))
				printf("audit chain valid: %lld records, head %s\n",
				       (long long)json_integer_value(json_object_get(r, "records")),
				       json_string_value(json_object_get(r, "head_hash")));
			else {
				printf("audit chain INVALID at seq %lld: %s\n",
				       (long long)json_integer_value(json_object_get(r, "first_bad_seq")),
				       json_string_value(json_object_get(r, "why")));
				rc = 1;
			}
		}
		json_decref(r);
		return rc;
	}
	if (!strcmp(cmd, "audit") && a1 && !strcmp(a1, "export")) {
		json_t *body = json_object(), *r = NULL;
		static const char *const text[] = {"--account", "account", "--customer", "customer"};
		static const char *const nums[] = {"--since", "since", "--until", "until"};
		const char *v;
		/* a filter that cannot be sent is an error, never a wider export */
		for (size_t i = 0; body && i < 4; i += 2)
			if ((v = opt_value(argc, argv, text[i])) &&
			    json_object_set_new(body, text[i + 1], json_string(v)) != 0) {
				fprintf(stderr, "authctl: %s must be UTF-8 text\n", text[i]);
				json_decref(body);
				return 2;
			}
		for (size_t i = 0; body && i < 4; i += 2) {
			if ((v = opt_value(argc, argv, nums[i])) == NULL)
				continue;
			char *end = NULL;
			errno = 0;
			long long n = strtoll(v, &end, 10);
			if (errno != 0 || end == v || *end != '\0' ||
			    json_object_set_new(body, nums[i + 1], json_integer(n)) != 0) {
				fprintf(stderr, "authctl: %s needs a Unix time in seconds, not '%s'\n", nums[i],
				        v);
				json_decref(body);
				return 2;
			}
		}
		if (body == NULL)
			return die("out of memory", "audit export");
		int rc = call("audit_export", body, &r);
		if (r) {
			const char *outp = opt_value(argc, argv, "-o");
			if (json_dump_file(r, outp ? outp : "/dev/stdout", JSON_INDENT(1)) != 0)
				rc = die("cannot write", outp ? outp : "stdout");
			else if (outp)
				printf("wrote %zu records to %s\n", json_array_size(json_object_get(r, "records")), outp);
			json_decref(r);
		}
		return rc;
	}
	if (!strcmp(cmd, "audit") && a1 && !strcmp(a1, "check") && a2)
		return cmd_audit_check(a2, opt_value(argc, argv, "--jwks"));
	if (!strcmp(cmd, "token") && a1 && !strcmp(a1, "verify") && a2)
		return cmd_token_verify(a2, opt_value(argc, argv, "--jwks"), argc, argv);
	if (!strcmp(cmd, "policy") && a1 && !strcmp(a1, "explain") && a2) {
		json_t *txn = load_json_arg(a2);
		return txn ? call("policy_explain", json_pack("{s:o}", "txn", txn), NULL) : 2;
	}
	if (!strcmp(cmd, "geo") && a1 && !strcmp(a1, "lookup") && a2)
		return call("geo_lookup", json_pack("{s:s}", "ip", a2), NULL);
	if (!strcmp(cmd, "raw") && a1) {
		json_t *body = a2 ? json_loads(a2, JSON_REJECT_DUPLICATES, NULL) : json_object();
		if (!json_is_object(body))
			return die("body must be a JSON object", a2 ? a2 : "");
		return call(a1, body, NULL);
	}
	usage(stderr);
	return 2;
}
