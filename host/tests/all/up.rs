//! `roster up` as a separate process: it builds, signs, publishes and installs the worker
//! library through the embedded registry, loads the demo business, runs with the day's
//! activity and its console, stops cleanly on Ctrl-C and resumes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::serve_process::{free_port, http};

pub(crate) struct Up {
    pub(crate) child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    pub(crate) fn start(data: &std::path::Path, port: u16) -> Up {
        Up::start_with(data, port, &[])
    }

    /// `roster up` with more arguments.
    pub(crate) fn start_with(data: &std::path::Path, port: u16, more: &[&str]) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--data-dir")
            .arg(data)
            .args(["up", "--pace-ms", "100", "--summary-s", "1", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(more)
            // The plugins are built with the test programs' compiled dependencies.
            .env(
                "CARGO_TARGET_DIR",
                test_programs_artifacts::GUEST_TARGET_DIR,
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output until a line satisfies `wanted`; panics with the output so far after
    /// `limit`.
    pub(crate) fn until(&mut self, limit: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "roster up did not print what was expected:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Ctrl-C, and the exit status.
    pub(crate) fn interrupt(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status, self.seen);
            }
            assert!(
                Instant::now() < deadline,
                "roster up did not stop on Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn roster_up_runs_the_worker_library_on_the_demo_business_and_resumes() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = Up::start(data.path(), port);
    let installed = up.until(Duration::from_secs(600), |l| l.starts_with("[3/5]"));
    assert!(
        installed
            .contains("16 workers installed through the signed install flow (16 new this run)"),
        "{installed}"
    );
    let loaded = up.until(Duration::from_secs(60), |l| l.starts_with("[4/5]"));
    assert!(loaded.contains("loaded the demo business"), "{loaded}");
    up.until(Duration::from_secs(60), |l| l.starts_with("[5/5]"));
    // Work accumulates: executions, actions held for approval, escalation paths taken.
    up.until(Duration::from_secs(120), |l| l.contains("[escalation path"));
    up.until(Duration::from_secs(60), |l| {
        l.starts_with("── ") && !l.contains(" 0 actions held")
    });
    let token = std::fs::read_to_string(data.path().join("up/api-token")).unwrap();
    let auth = [("authorization", format!("Bearer {}", token.trim()))];
    let (status, body) = http(port, "GET", "/v1/executions", &auth, b"").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("ticket-triage") || body.contains("new-lead-enricher"),
        "{body}"
    );
    let (status, body) = http(port, "GET", "/v1/approvals?status=pending", &auth, b"").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"pending\""), "{body}");
    let (status, body) = http(port, "GET", "/v1/models", &auth, b"").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("ticket-category") || body.contains("alert-category"),
        "{body}"
    );
    let (status, body) = http(port, "POST", "/v1/audit/verify", &auth, b"").unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, output) = up.interrupt();
    assert!(status.success(), "{status}: {}", output.join("\n"));
    assert!(output.iter().any(|l| l.starts_with("stopping:")));

    // Again: nothing is installed or loaded twice, the activity goes on.
    let mut again = Up::start(data.path(), port);
    let first = again.until(Duration::from_secs(60), |l| l.starts_with("roster up:"));
    assert!(first.contains("resuming"), "{first}");
    let installed = again.until(Duration::from_secs(300), |l| l.starts_with("[3/5]"));
    assert!(installed.contains("(0 new this run)"), "{installed}");
    let loaded = again.until(Duration::from_secs(60), |l| l.starts_with("[4/5]"));
    assert!(loaded.contains("resuming"), "{loaded}");
    again.until(Duration::from_secs(60), |l| l.starts_with("  ▸ "));
    let (status, _) = again.interrupt();
    assert!(status.success());
}
