use super::*;
use crate::library::{context_hash, Library};
use std::path::Path;

const LABELS: &str = "";

fn image(root: &Path, name: &str, dockerfile: &str, tags: &[&str]) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), format!("{dockerfile}{LABELS}")).unwrap();
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    std::fs::write(
        dir.join("image.toml"),
        format!(
            "[image]\nsummary = \"{name}\"\ntags = [{}]\narchitectures = [\"x86_64\"]\n",
            tags.join(", ")
        ),
    )
    .unwrap();
}

/// base <- python3 <- flask, base <- nginx; ARG-substituted and multi-stage FROMs.
fn sample() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::write(
        r.join("library.toml"),
        "[library]\nregistry = \"quay.io/corral\"\n",
    )
    .unwrap();
    image(
        r,
        "base",
        "FROM registry.fedoraproject.org/fedora:43\n",
        &["43"],
    );
    image(
        r,
        "python3",
        "ARG REG=quay.io/corral\nFROM ${REG}/base:43\n",
        &["3.14", "latest-43"],
    );
    image(
        r,
        "flask",
        "FROM quay.io/corral/python3:3.14 AS build\nRUN true\nFROM build\n",
        &["3"],
    );
    image(
        r,
        "nginx",
        "FROM docker.io/library/golang:1.23 AS tools\nFROM quay.io/corral/base:43\nCOPY --from=tools /x /x\n",
        &["1"],
    );
    t
}

fn load(t: &tempfile::TempDir) -> (Graph, BTreeMap<String, String>) {
    let lib = Library::load(t.path()).unwrap();
    let g = Graph::build(&lib).unwrap();
    let hashes = lib
        .images
        .iter()
        .map(|(n, i)| (n.clone(), context_hash(&i.dir).unwrap()))
        .collect();
    (g, hashes)
}

fn names(p: &Plan) -> Vec<&str> {
    p.steps.iter().map(|s| s.image.as_str()).collect()
}

#[test]
fn graph_order_and_externals() {
    let t = sample();
    let (g, _) = load(&t);
    assert_eq!(
        g.order().unwrap(),
        vec!["base", "nginx", "python3", "flask"]
    );
    assert!(g.nodes["nginx"]
        .external
        .contains("docker.io/library/golang:1.23"));
    assert_eq!(
        g.nodes["flask"].bases.iter().collect::<Vec<_>>(),
        vec!["python3"]
    );
    assert_eq!(g.dependents("base").len(), 3);
    assert!(g.render_dot().contains("\"base\" -> \"python3\""));
    assert!(g.render_text().contains("flask <- python3"));
    assert_eq!(g.render_json()["order"][0], "base");
}

#[test]
fn cycles_and_missing_bases_are_named() {
    let t = sample();
    image(t.path(), "base", "FROM quay.io/corral/flask:3\n", &["43"]);
    let lib = Library::load(t.path()).unwrap();
    let e = Graph::build(&lib).unwrap_err().to_string();
    assert!(
        e.contains("cycle") && e.contains("base") && e.contains("python3") && e.contains("flask"),
        "{e}"
    );

    let t = sample();
    image(t.path(), "ruby", "FROM quay.io/corral/nope:1\n", &["1"]);
    let e = Graph::build(&Library::load(t.path()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("ruby") && e.contains("nope"), "{e}");

    let t = sample();
    image(t.path(), "ruby", "FROM quay.io/corral/base:42\n", &["1"]);
    let e = Graph::build(&Library::load(t.path()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("ruby") && e.contains("\"42\""), "{e}");
}

#[test]
fn all_is_topological() {
    let t = sample();
    let (g, h) = load(&t);
    let p = plan(&g, &Trigger::All, &h, &StateFile::default()).unwrap();
    assert_eq!(names(&p), vec!["base", "nginx", "python3", "flask"]);
}

#[test]
fn changed_contexts_and_a_full_build() {
    let t = sample();
    let (g, h) = load(&t);
    let mut state = StateFile::default();
    let p = plan(&g, &Trigger::Changed, &h, &state).unwrap();
    assert_eq!(p.steps.len(), 4);
    assert!(p.steps[0].reasons[0].contains("not built"));
    state.record_plan(&p, &g, &h);
    // after a full build nothing is left
    assert_eq!(
        plan(&g, &Trigger::Changed, &h, &state).unwrap(),
        Plan::default()
    );

    // a file in python3 changes: python3 and flask
    std::fs::write(t.path().join("python3/app.py"), "print(1)\n").unwrap();
    let (g, h) = load(&t);
    let p = plan(&g, &Trigger::Changed, &h, &state).unwrap();
    assert_eq!(names(&p), vec!["python3", "flask"]);
    state.record_plan(&p, &g, &h);
    assert_eq!(
        plan(&g, &Trigger::Changed, &h, &state).unwrap(),
        Plan::default()
    );

    // an ignored file does not count
    std::fs::write(t.path().join("python3/.dockerignore"), "*.log\n").unwrap();
    let (g, h) = load(&t);
    let p = plan(&g, &Trigger::Changed, &h, &state).unwrap();
    state.record_plan(&p, &g, &h);
    std::fs::write(t.path().join("python3/debug.log"), "x").unwrap();
    let (g, h) = load(&t);
    assert_eq!(
        plan(&g, &Trigger::Changed, &h, &state).unwrap(),
        Plan::default()
    );

    // base rebuilt outside this plan: its dependents follow
    state.state.images.get_mut("base").unwrap().digest = "sha256:new".into();
    let p = plan(&g, &Trigger::Changed, &h, &state).unwrap();
    assert_eq!(names(&p), vec!["nginx", "python3", "flask"]);
}

#[test]
fn state_file_round_trips() {
    let t = sample();
    let (g, h) = load(&t);
    let path = t.path().join("state.json");
    let mut s = StateFile::load(&path).unwrap();
    let p = plan(&g, &Trigger::Changed, &h, &s).unwrap();
    s.record_plan(&p, &g, &h);
    s.save().unwrap();
    let s = StateFile::load(&path).unwrap();
    assert_eq!(
        plan(&g, &Trigger::Changed, &h, &s).unwrap(),
        Plan::default()
    );
}

#[test]
fn files_and_base_changed() {
    let t = sample();
    let (g, h) = load(&t);
    let none = StateFile::default();
    let p = plan(
        &g,
        &Trigger::Files(vec!["python3/Dockerfile".into(), "README.md".into()]),
        &h,
        &none,
    )
    .unwrap();
    assert_eq!(names(&p), vec!["python3", "flask"]);
    let p = plan(&g, &Trigger::Files(vec!["library.toml".into()]), &h, &none).unwrap();
    assert_eq!(p.steps.len(), 4);
    let p = plan(&g, &Trigger::BaseChanged("python3".into()), &h, &none).unwrap();
    assert_eq!(names(&p), vec!["flask"]);
    let p = plan(&g, &Trigger::BaseChanged("base".into()), &h, &none).unwrap();
    assert_eq!(names(&p), vec!["nginx", "python3", "flask"]);
    let p = plan(
        &g,
        &Trigger::BaseChanged("registry.fedoraproject.org/fedora".into()),
        &h,
        &none,
    )
    .unwrap();
    assert_eq!(names(&p), vec!["base", "nginx", "python3", "flask"]);
    let p = plan(
        &g,
        &Trigger::BaseChanged("docker.io/library/golang:1.23".into()),
        &h,
        &none,
    )
    .unwrap();
    assert_eq!(names(&p), vec!["nginx"]);
    assert!(plan(&g, &Trigger::BaseChanged("nothing".into()), &h, &none).is_err());
}
