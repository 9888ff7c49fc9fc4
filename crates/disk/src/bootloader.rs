//! GRUB for BIOS and UEFI, both reading `/boot/grub/grub.cfg` on the
//! `/boot` partition (found by its file-system UUID).
//!
//! - BIOS: `grub-mkimage -O i386-pc` makes a core image that is written
//!   into the BIOS boot partition; GRUB's `boot.img` goes into the
//!   protective MBR with the core image's first sector patched in, and the
//!   core image's own block list names the rest of it. That is what
//!   `grub-bios-setup` does, done on the image file (which it cannot use).
//! - UEFI: `grub-mkimage -O x86_64-efi` writes `EFI/BOOT/BOOTX64.EFI`, the
//!   removable-media path firmware boots without NVRAM entries; for an
//!   aarch64 image (UEFI only, no BIOS part) `-O arm64-efi` writes
//!   `EFI/BOOT/BOOTAA64.EFI` from GRUB's arm64 modules (the host's
//!   grub-mkimage makes images for any platform whose modules it is given).
//!
//! GRUB's modules are copied to `/boot/grub/<platform>/` so the menu can
//! load what the core images do not carry.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::arch::Arch;
use crate::layout::{Layout, Role};
use crate::tools::Interrupt;

pub const BIOS_DIR: &str = "/usr/lib/grub/i386-pc";

/// Modules built into both core images: enough to find `/boot` by UUID,
/// read the menu and boot a Linux kernel.
const MODULES: &[&str] = &[
    "part_gpt",
    "ext2",
    "fat",
    "search",
    "search_fs_uuid",
    "normal",
    "linux",
    "configfile",
    "echo",
    "test",
    "serial",
    "terminal",
    "gzio",
    "minicmd",
];

// Offsets in GRUB's boot.img (include/grub/i386/pc/boot.h).
const KERNEL_SECTOR: usize = 0x5c;
const MBR_CODE_END: usize = 0x1b8;
// The first block list entry at the end of the core image's first sector
// (diskboot.S): u64 start, u16 length, u16 segment.
const BLOCKLIST: usize = 0x200 - 12;

/// The early configuration both core images run.
fn early_config(boot_uuid: &str) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {boot_uuid}\nset prefix=($root)/grub\n\
         configfile ($root)/grub/grub.cfg\n"
    )
}

/// Copies GRUB's modules and writes the core images: UEFI's, and BIOS's
/// when `arch` boots BIOS too.
#[allow(clippy::too_many_arguments)]
pub fn install(
    arch: Arch,
    layout: &Layout,
    image: &Path,
    boot_mnt: &Path,
    esp_dev: &Path,
    work: &Path,
    epoch: u64,
    int: &Interrupt,
) -> Result<()> {
    let boot_uuid = layout
        .part(Role::Boot)
        .fs_uuid
        .clone()
        .context("/boot has a file-system UUID")?;
    let cfg = work.join("early.cfg");
    std::fs::write(&cfg, early_config(&boot_uuid))
        .with_context(|| format!("writing {}", cfg.display()))?;
    let efi_dir = arch.grub_efi_dir();
    let efi_platform = arch.grub_efi_platform();
    copy_modules(&efi_dir, &boot_mnt.join("grub").join(efi_platform))?;
    if arch.bios() {
        copy_modules(Path::new(BIOS_DIR), &boot_mnt.join("grub/i386-pc"))?;
    }

    // UEFI: written into the FAT file system with mtools, no mount needed
    let tree = work.join("esp");
    let boot_dir = tree.join("EFI/BOOT");
    std::fs::create_dir_all(&boot_dir)
        .with_context(|| format!("creating {}", boot_dir.display()))?;
    let efi = boot_dir.join(arch.efi_binary());
    int.run(
        Command::new("grub-mkimage")
            .args(["-O", efi_platform, "-d"])
            .arg(&efi_dir)
            .args(["-p", "/grub", "-c"])
            .arg(&cfg)
            .arg("-o")
            .arg(&efi)
            .args(MODULES),
        "making GRUB's UEFI image",
    )?;
    // `mcopy -s -m` keeps the times of files and directories: make them
    // the build's (mtools takes no SOURCE_DATE_EPOCH)
    int.run(
        Command::new("touch").arg(format!("--date=@{epoch}")).args([
            tree.join("EFI"),
            boot_dir.clone(),
            efi.clone(),
        ]),
        "setting the times of the ESP's files",
    )?;
    int.run(
        Command::new("mcopy")
            .args(["-s", "-m", "-i"])
            .arg(esp_dev)
            .arg(tree.join("EFI"))
            .arg("::/")
            .env("MTOOLS_SKIP_CHECK", "1"),
        &format!("copying EFI/BOOT/{} to the ESP", arch.efi_binary()),
    )?;
    if !arch.bios() {
        return Ok(());
    }

    // BIOS
    let core = work.join("core.img");
    int.run(
        Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-d", BIOS_DIR, "-p", "/grub", "-c"])
            .arg(&cfg)
            .arg("-o")
            .arg(&core)
            .arg("biosdisk")
            .args(MODULES),
        "making GRUB's BIOS core image",
    )?;
    let core = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    let boot_img = std::fs::read(Path::new(BIOS_DIR).join("boot.img"))
        .with_context(|| format!("reading {BIOS_DIR}/boot.img"))?;
    embed_bios(image, layout, &boot_img, core)
}

