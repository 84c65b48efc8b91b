#!/bin/bash
# SIGKILL under full load (complements scripts/crash-loop.sh, whose Python
# clients send a few hundred transfers per iteration): each iteration starts
# authd (BUILD/bin/authd, bench/bench.conf, one temp state dir kept across
# iterations), drives it with authd-bench at 16 x 32 (every assess an
# approval), kills it with SIGKILL after 2-7 s, restarts it and checks:
# `authctl audit verify` valid; PRAGMA integrity_check ok; as many approvals
# in the audit log as allow decisions and approvals rows; the daily totals
# sum to the approvals. At that load the WAL holds thousands of frames and
# checkpoint rounds and the writer's held WAL runs are always in flight.
#
#   scripts/crash-bench.sh [N]          (default 10 iterations)
#   BUILD=build-rel scripts/crash-bench.sh 20
set -u
cd "$(dirname "$0")/.."
N=${1:-10}
B=${BUILD:-build}
T=$(mktemp -d /tmp/authd-crash-bench.XXXXXX)
P=0
trap '[ "$P" -gt 0 ] && kill -9 "$P" 2>/dev/null; rm -rf "$T"' EXIT
bad=0
start() {
	rm -f "$T/s.sock"
	"$B/bin/authd" --state-dir "$T/st" --socket "$T/s.sock" --foreground --config bench/bench.conf >"$T/log" 2>&1 &
	P=$!
	for _ in $(seq 100); do [ -S "$T/s.sock" ] && return 0; sleep 0.1; done
	echo "crash-bench: authd did not start" >&2; cat "$T/log" >&2; exit 1
}
for i in $(seq 1 "$N"); do
	start
	"$B/bin/authd-bench" --socket "$T/s.sock" --op assess --connections 16 --pipeline 32 --duration 30 \
		--warmup 0 >/dev/null 2>&1 &
	bp=$!
	sleep "$((2 + RANDOM % 5)).$((RANDOM % 10))"
	kill -9 "$P"; wait "$P" 2>/dev/null
	kill "$bp" 2>/dev/null; wait "$bp" 2>/dev/null
	P=0
	start
	v=$("$B/bin/authctl" --socket "$T/s.sock" audit verify 2>&1 | head -1)
	kill -TERM "$P"; wait "$P"
	P=0
	c=$(/usr/bin/python3 - "$T/st/authd.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
one = lambda q: db.execute(q).fetchone()
ic = one("PRAGMA integrity_check")[0]
a = one("SELECT count(*) FROM audit WHERE type = 'assess' AND result = 'allow'")[0]
d = one("SELECT count(*) FROM decisions WHERE result = 'allow'")[0]
n, s = one("SELECT count(*), coalesce(sum(amount), 0) FROM approvals")
t = one("SELECT coalesce(sum(amount), 0) FROM daily_totals")[0]
ok = ic == "ok" and a == d == n and s == t
print("%s: integrity %s, %d approvals in the audit log, %d allow decisions, %d approvals rows, sum %d, totals %d"
      % ("OK" if ok else "PROBLEM", ic, a, d, n, s, t))
PY
)
	echo "iteration $i: $c; $v"
	case "$c $v" in "OK:"*"audit chain valid"*) ;; *) bad=$((bad + 1)) ;; esac
done
echo "crash-bench: $N iterations, $bad with problems"
[ "$bad" -eq 0 ]
