//! `corral disk build`: a commit of a local OSTree repository to a
//! bootable disk image, step by step.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use corral_host::sysroot::Origin;
use corral_ostree::stream_file::{self, PublishedDiskImage};
use ostree::gio;
use ostree::prelude::*;
use serde::Serialize;

use crate::arch::Arch;
use crate::error::DiskError;
use crate::layout::{self, Format, Layout, Partition, Role, MIB};
use crate::mount::{LoopDevice, Mount};
use crate::output::{self, TempPath};
use crate::tools::{self, step, Interrupt};

/// Which commit to put on the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Commit(String),
    Ref(String),
    /// The commit an OS image carries (the ostree container format),
    /// imported first into a temporary repository; `repo` is not used.
    Image(crate::image::ImageInput),
}

/// Everything a build needs; the CLI fills it from flags and the stream.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub repo: PathBuf,
    pub source: Source,
    /// The ref the origin names (the stream's, `--ref`, or the one ref
    /// of the repository).
    pub origin_ref: Option<String>,
    pub output: PathBuf,
    pub format: Format,
    pub size: u64,
    /// The size as the user wrote it, for messages.
    pub size_text: String,
    pub osname: String,
    pub remote_name: String,
    pub remote_url: Option<String>,
    pub remote_gpg_key: Option<PathBuf>,
    /// Kernel arguments after `root=UUID=… rw`.
    pub kargs: Vec<String>,
    pub gpg_key: Option<String>,
    pub gpg_homedir: Option<PathBuf>,
    /// File-system timestamps; the commit's time when unset.
    pub source_date_epoch: Option<u64>,
}

/// What `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub image: PathBuf,
    pub format: Format,
    pub virtual_size: u64,
    pub file_size: u64,
    pub sha256: String,
    pub sha256_file: PathBuf,
    pub signature: Option<PathBuf>,
    /// The published stream file the image was recorded in, if any.
    pub stream_file: Option<PathBuf>,
    pub commit: String,
    /// With `--image`: the manifest digest of the OS image the commit
    /// came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The commit's architecture (`corral.arch`): aarch64 images boot
    /// UEFI only.
    pub arch: Arch,
    #[serde(rename = "ref")]
    pub ostree_ref: String,
    pub origin: String,
    pub osname: String,
    pub kargs: Vec<String>,
    pub disk_uuid: String,
    pub partitions: Vec<Partition>,
}

/// Records a built image in the published stream file of `ostree_ref`
/// in `repo` (`streams/NAME.json`, written whole), so the website lists
/// it with the stream. `None` when no stream file names the ref (a
/// repository corral compose did not publish).
pub fn record_in_stream_file(
    repo: &Path,
    ostree_ref: &str,
    image: PublishedDiskImage,
) -> Result<Option<PathBuf>> {
    let Some((file, mut stream)) = stream_file::find_by_ref(repo, ostree_ref) else {
        tracing::info!(
            ostree_ref,
            "no published stream file names the ref: not recording the image"
        );
        return Ok(None);
    };
    stream.record_disk_image(image);
    stream_file::write(&file, &stream)
        .with_context(|| format!("recording the disk image in {}", file.display()))?;
    Ok(Some(file))
}

