//! The DNS front end seen by the real tools: `dig` (BIND, Debian package dnsutils) and
//! `kdig` (Knot, knot-dnsutils) parse every answer without a warning, and NSD's
//! `nsd-checkzone` (nsd) accepts the exported zone file. These tests fail, not skip,
//! when a tool is missing: the CI installs all three.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

mod dns_support;

use std::process::Command;

use dns_support::{TestNode, TestServer, ZONE, fqdn};
use medid_registry::dnsname::identifier_name;
use medid_registry::id::Identifier;
use medid_resolver::dns::{Zone, ZoneConfig, export_zone};

fn name_of(id: &str) -> String {
    fqdn(&identifier_name(&Identifier::parse(id).unwrap()))
}

/// Runs `tool` with `args`; it must exist, succeed and warn about nothing. Returns its
/// standard output.
fn run(tool: &str, args: &[&str]) -> String {
    run_allowing(tool, args, None)
}

/// [`run`], allowing warnings that contain `allowed`.
fn run_allowing(tool: &str, args: &[&str], allowed: Option<&str>) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "`{tool}` could not run ({e}); install it (Debian: dnsutils for dig, \
             knot-dnsutils for kdig, nsd for nsd-checkzone)"
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {stdout}{stderr}"
    );
    for line in stdout.lines().chain(stderr.lines()) {
        if allowed.is_some_and(|allowed| line.contains(allowed)) {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        assert!(
            !lower.contains("warning") && !lower.contains("malformed") && !lower.contains("bad "),
            "{tool} {args:?} warned: {line}\n{stdout}{stderr}"
        );
    }
    stdout
}

/// `dig` at the server, without recursion.
fn dig(server: &TestServer, extra: &[&str]) -> String {
    let at = format!("@{}", server.udp_addr().ip());
    let port = server.udp_addr().port().to_string();
    let mut args = vec![
        at.as_str(),
        "-p",
        port.as_str(),
        "+norec",
        "+time=5",
        "+tries=1",
    ];
    args.extend_from_slice(extra);
    run("dig", &args)
}

/// `kdig` at the server, without recursion.
fn kdig(server: &TestServer, extra: &[&str]) -> String {
    kdig_allowing(server, extra, None)
}

/// [`kdig`], allowing warnings that contain `allowed`.
fn kdig_allowing(server: &TestServer, extra: &[&str], allowed: Option<&str>) -> String {
    let at = format!("@{}", server.udp_addr().ip());
    let port = server.udp_addr().port().to_string();
    let mut args = vec![
        at.as_str(),
        "-p",
        port.as_str(),
        "+norec",
        "+time=5",
        "+retry=0",
    ];
    args.extend_from_slice(extra);
    run_allowing("kdig", &args, allowed)
}

/// Asserts that `output` contains every needle, runs of blanks counting as one space.
fn assert_contains(output: &str, expected: &[&str]) {
    let squeeze = |s: &str| {
        s.split([' ', '\t'])
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let squeezed = squeeze(output);
    for needle in expected {
        assert!(
            squeezed.contains(&squeeze(needle)),
            "`{needle}` missing in:\n{output}"
        );
    }
}

#[test]
fn dig_reads_every_answer() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let pkg = name_of("86.1000.23/pkg-1");
    let oid = name_of("urn:oid:1.2.156.112604.1");
    let out = dig(&server, &[&pkg, "TXT"]);
    assert_contains(
        &out,
        &[
            "status: NOERROR",
            "flags: qr aa",
            "\"1 URL https://cssd.example/packs/pkg-1\"",
            "\"2 DESC tray \\\"A\\\", 12 instruments\"",
        ],
    );
    assert_contains(
        &dig(&server, &[&pkg, "URI"]),
        &["IN URI 10 1 \"https://cssd.example/packs/pkg-1\""],
    );
    assert_contains(
        &dig(&server, &[&oid, "NAPTR"]),
        &[
            "IN NAPTR 100 1 \"U\" \"ORS+UINF\" \"!^.*$!https://oid.example/1\\\\!x!\" .",
            "urn:oid:1.2.156.112604.1!\" .",
        ],
    );
    assert_contains(
        &dig(&server, &[ZONE, "SOA"]),
        &["IN SOA ns.medid.example. hostmaster.medid.example."],
    );
    assert_contains(
        &dig(&server, &[ZONE, "NS"]),
        &[
            "IN NS ns.medid.example.",
            "ADDITIONAL SECTION",
            "ns.medid.example. 3600 IN A 127.0.0.1",
        ],
    );
    assert_contains(
        &dig(&server, &["nothing.hdl.medid.example.", "TXT"]),
        &["status: NXDOMAIN", "AUTHORITY SECTION", "IN SOA"],
    );
    assert_contains(
        &dig(&server, &[&pkg, "A"]),
        &["status: NOERROR", "ANSWER: 0", "AUTHORITY: 1", "IN SOA"],
    );
    assert_contains(
        &dig(&server, &["www.example.org.", "TXT"]),
        &["status: REFUSED"],
    );
    // Too large for UDP: dig sees TC and retries over TCP on its own.
    let many = name_of("86.1000.23/many");
    let out = dig(&server, &[&many, "TXT"]);
    assert_contains(&out, &["ANSWER: 25", "instrument 25 of the tray"]);
    assert_contains(&dig(&server, &["+tcp", &many, "TXT"]), &["ANSWER: 25"]);
    assert_contains(&dig(&server, &["+noedns", &pkg, "TXT"]), &["ANSWER: 2"]);
    // A long value: several strings in one record.
    let long = name_of("86.1000.23/long");
    assert_contains(
        &dig(&server, &[&long, "TXT"]),
        &["\"1 DESC part00 ", "\" \"", "part99 \""],
    );
}

