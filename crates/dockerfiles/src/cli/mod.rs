//! The `corral dockerfiles` subcommands: the clap tree and what each runs.
//! Output goes to the given writers (stdout and stderr from [`run`]);
//! errors are returned, and the binary maps them to exit code 2.

use crate::engine_build::{
    self, BuildProgress, DockerEngine, EngineImages, RegistryMap, RegistryMapping,
};
use crate::graph::Graph;
use crate::library::{context_hash, Library};
use crate::lint::{self, output::FileReport, Severity};
use crate::plan::{self, BuiltImages, StateFile, Trigger};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const DEFAULT_LIBRARY: &str = "dockerfiles";

#[derive(clap::Subcommand, Debug)]
pub enum DockerfilesCommand {
    /// Check Dockerfiles against the lint rules (docs/rules/); exits 1 on an error-severity finding
    Lint(LintArgs),
    /// Show the dependency graph of the library images
    Graph(GraphArgs),
    /// List the library images to rebuild, bases first
    Plan(PlanArgs),
    /// Build library images through the Docker Engine API, bases first; exits 1 when any failed
    Build(BuildArgs),
}

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Dockerfiles, or folders searched for Dockerfile, Containerfile, *.Dockerfile and Dockerfile.*
    #[arg(default_value = DEFAULT_LIBRARY)]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintFormat {
    /// `path:line:col: severity[ID] message`
    Text,
    Json,
    /// SARIF 2.1.0
    Sarif,
}

#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    /// The library folder
    #[arg(long, default_value = DEFAULT_LIBRARY)]
    pub library: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Text,
    Json,
    /// Graphviz
    Dot,
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The library folder
    #[arg(long, default_value = DEFAULT_LIBRARY)]
    pub library: PathBuf,
    /// Rebuild every image
    #[arg(long, conflicts_with_all = ["since", "base_changed"])]
    pub all: bool,
    /// Rebuild images with files changed since this git revision, and their dependents
    #[arg(long, value_name = "REV", conflicts_with = "base_changed")]
    pub since: Option<String>,
    /// Rebuild the dependents of a library image or of an external base image reference
    #[arg(long, value_name = "IMAGE")]
    pub base_changed: Option<String>,
    /// JSON file of built images (context hash, digest, base digests);
    /// without a mode flag, images whose context or bases differ from it are rebuilt
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Record the planned images as built in --state (for use after a build)
    #[arg(long, requires = "state")]
    pub mark_built: bool,
    /// Read what was built from the Docker Engine at URL (the images' labels
    /// and IDs, and the external bases' IDs) instead of --state
    #[arg(long, value_name = "URL", conflicts_with = "state")]
    pub engine: Option<String>,
    /// Take external FROM images named under FROM from TO (as `build` does)
    #[arg(long = "registry-map", value_name = "FROM=TO", requires = "engine")]
    pub registry_map: Vec<RegistryMapping>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Library images to build (default: all); their library bases must be built already
    pub names: Vec<String>,
    /// The library folder
    #[arg(long, default_value = DEFAULT_LIBRARY)]
    pub library: PathBuf,
    /// The Docker Engine API endpoint (unix://, tcp:// or http://)
    #[arg(long, value_name = "URL", env = "DOCKER_HOST", default_value = engine_build::DEFAULT_ENGINE)]
    pub engine: String,
    /// Push every tag as REGISTRY/<name>:<tag> (REGISTRY may have a path);
    /// credentials from CORRAL_REGISTRY_USER and CORRAL_REGISTRY_PASSWORD
    #[arg(long, value_name = "REGISTRY")]
    pub push: Option<String>,
    /// Images built at the same time
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Take external FROM images named under FROM from TO, e.g.
    /// quay.io/corral=127.0.0.1:5000/corral (repeatable)
    #[arg(long = "registry-map", value_name = "FROM=TO")]
    pub registry_map: Vec<RegistryMapping>,
    /// The network of the build containers
    #[arg(long, value_enum, default_value_t = BuildNetwork::None)]
    pub network: BuildNetwork,
    /// Build each image for every architecture its image.toml lists (other
    /// architectures emulated through qemu-user binfmt_misc), one at a
    /// time, and push one image index per tag (needs --push)
    #[arg(long, requires = "push")]
    pub all_platforms: bool,
    /// Build only the images `plan --engine` lists: changed, never built, or on a changed base
    #[arg(long)]
    pub changed: bool,
    /// The summary's format (build output goes to stderr)
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildNetwork {
    None,
    Host,
}

