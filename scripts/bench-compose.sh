#!/usr/bin/env bash
# Benchmarks `corral compose run --rootfs` against `ostree commit` of the
# same tree into an archive repository, and reports the static delta of a
# one-package change against a plain pull of it.
#
#   scripts/bench-compose.sh [RUNS]      (default 3; medians are printed)
#
# The tree is a copy of /usr/lib/x86_64-linux-gnu (~700 MB here) plus a
# stand-in kernel. Uses CORRAL_BIN, or builds corral in release mode.
# Wall and CPU (user + system) seconds come from /usr/bin/time.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"
runs=${1:-3}
bench_workdir corral-bench-compose
if [ -z "${CORRAL_BIN:-}" ]; then
  bench_corral release
  CORRAL_BIN=$CORRAL
fi
bench_gpg_key compose@corral.invalid

tree=$WORK/tree
mkdir -p "$tree/usr/lib/modules/6.1.0-bench" "$tree/etc" "$tree/var/lib"
cp -a /usr/lib/x86_64-linux-gnu "$tree/usr/lib/"
head -c 12M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/vmlinuz"
head -c 30M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/initramfs.img"
printf 'ID=corral\nVERSION_ID=43\n' > "$tree/etc/os-release"
size=$(du -sm "$tree" | cut -f1)
stream=$ROOT/ostree-refs/sample-atomic.toml
compose=("$CORRAL_BIN" compose run "$stream" --rootfs "$tree" --no-deltas)

# "WALL CPU" seconds of a command (CPU: user + system of it and its children).
measure() {
  /usr/bin/time -o "$WORK/time" -f '%e %U %S' "$@" >/dev/null 2>"$WORK/stderr" ||
    { cat "$WORK/stderr" >&2; kill $$; }
  awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$WORK/time"
}
col() { printf '%s\n' "${@:2}" | awk -v c="$1" '{ print $c }' | median; }

load_before=$(load_average)
ostree_runs=() corral_runs=() fast_runs=()
for _ in $(seq "$runs"); do
  rm -rf "$WORK/o" "$WORK/c" "$WORK/f"; sync
  ostree --repo="$WORK/o" init --mode=archive
  ostree_runs+=("$(measure ostree --repo="$WORK/o" commit -b bench --tree=dir="$tree")")
  sync
  corral_runs+=("$(measure "${compose[@]}" --repo "$WORK/c")")
  sync
  fast_runs+=("$(measure "${compose[@]}" --repo "$WORK/f" --zlib-level 1)")
done
ow=$(col 1 "${ostree_runs[@]}") oc=$(col 2 "${ostree_runs[@]}")
cw=$(col 1 "${corral_runs[@]}") cc=$(col 2 "${corral_runs[@]}")
fw=$(col 1 "${fast_runs[@]}") fc=$(col 2 "${fast_runs[@]}")
ostree --repo="$WORK/c" fsck --quiet >/dev/null
ostree --repo="$WORK/f" fsck --quiet >/dev/null
mb() { du -sm "$1/objects" | cut -f1; }
echo "tree: ${size} MB, $(nproc) cores, load average $load_before before, $(load_average) after; ${runs} runs, medians"
echo "| tool | wall s | CPU s | objects MB | wall speed-up | CPU ratio |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| ostree commit (archive, zlib 6) | $ow | $oc | $(mb "$WORK/o") | 1.00x | 1.00x |"
echo "| corral compose run --rootfs | $cw | $cc | $(mb "$WORK/c") | $(ratio "$ow" "$cw") | $(ratio "$cc" "$oc") |"
echo "| corral compose run --rootfs --zlib-level 1 | $fw | $fc | $(mb "$WORK/f") | $(ratio "$ow" "$fw") | $(ratio "$fc" "$oc") |"

# A one-package change (corral-hello 1.0 -> 1.1): delta vs plain pull.
repos=$WORK/repos
bash "$ROOT/tests/fixtures/rpms/build-repo.sh" "$repos/a" >/dev/null
HELLO_VERSION=1.1 bash "$ROOT/tests/fixtures/rpms/build-repo.sh" "$repos/b" >/dev/null
CORRAL_SAMPLE_REPOS=$repos/a "$CORRAL_BIN" compose run "$stream" --repo "$WORK/d" >/dev/null
CORRAL_SAMPLE_REPOS=$repos/b "$CORRAL_BIN" compose run "$stream" --repo "$WORK/d" --json |
  python3 -c 'import json, sys
for d in json.load(sys.stdin)[0]["deltas"]:
    kind = "from previous" if d["from"] else "from scratch"
    verdict = "published" if d["published"] else "not published"
    print("delta %s: %d bytes vs plain pull %d bytes -> %s" % (kind, d["delta_bytes"], d["pull_bytes"], verdict))'
