#!/usr/bin/env bash
# README command 2: install dependencies, build, run the whole test suite,
# then build again with AddressSanitizer + UndefinedBehaviorSanitizer and run
# the suite once more under them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup-deps.sh"
export CTEST_OUTPUT_ON_FAILURE=1
BUILD_DIR="$here/build" bash "$here/scripts/build.sh" -DAUTHD_WERROR=ON
ctest --test-dir "$here/build" -j2 --timeout 900
BUILD_DIR="$here/build-asan" bash "$here/scripts/build.sh" -DAUTHD_WERROR=ON -DAUTHD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$here/build-asan" -j2 --timeout 1800
