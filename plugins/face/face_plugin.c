/*
 * The face authenticator plugin: the authd_plugin ABI (plugins/authd_plugin.h)
 * over the C++ pipeline in face_pipeline.cc. This file owns request parsing
 * (jansson), base64url decoding, quality/liveness/match decisions and the
 * template record format; it never writes an image or embedding anywhere
 * and wipes every copy it makes.
 *
 * Threading: init/fini from the main thread; enroll, verify, compare and
 * check from any number of worker threads at once (the pipeline pools its
 * networks; everything here is per-call).
 *
 * Template record (authd_new_record.data), little-endian:
 *   u8 version (1) | u8 flags (0) | u16 dim (512) |
 *   u8[4] model tag (first 4 bytes of fr_feature.onnx's SHA-256) |
 *   dim x float32 (L2-normalised embedding)            = 2056 bytes
 * The host encrypts it (AES-256-GCM, customer id as AAD) before storing.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authd_plugin.h"
#include "err.h"
#include "face_pipeline.h"
#include "util.h"

#ifndef AUTHD_BUILD_MODELS_DIR
#define AUTHD_BUILD_MODELS_DIR "build/share/authd/models"
#endif

/*
 * Defaults. The threshold is chosen for a false-match rate of 1e-4, not to
 * fit the dev set; docs/face.md gives the measurements and the reasoning.
 */
#define FACE_DEF_THRESHOLD 0.40
#define FACE_DEF_LIVE_THRESHOLD 0.60
#define FACE_DEF_MAX_IMAGES 3
#define FACE_ENROLL_MAX 5
#define FACE_MIN_FACE_PX 64.0
#define FACE_MULTI_RATIO 0.50
#define FACE_MIN_SHARPNESS 60.0
#define FACE_DET_THRESHOLD 0.70
#define FACE_MAX_SLOTS 4

#define REC_VERSION 1
#define REC_HDR 8
#define REC_LEN (REC_HDR + 4 * FACE_EMB_DIM)
static const uint8_t rec_model_tag[4] = {0x87, 0xaa, 0xcd, 0xfe};

struct face_state {
	const struct authd_plugin_host *host;
	struct face_pipeline *fp;
	double threshold;
	double live_threshold;
	int max_images;
	struct face_params params;
};

static void
face_log(const struct face_state *st, int prio, const char *msg)
{
	if (st != NULL && st->host != NULL && st->host->log != NULL)
		st->host->log(prio, msg);
	else
		fprintf(stderr, "%s\n", msg);
}

static const char *
face_config(const struct authd_plugin_host *host, const char *key)
{
	if (host == NULL || host->config == NULL)
		return NULL;
	return host->config("face", key);
}

/* Parses a number in [lo, hi] (lo excluded when lo_open); NULL/"" = def. */
static int
parse_num(const char *s, double def, double lo, double hi, int lo_open, double *out)
{
	char *end = NULL;
	double v;

	if (s == NULL || *s == '\0') {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi) || (lo_open && v == lo))
		return AUTHD_ERR_CONFIG;
	*out = v;
	return 0;
}

static int
parse_unit(const char *s, double def, double *out)
{
	return parse_num(s, def, 0.0, 0.999999, 1, out);
}

/* ---- base64url (RFC 4648 section 5), wiping every copy ---- */

static int
b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decodes base64url, padding tolerated at the end only. Returns
 * AUTHD_ERR_TOO_LARGE above max bytes, AUTHD_ERR_BAD_REQUEST on any other
 * defect. Caller frees *out with util_free_secret.
 */
static int
face_b64_decode(const char *in, size_t len, size_t max, uint8_t **out, size_t *outlen)
{
	uint8_t *buf;
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	*out = NULL;
	*outlen = 0;
	while (len > 0 && in[len - 1] == '=' && len % 4 != 1)
		len--;
	if (len % 4 == 1)
		return AUTHD_ERR_BAD_REQUEST;
	if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > max)
		return AUTHD_ERR_TOO_LARGE;
	if ((buf = malloc(len / 4 * 3 + 3)) == NULL)
		return AUTHD_ERR_NOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64_val((unsigned char)in[i]);
		if (v < 0) {
			util_free_secret(&buf, n);
			return AUTHD_ERR_BAD_REQUEST;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	acc = 0;
	*out = buf;
	*outlen = n;
	return 0;
}

