//! The curated library in `dockerfiles/`: every image is complete, lints
//! clean and sits in an acyclic graph; a plan after a full build is empty.

use corral_dockerfiles::graph::Graph;
use corral_dockerfiles::library::{context_hash, Library};
use corral_dockerfiles::plan::{plan, StateFile, Trigger};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dockerfiles")
}

const EXPECTED: &[&str] = &[
    "base",
    "golang",
    "httpd",
    "java",
    "mariadb",
    "memcached",
    "nginx",
    "nodejs",
    "perl",
    "php",
    "postgresql",
    "python3",
    "python3-django",
    "python3-flask",
    "redis",
    "ruby",
    "ruby-rails",
    "ruby-sinatra",
];

#[test]
fn every_image_is_complete() {
    let lib = Library::load(&root()).unwrap();
    assert_eq!(
        lib.images.keys().map(String::as_str).collect::<Vec<_>>(),
        EXPECTED
    );
    for (name, img) in &lib.images {
        let help = std::fs::read_to_string(img.dir.join("help.md")).unwrap();
        assert!(help.contains(&format!("corral/{name}")), "{name}/help.md");
        assert!(!img.spec.image.tags.is_empty());
        assert!(
            img.spec.tests.user.is_some(),
            "{name}/image.toml must say which user the image runs as"
        );
    }
}

#[test]
fn every_dockerfile_lints_clean() {
    let mut failures = String::new();
    for name in EXPECTED {
        let path = root().join(name).join("Dockerfile");
        let findings = corral_dockerfiles::lint::lint_bytes(&std::fs::read(&path).unwrap());
        for f in findings {
            failures.push_str(&format!(
                "{}:{}:{}: {}[{}] {}\n",
                path.display(),
                f.line,
                f.column,
                f.severity,
                f.rule,
                f.message
            ));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn graph_is_rooted_in_base() {
    let lib = Library::load(&root()).unwrap();
    let g = Graph::build(&lib).unwrap();
    let order = g.order().unwrap();
    assert_eq!(order[0], "base");
    assert_eq!(g.dependents("base").len(), EXPECTED.len() - 1);
    assert!(g.nodes["python3-flask"].bases.contains("python3"));
    assert!(g.nodes["ruby-rails"].bases.contains("ruby"));
    assert!(g.nodes["base"]
        .external
        .contains("registry.fedoraproject.org/fedora:43"));
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    assert!(pos("python3") < pos("python3-django"));
}

#[test]
fn noop_plan_after_full_build_is_fast() {
    let lib = Library::load(&root()).unwrap();
    let g = Graph::build(&lib).unwrap();
    let hashes: BTreeMap<String, String> = lib
        .images
        .iter()
        .map(|(n, i)| (n.clone(), context_hash(&i.dir).unwrap()))
        .collect();
    let mut state = StateFile::default();
    let full = plan(&g, &Trigger::Changed, &hashes, &state).unwrap();
    assert_eq!(full.steps.len(), EXPECTED.len());
    state.record_plan(&full, &g, &hashes);

    let start = std::time::Instant::now();
    let lib = Library::load(&root()).unwrap();
    let g = Graph::build(&lib).unwrap();
    let hashes: BTreeMap<String, String> = lib
        .images
        .iter()
        .map(|(n, i)| (n.clone(), context_hash(&i.dir).unwrap()))
        .collect();
    let p = plan(&g, &Trigger::Changed, &hashes, &state).unwrap();
    let took = start.elapsed();
    assert!(p.steps.is_empty(), "{p:?}");
    assert!(took.as_secs_f64() < 1.0, "no-op plan took {took:?}");
}
