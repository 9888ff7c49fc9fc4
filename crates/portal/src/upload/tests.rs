//! Hostile archives, built header by header (tar's own builder refuses the
//! paths an attacker would send).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tar::{EntryType, Header};

use super::*;

const DOCKERFILE: &str = "FROM quay.io/corral/base:43\nRUN echo hello > /hello\n";
const IMAGE_TOML: &str =
    "[image]\nsummary = \"Says hello\"\ntags = [\"1\"]\narchitectures = [\"x86_64\"]\n";
const HELP: &str = "# hello\n\nSays hello.\n";

/// One tar entry: path, type, data (or link target), mode.
struct E<'a> {
    path: &'a str,
    kind: EntryType,
    data: &'a [u8],
    link: &'a str,
    mode: u32,
    /// A size that differs from the data's, for lying headers.
    size: Option<u64>,
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        path,
        kind: EntryType::Regular,
        data,
        link: "",
        mode: 0o644,
        size: None,
    }
}

fn link<'a>(path: &'a str, kind: EntryType, target: &'a str) -> E<'a> {
    E {
        path,
        kind,
        data: b"",
        link: target,
        mode: 0o777,
        size: None,
    }
}

fn special(path: &str, kind: EntryType) -> E<'_> {
    E {
        path,
        kind,
        data: b"",
        link: "",
        mode: 0o644,
        size: None,
    }
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = Header::new_old();
        // Set the name bytes directly: set_path refuses `..` and `/x`.
        let name = &mut h.as_old_mut().name;
        name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        if !e.link.is_empty() {
            let l = &mut h.as_old_mut().linkname;
            l[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_size(e.size.unwrap_or(e.data.len() as u64));
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(bytes).unwrap();
    g.finish().unwrap()
}

fn good_folder() -> Vec<E<'static>> {
    vec![
        file("hello/Dockerfile", DOCKERFILE.as_bytes()),
        file("hello/image.toml", IMAGE_TOML.as_bytes()),
        file("hello/help.md", HELP.as_bytes()),
    ]
}

/// An unpacked archive and the parent directory it was unpacked in
/// (fields drop in order: the archive's directory, then the parent).
#[derive(Debug)]
struct Kept {
    u: Unpacked,
    _parent: tempfile::TempDir,
}

impl std::ops::Deref for Kept {
    type Target = Unpacked;
    fn deref(&self) -> &Unpacked {
        &self.u
    }
}

/// Unpacks into a fresh parent and checks that a refused archive leaves
/// nothing behind there.
fn try_unpack(bytes: &[u8], limits: &Limits) -> Result<Kept, UnpackError> {
    let parent = tempfile::tempdir().unwrap();
    match unpack(bytes, limits, parent.path()) {
        Ok(u) => {
            assert!(u.dir.path().starts_with(parent.path()));
            Ok(Kept { u, _parent: parent })
        }
        Err(e) => {
            let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
            assert!(left.is_empty(), "a refused archive left {left:?}");
            Err(e)
        }
    }
}

