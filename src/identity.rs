//! `medid did …`, `medid sign` and `medid verify`: identities and signed documents.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Read;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use medid_did::{DidKey, KeyFormat, KeyPair, ProofOptions, add_proof, did_document, verify_proofs};
use serde_json::Value;

/// `medid did …`
#[derive(Subcommand)]
pub(crate) enum DidCommand {
    /// Generate a key pair, write its key file (mode 0600) and print the DID.
    New {
        /// Where to write the key file [default: ./<fingerprint>.key]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the DID of a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
    /// Print the DID document of a did:key.
    Resolve {
        /// The DID, `did:key:z6Mk…`.
        did: String,
        /// How to represent the verification methods.
        #[arg(long, value_enum, default_value_t = Format::Multikey)]
        format: Format,
        /// Also list the X25519 key-agreement key derived from the Ed25519 key.
        #[arg(long)]
        key_agreement: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Multikey with publicKeyMultibase.
    Multikey,
    /// Ed25519VerificationKey2020 with publicKeyMultibase.
    #[value(name = "ed25519-2020")]
    Ed25519_2020,
    /// JsonWebKey2020 with publicKeyJwk.
    Jwk,
}

/// `medid sign`
#[derive(Args)]
pub(crate) struct SignArgs {
    /// The signer's key file.
    #[arg(long)]
    key: PathBuf,
    /// The proof purpose the signature claims.
    #[arg(long, default_value = "assertionMethod")]
    purpose: String,
    /// The JSON document to sign (`-` reads standard input).
    document: PathBuf,
}

/// `medid verify`
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The signed JSON document (`-` reads standard input); without it, the node.
    pub(crate) document: Option<PathBuf>,
}

pub(crate) fn did(command: DidCommand) -> anyhow::Result<()> {
    match command {
        DidCommand::New { out } => {
            let pair = KeyPair::generate();
            let path =
                out.unwrap_or_else(|| PathBuf::from(format!("{}.key", pair.did().fingerprint())));
            pair.write_file(&path)?;
            println!("{}", pair.did());
            eprintln!(
                "key file written to {} (mode 0600); keep it secret",
                path.display()
            );
        }
        DidCommand::Show { file } => println!("{}", KeyPair::read_file(&file)?.did()),
        DidCommand::Resolve {
            did,
            format,
            key_agreement,
        } => {
            let did = DidKey::parse(&did).with_context(|| format!("cannot resolve `{did}`"))?;
            let format = match format {
                Format::Multikey => KeyFormat::Multikey,
                Format::Ed25519_2020 => KeyFormat::Ed25519VerificationKey2020,
                Format::Jwk => KeyFormat::JsonWebKey2020,
            };
            print_json(&did_document(&did, format, key_agreement))?;
        }
    }
    Ok(())
}

pub(crate) fn sign(args: SignArgs) -> anyhow::Result<()> {
    let key = KeyPair::read_file(&args.key)?;
    let document = read_json(&args.document)?;
    let options = ProofOptions {
        proof_purpose: args.purpose,
        ..ProofOptions::now()
    };
    let signed = add_proof(&document, &key, &options)
        .with_context(|| format!("cannot sign {}", args.document.display()))?;
    print_json(&signed)
}

pub(crate) fn verify(path: &Path) -> anyhow::Result<()> {
    let document = read_json(path)?;
    let proofs =
        verify_proofs(&document).with_context(|| format!("{} does not verify", path.display()))?;
    for proof in proofs {
        println!(
            "valid: signed by {} for {} at {}",
            proof.signer,
            proof.proof_purpose,
            proof
                .created
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Reads a JSON document from a file, or from standard input for `-`.
pub(crate) fn read_json(path: &Path) -> anyhow::Result<Value> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if !value.is_object() {
        bail!("{} is not a JSON object", path.display());
    }
    Ok(value)
}

/// Prints a command's JSON answer. A reader gone before it is printed (`| head`) is no
/// failure: the command's work (a logged operation, a written key) is done.
pub(crate) fn print_json(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}
