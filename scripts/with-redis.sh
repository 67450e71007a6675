#!/usr/bin/env bash
# with-redis.sh CMD...: runs CMD with a throw-away redis-server on a free
# loopback port, handed over in JOBALERT_TEST_REDIS_URL, and stops it after.
# Installs redis-server with apt-get when it is missing and we are root.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "with-redis: installing redis-server (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
    # The package starts a system daemon; the tests do not use it.
    (service redis-server stop || true) >/dev/null 2>&1
  else
    echo "with-redis: redis-server is missing; install it with: sudo apt-get install -y redis-server" >&2
    exit 1
  fi
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize no &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

for _ in $(seq 1 200); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
redis-cli -p "$port" ping >/dev/null || { echo "with-redis: redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }

export JOBALERT_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
echo "with-redis: redis-server on 127.0.0.1:$port" >&2
"$@"
