//! Each page's HTML, in the site's frame, and its JSON twin. Every value
//! from a user (names, comments, reasons, help.md, log references) goes
//! through [`html::escape`] or the site's sanitizing Markdown renderer.

use std::fmt::Write as _;
use std::sync::Arc;

use corral_site::html::{self, escape};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::http::WebError;
use super::{db, is_maintainer, may_review, Portal, Visitor};
use crate::model::{AuditEntry, CheckKind, Review, Revision, Template, TemplateState};

fn when(at: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let s = t.format(&Rfc3339).unwrap_or_default();
    html::date(&s, OffsetDateTime::now_utc())
}

fn rfc3339(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn csrf_input(v: &Visitor) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(v.csrf().unwrap_or(""))
    )
}

fn template_href(p: &Portal, name: &str) -> String {
    escape(&format!(
        "{}/templates/{}",
        p.prefix(),
        html::url_encode(name, false)
    ))
}

/// The site's frame with the portal's own bar: where to go, and who is
/// signed in.
fn frame(p: &Portal, v: &Visitor, title: &str, json_href: &str, body: &str) -> String {
    let pre = escape(p.prefix());
    let mut bar = format!(
        "<nav class=\"portal\" aria-label=\"community\"><a href=\"{pre}\">Community templates</a> \
         <a href=\"{pre}/queue\">Waiting for review</a> <a href=\"{pre}/submit\">Submit</a> "
    );
    match v.account() {
        Some(a) => {
            let _ = write!(
                bar,
                "<form method=\"post\" action=\"{pre}/sign-out\" class=\"inline\">{}\
                 Signed in as <strong class=\"account\">{}</strong> \
                 <button type=\"submit\">Sign out</button></form>",
                csrf_input(v),
                escape(a)
            );
        }
        None => {
            let _ = write!(bar, "<a href=\"{pre}/sign-in\">Sign in</a>");
            if p.config.signup {
                let _ = write!(bar, " <a href=\"{pre}/sign-up\">Sign up</a>");
            }
        }
    }
    bar.push_str("</nav>\n");
    html::page(title, json_href, &format!("{bar}{body}"))
}

fn template_row(p: &Portal, t: &Template) -> String {
    format!(
        "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        template_href(p, &t.name),
        escape(&t.name),
        escape(t.kind.as_str()),
        escape(&t.author),
        when(t.updated_at)
    )
}

fn template_table(p: &Portal, ts: &[Template], empty: &str) -> String {
    if ts.is_empty() {
        return format!("<p>{}</p>\n", escape(empty));
    }
    let mut o = String::from(
        "<table><thead><tr><th>Template</th><th>Kind</th><th>Author</th><th>Updated</th></tr></thead><tbody>\n",
    );
    for t in ts {
        o.push_str(&template_row(p, t));
    }
    o.push_str("</tbody></table>\n");
    o
}

/// The community listing: published templates only.
pub fn listing(p: &Portal, v: &Visitor, listed: &[Template]) -> String {
    let body = format!(
        "<h1>Community templates</h1>\n<p>Templates shared by the community, each approved by \
         reviewers after its checks passed. They are not the official images.</p>\n{}",
        template_table(p, listed, "No community template is published yet.")
    );
    frame(
        p,
        v,
        "Community templates",
        &format!("{}.json", p.prefix()),
        &body,
    )
}

/// Templates under review.
pub fn queue(p: &Portal, v: &Visitor, waiting: &[Template]) -> String {
    let body = format!(
        "<h1>Waiting for review</h1>\n{}",
        template_table(p, waiting, "Nothing is waiting for review.")
    );
    frame(
        p,
        v,
        "Waiting for review",
        &format!("{}/queue.json", p.prefix()),
        &body,
    )
}

pub fn listing_json(ts: &[Template]) -> serde_json::Value {
    json!({ "templates": ts.iter().map(template_json).collect::<Vec<_>>() })
}

fn template_json(t: &Template) -> serde_json::Value {
    json!({
        "name": t.name,
        "kind": t.kind.as_str(),
        "author": t.author,
        "state": t.state.as_str(),
        "current_revision": t.current_revision,
        "published_revision": t.published_revision,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
    })
}

/// Everything a template's page shows.
pub struct TemplateView {
    pub template: Template,
    pub revisions: Vec<Revision>,
    pub reviews: Vec<Review>,
    pub audit: Vec<AuditEntry>,
    /// help.md of the current revision, as uploaded.
    pub help: Option<String>,
    /// The lint log of the current revision, once linted.
    pub findings: Option<String>,
    /// How users require the community key, when the portal publishes.
    pub policy: Option<crate::publish::PolicySnippet>,
}

