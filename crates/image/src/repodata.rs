//! Repository metadata as dnf reads it: `repodata/repomd.xml`, the
//! package list in `primary.xml` and security advisories in
//! `updateinfo.xml` (each plain, `.gz` or `.zst`).
//!
//! Parsing takes text and returns data ([`parse_repomd`], [`parse_primary`],
//! [`parse_updateinfo`]); [`Repodata::read`] does the file I/O.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RepodataError;
use crate::rpmvercmp::Evr;

/// One package in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoPackage {
    pub name: String,
    pub arch: String,
    pub evr: Evr,
}

/// One advisory and the packages that fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advisory {
    pub id: String,
    /// `security`, `bugfix`, `enhancement`, `newpackage`.
    pub kind: String,
    pub severity: Option<String>,
    pub title: String,
    pub packages: Vec<RepoPackage>,
}

impl Advisory {
    pub fn is_security(&self) -> bool {
        self.kind == "security"
    }
}

/// A repository's current metadata.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Repodata {
    /// The repository (its base URL).
    pub location: String,
    /// `revision` of repomd.xml, or its checksum when it has none.
    pub revision: String,
    pub packages: Vec<RepoPackage>,
    pub advisories: Vec<Advisory>,
}

/// A metadata file repomd.xml points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepomdEntry {
    pub kind: String,
    pub href: String,
}

/// repomd.xml's revision (if any) and its data entries.
pub fn parse_repomd(text: &str) -> Result<(Option<String>, Vec<RepomdEntry>), String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let revision = child(root, "revision").and_then(|n| n.text().map(str::to_string));
    let entries = root
        .children()
        .filter(|n| n.tag_name().name() == "data")
        .filter_map(|d| {
            let kind = d.attribute("type")?.to_string();
            let href = child(d, "location")?.attribute("href")?.to_string();
            Some(RepomdEntry { kind, href })
        })
        .collect();
    Ok((revision, entries))
}

/// The packages of primary.xml.
pub fn parse_primary(text: &str) -> Result<Vec<RepoPackage>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    Ok(doc
        .root_element()
        .children()
        .filter(|n| n.tag_name().name() == "package")
        .filter_map(|p| {
            let name = child(p, "name")?.text()?.to_string();
            let arch = child(p, "arch")?.text()?.to_string();
            let v = child(p, "version")?;
            Some(RepoPackage {
                name,
                arch,
                evr: Evr {
                    epoch: v
                        .attribute("epoch")
                        .and_then(|e| e.parse().ok())
                        .unwrap_or(0),
                    version: v.attribute("ver")?.to_string(),
                    release: v.attribute("rel").unwrap_or_default().to_string(),
                },
            })
        })
        .collect())
}

/// The advisories of updateinfo.xml.
pub fn parse_updateinfo(text: &str) -> Result<Vec<Advisory>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    Ok(doc
        .root_element()
        .children()
        .filter(|n| n.tag_name().name() == "update")
        .filter_map(|u| {
            let id = child(u, "id")?.text()?.trim().to_string();
            let packages = u
                .descendants()
                .filter(|n| n.tag_name().name() == "package")
                .filter_map(|p| {
                    Some(RepoPackage {
                        name: p.attribute("name")?.to_string(),
                        arch: p.attribute("arch").unwrap_or("noarch").to_string(),
                        evr: Evr {
                            epoch: p
                                .attribute("epoch")
                                .and_then(|e| e.parse().ok())
                                .unwrap_or(0),
                            version: p.attribute("version")?.to_string(),
                            release: p.attribute("release").unwrap_or_default().to_string(),
                        },
                    })
                })
                .collect();
            Some(Advisory {
                id,
                kind: u.attribute("type").unwrap_or("bugfix").to_string(),
                severity: child(u, "severity").and_then(|n| n.text().map(str::to_string)),
                title: child(u, "title")
                    .and_then(|n| n.text().map(str::to_string))
                    .unwrap_or_default(),
                packages,
            })
        })
        .collect())
}

fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|n| n.tag_name().name() == name)
}

/// A local repository's directory from its base URL.
pub fn local_dir(baseurl: &str) -> Result<PathBuf, RepodataError> {
    if let Some(path) = baseurl.strip_prefix("file://") {
        return Ok(PathBuf::from(path));
    }
    if baseurl.contains("://") {
        return Err(RepodataError::Remote(baseurl.to_string()));
    }
    Ok(PathBuf::from(baseurl))
}

impl Repodata {
    /// Reads the metadata of the repository at `baseurl`.
    pub fn read(baseurl: &str) -> Result<Repodata, RepodataError> {
        let dir = local_dir(baseurl)?;
        let repomd_path = dir.join("repodata/repomd.xml");
        let repomd = read_text(&repomd_path)?;
        let invalid = |path: &Path, message: String| RepodataError::Invalid {
            location: path.display().to_string(),
            message,
        };
        let (revision, entries) = parse_repomd(&repomd).map_err(|m| invalid(&repomd_path, m))?;
        let mut data = Repodata {
            location: baseurl.to_string(),
            revision: revision.unwrap_or_else(|| corral_oci::sha256_parts([repomd.as_bytes()])),
            ..Repodata::default()
        };
        for entry in entries {
            let path = dir.join(&entry.href);
            match entry.kind.as_str() {
                "primary" => {
                    data.packages =
                        parse_primary(&read_text(&path)?).map_err(|m| invalid(&path, m))?
                }
                "updateinfo" => {
                    data.advisories =
                        parse_updateinfo(&read_text(&path)?).map_err(|m| invalid(&path, m))?
                }
                _ => {}
            }
        }
        Ok(data)
    }

