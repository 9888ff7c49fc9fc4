//! Signing end to end: corral-sign against corral's mirror, Debian's skopeo
//! (GPG simple signing with a lookaside; its sigstore support is patched
//! out) and an independent Python checker of cosign's format.
//!
//! Everything runs through the `corral` binary: `corral key|sign|verify|
//! policy` and `corral mirror serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use corral_test_support::{corral_bin, repo_root, require_tool, run_ok, scratch, sha256_hex};

/// The `corral` binary; `serve` means `corral mirror serve`.
fn tool(what: &str) -> Command {
    let mut c = Command::new(corral_bin());
    if what == "serve" {
        c.args(["mirror", "serve"]);
    }
    c
}

fn sign_cmd() -> Command {
    let mut c = tool("sign");
    c.env_remove("CORRAL_KEY_PASSWORD")
        .env_remove("CORRAL_REGISTRY_CREDS");
    c
}

/// A corral mirror with user `t:t`, stopped on drop.
struct Mirror {
    child: Child,
    port: u16,
}

impl Mirror {
    /// With more `corral mirror serve` arguments.
    fn start_with(dir: &Path, extra: &[&str]) -> Mirror {
        require_tool("htpasswd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.join("htpasswd"),
            run_ok(Command::new("htpasswd").args(["-Bbn", "t", "t"])).stdout,
        )
        .unwrap();
        let child = tool("serve")
            .args(["--listen", &format!("127.0.0.1:{port}"), "--storage"])
            .arg(dir.join("storage"))
            .arg("--htpasswd")
            .arg(dir.join("htpasswd"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut m = Mirror { child, port };
        let up = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if !up {
            let _ = m.child.kill();
            panic!("mirror did not listen");
        }
        m.port = port;
        m
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `signatures` of each repository's tag `1` on `/catalog.json`.
fn catalog_signatures(host: &str) -> serde_json::Map<String, serde_json::Value> {
    let out = curl(&["-o", "-", &format!("http://{host}/catalog.json")]);
    let text = String::from_utf8(out.stdout).unwrap();
    let body = text.strip_suffix("200").expect("catalog.json answers 200");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let tag = r["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["tag"] == "1")
                .expect("tag 1 is listed");
            (
                r["name"].as_str().unwrap().to_string(),
                tag["signatures"].clone(),
            )
        })
        .collect()
}

/// (status, reason or key) of one catalog entry.
fn catalog_status(
    got: &serde_json::Map<String, serde_json::Value>,
    repo: &str,
) -> (String, String) {
    let s = &got[repo];
    let detail = s["reason"].as_str().or(s["key"].as_str()).unwrap_or("");
    (
        s["status"].as_str().unwrap().to_string(),
        detail.to_string(),
    )
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    let p = layout.join("blobs/sha256").join(&d[7..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    d
}

/// A one-layer OCI layout whose only file holds `content`; returns the
/// manifest digest.
fn make_image(work: &Path, name: &str, content: &str) -> (PathBuf, String) {
    make_platform_image(work, name, content, "amd64")
}

/// [`make_image`] for the linux platform `arch`.
fn make_platform_image(work: &Path, name: &str, content: &str, arch: &str) -> (PathBuf, String) {
    let layout = work.join(format!("layout-{name}"));
    let files = work.join(format!("files-{name}"));
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("hello"), content).unwrap();
    let tar = work.join(format!("{name}.tar"));
    run_ok(
        Command::new("tar")
            .args(["--mtime=@0", "--owner=0", "--group=0", "-cf"])
            .arg(&tar)
            .arg("-C")
            .arg(&files)
            .arg("hello"),
    );
    let layer = std::fs::read(&tar).unwrap();
    let layer_digest = put_blob(&layout, &layer);
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string();
    let config_digest = put_blob(&layout, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    let digest = put_blob(&layout, manifest.as_bytes());
    tag_one(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &digest,
        manifest.len(),
    );
    (layout, digest)
}

/// Makes `layout` an OCI layout whose one entry, tagged `1`, is `digest`.
fn tag_one(layout: &Path, media_type: &str, digest: &str, size: usize) {
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "1"}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
}

fn push(layout: &Path, dest: &str) {
    skopeo_push(layout, dest, &[]);
}

/// `skopeo copy` of the layout's tag `1` to `dest`, with `extra` flags.
fn skopeo_push(layout: &Path, dest: &str, extra: &[&str]) {
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .args(extra)
            .args(["--dest-tls-verify=false", "--dest-creds", "t:t"])
            .arg(format!("oci:{}:1", layout.display()))
            .arg(format!("docker://{dest}")),
    );
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// `verify image … --json`: (exit code, "error" kind or "verified").
fn verify(args: &[&str]) -> (i32, String) {
    let out = output(
        sign_cmd()
            .args(["verify", "image", "--plain-http", "--json"])
            .args(args),
    );
    let code = out.status.code().unwrap_or(-1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "verify {args:?} printed no JSON (exit {code})\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let kind = if v["verified"] == true {
        "verified".to_string()
    } else {
        v["error"].as_str().unwrap().to_string()
    };
    (code, kind)
}

/// curl, printing the HTTP status on stdout after any body.
fn curl(args: &[&str]) -> Output {
    require_tool("curl");
    output(
        Command::new("curl")
            .args(["-sS", "-w", "%{http_code}"])
            .args(args),
    )
}

/// The digest the registry serves for `image` (skopeo may recompress layers
/// on push, so it is not the layout's).
fn remote_digest(image: &str) -> String {
    sha256(
        &run_ok(
            Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{image}")),
        )
        .stdout,
    )
}

struct GpgHome(tempfile::TempDir);

impl GpgHome {
    fn new() -> GpgHome {
        require_tool("gpg");
        GpgHome(
            tempfile::Builder::new()
                .prefix("corral-gnupg-")
                .tempdir_in("/tmp")
                .unwrap(),
        )
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.path())
            .status();
    }
}

#[test]
fn gpg_signed_image_is_accepted_by_skopeo_and_tampering_is_refused() {
    require_tool("skopeo");
    require_tool("gpgv");
    let work = scratch();
    let w = work.path();
    let (trusted, other) = (GpgHome::new(), GpgHome::new());
    let mut fingerprints = Vec::new();
    for (home, out) in [(&trusted, "keys-a"), (&other, "keys-b")] {
        let generated = run_ok(
            sign_cmd()
                .args(["key", "generate", "--type", "gpg", "--gpg-homedir"])
                .arg(home.path())
                .arg("--out")
                .arg(w.join(out)),
        );
        let stdout = String::from_utf8(generated.stdout).unwrap();
        fingerprints.push(
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("fingerprint: "))
                .unwrap()
                .to_string(),
        );
    }
    let keyring = w.join("keys-a/corral-signing.gpg");
    let keyring = keyring.to_str().unwrap();
    let mirror = Mirror::start_with(w, &["--trust-gpg-keyring", keyring]);
    let host = mirror.host();

    let (base, _) = make_image(w, "base", "base");
    let (other_image, _) = make_image(w, "other", "other");
    push(&base, &format!("{host}/sample/base:1"));
    push(&base, &format!("{host}/sample/copy:1"));
    push(&other_image, &format!("{host}/sample/other:1"));
    push(&base, &format!("{host}/sample/wrongkey:1"));
    push(&base, &format!("{host}/sample/unsigned:1"));
    push(&base, &format!("{host}/sample/garbled:1"));
    push(&base, &format!("{host}/sample/tampered:1"));

    let sign = |home: &GpgHome, image: &str, creds: &str| {
        output(
            sign_cmd()
                .args([
                    "sign",
                    "image",
                    image,
                    "--gpg-key",
                    "corral image signing",
                    "--plain-http",
                    "--json",
                ])
                .arg("--gpg-homedir")
                .arg(home.path())
                .env("CORRAL_REGISTRY_CREDS", creds),
        )
    };
    // The lookaside takes uploads only with push credentials.
    let refused = sign(&trusted, &format!("{host}/sample/base:1"), "t:wrong");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{refused:?}"
    );

    let signed = sign(&trusted, &format!("{host}/sample/base:1"), "t:t");
    assert!(signed.status.success(), "{signed:?}");
    let signed: serde_json::Value = serde_json::from_slice(&signed.stdout).unwrap();
    let url = signed["url"].as_str().unwrap().to_string();
    assert!(url.ends_with("/signature-1"), "{url}");
    assert!(sign(&other, &format!("{host}/sample/wrongkey:1"), "t:t")
        .status
        .success());

    // Tampering: base's signature filed for another reference (same digest)
    // and for another image (other digest).
    let sig = w.join("base.sig");
    let got = curl(&["-o", sig.to_str().unwrap(), &url]);
    assert_eq!(got.stdout, b"200");
    // Signatures are never replaced.
    let again = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", sig.display()),
        &url,
    ]);
    assert!(again.stdout.ends_with(b"409"), "{again:?}");
    let other_digest = remote_digest(&format!("{host}/sample/other:1"));
    for target in [
        url.replace("/sample/base@", "/sample/copy@"),
        format!(
            "http://{host}/sigstore/sample/other@{}/signature-1",
            other_digest.replace(':', "=")
        ),
    ] {
        let put = curl(&[
            "-u",
            "t:t",
            "-X",
            "PUT",
            "--data-binary",
            &format!("@{}", sig.display()),
            &target,
        ]);
        assert_eq!(put.stdout, b"201", "{target}");
    }
    // Something that is no OpenPGP message at all, for the catalog.
    let garbled = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        "not a signature",
        &url.replace("/sample/base@", "/sample/garbled@"),
    ]);
    assert_eq!(garbled.stdout, b"201");
    // A trusted key's signature over data changed afterwards (uncompressed,
    // so the literal bytes can be edited): gpgv's BADSIG.
    let payload = w.join("payload.json");
    std::fs::write(
        &payload,
        r#"{"critical":{"identity":{"docker-reference":"x"}}}"#,
    )
    .unwrap();
    let signed = run_ok(
        Command::new("gpg")
            .arg("--homedir")
            .arg(trusted.path())
            .args([
                "--batch",
                "--compress-algo",
                "none",
                "--local-user",
                "corral image signing",
                "--sign",
                "--output",
                "-",
            ])
            .stdin(std::fs::File::open(&payload).unwrap()),
    )
    .stdout;
    let at = signed
        .windows(b"docker-reference".len())
        .position(|w| w == b"docker-reference")
        .expect("the literal payload is in the message");
    let mut tampered = signed.clone();
    tampered[at] = b'D';
    let tampered_path = w.join("tampered.sig");
    std::fs::write(&tampered_path, tampered).unwrap();
    let put = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", tampered_path.display()),
        &url.replace("/sample/base@", "/sample/tampered@"),
    ]);
    assert_eq!(put.stdout, b"201");

    let cases = [
        ("base", 0, "verified"),
        ("copy", 1, "other-reference"),
        ("other", 1, "other-digest"),
        ("wrongkey", 1, "wrong-key"),
        ("unsigned", 1, "no-signature"),
    ];
    for (repo, code, kind) in cases {
        let image = format!("{host}/sample/{repo}:1");
        assert_eq!(
            verify(&[&image, "--gpg-keyring", keyring]),
            (code, kind.to_string()),
            "{repo}"
        );
    }

    // The catalog checks the lookaside signatures against the keyring the
    // mirror trusts, and tells the refusals apart as verify does.
    let got = catalog_signatures(&host);
    for (repo, want) in [
        ("base", ("verified", fingerprints[0].as_str())),
        ("copy", ("not-verified", "other-reference")),
        ("other", ("not-verified", "other-digest")),
        ("wrongkey", ("not-verified", "unknown-key")),
        ("unsigned", ("unsigned", "")),
        ("garbled", ("not-verified", "bad-signature")),
        ("tampered", ("not-verified", "bad-signature")),
    ] {
        assert_eq!(
            catalog_status(&got, &format!("sample/{repo}")),
            (want.0.to_string(), want.1.to_string()),
            "{repo}: {got:?}"
        );
    }
    // Both are bad signatures, for different reasons.
    let detail = |repo: &str| got[repo]["detail"].as_str().unwrap().to_string();
    assert!(
        detail("sample/tampered").contains("does not match its data"),
        "{got:?}"
    );
    assert!(
        detail("sample/garbled").contains("not an OpenPGP"),
        "{got:?}"
    );
    assert!(
        detail("sample/wrongkey").contains(&fingerprints[1][24..]),
        "{got:?}"
    );
    // the page of all tags, one table per repository
    let page = String::from_utf8(curl(&[&format!("http://{host}/catalog")]).stdout).unwrap();
    let section = |repo: &str| {
        let start = page.find(&format!("<h2 id=\"sample/{repo}\">")).unwrap();
        let rest = &page[start..];
        rest[..rest.find("</table>").unwrap()].to_string()
    };
    assert!(
        section("base").contains(&format!("verified (gpg, key {})", fingerprints[0])),
        "{page}"
    );
    assert!(
        section("wrongkey").contains("signed, not verified: unknown key"),
        "{page}"
    );
    assert!(section("unsigned").contains(">unsigned</td>"), "{page}");

    // Debian's skopeo with the policy corral writes.
    let pol = w.join("policy");
    run_ok(
        sign_cmd()
            .args([
                "policy",
                "--mirror",
                &format!("http://{host}"),
                "--gpg-keyring",
                keyring,
                "--out",
            ])
            .arg(&pol),
    );
    for (repo, _, kind) in cases {
        let out = output(
            Command::new("skopeo")
                .arg("--policy")
                .arg(pol.join("policy.json"))
                .arg("--registries.d")
                .arg(pol.join("registries.d"))
                // oci: cannot store signatures; the source is still checked.
                .args([
                    "copy",
                    "--quiet",
                    "--remove-signatures",
                    "--src-tls-verify=false",
                ])
                .arg(format!("docker://{host}/sample/{repo}:1"))
                .arg(format!(
                    "oci:{}:x",
                    w.join(format!("pulled-{repo}")).display()
                )),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("skopeo copy of {repo}: {}", stderr.trim());
        assert_eq!(
            out.status.success(),
            kind == "verified",
            "skopeo copy of {repo}: {stderr}"
        );
        if kind != "verified" {
            assert!(
                stderr.contains("Source image rejected"),
                "skopeo copy of {repo}: {stderr}"
            );
        }
    }
}

