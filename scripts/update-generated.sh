#!/usr/bin/env bash
# Regenerates docs/man and completions/ from the clap tree.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/corral-target}
cargo build --locked -p corral --manifest-path "$here/Cargo.toml"
rm -rf "$here/docs/man" "$here/completions"
"$CARGO_TARGET_DIR/debug/corral" generate man "$here/docs/man"
"$CARGO_TARGET_DIR/debug/corral" generate completions "$here/completions"
