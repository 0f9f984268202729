#!/bin/sh
# An `activate` hook for pgBackRest 2.45 TLS servers (the e2e test uses it):
# makes the cell's pgBackRest TLS server reload its configuration and
# certificates, and returns once it has.
#
#   pgbackrest-reload.sh PIDFILE LOGFILE
#
# in a topology:
#   activate = "/path/to/pgbackrest-reload.sh /run/pgbackrest-{cell}.pid ${PGBR_DEPLOY_DIR}/log/all-server.log"
#
# PIDFILE holds the server's pid; LOGFILE is its log (`<log_path>/all-server.log`,
# written at log-level-file=detail, where the server logs "configuration
# reload end" once it listens again).
#
# Why wait: pgBackRest 2.45 re-binds its port on SIGHUP right after the
# signal ends a blocking accept(). If a connection (pgbr's health probe,
# started as soon as this hook returns) is accepted at the same instant, the
# child forked for it still holds the listening socket, the bind fails with
# "Address already in use" and the server exits (fixed in 2.54 by retrying
# the bind). Returning only after the reload keeps the probe out of that
# window; a dead server fails the hook, so pgbr reverts the cell.
set -eu

pidfile=$1
log=$2
pid=$(cat "$pidfile")
reloads() { grep -c 'configuration reload end' "$log" || true; }

before=$(reloads)
kill -HUP "$pid"
tries=0
while [ "$(reloads)" -le "$before" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "pgBackRest server $pid (${PGBR_CELL:-?}) exited while reloading:" >&2
    tail -n 3 "$log" >&2
    exit 1
  fi
  tries=$((tries + 1))
  if [ "$tries" -ge 100 ]; then
    echo "pgBackRest server $pid (${PGBR_CELL:-?}) did not reload within 10s" >&2
    exit 1
  fi
  sleep 0.1
done
echo "pgBackRest server $pid (${PGBR_CELL:-?}) reloaded for generation ${PGBR_GENERATION:-?}"