#[test]
fn cosign_keys_sign_and_verify_and_match_an_independent_checker() {
    require_tool("skopeo");
    require_tool("python3");
    let py = output(Command::new("python3").args(["-c", "import cryptography"]));
    assert!(
        py.status.success(),
        "python3 -m pip install cryptography is needed"
    );
    let work = scratch();
    let w = work.path();
    for (dir, pw) in [("keys", "pw"), ("keys-other", "pw2")] {
        run_ok(
            sign_cmd()
                .args(["key", "generate", "--type", "cosign", "--out"])
                .arg(w.join(dir))
                .env("CORRAL_KEY_PASSWORD", pw),
        );
    }
    let key = w.join("keys/cosign.key");
    let pubkey = w.join("keys/cosign.pub");
    let mirror = Mirror::start_with(w, &["--trust-cosign-key", pubkey.to_str().unwrap()]);
    let host = mirror.host();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("BEGIN ENCRYPTED SIGSTORE PRIVATE KEY"));

    let (base, _) = make_image(w, "base", "base");
    push(&base, &format!("{host}/sample/base:1"));
    let digest = remote_digest(&format!("{host}/sample/base:1"));
    push(&base, &format!("{host}/sample/unsigned:1"));
    let image = format!("{host}/sample/base:1");
    let sign = |pw: &str| {
        output(
            sign_cmd()
                .args([
                    "sign",
                    "image",
                    &image,
                    "--plain-http",
                    "--creds",
                    "t:t",
                    "--key",
                ])
                .arg(&key)
                .env("CORRAL_KEY_PASSWORD", pw),
        )
    };

    let wrong = sign("nope");
    assert_eq!(wrong.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&wrong.stderr);
    assert!(msg.contains("wrong password"), "{msg}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = sign("pw");
    assert_eq!(open.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&open.stderr);
    assert!(
        msg.contains("group or others") && msg.contains("chmod 600"),
        "{msg}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let ok = sign("pw");
    assert!(ok.status.success(), "{ok:?}");

    let pubkey_s = pubkey.to_str().unwrap();
    assert_eq!(verify(&[&image, "--key", pubkey_s]), (0, "verified".into()));
    let other_pub = w.join("keys-other/cosign.pub");
    assert_eq!(
        verify(&[&image, "--key", other_pub.to_str().unwrap()]),
        (1, "wrong-key".into())
    );
    let unsigned = format!("{host}/sample/unsigned:1");
    // Same digest as base, but unsigned has no .sig of its own.
    assert_eq!(
        verify(&[&unsigned, "--key", pubkey_s]),
        (1, "no-signature".into())
    );

    // The referrers API lists the signature too.
    let referrers = curl(&[&format!("http://{host}/v2/sample/base/referrers/{digest}")]);
    let body = String::from_utf8_lossy(&referrers.stdout);
    assert!(
        body.contains(&format!(
            "\"{}\"",
            "application/vnd.oci.image.manifest.v1+json"
        )),
        "{body}"
    );

    // The independent checker, on the registry and on a pulled-back copy.
    let checker = repo_root().join("tests/e2e/sign/cosign_check.py");
    let out = run_ok(Command::new("python3").arg(&checker).args([
        pubkey_s,
        &digest,
        "registry",
        &format!("http://{host}/sample/base"),
    ]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{host}/sample/base")
    );
    let pulled = w.join("pulled");
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{host}/sample/base:{sig_tag}"))
            .arg(format!("oci:{}:sig", pulled.display())),
    );
    run_ok(Command::new("python3").arg(&checker).args([
        pubkey_s,
        &digest,
        "layout",
        pulled.to_str().unwrap(),
        "sig",
    ]));
    let other = output(Command::new("python3").arg(&checker).args([
        other_pub.to_str().unwrap(),
        &digest,
        "layout",
        pulled.to_str().unwrap(),
        "sig",
    ]));
    assert_eq!(
        other.status.code(),
        Some(1),
        "the checker accepted another key"
    );

    let got = catalog_signatures(&host);
    let (status, fingerprint) = catalog_status(&got, "sample/base");
    assert_eq!(status, "verified", "{got:?}");
    assert_eq!(fingerprint.len(), 64, "{got:?}");
    assert_eq!(
        catalog_status(&got, "sample/unsigned"),
        ("unsigned".into(), "".into())
    );

    // Without its `.sig` tag the signature is still a referrer: verify and
    // the catalog find it there.
    let tag_url = format!("http://{host}/v2/sample/base/manifests/{sig_tag}");
    let deleted = curl(&["-u", "t:t", "-X", "DELETE", "-o", "/dev/null", &tag_url]);
    assert_eq!(deleted.stdout, b"202");
    let gone = curl(&["-o", "/dev/null", &tag_url]);
    assert_eq!(gone.stdout, b"404");
    assert_eq!(verify(&[&image, "--key", pubkey_s]), (0, "verified".into()));
    assert_eq!(
        verify(&[&image, "--key", other_pub.to_str().unwrap()]),
        (1, "wrong-key".into())
    );
    assert_eq!(
        catalog_status(&catalog_signatures(&host), "sample/base"),
        ("verified".into(), fingerprint)
    );

    // A `.sig` manifest whose signatures were all taken out signs nothing:
    // no signature, not a wrong key.
    let index = curl(&[
        "-o",
        "-",
        &format!("http://{host}/v2/sample/base/referrers/{digest}"),
    ]);
    let index = String::from_utf8(index.stdout).unwrap();
    let index: serde_json::Value =
        serde_json::from_str(index.strip_suffix("200").unwrap()).unwrap();
    let sig_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let got = curl(&[
        "-o",
        "-",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("http://{host}/v2/sample/base/manifests/{sig_digest}"),
    ]);
    let got = String::from_utf8(got.stdout).unwrap();
    let mut empty: serde_json::Value =
        serde_json::from_str(got.strip_suffix("200").unwrap()).unwrap();
    empty["layers"] = serde_json::json!([]);
    let empty_path = w.join("empty-sig.json");
    std::fs::write(&empty_path, empty.to_string()).unwrap();
    let put = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", empty_path.display()),
        &tag_url,
    ]);
    assert_eq!(put.stdout, b"201");
    assert_eq!(
        verify(&[&image, "--key", pubkey_s]),
        (1, "no-signature".into())
    );

    // Over HTTPS to this plain-HTTP mirror: the error says so and names
    // the flag, for verify and for sign.
    for args in [
        vec!["verify", "image", &image, "--key", pubkey_s],
        vec![
            "sign",
            "image",
            &image,
            "--creds",
            "t:t",
            "--key",
            key.to_str().unwrap(),
        ],
    ] {
        let out = output(sign_cmd().args(&args).env("CORRAL_KEY_PASSWORD", "pw"));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{host} speaks plain HTTP, not HTTPS (pass --plain-http)"
            )),
            "{args:?}: {stderr}"
        );
    }
}

