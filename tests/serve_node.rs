//! A real `medid serve` on ports chosen by the system: the embedded default node
//! created on first start, writes through `--server`, reads over HTTP and DNS (medid's
//! own client, dig and kdig), a read after a write never stale, clean shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// A running `medid serve`, stopped (SIGTERM) when dropped.
struct Node {
    child: Option<Child>,
    http: String,
    dns: String,
    log: Vec<String>,
}

impl Node {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_medid"))
            .args(["serve", "--dns", "127.0.0.1:0", "--http", "127.0.0.1:0"])
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
    fn stop(&mut self) -> Option<i32> {
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

fn medid(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medid"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = medid(dir, args);
    assert!(
        out.status.success(),
        "medid {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tool(program: &str, args: &[&str]) -> String {
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

#[test]
fn the_main_job_from_first_start_to_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut node = Node::start(dir);
    assert!(
        node.log.iter().any(|l| l.starts_with("admin key:")),
        "{:?}",
        node.log
    );
    assert!(
        dir.join("medid-data/node.json").exists(),
        "the embedded default lives in ./medid-data"
    );

    let maker = ok(dir, &["did", "new", "--out", "maker.key"])
        .trim()
        .to_owned();
    ok(
        dir,
        &[
            "prefix",
            "create",
            "86.1000.23",
            "--controller",
            &maker,
            "--key",
            "medid-data/admin.key",
            "--server",
            &node.http,
        ],
    );
    let receipt: Value = serde_json::from_str(&ok(
        dir,
        &[
            "register",
            "86.1000.23/pump-7",
            "--value",
            "URL=https://maker.example/ifu/7",
            "--value",
            "DESC=infusion pump",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    ))
    .unwrap();
    assert_eq!(receipt["leafIndex"], 1);

    // HTTP, through medid's own client.
    let record: Value = serde_json::from_str(&ok(
        dir,
        &["resolve", "86.1000.23/pump-7", "--server", &node.http],
    ))
    .unwrap();
    assert_eq!(record["responseCode"], 1);
    assert_eq!(
        record["values"][0]["data"]["value"],
        "https://maker.example/ifu/7"
    );

    // DNS over UDP: medid's client, dig and kdig, all without warnings.
    let (host, port) = node.dns.rsplit_once(':').unwrap();
    let answer = ok(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-7",
            "--server",
            &format!("udp://{}", node.dns),
        ],
    );
    assert!(answer.contains("https://maker.example/ifu/7"), "{answer}");
    let name = "pump-7.23.1000.86.hdl.medid.test";
    let dig = tool(
        "dig",
        &["+norec", "-p", port, &format!("@{host}"), name, "TXT"],
    );
    assert!(
        dig.contains("status: NOERROR") && dig.contains("https://maker.example/ifu/7"),
        "{dig}"
    );
    assert!(!dig.to_lowercase().contains("warning"), "{dig}");
    let kdig = tool(
        "kdig",
        &["-p", port, &format!("@{host}"), name, "TXT", "+tcp"],
    );
    assert!(
        kdig.contains("NOERROR") && kdig.contains("https://maker.example/ifu/7"),
        "{kdig}"
    );
    assert!(!kdig.to_lowercase().contains("warning"), "{kdig}");

    // A read after a write never sees the old value (both front ends cache).
    ok(
        dir,
        &[
            "update",
            "86.1000.23/pump-7",
            "--value",
            "URL=https://maker.example/ifu/7-v2",
            "--expected-version",
            "1",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    );
    let record: Value = serde_json::from_str(&ok(
        dir,
        &["resolve", "86.1000.23/pump-7", "--server", &node.http],
    ))
    .unwrap();
    assert_eq!(
        record["values"][0]["data"]["value"],
        "https://maker.example/ifu/7-v2"
    );
    let dig = tool(
        "dig",
        &[
            "+norec",
            "+short",
            "-p",
            port,
            &format!("@{host}"),
            name,
            "TXT",
        ],
    );
    assert!(dig.contains("ifu/7-v2"), "{dig}");

    // A cached NXDOMAIN goes as soon as the name is registered.
    let new_name = "pump-8.23.1000.86.hdl.medid.test";
    let dig = tool(
        "dig",
        &["+norec", "-p", port, &format!("@{host}"), new_name, "TXT"],
    );
    assert!(dig.contains("status: NXDOMAIN"), "{dig}");
    ok(
        dir,
        &[
            "register",
            "86.1000.23/pump-8",
            "--value",
            "URL=https://maker.example/ifu/8",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    );
    let dig = tool(
        "dig",
        &["+norec", "-p", port, &format!("@{host}"), new_name, "TXT"],
    );
    assert!(
        dig.contains("status: NOERROR") && dig.contains("ifu/8"),
        "{dig}"
    );

    // Refusals come back with their reason and exit 1.
    let out = medid(
        dir,
        &[
            "register",
            "86.1000.23/pump-7",
            "--value",
            "URL=x",
            "--key",
            "maker.key",
            "--server",
            &node.http,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(node.stop(), Some(0), "SIGTERM shuts the node down cleanly");
    // Everything acknowledged is there after the restart, and the node verifies.
    assert!(ok(dir, &["verify"]).starts_with("ok: 4 entries"));
}
