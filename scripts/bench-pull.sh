#!/usr/bin/env bash
# What an Atomic host moves over HTTP from `corral mirror serve --ostree-repo`:
# a fresh pull of a composed commit with and without the published
# from-scratch static delta. Time and bytes, medians of RUNS.
#
#   bash scripts/bench-pull.sh [RUNS]     (default 3)
#
# The tree is /usr/share/locale and /usr/lib/gcc of this machine (~300 MB)
# plus a stand-in kernel, composed with `corral compose run --rootfs`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
# shellcheck source=scripts/setup.sh
source "$root/scripts/setup.sh"
corral_setup
cargo build --quiet --locked -p corral --manifest-path "$root/Cargo.toml"
corral=$CARGO_TARGET_DIR/debug/corral
work=$(mktemp -d /var/tmp/corral-bench-pull.XXXXXX)
export GNUPGHOME=$work/gnupg
mirror_pid=
cleanup() {
  [ -n "$mirror_pid" ] && kill "$mirror_pid" 2>/dev/null
  gpgconf --kill gpg-agent 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'corral bench <bench@corral.invalid>' rsa2048 sign never 2>/dev/null
gpg --batch --armor --export bench@corral.invalid > "$work/key.asc"

tree=$work/tree
mkdir -p "$tree/usr/lib/modules/6.1.0-bench" "$tree/usr/share" "$tree/etc"
cp -a /usr/share/locale "$tree/usr/share/"
cp -a /usr/lib/gcc "$tree/usr/lib/"
head -c 12M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/vmlinuz"
head -c 30M /dev/urandom > "$tree/usr/lib/modules/6.1.0-bench/initramfs.img"
printf 'ID=corral\nVERSION_ID=43\n' > "$tree/etc/os-release"
sed -e 's/^gpg-key = .*/gpg-key = "bench@corral.invalid"/' "$root/ostree-refs/sample-atomic.toml" > "$work/stream.toml"
"$corral" compose run "$work/stream.toml" --repo "$work/repo" --rootfs "$tree" --zlib-level 1 >/dev/null
ref=$(ostree --repo="$work/repo" refs | head -1)
echo "deltas: $(ostree --repo="$work/repo" static-delta list | tr '\n' ' ')"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$corral" mirror serve --listen "127.0.0.1:$port" --storage "$work/storage" --ostree-repo "$work/repo" \
  >"$work/mirror.log" 2>&1 &
mirror_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "the mirror did not start:" >&2; cat "$work/mirror.log" >&2; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

pull() { # $1: extra ostree pull flags
  local client=$work/client start end before after
  rm -rf "$client"
  ostree --repo="$client" init --mode=bare-user
  ostree --repo="$client" remote add --set=gpg-verify=true --set=gpg-verify-summary=true \
    --gpg-import="$work/key.asc" origin "http://127.0.0.1:$port/ostree" >/dev/null
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  ostree --repo="$client" pull $1 origin "$ref" > "$work/pull.out"
  end=$(date +%s.%N)
  # ostree's last line: "… N KiB|MiB transferred in S seconds"
  echo "$(echo "$end - $start" | bc) $(grep -o '[0-9.]* [KMG]iB transferred' "$work/pull.out" | tail -1 | cut -d' ' -f1-2 | tr ' ' '_')"
}

with=() without=() with_b=() without_b=()
for _ in $(seq "$runs"); do
  read -r t b < <(pull "")
  with+=("$t"); with_b+=("$b")
  read -r t b < <(pull "--disable-static-deltas")
  without+=("$t"); without_b+=("$b")
done
tw=$(printf '%s\n' "${with[@]}" | median); tn=$(printf '%s\n' "${without[@]}" | median)
bw=${with_b[0]//_/ }; bn=${without_b[0]//_/ }
echo "tree $(du -sm "$tree" | cut -f1) MB, ${runs} runs, medians, load average $(cut -d' ' -f1 /proc/loadavg)"
echo "| fresh pull | seconds | transferred (ostree pull, first run) |"
echo "|---|---:|---:|"
echo "| with the scratch delta | $tw | $bw |"
echo "| object by object (--disable-static-deltas) | $tn | $bn |"
