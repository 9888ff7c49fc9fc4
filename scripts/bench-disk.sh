#!/usr/bin/env bash
# Disk image footprint per stream: what `corral disk build` writes for the
# boot test's stream (tests/fixtures/boot: Debian's kernel, systemd,
# cloud-init, sshd) and for the sample stream (ostree-refs/sample-atomic),
# as raw (apparent and allocated size), qcow2 and raw.xz, beside a plain
# image of the same Debian root that build-tree.sh debootstrapped, with the
# same corral binary and corral-boot-hello (one ext4 file system made with
# mkfs.ext4 -d, the same disk size, converted with qemu-img and xz -6).
#
#   bash scripts/bench-disk.sh [SIZE]      (default 4G)
#
# Needs root (debootstrap, loop devices for `corral disk build`).
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"
size=${1:-4G}
# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"
corral_setup
corral_install_vm_tools
bench_workdir corral-bench-disk
bench_corral debug
base=$(bash "$ROOT/tests/fixtures/boot/build-tree.sh")
export SOURCE_DATE_EPOCH=1767225600
bench_gpg_key compose@corral.invalid

mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
apparent() { stat -c %s "$1"; }
allocated() { echo $(($(stat -c %b "$1") * $(stat -c %B "$1"))); }
rows=()
# measure NAME RAW QCOW2 XZ
measure() {
  rows+=("$1 $(apparent "$2") $(allocated "$2") $(apparent "$3") $(apparent "$4")")
}

# corral images of a composed stream: STREAM_FILE NAME [env...]
corral_images() {
  local stream=$1 name=$2 repo=$WORK/repo-$2 fmt
  shift 2
  ostree --repo="$repo" init --mode=archive
  env "$@" "$CORRAL" compose run "$stream" --repo "$repo" --zlib-level 1 --no-deltas --json > "$WORK/$name.json"
  local commit
  commit=$(sed -n 's/.*"checksum": *"\([0-9a-f]*\)".*/\1/p' "$WORK/$name.json" | head -1)
  for fmt in raw qcow2 raw.xz; do
    env "$@" "$CORRAL" disk build "$stream" --commit "$commit" --repo "$repo" \
      -o "$WORK/$name.$fmt" --format "$fmt" --size "$size" >/dev/null
  done
  measure "$name" "$WORK/$name.raw" "$WORK/$name.qcow2" "$WORK/$name.raw.xz"
}

echo "==> boot stream" >&2
mkdir -p "$WORK/extra"
bash "$ROOT/tests/fixtures/boot/build-extra.sh" "$WORK/extra" "$CORRAL" 1.0 >/dev/null
corral_images "$ROOT/tests/fixtures/boot/boot-atomic.toml" boot-atomic \
  CORRAL_BOOT_BASE="$base/repo" CORRAL_BOOT_EXTRA="$WORK/extra"

echo "==> sample stream" >&2
bash "$ROOT/tests/fixtures/rpms/build-repo.sh" "$WORK/sample" >/dev/null
corral_images "$ROOT/ostree-refs/sample-atomic.toml" sample-atomic CORRAL_SAMPLE_REPOS="$WORK/sample"

echo "==> plain debootstrap image of the same root" >&2
# the same files as the boot stream's tree: the Debian root, the stripped
# corral binary and corral-boot-hello
plain=$WORK/plain
cp -al "$base/root" "$plain-root"
objcopy --strip-debug "$CORRAL" "$plain-root/usr/bin/corral"
printf '#!/bin/sh\necho "corral-boot-hello 1.0"\n' > "$plain-root/usr/bin/corral-boot-hello"
chmod 0755 "$plain-root/usr/bin/corral-boot-hello"
truncate -s "$size" "$plain.raw"
mkfs.ext4 -q -F -L root -U clear -E root_owner=0:0 -d "$plain-root" "$plain.raw"
qemu-img convert -O qcow2 "$plain.raw" "$plain.qcow2"
xz --threads=0 --block-size=64MiB --check=crc64 -6 -k -c "$plain.raw" > "$plain.raw.xz"
measure "debootstrap-ext4" "$plain.raw" "$plain.qcow2" "$plain.raw.xz"

packages=$(wc -l < "$base/packages.txt")
echo
echo "Disk $size; the boot stream's Debian root: $packages packages ($(du -sm "$base/root" | cut -f1) MiB as a directory)"
echo
echo "| image | raw apparent MiB | raw allocated MiB | qcow2 MiB | raw.xz MiB |"
echo "|---|---:|---:|---:|---:|"
for r in "${rows[@]}"; do
  set -- $r
  echo "| $1 | $(mib "$2") | $(mib "$3") | $(mib "$4") | $(mib "$5") |"
done
ref=(${rows[2]})
boot=(${rows[0]})
echo
awk -v a="${boot[2]}" -v b="${ref[2]}" -v c="${boot[3]}" -v d="${ref[3]}" -v e="${boot[4]}" -v f="${ref[4]}" \
  'BEGIN { printf "boot-atomic / debootstrap-ext4: allocated %.2f, qcow2 %.2f, raw.xz %.2f\n", a / b, c / d, e / f }'
