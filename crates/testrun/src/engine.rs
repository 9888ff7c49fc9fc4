//! Running an image's tests through the Docker Engine API, every
//! container carrying the run's SELinux label.

use crate::label::{self, Enforcement};
use crate::mcs::{McsAllocator, McsLevel};
use crate::probe::{probe_in_netns, Probe};
use crate::report::{CaseResult, ImageReport, Outcome};
use crate::spec::{CommandTest, MountTest, ServiceTest, Tests};
use anyhow::Context;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, InspectContainerOptions,
    ListContainersOptions, LogsOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The engine `corral test` talks to unless told: the same socket
/// `corral dockerfiles build` uses (corral-cli checks they agree).
pub const DEFAULT_ENGINE: &str = "unix:///var/run/docker.sock";

/// The container label every test container carries, with the run's level.
pub const RUN_LABEL: &str = "io.corral.testrun.level";
const TIMEOUT: Duration = Duration::from_secs(300);

/// Runs tests in labelled containers of one engine.
#[derive(Debug)]
pub struct TestRunner {
    pub docker: Docker,
    pub allocator: McsAllocator,
    /// `container_t` unless configured.
    pub process_type: String,
    /// Keep the containers (for `docker inspect`) instead of removing them.
    pub keep: bool,
    pub enforcement: Enforcement,
    /// Where host directories for mounts are made (a disk, for xattrs).
    pub scratch: PathBuf,
}

/// What one image run shares between its containers.
struct Run {
    image: String,
    security_opt: Vec<String>,
    level: McsLevel,
    binds: Vec<String>,
}

struct Finished {
    id: String,
    exit_code: i64,
    stdout: String,
    stderr: String,
}

impl TestRunner {
    /// Connects to `url`, agreeing on the API version.
    pub async fn connect(url: &str) -> anyhow::Result<Docker> {
        Docker::connect_with_host(url)
            .with_context(|| format!("connecting to the engine at {url}"))?
            .negotiate_version()
            .await
            .with_context(|| format!("reaching the engine at {url}"))
    }

