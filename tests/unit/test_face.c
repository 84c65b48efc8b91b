/*
 * Face plugin behaviour on the dev set (../shared/faces/dev, LABELS.csv),
 * through the real ABI struct of the built face.so:
 *  - every same-identity pair matches and every cross-identity pair does
 *    not, at the configured (default) threshold;
 *  - spoof_* are refused as presentation_attack, live_1.jpg passes;
 *  - multi_* frames get multiple_faces; the alpha PNG works;
 *  - record format, multi-frame rules, tampered records, EXIF orientation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_face_common.h"

#define MAX_FILES 64

struct dev_file {
	char name[128];
	char identity[64];
	char kind[16];
	struct authd_record rec; /* its enrolled template when kind == single */
	uint8_t *id, *data;
	size_t data_len;
};

static struct dev_file files[MAX_FILES];
static size_t n_files;

static int
load_labels(void)
{
	FILE *f = fopen(tf_face_path("LABELS.csv"), "r");
	char line[512];
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL && n_files < MAX_FILES) {
		char *name = strtok(line, ",\r\n");
		char *rest = name ? name + strlen(name) + 1 : NULL;
		if (name == NULL || strcmp(name, "file") == 0)
			continue;
		/* identity may be empty: split by hand */
		char *comma = strchr(rest, ',');
		if (comma == NULL)
			continue;
		*comma = '\0';
		struct dev_file *d = &files[n_files++];
		memset(d, 0, sizeof(*d));
		snprintf(d->name, sizeof(d->name), "%s", name);
		snprintf(d->identity, sizeof(d->identity), "%s", rest);
		char *kind = comma + 1, *end = strpbrk(kind, ",\r\n");
		if (end != NULL)
			*end = '\0';
		snprintf(d->kind, sizeof(d->kind), "%s", kind);
	}
	fclose(f);
	return n_files > 0 ? 0 : -1;
}

static void
free_templates(void)
{
	for (size_t i = 0; i < n_files; i++) {
		util_free_secret(&files[i].data, files[i].data_len);
		free(files[i].id);
		files[i].id = NULL;
	}
}

static int
group_setup(void **state)
{
	if (load_labels() < 0) {
		fprintf(stderr, "cannot read LABELS.csv at %s\n", tf_face_path("LABELS.csv"));
		return -1;
	}
	return tf_setup(state);
}

static int
group_teardown(void **state)
{
	free_templates();
	return tf_teardown(state);
}

static void
test_abi(void **unused)
{
	(void)unused;
	assert_int_equal(AUTHD_PLUGIN_MAJOR(tf_api->abi), 1);
	assert_true(tf_api->size >= offsetof(struct authd_plugin, check) + sizeof(tf_api->check));
	assert_string_equal(tf_api->name, "face");
	assert_non_null(tf_api->init);
	assert_non_null(tf_api->enroll);
	assert_non_null(tf_api->verify);
	assert_non_null(tf_api->fini);
	assert_non_null(tf_api->compare);
	assert_non_null(tf_api->check);
	/* The version script exports the ABI struct only. */
	assert_null(dlsym(tf_dl, "face_pipeline_analyze"));
	assert_null(dlsym(tf_dl, "b64url_decode"));
}

/* Enrolls every single-face image alone; checks the record format. */
static void
test_enroll_dev_set(void **unused)
{
	(void)unused;
	for (size_t i = 0; i < n_files; i++) {
		struct dev_file *d = &files[i];
		if (strcmp(d->kind, "single") != 0)
			continue;
		char *req = tf_req_files(d->name, NULL);
		assert_non_null(req);
		struct authd_enroll_out out;
		int r = tf_enroll(req, &out);
		free(req);
		if (r != 0 || out.n_records != 1)
			fail_msg("%s: enroll r=%d records=%zu reason=%s", d->name, r, out.n_records,
			         out.n_reasons ? out.reasons[0] : "-");
		assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
		assert_int_equal(out.records[0].id_len, 16);
		assert_int_equal(out.records[0].data_len, 8 + 4 * 512);
		assert_int_equal(out.records[0].data[0], 1);                                 /* version */
		assert_int_equal(out.records[0].data[2] | out.records[0].data[3] << 8, 512); /* dim */
		assert_non_null(out.info_json);
		json_t *info = json_loads(out.info_json, 0, NULL);
		assert_non_null(info);
		assert_int_equal(
		    json_integer_value(json_object_get(json_object_get(info, "quality"), "accepted")), 1);
		json_decref(info);
		d->id = out.records[0].id;
		d->data = out.records[0].data;
		d->data_len = out.records[0].data_len;
		d->rec.id = d->id;
		d->rec.id_len = 16;
		d->rec.data = d->data;
		d->rec.data_len = d->data_len;
		out.records[0].id = out.records[0].data = NULL;
		out.n_records = 0;
		tf_enroll_out_free(&out);
	}
	/* Ids are random and distinct. */
	for (size_t i = 0; i < n_files; i++)
		for (size_t j = i + 1; j < n_files; j++)
			if (files[i].id && files[j].id)
				assert_memory_not_equal(files[i].id, files[j].id, 16);
}

