#!/usr/bin/env bash
# README command 1: install dependencies, build, run authd on its embedded
# default (no config file) and show a short scripted demo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup-deps.sh"
bash "$here/scripts/build.sh"
bin="$here/build/bin"
tmp="$(mktemp -d /tmp/authd-demo.XXXXXX)"
sock="$tmp/authd.sock"
"$bin/authd" --state-dir "$tmp/state" --socket "$sock" --foreground 2>"$tmp/authd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
export AUTHD_SOCKET="$sock"
step() { printf '\n== %s\n' "$*"; }

step "authctl health"
"$bin/authctl" health

txn() { # id account_type amount device
  cat <<JSON
{"id":"$1","customer":"C-42","account":"0123456789","account_type":"$2","account_opened":1700000000,
 "amount":$3,"currency":"VND","payee":{"account":"9876543210","bank":"VCB","name":"Cong ty ABC"},
 "channel":"internet_banking","src_ip":"203.0.113.9","device_id":"$4","risk_flag":false}
JSON
}
step "assess: business transfer of 250,000,000 VND (step-up expected)"
txn "T-$RANDOM-1" business 250000000 dev-7 | "$bin/authctl" assess -

step "admin: trust device dev-7 is not possible by hand; use a config with new_device = off to see an allow"
printf '[policy]\nnew_device = off\n' >"$tmp/authd.conf"
kill $pid; wait $pid 2>/dev/null || true
"$bin/authd" --state-dir "$tmp/state" --socket "$sock" --foreground --config "$tmp/authd.conf" 2>>"$tmp/authd.log" &
pid=$!
for _ in $(seq 100); do "$bin/authctl" health >/dev/null 2>&1 && break; sleep 0.1; done

step "assess: personal transfer of 250,000 VND (allow with a signed token, decoded below)"
txn "T-$RANDOM-2" personal 250000 dev-7 | "$bin/authctl" assess -

step "freeze the account, then the same kind of transfer is denied"
"$bin/authctl" freeze 0123456789 --reason "demo: reported as mule account"
txn "T-$RANDOM-3" personal 250000 dev-7 | "$bin/authctl" assess - || true
"$bin/authctl" unfreeze 0123456789

step "authctl audit verify"
"$bin/authctl" audit verify
printf '\nauthd log:\n'; cat "$tmp/authd.log"
