#!/usr/bin/env bash
# Face verify benchmark (docs/face.md, "Performance").
#   bench/face.sh [BUILD_DIR] [IMAGE]
# Builds authd-face-bench, fetches the models if needed, then runs it with
# OpenCV's own thread pool off (the shipped setting) and, for comparison,
# with 2 OpenCV threads.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
image="${2:-}"
export AUTHD_FACES_DIR="${AUTHD_FACES_DIR:-$here/../shared/faces/dev}"

cmake --build "$build" --target authd-face-bench face_plugin -j"$(nproc)" >/dev/null
"$here/scripts/fetch-models.sh" "$build/share/authd/models" >/dev/null

echo "== $(date -u +%FT%TZ) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== AUTHD_FACE_CV_THREADS=1 (shipped)"
AUTHD_FACE_CV_THREADS=1 "$build/bin/authd-face-bench" -n 300 -t 10 ${image:+"$image"}
echo "== AUTHD_FACE_CV_THREADS=2 (comparison)"
AUTHD_FACE_CV_THREADS=2 "$build/bin/authd-face-bench" -n 300 -t 10 ${image:+"$image"}
