//! `medid resolve ID --root udp://…|http://… [--trace] [--verify]`: walk the hierarchy
//! from the root, one request per hop, following referrals; with `--trace` print each
//! hop, with `--verify` check every hop from the root's checkpoint key down.

#![allow(clippy::print_stdout)]

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use medid_registry::dnsname::identifier_name;
use medid_registry::id::Identifier;
use medid_resolver::hierarchy::verify::{ProofBundle, check_answer, check_delegation};
use medid_resolver::hierarchy::{
    DnsStep, HttpStep, MAX_HOPS, classify_dns, classify_handle, dns_query,
};

use crate::client;
use crate::identity::print_json;
use crate::resolve::path_encode;

/// What `--root` walks with.
pub(crate) struct WalkOptions<'a> {
    /// `udp://HOST:PORT` or `http://HOST:PORT`.
    pub(crate) root: &'a str,
    /// The zone every node names identifiers under (DNS).
    pub(crate) zone: &'a str,
    /// Print each hop.
    pub(crate) trace: bool,
    /// The root's checkpoint verifier key, to verify each hop (HTTP).
    pub(crate) root_key: Option<&'a str>,
    /// Cosigner verifier keys of trusted witnesses.
    pub(crate) witnesses: &'a [String],
    /// Cosignatures required on each checkpoint.
    pub(crate) min_cosignatures: usize,
    /// The bound on each request.
    pub(crate) timeout: Duration,
}

fn hop_line(trace: bool, hop: usize, node: &str, endpoint: &str, started: Instant, what: &str) {
    if trace {
        println!(
            "hop {hop}: {node} {endpoint} (not cached) {:.1} ms: {what}",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
}

pub(crate) fn resolve(id: &Identifier, options: &WalkOptions) -> anyhow::Result<()> {
    if let Some(address) = options.root.strip_prefix("udp://") {
        if options.root_key.is_some() {
            bail!("--verify walks over HTTP: give --root http://HOST:PORT");
        }
        walk_dns(id, address, options)
    } else if options.root.starts_with("http://") {
        walk_http(id, client::base(options.root)?, options)
    } else {
        bail!(
            "--root {}: use udp://HOST:PORT or http://HOST:PORT",
            options.root
        )
    }
}

fn walk_dns(id: &Identifier, address: &str, options: &WalkOptions) -> anyhow::Result<()> {
    let zone = options.zone.trim_end_matches('.');
    let text = format!("{}.{zone}.", identifier_name(id));
    let name = Name::from_ascii(&text).with_context(|| format!("`{text}` is not a DNS name"))?;
    let root: SocketAddr = address
        .to_socket_addrs()
        .with_context(|| format!("`{address}` is not HOST:PORT"))?
        .next()
        .with_context(|| format!("`{address}` resolves to no address"))?;
    let (mut node, mut servers, mut cut) = ("root".to_owned(), vec![root], String::new());
    for hop in 1..=MAX_HOPS {
        let started = Instant::now();
        let query_id: u16 = rand::random();
        let query = dns_query(query_id, &name, RecordType::TXT);
        let mut failure = String::new();
        let mut answer = None;
        for server in &servers {
            match exchange(&query, *server, options.timeout)
                .and_then(|r| Ok(classify_dns(&r, query_id, &name, &cut).map(|s| (s, r))?))
            {
                Ok(found) => {
                    answer = Some((*server, found));
                    break;
                }
                Err(e) => failure = format!("{server}: {e:#}"),
            }
        }
        let Some((server, (step, response))) = answer else {
            bail!("hop {hop} ({node}) failed: {failure}");
        };
        match step {
            DnsStep::Referral {
                cut: next,
                servers: glue,
                ..
            } => {
                hop_line(
                    options.trace,
                    hop,
                    &node,
                    &format!("udp://{server}"),
                    started,
                    &format!("referral to {next}"),
                );
                servers = glue
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, root.port()))
                    .collect();
                node = next.clone();
                cut = next;
            }
            DnsStep::Final { code, answers, .. } => {
                hop_line(
                    options.trace,
                    hop,
                    &node,
                    &format!("udp://{server}"),
                    started,
                    &format!("{code}, {answers} answer(s)"),
                );
                let message = Message::from_vec(&response)?;
                if answers == 0 {
                    bail!("{id} ({name}): {code}, no TXT records");
                }
                println!("; {id} = {name}");
                for record in &message.answers {
                    println!("{record}");
                }
                return Ok(());
            }
        }
    }
    bail!("more than {MAX_HOPS} referrals")
}

