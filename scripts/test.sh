#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the end-to-end
# tests against the real dnf, rpm, skopeo, umoci, docker-registry and a
# Docker Engine the tests start themselves.
#
#   bash scripts/test.sh [extra args for cargo nextest run]
#
# The stages are `cargo xtask ci` (crates/xtask/src/ci.rs); this script
# only makes sure cargo is there to build it. The suite ends with a
# one-line timing table of its stages (also when a stage fails, which it
# names), then the test runner's summary line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$here/scripts/setup.sh"
corral_check_rust
# The build cache outside the clone, as scripts/setup.sh keeps it.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/corral-target}
cd "$here"
exec cargo xtask ci "$@"
