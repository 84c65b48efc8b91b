/* pam_authd's option parser: defaults, every option, and garbage that must fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pam_authd_args.h"

#define ARGS(...) ((const char *[]){__VA_ARGS__})
#define N(...) ((int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)))
#define PARSE(cfg, err, ...) pam_authd_args_parse(N(__VA_ARGS__), ARGS(__VA_ARGS__), cfg, err, sizeof err)

static void
test_defaults(void **state)
{
	struct pam_authd_cfg c;
	char err[256];
	assert_int_equal(pam_authd_args_parse(0, NULL, &c, err, sizeof err), 0);
	assert_string_equal(c.socket, "/run/authd/authd.sock");
	assert_int_equal(c.n_methods, 2);
	assert_int_equal(c.methods[0], PAM_AUTHD_FIDO2);
	assert_int_equal(c.methods[1], PAM_AUTHD_FACE);
	assert_int_equal(c.timeout_s, 30);
	assert_int_equal(c.cue, 0);
	assert_int_equal(c.face_src, PAM_AUTHD_FACE_CAMERA);
	assert_int_equal(c.camera, 0);
	assert_string_equal(c.rp_id, "");
	assert_int_equal(c.nouserok, 0); /* dangerous: never on unless asked */
	assert_int_equal(c.debug, 0);
	assert_true(c.capture[0] == '/');
}

static void
test_every_option(void **state)
{
	struct pam_authd_cfg c;
	char err[256];
	assert_int_equal(PARSE(&c, err, "socket=/tmp/a.sock", "methods=face,fido2", "timeout=7",
	                       "cue_prompt=Touch the key now", "face_source=file:/srv/face.jpg",
	                       "rp_id=pam://h1", "nouserok", "debug", "capture=/opt/authd-capture"),
	                 0);
	assert_string_equal(c.socket, "/tmp/a.sock");
	assert_int_equal(c.n_methods, 2);
	assert_int_equal(c.methods[0], PAM_AUTHD_FACE); /* order = preference */
	assert_int_equal(c.methods[1], PAM_AUTHD_FIDO2);
	assert_int_equal(c.timeout_s, 7);
	assert_int_equal(c.cue, 1); /* cue_prompt implies cue */
	assert_string_equal(c.cue_prompt, "Touch the key now");
	assert_int_equal(c.face_src, PAM_AUTHD_FACE_FILE);
	assert_string_equal(c.face_file, "/srv/face.jpg");
	assert_string_equal(c.rp_id, "pam://h1");
	assert_int_equal(c.nouserok, 1);
	assert_int_equal(c.debug, 1);
	assert_string_equal(c.capture, "/opt/authd-capture");

	assert_int_equal(PARSE(&c, err, "methods=fido2", "face_source=camera:3", "cue"), 0);
	assert_int_equal(c.n_methods, 1);
	assert_int_equal(c.methods[0], PAM_AUTHD_FIDO2);
	assert_int_equal(c.face_src, PAM_AUTHD_FACE_CAMERA);
	assert_int_equal(c.camera, 3);
	assert_int_equal(c.cue, 1);
	assert_string_equal(pam_authd_method_name(PAM_AUTHD_FACE), "face");
}

static void
test_garbage_fails_with_a_message(void **state)
{
	static const char *const bad[] = {
	    "bogus",
	    "alwaysok",
	    "socket=",
	    "socket=relative.sock",
	    "methods=",
	    "methods=sms",
	    "methods=fido2,,face",
	    "methods=fido2,",
	    "methods=,face",
	    "methods=face,face",
	    "methods=fido2,face,fido2",
	    "timeout=",
	    "timeout=0",
	    "timeout=601",
	    "timeout=-5",
	    "timeout=5s",
	    "timeout= 5",
	    "cue=1",
	    "cue_prompt=",
	    "face_source=",
	    "face_source=camera:",
	    "face_source=camera:x",
	    "face_source=camera:-1",
	    "face_source=camera:64",
	    "face_source=file:",
	    "face_source=file:rel/x.jpg",
	    "face_source=webcam",
	    "rp_id=",
	    "nouserok=yes",
	    "debug=1",
	    "capture=rel",
	    "Socket=/x",
	    "socket",
	    "=x",
	    "",
	    "cue_prompt=a\tb",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct pam_authd_cfg c;
		char err[256] = "";
		const char *argv[] = {"timeout=5", bad[i]};
		assert_int_equal(pam_authd_args_parse(2, argv, &c, err, sizeof err), -1);
		assert_true(strlen(err) > 0);
	}
	/* The message names the offending argument. */
	struct pam_authd_cfg c;
	char err[256];
	assert_int_equal(PARSE(&c, err, "frobnicate=1"), -1);
	assert_non_null(strstr(err, "frobnicate=1"));
}

static void
test_repeats_and_limits(void **state)
{
	struct pam_authd_cfg c;
	char err[256];
	assert_int_equal(PARSE(&c, err, "debug", "debug"), -1);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(PARSE(&c, err, "timeout=5", "timeout=6"), -1);
	assert_int_equal(PARSE(&c, err, "nouserok", "nouserok"), -1);
	char longsock[200];
	memset(longsock, 'a', sizeof longsock);
	memcpy(longsock, "socket=/", 8);
	longsock[sizeof longsock - 1] = '\0';
	const char *argv[] = {longsock};
	assert_int_equal(pam_authd_args_parse(1, argv, &c, err, sizeof err), -1); /* > sun_path */
	const char *nullarg[] = {NULL};
	assert_int_equal(pam_authd_args_parse(1, nullarg, &c, err, sizeof err), -1);
	assert_int_equal(pam_authd_args_parse(-1, NULL, &c, err, sizeof err), -1);
	assert_int_equal(PARSE(&c, err, "timeout=1", "timeout=600"), -1);
	assert_int_equal(PARSE(&c, err, "timeout=600"), 0);
	assert_int_equal(c.timeout_s, 600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_option),
	    cmocka_unit_test(test_garbage_fails_with_a_message),
	    cmocka_unit_test(test_repeats_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
