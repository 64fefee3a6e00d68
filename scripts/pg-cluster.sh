#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests: `start DIR` initialises a cluster in DIR
# (owned by a non-root user: PostgreSQL refuses to run as root), starts it on a free
# port on 127.0.0.1 only, and prints the admin DSN; `stop DIR` stops it. Installs the
# server with apt-get when the binaries are missing.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

ensure_binaries() {
  if [ -x "$PG_BIN/initdb" ]; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "pg-cluster: PostgreSQL binaries missing; installing postgresql with apt-get" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
  if [ ! -x "$PG_BIN/initdb" ]; then
    echo "pg-cluster: no PostgreSQL server binaries at $PG_BIN (install the postgresql package)" >&2
    exit 1
  fi
}

# Run a command as the cluster owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir=$1
  ensure_binaries
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    # The owner must be able to reach DIR: open the (temporary) parent for traversal.
    chmod o+x "$(dirname "$dir")"
    chown postgres "$dir"
    chmod 700 "$dir"
  fi
  as_owner "$PG_BIN/initdb" -D "$dir/data" -U timedb --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  local port
  port=$(free_port)
  # Durability is irrelevant for a test cluster; speed is not.
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "postgresql://timedb@127.0.0.1:$port/postgres"
}

stop() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
