//! The pages over an in-memory [`Source`]: what they show, their JSON
//! twins, and hostile input.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::*;
use crate::source::{BUILD_ARTIFACT, HELP_ARTIFACT, SBOM_ARTIFACT};

#[derive(Default)]
struct Fake {
    /// repo -> tag -> image
    repos: BTreeMap<String, BTreeMap<String, Image>>,
    artifacts: Vec<(String, String, Artifact)>,
    streams: Vec<Stream>,
    disk: Vec<DiskImage>,
    /// The mirror's trusted keys; `None`: one cosign key.
    keys: Option<TrustedKeys>,
}

fn listing(all: Vec<String>, after: Option<&str>, n: usize) -> Listing {
    let rest: Vec<String> = all
        .into_iter()
        .filter(|x| after.is_none_or(|a| x.as_str() > a))
        .collect();
    Listing {
        more: rest.len() > n,
        items: rest.into_iter().take(n).collect(),
    }
}

#[async_trait]
impl Source for Fake {
    async fn repositories(&self, after: Option<&str>, n: usize) -> anyhow::Result<Listing> {
        Ok(listing(self.repos.keys().cloned().collect(), after, n))
    }
    async fn tags(&self, repo: &str, after: Option<&str>, n: usize) -> anyhow::Result<Listing> {
        let tags = self
            .repos
            .get(repo)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        Ok(listing(tags, after, n))
    }
    async fn image(&self, repo: &str, tag: &str) -> anyhow::Result<Option<Image>> {
        Ok(self.repos.get(repo).and_then(|t| t.get(tag)).cloned())
    }
    async fn artifact(
        &self,
        _: &str,
        digest: &str,
        t: &str,
        _: u64,
    ) -> anyhow::Result<Option<Artifact>> {
        Ok(self
            .artifacts
            .iter()
            .find(|(d, ty, _)| d == digest && ty == t)
            .map(|(_, _, a)| a.clone()))
    }
    async fn streams(&self) -> anyhow::Result<Vec<Stream>> {
        Ok(self.streams.clone())
    }
    async fn disk_images(&self) -> anyhow::Result<Vec<DiskImage>> {
        Ok(self.disk.clone())
    }
    fn trusted_keys(&self) -> TrustedKeys {
        if let Some(k) = &self.keys {
            return k.clone();
        }
        TrustedKeys {
            cosign_keys: vec!["cosign.pub".into()],
            gpg_keyrings: vec![],
        }
    }
}

fn digest(n: u32) -> String {
    format!("sha256:{:064x}", n)
}

fn image(repo: &str, tag: &str, n: u32, labels: &[(&str, &str)]) -> Image {
    Image {
        repository: repo.into(),
        tag: tag.into(),
        digest: digest(n),
        compressed_size: 30 << 20,
        uncompressed_size: Some(90 << 20),
        created: Some("2026-03-01T10:00:00Z".into()),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        signature: Signature::Verified {
            format: "cosign".into(),
            key: "SHA256:abcd".into(),
            formats: vec!["cosign".into()],
        },
    }
}

impl Fake {
    fn add(&mut self, i: Image) {
        self.repos
            .entry(i.repository.clone())
            .or_default()
            .insert(i.tag.clone(), i);
    }
}

fn ctx(source: &dyn Source) -> Context<'_> {
    Context {
        source,
        host: "mirror.test:5000".into(),
        base_url: "http://mirror.test:5000".into(),
        now: html::parse_rfc3339("2026-03-04T10:00:00Z").unwrap(),
        listings: &NO_LISTINGS,
    }
}

static NO_LISTINGS: crate::listings::Listings = crate::listings::Listings::new();

async fn get(source: &dyn Source, path: &str, query: &str) -> Response {
    respond(&ctx(source), path, query).await.unwrap().unwrap()
}

const HOSTILE: &str = "<script>alert(1)</script>\"><img src=x onerror=alert(2)><!-- c -->";