fn copy_modules(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    let mut names: Vec<_> = std::fs::read_dir(src)
        .with_context(|| format!("listing {}", src.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| {
            let n = n.to_string_lossy();
            n.ends_with(".mod") || n.ends_with(".lst")
        })
        .collect();
    names.sort();
    for n in names {
        std::fs::copy(src.join(&n), dst.join(&n))
            .with_context(|| format!("copying {} to {}", src.join(&n).display(), dst.display()))?;
    }
    Ok(())
}

/// Sets the volume id of the FAT32 file system on `device` (in the boot
/// sector and its backup). `mkfs.fat --invariant` gives fixed times but
/// also a fixed id, so the id derived from the commit is written after.
pub fn set_fat32_volume_id(device: &Path, id: u32) -> Result<()> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .with_context(|| format!("opening {}", device.display()))?;
    let mut sector = [0u8; 512];
    f.read_exact(&mut sector)
        .with_context(|| format!("reading the boot sector of {}", device.display()))?;
    if &sector[0x52..0x5a] != b"FAT32   " || sector[510..] != [0x55, 0xaa] {
        bail!("{} holds no FAT32 boot sector", device.display());
    }
    let backup = u16::from_le_bytes([sector[0x32], sector[0x33]]) as u64;
    for at in [0, backup * 512] {
        f.seek(SeekFrom::Start(at + 0x43))?;
        f.write_all(&id.to_le_bytes())
            .with_context(|| format!("writing the volume id of {}", device.display()))?;
    }
    f.sync_all()
        .with_context(|| format!("syncing {}", device.display()))
}

