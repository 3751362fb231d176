//! The hierarchy on the command line: `medid delegate … --to-node` (a prefix handed to
//! another node) and `medid init --parent` (a child node set up from its parent's
//! delegation), and the `DIR/parent.json` link `medid serve` reads.

#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use medid_did::{DidKey, KeyPair};
use medid_registry::delegation::NodeDelegation;
use medid_registry::op::{Submission, draft, parse_prefix, sign};
use medid_registry::{PrefixRecord, Registry};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client;
use crate::ledger::DataDir;
use crate::records::{PrefixArgs, prefix_fields, submit};
use crate::resolve::path_encode;

/// `medid delegate`
#[derive(Args)]
pub(crate) struct DelegateArgs {
    #[command(flatten)]
    prefix: PrefixArgs,
    /// Delegate to another node: the DID of its node key (it signs its checkpoints).
    #[arg(long, requires_all = ["node_name", "dns", "http"])]
    to_node: Option<String>,
    /// The child node's name (the origin of its checkpoints).
    #[arg(long)]
    node_name: Option<String>,
    /// Where the child node answers DNS, `IP:PORT` (repeatable; glue in DNS referrals).
    #[arg(long)]
    dns: Vec<SocketAddr>,
    /// The child node's HTTP base URL (`http://HOST:PORT`).
    #[arg(long)]
    http: Option<String>,
}

pub(crate) fn delegate(data: &DataDir, args: DelegateArgs) -> anyhow::Result<()> {
    let mut fields = prefix_fields(&args.prefix)?;
    if let Some(did) = &args.to_node {
        let node = NodeDelegation {
            did: DidKey::parse(did).with_context(|| format!("--to-node {did}"))?,
            name: args.node_name.clone().unwrap_or_default(),
            dns: args.dns.clone(),
            http: args.http.clone().unwrap_or_default(),
        };
        node.check().context("the delegation")?;
        fields["node"] = serde_json::to_value(&node)?;
    }
    let key = KeyPair::read_file(&args.prefix.signing.key)?;
    submit(
        data,
        &args.prefix.signing,
        "prefix.delegate",
        fields,
        &[&key],
        Vec::new(),
    )
}

/// `medid init --parent`: the options that set a node up as a child.
#[derive(Args)]
pub(crate) struct ParentArgs {
    /// The parent node's HTTP URL: the node is set up from the delegation logged there.
    #[arg(long, requires_all = ["prefix", "node_key"])]
    parent: Option<String>,
    /// The prefix the parent delegated to this node.
    #[arg(long)]
    prefix: Option<String>,
    /// The node key (made with `medid did new --out FILE`; with `--parent`, the key the
    /// parent delegated to); it becomes `DIR/node.key` [default: a new key].
    #[arg(long)]
    node_key: Option<PathBuf>,
}

impl ParentArgs {
    /// Whether a parent was given.
    pub(crate) fn given(&self) -> bool {
        self.parent.is_some()
    }

    /// The node key given, if any.
    pub(crate) fn node_key(&self) -> anyhow::Result<Option<KeyPair>> {
        self.node_key
            .as_deref()
            .map(|path| Ok(KeyPair::read_file(path)?))
            .transpose()
    }
}

/// `DIR/parent.json`: where a child node's prefix comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ParentLink {
    /// The parent's HTTP URL.
    pub(crate) parent: String,
    /// The delegated prefix, as `medid delegate` takes it.
    pub(crate) prefix: String,
    /// The DNS zone every node of the hierarchy names identifiers under.
    pub(crate) zone: String,
    /// The delegation as the parent's index holds it.
    pub(crate) delegation: PrefixRecord,
}

impl ParentLink {
    /// The link of the node in `dir`, if it is a child.
    pub(crate) fn read(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join("parent.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).with_context(|| format!("{}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("reading {}", path.display()))),
        }
    }

    /// The DNS name of the delegated prefix relative to the zone: the node's apex.
    pub(crate) fn apex(&self) -> anyhow::Result<String> {
        let namespace = parse_prefix(&self.prefix).map_err(|e| anyhow!("{}: {e}", self.prefix))?;
        Ok(medid_registry::dnsname::namespace_name(&namespace))
    }
}

/// Creates a child node: checks that the parent delegated `--prefix` to `--node-key`
/// under this node's name, creates the node with that key and an admin key, creates the
/// prefix with the delegated controllers, and records the link in `DIR/parent.json`.
pub(crate) fn init_child(data: &DataDir, name: &str, args: &ParentArgs) -> anyhow::Result<()> {
    let (Some(parent), Some(prefix), Some(key_path)) = (&args.parent, &args.prefix, &args.node_key)
    else {
        bail!("--parent needs --prefix and --node-key");
    };
    let parent = client::base(parent)?.to_owned();
    let node_key = KeyPair::read_file(key_path)?;
    let namespace = parse_prefix(prefix).map_err(|e| anyhow!("--prefix {prefix}: {e}"))?;
    let url = format!("{parent}/api/prefixes/{}", path_encode(prefix));
    let (status, body) = client::get_json(&url, "application/json")?;
    if status != 200 {
        bail!("the parent has no delegation of {namespace} ({url}: HTTP {status}: {body})");
    }
    let record: PrefixRecord = serde_json::from_value(body)
        .with_context(|| format!("{url} answered something that is not a prefix record"))?;
    let node = record
        .node
        .as_ref()
        .ok_or_else(|| anyhow!("{namespace} is delegated at the parent, but not to a node"))?;
    if node.did != node_key.did() {
        bail!(
            "the parent delegated {namespace} to {}, not to the key {} ({})",
            node.did,
            node_key.did(),
            key_path.display()
        );
    }
    if node.name != name {
        bail!(
            "the parent delegated {namespace} to the node named {}, not {name}",
            node.name
        );
    }
    let (status, about) = client::get_json(&format!("{parent}/api/node"), "application/json")?;
    let zone = about["zone"]
        .as_str()
        .filter(|_| status == 200)
        .ok_or_else(|| anyhow!("{parent}/api/node does not name the parent's zone"))?
        .to_owned();

    let outcome = Registry::init_with_key(&data.path, name, None, node_key)?;
    let admin_key_file = outcome
        .admin_key_file
        .ok_or_else(|| anyhow!("the node was created without an admin key"))?;
    let admin = KeyPair::read_file(&admin_key_file)?;
    let submission = Submission {
        operation: sign(
            &draft(
                "prefix.create",
                json!({"prefix": prefix, "controllers": record.controllers}),
            ),
            &[&admin],
        )?,
        restricted: Vec::new(),
    };
    let mut registry = Registry::open(&data.path)?;
    registry
        .submit(std::slice::from_ref(&submission))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the node gave no answer"))?
        .map_err(|e| anyhow!("creating {namespace} at the new node: {e}"))?;
    drop(registry);
    let link = ParentLink {
        parent,
        prefix: prefix.clone(),
        zone,
        delegation: record,
    };
    let path = data.path.join("parent.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&link)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("node DID:     {}", outcome.node_did);
    println!("verifier key: {}", outcome.verifier_key);
    println!("admin key:    {} (mode 0600)", admin_key_file.display());
    println!("prefix:       {namespace} (delegated by {})", link.parent);
    println!("zone:         {} (apex {})", link.zone, link.apex()?);
    Ok(())
}
