#!/usr/bin/env bash
# Start-up time of the corral binaries against umoci, side by side in one
# hyperfine run (release build, RUNS runs each, medians).
#
#   scripts/bench-startup.sh            # RUNS=100
#
# Rows:
# - `corral --version`: the binary users run; it does not link libostree.
# - `corral-ostree --version`: the binary `corral` hands `compose`, `disk`,
#   `host` and `release` to; it links libostree and its ~55 libraries.
# - `umoci --version`: the peer (a static Go binary).
#
# On a machine shared with other work, wall times include waiting for a
# core: the load average is printed with the table.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export RUNS=${RUNS:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
# shellcheck source=lib/bench.sh
. "$root/scripts/lib/bench.sh"
command -v hyperfine >/dev/null || { echo "hyperfine not found (apt-get install hyperfine)" >&2; exit 2; }
command -v umoci >/dev/null || { echo "umoci not found" >&2; exit 2; }

cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p corral
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Private copies: other builds into the same target directory may replace
# the binaries while this runs.
cp "$CARGO_TARGET_DIR/release/corral" "$work/corral"
cp "$CARGO_TARGET_DIR/release/corral-ostree" "$work/corral-ostree"

load_before=$(load_average)
mapfile -t ms < <(hyperfine_medians "$work/corral --version" "$work/corral-ostree --version" "umoci --version")
echo "$RUNS runs each, $(nproc) cores; load average before: $load_before, after: $(load_average)"
echo "corral: $(du -m "$work/corral" | cut -f1) MB, $(ldd "$work/corral" | wc -l) shared objects;" \
    "corral-ostree: $(ldd "$work/corral-ostree" | wc -l) shared objects"
echo
echo "| command | median wall ms | / umoci |"
echo "|---|---:|---:|"
echo "| corral --version | ${ms[0]} | $(ratio "${ms[0]}" "${ms[2]}") |"
echo "| corral-ostree --version | ${ms[1]} | $(ratio "${ms[1]}" "${ms[2]}") |"
echo "| umoci --version | ${ms[2]} | 1x |"