/* ---- template records ---- */

static void
put_f32(uint8_t *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
	u = 0;
}

static float
get_f32(const uint8_t *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static int
rec_encode(const float *emb, uint8_t **out, size_t *outlen)
{
	uint8_t *d = malloc(REC_LEN);

	if (d == NULL)
		return AUTHD_ERR_NOMEM;
	d[0] = REC_VERSION;
	d[1] = 0;
	d[2] = (uint8_t)(FACE_EMB_DIM & 0xff);
	d[3] = (uint8_t)(FACE_EMB_DIM >> 8);
	memcpy(d + 4, rec_model_tag, 4);
	for (int i = 0; i < FACE_EMB_DIM; i++)
		put_f32(d + REC_HDR + 4 * i, emb[i]);
	*out = d;
	*outlen = REC_LEN;
	return 0;
}

/* Parses a stored template into emb; rejects anything not made by us. */
static int
rec_decode(const uint8_t *d, size_t len, float *emb)
{
	double n2 = 0;

	if (d == NULL || len != REC_LEN || d[0] != REC_VERSION || d[1] != 0 ||
	    (d[2] | d[3] << 8) != FACE_EMB_DIM || memcmp(d + 4, rec_model_tag, 4) != 0)
		return AUTHD_ERR_TAMPERED;
	for (int i = 0; i < FACE_EMB_DIM; i++) {
		emb[i] = get_f32(d + REC_HDR + 4 * i);
		if (!isfinite(emb[i]))
			return AUTHD_ERR_TAMPERED;
		n2 += (double)emb[i] * emb[i];
	}
	if (fabs(n2 - 1.0) > 1e-3)
		return AUTHD_ERR_TAMPERED;
	return 0;
}

/* ---- request parsing ---- */

struct face_req {
	json_t *root;
	json_t *images;
	size_t n;
};

/* Wipes the base64 text of every image inside jansson before freeing it. */
static void
face_req_free(struct face_req *r)
{
	if (r->images != NULL) {
		for (size_t i = 0; i < json_array_size(r->images); i++) {
			json_t *s = json_array_get(r->images, i);
			if (json_is_string(s))
				OPENSSL_cleanse((void *)(uintptr_t)json_string_value(s),
				                json_string_length(s));
		}
	}
	json_decref(r->root);
	r->root = r->images = NULL;
	r->n = 0;
}

static int
face_req_parse(const char *json, size_t len, size_t max_images, struct face_req *r)
{
	json_error_t jerr;

	memset(r, 0, sizeof(*r));
	if (json == NULL || len == 0)
		return AUTHD_ERR_BAD_REQUEST;
	r->root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (r->root == NULL || !json_is_object(r->root))
		goto bad;
	r->images = json_object_get(r->root, "images");
	if (!json_is_array(r->images))
		goto bad;
	r->n = json_array_size(r->images);
	if (r->n < 1 || r->n > max_images)
		goto bad;
	for (size_t i = 0; i < r->n; i++)
		if (!json_is_string(json_array_get(r->images, i)))
			goto bad;
	return 0;
bad:
	if (!json_is_array(r->images))
		r->images = NULL;
	face_req_free(r);
	return AUTHD_ERR_BAD_REQUEST;
}

/*
 * Decodes image i and runs the pipeline. Returns 0 with a->reason set (NULL:
 * usable) or a negative error for a malformed request.
 */
static int
face_analyze_b64(struct face_state *st, json_t *s, int want_live, struct face_analysis *a)
{
	uint8_t *img = NULL;
	size_t n = 0;
	int r;

	memset(a, 0, sizeof(*a));
	r = face_b64_decode(json_string_value(s), json_string_length(s), FACE_MAX_BYTES, &img, &n);
	if (r == AUTHD_ERR_TOO_LARGE) {
		a->reason = FACE_R_BAD_IMAGE;
		return 0;
	}
	if (r < 0)
		return r;
	r = face_pipeline_analyze(st->fp, img, n, want_live, a);
	util_free_secret(&img, n);
	return r;
}

static void
add_reason(const char **reasons, size_t *n, const char *why)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(reasons[i], why) == 0)
			return;
	if (*n < AUTHD_PLUGIN_MAX_REASONS)
		reasons[(*n)++] = why;
}

