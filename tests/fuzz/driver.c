/*
 * Standalone driver for builds without libFuzzer (gcc): runs a target's
 * LLVMFuzzerTestOneInput over every file of the corpus directories or files
 * named on the command line, then over N deterministic mutations of them
 * (bit flips, byte sets, interesting values, inserts, deletes, block
 * duplication, splices), seeded by -seed. Same flags spelling as libFuzzer
 * for the few it takes: -runs=N -seed=S -max_len=L. A crash aborts the
 * process (ctest reports it); the input is written to ./crash-driver-<n>.
 *
 *   fuzz_txn -runs=2000 -seed=1 tests/fuzz/corpus/txn
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

struct input {
	uint8_t *p;
	size_t n;
};

static struct input *inputs;
static size_t n_inputs, cap_inputs;
static uint64_t rng_state;
static const uint8_t *cur_data;
static size_t cur_size;

__attribute__((weak)) int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static uint64_t
rnd(void)
{
	uint64_t x = (rng_state += 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void
add_input(uint8_t *p, size_t n)
{
	if (n_inputs == cap_inputs) {
		cap_inputs = cap_inputs ? cap_inputs * 2 : 64;
		inputs = realloc(inputs, cap_inputs * sizeof *inputs);
		if (inputs == NULL)
			abort();
	}
	inputs[n_inputs].p = p;
	inputs[n_inputs].n = n;
	n_inputs++;
}

static void
load_file(const char *path, size_t max_len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return;
	uint8_t *p = malloc(max_len ? max_len : 1);
	if (p == NULL)
		abort();
	size_t n = fread(p, 1, max_len, f);
	fclose(f);
	add_input(p, n);
}

static void
load_path(const char *path, size_t max_len)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		/* a missing seed corpus would silently turn the smoke run into mutations of nothing */
		fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	if (!S_ISDIR(st.st_mode)) {
		load_file(path, max_len);
		return;
	}
	struct dirent **ents;
	int n = scandir(path, &ents, NULL, alphasort); /* sorted: deterministic order */
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			char sub[4096];
			snprintf(sub, sizeof sub, "%s/%s", path, ents[i]->d_name);
			load_path(sub, max_len);
		}
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
}

static size_t
mutate(uint8_t *p, size_t n, size_t max_len)
{
	static const uint8_t interesting[] = {0,   1,   0x7f, 0x80, 0xff, '"', '\\', '{', '}', '[', ']', ',',
	                                      ':', '.', '|',  '\n', '=',  ';', '#',  '-', '0', '9', 'e'};
	int rounds = 1 + (int)(rnd() % 4);
	for (int r = 0; r < rounds; r++) {
		size_t pos = n ? (size_t)(rnd() % n) : 0;
		switch (rnd() % 8) {
		case 0: /* bit flip */
			if (n)
				p[pos] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1: /* random byte */
			if (n)
				p[pos] = (uint8_t)rnd();
			break;
		case 2: /* interesting byte */
			if (n)
				p[pos] = interesting[rnd() % sizeof interesting];
			break;
		case 3: /* insert */
			if (n < max_len) {
				memmove(p + pos + 1, p + pos, n - pos);
				p[pos] =
				    (rnd() & 1) ? (uint8_t)rnd() : interesting[rnd() % sizeof interesting];
				n++;
			}
			break;
		case 4: { /* delete a run */
			if (n == 0)
				break;
			size_t k = 1 + (size_t)(rnd() % 8);
			if (k > n - pos)
				k = n - pos;
			memmove(p + pos, p + pos + k, n - pos - k);
			n -= k;
			break;
		}
		case 5: { /* duplicate a block */
			if (n == 0)
				break;
			size_t k = 1 + (size_t)(rnd() % 16);
			if (k > n - pos)
				k = n - pos;
			if (n + k > max_len)
				break;
			memmove(p + pos + k, p + pos, n - pos);
			n += k;
			break;
		}
		case 6: { /* splice from another input */
			const struct input *o = &inputs[rnd() % n_inputs];
			if (o->n == 0)
				break;
			size_t from = (size_t)(rnd() % o->n);
			size_t k = 1 + (size_t)(rnd() % 32);
			if (k > o->n - from)
				k = o->n - from;
			if (pos + k > max_len)
				break;
			memcpy(p + pos, o->p + from, k);
			if (pos + k > n)
				n = pos + k;
			break;
		}
		default: /* truncate */
			n = pos;
			break;
		}
	}
	return n;
}

static void
run_one(const uint8_t *p, size_t n, unsigned long idx)
{
	/* Copy into an exact-size buffer so ASan sees overreads. */
	uint8_t *c = malloc(n ? n : 1);
	if (c == NULL)
		abort();
	memcpy(c, p, n);
	cur_data = c;
	cur_size = n;
	(void)idx;
	LLVMFuzzerTestOneInput(c, n);
	free(c);
	cur_data = NULL;
}

static void
on_abort(int sig)
{
	signal(sig, SIG_DFL); /* once: a SIGSEGV handler that returns would fault again forever */
	if (cur_data != NULL) {
		FILE *f = fopen("crash-driver-input", "wb");
		if (f) {
			fwrite(cur_data, 1, cur_size, f);
			fclose(f);
			fprintf(stderr, "driver: input written to ./crash-driver-input (%zu bytes)\n",
			        cur_size);
		}
	}
	raise(sig);
}

int
main(int argc, char **argv)
{
	unsigned long runs = 1000, seed = 1;
	size_t max_len = 65536;

	signal(SIGABRT, on_abort);
	signal(SIGSEGV, on_abort);
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "-runs=", 6) == 0)
			runs = strtoul(argv[i] + 6, NULL, 10);
		else if (strncmp(argv[i], "-seed=", 6) == 0)
			seed = strtoul(argv[i] + 6, NULL, 10);
		else if (strncmp(argv[i], "-max_len=", 9) == 0)
			max_len = strtoul(argv[i] + 9, NULL, 10);
		else if (argv[i][0] != '-')
			load_path(argv[i], max_len);
	}
	rng_state = seed;
	size_t n_seeds = n_inputs;
	for (size_t i = 0; i < n_seeds; i++)
		run_one(inputs[i].p, inputs[i].n, i);
	if (n_seeds == 0) {
		uint8_t *empty = malloc(1);
		if (empty == NULL)
			abort();
		add_input(empty, 0);
	}
	uint8_t *buf = malloc(max_len ? max_len : 1);
	if (buf == NULL)
		abort();
	for (unsigned long r = 0; r < runs; r++) {
		const struct input *base = &inputs[rnd() % n_inputs];
		size_t n = base->n < max_len ? base->n : max_len;
		memcpy(buf, base->p, n);
		n = mutate(buf, n, max_len);
		run_one(buf, n, r);
	}
	printf("driver: %zu seed inputs + %lu mutations (seed %lu) ok; %lu faults injected\n", n_seeds, runs,
	       seed, fuzz_faults_injected());
	free(buf);
	for (size_t i = 0; i < n_inputs; i++)
		free(inputs[i].p);
	free(inputs);
	return 0;
}
