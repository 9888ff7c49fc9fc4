#!/usr/bin/env bash
# Regenerates docs/man and completions/ from the clap tree (`--check`: only
# compares): `cargo xtask generate`, with the test suite's build cache.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/corral-target} exec cargo xtask generate "$@"
