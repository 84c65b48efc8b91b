/*
 * authd-face-bench: how fast is a full face verify?
 *
 *   authd-face-bench [-m seq|par|all] [-n N] [-t SECONDS] [IMAGE]
 *
 * IMAGE defaults to $AUTHD_FACES_DIR/live_1.jpg (a 640x480 JPEG). The
 * benchmark enrolls IMAGE once, then times the plugin's verify op exactly as
 * the daemon calls it: JSON parse + base64url decode + image decode +
 * detect + landmarks + align + embed + liveness + match.
 *
 *  seq: N sequential verifies, median and p99 latency (run it under
 *       `taskset -c 0` for the one-core figure, as bench/face.sh does);
 *  par: two threads verify concurrently for SECONDS: verifies/s;
 *  and the resident memory (VmRSS, VmHWM) with the models loaded.
 *
 * The plugin's own OpenCV thread count follows AUTHD_FACE_CV_THREADS
 * (default 1); bench/face.sh runs the comparison.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authd_plugin.h"
#include "err.h"
#include "util.h"

static const struct authd_plugin *api;
static void *state;
static char *request;
static struct authd_record rec;
static volatile int stop;

static void
host_log(int prio, const char *msg)
{
	(void)prio;
	fprintf(stderr, "face: %s\n", msg);
}

static const char *
host_config(const char *section, const char *key)
{
	(void)section;
	(void)key;
	return NULL;
}

static const struct authd_plugin_host host = {
    .abi = AUTHD_PLUGIN_ABI,
    .size = sizeof(struct authd_plugin_host),
    .log = host_log,
    .config = host_config,
};

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
one_verify(void)
{
	struct authd_verify_in in;
	struct authd_verify_out out;

	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.size = sizeof(in);
	in.subject = "bench";
	in.request_json = request;
	in.request_len = strlen(request);
	in.records = &rec;
	in.n_records = 1;
	out.size = sizeof(out);
	if (api->verify(state, &in, &out) != 0 || out.verdict != AUTHD_VERDICT_APPROVE)
		return -1;
	return 0;
}

/* CPU time of the calling thread: unaffected by other processes' load. */
static double
cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void *
worker(void *arg)
{
	long *count = arg;
	while (!stop) {
		if (one_verify() < 0) {
			fprintf(stderr, "verify failed\n");
			exit(1);
		}
		(*count)++;
	}
	return NULL;
}

static void
print_mem(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0 || strncmp(line, "VmHWM:", 6) == 0)
			printf("%s", line);
	fclose(f);
}

int
main(int argc, char **argv)
{
	int n = 200, opt, mode_seq = 1, mode_par = 1;
	double secs = 10;
	char path[4096], plugin[4096];
	const char *img_path, *dir;

	while ((opt = getopt(argc, argv, "n:t:m:")) != -1) {
		if (opt == 'm') {
			mode_seq = strcmp(optarg, "par") != 0;
			mode_par = strcmp(optarg, "seq") != 0;
		} else if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 't')
			secs = atof(optarg);
		else {
			fprintf(stderr,
			        "usage: authd-face-bench [-m seq|par|all] [-n N] [-t SECONDS] [IMAGE]\n");
			return 2;
		}
	}
	if (n < 10)
		n = 10;
	if (optind < argc) {
		img_path = argv[optind];
	} else {
		const char *fd = getenv("AUTHD_FACES_DIR");
		snprintf(path, sizeof(path), "%s/live_1.jpg", fd != NULL && *fd ? fd : AUTHD_FACES_DEFAULT);
		img_path = path;
	}
	dir = getenv("AUTHD_PLUGIN_DIR");
	snprintf(plugin, sizeof(plugin), "%s/face.so", dir != NULL && *dir ? dir : AUTHD_BUILD_PLUGIN_DIR);

	void *dl = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL || (api = dlsym(dl, AUTHD_PLUGIN_SYMBOL)) == NULL) {
		fprintf(stderr, "cannot load %s: %s\n", plugin, dlerror());
		return 1;
	}
	double t0 = now_ms();
	if (api->init(&host, &state) != 0)
		return 1;
	double t_init = now_ms() - t0;

	uint8_t *img = NULL;
	size_t len = 0;
	if (util_read_file(img_path, 16u << 20, &img, &len) != 0) {
		fprintf(stderr, "cannot read %s\n", img_path);
		return 1;
	}
	char *b64 = b64url_encode(img, len);
	size_t rlen = strlen(b64) + 32;
	request = malloc(rlen);
	snprintf(request, rlen, "{\"images\":[\"%s\"]}", b64);
	free(b64);
	free(img);

	struct authd_enroll_in ein;
	struct authd_enroll_out eout;
	memset(&ein, 0, sizeof(ein));
	memset(&eout, 0, sizeof(eout));
	ein.size = sizeof(ein);
	ein.subject = "bench";
	ein.request_json = request;
	ein.request_len = strlen(request);
	eout.size = sizeof(eout);
	if (api->enroll(state, &ein, &eout) != 0 || eout.n_records != 1) {
		fprintf(stderr, "enroll of %s failed (%s)\n", img_path,
		        eout.n_reasons ? eout.reasons[0] : "?");
		return 1;
	}
	rec.id = eout.records[0].id;
	rec.id_len = eout.records[0].id_len;
	rec.data = eout.records[0].data;
	rec.data_len = eout.records[0].data_len;

	printf("image: %s (%zu bytes)\nmodel load + warm-up: %.0f ms\n", img_path, len, t_init);
	print_mem();

	/* 1. sequential verifies (one core when started under taskset -c 0) */
	cpu_set_t cpus;
	sched_getaffinity(0, sizeof(cpus), &cpus);
	if (mode_seq) {
		double *lat = calloc((size_t)n, sizeof(double)), *cpu = calloc((size_t)n, sizeof(double));
		for (int i = 0; i < 5; i++)
			(void)one_verify();
		for (int i = 0; i < n; i++) {
			double s0 = now_ms(), c0 = cpu_ms();
			if (one_verify() < 0) {
				fprintf(stderr, "verify failed\n");
				return 1;
			}
			lat[i] = now_ms() - s0;
			cpu[i] = cpu_ms() - c0;
		}
		qsort(lat, (size_t)n, sizeof(double), cmp_double);
		qsort(cpu, (size_t)n, sizeof(double), cmp_double);
		int p99 = (int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1;
		printf("%d CPU(s), %d sequential verifies: wall median %.2f ms, p99 %.2f ms, min %.2f ms; "
		       "thread CPU median %.2f ms, p99 %.2f ms\n",
		       CPU_COUNT(&cpus), n, lat[n / 2], lat[p99], lat[0], cpu[n / 2], cpu[p99]);
		free(lat);
		free(cpu);
	}

	/* 2. two threads verifying concurrently */
	if (mode_par) {
		pthread_t th[2];
		long counts[2] = {0, 0};
		double s = now_ms();
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, worker, &counts[i]);
		usleep((useconds_t)(secs * 1e6));
		stop = 1;
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		double el = (now_ms() - s) / 1e3;
		printf("two threads, %d CPU(s): %ld verifies in %.1f s = %.1f verifies/s\n", CPU_COUNT(&cpus),
		       counts[0] + counts[1], el, (counts[0] + counts[1]) / el);
	}
	print_mem();

	util_free_secret(&eout.records[0].data, eout.records[0].data_len);
	free(eout.records[0].id);
	free(eout.info_json);
	free(request);
	api->fini(state);
	dlclose(dl);
	return 0;
}