/// Runs a subcommand, writing results to stdout and summaries to stderr.
pub fn run(cmd: DockerfilesCommand) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = run_to(cmd, &mut out, &mut std::io::stderr())?;
    out.flush()?;
    Ok(ExitCode::from(code))
}

/// Runs a subcommand, writing results to `out` and summaries for people
/// (how many files were linted) to `err`; returns the exit code.
pub fn run_to(
    cmd: DockerfilesCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    match cmd {
        DockerfilesCommand::Lint(a) => lint_cmd(&a, out, err),
        DockerfilesCommand::Graph(a) => graph_cmd(&a, out),
        DockerfilesCommand::Plan(a) => plan_cmd(&a, out),
        DockerfilesCommand::Build(a) => build_cmd(&a, out),
    }
}

fn is_dockerfile_name(name: &str) -> bool {
    name == "Dockerfile"
        || name == "Containerfile"
        || name.ends_with(".Dockerfile")
        || name.ends_with(".Containerfile")
        || name.starts_with("Dockerfile.")
        || name.starts_with("Containerfile.")
}

/// The Dockerfiles named by `paths`: files as given, folders searched. A
/// folder with no file named like a Dockerfile is an error, so that a
/// typo or an unusual naming scheme does not pass as "no findings".
pub fn collect_dockerfiles(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        if meta.is_dir() {
            let before = files.len();
            for e in walkdir::WalkDir::new(p).sort_by_file_name() {
                let e = e.map_err(|e| crate::files::walk_error(p, e))?;
                if e.file_type().is_file() && is_dockerfile_name(&e.file_name().to_string_lossy()) {
                    files.push(e.into_path());
                }
            }
            if files.len() == before {
                bail!(
                    "{}: no Dockerfile in this folder (searched for Dockerfile, Containerfile, \
                     *.Dockerfile, *.Containerfile, Dockerfile.* and Containerfile.*); \
                     name other files on the command line to lint them",
                    p.display()
                );
            }
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn lint_cmd(a: &LintArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let files = collect_dockerfiles(&a.paths)?;
    let reports = lint_files(files)?;
    // On stderr, so that JSON and SARIF on stdout stay one document.
    writeln!(err, "{}", lint::output::summary(&reports))?;
    match a.format {
        LintFormat::Text => out.write_all(lint::output::text(&reports).as_bytes())?,
        LintFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&lint::output::json(&reports))?
        )?,
        LintFormat::Sarif => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&lint::output::sarif(&reports))?
        )?,
    }
    let failed = reports
        .iter()
        .flat_map(|r| &r.findings)
        .any(|f| f.severity == Severity::Error);
    Ok(u8::from(failed))
}

/// Files per thread below which another thread does not pay: a file takes
/// ~30 µs, and on a busy machine a second thread waits for a core longer
/// than a small corpus takes on one (58 files: 6.6 ms on one thread, 14.5
/// ms on two, at load average 6).
const FILES_PER_THREAD: usize = 128;

/// Reads and lints `files` on up to one thread per core, in contiguous
/// chunks so that the reports keep the order of `files`. The first file
/// that cannot be read, in that order, is the error.
fn lint_files(files: Vec<PathBuf>) -> anyhow::Result<Vec<FileReport>> {
    fn lint_one(path: PathBuf) -> anyhow::Result<FileReport> {
        let bytes = crate::files::read(&path, crate::files::CONFIG_LIMIT)?;
        Ok(FileReport {
            findings: lint::lint_bytes(&bytes),
            path,
        })
    }
    let wanted = files.len() / FILES_PER_THREAD;
    let threads = if wanted < 2 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(wanted))
    };
    if threads == 1 {
        return files.into_iter().map(lint_one).collect();
    }
    let chunk = files.len().div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let mut rest = files;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    chunks.push(rest);
    let mut chunks = chunks.into_iter();
    let mine = chunks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .map(|c| scope.spawn(|| c.into_iter().map(lint_one).collect::<Vec<_>>()))
            .collect();
        let mut reports: Vec<_> = mine.into_iter().map(lint_one).collect();
        for handle in others {
            match handle.join() {
                Ok(part) => reports.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        reports.into_iter().collect()
    })
}

