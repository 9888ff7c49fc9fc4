//! The portal's web pages (docs/portal.md, "The web pages"): server-rendered
//! HTML in the site's frame, each with a JSON twin, over the [`Store`].
//!
//! - [`http`]: cookies, forms, the headers every answer carries, errors.
//! - [`ratelimit`]: sign-in and submission limits per account and address.
//! - `pages`: the HTML and JSON of each page.
//! - `submit`: the upload form's body, read under a size cap, unpacked
//!   and checked before anything is kept.
//!
//! Every POST checks the session's CSRF token before it reads anything
//! else; who may do what is the store's rules, never re-decided here.
//! [`router`] gives routes under a prefix (`/community`); the caller merges
//! them into its server (the mirror's, joined by corral-cli).

pub mod http;
mod pages;
pub mod ratelimit;
pub(crate) mod submit;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Request, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use corral_site::listings::Listings;

use crate::accounts::Htpasswd;
use crate::config::PortalConfig;
use crate::model::{Template, TemplateState, Verdict};
use crate::sessions::{tokens_match, Session};
use crate::store::{Store, StoreError};
use http::{wants_json, Form, WebError};
use ratelimit::RateLimiter;

/// The largest urlencoded form (sign-in, review, withdraw).
const MAX_FORM: usize = 64 * 1024;

/// How the pages are served.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// The path the pages live under, `/community`.
    pub prefix: String,
    /// Whether cookies are `Secure` (the server speaks TLS).
    pub secure_cookies: bool,
    /// The mirror's htpasswd users, who sign in as they are.
    pub htpasswd: Htpasswd,
    /// The website's listing rules: the portal lists `community/` apart as
    /// [`COMMUNITY_GROUP`] and leaves its withdrawn templates out.
    pub listings: Arc<Listings>,
}

/// What a withdrawn template's repository page says.
const WITHDRAWN: &str = "withdrawn";

/// The group the website lists published templates in.
pub const COMMUNITY_GROUP: &str = "Community templates";

