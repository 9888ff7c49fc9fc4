//! Readiness probes run inside a container's network namespace, so a
//! service in a `--network none` container can be reached without the image
//! having any client tools.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What to probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub port: u16,
    /// An HTTP path to GET; without it, a TCP connect.
    pub http: Option<String>,
    pub status: u16,
    pub timeout: Duration,
}

/// Probes `127.0.0.1:port` in the network namespace of process `pid`
/// until it answers as expected or the timeout passes. Blocking; runs on
/// its own thread because `setns` moves the calling thread.
pub fn probe_in_netns(pid: u32, probe: Probe) -> Result<String, String> {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| format!("opening the network namespace of process {pid}: {e}"))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| format!("entering the network namespace of process {pid}: {e}"))?;
        poll(pid, &probe)
    })
    .join()
    .unwrap_or_else(|_| Err("the probe thread panicked".into()))
}

fn poll(pid: u32, probe: &Probe) -> Result<String, String> {
    let deadline = Instant::now() + probe.timeout;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(format!("the service exited before it was ready ({last})"));
        }
        match once(probe) {
            Ok(m) => return Ok(m),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!(
        "not ready after {} s: {last}",
        probe.timeout.as_secs()
    ))
}

fn once(probe: &Probe) -> Result<String, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, probe.port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connecting to port {}: {e}", probe.port))?;
    let Some(path) = &probe.http else {
        return Ok(format!("port {} accepts connections", probe.port));
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // one write: `write!` would send the request in pieces, and a server
    // that answers the first piece and closes turns the rest into EPIPE
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: corral-test\r\n\r\n");
    s.write_all(request.as_bytes())
        .map_err(|e| format!("sending GET {path}: {e}"))?;
    let mut head = [0u8; 64];
    let n = s
        .read(&mut head)
        .map_err(|e| format!("reading the answer to GET {path}: {e}"))?;
    let status = parse_status(&head[..n]).ok_or_else(|| {
        format!(
            "GET {path} answered {:?}",
            String::from_utf8_lossy(&head[..n])
        )
    })?;
    if status == probe.status {
        Ok(format!("GET {path} answered {status}"))
    } else {
        Err(format!(
            "GET {path} answered {status}, want {}",
            probe.status
        ))
    }
}

/// The status code of an HTTP/1.x status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut it = line.split_whitespace();
    it.next()?.starts_with("HTTP/1.").then_some(())?;
    it.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.1 404 Not Found\r\nServer: x"),
            Some(404)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn probes_a_listener_in_our_own_namespace() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            // One thread per connection, and an answer only to a request:
            // a bare readiness connect must not hold up the next probe.
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                std::thread::spawn(move || {
                    // the whole request head, then the answer
                    let mut head = Vec::new();
                    let mut buf = [0u8; 512];
                    while !head.ends_with(b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    let _ = s.write_all(b"HTTP/1.0 204 No Content\r\n\r\n");
                });
            }
        });
        let probe = |http: Option<&str>, status| Probe {
            port,
            http: http.map(str::to_string),
            status,
            timeout: Duration::from_secs(2),
        };
        let me = std::process::id();
        assert!(probe_in_netns(me, probe(None, 200)).is_ok());
        assert_eq!(
            probe_in_netns(me, probe(Some("/"), 204)).unwrap(),
            "GET / answered 204"
        );
        let e = probe_in_netns(me, probe(Some("/"), 200)).unwrap_err();
        assert!(e.contains("answered 204, want 200"), "{e}");
    }
}
