//! The resource records of a name: what an identifier's public values and a prefix look
//! like in DNS. The one place the formats are decided; the wire answers
//! ([`super::answer`]) and the zone file ([`super::zonefile`]) both use it.

use medid_registry::IdentifierRecord;
use medid_registry::id::Identifier;
use medid_registry::op::ReadPermission;

use super::zone::Zone;

/// Longest character-string in a TXT record.
pub(crate) const MAX_CHARACTER_STRING: usize = 255;
/// URI record PRIORITY of every URL value.
pub(crate) const URI_PRIORITY: u16 = 10;
/// URI record WEIGHT of every URL value.
pub(crate) const URI_WEIGHT: u16 = 1;
/// NAPTR ORDER of every record.
pub(crate) const NAPTR_ORDER: u16 = 100;
/// NAPTR PREFERENCE of the record pointing at the node's resolution URL.
pub(crate) const NAPTR_NODE_PREFERENCE: u16 = u16::MAX;
/// NAPTR FLAGS: the rewrite gives a URI and ends the lookup.
pub(crate) const NAPTR_FLAGS: &[u8] = b"U";
/// NAPTR SERVICES: the X.672 ORS URI information service.
pub(crate) const NAPTR_SERVICES: &[u8] = b"ORS+UINF";
/// RR type number of URI (RFC 7553), which hickory-proto carries as an unknown type.
pub(crate) const URI_TYPE: u16 = 256;

/// The data of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data {
    /// TXT: character-strings of at most 255 bytes.
    Txt(Vec<Vec<u8>>),
    /// URI: priority, weight, target.
    Uri {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// The URI.
        target: Vec<u8>,
    },
    /// NAPTR with [`NAPTR_FLAGS`], [`NAPTR_SERVICES`] and the root as replacement.
    Naptr {
        /// Order.
        order: u16,
        /// Preference.
        preference: u16,
        /// The regexp `!^.*$!<uri>!`.
        regexp: Vec<u8>,
    },
}

/// One record of a name (the owner is the name being answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rr {
    pub(crate) ttl: u32,
    pub(crate) data: Data,
}

/// The RRsets of a name that stands for an identifier, a prefix or both. Within each
/// RRset every record has the RRset's smallest TTL (RFC 2181 §5.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NameRecords {
    pub(crate) txt: Vec<Rr>,
    pub(crate) uri: Vec<Rr>,
    pub(crate) naptr: Vec<Rr>,
}

impl NameRecords {
    /// The records of a name: those of the identifier's public values (when `identifier`
    /// is given) and of the prefix (its namespace key, when given).
    pub(crate) fn build(
        zone: &Zone,
        identifier: Option<(&Identifier, &IdentifierRecord)>,
        prefix: Option<&str>,
    ) -> Self {
        let mut records = NameRecords::default();
        let mut oid_node = None;
        if let Some((id, record)) = identifier {
            for stored in &record.values {
                let value = &stored.value;
                let Some(data) = value.data.as_deref() else {
                    continue;
                };
                if value.commitment.is_some() || value.read != ReadPermission::Public {
                    continue;
                }
                records.txt.push(Rr {
                    ttl: value.ttl,
                    data: Data::Txt(txt_strings(&format!(
                        "{} {} {data}",
                        value.index, value.kind
                    ))),
                });
                if value.kind == "URL" && !data.is_empty() {
                    records.uri.push(Rr {
                        ttl: value.ttl,
                        data: Data::Uri {
                            priority: URI_PRIORITY,
                            weight: URI_WEIGHT,
                            target: data.as_bytes().to_vec(),
                        },
                    });
                    if matches!(id, Identifier::Oid(_)) {
                        records.naptr.push(Rr {
                            ttl: value.ttl,
                            data: Data::Naptr {
                                order: NAPTR_ORDER,
                                preference: u16::try_from(value.index)
                                    .unwrap_or(u16::MAX - 1)
                                    .min(u16::MAX - 1),
                                regexp: naptr_regexp(data),
                            },
                        });
                    }
                }
            }
            if matches!(id, Identifier::Oid(_)) {
                oid_node = Some(id.to_string());
            }
        }
        if let Some(key) = prefix {
            records.txt.push(Rr {
                ttl: zone.config().ttl,
                data: Data::Txt(txt_strings(&format!("prefix {key}"))),
            });
            if oid_node.is_none()
                && let Some(arcs) = key.strip_prefix("oid:")
            {
                oid_node = Some(format!("urn:oid:{arcs}"));
            }
        }
        if let (Some(node), Some(template)) = (oid_node, &zone.config().resolution_url) {
            records.naptr.push(Rr {
                ttl: zone.config().ttl,
                data: Data::Naptr {
                    order: NAPTR_ORDER,
                    preference: NAPTR_NODE_PREFERENCE,
                    regexp: naptr_regexp(&template.replace("{id}", &node)),
                },
            });
        }
        for set in [&mut records.txt, &mut records.uri, &mut records.naptr] {
            let ttl = set.iter().map(|rr| rr.ttl).min().unwrap_or(0);
            for rr in set.iter_mut() {
                rr.ttl = ttl;
            }
        }
        records
    }
}

/// `text` cut into character-strings of at most 255 bytes, at character boundaries (a
/// client concatenates them to get the text back). Empty text is one empty string.
pub(crate) fn txt_strings(text: &str) -> Vec<Vec<u8>> {
    let mut strings = Vec::with_capacity(text.len() / MAX_CHARACTER_STRING + 1);
    let mut rest = text;
    while rest.len() > MAX_CHARACTER_STRING {
        let mut cut = MAX_CHARACTER_STRING;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        strings.push(head.as_bytes().to_vec());
        rest = tail;
    }
    strings.push(rest.as_bytes().to_vec());
    strings
}

/// The NAPTR regexp that rewrites anything to `uri`: `!^.*$!<uri>!`, with `\` and `!`
/// in the URI escaped by a backslash (RFC 3402 §3.2).
pub(crate) fn naptr_regexp(uri: &str) -> Vec<u8> {
    let mut regexp = Vec::with_capacity(uri.len() + 8);
    regexp.extend_from_slice(b"!^.*$!");
    for &b in uri.as_bytes() {
        if b == b'\\' || b == b'!' {
            regexp.push(b'\\');
        }
        regexp.push(b);
    }
    regexp.push(b'!');
    regexp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_strings_split_at_255_bytes_on_character_boundaries() {
        assert_eq!(txt_strings(""), vec![Vec::<u8>::new()]);
        let long = "a".repeat(600);
        let parts = txt_strings(&long);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            [255, 255, 90]
        );
        let wide = "é".repeat(200); // 400 bytes
        let parts = txt_strings(&wide);
        assert_eq!(parts[0].len(), 254);
        assert_eq!(parts.concat(), wide.as_bytes());
    }

    #[test]
    fn naptr_regexp_escapes_its_delimiter() {
        assert_eq!(naptr_regexp("https://a/b"), b"!^.*$!https://a/b!");
        assert_eq!(naptr_regexp("x!y\\z"), b"!^.*$!x\\!y\\\\z!");
    }
}
