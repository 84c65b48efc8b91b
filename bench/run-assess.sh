#!/usr/bin/env bash
# assess throughput on the allow path (issue 2 "Performance", docs/performance.md).
#
#   bench/run-assess.sh [BUILD_DIR]          (default: ./build of the repository)
#
# Builds nothing: BUILD_DIR/bin must hold authd, authctl and authd-bench.
# Starts authd on a temporary state dir with bench/bench.conf, checks that the
# bench transaction is allowed, measures the raw ES256 sign rate of this
# machine with `openssl speed` (one core and -multi 2), runs authd-bench for
# each CONNECTIONSxPIPELINE combination, prints the figures and the ratio to
# the target (>= 40% of two cores' raw sign rate, audit durable), stops authd
# with SIGTERM, starts it again on the same state dir and runs
# `authctl audit verify` to show the audit chain is intact.
#
# Environment (defaults in brackets):
#   COMBOS        "NxK ..." connections x pipeline to run           [16x8]
#   DURATION      measured seconds per combination                  [20]
#   WARMUP        warm-up seconds per combination                   [3]
#   THREADS       authd-bench client threads                        [1]
#   SPEED_SECONDS seconds per openssl speed measurement             [5]
#   WORKERS       authd --workers (empty: authd's default)          []
#   AUTHD_CONFIG  config file                                        [bench/bench.conf]
#   KEEP_STATE    1: keep the temporary state dir (path is printed)  [0]
#
# The machine's cores are shared by authd, authd-bench and openssl (run one
# after the other, never together); the CPU time each used is printed so the
# figures can be read per core.
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

tmp="$(mktemp -d /tmp/authd-bench.XXXXXX)"
sock="$tmp/authd.sock"
state="$tmp/state"
mkdir -m 700 "$state"
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

start_authd() {
	local log="$1"
	rm -f "$sock"
	"$bin/authd" --state-dir "$state" --socket "$sock" --foreground --config "$config" \
		${WORKERS:+--workers "$WORKERS"} >>"$log" 2>&1 &
	authd_pid=$!
	for _ in $(seq 1 100); do
		if [[ -S "$sock" ]] && "$bin/authctl" --socket "$sock" health >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$authd_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "run-assess: authd did not come up; its log:" >&2
	cat "$log" >&2
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

echo "== $(date -u +%FT%TZ)  $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== $(openssl version)"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

start_authd "$tmp/authd.log"
echo "== authd pid $authd_pid: $(head -2 "$tmp/authd.log" | tr '\n' ' ')"

# The bench transaction must take the allow path (signed token + durable audit).
cat >"$tmp/txn.json" <<'EOF'
{"id":"bench-check-1","customer":"C-bench-1","account":"9000000001","account_type":"personal",
 "account_opened":1600000000,"amount":10001,"currency":"VND",
 "payee":{"account":"9876543210","bank":"VCB","name":"Bench Payee"},
 "channel":"internet_banking","src_ip":"203.0.113.9","device_id":"dev-bench","risk_flag":false}
EOF
check="$("$bin/authctl" --socket "$sock" assess "$tmp/txn.json")"
echo "$check" | grep -E '^(result|reasons):' | sed 's/^/   authctl assess: /'
if ! grep -q '^result: allow' <<<"$check"; then
	echo "run-assess: the bench transaction is not allowed with $config" >&2
	exit 1
fi

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
for combo in $combos; do
	conns="${combo%x*}"
	pipe="${combo#*x}"
	echo "== authd-bench --op assess --connections $conns --pipeline $pipe --duration $duration --warmup $warmup --threads $threads"
	a0="$(cpu_of "$authd_pid")"
	out="$(/usr/bin/env time -f '%U %S' -o "$tmp/bench.time" \
		"$bin/authd-bench" --socket "$sock" --op assess --connections "$conns" --pipeline "$pipe" \
		--duration "$duration" --warmup "$warmup" --threads "$threads" 2>"$tmp/bench.err")" || {
		cat "$tmp/bench.err" >&2
		echo "run-assess: authd-bench failed" >&2
		exit 1
	}
	a1="$(cpu_of "$authd_pid")"
	sed 's/^/   /' "$tmp/bench.err"
	echo "   $out"
	rate="$(awk '{ print $2 }' <<<"$out")"
	read -r bu bs <"$tmp/bench.time"
	total=$(awk -v w="$warmup" -v d="$duration" 'BEGIN { print w + d }')
	awk -v a="$(awk -v x="$a0" -v y="$a1" 'BEGIN { print y - x }')" -v b="$(awk -v u="$bu" -v s="$bs" 'BEGIN { print u + s }')" \
		-v t="$total" -v r="$rate" -v s2="$sign2" -v tg="$target" 'BEGIN {
		printf "   CPU over %.0f s: authd %.1f s (%.2f cores), authd-bench %.1f s (%.2f cores)\n", t, a, a / t, b, b / t
		printf "   ratio: %.0f / %.0f = %.1f%% of two cores'\'' sign rate (target 40%%: %s)\n", r, s2, 100 * r / s2, (r >= tg ? "met" : "NOT met")
	}'
	summary+=("$(printf '%6s  %s' "$combo" "$out")")
	if awk -v r="$rate" -v b="$best_rate" 'BEGIN { exit !(r > b) }'; then
		best_rate="$rate"
		best_line="$combo: $out"
	fi
done

echo "== summary (sign rate: $sign1/s one core, $sign2/s two cores; target $target assess/s)"
printf '   %s\n' "${summary[@]}"
ratio="$(awk -v r="$best_rate" -v s="$sign2" 'BEGIN { printf "%.1f", 100 * r / s }')"
echo "   best: $best_line -> $ratio% of two cores' ES256 sign rate (target 40%)"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== SIGTERM authd, restart on the same state dir, audit verify"
stop_authd || { echo "run-assess: authd exited with an error" >&2; tail -5 "$tmp/authd.log" >&2; exit 1; }
start_authd "$tmp/authd.log"
verify_rc=0
"$bin/authctl" --socket "$sock" --timeout 600000 audit verify | sed 's/^/   /' || verify_rc=$?
stop_authd || true
exit $verify_rc
