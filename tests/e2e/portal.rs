//! The community portal through the binary: `corral mirror serve --portal`
//! with an SQLite database, driven in Debian's chromium through the
//! DevTools protocol (tests/support/cdp.rs): the site links the portal,
//! a visitor makes an account, submits a folder through the upload form
//! and sees its checks pending; the session cookie is out of the page's
//! reach (HttpOnly).

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use corral_test_support::{cdp, require_tool, run_ok, scratch, Mirror};
use serde_json::{json, Value};

/// Waits until the page has left `from` and finished loading.
fn wait_for_page(b: &mut cdp::Browser, from: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let here = b
            .eval("location.pathname")
            .as_str()
            .unwrap_or("")
            .to_string();
        if here != from && b.eval("document.readyState") == json!("complete") {
            return here;
        }
        assert!(Instant::now() < deadline, "still on {from}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fills the named fields of the form posting to `action` and submits it
/// the way a click would.
fn fill_and_submit(b: &mut cdp::Browser, action: &str, fields: &[(&str, &str)]) -> String {
    let from = b.eval("location.pathname").as_str().unwrap().to_string();
    let mut js = format!(
        "(() => {{ const f = document.querySelector('form[action={}]');",
        json!(action)
    );
    for (k, v) in fields {
        js.push_str(&format!("f.elements[{}].value = {};", json!(k), json!(v)));
    }
    js.push_str("f.requestSubmit(); return true; })()");
    assert_eq!(b.eval(&js), json!(true));
    wait_for_page(b, &from)
}

fn text(b: &mut cdp::Browser) -> String {
    b.eval("document.body.innerText")
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn sign_up_submit_and_see_the_checks_in_chromium() {
    require_tool("chromium");
    require_tool("tar");
    let w = scratch();
    let portal = w.path().join("portal.toml");
    std::fs::write(
        &portal,
        format!(
            "[portal]\nsqlite_path = {:?}\narchive_dir = {:?}\nreviewers = [\"rita\", \"rob\"]\nsignup = true\n",
            w.path().join("portal.db"),
            w.path().join("archives")
        ),
    )
    .unwrap();
    let folder = w.path().join("hello");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("Dockerfile"),
        "FROM quay.io/corral/base:43\nRUN true\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("image.toml"),
        "[image]\nsummary = \"Says hello\"\ntags = [\"1\"]\narchitectures = [\"x86_64\"]\n",
    )
    .unwrap();
    std::fs::write(folder.join("help.md"), "# hello\n\nSays *hello*.\n").unwrap();
    let archive = w.path().join("hello.tar.gz");
    run_ok(
        Command::new("tar")
            .arg("czf")
            .arg(&archive)
            .arg("-C")
            .arg(w.path())
            .arg("hello"),
    );
    let archive =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&archive).unwrap());

    let m = Mirror::start(&["--portal", portal.to_str().unwrap()]);
    let mut b = cdp::Browser::start(&w.path().join("profile"), &w.path().join("chromium.log"));

    // The site's navigation links the portal.
    b.navigate(&format!("{}/", m.url()));
    let href = b.eval("[...document.querySelectorAll('header nav a')].find(a => a.textContent === 'Community')?.getAttribute('href')");
    assert_eq!(href, json!("/community"), "{}", m.log());

    b.navigate(&format!("{}/community/sign-up", m.url()));
    let at = fill_and_submit(
        &mut b,
        "/community/sign-up",
        &[("name", "ann"), ("password", "ann's long password")],
    );
    assert_eq!(at, "/community", "{}", text(&mut b));
    assert!(text(&mut b).contains("Signed in as ann"));
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
    let checks: Value = b.eval(
        "[...document.querySelectorAll('table.checks tbody tr')].map(r => [...r.cells].slice(0, 2).map(c => c.textContent))",
    );
    assert_eq!(
        checks,
        json!([
            ["lint", "pending"],
            ["build", "pending"],
            ["test", "pending"]
        ])
    );
    // help.md is rendered, and the author is offered no review form.
    assert_eq!(
        b.eval("document.querySelector('.help em')?.textContent"),
        json!("hello")
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
}
