//! The check runner against a real Docker Engine (one for the whole file):
//! revisions submitted to a portal are linted, built FROM the official
//! base with no network and under limits, and tested in labelled
//! containers by the runner's loop, which records the results and logs.
//! The official base here is busybox imported as `quay.io/corral/base:43`.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use corral_portal::accounts::Htpasswd;
use corral_portal::checks::{worker, CheckRunner};
use corral_portal::config::{PortalConfig, PublishConfig};
use corral_portal::model::{CheckStatus, TemplateKind, Verdict};
use corral_portal::publish::Publisher;
use corral_portal::store::{Store, StoreError};
use corral_portal::upload;
use corral_portal::web::{Portal, WebOptions};
use corral_test_support::{repo_root, require_tool, Dockerd, Upstream};
use sha2::{Digest, Sha256};

const BASE: &str = "quay.io/corral/base:43";
const PASSWORD: &str = "a long enough password";

/// busybox and `/bin/sh` (the templates install the other applets),
/// imported into `engine` as the official base.
fn import_base(engine: &Dockerd, dir: &Path) {
    require_tool("busybox");
    let tree = dir.join("base-tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    let busybox = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v busybox"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::copy(busybox.trim(), tree.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    let tar = dir.join("base.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let out = engine
        .docker()
        .args(["import", "--change", "ENV PATH=/bin"])
        .arg(&tar)
        .arg(BASE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The hello fixture, with `edit` applied to its files, as a tar.
fn hello_archive(dir: &Path, name: &str, edit: impl FnOnce(&Path)) -> Vec<u8> {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["Dockerfile", "image.toml", "help.md", "help.1"] {
        std::fs::copy(
            repo_root().join("tests/fixtures/portal/hello").join(f),
            folder.join(f),
        )
        .unwrap();
    }
    edit(&folder);
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(name, &folder).unwrap();
    b.into_inner().unwrap()
}

fn replace(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// The process limit of the test's builds.
const PIDS_MAX: u32 = 48;

/// The cgroup the test's engine puts its containers under: its own, so
/// the limit is the test's alone.
fn pids_cgroup() -> String {
    format!("/corral-portal-checks-{}", std::process::id())
}

/// Removes the engine's cgroup parent from each hierarchy when dropped
/// (after the engine): Docker removes its containers' cgroups, not it.
struct CgroupParent;

impl Drop for CgroupParent {
    fn drop(&mut self) {
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let _ = std::fs::remove_dir(h.path().join(pids_cgroup().trim_start_matches('/')));
            }
        }
        let _ = std::fs::remove_dir(
            Path::new("/sys/fs/cgroup").join(pids_cgroup().trim_start_matches('/')),
        );
    }
}

/// A Docker Engine that places its containers under [`pids_cgroup`], as
/// docs/portal.md tells operators to run the checks' engine.
fn engine() -> Dockerd {
    Dockerd::start_with_config(Some(&format!("{{\"cgroup-parent\": {:?}}}", pids_cgroup())))
}

fn portal(dir: &Path, engine: &Dockerd, timeout: u64, rpms: &Path) -> Arc<Portal> {
    let text = format!(
        "[portal]\nsqlite_path = {:?}\narchive_dir = {:?}\nreviewers = [\"rita\", \"rob\"]\n\
         [portal.checks]\nengine = {:?}\nbases = [{BASE:?}]\nmemory = \"64M\"\ncpus = 0.5\n\
         timeout = {timeout}\nlog_dir = {:?}\nmcs_dir = {:?}\nscratch = {:?}\n\
         pids_cgroup = {:?}\npids_max = {PIDS_MAX}\n\
         [[portal.checks.tree_repo]]\nid = \"portal-main\"\nbaseurl = {:?}\ngpgcheck = false\n\
         [[portal.checks.tree_repo]]\nid = \"portal-arch\"\nbaseurl = {:?}\ngpgcheck = false\n",
        dir.join("portal.db"),
        dir.join("archives"),
        engine.host(),
        dir.join("logs"),
        dir.join("mcs"),
        dir,
        pids_cgroup(),
        rpms.join("main"),
        rpms.join("$basearch"),
    );
    let config = PortalConfig::parse(&text).unwrap();
    let htpasswd = Htpasswd::default();
    let mut store = Store::open(&config.database, config.policy.clone())
        .unwrap()
        .with_bcrypt_cost(4);
    for name in ["ann", "rita", "rob"] {
        store.create_account(name, PASSWORD, &htpasswd, 1).unwrap();
    }
    let options = WebOptions {
        prefix: "/community".into(),
        secure_cookies: false,
        htpasswd,
        listings: Default::default(),
    };
    Arc::new(Portal::new(config, store, options).unwrap())
}

/// Keeps the archive as the upload form does and submits it as ann's.
fn submit(p: &Portal, name: &str, archive: &[u8]) -> u32 {
    submit_kind(p, name, TemplateKind::DockerfileFolder, archive)
}

/// A tree recipe folder with `recipe` as its recipe.toml, as a tar.
fn recipe_archive(name: &str, recipe: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(recipe.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, format!("{name}/recipe.toml"), recipe.as_bytes())
        .unwrap();
    b.into_inner().unwrap()
}

fn submit_kind(p: &Portal, name: &str, kind: TemplateKind, archive: &[u8]) -> u32 {
    let hex = hex::encode(Sha256::digest(archive));
    std::fs::write(
        p.config().archive_dir.join(format!("sha256-{hex}.tar")),
        archive,
    )
    .unwrap();
    p.store()
        .submit("ann", name, kind, &format!("sha256:{hex}"), 2)
        .unwrap()
        .number
}

fn log(dir: &Path, reference: &Option<String>) -> String {
    std::fs::read_to_string(dir.join("logs").join(reference.as_deref().unwrap())).unwrap()
}

/// Nothing runs in the engine any more (within `wait`).
fn engine_idle(engine: &Dockerd, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let out = engine.docker().args(["ps", "-q"]).output().unwrap();
        if out.status.success() && out.stdout.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_are_linted_built_and_tested_in_the_engine() {
    let dir = tempfile::Builder::new()
        .prefix("corral-portal-checks-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = dir.path();
    let _cgroup_parent = CgroupParent;
    let engine = engine();
    import_base(&engine, d);
    let rpms = corral_test_support::sample_repos();
    let p = portal(d, &engine, 20, rpms.path());
    let runner = CheckRunner::connect(p.config().checks.clone().unwrap())
        .await
        .unwrap();

    // A good template and one whose test fails, checked by the runner's loop.
    submit(&p, "hello", &hello_archive(d, "hello", |_| {}));
    submit(
        &p,
        "broken",
        &hello_archive(d, "broken", |f| {
            replace(
                &f.join("image.toml"),
                "^hello from the community",
                "^goodbye",
            )
        }),
    );
    assert_eq!(worker::run_once(&p, &runner).await.unwrap(), 2);
    // nothing is left to do: results are final
    assert_eq!(worker::run_once(&p, &runner).await.unwrap(), 0);

    let good = p.store().revision("hello", 1).unwrap().unwrap();
    for (check, c) in [
        ("lint", &good.lint),
        ("build", &good.build),
        ("test", &good.test),
    ] {
        assert_eq!(c.status, CheckStatus::Passed, "{check}: {}", log(d, &c.log));
    }
    // an info finding is shown but does not fail the lint
    assert!(
        log(d, &good.lint.log).contains("CR024 info"),
        "{}",
        log(d, &good.lint.log)
    );
    assert!(log(d, &good.build.log).contains("built corral-portal/hello:1"));
    let test_log = log(d, &good.test.log);
    assert!(test_log.contains("cat /hello.txt"), "{test_log}");
    assert!(test_log.contains("s0:c"), "the run's MCS level: {test_log}");
    // the image is the revision's, in the engine
    let out = engine
        .docker()
        .args(["run", "--rm", "--network", "none", "corral-portal/hello:1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the community\n"
    );
    // two approvals publish it
    p.store()
        .review("rita", "hello", 1, Verdict::Approve, "fine", 3)
        .unwrap();
    let outcome = p
        .store()
        .review("rob", "hello", 1, Verdict::Approve, "fine", 4)
        .unwrap();
    assert_eq!(outcome.published, Some(1));

    let broken = p.store().revision("broken", 1).unwrap().unwrap();
    assert_eq!(broken.lint.status, CheckStatus::Passed);
    assert_eq!(broken.build.status, CheckStatus::Passed);
    assert_eq!(broken.test.status, CheckStatus::Failed);
    assert!(
        log(d, &broken.test.log).contains("goodbye"),
        "{}",
        log(d, &broken.test.log)
    );
    // ... and rule 4 refuses its approval
    let e = p
        .store()
        .review("rita", "broken", 1, Verdict::Approve, "ok?", 5)
        .unwrap_err();
    assert!(matches!(e, StoreError::Rule(_)), "{e}");

    // Builds run FROM the official base only.
    let folder_of = |archive: Vec<u8>| {
        let unpacked = upload::unpack(&archive[..], &upload::Limits::default(), d).unwrap();
        let folder = upload::library_folder(unpacked.dir.path()).unwrap();
        (unpacked, folder)
    };
    let (_u, other_base) = folder_of(hello_archive(d, "other", |f| {
        replace(&f.join("Dockerfile"), BASE, "docker.io/library/alpine:3")
    }));
    let r = runner.run("other", 1, &other_base).await;
    assert_eq!(r.build.status, CheckStatus::Failed);
    assert!(
        r.build.log.contains("is not an official base"),
        "{}",
        r.build.log
    );
    assert_eq!(r.test.status, CheckStatus::Failed);

    // A build that reaches for the network fails: there is none, not even
    // to the host's loopback, where something is listening.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (_u, net) = folder_of(hello_archive(d, "net", |f| {
        replace(
            &f.join("Dockerfile"),
            "&& echo",
            &format!("&& wget -T 5 -O /fetched http://127.0.0.1:{port}/ && echo"),
        )
    }));
    let r = runner.run("net", 1, &net).await;
    assert_eq!(r.build.status, CheckStatus::Failed, "{}", r.build.log);
    assert!(r.build.log.contains("wget"), "{}", r.build.log);
    assert!(
        listener.accept().is_err(),
        "the build reached the host's loopback"
    );

    // A build over the time limit is stopped and marked failed.
    let (_u, slow) = folder_of(hello_archive(d, "slow", |f| {
        replace(&f.join("Dockerfile"), "&& echo", "&& sleep 600 && echo")
    }));
    let short = CheckRunner::connect(corral_portal::config::ChecksConfig {
        timeout_secs: 5,
        ..p.config().checks.clone().unwrap()
    })
    .await
    .unwrap();
    let start = Instant::now();
    let r = short.run("slow", 1, &slow).await;
    assert_eq!(r.build.status, CheckStatus::Failed);
    assert!(
        r.build.log.contains("longer than the limit of 5 s"),
        "{}",
        r.build.log
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(
        engine_idle(&engine, Duration::from_secs(20)),
        "the stopped build's container still runs"
    );

    // A fork bomb in a RUN step meets the process limit: its forks fail,
    // the step and the build check fail at once (not by the time limit),
    // and the runner's log says how many forks were refused.
    let (_u, bomb) = folder_of(hello_archive(d, "bomb", |f| {
        replace(
            &f.join("Dockerfile"),
            "&& echo",
            "&& i=0 && while [ $i -lt 100000 ]; do sleep 600 & i=$((i+1)); done && echo",
        )
    }));
    let start = Instant::now();
    let r = runner.run("bomb", 1, &bomb).await;
    assert_eq!(r.build.status, CheckStatus::Failed, "{}", r.build.log);
    assert!(r.build.log.contains("can't fork"), "{}", r.build.log);
    assert!(
        r.build
            .log
            .contains(&format!("reached the process limit of {PIDS_MAX}")),
        "{}",
        r.build.log
    );
    assert!(
        !r.build.log.contains("longer than the limit"),
        "{}",
        r.build.log
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(
        engine_idle(&engine, Duration::from_secs(20)),
        "the bomb's container still runs"
    );
    let cgroup = corral_portal::checks::pids::PidsLimit::host(&pids_cgroup(), PIDS_MAX);
    let peak = std::fs::read_to_string(cgroup.dir().join("pids.peak"));
    if let Ok(peak) = peak {
        assert!(peak.trim().parse::<u32>().unwrap() <= PIDS_MAX, "{peak}");
    }

    // Tree recipes: linted by corral-tree's rules, built from the portal's
    // repositories (the author's own, unreachable here, are not used),
    // their packages checked in the tree's rpm database.
    let recipe =
        "name = \"tiny\"\nreleasever = \"43\"\npackages = [\"corral-busybox\", \"corral-hello\"]\n\
                  [[repo]]\nid = \"authors\"\nbaseurl = \"https://repo.example.invalid/43\"\ngpgkey = [\"https://repo.example.invalid/key\"]\n";
    submit_kind(
        &p,
        "tiny",
        TemplateKind::TreeRecipe,
        &recipe_archive("tiny", recipe),
    );
    let typo = recipe.replace("packages =", "pakages =");
    submit_kind(
        &p,
        "typo",
        TemplateKind::TreeRecipe,
        &recipe_archive("typo", &typo),
    );
    let missing = recipe.replace("\"corral-hello\"", "\"corral-nonesuch\"");
    submit_kind(
        &p,
        "missing",
        TemplateKind::TreeRecipe,
        &recipe_archive("missing", &missing),
    );
    assert_eq!(worker::run_once(&p, &runner).await.unwrap(), 3);
    assert_eq!(worker::run_once(&p, &runner).await.unwrap(), 0);
    let tiny = p.store().revision("tiny", 1).unwrap().unwrap();
    for (check, c) in [
        ("lint", &tiny.lint),
        ("build", &tiny.build),
        ("test", &tiny.test),
    ] {
        assert_eq!(c.status, CheckStatus::Passed, "{check}: {}", log(d, &c.log));
    }
    let built = log(d, &tiny.build.log);
    assert!(
        built.contains("portal-main") && !built.contains("authors"),
        "{built}"
    );
    assert!(built.contains("installed corral-hello-"), "{built}");
    assert!(log(d, &tiny.test.log).contains("every package the recipe names"));
    p.store()
        .review("rita", "tiny", 1, Verdict::Approve, "fine", 6)
        .unwrap();
    let r = corral_portal::checks::tree::check_recipe(
        format!("{recipe}[[file]]\npath = \"/etc/copied\"\nsource = \"/etc/shadow\"\n").as_bytes(),
        &p.config().checks.as_ref().unwrap().tree_repos,
        d,
        Duration::from_secs(600),
    );
    assert_eq!(r.lint.status, CheckStatus::Failed);
    assert!(r.lint.log.contains("/etc/copied"), "{}", r.lint.log);
    assert_eq!(r.build.status, CheckStatus::Failed);
    // A repository `main` would vanish into dnf.conf's [main]: refused at
    // the line of its id, nothing built.
    let r = corral_portal::checks::tree::check_recipe(
        recipe
            .replace("id = \"authors\"", "id = \"main\"")
            .as_bytes(),
        &p.config().checks.as_ref().unwrap().tree_repos,
        d,
        Duration::from_secs(600),
    );
    assert_eq!(r.lint.status, CheckStatus::Failed);
    assert!(
        r.lint
            .log
            .starts_with("recipe.toml:5:6: repository id `main` is reserved"),
        "{}",
        r.lint.log
    );
    assert_eq!(r.build.status, CheckStatus::Failed);
    let typo = p.store().revision("typo", 1).unwrap().unwrap();
    assert_eq!(typo.lint.status, CheckStatus::Failed);
    assert!(
        log(d, &typo.lint.log).starts_with("recipe.toml:3:1:"),
        "{}",
        log(d, &typo.lint.log)
    );
    assert_eq!(typo.build.status, CheckStatus::Failed);
    let missing = p.store().revision("missing", 1).unwrap().unwrap();
    assert_eq!(missing.lint.status, CheckStatus::Passed);
    assert_eq!(missing.build.status, CheckStatus::Failed);
    assert!(
        log(d, &missing.build.log).contains("corral-nonesuch"),
        "{}",
        log(d, &missing.build.log)
    );
    // A tree build past the time limit is stopped and fails its check.
    let started = std::time::Instant::now();
    let r = corral_portal::checks::tree::check_recipe(
        recipe.as_bytes(),
        &p.config().checks.as_ref().unwrap().tree_repos,
        d,
        Duration::from_millis(1),
    );
    assert_eq!(r.lint.status, CheckStatus::Passed);
    assert_eq!(r.build.status, CheckStatus::Failed);
    assert!(r.build.log.contains("time limit"), "{}", r.build.log);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // No cgroup for the sandbox (no controller here): the build fails its
    // check, saying why, rather than run without process and memory
    // limits.
    let nowhere = tempfile::tempdir().unwrap();
    let r = corral_portal::checks::tree::check_recipe(
        recipe.as_bytes(),
        &p.config().checks.as_ref().unwrap().tree_repos,
        d,
        corral_portal::checks::tree::TreeLimits {
            cgroup_root: nowhere.path().to_path_buf(),
            ..Duration::from_secs(600).into()
        },
    );
    assert_eq!(r.lint.status, CheckStatus::Passed);
    assert_eq!(r.build.status, CheckStatus::Failed);
    assert!(
        r.build.log.contains(
            "cannot limit the sandboxed build's processes and memory: no cgroup could be made"
        ),
        "{}",
        r.build.log
    );
    for name in ["typo", "missing"] {
        let e = p
            .store()
            .review("rita", name, 1, Verdict::Approve, "ok?", 7)
            .unwrap_err();
        assert!(matches!(e, StoreError::Rule(_)), "{name}: {e}");
    }

    // The second approval publishes the tree recipe: its tree is built
    // again in the sandbox, packed into an image, pushed as
    // community/tiny:1 and :latest and signed with the community key (the
    // Dockerfile folder approved above goes out from the engine beside it).
    p.store()
        .review("rob", "tiny", 1, Verdict::Approve, "fine", 8)
        .unwrap();
    publish_and_pull(d, &p, &runner, &engine).await;
    drop(engine);
}

/// Publishes what `p` approved to a registry, checks the signatures of
/// the tree recipe's image and pulls it.
async fn publish_and_pull(d: &Path, p: &Arc<Portal>, runner: &CheckRunner, engine: &Dockerd) {
    let registry = Upstream::start();
    let host = format!("127.0.0.1:{}", registry.port);
    let keys = d.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mut public = Vec::new();
    for name in ["community", "official"] {
        let (private, pem) = corral_sign::cosign_key::generate(b"pw").unwrap();
        corral_sign::cosign_key::write_private_file(
            &keys.join(format!("{name}.key")),
            private.as_bytes(),
        )
        .unwrap();
        std::fs::write(keys.join(format!("{name}.pub")), &pem).unwrap();
        public
            .push(corral_sign::cosign_key::load_public(&keys.join(format!("{name}.pub"))).unwrap());
    }
    std::fs::write(keys.join("password"), "pw").unwrap();
    let engine_host = engine.host();
    let publisher_at = |registry: String| {
        Publisher::new(
            PublishConfig {
                registry: Some(registry),
                plain_http: Some(true),
                username: None,
                password_file: None,
                key: keys.join("community.key"),
                key_password_file: Some(keys.join("password")),
                public_key: keys.join("community.pub"),
            },
            &engine_host,
        )
    };
    // The mirror unreachable: each publication is tried once, its error
    // recorded, and not tried again within its backoff, even once the
    // mirror is up.
    let down = format!("127.0.0.1:{}", corral_test_support::free_port());
    let unreachable = publisher_at(down.clone()).await.unwrap();
    let publisher = publisher_at(host.clone()).await.unwrap();
    let backoff = worker::Backoff {
        first: Duration::from_secs(2),
        cap: Duration::from_secs(4),
    };
    let mut done = worker::PublishState::new(backoff);
    let failures = |name: &str| {
        p.store()
            .audit_of(name)
            .unwrap()
            .into_iter()
            .filter(|a| a.action == "publish-failed")
            .collect::<Vec<_>>()
    };
    let first = std::time::Instant::now();
    for _ in 0..3 {
        let pushed = worker::publish_pending(p, runner, &unreachable, &mut done)
            .await
            .unwrap();
        assert_eq!(pushed, 0);
    }
    for name in ["hello", "tiny"] {
        let f = failures(name);
        assert_eq!(f.len(), 1, "{name}: {f:?}");
        assert_eq!(f[0].actor, worker::ACTOR);
        assert_eq!(f[0].revision, Some(1));
        assert!(f[0].detail.contains(&down), "{}", f[0].detail);
        assert!(
            f[0].detail.ends_with("(next attempt in 2 s)"),
            "{}",
            f[0].detail
        );
        let next = done.next_attempt(name, 1).unwrap();
        assert!(next >= first + Duration::from_secs(2), "{name}");
    }
    let pushed = worker::publish_pending(p, runner, &publisher, &mut done)
        .await
        .unwrap();
    assert_eq!(pushed, 0, "retried within the backoff");
    assert!(!publisher.is_published("tiny", 1).await.unwrap());
    let due = ["hello", "tiny"]
        .map(|n| done.next_attempt(n, 1).unwrap())
        .into_iter()
        .max()
        .unwrap();
    assert!(
        due < first + Duration::from_secs(4),
        "the backoff is 2 s and a quarter"
    );
    tokio::time::sleep_until((due + Duration::from_millis(50)).into()).await;
    let pushed = worker::publish_pending(p, runner, &publisher, &mut done)
        .await
        .unwrap();
    assert_eq!(pushed, 2, "hello and tiny");
    assert!(publisher.is_published("tiny", 1).await.unwrap());
    // The mirror is the record: a new runner pushes nothing again.
    assert_eq!(failures("tiny").len(), 1, "one failure, then success");
    assert_eq!(done.next_attempt("tiny", 1), None);
    let again = worker::publish_pending(p, runner, &publisher, &mut Default::default())
        .await
        .unwrap();
    assert_eq!(again, 0);

    // Signed with the community key, not the official one.
    let client = corral_registry::Client::new(true, None);
    let image = corral_registry::ImageRef::parse(&format!("{host}/community/tiny:1")).unwrap();
    let verified = corral_sign::cosign::verify(&client, &image, &public[0])
        .await
        .unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    let official = corral_sign::cosign::verify(&client, &image, &public[1])
        .await
        .unwrap();
    assert!(
        official.is_err(),
        "the official key verified a community image"
    );

    // Pulled, the image's tree holds the recipe's packages.
    let skopeo = corral_test_support::Skopeo::new();
    let layout = d.join("pulled");
    corral_test_support::run_ok(&mut skopeo.copy(
        None,
        &[
            "--src-tls-verify=false",
            &format!("docker://{host}/community/tiny:latest"),
            &format!("oci:{}:x", layout.display()),
        ],
    ));
    let blob = |digest: &str| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        config["config"]["Labels"]["io.corral.portal.revision"],
        serde_json::json!("tiny:1"),
        "{config:#}"
    );
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut entries = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(&layer[..]));
    for e in tar.entries().unwrap() {
        entries.push(e.unwrap().path().unwrap().display().to_string());
    }
    for want in [
        "usr/bin/corral-hello",
        "usr/bin/busybox",
        "usr/lib/sysimage/rpm",
    ] {
        assert!(
            entries
                .iter()
                .any(|e| e.trim_start_matches("./").trim_end_matches('/') == want),
            "{want} not in the image: {entries:?}"
        );
    }

    // A tampered signature verifies with no key.
    let digest = client.manifest(&image, "1").await.unwrap().unwrap().digest;
    let tag = corral_sign::cosign::signature_tag(&digest);
    let sig = client.manifest(&image, &tag).await.unwrap().unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&sig.bytes).unwrap();
    let annotation = &mut m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"];
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(annotation.as_str().unwrap())
        .unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    *annotation = serde_json::json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    client
        .push_manifest(
            &image,
            &tag,
            &sig.media_type,
            &serde_json::to_vec(&m).unwrap(),
        )
        .await
        .unwrap();
    let tampered = corral_sign::cosign::verify(&client, &image, &public[0])
        .await
        .unwrap();
    assert!(tampered.is_err(), "a tampered signature verified");
}
