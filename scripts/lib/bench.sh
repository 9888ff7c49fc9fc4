# Shared helpers of the bench-*.sh scripts: source it, do not run it.
#   . "$(dirname "$0")/lib/bench.sh"

# A free TCP port on the loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 10 s for a URL to answer 2xx; exits the script otherwise.
wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# "a / b" as "1.23x", or n/a when b is 0 or missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

# wrk's requests per second and average latency in ms for CONNS connections
# on URL for DURATION seconds (default 3): prints "REQ_PER_S LATENCY_MS".
# Extra arguments go to wrk (headers).
wrk_req() { # conns url [wrk args...]
    local conns=$1 url=$2 out
    shift 2
    out=$(wrk -t "$(( conns < 2 ? 1 : 2 ))" -c "$conns" -d "${DURATION:-3}s" --latency "$@" "$url")
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "bench: non-2xx answers from $url" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$out" | awk '
        /Requests\/sec/ { r = $2 }
        /^ +Latency / && !l { v = $2; u = v; gsub(/[0-9.]/, "", u); n = v + 0;
            if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
            l = n }
        END { printf "%s %.2f\n", r, l }'
}

# The load average now (1, 5, 15 minutes), for the benchmark record.
load_average() { cut -d' ' -f1-3 /proc/loadavg; }

# Fails with exit 2 naming the first missing tool: bench_require NAME TOOL...
bench_require() {
    local name=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$name: $tool is required" >&2; exit 2; }
    done
}

# Sets SERVE to the release mirror server unless the caller gave one (a
# private copy is safe from other builds into a shared target directory).
bench_serve_binary() {
    if [ -z "${SERVE:-}" ]; then
        echo "building the release serve example..." >&2
        (cd "$ROOT" && cargo build --release -q -p corral-mirror --example serve)
        SERVE="$CARGO_TARGET_DIR/release/examples/serve"
    fi
}

# A scratch directory WORK and a list PIDS of servers, both removed or
# stopped when the script exits: bench_workdir NAME
bench_workdir() {
    WORK=$(mktemp -d "/var/tmp/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}

# Starts Debian's docker-registry (distribution) on a free loopback port
# with its storage in $WORK/distribution and waits for it; sets DPORT and
# DPID. `bench_start_distribution delete` also enables deletes.
bench_start_distribution() {
    local delete=""
    [ "${1:-}" = delete ] && delete=$'\n  delete:\n    enabled: true'
    DPORT=$(free_port)
    cat > "$WORK/distribution.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/distribution$delete
http:
  addr: 127.0.0.1:$DPORT
YAML
    docker-registry serve "$WORK/distribution.yml" >/dev/null 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
    wait_http "http://127.0.0.1:$DPORT/v2/"
}

# hyperfine's median wall time in ms of each command, in order, one a line,
# run side by side in one hyperfine run (RUNS runs each, default 30, after
# WARMUP warm-ups, default 3; exit codes ignored). Needs hyperfine (apt-get install hyperfine).
hyperfine_medians() { # cmd...
    local json
    json=$(mktemp)
    hyperfine -N -i --style none -w "${WARMUP:-3}" -r "${RUNS:-30}" --export-json "$json" "$@" >/dev/null
    python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]: print("%.2f" % (r["median"] * 1000))' "$json"
    rm -f "$json"
}
