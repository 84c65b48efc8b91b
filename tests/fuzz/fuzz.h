/*
 * Shared by the fuzz targets (tests/fuzz/fuzz_*.c), the fault injector
 * (wrap.c) and the standalone driver (driver.c).
 *
 * Every target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). Under clang it links libFuzzer; otherwise
 * driver.c feeds it the seed corpus and a fixed number of deterministic
 * mutations, so the gcc build runs the same harnesses as ctest smoke tests.
 *
 * Fault injection (libfido2 fuzz/wrap.c style): the targets are linked with
 * -Wl,--wrap= for malloc/calloc/realloc/strdup/strndup and selected
 * OpenSSL, libcbor, jansson and SQLite calls (see wrap.c for the list and
 * why jansson's internal allocations are left alone). With AUTHD_FUZZ_FAIL=N
 * in the environment
 * each wrapped call fails with probability 1/N, from a PRNG seeded by a
 * hash of the current input (so a failure reproduces from the input
 * alone). Injection is armed only around the code under test
 * (fuzz_arm/fuzz_disarm): the harness's own set-up never fails.
 */
#ifndef AUTHD_FUZZ_H
#define AUTHD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Reads AUTHD_FUZZ_FAIL; idempotent. */
void fuzz_wrap_init(void);
/* Seeds the failure PRNG from the input and arms injection (if enabled). */
void fuzz_arm(const uint8_t *data, size_t size);
void fuzz_disarm(void);
/* 1 when AUTHD_FUZZ_FAIL is set (a target may relax its invariants). */
int fuzz_faults_enabled(void);
/* Number of failures injected since start (for the driver's summary). */
unsigned long fuzz_faults_injected(void);

/* Writes data to a memfd; *path receives "/proc/self/fd/N". Returns the fd or -1. */
int fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t pathlen);

/* Aborts with a message: an invariant of the code under test is broken. */
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));
#define FUZZ_ASSERT(c)                                                                                       \
	do {                                                                                                 \
		if (!(c))                                                                                    \
			fuzz_fail(__FILE__, __LINE__, #c);                                                   \
	} while (0)

#ifdef __cplusplus
}
#endif

#endif
