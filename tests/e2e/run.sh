#!/usr/bin/env bash
# The end-to-end scenario of pgbr against real PostgreSQL and pgBackRest
# (`make e2e`; docs/e2e-walkthrough.md tells the same story for operators),
# on two combinations:
#
#   tests/e2e/run.sh            PostgreSQL 15 + pgBackRest 2.45 (Debian 12, this machine)
#   tests/e2e/run.sh --trixie   PostgreSQL 17 + pgBackRest 2.55.1 (Debian 13) in a
#                               debootstrapped trixie root (tests/e2e/trixie-root.sh,
#                               cached); the scenario re-runs itself inside it with
#                               pgbr copied in: pgbr is a static-enough binary for
#                               trixie's newer C library, while trixie's PostgreSQL
#                               and pgBackRest need that library and cannot run here.
#
# Three cells, zone1 (primary) and zone2/zone3 (streaming standbys), every
# file under one temporary root, every port chosen free at start. With
# `--hosts`, each cell is on a host of its own (examples/testhosts.rs: a
# network and mount namespace with its own address and sshd); its
# PostgreSQL, pgBackRest server and files live there only, `host` is the
# host's IP address, and pgbr deploys over SSH. Steps, each printed as
# `PASS <step> (<seconds>s)` or `FAIL <step>`:
#
#   topology       generate the topology from tests/e2e/*.toml.in; check, render
#   bootstrap      apply --bootstrap zone1; initdb, stanza-create, first full backup
#   standbys       pg_basebackup zone2/zone3; plan shows bootstrap -> full; apply
#   tls-servers    a pgBackRest TLS server per cell; `check` from every cell
#   standby-backup a backup from each standby, proven to read that standby
#   rotation       leaves due: plan names the renewal; apply rotates cell by
#                  cell, `activate` reloads each server (contrib/pgbackrest-reload.sh),
#                  health = "tls"; the same server pids present the new leaves
#   rollback       rollback --force to the pre-rotation generation, and back
#   restore        restore the latest backup into a fresh data dir; rows are there
#
# Must run as root (CI does); servers run as the `postgres` user.
#
# Environment:
#   PGBR          the pgbr binary (default: target/debug/pgbr)
#   TESTHOSTS     the test hosts helper, for --hosts (default: target/debug/examples/testhosts)
#   E2E_FAIL_AT   inject a failure at the end of this step (tests the failure path)
#   E2E_KEEP=1    keep the temporary root after a successful run
#   E2E_VERBOSE=1 also print every step's output (it always goes to <root>/steps/)
#   E2E_TIMEOUT   seconds for each bounded wait (default 60)
#   E2E_CMD_TIMEOUT  seconds any one command may run (default 300)
#   E2E_PGBACKREST_VERSION  `[pgbackrest] version` of the topology (default 2.45)
#   E2E_HOST      every cell's `host` (default localhost; the trixie run uses
#                 127.0.0.1, so peers verify the leaves' IP SANs)

set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBACKREST=${PGBACKREST:-/usr/bin/pgbackrest}
PGBR=${PGBR:-${CARGO_TARGET_DIR:-$REPO/target}/debug/pgbr}
TESTHOSTS=${TESTHOSTS:-${CARGO_TARGET_DIR:-$REPO/target}/debug/examples/testhosts}
TIMEOUT=${E2E_TIMEOUT:-60}
CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-300}
PGBACKREST_VERSION=${E2E_PGBACKREST_VERSION:-2.45}
HOST=${E2E_HOST:-localhost}
STANZA=e2e
CELLS=(zone1 zone2 zone3)
PRIMARY=zone1
STANDBYS=(zone2 zone3)
STEPS=(topology bootstrap standbys tls-servers standby-backup rotation rollback restore)

# fd 3/4: the real stdout/stderr, while a step's output goes to its log.
exec 3>&1 4>&2

ROOT=""            # the temporary root
STEP=""            # the step running now ("" between steps)
STEP_LOG=/dev/null # its output
declare -A PG_PORT=() PG_PID=() SERVER_PID=() RUNUSER_PID=() TLS_PORT=()
declare -A OLD_FPR=() NEW_FPR=()
HOSTS=""           # --hosts: each cell on a test host of its own
declare -A HOST_PID=() HOST_ADDR=()  # --hosts: per cell (and `restore`)
HOSTS_HELPER=""    # --hosts: the helper's pid (its stdin is fd 5)
HOSTS_OPERATOR=""  # --hosts: this machine's address on the hosts' network
CELL_ROOT=""       # where cells keep their files (private to a host with --hosts)
LABELS=()          # row labels written so far, for the restore check

# ---------------------------------------------------------------- helpers

fail() {
  echo "error: $*" >&2
  exit 1
}

# on CELL CMD...: runs CMD on CELL's host (with --hosts, in its network
# and mount namespaces; else here).
on() {
  local cell=$1
  shift
  if [[ -n $HOSTS ]]; then
    nsenter -t "${HOST_PID[$cell]}" -n -m -- "$@"
  else
    "$@"
  fi
}

# A command as postgres on CELL's host, killed if it runs longer than CMD_TIMEOUT.
as_pg() {
  local cell=$1
  shift
  on "$cell" runuser -u postgres -- timeout "$CMD_TIMEOUT" "$@"
}

