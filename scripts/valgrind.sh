#!/usr/bin/env bash
# Valgrind memcheck over the integration suite (issue 9).
#
# Builds a debug build without sanitizers (valgrind and ASan do not mix) in
# BUILD_DIR (default build-vg/, -O1 -g), then runs the integration tests
# (ctest label "integration", tests/integration/test_*.py) with every authd,
# authctl and pamtester (and, through it, the PAM module and the authd-capture
# helper) under
#   valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
# (see tests/integration/authd_harness.py, AUTHD_VALGRIND), one log per
# process in BUILD_DIR/valgrind/. Fails when a test fails or any log holds an
# error: invalid access, uninitialised value, bad free, or a definite leak.
# Suppressions: tests/integration/valgrind.supp (third-party noise only).
#
#   nice -n 10 scripts/valgrind.sh                       # the whole suite (~2-3 h on 2 cores)
#   scripts/valgrind.sh integration_daemon               # a ctest -R regex
#   JOBS=2 AUTHD_TIMEOUT_SCALE=40 scripts/valgrind.sh    # parallel ctest; longer harness timeouts
#   SCAN_ONLY=1 scripts/valgrind.sh                      # only re-read the logs of the last run
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$here/build-vg}"
logs="$build/valgrind"

if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind.sh: installing valgrind"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

rc=0
if [[ -z ${SCAN_ONLY:-} ]]; then
  BUILD_DIR="$build" bash "$here/scripts/build.sh" -DAUTHD_WERROR=ON -DAUTHD_SANITIZE=OFF \
    -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" \
    -DAUTHD_VALGRIND=ON "-DAUTHD_VALGRIND_DIR=$logs" -DAUTHD_VALGRIND_TIMEOUT_SCALE=20
  rm -rf "$logs"
  mkdir -p "$logs"
  chmod 1777 "$logs"   # programs run under other uids (staff, peers) log here too
  t0=$(date +%s)
  ctest --test-dir "$build" -L integration ${1:+-R "$1"} --output-on-failure -j"${JOBS:-1}" || rc=$?
  echo "valgrind.sh: ctest finished in $(( $(date +%s) - t0 )) s (status $rc)"
fi

# One line per test file and program: processes, how many ran to their exit
# (a log with an ERROR SUMMARY; the others were SIGKILLed by the crash tests),
# errors. A log counts as bad when its summary reports errors, or (for a
# killed process, which prints no summary) when it holds any error report.
shopt -s nullglob
files=("$logs"/*.log)
if ((${#files[@]} == 0)); then
  echo "valgrind.sh: no valgrind logs in $logs" >&2
  exit 1
fi
bad=()
declare -A procs done_ errs
for f in "${files[@]}"; do
  base=$(basename "$f")
  key=${base%.*.log}     # <test file>.<program>
  procs[$key]=$(( ${procs[$key]:-0} + 1 ))
  n=$(sed -n 's/.*ERROR SUMMARY: \([0-9][0-9]*\) errors.*/\1/p' "$f" | tail -1)
  if [[ -n $n ]]; then
    done_[$key]=$(( ${done_[$key]:-0} + 1 ))
  else
    n=$(grep -cE '^==[0-9]+== (Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Argument .* of function|.* are definitely lost)' "$f" || true)
  fi
  errs[$key]=$(( ${errs[$key]:-0} + n ))
  ((n == 0)) || bad+=("$f")
done
printf '%-40s %9s %9s %7s\n' "test.program" "processes" "exited" "errors"
for key in $(printf '%s\n' "${!procs[@]}" | sort); do
  printf '%-40s %9d %9d %7d\n' "$key" "${procs[$key]}" "${done_[$key]:-0}" "${errs[$key]}"
done
if ((${#bad[@]})); then
  echo "valgrind.sh: errors in ${#bad[@]} log(s):" >&2
  for f in "${bad[@]}"; do
    echo "---- $f" >&2
    grep -E '^==[0-9]+== ' "$f" | sed -n '/ERROR SUMMARY/q;p' | head -80 >&2
  done
  exit 1
fi
if ((rc != 0)); then
  echo "valgrind.sh: tests failed (ctest status $rc)" >&2
  exit "$rc"
fi
echo "valgrind.sh: ${#files[@]} processes, no errors"
