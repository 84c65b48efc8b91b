#!/usr/bin/env bash
# Face verify benchmark (docs/face.md, "Performance").
#   bench/face.sh [BUILD_DIR] [IMAGE]
# Builds authd-face-bench, fetches the models if needed, then measures with
# OpenCV's own thread pool off (AUTHD_FACE_CV_THREADS=1, the shipped
# setting) and, for comparison, with 2 OpenCV threads:
#   - one core: sequential verifies pinned with taskset to one CPU;
#   - all CPUs: sequential verifies (what intra-op threads buy one request);
#   - two threads verifying concurrently: verifies/s;
#   - VmRSS / VmHWM with the models loaded.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
image="${2:-}"
export AUTHD_FACES_DIR="${AUTHD_FACES_DIR:-$here/../shared/faces/dev}"
bench="$build/bin/authd-face-bench"

cmake --build "$build" --target authd-face-bench face_plugin -j"$(nproc)" >/dev/null
"$here/scripts/fetch-models.sh" "$build/share/authd/models" >/dev/null

echo "== $(date -u +%FT%TZ), $(nproc) CPUs:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for t in 1 2; do
  echo "== AUTHD_FACE_CV_THREADS=$t$([[ $t == 1 ]] && echo ' (shipped)')"
  AUTHD_FACE_CV_THREADS=$t taskset -c 0 "$bench" -m seq -n 300 ${image:+"$image"} | grep -E 'sequential'
  AUTHD_FACE_CV_THREADS=$t "$bench" -m seq -n 200 ${image:+"$image"} | grep -E 'sequential'
  AUTHD_FACE_CV_THREADS=$t "$bench" -m par -t 10 ${image:+"$image"} | grep -E 'verifies/s|Vm'
done