# Prints a command as an operator would type it (on CELL's host), then
# runs it as postgres there.
run_pg() {
  local cell=$1 cmd=$2
  shift 2
  printf '%s$ runuser -u postgres -- %s %s\n' "${HOSTS:+[$cell] }" "${cmd##*/}" "$*" >&2
  as_pg "$cell" "$cmd" "$@"
}

pgbr() {
  printf '$ pgbr --state %s %s\n' "$ROOT/state" "$*" >&2
  timeout "$CMD_TIMEOUT" "$PGBR" --state "$ROOT/state" "$@"
}

data_dir() { echo "$CELL_ROOT/$1/pg_data"; }
sock_dir() { echo "$CELL_ROOT/$1/pg_sockets"; }
deploy_dir() { echo "$CELL_ROOT/$1/pgbackrest"; }
conf() { echo "$CELL_ROOT/$1/pgbackrest/current/pgbackrest.conf"; }
run_dir() { echo "$CELL_ROOT/$1/run"; }
pidfile() { echo "$CELL_ROOT/$1/run/pgbackrest-server.pid"; }
pg_log() { echo "$CELL_ROOT/$1/postgres.log"; }
# Where peers reach a cell: its host's address, or this machine.
addr() { if [[ -n $HOSTS ]]; then echo "${HOST_ADDR[$1]}"; else echo 127.0.0.1; fi; }

# pgBackRest as postgres with a cell's deployed config.
pgbackrest_at() {
  local cell=$1
  shift
  printf '%s$ pgbackrest --config=%s --stanza=%s %s\n' "${HOSTS:+[$cell] }" "$(conf "$cell")" "$STANZA" "$*" >&2
  as_pg "$cell" "$PGBACKREST" --config="$(conf "$cell")" --stanza="$STANZA" "$@"
}

# psql on a cell's socket; prints unaligned tuples.
sql_at() {
  local cell=$1 sql=$2 port=${PG_PORT[$1]}
  as_pg "$cell" "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
    -h "$(sock_dir "$cell")" -p "$port" -U postgres -d postgres -c "$sql"
}

# sql_is CELL SQL VALUE: the query's result is VALUE.
sql_is() { [[ $(sql_at "$1" "$2") == "$3" ]]; }

