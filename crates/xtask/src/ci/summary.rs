//! The test runner's output, passed on as it comes, and its summary line,
//! which the suite prints again as its last line.

use std::io::{Read, Write};
use std::process::Command;

use crate::workspace;
use crate::Failure;

/// Runs the test runner with its stdout and stderr in one stream, copied
/// to `out` as it comes; returns its status and its last summary line.
pub fn run_teeing_summary(
    mut cmd: Command,
    out: &mut dyn Write,
) -> Result<(std::process::ExitStatus, Option<String>), Failure> {
    let (mut reader, writer) = std::io::pipe()?;
    cmd.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::usage(format!("running {}: {e}", workspace::describe(&cmd))))?;
    // the command holds the pipe's write ends; the read end sees EOF only
    // once they are closed
    drop(cmd);
    let mut lines = SummaryFinder::default();
    let mut buf = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let _ = out.write_all(&buf[..n]);
        let _ = out.flush();
        lines.feed(&buf[..n]);
    }
    let status = child.wait()?;
    Ok((status, lines.finish()))
}

/// Keeps the last summary line of a test run's output: nextest's
/// `Summary [ 1.2s] …`, or `test result: …` of `cargo test`.
#[derive(Default)]
struct SummaryFinder {
    partial: Vec<u8>,
    last: Option<String>,
}

impl SummaryFinder {
    fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(at) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=at).collect();
            self.consider(&String::from_utf8_lossy(&line[..at]));
        }
    }

    fn consider(&mut self, line: &str) {
        let line = line.trim_end_matches('\r');
        if line.trim_start_matches(' ').starts_with("Summary [") || line.starts_with("test result:")
        {
            self.last = Some(line.to_string());
        }
    }

    fn finish(mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        self.consider(&String::from_utf8_lossy(&rest));
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_summary_line_across_chunks() {
        let mut finder = SummaryFinder::default();
        finder.feed(b"test result: ok. 3 passed\n   Compiling x\n");
        finder.feed(b"     Summary [  12.5");
        finder.feed(b"s] 40 tests run: 40 passed, 2 skipped\n    PASS foo\n");
        assert_eq!(
            finder.finish().as_deref(),
            Some("     Summary [  12.5s] 40 tests run: 40 passed, 2 skipped")
        );

        let mut cargo_test = SummaryFinder::default();
        cargo_test.feed(b"test result: ok. 1 passed\ntest result: FAILED. 2 passed; 1 failed");
        assert_eq!(
            cargo_test.finish().as_deref(),
            Some("test result: FAILED. 2 passed; 1 failed")
        );

        let mut none = SummaryFinder::default();
        none.feed(b"error: could not compile\nno Summary [ here\n");
        assert_eq!(none.finish(), None);
    }

    #[test]
    fn the_test_runners_output_is_read_to_the_end() {
        let mut cmd = Command::new("bash");
        cmd.args([
            "-c",
            "echo out; echo '     Summary [ 1s] 1 test run' >&2; echo 'test result: x'; exit 3",
        ]);
        let mut out = Vec::new();
        let (status, summary) = run_teeing_summary(cmd, &mut out).unwrap();
        assert_eq!(status.code(), Some(3));
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("out\n") && out.contains("Summary ["),
            "{out}"
        );
        assert_eq!(summary.as_deref(), Some("test result: x"));
    }
}
