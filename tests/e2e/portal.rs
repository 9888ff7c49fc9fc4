//! The community portal through the binary: `corral mirror serve --portal`
//! with an SQLite database, a Docker Engine for the checks and a
//! community key, driven in Debian's chromium through the DevTools
//! protocol (tests/support/cdp.rs): the site links the portal, a visitor
//! makes an account and submits a folder through the upload form; the
//! checks run and pass; the author cannot review; two reviewers approve;
//! the image is on the mirror, and skopeo pulls it with the policy the
//! page shows for the community key but not with another key; a
//! maintainer withdraws it and it leaves the portal's and the website's
//! listings (home page, search, catalog) and the registry's `_catalog`,
//! still pullable by digest. The session cookie is out of the page's reach (HttpOnly).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use corral_test_support::{
    busybox_image, cdp, corral_bin, http_get, repo_root, require_tool, run_ok, scratch, Dockerd,
    Mirror, Skopeo,
};
use serde_json::{json, Value};

const KEY_PASSWORD: &str = "the community key's password";

/// Marks the current document, so that a new one (even at the same
/// path, after a redirect back) can be told from it.
fn mark(b: &mut cdp::Browser) {
    assert_eq!(
        b.eval("(() => { window.__corralOld = true; return true; })()"),
        json!(true)
    );
}

/// Waits until a new document replaced the marked one and finished
/// loading; returns its path.
fn wait_for_page(b: &mut cdp::Browser) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fresh =
            b.eval("window.__corralOld === undefined && document.readyState === 'complete'");
        if fresh == json!(true) {
            return b
                .eval("location.pathname")
                .as_str()
                .unwrap_or("")
                .to_string();
        }
        assert!(Instant::now() < deadline, "no new page");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fills the named fields of the form posting to `action` and submits it
/// the way a click would; returns the path of the page it led to.
fn fill_and_submit(b: &mut cdp::Browser, action: &str, fields: &[(&str, &str)]) -> String {
    mark(b);
    let mut js = format!(
        "(() => {{ const f = document.querySelector('form[action={}]');",
        json!(action)
    );
    for (k, v) in fields {
        js.push_str(&format!("f.elements[{}].value = {};", json!(k), json!(v)));
    }
    js.push_str("f.requestSubmit(); return true; })()");
    assert_eq!(b.eval(&js), json!(true));
    wait_for_page(b)
}

fn text(b: &mut cdp::Browser) -> String {
    b.eval("document.body.innerText")
        .as_str()
        .unwrap()
        .to_string()
}

fn sign_up(b: &mut cdp::Browser, m: &Mirror, name: &str) {
    b.navigate(&format!("{}/community/sign-up", m.url()));
    let password = format!("{name}'s long password");
    let at = fill_and_submit(
        b,
        "/community/sign-up",
        &[("name", name), ("password", &password)],
    );
    assert_eq!(at, "/community", "{}", text(b));
    assert!(text(b).contains(&format!("Signed in as {name}")));
}

fn sign_out(b: &mut cdp::Browser) {
    mark(b);
    assert_eq!(
        b.eval("(() => { document.querySelector('form[action=\"/community/sign-out\"]').requestSubmit(); return true; })()"),
        json!(true)
    );
    wait_for_page(b);
}

/// The checks table of the template page: `[[check, result], …]`.
fn checks(b: &mut cdp::Browser) -> Value {
    b.eval(
        "[...document.querySelectorAll('table.checks tbody tr')].map(r => [...r.cells].slice(0, 2).map(c => c.textContent))",
    )
}

/// A cosign key pair made by `corral key generate`, its public half
/// copied to `DIR/NAME.pub`.
fn cosign_key(dir: &Path, name: &str) -> std::path::PathBuf {
    let keys = dir.join(name);
    run_ok(
        Command::new(corral_bin())
            .args(["key", "generate", "--type", "cosign", "--out"])
            .arg(&keys)
            .env("CORRAL_KEY_PASSWORD", KEY_PASSWORD),
    );
    std::fs::copy(keys.join("cosign.pub"), dir.join(format!("{name}.pub"))).unwrap();
    keys
}

