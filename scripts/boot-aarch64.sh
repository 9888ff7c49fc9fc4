#!/usr/bin/env bash
# Boots an aarch64 Atomic Host image under emulation: the bootable aarch64
# test tree (tests/fixtures/boot/build-tree-aarch64.sh: Debian's arm64
# kernel, a busybox initramfs), composed with `corral compose run`, made
# into a UEFI-only image by `corral disk build`, and booted by
# `qemu-system-aarch64 -M virt -cpu cortex-a57` (TCG) with Debian's AAVMF
# firmware, until the deployment's init prints the deployment it booted
# and powers off. Prints the timings docs/benchmarks.md records.
#
#   bash scripts/boot-aarch64.sh
#
# Needs root (loop devices). It runs the test
# `boots_the_aarch64_image_under_qemu` of tests/e2e/disk_arm.rs (also part
# of the suite) alone; CORRAL_ARM_BOOT_TIMEOUT (seconds, default 1800)
# bounds the boot.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$root/scripts/setup.sh"
corral_setup
corral_install_vm_tools
cd "$root"
start=$(date +%s)
nice -n 10 cargo test -p corral --test disk_arm -- --exact --nocapture boots_the_aarch64_image_under_qemu
echo "boot-aarch64: $(($(date +%s) - start)) s in all (with the build)" >&2
