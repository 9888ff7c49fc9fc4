//! `/ostree/<path>`: an OSTree archive repository served read-only as static
//! files, with single byte ranges (ostree pulls use them for deltas).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::app::App;

/// Joins a URL path under `root`, refusing anything that could leave it.
pub fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

pub(crate) async fn serve(
    State(app): State<Arc<App>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(files) = &app.files.ostree else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    files.serve(&path, &headers).await
}

/// A file under `root` (read-only), whole or one byte range.
pub(crate) async fn static_file(root: &Path, path: &str, headers: &HeaderMap) -> Response {
    let status = |s: StatusCode| (s, s.canonical_reason().unwrap_or("")).into_response();
    let Some(p) = safe_join(root, path) else {
        return status(StatusCode::NOT_FOUND);
    };
    // A symlink that leads out of the directory (to /etc/passwd, say) is
    // served as if it were not there; one to a file inside is fine. The
    // resolved path is what gets opened, so the check is about that file.
    let root = root.to_path_buf();
    let real = tokio::task::spawn_blocking(move || resolve_inside(&root, &p))
        .await
        .ok()
        .flatten();
    match real {
        Some(real) => serve_path(&real, headers).await,
        None => status(StatusCode::NOT_FOUND),
    }
}

/// `path` with symlinks resolved, if that is a file under `root` (itself
/// resolved). Missing files are not.
pub(crate) fn resolve_inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let root = std::fs::canonicalize(root).ok()?;
    let real = std::fs::canonicalize(path).ok()?;
    (real.starts_with(&root) && real.is_file()).then_some(real)
}

/// A file (read-only), whole or one byte range.
pub(crate) async fn serve_path(p: &Path, headers: &HeaderMap) -> Response {
    let status = |s: StatusCode| (s, s.canonical_reason().unwrap_or("")).into_response();
    let mut f = match tokio::fs::File::open(p).await {
        Ok(f) => f,
        Err(_) => return status(StatusCode::NOT_FOUND),
    };
    let size = match f.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return status(StatusCode::NOT_FOUND),
    };
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| crate::http::parse_range(r, size));
    let (code, start, len) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        Some(Err(())) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [("content-range", format!("bytes */{size}"))],
            )
                .into_response();
        }
    };
    if start > 0 && f.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let mut b = Response::builder()
        .status(code)
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .header("accept-ranges", "bytes");
    if code == StatusCode::PARTIAL_CONTENT {
        b = b.header(
            "content-range",
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    b.body(Body::from_stream(ReaderStream::new(f.take(len))))
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_escape() {
        let r = Path::new("/srv/repo");
        assert_eq!(
            safe_join(r, "objects/ab/cd.filez"),
            Some(PathBuf::from("/srv/repo/objects/ab/cd.filez"))
        );
        assert_eq!(safe_join(r, "../etc/passwd"), None);
        assert_eq!(safe_join(r, "/etc/passwd"), None);
        assert_eq!(safe_join(r, "a/./b"), Some(PathBuf::from("/srv/repo/a/b")));
    }
}
