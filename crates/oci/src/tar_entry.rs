//! One tar entry's metadata and its deterministic encoding as an optional PAX
//! `x` header followed by a ustar header.

use crate::pax::PaxRecords;
use crate::ustar::{self, UstarHeader, BLOCK, MAX_OCTAL_12, MAX_OCTAL_8};

/// What kind of file an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File {
        size: u64,
    },
    Dir,
    Symlink {
        target: Vec<u8>,
    },
    /// Type 1: a hard link to an earlier entry's path.
    HardLink {
        target: Vec<u8>,
    },
    CharDevice {
        major: u64,
        minor: u64,
    },
    BlockDevice {
        major: u64,
        minor: u64,
    },
    Fifo,
}

/// Metadata of one entry. `path` is relative (no leading `/` or `./`) and ends
/// with `/` for directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (07777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Whole seconds; sub-second times are dropped for reproducibility.
    pub mtime: i64,
    /// Sorted by name, written as `SCHILY.xattr.<name>` records.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The name a PAX header entry carries; readers that honour PAX ignore it.
const PAX_HEADER_NAME: &[u8] = b"././@PaxHeader";

impl EntryHeader {
    /// Number of content bytes that follow the header.
    pub(crate) fn data_size(&self) -> u64 {
        match self.kind {
            EntryKind::File { size } => size,
            _ => 0,
        }
    }

    /// Header blocks for this entry: `[pax header, pax data..., ustar header]`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut pax = PaxRecords::default();
        let mut binary = false;

        let typeflag = match self.kind {
            EntryKind::File { .. } => b'0',
            EntryKind::HardLink { .. } => b'1',
            EntryKind::Symlink { .. } => b'2',
            EntryKind::CharDevice { .. } => b'3',
            EntryKind::BlockDevice { .. } => b'4',
            EntryKind::Dir => b'5',
            EntryKind::Fifo => b'6',
        };
        let mut header = UstarHeader::new(typeflag);

        match ustar::split_path(&self.path).filter(|_| !needs_pax_string(&self.path)) {
            Some((prefix, name)) => {
                header.set_prefix(prefix);
                header.set_name(name);
            }
            None => {
                // Readers that ignore PAX see a truncated name; all others the full path.
                header.set_name(&self.path);
                binary |= std::str::from_utf8(&self.path).is_err();
                pax.insert("path", self.path.clone());
            }
        }

        if let EntryKind::Symlink { target } | EntryKind::HardLink { target } = &self.kind {
            if target.len() <= ustar::NAME_LEN && !needs_pax_string(target) {
                header.set_linkname(target);
            } else {
                header.set_linkname(target);
                binary |= std::str::from_utf8(target).is_err();
                pax.insert("linkpath", target.clone());
            }
        }

        header.set_mode(self.mode);
        set_number(
            &mut header,
            &mut pax,
            "uid",
            self.uid,
            MAX_OCTAL_8,
            UstarHeader::set_uid,
        );
        set_number(
            &mut header,
            &mut pax,
            "gid",
            self.gid,
            MAX_OCTAL_8,
            UstarHeader::set_gid,
        );
        set_number(
            &mut header,
            &mut pax,
            "size",
            self.data_size(),
            MAX_OCTAL_12,
            UstarHeader::set_size,
        );
        match u64::try_from(self.mtime) {
            Ok(mtime) if mtime <= MAX_OCTAL_12 => header.set_mtime(mtime),
            _ => pax.insert("mtime", self.mtime.to_string()),
        }

        if let EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } =
            self.kind
        {
            // Linux majors are 12 bits and minors 20 bits: both fit 7 octal digits.
            header.set_device(major.min(MAX_OCTAL_8), minor.min(MAX_OCTAL_8));
        }

        for (name, value) in &self.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax.insert(key, value.clone());
        }
        if binary {
            // Non-UTF-8 names are stored as raw bytes (POSIX hdrcharset).
            pax.insert("hdrcharset", "BINARY");
        }

        let mut out = Vec::with_capacity(3 * BLOCK);
        if !pax.is_empty() {
            let body = pax.encode();
            let mut pax_header = UstarHeader::new(b'x');
            pax_header.set_name(PAX_HEADER_NAME);
            pax_header.set_mode(0o644);
            pax_header.set_size(body.len() as u64);
            out.extend_from_slice(&pax_header.finish());
            out.extend_from_slice(&body);
            out.resize(out.len() + ustar::padding(body.len() as u64), 0);
        }
        out.extend_from_slice(&header.finish());
        out
    }
}

