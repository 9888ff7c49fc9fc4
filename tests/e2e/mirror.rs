//! End-to-end tests of `corral mirror serve` (the real binary) with the
//! clients it is for: Docker Engine through `registry-mirrors`, skopeo
//! through a registries.conf mirror, and a browser on the catalog page.
//! The client configuration comes from the snippets in docs/mirror.md, so
//! the documented snippets are the tested ones.

use std::path::Path;
use std::process::Command;

use corral_test_support::{
    busybox_image, cdp, decode_png, payload_image, Mirror, Skopeo, Upstream,
};
use corral_test_support::{
    layout_json, layout_manifest_digest, repo_root, require_tool, run_ok, scratch, Dockerd,
};

const HITS: &str = "corral_mirror_cache_hits_total";
const MISSES: &str = "corral_mirror_cache_misses_total";

/// The body of the first ```lang block after the heading containing
/// `heading` in docs/mirror.md.
fn doc_snippet(heading: &str, lang: &str) -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/mirror.md")).unwrap();
    let start = doc
        .lines()
        .position(|l| l.starts_with('#') && l.contains(heading))
        .unwrap_or_else(|| panic!("docs/mirror.md has no heading {heading:?}"));
    let mut lines = doc.lines().skip(start + 1);
    lines
        .by_ref()
        .find(|l| l.trim() == format!("```{lang}"))
        .unwrap_or_else(|| panic!("no ```{lang} block after {heading:?}"));
    let body: Vec<&str> = lines.take_while(|l| l.trim() != "```").collect();
    body.join("\n") + "\n"
}

/// The first layer digest of the image tagged `tag` in an OCI layout.
fn first_layer(layout: &Path, tag: &str) -> String {
    let manifest = layout_json(layout, &layout_manifest_digest(layout, tag));
    manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn push_to(skopeo: &Skopeo, layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let src = format!("oci:{}:{tag}", layout.display());
    let mut args = vec!["--dest-tls-verify=false", "--preserve-digests"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&src, dest]);
    run_ok(&mut skopeo.copy(None, &args));
}

#[test]
fn docker_engine_pulls_through_the_mirror() {
    let work = scratch();
    let layout = busybox_image(work.path(), "1");
    let layer = first_layer(&layout, "1");
    let mut upstream = Upstream::start();
    let skopeo = Skopeo::new();
    push_to(
        &skopeo,
        &layout,
        "1",
        &format!(
            "docker://127.0.0.1:{}/library/corral-busybox:1",
            upstream.port
        ),
        &[],
    );
    let mirror = Mirror::start(&["--upstream", &format!("library={}", upstream.url())]);

    let daemon_json =
        doc_snippet("Docker Engine", "json").replace("https://mirror.example:5000", &mirror.url());
    assert!(daemon_json.contains(&mirror.url()), "{daemon_json}");
    let engine = Dockerd::start_with_config(Some(&daemon_json));

    // docker.io/library/corral-busybox exists only behind the mirror (and
    // there is no route to Docker Hub), so a successful pull went through it.
    let image = "library/corral-busybox:1";
    let pull = || {
        let out = engine.docker().args(["pull", image]).output().unwrap();
        assert!(
            out.status.success(),
            "docker pull {image} failed:\n{}\ndockerd log:\n{}\nmirror log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            engine.log(),
            mirror.log()
        );
    };
    let rmi = || run_ok(engine.docker().args(["rmi", image]));
    let run = || {
        let out = run_ok(engine.docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "/bin/busybox",
            "echo",
            "hello from the mirror",
        ]));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hello from the mirror"
        );
    };

    pull();
    let (misses, hits) = (mirror.counter(MISSES), mirror.counter(HITS));
    assert!(
        misses >= 3,
        "manifest, config and layer are cache misses: {misses}"
    );
    assert!(mirror.has_blob(&layer), "the layer is cached");
    run();

    rmi();
    pull();
    assert_eq!(mirror.counter(MISSES), misses, "second pull is all hits");
    let hits2 = mirror.counter(HITS);
    assert!(hits2 >= hits + 3, "hits {hits} -> {hits2}");
    let blob_gets =
        upstream.requests_matching(&format!("\"GET /v2/library/corral-busybox/blobs/{layer} "));
    assert_eq!(blob_gets, 1, "the upstream served the layer once");

    // With the upstream gone the cache still serves the whole image.
    upstream.stop();
    rmi();
    pull();
    run();
    assert_eq!(mirror.counter(MISSES), misses);
    assert!(mirror.counter(HITS) > hits2);
}