    /// The MCS levels of the containers running in the engine.
    pub async fn running_levels(&self) -> anyhow::Result<Vec<McsLevel>> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions::default()))
            .await
            .context("listing running containers")?;
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            let Ok(i) = self
                .docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            else {
                continue; // gone since the listing
            };
            let opts = i
                .host_config
                .and_then(|h| h.security_opt)
                .unwrap_or_default();
            let process = i.process_label.unwrap_or_default();
            let mount = i.mount_label.unwrap_or_default();
            out.extend(label::levels_in_use(&opts, &[&process, &mount]));
        }
        Ok(out)
    }

    /// Runs `tests` against `reference` under a freshly allocated level.
    pub async fn run_image(&self, name: &str, reference: &str, tests: &Tests) -> ImageReport {
        let mut report = ImageReport {
            name: name.to_string(),
            reference: reference.to_string(),
            security_opt: Vec::new(),
            level: String::new(),
            cases: Vec::new(),
            error: None,
        };
        if let Err(e) = self.run_image_inner(reference, tests, &mut report).await {
            report.error = Some(format!("{e:#}"));
        }
        report
    }

    async fn run_image_inner(
        &self,
        reference: &str,
        tests: &Tests,
        report: &mut ImageReport,
    ) -> anyhow::Result<()> {
        let image = self
            .docker
            .inspect_image(reference)
            .await
            .with_context(|| format!("inspecting {reference} in the engine"))?;
        let reserved = self.running_levels().await?;
        let allocator = self.allocator.clone();
        let lease = tokio::task::spawn_blocking(move || allocator.allocate(&reserved))
            .await?
            .with_context(|| {
                format!(
                    "allocating an MCS pair in {}",
                    self.allocator.dir().display()
                )
            })?;
        let level = lease.level();
        let security_opt = label::security_opts(&self.process_type, level);
        report.level = level.to_string();
        report.security_opt = security_opt.clone();
        tracing::info!(reference, %level, "test run starts");

        let mut dirs = Vec::new();
        let mut binds = Vec::new();
        for m in &tests.mounts {
            let dir = MountDir::make(m, &self.scratch)?;
            let flag = match (m.relabel, m.shared) {
                (false, _) => "",
                (true, true) => ":z",
                (true, false) => ":Z",
            };
            binds.push(format!("{}:{}{flag}", dir.path().display(), m.target));
            dirs.push((m.clone(), dir));
        }
        let run = Run {
            image: reference.to_string(),
            security_opt,
            level,
            binds,
        };
        // relabel before any container sees the directories
        for (m, dir) in &dirs {
            let start = Instant::now();
            let path = dir.path().display();
            let (name, case) = if m.relabel {
                let want = if m.shared { None } else { Some(level) };
                let flag = if m.shared { ":z" } else { ":Z" };
                let case = match label::relabel(dir.path(), want) {
                    Ok(l) => match label::file_label_of(dir.path()) {
                        Ok(Some(got)) if got == l => pass(format!("{path} labelled {l}")),
                        Ok(got) => fail(format!("{path} carries {got:?}, not {l}")),
                        Err(e) => fail(format!("reading the label of {path}: {e}")),
                    },
                    Err(e) => fail(format!("relabelling {path}: {e}")),
                };
                (format!("mount {}{flag}", m.target), case)
            } else {
                let case = match label::file_label_of(dir.path()) {
                    Ok(l) => pass(format!(
                        "{path} mounted as labelled: {}",
                        l.as_deref().unwrap_or("no label")
                    )),
                    Err(e) => fail(format!("reading the label of {path}: {e}")),
                };
                (format!("mount {} (not relabelled)", m.target), case)
            };
            report.cases.push(finish(name, case, start, None));
        }

        report.cases.push(self.label_case(&run).await);
        if let Some(user) = &tests.user {
            report.cases.push(self.user_case(&run, user).await);
        }
        for c in &tests.commands {
            report.cases.push(self.command_case(&run, c).await);
        }
        if !tests.files_present.is_empty() || !tests.files_absent.is_empty() {
            report.cases.extend(
                self.file_cases(&run, &tests.files_present, &tests.files_absent)
                    .await,
            );
        }
        let declared: Vec<String> = image
            .config
            .and_then(|c| c.volumes)
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        for v in &tests.volumes {
            let ok = declared
                .iter()
                .any(|d| d.trim_end_matches('/') == v.trim_end_matches('/'));
            let result = if ok {
                pass(String::new())
            } else {
                fail(format!(
                    "not a VOLUME of the image (it declares {declared:?})"
                ))
            };
            report
                .cases
                .push(finish(format!("volume {v}"), result, Instant::now(), None));
        }
        if let Some(svc) = &tests.service {
            report.cases.push(self.service_case(&run, svc).await);
        }
        if self.keep {
            // the kept containers' binds point into these
            for (_, dir) in dirs {
                dir.keep();
            }
        }
        let allocator_dir = self.allocator.dir().display().to_string();
        tokio::task::spawn_blocking(move || lease.release())
            .await?
            .with_context(|| format!("releasing the MCS pair in {allocator_dir}"))?;
        Ok(())
    }

    /// The label is on the container; where SELinux enforces, the process
    /// inside also carries it.
    async fn label_case(&self, run: &Run) -> CaseResult {
        let start = Instant::now();
        let want = label::process_label(&self.process_type, run.level);
        let name = format!("selinux label {want}");
        let enforcing = self.enforcement == Enforcement::Enforcing;
        let cmd = vec!["cat".to_string(), "/proc/self/attr/current".to_string()];
        let result = async {
            let id = self.create(run, Some(cmd), Vec::new()).await?;
            let i = self
                .docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
                .with_context(|| format!("inspecting container {id}"))?;
            let opts = label::split_security_opts(
                &i.host_config
                    .and_then(|h| h.security_opt)
                    .unwrap_or_default(),
            );
            if !run.security_opt.iter().all(|o| opts.contains(o)) {
                return Ok((id, Err(format!("HostConfig.SecurityOpt is {opts:?}"))));
            }
            if !enforcing {
                return Ok((
                    id,
                    Ok(format!(
                        "set in HostConfig.SecurityOpt; {}",
                        self.enforcement.describe()
                    )),
                ));
            }
            let f = self.start_and_wait(&id).await?;
            let got = f.stdout.trim_end_matches(['\0', '\n']).to_string();
            Ok::<_, anyhow::Error>((
                id,
                if got == want {
                    Ok("enforced: /proc/self/attr/current matches".to_string())
                } else {
                    Err(format!("/proc/self/attr/current is {got:?}"))
                },
            ))
        }
        .await;
        match result {
            Ok((id, r)) => {
                let kept = self.done(&id).await;
                finish(name, r, start, kept)
            }
            Err(e) => finish(name, Err(format!("{e:#}")), start, None),
        }
    }

    /// Starts the image's default command and probes its port from inside
    /// the container's network namespace.
    async fn service_case(&self, run: &Run, svc: &ServiceTest) -> CaseResult {
        let start = Instant::now();
        let name = match &svc.http {
            Some(path) => format!("service port {} GET {path}", svc.port),
            None => format!("service port {}", svc.port),
        };
        let env: Vec<String> = svc.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let id = match self.create(run, None, env).await {
            Ok(id) => id,
            Err(e) => return finish(name, Err(format!("{e:#}")), start, None),
        };
        let result = async {
            self.docker
                .start_container(&id, None)
                .await
                .with_context(|| format!("starting container {id}"))?;
            let i = self
                .docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
                .with_context(|| format!("inspecting container {id}"))?;
            let pid = i
                .state
                .and_then(|s| s.pid)
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0)
                .with_context(|| format!("container {id} is not running"))?;
            let probe = Probe {
                port: svc.port,
                http: svc.http.clone(),
                status: svc.status,
                timeout: Duration::from_secs(svc.timeout_seconds.into()),
            };
            Ok::<_, anyhow::Error>(
                tokio::task::spawn_blocking(move || probe_in_netns(pid, probe)).await?,
            )
        }
        .await;
        let kept = self.done(&id).await;
        match result {
            Ok(r) => finish(name, r, start, kept),
            Err(e) => finish(name, Err(format!("{e:#}")), start, kept),
        }
    }

    async fn user_case(&self, run: &Run, user: &str) -> CaseResult {
        let flag = if user.parse::<u32>().is_ok() {
            "-u"
        } else {
            "-un"
        };
        let test = CommandTest {
            run: vec!["id".into(), flag.into()],
            exit_code: 0,
            stdout: Some(format!("^{}\\s*$", regex::escape(user))),
            stderr: None,
        };
        let mut c = self.command_case(run, &test).await;
        c.name = format!("user {user}");
        c
    }

    async fn command_case(&self, run: &Run, test: &CommandTest) -> CaseResult {
        let start = Instant::now();
        let name = format!("command {}", test.run.join(" "));
        let f = match self.run_to_end(run, test.run.clone()).await {
            Ok(f) => f,
            Err(e) => return finish(name, Err(format!("{e:#}")), start, None),
        };
        let kept = self.done(&f.id).await;
        finish(name, check_command(test, &f), start, kept)
    }

    /// One container, created but never started, answers every file check
    /// through the archive endpoint: no shell needed in the image.
    async fn file_cases(
        &self,
        run: &Run,
        present: &[String],
        absent: &[String],
    ) -> Vec<CaseResult> {
        let start = Instant::now();
        let id = match self.create(run, None, Vec::new()).await {
            Ok(id) => id,
            Err(e) => {
                return vec![finish("files".into(), Err(format!("{e:#}")), start, None)];
            }
        };
        let mut out = Vec::new();
        let checks = present
            .iter()
            .map(|p| (p, true))
            .chain(absent.iter().map(|p| (p, false)));
        for (path, want) in checks {
            let start = Instant::now();
            let name = format!("file {path} {}", if want { "present" } else { "absent" });
            let r = match self.exists(&id, path).await {
                Ok(got) if got == want => Ok(String::new()),
                Ok(true) => Err("exists".to_string()),
                Ok(false) => Err("does not exist".to_string()),
                Err(e) => Err(format!("{e:#}")),
            };
            out.push(finish(name, r, start, None));
        }
        self.done(&id).await;
        out
    }

    async fn exists(&self, id: &str, path: &str) -> anyhow::Result<bool> {
        let mut s = self.docker.download_from_container(
            id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        match s.next().await {
            Some(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })) => Ok(false),
            Some(Err(e)) => Err(e).with_context(|| format!("looking up {path} in container {id}")),
            _ => Ok(true),
        }
    }

    async fn create(
        &self,
        run: &Run,
        cmd: Option<Vec<String>>,
        env: Vec<String>,
    ) -> anyhow::Result<String> {
        let body = ContainerCreateBody {
            image: Some(run.image.clone()),
            cmd,
            env: Some(env),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(
                RUN_LABEL.to_string(),
                run.level.to_string(),
            )])),
            host_config: Some(HostConfig {
                security_opt: Some(run.security_opt.clone()),
                binds: Some(run.binds.clone()),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .with_context(|| format!("creating a container of {}", run.image))?;
        Ok(r.id)
    }

    async fn run_to_end(&self, run: &Run, cmd: Vec<String>) -> anyhow::Result<Finished> {
        let id = self.create(run, Some(cmd), Vec::new()).await?;
        match self.start_and_wait(&id).await {
            Ok(f) => Ok(f),
            Err(e) => {
                self.done(&id).await;
                Err(e)
            }
        }
    }

    async fn start_and_wait(&self, id: &str) -> anyhow::Result<Finished> {
        self.docker
            .start_container(id, None)
            .await
            .with_context(|| format!("starting container {id}"))?;
        // a non-zero exit is an error item in bollard's stream; the state has the code
        let waited =
            tokio::time::timeout(TIMEOUT, self.docker.wait_container(id, None).next()).await;
        if waited.is_err() {
            anyhow::bail!("container {id} still running after {} s", TIMEOUT.as_secs());
        }
        let i = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .with_context(|| format!("inspecting container {id}"))?;
        let exit_code = i.state.and_then(|s| s.exit_code).unwrap_or(-1);
        let mut logs = self.docker.logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(item) = logs.next().await {
            match item.with_context(|| format!("reading the output of container {id}"))? {
                bollard::container::LogOutput::StdOut { message } => {
                    stdout.push_str(&String::from_utf8_lossy(&message))
                }
                bollard::container::LogOutput::StdErr { message } => {
                    stderr.push_str(&String::from_utf8_lossy(&message))
                }
                _ => {}
            }
        }
        Ok(Finished {
            id: id.to_string(),
            exit_code,
            stdout,
            stderr,
        })
    }

    /// Removes the container, or returns its ID when it is kept.
    async fn done(&self, id: &str) -> Option<String> {
        if self.keep {
            return Some(id.to_string());
        }
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        if let Err(e) = self.docker.remove_container(id, Some(opts)).await {
            tracing::warn!(container = id, "removing a test container: {e}");
        }
        None
    }
}

