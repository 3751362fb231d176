//! Helpers shared by the end-to-end tests: a running `medid serve` ([`Node`]) and the
//! `medid` command.

// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// A running `medid serve`, stopped (SIGTERM) when dropped.
pub(crate) struct Node {
    child: Option<Child>,
    /// `http://HOST:PORT`.
    pub(crate) http: String,
    /// `HOST:PORT` of its DNS (UDP).
    pub(crate) dns: String,
    /// The lines it printed until it listened.
    pub(crate) log: Vec<String>,
}

impl Node {
    /// `medid serve` on ports chosen by the system, in `dir`.
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_with(
            dir,
            &["serve", "--dns", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        )
    }

    /// `medid ARGS` (a `serve`), in `dir`, once it listens on HTTP and DNS.
    pub(crate) fn start_with(dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_medid"))
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut http, mut dns, mut log) = (None, None, Vec::new());
        while http.is_none() || dns.is_none() {
            let line = lines
                .next()
                .expect("medid serve exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("http ") {
                http = Some(format!("http://{addr}"));
            }
            if let Some(addr) = line.strip_prefix("dns udp ") {
                dns = Some(addr.to_owned());
            }
            log.push(line);
        }
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child: Some(child),
            http: http.unwrap(),
            dns: dns.unwrap(),
            log,
        }
    }

    /// Sends SIGTERM and waits; returns the exit status code.
    pub(crate) fn stop(&mut self) -> Option<i32> {
        let child = self.child.as_mut()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        self.child = None;
        status.code()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `medid ARGS` in `dir`.
pub(crate) fn medid(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medid"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Runs `medid ARGS` in `dir`, which must succeed; its standard output.
pub(crate) fn ok(dir: &Path, args: &[&str]) -> String {
    let out = medid(dir, args);
    assert!(
        out.status.success(),
        "medid {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs another program, which must succeed; its standard output.
pub(crate) fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (.ci/run installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