/// Builds the image; on any error (or SIGINT/SIGTERM) the temporary files,
/// mounts and loop devices are removed and IMAGE is not written.
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let int = Interrupt::watch_signals()?;
    let mut extra: Vec<(&str, &'static str)> = Vec::new();
    match opts.format {
        Format::Qcow2 => extra.push(("qemu-img", "qemu-utils")),
        Format::RawXz => extra.push(("xz", "xz-utils")),
        Format::Raw => {}
    }
    if opts.gpg_key.is_some() || opts.remote_gpg_key.is_some() {
        extra.push(("gpg", "gnupg"));
    }
    tools::require(&extra)?;
    let out_dir = opts
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !out_dir.is_dir() {
        return Err(DiskError::NoOutputDir(out_dir.to_path_buf()).into());
    }
    if opts.remote_url.is_some() && opts.remote_gpg_key.is_none() {
        bail!(
            "a remote URL (--remote-url or the stream's [disk] remote-url) needs \
             --remote-gpg-key: corral host only upgrades from a remote whose commits and \
             summary it can verify"
        );
    }
    if opts.remote_url.is_none() {
        if let Some(key) = &opts.remote_gpg_key {
            bail!(
                "--remote-gpg-key {} needs a remote URL (--remote-url or the stream's [disk] \
                 remote-url) to verify",
                key.display()
            );
        }
    }

    // An OS image: its commit imported into a repository of its own,
    // under the ref the host follows, then built as any other.
    let mut image: Option<crate::image::Imported> = None;
    let from_image;
    let opts = if let Source::Image(input) = &opts.source {
        let origin_ref = opts.origin_ref.clone().context(
            "name the ref the host follows with --ref (or a stream file): an OS image carries a \
             commit, not a ref",
        )?;
        step(&format!("importing the OS image {}", input.source));
        let imported = crate::image::import(input, out_dir, &origin_ref, &int)?;
        from_image = BuildOptions {
            repo: imported.repo.clone(),
            source: Source::Ref(origin_ref),
            ..opts.clone()
        };
        image = Some(imported);
        &from_image
    } else {
        opts
    };
    let source = ostree::Repo::new(&gio::File::for_path(&opts.repo));
    source
        .open(gio::Cancellable::NONE)
        .with_context(|| format!("opening the OSTree repository {}", opts.repo.display()))?;
    let (commit, origin_ref) = resolve(&source, opts)?;
    let origin = Origin {
        remote: opts.remote_name.clone(),
        ostree_ref: origin_ref.clone(),
    };
    let arch = Arch::of_commit(&source, &commit)?;
    tools::require_grub(arch)?;
    step(&format!(
        "commit {commit} ({}, {})",
        origin.refspec(),
        arch.name()
    ));

    let (tree_bytes, boot_bytes) = tree_size(&source, &commit)?;
    let root_min = tree_bytes + tree_bytes / 5 + 256 * MIB;
    let needed = layout::min_size(root_min, arch);
    if opts.size < needed {
        let suggest_gib = needed.div_ceil(1 << 30);
        return Err(DiskError::TooSmall {
            size: opts.size_text.clone(),
            commit: commit.clone(),
            needed_mib: needed.div_ceil(MIB),
            tree_mib: tree_bytes.div_ceil(MIB),
            suggest: format!("{suggest_gib}G"),
        }
        .into());
    }
    if 2 * boot_bytes + 32 * MIB > layout::BOOT_SIZE {
        bail!(
            "the kernel and initramfs of {commit} take {} MiB; /boot ({} MiB) must hold two of them",
            boot_bytes.div_ceil(MIB),
            layout::BOOT_SIZE / MIB
        );
    }
    let epoch = match opts.source_date_epoch {
        Some(e) => e,
        None => commit_time(&source, &commit)?,
    };
    let layout = Layout::new(&commit, opts.size, arch);
    let root_uuid = layout.part(Role::Root).fs_uuid.clone().unwrap_or_default();
    let mut kargs = vec![format!("root=UUID={root_uuid}"), "rw".to_string()];
    kargs.extend(opts.kargs.iter().cloned());

    let raw = TempPath::beside(&opts.output, ".raw");
    // beside IMAGE, hidden: the mount points of an interrupted build are
    // found there, never in a shared /tmp
    let work = tempfile::Builder::new()
        .prefix(".corral-disk-")
        .tempdir_in(out_dir)
        .with_context(|| format!("creating a work directory in {}", out_dir.display()))?;

    let names: Vec<&str> = layout
        .partitions
        .iter()
        .map(|p| match p.role {
            Role::BiosBoot => "BIOS boot",
            Role::Esp => "EFI system",
            Role::Boot => "/boot",
            Role::Root => "root",
        })
        .collect();
    step(&format!(
        "partitioning a {} MiB disk (GPT: {})",
        layout.size / MIB,
        names.join(", ")
    ));
    let f = std::fs::File::create(&raw.path)
        .with_context(|| format!("creating {}", raw.path.display()))?;
    f.set_len(layout.size)
        .with_context(|| format!("sizing {}", raw.path.display()))?;
    drop(f);
    let script = work.path().join("sfdisk.txt");
    std::fs::write(&script, layout.sfdisk_script())
        .with_context(|| format!("writing {}", script.display()))?;
    int.run(
        Command::new("sfdisk")
            .args(["--quiet", "--no-reread", "--no-tell-kernel"])
            .arg(&raw.path)
            .stdin(std::fs::File::open(&script)?),
        "writing the partition table",
    )?;

    {
        let esp_dev = LoopDevice::attach(&raw.path, layout.part(Role::Esp), &int)?;
        let boot_dev = LoopDevice::attach(&raw.path, layout.part(Role::Boot), &int)?;
        let root_dev = LoopDevice::attach(&raw.path, layout.part(Role::Root), &int)?;
        step("making the file systems (FAT32 ESP, ext4 /boot and root)");
        mkfs(&layout, &esp_dev, &boot_dev, &root_dev, epoch, &int)?;

        let mnt = work.path().join("root");
        let root_mnt = Mount::new(&root_dev.device, &mnt, "rw", &int)?;
        let boot_mnt = Mount::new(&boot_dev.device, &mnt.join("boot"), "rw", &int)?;
        // the ESP is written with mtools: a kernel without vfat still builds
        let esp_mount_point = mnt.join("boot/efi");
        std::fs::create_dir_all(&esp_mount_point)
            .with_context(|| format!("creating {}", esp_mount_point.display()))?;

        step(&format!(
            "deploying {commit} with libostree (stateroot {}, origin {})",
            opts.osname,
            origin.refspec()
        ));
        let fstab = format!(
            "# written by corral disk build: /boot and the ESP, by file-system UUID\n\
             # (nofail on the ESP: a kernel without vfat still boots)\n\
             UUID={} /boot ext4 defaults 1 2\n\
             UUID={} /boot/efi vfat umask=0077,shortname=winnt,nofail 0 2\n",
            layout
                .part(Role::Boot)
                .fs_uuid
                .as_deref()
                .unwrap_or_default(),
            layout
                .part(Role::Esp)
                .fs_uuid
                .as_deref()
                .unwrap_or_default(),
        );
        let remote = match (&opts.remote_url, &opts.remote_gpg_key) {
            (Some(u), Some(k)) => Some((u.as_str(), k.as_path())),
            _ => None,
        };
        if remote.is_none() {
            step("no --remote-url: the host has no remote to upgrade from until one is added");
        }
        int.check()?;
        crate::deploy::deploy(
            &root_mnt.target,
            &crate::deploy::DeploySpec {
                source_repo: &opts.repo,
                commit: &commit,
                osname: &opts.osname,
                origin: origin.clone(),
                remote,
                kargs: kargs.clone(),
                fstab,
            },
        )?;
        int.check()?;
        step(if arch.bios() {
            "writing the GRUB menu from the boot entries, GRUB for BIOS and UEFI"
        } else {
            "writing the GRUB menu from the boot entries, GRUB for UEFI"
        });
        corral_host::grub::write(&boot_mnt.target)?;
        crate::bootloader::install(
            arch,
            &layout,
            &raw.path,
            &boot_mnt.target,
            &esp_dev.device,
            work.path(),
            epoch,
            &int,
        )?;
        // Deployment roots are immutable; nothing else to undo. Unmount in
        // reverse order, check both ext4 file systems are clean, detach.
        boot_mnt.finish(&int)?;
        root_mnt.finish(&int)?;
        ensure_clean(&boot_dev.device, "/boot", &int)?;
        ensure_clean(&root_dev.device, "root", &int)?;
        drop((esp_dev, boot_dev, root_dev));
    }
    int.check()?;

    let image_tmp = TempPath::beside(&opts.output, "");
    step(&format!(
        "writing {} as {}",
        opts.output.display(),
        opts.format.name()
    ));
    output::convert(raw, opts.format, &image_tmp, &int)?;
    let sha256 = output::sha256_file(&image_tmp.path)?;
    let file_size = std::fs::metadata(&image_tmp.path)
        .with_context(|| format!("reading {}", image_tmp.path.display()))?
        .len();
    let virtual_size = match opts.format {
        Format::Qcow2 => output::qemu_img_info(&image_tmp.path, &int)?.0,
        _ => layout.size,
    };
    let name = opts
        .output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sha_path = output::sidecar(&opts.output, ".sha256");
    let sha_tmp = TempPath::beside(&opts.output, ".sha256");
    std::fs::write(&sha_tmp.path, format!("{sha256}  {name}\n"))
        .with_context(|| format!("writing {}", sha_tmp.path.display()))?;
    let mut signature = None;
    let sig_tmp = TempPath::beside(&opts.output, ".asc");
    if let Some(key) = &opts.gpg_key {
        step(&format!("signing with gpg key {key}"));
        output::sign(
            &image_tmp.path,
            key,
            opts.gpg_homedir.as_deref(),
            &sig_tmp.path,
            &int,
        )?;
        signature = Some(output::sidecar(&opts.output, ".asc"));
    }
    int.check()?;
    sha_tmp.persist(&sha_path)?;
    if let Some(sig) = &signature {
        sig_tmp.persist(sig)?;
    } else {
        // an old signature would not match the new image
        let _ = std::fs::remove_file(output::sidecar(&opts.output, ".asc"));
    }
    image_tmp.persist(&opts.output)?;
    step(&format!(
        "wrote {} ({} bytes, sha256 {sha256})",
        opts.output.display(),
        file_size
    ));
    let entry = PublishedDiskImage {
        name: name.clone(),
        format: opts.format.name().to_string(),
        size: Some(file_size),
        sha256: Some(sha256.clone()),
        signature: signature
            .as_ref()
            .and_then(|s| s.file_name())
            .map(|n| n.to_string_lossy().into_owned()),
        commit: Some(commit.clone()),
        arch: Some(arch.name().to_string()),
    };
    let stream_file = record_in_stream_file(&opts.repo, &origin_ref, entry)?;
    if let Some(file) = &stream_file {
        step(&format!("recorded {name} in {}", file.display()));
    }
    Ok(BuildReport {
        image: opts.output.clone(),
        format: opts.format,
        virtual_size,
        file_size,
        sha256,
        sha256_file: sha_path,
        signature,
        stream_file,
        commit,
        image_digest: image.as_ref().map(|i| i.manifest_digest.clone()),
        arch,
        ostree_ref: origin_ref,
        origin: origin.refspec(),
        osname: opts.osname.clone(),
        kargs,
        disk_uuid: layout.disk_uuid.clone(),
        partitions: layout.partitions.clone(),
    })
}

