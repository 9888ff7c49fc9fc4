//! What the website shows of an image beyond its bytes, published as OCI
//! 1.1 artifacts that refer to it (docs/site.md): a library image's help
//! text and its Dockerfile with the lint findings, a base image's
//! outstanding security advisories. Each is computed here as bytes; the
//! steps push them with [`crate::publish::push_artifact`].

use serde::Serialize;

use corral_dockerfiles::library::LibraryImage;
use corral_image::outdated::Staleness;

/// The artifact type of an image's help text (Markdown).
pub const HELP_ARTIFACT_TYPE: &str = "application/vnd.corral.help.v1+markdown";
/// The artifact type of a library image's Dockerfile and lint findings.
pub const BUILD_ARTIFACT_TYPE: &str = "application/vnd.corral.build.v1+json";
/// The artifact type of the advisories outstanding for an image.
pub const ADVISORIES_ARTIFACT_TYPE: &str = "application/vnd.corral.advisories.v1+json";

/// Help files larger than this are not published (the site reads 8 MiB).
const MAX_HELP: u64 = 1 << 20;

#[derive(Debug, Serialize)]
struct BuildInfo<'a> {
    dockerfile: &'a str,
    findings: Vec<Finding<'a>>,
}

#[derive(Debug, Serialize)]
struct Finding<'a> {
    rule: &'a str,
    severity: &'a str,
    line: usize,
    message: &'a str,
}

/// `{"dockerfile": "…", "findings": [{"rule", "severity", "line",
/// "message"}]}`: the Dockerfile as built and what `corral dockerfiles
/// lint` says of it.
pub fn build_info(dockerfile: &[u8]) -> anyhow::Result<Vec<u8>> {
    let text = String::from_utf8_lossy(dockerfile);
    let findings = corral_dockerfiles::lint::lint_bytes(dockerfile);
    let severities: Vec<String> = findings.iter().map(|f| f.severity.to_string()).collect();
    let info = BuildInfo {
        dockerfile: &text,
        findings: findings
            .iter()
            .zip(&severities)
            .map(|(f, severity)| Finding {
                rule: f.rule,
                severity,
                line: f.line,
                message: &f.message,
            })
            .collect(),
    };
    Ok(serde_json::to_vec(&info)?)
}

/// The build artifact of library image `img` (its `Dockerfile`).
pub fn library_build_info(img: &LibraryImage) -> anyhow::Result<Vec<u8>> {
    let path = img.dir.join("Dockerfile");
    let bytes = corral_configfile::read(&path, corral_configfile::DEFAULT_LIMIT)?;
    build_info(&bytes)
}

/// The help text of library image `img`: its `help.md`, when it has one.
pub fn library_help(img: &LibraryImage) -> anyhow::Result<Option<Vec<u8>>> {
    let path = img.dir.join("help.md");
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(corral_configfile::read(&path, MAX_HELP)?))
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Advisory {
    pub id: String,
    pub package: String,
    /// The installed `epoch:version-release`.
    pub installed: String,
    /// The package build that fixes it, `name-evr.arch`.
    pub fixed: String,
    pub severity: String,
}

/// `[{"id", "package", "installed", "fixed", "severity"}]`, one entry per
/// advisory and fixed package the image lacks: what `corral image
/// outdated` reports, from the same comparison. An empty list says none
/// is outstanding.
pub fn advisories(installed: &[(String, String, String)], staleness: &Staleness) -> Vec<Advisory> {
    let mut out = Vec::new();
    for hit in &staleness.advisories {
        for fixed in &hit.fixed_in {
            // `name-evr.arch`: the longest installed name it starts with
            let package = installed
                .iter()
                .filter(|(name, _, _)| {
                    fixed
                        .strip_prefix(name.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
                })
                .max_by_key(|(name, _, _)| name.len());
            out.push(Advisory {
                id: hit.id.clone(),
                package: package.map(|p| p.0.clone()).unwrap_or_default(),
                installed: package.map(|p| p.1.clone()).unwrap_or_default(),
                fixed: fixed.clone(),
                severity: hit.severity.clone().unwrap_or_default(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_image::outdated::AdvisoryHit;

    #[test]
    fn advisories_name_the_package_the_image_has_and_the_fix() {
        let installed = vec![
            ("corral".into(), "1.0-1".into(), "noarch".into()),
            ("corral-hello".into(), "1.0-1".into(), "noarch".into()),
        ];
        let staleness = Staleness {
            updates: vec![],
            advisories: vec![AdvisoryHit {
                id: "CORRAL-2026-0042".into(),
                severity: Some("Important".into()),
                title: "hello".into(),
                fixed_in: vec!["corral-hello-1.1-1.noarch".into()],
            }],
        };
        assert_eq!(
            advisories(&installed, &staleness),
            [Advisory {
                id: "CORRAL-2026-0042".into(),
                package: "corral-hello".into(),
                installed: "1.0-1".into(),
                fixed: "corral-hello-1.1-1.noarch".into(),
                severity: "Important".into(),
            }]
        );
        assert_eq!(
            serde_json::to_string(&advisories(&installed, &Staleness::default())).unwrap(),
            "[]"
        );
    }

    #[test]
    fn build_info_carries_the_dockerfile_and_its_findings() {
        let v: serde_json::Value =
            serde_json::from_slice(&build_info(b"FROM fedora\nRUN echo hi\n").unwrap()).unwrap();
        assert_eq!(v["dockerfile"], "FROM fedora\nRUN echo hi\n");
        let findings = v["findings"].as_array().unwrap();
        let unpinned = findings
            .iter()
            .find(|f| f["rule"] == "CR001")
            .expect("an unpinned FROM is a finding");
        assert_eq!(unpinned["line"], 1);
        assert!(!unpinned["message"].as_str().unwrap().is_empty());
    }
}
