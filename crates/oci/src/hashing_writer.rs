//! A writer that computes the sha256 and length of everything passing through,
//! so digests come from the same single pass that writes the data.

use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Returns the inner writer, `"sha256:<hex>"` and the byte count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `"sha256:<hex>"` of a byte slice.
pub(crate) fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The hex sha256 of a file's content, read in 1 MiB pieces (for files
/// published with a `.sha256` beside them, such as disk images).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `sha256:HEX` over `parts`, each prefixed by its length (8 bytes,
/// little-endian) so that where one part ends counts: `["ab", "c"]` and
/// `["a", "bc"]` differ. Inputs hashed this way (a release's recorded
/// inputs, a repository's metadata) keep their hash across versions.
pub fn sha256_parts<I, T>(parts: I) -> String
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut h = Sha256::new();
    for p in parts {
        let p = p.as_ref();
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_boundaries_count() {
        assert_ne!(sha256_parts(["ab", "c"]), sha256_parts(["a", "bc"]));
        // one empty part: sha256 of eight zero bytes
        assert_eq!(
            sha256_parts([""]),
            format!("sha256:{}", hex::encode(Sha256::digest([0u8; 8])))
        );
    }

    #[test]
    fn digest_of_abc() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        let (inner, digest, len) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(len, 3);
        assert_eq!(
            digest,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_digest(b"abc"), digest);
    }
}
