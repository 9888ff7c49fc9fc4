//! The portal's pages over real HTTP: a server on 127.0.0.1 with an SQLite
//! database, driven by a client that keeps its own cookie, like a browser,
//! so several people (and an attacker) can be played at once.

use std::net::SocketAddr;
use std::sync::Arc;

use corral_portal::accounts::Htpasswd;
use corral_portal::config::PortalConfig;
use corral_portal::db::Database;
use corral_portal::model::{CheckKind, CheckStatus, TemplateState};
use corral_portal::store::Store;
use corral_portal::web::{self, Portal, WebOptions};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE};
use reqwest::StatusCode;

const PASSWORD: &str = "a long enough password";
const XSS_ACCOUNT: &str = "\"><svg/onload=alert(1)>";
const DOCKERFILE: &str = "FROM quay.io/corral/base:43\nRUN echo hello > /hello\n";
const IMAGE_TOML: &str =
    "[image]\nsummary = \"Says hello\"\ntags = [\"1\"]\narchitectures = [\"x86_64\"]\n";

struct Server {
    base: String,
    db: Database,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A portal with accounts ann (author), rita and rob (reviewers), max
    /// (maintainer), mallory and the XSS-named one; hank is an htpasswd user.
    async fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("portal.db");
        let text = format!(
            "[portal]\nsqlite_path = {:?}\narchive_dir = {:?}\nreviewers = [\"rita\", \"rob\"]\n\
             maintainers = [\"max\"]\nsignup = true\n{extra}",
            db_path,
            dir.path().join("archives")
        );
        let config = PortalConfig::parse(&text).unwrap();
        let hank = bcrypt::hash("hank's password", 4).unwrap();
        let htpasswd = Htpasswd::parse(&format!("hank:{hank}\n"));
        let mut store = Store::open(&config.database, config.policy.clone())
            .unwrap()
            .with_bcrypt_cost(4);
        for name in ["ann", "rita", "rob", "max", "mallory", XSS_ACCOUNT] {
            store
                .create_account(name, PASSWORD, &htpasswd, 1_760_000_000)
                .unwrap();
        }
        let db = config.database.clone();
        let portal = Portal::new(
            config,
            store,
            WebOptions {
                prefix: "/community".into(),
                secure_cookies: false,
                htpasswd,
                listings: Default::default(),
            },
        )
        .unwrap();
        let app = web::router(Arc::new(portal));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Server {
            base: format!("http://{addr}"),
            db,
            _dir: dir,
        }
    }

    /// A second connection to the database: what the check runner (not
    /// built yet) and an operator see.
    fn store(&self) -> Store {
        Store::open(&self.db, Default::default()).unwrap()
    }

    fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
            cookie: None,
            last_set_cookie: None,
        }
    }
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The CSRF token in the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
    last_set_cookie: Option<String>,
}