/*
 * Every same-identity pair matches (each direction), and each probe's best
 * score over all other identities' templates stays below the threshold,
 * which is exactly "every cross-identity pair does not match".
 */
static void
test_dev_pairs(void **unused)
{
	(void)unused;
	size_t n_same = 0, n_probe = 0;
	for (size_t i = 0; i < n_files; i++) {
		struct dev_file *p = &files[i];
		if (strcmp(p->kind, "single") != 0)
			continue;
		char *req = tf_req_files(p->name, NULL);
		assert_non_null(req);
		struct authd_record others[MAX_FILES];
		size_t n_others = 0;
		for (size_t j = 0; j < n_files; j++) {
			struct dev_file *t = &files[j];
			if (j == i || t->data == NULL)
				continue;
			if (strcmp(t->identity, p->identity) != 0) {
				others[n_others++] = t->rec;
				continue;
			}
			struct authd_verify_out out;
			assert_int_equal(tf_verify(req, &t->rec, 1, &out), 0);
			if (out.verdict != AUTHD_VERDICT_APPROVE)
				fail_msg("same identity %s vs %s: score %.4f reason %s", p->name, t->name,
				         out.score, out.n_reasons ? out.reasons[0] : "-");
			assert_int_equal(out.amr, AUTHD_AMR_FACE);
			assert_int_equal(out.record_index, 0);
			n_same++;
		}
		struct authd_verify_out out;
		assert_int_equal(tf_verify(req, others, n_others, &out), 0);
		if (out.verdict != AUTHD_VERDICT_DENY || !tf_has_reason(&out, "no_match"))
			fail_msg("cross identity %s: best score %.4f verdict %d", p->name, out.score,
			         out.verdict);
		assert_int_equal(out.record_index, -1);
		n_probe++;
		free(req);
	}
	assert_true(n_same >= 20);
	assert_true(n_probe >= 15);
}

