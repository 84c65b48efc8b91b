#!/bin/bash
# Crash safety (issue 9): starts authd (BUILD/bin/authd, temp state dir),
# drives concurrent assess / verify (fido2) / redeem load, kills it with
# SIGKILL at a random moment, restarts it and checks: audit_verify valid;
# every token a client received has its audit record; no challenge approved
# twice; no redeemed token redeemable again; daily totals (the approvals
# table) equal the approved transfers in the audit log, at the amounts sent.
#
#   scripts/crash-loop.sh [N] [SEED]        (default 200 iterations)
#   BUILD=build-hard scripts/crash-loop.sh 500
set -eu
cd "$(dirname "$0")/.."
N=${1:-200}
SEED=${2:-$(date +%s)}
export AUTHD_BUILD_DIR=${AUTHD_BUILD_DIR:-$PWD/${BUILD:-build}}
exec /usr/bin/python3 -W ignore tests/integration/test_hardening.py crash-loop "$N" --seed "$SEED"