/// A mirror that takes bearer tokens only on `/v2/` and `/sigstore/` (as
/// Docker Hub does): corral sign fetches tokens from `/token` with its
/// basic credentials, for manifests, blob uploads and the lookaside.
#[test]
fn signing_against_a_token_only_registry() {
    require_tool("skopeo");
    require_tool("gpgv");
    let work = scratch();
    let w = work.path();
    run_ok(
        sign_cmd()
            .args(["key", "generate", "--type", "cosign", "--out"])
            .arg(w.join("keys"))
            .env("CORRAL_KEY_PASSWORD", "pw"),
    );
    let home = GpgHome::new();
    run_ok(
        sign_cmd()
            .args(["key", "generate", "--type", "gpg", "--gpg-homedir"])
            .arg(home.path())
            .arg("--out")
            .arg(w.join("keys")),
    );
    let config = w.join("mirror.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nhtpasswd = \"{}\"\ntoken_only = true\n",
            w.join("htpasswd").display()
        ),
    )
    .unwrap();
    let mirror = Mirror::start_with(w, &["--config", config.to_str().unwrap()]);
    let host = mirror.host();
    let (base, _) = make_image(w, "base", "base");
    push(&base, &format!("{host}/sample/base:1"));
    let image = format!("{host}/sample/base:1");
    let digest = remote_digest(&image);

    // Basic credentials alone no longer push there.
    let url = format!(
        "http://{host}/sigstore/sample/base@{}/signature-1",
        digest.replace(':', "=")
    );
    let basic = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        "x",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &url,
    ]);
    let headers = String::from_utf8_lossy(&basic.stdout).to_lowercase();
    assert!(headers.ends_with("401"), "{headers}");
    assert!(
        headers.contains("www-authenticate: bearer realm=")
            && headers.contains("scope=\"repository:sample/base:pull,push\""),
        "{headers}"
    );

    let sign = |extra: &[&str], creds: &str| {
        output(
            sign_cmd()
                .args(["sign", "image", &image, "--plain-http"])
                .args(extra)
                .env("CORRAL_REGISTRY_CREDS", creds)
                .env("CORRAL_KEY_PASSWORD", "pw"),
        )
    };
    let key = w.join("keys/cosign.key");
    let key_args = ["--key", key.to_str().unwrap()];
    let gpg_args = [
        "--gpg-key",
        "corral image signing",
        "--gpg-homedir",
        home.path().to_str().unwrap(),
    ];
    let wrong = sign(&key_args, "t:wrong");
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    let msg = String::from_utf8_lossy(&wrong.stderr);
    assert!(msg.contains("/token") && msg.contains("401"), "{msg}");

    let tokens_issued = || {
        let out = curl(&["-o", "-", &format!("http://{host}/metrics")]);
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("corral_mirror_requests_total{route=\"token\",status=\"200\"} ")
            })
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    for args in [&key_args[..], &gpg_args[..]] {
        let before = tokens_issued();
        let ok = sign(args, "t:t");
        assert!(ok.status.success(), "{args:?}: {ok:?}");
        // One token per signing: the blob uploads and the manifest push (or
        // the lookaside PUT) share the cached push token.
        assert_eq!(tokens_issued(), before + 1, "{args:?}");
    }
    // Pulls stay anonymous, so verify needs no credentials.
    let pubkey = w.join("keys/cosign.pub");
    assert_eq!(
        verify(&[&image, "--key", pubkey.to_str().unwrap()]),
        (0, "verified".into())
    );
    let keyring = w.join("keys/corral-signing.gpg");
    assert_eq!(
        verify(&[&image, "--gpg-keyring", keyring.to_str().unwrap()]),
        (0, "verified".into())
    );
}

