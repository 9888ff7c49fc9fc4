//! The website in Debian's chromium, driven through the DevTools protocol
//! (tests/e2e/cdp.rs): a real `corral mirror serve` with pushed and signed
//! images, an OSTree repository with a stream file and a disk image. Every
//! page at 1280 px and at 390 px: no horizontal scrolling, the pull
//! command and the signature state visible, a screenshot kept, and axe-core
//! (scripts/setup.sh fetches it) finds no serious or critical violation.
//!
//! `CORRAL_SITE_SCREENSHOT=FILE` also copies the home page at 1280 px to
//! FILE (scripts/site-screenshot.sh makes docs/site-home.png so).

use std::path::{Path, PathBuf};
use std::process::Command;

use corral_test_support::{
    busybox_image, cdp, corral_bin, decode_png, layout_manifest_digest, require_tool, run_ok,
    scratch, Mirror, Skopeo,
};
// The helpers' module before they moved to corral-test-support.
use corral_test_support as mirror_support;
use serde_json::Value;

const AXE_VERSION: &str = "4.14.1";

/// axe-core's script, or `None` (outside CI) when scripts/setup.sh has not
/// fetched it.
fn axe_source() -> Option<String> {
    let dir = std::env::var_os("CORRAL_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/corral-tools"));
    let path = dir.join(format!("axe-core-{AXE_VERSION}/axe.min.js"));
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} is missing ({e}): run scripts/setup.sh",
                path.display()
            );
            eprintln!(
                "SKIPPING the accessibility checks: {} is missing (scripts/setup.sh fetches it)",
                path.display()
            );
            None
        }
    }
}

/// Where the screenshots go: the target directory's scratch space.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("site-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// An OSTree archive repository with a stream file, and a disk image
/// directory with a checksum.
fn published_files(w: &Path) -> (PathBuf, PathBuf) {
    let repo = w.join("ostree");
    run_ok(
        Command::new("ostree")
            .args(["init", "--mode=archive"])
            .arg(format!("--repo={}", repo.display())),
    );
    std::fs::create_dir_all(repo.join("streams")).unwrap();
    std::fs::write(
        repo.join("streams/atomic-43.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "name": "atomic-43",
            "ref": "corral/43/x86_64/atomic-host",
            "description": "Atomic Host 43: an image-based host updated as a whole, with rollback",
            "key": "8E1A5C0F3B2D4A6978C1D2E3F4A5B6C7D8E9F0A1",
            "versions": [
                {"version": "43.20260302.0", "commit": format!("{:064x}", 0xabcdefu64), "date": "2026-03-02T06:00:00Z",
                 "diff": {"added": ["htop-3.3.0-4.fc43"], "removed": [],
                          "changed": [{"name": "kernel", "from": "6.13.4-200.fc43", "to": "6.13.5-200.fc43"},
                                      {"name": "openssl-libs", "from": "3.2.4-1.fc43", "to": "3.2.4-2.fc43"}]}},
                {"version": "43.20260215.0", "commit": format!("{:064x}", 0x123456u64), "date": "2026-02-15T06:00:00Z",
                 "diff": {"added": [], "removed": [], "changed": []}},
            ],
            "disk_images": ["atomic-43.qcow2"],
            // as corral release records the OS image it pushed
            "os_image": {"repository": "mirror.example:5000/os/atomic-43",
                         "tags": ["43.20260302.0", "43"],
                         "digest": format!("sha256:{:064x}", 0xfeedu64),
                         "commit": format!("{:064x}", 0xabcdefu64), "version": "43.20260302.0",
                         "layers": 7, "size": 1097072, "signatures": ["cosign", "gpg"]},
        }))
        .unwrap(),
    )
    .unwrap();
    let disk = w.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let image = b"QFI\xfb a stand-in qcow2 image";
    std::fs::write(disk.join("atomic-43.qcow2"), image).unwrap();
    std::fs::write(
        disk.join("atomic-43.qcow2.sha256"),
        format!("{}  atomic-43.qcow2\n", sha256_hex(image)),
    )
    .unwrap();
    (repo, disk)
}

struct Check<'a> {
    path: &'a str,
    /// Text that must be visible without horizontal scrolling (each in an
    /// element that fits the viewport's width).
    visible: &'a [&'a str],
}

/// The elements whose own text contains `needle`, and whether each lies
/// within the viewport's width.
fn visible_js(needle: &str, width: u32) -> String {
    format!(
        r#"(() => {{
  const needle = {needle};
  const hits = [...document.querySelectorAll('main *')].filter(e =>
    [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.includes(needle)));
  return hits.map(e => {{ const r = e.getBoundingClientRect();
    return {{w: r.width, h: r.height, left: r.left, right: r.right, shown: getComputedStyle(e).visibility !== 'hidden'}}; }})
    .filter(r => r.w > 0 && r.h > 0 && r.shown && r.left >= 0 && r.right <= Math.min(window.innerWidth, {width}) + 0.5).length;
}})()"#,
        needle = serde_json::to_string(needle).unwrap(),
    )
}