fn exchange(query: &[u8], server: SocketAddr, timeout: Duration) -> anyhow::Result<Vec<u8>> {
    let socket = UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send_to(query, server)?;
    let mut buffer = vec![0u8; 65_535];
    loop {
        let (n, from) = socket
            .recv_from(&mut buffer)
            .map_err(|e| anyhow!("no answer within {} ms ({e})", timeout.as_millis()))?;
        if from == server {
            return Ok(buffer[..n].to_vec());
        }
    }
}

/// A bundle from `base` for entry `index`, checked under `vkey`.
fn checked_bundle(
    base: &str,
    index: u64,
    vkey: &str,
    options: &WalkOptions,
) -> anyhow::Result<(ProofBundle, u64)> {
    let url = format!("{base}/api/log/bundle/{index}?extra=entry");
    let bytes = client::get_bytes(&url)?;
    let bundle = ProofBundle::parse(&bytes)?;
    let (checkpoint, _) = bundle.check(vkey, options.witnesses, options.min_cosignatures)?;
    Ok((bundle, checkpoint.size))
}

fn walk_http(id: &Identifier, root: &str, options: &WalkOptions) -> anyhow::Result<()> {
    let (mut node, mut base) = ("root".to_owned(), root.to_owned());
    let mut vkey = options.root_key.map(str::to_owned);
    for hop in 1..=MAX_HOPS {
        let started = Instant::now();
        let url = format!("{base}/api/handles/{}", path_encode(&id.to_string()));
        let (status, body) = client::get_json(&url, "application/json")
            .with_context(|| format!("hop {hop} ({node})"))?;
        let step = classify_handle(status, &body)
            .map_err(|e| anyhow!("hop {hop} ({node} at {url}): {e}"))?;
        match step {
            HttpStep::Referral {
                prefix,
                node: child,
                log_index,
            } => {
                hop_line(
                    options.trace,
                    hop,
                    &node,
                    &url,
                    started,
                    &format!(
                        "referral: {prefix} is delegated to {} at {}",
                        child.name, child.http
                    ),
                );
                if let Some(key) = &vkey {
                    let (bundle, size) = checked_bundle(&base, log_index, key, options)
                        .with_context(|| {
                            format!("hop {hop} ({node}): verifying the delegation of {prefix}")
                        })?;
                    let entry = bundle.extra.as_deref().unwrap_or_default();
                    check_delegation(entry, log_index, &prefix, &child).with_context(|| {
                        format!("hop {hop} ({node}): the referral to {}", child.name)
                    })?;
                    println!(
                        "verified hop {hop} ({node}): checkpoint signed by {}, size {size}{}; entry {log_index} delegates {prefix} to {} ({})",
                        key.split('+').next().unwrap_or_default(),
                        cosigned(options),
                        child.name,
                        child.did
                    );
                    vkey = Some(child.verifier_key());
                }
                node = child.name.clone();
                base = child.http_base().to_owned();
            }
            HttpStep::Found { .. } => {
                hop_line(options.trace, hop, &node, &url, started, "answer");
                if let Some(key) = &vkey {
                    let index = body["logIndex"]
                        .as_u64()
                        .ok_or_else(|| anyhow!("hop {hop} ({node}): the answer has no logIndex"))?;
                    let (bundle, size) = checked_bundle(&base, index, key, options)
                        .with_context(|| format!("hop {hop} ({node}): verifying the answer"))?;
                    check_answer(
                        bundle.extra.as_deref().unwrap_or_default(),
                        index,
                        id,
                        &body["values"],
                    )
                    .with_context(|| format!("hop {hop} ({node}): the answer"))?;
                    println!(
                        "verified hop {hop} ({node}): checkpoint signed by the delegated key {}, size {size}{}; entry {index} is the operation that last changed {id}, and the values it set are the answer's",
                        key.split('+').next().unwrap_or_default(),
                        cosigned(options),
                    );
                }
                return print_json(&body);
            }
            HttpStep::NotFound => {
                hop_line(options.trace, hop, &node, &url, started, "not found");
                bail!("{id}: not found at {node} ({base})");
            }
            HttpStep::NotResponsible => {
                hop_line(options.trace, hop, &node, &url, started, "not responsible");
                bail!("{id}: no node of the hierarchy is responsible for it");
            }
            HttpStep::Parent(parent) => {
                bail!("hop {hop} ({node}) refers to its parent {parent}: start at the root");
            }
        }
    }
    bail!("more than {MAX_HOPS} referrals")
}

fn cosigned(options: &WalkOptions) -> String {
    if options.min_cosignatures > 0 {
        format!(
            ", cosigned by at least {} trusted witness(es)",
            options.min_cosignatures
        )
    } else {
        String::new()
    }
}
