//! The zone as an RFC 1035 master file, so that ordinary DNS servers (NSD, Knot, BIND)
//! can serve the same records as the node.

use std::io::Write;

use medid_registry::id::Identifier;

use super::records::{Data, NAPTR_FLAGS, NAPTR_SERVICES, NameRecords, Rr};
use super::zone::{Zone, ZoneIndex, ZoneReadError};

/// What [`export_zone`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// The SOA serial (the ledger size the index reflected).
    pub serial: u64,
    /// Names of identifiers and prefixes written.
    pub names: u64,
    /// Resource records written, SOA and NS included.
    pub records: u64,
}

/// Why the zone could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The index could not be read.
    #[error(transparent)]
    Read(#[from] ZoneReadError),
    /// The output could not be written.
    #[error("writing the zone file: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes the zone's public records as an RFC 1035 master file: `$ORIGIN`, `$TTL`, the
/// SOA (serial: the index's ledger size), the NS record and the name server's
/// addresses when it lies inside the zone, then the TXT, URI and NAPTR records of every
/// identifier and prefix, a name before the names below it — exactly what the node
/// answers over DNS. Restricted values are never written.
///
/// URI records (RFC 7553) are written in their own presentation format
/// (`URI 10 1 "https://…"`), which NSD, Knot and BIND read.
pub fn export_zone(
    zone: &Zone,
    index: &dyn ZoneIndex,
    out: &mut dyn Write,
) -> Result<ExportSummary, ExportError> {
    let config = zone.config();
    let serial = index.serial()?;
    let mut summary = ExportSummary {
        serial,
        ..ExportSummary::default()
    };
    writeln!(out, "; medid zone {}, ledger size {serial}", zone.name())?;
    writeln!(out, "$ORIGIN {}.", zone.name())?;
    writeln!(out, "$TTL {}", config.ttl)?;
    writeln!(
        out,
        "@ {} IN SOA {}. {}. {} {} {} {} {}",
        config.ttl,
        zone.ns_text(),
        zone.hostmaster_text(),
        serial & 0xffff_ffff,
        config.refresh,
        config.retry,
        config.expire,
        config.negative_ttl
    )?;
    writeln!(out, "@ {} IN NS {}.", config.ttl, zone.ns_text())?;
    summary.records += 2;
    if let Some(ns) = zone.ns_relative() {
        for address in &config.ns_addresses {
            let kind = if address.is_ipv4() { "A" } else { "AAAA" };
            writeln!(out, "{ns} {} IN {kind} {address}", config.ttl)?;
            summary.records += 1;
        }
    }
    // A name of an identifier and a prefix comes as two consecutive entries: gather
    // them, so that each RRset is written once with one TTL.
    let mut pending: Option<(String, Option<String>, Option<String>)> = None;
    for item in index.names() {
        let (name, target) = item?;
        let (identifier, prefix) = match target.strip_prefix("prefix:") {
            Some(key) => (None, Some(key.to_owned())),
            None => (Some(target), None),
        };
        match &mut pending {
            Some((current, id, key)) if *current == name => {
                if identifier.is_some() {
                    *id = identifier;
                }
                if prefix.is_some() {
                    *key = prefix;
                }
            }
            _ => {
                if let Some(done) = pending.take() {
                    write_name(zone, index, done, out, &mut summary)?;
                }
                pending = Some((name, identifier, prefix));
            }
        }
    }
    if let Some(done) = pending.take() {
        write_name(zone, index, done, out, &mut summary)?;
    }
    out.flush()?;
    Ok(summary)
}

/// Writes the records of one name.
fn write_name(
    zone: &Zone,
    index: &dyn ZoneIndex,
    (name, identifier, prefix): (String, Option<String>, Option<String>),
    out: &mut dyn Write,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let record = match identifier.as_deref().map(Identifier::parse) {
        Some(Ok(id)) => index.identifier(&id)?.map(|record| (id, record)),
        _ => None,
    };
    let records = NameRecords::build(
        zone,
        record.as_ref().map(|(id, record)| (id, record)),
        prefix.as_deref(),
    );
    summary.names += 1;
    if let Some(id) = &identifier {
        writeln!(out, "; {id}")?;
    }
    if let Some(key) = &prefix {
        writeln!(out, "; prefix {key}")?;
    }
    for rr in records.txt.iter().chain(&records.uri).chain(&records.naptr) {
        writeln!(out, "{name} {} IN {}", rr.ttl, presentation(rr))?;
        summary.records += 1;
    }
    Ok(())
}

/// The type and RDATA of a record in presentation format.
fn presentation(rr: &Rr) -> String {
    match &rr.data {
        Data::Txt(strings) => {
            let quoted: Vec<String> = strings.iter().map(|s| quoted(s)).collect();
            format!("TXT {}", quoted.join(" "))
        }
        Data::Uri {
            priority,
            weight,
            target,
        } => format!("URI {priority} {weight} {}", quoted(target)),
        Data::Naptr {
            order,
            preference,
            regexp,
        } => format!(
            "NAPTR {order} {preference} {} {} {} .",
            quoted(NAPTR_FLAGS),
            quoted(NAPTR_SERVICES),
            quoted(regexp)
        ),
    }
}

/// A character-string in quotes: `"` and `\` escaped with a backslash, bytes outside
/// printable ASCII as `\DDD` (RFC 1035 §5.1).
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quoted(b"a \"b\" \\c"), r#""a \"b\" \\c""#);
        assert_eq!(quoted("é\n".as_bytes()), r#""\195\169\010""#);
    }
}