/// The lint log's findings, each linked to its rule's page.
fn findings_list(p: &Portal, log: &str) -> String {
    let mut o = String::from("<h3>Lint findings</h3>\n<ul class=\"findings\">\n");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        // `Dockerfile:L:C: CR001 error: message`
        let rule = line
            .split(": ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .filter(|id| corral_dockerfiles::lint::rule(id).is_some());
        let text = match rule {
            Some(id) => {
                let href = format!("{}/rules/{id}", p.prefix());
                escape(line).replacen(id, &format!("<a href=\"{}\">{id}</a>", escape(&href)), 1)
            }
            None => escape(line),
        };
        let _ = writeln!(o, "<li><code>{text}</code></li>");
    }
    o.push_str("</ul>\n");
    o
}

/// A lint rule's page.
pub fn rule(p: &Portal, v: &Visitor, r: &corral_dockerfiles::lint::RuleInfo) -> String {
    let body = format!(
        "<h1>{} <small>{}</small></h1>\n<p>Severity: {}</p>\n<p>{}</p>\n<p>{}</p>\n\
         <h2>Instead of</h2>\n<pre>{}</pre>\n<h2>Write</h2>\n<pre>{}</pre>\n",
        escape(r.id),
        escape(r.name),
        escape(&r.severity.to_string()),
        escape(r.summary),
        escape(r.rationale),
        escape(r.bad),
        escape(r.good)
    );
    let json = format!("{}/rules/{}.json", p.prefix(), r.id);
    frame(p, v, r.id, &json, &body)
}

impl TemplateView {
    pub async fn load(p: &Arc<Portal>, name: String) -> Result<TemplateView, WebError> {
        let (template, revisions, reviews, audit) = db(p, move |s| {
            let t = s
                .template(&name)?
                .ok_or(crate::store::StoreError::NotFound {
                    what: "template",
                    name: name.clone(),
                })?;
            Ok((
                t,
                s.revisions(&name)?,
                s.reviews(&name)?,
                s.audit_of(&name)?,
            ))
        })
        .await?;
        let help = revisions
            .iter()
            .find(|r| r.number == template.current_revision)
            .and_then(|r| super::submit::read_help(&p.config.archive_dir, &r.archive_digest));
        let findings = revisions
            .iter()
            .find(|r| r.number == template.current_revision)
            .and_then(|r| Some((p.log_dir()?, r.lint.log.as_deref()?)))
            .and_then(|(dir, log)| crate::checks::read_log(dir, log));
        Ok(TemplateView {
            template,
            revisions,
            reviews,
            audit,
            help,
            findings,
            policy: None,
        })
    }

    fn current(&self) -> Option<&Revision> {
        self.revisions
            .iter()
            .find(|r| r.number == self.template.current_revision)
    }

    pub fn json(&self, host: &str) -> serde_json::Value {
        let t = &self.template;
        let rev = |r: &Revision| {
            json!({
                "number": r.number,
                "archive_digest": r.archive_digest,
                "created_at": rfc3339(r.created_at),
                "checks": CheckKind::ALL.iter().map(|k| {
                    let c = r.check(*k);
                    json!({ "check": k.as_str(), "status": c.status.as_str(), "log": c.log })
                }).collect::<Vec<_>>(),
            })
        };
        json!({
            "template": template_json(t),
            "withdrawn": t.state == TemplateState::Withdrawn,
            "pull": (t.state == TemplateState::Published).then(|| pull_command(host, &t.name)),
            "policy": (t.state == TemplateState::Published)
                .then(|| self.policy.clone())
                .flatten()
                .map(|s| json!({
                    "key_url": s.key_url,
                    "key_path": s.key_path,
                    "policy_json": s.policy_json,
                    "registries_d": s.registries_d,
                })),
            "help": self.help,
            "revisions": self.revisions.iter().map(rev).collect::<Vec<_>>(),
            "reviews": self.reviews.iter().map(|r| json!({
                "reviewer": r.reviewer,
                "revision": r.revision,
                "verdict": r.verdict.as_str(),
                "comment": r.comment,
                "created_at": rfc3339(r.created_at),
            })).collect::<Vec<_>>(),
            "audit": self.audit.iter().map(|a| json!({
                "at": rfc3339(a.at),
                "actor": a.actor,
                "action": a.action,
                "revision": a.revision,
                "detail": a.detail,
            })).collect::<Vec<_>>(),
        })
    }
}

fn pull_command(host: &str, name: &str) -> String {
    format!("podman pull {host}/community/{name}")
}

