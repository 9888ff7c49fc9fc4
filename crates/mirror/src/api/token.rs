//! `GET /token`: the docker token protocol. Basic credentials (optional when
//! anonymous pull is on) buy a short-lived token for the scopes asked.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::auth::{parse_scope, Access, Identity};
use crate::error::{ErrorCode, RegistryError};
use crate::http::{query_param, query_params};
use crate::name::RepoName;

pub(super) async fn token(State(app): State<Arc<App>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_string();
    let who = match app.auth.identify(req.headers()) {
        // A bearer token cannot buy another token.
        Identity::Token(_) | Identity::Invalid => {
            app.metrics.record("token", 401);
            return RegistryError::new(ErrorCode::Unauthorized, "invalid credentials")
                .into_response();
        }
        w => w,
    };
    if let Some(service) = query_param(&query, "service") {
        if service != app.auth.service {
            app.metrics.record("token", 400);
            return RegistryError::new(ErrorCode::Denied, "unknown service").into_response();
        }
    }
    let mut access = Vec::new();
    for scope in query_params(&query, "scope") {
        // One `scope` parameter may hold several space-separated scopes.
        for s in scope.split(' ') {
            let Some((name, wanted)) = parse_scope(s) else {
                continue;
            };
            if RepoName::parse(&name).is_none() {
                continue;
            }
            let actions = app.auth.grant(&who, &wanted);
            access.push(Access {
                kind: "repository".into(),
                name,
                actions,
            });
        }
    }
    let subject = match &who {
        Identity::User(u) => u.clone(),
        _ => String::new(),
    };
    tracing::debug!(subject, scopes = access.len(), "token issued");
    let (token, expires_in) = app.auth.issue_token(&subject, access);
    let issued_at =
        corral_oci::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default();
    app.metrics.record("token", 200);
    axum::Json(serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": issued_at,
    }))
    .into_response()
}