/* Quality figures of one image, for enroll's info_json and check. */
static json_t *
quality_json(const struct face_analysis *a, double live_thr)
{
	json_t *q = json_object();

	if (q == NULL)
		return NULL;
	json_object_set_new(q, "usable", json_boolean(a->reason == NULL));
	if (a->reason != NULL)
		json_object_set_new(q, "reason", json_string(a->reason));
	if (a->format != NULL)
		json_object_set_new(q, "format", json_string(a->format));
	json_object_set_new(q, "width", json_integer(a->width));
	json_object_set_new(q, "height", json_integer(a->height));
	json_object_set_new(q, "faces", json_integer(a->n_faces));
	if (a->n_faces > 0) {
		json_object_set_new(q, "detection_score", json_real(round(a->det_score * 1000) / 1000));
		json_object_set_new(
		    q, "box",
		    json_pack("[iiii]", (int)a->box[0], (int)a->box[1], (int)a->box[2], (int)a->box[3]));
		json_object_set_new(q, "face_size", json_integer((json_int_t)lround(a->face_px)));
		json_object_set_new(q, "second_face_ratio", json_real(round(a->second_ratio * 1000) / 1000));
	}
	if (a->emb_done) {
		json_object_set_new(q, "sharpness", json_real(round(a->sharpness * 10) / 10));
		json_object_set_new(q, "yaw", json_real(round(a->yaw_ratio * 1000) / 1000));
	}
	if (a->live_done) {
		json_object_set_new(q, "attack_score", json_real(round(a->attack * 10000) / 10000));
		json_object_set_new(q, "liveness_pass", json_boolean(a->attack < live_thr));
	}
	return q;
}

/* ---- ABI entry points ---- */

static int
face_init(const struct authd_plugin_host *host, void **state)
{
	struct face_state *st;
	struct face_params p = {
	    .min_face_px = FACE_MIN_FACE_PX,
	    .multi_ratio = FACE_MULTI_RATIO,
	    .min_sharpness = FACE_MIN_SHARPNESS,
	    .det_threshold = FACE_DET_THRESHOLD,
	};
	char err[1024];
	const char *s;
	long ncpu;
	int slots, r;

	*state = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return AUTHD_ERR_NOMEM;
	st->host = host;
	st->max_images = FACE_DEF_MAX_IMAGES;
	if (parse_unit(face_config(host, "threshold"), FACE_DEF_THRESHOLD, &st->threshold) < 0) {
		face_log(st, LOG_ERR, "face: [face] threshold must be a number between 0 and 1");
		r = AUTHD_ERR_CONFIG;
		goto fail;
	}
	if (parse_unit(face_config(host, "liveness_threshold"), FACE_DEF_LIVE_THRESHOLD,
	               &st->live_threshold) < 0) {
		face_log(st, LOG_ERR, "face: [face] liveness_threshold must be a number between 0 and 1");
		r = AUTHD_ERR_CONFIG;
		goto fail;
	}
	if ((s = face_config(host, "max_images")) != NULL && *s != '\0') {
		char *end = NULL;
		long v = strtol(s, &end, 10);
		if (end == s || *end != '\0' || v < 1 || v > FACE_ENROLL_MAX) {
			face_log(st, LOG_ERR, "face: [face] max_images must be 1..5");
			r = AUTHD_ERR_CONFIG;
			goto fail;
		}
		st->max_images = (int)v;
	}
	/*
	 * Quality gates. DESIGN.md section 3 lists no keys for them; these are
	 * read when the host's configuration layer knows them (an extension:
	 * [face] multi_face_ratio, min_face_size, min_sharpness), else defaults.
	 */
	if (parse_num(face_config(host, "multi_face_ratio"), FACE_MULTI_RATIO, 0.0, 1.0, 1, &p.multi_ratio) <
	        0 ||
	    parse_num(face_config(host, "min_face_size"), FACE_MIN_FACE_PX, 16.0, FACE_MAX_SIDE, 0,
	              &p.min_face_px) < 0 ||
	    parse_num(face_config(host, "min_sharpness"), FACE_MIN_SHARPNESS, 0.0, 1e6, 0, &p.min_sharpness) <
	        0) {
		face_log(st, LOG_ERR,
		         "face: [face] multi_face_ratio must be in (0,1], min_face_size in 16..4096, "
		         "min_sharpness >= 0");
		r = AUTHD_ERR_CONFIG;
		goto fail;
	}
	st->params = p;
	if ((s = face_config(host, "models_dir")) == NULL || *s == '\0')
		s = AUTHD_BUILD_MODELS_DIR;

	/*
	 * One net set per CPU: a verify runs on the calling worker's thread
	 * with OpenCV's own thread pool off (see face_pipeline_set_threads),
	 * so more sets than cores only cost memory.
	 */
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	slots = ncpu < 1 ? 1 : ncpu > FACE_MAX_SLOTS ? FACE_MAX_SLOTS : (int)ncpu;
	face_pipeline_set_threads(getenv("AUTHD_FACE_CV_THREADS"));
	r = face_pipeline_load(s, slots, &p, &st->fp, err, sizeof(err));
	if (r < 0) {
		face_log(st, LOG_ERR, err);
		goto fail;
	}
	*state = st;
	return 0;
fail:
	free(st);
	return r;
}

