#!/bin/bash
# Runs every libFuzzer target (build-fuzz: clang, ASan+UBSan) for SECONDS each
# and prints executions and coverage (libFuzzer's cov:/ft:), then the same in
# fault-injection mode (AUTHD_FUZZ_FAIL=400) for FAULT_SECONDS each.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]       (default 60 s, every target)
#   FAULT_SECONDS=30 BUILD=build-fuzz scripts/fuzz.sh 600
#   MODES=faults FAULT_RUNS=1000000 scripts/fuzz.sh 0 jws   (only one of the modes)
#   RUNS=10000000 FAULT_RUNS=1000000 scripts/fuzz.sh 0 txn rir
#     (a fixed number of executions per target instead of a time; the time
#     column then shows how long it took)
#
# The corpus each run grows is kept in $BUILD/fuzz/work-<target> (the
# committed seeds in tests/fuzz/corpus/<target> are only read); crashes are
# written to $BUILD/fuzz/artifacts/. To reach the issue's 10 million
# executions per target: scripts/fuzz.sh 3600 (most targets run 3,000 to
# 10,000 exec/s on one core; fuzz_frame and fuzz_jws are slower).
set -u
cd "$(dirname "$0")/.." || exit 1
SECONDS_EACH=${1:-60}
shift || true
BUILD=${BUILD:-build-fuzz}
FAULT_SECONDS=${FAULT_SECONDS:-$((SECONDS_EACH / 4))}
# Configure once; build every time (incremental): fuzzing binaries older
# than the sources would test code that no longer exists.
if ! grep -qx 'AUTHD_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
	CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DAUTHD_FUZZ=ON >/dev/null || exit 1
fi
cmake --build "$BUILD" -j"$(nproc)" --target fuzz_all >/dev/null || exit 1
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
	for f in "$BUILD"/fuzz/fuzz_*; do
		[ -x "$f" ] && TARGETS+=("$(basename "$f" | sed 's/^fuzz_//')")
	done
fi
mkdir -p "$BUILD/fuzz/artifacts"
LOGS=$BUILD/fuzz/logs
mkdir -p "$LOGS"
status=0

run() { # name mode seconds
	local t=$1 mode=$2 secs=$3 env=() work="$BUILD/fuzz/work-$1"
	[ "$mode" = faults ] && env=(AUTHD_FUZZ_FAIL=400) && work="$work-faults"
	mkdir -p "$work"
	local log="$LOGS/$t-$mode.log"
	local limit=(-max_total_time="$secs") runs=${RUNS:-}
	[ "$mode" = faults ] && runs=${FAULT_RUNS:-}
	[ -n "$runs" ] && limit=(-runs="$runs")
	local seeds="tests/fuzz/corpus/$t"
	if [ ! -d "$seeds" ]; then # not committed (images): the target writes its own seeds
		seeds="$BUILD/fuzz/seeds-$t"
		mkdir -p "$seeds"
		AUTHD_FUZZ_MKSEEDS="$seeds" "$BUILD/fuzz/fuzz_$t" >/dev/null 2>&1 || { echo "$t: cannot make seeds" >&2; return 1; }
	fi
	local t0=$SECONDS
	env "${env[@]}" "$BUILD/fuzz/fuzz_$t" "${limit[@]}" -seed=1 -max_len=65536 -timeout=25 \
		-rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz/artifacts/$t-$mode-" \
		"$work" "$seeds" >"$log" 2>&1
	local rc=$?
	[ -n "$runs" ] && secs=$((SECONDS - t0))
	local execs cov ft corp
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	local verdict=ok
	if [ $rc -ne 0 ]; then
		verdict="FINDING (rc $rc, see $log)"
		status=1
	fi
	printf '%-14s %-7s %6ss %12s %6s %6s %6s  %s\n' "$t" "$mode" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" "$verdict"
}

printf '%-14s %-7s %7s %12s %6s %6s %6s  %s\n' target mode time execs cov ft corpus result
MODES=${MODES:-plain faults}
if [[ " $MODES " == *" plain "* ]]; then
	for t in "${TARGETS[@]}"; do
		run "$t" plain "$SECONDS_EACH"
	done
fi
if [[ " $MODES " == *" faults "* ]] && { [ "$FAULT_SECONDS" -gt 0 ] || [ -n "${FAULT_RUNS:-}" ]; }; then
	for t in "${TARGETS[@]}"; do
		run "$t" faults "$FAULT_SECONDS"
	done
fi
exit $status
