#!/usr/bin/env bash
# What an Atomic host moves over HTTP from `corral mirror serve --ostree-repo`:
# a fresh pull of a composed commit with and without the published
# from-scratch static delta. Time and bytes, medians of RUNS.
#
#   bash scripts/bench-pull.sh [RUNS]     (default 3)
#
# The tree is /usr/share/locale and /usr/lib/gcc of this machine (~300 MB)
# plus a stand-in kernel, composed with `corral compose run --rootfs`.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"
runs=${1:-3}
bench_ostree_setup corral-bench-pull
tree=$WORK/tree
sed -e 's/^gpg-key = .*/gpg-key = "bench@corral.invalid"/' "$ROOT/ostree-refs/sample-atomic.toml" > "$WORK/stream.toml"
"$CORRAL" compose run "$WORK/stream.toml" --repo "$WORK/repo" --rootfs "$tree" --zlib-level 1 >/dev/null
ref=$(ostree --repo="$WORK/repo" refs | head -1)
echo "deltas: $(ostree --repo="$WORK/repo" static-delta list | tr '\n' ' ')"

bench_serve_ostree "$WORK/repo"
port=$MPORT

pull() { # $1: extra ostree pull flags
  local client=$WORK/client start end
  rm -rf "$client"
  ostree --repo="$client" init --mode=bare-user
  ostree --repo="$client" remote add --set=gpg-verify=true --set=gpg-verify-summary=true \
    --gpg-import="$WORK/key.asc" origin "http://127.0.0.1:$port/ostree" >/dev/null
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  ostree --repo="$client" pull $1 origin "$ref" > "$WORK/pull.out"
  end=$(date +%s.%N)
  # ostree's last line: "… N KiB|MiB transferred in S seconds"
  echo "$(echo "$end - $start" | bc) $(grep -o '[0-9.]* [KMG]iB transferred' "$WORK/pull.out" | tail -1 | cut -d' ' -f1-2 | tr ' ' '_')"
}

with=() without=() with_b=() without_b=()
for _ in $(seq "$runs"); do
  read -r t b < <(pull "")
  with+=("$t"); with_b+=("$b")
  read -r t b < <(pull "--disable-static-deltas")
  without+=("$t"); without_b+=("$b")
done
tw=$(printf '%s\n' "${with[@]}" | median); tn=$(printf '%s\n' "${without[@]}" | median)
bw=${with_b[0]//_/ }; bn=${without_b[0]//_/ }
echo "tree $(du -sm "$tree" | cut -f1) MB, ${runs} runs, medians, load average $(cut -d' ' -f1 /proc/loadavg)"
echo "| fresh pull | seconds | transferred (ostree pull, first run) |"
echo "|---|---:|---:|"
echo "| with the scratch delta | $tw | $bw |"
echo "| object by object (--disable-static-deltas) | $tn | $bn |"
