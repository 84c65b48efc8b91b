#!/usr/bin/env bash
# assess throughput against PostgreSQL, one and two authd instances, beside
# the SQLite figure on the same machine (issue 7 "Performance",
# docs/performance.md "## assess on PostgreSQL").
#
#   bench/run-assess-pg.sh [BUILD_DIR]       (default: ./build of the repository)
#
# Builds nothing: BUILD_DIR/bin must hold authd, authctl and authd-bench.
# Starts a throwaway PostgreSQL cluster (tests/integration/pg_cluster.sh) in a
# temporary directory, on a Unix socket, fsync on, synchronous_commit on; then
#   sqlite : one authd on a fresh SQLite state dir (the reference)
#   pg-1   : one authd on the PostgreSQL database
#   pg-2   : two authd processes on the same database (B's state dir is a copy
#            of A's: shared signing keys), one authd-bench against each at the
#            same time; the rate is the sum
# Every run uses bench/bench.conf (allow path: signed ES256 token + durable
# audit record) and authd-bench --op assess. After the PostgreSQL runs,
# `authctl store check` verifies the one shared audit chain.
#
# Environment (defaults in brackets):
#   COMBO     connections x pipeline per authd-bench                [16x8]
#   DURATION  measured seconds                                      [10]
#   WARMUP    warm-up seconds                                       [2]
#   WORKERS   authd --workers (empty: authd's default)              []
#   RUNS      which runs, in order                                  [sqlite pg-1 pg-2]
#   PG_BIN    PostgreSQL server binaries                            [newest /usr/lib/postgresql/*/bin]
#   KEEP      1: keep the temporary directory                       [0]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$here/build}" && pwd)"
bin="$build/bin"
combo="${COMBO:-16x8}"
duration="${DURATION:-10}"
warmup="${WARMUP:-2}"
runs="${RUNS:-sqlite pg-1 pg-2}"
conns="${combo%x*}"
pipe="${combo#*x}"
pgc="$here/tests/integration/pg_cluster.sh"

for b in authd authctl authd-bench; do
	[[ -x "$bin/$b" ]] || { echo "run-assess-pg: $bin/$b missing" >&2; exit 2; }
done
[[ "$combo" =~ ^[0-9]+x[0-9]+$ ]] || { echo "run-assess-pg: bad COMBO '$combo'" >&2; exit 2; }

tmp="$(mktemp -d /tmp/authd-bench-pg.XXXXXX)"
chmod 755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	"$pgc" stop "$tmp/pg" >/dev/null 2>&1 || true
	if [[ "${KEEP:-0}" == 1 ]]; then echo "run-assess-pg: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# start_authd NAME CONFIG STATE -> sets $started_pid, socket $tmp/NAME.sock
start_authd() {
	local sock="$tmp/$1.sock" log="$tmp/$1.log"
	rm -f "$sock"
	"$bin/authd" --state-dir "$3" --socket "$sock" --foreground --config "$2" ${WORKERS:+--workers "$WORKERS"} \
		>>"$log" 2>&1 &
	started_pid=$!
	pids+=("$started_pid")
	for _ in $(seq 1 100); do
		[[ -S "$sock" ]] && "$bin/authctl" --socket "$sock" health >/dev/null 2>&1 && return 0
		kill -0 "$started_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "run-assess-pg: authd $1 did not come up:" >&2
	cat "$log" >&2
	exit 1
}

stop_all() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}

# bench NAME... : one authd-bench per socket, all at once; prints each line and the sum
bench() {
	local i=0 bp=()
	for n in "$@"; do
		"$bin/authd-bench" --socket "$tmp/$n.sock" --op assess --connections "$conns" --pipeline "$pipe" \
			--duration "$duration" --warmup "$warmup" >"$tmp/bench-$n.out" 2>"$tmp/bench-$n.err" &
		bp+=($!)
		i=$((i + 1))
	done
	for p in "${bp[@]}"; do
		wait "$p" || { cat "$tmp"/bench-*.err >&2; echo "run-assess-pg: authd-bench failed" >&2; exit 1; }
	done
	local sum=0
	for n in "$@"; do
		echo "   $n: $(cat "$tmp/bench-$n.out")"
		sum="$(awk -v s="$sum" '{ print s + $2 }' "$tmp/bench-$n.out")"
	done
	echo "   total: $sum assess/s"
	results+=("$(printf '%-7s %s instance(s): %s assess/s' "$run" "$#" "$sum")")
}

echo "== $(date -u +%FT%TZ)  $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== authd-bench --op assess --connections $conns --pipeline $pipe --duration $duration --warmup $warmup (per instance)"
results=()

url=""
if [[ " $runs " == *" pg-"* ]]; then
	url="$("$pgc" start "$tmp/pg" | tail -1)"
	echo "== PostgreSQL $("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/postgres" --version | awk '{print $3}')" \
		"on $url (fsync on, synchronous_commit on)"
	cat "$here/bench/bench.conf" >"$tmp/pg.conf"
	printf '\n[store]\nurl = %s\n' "$url" >>"$tmp/pg.conf"
fi

for run in $runs; do
	case $run in
	sqlite)
		mkdir -m 700 "$tmp/state-sqlite"
		start_authd sqlite "$here/bench/bench.conf" "$tmp/state-sqlite"
		echo "== sqlite: one authd"
		bench sqlite
		stop_all
		;;
	pg-1)
		mkdir -m 700 "$tmp/state-a"
		start_authd a "$tmp/pg.conf" "$tmp/state-a"
		echo "== pg-1: one authd on PostgreSQL"
		bench a
		stop_all
		;;
	pg-2)
		[[ -d "$tmp/state-a" ]] || { mkdir -m 700 "$tmp/state-a"; start_authd a "$tmp/pg.conf" "$tmp/state-a"; stop_all; }
		# Shared signing and template keys: B's state dir is a copy of A's.
		rm -rf "$tmp/state-b"
		cp -a "$tmp/state-a" "$tmp/state-b"
		start_authd a "$tmp/pg.conf" "$tmp/state-a"
		start_authd b "$tmp/pg.conf" "$tmp/state-b"
		echo "== pg-2: two authd on one PostgreSQL database"
		bench a b
		stop_all
		;;
	*) echo "run-assess-pg: unknown run '$run'" >&2; exit 2 ;;
	esac
done

if [[ -n "$url" ]]; then
	echo "== the shared audit chain after every run:"
	"$bin/authctl" store check --url "$url" | sed 's/^/   /'
fi
echo "== summary"
printf '   %s\n' "${results[@]}"