/// The commit to deploy and the ref its origin names.
fn resolve(repo: &ostree::Repo, opts: &BuildOptions) -> Result<(String, String)> {
    let refs: Vec<String> = {
        let mut r: Vec<String> = repo
            .list_refs(None, gio::Cancellable::NONE)
            .with_context(|| format!("listing the refs of {}", opts.repo.display()))?
            .into_keys()
            .collect();
        r.sort();
        r
    };
    let unknown = |rev: &str| DiskError::UnknownRev {
        rev: rev.to_string(),
        repo: opts.repo.clone(),
        refs: if refs.is_empty() {
            "none".into()
        } else {
            refs.join(", ")
        },
    };
    let rev = match &opts.source {
        Source::Commit(c) | Source::Ref(c) => c.clone(),
        Source::Image(i) => bail!("{} is imported before the commit is resolved", i.source),
    };
    let commit = repo
        .resolve_rev(&rev, true)
        .ok()
        .flatten()
        .map(|c| c.to_string())
        .ok_or_else(|| unknown(&rev))?;
    // a ref that resolves is not enough: the commit object must be there
    if repo.load_commit(&commit).is_err() {
        return Err(unknown(&rev).into());
    }
    let origin_ref = match (&opts.origin_ref, &opts.source) {
        (Some(r), _) => r.clone(),
        (None, Source::Ref(r)) => r.clone(),
        (None, Source::Commit(_) | Source::Image(_)) => match refs.as_slice() {
            [one] => one.clone(),
            _ => bail!(
                "name the ref the host follows with --ref (or a stream file); {} has {}",
                opts.repo.display(),
                if refs.is_empty() {
                    "no refs".to_string()
                } else {
                    refs.join(", ")
                }
            ),
        },
    };
    Ok((commit, origin_ref))
}

