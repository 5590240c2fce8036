#!/usr/bin/env bash
# One command for a fresh Debian 12 machine (run as root): installs and starts what the tests need, then
# runs every check (build, lint, format, import cycles, tests, the quick start). Safe to re-run; quick when
# all is present. Only what this script starts is stopped again at exit; services that were already running
# are left alone. The set-up is shared with scripts/up.sh (scripts/lib/setup.sh).
#
# Environment:
#   SKIP_NPM_CI=1        skip `npm ci` (local runs with node_modules already installed; ignored when CI=true)
#   SKIP_UP_CHECK=1      skip the quick-start check (scripts/check-up.sh; ignored when CI=true)
#   DICOMFLOW_NODE_DIR   where Node 24 is installed when the machine's node is older (default /opt/dicomflow-node24)
#   DICOMFLOW_CACHE_DIR  where the MinIO binary is built once and kept (default ~/.cache/dicomflow)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TMP_DIR="$REPO/.tmp"
mkdir -p "$TMP_DIR"
SCRIPT_NAME=test.sh
# shellcheck source=lib/setup.sh
source "$REPO/scripts/lib/setup.sh"
trap setup_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

banner "node"
ensure_node

banner "debian packages"
# docker-compose (v1): validates compose.yaml in test/compose. curl: MinIO's health check. openssl: the
# certificates of the TLS tests. orthanc-dicomweb: the DICOMweb peer of the STOW-RS tests.
ensure_debs dcmtk orthanc orthanc-dicomweb docker.io busybox-static rabbitmq-server postgresql gcc curl \
  procps iproute2 docker-compose git openssl
log "all required Debian packages are installed"

banner "rabbitmq"
ensure_rabbitmq

banner "postgresql"
ensure_postgres
ensure_database dicomflow_test
log "database dicomflow_test is ready"

banner "docker"
ensure_docker

banner "minio"
ensure_minio_binary
# A private instance on a port of its own, so a MinIO already running on 9000 is never touched.
start_minio 19400

export S3_PART_SIZE=67108864 # production's 64 MiB: studies above it go up as multipart uploads
export RABBIT_HOSTNAME=127.0.0.1 RABBIT_PORT=5672 RABBIT_USERNAME=guest RABBIT_PASSWORD=guest
export DB_HOST=127.0.0.1 DB_PORT=5432 DB_USER=postgres DB_NAME=dicomflow_test DB_PASS=''
export MINIO_BINARY

banner "npm ci"
if [[ "${SKIP_NPM_CI:-}" == 1 && "${CI:-}" != true ]]; then
  log "skipped (SKIP_NPM_CI=1)"
else
  npm ci --no-audit --no-fund </dev/null
fi

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
banner "fault injection"
# test/faults: the whole suite under kill -9, a RabbitMQ restart, PostgreSQL, MinIO, the Docker engine and a
# destination stopped, and a full spool; on servers of its own (it mounts a tmpfs and starts a dockerd:
# root, as this script runs).
npm run test:faults </dev/null

banner "quick start"
if [[ "${SKIP_UP_CHECK:-}" == 1 && "${CI:-}" != true ]]; then
  log "skipped (SKIP_UP_CHECK=1)"
else
  bash "$REPO/scripts/check-up.sh"
fi

CURRENT_STEP="stopping what it started"
stop_started
CURRENT_STEP="done"
printf '\ntest.sh: all checks passed (%ds)\n' "$SECONDS"
