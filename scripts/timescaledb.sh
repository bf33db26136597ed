#!/usr/bin/env bash
# Provision, start, stop or inspect the project's local TimescaleDB.
#
#   scripts/timescaledb.sh up      start it (installing/building what is missing), print the store URL
#                                  with its password hidden
#   scripts/timescaledb.sh down    stop it (data is kept)
#   scripts/timescaledb.sh url     print the store URL of a running instance
#   scripts/timescaledb.sh status  say whether it runs
#
# Order of preference for `up`:
#   1. a Docker engine that answers: `docker compose up -d timescaledb` (docker-compose.yml);
#   2. a native cluster: PostgreSQL 15 + TimescaleDB. As root on Debian/Ubuntu, what is missing is
#      installed: the PostgreSQL server packages from apt, and TimescaleDB built from the
#      distribution's source package (Debian trixie, Apache-licensed build) when apt has no binary;
#   3. anything else: one message saying what is missing.
#
# The native cluster lives in $HDI_PG_DIR (default: <project>/.timescaledb, git-ignored), listens on
# 127.0.0.1:$HDI_PG_PORT (default 55433) only, is run by the `postgres` OS user when invoked as root
# (PostgreSQL refuses to run as root) and by the invoking user otherwise, and preloads timescaledb.
# A second `up` finds it running and returns in well under a second.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${HDI_PG_MAJOR:-15}
PORT=${HDI_PG_PORT:-55433}
STATE=${HDI_PG_DIR:-$here/.timescaledb}
DB=hdi
ROLE=hdi
BIN=/usr/lib/postgresql/$PG_MAJOR/bin
COMPOSE_SERVICE=timescaledb

say() { printf 'timescaledb: %s\n' "$*" >&2; }
die() { printf 'timescaledb: error: %s\n' "$*" >&2; exit 1; }

docker_ok() { command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1; }

# ----------------------------------------------------------------------------- native helpers
run_as_owner() {  # run a command as the cluster owner (from /: the owner may not be able to enter $PWD)
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

datadir() {
  # The cluster owner must be able to reach the data directory. When the project sits under a
  # folder the `postgres` user cannot traverse (e.g. /root), keep the cluster beside its home
  # instead and record where in $STATE/datadir.
  if [ -f "$STATE/datadir" ]; then cat "$STATE/datadir"; return; fi
  local d="$STATE/data"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STATE"; then
    d=/var/lib/postgresql/hdi-$(printf '%s' "$here" | sha1sum | cut -c1-12)
  fi
  printf '%s\n' "$d" > "$STATE/datadir"
  printf '%s\n' "$d"
}

have_timescaledb() { [ -f "/usr/share/postgresql/$PG_MAJOR/extension/timescaledb.control" ]; }

apt_mirror() {
  # The machine's own Debian mirror (never a hard-coded host).
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt/sources.list(.d); add one or install TimescaleDB for PostgreSQL $PG_MAJOR yourself"
  printf '%s\n' "$uri"
}

install_native() {
  [ "$(id -u)" = 0 ] || die "PostgreSQL $PG_MAJOR with TimescaleDB is not installed, and installing it needs root. Install postgresql-$PG_MAJOR and timescaledb-2-postgresql-$PG_MAJOR, run this script as root on Debian/Ubuntu, or start a Docker engine (docker compose up -d timescaledb)."
  command -v apt-get >/dev/null 2>&1 || die "no apt-get here: install PostgreSQL $PG_MAJOR and TimescaleDB yourself, or start a Docker engine (docker compose up -d timescaledb)."
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -x "$BIN/pg_ctl" ]; then
    say "installing postgresql-$PG_MAJOR from apt"
    apt-get update -qq
    apt-get install -y -qq "postgresql-$PG_MAJOR" >/dev/null
  fi
  have_timescaledb && return 0
  # A packaged binary first (Ubuntu, or a machine with the Timescale apt repository).
  if apt-get install -y -qq "timescaledb-2-postgresql-$PG_MAJOR" >/dev/null 2>&1 || \
     apt-get install -y -qq "postgresql-$PG_MAJOR-timescaledb" >/dev/null 2>&1; then
    have_timescaledb && return 0
  fi
  say "building TimescaleDB from the Debian trixie source package (about 20 s)"
  local src=/etc/apt/sources.list.d/hdi-timescaledb-src.sources
  if [ ! -f "$src" ]; then
    cat > "$src" <<EOF
Types: deb-src
URIs: $(apt_mirror)
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -qq
  # The server is upgraded with its headers so that the extension is built for the running minor.
  apt-get install -y -qq "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" dpkg-dev cmake gcc make libssl-dev >/dev/null
  local build
  build=$(mktemp -d /tmp/hdi-timescaledb-build.XXXXXX)
  (
    cd "$build"
    apt-get source -qq timescaledb >/dev/null 2>&1 || die "apt-get source timescaledb failed (is the trixie deb-src line in $src reachable?)"
    cd timescaledb-*/
    # The +dfsg source ships without the TSL directory: APACHE_ONLY is required.
    ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
      -DSEND_TELEMETRY_DEFAULT=OFF -DPG_CONFIG="$BIN/pg_config" >"$build/bootstrap.log" 2>&1 \
      || { tail -20 "$build/bootstrap.log" >&2; die "TimescaleDB configure failed (log: $build/bootstrap.log)"; }
    make -C build -j"$(nproc)" install >"$build/make.log" 2>&1 \
      || { tail -20 "$build/make.log" >&2; die "TimescaleDB build failed (log: $build/make.log)"; }
  )
  rm -rf "$build"
  have_timescaledb || die "TimescaleDB build finished but $PG_MAJOR/extension/timescaledb.control is missing"
}