fn load_graph(library: &Path) -> anyhow::Result<(Library, Graph)> {
    let lib = Library::load(library)
        .with_context(|| format!("loading the library {}", library.display()))?;
    let graph = Graph::build(&lib)?;
    Ok((lib, graph))
}

fn graph_cmd(a: &GraphArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let (_, graph) = load_graph(&a.library)?;
    match a.format {
        GraphFormat::Text => out.write_all(graph.render_text().as_bytes())?,
        GraphFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&graph.render_json())?
        )?,
        GraphFormat::Dot => out.write_all(graph.render_dot().as_bytes())?,
    }
    Ok(0)
}

fn plan_cmd(a: &PlanArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let (lib, graph) = load_graph(&a.library)?;
    let trigger = if a.all {
        Trigger::All
    } else if let Some(rev) = &a.since {
        Trigger::Files(changed_files(&a.library, rev)?)
    } else if let Some(img) = &a.base_changed {
        Trigger::BaseChanged(img.clone())
    } else {
        Trigger::Changed
    };
    let mut hashes = BTreeMap::new();
    for (name, img) in &lib.images {
        let h = context_hash(&img.dir)
            .with_context(|| format!("hashing the build context of {name}"))?;
        hashes.insert(name.clone(), h);
    }
    let mut state = match &a.state {
        Some(p) => StateFile::load(p)?,
        None => StateFile::default(),
    };
    let from_engine = match &a.engine {
        Some(url) => {
            let map = RegistryMap::new(a.registry_map.clone());
            Some(runtime()?.block_on(async {
                let engine = DockerEngine::connect(url).await?;
                EngineImages::load(&engine, &lib, &graph, &map, None).await
            })?)
        }
        None => None,
    };
    let built: &dyn BuiltImages = match &from_engine {
        Some(e) => e,
        None => &state,
    };
    let plan = plan::plan(&graph, &trigger, &hashes, built)?;
    match a.format {
        PlanFormat::Text => out.write_all(plan.render_text().as_bytes())?,
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?,
    }
    if a.mark_built {
        state.record_plan(&plan, &graph, &hashes);
        state.save()?;
    }
    Ok(0)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn build_cmd(a: &BuildArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let (lib, graph) = load_graph(&a.library)?;
    let opts = engine_build::BuildOptions {
        images: a.names.clone(),
        changed_only: a.changed,
        push: a.push.clone(),
        credentials: engine_build::Credentials::from_env(),
        jobs: usize::from(a.jobs),
        registry_map: RegistryMap::new(a.registry_map.clone()),
        network: match a.network {
            BuildNetwork::None => "none".into(),
            BuildNetwork::Host => "host".into(),
        },
        all_platforms: a.all_platforms,
    };
    let progress = BuildProgress::for_stderr();
    let summary = runtime()?.block_on(async {
        let engine = DockerEngine::connect(&a.engine).await?;
        engine_build::build_library(&engine, &lib, &graph, &opts, &progress).await
    })?;
    match a.format {
        PlanFormat::Text => out.write_all(summary.render_text().as_bytes())?,
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?,
    }
    Ok(u8::from(!summary.success()))
}

/// Files changed since `rev` (committed, staged, unstaged and untracked),
/// relative to the library folder.
fn changed_files(library: &Path, rev: &str) -> anyhow::Result<Vec<String>> {
    let git = |args: &[&str]| -> anyhow::Result<String> {
        let o = std::process::Command::new("git")
            .arg("-C")
            .arg(library)
            .args(args)
            .output()
            .context("running git")?;
        if !o.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let prefix = git(&["rev-parse", "--show-prefix"])?.trim().to_string();
    let mut files: Vec<String> = git(&["diff", "--name-only", rev, "--"])
        .with_context(|| format!("listing files changed since {rev}"))?
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_string))
        .collect();
    files.extend(
        git(&["ls-files", "--others", "--exclude-standard"])?
            .lines()
            .map(str::to_string),
    );
    Ok(files)
}

#[cfg(test)]
mod tests;
