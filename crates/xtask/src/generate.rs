//! docs/man and completions/ are generated from the clap tree by the built
//! binary (`corral generate man|completions`, crates/cli/src/generate.rs)
//! and checked in; `generate --check` fails naming the files that differ.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::scratch::Scratch;
use crate::workspace::{self, Workspace};
use crate::Failure;

/// What `corral generate` writes, and where it is checked in.
const OUTPUTS: [(&str, &str); 2] = [("man", "docs/man"), ("completions", "completions")];

/// Builds `corral` and writes docs/man and completions/ afresh.
pub fn write(ws: &Workspace) -> Result<(), Failure> {
    let corral = build_corral(ws)?;
    write_with(ws, &corral)
}

fn write_with(ws: &Workspace, corral: &Path) -> Result<(), Failure> {
    let scratch = Scratch::new("generate")?;
    render(ws, corral, scratch.path())?;
    for (kind, dir) in OUTPUTS {
        let dest = ws.root.join(dir);
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .map_err(|e| Failure::usage(format!("removing {}: {e}", dest.display())))?;
        }
        copy_dir(&scratch.path().join(kind), &dest)?;
        println!("wrote {dir}");
    }
    Ok(())
}

/// Builds `corral` and fails if docs/man or completions/ differ from what
/// it generates.
pub fn check(ws: &Workspace) -> Result<(), Failure> {
    let corral = build_corral(ws)?;
    check_with(ws, &corral)
}

/// The check with a `corral` already built (the suite's build stage).
pub fn check_with(ws: &Workspace, corral: &Path) -> Result<(), Failure> {
    let scratch = Scratch::new("generate-check")?;
    render(ws, corral, scratch.path())?;
    let mut changes = Vec::new();
    for (kind, dir) in OUTPUTS {
        let generated = scratch.path().join(kind);
        let committed = ws.root.join(dir);
        for change in differences(&generated, &committed)? {
            if let Change::Differs(name) = &change {
                // the lines that differ
                if let Ok(diff) = std::process::Command::new("diff")
                    .args(["-u", "--label", &format!("{dir}/{name} (checked in)")])
                    .args(["--label", &format!("{dir}/{name} (generated)")])
                    .arg(committed.join(name))
                    .arg(generated.join(name))
                    .output()
                {
                    print!("{}", String::from_utf8_lossy(&diff.stdout));
                }
            }
            changes.push(format!("{dir}/{change}"));
        }
    }
    if changes.is_empty() {
        println!("docs/man and completions/ match the clap tree");
        return Ok(());
    }
    Err(Failure::no(format!(
        "generated files are stale (run `cargo xtask generate`):\n  {}",
        changes.join("\n  ")
    )))
}

fn build_corral(ws: &Workspace) -> Result<PathBuf, Failure> {
    let mut build = ws.cargo();
    build.args(["build", "--locked", "-p", "corral"]);
    let status = workspace::status(&mut build)?;
    if !status.success() {
        return Err(Failure {
            message: format!("{} failed", workspace::describe(&build)),
            code: workspace::exit_code(status),
        });
    }
    Ok(ws.corral_bin())
}

/// `corral generate man OUT/man` and `corral generate completions
/// OUT/completions`.
fn render(ws: &Workspace, corral: &Path, out: &Path) -> Result<(), Failure> {
    for (kind, _) in OUTPUTS {
        let mut cmd = ws.command(corral);
        cmd.args(["generate", kind]).arg(out.join(kind));
        let status = workspace::status(&mut cmd)?;
        if !status.success() {
            return Err(Failure {
                message: format!("{} failed", workspace::describe(&cmd)),
                code: workspace::exit_code(status),
            });
        }
    }
    Ok(())
}

/// A checked-in file that is not what the generator writes.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Both have it, with other contents.
    Differs(String),
    /// Generated, not checked in.
    Missing(String),
    /// Checked in, no longer generated.
    Extra(String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Differs(n) => write!(f, "{n}: differs"),
            Change::Missing(n) => write!(f, "{n}: missing (generated, not checked in)"),
            Change::Extra(n) => write!(f, "{n}: no longer generated"),
        }
    }
}