fn checks_table(p: &Portal, r: &Revision) -> String {
    let mut o = String::from(
        "<table class=\"checks\"><thead><tr><th>Check</th><th>Result</th><th>Log</th></tr></thead><tbody>\n",
    );
    for k in CheckKind::ALL {
        let c = r.check(k);
        let log = c.log.as_deref().map_or_else(
            || "—".to_string(),
            |_| {
                let href = format!(
                    "{}/templates/{}/revisions/{}/{}.log",
                    p.prefix(),
                    html::url_encode(&r.template, false),
                    r.number,
                    k.as_str()
                );
                format!(
                    "<a href=\"{}\">{}.log</a>",
                    escape(&href),
                    escape(k.as_str())
                )
            },
        );
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"check-{}\">{}</td><td>{log}</td></tr>",
            escape(k.as_str()),
            escape(c.status.as_str()),
            escape(c.status.as_str()),
        );
    }
    o.push_str("</tbody></table>\n");
    o
}

/// A template's page.
pub fn template(p: &Portal, v: &Visitor, view: &TemplateView, host: &str) -> String {
    let t = &view.template;
    let name = escape(&t.name);
    let mut o = format!("<h1>{name}</h1>\n");
    let _ = writeln!(
        o,
        "<p>A {} by <strong>{}</strong>; {}.</p>",
        escape(t.kind.as_str()),
        escape(&t.author),
        match t.state {
            TemplateState::UnderReview => "under review".to_string(),
            TemplateState::Published => format!(
                "published (revision {})",
                t.published_revision.unwrap_or(t.current_revision)
            ),
            TemplateState::Withdrawn => "withdrawn".to_string(),
        }
    );
    match t.state {
        TemplateState::Withdrawn => o.push_str(
            "<p class=\"withdrawn\"><strong>Withdrawn.</strong> A maintainer took this template \
             down: it is no longer listed, and what was pulled stays pullable by digest.</p>\n",
        ),
        TemplateState::Published => {
            let _ = writeln!(
                o,
                "<h2>Pull</h2>\n{}",
                html::command(&pull_command(host, &t.name))
            );
            if let Some(snippet) = p.policy_snippet(host) {
                let _ = writeln!(
                    o,
                    "<p>Community templates are signed with the <strong>community key</strong>, \
                     not the official one. To have podman and skopeo require it for \
                     <code>{}/community</code>, fetch the key:</p>\n{}\n\
                     <p>and put this in <code>/etc/containers/policy.json</code> (merged with \
                     your own):</p>\n<pre class=\"policy\">{}</pre>\n\
                     <p>and this in <code>/etc/containers/registries.d/</code>:</p>\n<pre>{}</pre>",
                    escape(host),
                    html::command(&format!(
                        "curl -fsSo {} {}",
                        snippet.key_path.display(),
                        snippet.key_url
                    )),
                    escape(&snippet.policy_json),
                    escape(&snippet.registries_d),
                );
            }
        }
        TemplateState::UnderReview => {}
    }
    if let Some(r) = view.current() {
        let _ = write!(
            o,
            "<h2>Revision {} checks</h2>\n<p>Archive {}</p>\n{}",
            r.number,
            html::digest(&r.archive_digest),
            checks_table(p, r)
        );
        if let Some(findings) = &view.findings {
            o.push_str(&findings_list(p, findings));
        }
    }
    if let Some(h) = &view.help {
        let _ = write!(
            o,
            "<h2>help.md</h2>\n<div class=\"help\">{}</div>\n",
            corral_site::markdown::render(h)
        );
    }
    o.push_str("<h2>Reviews</h2>\n");
    if view.reviews.is_empty() {
        o.push_str("<p>No review yet.</p>\n");
    } else {
        o.push_str("<ul class=\"reviews\">\n");
        for r in &view.reviews {
            let _ = writeln!(
                o,
                "<li><strong>{}</strong> — {} on revision {}, {}<blockquote>{}</blockquote></li>",
                escape(&r.reviewer),
                escape(r.verdict.as_str()),
                r.revision,
                when(r.created_at),
                escape(&r.comment)
            );
        }
        o.push_str("</ul>\n");
    }
    if let Some(account) = v.account() {
        let pre = escape(p.prefix());
        let href = template_href(p, &t.name);
        if may_review(p, account, &t.author, t.state) {
            let _ = write!(
                o,
                "<h2>Review revision {rev}</h2>\n<form method=\"post\" action=\"{href}/review\">{csrf}\
                 <input type=\"hidden\" name=\"revision\" value=\"{rev}\">\
                 <p><label><input type=\"radio\" name=\"verdict\" value=\"approve\"> Approve</label> \
                 <label><input type=\"radio\" name=\"verdict\" value=\"request-changes\" checked> Request changes</label></p>\
                 <p><label>Comment<br><textarea name=\"comment\" rows=\"4\" cols=\"60\"></textarea></label></p>\
                 <p><button type=\"submit\">Send the review</button></p></form>\n",
                rev = t.current_revision,
                csrf = csrf_input(v),
            );
        }
        if is_maintainer(p, account) && t.state == TemplateState::Published {
            let _ = write!(
                o,
                "<h2>Withdraw</h2>\n<form method=\"post\" action=\"{href}/withdraw\">{}\
                 <p><label>Reason<br><input name=\"reason\" size=\"60\" required></label></p>\
                 <p><button type=\"submit\">Withdraw this template</button></p></form>\n",
                csrf_input(v)
            );
        }
        if account == t.author && t.state != TemplateState::Withdrawn {
            let _ = writeln!(
                o,
                "<p><a href=\"{pre}/submit?name={}\">Upload a new revision</a></p>",
                escape(&html::url_encode(&t.name, false))
            );
        }
    }
    o.push_str("<h2>History</h2>\n<table><thead><tr><th>Revision</th><th>Archive</th><th>Uploaded</th><th>Checks</th></tr></thead><tbody>\n");
    for r in view.revisions.iter().rev() {
        let checks: Vec<String> = CheckKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.as_str(), r.check(*k).status.as_str()))
            .collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.number,
            html::digest(&r.archive_digest),
            when(r.created_at),
            escape(&checks.join(", "))
        );
    }
    o.push_str("</tbody></table>\n<h2>Audit trail</h2>\n<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Revision</th><th>Detail</th></tr></thead><tbody>\n");
    for a in &view.audit {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(a.at),
            escape(&a.actor),
            escape(&a.action),
            a.revision.map_or_else(String::new, |r| r.to_string()),
            escape(&a.detail)
        );
    }
    o.push_str("</tbody></table>\n");
    let json_href = format!(
        "{}/templates/{}.json",
        p.prefix(),
        html::url_encode(&t.name, false)
    );
    frame(p, v, &t.name, &json_href, &o)
}

