#!/usr/bin/env bash
# A throwaway 3-node Garage cluster on loopback ports, for the replica
# benchmark (scripts/bench-replicas.sh), which runs it from bash. The tests
# start theirs with the Rust helper corral_test_support::Garage
# (tests/support/garage.rs), which does the same steps.
#
#   scripts/garage.sh start DIR     start 3 nodes under DIR, make bucket and key;
#                                   writes DIR/env (S3_ENDPOINT_1..3, S3_BUCKET,
#                                   S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)
#   scripts/garage.sh stop DIR [N]  stop node N (1-3), or every node
#
# GARAGE names the binary (default: /var/tmp/corral-tools/bin/garage, which
# scripts/setup.sh installs). Every server binds 127.0.0.1 only.
set -euo pipefail

GARAGE=${GARAGE:-/var/tmp/corral-tools/bin/garage}
cmd=${1:?usage: garage.sh start|stop DIR [N]}
dir=${2:?usage: garage.sh start|stop DIR [N]}

# A loopback port nothing listens on, below the kernel's ephemeral range:
# a port in that range can be taken by any outgoing connection (or a test's
# bind to port 0) between this probe and Garage's bind, and a Garage node
# whose S3 API cannot bind keeps running without it (the replica tests then
# saw 500s: "Connection refused" on every retry).
free_port() {
  local p lo=20000 hi
  hi=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((hi > lo + 1000)) || hi=60000
  while :; do
    p=$((lo + RANDOM % (hi - lo)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

stop_node() {
  local pidfile="$dir/node$1/pid"
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# Writes node N's config with fresh ports and starts it.
launch_node() {
  local n=$1 node="$dir/node$1" rpc s3
  mkdir -p "$node/meta" "$node/data"
  rpc=$(free_port)
  s3=$(free_port)
  cat >"$node/garage.toml" <<EOF
metadata_dir = "$node/meta"
data_dir = "$node/data"
db_engine = "sqlite"
replication_factor = 3
metadata_fsync = false
data_fsync = false
rpc_secret = "$secret"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"

[s3_api]
api_bind_addr = "127.0.0.1:$s3"
s3_region = "garage"
root_domain = ".s3.garage.localhost"
EOF
  echo "$s3" >"$node/s3_port"
  echo "$rpc" >"$node/rpc_port"
  RUST_LOG=${GARAGE_LOG:-warn} "$GARAGE" -c "$node/garage.toml" server \
    >"$node/log" 2>&1 </dev/null &
  echo $! >"$node/pid"
}

# Whether node N came up listening on both its ports, bound by itself (a
# bind failure is logged; the process does not exit).
wait_listening() {
  local node="$dir/node$1" port
  for _ in $(seq 100); do
    grep -q "Address already in use" "$node/log" && return 1
    kill -0 "$(cat "$node/pid")" 2>/dev/null || return 1
    for port in "$(cat "$node/s3_port")" "$(cat "$node/rpc_port")"; do
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        sleep 0.1
        continue 2
      fi
    done
    ! grep -q "Address already in use" "$node/log"
    return
  done
  return 1
}

g() { "$GARAGE" -c "$dir/node1/garage.toml" "$@"; }

case $cmd in
start)
  [[ -x $GARAGE ]] || { echo "garage.sh: $GARAGE not found (run scripts/setup.sh)" >&2; exit 1; }
  mkdir -p "$dir"
  # A failed start leaves no node running: the caller has no cluster to stop.
  trap 'for n in 1 2 3; do stop_node "$n"; done' EXIT
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  for n in 1 2 3; do
    for attempt in 1 2 3 4 5; do
      launch_node "$n"
      wait_listening "$n" && break
      # Another process took a port first: new ports.
      stop_node "$n"
      [[ $attempt == 5 ]] && { echo "garage node $n could not bind its ports:" >&2; cat "$dir/node$n/log" >&2; exit 1; }
    done
  done
  # Wait for the RPC of every node, then connect them.
  for n in 1 2 3; do
    for _ in $(seq 100); do
      "$GARAGE" -c "$dir/node$n/garage.toml" node id -q >"$dir/node$n/id" 2>/dev/null && break
      sleep 0.2
    done
    [[ -s $dir/node$n/id ]] || { echo "garage node $n did not start:" >&2; cat "$dir/node$n/log" >&2; exit 1; }
  done
  # `node id` answers before the RPC port listens: retry the connects.
  for n in 2 3; do
    for i in $(seq 100); do
      g node connect "$(cat "$dir/node$n/id")" >/dev/null 2>"$dir/connect.err" && break
      kill -0 "$(cat "$dir/node$n/pid")" 2>/dev/null || {
        echo "garage node $n exited:" >&2; cat "$dir/node$n/log" >&2; exit 1; }
      [[ $i == 100 ]] && { cat "$dir/connect.err" >&2; exit 1; }
      sleep 0.2
    done
  done
  for n in 1 2 3; do
    id=$(cut -d@ -f1 <"$dir/node$n/id")
    g layout assign -z "dc$n" -c 1G "${id:0:16}" >/dev/null
  done
  g layout apply --version 1 >/dev/null
  # The key and bucket can only be made once the layout is live everywhere.
  for _ in $(seq 100); do
    g bucket create corral >/dev/null 2>&1 && break
    sleep 0.2
  done
  g key create corral-mirror >"$dir/key.txt"
  g bucket allow --read --write --owner corral --key corral-mirror >/dev/null
  key_id=$(awk -F': *' '/Key ID/ {print $2; exit}' "$dir/key.txt")
  key_secret=$(awk -F': *' '/Secret key/ {print $2; exit}' "$dir/key.txt")
  if [[ -z $key_secret || $key_secret == *redacted* ]]; then
    g key info corral-mirror --show-secret >"$dir/key.txt"
    key_secret=$(awk -F': *' '/Secret key/ {print $2; exit}' "$dir/key.txt")
  fi
  [[ -n $key_id && -n $key_secret ]] || { echo "garage.sh: no key in:" >&2; cat "$dir/key.txt" >&2; exit 1; }
  {
    for n in 1 2 3; do
      echo "S3_ENDPOINT_$n=http://127.0.0.1:$(cat "$dir/node$n/s3_port")"
    done
    echo "S3_BUCKET=corral"
    echo "S3_REGION=garage"
    echo "S3_ACCESS_KEY_ID=$key_id"
    echo "S3_SECRET_ACCESS_KEY=$key_secret"
  } >"$dir/env"
  trap - EXIT
  ;;
stop)
  if [[ -n ${3:-} ]]; then
    stop_node "$3"
  else
    for n in 1 2 3; do stop_node "$n"; done
  fi
  ;;
*)
  echo "usage: garage.sh start|stop DIR [N]" >&2
  exit 2
  ;;
esac
