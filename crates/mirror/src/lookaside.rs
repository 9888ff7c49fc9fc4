//! A lookaside store for "simple signing" signatures (containers/image's
//! `lookaside:` in registries.d): `GET|PUT /sigstore/<repo>@sha256=<hex>/signature-<n>`.
//! Reads follow the pull rules of `<repo>`, writes need push credentials.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::App;
use crate::auth::{Action, Identity};
use crate::error::{ErrorCode, RegistryError};
use crate::name::RepoName;

/// Largest signature accepted; a signed simple-signing payload is ~1 KiB.
const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

/// Splits `<repo>@sha256=<hex>/signature-<n>` into the repository and the
/// relative storage path, refusing anything else.
fn parse(path: &str) -> Option<(RepoName, PathBuf)> {
    let (repo, rest) = path.rsplit_once("@sha256=")?;
    let (hex, file) = rest.split_once('/')?;
    let n = file.strip_prefix("signature-")?;
    let valid = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return None;
    }
    let repo = RepoName::parse(repo)?;
    let rel = PathBuf::from(repo.as_str())
        .join(format!("sha256={hex}"))
        .join(file);
    Some((repo, rel))
}

/// The directory holding the signatures of `repo@sha256:<hex>`.
pub fn signature_dir(storage: &std::path::Path, repo: &str, hex: &str) -> PathBuf {
    storage
        .join("sigstore")
        .join(repo)
        .join(format!("sha256={hex}"))
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
    let Some((repo, rel)) = parse(path) else {
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
        return Err(app.auth.challenge(&base, Some((repo.as_str(), actions))));
    }
    let file = app.config.storage.join("sigstore").join(rel);
    if action == Action::Pull {
        return match tokio::fs::read(&file).await {
            Ok(data) => Ok(([("content-type", "application/octet-stream")], data).into_response()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(StatusCode::NOT_FOUND.into_response())
            }
            Err(e) => {
                tracing::error!(error = %e, path = %file.display(), "reading signature");
                Err(RegistryError::new(ErrorCode::Internal, "internal error"))
            }
        };
    }
    let data = to_bytes(req.into_body(), MAX_SIGNATURE_BYTES)
        .await
        .map_err(|_| RegistryError::new(ErrorCode::SizeInvalid, "signature too large"))?;
    // Signatures are never replaced: a second signer racing for the same
    // `signature-<n>` gets 409 and takes the next number. hard_link is the
    // atomic create-if-absent.
    let dir = file
        .parent()
        .expect("signature paths have a parent")
        .to_path_buf();
    let mut suffix = [0u8; 8];
    getrandom::getrandom(&mut suffix).map_err(RegistryError::internal)?;
    let tmp = dir.join(format!(".tmp-{}", hex::encode(suffix)));
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&tmp, &data).await?;
        let linked = tokio::fs::hard_link(&tmp, &file).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        linked
    }
    .await;
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok((StatusCode::CONFLICT, "signature exists\n").into_response());
        }
        Err(e) => {
            tracing::error!(error = %e, path = %file.display(), "writing signature");
            return Err(RegistryError::new(ErrorCode::Internal, "internal error"));
        }
    }
    tracing::info!(repo = repo.as_str(), bytes = data.len(), "signature stored");
    Ok((StatusCode::CREATED, Body::empty()).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn paths() {
        let hex = "a".repeat(64);
        let (repo, rel) = parse(&format!("sample/base@sha256={hex}/signature-1")).unwrap();
        assert_eq!(repo.as_str(), "sample/base");
        assert_eq!(
            rel.to_str().unwrap(),
            format!("sample/base/sha256={hex}/signature-1")
        );
        assert!(parse(&format!("x@sha256={hex}/../signature-1")).is_none());
        assert!(parse(&format!("../x@sha256={hex}/signature-1")).is_none());
        assert!(parse("x@sha256=ab/signature-1").is_none());
        assert!(parse(&format!("x@sha256={hex}/signature-")).is_none());
    }
}
