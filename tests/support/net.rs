//! Loopback ports, HTTP GETs with curl, and stopping servers.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::require_tool;

/// A loopback port nothing listens on now (the kernel picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a loopback port")
        .local_addr()
        .unwrap()
        .port()
}

/// `GET url` with curl; the body when the status is 2xx.
pub fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "10", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits up to 30 s for `url` to answer 2xx; panics with `log` otherwise.
pub fn wait_http(url: &str, what: &str, log: &Path) {
    require_tool("curl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http_get(url).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not answer {url} in 30 s; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// SIGTERM, then SIGKILL if `child` has not exited within `grace`.
pub fn stop_child(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    wait_or_kill(child, grace);
}

/// Waits up to `grace` for `child` to exit, then kills it.
pub fn wait_or_kill(child: &mut Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
