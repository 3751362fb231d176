//! The write commands (`medid prefix create`, `delegate`, `register`, `update`,
//! `delete`, `controllers`, `did register`, `did deactivate`), `medid show` and
//! `medid import`: each builds an operation, signs it with the given keys and submits it
//! to the node, then prints the receipt.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use medid_did::{DidKey, KeyPair};
use medid_registry::id::Identifier;
use medid_registry::op::{
    InputValue, OpError, ReadPermission, RestrictedPayload, Submission, check_signatures, draft,
    seal_values, sign,
};
use medid_registry::{Prepared, Receipt, Registry, parallel_batches, parallel_map};
use serde_json::{Value, json};

use crate::identity::print_json;
use crate::ledger::{DataDir, open};

/// Keys that sign an operation, and where to send it.
#[derive(Args)]
pub(crate) struct Signing {
    /// Key file of the signer (a controller of the target).
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// Submit to a running node (`http://HOST:PORT`) instead of the data directory.
    #[arg(long)]
    pub(crate) server: Option<String>,
}

fn load(path: &std::path::Path) -> anyhow::Result<KeyPair> {
    Ok(KeyPair::read_file(path)?)
}

fn dids(texts: &[String], option: &str) -> anyhow::Result<Vec<String>> {
    texts
        .iter()
        .map(|t| {
            DidKey::parse(t)
                .map(|d| d.to_string())
                .with_context(|| format!("{option} {t}"))
        })
        .collect()
}

/// Signs `fields` as operation `op` with `keys`, submits it (to `server`, or to the
/// node in the data directory), prints the receipt.
pub(crate) fn submit(
    data: &DataDir,
    signing: &Signing,
    op: &str,
    fields: Value,
    keys: &[&KeyPair],
    restricted: Vec<RestrictedPayload>,
) -> anyhow::Result<()> {
    let submission = Submission {
        operation: sign(&draft(op, fields), keys)?,
        restricted,
    };
    let receipt = match &signing.server {
        Some(server) => crate::client::submit(server, &submission)?,
        None => {
            let mut registry = open(data)?;
            let answer = registry
                .submit(std::slice::from_ref(&submission))?
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("the node gave no answer"))?;
            answer.map_err(|e| anyhow!("refused ({}): {e}", e.code()))?
        }
    };
    print_json(&serde_json::to_value(receipt)?)
}

/// `medid prefix create` / `medid delegate`
#[derive(Args)]
pub(crate) struct PrefixArgs {
    /// The prefix: `86.1000`, `urn:oid:1.2.156`, `gs1:0950600`.
    prefix: String,
    /// A DID that will control the prefix (repeatable).
    #[arg(long = "controller", required = true)]
    controllers: Vec<String>,
    #[command(flatten)]
    pub(crate) signing: Signing,
}

/// The `prefix` and `controllers` of a prefix operation.
pub(crate) fn prefix_fields(args: &PrefixArgs) -> anyhow::Result<Value> {
    Ok(json!({"prefix": args.prefix, "controllers": dids(&args.controllers, "--controller")?}))
}

pub(crate) fn prefix(data: &DataDir, op: &str, args: PrefixArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let fields = prefix_fields(&args)?;
    submit(data, &args.signing, op, fields, &[&key], Vec::new())
}

/// Values given on the command line.
#[derive(Args)]
pub(crate) struct ValueArgs {
    /// A public value `TYPE=DATA` (repeatable; indexes follow the order given).
    #[arg(long = "value", value_name = "TYPE=DATA")]
    values: Vec<String>,
    /// A restricted value `TYPE=DATA`: its data stays off the ledger (repeatable).
    #[arg(long = "private", value_name = "TYPE=DATA")]
    private: Vec<String>,
    /// A DID allowed to read the restricted values [default: the signer] (repeatable).
    #[arg(long = "reader")]
    readers: Vec<String>,
    /// Seconds resolvers may cache the values.
    #[arg(long, default_value_t = 86_400)]
    ttl: u32,
    /// Index of the first value given.
    #[arg(long, default_value_t = 1)]
    first_index: u32,
}

impl ValueArgs {
    fn inputs(&self, signer: &KeyPair) -> anyhow::Result<Vec<InputValue>> {
        let readers: Vec<DidKey> = if self.readers.is_empty() {
            vec![signer.did()]
        } else {
            self.readers
                .iter()
                .map(|r| DidKey::parse(r).with_context(|| format!("--reader {r}")))
                .collect::<Result<_, _>>()?
        };
        let public = self.values.iter().map(|v| (v, ReadPermission::Public));
        let private = self
            .private
            .iter()
            .map(|v| (v, ReadPermission::Restricted(readers.clone())));
        public
            .chain(private)
            .enumerate()
            .map(|(i, (text, read))| {
                let (kind, data) = text
                    .split_once('=')
                    .ok_or_else(|| anyhow!("value `{text}` is not TYPE=DATA"))?;
                Ok(InputValue {
                    index: self.first_index + i as u32,
                    kind: kind.to_owned(),
                    data: data.to_owned(),
                    ttl: self.ttl,
                    read,
                })
            })
            .collect()
    }
}

