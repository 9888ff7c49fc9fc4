//! The stages' wall times and the suite's last-but-one line.

use std::time::Instant;

/// The stages' wall times.
pub struct Timing {
    start: Instant,
    done: Vec<(String, u64)>,
    current: Option<(String, Instant)>,
}

impl Timing {
    pub fn new() -> Self {
        Timing {
            start: Instant::now(),
            done: Vec::new(),
            current: None,
        }
    }

    /// Ends the running stage and starts the next one.
    pub fn stage(&mut self, name: &str) {
        self.end();
        println!("==> {name}");
        self.current = Some((name.to_string(), Instant::now()));
    }

    /// Ends the running stage; its name.
    pub fn end(&mut self) -> Option<String> {
        let (name, started) = self.current.take()?;
        self.done.push((name.clone(), started.elapsed().as_secs()));
        Some(name)
    }

    pub fn line(&self) -> String {
        timing_line(&self.done, self.start.elapsed().as_secs())
    }
}

/// `timing: STAGE Ns | STAGE Ns | total Ns`.
fn timing_line(stages: &[(String, u64)], total: u64) -> String {
    let mut line = String::from("timing: ");
    for (name, secs) in stages {
        line += &format!("{name} {secs}s | ");
    }
    line + &format!("total {total}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_line_lists_stages_then_the_total() {
        let stages = vec![
            ("setup: Debian packages".to_string(), 3),
            ("cargo fmt --check".to_string(), 1),
        ];
        assert_eq!(
            timing_line(&stages, 5),
            "timing: setup: Debian packages 3s | cargo fmt --check 1s | total 5s"
        );
        assert_eq!(timing_line(&[], 0), "timing: total 0s");
    }

    #[test]
    fn a_failed_stage_is_ended_and_named() {
        let mut timing = Timing::new();
        timing.stage("a");
        timing.stage("b");
        assert_eq!(timing.end().as_deref(), Some("b"));
        assert_eq!(timing.end(), None);
        assert_eq!(timing.done.len(), 2);
        assert!(timing.line().starts_with("timing: a 0s | b 0s | total "));
    }
}
