use super::schedule::run_in_order;
use super::*;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn library(root: &Path) -> Library {
    write(
        &root.join("library.toml"),
        "[library]\nregistry = \"quay.io/fx\"\n",
    );
    let toml =
        "[image]\nsummary = \"s\"\ntags = [\"43\", \"stable\"]\narchitectures = [\"x86_64\"]\n";
    for (name, df) in [
        (
            "a",
            "ARG REG=quay.io/corral\nFROM ${REG}/base:43 AS build\nFROM build\nFROM scratch\n",
        ),
        ("b", "FROM quay.io/fx/a:43\nRUN true\n"),
    ] {
        write(&root.join(name).join("Dockerfile"), df);
        write(&root.join(name).join("image.toml"), toml);
    }
    Library::load(root).unwrap()
}

#[test]
fn registry_mappings_parse_and_prefer_the_longest() {
    assert!("x".parse::<RegistryMapping>().is_err());
    assert!("=y".parse::<RegistryMapping>().is_err());
    let m = RegistryMap::new(vec![
        "quay.io=mirror.local".parse().unwrap(),
        "quay.io/corral/=localhost/t".parse().unwrap(),
    ]);
    assert_eq!(m.apply("quay.io/corral/base:43"), "localhost/t/base:43");
    assert_eq!(
        m.apply("quay.io/other/x@sha256:ab"),
        "mirror.local/other/x@sha256:ab"
    );
    assert_eq!(m.apply("quay.iox/a"), "quay.iox/a");
}

#[test]
fn rewrite_maps_external_from_lines_only() {
    let t = tempfile::tempdir().unwrap();
    let lib = library(t.path());
    let map = RegistryMap::new(vec![
        "quay.io/corral=localhost/test".parse().unwrap(),
        "quay.io/fx=elsewhere".parse().unwrap(),
    ]);
    let a = &lib.images["a"];
    let text = std::fs::read_to_string(a.dir.join("Dockerfile")).unwrap();
    let out = registry_map::rewrite_from(&text, &a.dockerfile, &BTreeMap::new(), &lib, &map);
    assert_eq!(
        out,
        "ARG REG=quay.io/corral\nFROM localhost/test/base:43 AS build\nFROM build\nFROM scratch\n"
    );
    // build args override the ARG default before mapping
    let args = BTreeMap::from([("REG".to_string(), "docker.io/x".to_string())]);
    let out = registry_map::rewrite_from(&text, &a.dockerfile, &args, &lib, &map);
    assert_eq!(out, text);
    // library references name the images this build tags
    let b = &lib.images["b"];
    let text = std::fs::read_to_string(b.dir.join("Dockerfile")).unwrap();
    let out = registry_map::rewrite_from(&text, &b.dockerfile, &BTreeMap::new(), &lib, &map);
    assert_eq!(out, text);
    assert_eq!(library_reference(&lib, "b"), "quay.io/fx/b:43");
}

#[test]
fn context_tar_honours_dockerignore_and_swaps_the_dockerfile() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&d.join("Dockerfile"), "FROM x\n");
    write(&d.join(".dockerignore"), "image.toml\nDockerfile\ncache/\n");
    write(&d.join("image.toml"), "x");
    write(&d.join("cache/big"), "x");
    write(&d.join("files/etc/motd"), "hi\n");
    std::os::unix::fs::symlink("motd", d.join("files/etc/issue")).unwrap();
    let tar = context_tar::context_tar(d, "FROM mapped\n", 7).unwrap();
    let mut ar = tar::Archive::new(tar.as_slice());
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(e.header().mtime().unwrap(), 7);
        assert_eq!(e.header().uid().unwrap(), 0);
        if path == "Dockerfile" {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(s, "FROM mapped\n");
        }
        seen.push(path);
    }
    assert_eq!(
        seen,
        [
            ".dockerignore",
            "Dockerfile",
            "files/",
            "files/etc/",
            "files/etc/issue",
            "files/etc/motd"
        ]
    );
    // the tar lists what the context hash covers
    let listed: Vec<String> = crate::library::context_files(d)
        .unwrap()
        .into_iter()
        .map(|e| e.rel)
        .collect();
    assert_eq!(
        listed,
        [
            ".dockerignore",
            "Dockerfile",
            "files/etc/issue",
            "files/etc/motd"
        ]
    );
}

