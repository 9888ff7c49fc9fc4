#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the end-to-end
# tests against the real dnf, rpm, skopeo, umoci, docker-registry and a
# Docker Engine the tests start themselves.
#
#   bash scripts/test.sh [extra args for cargo nextest run]
#
# Ends with a one-line timing table of its stages (also when a stage fails,
# which it names), so a slow or broken set-up on a new machine shows where.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$here/scripts/setup.sh"

stage_names=()
stage_secs=()
stage_now=""
stage_start=0
suite_start=$(date +%s)
# stage NAME: ends the running stage and starts the next one.
stage() {
  local now
  now=$(date +%s)
  if [ -n "$stage_now" ]; then
    stage_names+=("$stage_now")
    stage_secs+=($((now - stage_start)))
  fi
  stage_now=$1
  stage_start=$now
  [ -n "$1" ] && echo "==> $1"
  return 0
}
timing_table() {
  local rc=$? i line=""
  local failed=$stage_now
  stage ""
  for i in "${!stage_names[@]}"; do
    line+="${stage_names[$i]} ${stage_secs[$i]}s | "
  done
  echo "timing: ${line}total $(($(date +%s) - suite_start))s"
  [ "$rc" = 0 ] || echo "test.sh: failed in stage: $failed (exit $rc)" >&2
  [ -n "${vm_pid:-}" ] && { kill "$vm_pid" 2>/dev/null || true; }
  [ -n "${garage_pid:-}" ] && { kill "$garage_pid" 2>/dev/null || true; }
  [ -n "${gen:-}" ] && rm -rf "$gen"
  # The test runner's own summary stays the last line, for whoever reads it.
  if [ -n "${test_log:-}" ] && [ -f "$test_log" ]; then
    grep -E '^ *Summary \[|^test result:' "$test_log" | tail -n 1 || true
    rm -f "$test_log"
  fi
  exit "$rc"
}
trap timing_table EXIT

# Garage (the replica tests' object store) is the longest set-up step on a
# new machine and needs only Rust and a C compiler, so it builds in the
# background from the start, at a lower priority, while apt, the VM images
# and the workspace proceed; the tests wait for it.
garage_log=$(mktemp)
corral_check_rust
(nice -n 10 bash -c "source '$here/scripts/setup.sh'; corral_install_garage") >"$garage_log" 2>&1 &
garage_pid=$!

stage "setup: Debian packages"
corral_setup
stage "setup: VM tools"
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
vm_started=$(date +%s)
(bash scripts/vm-selinux.sh build && bash tests/fixtures/boot/build-tree.sh) >"$vm_log" 2>&1 &
vm_pid=$!

stage "cargo fmt --check"
cargo fmt --all -- --check

# One compile of the workspace serves the lints and the tests: clippy-driver
# stands in for rustc on the workspace's crates (RUSTC_WORKSPACE_WRAPPER,
# which is how `cargo clippy` runs it), lints each crate and then compiles
# it, so the test build covers what `cargo clippy --workspace --all-targets
# -- -D warnings` does (libraries, binaries, tests, examples) without a
# second pass over the workspace and its dependencies. A lint fails the
# build as it fails `cargo clippy`.
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver) || {
  echo "clippy-driver is not on PATH: rustup component add clippy" >&2
  exit 1
}
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

stage "build and clippy"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-run
else
  cargo test --locked --workspace --no-run
fi

stage "generated man pages and completions"
gen=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/corral" generate man "$gen/man"
"$CARGO_TARGET_DIR/debug/corral" generate completions "$gen/completions"
diff -r "$gen/man" docs/man || { echo "docs/man is stale: run scripts/update-generated.sh" >&2; exit 1; }
diff -r "$gen/completions" completions || { echo "completions/ is stale: run scripts/update-generated.sh" >&2; exit 1; }

# wait_background NAME PID LOG: waits for a background set-up step; on
# failure prints its log and fails the suite.
wait_background() {
  if ! wait "$2"; then
    cat "$3" >&2
    echo "$1 failed (log above)" >&2
    exit 1
  fi
  rm -f "$3"
}

stage "waiting for the VM images"
wait_background "building the VM images" "$vm_pid" "$vm_log"
vm_pid=""
echo "    VM images ready $(($(date +%s) - vm_started)) s after they started"

stage "waiting for garage"
wait_background "building garage" "$garage_pid" "$garage_log"
garage_pid=""

stage "tests"
test_log=$(mktemp)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast "$@" 2>&1 | tee "$test_log"
else
  cargo test --locked --workspace --no-fail-fast "$@" 2>&1 | tee "$test_log"
fi
