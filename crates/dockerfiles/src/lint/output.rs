//! Rendering lint results as text, JSON or SARIF 2.1.0.

use super::{Finding, Severity, RULES};
use serde_json::json;
use std::path::PathBuf;

/// The findings of one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub findings: Vec<Finding>,
}

/// `path:line:col: severity[ID] message`, one per line.
pub fn text(reports: &[FileReport]) -> String {
    let mut s = String::new();
    for r in reports {
        for f in &r.findings {
            s.push_str(&format!(
                "{}:{}:{}: {}[{}] {}\n",
                r.path.display(),
                f.line,
                f.column,
                f.severity,
                f.rule,
                f.message
            ));
        }
    }
    s
}

/// `linted 3 files: 2 errors, 1 warning, 0 info`, or `… no findings`.
pub fn summary(reports: &[FileReport]) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let count = |s: Severity| {
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.severity == s)
            .count()
    };
    let files = plural(reports.len(), "file", "files");
    let (e, w, i) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    if e + w + i == 0 {
        return format!("linted {files}: no findings");
    }
    format!(
        "linted {files}: {}, {}, {i} info",
        plural(e, "error", "errors"),
        plural(w, "warning", "warnings")
    )
}

/// A JSON array of `{path, rule, severity, line, column, message}`.
pub fn json(reports: &[FileReport]) -> serde_json::Value {
    let items: Vec<_> = reports
        .iter()
        .flat_map(|r| {
            r.findings.iter().map(move |f| {
                json!({
                    "path": r.path,
                    "rule": f.rule,
                    "severity": f.severity,
                    "line": f.line,
                    "column": f.column,
                    "message": f.message,
                })
            })
        })
        .collect();
    serde_json::Value::Array(items)
}

/// A minimal valid SARIF 2.1.0 log with one run.
pub fn sarif(reports: &[FileReport]) -> serde_json::Value {
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    };
    let rules: Vec<_> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "helpUri": format!("docs/rules/{}.md", r.id),
                "defaultConfiguration": { "level": level(r.severity) },
            })
        })
        .collect();
    let results: Vec<_> = reports
        .iter()
        .flat_map(|r| {
            r.findings.iter().map(move |f| {
                json!({
                    "ruleId": f.rule,
                    "ruleIndex": RULES.iter().position(|x| x.id == f.rule).unwrap_or(0),
                    "level": level(f.severity),
                    "message": { "text": f.message },
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": { "uri": r.path.to_string_lossy().replace('\\', "/") },
                            "region": { "startLine": f.line.max(1), "startColumn": f.column.max(1) }
                        }
                    }]
                })
            })
        })
        .collect();
    // Every file linted, findings or not: says what was looked at.
    let artifacts: Vec<_> = reports
        .iter()
        .map(|r| json!({ "location": { "uri": r.path.to_string_lossy().replace('\\', "/") } }))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "corral-dockerfiles",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "artifacts": artifacts,
            "results": results,
        }]
    })
}
