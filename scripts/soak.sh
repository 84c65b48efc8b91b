#!/bin/bash
# Soak (issue 9): a mixed load (assess, verify fido2, verify face, redeem,
# admin ops) against one authd for MINUTES, printing its RSS and open fd
# count every 10 s, then the audit chain check and the RSS trend (first vs
# last quarter). Needs the face models (scripts/fetch-models.sh) for the
# face verifications; without them the face worker stays idle.
#
#   scripts/soak.sh [MINUTES]      (default 10)
#   BUILD=build-hard scripts/soak.sh 60
set -eu
cd "$(dirname "$0")/.."
export AUTHD_BUILD_DIR=${AUTHD_BUILD_DIR:-$PWD/${BUILD:-build}}
exec /usr/bin/python3 -W ignore tests/integration/test_hardening.py soak "${1:-10}"
