//! A lookaside store for "simple signing" signatures (containers/image's
//! `lookaside:` in registries.d): `GET|PUT /sigstore/<repo>@sha256=<hex>/signature-<n>`.
//! Reads follow the pull rules of `<repo>`, writes need push credentials.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::auth::{Action, Identity};
use crate::error::{ErrorCode, RegistryError};
use crate::name::RepoName;

/// Largest signature accepted; a signed simple-signing payload is ~1 KiB.
const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

/// Splits `<repo>@sha256=<hex>/signature-<n>` into the repository, the
/// digest's hex and the number, refusing anything else.
fn parse(path: &str) -> Option<(RepoName, String, u32)> {
    let (repo, rest) = path.rsplit_once("@sha256=")?;
    let (hex, file) = rest.split_once('/')?;
    let n = file.strip_prefix("signature-")?;
    let valid = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !n.is_empty()
        && (n == "0" || !n.starts_with('0'))
        && n.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return None;
    }
    let repo = RepoName::parse(repo)?;
    Some((repo, hex.to_string(), n.parse().ok()?))
}

pub async fn serve(
    State(app): State<Arc<App>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    match handle(&app, &path, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(app: &Arc<App>, path: &str, req: Request) -> Result<Response, RegistryError> {
    let Some((repo, hex, n)) = parse(path) else {
        return Err(RegistryError::new(
            ErrorCode::NameInvalid,
            "invalid signature path",
        ));
    };
    let action = match *req.method() {
        Method::GET | Method::HEAD => Action::Pull,
        Method::PUT => Action::Push,
        _ => {
            return Err(RegistryError::new(
                ErrorCode::Unsupported,
                "method not allowed",
            ))
        }
    };
    let who = app.auth.identify_registry(req.headers());
    if !app.auth.allowed(&who, repo.as_str(), action) {
        if matches!(who, Identity::User(_)) {
            return Err(RegistryError::new(ErrorCode::Denied, "access denied"));
        }
        // The scope lets a token client ask for what this path needs.
        let actions: &[Action] = match action {
            Action::Pull => &[Action::Pull],
            _ => &[Action::Pull, Action::Push],
        };
        let base = app.base_url(req.headers());
        return Err(app.auth.challenge(&base, &[(repo.as_str(), actions)]));
    }
    if action == Action::Pull {
        return match app.store.get_signature(&repo, &hex, n).await {
            Ok(Some(data)) => {
                Ok(([("content-type", "application/octet-stream")], data).into_response())
            }
            Ok(None) => Ok(StatusCode::NOT_FOUND.into_response()),
            Err(e) => {
                tracing::error!(error = %e, repo = %repo, hex = %hex, n, "reading signature");
                Err(RegistryError::new(ErrorCode::Internal, "internal error"))
            }
        };
    }
    let data = to_bytes(req.into_body(), MAX_SIGNATURE_BYTES)
        .await
        .map_err(|_| RegistryError::new(ErrorCode::SizeInvalid, "signature too large"))?;
    // Signatures are never replaced: a second signer racing for the same
    // `signature-<n>` gets 409 and takes the next number.
    let len = data.len();
    match app.store.put_signature(&repo, &hex, n, data).await {
        Ok(true) => {}
        Ok(false) => return Ok((StatusCode::CONFLICT, "signature exists\n").into_response()),
        Err(e) => {
            tracing::error!(error = %e, repo = %repo, hex = %hex, n, "writing signature");
            // A full disk is 507 here too; anything else a generic 500.
            return Err(e.into());
        }
    }
    tracing::info!(repo = repo.as_str(), bytes = len, "signature stored");
    Ok((StatusCode::CREATED, Body::empty()).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn paths() {
        let hex = "a".repeat(64);
        let (repo, h, n) = parse(&format!("sample/base@sha256={hex}/signature-12")).unwrap();
        assert_eq!(
            (repo.as_str(), h.as_str(), n),
            ("sample/base", hex.as_str(), 12)
        );
        assert!(parse(&format!("x@sha256={hex}/../signature-1")).is_none());
        assert!(parse(&format!("../x@sha256={hex}/signature-1")).is_none());
        assert!(parse("x@sha256=ab/signature-1").is_none());
        assert!(parse(&format!("x@sha256={hex}/signature-")).is_none());
    }
}
