//! `/disk-images/` never serves a file through a symlink that leads out of
//! the directory, and does not list it.
#![cfg(unix)]

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;

#[tokio::test]
async fn symlinks_out_of_the_directory_are_not_served_or_listed() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::write(images.join("atomic.qcow2"), b"QFI\xfb image").unwrap();
    std::fs::write(dir.path().join("private.key"), b"not for clients").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", images.join("passwd.qcow2")).unwrap();
    std::os::unix::fs::symlink("../private.key", images.join("key.qcow2")).unwrap();
    std::os::unix::fs::symlink("/etc", images.join("etc")).unwrap();
    std::os::unix::fs::symlink("atomic.qcow2", images.join("latest.qcow2")).unwrap();
    let path = images.clone();
    let r = Registry::with(move |c| c.disk_images.dir = Some(path));

    for uri in [
        "/disk-images/passwd.qcow2",
        "/disk-images/key.qcow2",
        "/disk-images/etc/passwd",
    ] {
        let resp = r.send_raw(Method::GET, uri, &[], Body::empty()).await;
        assert_eq!(resp.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            !String::from_utf8_lossy(&resp.body).contains("root:"),
            "{uri}"
        );
    }
    // A symlink to a file inside (an alias) is served.
    let latest = r
        .send_raw(
            Method::GET,
            "/disk-images/latest.qcow2",
            &[("range", "bytes=0-3")],
            Body::empty(),
        )
        .await;
    assert_eq!(latest.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&latest.body[..], b"QFI\xfb");

    let catalog = r
        .send_raw(Method::GET, "/catalog.json", &[], Body::empty())
        .await;
    let v: serde_json::Value = serde_json::from_slice(&catalog.body).unwrap();
    let names: Vec<&str> = v["disk_images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["atomic.qcow2", "latest.qcow2"]);
}