/// The host side of a mount: a fresh directory removed after the run, or
/// the `source` the test names, which stays.
#[derive(Debug)]
enum MountDir {
    Fresh(tempfile::TempDir),
    Source(PathBuf),
}

impl MountDir {
    fn make(m: &MountTest, scratch: &Path) -> anyhow::Result<Self> {
        let dir = match &m.source {
            Some(s) => {
                let p = PathBuf::from(s);
                anyhow::ensure!(
                    p.is_absolute(),
                    "mount {}: source {s} is not an absolute path",
                    m.target
                );
                std::fs::create_dir_all(&p).with_context(|| format!("making {s}"))?;
                MountDir::Source(p)
            }
            None => MountDir::Fresh(
                tempfile::Builder::new()
                    .prefix("corral-testrun-")
                    .tempdir_in(scratch)
                    .with_context(|| format!("making a host directory in {}", scratch.display()))?,
            ),
        };
        // any user the image runs as may write
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .with_context(|| format!("opening up {}", dir.path().display()))?;
        Ok(dir)
    }

    fn path(&self) -> &Path {
        match self {
            MountDir::Fresh(t) => t.path(),
            MountDir::Source(p) => p,
        }
    }

    fn keep(self) {
        if let MountDir::Fresh(t) = self {
            let _ = t.keep();
        }
    }
}

