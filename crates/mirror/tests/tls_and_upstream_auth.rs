//! TLS via rustls, and an upstream that needs credentials (another corral
//! with pulls restricted: the mirror does the bearer-token dance with its
//! configured username and password).

mod common;

use common::{basic, server_config, server_config_with_auth, PASSWORD, USER};
use corral_mirror::config::TlsConfig;
use corral_mirror::name::Digest;
use corral_test_support::require_tool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tls_with_rustls() {
    require_tool("openssl");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut config = server_config_with_auth(dir.path());
    config.tls = Some(TlsConfig {
        cert: cert.clone(),
        key,
    });
    let server = corral_mirror::server::start(config).await.unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/v2/", server.addr.port());
    let anon = client.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    // The challenge's realm uses https.
    let ch = anon.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        ch.contains(&format!(
            "realm=\"https://127.0.0.1:{}/token\"",
            server.addr.port()
        )),
        "{ch}"
    );
    let ok = client
        .get(&url)
        .header("authorization", basic(USER, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Plain HTTP on the TLS port does not get a registry answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/v2/", server.addr.port())).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    server.stop().await.unwrap();
}

/// Pushes a config + layer + manifest with basic auth; returns (manifest digest, layer digest).
async fn push(base: &str, repo: &str) -> (Digest, Digest) {
    let c = reqwest::Client::new();
    let auth = basic(USER, PASSWORD);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"private layer".to_vec();
    for data in [&config, &layer] {
        let d = Digest::of_bytes(data);
        let r = c
            .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
            .header("authorization", &auth)
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let m = common::image_manifest(
        &Digest::of_bytes(&config),
        config.len(),
        &Digest::of_bytes(&layer),
        layer.len(),
        None,
    );
    let r = c
        .put(format!("{base}/v2/{repo}/manifests/v1"))
        .header("authorization", &auth)
        .header("content-type", common::OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    (Digest::of_bytes(&m), Digest::of_bytes(&layer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_with_credentials_and_token_dance() {
    let dir = tempfile::tempdir().unwrap();
    let up_dir = dir.path().join("up");
    std::fs::create_dir_all(&up_dir).unwrap();
    let mut up_config = server_config_with_auth(&up_dir);
    up_config.auth.anonymous_pull = false;
    let upstream = corral_mirror::server::start(up_config).await.unwrap();
    let up_url = format!("http://127.0.0.1:{}", upstream.addr.port());
    let (md, ld) = push(&up_url, "library/private").await;

    // A mirror with the upstream's credentials.
    let m_dir = dir.path().join("m");
    let mut config = server_config(&m_dir);
    config
        .add_upstream_flag(&format!("library={up_url}"))
        .unwrap();
    config.upstreams[0].username = Some(USER.into());
    config.upstreams[0].password = Some(PASSWORD.into());
    let mirror = corral_mirror::server::start(config).await.unwrap();
    let m_url = format!("http://127.0.0.1:{}", mirror.addr.port());
    let r = reqwest::get(format!("{m_url}/v2/library/private/manifests/v1"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().unwrap(),
        md.to_string()
    );
    let b = reqwest::get(format!("{m_url}/v2/library/private/blobs/{ld}"))
        .await
        .unwrap();
    assert_eq!(b.status(), 200);
    assert_eq!(&b.bytes().await.unwrap()[..], b"private layer");

    // Without credentials the upstream refuses: 502 with a spec error body.
    let n_dir = dir.path().join("n");
    let mut config = server_config(&n_dir);
    config
        .add_upstream_flag(&format!("library={up_url}"))
        .unwrap();
    let anon_mirror = corral_mirror::server::start(config).await.unwrap();
    let r = reqwest::get(format!(
        "http://127.0.0.1:{}/v2/library/private/manifests/v1",
        anon_mirror.addr.port()
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["errors"][0]["code"].is_string());

    anon_mirror.stop().await.unwrap();
    mirror.stop().await.unwrap();
    upstream.stop().await.unwrap();
}
