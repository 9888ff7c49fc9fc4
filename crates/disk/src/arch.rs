//! The architectures `corral disk build` makes images for, and what each
//! asks of the layout and the boot loader.
//!
//! - `x86_64`: BIOS and UEFI (a BIOS boot partition, GRUB's i386-pc core
//!   image and `EFI/BOOT/BOOTX64.EFI`), root of the x86-64 root type.
//! - `aarch64`: UEFI only (ARM servers and clouds boot UEFI, qemu's virt
//!   machine with AAVMF), `EFI/BOOT/BOOTAA64.EFI` from GRUB's arm64-efi
//!   modules, root of the AArch64 root type.
//!
//! The architecture is the commit's `corral.arch` (the stream's `[tree]
//! arch`, recorded by `corral compose run`); a commit without it is
//! x86_64, as every commit was before aarch64 streams.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ostree::glib;
use serde::Serialize;

use crate::error::DiskError;

/// Where scripts/setup.sh unpacks Debian's grub-efi-arm64-bin on a host
/// of another architecture.
pub const ARM64_GRUB_TOOLS_DIR: &str = "/var/tmp/corral-tools/arm64/grub/arm64-efi";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "aarch64")]
    Aarch64,
}

impl Arch {
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Whether the image boots from BIOS too (a BIOS boot partition and
    /// GRUB's i386-pc core image).
    pub fn bios(self) -> bool {
        self == Arch::X86_64
    }

    /// The Discoverable Partitions Specification's root type.
    pub fn root_type(self) -> &'static str {
        match self {
            Arch::X86_64 => "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
            Arch::Aarch64 => "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
        }
    }

    /// GRUB's UEFI platform (`grub-mkimage -O`, the module directory's name).
    pub fn grub_efi_platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-efi",
            Arch::Aarch64 => "arm64-efi",
        }
    }

    /// The removable-media path's file name in `EFI/BOOT/`.
    pub fn efi_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "BOOTX64.EFI",
            Arch::Aarch64 => "BOOTAA64.EFI",
        }
    }

    /// The Debian package with GRUB's UEFI modules for this architecture.
    pub fn grub_efi_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "grub-efi-amd64-bin",
            Arch::Aarch64 => {
                "grub-efi-arm64-bin; on other hosts scripts/setup.sh \
                 (corral_install_arm64_boot) unpacks it to /var/tmp/corral-tools/arm64/grub"
            }
        }
    }

    /// GRUB's UEFI modules: the installed package's directory; for
    /// aarch64 on another host, `$CORRAL_GRUB_ARM64_EFI` or where
    /// scripts/setup.sh unpacks Debian's arm64 package.
    pub fn grub_efi_dir(self) -> PathBuf {
        let installed = PathBuf::from("/usr/lib/grub").join(self.grub_efi_platform());
        match self {
            Arch::X86_64 => installed,
            Arch::Aarch64 => match std::env::var_os("CORRAL_GRUB_ARM64_EFI") {
                Some(dir) => PathBuf::from(dir),
                None if installed.join("linux.mod").exists() => installed,
                None => PathBuf::from(ARM64_GRUB_TOOLS_DIR),
            },
        }
    }

    /// The architecture `commit` records (`corral.arch`); x86_64 when it
    /// records none.
    pub fn of_commit(repo: &ostree::Repo, commit: &str) -> Result<Arch> {
        let (v, _) = repo
            .load_commit(commit)
            .with_context(|| format!("loading commit {commit}"))?;
        let dict = glib::VariantDict::new(Some(&v.child_value(0)));
        let recorded = dict
            .lookup::<String>(corral_ostree::commit::keys::ARCH)
            .ok()
            .flatten();
        match recorded {
            None => Ok(Arch::X86_64),
            Some(name) => Arch::parse(&name).ok_or_else(|| {
                DiskError::Unsupported(format!(
                    "commit {commit} is for {name}; corral disk build makes images for \
                     x86_64 and aarch64"
                ))
                .into()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_none() {
        for a in [Arch::X86_64, Arch::Aarch64] {
            assert_eq!(Arch::parse(a.name()), Some(a));
        }
        assert_eq!(Arch::parse("ppc64le"), None);
    }

    #[test]
    fn aarch64_is_uefi_only_with_its_own_root_type_and_binary() {
        assert!(Arch::X86_64.bios());
        assert!(!Arch::Aarch64.bios());
        assert_ne!(Arch::X86_64.root_type(), Arch::Aarch64.root_type());
        assert_eq!(Arch::Aarch64.efi_binary(), "BOOTAA64.EFI");
        assert_eq!(Arch::Aarch64.grub_efi_platform(), "arm64-efi");
    }
}
