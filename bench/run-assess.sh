#!/usr/bin/env bash
# assess throughput on the allow path (issue 2 "Performance", docs/performance.md).
#
#   bench/run-assess.sh [BUILD_DIR]          (default: ./build of the repository)
#
# Builds nothing: BUILD_DIR/bin must hold authd, authctl and authd-bench.
# Measures the raw ES256 sign rate of this machine with `openssl speed` (one
# core and -multi 2), then for each CONNECTIONSxPIPELINE combination:
#   starts authd on a fresh temporary state dir with bench/bench.conf,
#   checks with `authctl assess` that the bench transaction is allowed,
#   runs authd-bench, prints its line, the CPU both used and the ratio to the
#   target (>= 40% of two cores' raw sign rate, audit durable),
#   stops authd with SIGTERM, starts it again on the same state dir and runs
#   `authctl audit verify` to show the audit chain is intact.
# Ends with a summary: every combination, the best, the ratio.
#
# Environment (defaults in brackets):
#   COMBOS        "NxK ..." connections x pipeline to run           [16x8]
#   DURATION      measured seconds per combination                  [20]
#   WARMUP        warm-up seconds per combination                   [3]
#   THREADS       authd-bench client threads                        [1]
#   CUSTOMERS     distinct customers the requests spread over       [authd-bench's default]
#   SPEED_SECONDS seconds per openssl speed measurement             [5]
#   WORKERS       authd --workers (empty: authd's default)          []
#   AUTHD_CONFIG  config file                                        [bench/bench.conf]
#   STATE_ROOT    where the temporary state dirs go (its disk is what
#                 fdatasync hits)                                    [/tmp]
#   KEEP_STATE    1: keep the temporary dirs (paths are printed)     [0]
#
# The machine's cores are shared by authd and authd-bench (and openssl runs
# on the same cores just before); the CPU time each used is printed, with the
# CPU-bound ceiling that implies on two dedicated cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$here/build}" && pwd)"
bin="$build/bin"
combos="${COMBOS:-16x8}"
duration="${DURATION:-20}"
warmup="${WARMUP:-3}"
threads="${THREADS:-1}"
speed_seconds="${SPEED_SECONDS:-5}"
config="${AUTHD_CONFIG:-$here/bench/bench.conf}"

for b in authd authctl authd-bench; do
	[[ -x "$bin/$b" ]] || { echo "run-assess: $bin/$b missing (build the authd, authctl and authd-bench targets)" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "run-assess: openssl not found" >&2; exit 2; }
for combo in $combos; do
	[[ "$combo" =~ ^[0-9]+x[0-9]+$ ]] || { echo "run-assess: bad combination '$combo' (want NxK)" >&2; exit 2; }
done

tmp="$(mktemp -d "${STATE_ROOT:-/tmp}/authd-bench.XXXXXX")"
sock="$tmp/authd.sock"
authd_pid=""

