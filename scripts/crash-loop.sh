#!/bin/bash
# Crash safety (issue 9): starts authd (BUILD/bin/authd, temp state dir),
# drives concurrent assess / verify (fido2) / redeem load, kills it with
# SIGKILL at a random moment, restarts it and checks: audit_verify valid;
# every token a client received has its audit record; no challenge approved
# twice; no redeemed token redeemable again; the approvals table equals the
# approved transfers in the audit log, at the amounts sent, and every daily
# total (daily_totals) equals the sum of its approvals.
#
# STORE=pg runs the same loop on PostgreSQL: a throwaway cluster
# (tests/integration/pg_cluster.sh) in a temp dir, stopped at the end;
# INSTANCES=2 (the default with STORE=pg) runs two authd sharing it and the
# signing keys, and each iteration SIGKILLs one of them or both.
#
#   scripts/crash-loop.sh [N] [SEED]        (default 200 iterations, SQLite)
#   STORE=pg scripts/crash-loop.sh 200 7    (PostgreSQL, two instances)
#   STORE=pg INSTANCES=1 scripts/crash-loop.sh 200
#   BUILD=build-hard scripts/crash-loop.sh 500
set -eu
cd "$(dirname "$0")/.."
N=${1:-200}
SEED=${2:-$(date +%s)}
STORE=${STORE:-sqlite}
if [ "$STORE" = pg ]; then INSTANCES=${INSTANCES:-2}; else INSTANCES=${INSTANCES:-1}; fi
export AUTHD_BUILD_DIR=${AUTHD_BUILD_DIR:-$PWD/${BUILD:-build}}
exec /usr/bin/python3 -W ignore tests/integration/test_hardening.py crash-loop "$N" --seed "$SEED" \
  --store "$STORE" --instances "$INSTANCES"
