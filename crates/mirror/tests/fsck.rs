//! fsck against stores damaged by hand, on both backends (a temp directory,
//! and the S3 backend over object_store's in-memory store): every kind of
//! damage is named, garbage alone is not damage, `--repair` removes exactly
//! the garbage and never a referenced blob.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corral_mirror::fsck::{self, FsckOptions, FsckReport};
use corral_mirror::name::{Digest, RepoName};
use corral_mirror::storage::{FsStorage, S3Storage, Storage};
use futures_util::StreamExt;
use object_store::memory::InMemory;
use object_store::ObjectStore;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Direct access under the store's API, to plant damage.
enum Raw {
    Fs(PathBuf),
    S3(Arc<InMemory>),
}

impl Raw {
    fn key(rel: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("mirror/{rel}"))
    }

    async fn put(&self, rel: &str, data: &[u8]) {
        match self {
            Raw::Fs(root) => {
                let p = root.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, data).unwrap();
            }
            Raw::S3(m) => {
                m.put(&Self::key(rel), Bytes::copy_from_slice(data).into())
                    .await
                    .unwrap();
            }
        }
    }

    async fn delete(&self, rel: &str) {
        match self {
            Raw::Fs(root) => std::fs::remove_file(root.join(rel)).unwrap(),
            Raw::S3(m) => m.delete(&Self::key(rel)).await.unwrap(),
        }
    }

    async fn exists(&self, rel: &str) -> bool {
        match self {
            Raw::Fs(root) => root.join(rel).exists(),
            Raw::S3(m) => m.head(&Self::key(rel)).await.is_ok(),
        }
    }

    fn blob(&self, d: &Digest) -> String {
        match self {
            Raw::Fs(_) => format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex()),
            Raw::S3(_) => format!("blobs/sha256/{}", d.hex()),
        }
    }

    /// An upload session without the record naming its repository.
    async fn broken_session(&self) -> String {
        let id = "0123456789abcdef0123456789abcdef".to_string();
        match self {
            Raw::Fs(_) => self.put(&format!("uploads/{id}/data"), b"partial").await,
            Raw::S3(_) => self.put(&format!("uploads/{id}/tail-0"), b"partial").await,
        }
        id
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Box<dyn Storage>,
    raw: Raw,
}

fn fs_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStorage::open(dir.path()).unwrap();
    let raw = Raw::Fs(dir.path().to_path_buf());
    Fixture {
        store: Box::new(store),
        raw,
        _dir: dir,
    }
}

fn s3_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(InMemory::new());
    let store = S3Storage::new(mem.clone(), "mirror", dir.path().join("scratch")).unwrap();
    Fixture {
        store: Box::new(store),
        raw: Raw::S3(mem),
        _dir: dir,
    }
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn manifest(config: &Digest, layers: &[&Digest], subject: Option<&Digest>) -> Bytes {
    let layers: Vec<_> = layers
        .iter()
        .map(|d| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": 1}))
        .collect();
    let mut v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 1},
        "layers": layers,
    });
    if let Some(s) = subject {
        v["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": 1});
    }
    serde_json::to_vec(&v).unwrap().into()
}

/// Pushes a blob and links it in `r`, as an upload does.
async fn blob(st: &dyn Storage, r: &RepoName, data: &'static [u8]) -> Digest {
    let d = st.put_blob(Bytes::from_static(data)).await.unwrap();
    st.link_blob(r, &d).await.unwrap();
    d
}

/// A whole image: config and layer linked, manifest tagged.
async fn image(st: &dyn Storage, r: &RepoName, tag: &str, seed: &'static [u8]) -> Vec<Digest> {
    let config = blob(st, r, seed).await;
    let layer = st
        .put_blob(Bytes::from([seed, b" layer"].concat()))
        .await
        .unwrap();
    st.link_blob(r, &layer).await.unwrap();
    let m = st
        .put_manifest(r, OCI_MANIFEST, manifest(&config, &[&layer], None))
        .await
        .unwrap();
    st.set_tag(r, tag, &m).await.unwrap();
    vec![config, layer, m]
}

/// What a session-and-temp-file-only store holds: not damage.
async fn plant_garbage(f: &Fixture) -> (String, String) {
    let st = f.store.as_ref();
    let id = st.upload_start(&repo("app")).await.unwrap();
    st.upload_append(
        &id,
        Some(0),
        futures_util::stream::iter([Ok(Bytes::from_static(b"half"))]).boxed(),
        1 << 20,
    )
    .await
    .unwrap()
    .unwrap();
    let broken = f.raw.broken_session().await;
    // A pull-through download interrupted before its commit.
    let staged = st.stage_blob().await.unwrap();
    drop(staged.file);
    std::fs::write(&staged.path, b"half a download").unwrap();
    (id, broken)
}