/// `medid register`
#[derive(Args)]
pub(crate) struct RegisterArgs {
    /// The identifier: `86.1000.23/PKG-0001`, `urn:oid:…`, `(01)…(21)…`.
    id: String,
    #[command(flatten)]
    values: ValueArgs,
    /// DIDs that control the identifier itself (repeatable) [default: its prefix's].
    #[arg(long = "controller")]
    controllers: Vec<String>,
    #[command(flatten)]
    signing: Signing,
}

pub(crate) fn register(data: &DataDir, args: RegisterArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let (values, restricted) = seal_values(&args.values.inputs(&key)?);
    if values.is_empty() {
        bail!("give at least one --value or --private");
    }
    let mut fields = json!({"id": args.id, "values": values});
    if !args.controllers.is_empty() {
        fields["controllers"] = json!(dids(&args.controllers, "--controller")?);
    }
    submit(
        data,
        &args.signing,
        "identifier.register",
        fields,
        &[&key],
        restricted,
    )
}

/// `medid update`
#[derive(Args)]
pub(crate) struct UpdateArgs {
    /// The identifier.
    id: String,
    #[command(flatten)]
    values: ValueArgs,
    /// Remove the value at this index (repeatable).
    #[arg(long = "remove")]
    remove: Vec<u32>,
    /// The record version the change is made against [default: the current one].
    #[arg(long)]
    expected_version: Option<u64>,
    #[command(flatten)]
    signing: Signing,
}

fn current_version(data: &DataDir, signing: &Signing, id: &str) -> anyhow::Result<u64> {
    if signing.server.is_some() {
        bail!("with --server, give --expected-version (the record's current version)");
    }
    let id = Identifier::parse(id).with_context(|| format!("`{id}`"))?;
    let registry = open(data)?;
    let record = registry
        .index()
        .identifier(&id)?
        .ok_or_else(|| anyhow!("{id} is not registered at this node"))?;
    Ok(record.version)
}

pub(crate) fn update(data: &DataDir, args: UpdateArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let (set, restricted) = seal_values(&args.values.inputs(&key)?);
    let version = match args.expected_version {
        Some(v) => v,
        None => current_version(data, &args.signing, &args.id)?,
    };
    let mut fields = json!({"id": args.id, "version": version});
    if !set.is_empty() {
        fields["set"] = json!(set);
    }
    if !args.remove.is_empty() {
        fields["remove"] = json!(args.remove);
    }
    submit(
        data,
        &args.signing,
        "identifier.update",
        fields,
        &[&key],
        restricted,
    )
}

/// `medid delete`
#[derive(Args)]
pub(crate) struct DeleteArgs {
    /// The identifier.
    id: String,
    /// The record version the deletion is made against [default: the current one].
    #[arg(long)]
    expected_version: Option<u64>,
    #[command(flatten)]
    signing: Signing,
}

pub(crate) fn delete(data: &DataDir, args: DeleteArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let version = match args.expected_version {
        Some(v) => v,
        None => current_version(data, &args.signing, &args.id)?,
    };
    submit(
        data,
        &args.signing,
        "identifier.delete",
        json!({"id": args.id, "version": version}),
        &[&key],
        Vec::new(),
    )
}

/// `medid controllers`
#[derive(Args)]
pub(crate) struct ControllersArgs {
    /// The identifier whose controllers change (or use --prefix).
    #[arg(required_unless_present = "prefix")]
    id: Option<String>,
    /// The prefix whose controllers change.
    #[arg(long, conflicts_with = "id")]
    prefix: Option<String>,
    /// A new controller (repeatable); the list replaces the old one.
    #[arg(long = "controller", required = true)]
    controllers: Vec<String>,
    /// Key file of a new controller, which signs too to prove it holds the key (repeatable).
    #[arg(long = "new-key")]
    new_keys: Vec<PathBuf>,
    /// The version the change is made against.
    #[arg(long)]
    expected_version: u64,
    #[command(flatten)]
    signing: Signing,
}

