#!/usr/bin/env bash
# Builds, without any container registry, the local images the compose smoke test
# (test/compose/compose-up.smoke.ts) runs compose.yaml with: a Node 24 base for the Dockerfile's
# NODE_IMAGE, and stand-ins for the official rabbitmq, postgres and minio images. Everything comes from
# Debian's packages (debootstrap, apt) and the npm registry; the MinIO binary is the one
# scripts/lib/setup.sh builds. Idempotent: an image that exists is kept, and the root file system, node
# and npm are cached under $DICOMFLOW_CACHE_DIR/images.
#
# The stand-ins honour what compose.yaml relies on with the official images: the same environment variables
# (RABBITMQ_DEFAULT_USER/PASS, POSTGRES_DB/USER/PASSWORD, MINIO_ROOT_USER/PASSWORD), data folders
# (/var/lib/rabbitmq, /var/lib/postgresql/data, /data), entry points (minio takes `server ...` as its
# command) and healthcheck commands (rabbitmq-diagnostics, pg_isready, `mc ready local`). They are not the
# official images: Debian's RabbitMQ is 3.10 and its PostgreSQL 15, and `mc` is a shell stand-in that only
# knows `mc ready <alias>`.
#
# Usage: scripts/compose-images.sh [--print-env]   (run as root on a Debian 12 machine with a Docker engine)
#   --print-env  only prints the image variables (DICOMFLOW_NODE_IMAGE=..., RABBITMQ_IMAGE=..., ...)
#
# Environment:
#   DICOMFLOW_CACHE_DIR   cache root (default ~/.cache/dicomflow); images are kept under its images/
#   DEBIAN_MIRROR         debootstrap's mirror (default http://deb.debian.org/debian)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME=compose-images
# Part of every tag: bump it when a recipe below changes, so existing images are not taken for current.
TAG=1
PREFIX=dicomflow-local
BASE_IMAGE="$PREFIX/debian:bookworm-$TAG"
NODE_IMAGE="$PREFIX/node:24-$TAG"
RABBITMQ_IMAGE="$PREFIX/rabbitmq:$TAG"
POSTGRES_IMAGE="$PREFIX/postgres:$TAG"
MINIO_IMAGE="$PREFIX/minio:$TAG"

print_env() {
  printf 'DICOMFLOW_NODE_IMAGE=%s\nRABBITMQ_IMAGE=%s\nPOSTGRES_IMAGE=%s\nMINIO_IMAGE=%s\n' \
    "$NODE_IMAGE" "$RABBITMQ_IMAGE" "$POSTGRES_IMAGE" "$MINIO_IMAGE"
}
if [[ "${1:-}" == --print-env ]]; then
  print_env
  exit 0
fi

TMP_DIR="$(mktemp -d /tmp/compose-images.XXXXXX)"
# shellcheck source=scripts/lib/setup.sh
source "$REPO/scripts/lib/setup.sh"
IMAGES_DIR="$CACHE_DIR/images"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cleanup() {
  local status=$?
  rm -rf "$TMP_DIR"
  ((status == 0)) || printf '%s: failed during "%s"\n' "$SCRIPT_NAME" "$CURRENT_STEP" >&2
}
trap cleanup EXIT

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# `docker build` of a Dockerfile given on stdin, with the host's network: the engine may run without its
# default bridge (dockerd --bridge=none), and RUN steps fetch from the Debian mirror.
build_image() {
  local tag=$1 context=$2
  log "building $tag"
  # stderr only on failure: the legacy builder warns that it is deprecated on every build.
  docker build --force-rm --network host -q -t "$tag" -f - "$context" >/dev/null 2>"$TMP_DIR/build.err" || {
    cat "$TMP_DIR/build.err" >&2
    die "building $tag failed"
  }
}