/// `skopeo copy` of `image` with a policy and registries.d: whether it was
/// accepted. A refusal must be the policy's, not some other failure.
fn skopeo_accepts(policy: &Path, registries_d: &Path, image: &str, dest: &Path) -> bool {
    let out = output(
        Command::new("skopeo")
            .arg("--policy")
            .arg(policy)
            .arg("--registries.d")
            .arg(registries_d)
            .args([
                "copy",
                "--quiet",
                "--remove-signatures",
                "--src-tls-verify=false",
            ])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:x", dest.display())),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(
            stderr.contains("Source image rejected"),
            "skopeo copy of {image} failed for another reason: {stderr}"
        );
    }
    out.status.success()
}

/// Edits every docker scope's requirements in a policy.json to use
/// `identity` as their signedIdentity.
fn with_signed_identity(from: &Path, to: &Path, identity: serde_json::Value) {
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(from).unwrap()).unwrap();
    for (_, reqs) in p["transports"]["docker"].as_object_mut().unwrap() {
        for r in reqs.as_array_mut().unwrap() {
            r["signedIdentity"] = identity.clone();
        }
    }
    std::fs::write(to, serde_json::to_string_pretty(&p).unwrap()).unwrap();
}

/// The same signatures, checked by `corral verify` and by Debian's skopeo
/// with the policy `corral policy` writes (and with edited ones: another
/// `signedIdentity`), case by case: both must give the same answer, and
/// the answer containers-policy.json(5) gives.
#[test]
fn gpg_identity_rules_agree_with_skopeo_case_by_case() {
    require_tool("skopeo");
    require_tool("gpgv");
    let work = scratch();
    let w = work.path();
    let home = GpgHome::new();
    run_ok(
        sign_cmd()
            .args(["key", "generate", "--type", "gpg", "--gpg-homedir"])
            .arg(home.path())
            .arg("--out")
            .arg(w.join("keys")),
    );
    let keyring = w.join("keys/corral-signing.gpg");
    let keyring_s = keyring.to_str().unwrap();
    let mirror = Mirror::start_with(w, &[]);
    let host = mirror.host();
    // The same mirror by another name: another registry as far as
    // identities and policy scopes go.
    let alias = format!("localhost:{}", mirror.port);

    let (base, _) = make_image(w, "base", "base");
    for repo in [
        "sig/app:v1",
        "sig/app:v2",
        "sig/bare:v1",
        "sig/pinned:v1",
        "sig/other:v1",
        "sig/nullopt:v1",
    ] {
        push(&base, &format!("{host}/{repo}"));
    }
    let digest = remote_digest(&format!("{host}/sig/app:v1"));
    let sign = |image: &str| {
        let out = output(
            sign_cmd()
                .args(["sign", "image", image, "--gpg-key", "corral image signing"])
                .args(["--plain-http", "--creds", "t:t", "--json", "--gpg-homedir"])
                .arg(home.path()),
        );
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["url"].as_str().unwrap().to_string()
    };
    // Identity with a tag, and with a digest.
    let app_sig = sign(&format!("{host}/sig/app:v1"));
    sign(&format!("{host}/sig/pinned@{digest}"));
    // Signatures made with gpg by hand: the repository alone, as cosign
    // names it (and corral's GPG signing of a digest reference did), and a
    // payload whose "optional" is null, which containers/image refuses as
    // no simple signature at all.
    let hand_signed = |name: &str, identity: String, optional: serde_json::Value| {
        let payload = serde_json::json!({
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": "atomic container signature",
            },
            "optional": optional,
        });
        let path = w.join(format!("{name}.sig"));
        let mut gpg = Command::new("gpg");
        gpg.arg("--homedir")
            .arg(home.path())
            .args([
                "--batch",
                "--local-user",
                "corral image signing",
                "--sign",
                "--output",
            ])
            .arg(&path)
            .stdin(Stdio::piped());
        let mut child = gpg.spawn().unwrap();
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            payload.to_string().as_bytes(),
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
        path
    };
    let bare_sig = hand_signed("bare", format!("{host}/sig/bare"), serde_json::json!({}));
    let nullopt_sig = hand_signed(
        "nullopt",
        format!("{host}/sig/nullopt:v1"),
        serde_json::Value::Null,
    );
    // sig/app:v1's signature filed under another repository.
    let sig_file = w.join("app.sig");
    assert_eq!(
        curl(&["-o", sig_file.to_str().unwrap(), &app_sig]).stdout,
        b"200"
    );
    let put = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", sig_file.display()),
        &app_sig.replace("/sig/app@", "/sig/other@"),
    ]);
    assert_eq!(put.stdout, b"201");
    let put = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", bare_sig.display()),
        &app_sig.replace("/sig/app@", "/sig/bare@"),
    ]);
    assert_eq!(put.stdout, b"201");
    let put = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", nullopt_sig.display()),
        &app_sig.replace("/sig/app@", "/sig/nullopt@"),
    ]);
    assert_eq!(put.stdout, b"201");

    // policy.json for the mirror, then the alias merged into it.
    let pol = w.join("policy");
    run_ok(
        sign_cmd()
            .args(["policy", "--mirror", &format!("http://{host}")])
            .args(["--gpg-keyring", keyring_s, "--out"])
            .arg(&pol),
    );
    let policy = pol.join("policy.json");
    run_ok(
        sign_cmd()
            .args(["policy", "--mirror", &format!("http://{alias}")])
            .args(["--gpg-keyring", keyring_s, "--merge"])
            .arg(&policy),
    );
    let regd = pol.join("registries.d");
    let rules = [
        ("written", None),
        (
            "matchExact",
            Some(serde_json::json!({"type": "matchExact"})),
        ),
        (
            "matchRepository",
            Some(serde_json::json!({"type": "matchRepository"})),
        ),
        (
            "remapIdentity",
            Some(serde_json::json!({"type": "remapIdentity",
                "prefix": alias, "signedPrefix": host})),
        ),
        (
            "exactReference",
            Some(serde_json::json!({"type": "exactReference",
                "dockerReference": format!("{host}/sig/app:v1")})),
        ),
    ];
    // (image, what its signature claims, expected per rule in `rules`'
    // order).
    let cases = [
        (
            format!("{host}/sig/app:v1"),
            "the tag",
            [true, true, true, true, true],
        ),
        (
            format!("{host}/sig/app:v2"),
            "another tag",
            [false, false, true, false, true],
        ),
        (
            format!("{host}/sig/app@{digest}"),
            "by digest, a tag",
            [true, false, true, true, true],
        ),
        (
            format!("{host}/sig/bare:v1"),
            "the repository, no tag",
            [false, false, true, false, false],
        ),
        (
            format!("{host}/sig/bare@{digest}"),
            "by digest, no tag",
            [false, false, true, false, false],
        ),
        (
            format!("{host}/sig/pinned@{digest}"),
            "by digest, the digest",
            [true, true, true, true, false],
        ),
        (
            format!("{host}/sig/pinned:v1"),
            "a tag, the digest",
            [false, false, true, false, false],
        ),
        (
            format!("{host}/sig/other:v1"),
            "another repository",
            [false, false, false, false, true],
        ),
        (
            format!("{alias}/sig/app:v1"),
            "another host",
            [false, false, false, true, true],
        ),
        (
            format!("{host}/sig/nullopt:v1"),
            "the tag, \"optional\": null",
            [false; 5],
        ),
    ];
    let mut disagreements = Vec::new();
    for (r, (rule, identity)) in rules.iter().enumerate() {
        let policy_file = match identity {
            None => policy.clone(),
            Some(id) => {
                let p = w.join(format!("policy-{rule}.json"));
                with_signed_identity(&policy, &p, id.clone());
                p
            }
        };
        for (i, (image, what, want)) in cases.iter().enumerate() {
            let dest = w.join(format!("pulled-{r}-{i}"));
            let skopeo = skopeo_accepts(&policy_file, &regd, image, &dest);
            let mut args = vec![image.as_str(), "--gpg-keyring", keyring_s];
            let policy_s = policy_file.to_str().unwrap();
            // The written rule is also what verify applies without --policy.
            if identity.is_some() {
                args.extend(["--policy", policy_s]);
            }
            let (code, kind) = verify(&args);
            let corral = code == 0;
            eprintln!("{rule:16} {image:60} ({what}): skopeo {skopeo}, corral {corral} ({kind})");
            if skopeo != corral || corral != want[r] {
                disagreements.push(format!(
                    "{rule} {image} ({what}): skopeo {skopeo}, corral {kind}, want {}",
                    want[r]
                ));
            }
            if !corral {
                // A payload containers/image cannot read is one no key made
                // a valid signature of.
                let want_kind = if image.contains("nullopt") {
                    "wrong-key"
                } else {
                    "other-reference"
                };
                assert_eq!((code, kind.as_str()), (1, want_kind), "{rule} {image}");
            }
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");

    // The written policy passed to --policy gives the same answers as none.
    let (code, _) = verify(&[
        &cases[3].0,
        "--gpg-keyring",
        keyring_s,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    // A policy that demands no GPG signature for the image is an error,
    // not a verdict.
    let empty = w.join("accept.json");
    std::fs::write(&empty, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let out = output(
        sign_cmd()
            .args([
                "verify",
                "image",
                "--plain-http",
                &cases[0].0,
                "--gpg-keyring",
                keyring_s,
            ])
            .arg("--policy")
            .arg(&empty),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("demands no signedBy"),
        "{out:?}"
    );
}

/// `corral policy --merge` into a system policy that accepts anything:
/// the mirror's images then need the signature, every other registry
/// (here the alias, another scope) still pulls as before.
#[test]
fn policy_merge_keeps_other_registries_working() {
    require_tool("skopeo");
    require_tool("gpgv");
    let work = scratch();
    let w = work.path();
    let home = GpgHome::new();
    run_ok(
        sign_cmd()
            .args(["key", "generate", "--type", "gpg", "--gpg-homedir"])
            .arg(home.path())
            .arg("--out")
            .arg(w.join("keys")),
    );
    let keyring = w.join("keys/corral-signing.gpg");
    let mirror = Mirror::start_with(w, &[]);
    let host = mirror.host();
    let alias = format!("localhost:{}", mirror.port);
    let (base, _) = make_image(w, "base", "base");
    let (other, _) = make_image(w, "other", "other");
    push(&base, &format!("{host}/sample/signed:1"));
    push(&other, &format!("{host}/sample/unsigned:1"));
    run_ok(
        sign_cmd()
            .args(["sign", "image", &format!("{host}/sample/signed:1")])
            .args([
                "--gpg-key",
                "corral image signing",
                "--plain-http",
                "--creds",
                "t:t",
            ])
            .arg("--gpg-homedir")
            .arg(home.path()),
    );
    let etc = w.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let system = r#"{
    "default": [{"type": "insecureAcceptAnything"}],
    "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}
}
"#;
    let policy = etc.join("policy.json");
    std::fs::write(&policy, system).unwrap();
    let regd = etc.join("registries.d");
    let pulled = |n: &str| w.join(format!("pulled-{n}"));
    // Before: anything goes.
    assert!(skopeo_accepts(
        &policy,
        &regd,
        &format!("{host}/sample/unsigned:1"),
        &pulled("0")
    ));

    let out = run_ok(
        sign_cmd()
            .args([
                "policy",
                "--mirror",
                &format!("http://{host}"),
                "--gpg-keyring",
            ])
            .arg(&keyring)
            .arg("--merge")
            .arg(&policy),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("added transports.docker[\"{host}\"]")),
        "{stdout}"
    );
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    let before: serde_json::Value = serde_json::from_str(system).unwrap();
    assert_eq!(merged["default"], before["default"]);
    assert_eq!(
        merged["transports"]["docker-daemon"],
        before["transports"]["docker-daemon"]
    );
    assert_eq!(merged["transports"]["docker"].as_object().unwrap().len(), 1);

    assert!(skopeo_accepts(
        &policy,
        &regd,
        &format!("{host}/sample/signed:1"),
        &pulled("1")
    ));
    assert!(!skopeo_accepts(
        &policy,
        &regd,
        &format!("{host}/sample/unsigned:1"),
        &pulled("2")
    ));
    assert!(skopeo_accepts(
        &policy,
        &regd,
        &format!("{alias}/sample/unsigned:1"),
        &pulled("3")
    ));

    // Merging again replaces the entry and says what it was.
    let again = run_ok(
        sign_cmd()
            .args([
                "policy",
                "--mirror",
                &format!("http://{host}"),
                "--gpg-keyring",
            ])
            .arg(&keyring)
            .arg("--merge")
            .arg(&policy),
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("replaced"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_dir(&regd).unwrap().count(),
        1,
        "one registries.d file per mirror"
    );
}

/// Without a key, `sign image`, `verify image` and `policy` name both
/// kinds, so a GPG user learns the flag to use.
#[test]
fn missing_keys_name_the_gpg_alternative() {
    for (args, gpg_flag) in [
        (&["sign", "image", "h.example/r:1"][..], "--gpg-key"),
        (&["verify", "image", "h.example/r:1"][..], "--gpg-keyring"),
        (
            &["policy", "--mirror", "http://h.example", "--out", "x"][..],
            "--gpg-keyring",
        ),
    ] {
        let out = output(sign_cmd().args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--key") && stderr.contains(gpg_flag),
            "{args:?}: {stderr}"
        );
    }
}

/// A two-platform OCI layout tagged `1`: an index of an amd64 and an arm64
/// manifest, each with its own one-file layer. Returns (layout, index
/// digest, [amd64 digest, arm64 digest]).
fn make_index(work: &Path, name: &str) -> (PathBuf, String, [String; 2]) {
    let layout = work.join(format!("layout-{name}"));
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (single, digest) = make_platform_image(work, &format!("{name}-{arch}"), arch, arch);
        for blob in std::fs::read_dir(single.join("blobs/sha256")).unwrap() {
            put_blob(&layout, &std::fs::read(blob.unwrap().path()).unwrap());
        }
        let size = std::fs::metadata(single.join("blobs/sha256").join(&digest[7..]))
            .unwrap()
            .len();
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": arch},
        }));
        digests.push(digest);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    })
    .to_string();
    let index_digest = put_blob(&layout, index.as_bytes());
    tag_one(
        &layout,
        "application/vnd.oci.image.index.v1+json",
        &index_digest,
        index.len(),
    );
    (
        layout,
        index_digest,
        [digests[0].clone(), digests[1].clone()],
    )
}

