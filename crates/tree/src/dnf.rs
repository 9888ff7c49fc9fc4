//! Installing a recipe's packages with the real `dnf --installroot`.
//!
//! rpm's own macros are set through a private `$HOME/.rpmmacros`, so the
//! rpm database lands inside the tree (Fedora's `/usr/lib/sysimage/rpm`)
//! and `%_install_langs` drops the locales the footprint policy leaves out,
//! whatever the build host's rpm configuration says.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::error::TreeError;
use crate::limits::{BuildCgroup, SandboxLimits};
use crate::recipe::Recipe;
use crate::sandbox;

/// Where the rpm database lives inside trees corral builds.
pub const RPMDB_PATH: &str = "/usr/lib/sysimage/rpm";

/// The dnf configuration file for a recipe: no host repositories, only the
/// recipe's, caches and logs inside the installroot so the footprint policy
/// can measure and drop them.
pub fn dnf_conf(recipe: &Recipe) -> String {
    let mut conf = String::new();
    let _ = writeln!(conf, "[main]");
    let _ = writeln!(conf, "reposdir=/nonexistent");
    let _ = writeln!(conf, "cachedir=/var/cache/dnf");
    let _ = writeln!(conf, "logdir=/var/log");
    let _ = writeln!(conf, "keepcache=False");
    let _ = writeln!(
        conf,
        "install_weak_deps={}",
        py_bool(recipe.install_weak_deps)
    );
    let _ = writeln!(conf, "gpgcheck=True");
    let _ = writeln!(conf, "localpkg_gpgcheck=True");
    let _ = writeln!(conf, "skip_if_unavailable=False");
    let _ = writeln!(conf, "deltarpm=False");
    if !recipe.exclude.is_empty() {
        let _ = writeln!(conf, "excludepkgs={}", recipe.exclude.join(","));
    }
    for repo in &recipe.repos {
        let _ = writeln!(conf, "\n[{}]", repo.id);
        let _ = writeln!(conf, "name={}", repo.id);
        if let Some(url) = &repo.baseurl {
            let _ = writeln!(conf, "baseurl={url}");
        }
        if let Some(url) = &repo.metalink {
            let _ = writeln!(conf, "metalink={url}");
        }
        let _ = writeln!(conf, "enabled=True");
        let _ = writeln!(conf, "gpgcheck={}", py_bool(repo.gpgcheck));
        let _ = writeln!(conf, "repo_gpgcheck=False");
        if !repo.gpgkey.is_empty() {
            let _ = writeln!(conf, "gpgkey={}", repo.gpgkey.join(" "));
        }
    }
    conf
}

/// The `.rpmmacros` for a recipe.
pub fn rpm_macros(recipe: &Recipe) -> String {
    format!(
        "%_dbpath {RPMDB_PATH}\n%_install_langs {}\n",
        recipe.install_langs()
    )
}

/// The dnf command line, without the program name.
pub fn dnf_args(recipe: &Recipe, conf: &Path, installroot: &Path) -> Vec<String> {
    let mut args = vec![
        "-y".to_string(),
        "--quiet".to_string(),
        "-c".to_string(),
        conf.display().to_string(),
        format!("--installroot={}", installroot.display()),
        format!("--releasever={}", recipe.releasever),
        "--setopt=module_platform_id=platform:none".to_string(),
        "--noplugins".to_string(),
    ];
    if recipe.arch != std::env::consts::ARCH {
        args.push(format!("--forcearch={}", recipe.arch));
    }
    if !recipe.footprint.docs {
        args.push("--setopt=tsflags=nodocs".to_string());
    }
    args.push("install".to_string());
    // Validation refuses names that start with `-`; `--` makes sure dnf
    // reads whatever follows as packages, never as options.
    args.push("--".to_string());
    args.extend(recipe.packages.iter().cloned());
    args
}