impl Browser {
    async fn finish(&mut self, r: reqwest::Response) -> Page {
        let status = r.status();
        let headers = r.headers().clone();
        if let Some(c) = headers.get(SET_COOKIE) {
            let c = c.to_str().unwrap().to_string();
            let value = c
                .split(';')
                .next()
                .unwrap()
                .strip_prefix("corral_portal=")
                .unwrap()
                .to_string();
            self.cookie = (!value.is_empty()).then_some(value);
            self.last_set_cookie = Some(c);
        }
        Page {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("cookie", format!("corral_portal={c}"));
        }
        r
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    async fn get_json(&mut self, path: &str) -> serde_json::Value {
        let p = self.get(path).await;
        assert_eq!(p.headers[CONTENT_TYPE], "application/json", "{}", p.body);
        serde_json::from_str(&p.body).unwrap()
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
        let r = self
            .request(reqwest::Method::POST, path)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    async fn post_multipart(&mut self, fields: &[(&str, &str)], archive: &[u8]) -> Page {
        let b = "----corral-test-boundary";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"t.tar\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(archive);
        body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        let r = self
            .request(reqwest::Method::POST, "/community/submit")
            .header(CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    async fn sign_in(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/community/sign-in").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/community/sign-in",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
    }

    async fn signed_in_as(&mut self, name: &str) -> Browser {
        let p = self.sign_in(name, PASSWORD).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        Browser {
            http: self.http.clone(),
            base: self.base.clone(),
            cookie: self.cookie.clone(),
            last_set_cookie: None,
        }
    }

    /// The token of this browser's session, from a page with a form.
    async fn csrf(&mut self) -> String {
        self.get("/community/submit").await.csrf()
    }

    async fn submit(&mut self, name: &str, archive: &[u8]) -> Page {
        let csrf = self.csrf().await;
        self.post_multipart(
            &[
                ("csrf", &csrf),
                ("name", name),
                ("kind", "dockerfile-folder"),
            ],
            archive,
        )
        .await
    }
}

async fn signed_in(server: &Server, name: &str) -> Browser {
    server.browser().signed_in_as(name).await
}

/// A tar of a library folder with this help.md.
fn folder(help: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("hello/Dockerfile", DOCKERFILE),
        ("hello/image.toml", IMAGE_TOML),
        ("hello/help.md", help),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tar whose one entry has this raw path (tar's builder refuses `..`).
fn raw_entry(path: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, data).unwrap();
    b.into_inner().unwrap()
}

fn pass_checks(server: &Server, template: &str, revision: u32) {
    let mut s = server.store();
    for kind in CheckKind::ALL {
        s.record_check(
            "corral",
            template,
            revision,
            kind,
            CheckStatus::Passed,
            Some(&format!("logs/{template}/{revision}/{kind}.log")),
            1_760_000_100,
        )
        .unwrap();
    }
}

#[tokio::test]
async fn sign_in_out_and_cookies() {
    let server = Server::start("").await;
    let mut b = server.browser();
    let form = b.get("/community/sign-in").await;
    let visitor_cookie = b.cookie.clone().expect("the form page starts a session");
    let set = b.last_set_cookie.clone().unwrap();
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/community",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag: {set}");
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let bad = b.sign_in("ann", "not the password").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains("wrong name or password"));
    assert!(!b.get("/community").await.body.contains("Signed in as"));

    let good = b.sign_in("ann", PASSWORD).await;
    assert_eq!(good.status, StatusCode::SEE_OTHER);
    let ann_cookie = b.cookie.clone().unwrap();
    assert_ne!(ann_cookie, visitor_cookie, "sign-in starts a new session");
    let home = b.get("/community").await;
    assert!(home
        .body
        .contains("Signed in as <strong class=\"account\">ann</strong>"));
    // The visitor's id from before sign-in is worth nothing now.
    let mut planted = server.browser();
    planted.cookie = Some(visitor_cookie);
    assert!(!planted
        .get("/community")
        .await
        .body
        .contains("Signed in as"));

    // The mirror's htpasswd users sign in with their own password.
    let mut hank = server.browser();
    assert_eq!(
        hank.sign_in("hank", "hank's password").await.status,
        StatusCode::SEE_OTHER
    );
    assert!(hank.get("/community").await.body.contains("Signed in as"));

    // Sign-out ends the session on the server, not only in this browser.
    let csrf = b.csrf().await;
    let out = b.post("/community/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(b.cookie.is_none(), "the cookie is cleared");
    let mut stolen = server.browser();
    stolen.cookie = Some(ann_cookie);
    assert!(!stolen.get("/community").await.body.contains("Signed in as"));
}

#[tokio::test]
async fn csrf_tokens_are_checked_on_every_post() {
    let server = Server::start("").await;
    let mut ann = signed_in(&server, "ann").await;
    let archive = folder("# hello\n");
    for token in ["", "0123456789abcdef", &"f".repeat(64)] {
        let p = ann
            .post_multipart(
                &[
                    ("csrf", token),
                    ("name", "hello"),
                    ("kind", "dockerfile-folder"),
                ],
                &archive,
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "token {token:?}");
    }
    let p = ann
        .post_multipart(
            &[("name", "hello"), ("kind", "dockerfile-folder")],
            &archive,
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "no token at all");
    assert!(
        server.store().template("hello").unwrap().is_none(),
        "nothing submitted"
    );

    assert_eq!(
        ann.submit("hello", &archive).await.status,
        StatusCode::SEE_OTHER
    );
    pass_checks(&server, "hello", 1);
    let mut rita = signed_in(&server, "rita").await;
    let audit = server.store().audit_log().unwrap().len();
    let p = rita
        .post(
            "/community/templates/hello/review",
            &[("revision", "1"), ("verdict", "approve"), ("comment", "ok")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let mut max = signed_in(&server, "max").await;
    let p = max
        .post(
            "/community/templates/hello/withdraw",
            &[("reason", "x"), ("csrf", "nope")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = max.post("/community/sign-out", &[("csrf", "nope")]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(
        max.get("/community").await.body.contains("Signed in as"),
        "still signed in"
    );
    assert!(server.store().reviews("hello").unwrap().is_empty());
    assert_eq!(
        server.store().audit_log().unwrap().len(),
        audit,
        "nothing changed"
    );

    // Without a session cookie there is no token to match: refused.
    let mut stranger = server.browser();
    let p = stranger
        .post(
            "/community/sign-in",
            &[("name", "ann"), ("password", PASSWORD), ("csrf", "")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(stranger.cookie.is_none());
}

/// A review through the page. The form's `reviewer` field is not read:
/// who reviews is the session's account.
async fn review(b: &mut Browser, csrf: &str, verdict: &str) -> Page {
    b.post(
        "/community/templates/hello/review",
        &[
            ("csrf", csrf),
            ("revision", "1"),
            ("verdict", verdict),
            ("comment", "fine"),
            ("reviewer", "rob"),
        ],
    )
    .await
}

#[tokio::test]
async fn sessions_act_only_as_their_own_account() {
    let server = Server::start("").await;
    let mut ann = signed_in(&server, "ann").await;
    assert_eq!(
        ann.submit("hello", &folder("# hello\n")).await.status,
        StatusCode::SEE_OTHER
    );
    // Checks pending: an approval is refused by the rules.
    let mut rita = signed_in(&server, "rita").await;
    let token = rita.csrf().await;
    assert_eq!(
        review(&mut rita, &token, "approve").await.status,
        StatusCode::FORBIDDEN
    );
    pass_checks(&server, "hello", 1);

    // ann's token with rita's cookie: refused.
    let ann_token = ann.csrf().await;
    assert_eq!(
        review(&mut rita, &ann_token, "approve").await.status,
        StatusCode::FORBIDDEN
    );
    // The author cannot approve their own template through the page.
    let p = review(&mut ann, &ann_token, "approve").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("is the author of hello"), "{}", p.body);
    // Nor can someone who is not a reviewer.
    let mut mallory = signed_in(&server, "mallory").await;
    let t = mallory.csrf().await;
    assert_eq!(
        review(&mut mallory, &t, "approve").await.status,
        StatusCode::FORBIDDEN
    );
    assert!(server.store().reviews("hello").unwrap().is_empty());
    // The page offers the review form to reviewers only, never to the author.
    assert!(!ann
        .get("/community/templates/hello")
        .await
        .body
        .contains("/review\""));
    assert!(rita
        .get("/community/templates/hello")
        .await
        .body
        .contains("/review\""));

    let token = rita.csrf().await;
    assert_eq!(
        review(&mut rita, &token, "approve").await.status,
        StatusCode::SEE_OTHER
    );
    let reviews = server.store().reviews("hello").unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].reviewer, "rita", "not the form's \"rob\"");
    assert!(
        server.store().listed().unwrap().is_empty(),
        "one approval of two"
    );
    let mut rob = signed_in(&server, "rob").await;
    let token = rob.csrf().await;
    assert_eq!(
        review(&mut rob, &token, "approve").await.status,
        StatusCode::SEE_OTHER
    );

    // Published: listed, with its pull command.
    let listing = rob.get("/community").await;
    assert!(listing.body.contains("href=\"/community/templates/hello\""));
    let json = rob.get_json("/community.json").await;
    assert_eq!(json["templates"][0]["name"], "hello");
    let page = rob.get("/community/templates/hello").await;
    assert!(
        page.body.contains("podman pull 127.0.0.1:"),
        "{}",
        page.body
    );
    assert!(page.body.contains("community/hello"));
    assert!(
        page.body
            .contains("href=\"/community/templates/hello/revisions/1/build.log\""),
        "check logs linked"
    );

    // A maintainer withdraws: gone from listings, the page says so.
    let mut max = signed_in(&server, "max").await;
    let page = max.get("/community/templates/hello").await;
    assert!(page.body.contains("/withdraw\""));
    let p = max
        .post(
            "/community/templates/hello/withdraw",
            &[("csrf", &page.csrf()), ("reason", "abandoned upstream")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(!max
        .get("/community")
        .await
        .body
        .contains("/community/templates/hello\""));
    assert_eq!(
        max.get_json("/community.json").await["templates"],
        serde_json::json!([])
    );
    let page = max.get("/community/templates/hello").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<strong>Withdrawn.</strong>"));
    assert!(page.body.contains("abandoned upstream"), "the audit trail");
    assert!(!page.body.contains("podman pull"));
    let j = max.get_json("/community/templates/hello.json").await;
    assert_eq!(j["withdrawn"], true);
    assert_eq!(j["template"]["state"], "withdrawn");
    assert_eq!(
        server.store().template("hello").unwrap().unwrap().state,
        TemplateState::Withdrawn
    );
    // Accept: application/json gives the same twin.
    let r = max
        .request(reqwest::Method::GET, "/community/templates/hello")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn user_text_comes_back_escaped() {
    let server = Server::start("").await;
    let mut x = signed_in(&server, XSS_ACCOUNT).await;
    let help = "# Hi\n\n<script>alert('help')</script>\n\n[click](javascript:alert(1))\n";
    assert_eq!(
        x.submit("hello", &folder(help)).await.status,
        StatusCode::SEE_OTHER
    );
    pass_checks(&server, "hello", 1);
    let mut rita = signed_in(&server, "rita").await;
    let page = rita.get("/community/templates/hello").await;
    let csrf = page.csrf();
    let comment = "<script>alert(\"comment\")</script><img src=x onerror=alert(2)>";
    let p = rita
        .post(
            "/community/templates/hello/review",
            &[
                ("csrf", &csrf),
                ("revision", "1"),
                ("verdict", "request-changes"),
                ("comment", comment),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    for b in [&mut rita, &mut x] {
        let page = b.get("/community/templates/hello").await.body;
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("<svg"), "{page}");
        assert!(!page.contains("javascript:"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(&quot;comment&quot;)"),
            "{page}"
        );
        assert!(
            page.contains("&quot;&gt;&lt;svg/onload=alert(1)&gt;"),
            "the author's name: {page}"
        );
    }
    // The account name in the bar, and the queue.
    let bar = x.get("/community/queue").await.body;
    assert!(bar.contains(
        "Signed in as <strong class=\"account\">&quot;&gt;&lt;svg/onload=alert(1)&gt;</strong>"
    ));
    // A template name with markup is refused, and the refusal is escaped.
    let p = x.submit("<b>x</b>", &folder("# x\n")).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(
        !p.body.contains("<b>x</b>") && p.body.contains("&lt;b&gt;x&lt;/b&gt;"),
        "{}",
        p.body
    );
    // The JSON twin carries the text as it was given, as JSON.
    let j = x.get_json("/community/templates/hello.json").await;
    assert_eq!(j["reviews"][0]["comment"], comment);
    assert_eq!(j["template"]["author"], XSS_ACCOUNT);
}

#[tokio::test]
async fn hostile_and_oversize_uploads_are_refused() {
    let server = Server::start("[portal.uploads]\nmax_total = \"64K\"\nmax_file = \"16K\"\n").await;
    let mut ann = signed_in(&server, "ann").await;
    let p = ann.submit("evil", &raw_entry("../evil", b"x")).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(
        p.body
            .contains("archive entry &quot;../evil&quot; is refused"),
        "{}",
        p.body
    );
    let p = ann.submit("evil", &raw_entry("/etc/evil", b"x")).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("/etc/evil"));
    // One file over the per-file limit.
    let p = ann
        .submit("big", &raw_entry("big", &vec![b'x'; 20 << 10]))
        .await;
    assert_eq!(p.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", p.body);
    assert!(p.body.contains("big"));
    // A body declared larger than the cap is refused before it is read...
    let p = ann.submit("huge", &vec![0u8; 512 << 10]).await;
    assert_eq!(p.status, StatusCode::PAYLOAD_TOO_LARGE);
    // ... and one without a length (chunked) is cut off at the cap.
    let csrf = ann.csrf().await;
    let b = "----corral-test-boundary";
    let head = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nhuge\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ndockerfile-folder\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"t.tar\"\r\n\r\n"
    );
    let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(head.into_bytes())];
    chunks.extend((0..24).map(|_| Ok(vec![0u8; 8192])));
    let r = ann
        .request(reqwest::Method::POST, "/community/submit")
        .header(CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A folder without what a library folder needs, named.
    let p = ann.submit("empty", &raw_entry("README", b"hi")).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Dockerfile"));
    let mut s = server.store();
    for name in ["evil", "big", "huge", "empty"] {
        assert!(s.template(name).unwrap().is_none(), "{name} recorded");
    }
    assert!(!server._dir.path().join("evil").exists());
    let kept: Vec<_> = std::fs::read_dir(server._dir.path().join("archives"))
        .unwrap()
        .collect();
    assert!(
        kept.is_empty(),
        "nothing of a refused upload is kept: {kept:?}"
    );
    // Not signed in: refused before the body is read.
    let mut visitor = server.browser();
    let csrf = visitor.get("/community/sign-in").await.csrf();
    let p = visitor
        .post_multipart(
            &[
                ("csrf", &csrf),
                ("name", "x"),
                ("kind", "dockerfile-folder"),
            ],
            &folder("x"),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_ins_and_submissions_are_rate_limited() {
    let server = Server::start("[portal.rate_limits]\nsign_ins = 3\nsubmissions = 2\n").await;
    let mut b = server.browser();
    for _ in 0..3 {
        assert_eq!(
            b.sign_in("rob", "wrong password!").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let p = b.sign_in("rob", PASSWORD).await;
    assert_eq!(
        p.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = p.headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    // The same address cannot move on to another account either.
    assert_eq!(
        server.browser().sign_in("rita", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let server = Server::start("[portal.rate_limits]\nsubmissions = 2\n").await;
    let mut ann = signed_in(&server, "ann").await;
    for _ in 0..2 {
        assert_eq!(
            ann.submit("hello", &folder("# hi\n")).await.status,
            StatusCode::SEE_OTHER
        );
    }
    let p = ann.submit("hello", &folder("# hi\n")).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.headers.contains_key(RETRY_AFTER));
    assert_eq!(server.store().revisions("hello").unwrap().len(), 2);
}

/// Two replicas over one database, each with the website's listing rules
/// of its own mirror: a withdrawal through one reaches the other's rules
/// on its next refresh (the check runner's tick), not before, and a
/// replica opened later starts with the withdrawn templates unlisted (the
/// withdraw form's own unlisting is tests/e2e/portal.rs's).
#[test]
fn replicas_unlist_withdrawn_templates_on_the_website() {
    use corral_portal::model::{TemplateKind, Verdict};
    use corral_site::listings::Listings;

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[portal]\nsqlite_path = {:?}\narchive_dir = {:?}\nreviewers = [\"rita\", \"rob\"]\n\
         maintainers = [\"max\"]\n",
        dir.path().join("portal.db"),
        dir.path().join("archives")
    );
    let replica = |listings: &Arc<Listings>| {
        let config = PortalConfig::parse(&text).unwrap();
        let store = Store::open(&config.database, config.policy.clone()).unwrap();
        Portal::new(
            config,
            store,
            WebOptions {
                prefix: "/community".into(),
                secure_cookies: false,
                htpasswd: Htpasswd::default(),
                listings: listings.clone(),
            },
        )
        .unwrap()
    };
    let (la, lb) = (Arc::new(Listings::new()), Arc::new(Listings::new()));
    let (a, b) = (replica(&la), replica(&lb));
    assert_eq!(
        lb.group_apart("community/hello").as_deref(),
        Some(web::COMMUNITY_GROUP)
    );
    let digest = format!("sha256:{}", "1".repeat(64));
    a.store()
        .submit("ann", "hello", TemplateKind::DockerfileFolder, &digest, 1)
        .unwrap();
    for kind in CheckKind::ALL {
        a.store()
            .record_check("corral", "hello", 1, kind, CheckStatus::Passed, None, 2)
            .unwrap();
    }
    for r in ["rita", "rob"] {
        a.store()
            .review(r, "hello", 1, Verdict::Approve, "ok", 3)
            .unwrap();
    }
    a.store().withdraw("max", "hello", "superseded", 4).unwrap();
    a.refresh_listings().unwrap();
    assert_eq!(la.unlisted("community/hello").as_deref(), Some("withdrawn"));
    assert!(lb.is_listed("community/hello"), "b has not looked yet");
    b.refresh_listings().unwrap();
    assert!(!lb.is_listed("community/hello"));
    let lc = Arc::new(Listings::new());
    let _c = replica(&lc);
    assert!(!lc.is_listed("community/hello"));
}
