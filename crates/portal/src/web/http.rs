//! Requests and answers: cookies, forms, the JSON twin, the headers every
//! page carries, and errors mapped to statuses.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use corral_site::html;

use crate::store::StoreError;

/// The session cookie's name.
pub const COOKIE: &str = "corral_portal";

/// Whether the client asked for the JSON twin: a `.json` path,
/// `?format=json`, or `Accept: application/json`.
pub fn wants_json(uri: &Uri, headers: &HeaderMap) -> bool {
    uri.path().ends_with(".json")
        || uri
            .query()
            .and_then(|q| corral_site::query_param(q, "format"))
            .as_deref()
            == Some("json")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"))
}

/// The session id the request's cookie carries.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then(|| v.to_string())
        })
}

/// The cookie that sets (or, with `max_age` 0, clears) the session.
pub fn set_cookie(id: &str, max_age: i64, path: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // The id is hex and the path a configured prefix: both valid header text.
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("corral_portal=; Max-Age=0"))
}

/// The client's address, for rate limits; `None` when the server gives no
/// connection info (the mirror gives it over TCP and TLS alike).
pub fn client_address(req: &Request<Body>) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The rate-limit keys of an attempt: the account, and the address when
/// it is known (never one shared key for every unknown address, which
/// would let one client lock everybody out).
pub fn limit_keys(account: &str, address: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!("account:{account}")];
    keys.extend(address.map(|a| format!("address:{a}")));
    keys
}

/// The `Host` the client used, for pull commands.
pub fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_string()
}

/// A urlencoded form's fields.
pub struct Form(String);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(String::from_utf8_lossy(body).into_owned())
    }

    pub fn get(&self, key: &str) -> String {
        corral_site::query_param(&self.0, key).unwrap_or_default()
    }
}

fn secure_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(corral_site::CONTENT_SECURITY_POLICY),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    // Pages carry CSRF tokens and who is signed in: no shared caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An HTML page.
pub fn html_page(status: StatusCode, body: String) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    secure_headers(&mut r);
    r
}

/// A plain-text answer (check logs).
pub fn text(status: StatusCode, body: String) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response();
    secure_headers(&mut r);
    r
}

/// A JSON answer.
pub fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response();
    secure_headers(&mut r);
    r
}

/// 303 See Other to `to`.
pub fn see_other(to: &str) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    secure_headers(&mut r);
    r
}

/// Why a request failed, as the client sees it. Internal causes are
/// logged, not shown.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 429's `Retry-After`.
    pub retry_after: Option<u64>,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn csrf() -> WebError {
        WebError::forbidden("the form's token is missing or wrong: reload the page and try again")
    }

    pub fn too_many(retry_after: u64) -> WebError {
        WebError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many attempts: try again in {retry_after} seconds"),
            retry_after: Some(retry_after),
        }
    }

    pub fn internal(what: &str, err: &dyn std::fmt::Display) -> WebError {
        tracing::error!(error = %err, "{what}");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} failed; the server's log has the cause"),
        )
    }

    /// The error as a page, or as `{"error": ...}` for the JSON twin.
    pub fn render(self, as_json: bool, prefix: &str) -> Response {
        let mut r = if as_json {
            json(
                self.status,
                &serde_json::json!({ "error": self.message, "status": self.status.as_u16() }),
            )
        } else {
            let title = self.status.canonical_reason().unwrap_or("Error");
            let body = format!(
                "<h1>{}</h1>\n<p class=\"error\">{}</p>\n<p><a href=\"{}\">Community templates</a></p>\n",
                html::escape(title),
                html::escape(&self.message),
                html::escape(prefix)
            );
            html_page(
                self.status,
                html::page(title, &format!("{prefix}.json"), &body),
            )
        };
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        let status = match &e {
            StoreError::Rule(_) => StatusCode::FORBIDDEN,
            StoreError::Invalid(_) | StoreError::Password(_) => StatusCode::BAD_REQUEST,
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::AccountExists(_) | StoreError::KindChanged { .. } => StatusCode::CONFLICT,
            _ => return WebError::internal("the database", &e),
        };
        WebError::new(status, e.to_string())
    }
}
