#!/usr/bin/env bash
# Make sure the local PostgreSQL and Redis answer (they run on developer and CI machines;
# start them the Debian way if they stopped). Usage: scripts/services.sh [postgres] [redis]
set -euo pipefail
want=${*:-postgres redis}
for svc in $want; do
  case $svc in
    postgres)
      if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        echo "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
        for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
      fi
      pg_isready -h 127.0.0.1 -p 5432 ;;
    redis)
      if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
        echo "starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
          --dir /var/lib/redis --logfile /var/log/redis/ci.log
        for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done
      fi
      echo "redis: $(redis-cli -h 127.0.0.1 ping)" ;;
  esac
done
