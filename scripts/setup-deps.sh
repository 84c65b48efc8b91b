#!/usr/bin/env bash
# Installs every build, test and demo dependency of authd from Debian 12 packages.
# Idempotent: re-running it installs nothing that is already present.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libssl-dev openssl
  libsqlite3-dev sqlite3
  libjansson-dev
  libinih-dev
  libsystemd-dev
  libcmocka-dev
  libfido2-dev libcbor-dev
  libopencv-dev
  libmaxminddb-dev
  libpq-dev postgresql
  libpam0g-dev libpam-wrapper pamtester
  python3 python3-jwt python3-cryptography python3-cbor2
  clang libclang-rt-14-dev
  nodejs npm chromium ffmpeg
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm: the example backend and its browser test need Node >= 18 (Debian
# 12's nodejs is 18). A node that is already there, with its npm, is kept when
# it is new enough: e.g. NodeSource's nodejs package, which bundles npm and
# conflicts with Debian's npm package, so installing that would replace it.
# Otherwise Debian's nodejs and npm are installed (the ones not yet installed).
NODE_MIN=18
node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e "process.exit(Number(process.versions.node.split('.')[0]) >= $NODE_MIN ? 0 : 1)" 2>/dev/null
}
if node_ok; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! node_ok; then
  echo "setup-deps: need node >= $NODE_MIN and npm on PATH; found node $(node --version 2>/dev/null || echo none)" \
       "at $(command -v node || echo -), npm at $(command -v npm || echo -)" >&2
  exit 1
fi
echo "setup-deps: all dependencies present"
