//! The dependency rules of docs/architecture.md, checked against the
//! workspace's real dependency graph (`cargo metadata`): a new edge that
//! breaks a rule fails here, naming the edge and the rule.

use std::collections::BTreeSet;
use std::process::Command;

use corral_test_support::repo_root;

/// A dependency between two workspace crates.
type Edge = (String, String);

/// The workspace's crates and the edges between them. `dev` says whether
/// dev-dependencies count.
fn graph(dev: bool) -> (BTreeSet<String>, BTreeSet<Edge>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    let mut edges = BTreeSet::new();
    for p in packages {
        let from = p["name"].as_str().expect("name");
        for d in p["dependencies"].as_array().expect("dependencies") {
            let to = d["name"].as_str().expect("dependency name");
            let is_dev = d["kind"].as_str() == Some("dev");
            if names.contains(to) && (dev || !is_dev) {
                edges.insert((from.to_string(), to.to_string()));
            }
        }
    }
    (names, edges)
}

/// The rule an edge breaks, if any (numbers as in docs/architecture.md).
fn broken_rule(from: &str, to: &str) -> Option<u8> {
    if to == "corral" || (to == "corral-cli" && from != "corral") {
        return Some(1);
    }
    // corral-ostree writes the OS image's layouts with corral-oci, itself
    // at the bottom; corral-streamfile is plain data the bottom may use.
    let allowed = (from == "corral-ostree" && to == "corral-oci") || to == "corral-streamfile";
    if !allowed
        && matches!(
            from,
            "corral-oci"
                | "corral-configfile"
                | "corral-ostree"
                | "corral-pidlock"
                | "corral-registry"
                | "corral-streamfile"
        )
    {
        return Some(2);
    }
    const NOT_FOR_THE_MIRROR: &[&str] = &[
        "corral-dockerfiles",
        "corral-tree",
        "corral-image",
        "corral-compose",
        "corral-host",
        "corral-disk",
        "corral-testrun",
        "corral-release",
    ];
    if matches!(from, "corral-mirror" | "corral-site") && NOT_FOR_THE_MIRROR.contains(&to) {
        return Some(3);
    }
    if matches!(from, "corral-host" | "corral-disk")
        && matches!(to, "corral-compose" | "corral-release")
    {
        return Some(4);
    }
    if to == "corral-release" && from != "corral-cli" {
        return Some(5);
    }
    if from == "corral-test-support" {
        return Some(6);
    }
    if matches!(from, "corral-mirror" | "corral-site") && to == "corral-portal"
        || from == "corral-portal" && to == "corral-mirror"
    {
        return Some(7);
    }
    None
}