fn sample() -> Fake {
    let mut f = Fake::default();
    f.add(image(
        "fedora/base",
        "43",
        1,
        &[("org.opencontainers.image.description", "The base image")],
    ));
    f.add(image("fedora/base", "42", 2, &[]));
    f.add(image(
        "library/python3.12",
        "latest",
        3,
        &[("usage", "podman run --rm python3.12")],
    ));
    f.artifacts.push((
        digest(1),
        SBOM_ARTIFACT.into(),
        Artifact {
            manifest: digest(100),
            blob: digest(101),
            content: br#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"zlib","versionInfo":"1.3-1"},{"name":"bash","versionInfo":"5.2-3"}]}"#.to_vec(),
        },
    ));
    f.artifacts.push((
        digest(3),
        BUILD_ARTIFACT.into(),
        Artifact {
            manifest: digest(102),
            blob: digest(103),
            content: br#"{"dockerfile":"FROM base\nRUN dnf -y install python3.12","findings":[]}"#
                .to_vec(),
        },
    ));
    f.streams.push(Stream {
        name: "atomic-43".into(),
        ostree_ref: "corral/43/x86_64/atomic".into(),
        description: "Fedora 43 Atomic Host".into(),
        key: Some("ABCDEF0123456789".into()),
        versions: vec![
            StreamVersion {
                version: "43.2".into(),
                commit: "a".repeat(64),
                date: "2026-03-02T00:00:00Z".into(),
                diff: PackageDiff {
                    added: vec!["htop-3.3".into()],
                    removed: vec![],
                    changed: vec![PackageChange {
                        name: "kernel".into(),
                        from: "6.8.1".into(),
                        to: "6.8.2".into(),
                    }],
                },
            },
            StreamVersion {
                version: "43.1".into(),
                commit: "b".repeat(64),
                date: "2026-02-01T00:00:00Z".into(),
                diff: PackageDiff::default(),
            },
        ],
        disk_images: vec!["atomic-43.qcow2".into()],
        os_image: None,
    });
    f.disk.push(DiskImage {
        name: "atomic-43.qcow2".into(),
        url: "/disk-images/atomic-43.qcow2".into(),
        size: 700 << 20,
        modified: 1_772_000_000,
        sha256: Some("c".repeat(64)),
        checksum_matches: Some(true),
        signature_url: Some("/disk-images/atomic-43.qcow2.asc".into()),
        signature: Signature::Verified {
            format: "gpg".into(),
            key: "ABCDEF0123456789".into(),
            formats: vec!["gpg".into()],
        },
    });
    f
}

#[tokio::test]
async fn home_groups_repositories_and_links_every_area() {
    let f = sample();
    let r = get(&f, "/", "").await;
    assert_eq!((r.status, r.html), (200, true));
    let b = &r.body;
    assert!(b.contains("<h2 id=\"base-images\">Base images</h2>"), "{b}");
    assert!(b.contains("<h2 id=\"python\">Library: Python</h2>"), "{b}");
    assert!(
        b.contains("<a href=\"/repositories/fedora/base\">fedora/base</a>"),
        "{b}"
    );
    // The featured tag is the lexically last without `latest`.
    assert!(b.contains("newest <strong>43</strong>"), "{b}");
    assert!(b.contains("verified (cosign, key SHA256:abcd)"), "{b}");
    // a long fingerprint is cut on the card, whole on hover
    let mut long = sample();
    let mut i = image("fedora/base", "43", 1, &[]);
    i.signature = Signature::Verified {
        format: "cosign".into(),
        key: "fdbe26e64b62b78b745db1cbd09bf0b6a3b02fe1dd98f4a84895e93b2873a0b6".into(),
        formats: vec!["cosign".into()],
    };
    long.add(i);
    let lb = get(&long, "/", "").await.body;
    assert!(
        lb.contains("title=\"verified (cosign, key fdbe26e64b62b78b745db1cbd09bf0b6a3b02fe1dd98f4a84895e93b2873a0b6)\">verified (cosign, key fdbe26e64b62b78b…)</p>"),
        "{lb}"
    );
    assert!(
        b.contains("<a href=\"/atomic-host/atomic-43\">atomic-43</a>"),
        "{b}"
    );
    assert!(b.contains("newest <strong>43.2</strong>"), "{b}");
    assert!(b.contains("href=\"/downloads\""), "{b}");
    assert!(b.contains("<link rel=\"alternate\" type=\"application/json\" href=\"/?format=json\">"));
    let j: serde_json::Value =
        serde_json::from_str(&get(&f, "/", "format=json").await.body).unwrap();
    assert_eq!(j["repositories"][0]["name"], "fedora/base");
    assert_eq!(
        j["repositories"][0]["pull"],
        "mirror.test:5000/fedora/base:43"
    );
    assert_eq!(j["repositories"][1]["group"], "Python");
    assert_eq!(j["streams"][0]["version"], "43.2");
    assert_eq!(j["disk_images"], 1);
}

