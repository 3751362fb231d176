//! `medid serve`: run a node — DNS over UDP and TCP, HTTP — on its data directory,
//! creating the node on first start (the embedded default: no setup).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use medid_registry::event::mirror::{Source, TraceMirror};
use medid_registry::{Registry, Sequencer};
use medid_resolver::dns::{DnsConfig, RateLimit, ZoneIndex};
use medid_resolver::http::{AppState, NodeInfo};
use medid_resolver::{AnswerCache, IndexMirror};

use crate::ledger::DataDir;

/// The trace timelines' snapshot in the data directory, written when the node stops
/// and read on its next start ([`TraceMirror::open`]).
const TRACE_SNAPSHOT: &str = "trace-timelines";

/// The zone (and node name) of a node created by `medid serve` without `--zone`.
pub(crate) const DEFAULT_ZONE: &str = "medid.test";

/// `medid serve`
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Where to answer DNS queries, over UDP and TCP (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:5353")]
    dns: SocketAddr,
    /// Where to answer HTTP requests (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The DNS zone the node answers for [default: the node's name; `medid.test` for a new node].
    #[arg(long)]
    zone: Option<String>,
    /// UDP responses per second and per client network (/24, /56) before rate
    /// limiting; over it every second answer is dropped, the others truncated (0: off).
    #[arg(long, default_value_t = 200)]
    rate_limit: u32,
    /// UDP sockets on the DNS address (SO_REUSEPORT) [default: one per core].
    #[arg(long, default_value_t = 0)]
    udp_sockets: usize,
    /// Threads answering each UDP socket.
    #[arg(long, default_value_t = 1)]
    udp_threads: usize,
    /// MiB of sled's page cache for the index. Resolution reads an in-memory copy of
    /// the index, so the page cache only serves writes and the other reads.
    #[arg(long, default_value_t = 64)]
    index_cache_mib: u64,
    /// Answers kept in the cache (0: no cache).
    #[arg(long, default_value_t = 1_000_000)]
    cache_size: u64,
    /// Run a resolving proxy instead of a node: resolve any identifier by walking from
    /// the root (`--root`), caching referrals and answers (no data directory).
    #[arg(long, requires = "root")]
    proxy: bool,
    /// The root node's HTTP URL (with `--proxy`).
    #[arg(long)]
    root: Option<String>,
    /// The root node's DNS address (with `--proxy`; needed to answer DNS).
    #[arg(long)]
    root_dns: Option<SocketAddr>,
    /// Bound on each upstream request of the proxy, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    upstream_timeout_ms: u64,
    /// Witness the log with this checkpoint verifier key (repeatable): answer its
    /// `POST /add-checkpoint` with a cosignature by `DIR/witness.key`.
    #[arg(long = "witness-for", value_name = "VKEY")]
    witness_for: Vec<String>,
    /// A witness of this node's log (its HTTP URL, repeatable): the node submits its
    /// checkpoints there and serves the cosignatures with them.
    #[arg(long = "witness", value_name = "URL")]
    witnesses: Vec<String>,
}

/// Opens the node in `data`, creating it on first start.
fn open_or_create(data: &DataDir, zone: Option<&str>) -> anyhow::Result<Registry> {
    if !data.path.join("node.json").exists() {
        let name = zone.unwrap_or(DEFAULT_ZONE);
        let outcome = Registry::init(&data.path, name, None)
            .with_context(|| format!("creating a node in {}", data.path.display()))?;
        println!("created node {name} in {}", data.path.display());
        println!("node DID:     {}", outcome.node_did);
        println!("verifier key: {}", outcome.verifier_key);
        if let Some(path) = outcome.admin_key_file {
            println!(
                "admin key:    {} (mode 0600; signs prefix.create)",
                path.display()
            );
        }
    }
    Ok(Registry::open(&data.path)?)
}

pub(crate) fn serve(data: &DataDir, args: ServeArgs) -> anyhow::Result<()> {
    if args.proxy {
        return serve_proxy(&args);
    }
    medid_registry::Index::set_cache_capacity(args.index_cache_mib.max(1).saturating_mul(1 << 20));
    let registry = open_or_create(data, args.zone.as_deref())?;
    let link = crate::hierarchy::ParentLink::read(&data.path)?;
    let zone = args
        .zone
        .clone()
        .or_else(|| link.as_ref().map(|l| l.zone.clone()))
        .unwrap_or_else(|| registry.config().name.clone());
    let apex = match &link {
        Some(link) => link.apex()?,
        None => String::new(),
    };
    let cache = if args.cache_size == 0 {
        AnswerCache::disabled()
    } else {
        AnswerCache::new(args.cache_size)
    };
    let mut node = NodeInfo::of(&registry, &zone)?;
    node.parent = link.map(|l| l.parent);
    // Before the sequencer takes writes: answers read the index from memory. Read on
    // this thread, which answers nothing afterwards: the allocator now and then walks
    // the whole heap of the thread allocating, and the resolution mirror is millions
    // of small allocations (ARCHITECTURE.md says more).
    let mirror =
        Arc::new(IndexMirror::load(registry.index()).context("reading the index into memory")?);
    let snapshot = data.path.join(TRACE_SNAPSHOT);
    let (traces, source) = TraceMirror::open(registry.index(), &snapshot)
        .context("reading the trace timelines into memory")?;
    match source {
        Source::Snapshot => println!("trace timelines: read from {}", snapshot.display()),
        Source::Index(why) => println!("trace timelines: read from the index ({why})"),
    }
    let traces = Arc::new(traces);
    let links = registry
        .index()
        .hold_patient_links()
        .context("reading the patient links into memory")?;
    println!("patient links: {links} held in memory");
    let (hook_cache, hook_mirror, hook_traces) = (cache.clone(), mirror.clone(), traces.clone());
    let (sequencer, sequencer_thread) = Sequencer::start_with_hook(registry, move |changed| {
        // The mirror first: an answer computed after the invalidation reads the commit.
        if let Err(e) = hook_mirror.apply(changed) {
            eprintln!("the in-memory index stopped following the index, answers read it: {e}");
        }
        if let Err(e) = hook_traces.apply(changed) {
            eprintln!("the trace timelines stopped following the index, traces read it: {e}");
        }
        hook_cache.invalidate_changed(changed);
    })
    .context("cannot start the sequencer thread")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mirrors = (mirror, traces.clone());
    runtime.block_on(run(sequencer.clone(), mirrors, node, cache, &apex, &args))?;
    drop(sequencer);
    drop(runtime);
    // No commit can come now: the timelines reflect the index, for the next start.
    if sequencer_thread.join().is_some()
        && let Err(e) = traces.save(&snapshot)
    {
        eprintln!(
            "cannot write {} (the next start reads the index): {e}",
            snapshot.display()
        );
    }
    println!("stopped");
    Ok(())
}