#[test]
fn kdig_reads_every_answer() {
    let node = TestNode::new();
    let server = TestServer::start(&node, |_| {});
    let pkg = name_of("86.1000.23/pkg-1");
    let upper = name_of("86.1000.23/PKG-1");
    let oid = name_of("urn:oid:1.2.156.112604.1");
    let gs1 = name_of("/01/09506000134352/10/LOT7/21/S1");
    assert_contains(
        &kdig(&server, &[&pkg, "TXT"]),
        &[
            "status: NOERROR",
            "Flags: qr aa",
            "\"1 URL https://cssd.example/packs/pkg-1\"",
        ],
    );
    assert_contains(
        &kdig(&server, &[&upper, "TXT"]),
        &["\"1 URL https://cssd.example/packs/PKG-1\""],
    );
    assert_contains(
        &kdig(&server, &[&gs1, "TXT"]),
        &["\"1 URL https://gs1.example/01/09506000134352\""],
    );
    assert_contains(
        &kdig(&server, &[&pkg, "URI"]),
        &["URI 10 1 \"https://cssd.example/packs/pkg-1\""],
    );
    assert_contains(
        &kdig(&server, &[&oid, "NAPTR"]),
        &["NAPTR 100 1 \"U\" \"ORS+UINF\""],
    );
    assert_contains(&kdig(&server, &[&oid, "ANY"]), &["TXT", "URI", "NAPTR"]);
    assert_contains(&kdig(&server, &[ZONE, "SOA"]), &["SOA ns.medid.example."]);
    assert_contains(&kdig(&server, &[ZONE, "NS"]), &["NS ns.medid.example."]);
    assert_contains(
        &kdig(&server, &["nothing.oid.medid.example.", "TXT"]),
        &["status: NXDOMAIN", "AUTHORITY SECTION", "SOA"],
    );
    assert_contains(
        &kdig(&server, &["oid.medid.example.", "TXT"]),
        &["status: NOERROR", "ANSWER: 0"],
    );
    let many = name_of("86.1000.23/many");
    assert_contains(&kdig(&server, &["+tcp", &many, "TXT"]), &["ANSWER: 25"]);
    // Truncated over UDP (+ignore: no retry), then kdig's own fallback to TCP, which
    // it announces with its one expected warning.
    assert_contains(
        &kdig(&server, &["+ignore", "+bufsize=4096", &many, "TXT"]),
        &["Flags: qr aa tc", "ANSWER: 0"],
    );
    assert_contains(
        &kdig_allowing(
            &server,
            &["+bufsize=4096", &many, "TXT"],
            Some("WARNING: truncated reply"),
        ),
        &["ANSWER: 25", "(TCP)"],
    );
    assert_contains(&kdig(&server, &["+noedns", &pkg, "TXT"]), &["ANSWER: 2"]);
}

#[test]
fn nsd_accepts_the_exported_zone() {
    let node = TestNode::new();
    let mut config = ZoneConfig::new(ZONE);
    config.ns_addresses = vec!["127.0.0.1".parse().unwrap()];
    config.resolution_url = Some("http://127.0.0.1:8080/api/handles/{id}".into());
    let zone = Zone::new(config).unwrap();
    let mut text = Vec::new();
    let summary = export_zone(&zone, node.registry.index(), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(summary.names >= 12, "{summary:?}");
    assert!(!text.contains("SECRET"), "restricted values stay out");
    assert_contains(
        &text,
        &[
            "pkg-1.23.1000.86.hdl 300 IN TXT \"1 URL https://cssd.example/packs/pkg-1\"\n",
            "23.1000.86.hdl 500 IN TXT \"prefix hdl:86.1000.23\"\n",
            "1.112604.156.2.1.oid 900 IN NAPTR 100 1 \"U\" \"ORS+UINF\" \"!^.*$!https://oid.example/1\\\\!x!\" .\n",
        ],
    );
    let file = node.dir.path().join("medid.example.zone");
    std::fs::write(&file, &text).unwrap();
    let out = run("nsd-checkzone", &[ZONE, file.to_str().unwrap()]);
    assert_contains(&out, &["zone medid.example is ok"]);
}