# wait_until WHAT SECONDS CMD...: retries CMD until it succeeds, bounded.
wait_until() {
  local what=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

# Something listens on TCP port $1 (ss, or a connect to 127.0.0.1 without
# it), here or, with a cell $2, on that cell's host.
port_busy() {
  local cell=${2:-}
  if [[ -z $cell ]]; then
    if command -v ss >/dev/null; then
      ss -Hltn "sport = :$1" | grep -q .
    else
      (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
  elif command -v ss >/dev/null; then
    on "$cell" ss -Hltn "sport = :$1" | grep -q .
  else
    # shellcheck disable=SC2016 # $1 belongs to the inner shell
    on "$cell" bash -c ': <>"/dev/tcp/127.0.0.1/$1"' sh "$1" 2>/dev/null
  fi
}

declare -A TAKEN=()
PORT=""
# Sets PORT to a free TCP port not handed out yet; with N, to the first of N
# consecutive ones. (Not in $(...): TAKEN must outlive the call.)
free_port() {
  local n=${1:-1} tries=0 p i ok
  while ((tries++ < 500)); do
    p=$((20000 + RANDOM % 40000))
    ok=1
    for ((i = 0; i < n; i++)); do
      if [[ -n ${TAKEN[$((p + i))]:-} ]] || port_busy $((p + i)); then
        ok=""
        break
      fi
    done
    if [[ -n $ok ]]; then
      for ((i = 0; i < n; i++)); do TAKEN[$((p + i))]=1; done
      PORT=$p
      return
    fi
  done
  fail "no free port found"
}

# The SHA-256 fingerprint of a PEM certificate file on a cell's host.
file_fpr() { on "$1" openssl x509 -noout -fingerprint -sha256 -in "$2" | cut -d= -f2; }

# The fingerprint of the certificate a cell's TLS server presents, fetched
# with the cell's own client certificate (the server requires one).
served_fpr() {
  local cell=$1 tls d
  d="$(deploy_dir "$cell")/current/tls"
  tls=$(on "$cell" timeout 10 openssl s_client -connect "$(addr "$cell"):${TLS_PORT[$cell]}" \
    -servername localhost -verify_return_error -CAfile "$d/ca.crt" \
    -cert "$d/server.crt" -key "$d/server.key" </dev/null 2>/dev/null) ||
    fail "TLS handshake with $cell's server on $(addr "$cell"):${TLS_PORT[$cell]} failed"
  openssl x509 -noout -fingerprint -sha256 <<<"$tls" | cut -d= -f2
}

# Writes the e2e settings at the end of a data dir's postgresql.conf,
# replacing the ones a copied data dir brought along.
pg_configure() {
  local cell=$1 data=$2 port=$3 sock=$4 archive=$5
  local f="$data/postgresql.conf" listen=""
  # With --hosts, standbys stream from the primary's address.
  if [[ -n $HOSTS ]]; then listen=$(addr "$cell"); fi
  on "$cell" sed -i '/^# --- e2e ---$/,$d' "$f"
  on "$cell" tee -a "$f" >/dev/null <<EOF
# --- e2e ---
port = $port
listen_addresses = '$listen'
unix_socket_directories = '$sock'
wal_level = replica
archive_mode = $archive
archive_command = '$PGBACKREST --config=$(conf "$cell") --stanza=$STANZA archive-push %p'
max_wal_size = 64MB
min_wal_size = 32MB
fsync = off
log_statement = 'all'
log_line_prefix = '%m [%p] %a: '
EOF
  if [[ -n $HOSTS ]] && ! on "$cell" grep -q '^# --- e2e ---$' "$data/pg_hba.conf"; then
    on "$cell" tee -a "$data/pg_hba.conf" >/dev/null <<EOF
# --- e2e ---
host all all $HOSTS_OPERATOR/24 trust
host replication all $HOSTS_OPERATOR/24 trust
EOF
  fi
}

# pg_start NAME DATA LOG: starts a postmaster, waits for it, records its pid.
pg_start() {
  local name=$1 data=$2 log=$3
  run_pg "$name" "$PGBIN/pg_ctl" -D "$data" -l "$log" -w -t "$TIMEOUT" start
  PG_PID[$name]=$(on "$name" head -n1 "$data/postmaster.pid")
}

# stop_all SIG PID...: signals each pid, waits (bounded) for all of them to
# exit, then SIGKILLs the ones left.
stop_all() {
  local sig=$1 pid i alive=()
  shift
  for pid; do kill "-$sig" "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 150; i++)); do
    alive=()
    for pid; do
      if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
    done
    ((${#alive[@]} > 0)) || return 0
    sleep 0.2
  done
  echo "warning: pid(s) ${alive[*]} ignored SIG$sig for 30s; killing them" >&4
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

# Starts a cell's pgBackRest TLS server in the background as postgres; its
# pid goes to <root>/<cell>/run/pgbackrest-server.pid for `activate`.
start_server() {
  local cell=$1 pf
  pf=$(pidfile "$cell")
  on "$cell" rm -f "$pf"
  printf '%s$ pgbackrest --config=%s server &\n' "${HOSTS:+[$cell] }" "$(conf "$cell")" >&2
  # shellcheck disable=SC2016 # $$, $1 and $2 belong to the inner shell
  on "$cell" runuser -u postgres -- sh -c 'echo $$ >"$1"; exec >"$2" 2>&1; shift 2; exec "$@"' \
    sh "$pf" "$(run_dir "$cell")/server.out" "$PGBACKREST" --config="$(conf "$cell")" server \
    </dev/null >/dev/null 2>&1 &
  RUNUSER_PID[$cell]=$!
  wait_until "$cell's server pid file" "$TIMEOUT" on "$cell" test -s "$pf"
  SERVER_PID[$cell]=$(on "$cell" cat "$pf")
  wait_until "$cell's server on port ${TLS_PORT[$cell]}" "$TIMEOUT" port_busy "${TLS_PORT[$cell]}" "$cell"
  echo "$cell: pgBackRest server pid ${SERVER_PID[$cell]} on $(addr "$cell"):${TLS_PORT[$cell]}"
}

# Writes 100 rows labelled LABEL on the primary.
write_rows() {
  local label=$1
  sql_at "$PRIMARY" "insert into e2e_rows (label, n) select '$label', g from generate_series(1, 100) g"
  LABELS+=("$label")
  echo "wrote 100 rows labelled '$label' on $PRIMARY"
}

# Waits until both standbys have replayed everything the primary wrote.
wait_replayed() {
  local lsn c
  lsn=$(sql_at "$PRIMARY" "select pg_current_wal_lsn()")
  for c in "${STANDBYS[@]}"; do
    wait_until "$c to replay $lsn" "$TIMEOUT" \
      sql_is "$c" "select pg_last_wal_replay_lsn() >= '$lsn'" t
  done
}

# Every cell's `pgbackrest check` passes without a peer left unchecked.
check_all_cells() {
  local c out
  for c in "${CELLS[@]}"; do
    out=$(pgbackrest_at "$c" --log-level-console=info check 2>&1) || {
      echo "$out"
      fail "pgbackrest check from $c failed"
    }
    echo "$out"
    if grep -qi "unable to check" <<<"$out"; then
      fail "pgbackrest check from $c could not check a peer"
    fi
  done
}

# Every server presents the leaf deployed in its cell's current generation,
# and runs with the pid it was started with.
check_servers_present_current() {
  local c want got
  for c in "${CELLS[@]}"; do
    want=$(file_fpr "$c" "$(deploy_dir "$c")/current/tls/server.crt")
    got=$(served_fpr "$c")
    [[ $got == "$want" ]] ||
      fail "$c's server presents $got, but $(deploy_dir "$c")/current/tls/server.crt is $want"
    if [[ $(on "$c" cat "$(pidfile "$c")") != "${SERVER_PID[$c]}" ]] || ! kill -0 "${SERVER_PID[$c]}"; then
      fail "$c's server is not the process started in step tls-servers (pid ${SERVER_PID[$c]})"
    fi
    echo "$c: server pid ${SERVER_PID[$c]} presents $got"
  done
}

# The newest generation number in the store.
newest_generation() {
  timeout "$CMD_TIMEOUT" "$PGBR" --state "$ROOT/state" generations --json |
    grep -o '"number": *[0-9]*' | grep -o '[0-9]*$' | sort -n | tail -n1
}

# ---------------------------------------------------------------- the steps

step_topology() {
  local c
  for c in "${CELLS[@]}" restore; do
    free_port
    PG_PORT[$c]=$PORT
  done
  local base i=0
  free_port 3
  base=$PORT
  for c in "${CELLS[@]}"; do TLS_PORT[$c]=$((base + i++)); done
  echo "ports: postgres ${PG_PORT[zone1]} ${PG_PORT[zone2]} ${PG_PORT[zone3]} (restore ${PG_PORT[restore]}), TLS $base-$((base + 2))"

  for c in "${CELLS[@]}" restore; do
    on "$c" mkdir -p "$CELL_ROOT/$c/pg_sockets" "$CELL_ROOT/$c/run"
    on "$c" chown -R postgres:postgres "$CELL_ROOT/$c"
  done
  install -d -o postgres -g postgres -m 750 "$ROOT/repo"

  local topo=$TOPO
  if [[ -n $HOSTS ]]; then topo="$ROOT/cells.toml"; fi
  sed -e "s|@ROOT@|$ROOT|g" -e "s|@CELL_ROOT@|$CELL_ROOT|g" -e "s|@MODULES@|$REPO/modules|g" \
    -e "s|@TLS_BASE@|$base|g" -e "s|@PGBACKREST_VERSION@|$PGBACKREST_VERSION|g" -e "s|@HOST@|$HOST|g" \
    -e "s|@PG_PORT_zone1@|${PG_PORT[zone1]}|g" \
    -e "s|@PG_PORT_zone2@|${PG_PORT[zone2]}|g" \
    -e "s|@PG_PORT_zone3@|${PG_PORT[zone3]}|g" \
    "$HERE/topology.toml.in" >"$topo"
  if [[ -n $HOSTS ]]; then
    sed -e "s|@SSH_CONFIG@|$ROOT/ssh_config|g" \
      -e "s|@ADDR_zone1@|$(addr zone1)|g" \
      -e "s|@ADDR_zone2@|$(addr zone2)|g" \
      -e "s|@ADDR_zone3@|$(addr zone3)|g" \
      "$HERE/hosts.toml.in" >"$TOPO"
  fi
  sed -e "s|@CELL_ROOT@|$CELL_ROOT|g" -e "s|@HERE@|$HERE|g" "$HERE/hooks.toml.in" >"$HOOKS"
  if grep -n '@[A-Za-z_0-9]*@' "$TOPO" "$topo" "$HOOKS"; then fail "unfilled placeholder"; fi

  pgbr check "$TOPO"
  pgbr check "$HOOKS"
  pgbr render "$TOPO" --out "$ROOT/render"
  # bootstrap: pg1 only; full: every other cell as pg2/pg3, over TLS.
  pgbr render "$TOPO" --cell "$PRIMARY" --phase bootstrap | tee "$ROOT/render/bootstrap.conf"
  if grep -q '^pg2-' "$ROOT/render/bootstrap.conf"; then fail "the bootstrap phase names peers"; fi
  grep -q '^pg3-host-type=tls$' "$ROOT/render/$PRIMARY/pgbackrest.conf" ||
    fail "the full phase of $PRIMARY lacks pg3"
}

step_bootstrap() {
  pgbr apply "$TOPO" --bootstrap "$PRIMARY" --yes --now "$PAST" --allow-clock-skew
  local d
  d=$(deploy_dir "$PRIMARY")
  [[ $(on "$PRIMARY" readlink "$d/current") == generations/1 ]] || fail "$d/current does not point at generations/1"
  [[ $(on "$PRIMARY" stat -c %U "$d/current/tls/server.key") == postgres ]] || fail "server.key is not owned by postgres"
  for c in "${STANDBYS[@]}"; do
    ! on "$c" test -e "$(deploy_dir "$c")" || fail "apply --bootstrap touched $c"
  done
  # Over SSH pgbr copied its agent alone (pgbr-agent, built next to it).
  if [[ -n $HOSTS && -x ${PGBR%/*}/pgbr-agent ]]; then
    [[ $(on "$PRIMARY" sh -c 'ls /root/.cache/pgbr/*/') == pgbr-agent ]] ||
      fail "the cache on $PRIMARY's host does not hold just pgbr-agent"
  fi

  run_pg "$PRIMARY" "$PGBIN/initdb" -D "$(data_dir "$PRIMARY")" -U postgres -A trust \
    -E UTF8 --locale=C --no-sync >/dev/null
  pg_configure "$PRIMARY" "$(data_dir "$PRIMARY")" "${PG_PORT[$PRIMARY]}" \
    "$(sock_dir "$PRIMARY")" on
  pg_start "$PRIMARY" "$(data_dir "$PRIMARY")" "$(pg_log "$PRIMARY")"

  pgbackrest_at "$PRIMARY" --log-level-console=info stanza-create
  sql_at "$PRIMARY" "create table e2e_rows (label text not null, n int not null, at timestamptz not null default now())"
  write_rows "before the bootstrap backup"
  pgbackrest_at "$PRIMARY" --type=full --log-level-console=info backup
  pgbackrest_at "$PRIMARY" info
}

step_standbys() {
  local c
  local from
  # Locally through the primary's socket; across hosts over TCP.
  from=$(sock_dir "$PRIMARY")
  if [[ -n $HOSTS ]]; then from=$(addr "$PRIMARY"); fi
  for c in "${STANDBYS[@]}"; do
    run_pg "$c" "$PGBIN/pg_basebackup" -h "$from" -p "${PG_PORT[$PRIMARY]}" \
      -U postgres -D "$(data_dir "$c")" -R -X stream -c fast --no-sync
    pg_configure "$c" "$(data_dir "$c")" "${PG_PORT[$c]}" "$(sock_dir "$c")" on
    pg_start "$c" "$(data_dir "$c")" "$(pg_log "$c")"
    [[ $(sql_at "$c" "select pg_is_in_recovery()") == t ]] || fail "$c is not a standby"
  done
  wait_until "two streaming standbys" "$TIMEOUT" \
    sql_is "$PRIMARY" "select count(*) from pg_stat_replication where state = 'streaming'" 2
  wait_replayed

  local out
  out=$(pgbr plan "$TOPO" --now "$PAST")
  echo "$out"
  grep -Eq "^~ $PRIMARY: .*\(bootstrap -> full\)" <<<"$out" ||
    fail "the plan does not show $PRIMARY's move from bootstrap to full"
  for c in "${STANDBYS[@]}"; do
    grep -Eq "^\+ $c: create \(full\)" <<<"$out" || fail "the plan does not create $c"
  done

  # pgbr reads the release every cell runs: a topology naming another one
  # is refused, with each cell's release.
  local other=2.50 wrong="$ROOT/other-release.toml" rc=0
  [[ $PGBACKREST_VERSION != "$other" ]] || other=2.51
  printf 'imports = ["topology.toml"]\n[pgbackrest]\nversion = "%s"\n' "$other" >"$wrong"
  out=$(pgbr apply "$wrong" --yes --now "$PAST" --allow-clock-skew 2>&1) || rc=$?
  echo "$out"
  ((rc == 1)) || fail "apply with \`[pgbackrest] version = \"$other\"\` exited $rc, expected 1"
  local runs
  runs=$("$PGBACKREST" version | sed -n 's/^pgBackRest //p')
  grep -q "zone1 runs $runs; zone2 runs $runs; zone3 runs $runs" <<<"$out" ||
    fail "the refusal does not name every cell's release ($runs)"

  pgbr apply "$TOPO" --yes --now "$PAST" --allow-clock-skew
  for c in "${CELLS[@]}"; do
    on "$c" test -f "$(conf "$c")" || fail "$c has no deployed config"
    on "$c" grep -q '^pg3-host=' "$(conf "$c")" || fail "$c's config is not in the full phase"
  done
  pgbr plan "$TOPO" --now "$PAST" --detailed-exitcode
}

step_tls_servers() {
  local c out runs
  for c in "${CELLS[@]}"; do start_server "$c"; done
  check_all_cells
  # With cells named by IP, `check` above went to every peer by IP: on
  # pgBackRest >= 2.53 the leaves carry the address as an IP SAN only.
  if [[ $HOST == 127.0.0.1 ]]; then
    local sans
    sans=$(openssl x509 -noout -ext subjectAltName -in "$(deploy_dir zone1)/current/tls/server.crt")
    echo "$sans"
    grep -q "IP Address:127.0.0.1" <<<"$sans" || fail "the leaf has no IP SAN 127.0.0.1"
    if grep -q "DNS:127.0.0.1" <<<"$sans"; then fail "the leaf still has 127.0.0.1 as a DNS SAN"; fi
  fi
  # status --probe: the release each host runs and each server states,
  # next to the one the topology expects.
  runs=$("$PGBACKREST" version | sed -n 's/^pgBackRest //p')
  out=$(pgbr status "$TOPO" --probe --now "$PAST")
  echo "$out"
  [[ $(grep -c "pgBackRest: $runs installed (expected $PGBACKREST_VERSION)" <<<"$out") == 3 ]] ||
    fail "status --probe does not show pgBackRest $runs on every cell"
  [[ $(grep -c "probe: ok, .*pgBackRest $runs, expected $PGBACKREST_VERSION)" <<<"$out") == 3 ]] ||
    fail "status --probe does not show every server's stated release"
}

# A full backup run on a standby must read that standby's data files (and
# only pg_control from the primary), and pgBackRest's replay wait and
# checkpoint must reach that standby's Postgres, not the other one.
step_standby_backup() {
  local c other s out
  declare -A log_size=()
  for c in "${STANDBYS[@]}"; do
    other=$([[ $c == zone2 ]] && echo zone3 || echo zone2)
    write_rows "before the backup from $c"
    wait_replayed
    for s in "${CELLS[@]}"; do log_size[$s]=$(on "$s" stat -c %s "$(pg_log "$s")"); done

    out=$(pgbackrest_at "$c" --backup-standby --type=full --log-level-console=detail backup 2>&1)
    grep -Ev 'DETAIL: (backup|match) file' <<<"$out" || true
    echo "[...] $(grep -c 'backup file' <<<"$out") 'backup file' lines, for example:"
    grep -m3 "backup file $(data_dir "$c")/base/" <<<"$out" ||
      fail "no base/ file was copied from $c's data dir ($(data_dir "$c"))"
    grep "backup file .*$(data_dir "$PRIMARY")/global/pg_control" <<<"$out" ||
      fail "pg_control was not copied from the primary"
    if grep -E "backup file .*($(data_dir "$other")|$(data_dir "$PRIMARY"))/base/" <<<"$out"; then
      fail "data files were copied from another cell than $c"
    fi

    # pgBackRest's statements, by application_name (the log line prefix):
    # the replay wait (`select replayLsn::text, ...`) and the checkpoint.
    local mine theirs wait='statement: select replayLsn' ckpt='statement: checkpoint'
    mine=$(on "$c" tail -c +$((log_size[$c] + 1)) "$(pg_log "$c")" | grep 'pgBackRest \[backup\]' || true)
    theirs=$(on "$other" tail -c +$((log_size[$other] + 1)) "$(pg_log "$other")" | grep 'pgBackRest \[backup\]' || true)
    echo "$c's Postgres log:"
    grep -E "$wait|$ckpt" <<<"$mine" || true
    grep -q "$wait" <<<"$mine" || fail "$c's Postgres log shows no replay wait by pgBackRest"
    grep -q "$ckpt" <<<"$mine" || fail "$c's Postgres log shows no checkpoint by pgBackRest"
    if grep -E "$wait|$ckpt" <<<"$theirs"; then
      fail "$other's Postgres log shows the replay wait/checkpoint meant for $c"
    fi
  done
  pgbackrest_at "$PRIMARY" info
}

step_rotation() {
  local c out rc=0
  for c in "${CELLS[@]}"; do OLD_FPR[$c]=$(served_fpr "$c"); done

  # At the real clock every leaf issued "300 days ago" is inside its window.
  out=$(pgbr plan "$HOOKS" --detailed-exitcode) || rc=$?
  echo "$out"
  ((rc == 2)) || fail "plan --detailed-exitcode exited $rc, expected 2 (changes)"
  for c in "${CELLS[@]}"; do
    grep -Eq "leaf $c: renew now, .*expires in [0-9]+ days" <<<"$out" ||
      fail "the plan does not renew $c's leaf"
  done

  pgbr apply "$HOOKS" --yes
  check_servers_present_current
  for c in "${CELLS[@]}"; do
    NEW_FPR[$c]=$(served_fpr "$c")
    [[ ${NEW_FPR[$c]} != "${OLD_FPR[$c]}" ]] || fail "$c's server still presents its old leaf"
  done
  pgbr plan "$HOOKS" --detailed-exitcode

  write_rows "before the backup after rotation"
  wait_replayed
  pgbackrest_at zone3 --backup-standby --type=incr --log-level-console=info backup
}

step_rollback() {
  local newest c out rc=0
  newest=$(newest_generation)
  echo "newest generation: $newest"

  # Its certificates are due: refused without --force.
  out=$(pgbr rollback --yes 2>&1) || rc=$?
  echo "$out"
  ((rc == 1)) || fail "rollback to due certificates exited $rc without --force, expected 1"
  grep -q "due for renewal" <<<"$out" || fail "the refusal does not say why"

  pgbr rollback --yes --force
  check_servers_present_current
  for c in "${CELLS[@]}"; do
    [[ $(served_fpr "$c") == "${OLD_FPR[$c]}" ]] || fail "$c's server does not present the pre-rotation leaf"
  done
  check_all_cells

  pgbr rollback --to "$newest" --yes
  check_servers_present_current
  for c in "${CELLS[@]}"; do
    [[ $(served_fpr "$c") == "${NEW_FPR[$c]}" ]] || fail "$c's server does not present the rotated leaf"
  done
  pgbr generations
}

step_restore() {
  local data label got
  data=$(data_dir restore)
  pgbackrest_at "$PRIMARY" --pg1-path="$data" --type=immediate --target-action=promote \
    --log-level-console=info restore
  rm -f "$data/standby.signal"
  pg_configure restore "$data" "${PG_PORT[restore]}" "$(sock_dir restore)" off
  pg_start restore "$data" "$(pg_log restore)"
  wait_until "the restored cluster to promote" "$TIMEOUT" \
    sql_is restore "select pg_is_in_recovery()" f
  sql_at restore "select label, count(*) from e2e_rows group by label order by min(at)"
  for label in "${LABELS[@]}"; do
    got=$(sql_at restore "select count(*) from e2e_rows where label = '$label'")
    [[ $got == 100 ]] || fail "the restored cluster has $got rows labelled '$label', expected 100"
  done
  echo "all ${#LABELS[@]} labels restored with 100 rows each"
}

# ---------------------------------------------------------------- running

# Prints the last lines of every log that helps to debug a failure.
dump_logs() {
  local c
  echo "---- output of step $STEP (last 80 lines of $STEP_LOG)"
  tail -n 80 "$STEP_LOG" 2>/dev/null || true
  for c in "${CELLS[@]}" restore; do
    [[ -z $HOSTS || -n ${HOST_PID[$c]:-} ]] || continue
    # shellcheck disable=SC2016 # $1 and $f belong to the inner shell
    on "$c" sh -c 'for f in "$1"/pgbackrest/log/*.log "$1"/postgres.log "$1"/run/server.out; do
      [ -s "$f" ] || continue
      echo "---- $f (last 30 lines)"
      tail -n 30 "$f"
    done' sh "$CELL_ROOT/$c"
  done
}

cleanup() {
  local c pids=()
  # TLS servers first, then every Postgres at once (SIGINT: fast shutdown).
  # A process whose pid was not recorded yet (the run was interrupted while
  # starting it) is found through its pid file.
  for c in "${CELLS[@]}"; do
    [[ -z $HOSTS || -n ${HOST_PID[$c]:-} ]] || continue
    if [[ -z ${SERVER_PID[$c]:-} ]] && on "$c" test -s "$(pidfile "$c")"; then
      SERVER_PID[$c]=$(on "$c" cat "$(pidfile "$c")")
    fi
    if [[ -n ${SERVER_PID[$c]:-} ]]; then pids+=("${SERVER_PID[$c]}"); fi
    if [[ -n ${RUNUSER_PID[$c]:-} ]]; then pids+=("${RUNUSER_PID[$c]}"); fi
  done
  stop_all TERM "${pids[@]}"
  pids=()
  for c in "${CELLS[@]}" restore; do
    [[ -z $HOSTS || -n ${HOST_PID[$c]:-} ]] || continue
    if [[ -z ${PG_PID[$c]:-} ]] && on "$c" test -s "$(data_dir "$c")/postmaster.pid"; then
      PG_PID[$c]=$(on "$c" head -n1 "$(data_dir "$c")/postmaster.pid")
    fi
    if [[ -n ${PG_PID[$c]:-} ]]; then pids+=("${PG_PID[$c]}"); fi
  done
  stop_all INT "${pids[@]}"
  stop_hosts
}

# --hosts: starts one test host per cell (the restore runs on the
# primary's host) and waits until they answer.
start_hosts() {
  local env="$ROOT/hosts.env" i c
  mkdir "$CELL_ROOT"
  exec 5> >(exec "$TESTHOSTS" "${#CELLS[@]}" "$CELL_ROOT" >"$env" 2>"$ROOT/hosts.err")
  HOSTS_HELPER=$!
  wait_until "the test hosts (see $ROOT/hosts.err)" "$TIMEOUT" grep -q '^HOSTS_READY=1$' "$env"
  # shellcheck disable=SC1090 # written by examples/testhosts.rs
  source "$env"
  cp "$HOSTS_SSH_CONFIG" "$ROOT/ssh_config"
  for i in "${!CELLS[@]}"; do
    c=${CELLS[$i]}
    HOST_PID[$c]=${HOSTS_PIDS[$i]}
    HOST_ADDR[$c]=${HOSTS_ADDRS[$i]}
    echo "$c: host ${HOST_ADDR[$c]} (nsenter -t ${HOST_PID[$c]} -n -m)"
  done
  HOST_PID[restore]=${HOST_PID[$PRIMARY]}
  HOST_ADDR[restore]=${HOST_ADDR[$PRIMARY]}
}

# Closes the test hosts' stdin: the helper tears them down (bounded wait).
stop_hosts() {
  [[ -n $HOSTS_HELPER ]] || return 0
  exec 5>&-
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$HOSTS_HELPER" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "warning: the test hosts helper (pid $HOSTS_HELPER) did not stop in 30s" >&4
}

# Names the failed command and where it ran (the step's log shows it).
on_err() {
  local rc=$? i
  echo "error: \`$BASH_COMMAND\` exited $rc" >&2
  for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
    echo "  in ${FUNCNAME[$i]}, line ${BASH_LINENO[$((i - 1))]}" >&2
  done
}

on_exit() {
  local rc=$?
  # Clean up whatever happens now: no errexit, no signal cuts it short
  # (a closed stdout, e.g. `| head`, must not leave servers running).
  set +e
  trap '' PIPE INT TERM HUP
  exec 1>&3 2>&4
  if [[ -n $STEP ]]; then
    echo "FAIL $STEP"
    dump_logs
    ((rc != 0)) || rc=1
  fi
  cleanup
  if [[ -n $ROOT ]]; then
    if ((rc == 0)) && [[ -z ${E2E_KEEP:-} ]]; then
      rm -rf "$ROOT"
    else
      echo "kept $ROOT"
    fi
  fi
  exit "$rc"
}

now_us() { echo "${EPOCHREALTIME/./}"; }

# step NAME: runs step_NAME with its output in <root>/steps/NAME.log.
step() {
  local name=$1 t0 dt
  STEP=$name
  STEP_LOG="$ROOT/steps/$name.log"
  t0=$(now_us)
  if [[ -n ${E2E_VERBOSE:-} ]]; then
    "step_${name//-/_}" > >(tee "$STEP_LOG" >&3) 2>&1
  else
    "step_${name//-/_}" >"$STEP_LOG" 2>&1
  fi
  if [[ ${E2E_FAIL_AT:-} == "$name" ]]; then fail "injected failure (E2E_FAIL_AT=$name)" 2>>"$STEP_LOG"; fi
  dt=$((($(now_us) - t0) / 100000))
  STEP=""
  echo "PASS $name ($((dt / 10)).$((dt % 10))s)"
}

# --trixie: runs this scenario inside the cached Debian 13 root (built when
# missing), with /proc, /dev and /dev/pts bound in, and pgbr, the modules,
# contrib/ and tests/e2e copied to /pgbr-e2e there.
in_trixie() {
  [[ $(id -u) == 0 ]] || fail "run as root (debootstrap, chroot and the servers need it)"
  [[ -x $PGBR ]] || fail "no pgbr binary at $PGBR (run \`cargo build --bin pgbr\`)"
  local rootfs m mounted=()
  rootfs=$("$HERE/trixie-root.sh") || fail "no trixie root"
  rm -rf "$rootfs/pgbr-e2e"
  mkdir -p "$rootfs/pgbr-e2e/tests"
  cp -a "$REPO/modules" "$REPO/contrib" "$rootfs/pgbr-e2e/"
  cp -a "$HERE" "$rootfs/pgbr-e2e/tests/e2e"
  cp "$PGBR" "$rootfs/pgbr-e2e/pgbr"
  cp /etc/hosts "$rootfs/etc/hosts"
  # shellcheck disable=SC2317 # called by the trap
  unmount() { for ((m = ${#mounted[@]} - 1; m >= 0; m--)); do umount -l "${mounted[$m]}" || true; done; }
  trap unmount EXIT
  for m in proc dev dev/pts; do
    mkdir -p "$rootfs/$m"
    if mount --bind "/$m" "$rootfs/$m"; then mounted+=("$rootfs/$m"); else fail "cannot bind /$m into $rootfs"; fi
  done
  echo "e2e: in the trixie root $rootfs"
  local rc=0
  chroot "$rootfs" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    HOME=/root LANG=C.UTF-8 PGBIN=/usr/lib/postgresql/17/bin PGBACKREST=/usr/bin/pgbackrest \
    PGBR=/pgbr-e2e/pgbr E2E_PGBACKREST_VERSION=2.55 E2E_HOST=127.0.0.1 \
    ${E2E_FAIL_AT:+E2E_FAIL_AT=$E2E_FAIL_AT} ${E2E_KEEP:+E2E_KEEP=$E2E_KEEP} \
    ${E2E_VERBOSE:+E2E_VERBOSE=$E2E_VERBOSE} E2E_TIMEOUT="$TIMEOUT" E2E_CMD_TIMEOUT="$CMD_TIMEOUT" \
    /bin/bash /pgbr-e2e/tests/e2e/run.sh || rc=$?
  exit "$rc"
}

main() {
  case ${1:-} in
    "") ;;
    --trixie) in_trixie ;;
    --hosts) HOSTS=1 ;;
    *) fail "usage: $0 [--trixie | --hosts]" ;;
  esac
  [[ $(id -u) == 0 ]] || fail "run as root (the servers run as postgres through runuser)"
  id postgres >/dev/null 2>&1 || fail "there is no postgres user"
  [[ -x $PGBIN/postgres ]] || fail "no PostgreSQL binaries in $PGBIN"
  [[ -x $PGBACKREST ]] || fail "no pgBackRest at $PGBACKREST"
  [[ -x $PGBR ]] || fail "no pgbr binary at $PGBR (run \`cargo build --bin pgbr\`)"
  local tool
  for tool in runuser timeout openssl ${HOSTS:+nsenter ssh ip}; do
    command -v "$tool" >/dev/null || fail "\`$tool\` is needed and not installed"
  done
  if [[ -n $HOSTS && ! -x $TESTHOSTS ]]; then
    fail "no test hosts helper at $TESTHOSTS (run \`cargo build --example testhosts\`)"
  fi
  if [[ -n ${E2E_FAIL_AT:-} && " ${STEPS[*]} " != *" $E2E_FAIL_AT "* ]]; then
    fail "E2E_FAIL_AT=$E2E_FAIL_AT is not a step: ${STEPS[*]}"
  fi

  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  trap 'exit 141' PIPE
  trap on_err ERR

  ROOT=$(mktemp -d /tmp/pgbr-e2e.XXXXXX)
  chmod 755 "$ROOT"
  mkdir "$ROOT/steps"
  cd "$ROOT"
  CELL_ROOT=$ROOT
  if [[ -n $HOSTS ]]; then
    CELL_ROOT="$ROOT/hosts"
    start_hosts
  fi
  TOPO="$ROOT/topology.toml"
  HOOKS="$ROOT/hooks.toml"
  PAST=$(date -u -d '300 days ago' +%Y-%m-%dT%H:%M:%SZ)
  echo "e2e${HOSTS:+ --hosts}: root $ROOT, $("$PGBACKREST" version), $("$PGBIN/postgres" --version)"

  local t0 dt s
  t0=$(now_us)
  for s in "${STEPS[@]}"; do step "$s"; done
  dt=$((($(now_us) - t0) / 100000))
  echo "PASS e2e ($((dt / 10)).$((dt % 10))s)"
}

main "$@"
