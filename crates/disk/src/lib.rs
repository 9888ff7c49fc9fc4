//! Bootable Atomic Host disk images from an OSTree commit
//! (`corral disk build`).
//!
//! - [`layout`]: the GPT layout (BIOS boot, EFI system, `/boot`, root) and
//!   the disk, partition and file-system UUIDs derived from the commit, so
//!   builds of one commit agree; pure, unit-tested.
//! - [`arch`]: the architectures images are built for (x86_64: BIOS and
//!   UEFI; aarch64: UEFI only), read from the commit's `corral.arch`.
//! - [`tools`]: the programs a build runs, each named with the Debian
//!   package that ships it; commands that stop when the build is
//!   interrupted.
//! - [`mount`]: loop devices and mounts held by guards that detach and
//!   unmount on every exit, errors included.
//! - [`deploy`]: the sysroot on the image's file systems, written with
//!   libostree's sysroot API: the commit pulled from a local repository,
//!   the remote and origin the host upgrades from, the kernel arguments.
//! - [`labels`]: SELinux labels, from the deployment's own policy, for the
//!   entries of its `/etc` that libostree left unlabelled.
//! - [`bootloader`]: GRUB for BIOS (core image in the BIOS boot partition)
//!   and for UEFI (the removable path on the ESP), both reading the menu
//!   `corral_host::grub` writes from libostree's boot entries.
//! - [`output`]: conversion with qemu-img or xz, the `.sha256` file and a
//!   detached GPG signature, renamed into place only when complete.
//! - [`stream`]: what a build takes from a stream file: its ref and its
//!   `[disk]` table.
//! - [`image`]: a disk from an OS image (the ostree container format):
//!   its commit imported with corral-ostree into a temporary repository.
//! - [`build`]: all of the above in order; [`cli`]: the clap types.

pub mod arch;
pub mod bootloader;
pub mod build;
pub mod cli;
pub mod deploy;
pub mod error;
pub mod image;
pub mod labels;
pub mod layout;
pub mod mount;
pub mod output;
pub mod stream;
pub mod tools;

pub use arch::Arch;
pub use build::{build, BuildOptions, BuildReport};
pub use error::DiskError;
pub use layout::{Format, Layout};
