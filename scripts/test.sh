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
corral_install_garage
corral_install_vm_tools
cd "$here"

# The SELinux VM image of tests/e2e/selinux_vm.rs: about 3 minutes the
# first time on a machine, then cached in /var/tmp/corral-tools/vm.
echo "==> SELinux VM image"
bash scripts/vm-selinux.sh build

# The bootable Atomic Host tree of tests/e2e/disk_boot.rs: about 2 minutes
# the first time on a machine, then cached in /var/tmp/corral-tools/vm.
echo "==> the bootable test tree"
bash tests/fixtures/boot/build-tree.sh >/dev/null

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "==> generated man pages and completions are up to date"
cargo build --locked -p corral
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
"$CARGO_TARGET_DIR/debug/corral" generate man "$gen/man"
"$CARGO_TARGET_DIR/debug/corral" generate completions "$gen/completions"
diff -r "$gen/man" docs/man || { echo "docs/man is stale: run scripts/update-generated.sh" >&2; exit 1; }
diff -r "$gen/completions" completions || { echo "completions/ is stale: run scripts/update-generated.sh" >&2; exit 1; }

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast "$@"
else
  cargo test --locked --workspace --no-fail-fast "$@"
fi
