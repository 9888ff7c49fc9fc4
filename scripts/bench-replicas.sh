#!/usr/bin/env bash
# Benchmark: the mirror on the filesystem backend vs one and two replicas on
# a 3-node Garage cluster (scripts/garage.sh), in one run, loopback only.
# Needs wrk, skopeo, curl, python3 and garage (`source scripts/setup.sh;
# corral_install_garage`, which scripts/test.sh runs).
#
#   scripts/bench-replicas.sh                 # 3 runs of 5 s per measurement
#   RUNS=5 DURATION=10 BLOB_MB=64 scripts/bench-replicas.sh
#
# Each setup holds the same image (one BLOB_MB layer), pushed with skopeo.
# Measured with wrk: manifest GETs by tag (16 connections) and blob GETs
# (4 connections). "Two replicas" runs one wrk per replica at the same time
# and adds their results: the throughput a load balancer in front of both
# would see. Prints medians and the ratios to the filesystem backend.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
BLOB_MB=${BLOB_MB:-64}

bench_require bench-replicas wrk skopeo curl python3 htpasswd
# SERVE=/path/to/serve skips the build
bench_serve_binary
bench_workdir bench-replicas
stop_garage() { bash "$ROOT/scripts/garage.sh" stop "$WORK/garage" || true; }
export BENCH_CLEANUP=stop_garage

# --- content: an OCI layout with one BLOB_MB layer
bench_one_layer_layout
# Pushes need credentials; pulls are anonymous.
htpasswd -Bbn bench bench > "$WORK/htpasswd"
# Replicas share the token secret (required with [s3]).
AUTH=$(printf '[auth]\nhtpasswd = "%s"\ntoken_secret = "%s"\n' "$WORK/htpasswd" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')")

start_mirror() { # config-file -> port (and records the pid)
    local port=$1 conf=$2
    RUST_LOG=warn "$SERVE" --config "$conf" >"$conf.log" 2>&1 &
    PIDS+=("$!")
    wait_http "http://127.0.0.1:$port/healthz"
}
push() { # port
    skopeo --policy "$WORK/policy.json" copy -q --preserve-digests --dest-tls-verify=false \
        --dest-creds bench:bench "oci:$L:v1" "docker://127.0.0.1:$1/bench/image:v1" >&2
}

# --- filesystem backend
FPORT=$(free_port)
printf 'listen = "127.0.0.1:%s"\nstorage = "%s"\n%s\n' "$FPORT" "$WORK/fs" "$AUTH" > "$WORK/fs.toml"
start_mirror "$FPORT" "$WORK/fs.toml"
push "$FPORT"

# --- Garage and two replicas (on different Garage nodes)
echo "starting a 3-node Garage cluster..." >&2
bash "$ROOT/scripts/garage.sh" start "$WORK/garage"
# shellcheck disable=SC1091
. "$WORK/garage/env"
s3_conf() { # node listen-port file
    local endpoint_var="S3_ENDPOINT_$1"
    cat > "$3" <<TOML
listen = "127.0.0.1:$2"
$AUTH
[s3]
endpoint = "${!endpoint_var}"
bucket = "$S3_BUCKET"
region = "$S3_REGION"
access_key_id = "$S3_ACCESS_KEY_ID"
secret_access_key = "$S3_SECRET_ACCESS_KEY"
scratch = "$WORK/scratch-$1"
TOML
}
APORT=$(free_port); BPORT=$(free_port)
s3_conf 1 "$APORT" "$WORK/a.toml"; s3_conf 2 "$BPORT" "$WORK/b.toml"
start_mirror "$APORT" "$WORK/a.toml"
start_mirror "$BPORT" "$WORK/b.toml"
push "$APORT"

# --- measurements
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
to_mb() { awk '{v=$1; u=substr(v,length(v)-1); n=v+0; if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; printf "%.1f\n", n}'; }
wrk_field() { # conns url req|mb -> number
    local out
    out=$(wrk -t 2 -c "$1" -d "${DURATION}s" -H "$ACCEPT" "$2")
    if [ "$3" = req ]; then echo "$out" | awk '/Requests\/sec/ {print $2}'
    else echo "$out" | awk '/Transfer\/sec/ {print $2}' | to_mb; fi
}
once() { # conns path req|mb ports... -> summed over the ports, measured at once
    local conns=$1 path=$2 field=$3; shift 3
    local files=() waits=() p f
    for p in "$@"; do
        f=$(mktemp "$WORK/wrk.XXXXXX"); files+=("$f")
        wrk_field "$conns" "http://127.0.0.1:$p$path" "$field" > "$f" &
        waits+=("$!")
    done
    wait "${waits[@]}"
    cat "${files[@]}" | awk '{s+=$1} END {printf "%.1f\n", s}'
}
measure() { # ports... -> "manifest-req/s blob-MB/s"
    local m b
    m=$(for _ in $(seq "$RUNS"); do once 16 /v2/bench/image/manifests/v1 req "$@"; done | median)
    b=$(for _ in $(seq "$RUNS"); do once 4 "/v2/bench/image/blobs/sha256:$LAYER" mb "$@"; done | median)
    echo "$m $b"
}
echo "measuring the filesystem backend..." >&2
read -r FM FB < <(measure "$FPORT")
echo "measuring one replica on Garage..." >&2
read -r OM OB < <(measure "$APORT")
echo "measuring two replicas on Garage..." >&2
read -r TM TB < <(measure "$APORT" "$BPORT")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
printf '\nmedians of %d runs of %ss, %d MiB blob, loopback, %s cores\n' "$RUNS" "$DURATION" "$BLOB_MB" "$(nproc)"
printf '%-30s %12s %12s %12s %10s %10s\n' "measure" "filesystem" "1 replica" "2 replicas" "1r/fs" "2r/fs"
printf '%-30s %12s %12s %12s %10s %10s\n' "manifest GET req/s (16 conns)" "$FM" "$OM" "$TM" "$(ratio "$OM" "$FM")" "$(ratio "$TM" "$FM")"
printf '%-30s %12s %12s %12s %10s %10s\n' "blob GET MB/s (4 conns)" "$FB" "$OB" "$TB" "$(ratio "$OB" "$FB")" "$(ratio "$TB" "$FB")"