fn commit_time(repo: &ostree::Repo, commit: &str) -> Result<u64> {
    let (v, _) = repo
        .load_commit(commit)
        .with_context(|| format!("loading commit {commit}"))?;
    Ok(ostree::commit_get_timestamp(&v))
}

/// Bytes the tree takes on ext4 (files rounded to 4 KiB blocks, a block
/// per directory) and the bytes of its largest kernel + initramfs.
fn tree_size(repo: &ostree::Repo, commit: &str) -> Result<(u64, u64)> {
    let (root, _) = repo
        .read_commit(commit, gio::Cancellable::NONE)
        .with_context(|| format!("reading commit {commit}"))?;
    let mut total = 0u64;
    let mut boot = 0u64;
    let mut stack = vec![(root, String::new())];
    while let Some((dir, path)) = stack.pop() {
        let children = dir
            .enumerate_children(
                "standard::name,standard::type,standard::size",
                gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
                gio::Cancellable::NONE,
            )
            .with_context(|| format!("listing {path} in commit {commit}"))?;
        let mut kernel_dir = 0u64;
        for info in children {
            let info = info.with_context(|| format!("listing {path} in commit {commit}"))?;
            let name = info.name().to_string_lossy().into_owned();
            let size = info.size().max(0) as u64;
            total += size.div_ceil(4096) * 4096 + 256;
            if info.file_type() == gio::FileType::Directory {
                total += 4096;
                stack.push((dir.child(&name), format!("{path}/{name}")));
            } else if path.starts_with("/usr/lib/modules/")
                && (name == "vmlinuz" || name.starts_with("initramfs"))
            {
                kernel_dir += size;
            }
        }
        boot = boot.max(kernel_dir);
    }
    Ok((total, boot))
}