/// Why the portal could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("opening the portal's database: {0}")]
    Store(#[from] StoreError),
    #[error("creating {path}: {source}")]
    ArchiveDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The portal's web state: the store, the settings and the rate limits.
pub struct Portal {
    store: Mutex<Store>,
    config: PortalConfig,
    options: WebOptions,
    sign_ins: RateLimiter,
    submissions: RateLimiter,
}

impl Portal {
    /// Opens the configured database and makes the archive directory.
    pub fn open(config: PortalConfig, options: WebOptions) -> Result<Portal, OpenError> {
        let store = Store::open(&config.database, config.policy.clone())?;
        Portal::new(config, store, options)
    }

    /// The portal over an open store (tests open theirs with a cheap
    /// bcrypt cost).
    pub fn new(
        config: PortalConfig,
        store: Store,
        options: WebOptions,
    ) -> Result<Portal, OpenError> {
        std::fs::create_dir_all(&config.archive_dir).map_err(|source| OpenError::ArchiveDir {
            path: config.archive_dir.clone(),
            source,
        })?;
        options
            .listings
            .set_namespace(crate::publish::NAMESPACE, COMMUNITY_GROUP);
        let portal = Portal {
            store: Mutex::new(store),
            sign_ins: RateLimiter::new(config.rate_limits.sign_ins, Duration::from_secs(600)),
            submissions: RateLimiter::new(
                config.rate_limits.submissions,
                Duration::from_secs(3600),
            ),
            config,
            options,
        };
        portal.refresh_listings()?;
        Ok(portal)
    }

    /// Leaves the withdrawn templates out of the website's listings, as
    /// the database says (another replica may have withdrawn one). Blocks.
    pub fn refresh_listings(&self) -> Result<(), StoreError> {
        let withdrawn = self.store().withdrawn()?;
        self.options
            .listings
            .replace_unlisted(withdrawn.into_iter().map(|t| {
                (
                    crate::publish::repository_of(&t.name),
                    WITHDRAWN.to_string(),
                )
            }));
        Ok(())
    }

    fn prefix(&self) -> &str {
        &self.options.prefix
    }

    /// Where the check runner keeps its logs, when it runs.
    fn log_dir(&self) -> Option<&std::path::Path> {
        self.config.checks.as_ref().map(|c| c.log_dir.as_path())
    }

    /// The community key's policy snippet for a mirror reached as `host`.
    fn policy_snippet(&self, host: &str) -> Option<crate::publish::PolicySnippet> {
        let publish = self.config.publish.as_ref()?;
        let scheme = if self.options.secure_cookies {
            "https"
        } else {
            "http"
        };
        Some(crate::publish::policy_snippet(
            host,
            scheme,
            &publish.public_key_name(),
        ))
    }

    pub fn config(&self) -> &PortalConfig {
        &self.config
    }

    /// The store, for work beside the pages (the check runner). Blocks:
    /// call it off the async threads.
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn session_secs(&self) -> i64 {
        i64::from(self.config.session_hours) * 3600
    }
}

/// The pages' routes, under the prefix.
pub fn router(portal: Arc<Portal>) -> Router {
    let p = portal.prefix().trim_end_matches('/').to_string();
    Router::new()
        .route(&p, get(listing))
        .route(&format!("{p}/"), get(listing))
        .route(&format!("{p}.json"), get(listing))
        .route(&format!("{p}/queue"), get(queue))
        .route(&format!("{p}/queue.json"), get(queue))
        .route(&format!("{p}/sign-in"), get(sign_in_form).post(sign_in))
        .route(&format!("{p}/sign-up"), get(sign_up_form).post(sign_up))
        .route(&format!("{p}/sign-out"), post(sign_out))
        .route(
            &format!("{p}/submit"),
            get(submit_form).post(submit::submit),
        )
        .route(&format!("{p}/templates/{{name}}"), get(template_page))
        .route(&format!("{p}/templates/{{name}}/review"), post(review))
        .route(&format!("{p}/templates/{{name}}/withdraw"), post(withdraw))
        .route(
            &format!("{p}/templates/{{name}}/revisions/{{number}}/{{log}}"),
            get(check_log),
        )
        .route(&format!("{p}/rules/{{id}}"), get(rule_page))
        .with_state(portal)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `f` on the store, off the async threads (bcrypt and the database
/// block).
pub(crate) async fn db<T: Send + 'static>(
    p: &Arc<Portal>,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WebError> {
    let p = p.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = p.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    })
    .await
    .map_err(|e| WebError::internal("the database task", &e))?
    .map_err(WebError::from)
}

/// Who is asking: the session their cookie names, if it is live.
#[derive(Debug, Clone, Default)]
pub(crate) struct Visitor {
    pub id: Option<String>,
    pub session: Option<Session>,
}

impl Visitor {
    pub fn account(&self) -> Option<&str> {
        self.session.as_ref()?.account.as_deref()
    }

    pub fn csrf(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.csrf.as_str())
    }

    /// The signed-in account, after checking the form's token.
    pub fn checked(&self, token: &str) -> Result<Option<&str>, WebError> {
        match &self.session {
            Some(s) if !token.is_empty() && tokens_match(&s.csrf, token) => {
                Ok(s.account.as_deref())
            }
            _ => Err(WebError::csrf()),
        }
    }
}

pub(crate) async fn visitor(p: &Arc<Portal>, headers: &HeaderMap) -> Result<Visitor, WebError> {
    let Some(id) = http::session_cookie(headers) else {
        return Ok(Visitor::default());
    };
    let lookup = id.clone();
    let session = db(p, move |s| s.session(&lookup, now())).await?;
    Ok(Visitor {
        id: session.as_ref().map(|_| id),
        session,
    })
}

/// A page with a form needs a session for its token: a visitor without
/// one gets one (and its cookie).
async fn with_session(
    p: &Arc<Portal>,
    v: Visitor,
) -> Result<(Visitor, Option<header::HeaderValue>), WebError> {
    if v.session.is_some() {
        return Ok((v, None));
    }
    let ttl = p.session_secs();
    let new = db(p, move |s| s.create_session(None, now(), ttl)).await?;
    let cookie = http::set_cookie(&new.id, ttl, p.prefix(), p.options.secure_cookies);
    Ok((
        Visitor {
            id: Some(new.id),
            session: Some(new.session),
        },
        Some(cookie),
    ))
}

