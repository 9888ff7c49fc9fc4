//! The session's challenge handling against a real HTTP registry and token
//! service on 127.0.0.1 (a small axum app that counts what it is sent).

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use corral_registry::{BasicAuth, Client, ImageRef, Session, SessionError};
use reqwest::Method;

/// `Basic base64("u:pw")`.
const BASIC: &str = "Basic dTpwdw==";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 401 with a bearer challenge unless a token is sent.
    Bearer,
    /// 401 with a basic challenge unless the credentials are sent.
    Basic,
    /// 401 with a bearer challenge, whatever is sent.
    Never,
}

#[derive(Default)]
struct Seen {
    /// The Authorization header of each registry request ("" for none).
    registry: Vec<String>,
    /// (scope, Authorization) of each token request.
    tokens: Vec<(String, String)>,
}

#[derive(Clone)]
struct Registry {
    mode: Mode,
    realm: Arc<Mutex<String>>,
    seen: Arc<Mutex<Seen>>,
}

fn authorization(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn v2(State(r): State<Registry>, headers: HeaderMap) -> Response {
    let auth = authorization(&headers);
    r.seen.lock().unwrap().registry.push(auth.clone());
    let ok = match r.mode {
        Mode::Bearer => auth.starts_with("Bearer tok "),
        Mode::Basic => auth == BASIC,
        Mode::Never => false,
    };
    if ok {
        return (
            [("content-type", "application/vnd.oci.image.manifest.v1+json")],
            "{}",
        )
            .into_response();
    }
    let challenge = match r.mode {
        Mode::Basic => r#"Basic realm="test""#.to_string(),
        _ => format!(
            r#"Bearer realm="{}",service="test""#,
            r.realm.lock().unwrap()
        ),
    };
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", challenge)],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
    )
        .into_response()
}

async fn token(
    State(r): State<Registry>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let scope = q.get("scope").cloned().unwrap_or_default();
    r.seen
        .lock()
        .unwrap()
        .tokens
        .push((scope.clone(), authorization(&headers)));
    axum::Json(serde_json::json!({"token": format!("tok {scope}"), "expires_in": 300}))
        .into_response()
}

/// Starts the registry; returns its state and `127.0.0.1:PORT`. The token
/// realm is on the same origin.
async fn start(mode: Mode) -> (Registry, String) {
    let r = Registry {
        mode,
        realm: Arc::default(),
        seen: Arc::default(),
    };
    let host = serve(r.clone()).await;
    *r.realm.lock().unwrap() = format!("http://{host}/token");
    (r, host)
}

async fn serve(r: Registry) -> String {
    let app = Router::new()
        .route("/v2/{*rest}", any(v2))
        .route("/token", get(token))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    host
}

fn creds() -> Option<(String, String)> {
    Some(("u".into(), "pw".into()))
}

