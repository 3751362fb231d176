//! `medid resolve`: ask a running node for an identifier's record, over HTTP (the
//! Handle REST API) or DNS (TXT records under the node's zone).

#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use clap::Args;
use medid_registry::id::Identifier;

use crate::client;
use crate::identity::print_json;

/// `medid resolve`
#[derive(Args)]
pub(crate) struct ResolveArgs {
    /// The identifier: a handle, `urn:oid:…`, a GS1 element string or Digital Link path.
    id: String,
    /// The node: `http://HOST:PORT` or `udp://HOST:PORT`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The node's DNS zone (for `udp://`).
    #[arg(long, default_value = crate::serve::DEFAULT_ZONE)]
    zone: String,
    /// Walk the hierarchy from the root node (`udp://HOST:PORT` or `http://HOST:PORT`),
    /// following referrals, instead of asking one `--server`.
    #[arg(long)]
    root: Option<String>,
    /// With `--root`: print each hop (node, endpoint, cached or not, time).
    #[arg(long, requires = "root")]
    trace: bool,
    /// With `--root http://…`: verify each hop from this root checkpoint verifier key
    /// down (delegations in the parents' logs, checkpoints under the delegated keys, the
    /// answer in the responsible node's log).
    #[arg(long, value_name = "ROOT_VKEY", requires = "root")]
    verify: Option<String>,
    /// A trusted witness's cosigner verifier key (repeatable).
    #[arg(long = "witness-key")]
    witness_keys: Vec<String>,
    /// Cosignatures by trusted witnesses each verified checkpoint must carry.
    #[arg(long, default_value_t = 0, requires = "verify")]
    min_cosignatures: usize,
    /// Bound on each request, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

pub(crate) use medid_resolver::proxy::path_encode;

pub(crate) fn resolve(args: ResolveArgs) -> anyhow::Result<()> {
    let id = Identifier::parse(&args.id).with_context(|| format!("`{}`", args.id))?;
    if let Some(root) = &args.root {
        return crate::walk::resolve(
            &id,
            &crate::walk::WalkOptions {
                root,
                zone: &args.zone,
                trace: args.trace,
                root_key: args.verify.as_deref(),
                witnesses: &args.witness_keys,
                min_cosignatures: args.min_cosignatures,
                timeout: std::time::Duration::from_millis(args.timeout_ms),
            },
        );
    }
    if args.server.starts_with("http://") {
        let url = format!(
            "{}/api/handles/{}",
            client::base(&args.server)?,
            path_encode(&id.to_string())
        );
        let (status, body) = client::get_json(&url, "application/json")?;
        if status != 200 {
            let message = body["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string());
            bail!("{id}: HTTP {status}: {message}");
        }
        print_json(&body)
    } else if let Some(address) = args.server.strip_prefix("udp://") {
        crate::dns_client::resolve(&id, address, &args.zone)
    } else {
        bail!(
            "--server {}: use http://HOST:PORT or udp://HOST:PORT",
            args.server
        )
    }
}