#[test]
fn submit_check_review_publish_and_withdraw_in_chromium() {
    for tool in ["chromium", "tar", "skopeo", "htpasswd"] {
        require_tool(tool);
    }
    let w = scratch();
    let d = w.path();

    // The engine the checks build in, with the official base (busybox).
    let engine = Dockerd::start();
    let base = busybox_image(&d.join("base"), "43");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-daemon-host"])
            .arg(engine.host())
            .arg(format!("oci:{}:43", base.display()))
            .arg("docker-daemon:quay.io/corral/base:43"),
    );
    let community = cosign_key(d, "community");
    cosign_key(d, "official");
    std::fs::write(d.join("key-password"), KEY_PASSWORD).unwrap();

    let portal = d.join("portal.toml");
    std::fs::write(
        &portal,
        format!(
            "[portal]\nsqlite_path = {:?}\narchive_dir = {:?}\nreviewers = [\"rita\", \"rob\"]\n\
             maintainers = [\"max\"]\nsignup = true\ncommunity_key = {:?}\n\
             community_key_password_file = {:?}\ncommunity_public_key = {:?}\n\
             [portal.checks]\nengine = {:?}\nbases = [\"quay.io/corral/base:43\"]\n\
             memory = \"128M\"\ntimeout = 120\nlog_dir = {:?}\nmcs_dir = {:?}\nscratch = {:?}\n\
             [portal.publish]\nusername = \"portal\"\npassword_file = {:?}\n",
            d.join("portal.db"),
            d.join("archives"),
            community.join("cosign.key"),
            d.join("key-password"),
            d.join("community.pub"),
            engine.host(),
            d.join("logs"),
            d.join("mcs"),
            d,
            d.join("push-password"),
        ),
    )
    .unwrap();
    // The mirror takes pushes from its htpasswd users only: the portal's.
    std::fs::write(d.join("push-password"), "the portal's push password").unwrap();
    let htpasswd =
        run_ok(Command::new("htpasswd").args(["-Bbn", "portal", "the portal's push password"]))
            .stdout;
    std::fs::write(d.join("htpasswd"), htpasswd).unwrap();
    let folder = d.join("hello");
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["Dockerfile", "image.toml", "help.md", "help.1"] {
        std::fs::copy(
            repo_root().join("tests/fixtures/portal/hello").join(f),
            folder.join(f),
        )
        .unwrap();
    }
    let archive = d.join("hello.tar.gz");
    run_ok(
        Command::new("tar")
            .arg("czf")
            .arg(&archive)
            .arg("-C")
            .arg(d)
            .arg("hello"),
    );
    let archive =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&archive).unwrap());

    let community_pub = d.join("community.pub");
    let htpasswd = d.join("htpasswd");
    let m = Mirror::start(&[
        "--htpasswd",
        htpasswd.to_str().unwrap(),
        "--portal",
        portal.to_str().unwrap(),
        "--trust-cosign-key",
        community_pub.to_str().unwrap(),
    ]);
    let mut b = cdp::Browser::start(&d.join("profile"), &d.join("chromium.log"));

    // The site's navigation links the portal.
    b.navigate(&format!("{}/", m.url()));
    let href = b.eval("[...document.querySelectorAll('header nav a')].find(a => a.textContent === 'Community')?.getAttribute('href')");
    assert_eq!(href, json!("/community"), "{}", m.log());

    sign_up(&mut b, &m, "ann");
    assert_eq!(
        b.eval("document.cookie"),
        json!(""),
        "the session cookie is HttpOnly"
    );

    b.navigate(&format!("{}/community/submit", m.url()));
    let attach = format!(
        "(() => {{ const bytes = Uint8Array.from(atob({}), c => c.charCodeAt(0)); \
         const dt = new DataTransfer(); dt.items.add(new File([bytes], 'hello.tar.gz')); \
         document.querySelector('input[name=archive]').files = dt.files; return true; }})()",
        json!(archive)
    );
    assert_eq!(b.eval(&attach), json!(true));
    let at = fill_and_submit(
        &mut b,
        "/community/submit",
        &[("name", "hello"), ("kind", "dockerfile-folder")],
    );
    let page = text(&mut b);
    assert_eq!(at, "/community/templates/hello", "{page}\n{}", m.log());
    assert!(page.contains("under review"), "{page}");
    // help.md is rendered, and the author is offered no review form.
    assert_eq!(
        b.eval("document.querySelector('.help code')?.textContent"),
        json!("podman run --rm community/hello")
    );
    assert_eq!(
        b.eval("document.querySelector('form[action$=\"/review\"]') === null"),
        json!(true)
    );
    // Not listed before it is published; in the queue meanwhile.
    b.navigate(&format!("{}/community", m.url()));
    assert!(!text(&mut b).contains("hello"));
    b.navigate(&format!("{}/community/queue", m.url()));
    assert!(text(&mut b).contains("hello"));

    // The checks run: lint, the build in the engine, the labelled test run.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        b.navigate(&format!("{}/community/templates/hello", m.url()));
        let c = checks(&mut b);
        if !c.to_string().contains("pending") {
            assert_eq!(
                c,
                json!([["lint", "passed"], ["build", "passed"], ["test", "passed"]]),
                "{:?}",
                ["lint", "build", "test"].map(|c| http_get(&format!(
                    "{}/community/templates/hello/revisions/1/{c}.log",
                    m.url()
                )))
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "checks still pending: {c}\n{}",
            m.log()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // Each check links its log; lint findings link their rule's page.
    let test_log = http_get(&format!(
        "{}/community/templates/hello/revisions/1/test.log",
        m.url()
    ))
    .unwrap();
    assert!(test_log.contains("cat /hello.txt"), "{test_log}");
    let rule = b.eval("document.querySelector('ul.findings a')?.getAttribute('href')");
    let rule = rule.as_str().expect("a lint finding linked to its rule");
    assert!(rule.starts_with("/community/rules/CR"), "{rule}");
    b.navigate(&format!("{}{rule}", m.url()));
    assert!(text(&mut b).contains("Severity"));

    // Two reviewers approve; the second approval publishes.
    for reviewer in ["rita", "rob"] {
        b.navigate(&format!("{}/community/templates/hello", m.url()));
        sign_out(&mut b);
        sign_up(&mut b, &m, reviewer);
        b.navigate(&format!("{}/community/templates/hello", m.url()));
        let at = fill_and_submit(
            &mut b,
            "/community/templates/hello/review",
            &[("verdict", "approve"), ("comment", "builds and runs")],
        );
        assert_eq!(at, "/community/templates/hello", "{}", text(&mut b));
    }
    let page = text(&mut b);
    assert!(page.contains("published (revision 1)"), "{page}");
    b.navigate(&format!("{}/community", m.url()));
    assert!(text(&mut b).contains("hello"));

    // The page's policy snippet, with the key it names fetched from /keys.
    let view: Value = serde_json::from_str(
        &http_get(&format!("{}/community/templates/hello.json", m.url())).unwrap(),
    )
    .unwrap();
    let policy = &view["policy"];
    assert_eq!(
        policy["key_url"],
        json!(format!("http://{}/keys/community.pub", m.host()))
    );
    assert_eq!(
        http_get(policy["key_url"].as_str().unwrap()).unwrap(),
        std::fs::read_to_string(&community_pub).unwrap()
    );
    // The snippet requires the community key for HOST/community only.
    let policy_json: Value = serde_json::from_str(policy["policy_json"].as_str().unwrap()).unwrap();
    let scope = &policy_json["transports"]["docker"][format!("{}/community", m.host())];
    assert_eq!(scope[0]["type"], json!("sigstoreSigned"), "{policy_json:#}");
    assert_eq!(
        scope[0]["keyPath"],
        json!("/etc/containers/keys/community.pub")
    );
    assert!(policy["registries_d"]
        .as_str()
        .unwrap()
        .contains("use-sigstore-attachments: true"));
    // Debian's skopeo is built without sigstore ("Debian-local change:
    // sigstore disabled"), so the signature is checked with corral verify,
    // which applies the same rules; skopeo pulls the image.
    let image = format!("{}/community/hello:1", m.host());
    let verify = |key: &Path| {
        Command::new(corral_bin())
            .args(["verify", "image", &image, "--plain-http", "--key"])
            .arg(key)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !verify(&community_pub).status.success() {
        assert!(
            Instant::now() < deadline,
            "community/hello:1 was not published and signed\n{}",
            m.log()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let other = verify(&d.join("official.pub"));
    assert!(
        !other.status.success(),
        "another key verified the community image: {}",
        String::from_utf8_lossy(&other.stdout)
    );
    let skopeo = Skopeo::new();
    for (reference, dest) in [
        (&image, "pulled"),
        (&format!("{}/community/hello:latest", m.host()), "latest"),
    ] {
        run_ok(&mut skopeo.copy(
            None,
            &[
                "--src-tls-verify=false",
                &format!("docker://{reference}"),
                &format!("oci:{}:x", d.join(dest).display()),
            ],
        ));
    }
    let digest = String::from_utf8(
        run_ok(
            Command::new("skopeo")
                .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
                .arg(format!("docker://{image}")),
        )
        .stdout,
    )
    .unwrap();

    // The author's next revisions, from the command line: each replaces
    // the one under review; the published revision stays what is pulled.
    for want in [2, 3] {
        let out = run_ok(
            Command::new(corral_bin())
                .args(["portal", "submit"])
                .arg(&folder)
                .args(["--to", &format!("{}/community", m.url()), "--json"])
                .env("CORRAL_PORTAL_CREDS", "ann:ann's long password"),
        );
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            s,
            json!({"template": "hello", "revision": want,
                   "url": format!("{}/community/templates/hello", m.url())})
        );
    }
    let view: Value = serde_json::from_str(
        &http_get(&format!("{}/community/templates/hello.json", m.url())).unwrap(),
    )
    .unwrap();
    assert_eq!(view["template"]["current_revision"], json!(3));
    assert_eq!(view["template"]["published_revision"], json!(1));
    // a wrong password is refused with the server's words
    let out = Command::new(corral_bin())
        .args(["portal", "submit"])
        .arg(&folder)
        .args(["--to", &format!("{}/community", m.url())])
        .env("CORRAL_PORTAL_CREDS", "ann:not the password")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signing in as ann"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The website lists it apart from the official images, the catalog
    // lists its tags.
    let site = |path: &str| http_get(&format!("{}{path}", m.url())).unwrap();
    let home: Value = serde_json::from_str(&site("/?format=json")).unwrap();
    let listed = |home: &Value| {
        home["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "community/hello")
            .map(|r| r["group"].clone())
    };
    assert_eq!(
        listed(&home),
        Some(json!("Community templates")),
        "{home:#}"
    );
    assert!(site("/").contains("<h2 id=\"community-templates\">Community templates</h2>"));
    assert!(site("/catalog.json").contains("\"community/hello\""));
    assert!(site("/catalog").contains("community/hello"));
    assert!(site("/v2/_catalog").contains("\"community/hello\""));

    // A maintainer withdraws it: gone from the portal's and the website's
    // listings, its page says so, pullable by digest.
    b.navigate(&format!("{}/community/templates/hello", m.url()));
    sign_out(&mut b);
    sign_up(&mut b, &m, "max");
    b.navigate(&format!("{}/community/templates/hello", m.url()));
    fill_and_submit(
        &mut b,
        "/community/templates/hello/withdraw",
        &[("reason", "superseded")],
    );
    b.navigate(&format!("{}/community/templates/hello", m.url()));
    assert!(text(&mut b).contains("Withdrawn."));
    b.navigate(&format!("{}/community", m.url()));
    assert!(!text(&mut b).contains("hello"));
    let home: Value = serde_json::from_str(&site("/?format=json")).unwrap();
    assert_eq!(listed(&home), None, "{home:#}");
    let search: Value = serde_json::from_str(&site("/?q=community&format=json")).unwrap();
    assert_eq!(listed(&search), None, "{search:#}");
    assert!(!site("/").contains("community/hello"));
    assert!(!site("/?q=community").contains("community/hello"));
    let catalog = site("/catalog.json");
    assert!(!catalog.contains("community/hello"), "{catalog}");
    assert!(!site("/catalog").contains("community/hello"));
    // So does the registry API's catalog; tags still answer.
    let v2 = site("/v2/_catalog");
    assert!(!v2.contains("community/hello"), "{v2}");
    assert!(site("/v2/community/hello/tags/list").contains("\"latest\""));
    b.navigate(&format!("{}/repositories/community/hello", m.url()));
    assert!(text(&mut b).contains("Withdrawn."), "{}", text(&mut b));
    let by_digest = format!("{}/community/hello@{}", m.host(), digest.trim());
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--src-tls-verify=false",
            &format!("docker://{by_digest}"),
            &format!("oci:{}:x", d.join("by-digest").display()),
        ],
    ));
    drop(engine);
}