static void
face_fini(void *state)
{
	struct face_state *st = state;

	if (st == NULL)
		return;
	face_pipeline_free(&st->fp);
	free(st);
}

static int
face_enroll(void *state, const struct authd_enroll_in *in, struct authd_enroll_out *out)
{
	struct face_state *st = state;
	struct face_req req;
	struct face_analysis *a = NULL;
	float *first = NULL;
	json_t *info = NULL, *list = NULL;
	int r;

	if (out == NULL || out->size < sizeof(*out))
		return AUTHD_ERR_BAD_REQUEST;
	out->verdict = AUTHD_VERDICT_DENY;
	if (st == NULL || in == NULL || in->size < sizeof(*in))
		return AUTHD_ERR_BAD_REQUEST;
	if ((r = face_req_parse(in->request_json, in->request_len, FACE_ENROLL_MAX, &req)) < 0)
		return r;
	a = malloc(sizeof(*a));
	first = malloc(sizeof(float) * FACE_EMB_DIM);
	info = json_object();
	list = json_array();
	if (a == NULL || first == NULL || info == NULL || list == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < req.n; i++) {
		if ((r = face_analyze_b64(st, json_array_get(req.images, i), 1, a)) < 0)
			goto out;
		/* All enrolled images must show one person: the first accepted. */
		if (a->reason == NULL && out->n_records > 0 && face_cosine(first, a->emb) < st->threshold)
			a->reason = FACE_R_NO_MATCH;
		json_t *q = quality_json(a, st->live_threshold);
		if (q == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		json_object_set_new(q, "index", json_integer((json_int_t)i));
		json_array_append_new(list, q);
		if (a->reason != NULL) {
			add_reason(out->reasons, &out->n_reasons, a->reason);
			face_analysis_wipe(a);
			continue;
		}
		struct authd_new_record *rec = &out->records[out->n_records];
		if ((rec->id = malloc(16)) == NULL) {
			r = AUTHD_ERR_NOMEM;
			goto out;
		}
		rec->id_len = 16;
		if ((r = util_random(rec->id, 16)) < 0 ||
		    (r = rec_encode(a->emb, &rec->data, &rec->data_len)) < 0) {
			free(rec->id);
			rec->id = NULL;
			rec->id_len = 0;
			goto out;
		}
		if (out->n_records == 0)
			memcpy(first, a->emb, sizeof(float) * FACE_EMB_DIM);
		out->n_records++;
		face_analysis_wipe(a);
	}
	json_object_set_new(info, "quality",
	                    json_pack("{s:O,s:i}", "images", list, "accepted", (int)out->n_records));
	out->info_json = json_dumps(info, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (out->info_json == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if (out->n_records > 0)
		out->verdict = AUTHD_VERDICT_APPROVE;
	r = 0;
out:
	if (r < 0) {
		for (size_t i = 0; i < out->n_records; i++) {
			util_free_secret(&out->records[i].data, out->records[i].data_len);
			free(out->records[i].id);
			memset(&out->records[i], 0, sizeof(out->records[i]));
		}
		out->n_records = 0;
		out->verdict = AUTHD_VERDICT_DENY;
	}
	if (a != NULL)
		face_analysis_wipe(a);
	free(a);
	if (first != NULL)
		OPENSSL_cleanse(first, sizeof(float) * FACE_EMB_DIM);
	free(first);
	json_decref(list);
	json_decref(info);
	face_req_free(&req);
	return r;
}

static int
face_verify(void *state, const struct authd_verify_in *in, struct authd_verify_out *out)
{
	struct face_state *st = state;
	struct face_req req;
	struct face_analysis *a = NULL;
	float *tmpl = NULL, *frames = NULL;
	size_t n_tmpl = 0, n_frames = 0;
	long *tmpl_idx = NULL;
	double worst = 2.0, best_all = -2.0;
	long best_rec = -1;
	const char *fail = NULL;
	int r;

	if (out == NULL || out->size < sizeof(*out))
		return AUTHD_ERR_BAD_REQUEST;
	out->verdict = AUTHD_VERDICT_DENY;
	out->record_index = -1;
	out->score = 0;
	if (st == NULL || in == NULL || in->size < sizeof(*in))
		return AUTHD_ERR_BAD_REQUEST;
	if (in->n_records == 0 || in->records == NULL)
		return AUTHD_ERR_NOT_FOUND;
	if ((r = face_req_parse(in->request_json, in->request_len, (size_t)st->max_images, &req)) < 0)
		return r;
	tmpl = malloc(sizeof(float) * FACE_EMB_DIM * in->n_records);
	tmpl_idx = malloc(sizeof(long) * in->n_records);
	frames = malloc(sizeof(float) * FACE_EMB_DIM * req.n);
	a = malloc(sizeof(*a));
	if (tmpl == NULL || tmpl_idx == NULL || frames == NULL || a == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < in->n_records; i++) {
		if (rec_decode(in->records[i].data, in->records[i].data_len, tmpl + FACE_EMB_DIM * n_tmpl) <
		    0) {
			face_log(st, LOG_WARNING, "face: ignoring a template that is not a v1 face record");
			continue;
		}
		tmpl_idx[n_tmpl++] = (long)i;
	}
	if (n_tmpl == 0) {
		r = AUTHD_ERR_TAMPERED;
		goto out;
	}
	for (size_t f = 0; f < req.n && fail == NULL; f++) {
		if ((r = face_analyze_b64(st, json_array_get(req.images, f), 1, a)) < 0)
			goto out;
		if (a->reason != NULL) {
			fail = a->reason;
		} else if (!(a->attack < st->live_threshold)) {
			fail = FACE_R_ATTACK;
		} else {
			double best = -2.0;
			long bi = -1;
			for (size_t t = 0; t < n_tmpl; t++) {
				double c = face_cosine(a->emb, tmpl + FACE_EMB_DIM * t);
				if (c > best) {
					best = c;
					bi = tmpl_idx[t];
				}
			}
			if (best < worst)
				worst = best;
			if (best > best_all) {
				best_all = best;
				best_rec = bi;
			}
			if (best < st->threshold)
				fail = FACE_R_NO_MATCH;
			/* Every frame must show the same person as every other. */
			for (size_t g = 0; g < n_frames && fail == NULL; g++)
				if (face_cosine(a->emb, frames + FACE_EMB_DIM * g) < st->threshold)
					fail = FACE_R_NO_MATCH;
			memcpy(frames + FACE_EMB_DIM * n_frames++, a->emb, sizeof(float) * FACE_EMB_DIM);
		}
		face_analysis_wipe(a);
	}
	/* The decision rests on the weakest frame: report that score. */
	out->score = worst <= 1.0 ? worst : 0.0;
	if (fail != NULL) {
		add_reason(out->reasons, &out->n_reasons, fail);
	} else {
		out->verdict = AUTHD_VERDICT_APPROVE;
		out->amr = AUTHD_AMR_FACE;
		out->record_index = best_rec;
	}
	r = 0;
out:
	if (r < 0) {
		out->verdict = AUTHD_VERDICT_DENY;
		out->record_index = -1;
	}
	if (a != NULL)
		face_analysis_wipe(a);
	free(a);
	if (tmpl != NULL)
		OPENSSL_cleanse(tmpl, sizeof(float) * FACE_EMB_DIM * in->n_records);
	free(tmpl);
	if (frames != NULL)
		OPENSSL_cleanse(frames, sizeof(float) * FACE_EMB_DIM * req.n);
	free(frames);
	free(tmpl_idx);
	face_req_free(&req);
	return r;
}

static int
face_compare(void *state, const uint8_t *img_a, size_t alen, const uint8_t *img_b, size_t blen, double *score,
             int *match, const char **reason)
{
	struct face_state *st = state;
	struct face_analysis *a = NULL, *b = NULL;
	int r;

	if (score != NULL)
		*score = 0;
	if (match != NULL)
		*match = 0;
	if (reason != NULL)
		*reason = NULL;
	if (st == NULL || score == NULL || match == NULL || reason == NULL)
		return AUTHD_ERR_BAD_REQUEST;
	a = malloc(sizeof(*a));
	b = malloc(sizeof(*b));
	if (a == NULL || b == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	if ((r = face_pipeline_analyze(st->fp, img_a, alen, 0, a)) < 0)
		goto out;
	if (a->reason != NULL) {
		*reason = a->reason;
		goto out;
	}
	if ((r = face_pipeline_analyze(st->fp, img_b, blen, 0, b)) < 0)
		goto out;
	if (b->reason != NULL) {
		*reason = b->reason;
		goto out;
	}
	*score = face_cosine(a->emb, b->emb);
	*match = *score >= st->threshold;
out:
	if (a != NULL)
		face_analysis_wipe(a);
	if (b != NULL)
		face_analysis_wipe(b);
	free(a);
	free(b);
	return r;
}

static int
face_check(void *state, const uint8_t *img, size_t len, char **json_out)
{
	struct face_state *st = state;
	struct face_analysis *a = NULL;
	json_t *q = NULL;
	int r;

	if (json_out == NULL)
		return AUTHD_ERR_BAD_REQUEST;
	*json_out = NULL;
	if (st == NULL)
		return AUTHD_ERR_BAD_REQUEST;
	if ((a = malloc(sizeof(*a))) == NULL)
		return AUTHD_ERR_NOMEM;
	if ((r = face_pipeline_analyze(st->fp, img, len, 1, a)) < 0)
		goto out;
	/* The decision verify would take on this frame alone (match aside). */
	if (a->reason == NULL && a->live_done && !(a->attack < st->live_threshold))
		a->reason = FACE_R_ATTACK;
	if ((q = quality_json(a, st->live_threshold)) == NULL) {
		r = AUTHD_ERR_NOMEM;
		goto out;
	}
	json_object_set_new(q, "thresholds",
	                    json_pack("{s:f,s:f,s:f,s:f,s:f}", "match", st->threshold, "liveness",
	                              st->live_threshold, "min_face_size", st->params.min_face_px,
	                              "min_sharpness", st->params.min_sharpness, "multi_face_ratio",
	                              st->params.multi_ratio));
	if ((*json_out = json_dumps(q, JSON_COMPACT | JSON_REAL_PRECISION(6))) == NULL)
		r = AUTHD_ERR_NOMEM;
out:
	json_decref(q);
	if (a != NULL)
		face_analysis_wipe(a);
	free(a);
	return r;
}

__attribute__((visibility("default"))) const struct authd_plugin authd_plugin_v1 = {
    .abi = AUTHD_PLUGIN_ABI,
    .size = sizeof(struct authd_plugin),
    .name = "face",
    .init = face_init,
    .enroll = face_enroll,
    .verify = face_verify,
    .fini = face_fini,
    .compare = face_compare,
    .check = face_check,
};
