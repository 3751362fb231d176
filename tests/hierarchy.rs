//! The hierarchy end to end, with real processes: a root node (`86`) on 127.0.0.2, an
//! industry node (`86.1000`) on 127.0.0.3 and an enterprise node (`86.1000.23`) on
//! 127.0.0.4, all on DNS port 53 under the zone `medid.test`; a device registered by its
//! manufacturer's DID at the enterprise node is resolved from the root by unbound (with
//! only a stub zone for the root), by `medid resolve --root` over UDP and HTTP, and by
//! the resolving proxy (HTTP and DNS); verified from the root's key down with
//! cosignatures by the nodes' witnesses; a forked log is refused by a witness; the
//! proxy survives the enterprise node going down and coming back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod support;

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Node, medid, ok, tool};

/// A free TCP port on `ip` (the delegation names each node's HTTP URL in advance).
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A key file in `dir` and its DID.
fn new_key(dir: &Path, file: &str) -> String {
    ok(dir, &["did", "new", "--out", file]).trim().to_owned()
}

/// The value after `prefix` on a line of `text`.
fn line_value(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {text}"))
        .trim()
        .to_owned()
}

/// The checkpoint verifier key of a log named `name` signed by the key in `file`.
fn log_vkey(dir: &Path, name: &str, did: &str) -> String {
    let did = medid_did::DidKey::parse(did).unwrap();
    let _ = dir;
    medid_registry::log::verifier_key(name, did.verifying_key())
}