const AXE_RUN: &str = r#"axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
  .filter(v => v.impact === 'serious' || v.impact === 'critical')
  .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})))"#;

#[test]
fn every_page_fits_phones_and_desktops_and_passes_axe() {
    require_tool("chromium");
    require_tool("htpasswd");
    require_tool("ostree");
    let axe = axe_source();
    let work = scratch();
    let w = work.path();
    let htpasswd = w.join("htpasswd");
    let entry = run_ok(Command::new("htpasswd").args(["-Bbn", "user", "pass"])).stdout;
    std::fs::write(&htpasswd, entry).unwrap();
    run_ok(
        Command::new(corral_bin())
            .args(["key", "generate", "--type", "cosign", "--out"])
            .arg(w.join("keys"))
            .env("CORRAL_KEY_PASSWORD", "pw"),
    );
    let (ostree, disk) = published_files(w);
    let pubkey = w.join("keys/cosign.pub");
    let mirror = Mirror::start(&[
        "--htpasswd",
        htpasswd.to_str().unwrap(),
        "--trust-cosign-key",
        pubkey.to_str().unwrap(),
        "--ostree-repo",
        ostree.to_str().unwrap(),
        "--disk-images",
        disk.to_str().unwrap(),
    ]);
    let host = mirror.host();
    let layout = busybox_image(w, "43");
    let skopeo = Skopeo::new();
    for dest in [
        "corral/base:43",
        "corral/base:42",
        "library/python3.12:latest",
    ] {
        run_ok(&mut skopeo.copy(
            None,
            &[
                "--dest-tls-verify=false",
                "--dest-creds",
                "user:pass",
                &format!("oci:{}:43", layout.display()),
                &format!("docker://{host}/{dest}"),
            ],
        ));
    }
    for image in ["corral/base:43", "library/python3.12:latest"] {
        run_ok(
            Command::new(corral_bin())
                .args([
                    "sign",
                    "image",
                    &format!("{host}/{image}"),
                    "--plain-http",
                    "--key",
                ])
                .arg(w.join("keys/cosign.key"))
                .env("CORRAL_KEY_PASSWORD", "pw")
                .env("CORRAL_REGISTRY_CREDS", "user:pass"),
        );
    }
    let digest = layout_manifest_digest(&layout, "43");

    let checks = [
        Check {
            path: "/",
            visible: &["verified (cosign", "corral/base"],
        },
        Check {
            path: "/repositories/corral/base",
            visible: &[
                &format!("podman pull --tls-verify=false {host}/corral/base:43"),
                "Signature: verified (cosign",
                "corral verify image",
            ],
        },
        Check {
            path: "/repositories/library/python3.12",
            visible: &[
                &format!("podman pull --tls-verify=false {host}/library/python3.12:latest"),
                "Signature: verified",
            ],
        },
        Check {
            path: "/atomic-host",
            visible: &["Commits signed by GPG key", "corral host remote add"],
        },
        Check {
            path: "/atomic-host/atomic-43",
            visible: &[
                "Commits signed by GPG key",
                "ostree remote add",
                "Image signed (cosign, GPG simple signing)",
                "corral host rebase ostree-image-signed:docker://mirror.example:5000/os/atomic-43:43",
                "bootc switch mirror.example:5000/os/atomic-43:43",
            ],
        },
        Check {
            path: "/downloads",
            visible: &["atomic-43.qcow2", "unsigned", "curl -fLO"],
        },
    ];
    // The page says what the catalog JSON says: the signed tag verifies.
    let json: Value = serde_json::from_str(
        &mirror_support::http_get(&format!(
            "{}/repositories/corral/base?format=json",
            mirror.url()
        ))
        .unwrap(),
    )
    .unwrap();
    let tag43 = json["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "43")
        .unwrap();
    assert_eq!(tag43["digest"], digest.as_str());
    assert_eq!(tag43["signature"]["status"], "verified", "{tag43}");

    // The page's verify commands, run as shown in an empty directory: each
    // downloads the trusted key from the mirror, and the signed tag
    // verifies with it. The same commands on the unsigned tag fail, so
    // they do check something.
    let served = mirror_support::http_get(&format!("{}/keys/cosign.pub", mirror.url())).unwrap();
    assert_eq!(served.as_bytes(), std::fs::read(&pubkey).unwrap());
    let commands = &json["commands"];
    let mut shown: Vec<String> = Vec::new();
    for list in ["verify_corral", "verify_skopeo"] {
        for c in commands[list].as_array().unwrap() {
            // the image lands in the test's directory, not /tmp
            shown.push(c.as_str().unwrap().replace(" oci:/tmp/", " oci:./"));
        }
    }
    assert!(shown[0].starts_with("curl "), "{shown:?}");
    let bin_dir = corral_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |dir: &Path, cmd: &str| {
        std::fs::create_dir_all(dir).unwrap();
        Command::new("sh")
            .args(["-ec", cmd])
            .current_dir(dir)
            .env("PATH", &path)
            .env("CORRAL_REGISTRY_CREDS", "user:pass")
            .output()
            .unwrap()
    };
    let verify_dir = w.join("verify");
    for cmd in &shown {
        let out = run(&verify_dir, cmd);
        // Debian's skopeo is built without sigstore: it refuses every
        // cosign-signed image under the policy, which is the policy
        // applied, not a verification. The page must have said so (the tag
        // is signed in the cosign format only); the corral commands above
        // verified.
        if cmd.starts_with("skopeo ")
            && String::from_utf8_lossy(&out.stderr).contains("sigstore disabled")
        {
            assert!(
                commands["skopeo_note"]
                    .as_str()
                    .is_some_and(|n| n.contains("corral verify image")),
                "skopeo cannot check this cosign-signed tag and the page does not say so: {commands}"
            );
            eprintln!("this skopeo cannot check cosign signatures (sigstore disabled): {cmd}");
            continue;
        }
        assert!(
            out.status.success(),
            "{cmd}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read(verify_dir.join("cosign.pub")).unwrap(),
        std::fs::read(&pubkey).unwrap()
    );
    // The same image as a Docker manifest: another digest, no signature.
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--dest-tls-verify=false",
            "--dest-creds",
            "user:pass",
            "--format",
            "v2s2",
            &format!("oci:{}:43", layout.display()),
            &format!("docker://{host}/corral/unsigned:1"),
        ],
    ));
    let unsigned_dir = w.join("verify-unsigned");
    for cmd in &shown {
        let cmd = cmd.replace("corral/base:43", "corral/unsigned:1");
        let out = run(&unsigned_dir, &cmd);
        let fetches_or_writes_policy = cmd.starts_with("curl ") && !cmd.contains(" verify ");
        if cmd.contains("corral verify") || cmd.starts_with("skopeo ") {
            assert!(!out.status.success(), "{cmd} passed on an unsigned tag");
        } else if fetches_or_writes_policy {
            assert!(out.status.success(), "{cmd}");
        }
    }

    let out = artifacts();
    let mut browser = cdp::Browser::start(&w.join("profile"), &w.join("chromium.log"));
    let mut failures = Vec::new();
    for (width, height) in [(1280u32, 900u32), (390, 844)] {
        browser.viewport(width, height);
        for c in &checks {
            let url = format!("{}{}", mirror.url(), c.path);
            browser.navigate(&url);
            let title = browser.eval("document.title");
            assert!(
                !title.as_str().unwrap_or("").starts_with("Not found"),
                "{url}: {title}"
            );
            // With mobile emulation the layout viewport widens to fit what
            // overflows, so innerWidth alone would hide a too-wide page:
            // the width asked for is the bound too.
            let scroll = browser.eval("[document.documentElement.scrollWidth, window.innerWidth]");
            let fits = |v: &Value| v.as_u64().is_some_and(|v| v <= u64::from(width));
            if scroll[0].as_u64() > scroll[1].as_u64() || !fits(&scroll[0]) || !fits(&scroll[1]) {
                failures.push(format!("{url} at {width} px scrolls sideways: {scroll}"));
            }
            for needle in c.visible {
                if browser
                    .eval(&visible_js(needle, width))
                    .as_u64()
                    .unwrap_or(0)
                    == 0
                {
                    failures.push(format!(
                        "{url} at {width} px: {needle:?} is not visible within the width"
                    ));
                }
            }
            // The copy buttons appear: the site's script ran under the CSP.
            if c.path.starts_with("/repositories/") {
                let shown = browser.eval(
                    "[...document.querySelectorAll('button.copy')].filter(b => !b.hidden).length",
                );
                if shown.as_u64().unwrap_or(0) == 0 {
                    failures.push(format!(
                        "{url}: the copy buttons stay hidden (site.js did not run)"
                    ));
                }
            }
            let png = browser.screenshot();
            let name = format!(
                "{}-{width}.png",
                if c.path == "/" {
                    "home".to_string()
                } else {
                    c.path.trim_matches('/').replace('/', "_")
                }
            );
            let file = out.join(&name);
            std::fs::write(&file, &png).unwrap();
            let (pw, _, _) = decode_png(&file);
            assert_eq!(pw, width, "{name}");
            if c.path == "/" && width == 1280 {
                if let Some(keep) = std::env::var_os("CORRAL_SITE_SCREENSHOT") {
                    std::fs::copy(&file, keep).unwrap();
                }
            }
            if let Some(axe) = &axe {
                browser.eval(&format!("{axe}\n;0"));
                let v = browser.eval(AXE_RUN);
                if v.as_array().is_none_or(|a| !a.is_empty()) {
                    failures.push(format!("{url} at {width} px: axe-core: {v:#}"));
                }
            }
        }
    }
    eprintln!(
        "screenshots of every page at 1280 and 390 px: {}",
        out.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
