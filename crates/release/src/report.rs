//! The release report, as JSON for machines and Markdown for people: what
//! was rebuilt and why, package changes, test results, signatures and
//! timings.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::plan::{Action, Step};

/// One release run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// RFC 3339 UTC.
    pub started: String,
    pub seconds: f64,
    pub success: bool,
    pub steps: Vec<StepReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: Step,
    pub seconds: f64,
    pub items: Vec<ItemReport>,
    /// Why the step stopped, when it failed.
    pub error: Option<String>,
}

/// What happened to one image or stream.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    pub name: String,
    pub action: Action,
    pub reason: String,
    /// The published digest or commit.
    pub published: Option<String>,
    /// Sub-steps (build, test, push, sign) done in this run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ran: Vec<String>,
    /// Sub-steps an earlier, interrupted run had finished, so not redone
    /// while the others ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<String>,
    pub packages: Option<PackageChanges>,
    pub tests: Option<TestSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Signature>,
    /// A stream's commit as an OCI image in the mirror (the ostree
    /// container format).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_image: Option<OsImageReport>,
    /// Why it is not published: it failed (to build, its tests, to push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Why it was not tested or published: a base of it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub seconds: f64,
}

/// The OS image a stream's step pushed: every tag reference, the manifest
/// digest and its layers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsImageReport {
    /// `HOST/REPOSITORY:TAG`, one per tag: the version, then the moving tag.
    pub references: Vec<String>,
    pub digest: String,
    /// The commit inside.
    pub commit: String,
    pub layers: usize,
    /// The layers' compressed bytes together.
    pub size: u64,
}

/// One signature made on a published image: what was signed, with which
/// key, where the signature is, and the command that checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Signature {
    /// `cosign` or `gpg`.
    pub kind: String,
    /// The tag reference signed.
    pub reference: String,
    /// The manifest digest the signature covers.
    pub digest: String,
    /// The key's ID: `SHA256:` and the cosign public key's fingerprint, or
    /// the GPG key's fingerprint.
    pub key: String,
    /// The cosign signature tag or the GPG signature's lookaside URL.
    pub location: String,
    /// A command that verifies it.
    pub verify: String,
}

impl Signature {
    /// As recorded in the state (JSON); a record from before signatures
    /// were structured (`cosign sha256-….sig`) keeps its kind and location.
    pub fn from_record(text: &str) -> Signature {
        serde_json::from_str(text).unwrap_or_else(|_| {
            let (kind, location) = text.split_once(' ').unwrap_or(("", text));
            Signature {
                kind: kind.to_string(),
                location: location.to_string(),
                ..Signature::default()
            }
        })
    }

    pub fn to_record(&self) -> String {
        serde_json::to_string(self).expect("strings serialize")
    }

    /// `cosign SHA256:0123456789ab…`: the table cell.
    fn brief(&self) -> String {
        if self.key.is_empty() {
            return self.kind.clone();
        }
        format!("{} {}", self.kind, short_key(&self.key))
    }
}

/// A key ID shortened for a table cell (the section below has it whole).
fn short_key(key: &str) -> String {
    let (prefix, hex) = key.split_once(':').unwrap_or(("", key));
    let hex = if hex.len() > 16 { &hex[..16] } else { hex };
    let ellipsis = if key.len() > prefix.len() + 1 + 16 {
        "…"
    } else {
        ""
    };
    if prefix.is_empty() {
        format!("{hex}{ellipsis}")
    } else {
        format!("{prefix}:{hex}{ellipsis}")
    }
}

impl ItemReport {
    /// Fills `ran` and `resumed` from (sub-step, ran now) pairs: an item
    /// none of whose sub-steps ran was simply kept.
    pub fn record_sub_steps(&mut self, subs: &[(&str, bool)]) {
        self.ran = subs
            .iter()
            .filter(|s| s.1)
            .map(|s| s.0.to_string())
            .collect();
        self.resumed = if self.ran.is_empty() {
            Vec::new()
        } else {
            subs.iter()
                .filter(|s| !s.1)
                .map(|s| s.0.to_string())
                .collect()
        };
    }

