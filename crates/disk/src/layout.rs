//! The partition layout of an Atomic Host disk image and its identifiers.
//!
//! | # | name         | size    | type                      | file system |
//! |---|--------------|---------|---------------------------|-------------|
//! | 1 | `BIOS-BOOT`  | 1 MiB   | BIOS boot                 | GRUB's core image |
//! | 2 | `EFI-SYSTEM` | 127 MiB | EFI system                | FAT32       |
//! | 3 | `boot`       | 384 MiB | XBOOTLDR (`/boot`)        | ext4        |
//! | 4 | `root`       | the rest| Linux root (x86-64)       | ext4        |
//!
//! An aarch64 image boots UEFI only: no BIOS boot partition, so the ESP
//! is partition 1, `/boot` 2 and root 3, of the AArch64 root type.
//!
//! Every UUID (disk, partitions, file systems, ext4's hash seed, the FAT
//! volume id) is derived from the commit checksum, so two builds of one
//! commit have the same identifiers.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::arch::Arch;

pub const MIB: u64 = 1 << 20;
const SECTOR: u64 = 512;

/// What `--format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Format {
    #[value(name = "qcow2")]
    #[serde(rename = "qcow2")]
    Qcow2,
    #[value(name = "raw")]
    #[serde(rename = "raw")]
    Raw,
    #[value(name = "raw.xz")]
    #[serde(rename = "raw.xz")]
    RawXz,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Qcow2 => "qcow2",
            Format::Raw => "raw",
            Format::RawXz => "raw.xz",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "qcow2" => Some(Format::Qcow2),
            "raw" => Some(Format::Raw),
            "raw.xz" => Some(Format::RawXz),
            _ => None,
        }
    }
}

/// The role of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    BiosBoot,
    Esp,
    Boot,
    Root,
}

/// One partition of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub number: u32,
    pub role: Role,
    pub name: &'static str,
    /// The GPT partition type GUID.
    #[serde(rename = "type")]
    pub type_guid: &'static str,
    /// The GPT partition GUID (PARTUUID).
    pub uuid: String,
    /// The file system's UUID (FAT: its volume id as `XXXX-XXXX`).
    pub fs_uuid: Option<String>,
    pub start: u64,
    pub size: u64,
}

/// The whole disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub disk_uuid: String,
    pub size: u64,
    pub partitions: Vec<Partition>,
    /// ext4's directory hash seed for `/boot` and root.
    #[serde(skip)]
    pub hash_seeds: [String; 2],
    /// The FAT volume id (8 hex digits) of the ESP.
    #[serde(skip)]
    pub fat_volume_id: String,
}

pub const BIOS_BOOT_TYPE: &str = "21686148-6449-6E6F-744E-656564454649";
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// XBOOTLDR: the Boot Loader Specification's extended boot partition.
pub const XBOOTLDR_TYPE: &str = "BC13C2FF-59E6-4262-A352-B275FD6F7172";

pub const BIOS_BOOT_SIZE: u64 = MIB;
pub const ESP_SIZE: u64 = 127 * MIB;
pub const BOOT_SIZE: u64 = 384 * MIB;
/// Before the first partition (the GPT) and after the last (its backup).
pub const LEAD: u64 = MIB;
pub const TAIL: u64 = MIB;