#[test]
fn no_dependency_breaks_a_rule_of_the_architecture() {
    let (names, edges) = graph(false);
    for must in [
        "corral",
        "corral-cli",
        "corral-oci",
        "corral-mirror",
        "corral-host",
        "corral-disk",
        "corral-ostree",
    ] {
        assert!(names.contains(must), "{must} is not in the workspace");
    }
    let broken: Vec<String> = edges
        .iter()
        .filter_map(|(from, to)| {
            broken_rule(from, to)
                .map(|rule| format!("{from} -> {to} breaks rule {rule} of docs/architecture.md"))
        })
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn dev_dependencies_never_reach_into_the_cli() {
    let (_, edges) = graph(true);
    let into_cli: Vec<_> = edges
        .iter()
        .filter(|(from, to)| (to == "corral-cli" && from != "corral") || to == "corral")
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(into_cli.is_empty(), "{}", into_cli.join("\n"));
}

#[test]
fn the_rules_catch_the_edges_they_forbid() {
    // The checker itself: each rule has an edge it must refuse and one it
    // must allow, so a typo in a crate name cannot switch a rule off.
    let cases = [
        ("corral-mirror", "corral-cli", Some(1)),
        ("corral-oci", "corral-tree", Some(2)),
        ("corral-configfile", "corral-oci", Some(2)),
        ("corral-ostree", "corral-compose", Some(2)),
        ("corral-registry", "corral-sign", Some(2)),
        ("corral-streamfile", "corral-oci", Some(2)),
        ("corral-ostree", "corral-streamfile", None),
        ("corral-site", "corral-streamfile", None),
        ("corral-mirror", "corral-compose", Some(3)),
        ("corral-mirror", "corral-dockerfiles", Some(3)),
        ("corral-mirror", "corral-image", Some(3)),
        ("corral-site", "corral-compose", Some(3)),
        ("corral-site", "corral-release", Some(3)),
        ("corral-site", "corral-image", Some(3)),
        ("corral-host", "corral-compose", Some(4)),
        ("corral-disk", "corral-compose", Some(4)),
        ("corral-host", "corral-release", Some(4)),
        ("corral-compose", "corral-release", Some(5)),
        ("corral-test-support", "corral-oci", Some(6)),
        ("corral-mirror", "corral-portal", Some(7)),
        ("corral-site", "corral-portal", Some(7)),
        ("corral-portal", "corral-mirror", Some(7)),
        ("corral-portal", "corral-dockerfiles", None),
        ("corral", "corral-cli", None),
        ("corral-mirror", "corral-oci", None),
        ("corral-mirror", "corral-sign", None),
        ("corral-mirror", "corral-site", None),
        ("corral-disk", "corral-host", None),
        ("corral-host", "corral-ostree", None),
        ("corral-compose", "corral-ostree", None),
        ("corral-cli", "corral-release", None),
        ("corral-release", "corral-compose", None),
    ];
    for (from, to, want) in cases {
        assert_eq!(broken_rule(from, to), want, "{from} -> {to}");
    }
}

#[test]
fn the_graph_in_the_docs_is_the_real_graph() {
    let doc = std::fs::read_to_string(repo_root().join("docs/architecture.md"))
        .expect("docs/architecture.md");
    let table = doc
        .split("<!-- graph:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- graph:end -->").next())
        .expect("docs/architecture.md has the graph:begin/graph:end table");
    let (names, edges) = graph(false);
    let libraries: BTreeSet<String> = names
        .iter()
        .filter(|n| !matches!(n.as_str(), "corral" | "corral-cli" | "corral-test-support"))
        .cloned()
        .collect();
    let mut documented = BTreeSet::new();
    let mut rows = BTreeSet::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let from = cells[0].trim_matches('`').to_string();
        rows.insert(from.clone());
        if cells[1] == "every library" {
            for to in &libraries {
                documented.insert((from.clone(), to.clone()));
            }
            continue;
        }
        for to in cells[1].split(',').map(|c| c.trim().trim_matches('`')) {
            if to != "—" {
                documented.insert((from.clone(), to.to_string()));
            }
        }
    }
    assert_eq!(
        rows, names,
        "docs/architecture.md's graph lists other crates than the workspace"
    );
    let missing: Vec<_> = edges.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&edges).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/architecture.md's graph is out of date: missing {missing:?}, not real {stale:?}"
    );
}

#[test]
fn the_end_to_end_tests_use_no_library_of_ours() {
    // They are integration tests of the `corral` package, whose normal
    // dependency `corral-cli` they could import: rule 6 is checked on the
    // source. A library crate's name is `corral_` + a lowercase word.
    let (names, _) = graph(false);
    let libraries: Vec<String> = names
        .iter()
        .filter(|n| !matches!(n.as_str(), "corral" | "corral-test-support"))
        .map(|n| n.replace('-', "_"))
        .collect();
    let mut found = Vec::new();
    let mut files = 0;
    for dirs in [
        repo_root().join("tests/e2e"),
        repo_root().join("tests/support"),
        repo_root().join("crates/corral/tests"),
    ] {
        for entry in std::fs::read_dir(&dirs).expect("test directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                files += 1;
                let text = std::fs::read_to_string(&path).expect("test source");
                for lib in &libraries {
                    if text.contains(&format!("{lib}::")) {
                        found.push(format!("{} uses {lib}", path.display()));
                    }
                }
            }
        }
    }
    assert!(files > 10, "found only {files} test files");
    assert!(found.is_empty(), "{}", found.join("\n"));
}