    pub fn new(name: &str, action: Action, reason: &str) -> ItemReport {
        ItemReport {
            name: name.to_string(),
            action,
            reason: reason.to_string(),
            published: None,
            ran: Vec::new(),
            resumed: Vec::new(),
            packages: None,
            tests: None,
            signatures: Vec::new(),
            os_image: None,
            failed: None,
            skipped: None,
            seconds: 0.0,
        }
    }

    /// What was done to it in this run, in words: `built, tested, pushed,
    /// signed`, `kept`, `built; skipped: …`, `failed: …`.
    pub fn done(&self) -> String {
        let ran: Vec<&str> = self
            .ran
            .iter()
            .map(|s| match s.as_str() {
                "build" => "built",
                "test" => "tested",
                "push" => "pushed",
                "sign" => "signed",
                "compose" => "composed",
                other => other,
            })
            .collect();
        let mut parts = Vec::new();
        if ran.is_empty() && self.failed.is_none() && self.skipped.is_none() {
            parts.push("kept".to_string());
        } else if self.action == Action::Keep && !ran.is_empty() {
            parts.push(format!("kept; {}", ran.join(", ")));
        } else if !ran.is_empty() {
            parts.push(ran.join(", "));
        }
        if let Some(why) = &self.failed {
            parts.push(format!("**failed**: {why}"));
        }
        if let Some(why) = &self.skipped {
            parts.push(format!("**skipped**: {why}"));
        }
        let mut out = parts.join("; ");
        if !self.resumed.is_empty() {
            out.push_str(&format!(" (resumed: {})", self.resumed.join(", ")));
        }
        out
    }
}

/// Packages added, removed and changed against what was published before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `name: from → to`.
    pub changed: Vec<String>,
}

