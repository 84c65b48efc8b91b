#!/usr/bin/env bash
# Configures and builds authd into BUILD_DIR (default build/), and installs the
# face models into it. Extra arguments go to cmake's configure step.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$here/build}"
cmake -S "$here" -B "$build" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
bash "$here/scripts/fetch-models.sh" "$build/share/authd/models"
