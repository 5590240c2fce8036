#!/usr/bin/env bash
# One command for a fresh Debian 12 machine (run as root): installs and starts what the tests need, then
# runs every check (build, lint, format, import cycles, tests). Safe to re-run; quick when all is present.
# Only what this script starts is stopped again at exit; services that were already running are left alone.
#
# Environment:
#   SKIP_NPM_CI=1        skip `npm ci` (local runs with node_modules already installed; ignored when CI=true)
#   DICOMFLOW_NODE_DIR   where Node 24 is installed when the machine's node is older (default /opt/dicomflow-node24)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TMP_DIR="$REPO/.tmp"
mkdir -p "$TMP_DIR"
export DEBIAN_FRONTEND=noninteractive

NODE_MAJOR=24
NODE_DIR="${DICOMFLOW_NODE_DIR:-/opt/dicomflow-node24}"
PG_STARTED_VERSION=""
RABBIT_STARTED=0
DOCKERD_PID=""
S3RVER_PID=""
S3RVER_DIR=""
CURRENT_STEP="set-up"
APT_UPDATED=0

log() { printf 'test.sh: %s\n' "$*"; }
banner() {
  CURRENT_STEP="$1"
  printf '\n== %s ==\n' "$1"
}
die() {
  printf 'test.sh: %s\n' "$*" >&2
  exit 1
}

# Stops, in reverse order, only what this script started. Safe to call twice.
stop_started() {
  if [[ -n "$S3RVER_PID" ]] && kill -0 "$S3RVER_PID" 2>/dev/null; then
    kill "$S3RVER_PID" 2>/dev/null || true
    wait "$S3RVER_PID" 2>/dev/null || true
  fi
  S3RVER_PID=""
  [[ -n "$S3RVER_DIR" ]] && rm -rf "$S3RVER_DIR"
  S3RVER_DIR=""
  if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "stopping the dockerd it started"
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
  fi
  DOCKERD_PID=""
  if [[ "$RABBIT_STARTED" == 1 ]]; then
    log "stopping the RabbitMQ it started"
    rabbitmqctl stop >/dev/null 2>&1 || true
  fi
  RABBIT_STARTED=0
  if [[ -n "$PG_STARTED_VERSION" ]]; then
    log "stopping the PostgreSQL it started"
    pg_ctlcluster --skip-systemctl-redirect "$PG_STARTED_VERSION" main stop >/dev/null 2>&1 || true
  fi
  PG_STARTED_VERSION=""
}

# Runs at every exit, also on failure or interruption; keeps the exit status of the run.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_started
  if [[ $status -ne 0 ]]; then
    printf '\ntest.sh: FAILED during "%s" (exit %d)\n' "$CURRENT_STEP" "$status" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until the command succeeds, polling every half second, for at most $1 seconds.
wait_for() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

deb_installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]; }