impl PackageChanges {
    /// From two `name-evr.arch` lists.
    pub fn between(old: &[String], new: &[String]) -> PackageChanges {
        let d = corral_compose::diff::diff_packages(old, new);
        PackageChanges {
            added: d.added,
            removed: d.removed,
            changed: d
                .changed
                .into_iter()
                .map(|c| format!("{}.{}: {} → {}", c.name, c.arch, c.from, c.to))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn summary(&self) -> String {
        if self.is_empty() {
            return "no package changes".into();
        }
        let mut parts = Vec::new();
        for (n, what, list) in [
            (self.added.len(), "added", &self.added),
            (self.changed.len(), "changed", &self.changed),
            (self.removed.len(), "removed", &self.removed),
        ] {
            if n > 0 {
                parts.push(format!("{what}: {}", list.join(", ")));
            }
        }
        parts.join("; ")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestSummary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The names of the failed checks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// The MCS level the test containers ran at (`s0:c12,c345`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub level: String,
    /// The host's SELinux mode while they ran: `enforcing` (the labels
    /// were enforced), `permissive` or `disabled` (set, not enforced).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub enforcement: String,
}

impl TestSummary {
    /// As recorded in the state when the tests passed.
    pub fn to_outputs(&self) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([
            ("passed".to_string(), self.passed.to_string()),
            ("skipped".to_string(), self.skipped.to_string()),
            ("level".to_string(), self.level.clone()),
            ("enforcement".to_string(), self.enforcement.clone()),
        ])
    }

    /// From a record of passed tests.
    pub fn from_outputs(out: &std::collections::BTreeMap<String, String>) -> TestSummary {
        let n = |k: &str| out.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        TestSummary {
            passed: n("passed"),
            skipped: n("skipped"),
            level: out.get("level").cloned().unwrap_or_default(),
            enforcement: out.get("enforcement").cloned().unwrap_or_default(),
            ..TestSummary::default()
        }
    }

    /// `3 passed, 0 failed; s0:c1,c2, enforced`.
    fn cell(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed, self.failed);
        if !self.failures.is_empty() {
            s.push_str(&format!(" ({})", self.failures.join(", ")));
        }
        if !self.level.is_empty() {
            s.push_str(&format!("; {}", self.level));
        }
        match self.enforcement.as_str() {
            "" => {}
            "enforcing" => s.push_str(", enforced"),
            mode => s.push_str(&format!(", not enforced (SELinux {mode})")),
        }
        s
    }
}

impl Report {
    /// The report for people.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        md.push_str(&format!(
            "# corral release {}\n\n{} in {:.0} s.\n",
            self.started,
            if self.success {
                "Succeeded"
            } else {
                "**Failed**"
            },
            self.seconds
        ));
        for s in &self.steps {
            md.push_str(&format!("\n## {} ({:.0} s)\n\n", s.step.title(), s.seconds));
            if let Some(e) = &s.error {
                md.push_str(&format!("**Failed:** {e}\n\n"));
            }
            if s.items.is_empty() {
                md.push_str("Nothing to do.\n");
                continue;
            }
            md.push_str(
                "| item | done | why | published | packages | tests | signatures | time |\n",
            );
            md.push_str("|---|---|---|---|---|---|---|---|\n");
            for i in &s.items {
                let tests = i
                    .tests
                    .as_ref()
                    .map(TestSummary::cell)
                    .unwrap_or_else(|| "–".into());
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {:.0} s |\n",
                    cell(&i.name),
                    cell(&i.done()),
                    cell(&i.reason),
                    i.published.as_deref().map(short).unwrap_or("–".into()),
                    i.packages
                        .as_ref()
                        .map(|p| cell(&p.summary()))
                        .unwrap_or_else(|| "–".into()),
                    cell(&tests),
                    if i.signatures.is_empty() {
                        "–".to_string()
                    } else {
                        let briefs: Vec<String> =
                            i.signatures.iter().map(Signature::brief).collect();
                        cell(&briefs.join(", "))
                    },
                    i.seconds
                ));
            }
        }
        md.push_str(&self.os_image_section());
        md.push_str(&self.signature_section());
        md
    }

    /// The OS images pushed: every reference with its digest.
    fn os_image_section(&self) -> String {
        let mut md = String::new();
        for i in self.steps.iter().flat_map(|s| &s.items) {
            let Some(img) = &i.os_image else { continue };
            if md.is_empty() {
                md.push_str("\n## OS images\n\n");
            }
            md.push_str(&format!(
                "- **{}**: `{}` (commit `{}`, {} layers, {} bytes), tagged {}\n",
                i.name,
                img.digest,
                img.commit,
                img.layers,
                img.size,
                img.references
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        md
    }

    /// The signatures of every item, whole: digest, key and the command
    /// that verifies each.
    fn signature_section(&self) -> String {
        let mut md = String::new();
        for i in self.steps.iter().flat_map(|s| &s.items) {
            for sig in i.signatures.iter().filter(|s| !s.digest.is_empty()) {
                if md.is_empty() {
                    md.push_str("\n## Signatures\n");
                }
                md.push_str(&format!(
                    "\n- **{}** ({}): `{}` signed with key `{}` at `{}`\n\n  ```\n  {}\n  ```\n",
                    i.name, sig.kind, sig.digest, sig.key, sig.location, sig.verify
                ));
            }
        }
        md
    }

    /// Writes `release.json` and `release.md` into `dir`; returns their paths.
    /// Both are public records of the release: mode 0644.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = dir.join("release.json");
        let md = dir.join("release.md");
        write_atomically(&json, &serde_json::to_vec_pretty(self)?)?;
        write_atomically(&md, self.markdown().as_bytes())?;
        Ok((json, md))
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `sha256:0123456789ab…`.
fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}…", &hex[..12]),
        _ if digest.len() > 16 => format!("{}…", &digest[..16]),
        _ => digest.to_string(),
    }
}

pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, data)
        .with_context(|| format!("writing {}", path.display()))?;
    // A temporary file is created 0600; the report is for everyone.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut base = ItemReport::new(
            "sample/base:43",
            Action::Build,
            "security advisory CORRAL-2026-0042: respin now (1 package update)",
        );
        base.published = Some(format!("sha256:{}", "ab".repeat(32)));
        base.packages = Some(PackageChanges::between(
            &[
                "corral-hello-1.0-1.x86_64".into(),
                "corral-old-1-1.x86_64".into(),
            ],
            &["corral-hello-1.1-1.x86_64".into()],
        ));
        base.tests = Some(TestSummary {
            passed: 3,
            failed: 1,
            skipped: 0,
            failures: vec!["command cat /x".into()],
            level: "s0:c12,c345".into(),
            enforcement: "disabled".into(),
        });
        base.signatures = vec![
            Signature {
                kind: "cosign".into(),
                reference: "127.0.0.1:5000/sample/base:43".into(),
                digest: format!("sha256:{}", "ab".repeat(32)),
                key: format!("SHA256:{}", "c0".repeat(32)),
                location: format!("sha256-{}.sig", "ab".repeat(32)),
                verify: "corral verify image 127.0.0.1:5000/sample/base:43 --plain-http --key keys/cosign.pub".into(),
            },
            Signature {
                kind: "gpg".into(),
                reference: "127.0.0.1:5000/sample/base:43".into(),
                digest: format!("sha256:{}", "ab".repeat(32)),
                key: "0123456789ABCDEF0123456789ABCDEF01234567".into(),
                location: "http://127.0.0.1:5000/sigstore/sample/base@sha256=abab/signature-1".into(),
                verify: "gpg --export 0123456789ABCDEF0123456789ABCDEF01234567 > release-key.gpg && corral verify image 127.0.0.1:5000/sample/base:43 --plain-http --gpg-keyring release-key.gpg".into(),
            },
        ];
        base.record_sub_steps(&[
            ("build", true),
            ("test", false),
            ("push", true),
            ("sign", true),
        ]);
        Report {
            started: "2026-11-25T21:00:00Z".into(),
            seconds: 61.2,
            success: false,
            steps: vec![
                StepReport {
                    step: Step::Base,
                    seconds: 40.0,
                    items: vec![base],
                    error: None,
                },
                StepReport {
                    step: Step::Library,
                    seconds: 0.0,
                    items: vec![],
                    error: Some("building app: exit 1".into()),
                },
            ],
        }
    }

    #[test]
    fn package_changes_come_from_the_two_lists() {
        let c = PackageChanges::between(
            &["a-1-1.x86_64".into(), "b-1-1.noarch".into()],
            &["a-2-1.x86_64".into(), "c-1-1.noarch".into()],
        );
        assert_eq!(c.added, ["c-1-1.noarch"]);
        assert_eq!(c.removed, ["b-1-1.noarch"]);
        assert_eq!(c.changed, ["a.x86_64: 1-1 → 2-1"]);
        assert!(PackageChanges::between(&c.added, &c.added).is_empty());
    }

    #[test]
    fn markdown_has_a_row_per_item_and_the_failure() {
        let md = sample().markdown();
        assert!(md.starts_with("# corral release 2026-11-25T21:00:00Z\n\n**Failed** in 61 s.\n"));
        assert!(
            md.contains(
                "| sample/base:43 | built, pushed, signed (resumed: test) \
                 | security advisory CORRAL-2026-0042: respin now (1 package update) \
                 | sha256:abababababab… \
                 | changed: corral-hello.x86_64: 1.0-1 → 1.1-1; removed: corral-old-1-1.x86_64 \
                 | 3 passed, 1 failed (command cat /x); s0:c12,c345, not enforced (SELinux disabled) \
                 | cosign SHA256:c0c0c0c0c0c0c0c0…, gpg 0123456789ABCDEF… | 0 s |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("## curated library (0 s)\n\n**Failed:** building app: exit 1\n"),
            "{md}"
        );
    }

    #[test]
    fn a_streams_os_image_is_listed_with_its_references() {
        let mut r = sample();
        assert!(!r.markdown().contains("## OS images"));
        let mut host = ItemReport::new("sample-atomic", Action::Build, "due");
        host.os_image = Some(OsImageReport {
            references: vec![
                "127.0.0.1:5000/os/sample-atomic:43.20261125.0".into(),
                "127.0.0.1:5000/os/sample-atomic:43".into(),
            ],
            digest: format!("sha256:{}", "cd".repeat(32)),
            commit: "ef".repeat(32),
            layers: 7,
            size: 4096,
        });
        r.steps.push(StepReport {
            step: Step::Host,
            seconds: 1.0,
            items: vec![host],
            error: None,
        });
        let md = r.markdown();
        assert!(
            md.contains(&format!(
                "## OS images\n\n- **sample-atomic**: `sha256:{}` (commit `{}`, 7 layers, 4096 bytes), \
                 tagged `127.0.0.1:5000/os/sample-atomic:43.20261125.0`, `127.0.0.1:5000/os/sample-atomic:43`\n",
                "cd".repeat(32),
                "ef".repeat(32)
            )),
            "{md}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["steps"][2]["items"][0]["os_image"]["layers"], 7);
        // absent, not null, on the items without one
        assert!(json["steps"][0]["items"][0].get("os_image").is_none());
    }

    #[test]
    fn an_item_kept_but_finished_now_says_so() {
        let mut i = ItemReport::new("app", Action::Keep, "unchanged");
        i.record_sub_steps(&[("build", false), ("test", false), ("push", false)]);
        assert!(i.ran.is_empty() && i.resumed.is_empty());
        i.record_sub_steps(&[
            ("build", false),
            ("test", false),
            ("push", true),
            ("sign", true),
        ]);
        assert_eq!(i.ran, ["push", "sign"]);
        assert_eq!(i.resumed, ["build", "test"]);
        let r = Report {
            steps: vec![StepReport {
                step: Step::Library,
                seconds: 0.0,
                items: vec![i],
                error: None,
            }],
            ..Report::default()
        };
        assert!(r
            .markdown()
            .contains("| app | kept; pushed, signed (resumed: build, test) | unchanged |"));
    }

    #[test]
    fn signatures_are_listed_with_digest_key_and_verify_command() {
        let md = sample().markdown();
        let section = &md[md.find("## Signatures").expect("a signatures section")..];
        assert!(
            section.contains(&format!(
                "- **sample/base:43** (cosign): `sha256:{}` signed with key `SHA256:{}`",
                "ab".repeat(32),
                "c0".repeat(32)
            )),
            "{section}"
        );
        assert!(
            section.contains("  corral verify image 127.0.0.1:5000/sample/base:43 --plain-http --key keys/cosign.pub\n"),
            "{section}"
        );
        assert!(
            section.contains("--gpg-keyring release-key.gpg"),
            "{section}"
        );
        // a record from the state round-trips; an old plain one keeps its kind
        let sig = sample().steps[0].items[0].signatures[0].clone();
        assert_eq!(Signature::from_record(&sig.to_record()), sig);
        assert_eq!(Signature::from_record("gpg http://x/sig").kind, "gpg");
    }

    #[test]
    fn each_item_says_what_was_done_or_why_not() {
        let mut failed = ItemReport::new("base2", Action::Build, "not built yet");
        failed.record_sub_steps(&[("build", true)]);
        failed.failed = Some("base2 failed its tests (command false); not published".into());
        failed.tests = Some(TestSummary {
            passed: 1,
            failed: 1,
            failures: vec!["command false".into()],
            level: "s0:c1,c2".into(),
            enforcement: "enforcing".into(),
            ..TestSummary::default()
        });
        let mut skipped = ItemReport::new("app", Action::Build, "not built yet");
        skipped.record_sub_steps(&[("build", true)]);
        skipped.skipped = Some("its base base2 failed its tests".into());
        let mut other = ItemReport::new("other", Action::Build, "not built yet");
        other.record_sub_steps(&[
            ("build", true),
            ("test", true),
            ("push", true),
            ("sign", true),
        ]);
        let r = Report {
            steps: vec![StepReport {
                step: Step::Library,
                seconds: 0.0,
                items: vec![failed, skipped, other],
                error: None,
            }],
            ..Report::default()
        };
        let md = r.markdown();
        assert!(
            md.contains(
                "| base2 | built; **failed**: base2 failed its tests (command false); not published \
                 | not built yet | – | – | 1 passed, 1 failed (command false); s0:c1,c2, enforced |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| app | built; **skipped**: its base base2 failed its tests | not built yet |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| other | built, tested, pushed, signed | not built yet |"),
            "{md}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["steps"][0]["items"][1]["skipped"],
            "its base base2 failed its tests"
        );
        assert_eq!(
            json["steps"][0]["items"][0]["tests"]["enforcement"],
            "enforcing"
        );
    }

    #[test]
    fn writes_json_and_markdown() {
        let dir = tempfile::tempdir().unwrap();
        let (json, md) = sample().write(dir.path()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(v["steps"][0]["step"], "base");
        assert_eq!(v["steps"][0]["items"][0]["action"], "build");
        assert_eq!(v["steps"][0]["items"][0]["tests"]["failed"], 1);
        assert_eq!(v["steps"][1]["error"], "building app: exit 1");
        assert!(std::fs::read_to_string(&md)
            .unwrap()
            .contains("## base images"));
        // public records, whatever the umask and tempfile made of them
        for f in [&json, &md] {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(f).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o644, "{}", f.display());
        }
    }
}
