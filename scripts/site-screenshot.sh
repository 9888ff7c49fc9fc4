#!/usr/bin/env bash
# Regenerates docs/site-home.png: the website's home page at 1280 px, as the
# website test (tests/e2e/site.rs) renders it in headless chromium with its
# sample content. Needs what that test needs (scripts/setup.sh).
#
#   scripts/site-screenshot.sh [OUT.png]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/docs/site-home.png}")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/corral-target}
cd "$ROOT"
CORRAL_SITE_SCREENSHOT=$OUT cargo test -q -p corral --test site -- --nocapture
echo "wrote $OUT"
