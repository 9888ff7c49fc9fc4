//! The registry's error type: distribution-spec error codes mapped to HTTP
//! statuses. Internal causes are logged, never returned to the client.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A distribution-spec error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    RangeInvalid,
    Internal,
    Unavailable,
    BadGateway,
    /// The disk is full or below the free-space floor (507).
    InsufficientStorage,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::RangeInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::Internal => "UNKNOWN",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::BadGateway => "UNAVAILABLE",
            // The spec has no code for this; clients (docker, containers/
            // image) parse any unlisted code as UNKNOWN anyway, so the 507
            // status and the message carry the meaning.
            ErrorCode::InsufficientStorage => "UNKNOWN",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Denied => StatusCode::FORBIDDEN,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorCode::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

/// An error answered to a registry client.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RegistryError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    /// Overrides the code's default status (e.g. 413 for an oversized body).
    pub status: Option<StatusCode>,
    /// Extra headers such as `WWW-Authenticate` or `Range`.
    pub headers: Vec<(&'static str, String)>,
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RegistryError {
            code,
            message: message.into(),
            detail: None,
            status: None,
            headers: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// An internal failure: the cause is logged, the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        RegistryError::new(ErrorCode::Internal, "internal server error")
    }

    /// Out of space: logged with its cause (which names paths), answered
    /// 507 with a message that does not.
    pub fn insufficient_storage(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "insufficient storage");
        RegistryError::new(
            ErrorCode::InsufficientStorage,
            "insufficient storage: the registry is out of disk space, try again later",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        self.status.unwrap_or(self.code.status())
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        crate::storage::StorageError::from(e).into()
    }
}

/// `e` and its sources, `: `-separated; a source whose text its parent's
/// message already includes is left out (object_store errors repeat theirs).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl From<crate::storage::StorageError> for RegistryError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as S;
        match e {
            S::BlobUnknown(d) => {
                RegistryError::new(ErrorCode::BlobUnknown, format!("blob unknown: {d}"))
            }
            S::ManifestUnknown(r) => {
                RegistryError::new(ErrorCode::ManifestUnknown, format!("manifest unknown: {r}"))
            }
            S::UploadUnknown => RegistryError::new(ErrorCode::BlobUploadUnknown, "upload unknown"),
            S::DigestMismatch { expected, actual } => {
                RegistryError::new(ErrorCode::DigestInvalid, "digest does not match content")
                    .with_detail(serde_json::json!({"expected": expected, "actual": actual}))
            }
            S::InsufficientStorage(cause) => RegistryError::insufficient_storage(cause),
            S::UploadBody(e) => {
                tracing::warn!(error = %error_chain(&e), "upload body interrupted");
                RegistryError::new(ErrorCode::BlobUploadInvalid, "upload body interrupted")
            }
            S::UploadTooLarge { limit } => RegistryError::new(
                ErrorCode::SizeInvalid,
                format!("upload exceeds the size limit of {limit} bytes"),
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE),
            S::Io(e) => RegistryError::internal(error_chain(&e)),
            e @ S::LockLost(_) => RegistryError::internal(e),
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut err = serde_json::json!({"code": self.code.as_str(), "message": self.message});
        if let Some(d) = self.detail {
            err["detail"] = d;
        }
        let body = serde_json::json!({ "errors": [err] }).to_string();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::{error_chain, RegistryError};
    use crate::storage::StorageError;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    async fn answer(e: StorageError) -> (StatusCode, serde_json::Value) {
        let resp = RegistryError::from(e).into_response();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn full_disk_is_507_with_a_spec_body_and_no_paths() {
        let enospc = std::io::Error::from_raw_os_error(28);
        for e in [
            StorageError::from(enospc),
            StorageError::InsufficientStorage("writing /srv/mirror/tmp/x: no space".into()),
        ] {
            let (status, body) = answer(e).await;
            assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
            assert_eq!(body["errors"][0]["code"], "UNKNOWN");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.starts_with("insufficient storage"), "{message}");
            assert!(!message.contains("/srv"), "internal paths stay in the log");
        }
    }

    #[tokio::test]
    async fn only_the_client_body_breaking_off_is_400() {
        let body = StorageError::UploadBody(std::io::Error::other("connection reset"));
        assert_eq!(answer(body).await.0, StatusCode::BAD_REQUEST);
        let eio = StorageError::from(std::io::Error::from_raw_os_error(5));
        assert_eq!(answer(eio).await.0, StatusCode::INTERNAL_SERVER_ERROR);
        let big = StorageError::UploadTooLarge { limit: 4 };
        assert_eq!(answer(big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    #[test]
    fn chain_names_every_cause_once() {
        let root = Layer {
            text: "connection reset by peer",
            source: None,
        };
        // object_store style: the middle layer repeats its source's text.
        let middle = Layer {
            text: "error sending request",
            source: Some(Box::new(root)),
        };
        let top = Layer {
            text: "Generic S3 error: error sending request",
            source: Some(Box::new(middle)),
        };
        let e = std::io::Error::other(top);
        assert_eq!(
            error_chain(&e),
            "Generic S3 error: error sending request: connection reset by peer"
        );
    }
}