pub(crate) fn controllers(data: &DataDir, args: ControllersArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let new_keys: Vec<KeyPair> = args
        .new_keys
        .iter()
        .map(|p| load(p))
        .collect::<Result<_, _>>()?;
    let mut fields = json!({"version": args.expected_version, "controllers": dids(&args.controllers, "--controller")?});
    match (&args.id, &args.prefix) {
        (Some(id), _) => fields["id"] = json!(id),
        (None, Some(prefix)) => fields["prefix"] = json!(prefix),
        (None, None) => bail!("give an identifier or --prefix"),
    }
    let keys: Vec<&KeyPair> = std::iter::once(&key).chain(new_keys.iter()).collect();
    submit(
        data,
        &args.signing,
        "controllers.change",
        fields,
        &keys,
        Vec::new(),
    )
}

/// `medid did register`
#[derive(Args)]
pub(crate) struct DidRegisterArgs {
    /// The DID to register signs with its own key (proof of possession).
    #[command(flatten)]
    signing: Signing,
    /// Public name.
    #[arg(long)]
    name: String,
    /// Role: manufacturer, sterilization-center, hospital, person, regulator, operator.
    #[arg(long)]
    role: String,
    /// Key file of a registrar, who may later deactivate the DID too.
    #[arg(long)]
    registrar_key: Option<PathBuf>,
}

pub(crate) fn did_register(data: &DataDir, args: DidRegisterArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let registrar = args.registrar_key.as_deref().map(load).transpose()?;
    let mut fields = json!({"did": key.did().to_string(), "name": args.name, "role": args.role});
    let mut keys = vec![&key];
    if let Some(registrar) = &registrar {
        fields["registrar"] = json!(registrar.did().to_string());
        keys.push(registrar);
    }
    submit(
        data,
        &args.signing,
        "did.register",
        fields,
        &keys,
        Vec::new(),
    )
}

/// `medid did deactivate`
#[derive(Args)]
pub(crate) struct DidDeactivateArgs {
    /// The DID to deactivate.
    did: String,
    #[command(flatten)]
    signing: Signing,
}

pub(crate) fn did_deactivate(data: &DataDir, args: DidDeactivateArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let did = DidKey::parse(&args.did).with_context(|| format!("`{}`", args.did))?;
    submit(
        data,
        &args.signing,
        "did.deactivate",
        json!({"did": did.to_string()}),
        &[&key],
        Vec::new(),
    )
}

/// `medid show`
#[derive(Args)]
pub(crate) struct ShowArgs {
    /// An identifier, a prefix (`86.1000`) or a DID.
    id: String,
}

pub(crate) fn show(data: &DataDir, args: ShowArgs) -> anyhow::Result<()> {
    let registry = open(data)?;
    let index = registry.index();
    let record = if args.id.starts_with("did:") {
        let did = DidKey::parse(&args.id)?;
        index.did(&did)?.map(serde_json::to_value).transpose()?
    } else if let Ok(id) = Identifier::parse(&args.id) {
        index
            .identifier(&id)?
            .map(serde_json::to_value)
            .transpose()?
    } else {
        let prefix = medid_registry::op::parse_prefix(&args.id).map_err(|e| {
            anyhow!(
                "`{}` is neither an identifier, a prefix nor a DID: {e}",
                args.id
            )
        })?;
        index
            .prefix(&prefix.namespace_key())?
            .map(serde_json::to_value)
            .transpose()?
    };
    match record {
        Some(record) => print_json(&record),
        None => bail!("{} is not registered at this node", args.id),
    }
}

/// `medid import`
#[derive(Args)]
pub(crate) struct ImportArgs {
    /// A CSV file (header `id,TYPE,TYPE,…`) or JSON Lines (`{"id":…,"values":[…]}`).
    file: PathBuf,
    #[command(flatten)]
    signing: Signing,
    /// Operations committed together.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

/// One row of an import file.
struct Row {
    line: usize,
    id: String,
    values: Vec<InputValue>,
}

fn read_rows(path: &PathBuf) -> anyhow::Result<Vec<Row>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut rows = Vec::new();
    if is_csv {
        let mut reader = csv::Reader::from_reader(file);
        let header = reader
            .headers()
            .with_context(|| format!("{}: no header", path.display()))?
            .clone();
        if header.get(0) != Some("id") {
            bail!("{}: the first column must be `id`", path.display());
        }
        for (n, record) in reader.records().enumerate() {
            let line = n + 2;
            let record = record.with_context(|| format!("{}:{line}", path.display()))?;
            let id = record.get(0).unwrap_or_default().to_owned();
            let values = header
                .iter()
                .zip(record.iter())
                .enumerate()
                .skip(1)
                .filter(|(_, (_, data))| !data.is_empty())
                .map(|(i, (kind, data))| InputValue {
                    index: i as u32,
                    kind: kind.to_owned(),
                    data: data.to_owned(),
                    ttl: 86_400,
                    read: ReadPermission::Public,
                })
                .collect();
            rows.push(Row { line, id, values });
        }
    } else {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct JsonRow {
            id: String,
            values: Vec<InputValue>,
        }
        for (n, text) in std::io::BufReader::new(file).lines().enumerate() {
            let line = n + 1;
            let text = text.with_context(|| format!("{}:{line}", path.display()))?;
            if text.trim().is_empty() {
                continue;
            }
            let row: JsonRow = serde_json::from_str(&text)
                .with_context(|| format!("{}:{line}", path.display()))?;
            rows.push(Row {
                line,
                id: row.id,
                values: row.values,
            });
        }
    }
    Ok(rows)
}