fn refused(entries: &[E<'_>]) -> (String, String) {
    match try_unpack(&tar_of(entries), &Limits::default()) {
        Err(UnpackError::Entry { path, why }) => (path, why),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(k) => panic!("accepted: {:?}", k.files),
    }
}

#[test]
fn a_library_folder_unpacks_and_validates_from_tar_and_tar_gz() {
    for bytes in [tar_of(&good_folder()), gzip(&tar_of(&good_folder()))] {
        let u = try_unpack(&bytes, &Limits::default()).unwrap();
        assert_eq!(
            u.files.keys().collect::<Vec<_>>(),
            ["hello/Dockerfile", "hello/help.md", "hello/image.toml"]
        );
        assert_eq!(
            u.total,
            (DOCKERFILE.len() + IMAGE_TOML.len() + HELP.len()) as u64
        );
        let f = library_folder(u.dir.path()).unwrap();
        assert_eq!(f.root, u.dir.path().join("hello"));
        assert_eq!(f.spec.image.summary, "Says hello");
        assert_eq!(f.dockerfile.instructions.len(), 2);
        assert_eq!(f.help, HELP);
    }
    // The folder's files at the top of the archive work too.
    let flat: Vec<E<'_>> = good_folder()
        .into_iter()
        .map(|mut e| {
            e.path = e.path.strip_prefix("hello/").unwrap();
            e
        })
        .collect();
    let u = try_unpack(&tar_of(&flat), &Limits::default()).unwrap();
    assert_eq!(library_folder(u.dir.path()).unwrap().root, u.dir.path());
}

#[test]
fn parent_and_absolute_paths_are_refused_by_name() {
    for bad in [
        "../evil",
        "hello/../../evil",
        "a/./../../b",
        "/etc/cron.d/evil",
        "./..",
    ] {
        let mut entries = good_folder();
        entries.push(file(bad, b"pwned"));
        let (path, why) = refused(&entries);
        assert_eq!(path, bad);
        assert!(
            why.contains("..") || why.contains("absolute"),
            "{bad}: {why}"
        );
    }
    // The message names the entry.
    let e = try_unpack(&tar_of(&[file("../x", b"")]), &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "archive entry \"../x\" is refused: paths with '..' are refused"
    );
}

#[test]
fn links_may_not_point_out() {
    for (kind, target) in [
        (EntryType::Symlink, "../../../etc/passwd"),
        (EntryType::Symlink, "/etc/passwd"),
        (EntryType::Symlink, "sub/../.."),
        (EntryType::Link, "/etc/passwd"),
        (EntryType::Link, "../outside"),
        (EntryType::Link, "hello/not-there"),
    ] {
        let mut entries = good_folder();
        entries.push(link("hello/l", kind, target));
        let (path, why) = refused(&entries);
        assert_eq!(path, "hello/l", "{target}");
        assert!(
            why.contains(target) || why.contains(".."),
            "{target}: {why}"
        );
    }
    // Down into the folder is fine, and a hard link to an unpacked file.
    let mut entries = good_folder();
    entries.push(link("hello/README.md", EntryType::Symlink, "help.md"));
    entries.push(link(
        "hello/Dockerfile.copy",
        EntryType::Link,
        "hello/Dockerfile",
    ));
    let u = try_unpack(&tar_of(&entries), &Limits::default()).unwrap();
    let d = u.dir.path().join("hello");
    assert_eq!(
        std::fs::read_link(d.join("README.md")).unwrap(),
        Path::new("help.md")
    );
    assert_eq!(
        std::fs::read_to_string(d.join("Dockerfile.copy")).unwrap(),
        DOCKERFILE
    );
    assert_eq!(u.files["hello/Dockerfile.copy"], DOCKERFILE.len() as u64);
    assert!(
        !u.files.contains_key("hello/README.md"),
        "symbolic links are not files"
    );
}

#[test]
fn nothing_is_written_through_a_link_or_twice() {
    // A link to a directory inside, then a file "under" it: refused, so a
    // chain of links can never be walked.
    let mut entries = good_folder();
    entries.push(link("hello/sub", EntryType::Symlink, "deeper"));
    entries.push(file("hello/sub/x", b"through the link"));
    let (path, why) = refused(&entries);
    assert_eq!(path, "hello/sub/x");
    assert!(why.contains("symbolic link \"hello/sub\""), "{why}");
    // The same path twice (a link, then a file over it).
    let mut entries = good_folder();
    entries.push(file("hello/Dockerfile", b"FROM evil"));
    assert_eq!(refused(&entries).1, "the path appears twice");
    let mut entries = vec![link("hello/help.md", EntryType::Symlink, "x")];
    entries.extend(good_folder());
    assert_eq!(
        refused(&entries),
        ("hello/help.md".into(), "the path appears twice".into())
    );
    // A file, then something under it.
    let (path, why) = refused(&[file("a", b""), file("a/b", b"")]);
    assert_eq!(path, "a/b");
    assert!(why.contains("under the file"), "{why}");
}

#[test]
fn devices_and_fifos_are_refused() {
    for (kind, word) in [
        (EntryType::Char, "devices"),
        (EntryType::Block, "devices"),
        (EntryType::Fifo, "FIFOs"),
    ] {
        let mut entries = good_folder();
        entries.push(special("hello/dev", kind));
        let (path, why) = refused(&entries);
        assert_eq!(path, "hello/dev");
        assert!(why.contains(word), "{why}");
    }
}

#[test]
fn modes_are_fixed_no_setuid() {
    let mut entries = good_folder();
    let mut run = file("hello/run.sh", b"#!/bin/sh\n");
    run.mode = 0o6755;
    entries.push(run);
    let mut w = file("hello/world-writable", b"");
    w.mode = 0o777 & !0o111;
    entries.push(w);
    let u = try_unpack(&tar_of(&entries), &Limits::default()).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(u.dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("hello/run.sh"), 0o755);
    assert_eq!(mode("hello/world-writable"), 0o644);
}

#[test]
fn size_and_count_limits_name_the_entry() {
    let limits = Limits {
        max_total: 1000,
        max_file: 600,
        max_entries: 5,
    };
    let big = vec![b'x'; 601];
    match try_unpack(&tar_of(&[file("big", &big)]), &limits) {
        Err(UnpackError::FileTooBig { path, limit: 600 }) => assert_eq!(path, "big"),
        other => panic!("{other:?}"),
    }
    let part = vec![b'x'; 501];
    match try_unpack(
        &tar_of(&[file("a", &part), file("b", &part), file("c", &[])]),
        &limits,
    ) {
        Err(UnpackError::TooBig { path, limit: 1000 }) => assert_eq!(path, "b"),
        other => panic!("{other:?}"),
    }
    let many: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
    let entries: Vec<E<'_>> = many.iter().map(|n| file(n, b"")).collect();
    assert!(matches!(
        try_unpack(&tar_of(&entries), &limits),
        Err(UnpackError::TooManyEntries(5))
    ));
    // A header that claims fewer bytes than it carries cannot smuggle more
    // than the limit: the data past the claim is read as the next header.
    let mut liar = file("liar", &big);
    liar.size = Some(10);
    assert!(try_unpack(&tar_of(&[liar]), &limits).is_err());
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of zeros compresses to ~64 KiB; with a 1 MiB limit the
    // unpacking stops at the header, before reading it.
    let zeros = vec![0u8; 64 << 20];
    let bomb = gzip(&tar_of(&[file("zeros", &zeros)]));
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let limits = Limits {
        max_total: 1 << 20,
        max_file: u64::MAX / 2,
        max_entries: 10,
    };
    let start = std::time::Instant::now();
    match try_unpack(&bomb, &limits) {
        Err(UnpackError::TooBig { path, .. }) => assert_eq!(path, "zeros"),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed().as_secs() < 10);
    // A directory entry claiming 64 MiB of data: nothing is written, but
    // the data would be read to skip it; the stream's cap stops that.
    let mut dir = special("d", EntryType::Directory);
    dir.data = &zeros;
    let bomb = gzip(&tar_of(&[dir]));
    match try_unpack(&bomb, &limits) {
        Err(UnpackError::TooLong { cap }) => assert!(cap < 2 << 20, "{cap}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn what_is_not_a_library_folder_is_named() {
    let unpack_ok = |entries: &[E<'_>]| try_unpack(&tar_of(entries), &Limits::default()).unwrap();
    let without = |name: &str| -> Vec<E<'static>> {
        good_folder()
            .into_iter()
            .filter(|e| !e.path.ends_with(name))
            .collect()
    };
    for missing in ["Dockerfile", "image.toml", "help.md"] {
        let u = unpack_ok(&without(missing));
        match library_folder(u.dir.path()) {
            Err(FolderError::Missing(m)) => assert_eq!(m, missing),
            other => panic!("{other:?}"),
        }
    }
    let mut entries = without("image.toml");
    entries.push(file(
        "hello/image.toml",
        b"[image]\nsummary = \"x\"\ntags = [\"latest\"]\narchitectures = [\"x86_64\"]\n",
    ));
    let e = library_folder(unpack_ok(&entries).dir.path()).unwrap_err();
    assert!(e.to_string().contains("latest"), "{e}");
    let mut entries = without("image.toml");
    entries.push(file(
        "hello/image.toml",
        b"[image]\nsummary = \"x\"\nsize = 1\n",
    ));
    let e = library_folder(unpack_ok(&entries).dir.path()).unwrap_err();
    assert!(e.to_string().starts_with("image.toml:3:1:"), "{e}");
    let mut entries = without("Dockerfile");
    entries.push(file("hello/Dockerfile", b"RUN echo no base\n"));
    assert!(matches!(
        library_folder(unpack_ok(&entries).dir.path()),
        Err(FolderError::NoFrom)
    ));
    let mut entries = without("Dockerfile");
    entries.push(file("hello/Dockerfile", b"FROM x\nRUN \xff\n"));
    let e = library_folder(unpack_ok(&entries).dir.path()).unwrap_err();
    assert!(e.to_string().contains("UTF-8"), "{e}");
    let mut entries = without("help.md");
    entries.push(link("hello/help.md", EntryType::Symlink, "Dockerfile"));
    assert!(matches!(
        library_folder(unpack_ok(&entries).dir.path()),
        Err(FolderError::NotAFile("help.md"))
    ));
    let mut entries = without("help.md");
    entries.push(file("hello/help.md", b"  \n"));
    assert!(matches!(
        library_folder(unpack_ok(&entries).dir.path()),
        Err(FolderError::Help(_))
    ));
}

mod property {
    //! Whatever the archive, nothing lands outside the folder: random
    //! entries with `..`, `.`, empty and absolute components, and links of
    //! every kind pointing anywhere.

    use super::*;
    use proptest::prelude::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    /// Any path: `..`, `.`, empty and absolute components included.
    fn path() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            prop::collection::vec(prop::sample::select(vec!["a", "b", "..", ".", ""]), 1..4),
        )
            .prop_map(|(absolute, parts)| {
                let p = parts.join("/");
                if absolute {
                    format!("/{p}")
                } else {
                    p
                }
            })
    }

    /// Mostly paths the unpacker accepts, so that archives get far enough
    /// for their links to matter; sometimes any path.
    fn entry_path() -> impl Strategy<Value = String> {
        let benign = prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..3)
            .prop_map(|parts| parts.join("/"));
        prop_oneof![4 => benign, 1 => path()]
    }

    fn kind() -> impl Strategy<Value = EntryType> {
        prop::sample::select(vec![
            EntryType::Regular,
            EntryType::Directory,
            EntryType::Symlink,
            EntryType::Link,
        ])
    }

    /// Every path under `dir`, without following links.
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.clone());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(&p, out);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn nothing_lands_outside_the_folder(
            entries in prop::collection::vec((entry_path(), kind(), path()), 1..6)
        ) {
            let root = tempfile::tempdir().unwrap();
            let outside = root.path().join("outside");
            fs::create_dir(&outside).unwrap();
            fs::write(outside.join("secret"), "s").unwrap();
            let uploads = root.path().join("uploads");
            fs::create_dir(&uploads).unwrap();
            let es: Vec<E<'_>> = entries
                .iter()
                .map(|(p, k, t)| E {
                    path: p,
                    kind: *k,
                    data: b"data",
                    link: if matches!(k, EntryType::Symlink | EntryType::Link) { t } else { "" },
                    mode: 0o644,
                    size: None,
                })
                .collect();
            let result = unpack(&tar_of(&es)[..], &Limits::default(), &uploads);
            // The sibling directory is untouched: same file, same content,
            // no new hard link to it.
            let names: Vec<_> = fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
            prop_assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
            prop_assert_eq!(fs::read_to_string(outside.join("secret")).unwrap(), "s");
            prop_assert_eq!(fs::metadata(outside.join("secret")).unwrap().nlink(), 1);
            let mut top: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            top.sort();
            prop_assert_eq!(top, vec![std::ffi::OsString::from("outside"), std::ffi::OsString::from("uploads")]);
            match result {
                Ok(u) => {
                    let base = fs::canonicalize(u.dir.path()).unwrap();
                    let mut all = Vec::new();
                    walk(u.dir.path(), &mut all);
                    for p in all {
                        // Every link resolves inside the folder (or nowhere).
                        if let Ok(real) = fs::canonicalize(&p) {
                            prop_assert!(real.starts_with(&base), "{} -> {}", p.display(), real.display());
                        }
                    }
                }
                Err(_) => {
                    prop_assert_eq!(fs::read_dir(&uploads).unwrap().count(), 0);
                }
            }
        }
    }
}

#[test]
fn every_folder_of_the_official_library_passes_as_an_upload() {
    // The official library is the format's reference: each of its folders,
    // packed as a contributor would (`tar czf NAME.tar.gz NAME/`), must
    // unpack and validate.
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dockerfiles");
    let mut checked = 0;
    for entry in std::fs::read_dir(&library).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("Dockerfile").is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        b.append_dir_all(&name, &dir).unwrap();
        let bytes = b.into_inner().unwrap().finish().unwrap();
        let u = try_unpack(&bytes, &Limits::default()).unwrap();
        let f = library_folder(u.dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(f.root, u.dir.path().join(&name));
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} library folders found");
}