/// Runs dnf to install the recipe into `installroot`.
///
/// `home` is a private directory for `.rpmmacros`; `epoch`, when set,
/// becomes rpm's install time (rpm honours SOURCE_DATE_EPOCH). With
/// `limits`, dnf runs in [`crate::sandbox`]'s bubblewrap sandbox, in a
/// cgroup with those limits ([`crate::limits`]).
pub fn install(
    recipe: &Recipe,
    installroot: &Path,
    home: &Path,
    epoch: Option<i64>,
    time_limit: Option<std::time::Duration>,
    limits: Option<&SandboxLimits>,
) -> Result<(), TreeError> {
    let sandbox = limits.is_some();
    let conf = home.join("dnf.conf");
    std::fs::write(&conf, dnf_conf(recipe)).map_err(TreeError::io("writing", &conf))?;
    let macros = home.join(".rpmmacros");
    std::fs::write(&macros, rpm_macros(recipe)).map_err(TreeError::io("writing", &macros))?;

    let mut env = vec![
        ("HOME", home.display().to_string()),
        ("LC_ALL", "C.UTF-8".to_string()),
    ];
    if let Some(epoch) = epoch {
        env.push(("SOURCE_DATE_EPOCH", epoch.to_string()));
    }
    let program = if sandbox { sandbox::BWRAP } else { "dnf" };
    let missing_bwrap = || TreeError::MissingTool {
        tool: sandbox::BWRAP,
        hint: "install bubblewrap (scripts/setup.sh does), or build without the sandbox",
    };
    // The build's cgroup, removed (with anything left in it) when this
    // returns, whatever the outcome.
    let mut cgroup = None;
    if let Some(limits) = limits {
        if !on_path(sandbox::BWRAP) {
            return Err(missing_bwrap());
        }
        match BuildCgroup::host(limits) {
            Ok(cg) => cgroup = Some(cg),
            Err(e) if limits.required => {
                return Err(TreeError::NoCgroup {
                    detail: e.to_string(),
                })
            }
            Err(e) => tracing::warn!(
                error = %e,
                "no cgroup for the sandbox: the build runs without a process or memory limit"
            ),
        }
    }
    let mut cmd = match &cgroup {
        // sh enters the cgroup, then becomes bwrap: nothing of the
        // build starts outside it.
        Some(cg) => {
            let mut c = Command::new("sh");
            c.args(["-c", crate::limits::ENTER, "sh"])
                .args(cg.procs_files())
                .args(["--", sandbox::BWRAP]);
            c
        }
        None => Command::new(program),
    };
    if sandbox {
        cmd.args(sandbox::bwrap_args(recipe, installroot, home, &env))
            .arg("dnf");
    }
    cmd.args(dnf_args(recipe, &conf, installroot))
        .env_remove("SOURCE_DATE_EPOCH")
        .envs(env.iter().map(|(k, v)| (k, v)));
    tracing::info!(root = %installroot.display(), packages = recipe.packages.len(), sandbox, "running dnf");
    let out = output_within(&mut cmd, time_limit)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound if sandbox => missing_bwrap(),
            _ => TreeError::Io {
                path: program.into(),
                action: "running",
                source,
            },
        })?
        .ok_or_else(|| TreeError::TimedOut {
            what: "dnf".into(),
            secs: time_limit.map(|l| l.as_secs()).unwrap_or_default(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{stderr}");
    if let Some(package) = missing_package(&text) {
        return Err(TreeError::PackageNotFound {
            package,
            repos: recipe
                .repos
                .iter()
                .map(|r| {
                    let url = r.baseurl.as_deref().or(r.metalink.as_deref()).unwrap_or("");
                    format!("{} ({url})", r.id)
                })
                .collect(),
        });
    }
    let mut detail = last_lines(&text, 12);
    if let (Some(cg), Some(l)) = (&cgroup, limits) {
        let refused = cg.pids_refused();
        if refused > 0 {
            detail.push_str(&format!(
                "\n(the build reached its limit of {} processes: {refused} forks refused)",
                l.pids_max
            ));
        }
        if cg.memory_hit() {
            detail.push_str(&format!(
                "\n(the build reached its memory limit of {} bytes)",
                l.memory_max
            ));
        }
    }
    Err(TreeError::Tool {
        tool: "dnf",
        status: out.status.to_string(),
        detail,
    })
}

/// Whether `program` is an executable file in a directory of `PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The newest build time of the packages installing `recipe` would
/// install: a tree's time derived from its inputs, for builds without
/// SOURCE_DATE_EPOCH. dnf resolves the transaction exactly as the install
/// will (same configuration, empty root) and downloads the packages only;
/// rpm reads their headers. `None` when the recipe installs nothing.
pub fn newest_build_time(recipe: &Recipe) -> Result<Option<i64>, TreeError> {
    let scratch = tempfile::Builder::new()
        .prefix("corral-resolve-")
        .tempdir()
        .map_err(TreeError::io(
            "creating",
            "a scratch directory to resolve packages",
        ))?;
    let home = scratch.path().join("home");
    let root = scratch.path().join("root");
    let rpms = scratch.path().join("rpms");
    for d in [&home, &root, &rpms] {
        std::fs::create_dir(d).map_err(TreeError::io("creating", d))?;
    }
    let conf = home.join("dnf.conf");
    std::fs::write(&conf, dnf_conf(recipe)).map_err(TreeError::io("writing", &conf))?;
    let macros = home.join(".rpmmacros");
    std::fs::write(&macros, rpm_macros(recipe)).map_err(TreeError::io("writing", &macros))?;
    let mut args = dnf_args(recipe, &conf, &root);
    let at = args
        .iter()
        .position(|a| a == "install")
        .expect("dnf_args has the install verb");
    args.insert(at, "--downloadonly".to_string());
    args.insert(at, format!("--destdir={}", rpms.display()));
    let out = Command::new("dnf")
        .args(&args)
        .env("HOME", &home)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .map_err(|source| TreeError::Io {
            path: "dnf".into(),
            action: "running",
            source,
        })?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(TreeError::Tool {
            tool: "dnf",
            status: out.status.to_string(),
            detail: last_lines(&text, 12),
        });
    }
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&rpms)
        .map_err(TreeError::io("reading", &rpms))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rpm"))
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let out = Command::new("rpm")
        .args([
            "-qp",
            "--nosignature",
            "--nodigest",
            "--qf",
            "%{BUILDTIME}\\n",
        ])
        .args(&files)
        .env("HOME", &home)
        .output()
        .map_err(|source| TreeError::Io {
            path: "rpm".into(),
            action: "running",
            source,
        })?;
    if !out.status.success() {
        return Err(TreeError::Tool {
            tool: "rpm",
            status: out.status.to_string(),
            detail: last_lines(&String::from_utf8_lossy(&out.stderr), 12),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<i64>().ok())
        .max())
}

/// The package dnf could not find, from its messages.
pub(crate) fn missing_package(output: &str) -> Option<String> {
    for line in output.lines() {
        for marker in ["No match for argument: ", "Unable to find a match: "] {
            if let Some(rest) = line.split(marker).nth(1) {
                let name = rest.split_whitespace().next()?;
                return Some(name.to_string());
            }
        }
    }
    None
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `cmd.output()`, or `None` once `limit` has passed: then the command's
/// whole process group (dnf and the scriptlets it runs) is killed first.
fn output_within(
    cmd: &mut Command,
    limit: Option<std::time::Duration>,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let Some(limit) = limit else {
        return cmd.output().map(Some);
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!(secs = limit.as_secs(), "time limit reached: stopping dnf");
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    Ok(status.map(|status| std::process::Output {
        status,
        stdout,
        stderr,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_past_its_time_limit_is_stopped_with_its_children() {
        let marker = tempfile::tempdir().unwrap();
        let late = marker.path().join("late");
        let mut cmd = Command::new("sh");
        // a child of the command that would outlive a kill of sh alone
        cmd.arg("-c").arg(format!(
            "(sleep 3; touch {}) & echo started; sleep 30",
            late.display()
        ));
        let started = std::time::Instant::now();
        let out = output_within(&mut cmd, Some(std::time::Duration::from_millis(500))).unwrap();
        assert!(out.is_none(), "the command was not stopped");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_secs(4));
        assert!(
            !late.exists(),
            "a child of the command ran on after the limit"
        );

        let mut quick = Command::new("sh");
        quick.arg("-c").arg("echo out; echo err >&2");
        let out = output_within(&mut quick, Some(std::time::Duration::from_secs(30)))
            .unwrap()
            .expect("finished in time");
        assert!(out.status.success());
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    fn recipe() -> Recipe {
        Recipe::parse(
            r#"
name = "t"
releasever = "43"
packages = ["bash", "coreutils"]
exclude = ["kernel*"]
[[repo]]
id = "fedora"
metalink = "https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch"
gpgkey = ["file:///etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-43-primary"]
[footprint]
langs = ["en_US", "de_DE"]
"#,
            Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn conf_has_only_recipe_repos_with_gpgcheck() {
        let conf = dnf_conf(&recipe());
        assert!(conf.contains("reposdir=/nonexistent"));
        assert!(conf.contains("[fedora]\nname=fedora\nmetalink=https://mirrors.fedoraproject.org/"));
        assert!(
            conf.contains("gpgcheck=True\nrepo_gpgcheck=False\ngpgkey=file:///etc/pki/rpm-gpg/")
        );
        assert!(conf.contains("excludepkgs=kernel*"));
        assert!(conf.contains("install_weak_deps=False"));
    }

    #[test]
    fn macros_put_rpmdb_in_tree_and_keep_langs() {
        assert_eq!(
            rpm_macros(&recipe()),
            "%_dbpath /usr/lib/sysimage/rpm\n%_install_langs C:en_US:de_DE\n"
        );
    }

    #[test]
    fn args_drop_docs_by_default() {
        let args = dnf_args(&recipe(), Path::new("/c"), Path::new("/r"));
        assert!(args.contains(&"--setopt=tsflags=nodocs".to_string()));
        assert!(args.contains(&"--installroot=/r".to_string()));
        assert_eq!(
            &args[args.len() - 4..],
            ["install", "--", "bash", "coreutils"]
        );
    }

    #[test]
    fn finds_missing_package_in_dnf_output() {
        let out = "Last metadata expiration check: 0:00:01 ago\nNo match for argument: nosuchpkg\nError: Unable to find a match: nosuchpkg\n";
        assert_eq!(missing_package(out).as_deref(), Some("nosuchpkg"));
        assert_eq!(missing_package("Complete!"), None);
    }
}