/* The best of several templates is used and reported. */
static void
test_best_template(void **unused)
{
	(void)unused;
	struct authd_record recs[3];
	size_t n = 0;
	long want = -1;
	for (size_t j = 0; j < n_files && n < 3; j++) {
		if (files[j].data == NULL)
			continue;
		if (strcmp(files[j].name, "obama_2.jpg") == 0)
			want = (long)n;
		if (strcmp(files[j].name, "obama_2.jpg") == 0 || strcmp(files[j].name, "biden_1.jpg") == 0 ||
		    strcmp(files[j].name, "leslie_1.jpg") == 0)
			recs[n++] = files[j].rec;
	}
	assert_int_equal(n, 3);
	char *req = tf_req_files("edge_32bit_alpha.png", NULL);
	struct authd_verify_out out;
	assert_int_equal(tf_verify(req, recs, n, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(out.record_index, want);
	assert_true(out.score > 0.4 && out.score <= 1.0001);
	free(req);
}

static const struct authd_record *
template_of(const char *name)
{
	for (size_t j = 0; j < n_files; j++)
		if (strcmp(files[j].name, name) == 0 && files[j].data != NULL)
			return &files[j].rec;
	return NULL;
}

/* Enrolls one image outside the dev "single" set (e.g. live_1.jpg). */
static struct authd_enroll_out
enroll_one(const char *name)
{
	struct authd_enroll_out out;
	char *req = tf_req_files(name, NULL);
	assert_non_null(req);
	assert_int_equal(tf_enroll(req, &out), 0);
	free(req);
	return out;
}

static void
test_liveness(void **unused)
{
	(void)unused;
	struct authd_enroll_out en = enroll_one("live_1.jpg");
	assert_int_equal(en.n_records, 1);
	struct authd_record rec = {en.records[0].id, 16, en.records[0].data, en.records[0].data_len};
	struct authd_verify_out out;

	/* bona fide capture passes liveness (and matches itself) */
	char *req = tf_req_files("live_1.jpg", NULL);
	assert_int_equal(tf_verify(req, &rec, 1, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	free(req);

	/* both attacks are refused as attacks, whatever the template */
	const char *spoofs[] = {"spoof_1.jpg", "spoof_2.jpg"};
	for (size_t i = 0; i < 2; i++) {
		req = tf_req_files(spoofs[i], NULL);
		assert_int_equal(tf_verify(req, &rec, 1, &out), 0);
		assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
		if (!tf_has_reason(&out, "presentation_attack"))
			fail_msg("%s: reason %s", spoofs[i], out.n_reasons ? out.reasons[0] : "-");
		assert_int_equal(out.amr, 0);
		/* an attack frame spoils a multi-frame probe too */
		free(req);
		req = tf_req_files("live_1.jpg", spoofs[i], NULL);
		assert_int_equal(tf_verify(req, &rec, 1, &out), 0);
		assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
		assert_true(tf_has_reason(&out, "presentation_attack"));
		free(req);
	}
	tf_enroll_out_free(&en);
}

static void
test_multiple_faces(void **unused)
{
	(void)unused;
	const struct authd_record *obama = template_of("obama_1.jpg");
	assert_non_null(obama);
	for (size_t i = 0; i < n_files; i++) {
		if (strcmp(files[i].kind, "multi") != 0)
			continue;
		char *req = tf_req_files(files[i].name, NULL);
		struct authd_verify_out out;
		assert_int_equal(tf_verify(req, obama, 1, &out), 0);
		assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
		if (!tf_has_reason(&out, "multiple_faces"))
			fail_msg("%s: reason %s", files[i].name, out.n_reasons ? out.reasons[0] : "-");
		struct authd_enroll_out en;
		assert_int_equal(tf_enroll(req, &en), 0);
		assert_int_equal(en.verdict, AUTHD_VERDICT_DENY);
		assert_int_equal(en.n_records, 0);
		assert_string_equal(en.reasons[0], "multiple_faces");
		tf_enroll_out_free(&en);
		free(req);
	}
}

static void
test_alpha_png(void **unused)
{
	(void)unused;
	struct authd_enroll_out en = enroll_one("edge_32bit_alpha.png");
	assert_int_equal(en.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(en.n_records, 1);
	struct authd_record rec = {en.records[0].id, 16, en.records[0].data, en.records[0].data_len};
	char *req = tf_req_files("obama_1.jpg", NULL);
	struct authd_verify_out out;
	assert_int_equal(tf_verify(req, &rec, 1, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	free(req);
	tf_enroll_out_free(&en);
}

/* Enrollment keeps good images, refuses bad ones with their reasons. */
static void
test_enroll_mixed(void **unused)
{
	(void)unused;
	char *req = tf_req_files("obama_1.jpg", "multi_two_people.jpg", "obama_4.jpg", "biden_1.jpg", NULL);
	struct authd_enroll_out out;
	assert_int_equal(tf_enroll(req, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(out.n_records, 2); /* biden_1 is not the person of obama_1 */
	assert_int_equal(out.n_reasons, 2);
	assert_string_equal(out.reasons[0], "multiple_faces");
	assert_string_equal(out.reasons[1], "no_match");
	json_t *info = json_loads(out.info_json, 0, NULL);
	json_t *imgs = json_object_get(json_object_get(info, "quality"), "images");
	assert_int_equal(json_array_size(imgs), 4);
	assert_true(json_is_true(json_object_get(json_array_get(imgs, 0), "usable")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(imgs, 1), "reason")),
	                    "multiple_faces");
	json_decref(info);
	assert_memory_not_equal(out.records[0].id, out.records[1].id, 16);
	tf_enroll_out_free(&out);
	free(req);
}

/* All frames must match and show the same person. */
static void
test_multi_frame(void **unused)
{
	(void)unused;
	const struct authd_record *obama = template_of("obama_1.jpg");
	struct authd_verify_out out;
	char *req = tf_req_files("obama_2.jpg", "obama_4.jpg", "obama_5_480p.jpg", NULL);
	assert_int_equal(tf_verify(req, obama, 1, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	free(req);
	req = tf_req_files("obama_2.jpg", "biden_1.jpg", NULL);
	assert_int_equal(tf_verify(req, obama, 1, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	assert_true(tf_has_reason(&out, "no_match"));
	free(req);
	/* more frames than max_images (3) is a malformed request */
	req = tf_req_files("obama_2.jpg", "obama_4.jpg", "obama_5_480p.jpg", "obama_3.jpg", NULL);
	assert_int_equal(tf_verify(req, obama, 1, &out), AUTHD_ERR_BAD_REQUEST);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	free(req);
}

/* Records not made by this plugin are ignored; none valid is an error. */
static void
test_tampered_records(void **unused)
{
	(void)unused;
	const struct authd_record *obama = template_of("obama_1.jpg");
	uint8_t bad[8 + 4 * 512];
	memcpy(bad, obama->data, sizeof(bad));
	struct authd_verify_out out;
	char *req = tf_req_files("obama_2.jpg", NULL);

	struct authd_record r = *obama;
	r.data = bad;
	bad[0] = 2; /* unknown version */
	assert_int_equal(tf_verify(req, &r, 1, &out), AUTHD_ERR_TAMPERED);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	bad[0] = 1;
	bad[8 + 3] ^= 0x40; /* exponent of the first value: no longer unit length */
	assert_int_equal(tf_verify(req, &r, 1, &out), AUTHD_ERR_TAMPERED);
	r.data_len = 100;
	assert_int_equal(tf_verify(req, &r, 1, &out), AUTHD_ERR_TAMPERED);
	r.data_len = sizeof(bad);

	struct authd_record two[2] = {r, *obama};
	assert_int_equal(tf_verify(req, two, 2, &out), 0);
	assert_int_equal(out.verdict, AUTHD_VERDICT_APPROVE);
	assert_int_equal(out.record_index, 1);

	assert_int_equal(tf_verify(req, NULL, 0, &out), AUTHD_ERR_NOT_FOUND);
	assert_int_equal(out.verdict, AUTHD_VERDICT_DENY);
	free(req);
}

/* compare and check: the members behind authctl face-score / face-check. */
static void
test_compare_check(void **unused)
{
	(void)unused;
	size_t la, lb;
	uint8_t *a = tf_read("obama_1.jpg", &la), *b = tf_read("obama_2.jpg", &lb);
	double score = -1;
	int match = -1;
	const char *reason = "x";
	assert_int_equal(tf_api->compare(tf_state, a, la, b, lb, &score, &match, &reason), 0);
	assert_null(reason);
	assert_int_equal(match, 1);
	assert_true(score > 0.4);
	free(b);
	b = tf_read("multi_two_people.jpg", &lb);
	assert_int_equal(tf_api->compare(tf_state, a, la, b, lb, &score, &match, &reason), 0);
	assert_string_equal(reason, "multiple_faces");
	assert_int_equal(match, 0);
	free(b);

	/* EXIF orientation is honoured: live_1.jpg is stored 640x480, shown 480x640 */
	b = tf_read("live_1.jpg", &lb);
	char *json = NULL;
	assert_int_equal(tf_api->check(tf_state, b, lb, &json), 0);
	json_t *o = json_loads(json, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "width")), 480);
	assert_int_equal(json_integer_value(json_object_get(o, "height")), 640);
	assert_true(json_is_true(json_object_get(o, "usable")));
	assert_true(json_is_true(json_object_get(o, "liveness_pass")));
	json_decref(o);
	free(json);
	free(b);
	b = tf_read("spoof_1.jpg", &lb);
	assert_int_equal(tf_api->check(tf_state, b, lb, &json), 0);
	o = json_loads(json, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(o, "reason")), "presentation_attack");
	json_decref(o);
	free(json);
	free(b);
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_abi),           cmocka_unit_test(test_enroll_dev_set),
	    cmocka_unit_test(test_dev_pairs),     cmocka_unit_test(test_best_template),
	    cmocka_unit_test(test_liveness),      cmocka_unit_test(test_multiple_faces),
	    cmocka_unit_test(test_alpha_png),     cmocka_unit_test(test_enroll_mixed),
	    cmocka_unit_test(test_multi_frame),   cmocka_unit_test(test_tampered_records),
	    cmocka_unit_test(test_compare_check),
	};
	return cmocka_run_group_tests_name("face", tests, group_setup, group_teardown);
}