fn mkfs(
    layout: &Layout,
    esp: &LoopDevice,
    boot: &LoopDevice,
    root: &LoopDevice,
    epoch: u64,
    int: &Interrupt,
) -> Result<()> {
    int.run(
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-n", "EFI-SYSTEM", "--invariant"])
            .arg(&esp.device),
        "making the ESP's FAT file system",
    )?;
    let id = u32::from_str_radix(&layout.fat_volume_id, 16)
        .context("the FAT volume id is 8 hex digits")?;
    crate::bootloader::set_fat32_volume_id(&esp.device, id)?;
    for (dev, role, label, seed) in [
        (boot, Role::Boot, "boot", &layout.hash_seeds[0]),
        (root, Role::Root, "root", &layout.hash_seeds[1]),
    ] {
        let uuid = layout.part(role).fs_uuid.clone().unwrap_or_default();
        let mut cmd = Command::new("mkfs.ext4");
        cmd.args(["-q", "-F", "-L", label, "-U", &uuid])
            .arg("-E")
            .arg(format!("hash_seed={seed},root_owner=0:0"))
            .env("E2FSPROGS_FAKE_TIME", epoch.to_string());
        // GRUB 2.06 cannot read ext4 with these features
        if role == Role::Boot {
            cmd.args(["-O", "^metadata_csum_seed,^orphan_file"]);
        }
        cmd.arg(&dev.device);
        int.run(&mut cmd, &format!("making the {label} file system"))?;
    }
    Ok(())
}

/// Refuses to convert an image whose ext4 file system still needs its
/// journal replayed: GRUB reads file systems without replaying journals,
/// so such an image would not find its kernel or menu.
fn ensure_clean(device: &Path, what: &str, int: &Interrupt) -> Result<()> {
    let out = int.run(
        Command::new("dumpe2fs").arg("-h").arg(device),
        &format!(
            "reading the {what} file system's superblock on {}",
            device.display()
        ),
    )?;
    let text = String::from_utf8_lossy(&out);
    let features = text
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem features:"))
        .unwrap_or_default();
    let state = text
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem state:"))
        .map(str::trim)
        .unwrap_or("unknown");
    if features.split_whitespace().any(|f| f == "needs_recovery") || state != "clean" {
        bail!(
            "the {what} file system on {} was not cleanly unmounted (state {state}{}); \
             another mount namespace may still hold it",
            device.display(),
            if features.contains("needs_recovery") {
                ", journal not replayed"
            } else {
                ""
            }
        );
    }
    Ok(())
}
