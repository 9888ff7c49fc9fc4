//! The automatic checks every revision of a Dockerfile folder passes
//! (docs/portal.md, "Checks"): **lint** with the library's rules, a
//! **build** FROM an official base in the Docker Engine with no network,
//! memory, CPU and process-count limits ([`pids`]) and a time limit, and
//! a **test** run of its `image.toml` tests through corral-testrun, in
//! SELinux-labelled containers. [`CheckRunner::run`] gives the three results with their
//! logs; [`tree`] has a tree recipe's three checks; [`worker`] finds the
//! revisions waiting for them and records them.

pub mod pids;
pub mod tree;
pub mod worker;

use std::collections::{BTreeMap, HashMap};

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::{BuildImageOptions, RemoveContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;

use corral_dockerfiles::lint::{self, Finding, Severity};
use corral_dockerfiles::parse::Kind;
use corral_testrun::engine::TestRunner;
use corral_testrun::label::{Enforcement, DEFAULT_TYPE};
use corral_testrun::mcs::{McsAllocator, McsRange};

use crate::config::ChecksConfig;
use crate::model::CheckStatus;
use crate::upload::LibraryFolder;

/// The label every image a check builds carries: `TEMPLATE:REVISION`.
pub const REVISION_LABEL: &str = "io.corral.portal.revision";

/// One check's result and its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: CheckStatus,
    pub log: String,
}

impl Outcome {
    fn passed(log: String) -> Outcome {
        Outcome {
            status: CheckStatus::Passed,
            log,
        }
    }

    fn failed(log: String) -> Outcome {
        Outcome {
            status: CheckStatus::Failed,
            log,
        }
    }
}

/// The three checks of one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    pub lint: Outcome,
    pub build: Outcome,
    pub test: Outcome,
    /// The image built, when the build passed (`corral-portal/NAME:REV`).
    pub image: Option<String>,
}

/// Runs the checks against one Docker Engine.
pub struct CheckRunner {
    config: ChecksConfig,
    docker: Docker,
}

/// A lint finding as one log line: `Dockerfile:LINE:COLUMN: RULE SEVERITY: MESSAGE`
/// (the template page links the rule id to its page).
pub fn finding_line(f: &Finding) -> String {
    format!(
        "Dockerfile:{}:{}: {} {}: {}",
        f.line, f.column, f.rule, f.severity, f.message
    )
}

/// Lints a Dockerfile's bytes: failed when a finding is an error.
pub fn lint(dockerfile: &[u8]) -> Outcome {
    let findings = lint::lint_bytes(dockerfile);
    let mut log = String::new();
    for f in &findings {
        let _ = writeln!(log, "{}", finding_line(f));
    }
    if findings.iter().any(|f| f.severity == Severity::Error) {
        Outcome::failed(log)
    } else {
        if findings.is_empty() {
            log.push_str("no findings\n");
        }
        Outcome::passed(log)
    }
}

/// The images a Dockerfile's FROM lines name that are neither an earlier
/// stage nor one of `bases`.
pub fn foreign_bases(folder: &LibraryFolder, bases: &[String]) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut foreign = Vec::new();
    for i in &folder.dockerfile.instructions {
        if i.kind != Kind::From {
            continue;
        }
        let mut words = i.args.split_whitespace();
        let image = words.next().unwrap_or_default().to_string();
        let known = bases.contains(&image) || stages.iter().any(|s| s.eq_ignore_ascii_case(&image));
        if !known {
            foreign.push(image);
        }
        if let (Some(kw), Some(stage)) = (words.next(), words.next()) {
            if kw.eq_ignore_ascii_case("as") {
                stages.push(stage.to_string());
            }
        }
    }
    foreign
}

