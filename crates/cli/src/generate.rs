//! Man pages and shell completions, generated from the clap tree so they
//! never drift from it. `docs/man/` and `completions/` hold the checked-in
//! copies; CI regenerates them and fails on a difference.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Man pages for corral and every subcommand, into DIR.
    Man { dir: PathBuf },
    /// Completion scripts for bash, zsh and fish, into DIR.
    Completions { dir: PathBuf },
}

pub fn run(cmd: GenerateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GenerateCommand::Man { dir } => man_pages(&dir)?,
        GenerateCommand::Completions { dir } => completions(&dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `corral.1`, `corral-image.1`, `corral-image-build.1`, …
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    write_pages(&cmd, "corral", dir)
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let page = cmd.clone().name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands() {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// Writes `corral.bash`, `_corral` (zsh) and `corral.fish`.
pub fn completions(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "corral", dir)
            .with_context(|| format!("writing {shell} completions into {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_pages_for_every_visible_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        super::man_pages(dir.path()).unwrap();
        for page in [
            "corral.1",
            "corral-image.1",
            "corral-image-build.1",
            "corral-tree-build.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH"), "{page} is not a man page");
        }
        assert!(
            !dir.path().join("corral-generate.1").exists(),
            "hidden commands get no page"
        );
        super::completions(dir.path()).unwrap();
        let bash = std::fs::read_to_string(dir.path().join("corral.bash")).unwrap();
        assert!(
            bash.contains("image__build") || bash.contains("image,build"),
            "bash completion lacks image build"
        );
    }
}
