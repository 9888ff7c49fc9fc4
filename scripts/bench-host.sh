#!/usr/bin/env bash
# What an Atomic host moves and how long it takes, served by
# `corral mirror serve --ostree-repo` on loopback: a fresh deployment
# with and without the published from-scratch delta, and a one-package
# update with and without the published static delta; `corral host` beside
# `ostree admin` (the peer) doing the same. Medians of RUNS.
#
#   bash scripts/bench-host.sh [RUNS]     (default 3)
#
# The tree is /usr/share/locale and /usr/lib/gcc of this machine (~300 MB)
# plus a stand-in kernel; the update changes one "package" (a 2 MB library
# rebuilt with a small patch, a script and a version file), composed with
# `corral compose run --rootfs`, which publishes deltas only when they are
# smaller than fetching the objects.
set -euo pipefail
# shellcheck source=lib/bench.sh
. "$(dirname "$0")/lib/bench.sh"
runs=${1:-3}
bench_ostree_setup corral-bench-host
tree=$WORK/tree
mkdir -p "$tree/usr/lib/pkg" "$tree/usr/bin"
printf 'ID=corral\nVERSION_ID=43\n' > "$tree/usr/lib/os-release"
# a rebuilt library: the same 2 MB of code with a few bytes patched, as
# a security fix changes a binary
dd if="$CORRAL" of="$WORK/libpkg" bs=1M count=2 status=none
package() { # $1: version
  cp "$WORK/libpkg" "$tree/usr/lib/pkg/libpkg.so"
  printf 'patched %s' "$1" | dd of="$tree/usr/lib/pkg/libpkg.so" bs=1 seek=1000000 conv=notrunc status=none
  printf '#!/bin/sh\necho pkg %s\n' "$1" > "$tree/usr/bin/pkg"
  printf 'pkg %s\n' "$1" > "$tree/usr/lib/pkg/VERSION"
}
sed -e 's/^gpg-key = .*/gpg-key = "bench@corral.invalid"/' -e 's/^keep = .*/keep = 5/' \
  "$ROOT/ostree-refs/sample-atomic.toml" > "$WORK/stream.toml"
package 1
"$CORRAL" compose run "$WORK/stream.toml" --repo "$WORK/repo" --rootfs "$tree" --zlib-level 1 --json > "$WORK/a.json"
package 2
"$CORRAL" compose run "$WORK/stream.toml" --repo "$WORK/repo" --rootfs "$tree" --zlib-level 1 --json > "$WORK/b.json"
ref=$(ostree --repo="$WORK/repo" refs | head -1)
va=$(jq -r '.[0].version' "$WORK/a.json")
echo "deltas: $(ostree --repo="$WORK/repo" static-delta list | tr '\n' ' ')"

bench_serve_ostree "$WORK/repo"
port=$MPORT
url=http://127.0.0.1:$port/ostree

now() { date +%s.%N; }

sysroot() { # a fresh sysroot with remote corral
  local s=$WORK/sysroot
  [ -d "$s" ] && find "$s" -maxdepth 5 -path '*ostree/deploy/*/deploy/*' -type d -prune -exec chattr -i {} +
  rm -rf "$s"; mkdir -p "$s"
  ostree admin init-fs "$s" >/dev/null
  ostree admin os-init corral --sysroot="$s" >/dev/null
  "$CORRAL" host --sysroot "$s" remote add corral "$url" --gpg-key "$WORK/key.asc" >/dev/null
  echo "$s"
}

# corral: `deploy --origin` on a fresh sysroot; prints "seconds bytes"
corral_fresh() { # $1: extra flags
  local s t0 t1
  s=$(sysroot)
  t0=$(now)
  # shellcheck disable=SC2086
  "$CORRAL" host --sysroot "$s" deploy --origin "corral:$ref" --json ${1:-} > "$WORK/out.json"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(jq .pull.bytes "$WORK/out.json")"
}
# ostree admin: pull and deploy on a fresh sysroot
ostree_fresh() {
  local s t0 t1
  s=$(sysroot)
  t0=$(now)
  ostree --repo="$s/ostree/repo" pull corral "$ref" >/dev/null
  ostree admin deploy --sysroot="$s" --os=corral "corral:$ref" >/dev/null
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) -"
}
# the update from A to B; the deployment of A is not timed
corral_update() { # $1: extra flags
  local s t0 t1
  s=$(sysroot)
  "$CORRAL" host --sysroot "$s" deploy "$va" --origin "corral:$ref" >/dev/null
  t0=$(now)
  # shellcheck disable=SC2086
  "$CORRAL" host --sysroot "$s" upgrade --json ${1:-} > "$WORK/out.json"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(jq .pull.bytes "$WORK/out.json")"
}
ostree_update() {
  local s t0 t1
  s=$(sysroot)
  "$CORRAL" host --sysroot "$s" deploy "$va" --origin "corral:$ref" >/dev/null
  t0=$(now)
  ostree admin upgrade --sysroot="$s" --os=corral >/dev/null
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) -"
}

declare -A T B
for _ in $(seq "$runs"); do
  for case in "corral_fresh" "corral_fresh --no-static-deltas" "ostree_fresh" \
              "corral_update" "corral_update --no-static-deltas" "ostree_update"; do
    # shellcheck disable=SC2086
    read -r t b < <($case)
    T[$case]+="$t "; B[$case]=$b
  done
done
m() { printf '%s\n' ${T[$1]} | median; }
kib() { [ "$1" = - ] && echo - || echo "scale=1; $1 / 1024" | bc; }
echo "tree $(du -sm "$tree" | cut -f1) MB, ${runs} runs, medians, load average $(cut -d' ' -f1 /proc/loadavg)"
echo "| case | corral host, s | KiB moved | ostree admin, s | corral / ostree |"
echo "|---|---:|---:|---:|---:|"
row() { # label, corral case, ostree case
  local c o
  c=$(m "$2")
  if [ -n "$3" ]; then o=$(m "$3"); echo "| $1 | $c | $(kib "${B[$2]}") | $o | $(echo "scale=2; $c / $o" | bc)x |"
  else echo "| $1 | $c | $(kib "${B[$2]}") | | |"; fi
}
row "fresh deployment, scratch delta" "corral_fresh" "ostree_fresh"
row "fresh deployment, object by object" "corral_fresh --no-static-deltas" ""
row "one-package update, static delta" "corral_update" "ostree_update"
row "one-package update, object by object" "corral_update --no-static-deltas" ""
