#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the end-to-end
# tests against the real dnf, rpm, skopeo, umoci, docker-registry and a
# Docker Engine the tests start themselves.
#
#   bash scripts/test.sh [extra args for cargo nextest run]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$here/scripts/setup.sh"
corral_setup
corral_install_vm_tools
cd "$here"

# The VM images of the tests that boot a kernel of their own, cached in
# /var/tmp/corral-tools/vm: the SELinux VM of tests/e2e/selinux_vm.rs
# (about 3 minutes the first time on a machine) and the bootable Atomic
# Host tree of tests/e2e/disk_boot.rs (about 2-3 minutes). Mostly downloads
# and dpkg, so they are built in the background, one after the other (they
# share a package cache), while garage and the workspace compile.
vm_log=$(mktemp)
echo "==> VM images (in the background; log: $vm_log)"
(bash scripts/vm-selinux.sh build && bash tests/fixtures/boot/build-tree.sh) >"$vm_log" 2>&1 &
vm_pid=$!
# an early failure must not leave the builds running
trap 'kill "$vm_pid" 2>/dev/null || true' EXIT

corral_install_garage

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "==> generated man pages and completions are up to date"
cargo build --locked -p corral
gen=$(mktemp -d)
trap 'rm -rf "$gen"; kill "$vm_pid" 2>/dev/null || true' EXIT
"$CARGO_TARGET_DIR/debug/corral" generate man "$gen/man"
"$CARGO_TARGET_DIR/debug/corral" generate completions "$gen/completions"
diff -r "$gen/man" docs/man || { echo "docs/man is stale: run scripts/update-generated.sh" >&2; exit 1; }
diff -r "$gen/completions" completions || { echo "completions/ is stale: run scripts/update-generated.sh" >&2; exit 1; }

echo "==> waiting for the VM images"
if ! wait "$vm_pid"; then
  cat "$vm_log" >&2
  echo "building the VM images failed (log above)" >&2
  exit 1
fi
rm -f "$vm_log"

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast "$@"
else
  cargo test --locked --workspace --no-fail-fast "$@"
fi