fn error_line(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e))
    })
}

/// The sign-in form.
pub fn sign_in(p: &Portal, v: &Visitor, error: Option<&str>) -> String {
    let pre = escape(p.prefix());
    let body = format!(
        "<h1>Sign in</h1>\n{}<form method=\"post\" action=\"{pre}/sign-in\">{}\
         <p><label>Name<br><input name=\"name\" autocomplete=\"username\" required></label></p>\
         <p><label>Password<br><input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form>\n\
         <p>The mirror's accounts sign in with their mirror password.</p>\n",
        error_line(error),
        csrf_input(v)
    );
    frame(p, v, "Sign in", &format!("{}.json", p.prefix()), &body)
}

/// The sign-up form (when the configuration allows it).
pub fn sign_up(p: &Portal, v: &Visitor, error: Option<&str>) -> String {
    let pre = escape(p.prefix());
    let body = format!(
        "<h1>Make an account</h1>\n{}<form method=\"post\" action=\"{pre}/sign-up\">{}\
         <p><label>Name<br><input name=\"name\" autocomplete=\"username\" required></label></p>\
         <p><label>Password (10 to 71 characters)<br><input name=\"password\" type=\"password\" \
         autocomplete=\"new-password\" minlength=\"10\" required></label></p>\
         <p><button type=\"submit\">Make the account</button></p></form>\n",
        error_line(error),
        csrf_input(v)
    );
    frame(
        p,
        v,
        "Make an account",
        &format!("{}.json", p.prefix()),
        &body,
    )
}

/// The upload form.
pub fn submit(p: &Portal, v: &Visitor) -> String {
    let pre = escape(p.prefix());
    let body = if v.account().is_none() {
        format!(
            "<h1>Submit a template</h1>\n<p><a href=\"{pre}/sign-in\">Sign in</a> to submit a template.</p>\n"
        )
    } else {
        format!(
            "<h1>Submit a template</h1>\n\
             <p>A tar or tar.gz of a library folder (Dockerfile, image.toml, help.md), at most {}. \
             The same name again uploads a new revision of your template.</p>\n\
             <form method=\"post\" action=\"{pre}/submit\" enctype=\"multipart/form-data\">{}\
             <p><label>Name<br><input name=\"name\" required pattern=\"[a-z0-9]+([._-][a-z0-9]+)*\"></label></p>\
             <p><label>Kind<br><select name=\"kind\"><option value=\"dockerfile-folder\">Dockerfile folder</option>\
             <option value=\"tree-recipe\">tree recipe</option></select></label></p>\
             <p><label>Archive<br><input name=\"archive\" type=\"file\" required></label></p>\
             <p><button type=\"submit\">Submit</button></p></form>\n",
            html::human_size(p.config.uploads.max_total),
            csrf_input(v)
        )
    };
    frame(
        p,
        v,
        "Submit a template",
        &format!("{}.json", p.prefix()),
        &body,
    )
}
