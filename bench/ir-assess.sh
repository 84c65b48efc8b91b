#!/usr/bin/env bash
# Instructions per allow-path assess, counted by callgrind (docs/performance.md).
#
#   bench/ir-assess.sh BUILD_DIR [BUILD_DIR ...]
#
# Builds nothing: each BUILD_DIR/bin must hold authd-step-bench. Runs it under
# `valgrind --tool=callgrind` (REQUESTS requests, default 2000, spread over
# CUSTOMERS customers, default 100000) and prints, per build, the
# instructions executed per request by
#   - the worker (ops_handle_frames: parse, policy inputs, token, reply),
#   - the store's writer thread (writer_main: the SQL, audit record, commit),
#   - the syncer and checkpoint threads,
# beside one raw ES256 signature (the step-bench's reference loop) and the
# request's cost in signatures. The issue's target (40% of two cores' raw
# sign rate) is a CPU budget of 2.5 signatures per request.
#
# Instruction counts do not depend on neighbours, so unlike the timed
# benchmarks this gives the same figure on a busy machine: the tool for a
# before/after of a change to the request path. It does not count what
# instructions cost (cache misses, the kernel), so a change must still be
# confirmed by timed runs (bench/ab-assess.sh). ~20 s per build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 1 ]] || { echo "usage: bench/ir-assess.sh BUILD_DIR [BUILD_DIR ...]" >&2; exit 2; }
n="${REQUESTS:-2000}"
customers="${CUSTOMERS:-100000}"
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 100 ]] || { echo "ir-assess: REQUESTS must be a number >= 100" >&2; exit 2; }
[[ "$customers" =~ ^[0-9]+$ && "$customers" -ge 1 ]] || { echo "ir-assess: CUSTOMERS must be a positive number" >&2; exit 2; }
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
	{ echo "ir-assess: valgrind (callgrind) not found" >&2; exit 2; }
for b in "$@"; do
	[[ -x "$b/bin/authd-step-bench" ]] || { echo "ir-assess: $b/bin/authd-step-bench missing" >&2; exit 2; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

printf '%-28s %10s %10s %10s %10s %10s %9s\n' build worker writer sync+ckpt request sign signs
for b in "$@"; do
	out="$tmp/cg.out"
	valgrind --tool=callgrind --callgrind-out-file="$out" \
		"$b/bin/authd-step-bench" --config "$here/bench/bench.conf" --requests "$n" --customers "$customers" \
		>"$tmp/log" 2>&1 || { echo "ir-assess: $b: authd-step-bench failed:" >&2; tail -5 "$tmp/log" >&2; exit 1; }
	callgrind_annotate --inclusive=yes --threshold=100 "$out" >"$tmp/ann" 2>/dev/null
	# inclusive instructions of a function of the step-bench binary (0 if absent)
	incl() { awk -v f=":$1 \\[" '$0 ~ f && /authd-step-bench\]/ { gsub(",", "", $1); print $1; exit }' "$tmp/ann"; }
	worker="$(incl ops_handle_frames)"
	writer="$(incl writer_main)"
	syncer="$(incl syncer_main)"
	ckpt="$(incl ckpt_main)"
	sign="$(incl raw_sign_us)"
	awk -v b="$(basename "$b")" -v n="$n" -v w="${worker:-0}" -v wr="${writer:-0}" -v s="${syncer:-0}" \
		-v c="${ckpt:-0}" -v g="${sign:-0}" 'BEGIN {
		if (w == 0 || wr == 0 || g == 0) { print "ir-assess: " b ": functions not found (RelWithDebInfo build?)" > "/dev/stderr"; exit 1 }
		req = (w + wr + s + c) / n
		printf "%-28s %10.0f %10.0f %10.0f %10.0f %10.0f %9.2f\n", b, w / n, wr / n, (s + c) / n, req, g / n, req / (g / n)
	}'
done
echo "(instructions per request; signs = request / one raw ES256 sign; target <= 2.5)"