#[test]
fn skopeo_pulls_through_the_documented_registries_conf() {
    let work = scratch();
    let layout = payload_image(work.path(), "2", b"corral registries.conf payload\n");
    let layer = first_layer(&layout, "2");
    let upstream = Upstream::start();
    let skopeo = Skopeo::new();
    push_to(
        &skopeo,
        &layout,
        "2",
        &format!(
            "docker://127.0.0.1:{}/library/corral-payload:2",
            upstream.port
        ),
        &[],
    );
    let mirror = Mirror::start(&["--upstream", &format!("library={}", upstream.url())]);

    // The documented snippet, for a plain-HTTP mirror on loopback.
    let conf = doc_snippet("podman / CRI-O", "toml")
        .replace("mirror.example:5000", &mirror.host())
        .replace("insecure = false", "insecure = true");
    assert!(conf.contains(&mirror.host()) && conf.contains("insecure = true"));
    let conf_path = work.path().join("registries.conf");
    std::fs::write(&conf_path, conf).unwrap();

    let out = work.path().join("out");
    let dest = format!("oci:{}:2", out.display());
    let copy = skopeo
        .copy(
            Some(&conf_path),
            &[
                "--preserve-digests",
                "docker://docker.io/library/corral-payload:2",
                &dest,
            ],
        )
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy through the mirror failed:\n{}\nmirror log:\n{}",
        String::from_utf8_lossy(&copy.stderr),
        mirror.log()
    );
    assert_eq!(
        layout_manifest_digest(&out, "2"),
        layout_manifest_digest(&layout, "2")
    );
    assert!(mirror.has_blob(&layer), "corral cached the layer");
    assert!(mirror
        .storage
        .join("repos/library/corral-payload/_tags/2")
        .is_file());
    assert!(mirror.counter(MISSES) >= 2);
    assert_eq!(
        upstream.requests_matching(&format!("\"GET /v2/library/corral-payload/blobs/{layer} ")),
        1
    );
}

#[test]
fn catalog_page_renders_in_headless_chromium() {
    require_tool("chromium");
    require_tool("htpasswd");
    let work = scratch();
    let htpasswd = work.path().join("htpasswd");
    let entry = run_ok(Command::new("htpasswd").args(["-Bbn", "user", "pass"])).stdout;
    std::fs::write(&htpasswd, entry).unwrap();
    let mirror = Mirror::start(&["--htpasswd", htpasswd.to_str().unwrap()]);
    let host = mirror.host();

    let layout = busybox_image(work.path(), "1.0");
    let digest = layout_manifest_digest(&layout, "1.0");
    let skopeo = Skopeo::new();
    let dest = format!("docker://{host}/apps/busybox:1.0");
    let anonymous = skopeo
        .copy(
            None,
            &[
                "--dest-tls-verify=false",
                &format!("oci:{}:1.0", layout.display()),
                &dest,
            ],
        )
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "anonymous push is refused");
    let creds = ["--dest-creds", "user:pass"];
    push_to(&skopeo, &layout, "1.0", &dest, &creds);
    let sig_tag = format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap());
    let sig = payload_image(work.path(), &sig_tag, b"a stand-in signature\n");
    push_to(
        &skopeo,
        &sig,
        &sig_tag,
        &format!("docker://{host}/apps/busybox:{sig_tag}"),
        &creds,
    );

    let profile = work.path().join("chromium-profile");
    let chromium = |extra: &[&str]| {
        let mut cmd = Command::new("timeout");
        cmd.args(["120", "chromium"])
            .args(cdp::HEADLESS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("{}/catalog", mirror.url()));
        run_ok(&mut cmd)
    };

    let dom = String::from_utf8(chromium(&["--dump-dom"]).stdout).unwrap();
    for needle in [
        "<h2 id=\"apps/busybox\">apps/busybox</h2>".to_string(),
        "<td>1.0</td>".to_string(),
        format!("<code>{digest}</code>"),
        format!("podman pull {host}/apps/busybox:1.0"),
        format!("docker pull {host}/apps/busybox:1.0"),
        // The mirror trusts no keys here: attached, not verified.
        "<td class=\"unverified\">signed, not verified: no trusted keys".to_string(),
    ] {
        assert!(dom.contains(&needle), "the DOM lacks {needle:?}:\n{dom}");
    }
    assert!(
        !dom.contains(&format!("<td>{sig_tag}</td>")),
        "signature tags are not listed as images"
    );

    let shot = work.path().join("catalog.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,900",
    ]);
    if let Some(keep) = std::env::var_os("CORRAL_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let (width, height, rgba) = decode_png(&shot);
    assert_eq!((width, height), (1280, 900));
    let background = &rgba[..4];
    let total = (width * height) as usize;
    let drawn = rgba.chunks(4).filter(|p| *p != background).count();
    let dark = rgba
        .chunks(4)
        .filter(|p| p[..3].iter().all(|&c| c < 96))
        .count();
    // Headings, a bordered table and several lines of text; a blank or
    // error page has (almost) none of either.
    assert!(
        drawn * 100 > total,
        "only {drawn} of {total} pixels differ from the background"
    );
    assert!(dark * 500 > total, "only {dark} dark (text) pixels");
}
