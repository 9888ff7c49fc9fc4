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
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"

export RUNS=${RUNS:-100}
bench_require bench-startup hyperfine umoci
bench_workdir corral-bench-startup
bench_corral release

load_before=$(load_average)
mapfile -t ms < <(hyperfine_medians "$WORK/corral --version" "$WORK/corral-ostree --version" "umoci --version")
echo "$RUNS runs each, $(nproc) cores; load average before: $load_before, after: $(load_average)"
echo "corral: $(du -m "$WORK/corral" | cut -f1) MB, $(ldd "$WORK/corral" | wc -l) shared objects;" \
    "corral-ostree: $(ldd "$WORK/corral-ostree" | wc -l) shared objects"
echo
echo "| command | median wall ms | / umoci |"
echo "|---|---:|---:|"
echo "| corral --version | ${ms[0]} | $(ratio "${ms[0]}" "${ms[2]}") |"
echo "| corral-ostree --version | ${ms[1]} | $(ratio "${ms[1]}" "${ms[2]}") |"
echo "| umoci --version | ${ms[2]} | 1x |"