ensure_base() {
  banner "Debian bookworm base ($BASE_IMAGE)"
  if have_image "$BASE_IMAGE"; then
    log "$BASE_IMAGE exists"
    return 0
  fi
  local tarball="$IMAGES_DIR/bookworm-minbase.tar"
  if [[ ! -s "$tarball" ]]; then
    ensure_debs debootstrap
    local root="$TMP_DIR/rootfs"
    log "debootstrap bookworm (minbase) from $MIRROR"
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$TMP_DIR/debootstrap.log" 2>&1 || {
      tail -n 20 "$TMP_DIR/debootstrap.log" >&2
      die "debootstrap failed"
    }
    # Smaller images: no apt lists or package cache in the base.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
    mkdir -p "$IMAGES_DIR"
    tar -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

# What node:24-slim gives the Dockerfile: node and npm in /usr/local/bin, and the user node (uid 1000).
ensure_node_image() {
  banner "Node 24 base ($NODE_IMAGE)"
  if have_image "$NODE_IMAGE"; then
    log "$NODE_IMAGE exists"
    return 0
  fi
  local dir="$IMAGES_DIR/node24"
  if [[ ! -x "$dir/node_modules/node/bin/node" || ! -s "$dir/npm.tgz" ]]; then
    mkdir -p "$dir"
    # As setup.sh's ensure_node: the npm package `node` ships the official binary (its preinstall fetches it).
    printf '{ "name": "dicomflow-node", "private": true, "allowScripts": { "node": true } }\n' >"$dir/package.json"
    log "fetching node@$NODE_MAJOR and npm from the npm registry"
    npm install --prefix "$dir" --no-audit --no-fund "node@$NODE_MAJOR" </dev/null >/dev/null
    # npm's own package bundles its dependencies: unpacked as it is, it runs.
    local npm_version
    npm_version="$(npm view "npm@$(npm_major_for_node)" version --json </dev/null | node -e \
      'const v = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log([v].flat().at(-1))')"
    (cd "$TMP_DIR" && npm pack --silent "npm@$npm_version" </dev/null >/dev/null && mv npm-*.tgz "$dir/npm.tgz")
  fi
  local context="$TMP_DIR/node"
  mkdir -p "$context"
  cp "$dir/node_modules/node/bin/node" "$context/node"
  cp "$dir/npm.tgz" "$context/npm.tgz"
  # A machine whose HTTPS goes through a CA of its own (NODE_EXTRA_CA_CERTS, as on this kind of test
  # machine) needs it in the image too, or the Dockerfile's `npm ci` fails with SELF_SIGNED_CERT_IN_CHAIN.
  local extra_ca=''
  if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -s "$NODE_EXTRA_CA_CERTS" ]]; then
    log "adding the machine's CA bundle ($NODE_EXTRA_CA_CERTS) as NODE_EXTRA_CA_CERTS"
    cp "$NODE_EXTRA_CA_CERTS" "$context/extra-ca.pem"
    extra_ca='COPY extra-ca.pem /usr/local/share/dicomflow/extra-ca.pem
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/dicomflow/extra-ca.pem'
  fi
  build_image "$NODE_IMAGE" "$context" <<EOF
FROM $BASE_IMAGE
COPY node /usr/local/bin/node
ADD npm.tgz /usr/local/lib/node_modules/
$extra_ca
RUN mv /usr/local/lib/node_modules/package /usr/local/lib/node_modules/npm \\
  && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
  && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
  && node --version && npm --version
CMD ["node"]
EOF
}

# The npm major release that ships with Node 24.
npm_major_for_node() { printf '11\n'; }

