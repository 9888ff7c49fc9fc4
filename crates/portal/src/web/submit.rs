//! The upload form: the body is read under a cap (413 past it, before the
//! rest arrives), its token checked, the submitter's rate counted, the
//! archive unpacked and checked by [`crate::upload`]; only then is it kept
//! (by digest, with its help.md) and the revision recorded.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::http::{self, wants_json, WebError};
use super::{db, now, visitor, Portal};
use crate::model::TemplateKind;
use crate::upload::{self, UnpackError};

/// Room for the form's other fields and multipart framing.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// The multipart form's fields.
#[derive(Default)]
struct Fields {
    csrf: String,
    name: String,
    kind: String,
    archive: Option<Bytes>,
}

fn too_large(cap: u64) -> WebError {
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than {cap} bytes"),
    )
}

async fn read_fields(req: Request<Body>, cap: u64) -> Result<Fields, WebError> {
    let bad = |m: String| WebError::new(StatusCode::BAD_REQUEST, m);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large(cap));
    }
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| bad("the form is not multipart/form-data".into()))?;
    // Counted as it arrives: a body without a length (chunked) stops at the
    // cap too.
    let body = axum::body::to_bytes(req.into_body(), cap as usize)
        .await
        .map_err(|_| too_large(cap))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut f = Fields::default();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| bad(format!("reading the form: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        let data = field
            .bytes()
            .await
            .map_err(|e| bad(format!("reading the form: {e}")))?;
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "csrf" => f.csrf = text(),
            "name" => f.name = text().trim().to_string(),
            "kind" => f.kind = text(),
            "archive" => f.archive = Some(data.clone()),
            _ => {}
        }
    }
    Ok(f)
}

/// Where an archive is kept: `DIR/sha256-HEX.tar` and its help.md beside
/// it as `sha256-HEX.help.md`.
pub(crate) fn archive_path(dir: &Path, digest: &str, ext: &str) -> Option<PathBuf> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| dir.join(format!("sha256-{hex}.{ext}")))
}

/// help.md of a kept archive.
pub fn read_help(dir: &Path, digest: &str) -> Option<String> {
    std::fs::read_to_string(archive_path(dir, digest, "help.md")?).ok()
}

/// Writes a file whole or not at all (a temporary file renamed into place).
fn keep(dir: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Unpacks and checks an archive; its help.md for a library folder.
fn check_archive(
    archive: &[u8],
    kind: TemplateKind,
    limits: &upload::Limits,
    scratch: &Path,
) -> Result<Option<String>, WebError> {
    let unpacked = upload::unpack(archive, limits, scratch).map_err(|e| {
        let status = match &e {
            UnpackError::FileTooBig { .. }
            | UnpackError::TooBig { .. }
            | UnpackError::TooLong { .. }
            | UnpackError::TooManyEntries(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UnpackError::Write { .. } => return WebError::internal("unpacking an upload", &e),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        WebError::new(status, e.to_string())
    })?;
    match kind {
        TemplateKind::DockerfileFolder => {
            let folder = upload::library_folder(unpacked.dir.path())
                .map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
            Ok(Some(folder.help))
        }
        TemplateKind::TreeRecipe => {
            // Its checks read it again; an upload without one is refused now.
            upload::folder::recipe_text(unpacked.dir.path())
                .map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
            Ok(None)
        }
    }
}

pub async fn submit(State(p): State<Arc<Portal>>, req: Request<Body>) -> Response {
    let json = wants_json(req.uri(), req.headers());
    let r = submit_inner(&p, req).await;
    r.unwrap_or_else(|e| e.render(json, p.prefix()))
}

async fn submit_inner(p: &Arc<Portal>, req: Request<Body>) -> Result<Response, WebError> {
    let address = http::client_address(&req);
    let v = visitor(p, req.headers()).await?;
    // Nobody signed in uploads anything: refused before the body is read.
    if v.account().is_none() {
        return Err(if v.session.is_none() {
            WebError::csrf()
        } else {
            WebError::forbidden("sign in first")
        });
    }
    let cap = p.config.uploads.max_total.saturating_add(FORM_OVERHEAD);
    let f = read_fields(req, cap).await?;
    let author = v
        .checked(&f.csrf)?
        .ok_or_else(|| WebError::forbidden("sign in first"))?
        .to_string();
    p.submissions
        .attempt(&http::limit_keys(&author, address.as_deref()))
        .map_err(WebError::too_many)?;
    crate::validate::template_name(&f.name)
        .map_err(|e| WebError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let kind: TemplateKind = f
        .kind
        .parse()
        .map_err(|e: String| WebError::new(StatusCode::BAD_REQUEST, e))?;
    let archive = f
        .archive
        .filter(|a| !a.is_empty())
        .ok_or_else(|| WebError::new(StatusCode::BAD_REQUEST, "the form has no archive"))?;
    let dir = p.config.archive_dir.clone();
    let limits = p.config.uploads;
    let (digest, help) = tokio::task::spawn_blocking(move || {
        let help = check_archive(&archive, kind, &limits, &dir)?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&archive)));
        let keep_err = |e: std::io::Error| WebError::internal("keeping an upload", &e);
        let tar = archive_path(&dir, &digest, "tar").expect("a sha256 digest");
        keep(&dir, &tar, &archive).map_err(keep_err)?;
        if let Some(h) = &help {
            let path = archive_path(&dir, &digest, "help.md").expect("a sha256 digest");
            keep(&dir, &path, h.as_bytes()).map_err(keep_err)?;
        }
        Ok::<_, WebError>((digest, help))
    })
    .await
    .map_err(|e| WebError::internal("the upload task", &e))??;
    let name = f.name.clone();
    let (a, d) = (author.clone(), digest.clone());
    let rev = db(p, move |s| s.submit(&a, &name, kind, &d, now())).await?;
    tracing::info!(template = %f.name, revision = rev.number, %digest, author, help = help.is_some(), "submitted");
    Ok(http::see_other(&format!(
        "{}/templates/{}",
        p.prefix(),
        corral_site::html::url_encode(&f.name, false)
    )))
}
