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
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
# shellcheck source=scripts/setup.sh
source "$root/scripts/setup.sh"
corral_setup
cargo build --quiet --locked -p corral --manifest-path "$root/Cargo.toml"
corral=$CARGO_TARGET_DIR/debug/corral
work=$(mktemp -d /var/tmp/corral-bench-host.XXXXXX)
export GNUPGHOME=$work/gnupg
mirror_pid=
cleanup() {
  [ -n "$mirror_pid" ] && kill "$mirror_pid" 2>/dev/null
  gpgconf --kill gpg-agent 2>/dev/null || true
  # libostree makes deployment roots immutable
  find "$work" -maxdepth 6 -path '*ostree/deploy/*/deploy/*' -type d -prune -exec chattr -i {} + 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'corral bench <bench@corral.invalid>' rsa2048 sign never 2>/dev/null
gpg --batch --armor --export bench@corral.invalid > "$work/key.asc"

tree=$work/tree
mkdir -p "$tree/usr/lib/modules/6.1.0-bench" "$tree/usr/share" "$tree/etc" "$tree/usr/lib/pkg" "$tree/usr/bin"
cp -a /usr/share/locale "$tree/usr/share/"
cp -a /usr/lib/gcc "$tree/usr/lib/"
head -c 12M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/vmlinuz"
head -c 30M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/initramfs.img"
printf 'ID=corral\nVERSION_ID=43\n' > "$tree/usr/lib/os-release"
printf 'ID=corral\nVERSION_ID=43\n' > "$tree/etc/os-release"
# a rebuilt library: the same 2 MB of code with a few bytes patched, as
# a security fix changes a binary
dd if="$corral" of="$work/libpkg" bs=1M count=2 status=none
package() { # $1: version
  cp "$work/libpkg" "$tree/usr/lib/pkg/libpkg.so"
  printf 'patched %s' "$1" | dd of="$tree/usr/lib/pkg/libpkg.so" bs=1 seek=1000000 conv=notrunc status=none
  printf '#!/bin/sh\necho pkg %s\n' "$1" > "$tree/usr/bin/pkg"
  printf 'pkg %s\n' "$1" > "$tree/usr/lib/pkg/VERSION"
}
sed -e 's/^gpg-key = .*/gpg-key = "bench@corral.invalid"/' -e 's/^keep = .*/keep = 5/' \
  "$root/ostree-refs/sample-atomic.toml" > "$work/stream.toml"
package 1
"$corral" compose run "$work/stream.toml" --repo "$work/repo" --rootfs "$tree" --zlib-level 1 --json > "$work/a.json"
package 2
"$corral" compose run "$work/stream.toml" --repo "$work/repo" --rootfs "$tree" --zlib-level 1 --json > "$work/b.json"
ref=$(ostree --repo="$work/repo" refs | head -1)
va=$(jq -r '.[0].version' "$work/a.json")
echo "deltas: $(ostree --repo="$work/repo" static-delta list | tr '\n' ' ')"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$corral" mirror serve --listen "127.0.0.1:$port" --storage "$work/storage" --ostree-repo "$work/repo" \
  >"$work/mirror.log" 2>&1 &
mirror_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the mirror did not start:" >&2; cat "$work/mirror.log" >&2; exit 1; }
url=http://127.0.0.1:$port/ostree

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

sysroot() { # a fresh sysroot with remote corral
  local s=$work/sysroot
  [ -d "$s" ] && find "$s" -maxdepth 5 -path '*ostree/deploy/*/deploy/*' -type d -prune -exec chattr -i {} +
  rm -rf "$s"; mkdir -p "$s"
  ostree admin init-fs "$s" >/dev/null
  ostree admin os-init corral --sysroot="$s" >/dev/null
  "$corral" host --sysroot "$s" remote add corral "$url" --gpg-key "$work/key.asc" >/dev/null
  echo "$s"
}

# corral: `deploy --origin` on a fresh sysroot; prints "seconds bytes"
corral_fresh() { # $1: extra flags
  local s t0 t1
  s=$(sysroot)
  t0=$(now)
  # shellcheck disable=SC2086
  "$corral" host --sysroot "$s" deploy --origin "corral:$ref" --json ${1:-} > "$work/out.json"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(jq .pull.bytes "$work/out.json")"
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
  "$corral" host --sysroot "$s" deploy "$va" --origin "corral:$ref" >/dev/null
  t0=$(now)
  # shellcheck disable=SC2086
  "$corral" host --sysroot "$s" upgrade --json ${1:-} > "$work/out.json"
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc) $(jq .pull.bytes "$work/out.json")"
}
ostree_update() {
  local s t0 t1
  s=$(sysroot)
  "$corral" host --sysroot "$s" deploy "$va" --origin "corral:$ref" >/dev/null
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