    /// The hash that changes whenever the repository's metadata does.
    pub fn repomd_hash(baseurl: &str) -> Result<String, RepodataError> {
        let path = local_dir(baseurl)?.join("repodata/repomd.xml");
        Ok(corral_oci::sha256_parts([read_text(&path)?.as_bytes()]))
    }
}

/// A metadata file, decompressed by its extension.
fn read_text(path: &Path) -> Result<String, RepodataError> {
    let io = |source| RepodataError::Io {
        location: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let name = path.to_string_lossy();
    let mut reader: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(file).map_err(io)?)
    } else {
        Box::new(file)
    };
    let mut text = String::new();
    reader.read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1767225600</revision>
  <data type="primary">
    <checksum type="sha256">aa</checksum>
    <location href="repodata/aa-primary.xml.zst"/>
  </data>
  <data type="updateinfo">
    <location href="repodata/bb-updateinfo.xml.gz"/>
  </data>
</repomd>"#;

    const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>corral-hello</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="1.1" rel="1"/>
  <format><rpm:license>MIT</rpm:license></format>
</package>
<package type="rpm">
  <name>corral-busybox</name>
  <arch>x86_64</arch>
  <version epoch="2" ver="1.36" rel="3"/>
</package>
</metadata>"#;

    const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@corral.invalid" status="final" type="security" version="2.0">
    <id>CORRAL-2026-0042</id>
    <title>corral-hello: greeting overflow</title>
    <severity>Important</severity>
    <pkglist>
      <collection short="sample">
        <name>sample</name>
        <package name="corral-hello" version="1.1" release="1" epoch="0" arch="x86_64" src="corral-hello-1.1-1.src.rpm">
          <filename>corral-hello-1.1-1.x86_64.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>"#;

    #[test]
    fn reads_repomd_primary_and_updateinfo() {
        let (rev, entries) = parse_repomd(REPOMD).unwrap();
        assert_eq!(rev.as_deref(), Some("1767225600"));
        assert_eq!(
            entries,
            [
                RepomdEntry {
                    kind: "primary".into(),
                    href: "repodata/aa-primary.xml.zst".into()
                },
                RepomdEntry {
                    kind: "updateinfo".into(),
                    href: "repodata/bb-updateinfo.xml.gz".into()
                }
            ]
        );
        let pkgs = parse_primary(PRIMARY).unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[1].evr.to_string(), "2:1.36-3");
        let adv = parse_updateinfo(UPDATEINFO).unwrap();
        assert_eq!(adv[0].id, "CORRAL-2026-0042");
        assert!(adv[0].is_security());
        assert_eq!(adv[0].severity.as_deref(), Some("Important"));
        assert_eq!(adv[0].packages[0].name, "corral-hello");
        assert_eq!(adv[0].packages[0].evr.to_string(), "1.1-1");
    }

    #[test]
    fn reads_compressed_files_from_a_local_repository() {
        let dir = tempfile::tempdir().unwrap();
        let rd = dir.path().join("repodata");
        std::fs::create_dir_all(&rd).unwrap();
        std::fs::write(rd.join("repomd.xml"), REPOMD).unwrap();
        std::fs::write(
            rd.join("aa-primary.xml.zst"),
            zstd::encode_all(PRIMARY.as_bytes(), 3).unwrap(),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, UPDATEINFO.as_bytes()).unwrap();
        std::fs::write(rd.join("bb-updateinfo.xml.gz"), gz.finish().unwrap()).unwrap();
        let url = format!("file://{}", dir.path().display());
        let data = Repodata::read(&url).unwrap();
        assert_eq!(data.packages.len(), 2);
        assert_eq!(data.advisories.len(), 1);
        assert_eq!(data.revision, "1767225600");
        assert!(matches!(
            Repodata::read("https://example.invalid/repo"),
            Err(RepodataError::Remote(_))
        ));
    }

    #[test]
    fn broken_metadata_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repodata")).unwrap();
        std::fs::write(dir.path().join("repodata/repomd.xml"), "<repomd>").unwrap();
        let e = Repodata::read(&dir.path().display().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("repodata/repomd.xml"), "{e}");
    }

    #[test]
    fn a_missing_repository_names_its_file_and_the_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let e = Repodata::repomd_hash(&dir.path().display().to_string()).unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(e));
        assert!(text.starts_with("reading "), "{text}");
        assert!(text.contains("repodata/repomd.xml"), "{text}");
        assert_eq!(
            text.matches("No such file or directory").count(),
            1,
            "{text}"
        );
    }
}
