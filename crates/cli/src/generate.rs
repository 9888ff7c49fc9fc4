//! Man pages and shell completions, generated from the clap tree so they
//! never drift from it. `docs/man/` and `completions/` hold the checked-in
//! copies; CI regenerates them and fails on a difference.
//!
//! A page has clap_mangen's sections (NAME, SYNOPSIS, DESCRIPTION,
//! OPTIONS, SUBCOMMANDS, VERSION) and two of ours: EXIT STATUS (the
//! command's own `Exit 0: …` sentence, else corral's rule for every
//! command) and EXAMPLES (the `Examples:` block of the command's
//! `after_help`, else the command line of each subcommand).

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
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page(cmd, name)?)
        .with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands() {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// The page of `cmd`, named `name` (`corral-image-build`): clap_mangen's,
/// with EXIT STATUS and EXAMPLES before VERSION.
pub fn page(cmd: &clap::Command, name: &str) -> anyhow::Result<String> {
    let mut shown = cmd.clone().name(name.to_string());
    if after_help(cmd).trim_start().starts_with("Examples:") {
        // they are the EXAMPLES section, not clap_mangen's EXTRA
        shown = shown.after_help(None::<&str>).after_long_help(None::<&str>);
    }
    let mut buf = Vec::new();
    clap_mangen::Man::new(shown).render(&mut buf)?;
    let page = String::from_utf8(buf).context("a man page that is not UTF-8")?;
    let ours =
        section("EXIT STATUS", &exit_status(cmd)) + &section("EXAMPLES", &examples(cmd, name));
    Ok(match page.find(".SH VERSION") {
        Some(at) => format!("{}{ours}{}", &page[..at], &page[at..]),
        None => page + &ours,
    })
}

/// The exit codes every command keeps (crate docs of `corral-cli`).
const EXIT_RULE: &str = "0 success; 1 the command ran and the answer is \"no\" \
    (lint errors, damage found, no update); 2 it could not run (bad input, a failed \
    tool, usage errors). A closed standard output ends the command quietly with 0.";

/// The command's own `Exit 0: …` sentence, else [`EXIT_RULE`].
fn exit_status(cmd: &clap::Command) -> Vec<String> {
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let flat = about.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.find("Exit 0") {
        Some(at) => vec![flat[at..].to_string()],
        None => vec![EXIT_RULE.to_string()],
    }
}

/// The lines under `Examples:` in the command's after-help, else one
/// line per visible subcommand (`corral image build --help`) or, for a
/// leaf command, its usage.
fn examples(cmd: &clap::Command, name: &str) -> Vec<String> {
    if let Some((_, block)) = after_help(cmd).split_once("Examples:") {
        let lines: Vec<String> = block
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if !lines.is_empty() {
            return lines;
        }
    }
    let words = name.replace('-', " ");
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("{words} {} --help", s.get_name()))
        .collect();
    if !subs.is_empty() {
        return subs;
    }
    let mut usage = cmd.clone().name(words.clone()).bin_name(words);
    vec![usage
        .render_usage()
        .to_string()
        .trim_start_matches("Usage: ")
        .to_string()]
}

fn after_help(cmd: &clap::Command) -> String {
    cmd.get_after_long_help()
        .or(cmd.get_after_help())
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// A section of paragraphs, one per line.
fn section(title: &str, lines: &[String]) -> String {
    let mut roff = clap_mangen::roff::Roff::new();
    roff.control("SH", [title]);
    for line in lines {
        roff.control("PP", []);
        roff.text([clap_mangen::roff::roman(line.as_str())]);
    }
    roff.to_roff()
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
    use super::*;

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
            assert!(text.contains(".SH \"EXIT STATUS\""), "{page}: {text}");
            assert!(text.contains(".SH EXAMPLES"), "{page}: {text}");
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

    fn subcommand(path: &[&str]) -> clap::Command {
        let mut cmd = Cli::command().disable_help_subcommand(true);
        cmd.build();
        for name in path {
            cmd = cmd.find_subcommand(name).unwrap().clone();
        }
        cmd
    }

    #[test]
    fn a_commands_own_exit_codes_and_examples_make_its_sections() {
        let outdated = subcommand(&["image", "outdated"]);
        let text = page(&outdated, "corral-image-outdated").unwrap();
        let exit = &text[text.find(".SH \"EXIT STATUS\"").unwrap()..];
        assert!(
            exit.contains("Exit 0: all up to date; 1: some need a respin"),
            "{exit}"
        );
        let examples = &text[text.find(".SH EXAMPLES").unwrap()..];
        // roff escapes the dashes
        assert!(
            examples.contains(r"corral image outdated sample/base:43 \-\-json"),
            "{examples}"
        );
        assert!(!text.contains(".SH EXTRA"), "the examples once: {text}");
        // EXIT STATUS and EXAMPLES come before VERSION
        assert!(
            text.find(".SH EXAMPLES") < text.find(".SH VERSION"),
            "{text}"
        );
    }

    #[test]
    fn commands_without_their_own_get_the_rule_and_their_subcommands() {
        let image = subcommand(&["image"]);
        assert_eq!(exit_status(&image), [EXIT_RULE]);
        assert_eq!(
            examples(&image, "corral-image"),
            [
                "corral image build --help",
                "corral image inspect --help",
                "corral image outdated --help"
            ]
        );
    }
}
