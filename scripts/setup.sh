#!/usr/bin/env bash
# Installs what corral and its tests need on Debian 12, as root. Idempotent:
# installs only what is missing, so a second run is quick.
#
# Sourced by demo.sh and test.sh; can be run on its own.
set -euo pipefail

CORRAL_DEBS=(
  # building corral (and libzstd for the ostree-ext peer of the OS image
  # tests, tests/ostree-ext-reader)
  pkg-config libostree-dev libglib2.0-dev libzstd-dev
  # trees and the sample packages
  rpm dnf createrepo-c busybox-static gnupg gpgv
  # the sandbox of tree builds the portal runs (crates/tree/src/sandbox.rs)
  bubblewrap
  # images and their peers
  skopeo umoci docker.io docker-registry ostree
  # tools the tests and benchmarks call
  zstd pigz time jq curl tar xz-utils attr libcap2-bin apache2-utils wrk systemd linux-perf
  # the catalog page test
  chromium
  # building and running aarch64 trees and images: rpm scriptlets and
  # `docker run --platform linux/arm64` run aarch64 programs through these
  qemu-user-static binfmt-support
  # the community portal's databases (SQLite linked from the system,
  # PostgreSQL started by its tests)
  libsqlite3-dev postgresql-15
)

corral_missing_debs() {
  local pkg
  for pkg in "${CORRAL_DEBS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || echo "$pkg"
  done
}

