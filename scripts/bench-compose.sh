#!/usr/bin/env bash
# Benchmarks `corral compose run --rootfs` against `ostree commit` of the
# same tree into an archive repository, and reports the static delta of a
# one-package change against a plain pull of it.
#
#   scripts/bench-compose.sh [RUNS]      (default 3; medians are printed)
#
# The tree is a copy of /usr/lib/x86_64-linux-gnu (~700 MB here) plus a
# stand-in kernel. Uses CORRAL_COMPOSE_BIN, or builds the compose example
# in release mode.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${CORRAL_COMPOSE_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet --release -p corral-compose --example compose)
  CORRAL_COMPOSE_BIN=$CARGO_TARGET_DIR/release/examples/compose
fi
work=$(mktemp -d /var/tmp/corral-bench-compose.XXXXXX)
export GNUPGHOME=$work/gnupg
cleanup() { gpgconf --kill gpg-agent 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'corral compose test <compose@corral.invalid>' rsa2048 sign never 2>/dev/null

tree=$work/tree
mkdir -p "$tree/usr/lib/modules/6.1.0-bench" "$tree/etc" "$tree/var/lib"
cp -a /usr/lib/x86_64-linux-gnu "$tree/usr/lib/"
head -c 12M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/vmlinuz"
head -c 30M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/initramfs.img"
printf 'ID=corral\nVERSION_ID=43\n' > "$tree/etc/os-release"
size=$(du -sm "$tree" | cut -f1)
stream=$root/ostree-refs/sample-atomic.toml

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }

ostree_times=() corral_times=() fast_times=()
for i in $(seq "$runs"); do
  rm -rf "$work/o" "$work/c" "$work/f"; sync
  ostree --repo="$work/o" init --mode=archive
  ostree_times+=("$(secs ostree --repo="$work/o" commit -b bench --tree=dir="$tree")")
  sync
  corral_times+=("$(secs "$CORRAL_COMPOSE_BIN" run "$stream" --repo "$work/c" --rootfs "$tree" --no-deltas)")
  sync
  fast_times+=("$(secs "$CORRAL_COMPOSE_BIN" run "$stream" --repo "$work/f" --rootfs "$tree" --no-deltas --zlib-level 1)")
done
o=$(printf '%s\n' "${ostree_times[@]}" | median)
c=$(printf '%s\n' "${corral_times[@]}" | median)
f=$(printf '%s\n' "${fast_times[@]}" | median)
ostree --repo="$work/c" fsck --quiet >/dev/null
ostree --repo="$work/f" fsck --quiet >/dev/null
echo "tree: ${size} MB, $(nproc) cores (load average $(cut -d' ' -f1 /proc/loadavg)), ${runs} runs, medians"
echo "| tool | seconds | objects MB | speedup |"
echo "|---|---|---|---|"
echo "| ostree commit (archive, zlib 6) | $o | $(du -sm "$work/o/objects" | cut -f1) | 1.00x |"
echo "| corral compose run --rootfs (zlib 6, parallel writers) | $c | $(du -sm "$work/c/objects" | cut -f1) | $(echo "scale=2; $o / $c" | bc)x |"
echo "| corral compose run --rootfs --zlib-level 1 | $f | $(du -sm "$work/f/objects" | cut -f1) | $(echo "scale=2; $o / $f" | bc)x |"

# A one-package change (corral-hello 1.0 -> 1.1): delta vs plain pull.
repos=$work/repos
bash "$root/tests/fixtures/rpms/build-repo.sh" "$repos/a" >/dev/null
HELLO_VERSION=1.1 bash "$root/tests/fixtures/rpms/build-repo.sh" "$repos/b" >/dev/null
CORRAL_SAMPLE_REPOS=$repos/a "$CORRAL_COMPOSE_BIN" run "$stream" --repo "$work/d" >/dev/null
CORRAL_SAMPLE_REPOS=$repos/b "$CORRAL_COMPOSE_BIN" run "$stream" --repo "$work/d" --json |
  python3 -c 'import json, sys
for d in json.load(sys.stdin)[0]["deltas"]:
    kind = "from previous" if d["from"] else "from scratch"
    verdict = "published" if d["published"] else "not published"
    print("delta %s: %d bytes vs plain pull %d bytes -> %s" % (kind, d["delta_bytes"], d["pull_bytes"], verdict))'
