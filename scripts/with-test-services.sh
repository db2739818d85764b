#!/usr/bin/env bash
# Runs "$@" with the real services Cordon's tests need, started fresh and
# stopped afterwards: PostgreSQL, via initdb into a temporary dir on a free
# loopback port; the outside TLS clients that check FIPS mode (openssl,
# sslscan); and what the Linux posture collectors are tested against
# (dbus-daemon, python3-dbusmock, cryptsetup), and an SMTP server for
# incident mail (python3-aiosmtpd), and Chromium for the console's
# browser test. Missing packages are installed from Debian when we
# are root; with CI=true a component that cannot be had fails the run
# instead of letting the tests skip it.
set -euo pipefail

log() { printf 'with-test-services: %s\n' "$*" >&2; }
fail_or_skip() {
  if [ "${CI:-}" = "true" ]; then log "ERROR: $*"; exit 1; fi
  log "WARNING: $* (tests that need it will be skipped)"
}

apt_updated=""
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  if [ -z "$apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

cleanup_cmds=()
cleanup() {
  local c
  for c in "${cleanup_cmds[@]}"; do eval "$c" || true; done
}
trap cleanup EXIT

start_postgres() {
  if [ -n "${CORDON_TEST_POSTGRES:-}" ]; then
    log "using CORDON_TEST_POSTGRES from the environment"
    return 0
  fi
  local bin
  if ! bin=$(pg_bindir); then
    log "PostgreSQL not found; installing Debian's postgresql"
    apt_install postgresql || true
    bin=$(pg_bindir) || { fail_or_skip "PostgreSQL is not installed and could not be installed"; return 0; }
  fi
  local dir port run_as=()
  dir=$(mktemp -d /tmp/cordon-pg.XXXXXX)
  port=$(free_port)
  # initdb refuses to run as root: use the postgres account Debian made.
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    run_as=(runuser -u postgres --)
  fi
  # SCRAM-SHA-256 rather than trust, so the driver's password exchange
  # (PBKDF2, HMAC-SHA-256) runs under fips140=only in make test-fips.
  local pass
  pass=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$pass" >"$dir/pwfile"
  chmod 600 "$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U cordon --auth=scram-sha-256 --pwfile="$dir/pwfile" -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; fail_or_skip "initdb failed"; return 0; }
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=500" start >/dev/null ||
    { cat "$dir/server.log" >&2; fail_or_skip "PostgreSQL did not start"; return 0; }
  cleanup_cmds+=("${run_as[*]} $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1; rm -rf $dir")
  export CORDON_TEST_POSTGRES="postgres://cordon:$pass@127.0.0.1:$port/postgres?sslmode=disable"
  log "PostgreSQL on 127.0.0.1:$port"
}

# need_tool COMMAND PACKAGE: a program the tests run as an outside peer.
need_tool() {
  command -v "$1" >/dev/null && return 0
  log "$1 not found; installing Debian's $2"
  apt_install "$2" || true
  command -v "$1" >/dev/null || fail_or_skip "$1 (Debian package $2) is not installed and could not be installed"
}

start_postgres
need_tool openssl openssl
need_tool sslscan sslscan
need_tool dbus-daemon dbus-daemon
need_tool cryptsetup cryptsetup-bin
# The TPM key store's tests run against a real TPM 2.0 emulator in socket
# mode (internal/swtpm/swtpmtest).
need_tool swtpm swtpm
# The firewall collector reads a real nftables ruleset in a private network
# namespace (integration TestBaselineOnARealLinuxAgent).
need_tool nft nftables
# The packaging acceptance test: lintian on every .deb, rpm reads the
# .rpm headers, systemd-analyze verifies the units (systemd need not run).
need_tool lintian lintian
need_tool rpm rpm
need_tool systemd-analyze systemd
# The alert rules and dashboard queries are checked, and a live scrape
# linted, by Debian's promtool (deploy/, integration TestMetrics*).
need_tool promtool prometheus
# The console's browser test drives Debian's Chromium headless.
need_tool chromium chromium
# The OpenAPI document's linter (TestOpenAPILint): Redocly CLI at the
# version scripts/redocly.sh pins, from npm, installed once into a cache
# dir (Debian's npm when there is none).
command -v npm >/dev/null || { log "npm not found; installing Debian's npm"; apt_install npm || true; }
"$(dirname "$0")/redocly.sh" --install || fail_or_skip "Redocly CLI (scripts/redocly.sh) could not be installed"
# need_module MODULE PACKAGE: a module of Debian's python3 (dbusmock for
# logind and BlueZ, aiosmtpd as the real SMTP server incident mail goes to).
need_module() {
  /usr/bin/python3 -c "import $1" 2>/dev/null && return 0
  log "$1 not found; installing Debian's $2"
  apt_install "$2" || true
  /usr/bin/python3 -c "import $1" 2>/dev/null ||
    fail_or_skip "$2 is not installed and could not be installed"
}
need_module dbusmock python3-dbusmock
need_module aiosmtpd python3-aiosmtpd
"$@"
