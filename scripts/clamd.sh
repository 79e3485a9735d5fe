#!/usr/bin/env bash
# Start, stop or query drem's private clamd (ClamAV daemon). Works with no internet.
#
# Usage: scripts/clamd.sh start|stop|status|restart [RUNDIR]
#
#   RUNDIR   run folder (default: <repo>/instance/clamd). It receives clamd.conf,
#            the unix socket clamd.sock, clamd.pid, clamd.log, tmp/ and db/
#            (drem.ndb plus links to the official databases in /var/lib/clamav).
#
# Environment:
#   CLAMD_STREAM_MAX  StreamMaxLength and MaxFileSize (default 600M; keep it at
#                     least the upload limit, 500 MB by default)
#   CLAMD_SCAN_MAX    MaxScanSize: data scanned per file, archives unpacked (default 1200M)
#   CLAMD_TCP_PORT    also listen on 127.0.0.1:PORT (default: unix socket only)
#   CLAMD_OFFICIAL_DB folder with official databases (default /var/lib/clamav)
#   CLAMD_START_TIMEOUT seconds to wait for PING after start (default 180:
#                     the official databases take a while to load)
#   CLAMD_FRESHCLAM   auto (default): before start, run freshclam when the official
#                     databases are missing or older than 7 days and the ClamAV mirror
#                     resolves; 1: always try; 0: never. Databases go to
#                     CLAMD_OFFICIAL_DB when writable, else RUNDIR/official.
#
# start: installs clamav-daemon with apt-get when clamd is missing, writes the
# configuration and starts clamd in the background as the current user, then
# waits until the socket answers PING. Does nothing if clamd already answers.
# The socket URL for drem (CLAMD_URL) is printed on stdout.
# status: exit 0 and print the URL when clamd answers PING, exit 3 otherwise.
# update: run freshclam now (as with CLAMD_FRESHCLAM=1) and restart clamd when it got
# new databases. Without network it says so and how to copy .cvd files instead.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ACTION="${1:-}"
RUNDIR="${2:-$REPO/instance/clamd}"
STREAM_MAX="${CLAMD_STREAM_MAX:-600M}"
SCAN_MAX="${CLAMD_SCAN_MAX:-1200M}"
OFFICIAL_DB="${CLAMD_OFFICIAL_DB:-/var/lib/clamav}"
START_TIMEOUT="${CLAMD_START_TIMEOUT:-180}"
FRESHCLAM="${CLAMD_FRESHCLAM:-auto}"
MIRROR="database.clamav.net"

log() { echo "clamd.sh: $*" >&2; }
die() { log "$*"; exit 1; }

case "$ACTION" in
  start|stop|status|restart|update) ;;
  *) echo "usage: $0 start|stop|status|restart|update [RUNDIR]" >&2; exit 2 ;;
esac

mkdir -p "$RUNDIR"
RUNDIR="$(cd "$RUNDIR" && pwd)"
SOCK="$RUNDIR/clamd.sock"
PIDFILE="$RUNDIR/clamd.pid"
CONF="$RUNDIR/clamd.conf"
DBDIR="$RUNDIR/db"
if [ "${#SOCK}" -ge 100 ]; then
  die "socket path too long for a unix socket (${#SOCK} chars): $SOCK; use a shorter RUNDIR"
fi

find_clamd() {
  if command -v clamd >/dev/null 2>&1; then command -v clamd
  elif [ -x /usr/sbin/clamd ]; then echo /usr/sbin/clamd
  else return 1
  fi
}

install_clamd() {
  log "clamd not found: installing clamav-daemon with apt-get"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "clamd is missing and we are not root: install clamav-daemon"
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The local package lists may be enough; update only if the install fails.
  $sudo apt-get install -y -q --no-install-recommends clamav-daemon clamdscan >&2 \
    || { $sudo apt-get update -q >&2 && \
         $sudo apt-get install -y -q --no-install-recommends clamav-daemon clamdscan >&2; }
}

# ping: true when clamd answers PONG on the socket.
ping() {
  [ -S "$SOCK" ] || return 1
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$SOCK" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(2)
try:
    s.connect(sys.argv[1])
    s.sendall(b"nPING\n")
    sys.exit(0 if s.recv(64).strip() == b"PONG" else 1)
except OSError:
    sys.exit(1)
PY
  elif command -v clamdscan >/dev/null 2>&1; then
    clamdscan --config-file="$CONF" --ping 1 >/dev/null 2>&1
  else
    die "need python3 or clamdscan to talk to clamd"
  fi
}

pid_alive() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# official_fresh DIR: true when DIR holds a daily database younger than 7 days.
official_fresh() {
  [ -n "$(find "$1" -maxdepth 1 \( -name 'daily.cvd' -o -name 'daily.cld' \) -mtime -7 2>/dev/null)" ]
}