async fn all_blobs(st: &dyn Storage) -> BTreeSet<Digest> {
    st.list_blobs()
        .await
        .unwrap()
        .into_iter()
        .map(|(d, _)| d)
        .collect()
}

fn now() -> FsckOptions {
    FsckOptions {
        idle: Duration::ZERO,
        ..Default::default()
    }
}

#[track_caller]
fn assert_has<T: std::fmt::Debug>(items: &[T], what: &str, pred: impl Fn(&T) -> bool) {
    assert!(items.iter().any(pred), "{what} not in {items:#?}");
}

/// Plants every kind of damage; returns the digests that must survive repair.
struct Planted {
    corrupt: Digest,
    corrupt_actual: Digest,
    gone_manifest: Digest,
    garbled: Digest,
    missing_layer: Digest,
    unlinked_layer: Digest,
    missing_child: Digest,
    missing_subject: Digest,
    referrer: Digest,
    untyped: Digest,
    orphan: Digest,
}

async fn plant_damage(f: &Fixture) -> Planted {
    let st = f.store.as_ref();
    let app = repo("app");
    image(st, &app, "good", b"good").await;

    // Corrupt: a layer whose bytes rotted.
    let corrupt = blob(st, &app, b"will rot").await;
    let cfg = blob(st, &app, b"cfg").await;
    let m = st
        .put_manifest(&app, OCI_MANIFEST, manifest(&cfg, &[&corrupt], None))
        .await
        .unwrap();
    st.set_tag(&app, "rotten", &m).await.unwrap();
    f.raw.put(&f.raw.blob(&corrupt), b"bit rot!").await;

    // Tags that do not resolve.
    st.set_tag(&app, "nolink", &Digest::of_bytes(b"never pushed"))
        .await
        .unwrap();
    let gone_manifest = st
        .put_manifest(&app, OCI_MANIFEST, manifest(&cfg, &[], None))
        .await
        .unwrap();
    st.set_tag(&app, "gone", &gone_manifest).await.unwrap();
    f.raw.delete(&f.raw.blob(&gone_manifest)).await;

    // A manifest that does not parse.
    let garbled = st
        .put_manifest(&app, OCI_MANIFEST, Bytes::from_static(b"{not json"))
        .await
        .unwrap();

    // References missing in this repository: a layer whose blob is gone (its
    // link dangles, but a manifest uses it), a layer only another repository
    // links, an index child never pushed here.
    let missing_layer = Digest::of_bytes(b"lost layer");
    st.link_blob(&app, &missing_layer).await.unwrap();
    let unlinked_layer = blob(st, &repo("other"), b"other's layer").await;
    st.put_manifest(
        &app,
        OCI_MANIFEST,
        manifest(&cfg, &[&missing_layer, &unlinked_layer], None),
    )
    .await
    .unwrap();
    let missing_child = Digest::of_bytes(b"child elsewhere");
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing_child.to_string(), "size": 1}]});
    st.put_manifest(&app, OCI_INDEX, serde_json::to_vec(&index).unwrap().into())
        .await
        .unwrap();

    // A referrer pushed before its subject (a warning), whose referrer entry
    // is not a descriptor (recoverable from the manifest).
    let missing_subject = Digest::of_bytes(b"subject to come");
    let referrer = st
        .put_manifest(
            &app,
            OCI_MANIFEST,
            manifest(&cfg, &[], Some(&missing_subject)),
        )
        .await
        .unwrap();
    f.raw
        .put(
            &format!(
                "repos/app/_referrers/{}/{}",
                missing_subject.hex(),
                referrer.hex()
            ),
            b"[]",
        )
        .await;

    // Malformed link files.
    f.raw.put("repos/app/_tags/badtag", b"latest").await;
    f.raw.put("repos/app/_tags/empty", b"").await;
    f.raw.put("repos/app/_blobs/NOT-HEX", b"").await;
    f.raw
        .put(
            &format!("repos/app/_manifests/{}", cfg.hex().to_uppercase()),
            b"x/y",
        )
        .await;
    // A manifest link that lost its media type (the manifest is intact).
    let untyped = st
        .put_manifest(&app, OCI_MANIFEST, manifest(&corrupt, &[&cfg], None))
        .await
        .unwrap();
    f.raw
        .put(&format!("repos/app/_manifests/{}", untyped.hex()), b"")
        .await;

    // Dangling links nothing uses: a blob link and a referrer entry.
    st.link_blob(&app, &Digest::of_bytes(b"unused and lost"))
        .await
        .unwrap();
    st.add_referrer(
        &app,
        &cfg,
        &Digest::of_bytes(b"no such referrer"),
        serde_json::json!({"digest": Digest::of_bytes(b"no such referrer").to_string()}),
    )
    .await
    .unwrap();

    let orphan = st.put_blob(Bytes::from_static(b"orphan")).await.unwrap();
    Planted {
        corrupt,
        corrupt_actual: Digest::of_bytes(b"bit rot!"),
        gone_manifest,
        garbled,
        missing_layer,
        unlinked_layer,
        missing_child,
        missing_subject,
        referrer,
        untyped,
        orphan,
    }
}

