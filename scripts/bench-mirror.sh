#!/usr/bin/env bash
# Benchmark: corral mirror vs Debian's docker-registry (distribution 2.8),
# same content, loopback only. Needs wrk, skopeo, docker-registry, curl.
#
#   scripts/bench-mirror.sh            # 3 runs of 5 s per measurement
#   RUNS=5 DURATION=10 scripts/bench-mirror.sh
#
# corral serves the content as a pull-through mirror of the distribution
# instance (warmed first), so both answer from their own local storage.
# Then a cold pull: `skopeo copy docker://… oci:…` of the whole image
# straight from distribution, and through a corral mirror with empty
# storage (a fresh storage directory and process for every run), so the
# mirror fetches, verifies and stores every blob while streaming it.
# Blob GETs are measured with two clients: wrk (8 KiB reads, an ioctl
# before each; on 2 cores it takes most of the machine and measures
# itself as much as the server) and scripts/lib/blob_get.py, which reads
# 1 MiB at a time as registry clients read layers, and again with the body
# spliced to /dev/null (the client copies nothing, so the server's work
# per byte shows). Both servers see the same clients.
# Prints a table of medians and the corral/distribution ratios.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
BLOB_MB=${BLOB_MB:-100}

bench_require bench-mirror wrk skopeo docker-registry curl python3
# SERVE=/path/to/serve skips the build
bench_serve_binary
bench_workdir bench-mirror
LOAD_BEFORE=$(load_average)

# --- content: an OCI layout with one BLOB_MB layer
bench_one_layer_layout

# --- distribution
bench_start_distribution
skopeo --policy "$WORK/policy.json" copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$L:v1" "docker://127.0.0.1:$DPORT/library/bench:v1" >&2

# --- corral, mirroring the distribution instance
CPORT=$(free_port)
cat > "$WORK/corral.toml" <<TOML
listen = "127.0.0.1:$CPORT"
storage = "$WORK/corral"
[[upstream]]
prefix = "library"
url = "http://127.0.0.1:$DPORT"
ttl_secs = 86400
TOML
RUST_LOG=warn "$SERVE" --config "$WORK/corral.toml" >/dev/null 2>&1 &
CPID=$!; PIDS+=("$CPID")
wait_http "http://127.0.0.1:$CPORT/healthz"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
curl -fs -o /dev/null -H "$ACCEPT" "http://127.0.0.1:$CPORT/v2/library/bench/manifests/v1"
curl -fs -o /dev/null "http://127.0.0.1:$CPORT/v2/library/bench/blobs/sha256:$LAYER"

# --- measurements
# wrk's Transfer/sec in MB/s
to_mb() { awk '{v=$1; u=substr(v,length(v)-1); n=v+0; if (u=="GB") n*=1024; else if (u=="KB") n/=1024; else if (u!="MB") n/=1048576; printf "%.1f\n", n}'; }
run_wrk() { # conns url field
    local out
    out=$(wrk -t "$(( $1 < 2 ? 1 : 2 ))" -c "$1" -d "${DURATION}s" -H "$ACCEPT" "$2")
    if [ "$3" = req ]; then echo "$out" | awk '/Requests\/sec/ {print $2}'
    else echo "$out" | awk '/Transfer\/sec/ {print $2}' | to_mb; fi
}
# The server's CPU time (user + system, in 10 ms ticks) from /proc.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# wrk at 16 connections on a blob: "MB/s CPU-seconds-per-GB-sent" of the
# server whose pid is $2, so a loaded machine still shows what a byte costs
blob16() { # url pid
    local t0 t1 out
    t0=$(cpu_ticks "$2")
    out=$(wrk -t 2 -c 16 -d "${DURATION}s" "$1")
    t1=$(cpu_ticks "$2")
    echo "$(echo "$out" | awk '/Transfer\/sec/ {print $2}' | to_mb)" \
        "$(echo "$out" | awk -v t=$((t1 - t0)) '/ read$/ {v=$(NF-1); u=substr(v,length(v)-1); n=v+0;
            if (u=="MB") n/=1024; else if (u=="KB") n/=1048576; else if (u!="GB") n/=1073741824;
            printf "%.3f\n", (t / 100) / n}')"
}
measure() { # port pid
    local base="http://127.0.0.1:$1/v2/library/bench"
    local m b1 b16 cpu runs
    m=$(for _ in $(seq "$RUNS"); do run_wrk 16 "$base/manifests/v1" req; done | median)
    b1=$(for _ in $(seq "$RUNS"); do run_wrk 1 "$base/blobs/sha256:$LAYER" mb; done | median)
    runs=$(for _ in $(seq "$RUNS"); do blob16 "$base/blobs/sha256:$LAYER" "$2"; done)
    b16=$(echo "$runs" | awk '{print $1}' | median)
    cpu=$(echo "$runs" | awk '{print $2}' | median)
    l1=$(for _ in $(seq "$RUNS"); do big_reads 1 "$base/blobs/sha256:$LAYER"; done | median)
    l16=$(for _ in $(seq "$RUNS"); do big_reads 16 "$base/blobs/sha256:$LAYER"; done | median)
    s1=$(for _ in $(seq "$RUNS"); do big_reads 1 "$base/blobs/sha256:$LAYER" --splice; done | median)
    s16=$(for _ in $(seq "$RUNS"); do big_reads 16 "$base/blobs/sha256:$LAYER" --splice; done | median)
    echo "$m $b1 $b16 $cpu $l1 $l16 $s1 $s16"
}
# MB/s of scripts/lib/blob_get.py (1 MiB reads; with --splice as $3, the
# body spliced to /dev/null, never copied into the client) at $1 connections
big_reads() { python3 "$(dirname "$0")/lib/blob_get.py" ${3:+"$3"} "$2" "$1" "$DURATION"; }
rss_mb() { awk '/VmHWM/ {printf "%.1f\n", $2/1024}' "/proc/$1/status"; }