pg_running() {
  local d
  d=$(datadir)
  [ -f "$d/postmaster.pid" ] && run_as_owner "$BIN/pg_ctl" -D "$d" status >/dev/null 2>&1
}

password() {
  if [ ! -s "$STATE/password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$STATE/password")
  fi
  cat "$STATE/password"
}

native_up() {
  mkdir -p "$STATE"
  if [ ! -x "$BIN/pg_ctl" ] || ! have_timescaledb; then install_native; fi
  local d owner
  d=$(datadir)
  owner=$(id -un); [ "$(id -u)" = 0 ] && owner=postgres
  if [ ! -f "$d/PG_VERSION" ]; then
    say "creating a cluster in $d"
    mkdir -p "$d"
    chown "$owner" "$d" "$STATE"
    chmod 700 "$d"
    run_as_owner "$BIN/initdb" -D "$d" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
    cat >> "$d/postgresql.conf" <<EOF
# --- hdi local TimescaleDB ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$d'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 50
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = on
EOF
  fi
  if ! pg_running; then
    run_as_owner "$BIN/pg_ctl" -D "$d" -l "$d/server.log" -w -t 60 start >/dev/null \
      || { tail -20 "$d/server.log" >&2; die "the server did not start (log: $d/server.log)"; }
  fi
  local pw
  pw=$(password)
  local psql=(env PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -h "$d" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ "$(run_as_owner "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname='$ROLE'")" != 1 ]; then
    run_as_owner "${psql[@]}" -d postgres -c "CREATE ROLE $ROLE LOGIN PASSWORD '$pw' CREATEDB" >/dev/null
  fi
  # Benchmarks checkpoint between runs so that one run's dirty pages do not slow the next.
  run_as_owner "${psql[@]}" -d postgres -c "GRANT pg_checkpoint TO $ROLE" >/dev/null
  if [ "$(run_as_owner "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='$DB'")" != 1 ]; then
    run_as_owner "${psql[@]}" -d postgres -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
  fi
  # Create the extension in template1 too, so that databases made by the tests have it.
  for db in "$DB" template1; do
    run_as_owner "${psql[@]}" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS timescaledb" >/dev/null
  done
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' "$ROLE" "$pw" "$PORT" "$DB" > "$STATE/url"
  chmod 600 "$STATE/url"
}

native_down() {
  [ -f "$STATE/datadir" ] || { say "no local cluster"; return 0; }
  if pg_running; then run_as_owner "$BIN/pg_ctl" -D "$(datadir)" -m fast -w stop >/dev/null; say "stopped"; else say "not running"; fi
}

# ----------------------------------------------------------------------------- docker
docker_up() {
  mkdir -p "$STATE"
  local pw
  pw=$(password)
  (cd "$here" && HDI_PG_PASSWORD="$pw" HDI_PG_PORT="$PORT" docker compose up -d --wait "$COMPOSE_SERVICE" >/dev/null)
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' "$ROLE" "$pw" "$PORT" "$DB" > "$STATE/url"
  chmod 600 "$STATE/url"
  echo docker > "$STATE/engine"
}

cmd=${1:-up}
case "$cmd" in
  up)
    if [ "${HDI_PG_NATIVE:-0}" != 1 ] && docker_ok; then docker_up; else native_up; fi
    # the URL with its password hidden (logs, CI output); `url` prints it whole, for $(...)
    sed -E 's#^([a-z]+://[^:/@]*):.*@#\1:***@#' "$STATE/url"  # up to the last @: a password may hold one
    say "the full URL (password included): scripts/timescaledb.sh url, or $STATE/url (mode 600)"
    ;;
  down)
    if [ -f "$STATE/engine" ] && docker_ok; then (cd "$here" && docker compose stop "$COMPOSE_SERVICE"); else native_down; fi
    ;;
  url)
    [ -f "$STATE/url" ] || die "no local TimescaleDB yet: run 'make db-up'"
    cat "$STATE/url"
    ;;
  status)
    if [ -f "$STATE/datadir" ] && pg_running; then say "running on 127.0.0.1:$PORT ($(datadir))"; else say "not running"; exit 1; fi
    ;;
  *) die "unknown command '$cmd' (allowed: up, down, url, status)";;
esac