fn assert_names_every_damage(r: &FsckReport, p: &Planted, broken_session: &str) {
    assert!(r.damaged());
    assert_eq!(r.corrupt_blobs.len(), 1, "{:#?}", r.corrupt_blobs);
    assert_eq!(r.corrupt_blobs[0].digest, p.corrupt.to_string());
    assert_eq!(r.corrupt_blobs[0].actual, p.corrupt_actual.to_string());

    assert_has(&r.unresolved_tags, "nolink", |t| {
        t.tag == "nolink" && t.problem.contains("no manifest link")
    });
    assert_has(&r.unresolved_tags, "gone", |t| {
        t.tag == "gone"
            && t.digest == p.gone_manifest.to_string()
            && t.problem == "manifest content missing"
    });
    assert_eq!(r.unresolved_tags.len(), 2, "{:#?}", r.unresolved_tags);

    assert_has(&r.broken_manifests, "gone manifest", |m| {
        m.digest == p.gone_manifest.to_string() && m.problem.contains("missing")
    });
    assert_has(&r.broken_manifests, "garbled", |m| {
        m.digest == p.garbled.to_string() && m.problem.contains("does not parse")
    });

    assert_has(&r.missing_references, "missing layer", |m| {
        m.field == "layer" && m.digest == p.missing_layer.to_string() && m.problem == "blob missing"
    });
    assert_has(&r.missing_references, "unlinked layer", |m| {
        m.digest == p.unlinked_layer.to_string() && m.problem.contains("not linked")
    });
    assert_has(&r.missing_references, "missing child", |m| {
        m.field == "child manifest" && m.digest == p.missing_child.to_string()
    });
    assert_eq!(r.missing_references.len(), 3, "{:#?}", r.missing_references);

    assert_eq!(r.missing_subjects.len(), 1, "{:#?}", r.missing_subjects);
    assert_eq!(r.missing_subjects[0].digest, p.missing_subject.to_string());
    assert_eq!(r.missing_subjects[0].manifest, p.referrer.to_string());

    let malformed: Vec<(&str, &str)> = r
        .malformed_links
        .iter()
        .map(|l| (l.path.as_str(), l.problem.as_str()))
        .collect();
    assert_has(&malformed, "badtag", |(p, q)| {
        *p == "repos/app/_tags/badtag" && q.contains("not a digest")
    });
    assert_has(&malformed, "empty tag", |(p, q)| {
        *p == "repos/app/_tags/empty" && q.contains("empty file")
    });
    assert_has(&malformed, "NOT-HEX", |(p, q)| {
        *p == "repos/app/_blobs/NOT-HEX" && q.contains("not a lowercase")
    });
    assert_has(&malformed, "upper-case manifest", |(p, _)| {
        p.starts_with("repos/app/_manifests/") && p.chars().any(|c| c.is_ascii_uppercase())
    });
    let untyped = format!("repos/app/_manifests/{}", p.untyped.hex());
    assert_has(&malformed, "untyped", |(path, q)| {
        *path == untyped && q.contains("empty file")
    });
    assert_has(&malformed, "referrer entry", |(p, q)| {
        p.contains("_referrers/") && q.contains("not a descriptor")
    });
    assert_eq!(malformed.len(), 6, "{malformed:#?}");

    let dangling: Vec<&str> = r.dangling_links.iter().map(|l| l.path.as_str()).collect();
    let lost_link = format!("repos/app/_blobs/{}", p.missing_layer.hex());
    let unused_link = format!(
        "repos/app/_blobs/{}",
        Digest::of_bytes(b"unused and lost").hex()
    );
    assert_has(&dangling, "used lost blob link", |l| *l == lost_link);
    assert_has(&dangling, "unused lost blob link", |l| *l == unused_link);
    assert_has(&dangling, "referrer entry of nothing", |l| {
        l.ends_with(Digest::of_bytes(b"no such referrer").hex())
    });
    assert_eq!(dangling.len(), 3, "{dangling:#?}");

    assert_has(&r.orphans, "orphan", |o| o.digest == p.orphan.to_string());
    assert_has(&r.upload_sessions, "broken session", |s| {
        s.id == broken_session && s.state == "broken" && s.repo.is_none()
    });
    assert_has(&r.temp_files, "temp file", |t| t.state == "stale");
}

