#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks.
#
#   pg_cluster.sh start DIR   initdb in DIR/data, start it listening only on a
#                             Unix socket in DIR, create database "authd";
#                             prints the libpq URL on stdout
#   pg_cluster.sh stop DIR    stop it (fast shutdown); DIR is left for the caller
#   pg_cluster.sh url DIR     print the URL again
#
# initdb refuses to run as root, so as root the cluster runs as an
# unprivileged user (AUTHD_PG_USER, default "nobody"). The server binaries
# come from PG_BIN, else the newest /usr/lib/postgresql/*/bin.
# Exit status: 0 ok, 1 failure (messages on stderr; the server log is DIR/pg.log).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || { echo "usage: $0 start|stop|url DIR" >&2; exit 2; }

if [[ -z ${PG_BIN:-} ]]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [[ -z $PG_BIN || ! -x $PG_BIN/initdb ]]; then
  echo "pg_cluster: no PostgreSQL server binaries (install Debian's 'postgresql' package)" >&2
  exit 1
fi

run() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "${AUTHD_PG_USER:-nobody}" -- "$@"
  else
    "$@"
  fi
}

url() {
  echo "postgresql://authd@/authd?host=$dir"
}

case $cmd in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown "${AUTHD_PG_USER:-nobody}" "$dir"
  fi
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    run "$PG_BIN/initdb" -D "$dir/data" -U authd -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
max_connections = 200
shared_buffers = 128MB
fsync = ${AUTHD_PG_FSYNC:-on}
synchronous_commit = on
log_min_messages = warning
CONF
  fi
  run "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 60 start >/dev/null || {
    echo "pg_cluster: server did not start:" >&2; tail -20 "$dir/pg.log" >&2; exit 1; }
  run "$PG_BIN/psql" -h "$dir" -U authd -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'authd'" | grep -q 1 ||
    run "$PG_BIN/createdb" -h "$dir" -U authd authd
  url
  ;;
stop)
  if [[ -f $dir/data/postmaster.pid ]]; then
    run "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  fi
  ;;
url)
  url
  ;;
*)
  echo "usage: $0 start|stop|url DIR" >&2
  exit 2
  ;;
esac
