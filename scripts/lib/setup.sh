# Set-up shared by scripts/test.sh and scripts/up.sh (sourced, not run): installs and starts what DicomFlow
# needs on a Debian 12 machine (run as root), and stops again only what it started. Each ensure_* is
# quick when its part is already there.
#
# The caller sets REPO and TMP_DIR, and calls `trap setup_cleanup EXIT` (see setup_cleanup).
#
# Environment:
#   DICOMFLOW_NODE_DIR   where Node 24 is installed when the machine's node is older (default /opt/dicomflow-node24)
#   DICOMFLOW_CACHE_DIR  where the MinIO binary is built and kept between runs (default ~/.cache/dicomflow)

NODE_MAJOR=24
NODE_DIR="${DICOMFLOW_NODE_DIR:-/opt/dicomflow-node24}"
CACHE_DIR="${DICOMFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dicomflow}"
MINIO_VERSION="$(cat "$REPO/scripts/minio-version")"
MINIO_BINARY="$CACHE_DIR/minio/$MINIO_VERSION/minio"
# Debian's Go is older than MinIO needs (1.24); any go command fetches this release through the module proxy.
GO_TOOLCHAIN=go1.26.8

PG_STARTED_VERSION=""
RABBIT_STARTED=0
DOCKERD_PID=""
MINIO_PID=""
MINIO_TMP_DATA=""
CURRENT_STEP="set-up"
APT_UPDATED=0
SCRIPT_NAME="${SCRIPT_NAME:-setup}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
banner() {
  CURRENT_STEP="$1"
  printf '\n== %s ==\n' "$1"
}
die() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

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

# The first port from $1 up that nothing listens on (loopback).
free_port() {
  local port=$1
  while port_open 127.0.0.1 "$port"; do port=$((port + 1)); done
  printf '%s\n' "$port"
}

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

# Puts Node 24 on PATH: the machine's when new enough, else the npm registry's node@24 in $NODE_DIR.
ensure_node() {
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
}

ensure_rabbitmq() {
  if port_open 127.0.0.1 5672; then
    log "RabbitMQ already answers on 127.0.0.1:5672"
    return 0
  fi
  log "starting RabbitMQ"
  rabbitmq-server -detached
  RABBIT_STARTED=1
  timeout 120 rabbitmqctl await_startup >/dev/null || die "RabbitMQ did not start (see /var/log/rabbitmq)"
  wait_for 30 port_open 127.0.0.1 5672 || die "RabbitMQ started but does not listen on 127.0.0.1:5672"
  log "RabbitMQ is up"
}

# The newest cluster version under /etc/postgresql.
pg_version() {
  local version
  version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$version" ]] || die "no PostgreSQL cluster under /etc/postgresql"
  printf '%s\n' "$version"
}

pg_psql() { psql -h 127.0.0.1 -p 5432 -U postgres -w -v ON_ERROR_STOP=1 -qtA "$@" </dev/null; }

# Starts PostgreSQL unless it answers, and lets the postgres user log in from localhost without a password.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    log "PostgreSQL already answers on 127.0.0.1:5432"
  else
    local version
    version="$(pg_version)"
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    PG_STARTED_VERSION="$version"
    wait_for 60 pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not become ready"
  fi
  if ! pg_psql -c 'select 1' >/dev/null 2>&1; then
    # A fresh cluster asks for a password over TCP; set-up logs in as postgres without one, from localhost.
    local hba
    hba="/etc/postgresql/$(pg_version)/main/pg_hba.conf"
    log "allowing passwordless postgres logins from localhost in $hba"
    sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main reload
    wait_for 30 pg_psql -c 'select 1' || die "cannot log in to PostgreSQL as postgres over 127.0.0.1"
  fi
}

# Creates database $1 unless it exists; with $2 (a role) also that role (password $3) as its owner.
ensure_database() {
  local db=$1 role=${2:-} password=${3:-}
  if [[ -n "$role" && "$(pg_psql -c "select 1 from pg_roles where rolname = '$role'")" != 1 ]]; then
    log "creating PostgreSQL role $role"
    pg_psql -c "create role \"$role\" login password '$password'"
  fi
  if [[ "$(pg_psql -c "select 1 from pg_database where datname = '$db'")" != 1 ]]; then
    log "creating database $db"
    pg_psql -c "create database \"$db\"${role:+ owner \"$role\"}"
  fi
}

ensure_docker() {
  if docker info >/dev/null 2>&1; then
    log "Docker engine already running"
    return 0
  fi
  local dockerd_log="$TMP_DIR/dockerd.log"
  # A pid file left by a dockerd that died makes the next one refuse to start.
  if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  log "starting dockerd (log: $dockerd_log)"
  dockerd --bridge=none --iptables=false --ip-masq=false >"$dockerd_log" 2>&1 &
  DOCKERD_PID=$!
  if ! wait_for 60 docker -H unix:///var/run/docker.sock info; then
    tail -n 20 "$dockerd_log" >&2 || true
    die "dockerd did not become ready within 60 s"
  fi
  # A DOCKER_HOST pointing elsewhere is what made `docker info` fail; use this engine.
  [[ -n "${DOCKER_HOST:-}" ]] && export DOCKER_HOST=unix:///var/run/docker.sock
  log "Docker engine is up"
}

