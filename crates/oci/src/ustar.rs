//! The 512-byte ustar header block: field layout, octal numbers, checksum.

pub(crate) const BLOCK: usize = 512;

const NAME: std::ops::Range<usize> = 0..100;
const MODE: std::ops::Range<usize> = 100..108;
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const SIZE: std::ops::Range<usize> = 124..136;
const MTIME: std::ops::Range<usize> = 136..148;
const CHKSUM: std::ops::Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const LINKNAME: std::ops::Range<usize> = 157..257;
const MAGIC: std::ops::Range<usize> = 257..263;
const VERSION: std::ops::Range<usize> = 263..265;
const DEVMAJOR: std::ops::Range<usize> = 329..337;
const DEVMINOR: std::ops::Range<usize> = 337..345;
const PREFIX: std::ops::Range<usize> = 345..500;

pub(crate) const NAME_LEN: usize = 100;
pub(crate) const PREFIX_LEN: usize = 155;

/// Largest value of an 8-byte octal field (7 digits + NUL).
pub(crate) const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal field (11 digits + NUL).
pub(crate) const MAX_OCTAL_12: u64 = 0o77777777777;

/// A ustar header block under construction. Uname/gname stay empty: layers
/// carry numeric ids only.
pub(crate) struct UstarHeader {
    block: [u8; BLOCK],
}

impl UstarHeader {
    pub(crate) fn new(typeflag: u8) -> Self {
        let mut block = [0u8; BLOCK];
        block[TYPEFLAG] = typeflag;
        block[MAGIC].copy_from_slice(b"ustar\0");
        block[VERSION].copy_from_slice(b"00");
        let mut header = UstarHeader { block };
        for field in [MODE, UID, GID, SIZE, MTIME] {
            header.set_octal(field, 0);
        }
        header
    }

    /// Copies at most the field's length of bytes (no terminator needed when full).
    pub(crate) fn set_name(&mut self, name: &[u8]) {
        set_bytes(&mut self.block[NAME], name);
    }

    pub(crate) fn set_prefix(&mut self, prefix: &[u8]) {
        set_bytes(&mut self.block[PREFIX], prefix);
    }

    pub(crate) fn set_linkname(&mut self, link: &[u8]) {
        set_bytes(&mut self.block[LINKNAME], link);
    }

    pub(crate) fn set_mode(&mut self, mode: u32) {
        self.set_octal(MODE, u64::from(mode & 0o7777));
    }

    pub(crate) fn set_uid(&mut self, v: u64) {
        self.set_octal(UID, v);
    }

    pub(crate) fn set_gid(&mut self, v: u64) {
        self.set_octal(GID, v);
    }

    pub(crate) fn set_size(&mut self, v: u64) {
        self.set_octal(SIZE, v);
    }

    pub(crate) fn set_mtime(&mut self, v: u64) {
        self.set_octal(MTIME, v);
    }

    pub(crate) fn set_device(&mut self, major: u64, minor: u64) {
        self.set_octal(DEVMAJOR, major);
        self.set_octal(DEVMINOR, minor);
    }

    /// Zero-padded octal, NUL-terminated; callers check the range first (values
    /// that do not fit go to PAX records and the field stays 0).
    fn set_octal(&mut self, field: std::ops::Range<usize>, value: u64) {
        let digits = field.len() - 1;
        debug_assert!(value < 8u64.pow(digits as u32), "octal field overflow");
        let text = format!("{value:0digits$o}");
        self.block[field.start..field.start + digits].copy_from_slice(text.as_bytes());
        self.block[field.end - 1] = 0;
    }

    /// Fills in the checksum and returns the finished block.
    pub(crate) fn finish(mut self) -> [u8; BLOCK] {
        self.block[CHKSUM].fill(b' ');
        let sum: u32 = self.block.iter().map(|&b| u32::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        self.block[CHKSUM].copy_from_slice(text.as_bytes());
        self.block
    }
}

fn set_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Splits a path into ustar (prefix, name) if it fits: the name part at most
/// 100 bytes, the prefix at most 155, split at a `/`.
pub(crate) fn split_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= NAME_LEN {
        return Some((&[], path));
    }
    if path.len() > PREFIX_LEN + 1 + NAME_LEN {
        return None;
    }
    // The longest prefix that fits leaves the shortest name.
    let limit = path.len().min(PREFIX_LEN + 1);
    let slash = path[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, name) = (&path[..slash], &path[slash + 1..]);
    if prefix.is_empty() || name.is_empty() || name.len() > NAME_LEN {
        return None;
    }
    Some((prefix, name))
}

/// Padding that brings `len` to a whole number of blocks.
pub(crate) fn padding(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 {
        0
    } else {
        BLOCK - rem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_definition() {
        let mut h = UstarHeader::new(b'0');
        h.set_name(b"hello.txt");
        h.set_mode(0o644);
        h.set_size(5);
        h.set_mtime(1_700_000_000);
        let block = h.finish();
        let stored = std::str::from_utf8(&block[148..154]).unwrap();
        let stored = u32::from_str_radix(stored, 8).unwrap();
        let mut copy = block;
        copy[148..156].fill(b' ');
        let sum: u32 = copy.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(stored, sum);
        assert_eq!(&block[154..156], b"\0 ");
        // The tar crate agrees.
        let header = tar::Header::from_byte_slice(&block);
        assert_eq!(header.cksum().unwrap(), sum);
        assert_eq!(header.size().unwrap(), 5);
        assert_eq!(header.mode().unwrap(), 0o644);
        assert_eq!(header.path_bytes().as_ref(), b"hello.txt");
    }

    #[test]
    fn split_path_boundaries() {
        let short = vec![b'a'; 100];
        assert_eq!(split_path(&short), Some((&[][..], &short[..])));
        let mut long = vec![b'p'; 155];
        long.push(b'/');
        long.extend(vec![b'n'; 100]);
        let (prefix, name) = split_path(&long).unwrap();
        assert_eq!((prefix.len(), name.len()), (155, 100));
        long.push(b'n');
        assert_eq!(split_path(&long), None);
        assert_eq!(split_path(&[b'x'; 101]), None);
        // A directory's trailing slash is never the split point.
        let mut dir = vec![b'd'; 101];
        dir.push(b'/');
        assert_eq!(split_path(&dir), None);
    }

    #[test]
    fn padding_to_blocks() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}
