//! `push_layout` publishes a multi-platform layout whole: the index and
//! every platform's manifest reach the registry under their own digests,
//! not only the host's platform. A one-platform layout keeps its manifest
//! digest.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use corral_registry::{Client, ImageRef};
use corral_release::publish::{push_layout, SBOM_ARTIFACT_TYPE};
use corral_release::ReleaseConfig;

fn config(arch: &str) -> corral_oci::ImageConfigSpec {
    corral_oci::ImageConfigSpec {
        architecture: arch.into(),
        os: "linux".into(),
        env: vec![],
        cmd: None,
        entrypoint: None,
        working_dir: None,
        user: None,
        labels: BTreeMap::new(),
        created: 1_767_225_600,
        annotations: BTreeMap::new(),
        history_comment: None,
    }
}

fn rootfs(dir: &Path, arch: &str) -> std::path::PathBuf {
    let root = dir.join(format!("rootfs-{arch}"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/arch"), arch).unwrap();
    root
}

/// A platform's SPDX SBOM, as `corral image build` attaches it.
fn sbom(arch: &str) -> corral_oci::ExtraBlob {
    corral_oci::ExtraBlob {
        media_type: SBOM_ARTIFACT_TYPE.into(),
        data: format!(r#"{{"spdxVersion":"SPDX-2.3","name":"base-{arch}"}}"#).into_bytes(),
        annotation_prefix: "dev.corral.sbom".into(),
    }
}

fn opts() -> corral_oci::PackOptions {
    corral_oci::PackOptions {
        clamp_mtime: Some(1_767_225_600),
        threads: 1,
        ..Default::default()
    }
}

/// The bytes of blob `digest` in `layout`.
fn blob(layout: &Path, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read_to_string(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// What the registry serves for `reference` (`--config`: the image's
/// config), as skopeo reads it.
fn inspect_raw(reference: &str, config: bool) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds=u:pw"])
        .args(config.then_some("--config"))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_index_is_pushed_with_every_platform() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "skopeo is missing in CI");
        eprintln!("skipping: skopeo is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // amd64 first: without --all skopeo would push only this host's one.
    let (amd64, arm64) = (config("amd64"), config("arm64"));
    let (root_amd64, root_arm64) = (rootfs(dir.path(), "amd64"), rootfs(dir.path(), "arm64"));
    let (sbom_amd64, sbom_arm64) = ([sbom("amd64")], [sbom("arm64")]);
    let multi = corral_oci::build_index_layout(
        &dir.path().join("multi"),
        "43",
        &[
            corral_oci::PlatformImage {
                rootfs: &root_amd64,
                config: &amd64,
                extra: &sbom_amd64,
            },
            corral_oci::PlatformImage {
                rootfs: &root_arm64,
                config: &arm64,
                extra: &sbom_arm64,
            },
        ],
        &opts(),
    )
    .unwrap();
    let single = corral_oci::build_image_layout(
        &root_arm64,
        &dir.path().join("single"),
        "43",
        &arm64,
        &[],
        &opts(),
    )
    .unwrap();

    // The mirror takes pushes only from a user; push_layout's come from
    // the environment, as in a release.
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(dir.path().join("htpasswd"), format!("u:{hash}\n")).unwrap();
    std::env::set_var(corral_release::publish::CREDS_ENV, "u:pw");
    let mut mirror = corral_mirror::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: dir.path().join("storage"),
        ..Default::default()
    };
    mirror.auth.htpasswd = Some(dir.path().join("htpasswd"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(corral_mirror::server::start(mirror)).unwrap();
    let host = server.addr.to_string();
    let release = ReleaseConfig::parse(
        &format!(
            "[release]\nwork = \"work\"\n[mirror]\nregistry = \"{host}\"\nplain-http = true\n\
             [[base]]\nrecipe = \"base.toml\"\nimage = \"corral/multi\"\ntag = \"43\"\n"
        ),
        Path::new("release.toml"),
        dir.path(),
        &|_| None,
    )
    .unwrap();

    let reference = format!("{host}/corral/multi:43");
    push_layout(&release, &multi.layout, "43", &reference).unwrap();
    let client = Client::new(true, Some(("u".into(), "pw".into())));
    // The index the registry serves is the layout's, byte for byte.
    let served = inspect_raw(&reference, false);
    assert_eq!(served, blob(&multi.layout, &multi.index_digest));
    let index: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("amd64".to_string(), multi.images[0].manifest_digest.clone()),
            ("arm64".to_string(), multi.images[1].manifest_digest.clone()),
        ]
    );
    // Each platform's manifest is there by digest, with its own config.
    for (arch, image) in ["amd64", "arm64"].iter().zip(&multi.images) {
        let by_digest = format!("{host}/corral/multi@{}", image.manifest_digest);
        let served = inspect_raw(&by_digest, false);
        assert_eq!(
            served,
            blob(&multi.layout, &image.manifest_digest),
            "{arch}"
        );
        let manifest: serde_json::Value = serde_json::from_str(&served).unwrap();
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        let config = inspect_raw(&by_digest, true);
        assert_eq!(config, blob(&multi.layout, config_digest), "{arch}");
        let config: serde_json::Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["architecture"], *arch);

        // Its SBOM is an artifact referring to it (the referrers API of
        // the platform manifest lists it), and the blob the manifest's
        // annotation names is there.
        let sbom_digest = manifest["annotations"]["dev.corral.sbom.digest"]
            .as_str()
            .unwrap();
        let repo = ImageRef::parse(&reference).unwrap();
        let (referrers, sbom) = rt.block_on(async {
            let referrers = client
                .referrers(&repo, &image.manifest_digest, SBOM_ARTIFACT_TYPE)
                .await
                .unwrap()
                .expect("the mirror has the referrers API");
            (referrers, client.blob(&repo, sbom_digest).await.unwrap())
        });
        assert!(
            String::from_utf8(sbom)
                .unwrap()
                .contains(&format!("base-{arch}")),
            "{arch}"
        );
        let listed = referrers["manifests"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{arch}: {referrers}");
        assert_eq!(listed[0]["artifactType"], SBOM_ARTIFACT_TYPE);
        let artifact = inspect_raw(
            &format!(
                "{host}/corral/multi@{}",
                listed[0]["digest"].as_str().unwrap()
            ),
            false,
        );
        let artifact: serde_json::Value = serde_json::from_str(&artifact).unwrap();
        assert_eq!(
            artifact["subject"]["digest"],
            image.manifest_digest.as_str()
        );
        assert_eq!(artifact["layers"][0]["digest"], sbom_digest);
    }
    // The index itself names no SBOM: nothing refers to it.
    let index_ref = ImageRef::parse(&reference).unwrap();
    let on_index = rt
        .block_on(client.referrers(&index_ref, &multi.index_digest, SBOM_ARTIFACT_TYPE))
        .unwrap()
        .unwrap();
    assert_eq!(
        on_index["manifests"].as_array().map(Vec::len),
        Some(0),
        "{on_index}"
    );

    // A one-platform layout is pushed as before: its manifest, unchanged.
    let reference = format!("{host}/corral/single:43");
    push_layout(&release, &single.layout, "43", &reference).unwrap();
    let served = inspect_raw(&reference, false);
    assert_eq!(served, blob(&single.layout, &single.manifest_digest));
    let manifest: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    rt.block_on(server.stop()).unwrap();
}