/// A UUID derived from the commit and a purpose (version-4 bits set, so
/// tools that check the form accept it).
pub fn derived_uuid(commit: &str, purpose: &str) -> String {
    let d = Sha256::digest(format!("corral-disk\0{commit}\0{purpose}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The smallest image that holds the fixed partitions and `root_min`
/// bytes of root file system.
pub fn min_size(root_min: u64, arch: Arch) -> u64 {
    LEAD + bios_size(arch) + ESP_SIZE + BOOT_SIZE + root_min.div_ceil(MIB) * MIB + TAIL
}

fn bios_size(arch: Arch) -> u64 {
    if arch.bios() {
        BIOS_BOOT_SIZE
    } else {
        0
    }
}

impl Layout {
    /// The layout of a `size`-byte image of `commit` for `arch`; `size`
    /// is rounded down to whole MiB.
    pub fn new(commit: &str, size: u64, arch: Arch) -> Layout {
        let size = size / MIB * MIB;
        let esp_start = LEAD + bios_size(arch);
        let root_start = esp_start + ESP_SIZE + BOOT_SIZE;
        let root_size = size.saturating_sub(root_start + TAIL);
        let fat = &derived_uuid(commit, "esp-fs")[..8];
        let fat_volume_id = fat.to_uppercase();
        let mut number = 0;
        let mut part = |role, name, type_guid, start, size, fs: Option<String>| {
            number += 1;
            Partition {
                number,
                role,
                name,
                type_guid,
                uuid: derived_uuid(commit, &format!("partition-{name}")),
                fs_uuid: fs,
                start,
                size,
            }
        };
        let mut partitions = Vec::new();
        if arch.bios() {
            partitions.push(part(
                Role::BiosBoot,
                "BIOS-BOOT",
                BIOS_BOOT_TYPE,
                LEAD,
                BIOS_BOOT_SIZE,
                None,
            ));
        }
        partitions.push(part(
            Role::Esp,
            "EFI-SYSTEM",
            ESP_TYPE,
            esp_start,
            ESP_SIZE,
            Some(format!("{}-{}", &fat_volume_id[..4], &fat_volume_id[4..])),
        ));
        partitions.push(part(
            Role::Boot,
            "boot",
            XBOOTLDR_TYPE,
            esp_start + ESP_SIZE,
            BOOT_SIZE,
            Some(derived_uuid(commit, "boot-fs")),
        ));
        partitions.push(part(
            Role::Root,
            "root",
            arch.root_type(),
            root_start,
            root_size,
            Some(derived_uuid(commit, "root-fs")),
        ));
        Layout {
            disk_uuid: derived_uuid(commit, "disk"),
            size,
            partitions,
            hash_seeds: [
                derived_uuid(commit, "boot-hash-seed"),
                derived_uuid(commit, "root-hash-seed"),
            ],
            fat_volume_id,
        }
    }

    /// The partition of `role`, if the layout has one (an aarch64 layout
    /// has no BIOS boot partition).
    pub fn find(&self, role: Role) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.role == role)
    }

    /// The partition of `role`; every layout has an ESP, `/boot` and root.
    pub fn part(&self, role: Role) -> &Partition {
        self.find(role).expect("the role is in the layout")
    }

    /// The input `sfdisk` reads to write this partition table.
    pub fn sfdisk_script(&self) -> String {
        let mut s = format!(
            "label: gpt\nlabel-id: {}\nunit: sectors\nfirst-lba: {}\nsector-size: {SECTOR}\n",
            self.disk_uuid.to_uppercase(),
            LEAD / SECTOR
        );
        for p in &self.partitions {
            s.push_str(&format!(
                "start={}, size={}, type={}, uuid={}, name=\"{}\"\n",
                p.start / SECTOR,
                p.size / SECTOR,
                p.type_guid,
                p.uuid.to_uppercase(),
                p.name
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "3b9f6b2e0c6a4f1e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddcc";

    #[test]
    fn uuids_depend_on_the_commit_only() {
        assert_eq!(derived_uuid(C, "disk"), derived_uuid(C, "disk"));
        assert_ne!(derived_uuid(C, "disk"), derived_uuid(C, "root-fs"));
        let other = C.replace('3', "4");
        assert_ne!(derived_uuid(C, "disk"), derived_uuid(&other, "disk"));
        let u = derived_uuid(C, "disk");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]));
    }

    #[test]
    fn partitions_follow_each_other_and_root_takes_the_rest() {
        let l = Layout::new(C, 10 << 30, Arch::X86_64);
        let mut end = LEAD;
        for p in &l.partitions {
            assert_eq!(p.start, end, "{p:?}");
            assert_eq!(p.start % MIB, 0);
            end = p.start + p.size;
        }
        assert_eq!(end + TAIL, 10 << 30);
        assert_eq!(l.part(Role::Root).size, (10 << 30) - 514 * MIB);
        assert_eq!(l.part(Role::Esp).fs_uuid.as_ref().unwrap().len(), 9);
    }

    #[test]
    fn the_sfdisk_script_names_every_partition() {
        let script = Layout::new(C, 2 << 30, Arch::X86_64).sfdisk_script();
        assert!(script.starts_with("label: gpt\n"), "{script}");
        assert!(script.contains(&format!("start=2048, size=2048, type={BIOS_BOOT_TYPE}")));
        assert!(script.contains("name=\"root\""));
        assert_eq!(
            script.lines().filter(|l| l.starts_with("start=")).count(),
            4
        );
    }

    #[test]
    fn the_minimum_counts_every_partition() {
        assert_eq!(min_size(100 * MIB, Arch::X86_64), 614 * MIB);
        assert_eq!(min_size(1, Arch::X86_64), 515 * MIB);
        assert_eq!(min_size(1, Arch::Aarch64), 514 * MIB);
    }

    #[test]
    fn an_aarch64_layout_is_uefi_only_with_the_aarch64_root_type() {
        let l = Layout::new(C, 2 << 30, Arch::Aarch64);
        let roles: Vec<_> = l.partitions.iter().map(|p| (p.number, p.role)).collect();
        assert_eq!(
            roles,
            [(1, Role::Esp), (2, Role::Boot), (3, Role::Root)],
            "no BIOS boot partition"
        );
        assert_eq!(l.part(Role::Esp).start, LEAD);
        assert_eq!(
            l.part(Role::Root).type_guid,
            "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
        );
        assert!(l.find(Role::BiosBoot).is_none());
        let x86 = Layout::new(C, 2 << 30, Arch::X86_64);
        assert_eq!(
            l.part(Role::Root).uuid,
            x86.part(Role::Root).uuid,
            "identifiers come from the commit only"
        );
        let script = l.sfdisk_script();
        assert_eq!(
            script.lines().filter(|l| l.starts_with("start=")).count(),
            3
        );
        assert!(!script.contains(BIOS_BOOT_TYPE));
    }
}