/// The id in a classic builder line `---> Running in 3f2a…`.
fn running_container(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("---> Running in ")
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl CheckRunner {
    /// Connects to the configured engine.
    pub async fn connect(config: ChecksConfig) -> anyhow::Result<CheckRunner> {
        let docker = TestRunner::connect(&config.engine).await?;
        Ok(CheckRunner { config, docker })
    }

    pub fn config(&self) -> &ChecksConfig {
        &self.config
    }

    /// Lints, builds and tests `folder` as revision `revision` of
    /// `template`. A check after a failed build fails saying so.
    pub async fn run(&self, template: &str, revision: u32, folder: &LibraryFolder) -> Results {
        let dockerfile = std::fs::read(folder.root.join("Dockerfile")).unwrap_or_default();
        let lint = lint(&dockerfile);
        let tag = local_image(template, revision);
        let build = self.build(template, revision, folder, &tag).await;
        let (test, image) = if build.status == CheckStatus::Passed {
            (self.test(template, &tag, folder).await, Some(tag))
        } else {
            (Outcome::failed("not run: the build failed\n".into()), None)
        };
        Results {
            lint,
            build,
            test,
            image,
        }
    }

    async fn build(
        &self,
        template: &str,
        revision: u32,
        folder: &LibraryFolder,
        tag: &str,
    ) -> Outcome {
        let foreign = foreign_bases(folder, &self.config.bases);
        if !foreign.is_empty() {
            return Outcome::failed(format!(
                "FROM {} is not an official base; templates build FROM one of: {}\n",
                foreign.join(", "),
                self.config.bases.join(", ")
            ));
        }
        let dockerfile = match std::fs::read_to_string(folder.root.join("Dockerfile")) {
            Ok(d) => d,
            Err(e) => return Outcome::failed(format!("reading the Dockerfile: {e}\n")),
        };
        let context = match corral_dockerfiles::engine_build::context_tar::context_tar(
            &folder.root,
            &dockerfile,
            corral_dockerfiles::engine_build::context_tar::source_date_epoch(),
        ) {
            Ok(c) => c,
            Err(e) => return Outcome::failed(format!("packing the build context: {e:#}\n")),
        };
        // what BuildKit would pass as TARGETARCH, for the classic builder
        let arch = match self.docker.version().await {
            Ok(v) => v.arch.unwrap_or_default(),
            Err(e) => return Outcome::failed(format!("reading the engine's version: {e}\n")),
        };
        let c = &self.config;
        // `memory` fits an i32: the configuration checks it.
        let memory = i32::try_from(c.memory).unwrap_or(i32::MAX);
        let period = 100_000;
        let options = BuildImageOptions {
            t: Some(tag.to_string()),
            rm: true,
            forcerm: true,
            // the FROM image must already be in the engine: nothing is pulled
            pull: None,
            networkmode: Some("none".into()),
            memory: Some(memory),
            memswap: Some(memory),
            cpuperiod: Some(period),
            cpuquota: Some((c.cpus * f64::from(period)) as i32),
            buildargs: Some(
                corral_dockerfiles::engine_build::with_target_arch(
                    &folder.spec.image.build_args,
                    &arch,
                )
                .into_iter()
                .collect::<HashMap<_, _>>(),
            ),
            labels: Some(HashMap::from([(
                REVISION_LABEL.to_string(),
                format!("{template}:{revision}"),
            )])),
            ..Default::default()
        };
        let mut log = String::new();
        let pids = c
            .pids_cgroup
            .as_deref()
            .map(|cg| pids::PidsLimit::host(cg, c.pids_max));
        let refused_before = match &pids {
            Some(l) => match l.apply() {
                Ok(n) => n,
                Err(e) => {
                    return Outcome::failed(format!(
                        "not built: setting the process limit in {}: {e}\n",
                        l.dir().display()
                    ))
                }
            },
            None => 0,
        };
        let mut running: Option<String> = None;
        let mut error: Option<String> = None;
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let limit = Duration::from_secs(c.timeout_secs);
        let streamed = tokio::time::timeout(limit, async {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(s) = &info.stream {
                            for l in s.lines().filter(|l| !l.trim().is_empty()) {
                                if let Some(id) = running_container(l) {
                                    running = Some(id.to_string());
                                }
                                log.push_str(l);
                                log.push('\n');
                            }
                        }
                        if let Some(s) = &info.status {
                            log.push_str(s);
                            log.push('\n');
                        }
                    }
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
        })
        .await;
        drop(stream);
        if let Some(l) = &pids {
            let refused = l.refused().unwrap_or(0).saturating_sub(refused_before);
            if refused > 0 || l.reached() {
                let _ = write!(
                    log,
                    "the build's steps reached the process limit of {}",
                    l.max()
                );
                if refused > 0 {
                    let _ = write!(log, ": {refused} forks refused");
                }
                log.push('\n');
            }
        }
        if streamed.is_err() {
            // Closing the stream cancels the build; removing the step's
            // container makes sure nothing keeps running.
            if let Some(id) = &running {
                let _ = self
                    .docker
                    .remove_container(
                        id,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    )
                    .await;
            }
            let _ = writeln!(
                log,
                "stopped: the build took longer than the limit of {} s",
                c.timeout_secs
            );
            return Outcome::failed(log);
        }
        if let Some(e) = error {
            let _ = writeln!(log, "the build failed: {e}");
            return Outcome::failed(log);
        }
        match self.docker.inspect_image(tag).await {
            Ok(i) => {
                let labels: BTreeMap<String, String> = i
                    .config
                    .and_then(|c| c.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                if labels.get(REVISION_LABEL) == Some(&format!("{template}:{revision}")) {
                    let _ = writeln!(log, "built {tag}");
                    Outcome::passed(log)
                } else {
                    let _ = writeln!(log, "the engine's {tag} is not this build's");
                    Outcome::failed(log)
                }
            }
            Err(e) => {
                let _ = writeln!(log, "the build left no {tag}: {e}");
                Outcome::failed(log)
            }
        }
    }

    async fn test(&self, template: &str, tag: &str, folder: &LibraryFolder) -> Outcome {
        let c = &self.config;
        let runner = TestRunner {
            docker: self.docker.clone(),
            allocator: McsAllocator::new(&c.mcs_dir, McsRange::DEFAULT),
            process_type: DEFAULT_TYPE.into(),
            keep: false,
            enforcement: Enforcement::detect(),
            scratch: c.scratch.clone(),
        };
        let image = runner.run_image(template, tag, &folder.spec.tests).await;
        let report = corral_testrun::report::Report {
            enforcement: runner.enforcement,
            enforcement_note: runner.enforcement.describe().to_string(),
            images: vec![image],
        };
        let log = report.text();
        if report.exit_code() == 0 {
            Outcome::passed(log)
        } else {
            Outcome::failed(log)
        }
    }
}

/// The engine's name for the image a revision's build made.
pub fn local_image(template: &str, revision: u32) -> String {
    format!("corral-portal/{template}:{revision}")
}

/// Where a check's log is kept under the log directory, and the reference
/// the store records: `NAME/REVISION/CHECK.log`.
pub fn log_reference(template: &str, revision: u32, check: &str) -> String {
    format!("{template}/{revision}/{check}.log")
}

/// Reads a check's log, if kept.
pub fn read_log(log_dir: &Path, reference: &str) -> Option<String> {
    std::fs::read_to_string(log_dir.join(reference)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_lines_name_the_step_container() {
        assert_eq!(running_container(" ---> Running in 3f2a9b"), Some("3f2a9b"));
        assert_eq!(running_container("Step 2/3 : RUN x"), None);
        assert_eq!(running_container(" ---> Running in ../x"), None);
    }

    #[test]
    fn lint_fails_on_errors_only() {
        let bad = lint(b"FROM fedora:43\n");
        assert_eq!(bad.status, CheckStatus::Failed);
        assert!(bad.log.contains("CR001 error"), "{}", bad.log);
    }
}
