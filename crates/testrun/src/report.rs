//! Results of a test run as text, JSON and JUnit XML.

use crate::label::Enforcement;
use serde::Serialize;
use std::fmt::Write;

/// Everything one `corral test` invocation found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub enforcement: Enforcement,
    /// [`Enforcement::describe`], so a JSON reader need not know the enum.
    pub enforcement_note: String,
    pub images: Vec<ImageReport>,
}

/// One image's run: its label and its cases.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// The library name, or the reference when run by reference.
    pub name: String,
    pub reference: String,
    /// `label=type:…` and `label=level:…` as given to the engine.
    pub security_opt: Vec<String>,
    /// `s0:cX,cY`, empty when the run could not start.
    pub level: String,
    pub cases: Vec<CaseResult>,
    /// Why the run could not happen at all (exit code 2).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub outcome: Outcome,
    /// Why it failed or was skipped, or a note on a pass.
    pub message: String,
    pub seconds: f64,
    /// The container that ran it, when kept (`--keep`).
    pub container: Option<String>,
}

impl Report {
    /// 0 when every case passed, 1 when some failed, 2 when a run could not happen.
    pub fn exit_code(&self) -> u8 {
        if self.images.is_empty() || self.images.iter().any(|i| i.error.is_some()) {
            2
        } else if self
            .images
            .iter()
            .flat_map(|i| &i.cases)
            .any(|c| c.outcome == Outcome::Failed)
        {
            1
        } else {
            0
        }
    }

    /// The human report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for img in &self.images {
            let _ = writeln!(out, "{} ({})", img.name, img.reference);
            if !img.level.is_empty() {
                let _ = writeln!(out, "  label: {}", img.security_opt.join(" "));
            }
            if let Some(e) = &img.error {
                let _ = writeln!(out, "  error: {e}");
            }
            for c in &img.cases {
                let word = match c.outcome {
                    Outcome::Passed => "ok  ",
                    Outcome::Failed => "FAIL",
                    Outcome::Skipped => "skip",
                };
                let _ = write!(out, "  {word} {}", c.name);
                if !c.message.is_empty() {
                    let _ = write!(out, ": {}", c.message);
                }
                out.push('\n');
            }
        }
        let count = |o: Outcome| {
            self.images
                .iter()
                .flat_map(|i| &i.cases)
                .filter(|c| c.outcome == o)
                .count()
        };
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} skipped",
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Skipped)
        );
        let _ = writeln!(out, "{}", self.enforcement_note);
        out
    }

    /// JUnit XML: one testsuite per image, its label in the properties.
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
        for img in &self.images {
            let failures = img
                .cases
                .iter()
                .filter(|c| c.outcome == Outcome::Failed)
                .count();
            let skipped = img
                .cases
                .iter()
                .filter(|c| c.outcome == Outcome::Skipped)
                .count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{skipped}\">",
                xml(&img.name),
                img.cases.len(),
                usize::from(img.error.is_some()),
            );
            out.push_str("    <properties>\n");
            for (k, v) in [
                ("image", img.reference.as_str()),
                ("selinux.level", img.level.as_str()),
                ("selinux.security-opt", &img.security_opt.join(" ")),
                ("selinux.enforcement", &self.enforcement_note),
            ] {
                let _ = writeln!(out, "      <property name=\"{k}\" value=\"{}\"/>", xml(v));
            }
            out.push_str("    </properties>\n");
            if let Some(e) = &img.error {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"run\" classname=\"{}\"><error message=\"{}\"/></testcase>",
                    xml(&img.name),
                    xml(e)
                );
            }
            for c in &img.cases {
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                    xml(&c.name),
                    xml(&img.name),
                    c.seconds
                );
                match c.outcome {
                    Outcome::Passed => out.push_str("/>\n"),
                    Outcome::Failed => {
                        let _ = writeln!(
                            out,
                            "><failure message=\"{}\"/></testcase>",
                            xml(&c.message)
                        );
                    }
                    Outcome::Skipped => {
                        let _ = writeln!(
                            out,
                            "><skipped message=\"{}\"/></testcase>",
                            xml(&c.message)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

fn xml(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\n' => "&#10;".to_string(),
            c if c.is_control() => String::new(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(outcome: Outcome, error: Option<&str>) -> Report {
        Report {
            enforcement: Enforcement::Disabled,
            enforcement_note: Enforcement::Disabled.describe().into(),
            images: vec![ImageReport {
                name: "app".into(),
                reference: "quay.io/x/app:1".into(),
                security_opt: vec![
                    "label=type:container_t".into(),
                    "label=level:s0:c1,c2".into(),
                ],
                level: "s0:c1,c2".into(),
                cases: vec![CaseResult {
                    name: "command <echo>".into(),
                    outcome,
                    message: "stdout \"a&b\" does not match".into(),
                    seconds: 0.5,
                    container: None,
                }],
                error: error.map(str::to_string),
            }],
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(sample(Outcome::Passed, None).exit_code(), 0);
        assert_eq!(sample(Outcome::Skipped, None).exit_code(), 0);
        assert_eq!(sample(Outcome::Failed, None).exit_code(), 1);
        assert_eq!(sample(Outcome::Passed, Some("no image")).exit_code(), 2);
    }

    #[test]
    fn junit_escapes_and_counts() {
        let x = sample(Outcome::Failed, None).junit();
        assert!(x.contains("tests=\"1\" failures=\"1\" errors=\"0\""), "{x}");
        assert!(x.contains("name=\"command &lt;echo&gt;\""), "{x}");
        assert!(
            x.contains("<failure message=\"stdout &quot;a&amp;b&quot; does not match\"/>"),
            "{x}"
        );
        assert!(
            x.contains("<property name=\"selinux.level\" value=\"s0:c1,c2\"/>"),
            "{x}"
        );
    }

    #[test]
    fn text_says_labels_were_not_enforced() {
        let t = sample(Outcome::Passed, None).text();
        assert!(
            t.contains("label: label=type:container_t label=level:s0:c1,c2"),
            "{t}"
        );
        assert!(t.ends_with("labels were set but not enforced\n"), "{t}");
    }
}