#[tokio::test]
async fn home_filters_by_prefix_and_pages() {
    let mut f = Fake::default();
    for i in 0..30 {
        f.add(image(&format!("app{i:02}"), "1", i, &[]));
        f.add(image(&format!("lib{i:02}"), "1", 100 + i, &[]));
    }
    let j: serde_json::Value =
        serde_json::from_str(&get(&f, "/", "q=lib&format=json&n=10").await.body).unwrap();
    let names: Vec<&str> = j["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10);
    assert!(names.iter().all(|n| n.starts_with("lib")), "{names:?}");
    assert_eq!(j["next"], "/?n=10&after=lib09&q=lib");
    let j: serde_json::Value = serde_json::from_str(
        &get(&f, "/", "n=10&after=lib19&q=lib&format=json")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(j["repositories"].as_array().unwrap().len(), 10);
    assert!(j["next"].is_null(), "{j}");
    // The last `app` page does not spill into `lib`.
    let j: serde_json::Value =
        serde_json::from_str(&get(&f, "/", "q=app2&format=json").await.body).unwrap();
    assert_eq!(j["repositories"].as_array().unwrap().len(), 10);
    assert!(j["next"].is_null());
}

#[tokio::test]
async fn listings_group_a_namespace_apart_and_leave_unlisted_repositories_out() {
    let mut f = sample();
    f.add(image(
        "community/hello",
        "latest",
        7,
        &[("dev.corral.stack", "python")],
    ));
    f.add(image("community/gone", "latest", 8, &[]));
    let listings = crate::listings::Listings::new();
    let ctx = Context {
        listings: &listings,
        ..ctx(&f)
    };
    let page = |path: &'static str, query: &'static str| {
        let ctx = &ctx;
        async move { respond(ctx, path, query).await.unwrap().unwrap() }
    };
    // Without the hook the namespace is nothing special.
    let j: serde_json::Value = serde_json::from_str(&page("/", "format=json").await.body).unwrap();
    let group = |j: &serde_json::Value, name: &str| {
        j["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["group"].as_str().unwrap().to_string())
    };
    assert_eq!(group(&j, "community/hello").as_deref(), Some("Python"));
    listings.set_namespace("community", "Shared by users");
    listings.unlist("community/gone", "withdrawn");
    let j: serde_json::Value = serde_json::from_str(&page("/", "format=json").await.body).unwrap();
    assert_eq!(
        group(&j, "community/hello").as_deref(),
        Some("Shared by users")
    );
    assert_eq!(group(&j, "community/gone"), None, "{j}");
    assert_eq!(group(&j, "fedora/base").as_deref(), Some("Base images"));
    let html = page("/", "").await.body;
    assert!(
        html.contains("<h2 id=\"shared-by-users\">Shared by users</h2>"),
        "{html}"
    );
    assert!(!html.contains("community/gone"), "{html}");
    // The search leaves it out too.
    let j: serde_json::Value =
        serde_json::from_str(&page("/", "q=community&format=json").await.body).unwrap();
    assert_eq!(j["repositories"].as_array().unwrap().len(), 1, "{j}");
    // Its own page is still there and says why it is not listed.
    let r = page("/repositories/community/gone", "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<strong>Withdrawn.</strong>"), "{}", r.body);
    let j: serde_json::Value = serde_json::from_str(
        &page("/repositories/community/gone", "format=json")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(j["unlisted"], "withdrawn");
    assert!(!page("/repositories/community/hello", "")
        .await
        .body
        .contains("Withdrawn"));
}

#[tokio::test]
async fn home_stays_small_with_a_thousand_repositories() {
    let mut f = Fake::default();
    for i in 0..1000 {
        for t in 0..10 {
            f.add(image(
                &format!("team{:02}/image-{i:04}", i % 37),
                &format!("1.{t}"),
                i * 10 + t,
                &[(
                    "org.opencontainers.image.description",
                    &"A fairly long description of what this image holds. ".repeat(4),
                )],
            ));
        }
    }
    let r = get(&f, "/", "").await;
    assert!(r.body.len() < 100 * 1024, "{} bytes", r.body.len());
    assert!(r.body.contains("rel=\"next\""));
}

#[tokio::test]
async fn repository_page_shows_pull_verify_tags_and_sbom() {
    let f = sample();
    let r = get(&f, "/repositories/fedora/base", "").await;
    assert_eq!(r.status, 200);
    let b = &r.body;
    assert!(b.contains("<p class=\"lead\">The base image</p>"), "{b}");
    for cmd in [
        "podman pull --tls-verify=false mirror.test:5000/fedora/base:43",
        "docker pull mirror.test:5000/fedora/base:43",
        "skopeo copy --src-tls-verify=false docker://mirror.test:5000/fedora/base:43 oci:/tmp/base:43",
        "curl -fsSL -o cosign.pub http://mirror.test:5000/keys/cosign.pub &amp;&amp; corral verify image mirror.test:5000/fedora/base:43 --plain-http --key cosign.pub",
        "curl -fsSL -o cosign.pub http://mirror.test:5000/keys/cosign.pub &amp;&amp; corral policy --mirror http://mirror.test:5000 --key cosign.pub --out client",
    ] {
        assert!(b.contains(&format!("<code>{cmd}</code>")), "{cmd}\n{b}");
    }
    // the trusted key is a link to where the mirror serves it
    assert!(
        b.contains("<a href=\"http://mirror.test:5000/keys/cosign.pub\">cosign.pub</a> (cosign)"),
        "{b}"
    );
    assert!(
        b.contains(&format!(
            "title=\"{}\">sha256:000000000000</code>",
            digest(1)
        )),
        "{b}"
    );
    assert!(b.contains("30.0 MiB compressed, 90.0 MiB unpacked"), "{b}");
    assert!(
        b.contains("title=\"2026-03-01 10:00:00 UTC\">3 days ago</time>"),
        "{b}"
    );
    assert!(b.contains("linux/amd64, linux/arm64"), "{b}");
    assert!(b.contains("2 packages."), "{b}");
    assert!(
        b.contains(&format!(
            "<a href=\"/v2/fedora/base/blobs/{}\" download>",
            digest(101)
        )),
        "{b}"
    );
    assert!(b.find("bash").unwrap() < b.find("zlib").unwrap());
    let j: serde_json::Value = serde_json::from_str(
        &get(&f, "/repositories/fedora/base", "format=json")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(j["tags"].as_array().unwrap().len(), 2);
    assert_eq!(j["tags"][0]["digest"], digest(2));
    assert_eq!(j["tags"][0]["signature"]["status"], "verified");
    assert_eq!(j["sbom"]["packages"][0]["name"], "bash");
    assert_eq!(
        j["commands"]["docker"],
        "docker pull mirror.test:5000/fedora/base:43"
    );

    let lib = get(&f, "/repositories/library/python3.12", "").await.body;
    assert!(lib.contains("Lint: clean"), "{lib}");
    assert!(lib.contains("RUN dnf -y install python3.12"), "{lib}");
    assert!(
        lib.contains("<code>podman run --rm python3.12</code>"),
        "{lib}"
    );

    let missing = get(&f, "/repositories/nope", "").await;
    assert_eq!(missing.status, 404);
    assert!(respond(&ctx(&f), "/v2/", "").await.unwrap().is_none());
}

#[tokio::test]
async fn stream_page_links_the_disk_images_disk_build_recorded() {
    let mut f = sample();
    // as disk build records it: the file's sha256 as built
    f.streams[0].disk_images = serde_json::from_value(serde_json::json!([
        {"name": "atomic-43.qcow2", "format": "qcow2", "size": 734003200u64,
         "sha256": "c".repeat(64), "signature": "atomic-43.qcow2.asc"},
        "not-published.raw.xz"
    ]))
    .unwrap();
    let b = get(&f, "/atomic-host/atomic-43", "").await.body;
    assert!(
        b.contains("<a href=\"/disk-images/atomic-43.qcow2\">atomic-43.qcow2</a> (x86_64, 700.0 MiB) sha256 <code class=\"digest\""),
        "{b}"
    );
    assert!(b.contains(&format!("title=\"{}\"", "c".repeat(64))), "{b}");
    assert!(!b.contains("differs from the published checksum"), "{b}");
    // a file that is not in the disk images directory is not linked
    assert!(!b.contains("not-published.raw.xz"), "{b}");
    // the served file's published checksum is not what disk build wrote
    f.disk[0].sha256 = Some("d".repeat(64));
    let b = get(&f, "/atomic-host/atomic-43", "").await.body;
    assert!(b.contains("differs from the published checksum"), "{b}");
}

/// The OS image `corral release` recorded in the stream file: reference,
/// digest, signatures and layers, with the rebase commands of corral,
/// rpm-ostree and bootc beside the OSTree-over-HTTP ones.
#[tokio::test]
async fn stream_page_shows_the_os_image_and_how_to_rebase_onto_it() {
    let mut f = sample();
    let b = get(&f, "/atomic-host/atomic-43", "").await.body;
    assert!(!b.contains("OS image"), "{b}");
    let digest = format!("sha256:{}", "e".repeat(64));
    f.streams[0].os_image = Some(corral_streamfile::OsImage {
        repository: "mirror.example:5000/os/atomic-43".into(),
        tags: vec!["43.2".into(), "43".into()],
        digest: digest.clone(),
        commit: "a".repeat(64),
        version: Some("43.2".into()),
        layers: 12,
        size: 3 << 20,
        signatures: vec!["cosign".into(), "gpg".into()],
    });
    let b = get(&f, "/atomic-host/atomic-43", "").await.body;
    assert!(b.contains("<h2>OS image</h2>"), "{b}");
    assert!(
        b.contains("<code>mirror.example:5000/os/atomic-43:43</code>, digest <code class=\"digest\" title=\"sha256:eeee"),
        "{b}"
    );
    assert!(b.contains(", version 43.2, commit "), "{b}");
    assert!(b.contains("12 layers, 3.0 MiB."), "{b}");
    assert!(
        b.contains("Image signed (cosign, GPG simple signing)"),
        "{b}"
    );
    for cmd in [
        "corral host rebase ostree-image-signed:docker://mirror.example:5000/os/atomic-43:43",
        "corral host rebase ostree-remote-registry:corral:mirror.example:5000/os/atomic-43:43",
        "rpm-ostree rebase ostree-image-signed:docker://mirror.example:5000/os/atomic-43:43",
        "bootc switch mirror.example:5000/os/atomic-43:43",
    ] {
        assert!(b.contains(&format!("<code>{cmd}</code>")), "{cmd}: {b}");
    }
    // beside the OSTree-over-HTTP commands, with when to choose which
    assert!(
        b.contains("ostree pull corral:corral/43/x86_64/atomic"),
        "{b}"
    );
    assert!(b.contains("Choose the OS image when"), "{b}");
    let text = get(&f, "/atomic-host/atomic-43", "format=json").await.body;
    // once: the page's, not the stream file's beside it
    assert_eq!(text.matches("\"os_image\"").count(), 1, "{text}");
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let img = &j["os_image"];
    assert_eq!(img["reference"], "mirror.example:5000/os/atomic-43:43");
    assert_eq!(img["digest"], digest.as_str());
    assert_eq!(img["layers"], 12);
    assert_eq!(
        img["commands"]["bootc"][0],
        "bootc switch mirror.example:5000/os/atomic-43:43"
    );
    // unsigned: said so
    f.streams[0].os_image.as_mut().unwrap().signatures.clear();
    let b = get(&f, "/atomic-host/atomic-43", "").await.body;
    assert!(b.contains("The image is not signed"), "{b}");
}

#[tokio::test]
async fn hostile_labels_help_and_names_are_inert() {
    let mut f = Fake::default();
    let name = format!("evil/{HOSTILE}");
    let mut i = image(
        &name,
        HOSTILE,
        7,
        &[
            ("org.opencontainers.image.description", HOSTILE),
            ("usage", HOSTILE),
            ("dev.corral.stack", HOSTILE),
        ],
    );
    i.created = Some(HOSTILE.into());
    i.platforms = vec![HOSTILE.into()];
    i.signature = Signature::NotVerified {
        reason: HOSTILE.into(),
        detail: HOSTILE.into(),
    };
    f.add(i);
    f.artifacts.push((
        digest(7),
        HELP_ARTIFACT.into(),
        Artifact {
            manifest: digest(8),
            blob: digest(9),
            content: format!(
                "# Help\n\n{HOSTILE}\n\n[click](javascript:alert(3)) [x](JAVASCRIPT:alert(4)) [ok](https://example.org)\n\n<a href=\"javascript:alert(5)\">raw</a>\n\n[y](https://e.org/\"onclick=\"alert(6))\n"
            )
            .into_bytes(),
        },
    ));
    f.artifacts.push((
        digest(7),
        BUILD_ARTIFACT.into(),
        Artifact {
            manifest: digest(10),
            blob: digest(11),
            content: serde_json::to_vec(&serde_json::json!({
                "dockerfile": HOSTILE,
                "findings": [{"rule": HOSTILE, "line": 1, "message": HOSTILE}],
            }))
            .unwrap(),
        },
    ));
    f.streams.push(Stream {
        name: HOSTILE.into(),
        ostree_ref: HOSTILE.into(),
        description: HOSTILE.into(),
        key: Some(HOSTILE.into()),
        versions: vec![StreamVersion {
            version: HOSTILE.into(),
            commit: HOSTILE.into(),
            date: HOSTILE.into(),
            diff: PackageDiff {
                added: vec![HOSTILE.into()],
                removed: vec![HOSTILE.into()],
                changed: vec![PackageChange {
                    name: HOSTILE.into(),
                    from: HOSTILE.into(),
                    to: HOSTILE.into(),
                }],
            },
        }],
        disk_images: vec![],
        os_image: Some(corral_streamfile::OsImage {
            repository: HOSTILE.into(),
            tags: vec![HOSTILE.into()],
            digest: HOSTILE.into(),
            commit: HOSTILE.into(),
            version: Some(HOSTILE.into()),
            layers: 1,
            size: 1,
            signatures: vec![HOSTILE.into()],
        }),
    });
    f.disk.push(DiskImage {
        name: HOSTILE.into(),
        url: format!("/disk-images/{HOSTILE}"),
        size: 1,
        modified: 1,
        sha256: Some(HOSTILE.into()),
        checksum_matches: Some(false),
        signature_url: Some(HOSTILE.into()),
        signature: Signature::Unsigned,
    });
    let pages = [
        get(&f, "/", "").await,
        get(&f, &format!("/repositories/{name}"), "").await,
        get(&f, "/atomic-host", "").await,
        get(&f, &format!("/atomic-host/{HOSTILE}"), "").await,
        get(&f, "/downloads", "").await,
        get(&f, "/repositories/<script>x", "").await,
    ];
    for p in &pages {
        let b = p.body.to_ascii_lowercase();
        assert!(!b.contains("<!--"), "{b}");
        for tag in tags(&b) {
            let name = tag.split_whitespace().next().unwrap_or("");
            assert!(
                !["img", "iframe", "object", "embed", "style", "svg"].contains(&name),
                "<{tag}>"
            );
            if name == "script" {
                assert_eq!(tag, "script src=\"/site/site.js\" defer", "<{tag}>");
            }
            // Attribute names: the tag with its quoted values left out
            // (values are escaped, so a quote inside one is `&quot;`).
            let names: String = tag.split('"').step_by(2).collect();
            assert!(!names.contains(" on"), "an event handler in <{tag}>");
            for value in tag.split('"').skip(1).step_by(2) {
                assert!(!value.trim_start().starts_with("javascript:"), "<{tag}>");
            }
        }
    }
    let repo = &pages[1].body;
    assert!(
        repo.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{repo}"
    );
    assert!(
        repo.contains("<a href=\"https://example.org\">ok</a>"),
        "{repo}"
    );
    // The hostile name still reaches its page (escaped in the link).
    assert_eq!(pages[1].status, 200);
    assert_eq!(pages[3].status, 200);
    assert_eq!(pages[5].status, 404);
    // The JSON twin is JSON: the text as given, for machines to escape.
    let j: serde_json::Value = serde_json::from_str(
        &get(&f, &format!("/repositories/{name}"), "format=json")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(j["description"], HOSTILE);
}

/// The insides of the HTML tags of a page (what the browser parses as
/// markup: text outside them is inert).
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>').map(|(t, _)| t))
        .filter(|t| !t.starts_with('/') && !t.starts_with('!'))
        .collect()
}

#[test]
fn queries_decode() {
    assert_eq!(query_param("a=1&q=x%2Fy+z", "q").as_deref(), Some("x/y z"));
    assert_eq!(query_param("q=%zz%4", "q").as_deref(), Some("%zz%4"));
    assert_eq!(query_param("q", "q").as_deref(), Some(""));
    assert!(query_param("a=1", "q").is_none());
}

/// Debian's skopeo has sigstore verification patched out: for a tag whose
/// only verified signatures are cosign ones the page says so and offers
/// `corral verify` with the cosign key alone; a tag with a GPG signature
/// gets the GPG policy every skopeo checks.
#[tokio::test]
async fn repository_page_is_honest_about_skopeo_and_cosign() {
    let mut f = sample();
    f.keys = Some(TrustedKeys {
        cosign_keys: vec!["cosign.pub".into()],
        gpg_keyrings: vec!["release.gpg".into()],
    });
    let commands = |j: &serde_json::Value, list: &str| -> Vec<String> {
        j["commands"][list]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    // fedora/base:43 is verified in the cosign format only
    let r = get(&f, "/repositories/fedora/base", "").await;
    let note = html::escape(crate::pages::repository::SKOPEO_SIGSTORE_NOTE);
    assert!(
        r.body
            .contains(&format!("<p class=\"note unsigned\">{note}</p>")),
        "{}",
        r.body
    );
    let j: serde_json::Value = serde_json::from_str(
        &get(&f, "/repositories/fedora/base", "format=json")
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        j["commands"]["skopeo_note"],
        crate::pages::repository::SKOPEO_SIGSTORE_NOTE
    );
    let corral = commands(&j, "verify_corral");
    assert_eq!(corral.len(), 1, "{corral:?}");
    assert!(
        corral[0].ends_with(
            "corral verify image mirror.test:5000/fedora/base:43 --plain-http --key cosign.pub"
        ),
        "{corral:?}"
    );
    let skopeo = commands(&j, "verify_skopeo");
    assert!(
        skopeo[0].contains("corral policy --mirror http://mirror.test:5000 --key cosign.pub"),
        "{skopeo:?}"
    );
    // the same tag signed both ways: skopeo checks the GPG signature
    let mut both = image("fedora/base", "43", 1, &[]);
    both.signature = Signature::Verified {
        format: "cosign".into(),
        key: "SHA256:abcd".into(),
        formats: vec!["cosign".into(), "gpg".into()],
    };
    f.add(both);
    let r = get(&f, "/repositories/fedora/base", "").await;
    assert!(!r.body.contains(&note), "{}", r.body);
    let j: serde_json::Value = serde_json::from_str(
        &get(&f, "/repositories/fedora/base", "format=json")
            .await
            .body,
    )
    .unwrap();
    assert!(j["commands"]["skopeo_note"].is_null(), "{j}");
    assert_eq!(commands(&j, "verify_corral").len(), 2);
    let skopeo = commands(&j, "verify_skopeo");
    assert!(
        skopeo[0].contains("--gpg-keyring release.gpg"),
        "{skopeo:?}"
    );
    // unsigned: every key's command, no note
    let mut unsigned = image("fedora/base", "43", 1, &[]);
    unsigned.signature = Signature::Unsigned;
    f.add(unsigned);
    let j: serde_json::Value = serde_json::from_str(
        &get(&f, "/repositories/fedora/base", "format=json")
            .await
            .body,
    )
    .unwrap();
    assert!(j["commands"]["skopeo_note"].is_null(), "{j}");
    assert_eq!(commands(&j, "verify_corral").len(), 2);
}

/// `/downloads` lists the images of every architecture the stream files
/// record: an entry's `arch`, else its stream ref's.
#[tokio::test]
async fn downloads_show_each_image_architecture() {
    let mut f = sample();
    f.streams[0].disk_images.push(
        serde_json::from_str(
            r#"{"name":"atomic-43.aarch64.qcow2","format":"qcow2","arch":"aarch64"}"#,
        )
        .unwrap(),
    );
    let mut arm = f.disk[0].clone();
    arm.name = "atomic-43.aarch64.qcow2".into();
    arm.url = "/disk-images/atomic-43.aarch64.qcow2".into();
    f.disk.push(arm);
    // an image no stream file records: no architecture claimed
    let mut loose = f.disk[0].clone();
    loose.name = "other.raw.xz".into();
    loose.url = "/disk-images/other.raw.xz".into();
    f.disk.push(loose);
    let j: serde_json::Value =
        serde_json::from_str(&get(&f, "/downloads", "format=json").await.body).unwrap();
    let arch = |name: &str| {
        j["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .map(|i| (i["arch"].clone(), i["stream"].clone()))
            .unwrap()
    };
    assert_eq!(arch("atomic-43.aarch64.qcow2").0, "aarch64");
    // recorded without `arch`: the ref corral/43/x86_64/atomic says
    assert_eq!(arch("atomic-43.qcow2").0, "x86_64");
    assert_eq!(arch("atomic-43.qcow2").1, "atomic-43");
    assert!(arch("other.raw.xz").0.is_null());
    let b = get(&f, "/downloads", "").await.body;
    for a in ["x86_64", "aarch64"] {
        assert!(
            b.contains(&format!("<dt>architecture</dt><dd>{a}</dd>")),
            "{a}\n{b}"
        );
    }
    assert!(
        b.contains("<dt>stream</dt><dd><a href=\"/atomic-host/atomic-43\">atomic-43</a></dd>"),
        "{b}"
    );
}
