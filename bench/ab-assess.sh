#!/usr/bin/env bash
# Before/after comparison of two authd builds on assess (docs/performance.md).
#
#   bench/ab-assess.sh BUILD_A BUILD_B [RUNS]      (default 3 runs of each)
#
# Builds nothing: each BUILD/bin must hold authd and authd-bench. The runs
# alternate A, B, A, B, ... so both builds see the same neighbours on a
# shared machine. Each run starts authd on a fresh temporary state dir with
# bench/bench.conf, drives it with authd-bench for WARMUP + DURATION seconds
# and, over a window of WINDOW seconds in the middle, reads the CPU time of
# every authd thread from /proc (grouped by thread name: authd-worker,
# authd-writer, authd-sync, authd-ckpt, authd). It prints one line per run:
#
#   A 13501 req/s  105 us/req  worker 65 writer 43 ckpt 13 sync 3 authd 2 (us/req)
#
# ("authd" is the I/O thread; in builds older than the thread names, every thread.)
#
# Environment: COMBO (connections x pipeline, 16x32), DURATION (10),
# WARMUP (1), WINDOW (5), CUSTOMERS (authd-bench's default),
# STATE_ROOT (/tmp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 2 ]] || { echo "usage: bench/ab-assess.sh BUILD_A BUILD_B [RUNS]" >&2; exit 2; }
a="$(cd "$1" && pwd)"
b="$(cd "$2" && pwd)"
runs="${3:-3}"
combo="${COMBO:-16x32}"
duration="${DURATION:-10}"
warmup="${WARMUP:-1}"
window="${WINDOW:-5}"
[[ "$combo" =~ ^([0-9]+)x([0-9]+)$ ]] || { echo "ab-assess: bad COMBO '$combo' (want NxK)" >&2; exit 2; }
conns="${BASH_REMATCH[1]}"
pipeline="${BASH_REMATCH[2]}"
[[ "$runs" =~ ^[0-9]+$ && "$runs" -ge 1 ]] || { echo "ab-assess: RUNS must be a positive number" >&2; exit 2; }
(( window < warmup + duration )) || { echo "ab-assess: WINDOW must be shorter than WARMUP + DURATION" >&2; exit 2; }
for build in "$a" "$b"; do
	for x in authd authd-bench; do
		[[ -x "$build/bin/$x" ]] || { echo "ab-assess: $build/bin/$x missing" >&2; exit 2; }
	done
done
tick="$(getconf CLK_TCK)"
tmp="$(mktemp -d "${STATE_ROOT:-/tmp}/authd-ab.XXXXXX")"
pid=""
cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# "tid name ticks" for every thread of $1, sorted by tid
threads() {
	local t
	for t in /proc/"$1"/task/*; do
		printf '%s %s %s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null || echo gone)" \
			"$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)"
	done | sort -k1,1
}

run_one() { # LABEL BUILD N
	local label="$1" build="$2" n="$3" dir="$tmp/run-$3" sock="$tmp/s.sock"
	rm -f "$sock"
	"$build/bin/authd" --state-dir "$dir" --socket "$sock" --foreground --config "$here/bench/bench.conf" \
		>"$tmp/authd.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do [[ -S "$sock" ]] && break; sleep 0.1; done
	[[ -S "$sock" ]] || { echo "ab-assess: authd ($label) did not start:" >&2; cat "$tmp/authd.log" >&2; exit 1; }
	"$build/bin/authd-bench" --socket "$sock" --op assess --connections "$conns" --pipeline "$pipeline" \
		--duration "$duration" --warmup "$warmup" ${CUSTOMERS:+--customers "$CUSTOMERS"} \
		>"$tmp/bench.out" 2>"$tmp/bench.err" &
	local bp=$!
	sleep "$(( (warmup + duration - window) / 2 ))"
	threads "$pid" >"$tmp/t0"
	sleep "$window"
	threads "$pid" >"$tmp/t1"
	wait "$bp" || { echo "ab-assess: authd-bench failed ($label):" >&2; cat "$tmp/bench.err" >&2; exit 1; }
	kill -TERM "$pid"
	wait "$pid" || true
	pid=""
	local line rate
	line="$(tail -1 "$tmp/bench.out")"
	rate="$(sed -E 's/^assess: ([0-9]+) req\/s.*/\1/' <<<"$line")"
	[[ "$rate" =~ ^[0-9]+$ && "$rate" -gt 0 ]] || { echo "ab-assess: no rate from authd-bench: $line" >&2; exit 1; }
	# per-thread-name CPU over the window, in us per request
	# threads present at both ends of the window (join on tid): tid name ticks0 name ticks1
	join "$tmp/t0" "$tmp/t1" | awk -v r="$rate" -v w="$window" -v hz="$tick" -v l="$label" '
		{ d[$2] += $5 - $3; all += $5 - $3 }
		END {
			n = r * w; us = 1e6 / hz
			printf "%s %6d req/s  %4.0f us/req  worker %.0f writer %.0f ckpt %.0f sync %.0f authd %.0f (us/req)\n",
			    l, r, all * us / n, d["authd-worker"] * us / n, d["authd-writer"] * us / n,
			    d["authd-ckpt"] * us / n, d["authd-sync"] * us / n, d["authd"] * us / n
		}'
}

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ)  A=$a  B=$b  $combo, ${warmup}+${duration} s, CPU over ${window} s, load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$runs"); do
	run_one A "$a" "a$i"
	run_one B "$b" "b$i"
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