fn check_command(test: &CommandTest, f: &Finished) -> Result<String, String> {
    let mut problems = Vec::new();
    if f.exit_code != i64::from(test.exit_code) {
        problems.push(format!(
            "exit code {} (want {})",
            f.exit_code, test.exit_code
        ));
    }
    for (stream, pattern, got) in [
        ("stdout", &test.stdout, &f.stdout),
        ("stderr", &test.stderr, &f.stderr),
    ] {
        let Some(p) = pattern else { continue };
        match regex::Regex::new(p) {
            Ok(re) if re.is_match(got) => {}
            Ok(_) => problems.push(format!("{stream} {got:?} does not match /{p}/")),
            Err(e) => problems.push(format!("{stream} pattern /{p}/ is invalid: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(String::new())
    } else {
        Err(problems.join("; "))
    }
}

fn pass(m: String) -> Result<String, String> {
    Ok(m)
}

fn fail(m: String) -> Result<String, String> {
    Err(m)
}

fn finish(
    name: String,
    r: Result<String, String>,
    start: Instant,
    container: Option<String>,
) -> CaseResult {
    let (outcome, message) = match r {
        Ok(m) => (Outcome::Passed, m),
        Err(m) => (Outcome::Failed, m),
    };
    CaseResult {
        name,
        outcome,
        message,
        seconds: start.elapsed().as_secs_f64(),
        container,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(code: i64, out: &str) -> Finished {
        Finished {
            id: "x".into(),
            exit_code: code,
            stdout: out.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn mount_sources_are_absolute_and_kept() {
        let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
        let mount = |source: Option<&str>| MountTest {
            target: "/data".into(),
            shared: false,
            source: source.map(String::from),
            relabel: true,
        };
        let e = MountDir::make(&mount(Some("srv/x")), scratch.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mount /data: source srv/x is not an absolute path"
        );
        let src = scratch.path().join("made/here");
        let d = MountDir::make(&mount(Some(src.to_str().unwrap())), scratch.path()).unwrap();
        assert_eq!(d.path(), src);
        drop(d);
        assert!(src.is_dir(), "a named source stays after the run");
        let fresh = MountDir::make(&mount(None), scratch.path()).unwrap();
        let p = fresh.path().to_path_buf();
        assert!(p.starts_with(scratch.path()));
        drop(fresh);
        assert!(!p.exists(), "a fresh directory goes with the run");
    }

    #[test]
    fn command_checks() {
        let t = CommandTest {
            run: vec!["corral-hello".into()],
            exit_code: 0,
            stdout: Some("^Hello from corral-hello 1\\.0".into()),
            stderr: None,
        };
        assert!(check_command(&t, &finished(0, "Hello from corral-hello 1.0\n")).is_ok());
        let e = check_command(&t, &finished(3, "nope")).unwrap_err();
        assert!(
            e.starts_with("exit code 3 (want 0); stdout \"nope\" does not match"),
            "{e}"
        );
        let bad = CommandTest {
            stdout: Some("(".into()),
            ..t
        };
        assert!(check_command(&bad, &finished(0, ""))
            .unwrap_err()
            .contains("is invalid"));
    }
}
