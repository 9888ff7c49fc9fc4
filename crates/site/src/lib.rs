//! The website the mirror serves: where people find the images, the
//! Atomic Host streams and the disk images. Bottom up:
//!
//! - [`model`]: the facts a page shows (images, signatures, streams, disk
//!   images), plain data.
//! - [`source`]: the narrow interface the mirror implements to give them:
//!   pages of repositories and tags, one image, an artifact that refers to
//!   an image, the stream files, the disk images.
//! - [`html`] and [`markdown`]: escaping, the page frame, dates and sizes;
//!   Markdown with raw HTML and unsafe links dropped.
//! - [`listings`]: the namespace listed apart and the repositories left
//!   out of the listings, set by whoever serves the site beside other
//!   pages.
//! - [`pages`]: one module per page, each a `collect` (the JSON twin) and a
//!   `render`.
//! - [`respond`]: a path and query to a [`Response`], with the
//!   [`CONTENT_SECURITY_POLICY`] every HTML page carries.
//!
//! The site knows nothing of HTTP servers, storage or OSTree: it reads what
//! the [`Source`] gives it and answers with bytes.
//!
//! ```no_run
//! # async fn f(source: &dyn corral_site::Source) -> anyhow::Result<()> {
//! let ctx = corral_site::pages::Context {
//!     source,
//!     host: "mirror.example:5000".into(),
//!     base_url: "https://mirror.example:5000".into(),
//!     now: time::OffsetDateTime::now_utc(),
//!     listings: &corral_site::listings::Listings::default(),
//! };
//! if let Some(page) = corral_site::respond(&ctx, "/", "").await? {
//!     println!("{} {}", page.status, page.body.len());
//! }
//! # Ok(())
//! # }
//! ```

pub mod assets;
pub mod html;
pub mod listings;
pub mod markdown;
pub mod model;
pub mod pages;
pub mod source;

pub use model::*;
pub use pages::Context;
pub use source::Source;

/// Sent with every page: no script but the site's own, no inline script or
/// style, no plugins, no framing, forms only to the site.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// An answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Whether the [`CONTENT_SECURITY_POLICY`] applies (HTML).
    pub html: bool,
}

impl Response {
    fn html(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
            html: true,
        }
    }

    fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<Response> {
        Ok(Response {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_string(v)?,
            html: false,
        })
    }

    fn not_found(what: &str) -> Response {
        let body = html::page(
            "Not found",
            "/?format=json",
            &format!("<h1>Not found</h1>\n<p>{}</p>\n", html::escape(what)),
        );
        Response {
            status: 404,
            ..Response::html(body)
        }
    }
}

/// The value of `key` in a query string, percent-decoded (`+` is a space).
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

/// A URL path percent-decoded (`+` stays a plus).
pub fn decode_path(path: &str) -> String {
    percent_decode(&path.replace('+', "%2B"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The site's answer for `path` (percent-decoded) and `query`, `None` when
/// the path is not the site's. `?format=json` asks for the JSON twin.
pub async fn respond(
    ctx: &Context<'_>,
    path: &str,
    query: &str,
) -> anyhow::Result<Option<Response>> {
    let json = query_param(query, "format").as_deref() == Some("json");
    let r = match path {
        "/site/site.css" => Response {
            status: 200,
            content_type: "text/css; charset=utf-8",
            body: assets::CSS.to_string(),
            html: false,
        },
        "/site/site.js" => Response {
            status: 200,
            content_type: "text/javascript; charset=utf-8",
            body: assets::JS.to_string(),
            html: false,
        },
        "/" => {
            let home = pages::home::collect(ctx, query).await?;
            if json {
                Response::json(&home)?
            } else {
                Response::html(pages::home::render(&home, ctx))
            }
        }
        "/downloads" => {
            let d = pages::disk_images::collect(ctx).await?;
            if json {
                Response::json(&d)?
            } else {
                Response::html(pages::disk_images::render(&d, ctx))
            }
        }
        "/atomic-host" => {
            let l = pages::streams::collect_all(ctx).await?;
            if json {
                Response::json(&l)?
            } else {
                Response::html(pages::streams::render_all(&l, ctx))
            }
        }
        _ => {
            if let Some(name) = path.strip_prefix("/atomic-host/") {
                match pages::streams::collect_one(ctx, name).await? {
                    Some(p) if json => Response::json(&p)?,
                    Some(p) => Response::html(pages::streams::render_one(&p, ctx)),
                    None => Response::not_found(&format!("no stream named {name}")),
                }
            } else if let Some(name) = path.strip_prefix("/repositories/") {
                let name = name.trim_end_matches('/');
                match pages::repository::collect(ctx, name, query).await? {
                    Some(r) if json => Response::json(&r)?,
                    Some(r) => Response::html(pages::repository::render(&r, ctx)),
                    None => Response::not_found(&format!("no repository named {name}")),
                }
            } else {
                return Ok(None);
            }
        }
    };
    Ok(Some(r))
}

#[cfg(test)]
mod tests;
