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
# node/npm may come from elsewhere on the machine (nodesource): accept an existing npm.
if command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup-deps: all dependencies present"