echo "measuring distribution..." >&2
read -r DM DB1 DB16 DCPU DL1 DL16 DS1 DS16 < <(measure "$DPORT" "$DPID")
echo "measuring corral..." >&2
read -r CM CB1 CB16 CCPU CL1 CL16 CS1 CS16 < <(measure "$CPORT" "$CPID")
DR=$(rss_mb "$DPID"); CR=$(rss_mb "$CPID")

# --- cold pull: direct from distribution vs through an empty corral mirror
now() { date +%s.%N; }
skopeo_pull() { # source-host dest-dir -> seconds, or "fail"
    local t0 t1
    rm -rf "$2"
    t0=$(now)
    # --preserve-digests: no recompression of the uncompressed layer, so the
    # time is transfer and verification, as for docker and podman
    if ! skopeo --policy "$WORK/policy.json" --registries-conf /dev/null copy -q --preserve-digests \
        --src-tls-verify=false "docker://$1/library/bench:v1" "oci:$2:v1" >&2 \
        || [ ! -f "$2/blobs/sha256/$LAYER" ]; then
        echo "bench-mirror: skopeo copy from $1 failed" >&2
        echo fail
        return
    fi
    t1=$(now)
    rm -rf "$2"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
}
cold_mirror_pull() { # -> seconds for one pull through a fresh, empty mirror
    local port pid secs
    port=$(free_port)
    rm -rf "$WORK/cold"
    RUST_LOG=warn "$SERVE" --listen "127.0.0.1:$port" --storage "$WORK/cold" \
        --upstream "library=http://127.0.0.1:$DPORT" >/dev/null 2>&1 &
    pid=$!
    wait_http "http://127.0.0.1:$port/healthz"
    secs=$(skopeo_pull "127.0.0.1:$port" "$WORK/pulled")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # the layer must have gone through (and into) the mirror
    [ -f "$WORK/cold/blobs/sha256/${LAYER:0:2}/$LAYER" ] || secs=fail
    rm -rf "$WORK/cold"
    echo "$secs"
}
runs_median() { # label samples... -> median; exits on a failed run
    local label=$1; shift
    echo "$label runs: $*" >&2
    case " $* " in *" fail "*) echo "bench-mirror: a $label run failed" >&2; exit 1 ;; esac
    printf '%s\n' "$@" | median
}
echo "measuring cold pulls..." >&2
skopeo_pull "127.0.0.1:$DPORT" "$WORK/pulled" >/dev/null # warm the page cache of both sides alike
# shellcheck disable=SC2046 # one word per sample
DP=$(runs_median "direct pull" $(for _ in $(seq "$RUNS"); do skopeo_pull "127.0.0.1:$DPORT" "$WORK/pulled"; done)) || exit 1
# shellcheck disable=SC2046
CP=$(runs_median "cold mirror pull" $(for _ in $(seq "$RUNS"); do cold_mirror_pull; done)) || exit 1

printf '\nmedians of %d runs of %ss, %d MiB blob, loopback, %s cores; load average before: %s, after: %s\n' \
    "$RUNS" "$DURATION" "$BLOB_MB" "$(nproc)" "$LOAD_BEFORE" "$(load_average)"
printf '%-32s %14s %14s %10s\n' "measure" "distribution" "corral" "ratio"
printf '%-32s %14s %14s %10s\n' "manifest GET req/s (16 conns)" "$DM" "$CM" "$(ratio "$CM" "$DM")"
printf '%-32s %14s %14s %10s\n' "blob GET MB/s (1 conn)" "$DB1" "$CB1" "$(ratio "$CB1" "$DB1")"
printf '%-32s %14s %14s %10s\n' "blob GET MB/s (16 conns)" "$DB16" "$CB16" "$(ratio "$CB16" "$DB16")"
printf '%-32s %14s %14s %10s\n' "blob GET MB/s, 1 MiB reads (1)" "$DL1" "$CL1" "$(ratio "$CL1" "$DL1")"
printf '%-32s %14s %14s %10s\n' "blob GET MB/s, 1 MiB reads (16)" "$DL16" "$CL16" "$(ratio "$CL16" "$DL16")"
printf '%-32s %14s %14s %10s\n' "blob GET MB/s, spliced (1)" "$DS1" "$CS1" "$(ratio "$CS1" "$DS1")"
printf '%-32s %14s %14s %10s\n' "blob GET MB/s, spliced (16)" "$DS16" "$CS16" "$(ratio "$CS16" "$DS16")"
printf '%-32s %14s %14s %10s\n' "CPU s per GB sent (16 conns)" "$DCPU" "$CCPU" "$(ratio "$CCPU" "$DCPU")"
printf '%-32s %14s %14s %10s\n' "peak RSS MiB" "$DR" "$CR" "$(ratio "$CR" "$DR")"
printf '%-32s %14s %14s %10s\n' "cold pull s (skopeo, 1 image)" "$DP" "$CP" "$(ratio "$CP" "$DP")"
printf '\ncold pull: distribution = direct from docker-registry; corral = through an empty corral mirror of it (target <= 1.10x)\n'