# Installs the Debian packages that are missing; apt-get update runs at most once per run.
ensure_debs() {
  local missing=()
  local pkg
  for pkg in "$@"; do deb_installed "$pkg" || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  if [[ $APT_UPDATED == 0 ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  apt-get install -y -qq "${missing[@]}" </dev/null
}

node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# ---------------------------------------------------------------------------------------------------------
banner "node"
if (($(node_major) >= NODE_MAJOR)); then
  : # the machine's node will do
elif (($(node_major "$NODE_DIR/node_modules/node/bin/node") >= NODE_MAJOR)); then
  export PATH="$NODE_DIR/node_modules/node/bin:$PATH"
else
  # The npm package `node` ships the official binaries; any older node + npm can install it.
  command -v npm >/dev/null || ensure_debs nodejs npm
  log "installing node@$NODE_MAJOR into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  # `node` downloads its binary in a preinstall script; allowScripts approves it for npm versions that ask.
  printf '{ "name": "dicomflow-node", "private": true, "allowScripts": { "node": true } }\n' >"$NODE_DIR/package.json"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund "node@$NODE_MAJOR" </dev/null
  export PATH="$NODE_DIR/node_modules/node/bin:$PATH"
fi
(($(node_major) >= NODE_MAJOR)) || die "node $NODE_MAJOR is not available (found $(node --version 2>/dev/null || echo none))"
log "using node $(node --version) at $(command -v node), npm $(npm --version 2>/dev/null)"

# ---------------------------------------------------------------------------------------------------------
banner "debian packages"
# docker-compose (v1): validates compose.yaml in test/compose (nothing is started with it).
ensure_debs dcmtk orthanc docker.io busybox-static rabbitmq-server postgresql gcc curl procps iproute2 docker-compose
log "all required Debian packages are installed"

# ---------------------------------------------------------------------------------------------------------
banner "rabbitmq"
if port_open 127.0.0.1 5672; then
  log "RabbitMQ already answers on 127.0.0.1:5672"
else
  log "starting RabbitMQ"
  rabbitmq-server -detached
  RABBIT_STARTED=1
  timeout 120 rabbitmqctl await_startup >/dev/null || die "RabbitMQ did not start (see /var/log/rabbitmq)"
  wait_for 30 port_open 127.0.0.1 5672 || die "RabbitMQ started but does not listen on 127.0.0.1:5672"
  log "RabbitMQ is up"
fi

# ---------------------------------------------------------------------------------------------------------
banner "postgresql"
# The newest cluster version under /etc/postgresql (only needed when this script has to start or configure it).
pg_version() {
  local version
  version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$version" ]] || die "no PostgreSQL cluster under /etc/postgresql"
  printf '%s\n' "$version"
}
if pg_isready -q -h 127.0.0.1 -p 5432; then
  log "PostgreSQL already answers on 127.0.0.1:5432"
else
  PG_VERSION="$(pg_version)"
  log "starting PostgreSQL $PG_VERSION"
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
  PG_STARTED_VERSION="$PG_VERSION"
  wait_for 60 pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not become ready"
fi
pg_psql() { psql -h 127.0.0.1 -p 5432 -U postgres -w -v ON_ERROR_STOP=1 -qtA "$@" </dev/null; }
if ! pg_psql -c 'select 1' >/dev/null 2>&1; then
  # A fresh cluster asks for a password over TCP; the tests log in as postgres without one, from localhost.
  PG_VERSION="$(pg_version)"
  PG_HBA="/etc/postgresql/$PG_VERSION/main/pg_hba.conf"
  log "allowing passwordless postgres logins from localhost in $PG_HBA"
  sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$PG_HBA"
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main reload
  wait_for 30 pg_psql -c 'select 1' || die "cannot log in to PostgreSQL as postgres over 127.0.0.1"
fi
if [[ "$(pg_psql -c "select 1 from pg_database where datname = 'dicomflow_test'")" != 1 ]]; then
  log "creating database dicomflow_test"
  pg_psql -c 'create database dicomflow_test'
fi
log "database dicomflow_test is ready"

# ---------------------------------------------------------------------------------------------------------
banner "docker"
if docker info >/dev/null 2>&1; then
  log "Docker engine already running"
else
  DOCKERD_LOG="$TMP_DIR/dockerd.log"
  # A pid file left by a dockerd that died makes the next one refuse to start.
  if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  log "starting dockerd (log: $DOCKERD_LOG)"
  dockerd --bridge=none --iptables=false --ip-masq=false >"$DOCKERD_LOG" 2>&1 &
  DOCKERD_PID=$!
  if ! wait_for 60 docker -H unix:///var/run/docker.sock info; then
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    die "dockerd did not become ready within 60 s"
  fi
  # A DOCKER_HOST pointing elsewhere is what made `docker info` fail; the tests must use this engine.
  [[ -n "${DOCKER_HOST:-}" ]] && export DOCKER_HOST=unix:///var/run/docker.sock
  log "Docker engine is up"
fi

# ---------------------------------------------------------------------------------------------------------
banner "npm ci"
# Before s3rver: the S3 server for the tests is an npm package.
if [[ "${SKIP_NPM_CI:-}" == 1 && "${CI:-}" != true ]]; then
  log "skipped (SKIP_NPM_CI=1)"
else
  npm ci --no-audit --no-fund </dev/null
fi

# ---------------------------------------------------------------------------------------------------------
banner "s3rver"
# A private instance on a port of its own (port 0), so a long-running s3rver on 9000 is never touched.
S3RVER_DIR="$(mktemp -d "$TMP_DIR/s3rver.XXXXXX")"
node scripts/s3rver.mjs 0 "$S3RVER_DIR/data" >"$S3RVER_DIR/log" 2>&1 &
S3RVER_PID=$!
s3rver_port() { sed -n 's/^s3rver listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$S3RVER_DIR/log"; }
s3rver_listening() { [[ -n "$(s3rver_port)" ]]; }
if ! wait_for 30 s3rver_listening; then
  cat "$S3RVER_DIR/log" >&2 || true
  die "s3rver did not start"
fi
S3_PORT="$(s3rver_port)"
wait_for 30 curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/" || die "s3rver on port $S3_PORT does not answer"
log "s3rver answers on 127.0.0.1:$S3_PORT"

export S3_ENDPOINT=127.0.0.1 S3_PORT S3_ACCESS_KEY=S3RVER S3_SECRET_KEY=S3RVER S3_USE_SSL=false
export S3_PART_SIZE=5368709120 # s3rver has no multipart uploads: one part for every object
export RABBIT_HOSTNAME=127.0.0.1 RABBIT_PORT=5672 RABBIT_USERNAME=guest RABBIT_PASSWORD=guest
export DB_HOST=127.0.0.1 DB_PORT=5432 DB_USER=postgres DB_NAME=dicomflow_test DB_PASS=''

# ---------------------------------------------------------------------------------------------------------
banner "build"
npm run --silent build
banner "lint"
npm run --silent lint
banner "format"
npm run --silent format:check
banner "cycles"
npm run --silent cycles # madge exits 1 when it finds a circular import
banner "test"
npm test </dev/null

CURRENT_STEP="stopping what it started"
stop_started
CURRENT_STEP="done"
printf '\ntest.sh: all checks passed (%ds)\n' "$SECONDS"
