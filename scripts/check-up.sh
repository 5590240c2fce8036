#!/usr/bin/env bash
# Checks the quick start as a new user meets it: a clean clone of this repository's HEAD, scripts/up.sh
# started there, a CT sent with dcmtk's storescu, and the run seen at status 4 (sent) with the images at
# the local destination; then SIGTERM, and up.sh must stop what it started. scripts/test.sh runs it last.
#
# It needs what scripts/test.sh sets up (RabbitMQ, PostgreSQL, Docker, the MinIO binary, dcmtk) and the
# ports up.sh uses (10000, 11112, 8080, 8081, 9101-9105) free.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dicomflow-check-up.XXXXXX")"
UP_PID=""
log() { printf 'check-up: %s\n' "$*"; }

finish() {
  local status=$?
  trap - EXIT
  if [[ -n "$UP_PID" ]] && kill -0 "$UP_PID" 2>/dev/null; then
    kill -TERM "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
  fi
  if [[ $status -ne 0 ]]; then
    printf '\ncheck-up: FAILED; the last lines of up.sh:\n' >&2
    tail -n 60 "$WORK/up.log" >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap finish EXIT

for port in 10000 11112 8080 8081 9101 9102 9103 9104 9105; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "check-up: port $port is taken; the quick start needs it" >&2
    exit 1
  fi
done

log "cloning $(git -C "$REPO" rev-parse --short HEAD) into $WORK/clone"
git clone -q "$REPO" "$WORK/clone"
log "starting scripts/up.sh there (log: $WORK/up.log)"
DICOMFLOW_UP_DIR="$WORK/data" bash "$WORK/clone/scripts/up.sh" >"$WORK/up.log" 2>&1 &
UP_PID=$!

# Waits until the command succeeds (polling), for at most $1 seconds; fails when up.sh exited meanwhile.
wait_until() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$UP_PID" 2>/dev/null || { echo "check-up: up.sh exited early" >&2; return 1; }
    ((SECONDS < deadline)) || { echo "check-up: timed out waiting for: $*" >&2; return 1; }
    sleep 1
  done
}

stack_up() { grep -q 'service(s) up and ready' "$WORK/up.log"; }
# npm ci and the build of a clean clone come first.
wait_until 900 stack_up
log "the stack is up"

# A small CT instance (16x16), made with dcmtk.
cat >"$WORK/ct.dump" <<'EOF'
(0008,0008) CS [ORIGINAL\PRIMARY\AXIAL]
(0008,0016) UI =CTImageStorage
(0008,0018) UI [1.2.826.0.1.3680043.10.1473.99.1.1]
(0008,0060) CS [CT]
(0010,0010) PN [Check^Up]
(0010,0020) LO [CHECKUP]
(0020,000d) UI [1.2.826.0.1.3680043.10.1473.99.1]
(0020,000e) UI [1.2.826.0.1.3680043.10.1473.99.1.0]
(0020,0013) IS [1]
(0028,0002) US 1
(0028,0004) CS [MONOCHROME2]
(0028,0010) US 16
(0028,0011) US 16
(0028,0100) US 16
(0028,0101) US 16
(0028,0102) US 15
(0028,0103) US 0
EOF
dump2dcm -q +te "$WORK/ct.dump" "$WORK/ct-header.dcm"
# Pixel data: 16 x 16 x 2 bytes appended as an OW element (explicit VR little endian).
{
  cat "$WORK/ct-header.dcm"
  printf '\xe0\x7f\x10\x00OW\x00\x00\x00\x02\x00\x00'
  head -c 512 /dev/zero
} >"$WORK/ct.dcm"
log "sending a CT with storescu"
storescu -aec STORESCP 127.0.0.1 10000 "$WORK/ct.dcm"

run_sent() {
  # up.sh keeps the runs API's token with its data.
  curl -sf -H "Authorization: Bearer $(cat "$WORK/data/tracker-api-token")" http://127.0.0.1:8080/runs |
    grep -q '"status":4'
}
wait_until 180 run_sent
log "the run reached status 4 (sent)"
received() { [[ -n "$(find "$WORK/data/received" -type f -name 'CT*' 2>/dev/null)" ]]; }
wait_until 30 received
log "the destination received $(find "$WORK/data/received" -type f | wc -l) file(s)"

log "stopping up.sh (SIGTERM)"
kill -TERM "$UP_PID"
status=0
wait "$UP_PID" || status=$?
UP_PID=""
[[ $status -eq 143 || $status -eq 0 ]] || { echo "check-up: up.sh exited with $status" >&2; exit 1; }
for port in 10000 11112 8080; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "check-up: port $port still open after up.sh stopped" >&2
    exit 1
  fi
done
log "up.sh stopped what it started; quick start OK"
