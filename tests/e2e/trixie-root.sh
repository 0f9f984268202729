#!/usr/bin/env bash
# Builds (once) and prints the path of a Debian 13 (trixie) root holding
# PostgreSQL 17 and pgBackRest 2.55.1, for the second e2e combination
# (tests/e2e/run.sh --trixie, `make e2e`).
#
#   tests/e2e/trixie-root.sh            prints the root, building it if missing
#
# Why a root: trixie's binaries need a newer C library than Debian 12 has.
# The root is made by debootstrap (--variant=minbase plus only the packages
# below) from the Debian mirror this machine's apt uses, and cached under
# $E2E_TRIXIE_CACHE (default /var/cache/pgbr-e2e) in a directory named after
# a hash of the suite, mirror and package list: change the list and a new root
# is built; an unchanged one is reused. It is built in a temporary directory
# and renamed into place when complete, so an interrupted build is never used.
set -Eeuo pipefail

SUITE=trixie
# postgresql-17 and pgbackrest: the combination under test; openssl: the
# e2e's certificate fingerprints and TLS probes.
PACKAGES=(postgresql-17 pgbackrest openssl)
CACHE=${E2E_TRIXIE_CACHE:-/var/cache/pgbr-e2e}

fail() {
  echo "error: $*" >&2
  exit 1
}

# The Debian mirror apt uses here (deb822 or one-line sources), so the root
# comes from the same registry as the machine's own packages.
mirror() {
  local m
  m=$(grep -hoE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]*/debian/?([[:space:]]|$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
    grep -oE 'https?://[^[:space:]]*/debian/?' | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

main() {
  [[ $(id -u) == 0 ]] || fail "run as root (debootstrap needs it)"
  command -v debootstrap >/dev/null || fail "\`debootstrap\` is needed (apt-get install debootstrap)"
  local url key root tmp
  url=$(mirror)
  key=$(printf '%s\n' "$SUITE" "$url" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
  root="$CACHE/$SUITE-$key"
  if [[ -x $root/usr/bin/pgbackrest && -x $root/usr/lib/postgresql/17/bin/postgres ]]; then
    echo "$root"
    return
  fi
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/.$SUITE-$key.XXXXXX")
  echo "building the $SUITE root $root from $url (${PACKAGES[*]})" >&2
  trap 'rm -rf "$tmp"' EXIT
  local include
  include=$(IFS=,; echo "${PACKAGES[*]}")
  # No cluster of its own: the e2e makes its clusters with initdb.
  mkdir -p "$tmp/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" >"$tmp/etc/postgresql-common/createcluster.d/pgbr-e2e.conf"
  debootstrap --variant=minbase --include="$include" "$SUITE" "$tmp" "$url" >"$tmp.log" 2>&1 ||
    fail "debootstrap of $SUITE from $url failed; its log: $tmp.log"
  rm -rf "$tmp/var/cache/apt/archives"/*.deb "$tmp/var/lib/apt/lists"/*
  [[ -x $tmp/usr/bin/pgbackrest ]] || fail "the $SUITE root has no pgbackrest"
  chmod 755 "$tmp" # mktemp made it 0700: it is `/` for the postgres user
  mv "$tmp" "$root"
  trap - EXIT
  rm -f "$tmp.log"
  echo "$root"
}

main "$@"
