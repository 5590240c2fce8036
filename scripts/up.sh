#!/usr/bin/env bash
# The quick start, one command on a fresh Debian 12 machine (run as root): installs and starts what is
# missing (Node 24, RabbitMQ, PostgreSQL with its role and database, MinIO built from source, a Docker
# engine, dcmtk), builds DicomFlow and the example flow's model image, starts a DICOM destination (dcmtk's
# storescp on 127.0.0.1:11112) and then the seven services in the foreground, with mounts/flows/ct-copy.yaml
# active. Ctrl-C (or SIGTERM) stops the services, then what this script started; data stays in the data
# folder for the next start. The set-up is shared with scripts/test.sh (scripts/lib/setup.sh).
#
# Environment:
#   DICOMFLOW_UP_DIR     data folder: MinIO's data, the spool, what the destination receives (default .tmp/up)
#   DICOMFLOW_NODE_DIR   where Node 24 is installed when the machine's node is older (default /opt/dicomflow-node24)
#   DICOMFLOW_CACHE_DIR  where the MinIO binary is built once and kept (default ~/.cache/dicomflow)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TMP_DIR="$REPO/.tmp"
DATA_DIR="${DICOMFLOW_UP_DIR:-$REPO/.tmp/up}"
mkdir -p "$TMP_DIR" "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
SCRIPT_NAME=up.sh
# shellcheck source=lib/setup.sh
source "$REPO/scripts/lib/setup.sh"

DESTINATION_PORT=11112
DESTINATION_AE=DICOMFLOW_OUT
DESTINATION_DIR="$DATA_DIR/received"
DESTINATION_PID=""
STACK_PID=""

# Stops the services (the stack forwards one SIGTERM to each), then the destination; setup_cleanup runs
# this before stopping what set-up started.
before_stop() {
  if [[ -n "$STACK_PID" ]] && kill -0 "$STACK_PID" 2>/dev/null; then
    kill -TERM "$STACK_PID" 2>/dev/null || true
    wait "$STACK_PID" 2>/dev/null || true
  fi
  if [[ -n "$DESTINATION_PID" ]] && kill -0 "$DESTINATION_PID" 2>/dev/null; then
    log "stopping the destination (storescp on port $DESTINATION_PORT)"
    kill "$DESTINATION_PID" 2>/dev/null || true
    wait "$DESTINATION_PID" 2>/dev/null || true
  fi
}
trap setup_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

banner "node"
ensure_node

banner "debian packages"
ensure_debs dcmtk docker.io busybox-static rabbitmq-server postgresql curl procps

banner "rabbitmq"
ensure_rabbitmq

banner "postgresql"
ensure_postgres
ensure_database dicomflow dicomflow dicomflow
log "database dicomflow (role dicomflow) is ready"

banner "docker"
ensure_docker

banner "minio"
ensure_minio_binary
start_minio 9000 "$DATA_DIR/minio"

banner "build"
# npm ci when node_modules is missing or older than the lockfile; then the build (quick when up to date).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund </dev/null
fi
npm run --silent build
node scripts/example-image.mjs

banner "destination"
if port_open 127.0.0.1 "$DESTINATION_PORT"; then
  die "port $DESTINATION_PORT is taken: the example flow (mounts/flows/ct-copy.yaml) sends its results there"
fi
mkdir -p "$DESTINATION_DIR"
storescp -aet "$DESTINATION_AE" -od "$DESTINATION_DIR" "$DESTINATION_PORT" >"$TMP_DIR/destination.log" 2>&1 &
DESTINATION_PID=$!
wait_for 30 port_open 127.0.0.1 "$DESTINATION_PORT" || die "the destination did not start (see $TMP_DIR/destination.log)"
log "destination: AE $DESTINATION_AE on 127.0.0.1:$DESTINATION_PORT, writing to $DESTINATION_DIR"

banner "dicomflow"
export RABBIT_HOSTNAME=127.0.0.1 RABBIT_PORT=5672 RABBIT_USERNAME=guest RABBIT_PASSWORD=guest
export DB_HOST=127.0.0.1 DB_PORT=5432 DB_USER=dicomflow DB_PASS=dicomflow DB_NAME=dicomflow
export SPOOL_DIR="$DATA_DIR/spool" SENDER_SPOOL_DIR="$DATA_DIR/sender" CONSUMER_WORK_DIR="$DATA_DIR/work"
# The runs API needs a bearer token: one is made once and kept with the data (mode 600).
TOKEN_FILE="$DATA_DIR/tracker-api-token"
if [[ ! -s "$TOKEN_FILE" ]]; then
  (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$TOKEN_FILE")
fi
export TRACKER_API_TOKEN_FILE="$TOKEN_FILE"
cat <<EOF
up.sh: starting the seven services; when they are up:
  send a CT          storescu -aec STORESCP 127.0.0.1 10000 <files>   (AE title STORESCP, port 10000)
  active flow        mounts/flows/ct-copy.yaml (copies the CT images, sends them to the destination)
  results arrive in  $DESTINATION_DIR
  runs               curl -s -H "Authorization: Bearer \$(cat $TOKEN_FILE)" http://127.0.0.1:8080/runs   (status 4 = sent)
  Ctrl-C stops everything this started
EOF
# In the background and waited for, so that a signal reaches this script's trap at once (which then stops
# the stack), also when this script itself runs in the background.
node scripts/stack.mjs &
STACK_PID=$!
wait "$STACK_PID"
