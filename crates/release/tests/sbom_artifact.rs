//! A base image's SBOM reaches the mirror as an OCI 1.1 artifact: after
//! the image is copied with skopeo (which leaves the annotated SBOM blob
//! behind), `push_sbom` uploads the blob and an artifact manifest whose
//! subject is the image, and the mirror's referrers API lists it.

use std::collections::BTreeMap;
use std::process::Command;

use corral_registry::{Client, ImageRef};
use corral_release::publish::{push_sbom, sbom_artifact_manifest, SBOM_ARTIFACT_TYPE};

const SPDX: &[u8] = br#"{"spdxVersion":"SPDX-2.3","name":"base","packages":[{"name":"bash","versionInfo":"5.2.37-1.fc43"}]}"#;

fn layout(dir: &std::path::Path) -> corral_oci::BuiltImage {
    let src = dir.join("rootfs");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/os-release"), "ID=corral\n").unwrap();
    let cfg = corral_oci::ImageConfigSpec {
        architecture: "amd64".into(),
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
    };
    let sbom = corral_oci::ExtraBlob {
        media_type: "application/spdx+json".into(),
        data: SPDX.to_vec(),
        annotation_prefix: "dev.corral.sbom".into(),
    };
    corral_oci::build_image_layout(
        &src,
        &dir.join("layout"),
        "43",
        &cfg,
        &[sbom],
        &corral_oci::PackOptions {
            clamp_mtime: Some(1_767_225_600),
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn the_artifact_refers_to_the_image_and_is_reproducible() {
    let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}"#;
    let a = sbom_artifact_manifest("sha256:aa", image, "sha256:bb", 10).unwrap();
    assert_eq!(
        a,
        sbom_artifact_manifest("sha256:aa", image, "sha256:bb", 10).unwrap()
    );
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(v["artifactType"], SBOM_ARTIFACT_TYPE);
    assert_eq!(v["subject"]["digest"], "sha256:aa");
    assert_eq!(v["subject"]["size"], image.len());
    assert_eq!(v["layers"][0]["digest"], "sha256:bb");
    assert_eq!(
        v["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        v["annotations"]["org.opencontainers.image.created"],
        "2026-01-01T00:00:00Z"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_sbom_is_listed_by_the_referrers_api() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "skopeo is missing in CI");
        eprintln!("skipping: skopeo is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let built = layout(dir.path());
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(dir.path().join("htpasswd"), format!("u:{hash}\n")).unwrap();
    let mut config = corral_mirror::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: dir.path().join("storage"),
        ..Default::default()
    };
    config.auth.htpasswd = Some(dir.path().join("htpasswd"));
    let server = corral_mirror::server::start(config).await.unwrap();
    let reference = format!("{}/corral/base:43", server.addr);
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds=u:pw",
        ])
        .arg(format!("oci:{}:43", built.layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let client = Client::new(true, Some(("u".into(), "pw".into())));
    let image = ImageRef::parse(&reference).unwrap();
    let (sbom_digest, _) = &built.extra[0];
    // What skopeo leaves behind: the annotation names a blob the registry
    // does not have.
    assert!(client.blob(&image, sbom_digest).await.is_err());

    let artifact = push_sbom(&client, &built.layout, "43", &reference)
        .await
        .unwrap()
        .pop()
        .expect("the manifest names an SBOM");
    assert_eq!(client.blob(&image, sbom_digest).await.unwrap(), SPDX);
    let list = client
        .referrers(&image, &built.manifest_digest, SBOM_ARTIFACT_TYPE)
        .await
        .unwrap()
        .expect("the referrers API answers");
    let manifests = list["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{list}");
    assert_eq!(manifests[0]["digest"], artifact);
    assert_eq!(manifests[0]["artifactType"], SBOM_ARTIFACT_TYPE);
    // Pushing again changes nothing: the same artifact, once.
    assert_eq!(
        push_sbom(&client, &built.layout, "43", &reference)
            .await
            .unwrap(),
        vec![artifact]
    );
    let list = client
        .referrers(&image, &built.manifest_digest, SBOM_ARTIFACT_TYPE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list["manifests"].as_array().unwrap().len(), 1);
    server.stop().await.unwrap();
}
