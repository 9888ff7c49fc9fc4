//! Reading a tree's rpm database with the real `rpm --root`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::TreeError;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub license: String,
    pub sourcerpm: Option<String>,
    pub summary: String,
    pub buildtime: i64,
    pub size: u64,
}

impl Package {
    /// `name-[epoch:]version-release.arch`.
    pub fn nevra(&self) -> String {
        match self.epoch {
            Some(e) if e != 0 => format!(
                "{}-{e}:{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
            _ => format!(
                "{}-{}-{}.{}",
                self.name, self.version, self.release, self.arch
            ),
        }
    }

    /// `[epoch:]version-release`.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) if e != 0 => format!("{e}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }
}

/// A file an rpm package owns, with whether it was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFile {
    pub package: String,
    pub installed: bool,
    pub doc: bool,
    pub lang: Option<String>,
    pub size: u64,
    pub path: String,
}

/// The rpm database of a tree, if it has one.
#[derive(Debug, Clone)]
pub struct RpmDb {
    root: PathBuf,
    dbpath: &'static str,
}

impl RpmDb {
    /// Finds the database under `root` (Fedora's /usr/lib/sysimage/rpm or
    /// the older /var/lib/rpm).
    pub fn find(root: &Path) -> Option<RpmDb> {
        ["/usr/lib/sysimage/rpm", "/var/lib/rpm"]
            .into_iter()
            .find(|db| {
                // The database is read where the tree holds it, never
                // through a link (a scriptlet's, to the builder's own).
                let Some(dir) =
                    crate::normalize::beneath(root, &format!("{}/db", db.trim_start_matches('/')))
                        .and_then(|p| p.parent().map(Path::to_path_buf))
                else {
                    return false;
                };
                std::fs::read_dir(&dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            })
            .map(|dbpath| RpmDb {
                root: root.to_path_buf(),
                dbpath,
            })
    }

    /// Queries a private copy of the database: rpm takes a lock and may
    /// touch files even to read, and a tree given to corral is never
    /// modified.
    fn query(&self, args: &[&str]) -> Result<String, TreeError> {
        let home = tempfile::tempdir().map_err(TreeError::io("creating", "a temporary HOME"))?;
        let db = self.root.join(self.dbpath.trim_start_matches('/'));
        let copy = home.path().join("rpmdb");
        std::fs::create_dir(&copy).map_err(TreeError::io("creating", &copy))?;
        for entry in std::fs::read_dir(&db).map_err(TreeError::io("reading", &db))? {
            let entry = entry.map_err(TreeError::io("reading", &db))?;
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                std::fs::copy(entry.path(), copy.join(entry.file_name()))
                    .map_err(TreeError::io("copying", entry.path()))?;
            }
        }
        let out = Command::new("rpm")
            .arg("--dbpath")
            .arg(&copy)
            .args(args)
            .env("HOME", home.path())
            .env("LC_ALL", "C.UTF-8")
            .output()
            .map_err(TreeError::io("running", "rpm"))?;
        if !out.status.success() {
            return Err(TreeError::Tool {
                tool: "rpm",
                status: out.status.to_string(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Every package but the imported signing keys, sorted by name.
    pub fn packages(&self) -> Result<Vec<Package>, TreeError> {
        let text = self.query(&[
            "-qa",
            "--qf",
            "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{LICENSE}\t%{SOURCERPM}\t%{BUILDTIME}\t%{SIZE}\t%{SUMMARY}\n",
        ])?;
        let mut packages: Vec<Package> = text.lines().filter_map(parse_package_line).collect();
        packages.sort();
        Ok(packages)
    }

    /// Each package's `name-[epoch:]version-release.arch` and the SHA-256
    /// of its header, which names one build (a rebuild with the same
    /// NEVRA has another), sorted by NEVRA.
    pub fn header_digests(&self) -> Result<Vec<(String, String)>, TreeError> {
        let text = self.query(&[
            "-qa",
            "--qf",
            "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SHA256HEADER}\n",
        ])?;
        let mut out: Vec<(String, String)> = text
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                let [name, epoch, version, release, arch, digest] = f[..] else {
                    return None;
                };
                // The imported signing keys are no packages.
                if name == "gpg-pubkey" {
                    return None;
                }
                let nevra = match epoch {
                    "(none)" | "0" => format!("{name}-{version}-{release}.{arch}"),
                    e => format!("{name}-{e}:{version}-{release}.{arch}"),
                };
                Some((nevra, digest.to_string()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every file every package owns, with its install state.
    pub fn files(&self) -> Result<Vec<OwnedFile>, TreeError> {
        let text = self.query(&[
            "-qa",
            "--qf",
            "[%{=NAME}\t%{FILESTATES:fstate}\t%{FILEFLAGS:fflags}\t%{FILELANGS}\t%{FILESIZES}\t%{FILENAMES}\n]",
        ])?;
        Ok(text.lines().filter_map(parse_file_line).collect())
    }
}

fn none(s: &str) -> Option<&str> {
    (s != "(none)" && !s.is_empty()).then_some(s)
}

fn parse_package_line(line: &str) -> Option<Package> {
    let f: Vec<&str> = line.splitn(10, '\t').collect();
    if f.len() != 10 || f[0] == "gpg-pubkey" {
        return None;
    }
    Some(Package {
        name: f[0].to_string(),
        epoch: none(f[1]).and_then(|e| e.parse().ok()),
        version: f[2].to_string(),
        release: f[3].to_string(),
        arch: f[4].to_string(),
        license: f[5].to_string(),
        sourcerpm: none(f[6]).map(str::to_string),
        buildtime: f[7].parse().unwrap_or(0),
        size: f[8].parse().unwrap_or(0),
        summary: f[9].to_string(),
    })
}

fn parse_file_line(line: &str) -> Option<OwnedFile> {
    let f: Vec<&str> = line.splitn(6, '\t').collect();
    if f.len() != 6 {
        return None;
    }
    Some(OwnedFile {
        package: f[0].to_string(),
        installed: f[1] == "normal" || f[1] == "replaced" || f[1] == "net shared",
        doc: f[2].contains('d'),
        lang: none(f[3]).map(str::to_string),
        size: f[4].parse().unwrap_or(0),
        path: f[5].to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_behind_a_link_is_not_the_trees() {
        let tree = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("rpmdb.sqlite"), "").unwrap();
        std::fs::create_dir_all(tree.path().join("usr/lib/sysimage")).unwrap();
        std::os::unix::fs::symlink(host.path(), tree.path().join("usr/lib/sysimage/rpm")).unwrap();
        std::fs::create_dir(tree.path().join("var")).unwrap();
        std::os::unix::fs::symlink(host.path(), tree.path().join("var/lib")).unwrap();
        std::fs::create_dir(host.path().join("rpm")).unwrap();
        std::fs::write(host.path().join("rpm/rpmdb.sqlite"), "").unwrap();
        assert!(RpmDb::find(tree.path()).is_none());
        std::fs::remove_file(tree.path().join("usr/lib/sysimage/rpm")).unwrap();
        std::fs::create_dir(tree.path().join("usr/lib/sysimage/rpm")).unwrap();
        std::fs::write(tree.path().join("usr/lib/sysimage/rpm/rpmdb.sqlite"), "").unwrap();
        assert!(RpmDb::find(tree.path()).is_some());
    }

    #[test]
    fn parses_query_lines() {
        let p = parse_package_line(
            "bash\t(none)\t5.2.26\t3.fc43\tx86_64\tGPL-3.0-or-later\tbash-5.2.26-3.fc43.src.rpm\t1700000000\t8000000\tThe GNU Bourne Again shell",
        )
        .unwrap();
        assert_eq!(p.nevra(), "bash-5.2.26-3.fc43.x86_64");
        assert_eq!(p.epoch, None);
        let p =
            parse_package_line("shadow-utils\t2\t4.15\t1\tx86_64\tBSD\t(none)\t1\t2\tx").unwrap();
        assert_eq!(p.nevra(), "shadow-utils-2:4.15-1.x86_64");
        assert_eq!(p.evr(), "2:4.15-1");
        assert!(
            parse_package_line("gpg-pubkey\t(none)\ta\tb\t(none)\tpubkey\t(none)\t1\t0\tkey")
                .is_none()
        );
        let f =
            parse_file_line("corral-hello\tnot installed\t\tde\t8000\t/usr/share/locale/de/x.mo")
                .unwrap();
        assert!(!f.installed && !f.doc);
        assert_eq!(f.lang.as_deref(), Some("de"));
        let f = parse_file_line("corral-hello\tnot installed\td\t\t20000\t/usr/share/doc/x/README")
            .unwrap();
        assert!(f.doc && f.lang.is_none());
    }
}
