//! Per-step progress on stderr: a line per step and item, and a spinner
//! while an item runs when stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct StepProgress {
    terminal: bool,
    bar: Option<ProgressBar>,
}

impl StepProgress {
    pub fn for_stderr() -> StepProgress {
        StepProgress {
            terminal: std::io::stderr().is_terminal(),
            bar: None,
        }
    }

    /// `==> 2/4 curated library`.
    pub fn step(&mut self, n: usize, of: usize, title: &str) {
        self.clear();
        eprintln!("==> {n}/{of} {title}");
    }

    /// An item starts `what`.
    pub fn item(&mut self, name: &str, what: &str) {
        self.clear();
        if self.terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("    {spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("{name}: {what}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
        } else {
            eprintln!("    {name}: {what}");
        }
    }

    /// A line that stays.
    pub fn done(&mut self, name: &str, what: &str) {
        self.clear();
        eprintln!("    {name}: {what}");
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for StepProgress {
    fn drop(&mut self) {
        self.clear();
    }
}