cleanup() {
	if [[ -n "$authd_pid" ]] && kill -0 "$authd_pid" 2>/dev/null; then
		kill -TERM "$authd_pid" 2>/dev/null || true
		wait "$authd_pid" 2>/dev/null || true
	fi
	if [[ "${KEEP_STATE:-0}" == 1 ]]; then
		echo "run-assess: state kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# start_authd STATE_DIR LOG
start_authd() {
	rm -f "$sock"
	"$bin/authd" --state-dir "$1" --socket "$sock" --foreground --config "$config" \
		${WORKERS:+--workers "$WORKERS"} >>"$2" 2>&1 &
	authd_pid=$!
	for _ in $(seq 1 100); do
		if [[ -S "$sock" ]] && "$bin/authctl" --socket "$sock" health >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$authd_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "run-assess: authd did not come up; its log:" >&2
	cat "$2" >&2
	exit 1
}

stop_authd() {
	kill -TERM "$authd_pid"
	local rc=0
	wait "$authd_pid" || rc=$?
	authd_pid=""
	return $rc
}

# CPU seconds (user+system) a process has used so far.
cpu_of() {
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

sign_rate() { # openssl speed output -> sign/s of the nistp256 line
	awk '/ecdsa \(nistp256\)/ { print $(NF-1) }' | tail -1
}

# The bench transaction must take the allow path (signed token + durable audit).
cat >"$tmp/txn.json" <<'EOF'
{"id":"bench-check-1","customer":"C-bench-1","account":"9000000001","account_type":"personal",
 "account_opened":1600000000,"amount":10001,"currency":"VND",
 "payee":{"account":"9876543210","bank":"VCB","name":"Bench Payee"},
 "channel":"internet_banking","src_ip":"203.0.113.9","device_id":"dev-bench","risk_flag":false}
EOF

echo "== $(date -u +%FT%TZ)  $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== $(openssl version); state on $(df -T "$tmp" | awk 'NR == 2 { print $1, $2 }')"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== openssl speed -seconds $speed_seconds ecdsap256 (one core, then -multi 2)"
sign1="$(openssl speed -seconds "$speed_seconds" ecdsap256 2>/dev/null | sign_rate)"
sign2="$(openssl speed -seconds "$speed_seconds" -multi 2 ecdsap256 2>/dev/null | sign_rate)"
target="$(awk -v s="$sign2" 'BEGIN { printf "%.0f", 0.4 * s }')"
printf '   ES256 sign: %.0f/s one core, %.0f/s two cores (-multi 2; 2 x one core = %.0f)\n' \
	"$sign1" "$sign2" "$(awk -v s="$sign1" 'BEGIN { print 2 * s }')"
printf '   target: >= 40%% of %.0f = %s assess/s\n' "$sign2" "$target"

best_rate=0
best_line=""
summary=()
verify_rc=0
n=0
for combo in $combos; do
	n=$((n + 1))
	conns="${combo%x*}"
	pipe="${combo#*x}"
	state="$tmp/state-$n"
	log="$tmp/authd-$n.log"
	mkdir -m 700 "$state"
	start_authd "$state" "$log"
	echo "== $combo: authd pid $authd_pid ($(grep -o 'with [0-9]* workers' "$log" | head -1)), fresh state $state"
	check="$("$bin/authctl" --socket "$sock" assess "$tmp/txn.json")"
	echo "$check" | grep -E '^(result|reasons):' | sed 's/^/   authctl assess: /'
	if ! grep -q '^result: allow' <<<"$check"; then
		echo "run-assess: the bench transaction is not allowed with $config" >&2
		exit 1
	fi
	echo "   authd-bench --op assess --connections $conns --pipeline $pipe --duration $duration --warmup $warmup --threads $threads${CUSTOMERS:+ --customers $CUSTOMERS}"
	a0="$(cpu_of "$authd_pid")"
	out="$(/usr/bin/env time -f '%U %S' -o "$tmp/bench.time" \
		"$bin/authd-bench" --socket "$sock" --op assess --connections "$conns" --pipeline "$pipe" \
		--duration "$duration" --warmup "$warmup" --threads "$threads" ${CUSTOMERS:+--customers "$CUSTOMERS"} \
		2>"$tmp/bench.err")" || {
		cat "$tmp/bench.err" >&2
		echo "run-assess: authd-bench failed" >&2
		exit 1
	}
	a1="$(cpu_of "$authd_pid")"
	sed 's/^/   /' "$tmp/bench.err"
	echo "   $out"
	rate="$(awk '{ print $2 }' <<<"$out")"
	read -r bu bs <"$tmp/bench.time"
	awk -v a="$(awk -v x="$a0" -v y="$a1" 'BEGIN { print y - x }')" -v b="$(awk -v u="$bu" -v s="$bs" 'BEGIN { print u + s }')" \
		-v t="$(awk -v w="$warmup" -v d="$duration" 'BEGIN { print w + d }')" -v r="$rate" -v s1="$sign1" -v s2="$sign2" -v tg="$target" -v la="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
		printf "   CPU over %.0f s: authd %.1f s (%.2f cores), authd-bench %.1f s (%.2f cores), load average %s\n", t, a, a / t, b, b / t, la
		# CPU per request (warm-up on both sides; the rate of the measured window stands for the whole run)
		ua = 1e6 * a / (r * t); ub = 1e6 * b / (r * t)
		printf "   CPU per request: authd %.0f us, authd-bench %.0f us -> CPU-bound ceiling on 2 dedicated cores %.0f req/s\n", ua, ub, 2e6 / (ua + ub)
		printf "   ratio: %.0f / %.0f = %.1f%% of two cores'\'' sign rate (target 40%%: %s); %.1f%% of 2 x one core\n", r, s2, 100 * r / s2, (r >= tg ? "met" : "NOT met"), 50 * r / s1
	}'
	summary+=("$(printf '%7s  %s' "$combo" "$out")")
	if awk -v r="$rate" -v b="$best_rate" 'BEGIN { exit !(r > b) }'; then
		best_rate="$rate"
		best_line="$combo: $out"
	fi
	# Durable and intact: SIGTERM (drain), restart on the same state, verify the chain.
	stop_authd || { echo "run-assess: authd exited with an error" >&2; tail -5 "$log" >&2; exit 1; }
	start_authd "$state" "$log"
	if ! "$bin/authctl" --socket "$sock" --timeout 600000 audit verify | sed 's/^/   after SIGTERM + restart: /'; then
		verify_rc=1
	fi
	stop_authd || true
	[[ "${KEEP_STATE:-0}" == 1 ]] || rm -rf "$state"
done

echo "== summary (ES256 sign: $sign1/s one core, $sign2/s two cores; target $target assess/s)"
printf '   %s\n' "${summary[@]}"
ratio="$(awk -v r="$best_rate" -v s="$sign2" 'BEGIN { printf "%.1f", 100 * r / s }')"
ratio1="$(awk -v r="$best_rate" -v s="$sign1" 'BEGIN { printf "%.1f", 50 * r / s }')"
echo "   best: $best_line -> $ratio% of two cores' ES256 sign rate (-multi 2), $ratio1% of 2 x one core (target 40%)"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $verify_rc