#[test]
fn provenance_labels() {
    let l = provenance::labels("sha256:c", "base=sha256:b", Some("abc"));
    assert_eq!(l["dev.corral.context-hash"], "sha256:c");
    assert_eq!(l["dev.corral.base-digest"], "base=sha256:b");
    assert_eq!(l["dev.corral.source-revision"], "abc");
    assert!(!provenance::labels("c", "", None).contains_key("dev.corral.source-revision"));
}

fn deps(pairs: &[(&str, &[&str])]) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
    let order = pairs.iter().map(|(n, _)| n.to_string()).collect();
    let deps = pairs
        .iter()
        .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
        .collect();
    (order, deps)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn schedule_runs_independent_images_in_parallel_up_to_jobs() {
    let (order, deps) = deps(&[
        ("base", &[]),
        ("a", &["base"]),
        ("b", &["base"]),
        ("c", &["base"]),
    ]);
    for (jobs, expected_peak) in [(1, 1), (2, 2), (8, 3)] {
        let running = Cell::new(0);
        let peak = Cell::new(0);
        let started = std::cell::RefCell::new(Vec::new());
        let s = block_on(run_in_order(&order, &deps, jobs, |n| {
            let (running, peak, started) = (&running, &peak, &started);
            async move {
                started.borrow_mut().push(n.clone());
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                running.set(running.get() - 1);
                Ok(())
            }
        }));
        assert!(s.success());
        assert_eq!(s.built.len(), 4);
        assert_eq!(started.borrow()[0], "base");
        assert_eq!(peak.get(), expected_peak, "jobs {jobs}");
    }
}

#[test]
fn schedule_failure_stops_only_dependents() {
    let (order, deps) = deps(&[
        ("base", &[]),
        ("other", &[]),
        ("mid", &["base"]),
        ("app", &["mid"]),
        ("side", &["base"]),
    ]);
    let s = block_on(run_in_order(&order, &deps, 2, |n| async move {
        if n == "mid" {
            anyhow::bail!("RUN false: exit 1")
        }
        Ok(())
    }));
    assert!(!s.success());
    let built: BTreeSet<&str> = s.built.iter().map(String::as_str).collect();
    assert_eq!(built, BTreeSet::from(["base", "other", "side"]));
    assert_eq!(s.failed.keys().collect::<Vec<_>>(), ["mid"]);
    assert_eq!(
        s.skipped,
        BTreeMap::from([("app".to_string(), "mid".to_string())])
    );
    let text = s.render_text();
    assert!(text.contains("failed: mid\n"), "{text}");
    assert!(text.contains("skipped: app (base mid failed)\n"), "{text}");
    assert!(text.contains("mid: RUN false: exit 1\n"), "{text}");
}

#[test]
fn progress_bars_track_running_images() {
    use indicatif::{MultiProgress, ProgressDrawTarget};
    let p = BuildProgress::Bars {
        multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
        bars: std::sync::Mutex::new(BTreeMap::new()),
    };
    p.line("a", "Step 1/3 : FROM x\n");
    p.line("b", "Step 1/2 : FROM y");
    p.line("a", "Step 2/3 : RUN true");
    let BuildProgress::Bars { bars, .. } = &p else {
        panic!("bars")
    };
    assert_eq!(bars.lock().unwrap()["a"].message(), "Step 2/3 : RUN true");
    p.finish("a", "built");
    assert_eq!(bars.lock().unwrap().keys().collect::<Vec<_>>(), ["b"]);
}

#[test]
fn target_arch_comes_from_the_engine_unless_build_args_set_it() {
    let none = BTreeMap::new();
    assert_eq!(with_target_arch(&none, "arm64")["TARGETARCH"], "arm64");
    let set = BTreeMap::from([
        ("TARGETARCH".to_string(), "s390x".to_string()),
        ("X".to_string(), "1".to_string()),
    ]);
    let args = with_target_arch(&set, "amd64");
    assert_eq!(args["TARGETARCH"], "s390x");
    assert_eq!(args["X"], "1");
}
