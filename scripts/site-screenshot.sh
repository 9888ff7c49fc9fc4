#!/usr/bin/env bash
# Regenerates docs/site-home.png: the website's home page at 1280 px.
#
#   scripts/site-screenshot.sh [OUT.png] [URL]
#
# With a URL (such as the demo's, http://127.0.0.1:5000/ after
# scripts/demo.sh), headless chromium captures that page as it is served,
# 1280x900. Without one, the website test (tests/e2e/site.rs) renders its
# sample content in headless chromium and keeps its home page capture;
# that needs what the test needs (scripts/setup.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/docs/site-home.png}")
URL=${2:-}
if [ -n "$URL" ]; then
  profile=$(mktemp -d /tmp/site-screenshot.XXXXXX)
  trap 'rm -rf "$profile"' EXIT
  # --no-sandbox: chromium refuses to run as root with its sandbox
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$profile" --window-size=1280,900 \
    --screenshot="$OUT" "$URL" 2>/dev/null
  [ -s "$OUT" ] || { echo "site-screenshot: chromium wrote no $OUT" >&2; exit 1; }
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/corral-target}
  cd "$ROOT"
  CORRAL_SITE_SCREENSHOT=$OUT cargo test -q -p corral --test site -- --nocapture
fi
echo "wrote $OUT"