/// The files (relative paths, in order) of `committed` that are not what
/// `generated` holds. A missing `committed` directory is empty.
pub fn differences(generated: &Path, committed: &Path) -> std::io::Result<Vec<Change>> {
    let new = files(generated)?;
    let old = if committed.exists() {
        files(committed)?
    } else {
        BTreeSet::new()
    };
    let mut changes = Vec::new();
    for name in new.union(&old) {
        let change = match (new.contains(name), old.contains(name)) {
            (true, false) => Change::Missing(name.clone()),
            (false, true) => Change::Extra(name.clone()),
            _ if std::fs::read(generated.join(name))? != std::fs::read(committed.join(name))? => {
                Change::Differs(name.clone())
            }
            _ => continue,
        };
        changes.push(change);
    }
    Ok(changes)
}

/// Every file under `dir`, as paths relative to it.
fn files(dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.to_string_lossy().into_owned());
            }
        }
    }
    Ok(out)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Failure> {
    for name in files(from)? {
        let dest = to.join(&name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&name), &dest)
            .map_err(|e| Failure::usage(format!("writing {}: {e}", dest.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn names_each_stale_missing_and_extra_file() {
        let generated = Scratch::new("test-generated").unwrap();
        let committed = Scratch::new("test-committed").unwrap();
        let (g, c) = (generated.path(), committed.path());
        for dir in [g, c] {
            put(dir, "corral.1", "same\n");
            put(dir, "sub/corral-image.1", "same\n");
        }
        assert_eq!(differences(g, c).unwrap(), []);

        put(g, "corral-image-build.1", "new option\n");
        put(c, "corral-image-build.1", "old option\n");
        put(g, "corral-host.1", "a new command\n");
        put(c, "corral-gone.1", "a removed command\n");
        put(g, "sub/corral-image.1", "changed\n");
        assert_eq!(
            differences(g, c).unwrap(),
            [
                Change::Extra("corral-gone.1".into()),
                Change::Missing("corral-host.1".into()),
                Change::Differs("corral-image-build.1".into()),
                Change::Differs("sub/corral-image.1".into()),
            ]
        );
        assert_eq!(
            Change::Differs("corral.1".into()).to_string(),
            "corral.1: differs"
        );
    }

    /// A checkout with docs/man and completions/, and a stand-in for the
    /// built corral that writes `corral.1` with `version`.
    fn checkout(version: &str) -> (Scratch, Workspace, PathBuf) {
        let dir = Scratch::new("test-checkout").unwrap();
        let root = dir.path().to_path_buf();
        put(&root, "docs/man/corral.1", "page v1\n");
        put(&root, "docs/man/corral-image.1", "same\n");
        put(&root, "docs/man/corral-gone.1", "a removed command\n");
        put(&root, "completions/corral.bash", "complete\n");
        let corral = root.join("fake-corral");
        put(
            &root,
            "fake-corral",
            &format!(
                "#!/bin/sh\nset -e\nmkdir -p \"$3\"\ncase $2 in\n\
                 man) printf 'page {version}\\n' > \"$3/corral.1\"; printf 'same\\n' > \"$3/corral-image.1\" ;;\n\
                 completions) printf 'complete\\n' > \"$3/corral.bash\" ;;\nesac\n"
            ),
        );
        std::fs::set_permissions(&corral, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let ws = Workspace::at(root);
        (dir, ws, corral)
    }

    #[test]
    fn the_check_fails_naming_the_stale_files_and_generate_fixes_them() {
        let (_dir, ws, corral) = checkout("v2");
        let e = check_with(&ws, &corral).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.message.contains("cargo xtask generate"), "{}", e.message);
        assert!(
            e.message.contains("docs/man/corral.1: differs"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("docs/man/corral-gone.1: no longer generated"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("corral-image.1"), "{}", e.message);
        assert!(!e.message.contains("completions/"), "{}", e.message);

        write_with(&ws, &corral).unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.root.join("docs/man/corral.1")).unwrap(),
            "page v2\n"
        );
        assert!(!ws.root.join("docs/man/corral-gone.1").exists());
        check_with(&ws, &corral).unwrap();
    }

    #[test]
    fn a_failing_generator_fails_the_check() {
        let (_dir, ws, _) = checkout("v1");
        let e = check_with(&ws, Path::new("/bin/false")).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.message.contains("/bin/false generate man"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_directory_not_checked_in_misses_every_file() {
        let generated = Scratch::new("test-generated").unwrap();
        put(generated.path(), "_corral", "#compdef corral\n");
        let absent = generated.path().join("not-there");
        assert_eq!(
            differences(generated.path(), &absent).unwrap(),
            [Change::Missing("_corral".into())]
        );
    }
}