/// Replaces the visitor's session with a signed-in one (a new id: one
/// planted before sign-in is worthless after).
async fn start_signed_in(
    p: &Arc<Portal>,
    old: Option<String>,
    account: String,
) -> Result<Response, WebError> {
    let ttl = p.session_secs();
    let new = db(p, move |s| {
        if let Some(old) = old {
            s.end_session(&old)?;
        }
        s.create_session(Some(&account), now(), ttl)
    })
    .await?;
    let mut r = http::see_other(p.prefix());
    r.headers_mut().insert(
        header::SET_COOKIE,
        http::set_cookie(&new.id, ttl, p.prefix(), p.options.secure_cookies),
    );
    Ok(r)
}

async fn read_form(body: Body) -> Result<Form, WebError> {
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    Ok(Form::parse(&bytes))
}

fn finish(r: Result<Response, WebError>, json: bool, p: &Portal) -> Response {
    r.unwrap_or_else(|e| e.render(json, p.prefix()))
}

async fn listing(State(p): State<Arc<Portal>>, uri: Uri, headers: HeaderMap) -> Response {
    templates_page(p, &uri, &headers, Store::listed, pages::listing).await
}

async fn queue(State(p): State<Arc<Portal>>, uri: Uri, headers: HeaderMap) -> Response {
    templates_page(p, &uri, &headers, Store::under_review, pages::queue).await
}

/// A page of templates (the listing, the review queue), or its JSON twin.
async fn templates_page(
    p: Arc<Portal>,
    uri: &Uri,
    headers: &HeaderMap,
    fetch: fn(&mut Store) -> Result<Vec<Template>, StoreError>,
    render: fn(&Portal, &Visitor, &[Template]) -> String,
) -> Response {
    let json = wants_json(uri, headers);
    let r = async {
        let v = visitor(&p, headers).await?;
        let templates = db(&p, fetch).await?;
        Ok(if json {
            http::json(StatusCode::OK, &pages::listing_json(&templates))
        } else {
            http::html_page(StatusCode::OK, render(&p, &v, &templates))
        })
    }
    .await;
    finish(r, json, &p)
}

async fn template_page(
    State(p): State<Arc<Portal>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&uri, &headers);
    // `NAME.json` is always the twin of NAME.
    let name = name.strip_suffix(".json").unwrap_or(&name).to_string();
    let r = async {
        let v = visitor(&p, &headers).await?;
        let (v, cookie) = if json {
            (v, None)
        } else {
            with_session(&p, v).await?
        };
        let mut view = pages::TemplateView::load(&p, name).await?;
        view.policy = p.policy_snippet(&http::host(&headers));
        let mut r = if json {
            http::json(StatusCode::OK, &view.json(&http::host(&headers)))
        } else {
            http::html_page(
                StatusCode::OK,
                pages::template(&p, &v, &view, &http::host(&headers)),
            )
        };
        if let Some(c) = cookie {
            r.headers_mut().insert(header::SET_COOKIE, c);
        }
        Ok(r)
    }
    .await;
    finish(r, json, &p)
}

/// A check's log, as the runner kept it: `…/revisions/N/lint.log`.
async fn check_log(
    State(p): State<Arc<Portal>>,
    Path((name, number, log)): Path<(String, String, String)>,
) -> Response {
    let r = async {
        let not_found = || WebError::new(StatusCode::NOT_FOUND, "no such log");
        let number: u32 = number.parse().map_err(|_| not_found())?;
        let kind = log
            .strip_suffix(".log")
            .and_then(|k| k.parse::<crate::model::CheckKind>().ok())
            .ok_or_else(not_found)?;
        let dir = p.log_dir().ok_or_else(not_found)?.to_path_buf();
        let rev = db(&p, move |s| s.revision(&name, number))
            .await?
            .ok_or_else(not_found)?;
        // Only a reference the store recorded is read: never a path from the URL.
        let reference = rev.check(kind).log.clone().ok_or_else(not_found)?;
        let text = tokio::task::spawn_blocking(move || crate::checks::read_log(&dir, &reference))
            .await
            .map_err(|e| WebError::internal("reading a log", &e))?
            .ok_or_else(not_found)?;
        Ok(http::text(StatusCode::OK, text))
    }
    .await;
    finish(r, false, &p)
}

