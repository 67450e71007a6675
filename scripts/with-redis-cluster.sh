#!/usr/bin/env bash
# with-redis-cluster.sh CMD...: runs CMD with a throw-away Redis Cluster of
# three primaries and three replicas (one replica each) on free loopback
# ports, and stops and removes it after, also when CMD fails or the script
# is interrupted. Installs redis-server with apt-get when it is missing and
# we are root, like with-redis.sh.
#
# CMD sees:
#   JOBALERT_TEST_REDIS_CLUSTER      the seed addresses, host:port,... (all six)
#   JOBALERT_TEST_REDIS_CLUSTER_DIR  the directory holding each node's files
#                                    (node-PORT/redis.pid, redis.log, nodes.conf)
#   JOBALERT_TEST_REDIS_CLUSTER_PRIMARIES  host:port of the primaries at start
#   JOBALERT_TEST_REDIS_CLUSTER_REPLICAS   host:port of the replicas at start
# A test that kills a node (kill -9 "$(cat DIR/node-PORT/redis.pid)") finds
# its pid there; cluster-node-timeout is 2000 ms, so a replica promotes itself
# about 2-4 s after its primary dies. A node killed by a test is simply gone
# at cleanup.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "with-redis-cluster: installing redis-server (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
    # The package starts a system daemon; the tests do not use it.
    (service redis-server stop || true) >/dev/null 2>&1
  else
    echo "with-redis-cluster: redis-server is missing; install it with: sudo apt-get install -y redis-server" >&2
    exit 1
  fi
fi

# Six distinct free ports, and each port+10000 (the cluster bus) free too.
ports=$(python3 - <<'EOF'
import socket
out = []
socks = []
while len(out) < 6:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    socks.append(s)
    if p + 10000 > 65535 or p in out:
        continue
    try:
        b = socket.socket(); b.bind(("127.0.0.1", p + 10000)); socks.append(b)
    except OSError:
        continue
    out.append(p)
print(" ".join(map(str, out)))
EOF
)

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

addrs=()
for port in $ports; do
  d="$dir/node-$port"
  mkdir -p "$d"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --logfile "$d/redis.log" \
    --cluster-enabled yes --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 \
    --appendonly yes --appendfsync everysec --save "" --daemonize no \
    --pidfile "$d/redis.pid" &
  pids+=("$!")
  echo "$!" >"$d/redis.pid"
  addrs+=("127.0.0.1:$port")
done

for port in $ports; do
  for _ in $(seq 1 200); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
    sleep 0.05
  done
  redis-cli -p "$port" ping >/dev/null || {
    echo "with-redis-cluster: redis-server on port $port did not start" >&2
    cat "$dir/node-$port/redis.log" >&2
    exit 1
  }
done

redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
  echo "with-redis-cluster: redis-cli --cluster create failed" >&2
  cat "$dir/create.log" >&2
  exit 1
}

# Every node must agree the cluster is up and know all six nodes.
for port in $ports; do
  ok=
  for _ in $(seq 1 400); do
    info=$(redis-cli -p "$port" cluster info 2>/dev/null || true)
    if grep -q 'cluster_state:ok' <<<"$info" && grep -q 'cluster_known_nodes:6' <<<"$info" &&
      grep -q 'cluster_slots_ok:16384' <<<"$info"; then
      ok=1
      break
    fi
    sleep 0.05
  done
  [ -n "$ok" ] || {
    echo "with-redis-cluster: node on port $port never reported cluster_state:ok" >&2
    redis-cli -p "$port" cluster info >&2 || true
    exit 1
  }
done

# Replicas must have synced with their primaries before the tests kill any.
for port in $ports; do
  role=$(redis-cli -p "$port" role | head -1)
  if [ "$role" = slave ]; then
    for _ in $(seq 1 400); do
      if redis-cli -p "$port" info replication | grep -q 'master_link_status:up'; then break; fi
      sleep 0.05
    done
  fi
done

primaries=()
replicas=()
for port in $ports; do
  if [ "$(redis-cli -p "$port" role | head -1)" = master ]; then
    primaries+=("127.0.0.1:$port")
  else
    replicas+=("127.0.0.1:$port")
  fi
done

join() { local IFS=,; echo "$*"; }
export JOBALERT_TEST_REDIS_CLUSTER=$(join "${addrs[@]}")
export JOBALERT_TEST_REDIS_CLUSTER_DIR="$dir"
export JOBALERT_TEST_REDIS_CLUSTER_PRIMARIES=$(join "${primaries[@]}")
export JOBALERT_TEST_REDIS_CLUSTER_REPLICAS=$(join "${replicas[@]}")
echo "with-redis-cluster: primaries $JOBALERT_TEST_REDIS_CLUSTER_PRIMARIES, replicas $JOBALERT_TEST_REDIS_CLUSTER_REPLICAS" >&2
set +e
"$@"
rc=$?
exit "$rc"
