//! `corral portal`: the portal from the command line (docs/portal.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::model::TemplateKind;

#[derive(Subcommand, Debug)]
pub enum PortalCommand {
    /// Submit a template folder to a portal: packed as a tar.gz, uploaded
    /// through the portal's pages after signing in; prints the template's
    /// page. The same name again is the next revision.
    #[command(after_help = "Examples:
  corral portal submit hello/ --to https://mirror.example/community --creds ann:PASSWORD
  CORRAL_PORTAL_CREDS=ann:PASSWORD corral portal submit hello/ --to http://127.0.0.1:5000/community --json")]
    Submit(SubmitArgs),
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The template's folder (Dockerfile, image.toml, help.md, …)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The portal: the mirror's URL with /community
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The account to sign in as
    #[arg(
        long,
        env = "CORRAL_PORTAL_CREDS",
        value_name = "USER:PASS",
        hide_env_values = true
    )]
    pub creds: String,
    /// The template's name (default: the folder's name)
    #[arg(long)]
    pub name: Option<String>,
    /// dockerfile-folder or tree-recipe
    #[arg(long, default_value = "dockerfile-folder")]
    pub kind: TemplateKind,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: PortalCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PortalCommand::Submit(a) => submit(a),
    }
}

fn submit(a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let (user, password) = a
        .creds
        .split_once(':')
        .context("--creds must be USER:PASS")?;
    let name = match &a.name {
        Some(n) => n.clone(),
        None => std::path::absolute(&a.dir)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .context("the folder has no name: give --name")?,
    };
    anyhow::ensure!(a.dir.is_dir(), "{} is not a folder", a.dir.display());
    let archive = crate::remote::pack(&a.dir, &name)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let s = rt.block_on(crate::remote::submit(
        &a.to,
        (user, password),
        &name,
        a.kind,
        archive,
    ))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("{} revision {}: {}", s.template, s.revision, s.url);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: PortalCommand,
    }

    #[test]
    fn parses_submit() {
        let c = Cli::try_parse_from([
            "portal",
            "submit",
            "hello",
            "--to",
            "http://x/community",
            "--creds",
            "a:b",
            "--json",
        ])
        .unwrap();
        let PortalCommand::Submit(s) = c.cmd;
        assert_eq!(s.dir, PathBuf::from("hello"));
        assert_eq!(s.kind, TemplateKind::DockerfileFolder);
        assert!(s.json);
    }
}