# A go command of at least Go 1.24 (MinIO's go.mod): /usr/local/go's, else Debian's with a newer toolchain.
go_command() {
  local go
  for go in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
    [[ -n "$go" && -x "$go" ]] && { printf '%s\n' "$go"; return 0; }
  done
  return 1
}

# Builds MinIO ($MINIO_VERSION, the last upstream commit) from its Go source into $CACHE_DIR once.
ensure_minio_binary() {
  if [[ -x "$MINIO_BINARY" ]]; then
    log "MinIO $MINIO_VERSION: $MINIO_BINARY"
    return 0
  fi
  local go
  if ! go="$(go_command)"; then
    ensure_debs golang-go
    go="$(go_command)" || die "no go command after installing golang-go"
  fi
  local version
  version="$("$go" env GOVERSION 2>/dev/null || echo go0)"
  # Older than 1.24 (Debian's 1.19): the go command fetches $GO_TOOLCHAIN through the module proxy.
  if [[ "$(printf '%s\n%s\n' "$version" go1.24 | sort -V | head -n 1)" != go1.24 ]]; then
    export GOTOOLCHAIN="$GO_TOOLCHAIN"
  fi
  local build="$CACHE_DIR/minio/.build.$$"
  mkdir -p "$build"
  log "building MinIO $MINIO_VERSION with $("$go" version) (once; kept in $CACHE_DIR)"
  local started=$SECONDS
  if ! GOBIN="$build" GOFLAGS=-mod=mod CGO_ENABLED=0 "$go" install "github.com/minio/minio@$MINIO_VERSION" </dev/null; then
    rm -rf "$build"
    die "building MinIO failed (the Go module proxy must be reachable)"
  fi
  mkdir -p "$(dirname "$MINIO_BINARY")"
  mv "$build/minio" "$MINIO_BINARY"
  rm -rf "$build"
  log "MinIO built in $((SECONDS - started)) s: $MINIO_BINARY"
}

minio_live() { curl -sf -o /dev/null "http://127.0.0.1:$1/minio/health/ready"; }

# Starts a MinIO of our own on a free port from $1, with data in $2 (a temporary folder when empty,
# removed at exit), and exports the S3_* variables for it.
start_minio() {
  local first_port=$1 data=${2:-}
  if [[ -z "$data" ]]; then
    MINIO_TMP_DATA="$(mktemp -d "$TMP_DIR/minio.XXXXXX")"
    data="$MINIO_TMP_DATA"
  fi
  mkdir -p "$data"
  local port
  port="$(free_port "$first_port")"
  local console_port
  console_port="$(free_port $((port + 1)))"
  MINIO_ROOT_USER="${S3_ACCESS_KEY:-minioadmin}" MINIO_ROOT_PASSWORD="${S3_SECRET_KEY:-minioadmin}" \
    MINIO_BROWSER=off "$MINIO_BINARY" server --quiet --address "127.0.0.1:$port" \
    --console-address "127.0.0.1:$console_port" "$data" >"$TMP_DIR/minio.log" 2>&1 &
  MINIO_PID=$!
  if ! wait_for 60 minio_live "$port"; then
    tail -n 20 "$TMP_DIR/minio.log" >&2 || true
    die "MinIO did not answer on 127.0.0.1:$port within 60 s"
  fi
  export S3_ENDPOINT=127.0.0.1 S3_PORT="$port" S3_USE_SSL=false
  export S3_ACCESS_KEY="${S3_ACCESS_KEY:-minioadmin}" S3_SECRET_KEY="${S3_SECRET_KEY:-minioadmin}"
  log "MinIO answers on 127.0.0.1:$port (data in $data)"
}

# Stops, in reverse order, only what set-up started. Safe to call twice.
stop_started() {
  if [[ -n "$MINIO_PID" ]] && kill -0 "$MINIO_PID" 2>/dev/null; then
    kill "$MINIO_PID" 2>/dev/null || true
    wait "$MINIO_PID" 2>/dev/null || true
  fi
  MINIO_PID=""
  [[ -n "$MINIO_TMP_DATA" ]] && rm -rf "$MINIO_TMP_DATA"
  MINIO_TMP_DATA=""
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

# The EXIT trap: runs `before_stop` when the caller defined one (to stop its own processes first), then
# stop_started; keeps the exit status and names the step that failed.
setup_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if declare -F before_stop >/dev/null; then before_stop || true; fi
  stop_started
  if [[ $status -ne 0 && $status -ne 130 ]]; then
    printf '\n%s: FAILED during "%s" (exit %d)\n' "$SCRIPT_NAME" "$CURRENT_STEP" "$status" >&2
  fi
  exit "$status"
}