/// Writes `core` into the BIOS boot partition and `boot.img` into the
/// MBR, the way grub-bios-setup does on a GPT disk.
pub fn embed_bios(image: &Path, layout: &Layout, boot_img: &[u8], mut core: Vec<u8>) -> Result<()> {
    let part = layout
        .find(Role::BiosBoot)
        .context("the layout has no BIOS boot partition")?;
    if boot_img.len() != 512 {
        bail!("{BIOS_DIR}/boot.img is {} bytes, not 512", boot_img.len());
    }
    if core.len() < 1024 {
        bail!("GRUB's core image is only {} bytes", core.len());
    }
    core.resize(core.len().div_ceil(512) * 512, 0);
    if core.len() as u64 > part.size {
        bail!(
            "GRUB's core image ({} bytes) does not fit the BIOS boot partition ({} bytes)",
            core.len(),
            part.size
        );
    }
    let first = part.start / 512;
    let sectors = (core.len() / 512) as u16;
    // the rest of the core image follows its first sector
    core[BLOCKLIST..BLOCKLIST + 8].copy_from_slice(&(first + 1).to_le_bytes());
    core[BLOCKLIST + 8..BLOCKLIST + 10].copy_from_slice(&(sectors - 1).to_le_bytes());

    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("opening {}", image.display()))?;
    let mut mbr = [0u8; 512];
    f.read_exact(&mut mbr)
        .with_context(|| format!("reading the MBR of {}", image.display()))?;
    // boot code only: the disk signature and the protective partition
    // table sfdisk wrote stay
    mbr[..MBR_CODE_END].copy_from_slice(&boot_img[..MBR_CODE_END]);
    mbr[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&first.to_le_bytes());
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&mbr)
        .with_context(|| format!("writing the MBR of {}", image.display()))?;
    f.seek(SeekFrom::Start(part.start))?;
    f.write_all(&core)
        .with_context(|| format!("writing GRUB's core image into {}", image.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", image.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "3b9f6b2e0c6a4f1e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddcc";

    #[test]
    fn the_mbr_and_the_core_image_point_at_each_other() {
        let layout = Layout::new(C, 1 << 30, Arch::X86_64);
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.raw");
        let mut mbr = vec![0u8; 512];
        mbr[0x1b8..0x1bc].copy_from_slice(b"SIGN");
        mbr[0x1be] = 0xee; // the protective partition
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        let mut disk = mbr.clone();
        disk.resize(4 << 20, 0);
        std::fs::write(&image, &disk).unwrap();
        let boot_img: Vec<u8> = (0..512).map(|i| (i % 251) as u8).collect();
        let core = vec![7u8; 3000]; // 6 sectors once padded
        embed_bios(&image, &layout, &boot_img, core).unwrap();

        let out = std::fs::read(&image).unwrap();
        assert_eq!(&out[..KERNEL_SECTOR], &boot_img[..KERNEL_SECTOR]);
        assert_eq!(out[KERNEL_SECTOR..KERNEL_SECTOR + 8], 2048u64.to_le_bytes());
        assert_eq!(&out[0x1b8..0x1bc], b"SIGN", "the disk signature stays");
        assert_eq!(out[0x1be], 0xee, "the partition table stays");
        assert_eq!(&out[510..512], &[0x55, 0xaa]);
        let core_at = 1 << 20;
        let list = core_at + BLOCKLIST;
        assert_eq!(out[list..list + 8], 2049u64.to_le_bytes());
        assert_eq!(out[list + 8..list + 10], 5u16.to_le_bytes());
        assert_eq!(
            out[core_at + 512 * 5 + 439],
            7,
            "the core image's last byte"
        );
        assert_eq!(out[core_at + 3000], 0, "padded with zeros");
    }

    #[test]
    fn a_core_image_too_large_for_the_partition_is_refused() {
        let layout = Layout::new(C, 1 << 30, Arch::X86_64);
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.raw");
        std::fs::write(&image, vec![0u8; 4 << 20]).unwrap();
        let err = embed_bios(&image, &layout, &[0u8; 512], vec![1u8; (1 << 20) + 1])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not fit the BIOS boot partition"),
            "{err}"
        );
    }

    #[test]
    fn the_early_config_finds_boot_by_uuid() {
        let cfg = early_config("d13c3310-97ff-4989-b413-a469b8ba80cf");
        assert!(cfg.starts_with(
            "search --no-floppy --fs-uuid --set=root d13c3310-97ff-4989-b413-a469b8ba80cf\n"
        ));
        assert!(cfg.contains("configfile ($root)/grub/grub.cfg"));
    }
}