/// Whether a stored record already holds exactly these public values.
fn unchanged(
    registry: &Registry,
    id: &Identifier,
    values: &[InputValue],
) -> anyhow::Result<Option<u64>> {
    let Some(record) = registry.index().identifier(id)? else {
        return Ok(None);
    };
    let same = record.values.len() == values.len()
        && record.values.iter().zip(values).all(|(stored, input)| {
            stored.value.index == input.index
                && stored.value.kind == input.kind
                && stored.value.read == input.read
                && match &stored.value.data {
                    Some(data) => *data == input.data,
                    None => stored
                        .value
                        .commitment
                        .as_deref()
                        .and_then(|c| registry.payload(c).ok().flatten())
                        .is_some_and(|p| p.data == input.data),
                }
        });
    Ok(Some(if same { 0 } else { record.version }))
}

pub(crate) fn import(data: &DataDir, args: ImportArgs) -> anyhow::Result<()> {
    let key = load(&args.signing.key)?;
    let rows = read_rows(&args.file)?;
    let mut registry = open(data)?;
    let progress = indicatif::ProgressBar::new(rows.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut written, mut skipped, mut refused) = (0u64, 0u64, 0u64);
    let stdout = std::io::stdout();
    for chunk in rows.chunks(args.batch.max(1)) {
        // Decide per row: register, update (changed) or skip (already there).
        let mut work = Vec::new();
        for row in chunk {
            let id = Identifier::parse(&row.id)
                .with_context(|| format!("{}:{}: `{}`", args.file.display(), row.line, row.id))?;
            match unchanged(&registry, &id, &row.values)? {
                Some(0) => skipped += 1,
                Some(version) => work.push((row, Some(version))),
                None => work.push((row, None)),
            }
        }
        let submissions: Vec<anyhow::Result<Submission>> = parallel_map(&work, |(row, version)| {
            let (values, restricted) = seal_values(&row.values);
            let (op, fields) = match version {
                None => (
                    "identifier.register",
                    json!({"id": row.id, "values": values}),
                ),
                Some(version) => (
                    "identifier.update",
                    json!({"id": row.id, "version": version, "set": values}),
                ),
            };
            Ok(Submission {
                operation: sign(&draft(op, fields), &[&key])?,
                restricted,
            })
        });
        let now = time::OffsetDateTime::now_utc();
        let prepared: Vec<Result<Prepared, OpError>> = parallel_batches(&submissions, |batch| {
            check_signatures(
                batch
                    .iter()
                    .map(|s| match s {
                        Ok(s) => Prepared::read(s, now, medid_registry::DEFAULT_CLOCK_WINDOW),
                        Err(e) => Err(OpError::Proof(e.to_string())),
                    })
                    .collect(),
            )
        });
        let answers = registry.sequence(prepared)?;
        let mut out = stdout.lock();
        for ((row, _), answer) in work.iter().zip(answers) {
            match answer {
                Ok(receipt) => {
                    written += 1;
                    writeln!(out, "{}", receipt_line(&row.id, &receipt))?;
                }
                Err(e) => {
                    refused += 1;
                    progress.suspend(|| {
                        eprintln!(
                            "{}:{}: {} refused: {e}",
                            args.file.display(),
                            row.line,
                            row.id
                        )
                    });
                }
            }
        }
        out.flush()?;
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    eprintln!("imported {written}, already present {skipped}, refused {refused}");
    if refused > 0 {
        bail!("{refused} rows were refused");
    }
    Ok(())
}

fn receipt_line(id: &str, receipt: &Receipt) -> String {
    json!({"id": id, "leafIndex": receipt.leaf_index, "entryHash": receipt.entry_hash, "treeSize": receipt.tree_size}).to_string()
}