corral_install_debs() {
  local missing
  missing=$(corral_missing_debs)
  [ -z "$missing" ] && return 0
  echo "corral setup: installing $(echo $missing | wc -w) Debian packages: $(echo $missing)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# The tests' independent checker of cosign signatures uses Python's
# cryptography package.
corral_install_python() {
  python3 -c 'import cryptography' 2>/dev/null && return 0
  echo "corral setup: installing Python's cryptography package" >&2
  python3 -m pip install --quiet cryptography
}

# Garage, the distributed object store the mirror's replica tests run on
# (tests/e2e/replicas.rs, started by tests/support/garage.rs; the replica
# benchmark starts it with scripts/garage.sh). Built from crates.io once per
# machine, outside the clone; the build takes a while on a small machine,
# so only the test suite and the replica benchmark ask for it, not the demo.
CORRAL_GARAGE_VERSION=2.5.0
CORRAL_TOOLS=${CORRAL_TOOLS:-/var/tmp/corral-tools}

# What the tests use of garage, and no more: the sqlite metadata engine with
# its bundled C library (what tests/support/garage.rs configures), no LMDB,
# K2V or Prometheus metrics; optimised at level 1 without debug info. Measured on this 2-core
# machine: 265 crates, 1,004 CPU-seconds, a 41 MB binary (55 MB with the
# default features and profile).
CORRAL_GARAGE_FEATURES=bundled-libs,sqlite

corral_install_garage() {
  if "$CORRAL_TOOLS/bin/garage" --version 2>/dev/null | grep -q "v\?$CORRAL_GARAGE_VERSION"; then
    return 0
  fi
  echo "corral setup: building garage $CORRAL_GARAGE_VERSION into $CORRAL_TOOLS (cargo install)" >&2
  # Its own target directory: sharing the workspace's would make the two
  # builds wait on one lock when test.sh runs them side by side.
  local target=$CORRAL_TOOLS/garage-build
  CARGO_TARGET_DIR=$target \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
    cargo install garage --version "$CORRAL_GARAGE_VERSION" --locked --root "$CORRAL_TOOLS" \
    --no-default-features --features "$CORRAL_GARAGE_FEATURES" --quiet
  rm -rf "$target"
}

# ostree-ext's command-line interface (tests/ostree-ext-reader), the
# independent reader and writer of OS images the tests compare corral's
# with: built once per machine into $CORRAL_TOOLS/bin/ostree-ext-cli (about
# 2.5 minutes on 2 cores), rebuilt when its Cargo.lock changes. Needs the
# Debian packages above (libostree, libzstd).
corral_install_ostree_ext_cli() {
  local src stamp want
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/ostree-ext-reader
  stamp=$CORRAL_TOOLS/ostree-ext-cli.stamp
  want=$(cat "$src/Cargo.lock" "$src/Cargo.toml" "$src/src/main.rs" | sha256sum | cut -d' ' -f1)
  if [ -x "$CORRAL_TOOLS/bin/ostree-ext-cli" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "corral setup: building ostree-ext-cli into $CORRAL_TOOLS (cargo install)" >&2
  local target=$CORRAL_TOOLS/ostree-ext-build
  CARGO_TARGET_DIR=$target \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
    cargo install --locked --path "$src" --root "$CORRAL_TOOLS" --quiet
  rm -rf "$target"
  echo "$want" >"$stamp"
}

# Debian's arm64 busybox-static, the one aarch64 program the sample RPM
# repositories repackage (tests/fixtures/rpms/build-repo.sh builds an
# aarch64 corral-busybox from it). Fetched with apt's own client from a
# private state directory naming only arm64, so the host's dpkg
# architectures and sources stay as they are; kept in $CORRAL_TOOLS.
CORRAL_ARM64_BUSYBOX=$CORRAL_TOOLS/arm64/busybox

# apt's own client with a private state directory naming only arm64
# bookworm: downloads arm64 .debs into DIR without touching the host's
# dpkg architectures or sources. `corral_arm64_download DIR PKG...`
corral_arm64_download() {
  local dir=$1 tmp
  shift
  mkdir -p "$CORRAL_TOOLS"
  tmp=$(mktemp -d "$CORRAL_TOOLS/.arm64.XXXXXX")
  chmod 0755 "$tmp" # apt fetches as its own _apt user
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$dir"
  echo "deb [arch=arm64] http://deb.debian.org/debian bookworm main" >"$tmp/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o "APT::Architectures::=arm64")
  apt-get "${opts[@]}" update -q >/dev/null
  (cd "$tmp" && apt-get "${opts[@]}" download -q "${@/%/:arm64}" >/dev/null 2>&1)
  mv "$tmp"/*.deb "$dir/"
  rm -rf "$tmp"
}

corral_install_arm64_busybox() {
  [ -x "$CORRAL_ARM64_BUSYBOX" ] && return 0
  echo "corral setup: fetching Debian's arm64 busybox-static into $CORRAL_ARM64_BUSYBOX" >&2
  local tmp
  tmp=$(mktemp -d "$CORRAL_TOOLS/.arm64.XXXXXX")
  corral_arm64_download "$tmp" busybox-static
  dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/x"
  mkdir -p "$(dirname "$CORRAL_ARM64_BUSYBOX")"
  mv "$tmp/x/bin/busybox" "$CORRAL_ARM64_BUSYBOX"
  rm -rf "$tmp"
}

# Atomic Host on aarch64 (docs/disk.md, "ARM"): GRUB's arm64-efi modules
# from Debian's grub-efi-arm64-bin, unpacked to $CORRAL_ARM64_GRUB (where
# `corral disk build` looks for them; CORRAL_GRUB_ARM64_EFI overrides), and
# Debian's arm64 kernel package kept in $CORRAL_TOOLS/arm64/debs for
# tests/fixtures/boot/build-tree-aarch64.sh. Never installed into the
# host's dpkg.
CORRAL_ARM64_GRUB=$CORRAL_TOOLS/arm64/grub/arm64-efi

corral_install_arm64_boot() {
  local debs=$CORRAL_TOOLS/arm64/debs tmp
  # cpio packs the aarch64 test tree's initramfs
  if ! command -v cpio >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cpio >/dev/null
  fi
  if [ ! -f "$CORRAL_ARM64_GRUB/linux.mod" ]; then
    echo "corral setup: fetching Debian's grub-efi-arm64-bin into $CORRAL_ARM64_GRUB" >&2
    tmp=$(mktemp -d "$CORRAL_TOOLS/.arm64.XXXXXX")
    corral_arm64_download "$tmp" grub-efi-arm64-bin
    dpkg-deb -x "$tmp"/grub-efi-arm64-bin_*_arm64.deb "$tmp/x"
    mkdir -p "$(dirname "$CORRAL_ARM64_GRUB")"
    rm -rf "$CORRAL_ARM64_GRUB"
    mv "$tmp/x/usr/lib/grub/arm64-efi" "$CORRAL_ARM64_GRUB"
    rm -rf "$tmp"
  fi
  if ! ls "$debs"/linux-image-*-arm64_*_arm64.deb >/dev/null 2>&1; then
    echo "corral setup: fetching Debian's arm64 kernel (linux-image-arm64) into $debs" >&2
    tmp=$(mktemp -d "$CORRAL_TOOLS/.arm64.XXXXXX")
    # the metapackage names the versioned image package it depends on
    corral_arm64_download "$tmp" linux-image-arm64
    local image
    image=$(dpkg-deb -f "$tmp"/linux-image-arm64_*_arm64.deb Depends | grep -o 'linux-image-[^ ,]*-arm64' | head -1)
    corral_arm64_download "$tmp" "$image"
    mkdir -p "$debs"
    mv "$tmp/$image"_*_arm64.deb "$debs/"
    rm -rf "$tmp"
  fi
}

# Booting aarch64 images (tests/e2e/disk_arm.rs, scripts/boot-aarch64.sh;
# part of corral_install_vm_tools): qemu-system-aarch64 from
# bookworm-backports, matching the backported qemu-system-common of the
# x86 VMs, and Debian's AAVMF UEFI firmware (qemu-efi-aarch64).
corral_install_arm64_vm_tools() {
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg-query -W -f='${Status}\n' qemu-efi-aarch64 2>/dev/null | grep -q '^install ok installed$'; then
    echo "corral setup: installing qemu-efi-aarch64 (AAVMF)" >&2
    apt-get install -y -q --no-install-recommends qemu-efi-aarch64 >/dev/null
  fi
  command -v qemu-system-aarch64 >/dev/null 2>&1 && return 0
  corral_install_backported_qemu qemu-system-arm
}

# The kernel runs aarch64 programs through qemu-user-static's binfmt_misc
# handler (registered with the F flag, so it works inside chroots and
# containers too). binfmt-support registers it at boot; a machine whose
# binfmt_misc was never mounted (a container, a fresh boot without
# systemd) gets it mounted and the handler enabled here.
CORRAL_BINFMT_AARCH64=/proc/sys/fs/binfmt_misc/qemu-aarch64

corral_enable_binfmt_aarch64() {
  grep -qx enabled "$CORRAL_BINFMT_AARCH64" 2>/dev/null && return 0
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  fi
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  if ! grep -qx enabled "$CORRAL_BINFMT_AARCH64" 2>/dev/null; then
    echo "corral setup: the binfmt_misc handler for aarch64 ($CORRAL_BINFMT_AARCH64) is missing;" \
      "aarch64 trees and images cannot run their programs here (needs qemu-user-static," \
      "binfmt-support and permission to mount binfmt_misc)" >&2
    return 1
  fi
}

# Virtual machines for the tests that need a kernel of their own: SELinux
# enforcing (tests/e2e/selinux_vm.rs) and booting disk images
# (tests/e2e/disk.rs). qemu-system-x86 comes from bookworm-backports so it
# matches the backported qemu-utils these machines have (the bookworm
# qemu-system-x86 would remove it); the list of backports is kept in a
# private apt state directory, the system's sources are left as they are.
CORRAL_VM_DEBS=(
  debootstrap e2fsprogs dosfstools mtools fdisk xorriso
  grub-pc-bin grub-efi-amd64-bin ovmf seabios
  policycoreutils semodule-utils selinux-utils
  openssh-client
)

# policycoreutils' postinst writes /etc/selinux/config naming the policy
# "default", which is not installed on the host (the VM tests bring their
# own). With that file libostree tries to label every deployment it writes
# on this host and fails (selabel_open on /etc/selinux/default), so a
# config that names a missing policy is removed.
corral_drop_dangling_selinux_config() {
  local conf=/etc/selinux/config type
  [ -f "$conf" ] || return 0
  type=$(sed -n 's/^SELINUXTYPE=//p' "$conf")
  if [ -n "$type" ] && [ ! -d "/etc/selinux/$type" ]; then
    echo "corral setup: removing $conf (it names the policy $type, which is not installed)" >&2
    rm -f "$conf"
  fi
}

corral_install_vm_tools() {
  local missing pkg bpo
  missing=$(for pkg in "${CORRAL_VM_DEBS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || echo "$pkg"
  done)
  export DEBIAN_FRONTEND=noninteractive
  if [ -n "$missing" ]; then
    echo "corral setup: installing VM tools: $(echo $missing)" >&2
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null
  fi
  corral_drop_dangling_selinux_config
  if ! command -v qemu-system-x86_64 >/dev/null 2>&1 || ! command -v qemu-img >/dev/null 2>&1; then
    corral_install_backported_qemu qemu-system-x86 qemu-utils
  fi
  corral_install_arm64_vm_tools
}

# qemu packages from bookworm-backports; the list of backports is kept in
# a private apt state directory, the system's sources are left as they are.
corral_install_backported_qemu() {
  local bpo
  echo "corral setup: installing $* from bookworm-backports" >&2
  bpo=/var/tmp/corral-tools/apt-backports
  mkdir -p "$bpo/lists/partial"
  echo "deb http://deb.debian.org/debian bookworm-backports main" >"$bpo/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$bpo/sources.list" -o "Dir::Etc::sourceparts=/etc/apt/sources.list.d"
    -o "Dir::State::lists=$bpo/lists")
  apt-get "${opts[@]}" update -q >/dev/null
  apt-get "${opts[@]}" install -y -q --no-install-recommends -t bookworm-backports "$@" >/dev/null
}

corral_check_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || {
    echo "corral setup: cargo is not on PATH; install a Rust toolchain (rustup) first" >&2
    return 1
  }
}

# axe-core, the accessibility checker the website test injects into
# Chromium (tests/e2e/site.rs): the npm registry's tarball, pinned by
# version and sha256, unpacked to $CORRAL_TOOLS/axe-core-VERSION/axe.min.js.
CORRAL_AXE_VERSION=4.14.1
CORRAL_AXE_SHA256=e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745

corral_install_axe() {
  local dir=$CORRAL_TOOLS/axe-core-$CORRAL_AXE_VERSION tmp
  [ -s "$dir/axe.min.js" ] && return 0
  echo "corral setup: fetching axe-core $CORRAL_AXE_VERSION from the npm registry into $dir" >&2
  mkdir -p "$CORRAL_TOOLS"
  tmp=$(mktemp -d "$CORRAL_TOOLS/.axe.XXXXXX")
  curl -fsSL --retry 3 -o "$tmp/axe.tgz" \
    "https://registry.npmjs.org/axe-core/-/axe-core-$CORRAL_AXE_VERSION.tgz"
  if ! echo "$CORRAL_AXE_SHA256  $tmp/axe.tgz" | sha256sum -c --quiet -; then
    echo "corral setup: axe-core-$CORRAL_AXE_VERSION.tgz does not have the pinned sha256" >&2
    rm -rf "$tmp"
    return 1
  fi
  tar -xzf "$tmp/axe.tgz" -C "$tmp" package/axe.min.js package/LICENSE
  mkdir -p "$tmp/out"
  mv "$tmp/package/axe.min.js" "$tmp/package/LICENSE" "$tmp/out/"
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
  rm -rf "$tmp"
}

corral_setup() {
  if [ "$(id -u)" != 0 ]; then
    echo "corral setup: run as root (it installs Debian packages and starts dockerd)" >&2
    return 1
  fi
  corral_install_debs
  corral_install_python
  corral_install_axe
  corral_install_arm64_busybox
  corral_install_arm64_boot
  corral_enable_binfmt_aarch64
  corral_check_rust
  # A build cache outside the clone, so later runs on this machine are quick.
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/corral-target}
  export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  corral_setup
  echo "corral setup: ready (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
fi