async fn damage_is_named_and_repair_removes_only_garbage(f: Fixture) {
    let st = f.store.as_ref();
    let app = repo("app");
    let p = plant_damage(&f).await;
    let (session, broken) = plant_garbage(&f).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = all_blobs(st).await;

    let r = fsck::check_with(st, &now()).await.unwrap();
    assert_names_every_damage(&r, &p, &broken);
    let text = r.render();
    println!("{text}");
    for heading in [
        "corrupt blobs (1):",
        "tags that do not resolve (2):",
        "broken manifests (2):",
        "missing references (3):",
        "malformed link files (6):",
        "dangling links (3):",
        "warning: subjects not in their repository",
        "orphan blobs",
        "upload sessions (2):",
        "temp files (1):",
    ] {
        assert!(text.contains(heading), "{heading} not in\n{text}");
    }
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("17 damaged, 1 warnings, 3 garbage, 1 orphans"),
        "{text}"
    );
    assert_has(&r.upload_sessions, "stale session", |s| {
        s.id == session && s.state == "stale" && s.repo.as_deref() == Some("app") && s.bytes >= 4
    });
    assert_eq!(r.counts.garbage, 3, "{:#?}", r.counts);
    // With the default threshold (an hour) a fresh session and temp file may
    // be writes in progress: not stale.
    let r = fsck::check(st).await.unwrap();
    assert_has(&r.upload_sessions, "active session", |s| {
        s.id == session && s.state == "active"
    });
    assert!(
        r.temp_files.iter().all(|t| t.state == "recent"),
        "{:#?}",
        r.temp_files
    );

    let r = fsck::check_and_repair(st, &now()).await.unwrap();
    let rep = r.repair.as_ref().unwrap();
    let removed: BTreeSet<String> = rep.removed.iter().map(|a| a.target.clone()).collect();
    let upper = format!("repos/app/_manifests/{}", {
        // The config of the planted images, named in upper case.
        let cfg = Digest::of_bytes(b"cfg");
        cfg.hex().to_uppercase()
    });
    let mut want: BTreeSet<String> = [
        format!("upload session {session}"),
        format!("upload session {broken}"),
        format!("tag app:nolink -> {}", Digest::of_bytes(b"never pushed")),
        format!("tag app:gone -> {}", p.gone_manifest),
        "repos/app/_tags/badtag".into(),
        "repos/app/_tags/empty".into(),
        "repos/app/_blobs/NOT-HEX".into(),
        upper,
        format!(
            "repos/app/_blobs/{}",
            Digest::of_bytes(b"unused and lost").hex()
        ),
        format!(
            "repos/app/_referrers/{}/{}",
            Digest::of_bytes(b"cfg").hex(),
            Digest::of_bytes(b"no such referrer").hex()
        ),
    ]
    .into();
    let temp: Vec<&String> = removed
        .iter()
        .filter(|t| t.starts_with("temp file "))
        .collect();
    assert_eq!(temp.len(), 1, "{removed:#?}");
    want.insert(temp[0].clone());
    assert_eq!(removed, want);

    let recovered: BTreeSet<String> = rep.recovered.iter().map(|a| a.target.clone()).collect();
    let want: BTreeSet<String> = [
        format!("repos/app/_manifests/{}", p.untyped.hex()),
        format!(
            "repos/app/_referrers/{}/{}",
            p.missing_subject.hex(),
            p.referrer.hex()
        ),
    ]
    .into();
    assert_eq!(recovered, want);
    // The lost layer's link stays: a manifest uses it, re-pushing heals it.
    assert_has(&rep.kept, "used dangling link", |a| {
        a.target == format!("repos/app/_blobs/{}", p.missing_layer.hex())
    });
    assert_has(&rep.kept, "corrupt blob", |a| {
        a.target == format!("blob {}", p.corrupt)
    });

    // No blob went, not even the corrupt one or the orphan.
    assert_eq!(all_blobs(st).await, before);
    assert!(f.raw.exists(&f.raw.blob(&p.corrupt)).await);
    assert!(f.raw.exists(&f.raw.blob(&p.orphan)).await);

    let r = fsck::check_with(st, &now()).await.unwrap();
    assert!(r.unresolved_tags.is_empty(), "{:#?}", r.unresolved_tags);
    assert!(r.malformed_links.is_empty(), "{:#?}", r.malformed_links);
    assert!(r.upload_sessions.is_empty() && r.temp_files.is_empty());
    assert_eq!(r.counts.garbage, 0);
    assert_eq!(r.dangling_links.len(), 1, "{:#?}", r.dangling_links);
    // What repair cannot undo is still reported.
    assert_eq!(r.corrupt_blobs.len(), 1);
    assert_eq!(r.broken_manifests.len(), 2);
    assert_eq!(r.missing_references.len(), 3);
    assert!(r.damaged());

    // The recovered links serve again.
    let m = st.get_manifest(&app, &p.untyped).await.unwrap().unwrap();
    assert_eq!(m.media_type, OCI_MANIFEST);
    let refs = st.list_referrers(&app, &p.missing_subject).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["digest"], p.referrer.to_string());
    assert!(st
        .resolve_manifest(&app, &corral_mirror::name::Reference::Tag("good".into()))
        .await
        .unwrap()
        .is_some());
}

