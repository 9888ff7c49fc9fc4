//! `corral portal submit`: a folder packed as the archive the upload form
//! takes (a tar.gz whose one directory is the template's name), sent
//! through the same pages a browser uses: sign in, take the form's CSRF
//! token, post the upload. Nothing here is trusted by the server: it
//! checks the archive as it checks any other.

use std::path::Path;

use anyhow::{bail, Context};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};

use crate::model::TemplateKind;
use crate::web::http::COOKIE as COOKIE_NAME;

/// What a submission made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Submitted {
    pub template: String,
    pub revision: u32,
    /// The template's page.
    pub url: String,
}

/// Packs `dir` as `NAME/…` in a tar.gz: regular files, directories and
/// symbolic links as they are (links are not followed), owners dropped.
pub fn pack(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_dir_all(name, dir)
        .with_context(|| format!("packing {}", dir.display()))?;
    Ok(tar.into_inner()?.finish()?)
}

/// The session cookie a response sets, if any.
fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?.trim();
        let (k, val) = pair.split_once('=')?;
        (k == COOKIE_NAME && !val.is_empty()).then(|| pair.to_string())
    })
}

/// The CSRF token of the first form on a page.
fn csrf_of(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let rest = &page[at..];
    Some(rest[..rest.find('"')?].to_string())
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                corral_site::html::url_encode(k, false),
                corral_site::html::url_encode(v, false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The error a page answered with: its JSON's `error` or its status.
async fn refusal(what: &str, r: reqwest::Response) -> anyhow::Error {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    let why = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| status.to_string());
    anyhow::anyhow!("{what}: {why} ({status})")
}

/// Signs in to the portal at `base` (`http[s]://HOST[:PORT]/community`)
/// as `user` and uploads `archive` as the next revision of `name`.
pub async fn submit(
    base: &str,
    (user, password): (&str, &str),
    name: &str,
    kind: TemplateKind,
    archive: Vec<u8>,
) -> anyhow::Result<Submitted> {
    let base = base.trim_end_matches('/');
    crate::validate::template_name(name)?;
    let http = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()?;
    // A visitor's session, for the sign-in form's token.
    let r = http
        .get(format!("{base}/sign-in"))
        .send()
        .await
        .with_context(|| format!("reaching {base}/sign-in"))?;
    if !r.status().is_success() {
        return Err(refusal("opening the sign-in page", r).await);
    }
    let visitor = session_cookie(&r).context("the portal set no session cookie")?;
    let token = csrf_of(&r.text().await?).context("the sign-in page has no CSRF token")?;
    let r = http
        .post(format!("{base}/sign-in"))
        .header(COOKIE, &visitor)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form_body(&[
            ("name", user),
            ("password", password),
            ("csrf", &token),
        ]))
        .send()
        .await?;
    if r.status() != StatusCode::SEE_OTHER {
        return Err(refusal(&format!("signing in as {user}"), r).await);
    }
    let session = session_cookie(&r).context("signing in set no session cookie")?;
    let r = http
        .get(format!("{base}/submit"))
        .header(COOKIE, &session)
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(refusal("opening the upload form", r).await);
    }
    let token = csrf_of(&r.text().await?).context("the upload form has no CSRF token")?;

    let boundary = format!("corral-{}", hex::encode(getrandom_bytes()?));
    let mut body = Vec::with_capacity(archive.len() + 1024);
    for (k, v) in [
        ("csrf", token.as_str()),
        ("name", name),
        ("kind", kind.as_str()),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; \
             filename=\"{name}.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&archive);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = http
        .post(format!("{base}/submit"))
        .header(COOKIE, &session)
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("accept", "application/json")
        .body(body)
        .send()
        .await?;
    if r.status() != StatusCode::SEE_OTHER {
        return Err(refusal(&format!("submitting {name}"), r).await);
    }
    let location = r
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .context("the portal did not say where the template is")?
        .to_string();
    let origin = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| &base[..i + 3 + j]))
        .unwrap_or(base);
    let url = format!("{origin}{location}");
    // The template's JSON twin says which revision this was.
    let view: serde_json::Value = http
        .get(format!("{url}.json"))
        .header(COOKIE, &session)
        .send()
        .await?
        .json()
        .await
        .context("reading the template's JSON")?;
    let Some(revision) = view["template"]["current_revision"].as_u64() else {
        bail!("the template's JSON has no current revision");
    };
    Ok(Submitted {
        template: name.to_string(),
        revision: u32::try_from(revision)?,
        url,
    })
}

fn getrandom_bytes() -> anyhow::Result<[u8; 12]> {
    let mut b = [0u8; 12];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_is_read_from_the_form() {
        let page = "<form><input type=\"hidden\" name=\"csrf\" value=\"abc123\"></form>";
        assert_eq!(csrf_of(page).as_deref(), Some("abc123"));
        assert_eq!(csrf_of("<p>none</p>"), None);
    }

    #[test]
    fn a_packed_folder_unpacks_as_a_library_folder() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("src");
        std::fs::create_dir(&f).unwrap();
        std::fs::write(f.join("Dockerfile"), "FROM quay.io/corral/base:43\n").unwrap();
        std::fs::write(
            f.join("image.toml"),
            "[image]\nsummary = \"x\"\ntags = [\"1\"]\narchitectures = [\"x86_64\"]\n",
        )
        .unwrap();
        std::fs::write(f.join("help.md"), "# x\n").unwrap();
        std::os::unix::fs::symlink("help.md", f.join("README.md")).unwrap();
        let archive = pack(&f, "hello").unwrap();
        let u = crate::upload::unpack(&archive[..], &Default::default(), dir.path()).unwrap();
        let folder = crate::upload::library_folder(u.dir.path()).unwrap();
        assert!(folder.root.ends_with("hello"));
        assert!(folder.root.join("README.md").is_symlink());
    }
}
