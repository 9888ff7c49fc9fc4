//! The free-space floor: below it the registry refuses new blob data (507)
//! before the disk is actually full, so that the manifests and tags of pushes
//! already under way still fit and reads never depend on free space.

use std::path::Path;

use super::StorageError;

/// Free and total bytes of the filesystem holding a storage root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeSpace {
    /// Bytes an unprivileged writer can still use (`f_bavail`).
    pub available: u64,
    /// Size of the filesystem.
    pub total: u64,
}

/// The floor when `[limits] min_free_bytes` is unset: 256 MiB ...
pub const DEFAULT_FLOOR_BYTES: u64 = 256 << 20;
/// ... or 1% of the filesystem when that is smaller, so a small disk (or a
/// test tmpfs) is not refused from the start.
pub const DEFAULT_FLOOR_PERCENT: u64 = 1;

impl FreeSpace {
    /// `statvfs` of the filesystem holding `path`.
    pub fn of(path: &Path) -> std::io::Result<FreeSpace> {
        let s = rustix::fs::statvfs(path)?;
        Ok(FreeSpace {
            available: s.f_bavail.saturating_mul(s.f_frsize),
            total: s.f_blocks.saturating_mul(s.f_frsize),
        })
    }
}

/// The floor in bytes: the configured one, else the default for a
/// filesystem of `total` bytes. 0 means no floor.
pub fn floor_bytes(configured: Option<u64>, total: u64) -> u64 {
    configured.unwrap_or_else(|| DEFAULT_FLOOR_BYTES.min(total / 100 * DEFAULT_FLOOR_PERCENT))
}

/// Whether new blob data may be accepted: `Err(InsufficientStorage)` when
/// the free space is below the floor.
pub fn check_floor(
    space: FreeSpace,
    configured: Option<u64>,
    root: &Path,
) -> Result<(), StorageError> {
    let floor = floor_bytes(configured, space.total);
    if space.available < floor {
        return Err(StorageError::InsufficientStorage(format!(
            "{} bytes free on {}, below the floor of {floor} bytes ([limits] min_free_bytes)",
            space.available,
            root.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn check(available: u64, total: u64, configured: Option<u64>) -> bool {
        check_floor(
            FreeSpace { available, total },
            configured,
            Path::new("/srv/mirror"),
        )
        .is_ok()
    }

    #[test]
    fn default_floor_is_256_mib_or_one_percent() {
        assert_eq!(floor_bytes(None, 1000 * GIB), 256 * MIB);
        assert_eq!(floor_bytes(None, 10 * GIB), 10 * GIB / 100);
        assert_eq!(floor_bytes(None, 10 * MIB), 10 * MIB / 100);
        assert_eq!(floor_bytes(Some(5), 1000 * GIB), 5);
        assert_eq!(floor_bytes(Some(0), 1000 * GIB), 0);
    }

    #[test]
    fn below_the_floor_is_refused() {
        assert!(check(257 * MIB, 1000 * GIB, None));
        assert!(
            check(256 * MIB, 1000 * GIB, None),
            "the floor itself is fine"
        );
        assert!(!check(256 * MIB - 1, 1000 * GIB, None));
        // A 10 GiB disk keeps 1%, not 256 MiB.
        assert!(check(200 * MIB, 10 * GIB, None));
        assert!(!check(100 * MIB, 10 * GIB, None));
        assert!(!check(0, 10 * GIB, None));
    }

    #[test]
    fn configured_floor_wins_and_zero_turns_it_off() {
        assert!(!check(4 * GIB, 1000 * GIB, Some(5 * GIB)));
        assert!(check(5 * GIB, 1000 * GIB, Some(5 * GIB)));
        assert!(check(0, 1000 * GIB, Some(0)));
    }

    #[test]
    fn refusal_names_the_root_and_the_numbers() {
        let e = check_floor(
            FreeSpace {
                available: 1000,
                total: GIB,
            },
            Some(4096),
            Path::new("/srv/mirror"),
        )
        .unwrap_err();
        assert!(matches!(e, StorageError::InsufficientStorage(_)));
        let text = e.to_string();
        assert!(text.contains("/srv/mirror"), "{text}");
        assert!(text.contains("1000 bytes free"), "{text}");
        assert!(text.contains("4096"), "{text}");
    }

    #[test]
    fn statvfs_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = FreeSpace::of(dir.path()).unwrap();
        assert!(s.total > 0 && s.available <= s.total, "{s:?}");
    }
}
