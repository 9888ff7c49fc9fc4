//! Packages added, removed and changed between two commits, from the
//! package lists recorded on them (`compose diff`, `host status`,
//! `host upgrade`).

use std::collections::BTreeMap;

use serde::Serialize;

/// A package whose version changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedPackage {
    pub name: String,
    pub arch: String,
    pub from: String,
    pub to: String,
}

/// The package difference of two commits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<ChangedPackage>,
}

/// Splits `name-[epoch:]version-release.arch` into `(name, arch, evr)`.
pub fn split_nevra(nevra: &str) -> (String, String, String) {
    let (rest, arch) = nevra.rsplit_once('.').unwrap_or((nevra, ""));
    let mut parts = rest.rsplitn(3, '-');
    let release = parts.next().unwrap_or_default();
    let version = parts.next();
    let name = parts.next();
    match (name, version) {
        (Some(name), Some(version)) => (
            name.to_string(),
            arch.to_string(),
            format!("{version}-{release}"),
        ),
        _ => (rest.to_string(), arch.to_string(), String::new()),
    }
}

/// What changed from package list `a` to `b`.
pub fn diff_packages(a: &[String], b: &[String]) -> PackageDiff {
    let index = |list: &[String]| -> BTreeMap<(String, String), (String, String)> {
        list.iter()
            .map(|n| {
                let (name, arch, evr) = split_nevra(n);
                ((name, arch), (evr, n.clone()))
            })
            .collect()
    };
    let (old, new) = (index(a), index(b));
    let mut diff = PackageDiff::default();
    for (key, (evr, nevra)) in &new {
        match old.get(key) {
            None => diff.added.push(nevra.clone()),
            Some((old_evr, _)) if old_evr != evr => diff.changed.push(ChangedPackage {
                name: key.0.clone(),
                arch: key.1.clone(),
                from: old_evr.clone(),
                to: evr.clone(),
            }),
            Some(_) => {}
        }
    }
    for (key, (_, nevra)) in &old {
        if !new.contains_key(key) {
            diff.removed.push(nevra.clone());
        }
    }
    diff
}

/// The diff for people.
pub fn render(diff: &PackageDiff) -> String {
    let mut out = String::new();
    for c in &diff.changed {
        out.push_str(&format!(
            "changed  {}.{} {} -> {}\n",
            c.name, c.arch, c.from, c.to
        ));
    }
    for a in &diff.added {
        out.push_str(&format!("added    {a}\n"));
    }
    for r in &diff.removed {
        out.push_str(&format!("removed  {r}\n"));
    }
    if out.is_empty() {
        out.push_str("no package changes\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nevras() {
        assert_eq!(
            split_nevra("corral-hello-1.1-1.x86_64"),
            ("corral-hello".into(), "x86_64".into(), "1.1-1".into())
        );
        assert_eq!(
            split_nevra("bash-1:5.2.26-3.fc43.x86_64"),
            ("bash".into(), "x86_64".into(), "1:5.2.26-3.fc43".into())
        );
    }

    #[test]
    fn finds_added_removed_changed() {
        let a: Vec<String> = ["a-1-1.x86_64", "b-1-1.noarch", "c-2-1.x86_64"]
            .map(String::from)
            .to_vec();
        let b: Vec<String> = ["a-1-1.x86_64", "b-1.1-1.noarch", "d-1-1.x86_64"]
            .map(String::from)
            .to_vec();
        let d = diff_packages(&a, &b);
        assert_eq!(d.added, ["d-1-1.x86_64"]);
        assert_eq!(d.removed, ["c-2-1.x86_64"]);
        assert_eq!(
            d.changed,
            [ChangedPackage {
                name: "b".into(),
                arch: "noarch".into(),
                from: "1-1".into(),
                to: "1.1-1".into()
            }]
        );
        assert_eq!(render(&diff_packages(&a, &a)), "no package changes\n");
        assert!(render(&d).contains("changed  b.noarch 1-1 -> 1.1-1"));
    }
}
