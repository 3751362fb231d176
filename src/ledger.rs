//! `medid init`, `medid log …`, `medid reindex`, `medid verify-node`: a node's data
//! directory and its ledger.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use medid_did::DidKey;
use medid_registry::Registry;
use serde_json::json;

use crate::identity::print_json;

/// The data directory option every node command takes.
#[derive(Args, Clone)]
pub(crate) struct DataDir {
    /// The node's data directory.
    #[arg(
        long = "data",
        env = "MEDID_DATA",
        default_value = "medid-data",
        global = true
    )]
    pub(crate) path: PathBuf,
}

/// `medid init`
#[derive(Args)]
pub(crate) struct InitArgs {
    /// The node's name: the origin line of its checkpoints (e.g. `medid.example-hospital.org`).
    #[arg(long)]
    name: String,
    /// The DID allowed to create top-level prefixes [default: a new key, DIR/admin.key].
    #[arg(long)]
    admin: Option<String>,
    #[command(flatten)]
    parent: crate::hierarchy::ParentArgs,
}

/// `medid log …`
#[derive(Subcommand)]
pub(crate) enum LogCommand {
    /// Print the signed-note verifier key of the node's checkpoints.
    Vkey,
    /// Print the latest signed checkpoint.
    Checkpoint,
    /// Print an inclusion or consistency proof as JSON.
    #[command(subcommand)]
    Proof(ProofCommand),
}

/// `medid log proof …`
#[derive(Subcommand)]
pub(crate) enum ProofCommand {
    /// Inclusion of entry INDEX in the tree of size N [default: the current size].
    Inclusion {
        /// The entry's leaf index.
        index: u64,
        /// The tree size to prove against.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Consistency of the tree of size OLD with the tree of size NEW.
    Consistency {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
}

pub(crate) fn init(data: &DataDir, args: InitArgs) -> anyhow::Result<()> {
    if args.parent.given() {
        if args.admin.is_some() {
            anyhow::bail!("--admin cannot go with --parent: the admin key is generated");
        }
        return crate::hierarchy::init_child(data, &args.name, &args.parent);
    }
    let admin = args
        .admin
        .as_deref()
        .map(DidKey::parse)
        .transpose()
        .context("--admin")?;
    let outcome = match args.parent.node_key()? {
        Some(key) => Registry::init_with_key(&data.path, &args.name, admin, key)?,
        None => Registry::init(&data.path, &args.name, admin)?,
    };
    println!("node DID:     {}", outcome.node_did);
    println!("verifier key: {}", outcome.verifier_key);
    println!("admin DID:    {}", outcome.admin);
    if let Some(path) = outcome.admin_key_file {
        println!(
            "admin key:    {} (mode 0600; keep it secret)",
            path.display()
        );
    }
    Ok(())
}

pub(crate) fn open(data: &DataDir) -> anyhow::Result<Registry> {
    Ok(Registry::open(&data.path)?)
}

pub(crate) fn log(data: &DataDir, command: LogCommand) -> anyhow::Result<()> {
    let registry = open(data)?;
    let log = registry.log();
    match command {
        LogCommand::Vkey => println!("{}", log.verifier_key()),
        LogCommand::Checkpoint => print!("{}", String::from_utf8_lossy(log.checkpoint())),
        LogCommand::Proof(ProofCommand::Inclusion { index, size }) => {
            let size = size.unwrap_or(log.size());
            let proof = log.inclusion_proof(index, size)?;
            let entry = log.entry(index)?;
            print_json(&json!({
                "leafIndex": index,
                "treeSize": size,
                "leafHash": medid_registry::log::leaf_hash(&entry),
                "root": log.root_at(size)?,
                "proof": proof,
            }))?;
        }
        LogCommand::Proof(ProofCommand::Consistency { old, new }) => {
            let proof = log.consistency_proof(old, new)?;
            print_json(&json!({
                "oldSize": old,
                "newSize": new,
                "oldRoot": log.root_at(old)?,
                "newRoot": log.root_at(new)?,
                "proof": proof,
            }))?;
        }
    }
    Ok(())
}

pub(crate) fn reindex(data: &DataDir) -> anyhow::Result<()> {
    let mut registry = open(data)?;
    let started = std::time::Instant::now();
    let entries = registry.reindex()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "reindexed {entries} entries in {seconds:.2} s ({:.0} entries/s)",
        entries as f64 / seconds.max(1e-9)
    );
    Ok(())
}

pub(crate) fn verify(data: &Path) -> anyhow::Result<()> {
    let registry = Registry::open(data)?;
    let size = registry
        .verify()
        .with_context(|| format!("{} does not verify", data.display()))?;
    println!(
        "ok: {size} entries; every tile, entry hash, signature and the checkpoint verify, and the index matches the ledger"
    );
    Ok(())
}