/// Pushes a whole index, digests unchanged.
fn push_all(layout: &Path, dest: &str) {
    skopeo_push(layout, dest, &["--all", "--preserve-digests"]);
}

/// Uploads a GPG simple signature of `reference` at `digest`, made by the
/// key in `home`, as `signature-<n>` in the mirror's lookaside.
fn put_gpg_signature(
    home: &GpgHome,
    host: &str,
    repo: &str,
    reference: &str,
    digest: &str,
    n: usize,
) {
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "atomic container signature",
        },
        "optional": {},
    })
    .to_string();
    let mut child = Command::new("gpg")
        .arg("--homedir")
        .arg(home.path())
        .args([
            "--batch",
            "--local-user",
            "corral image signing",
            "--sign",
            "--output",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.as_bytes())
        .unwrap();
    let signed = child.wait_with_output().unwrap();
    assert!(signed.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sig");
    std::fs::write(&file, &signed.stdout).unwrap();
    let url = format!(
        "http://{host}/sigstore/{repo}@{}/signature-{n}",
        digest.replace(':', "=")
    );
    let put = curl(&[
        "-u",
        "t:t",
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", file.display()),
        &url,
    ]);
    assert_eq!(put.stdout, b"201", "{url}");
}

/// A multi-platform tag is signed as an index and as each platform
/// manifest; skopeo `copy --all` checks the policy for every manifest it
/// copies, and `corral verify` refuses the tag when one platform's
/// signature is missing or by another key, naming the platform.
#[test]
fn a_multi_platform_tag_is_signed_and_verified_per_platform() {
    require_tool("skopeo");
    require_tool("gpgv");
    let work = scratch();
    let w = work.path();
    let (trusted, other) = (GpgHome::new(), GpgHome::new());
    for (home, out) in [(&trusted, "keys-a"), (&other, "keys-b")] {
        run_ok(
            sign_cmd()
                .args(["key", "generate", "--type", "gpg", "--gpg-homedir"])
                .arg(home.path())
                .arg("--out")
                .arg(w.join(out)),
        );
    }
    let keyring = w.join("keys-a/corral-signing.gpg");
    let keyring = keyring.to_str().unwrap();
    let mirror = Mirror::start_with(w, &[]);
    let host = mirror.host();
    let (layout, index_digest, [amd64, arm64]) = make_index(w, "multi");
    for repo in ["signed", "partial", "otherkey", "cosigned"] {
        push_all(&layout, &format!("{host}/sample/{repo}:1"));
    }
    assert_eq!(
        remote_digest(&format!("{host}/sample/signed:1")),
        index_digest
    );

    // corral signs the index and both platform manifests.
    let signed = output(
        sign_cmd()
            .args([
                "sign",
                "image",
                &format!("{host}/sample/signed:1"),
                "--gpg-key",
                "corral image signing",
                "--plain-http",
                "--json",
                "--gpg-homedir",
            ])
            .arg(trusted.path())
            .env("CORRAL_REGISTRY_CREDS", "t:t"),
    );
    assert!(signed.status.success(), "{signed:?}");
    let signed: serde_json::Value = serde_json::from_slice(&signed.stdout).unwrap();
    assert_eq!(signed["digest"], index_digest.as_str());
    let platforms: Vec<(&str, &str)> = signed["platform_manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap(),
                p["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("linux/amd64", amd64.as_str()),
            ("linux/arm64", arm64.as_str())
        ]
    );
    for d in [&index_digest, &amd64, &arm64] {
        let url = format!(
            "http://{host}/sigstore/sample/signed@{}/signature-1",
            d.replace(':', "=")
        );
        assert_eq!(curl(&["-o", "/dev/null", &url]).stdout, b"200", "{url}");
    }

    // The same tag elsewhere with one platform's signature missing, or
    // made by another key: the index and amd64 are signed by the trusted
    // key as `corral sign` would.
    for repo in ["partial", "otherkey"] {
        let reference = format!("{host}/sample/{repo}:1");
        for d in [&index_digest, &amd64] {
            put_gpg_signature(&trusted, &host, &format!("sample/{repo}"), &reference, d, 1);
        }
    }
    put_gpg_signature(
        &other,
        &host,
        "sample/otherkey",
        &format!("{host}/sample/otherkey:1"),
        &arm64,
        1,
    );

    // corral verify checks all three.
    let verify_json = |repo: &str| {
        let out = output(sign_cmd().args([
            "verify",
            "image",
            "--plain-http",
            "--json",
            &format!("{host}/sample/{repo}:1"),
            "--gpg-keyring",
            keyring,
        ]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };
    let (code, v) = verify_json("signed");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        v["result"]["platform_manifests"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    for (repo, kind) in [("partial", "no-signature"), ("otherkey", "wrong-key")] {
        let (code, v) = verify_json(repo);
        assert_eq!((code, v["error"].as_str()), (Some(1), Some(kind)), "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("platform linux/arm64") && msg.contains(&arm64),
            "{repo}: {msg}"
        );
    }

    // skopeo copy --all under the policy corral writes: it checks each
    // manifest it copies, so only the fully signed tag gets through.
    let pol = w.join("policy");
    run_ok(
        sign_cmd()
            .args([
                "policy",
                "--mirror",
                &format!("http://{host}"),
                "--gpg-keyring",
                keyring,
                "--out",
            ])
            .arg(&pol),
    );
    for (repo, accepted) in [("signed", true), ("partial", false), ("otherkey", false)] {
        let dest = w.join(format!("pulled-{repo}"));
        let out = output(
            Command::new("skopeo")
                .arg("--policy")
                .arg(pol.join("policy.json"))
                .arg("--registries.d")
                .arg(pol.join("registries.d"))
                .args([
                    "copy",
                    "--quiet",
                    "--all",
                    "--preserve-digests",
                    "--remove-signatures",
                    "--src-tls-verify=false",
                ])
                .arg(format!("docker://{host}/sample/{repo}:1"))
                .arg(format!("oci:{}:x", dest.display())),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), accepted, "{repo}: {stderr}");
        if accepted {
            // Both platforms came along.
            for d in [&amd64, &arm64] {
                assert!(dest.join("blobs/sha256").join(&d[7..]).is_file(), "{d}");
            }
        } else {
            assert!(stderr.contains("Source image rejected"), "{repo}: {stderr}");
        }
    }

    // cosign: one `.sig` per manifest; without the arm64 one the tag is
    // refused.
    let pw = "multi-pw";
    run_ok(
        sign_cmd()
            .args(["key", "generate", "--type", "cosign", "--out"])
            .arg(w.join("cosign"))
            .env("CORRAL_KEY_PASSWORD", pw),
    );
    let cosigned = format!("{host}/sample/cosigned:1");
    run_ok(
        sign_cmd()
            .args(["sign", "image", &cosigned, "--plain-http", "--key"])
            .arg(w.join("cosign/cosign.key"))
            .env("CORRAL_KEY_PASSWORD", pw)
            .env("CORRAL_REGISTRY_CREDS", "t:t"),
    );
    let public = w.join("cosign/cosign.pub");
    let public = public.to_str().unwrap();
    assert_eq!(
        verify(&[&cosigned, "--key", public]),
        (0, "verified".to_string())
    );
    for d in [&index_digest, &amd64, &arm64] {
        let sig = format!("{host}/sample/cosigned:{}.sig", d.replace(':', "-"));
        assert!(!remote_digest(&sig).is_empty());
    }
    run_ok(
        Command::new("skopeo")
            .args(["delete", "--tls-verify=false", "--creds", "t:t"])
            .arg(format!(
                "docker://{host}/sample/cosigned:{}.sig",
                arm64.replace(':', "-")
            )),
    );
    assert_eq!(
        verify(&[&cosigned, "--key", public]),
        (1, "no-signature".to_string())
    );
}