async fn garbage_alone_is_not_damage(f: Fixture) {
    let st = f.store.as_ref();
    let app = repo("app");
    let image = image(st, &app, "v1", b"fine").await;
    let orphan = st.put_blob(Bytes::from_static(b"orphan")).await.unwrap();
    plant_garbage(&f).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let r = fsck::check_with(st, &now()).await.unwrap();
    assert!(!r.damaged(), "{r:#?}");
    assert_eq!(r.counts.damage, 0);
    assert_eq!(r.counts.garbage, 3, "{r:#?}");
    assert_eq!(r.orphans.len(), 1);
    assert_eq!(r.orphans[0].digest, orphan.to_string());

    let r = fsck::check_and_repair(st, &now()).await.unwrap();
    assert_eq!(r.repair.as_ref().unwrap().removed.len(), 3, "{r:#?}");
    let r = fsck::check_with(st, &now()).await.unwrap();
    assert!(!r.damaged());
    assert_eq!(
        r.counts,
        fsck::Counts {
            damage: 0,
            warnings: 0,
            garbage: 0,
            orphans: 1
        },
        "orphans are GC's business, not repair's"
    );
    for d in image.iter().chain([&orphan]) {
        assert!(st.blob_size(d).await.unwrap().is_some(), "{d} removed");
    }
}

#[tokio::test]
async fn fs_damage_is_named_and_repaired() {
    damage_is_named_and_repair_removes_only_garbage(fs_fixture()).await;
}

#[tokio::test]
async fn s3_damage_is_named_and_repaired() {
    damage_is_named_and_repair_removes_only_garbage(s3_fixture()).await;
}

#[tokio::test]
async fn fs_garbage_alone_is_not_damage() {
    garbage_alone_is_not_damage(fs_fixture()).await;
}

#[tokio::test]
async fn s3_garbage_alone_is_not_damage() {
    garbage_alone_is_not_damage(s3_fixture()).await;
}

/// Missing content in a mirrored repository is content not fetched yet.
#[tokio::test]
async fn mirrored_repositories_fetch_on_demand() {
    let f = fs_fixture();
    let st = f.store.as_ref();
    let hub = repo("library/alpine");
    let cfg = blob(st, &hub, b"alpine cfg").await;
    let layer = Digest::of_bytes(b"alpine layer, not pulled yet");
    st.put_manifest(&hub, OCI_MANIFEST, manifest(&cfg, &[&layer], None))
        .await
        .unwrap();
    let r = fsck::check(st).await.unwrap();
    assert_eq!(r.missing_references.len(), 1, "local view: damage");
    let opts = FsckOptions {
        mirrored_prefixes: vec!["library".into()],
        ..Default::default()
    };
    let r = fsck::check_with(st, &opts).await.unwrap();
    assert!(!r.damaged(), "{r:#?}");
    assert_eq!(r.uncached_references, 1);
}
