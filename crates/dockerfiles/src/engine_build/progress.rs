//! Build output on stderr: every line prefixed with its image when stderr
//! is not a terminal; one spinner per running image (with its last line)
//! when it is.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;

#[derive(Debug)]
pub enum BuildProgress {
    Lines,
    Bars {
        multi: MultiProgress,
        bars: Mutex<BTreeMap<String, ProgressBar>>,
    },
}

impl BuildProgress {
    /// Bars when stderr is a terminal, lines otherwise.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bars {
                multi: MultiProgress::new(),
                bars: Mutex::new(BTreeMap::new()),
            }
        } else {
            Self::Lines
        }
    }

    /// A line of `image`'s build or push output.
    pub fn line(&self, image: &str, line: &str) {
        match self {
            Self::Lines => eprintln!("[{image}] {}", line.trim_end()),
            Self::Bars { multi, bars } => {
                let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
                let bar = bars.entry(image.to_string()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b.set_prefix(image.to_string());
                    b.enable_steady_tick(std::time::Duration::from_millis(120));
                    b
                });
                bar.set_message(line.trim().to_string());
            }
        }
    }

    /// `image` is done: `outcome` is `built`, `failed: …` and the like.
    pub fn finish(&self, image: &str, outcome: &str) {
        match self {
            Self::Lines => eprintln!("[{image}] {outcome}"),
            Self::Bars { multi, bars } => {
                let bar = bars.lock().unwrap_or_else(|e| e.into_inner()).remove(image);
                if let Some(b) = bar {
                    b.finish_and_clear();
                    multi.remove(&b);
                }
                let _ = multi.println(format!("{image}: {outcome}"));
            }
        }
    }
}