/// A lint rule's page, linked from the findings on template pages.
async fn rule_page(
    State(p): State<Arc<Portal>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&uri, &headers);
    let id = id.strip_suffix(".json").unwrap_or(&id).to_string();
    let v = visitor(&p, &headers).await.unwrap_or_default();
    let r = match corral_dockerfiles::lint::rule(&id) {
        Some(rule) if json => Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({
                "id": rule.id, "name": rule.name, "severity": rule.severity.to_string(),
                "summary": rule.summary, "rationale": rule.rationale,
                "bad": rule.bad, "good": rule.good,
            }),
        )),
        Some(rule) => Ok(http::html_page(StatusCode::OK, pages::rule(&p, &v, rule))),
        None => Err(WebError::new(StatusCode::NOT_FOUND, "no such lint rule")),
    };
    finish(r, json, &p)
}

async fn form_page(
    p: &Arc<Portal>,
    headers: &HeaderMap,
    render: impl FnOnce(&Portal, &Visitor) -> String,
) -> Result<Response, WebError> {
    let v = visitor(p, headers).await?;
    let (v, cookie) = with_session(p, v).await?;
    let mut r = http::html_page(StatusCode::OK, render(p, &v));
    if let Some(c) = cookie {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(r)
}

async fn sign_in_form(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let r = form_page(&p, &headers, |p, v| pages::sign_in(p, v, None)).await;
    finish(r, false, &p)
}

async fn sign_up_form(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let r = if p.config.signup {
        form_page(&p, &headers, |p, v| pages::sign_up(p, v, None)).await
    } else {
        Err(WebError::new(
            StatusCode::NOT_FOUND,
            "this portal makes no accounts: sign in with your mirror account",
        ))
    };
    finish(r, false, &p)
}

async fn submit_form(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let r = form_page(&p, &headers, pages::submit).await;
    finish(r, false, &p)
}

/// Counts a sign-in or sign-up attempt, per account name and per address.
fn limit_sign_ins(p: &Portal, name: &str, address: Option<&str>) -> Result<(), WebError> {
    p.sign_ins
        .attempt(&http::limit_keys(name, address))
        .map_err(WebError::too_many)
}

async fn sign_in(State(p): State<Arc<Portal>>, req: Request<Body>) -> Response {
    let json = wants_json(req.uri(), req.headers());
    let r = async {
        let address = http::client_address(&req);
        let (parts, body) = req.into_parts();
        let v = visitor(&p, &parts.headers).await?;
        let form = read_form(body).await?;
        v.checked(&form.get("csrf"))?;
        let name = form.get("name");
        limit_sign_ins(&p, &name, address.as_deref())?;
        let (n, password) = (name.clone(), form.get("password"));
        let p2 = p.clone();
        let who = db(&p, move |s| s.sign_in(&n, &password, &p2.options.htpasswd)).await?;
        match who {
            Some(_) => {
                tracing::info!(account = %name, "signed in");
                start_signed_in(&p, v.id.clone(), name).await
            }
            None => {
                tracing::info!(account = %name, address = address.as_deref().unwrap_or("-"), "sign-in refused");
                Ok(http::html_page(
                    StatusCode::UNAUTHORIZED,
                    pages::sign_in(&p, &v, Some("wrong name or password")),
                ))
            }
        }
    }
    .await;
    finish(r, json, &p)
}

async fn sign_up(State(p): State<Arc<Portal>>, req: Request<Body>) -> Response {
    let json = wants_json(req.uri(), req.headers());
    let r = async {
        if !p.config.signup {
            return Err(WebError::new(
                StatusCode::NOT_FOUND,
                "this portal makes no accounts",
            ));
        }
        let address = http::client_address(&req);
        let (parts, body) = req.into_parts();
        let v = visitor(&p, &parts.headers).await?;
        let form = read_form(body).await?;
        v.checked(&form.get("csrf"))?;
        let name = form.get("name");
        limit_sign_ins(&p, &name, address.as_deref())?;
        let (n, password) = (name.clone(), form.get("password"));
        let p2 = p.clone();
        let made = db(&p, move |s| {
            s.create_account(&n, &password, &p2.options.htpasswd, now())
        })
        .await;
        match made {
            Ok(_) => start_signed_in(&p, v.id.clone(), name).await,
            Err(e) if e.status != StatusCode::INTERNAL_SERVER_ERROR => Ok(http::html_page(
                e.status,
                pages::sign_up(&p, &v, Some(&e.message)),
            )),
            Err(e) => Err(e),
        }
    }
    .await;
    finish(r, json, &p)
}

async fn sign_out(State(p): State<Arc<Portal>>, req: Request<Body>) -> Response {
    let json = wants_json(req.uri(), req.headers());
    let r = async {
        let (parts, body) = req.into_parts();
        let v = visitor(&p, &parts.headers).await?;
        let form = read_form(body).await?;
        v.checked(&form.get("csrf"))?;
        if let Some(id) = v.id.clone() {
            db(&p, move |s| s.end_session(&id)).await?;
        }
        let mut r = http::see_other(p.prefix());
        r.headers_mut().insert(
            header::SET_COOKIE,
            http::set_cookie("", 0, p.prefix(), p.options.secure_cookies),
        );
        Ok(r)
    }
    .await;
    finish(r, json, &p)
}

/// A signed-in account from a POST whose token checks out.
fn signed_in<'a>(v: &'a Visitor, form: &Form) -> Result<&'a str, WebError> {
    v.checked(&form.get("csrf"))?
        .ok_or_else(|| WebError::forbidden("sign in first"))
}