fn get(url: &str) -> (u16, String, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent.get(url).call().unwrap();
    let cache = response
        .headers()
        .get("x-medid-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap(), cache)
}

fn post(url: &str, body: &[u8]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.post(url).send(body).unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// Waits until `check` holds (polling; at most 20 s).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// unbound with only a stub zone for `medid.test` at the root node, stopped on drop.
struct Unbound {
    child: Child,
    port: u16,
}

impl Unbound {
    fn start(dir: &Path) -> Self {
        let port = UdpSocket::bind("127.0.0.5:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "server:\n  interface: 127.0.0.5\n  port: {port}\n  do-daemonize: no\n  chroot: \"\"\n  \
             username: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  \
             logfile: \"\"\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n  \
             access-control: 127.0.0.0/8 allow\n  do-ip6: no\n  local-zone: \"test.\" nodefault\n\
             stub-zone:\n  name: \"medid.test\"\n  stub-addr: 127.0.0.2@53\n",
            dir = dir.display()
        );
        let path = dir.join("unbound.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("unbound")
            .args(["-d", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unbound must be installed (.ci/run installs it)");
        let unbound = Self { child, port };
        eventually("unbound answers", || {
            Command::new("dig")
                .args(["@127.0.0.5", "-p", &port.to_string(), "+time=1", "+tries=1"])
                .args(["medid.test", "SOA", "+short"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        });
        unbound
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn three_levels_from_the_root_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (root_port, industry_port, maker_port) = (
        free_port("127.0.0.2"),
        free_port("127.0.0.3"),
        free_port("127.0.0.4"),
    );
    let root_http = format!("http://127.0.0.2:{root_port}");
    let industry_http = format!("http://127.0.0.3:{industry_port}");
    let maker_http = format!("http://127.0.0.4:{maker_port}");

    // Keys: the child nodes' keys exist before their parents delegate to them.
    let industry_node = new_key(dir, "industry-node.key");
    let maker_node = new_key(dir, "maker-node.key");
    let industry_ctl = new_key(dir, "industry.key");
    let maker = new_key(dir, "maker.key");
    let industry_log = log_vkey(dir, "industry.medid.test", &industry_node);
    let maker_log = log_vkey(dir, "maker.medid.test", &maker_node);

    // The root: witnesses the two other logs.
    let init = ok(
        dir,
        &["--data", "root", "init", "--name", "root.medid.test"],
    );
    let root_log = line_value(&init, "verifier key:");
    let root = Node::start_with(
        dir,
        &[
            "--data",
            "root",
            "serve",
            "--zone",
            "medid.test",
            "--dns",
            "127.0.0.2:53",
            "--http",
            &format!("127.0.0.2:{root_port}"),
            "--rate-limit",
            "0",
            "--witness-for",
            &industry_log,
            "--witness-for",
            &maker_log,
            "--witness",
            &industry_http,
        ],
    );
    let root_witness = line_value(&root.log.join("\n"), "witness ");
    ok(
        dir,
        &[
            "prefix",
            "create",
            "86",
            "--controller",
            &industry_ctl,
            "--key",
            "root/admin.key",
            "--server",
            &root.http,
        ],
    );
    ok(
        dir,
        &[
            "delegate",
            "86.1000",
            "--controller",
            &industry_ctl,
            "--to-node",
            &industry_node,
            "--node-name",
            "industry.medid.test",
            "--dns",
            "127.0.0.3:53",
            "--http",
            &industry_http,
            "--key",
            "industry.key",
            "--server",
            &root.http,
        ],
    );

    // The industry node, set up from the root's delegation; witnesses root and maker.
    let init = ok(
        dir,
        &[
            "--data",
            "industry",
            "init",
            "--name",
            "industry.medid.test",
            "--parent",
            &root.http,
            "--prefix",
            "86.1000",
            "--node-key",
            "industry-node.key",
        ],
    );
    assert!(init.contains("apex 1000.86.hdl"), "{init}");
    let industry = Node::start_with(
        dir,
        &[
            "--data",
            "industry",
            "serve",
            "--dns",
            "127.0.0.3:53",
            "--http",
            &format!("127.0.0.3:{industry_port}"),
            "--rate-limit",
            "0",
            "--witness-for",
            &root_log,
            "--witness-for",
            &maker_log,
            "--witness",
            &root_http,
        ],
    );
    let industry_witness = line_value(&industry.log.join("\n"), "witness ");
    ok(
        dir,
        &[
            "delegate",
            "86.1000.23",
            "--controller",
            &maker,
            "--to-node",
            &maker_node,
            "--node-name",
            "maker.medid.test",
            "--dns",
            "127.0.0.4:53",
            "--http",
            &maker_http,
            "--key",
            "industry.key",
            "--server",
            &industry.http,
        ],
    );
    // A child serves only what was delegated to it: the industry node refuses to
    // register under 86.1000.23 (delegated on) and knows nothing of 87.
    let refused = medid(
        dir,
        &[
            "register",
            "86.1000.23/x",
            "--value",
            "DESC=x",
            "--key",
            "maker.key",
            "--server",
            &industry.http,
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("delegated to the node maker.medid.test")
    );

    // The enterprise node, from the industry node's delegation.
    ok(
        dir,
        &[
            "--data",
            "maker",
            "init",
            "--name",
            "maker.medid.test",
            "--parent",
            &industry.http,
            "--prefix",
            "86.1000.23",
            "--node-key",
            "maker-node.key",
        ],
    );
    let maker_args = [
        "--data",
        "maker",
        "serve",
        "--dns",
        "127.0.0.4:53",
        "--http",
        &format!("127.0.0.4:{maker_port}"),
        "--rate-limit",
        "0",
        "--witness",
        &root_http,
        "--witness",
        &industry_http,
    ];
    let mut enterprise = Node::start_with(dir, &maker_args);

    // The manufacturer registers itself and a device.
    ok(
        dir,
        &[
            "did",
            "register",
            "--key",
            "maker.key",
            "--name",
            "Pump Maker",
            "--role",
            "manufacturer",
            "--server",
            &enterprise.http,
        ],
    );
    ok(
        dir,
        &[
            "register",
            "86.1000.23/pump-7",
            "--value",
            "URL=https://maker.example/ifu/7",
            "--key",
            "maker.key",
            "--server",
            &enterprise.http,
        ],
    );
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
            &enterprise.http,
        ],
    );
    ok(
        dir,
        &[
            "register",
            "86.1000.23/pump-9",
            "--value",
            "URL=https://maker.example/ifu/9",
            "--key",
            "maker.key",
            "--server",
            &enterprise.http,
        ],
    );

    // DNS: the parents refer, the enterprise node answers.
    let referral = tool(
        "dig",
        &[
            "@127.0.0.2",
            "+norec",
            "pump-7.23.1000.86.hdl.medid.test",
            "TXT",
        ],
    );
    assert!(
        referral.contains("1000.86.hdl.medid.test.\t3600\tIN\tNS\th--ns.1000.86.hdl.medid.test."),
        "{referral}"
    );
    assert!(
        referral.contains("h--ns.1000.86.hdl.medid.test. 3600 IN\tA\t127.0.0.3"),
        "{referral}"
    );
    assert!(
        !referral.contains("flags: qr aa"),
        "a referral is not authoritative: {referral}"
    );
    let soa = tool(
        "dig",
        &["@127.0.0.4", "+norec", "23.1000.86.hdl.medid.test", "SOA"],
    );
    assert!(soa.contains("flags: qr aa"), "{soa}");
    let outside = tool(
        "dig",
        &["@127.0.0.4", "+norec", "pump.1000.86.hdl.medid.test", "TXT"],
    );
    assert!(
        outside.contains("status: REFUSED"),
        "the enterprise node answers only for its sub-zone: {outside}"
    );

    // unbound, knowing only the root, walks the referrals.
    let unbound = Unbound::start(dir);
    // The first walk may meet a lost datagram on a loaded machine; unbound's answer
    // must come within the deadline.
    let expected = "\"1 URL https://maker.example/ifu/7\"";
    let mut answer = String::new();
    let start = Instant::now();
    while answer.trim() != expected && start.elapsed() < Duration::from_secs(20) {
        let out = Command::new("dig")
            .args([
                "@127.0.0.5",
                "-p",
                &unbound.port.to_string(),
                "+time=2",
                "+tries=1",
            ])
            .args(["pump-7.23.1000.86.hdl.medid.test", "TXT", "+short"])
            .output()
            .expect("dig must be installed (.ci/run installs it)");
        answer = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    assert_eq!(answer.trim(), expected);

    // medid's own client, over UDP and HTTP.
    let walked = ok(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-7",
            "--root",
            "udp://127.0.0.2:53",
            "--trace",
        ],
    );
    assert!(
        walked.contains("hop 1: root udp://127.0.0.2:53"),
        "{walked}"
    );
    assert!(
        walked.contains("hop 3: 23.1000.86.hdl.medid.test udp://127.0.0.4:53"),
        "{walked}"
    );
    assert!(
        walked.contains("1 URL https://maker.example/ifu/7"),
        "{walked}"
    );
    let walked = ok(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-7",
            "--root",
            &root.http,
            "--trace",
        ],
    );
    assert!(walked.contains("hop 2: industry.medid.test"), "{walked}");
    assert!(walked.contains("\"responseCode\": 1"), "{walked}");

    // HTTP referral shape at the root.
    let (status, body, _) = get(&format!("{}/api/handles/86.1000.23/pump-7", root.http));
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["responseCode"], 301);
    assert_eq!(body["referral"]["node"]["http"], industry_http.as_str());

    // Trust from the root down, with cosignatures by the witnesses.
    eventually("the enterprise checkpoint carries two cosignatures", || {
        get(&format!("{}/checkpoint", enterprise.http))
            .1
            .matches('\u{2014}')
            .count()
            >= 3
    });
    eventually(
        "the root and industry checkpoints carry a cosignature",
        || {
            get(&format!("{}/checkpoint", root.http))
                .1
                .matches('\u{2014}')
                .count()
                >= 2
                && get(&format!("{}/checkpoint", industry.http))
                    .1
                    .matches('\u{2014}')
                    .count()
                    >= 2
        },
    );
    let verified = ok(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-7",
            "--root",
            &root.http,
            "--verify",
            &root_log,
            "--witness-key",
            &root_witness,
            "--witness-key",
            &industry_witness,
            "--min-cosignatures",
            "1",
        ],
    );
    assert!(verified.contains("verified hop 1 (root)"), "{verified}");
    assert!(
        verified.contains("delegates hdl:86.1000.23 to maker.medid.test"),
        "{verified}"
    );
    assert!(
        verified.contains("verified hop 3 (maker.medid.test)"),
        "{verified}"
    );
    // A wrong root key is refused at hop 1.
    let wrong = medid(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-7",
            "--root",
            &root.http,
            "--verify",
            &industry_log,
        ],
    );
    assert!(!wrong.status.success());
    let error = String::from_utf8_lossy(&wrong.stderr);
    assert!(error.contains("hop 1 (root)"), "{error}");
    // Too many cosignatures required is refused too.
    let strict = medid(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-7",
            "--root",
            &root.http,
            "--verify",
            &root_log,
            "--witness-key",
            &root_witness,
            "--min-cosignatures",
            "2",
        ],
    );
    assert!(
        String::from_utf8_lossy(&strict.stderr).contains("cosignature"),
        "{strict:?}"
    );

    // A fork of the enterprise log (same key, other entries) is refused by a witness.
    ok(
        dir,
        &[
            "--data",
            "fork",
            "init",
            "--name",
            "maker.medid.test",
            "--node-key",
            "maker-node.key",
        ],
    );
    for suffix in ["a", "b", "c", "d", "e", "f"] {
        ok(
            dir,
            &[
                "--data",
                "fork",
                "prefix",
                "create",
                &format!("86.1000.{suffix}"),
                "--controller",
                &maker,
                "--key",
                "fork/admin.key",
            ],
        );
    }
    let fork_checkpoint = ok(dir, &["--data", "fork", "log", "checkpoint"]);
    let fork_size: u64 = fork_checkpoint.lines().nth(1).unwrap().parse().unwrap();
    let cosigned = post(
        &format!("{}/add-checkpoint", root.http),
        format!("old 0\n\n{fork_checkpoint}").as_bytes(),
    );
    assert_eq!(cosigned.0, 409, "{cosigned:?}");
    let known: u64 = cosigned.1.trim().parse().unwrap();
    assert!(
        known > 0 && known < fork_size,
        "the witness cosigned {known}, the fork has {fork_size}"
    );
    let proof: Value = serde_json::from_str(&ok(
        dir,
        &[
            "--data",
            "fork",
            "log",
            "proof",
            "consistency",
            &known.to_string(),
            &fork_size.to_string(),
        ],
    ))
    .unwrap();
    let mut body = format!("old {known}\n");
    for hash in proof["proof"].as_array().unwrap() {
        body.push_str(hash.as_str().unwrap());
        body.push('\n');
    }
    body.push('\n');
    body.push_str(&fork_checkpoint);
    let refused = post(&format!("{}/add-checkpoint", root.http), body.as_bytes());
    assert_eq!(
        refused.0, 422,
        "a fork is not consistent with what the witness cosigned: {refused:?}"
    );

    // The resolving proxy.
    let proxy = Node::start_with(
        dir,
        &[
            "serve",
            "--proxy",
            "--root",
            &root.http,
            "--root-dns",
            "127.0.0.2:53",
            "--dns",
            "127.0.0.5:0",
            "--http",
            "127.0.0.5:0",
            "--upstream-timeout-ms",
            "500",
        ],
    );
    let stats = || -> u64 {
        let body: Value =
            serde_json::from_str(&get(&format!("{}/api/proxy/stats", proxy.http)).1).unwrap();
        body["upstreamRequests"].as_u64().unwrap()
    };
    let (status, body, cache) = get(&format!("{}/api/handles/86.1000.23/pump-7", proxy.http));
    assert_eq!((status, cache.as_deref()), (200, Some("miss")), "{body}");
    assert!(body.contains("https://maker.example/ifu/7"));
    assert_eq!(stats(), 3, "cold: root, industry, enterprise");
    let (status, _, cache) = get(&format!("{}/api/handles/86.1000.23/pump-7", proxy.http));
    assert_eq!((status, cache.as_deref()), (200, Some("hit")));
    assert_eq!(stats(), 3, "warm: from the cache");
    // Not found is cached negatively.
    let (status, _, _) = get(&format!("{}/api/handles/86.1000.23/none", proxy.http));
    assert_eq!(status, 404);
    let (_, _, cache) = get(&format!("{}/api/handles/86.1000.23/none", proxy.http));
    assert_eq!(cache.as_deref(), Some("hit"));
    // A burst of identical lookups: one upstream request (the referral is cached).
    let before = stats();
    let url = format!("{}/api/handles/86.1000.23/pump-8", proxy.http);
    std::thread::scope(|s| {
        for _ in 0..32 {
            s.spawn(|| assert_eq!(get(&url).0, 200));
        }
    });
    assert_eq!(
        stats() - before,
        1,
        "32 concurrent identical lookups, one upstream request"
    );
    // DNS through the proxy.
    let (host, port) = proxy.dns.rsplit_once(':').unwrap();
    let answer = tool(
        "dig",
        &[
            &format!("@{host}"),
            "-p",
            port,
            "pump-7.23.1000.86.hdl.medid.test",
            "TXT",
            "+short",
        ],
    );
    assert_eq!(answer.trim(), "\"1 URL https://maker.example/ifu/7\"");
    let tcp = tool(
        "dig",
        &[
            &format!("@{host}"),
            "-p",
            port,
            "+tcp",
            "pump-8.23.1000.86.hdl.medid.test",
            "TXT",
            "+short",
        ],
    );
    assert_eq!(
        tcp.trim(),
        "\"1 URL https://maker.example/ifu/8\"",
        "DNS over TCP"
    );
    let nx = tool(
        "dig",
        &[
            &format!("@{host}"),
            "-p",
            port,
            "none.23.1000.86.hdl.medid.test",
            "TXT",
        ],
    );
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");

    // The enterprise node goes down: cached answers are still served, new lookups fail
    // fast naming the hop, over HTTP (503) and DNS (SERVFAIL).
    assert_eq!(enterprise.stop(), Some(0));
    let (status, _, cache) = get(&format!("{}/api/handles/86.1000.23/pump-7", proxy.http));
    assert_eq!((status, cache.as_deref()), (200, Some("hit")));
    let started = Instant::now();
    let (status, body, _) = get(&format!("{}/api/handles/86.1000.23/pump-9", proxy.http));
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("maker.medid.test") && body.contains(&maker_http),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let servfail = tool(
        "dig",
        &[
            &format!("@{host}"),
            "-p",
            port,
            "+tries=1",
            "+time=5",
            "pump-9.23.1000.86.hdl.medid.test",
            "TXT",
        ],
    );
    assert!(servfail.contains("status: SERVFAIL"), "{servfail}");
    let walk = medid(
        dir,
        &[
            "resolve",
            "86.1000.23/pump-9",
            "--root",
            "udp://127.0.0.2:53",
            "--timeout-ms",
            "300",
        ],
    );
    assert!(
        String::from_utf8_lossy(&walk.stderr).contains("hop 3 (23.1000.86.hdl.medid.test) failed"),
        "{walk:?}"
    );

    // And comes back: the same lookups succeed.
    let enterprise = Node::start_with(dir, &maker_args);
    let (status, body, _) = get(&format!("{}/api/handles/86.1000.23/pump-9", proxy.http));
    assert_eq!(status, 200, "{body}");
    let answer = tool(
        "dig",
        &[
            &format!("@{host}"),
            "-p",
            port,
            "pump-9.23.1000.86.hdl.medid.test",
            "TXT",
            "+short",
        ],
    );
    assert_eq!(answer.trim(), "\"1 URL https://maker.example/ifu/9\"");
    drop((proxy, enterprise, industry, root, unbound));
}
