//! The `medid` command: run a node and act on identities, records and the ledger.
//!
//! Exit status: 0 on success, 1 when the input is invalid or a check fails (the message
//! says what to do), 2 when the command line itself is wrong.

mod client;
mod demo;
mod dns_client;
mod events;
mod hierarchy;
mod identity;
mod ledger;
mod records;
mod resolve;
mod serve;
mod walk;

use std::process::ExitCode;

/// mimalloc: the HTTP and DNS front ends allocate and free small buffers on every
/// request from several threads, where it costs a fraction of glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Identifier resolution and digital identity for medical objects.
#[derive(Parser)]
#[command(name = "medid", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    data: ledger::DataDir,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node: DNS (UDP, TCP) and HTTP on the data directory, created on first start.
    Serve(serve::ServeArgs),
    /// Resolve an identifier at a running node, over HTTP or DNS.
    Resolve(resolve::ResolveArgs),
    /// Write the node's public records as a DNS zone file (for NSD, Knot, BIND).
    ExportZone(serve::ExportZoneArgs),
    /// Create, show, resolve, register and deactivate did:key identities.
    #[command(subcommand)]
    Did(DidCommand),
    /// Sign a JSON document with a Data Integrity proof (eddsa-jcs-2022).
    Sign(identity::SignArgs),
    /// Verify a signed JSON document, or (without DOC) the whole node: ledger, signatures, index.
    Verify(identity::VerifyArgs),
    /// Create a node in the data directory: node key, admin, empty signed ledger.
    Init(ledger::InitArgs),
    /// The ledger: verifier key, checkpoint, proofs.
    #[command(subcommand)]
    Log(ledger::LogCommand),
    /// Create top-level prefixes (the node admin's right).
    #[command(subcommand)]
    Prefix(PrefixCommand),
    /// Delegate a sub-prefix of a prefix you control to other controllers, or to another node.
    Delegate(hierarchy::DelegateArgs),
    /// Register an identifier with its values.
    Register(records::RegisterArgs),
    /// Add, replace or remove values of an identifier.
    Update(records::UpdateArgs),
    /// Delete an identifier.
    Delete(records::DeleteArgs),
    /// Replace the controllers of an identifier or a prefix.
    Controllers(records::ControllersArgs),
    /// Show the record of an identifier, a prefix or a DID.
    Show(records::ShowArgs),
    /// Register identifiers in bulk from CSV or JSON Lines (idempotent).
    Import(records::ImportArgs),
    /// Rebuild the index from the ledger.
    Reindex,
    /// Sign and capture EPCIS 2.0 events (patients sealed off-log).
    Capture(events::CaptureArgs),
    /// Trace forward from a load, sterilizer or lot, or reverse from a patient.
    Trace(events::TraceArgs),
    /// Load a realistic CSSD scenario into a running node and print what to try.
    Demo(demo::DemoArgs),
    /// Erase the off-log payload of a sealed value (refused within retention periods).
    Erase(events::EraseArgs),
}

#[derive(Subcommand)]
enum DidCommand {
    #[command(flatten)]
    Identity(identity::DidCommand),
    /// Register a DID at the node with a public name and role (self-signed).
    Register(records::DidRegisterArgs),
    /// Deactivate a DID (signed by itself or its registrar): it can no longer act.
    Deactivate(records::DidDeactivateArgs),
}

#[derive(Subcommand)]
enum PrefixCommand {
    /// Create a top-level prefix.
    Create(records::PrefixArgs),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data = &cli.data;
    match cli.command {
        Command::Serve(args) => serve::serve(data, args),
        Command::Resolve(args) => resolve::resolve(args),
        Command::ExportZone(args) => serve::export_zone(data, args),
        Command::Did(DidCommand::Identity(command)) => identity::did(command),
        Command::Did(DidCommand::Register(args)) => records::did_register(data, args),
        Command::Did(DidCommand::Deactivate(args)) => records::did_deactivate(data, args),
        Command::Sign(args) => identity::sign(args),
        Command::Verify(args) => match args.document {
            Some(document) => identity::verify(&document),
            None => ledger::verify(&data.path),
        },
        Command::Init(args) => ledger::init(data, args),
        Command::Log(command) => ledger::log(data, command),
        Command::Prefix(PrefixCommand::Create(args)) => {
            records::prefix(data, "prefix.create", args)
        }
        Command::Delegate(args) => hierarchy::delegate(data, args),
        Command::Register(args) => records::register(data, args),
        Command::Update(args) => records::update(data, args),
        Command::Delete(args) => records::delete(data, args),
        Command::Controllers(args) => records::controllers(data, args),
        Command::Show(args) => records::show(data, args),
        Command::Import(args) => records::import(data, args),
        Command::Reindex => ledger::reindex(data),
        Command::Capture(args) => events::capture(data, args),
        Command::Trace(args) => events::trace(data, args),
        Command::Erase(args) => events::erase(data, args),
        Command::Demo(args) => demo::demo(args),
    }
}

/// The exit status of a process whose output went to a reader that had gone (`medid
/// … | head`): what a shell shows for a process ended by SIGPIPE.
const BROKEN_PIPE: i32 = 128 + 13;

/// Ends the process quietly with [`BROKEN_PIPE`] when printing to stdout failed because
/// its reader has gone (the standard library ignores SIGPIPE, so `println!` panics
/// instead); every other panic is reported as before.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        if message.is_some_and(|m| {
            m.starts_with("failed printing to stdout") && m.contains("Broken pipe")
        }) {
            std::process::exit(BROKEN_PIPE);
        }
        report(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