async fn run(
    sequencer: Sequencer,
    (mirror, traces): (Arc<IndexMirror>, Arc<TraceMirror>),
    node: NodeInfo,
    cache: AnswerCache,
    apex: &str,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", args.http))?;
    let http_addr = listener.local_addr()?;

    let mut dns = DnsConfig::new(args.dns, &node.zone);
    dns.rate_limit = RateLimit {
        responses_per_second: args.rate_limit,
        ..RateLimit::default()
    };
    dns.udp_sockets = args.udp_sockets;
    dns.udp_threads_per_socket = args.udp_threads;
    dns.zone.resolution_url = Some(format!("http://{http_addr}/api/handles/{{id}}"));
    dns.zone.apex = apex.to_owned();
    let index: Arc<dyn ZoneIndex> = mirror.clone();
    let dns = medid_resolver::dns::start(dns, index, cache.clone()).await?;
    println!("dns udp {}", dns.udp_addr());
    println!("dns tcp {}", dns.tcp_addr());

    let state = AppState::new(sequencer, node.clone(), cache)?;
    state.set_mirror(mirror);
    state.set_trace_mirror(traces);
    if !args.witness_for.is_empty() {
        let key_path = node.dir.join("witness.key");
        if !key_path.exists() {
            medid_did::KeyPair::generate().write_file(&key_path)?;
        }
        let key = medid_did::KeyPair::read_file(&key_path)?;
        let witness = medid_registry::log::witness::Witness::open(
            &node.dir.join("witness.json"),
            &node.config.name,
            key.signing_key().clone(),
            &args.witness_for,
        )?;
        println!("witness {}", witness.vkey());
        state.set_witness(Arc::new(witness));
    }
    if !args.witnesses.is_empty() {
        tokio::spawn(medid_resolver::http::collect_cosignatures(
            state.clone(),
            args.witnesses.clone(),
            std::time::Duration::from_millis(500),
        ));
    }
    println!("http {http_addr}");
    axum::serve(listener, medid_resolver::http::app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    dns.shutdown().await;
    Ok(())
}

/// `medid serve --proxy`: the resolving proxy on `--http` and `--dns` (UDP and TCP).
fn serve_proxy(args: &ServeArgs) -> anyhow::Result<()> {
    let root = args.root.clone().unwrap_or_default();
    let mut config = medid_resolver::proxy::ProxyConfig::new(crate::client::base(&root)?);
    config.root_dns = args.root_dns;
    config.timeout = std::time::Duration::from_millis(args.upstream_timeout_ms.max(1));
    config.capacity = args.cache_size.max(1);
    let proxy = medid_resolver::proxy::Proxy::new(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", args.http))?;
        let socket = tokio::net::UdpSocket::bind(args.dns)
            .await
            .with_context(|| format!("cannot listen for DNS on {}", args.dns))?;
        let dns_addr = socket.local_addr()?;
        let tcp = tokio::net::TcpListener::bind(dns_addr)
            .await
            .with_context(|| format!("cannot listen for DNS over TCP on {dns_addr}"))?;
        println!("proxy of {root}");
        println!("dns udp {dns_addr}");
        println!("dns tcp {}", tcp.local_addr()?);
        println!("http {}", listener.local_addr()?);
        let dns = tokio::spawn(medid_resolver::proxy::serve_dns(proxy.clone(), socket));
        let dns_tcp = tokio::spawn(medid_resolver::proxy::serve_dns_tcp(proxy.clone(), tcp));
        let served = axum::serve(listener, medid_resolver::proxy::app(proxy))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("the HTTP server failed");
        dns.abort();
        dns_tcp.abort();
        served
    })?;
    drop(runtime);
    println!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
}

/// `medid export-zone`
#[derive(Args)]
pub(crate) struct ExportZoneArgs {
    /// The zone [default: the node's name].
    #[arg(long)]
    zone: Option<String>,
}

/// Writes the node's public records as an RFC 1035 zone file on standard output, for
/// ordinary DNS servers (NSD, Knot, BIND) to serve.
pub(crate) fn export_zone(data: &DataDir, args: ExportZoneArgs) -> anyhow::Result<()> {
    let registry = Registry::open(&data.path)?;
    let zone = args.zone.unwrap_or_else(|| registry.config().name.clone());
    let zone = medid_resolver::dns::Zone::new(medid_resolver::dns::ZoneConfig::new(&zone))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let summary = medid_resolver::dns::export_zone(&zone, registry.index(), &mut out)?;
    std::io::Write::flush(&mut out)?;
    eprintln!(
        "exported {} names, {} records (serial {})",
        summary.names, summary.records, summary.serial
    );
    Ok(())
}