async fn get_manifest(session: &Session, host: &str, repo: &str) -> StatusCode {
    let url = format!("http://{host}/v2/{repo}/manifests/1");
    session
        .send(Method::GET, &url, repo, |r| r)
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_bearer_challenge_buys_a_token_used_again_for_the_same_scope() {
    let (r, host) = start(Mode::Bearer).await;
    let session = Session::new(reqwest::Client::new(), creds());
    assert_eq!(get_manifest(&session, &host, "a/b").await, StatusCode::OK);
    {
        let seen = r.seen.lock().unwrap();
        // Basic first (no token yet), then the token bought with the same
        // credentials (the realm is the registry's own origin).
        assert_eq!(seen.registry, [BASIC, "Bearer tok repository:a/b:pull"]);
        assert_eq!(
            seen.tokens,
            [("repository:a/b:pull".to_string(), BASIC.to_string())]
        );
    }
    // The same scope: the cached token goes first, no new token.
    assert_eq!(get_manifest(&session, &host, "a/b").await, StatusCode::OK);
    // A clone shares the cache.
    assert_eq!(
        get_manifest(&session.clone(), &host, "a/b").await,
        StatusCode::OK
    );
    {
        let seen = r.seen.lock().unwrap();
        assert_eq!(seen.registry.len(), 4);
        assert_eq!(seen.registry[2], "Bearer tok repository:a/b:pull");
        assert_eq!(seen.tokens.len(), 1);
    }
    // Another repository and a push each need a token of their own.
    assert_eq!(get_manifest(&session, &host, "c/d").await, StatusCode::OK);
    let url = format!("http://{host}/v2/a/b/manifests/2");
    let put = session
        .send(Method::PUT, &url, "a/b", |r| r.body("{}"))
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let scopes: Vec<String> = r
        .seen
        .lock()
        .unwrap()
        .tokens
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    assert_eq!(
        scopes,
        [
            "repository:a/b:pull",
            "repository:c/d:pull",
            "repository:a/b:pull,push"
        ]
    );
}

#[tokio::test]
async fn a_basic_challenge_is_answered_with_the_credentials() {
    let (r, host) = start(Mode::Basic).await;
    let session =
        Session::new(reqwest::Client::new(), creds()).with_basic_auth(BasicAuth::WhenChallenged);
    assert_eq!(get_manifest(&session, &host, "a/b").await, StatusCode::OK);
    assert_eq!(r.seen.lock().unwrap().registry, ["", BASIC]);
    // Sent up front, the credentials need one request.
    let (r, host) = start(Mode::Basic).await;
    let session = Session::new(reqwest::Client::new(), creds());
    assert_eq!(get_manifest(&session, &host, "a/b").await, StatusCode::OK);
    assert_eq!(r.seen.lock().unwrap().registry, [BASIC]);
    // Without credentials the 401 is the answer.
    let session = Session::new(reqwest::Client::new(), None);
    assert_eq!(
        get_manifest(&session, &host, "a/b").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(r.seen.lock().unwrap().tokens.is_empty());
}

#[tokio::test]
async fn a_registry_that_refuses_the_token_is_an_error_not_a_loop() {
    let (r, host) = start(Mode::Never).await;
    let client = Client::new(true, creds());
    let image = ImageRef::parse(&format!("{host}/a/b:1")).unwrap();
    let err = format!("{:#}", client.manifest(&image, "1").await.unwrap_err());
    let url = format!("http://{host}/v2/a/b/manifests/1");
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(err.contains("credentials missing or wrong"), "{err}");
    assert!(err.contains(r#""code":"UNAUTHORIZED""#), "{err}");
    let seen = r.seen.lock().unwrap();
    assert_eq!(seen.registry.len(), 2, "sent once, then once with a token");
    assert_eq!(seen.tokens.len(), 1);
}

#[tokio::test]
async fn credentials_stay_off_a_plain_http_realm_on_another_host() {
    let (r, host) = start(Mode::Bearer).await;
    // The realm on another port is another origin.
    let other = serve(r.clone()).await;
    *r.realm.lock().unwrap() = format!("http://{other}/token");
    let session = Session::new(reqwest::Client::new(), creds());
    assert_eq!(get_manifest(&session, &host, "a/b").await, StatusCode::OK);
    assert_eq!(
        r.seen.lock().unwrap().tokens,
        [("repository:a/b:pull".to_string(), String::new())]
    );
}

#[tokio::test]
async fn failures_name_what_failed() {
    // Nothing listens on a port just freed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener);
    let session = Session::new(reqwest::Client::new(), None);
    let url = format!("http://{host}/v2/a/b/manifests/1");
    match session.send(Method::GET, &url, "a/b", |r| r).await {
        Err(e @ SessionError::Send { .. }) => assert_eq!(e.to_string(), format!("GET {url}")),
        other => panic!("expected a send error, got {other:?}"),
    }
    // A token service that refuses: its status and body.
    let (r, host) = start(Mode::Bearer).await;
    *r.realm.lock().unwrap() = format!("http://{host}/v2/refuses");
    let url = format!("http://{host}/v2/a/b/manifests/1");
    let err = session
        .send(Method::GET, &url, "a/b", |r| r)
        .await
        .unwrap_err();
    match err {
        SessionError::TokenStatus { status, body, .. } => {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(body.contains("UNAUTHORIZED"), "{body}");
        }
        other => panic!("expected a token status, got {other:?}"),
    }
}