# run_freshclam: fetch the official databases; says so when the network does not allow it.
run_freshclam() {
  local target="$OFFICIAL_DB"
  if ! { mkdir -p "$target" 2>/dev/null && [ -w "$target" ]; }; then target="$RUNDIR/official"; fi
  mkdir -p "$target"
  if ! command -v freshclam >/dev/null 2>&1; then
    log "freshclam is not installed: no official virus signatures (install clamav-freshclam)"
    return 1
  fi
  if ! timeout 5 getent hosts "$MIRROR" >/dev/null 2>&1; then
    log "NO NETWORK for freshclam ($MIRROR does not resolve): clamd keeps the signatures it has."
    log "Copy main.cvd, daily.cvd and bytecode.cvd into $target (docs/operations.md, 'Virus signatures')."
    return 1
  fi
  local conf="$RUNDIR/freshclam.conf"
  printf 'DatabaseDirectory %s\nDatabaseMirror %s\nConnectTimeout 15\nReceiveTimeout 120\nMaxAttempts 2\nForeground true\n' \
    "$target" "$MIRROR" > "$conf"
  log "running freshclam into $target"
  if timeout 600 freshclam --config-file="$conf" --user="$(id -un)" --stdout >&2; then
    log "freshclam: official databases are up to date in $target"
  else
    log "freshclam FAILED (no route to the ClamAV mirror?): clamd keeps the signatures it has;"
    log "copy .cvd files by hand (docs/operations.md, 'Virus signatures')"
    return 1
  fi
}

maybe_freshclam() {
  case "$FRESHCLAM" in
    0|no|off) return 0 ;;
    1|yes|on) run_freshclam || true ;;
    *) if official_fresh "$OFFICIAL_DB" || official_fresh "$RUNDIR/official"; then return 0; fi
       run_freshclam || true ;;
  esac
}

link_official() {
  local dir="$1" f
  [ -d "$dir" ] || return 0
  for f in "$dir"/*.cvd "$dir"/*.cld "$dir"/*.cud "$dir"/*.ndb "$dir"/*.hdb "$dir"/*.ign2; do
    [ -f "$f" ] || continue
    [ "$(basename "$f")" = drem.ndb ] && continue
    ln -sfn "$f" "$DBDIR/$(basename "$f")"
  done
}

write_config() {
  mkdir -p "$DBDIR" "$RUNDIR/tmp"
  cp -f "$REPO/deploy/clamav/drem.ndb" "$DBDIR/drem.ndb"
  # Link the official databases when present; drop links whose target vanished.
  find "$DBDIR" -maxdepth 1 -type l ! -exec test -e {} \; -delete
  link_official "$OFFICIAL_DB"
  link_official "$RUNDIR/official"
  if [ -z "$(find "$DBDIR" -maxdepth 1 ! -name drem.ndb -type l 2>/dev/null)" ]; then
    log "WARNING: only drem's test signature (EICAR) is loaded: real viruses are NOT detected."
    log "Run 'scripts/clamd.sh update' with network, or copy .cvd files (docs/operations.md)."
  fi
  local tcp="# TCPSocket not configured (set CLAMD_TCP_PORT)"
  if [ -n "${CLAMD_TCP_PORT:-}" ]; then
    tcp="TCPSocket ${CLAMD_TCP_PORT}
TCPAddr 127.0.0.1"
  fi
  local tmp="$CONF.tmp.$$"
  # awk instead of sed: the values may contain characters sed treats specially.
  awk -v rundir="$RUNDIR" -v dbdir="$DBDIR" -v smax="$STREAM_MAX" \
      -v scmax="$SCAN_MAX" -v tcp="$tcp" '
    { gsub(/@RUNDIR@/, rundir); gsub(/@DBDIR@/, dbdir);
      gsub(/@STREAM_MAX@/, smax); gsub(/@SCAN_MAX@/, scmax);
      gsub(/@TCP@/, tcp); print }' "$REPO/deploy/clamav/clamd.conf.in" > "$tmp"
  mv -f "$tmp" "$CONF"
}

do_start() {
  if ping; then
    log "already running ($SOCK)"
    echo "unix://$SOCK"
    return 0
  fi
  local clamd
  clamd="$(find_clamd)" || { install_clamd; clamd="$(find_clamd)" || die "clamd still missing after install"; }
  if pid_alive; then
    # A clamd of ours is still loading its databases: wait for it below.
    log "clamd (pid $(cat "$PIDFILE")) is starting; waiting for it"
  else
    maybe_freshclam
    write_config
    rm -f "$PIDFILE"
    log "starting $clamd with $CONF"
    "$clamd" --config-file="$CONF" >>"$RUNDIR/clamd.out" 2>&1 \
      || die "clamd failed to start; see $RUNDIR/clamd.out and $RUNDIR/clamd.log"
  fi
  local waited=0
  while ! ping; do
    if [ "$waited" -ge $((START_TIMEOUT * 10)) ]; then
      die "clamd did not answer PING within ${START_TIMEOUT}s; see $RUNDIR/clamd.log"
    fi
    if [ "$waited" -ge 20 ] && ! pid_alive; then
      tail -n 20 "$RUNDIR/clamd.log" >&2 2>/dev/null || true
      die "clamd exited during start; see $RUNDIR/clamd.log"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  log "clamd is up ($SOCK)"
  echo "unix://$SOCK"
}

do_stop() {
  if pid_alive; then
    local pid i
    pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "clamd (pid $pid) ignored SIGTERM for 10 s: sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped clamd (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$PIDFILE" "$SOCK"
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  update)
    if run_freshclam; then
      if ping; then do_stop; do_start; fi
    else
      exit 1
    fi ;;
  status)
    if ping; then echo "unix://$SOCK"; exit 0; else log "not running ($SOCK)"; exit 3; fi ;;
esac
