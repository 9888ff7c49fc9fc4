#!/usr/bin/env bash
# A Debian VM that enforces SELinux, for proving that corral's labelled test
# runs are confined (tests/e2e/selinux_vm.rs, docs/testrun.md).
#
#   bash scripts/vm-selinux.sh build        build or reuse the image; print its directory
#   bash scripts/vm-selinux.sh run SHARE    boot it with SHARE as a virtio-9p share
#
# `build` debootstraps bookworm with the kernel, selinux-policy-default,
# podman and the libraries the corral binary links, installs
# scripts/selinux/corral-container.cil (container_t and container_file_t),
# labels the root offline with setfiles and packs it with `mkfs.ext4 -d`,
# which keeps the security.selinux xattrs. The result is cached in
# $CORRAL_VM_CACHE (/var/tmp/corral-tools/vm) under a hash of this script
# and the module, so a second build is instant; images of other hashes are
# removed after a build.
#
# `run` boots it under qemu (with KVM when it boots the kernel here, else
# TCG) with
# `security=selinux enforcing=1`, the disk in snapshot mode so the cached
# image never changes. The guest's init loads the policy, mounts SHARE at
# /mnt/corral, runs `sh /mnt/corral/run.sh` with its output in
# SHARE/guest.log and its exit code in SHARE/guest.rc, and powers off. The
# serial console goes to SHARE/console.log. qemu is killed after
# $CORRAL_VM_TIMEOUT seconds (default 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CORRAL_VM_CACHE:-/var/tmp/corral-tools/vm}
mirror=${CORRAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cil="$here/selinux/corral-container.cil"

# libostree-1-1 and its dependencies are what the corral binary links
# (ldd); busybox-static makes the test image inside the guest.
packages=(
  linux-image-amd64 kmod
  selinux-policy-default selinux-utils policycoreutils semodule-utils
  podman netavark crun conmon
  libostree-1-1 busybox-static
)

die() {
  echo "vm-selinux: $*" >&2
  exit 1
}

key() {
  cat "$0" "$cil" | sha256sum | cut -c1-16
}

# PID 1 of the guest. The kernel runs it unlabelled; `load_policy -i` makes
# it kernel_t, an unconfined domain, which podman and corral inherit.
guest_init() {
  cat <<'EOF'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
load_policy -i || echo "corral-vm-init: load_policy failed" >/dev/console
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
modprobe -a 9p 9pnet_virtio overlay
mkdir -p /mnt/corral
# the policy has no labelling for 9p: give the share one label
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,context=system_u:object_r:tmp_t:s0 \
  corral /mnt/corral; then
  sh /mnt/corral/run.sh >/mnt/corral/guest.log 2>&1
  echo $? >/mnt/corral/guest.rc
  umount /mnt/corral
else
  echo "corral-vm-init: no share tagged corral" >/dev/console
fi
sync
echo o >/proc/sysrq-trigger
sleep 60
EOF
}

build() {
  [ "$(id -u)" = 0 ] || die "build runs as root (debootstrap, setfiles)"
  local k out tmp root size start
  k=$(key)
  out="$cache/selinux-$k"
  if [ -f "$out/root.img" ]; then
    echo "$out"
    return 0
  fi
  mkdir -p "$cache/debs"
  exec 9>"$cache/.selinux.lock"
  flock 9
  if [ -f "$out/root.img" ]; then
    echo "$out"
    return 0
  fi
  # Under the lock no other build is running: temp directories left by a
  # killed build (or one whose clean-up failed) are of no use.
  rm -rf "$cache"/.selinux-*.* || echo "vm-selinux: could not remove old temp directories in $cache" >&2
  start=$(date +%s)
  tmp=$(mktemp -d "$cache/.selinux-$k.XXXXXX")
  # The clean-up keeps the script's own exit status: a temp directory that
  # cannot be removed is worth a warning, not a failed build.
  # shellcheck disable=SC2064
  trap "rc=\$?; umount -R '$tmp/root/proc' '$tmp/root/sys' 2>/dev/null || true; rm -rf '$tmp' || echo 'vm-selinux: could not remove $tmp' >&2; exit \$rc" EXIT
  root="$tmp/root"
  echo "vm-selinux: debootstrap bookworm into $root" >&2
  debootstrap --variant=minbase --cache-dir="$cache/debs" \
    --include="$(
      IFS=,
      echo "${packages[*]}"
    )" \
    bookworm "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    {
      tail -30 "$tmp/debootstrap.log" "$root/debootstrap/debootstrap.log" >&2 2>/dev/null
      die "debootstrap failed (log above)"
    }

  echo "vm-selinux: installing the container policy module" >&2
  cp "$cil" "$root/tmp/corral-container.cil"
  mount -t proc proc "$root/proc"
  chroot "$root" semodule -n -i /tmp/corral-container.cil ||
    die "semodule could not install $cil"
  umount "$root/proc"
  rm "$root/tmp/corral-container.cil"
  printf 'SELINUX=enforcing\nSELINUXTYPE=default\n' >"$root/etc/selinux/config"

  mkdir -p "$root/etc/containers" "$root/srv"
  cat >"$root/etc/containers/containers.conf" <<'EOF'
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
EOF
  cat >"$root/etc/containers/storage.conf" <<'EOF'
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
  echo corral-selinux-vm >"$root/etc/hostname"
  guest_init >"$root/usr/local/sbin/corral-vm-init"
  chmod 0755 "$root/usr/local/sbin/corral-vm-init"
  chroot "$root" apt-get clean
  rm -rf "$root/var/lib/apt/lists"/* "$root/debootstrap"

  echo "vm-selinux: labelling the root with the policy's file contexts" >&2
  setfiles -r "$root" -c "$root"/etc/selinux/default/policy/policy.* \
    "$root/etc/selinux/default/contexts/files/file_contexts" "$root" ||
    die "setfiles could not label $root"

  mkdir "$tmp/out"
  cp "$root"/boot/vmlinuz-* "$tmp/out/vmlinuz"
  cp "$root"/boot/initrd.img-* "$tmp/out/initrd.img"
  size=$(($(du -sm "$root" | cut -f1) + 1536))
  mkfs.ext4 -q -L corral-vm -d "$root" "$tmp/out/root.img" "${size}M" ||
    die "mkfs.ext4 could not pack $root"
  debugfs -R "ea_get /usr/bin/podman security.selinux" "$tmp/out/root.img" 2>/dev/null |
    grep -q 'system_u:object_r:' ||
    die "$tmp/out/root.img lost the security.selinux xattrs (no label on /usr/bin/podman)"
  chroot "$root" dpkg-query -W >"$tmp/out/packages.txt"
  mv "$tmp/out" "$out"
  echo "vm-selinux: built $out in $(($(date +%s) - start)) s" >&2
  # images of earlier versions of this script are of no further use
  local old
  for old in "$cache"/selinux-*; do
    [ "$old" = "$out" ] || rm -rf "$old"
  done
  echo "$out"
}

# Whether KVM runs KERNEL here: /dev/kvm opens read-write and, under
# `-accel kvm -cpu host`, the kernel prints its banner within 30 s. Opening
# /dev/kvm is not enough: a paravirtual KVM (kvm_pvm) starts qemu but an
# ordinary kernel hangs before its first line, and some nested hosts refuse
# `-cpu host`. Prints why not; CORRAL_QEMU_ACCEL=tcg skips KVM.
kvm_boots() {
  local kernel=$1 log i
  [ "${CORRAL_QEMU_ACCEL:-}" != tcg ] || { echo "CORRAL_QEMU_ACCEL=tcg"; return 1; }
  (exec 8<>/dev/kvm) 2>/dev/null || { echo "/dev/kvm does not open read-write"; return 1; }
  log=$(mktemp)
  timeout 30 qemu-system-x86_64 -accel kvm -cpu host -m 512 -display none -no-reboot \
    -monitor none -serial "file:$log" -kernel "$kernel" -append "console=ttyS0 panic=-1" \
    >/dev/null 2>&1 &
  local pid=$!
  for ((i = 0; i < 150; i++)); do
    if grep -qa "Linux version" "$log"; then
      kill "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      rm -f "$log"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -f "$log"
  echo "/dev/kvm opens, but the kernel printed nothing under -accel kvm -cpu host"
  return 1
}

run() {
  local share=${1:-}
  [ -n "$share" ] && [ -f "$share/run.sh" ] || die "run needs a share directory holding run.sh"
  share=$(cd "$share" && pwd)
  local img
  img=$(build)
  rm -f "$share/guest.rc" "$share/guest.log" "$share/console.log"
  local start rc=0 accel=(-accel tcg) why
  if why=$(kvm_boots "$img/vmlinuz"); then
    accel=(-accel kvm -cpu host)
    echo "vm-selinux: qemu with kvm" >&2
  else
    echo "vm-selinux: qemu with tcg ($why)" >&2
  fi
  start=$(date +%s)
  timeout --kill-after=10 "${CORRAL_VM_TIMEOUT:-300}" \
    qemu-system-x86_64 "${accel[@]}" -m "${CORRAL_VM_MEMORY:-2048}" -smp "${CORRAL_VM_CPUS:-2}" \
    -display none -no-reboot -nic none -monitor none \
    -serial "file:$share/console.log" \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 security=selinux selinux=1 enforcing=1 init=/usr/local/sbin/corral-vm-init panic=-1" \
    -drive "file=$img/root.img,format=raw,if=virtio,snapshot=on" \
    -virtfs "local,path=$share,mount_tag=corral,security_model=none,id=corral" ||
    rc=$?
  echo "vm-selinux: qemu exited with $rc after $(($(date +%s) - start)) s" >&2
  [ "$rc" = 124 ] && die "the VM did not power off within ${CORRAL_VM_TIMEOUT:-300} s (console: $share/console.log)"
  [ -f "$share/guest.rc" ] || die "the guest did not run $share/run.sh (console: $share/console.log)"
  return "$rc"
}

case "${1:-}" in
build) build ;;
run)
  shift
  run "$@"
  ;;
*) die "usage: $0 build | run SHARE" ;;
esac