fn template_url(p: &Portal, name: &str) -> String {
    format!(
        "{}/templates/{}",
        p.prefix(),
        corral_site::html::url_encode(name, false)
    )
}

async fn review(
    State(p): State<Arc<Portal>>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response {
    let json = wants_json(req.uri(), req.headers());
    let r = async {
        let (parts, body) = req.into_parts();
        let v = visitor(&p, &parts.headers).await?;
        let form = read_form(body).await?;
        let reviewer = signed_in(&v, &form)?.to_string();
        let verdict: Verdict = form
            .get("verdict")
            .parse()
            .map_err(|e: String| WebError::new(StatusCode::BAD_REQUEST, e))?;
        let revision: u32 = form
            .get("revision")
            .parse()
            .map_err(|_| WebError::new(StatusCode::BAD_REQUEST, "the form names no revision"))?;
        let (t, comment) = (name.clone(), form.get("comment"));
        // The store applies the rules: the author, a non-reviewer, an old
        // revision or failing checks are refused there.
        db(&p, move |s| {
            s.review(&reviewer, &t, revision, verdict, &comment, now())
        })
        .await?;
        Ok(http::see_other(&template_url(&p, &name)))
    }
    .await;
    finish(r, json, &p)
}

async fn withdraw(
    State(p): State<Arc<Portal>>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response {
    let json = wants_json(req.uri(), req.headers());
    let r = async {
        let (parts, body) = req.into_parts();
        let v = visitor(&p, &parts.headers).await?;
        let form = read_form(body).await?;
        let maintainer = signed_in(&v, &form)?.to_string();
        let (t, reason) = (name.clone(), form.get("reason"));
        db(&p, move |s| s.withdraw(&maintainer, &t, &reason, now())).await?;
        p.options
            .listings
            .unlist(&crate::publish::repository_of(&name), WITHDRAWN);
        Ok(http::see_other(&template_url(&p, &name)))
    }
    .await;
    finish(r, json, &p)
}

/// Whether a template's page should offer the review form to `account`
/// (the store decides; this only hides forms that would be refused).
pub(crate) fn may_review(p: &Portal, account: &str, author: &str, state: TemplateState) -> bool {
    account != author
        && p.config.policy.reviewers.contains(account)
        && state != TemplateState::Withdrawn
}

pub(crate) fn is_maintainer(p: &Portal, account: &str) -> bool {
    p.config.policy.maintainers.contains(account)
}
