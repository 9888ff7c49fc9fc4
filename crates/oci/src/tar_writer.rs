//! Streams entries (headers, then content in fixed-size chunks) into any writer.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::tar_entry::EntryHeader;
use crate::ustar::{self, BLOCK};
use crate::OciError;

/// Bytes read from a file per write into the stream; memory stays flat.
const COPY_CHUNK: usize = 256 * 1024;

/// A minimal, deterministic ustar+PAX writer.
pub(crate) struct TarWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

/// Where a write error from the output goes; the caller knows the blob path.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// Reading the source failed; already names the source path.
    Source(OciError),
    /// Writing the stream failed.
    Output(io::Error),
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        TarWriter {
            out,
            buf: vec![0; COPY_CHUNK],
        }
    }

    /// Appends an entry; for regular files `content` must yield exactly
    /// `header.data_size()` bytes (extra bytes are ignored, fewer is an error).
    pub(crate) fn append(
        &mut self,
        header: &EntryHeader,
        content: Option<(&mut dyn Read, &Path)>,
    ) -> Result<(), AppendError> {
        self.out
            .write_all(&header.encode())
            .map_err(AppendError::Output)?;
        let size = header.data_size();
        if size == 0 {
            return Ok(());
        }
        let Some((reader, path)) = content else {
            return Err(AppendError::Source(OciError::FileShrank {
                path: path_lossy(&header.path),
                expected: size,
                read: 0,
            }));
        };
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(self.buf.len() as u64) as usize;
            let n = match reader.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(AppendError::Source(OciError::FileShrank {
                        path: path.to_owned(),
                        expected: size,
                        read: size - remaining,
                    }))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(AppendError::Source(OciError::Read {
                        path: path.to_owned(),
                        source,
                    }))
                }
            };
            self.out
                .write_all(&self.buf[..n])
                .map_err(AppendError::Output)?;
            remaining -= n as u64;
        }
        let pad = ustar::padding(size);
        self.out
            .write_all(&[0u8; BLOCK][..pad])
            .map_err(AppendError::Output)?;
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

fn path_lossy(bytes: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar_entry::EntryKind;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    struct Spec {
        path: Vec<u8>,
        kind: u8,
        data: Vec<u8>,
        link: Vec<u8>,
        mode: u32,
        uid: u64,
        mtime: i64,
        xattr: Option<Vec<u8>>,
    }

    fn name_segment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a-z0-9._-]{1,20}".prop_map(String::into_bytes),
            "[a-zé日本-]{1,60}".prop_map(String::into_bytes),
            proptest::collection::vec(1u8..=255, 1..120)
                // No '\n': the tar crate's PAX parser splits records on newlines.
                .prop_map(|v| v
                    .into_iter()
                    .map(|b| if b == b'/' || b == b'\n' { b'_' } else { b })
                    .collect()),
        ]
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            proptest::collection::vec(name_segment(), 1..5),
            0u8..4,
            proptest::collection::vec(any::<u8>(), 0..3000),
            name_segment(),
            0u32..0o10000,
            prop_oneof![Just(0u64), 0u64..2_000_000],
            prop_oneof![Just(0i64), 0i64..8_000_000_000],
            proptest::option::of(proptest::collection::vec(
                any::<u8>().prop_filter("newline", |b| *b != b'\n'),
                0..300,
            )),
        )
            .prop_map(|(segs, kind, data, link, mode, uid, mtime, xattr)| Spec {
                path: segs.join(&b'/'),
                kind,
                data,
                link,
                mode,
                uid,
                mtime,
                xattr,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the names, sizes and metadata, the tar crate reads back what we wrote.
        #[test]
        fn random_entries_round_trip(specs in proptest::collection::vec(spec(), 1..12)) {
            // Unique paths: a reader would otherwise see a later entry replace an earlier one.
            let specs: BTreeMap<Vec<u8>, Spec> =
                specs.into_iter().map(|s| (s.path.clone(), s)).collect();
            let mut writer = TarWriter::new(Vec::new());
            let mut headers = Vec::new();
            for spec in specs.values() {
                let (kind, path) = match spec.kind {
                    0 => (EntryKind::File { size: spec.data.len() as u64 }, spec.path.clone()),
                    1 => (EntryKind::Dir, [&spec.path[..], b"/"].concat()),
                    2 => (EntryKind::Symlink { target: spec.link.clone() }, spec.path.clone()),
                    _ => (EntryKind::Fifo, spec.path.clone()),
                };
                let header = EntryHeader {
                    path,
                    kind,
                    mode: spec.mode,
                    uid: spec.uid,
                    gid: spec.uid / 2,
                    mtime: spec.mtime,
                    xattrs: spec.xattr.iter().map(|v| (b"user.test".to_vec(), v.clone())).collect(),
                };
                let mut data = &spec.data[..];
                writer.append(&header, Some((&mut data, Path::new("x")))).unwrap();
                headers.push((header, spec.data.clone()));
            }
            let bytes = writer.finish().unwrap();
            prop_assert_eq!(bytes.len() % BLOCK, 0);

            let mut archive = tar::Archive::new(&bytes[..]);
            let mut read = 0;
            for (entry, (header, data)) in archive.entries().unwrap().zip(&headers) {
                let mut entry = entry.unwrap();
                read += 1;
                let path = entry.path_bytes().into_owned();
                prop_assert_eq!(&path, &header.path);
                prop_assert_eq!(entry.header().mode().unwrap(), header.mode);
                prop_assert_eq!(entry.header().uid().unwrap(), header.uid);
                prop_assert_eq!(entry.header().gid().unwrap(), header.gid);
                prop_assert_eq!(entry.header().mtime().unwrap() as i64, header.mtime);
                if let EntryKind::Symlink { target } = &header.kind {
                    let link = entry.link_name_bytes().unwrap().into_owned();
                    prop_assert_eq!(&link, target);
                }
                let xattrs: Vec<(Vec<u8>, Vec<u8>)> = match entry.pax_extensions().unwrap() {
                    Some(exts) => exts
                        .map(|e| e.unwrap())
                        .filter_map(|e| {
                            e.key_bytes()
                                .strip_prefix(b"SCHILY.xattr.")
                                .map(|k| (k.to_vec(), e.value_bytes().to_vec()))
                        })
                        .collect(),
                    None => vec![],
                };
                prop_assert_eq!(&xattrs, &header.xattrs);
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                if let EntryKind::File { .. } = header.kind {
                    prop_assert_eq!(&content, data);
                } else {
                    prop_assert!(content.is_empty());
                }
            }
            prop_assert_eq!(read, headers.len());
        }
    }

    #[test]
    fn short_content_is_an_error_naming_the_file() {
        let header = EntryHeader {
            path: b"f".to_vec(),
            kind: EntryKind::File { size: 10 },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: vec![],
        };
        let mut writer = TarWriter::new(Vec::new());
        let mut data = &b"abc"[..];
        let err = writer
            .append(&header, Some((&mut data, Path::new("/src/f"))))
            .unwrap_err();
        match err {
            AppendError::Source(e) => assert!(e.to_string().contains("/src/f"), "{e}"),
            AppendError::Output(e) => panic!("{e}"),
        }
    }
}
