/*
 * Face pipeline (C++ inside the face plugin): decode -> detect -> 68-point
 * landmarks -> 5-point similarity alignment -> embedding, plus quality
 * figures and the presentation-attack (liveness) score. DESIGN.md section 7.
 *
 * Threading: face_pipeline_load/free from one thread; face_pipeline_analyze
 * from any number of threads at once. The models are loaded once; each
 * cv::dnn::Net is not safe for concurrent forward(), so the pipeline keeps a
 * small pool of net sets ("slots"), each guarded by the pool's mutex: a
 * caller borrows a free slot for one analysis and returns it.
 */
#ifndef AUTHD_FACE_PIPELINE_H
#define AUTHD_FACE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#define FACE_EMB_DIM 512
#define FACE_MAX_BYTES (8u * 1024u * 1024u) /* encoded image limit */
#define FACE_MAX_SIDE 4096                  /* pixels, either side */
/*
 * Pixels (width x height) of an accepted image: 12.6 MP, 4096 x 3072 (a
 * 12 MP phone photo is 4032 x 3024; a chip portrait or a 600 dpi ID-card
 * scan is far smaller). Decoded, that is 38 MB of BGR, 50 MB of RGBA.
 * docs/deploy/authd.service sets OPENCV_IO_MAX_IMAGE_PIXELS to the same.
 */
#define FACE_MAX_PIXELS (4096u * 3072u)

/* Quality/decision reasons (static strings, the wire vocabulary). */
#define FACE_R_NO_FACE "no_face"
#define FACE_R_MULTIPLE "multiple_faces"
#define FACE_R_TOO_SMALL "face_too_small"
#define FACE_R_BLURRY "too_blurry"
#define FACE_R_BAD_IMAGE "bad_image"
#define FACE_R_ATTACK "presentation_attack"
#define FACE_R_NO_MATCH "no_match"

struct face_params {
	double min_face_px;   /* smallest accepted face box side, pixels */
	double multi_ratio;   /* 2nd face side / largest side above this: multiple_faces */
	double min_sharpness; /* variance of Laplacian of the aligned face */
	double det_threshold; /* detector score for a face */
};

/* Everything one image yields. Zero it with face_analysis_wipe. */
struct face_analysis {
	const char *reason; /* NULL when the face is usable, else FACE_R_* */
	int width, height;  /* decoded (orientation applied) */
	const char *format; /* "jpeg", "png", "jp2", "j2k" or NULL */
	int n_faces;
	float det_score;
	float box[4];       /* x1 y1 x2 y2 of the chosen face, pixels */
	float face_px;      /* chosen face box side */
	float second_ratio; /* second largest face side / largest, 0 if one */
	float sharpness;
	float yaw_ratio;     /* informational: nose offset between eyes, -1..1 */
	int live_done;       /* liveness computed */
	float attack;        /* probability of presentation attack, 0..1 */
	float live_probs[3]; /* softmax of the liveness model's 3 classes */
	int emb_done;
	float emb[FACE_EMB_DIM]; /* L2-normalised */
};

struct face_pipeline;

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Loads the four models from dir into `slots` net sets. On a missing model
 * writes a message naming the file and the fetch command into err.
 * Caller frees with face_pipeline_free.
 */
int face_pipeline_load(const char *dir, int slots, const struct face_params *p, struct face_pipeline **out,
                       char *err, size_t errlen);
void face_pipeline_free(struct face_pipeline **pp);

/*
 * Analyses one encoded image (lent). Returns 0 with a->reason set (NULL =
 * usable face with embedding and liveness), or a negative authd_err when it
 * could not run at all. Every intermediate image is wiped before return.
 */
int face_pipeline_analyze(struct face_pipeline *fp, const uint8_t *img, size_t len, int want_liveness,
                          struct face_analysis *a);

/*
 * Sets OpenCV's own worker-thread count (process-wide): NULL or "" = 1.
 * See docs/face.md: the daemon's worker pool provides the parallelism.
 */
void face_pipeline_set_threads(const char *n);

/*
 * Probes the container header: format and size without decoding pixels.
 * Returns 0, AUTHD_ERR_TOO_LARGE over FACE_MAX_SIDE / FACE_MAX_PIXELS (with
 * *format, *w and *h set), AUTHD_ERR_UNSUPPORTED for a format or variant not
 * accepted (16-bit PNG; anything with "DICM" at offset 128), or another
 * negative authd_err for a malformed or truncated header. *format is a
 * static string.
 */
int face_image_probe(const uint8_t *img, size_t len, const char **format, int *w, int *h);

void face_analysis_wipe(struct face_analysis *a);

/* Cosine of two L2-normalised embeddings. */
double face_cosine(const float *a, const float *b);

#ifdef __cplusplus
}
#endif

#endif