# Debian's rabbitmq-server (3.10) as the `rabbit` node on the container's host name, data in /var/lib/rabbitmq.
ensure_rabbitmq_image() {
  banner "RabbitMQ stand-in ($RABBITMQ_IMAGE)"
  if have_image "$RABBITMQ_IMAGE"; then
    log "$RABBITMQ_IMAGE exists"
    return 0
  fi
  local context="$TMP_DIR/rabbitmq"
  mkdir -p "$context"
  # The official image turns RABBITMQ_DEFAULT_USER/PASS into the first user; here a config file does.
  cat >"$context/entrypoint.sh" <<'EOF'
#!/bin/sh
set -eu
{
  echo 'listeners.tcp.default = 5672'
  echo 'loopback_users = none'
  [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
  [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
  echo 'management.tcp.port = 15672'
} >/etc/rabbitmq/rabbitmq.conf
exec "$@"
EOF
  chmod 755 "$context/entrypoint.sh"
  build_image "$RABBITMQ_IMAGE" "$context" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends rabbitmq-server </dev/null >/dev/null \\
  && rm -rf /var/lib/apt/lists/* \\
  && echo '[rabbitmq_management].' >/etc/rabbitmq/enabled_plugins \\
  && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# As the official image: logs to stdout, data (and the Erlang cookie) in /var/lib/rabbitmq.
ENV RABBITMQ_LOGS=- HOME=/var/lib/rabbitmq
USER rabbitmq
VOLUME /var/lib/rabbitmq
EXPOSE 5672 15672
ENTRYPOINT ["docker-entrypoint.sh"]
# Debian's /usr/sbin/rabbitmq-server writes the logs to files: the script it wraps keeps them on stdout.
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
EOF
}

# Debian's PostgreSQL 15 with the official image's entry point contract: POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB create the first role and database on an empty PGDATA, password logins from the network.
ensure_postgres_image() {
  banner "PostgreSQL stand-in ($POSTGRES_IMAGE)"
  if have_image "$POSTGRES_IMAGE"; then
    log "$POSTGRES_IMAGE exists"
    return 0
  fi
  local context="$TMP_DIR/postgres"
  mkdir -p "$context"
  cat >"$context/entrypoint.sh" <<'EOF'
#!/bin/sh
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
if [ "$(id -u)" = 0 ]; then
  # A new named volume may belong to root: the data folder must be postgres's, mode 0700.
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
  rm -f "$pwfile"
  echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    postgres --single -D "$PGDATA" postgres <<SQL >/dev/null
CREATE DATABASE "$POSTGRES_DB" OWNER "$POSTGRES_USER";
SQL
  fi
  echo "postgres stand-in: initialised $PGDATA (database $POSTGRES_DB, owner $POSTGRES_USER)"
fi
exec "$@"
EOF
  chmod 755 "$context/entrypoint.sh"
  build_image "$POSTGRES_IMAGE" "$context" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-15 </dev/null >/dev/null \\
  && rm -rf /var/lib/apt/lists/* \\
  && mkdir -p /var/lib/postgresql/data /var/run/postgresql \\
  && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres", "-c", "listen_addresses=*"]
EOF
}

# The MinIO binary setup.sh builds; as the official image, `minio` is the entry point and the command its
# arguments (compose.yaml: server /data --console-address :9001).
ensure_minio_image() {
  banner "MinIO stand-in ($MINIO_IMAGE)"
  if have_image "$MINIO_IMAGE"; then
    log "$MINIO_IMAGE exists"
    return 0
  fi
  ensure_minio_binary
  local context="$TMP_DIR/minio"
  mkdir -p "$context"
  cp "$MINIO_BINARY" "$context/minio"
  # compose.yaml's healthcheck is `mc ready local`: MinIO's own readiness endpoint, which is what mc asks.
  cat >"$context/mc" <<'EOF'
#!/bin/bash
# Stand-in for MinIO's client: only `mc ready <alias>`, for the local server on port 9000.
if [[ "${1:-}" != ready ]]; then
  echo "mc stand-in: only 'mc ready <alias>' is supported" >&2
  exit 2
fi
exec 3<>/dev/tcp/127.0.0.1/9000 || exit 1
printf 'GET /minio/health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
read -r _ status _ <&3
[[ "$status" == 200 ]]
EOF
  chmod 755 "$context/minio" "$context/mc"
  build_image "$MINIO_IMAGE" "$context" <<EOF
FROM $BASE_IMAGE
COPY minio /usr/bin/minio
COPY mc /usr/bin/mc
VOLUME /data
EXPOSE 9000 9001
ENTRYPOINT ["minio"]
CMD ["server", "/data"]
EOF
}

started=$SECONDS
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info)"
ensure_base
ensure_node_image
ensure_rabbitmq_image
ensure_postgres_image
ensure_minio_image
log "images ready in $((SECONDS - started)) s"
print_env
