#!/usr/bin/env bash
# Start-up time of the corral binary against umoci, and where it goes.
# Not a test: prints a table of mean wall time and CPU time (perf stat,
# RUNS runs each) and corral's ratio to umoci.
#
#   scripts/bench-startup.sh            # RUNS=50
#
# Rows:
# - `corral --version` (release build): the whole binary.
# - `corral-dockerfiles --help`: the dockerfiles example, the same lint code
#   and clap without the crates that link libostree; what a command costs
#   when the binary does not load libostree and its ~55 libraries.
# - a C "hello" that only prints, built twice: plain, and linked against
#   libostree (nothing called): the cost of loading libostree by itself,
#   with lazy binding and with -z now.
# - `umoci --version`: the peer (a static Go binary).
#
# On a machine shared with other work, wall times include waiting for a
# core; CPU time (task-clock) does not: read both.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-50}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 2; }
command -v umoci >/dev/null || { echo "umoci not found" >&2; exit 2; }
command -v cc >/dev/null || { echo "cc not found" >&2; exit 2; }

cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p corral
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p corral-dockerfiles --example corral-dockerfiles
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Private copies: other builds into the same target directory may replace
# the binaries while this runs.
cp "$CARGO_TARGET_DIR/release/corral" "$work/corral"
cp "$CARGO_TARGET_DIR/release/examples/corral-dockerfiles" "$work/corral-dockerfiles"

printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n' >"$work/hello.c"
cc -O2 "$work/hello.c" -o "$work/hello"
ostree_libs=$(pkg-config --libs ostree-1 2>/dev/null || echo "-lostree-1 -lgio-2.0 -lgobject-2.0 -lglib-2.0")
# shellcheck disable=SC2086 # word splitting of the library flags is wanted
cc -O2 "$work/hello.c" -o "$work/hello-ostree" -Wl,--no-as-needed $ostree_libs
# shellcheck disable=SC2086
cc -O2 "$work/hello.c" -o "$work/hello-ostree-now" -Wl,-z,now -Wl,--no-as-needed $ostree_libs

# measure NAME CMD...: prints "name wall_ms cpu_ms"
measure() {
    local name=$1; shift
    "$@" >/dev/null 2>&1 # warm the page cache
    perf stat -x, -r "$runs" -e task-clock -o "$work/stat.txt" "$@" >/dev/null 2>&1
    local cpu wall
    cpu=$(awk -F, '/task-clock/ {print $1}' "$work/stat.txt")
    # perf -x prints no elapsed time; time the same runs ourselves.
    local s e
    s=$(date +%s%N)
    for _ in $(seq "$runs"); do "$@" >/dev/null 2>&1; done
    e=$(date +%s%N)
    wall=$(awk -v d=$((e - s)) -v n="$runs" 'BEGIN { printf "%.2f", d / n / 1e6 }')
    printf '%s %s %.2f\n' "$name" "$wall" "$cpu" | tee -a "$work/results.txt" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
measure corral-version "$work/corral" --version
measure dockerfiles-example-help "$work/corral-dockerfiles" --help
measure c-hello "$work/hello"
measure c-hello+libostree "$work/hello-ostree"
measure c-hello+libostree-now "$work/hello-ostree-now"
measure umoci-version umoci --version

echo
echo "$runs runs each, $(nproc) cores; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corral: $(du -m "$work/corral" | cut -f1) MB, $(ldd "$work/corral" | wc -l) shared objects; dockerfiles example: $(ldd "$work/corral-dockerfiles" | wc -l) shared objects"
echo
awk '
    { wall[$1] = $2; cpu[$1] = $3; order[++n] = $1 }
    END {
        printf "| command | wall ms | cpu ms |\n|---|---:|---:|\n"
        for (i = 1; i <= n; i++) printf "| %s | %.2f | %.2f |\n", order[i], wall[order[i]], cpu[order[i]]
        printf "\ncorral --version / umoci --version: wall %.2fx, cpu %.2fx\n", wall["corral-version"] / wall["umoci-version"], cpu["corral-version"] / cpu["umoci-version"]
        printf "loading libostree alone (C hello): +%.2f ms cpu\n", cpu["c-hello+libostree"] - cpu["c-hello"]
    }' "$work/results.txt"