/// Valid UTF-8 that is not ASCII goes to a PAX record (as UTF-8, per POSIX).
/// ASCII and non-UTF-8 bytes that fit stay in the ustar fields as raw bytes.
fn needs_pax_string(bytes: &[u8]) -> bool {
    !bytes.is_ascii() && std::str::from_utf8(bytes).is_ok()
}

fn set_number(
    header: &mut UstarHeader,
    pax: &mut PaxRecords,
    key: &str,
    value: u64,
    max: u64,
    set: fn(&mut UstarHeader, u64),
) {
    if value <= max {
        set(header, value);
    } else {
        // The ustar field stays 0; the PAX record wins for every reader that honours it.
        pax.insert(key, value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &[u8], size: u64) -> EntryHeader {
        EntryHeader {
            path: path.to_vec(),
            kind: EntryKind::File { size },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            xattrs: vec![],
        }
    }

    fn pax_text(encoded: &[u8]) -> Option<Vec<u8>> {
        if encoded[156] != b'x' {
            return None;
        }
        let header = tar::Header::from_byte_slice(&encoded[..BLOCK]);
        let size = header.size().unwrap() as usize;
        Some(encoded[BLOCK..BLOCK + size].to_vec())
    }

    #[test]
    fn plain_entry_is_one_block() {
        let enc = file(b"etc/passwd", 10).encode();
        assert_eq!(enc.len(), BLOCK);
    }

    #[test]
    fn huge_file_size_goes_to_pax() {
        let size = 9 * 1024 * 1024 * 1024u64;
        let enc = file(b"big", size).encode();
        let pax = pax_text(&enc).unwrap();
        assert_eq!(pax, format!("19 size={size}\n").into_bytes());
        let ustar = tar::Header::from_byte_slice(&enc[enc.len() - BLOCK..]);
        assert_eq!(ustar.size().unwrap(), 0);
        // Just below the limit stays in the ustar field.
        assert_eq!(file(b"big", MAX_OCTAL_12).encode().len(), BLOCK);
    }

    #[test]
    fn utf8_names_go_to_pax_and_binary_names_stay_raw() {
        let enc = file("café/naïve".as_bytes(), 0).encode();
        let pax = pax_text(&enc).unwrap();
        assert_eq!(pax, "21 path=café/naïve\n".as_bytes());

        let raw = b"bin\xff\xfe".to_vec();
        let enc = file(&raw, 0).encode();
        assert_eq!(enc.len(), BLOCK);
        assert_eq!(&enc[..5], &raw[..]);

        let mut long_raw = vec![b'a'; 120];
        long_raw.push(0xff);
        let enc = file(&long_raw, 0).encode();
        let pax = pax_text(&enc).unwrap();
        assert!(pax.starts_with(b"21 hdrcharset=BINARY\n"));
    }

    #[test]
    fn xattrs_sorted_after_core_keys() {
        let mut e = file(b"f", 0);
        e.xattrs = vec![
            (b"security.capability".to_vec(), vec![1, 0, 0, 2]),
            (b"user.foo".to_vec(), b"bar".to_vec()),
        ];
        let pax = pax_text(&e.encode()).unwrap();
        let text = String::from_utf8_lossy(&pax);
        let first = text.find("security.capability").unwrap();
        let second = text.find("user.foo").unwrap();
        assert!(first < second);
    }

    #[test]
    fn encoding_is_deterministic() {
        let mut e = file(&vec![b'z'; 300], 12);
        e.xattrs = vec![(b"user.a".to_vec(), b"1".to_vec())];
        assert_eq!(e.encode(), e.clone().encode());
    }
}
