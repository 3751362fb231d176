//! DNS names of identifiers and prefixes: where a node's DNS front end answers for them.
//!
//! Every identifier and every prefix ([`Namespace`]) has one DNS name below the node's
//! zone. This module computes that name *relative to the zone*: lower case, labels
//! joined by `.`, no trailing dot. A resolver asks for `<relative name>.<zone>.`; with the
//! zone `medid.example`, the handle `86.1000.23/pkg-1` is `pkg-1.23.1000.86.hdl.medid.example.`.
//! The mapping is a pure function of the identifier; the registry stores each name with
//! the identifier it stands for ([`alias keys`](#how-the-index-finds-a-name)), so a DNS
//! server never has to invert it.
//!
//! # The mapping
//!
//! The name starts with the most specific label, like every DNS name; the top label says
//! which syntax follows.
//!
//! | what | name | example |
//! |---|---|---|
//! | handle `PREFIX/SUFFIX` | `<suffix label>.<prefix segments reversed>.hdl` | `86.1000.23/pkg-1` → `pkg-1.23.1000.86.hdl` |
//! | handle prefix | `<prefix segments reversed>.hdl` | `86.1000.23` → `23.1000.86.hdl` |
//! | OID `urn:oid:A.B.C` | `<arcs reversed>.oid` | `urn:oid:1.2.156.112604.1` → `1.112604.156.2.1.oid` |
//! | OID prefix (arcs) | `<arcs reversed>.oid` | `urn:oid:1.2.156` → `156.2.1.oid` |
//! | GS1 key (Digital Link path) | `<path segments reversed>.gs1` | `/01/09506000134352/10/lot7` → `lot7.10.09506000134352.01.gs1` |
//! | GS1 Company Prefix `gs1:GCP` | `<GCP>.gcp.gs1` | `gs1:950600` → `950600.gcp.gs1` |
//!
//! - **Handles.** The prefix is already lower case and made of DNS labels (see
//!   [`Prefix`](crate::id::Prefix)); its segments are written in reverse order, the
//!   root segment last, as OIDs are in ITU-T X.672's OID resolution system and IP
//!   addresses are under `in-addr.arpa`. The suffix becomes one label (below).
//! - **OIDs.** The arcs, in reverse, under `oid`, as ITU-T X.672 (ORS) does under
//!   `oid-res.org`. An OID and the prefix made of the same arcs are one node and have one
//!   name. An OID whose name would be longer than [`MAX_RELATIVE_NAME_LEN`] keeps as many
//!   arcs from the root as fit after a [hashed label](#hashed-labels) of its whole dotted
//!   form: the leading arcs of a very long OID are folded into one label.
//! - **GS1 keys.** The canonical Digital Link path `/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`,
//!   segments in reverse order: the Application Identifier codes and the GTIN stand for
//!   themselves; a consumer product variant, lot or serial number is a
//!   [value label](#value-labels) of its (percent-decoded) value. A GS1 Company Prefix
//!   (6 to 12 digits) is named under `gcp.gs1`, where no GS1 key can be (the label
//!   below `gs1` of a key is always `01`).
//!
//! ## Value labels
//!
//! DNS names are case-insensitive but handle suffixes and GS1 values are not: `PKG-1`
//! and `pkg-1` are two identifiers. A suffix or value therefore stands for itself only
//! when it already is a lower-case LDH label that does not start with the hashed-label
//! marker — it matches `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$` and does not start with
//! [`HASHED_LABEL_MARKER`] `h--` — and (for a handle suffix) the whole name fits in
//! [`MAX_RELATIVE_NAME_LEN`] characters. Every other suffix or value (upper-case
//! letters, dots, slashes, other punctuation, too long, or starting with `h--`) gets a
//! hashed label.
//!
//! ## Hashed labels
//!
//! A hashed label is [`HASHED_LABEL_MARKER`] (`h--`) followed by the lower-case base32
//! (RFC 4648 alphabet `a-z2-7`, no padding) of the first 16 bytes of SHA-256 over the
//! bytes of the value — the suffix as written; the GS1 value as the key holds it (a
//! Digital Link value percent-decoded: `/10/A%2FB` hashes `A/B`); the OID's dotted arcs
//! (`1.2.840…`) — 29 characters in all:
//!
//! - `86.1000.23/PKG-1` → `h--o5tpsfbjaoqt7dlkbvgfeoq37y.23.1000.86.hdl`
//! - `/01/09506000134352/10/LOT7/21/S1` →
//!   `h--g2lk2wlxpye5l4w2vs2uiarnim.21.h--3ag7ibzk45n4ikszz2vzorr2ui.10.09506000134352.01.gs1`
//!
//! A plain label never starts with `h--`, so a plain label and a hashed one never
//! collide; two hashed labels collide only if SHA-256 truncated to 128 bits does. So
//! two distinct identifiers always have distinct names (and so do two distinct
//! prefixes). A name stands for an identifier and a prefix at once only where the two
//! syntaxes meet: a handle whose suffix is a plain label and the prefix one segment
//! longer (`86.1000/23` and the prefix `86.1000.23` are both `23.1000.86.hdl`), or an
//! OID and the prefix of the same arcs (`urn:oid:1.2.3` and `1.2.3`, both `3.2.1.oid`).
//! A DNS server answers such a name with what both say.
//!
//! ## Lengths
//!
//! Every label has 1 to 63 characters of `a-z 0-9 -`, and every relative name at most
//! [`MAX_RELATIVE_NAME_LEN`] (192) characters, so that with a zone name of up to
//! [`MAX_ZONE_NAME_LEN`] (60) characters the full name stays within DNS's 253.
//!
//! # How the index finds a name
//!
//! The registry's index keeps one *alias key* per name (see [`crate::Index::alias`]):
//! `a/<labels in reverse>` → the canonical identifier, and `a/<labels in reverse> prefix`
//! → `prefix:<namespace key>`. With the labels reversed (`a/hdl.86.1000.23.pkg-1`),
//! everything below a name shares a key prefix (`a/hdl.86.1000.23.`), so "does anything
//! exist under this name" — an empty non-terminal in DNS terms — is one range scan.
//! [`reversed_name`] gives that order.
//!
//! Everything here is a pure function without I/O. base32 is written by hand (a dozen
//! lines) because the registry has no base32 dependency and needs only this one,
//! fixed-size encoding.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::id::{Gs1Key, Handle, Identifier, Namespace};

/// The start of every hashed label. No plain label starts with it.
pub const HASHED_LABEL_MARKER: &str = "h--";
/// Bytes of SHA-256 a hashed label keeps.
pub const HASHED_LABEL_BYTES: usize = 16;
/// Length of a hashed label: the marker and 26 base32 characters.
pub const HASHED_LABEL_LEN: usize = HASHED_LABEL_MARKER.len() + 26;
/// Longest zone name (without the trailing dot) the mapping leaves room for.
pub const MAX_ZONE_NAME_LEN: usize = 60;
/// Longest relative name: 253 characters of a full name, minus the zone and its dot.
pub const MAX_RELATIVE_NAME_LEN: usize = 253 - 1 - MAX_ZONE_NAME_LEN;
/// Longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;

/// Top label of handles and handle prefixes.
pub const HANDLE_LABEL: &str = "hdl";
/// Top label of OIDs and OID prefixes.
pub const OID_LABEL: &str = "oid";
/// Top label of GS1 keys and GS1 Company Prefixes.
pub const GS1_LABEL: &str = "gs1";
/// Label below [`GS1_LABEL`] of GS1 Company Prefixes.
pub const GS1_COMPANY_PREFIX_LABEL: &str = "gcp";

/// The DNS name of an identifier, relative to the zone: lower case, no trailing dot.
///
/// ```
/// # use medid_registry::{dnsname::identifier_name, id::Identifier};
/// let id = Identifier::parse("86.1000.23/pkg-1").unwrap();
/// assert_eq!(identifier_name(&id), "pkg-1.23.1000.86.hdl");
/// let id = Identifier::parse("urn:oid:1.2.156.112604.1").unwrap();
/// assert_eq!(identifier_name(&id), "1.112604.156.2.1.oid");
/// ```
pub fn identifier_name(id: &Identifier) -> String {
    match id {
        Identifier::Handle(handle) => handle_name(handle),
        Identifier::Oid(oid) => arcs_name(oid.arcs()),
        Identifier::Gs1(key) => gs1_name(key),
    }
}

/// The DNS name of a prefix (namespace), relative to the zone: lower case, no trailing
/// dot.
///
/// ```
/// # use medid_registry::{dnsname::namespace_name, id::Namespace};
/// let ns = Namespace::from_key("hdl:86.1000.23").unwrap();
/// assert_eq!(namespace_name(&ns), "23.1000.86.hdl");
/// let ns = Namespace::from_key("gs1:950600").unwrap();
/// assert_eq!(namespace_name(&ns), "950600.gcp.gs1");
/// ```
pub fn namespace_name(ns: &Namespace) -> String {
    match ns {
        Namespace::Handle(prefix) => {
            let mut name = String::with_capacity(prefix.as_str().len() + 4);
            push_reversed(&mut name, prefix.segments());
            name.push('.');
            name.push_str(HANDLE_LABEL);
            name
        }
        Namespace::Oid(arcs) => arcs_name(arcs),
        Namespace::Gs1Gtin(digits) => {
            format!("{digits}.{GS1_COMPANY_PREFIX_LABEL}.{GS1_LABEL}")
        }
    }
}

/// The label of a handle suffix or GS1 value: the value itself when it is a
/// [plain label](is_plain_label), else its [hashed label](hashed_label).
pub fn value_label(value: &str) -> Cow<'_, str> {
    if is_plain_label(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(hashed_label(value.as_bytes()))
    }
}

/// Whether `s` stands for itself as a label: a lower-case LDH label
/// (`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`) that does not start with
/// [`HASHED_LABEL_MARKER`].
pub fn is_plain_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let ldh = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    (1..=MAX_LABEL_LEN).contains(&bytes.len())
        && bytes.iter().all(ldh)
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
        && !s.starts_with(HASHED_LABEL_MARKER)
}

/// The hashed label of `value`: [`HASHED_LABEL_MARKER`] and the lower-case base32 (no
/// padding) of the first [`HASHED_LABEL_BYTES`] bytes of SHA-256(`value`).
pub fn hashed_label(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    let mut label = String::with_capacity(HASHED_LABEL_LEN);
    label.push_str(HASHED_LABEL_MARKER);
    base32_lower(
        digest.get(..HASHED_LABEL_BYTES).unwrap_or_default(),
        &mut label,
    );
    label
}

/// A relative name with its labels in reverse order (`pkg-1.23.1000.86.hdl` →
/// `hdl.86.1000.23.pkg-1`), the order of the index's alias keys. The empty name (the
/// zone apex) stays empty.
pub fn reversed_name(relative_name: &str) -> String {
    let mut out = String::with_capacity(relative_name.len());
    push_reversed(&mut out, relative_name.split('.'));
    out
}

/// Appends `labels` in reverse order, joined by dots.
fn push_reversed<'a>(out: &mut String, labels: impl DoubleEndedIterator<Item = &'a str>) {
    for (i, label) in labels.rev().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(label);
    }
}

/// `<suffix label>.<prefix segments reversed>.hdl`.
fn handle_name(handle: &Handle) -> String {
    let prefix = handle.prefix().as_str();
    let suffix = handle.suffix();
    // suffix label, dot, prefix, dot, "hdl"
    let plain_len = suffix.len() + 1 + prefix.len() + 1 + HANDLE_LABEL.len();
    let label = if is_plain_label(suffix) && plain_len <= MAX_RELATIVE_NAME_LEN {
        Cow::Borrowed(suffix)
    } else {
        Cow::Owned(hashed_label(suffix.as_bytes()))
    };
    let mut name = String::with_capacity(label.len() + prefix.len() + 5);
    name.push_str(&label);
    name.push('.');
    push_reversed(&mut name, handle.prefix().segments());
    name.push('.');
    name.push_str(HANDLE_LABEL);
    name
}

/// `<arcs reversed>.oid`, the leading arcs folded into a hashed label when too long.
fn arcs_name(arcs: &[u128]) -> String {
    let labels: Vec<String> = arcs.iter().map(u128::to_string).collect();
    let full_len = labels.iter().map(|l| l.len() + 1).sum::<usize>() + OID_LABEL.len();
    let mut name = String::with_capacity(full_len.min(MAX_RELATIVE_NAME_LEN));
    if full_len <= MAX_RELATIVE_NAME_LEN {
        push_reversed(&mut name, labels.iter().map(String::as_str));
    } else {
        // Keep as many arcs from the root as fit after the hashed label.
        let mut kept = 0;
        let mut len = HASHED_LABEL_LEN + 1 + OID_LABEL.len();
        while let Some(label) = labels.get(kept) {
            if len + label.len() + 1 > MAX_RELATIVE_NAME_LEN {
                break;
            }
            len += label.len() + 1;
            kept += 1;
        }
        name.push_str(&hashed_label(labels.join(".").as_bytes()));
        for label in labels.iter().take(kept).rev() {
            name.push('.');
            name.push_str(label);
        }
        name.push('.');
        name.push_str(OID_LABEL);
        return name;
    }
    name.push('.');
    name.push_str(OID_LABEL);
    name
}

/// The Digital Link path segments of a GS1 key, reversed, under `gs1`.
fn gs1_name(key: &Gs1Key) -> String {
    let mut segments: Vec<Cow<'_, str>> = vec![Cow::Borrowed("01"), Cow::Borrowed(key.gtin())];
    for (code, value) in [("22", key.cpv()), ("10", key.lot()), ("21", key.serial())] {
        if let Some(value) = value {
            segments.push(Cow::Borrowed(code));
            segments.push(value_label(value));
        }
    }
    let mut name = String::with_capacity(64);
    push_reversed(&mut name, segments.iter().map(AsRef::as_ref));
    name.push('.');
    name.push_str(GS1_LABEL);
    name
}

/// RFC 4648 base32, lower case, without padding.
fn base32_lower(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::{Rng, SeedableRng};

    use super::*;

    fn name(id: &str) -> String {
        identifier_name(&Identifier::parse(id).unwrap())
    }

    fn ns(key: &str) -> String {
        namespace_name(&Namespace::from_key(key).unwrap())
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            let mut out = String::new();
            base32_lower(input.as_bytes(), &mut out);
            assert_eq!(out, expected, "{input}");
        }
    }

    #[test]
    fn golden_names() {
        let h = |s: &str| hashed_label(s.as_bytes());
        for (id, expected) in [
            ("86.1000.23/pkg-1", "pkg-1.23.1000.86.hdl".to_owned()),
            ("86.1000.23/PKG-1", format!("{}.23.1000.86.hdl", h("PKG-1"))),
            ("86.ABC/x", "x.abc.86.hdl".to_owned()),
            ("86.1000/a.b", format!("{}.1000.86.hdl", h("a.b"))),
            ("86.1000/a/b", format!("{}.1000.86.hdl", h("a/b"))),
            ("86.1000/-a", format!("{}.1000.86.hdl", h("-a"))),
            ("86.1000/a-", format!("{}.1000.86.hdl", h("a-"))),
            ("86.1000/h--x", format!("{}.1000.86.hdl", h("h--x"))),
            ("86.1000/h-x", "h-x.1000.86.hdl".to_owned()),
            ("86.1000/a--b", "a--b.1000.86.hdl".to_owned()),
            (
                "urn:oid:1.2.156.112604.1",
                "1.112604.156.2.1.oid".to_owned(),
            ),
            ("urn:oid:2.999", "999.2.oid".to_owned()),
            (
                "/01/09506000134352/10/LOT7/21/S1",
                format!("{}.21.{}.10.09506000134352.01.gs1", h("S1"), h("LOT7")),
            ),
            (
                "/01/09506000134352/10/lot7",
                "lot7.10.09506000134352.01.gs1".to_owned(),
            ),
            (
                "/01/09506000134352/22/2a/10/l.1",
                format!("{}.10.2a.22.09506000134352.01.gs1", h("l.1")),
            ),
            (
                "(01)09506000134352(10)A%2FB",
                format!("{}.10.09506000134352.01.gs1", h("A%2FB")),
            ),
            (
                "/01/09506000134352/10/A%2FB",
                format!("{}.10.09506000134352.01.gs1", h("A/B")),
            ),
        ] {
            assert_eq!(name(id), expected, "{id}");
        }
        // The examples the module documentation shows.
        assert_eq!(
            name("86.1000.23/PKG-1"),
            "h--o5tpsfbjaoqt7dlkbvgfeoq37y.23.1000.86.hdl"
        );
        assert_eq!(
            name("/01/09506000134352/10/LOT7/21/S1"),
            "h--g2lk2wlxpye5l4w2vs2uiarnim.21.h--3ag7ibzk45n4ikszz2vzorr2ui.10.\
             09506000134352.01.gs1"
        );
        assert_eq!(ns("hdl:86.1000.23"), "23.1000.86.hdl");
        assert_eq!(ns("hdl:86"), "86.hdl");
        assert_eq!(ns("oid:1.2.156"), "156.2.1.oid");
        assert_eq!(ns("oid:1"), "1.oid");
        assert_eq!(ns("gs1:950600"), "950600.gcp.gs1");
        assert_eq!(
            reversed_name("pkg-1.23.1000.86.hdl"),
            "hdl.86.1000.23.pkg-1"
        );
        assert_eq!(reversed_name(""), "");
        assert_eq!(reversed_name("hdl"), "hdl");
    }

    #[test]
    fn handles_and_oids_are_named_below_their_prefix() {
        for id in [
            "86.1000.23/pkg-1",
            "86.1000.23/PKG-1",
            "urn:oid:1.2.156.112604.1",
        ] {
            let id = Identifier::parse(id).unwrap();
            let name = identifier_name(&id);
            let parent = namespace_name(&id.namespace());
            assert_eq!(
                name.split_once('.').map(|(_, rest)| rest),
                Some(parent.as_str()),
                "{id}"
            );
        }
        // A GS1 key lies under its GTIN, not under its company prefix.
        let key = Identifier::parse("/01/09506000134352/10/lot7").unwrap();
        assert!(identifier_name(&key).ends_with(".09506000134352.01.gs1"));
    }

    #[test]
    fn long_suffixes_and_oids_are_folded_into_hashed_labels() {
        let prefix = ["a"; 64].join(".");
        assert_eq!(prefix.len(), 127);
        let suffix = "x".repeat(63);
        let long = format!("{prefix}/{suffix}");
        let n = name(&long);
        assert!(n.starts_with(HASHED_LABEL_MARKER), "{n}");
        assert!(n.len() <= MAX_RELATIVE_NAME_LEN);
        let short = format!("{prefix}/{}", "x".repeat(59));
        assert!(name(&short).starts_with("xxx"), "fits: stays plain");

        let arcs: Vec<String> = (0..100).map(|i| (i + 1000).to_string()).collect();
        let oid = format!("urn:oid:1.2.{}", arcs.join("."));
        let n = name(&oid);
        assert!(n.starts_with(HASHED_LABEL_MARKER), "{n}");
        assert!(
            n.ends_with(".1001.1000.2.1.oid"),
            "keeps the root arcs: {n}"
        );
        assert!(n.len() <= MAX_RELATIVE_NAME_LEN, "{}", n.len());
        assert!(
            n.len() > MAX_RELATIVE_NAME_LEN - 6,
            "keeps as many arcs as fit"
        );
    }

    /// Every label is LDH and at most 63 characters; the name with a 60-character zone
    /// fits DNS's 253.
    fn assert_valid(name: &str) {
        assert!(
            name.len() <= MAX_RELATIVE_NAME_LEN,
            "{name}: {}",
            name.len()
        );
        let zone = "z".repeat(MAX_ZONE_NAME_LEN);
        assert!(format!("{name}.{zone}").len() <= 253);
        for label in name.split('.') {
            assert!(
                (1..=MAX_LABEL_LEN).contains(&label.len()),
                "{name}: `{label}`"
            );
            assert!(
                label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}: `{label}`"
            );
            assert!(
                !label.starts_with('-') && !label.ends_with('-'),
                "{name}: `{label}`"
            );
        }
    }

    /// A generated mix of identifiers that differ in case, punctuation and length.
    fn generated(count: usize) -> Vec<Identifier> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"aA0-./_hH";
        let prefixes = ["86", "86.1000", "86.1000.23", "20.500.12345", "86.1000.2"];
        let mut ids = HashSet::new();
        while ids.len() < count {
            let id = match rng.gen_range(0..4) {
                0 | 1 => {
                    let len = rng.gen_range(1..=8);
                    let suffix: String = (0..len)
                        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
                        .collect();
                    let long = if rng.gen_bool(0.05) {
                        "x".repeat(rng.gen_range(50..=200 - len))
                    } else {
                        String::new()
                    };
                    let prefix = prefixes[rng.gen_range(0..prefixes.len())];
                    Identifier::parse(&format!("{prefix}/{suffix}{long}"))
                }
                2 => {
                    let n = rng.gen_range(0..6);
                    let arcs: Vec<String> = (0..n)
                        .map(|_| rng.gen_range(0..40u32).to_string())
                        .collect();
                    let tail = if arcs.is_empty() {
                        String::new()
                    } else {
                        format!(".{}", arcs.join("."))
                    };
                    Identifier::parse(&format!(
                        "urn:oid:{}.{}{tail}",
                        rng.gen_range(0..3),
                        rng.gen_range(0..40)
                    ))
                }
                _ => {
                    let value = |rng: &mut rand::rngs::StdRng| -> String {
                        let len = rng.gen_range(1..=4);
                        (0..len)
                            .map(|_| char::from(b"aA1-."[rng.gen_range(0..5)]))
                            .collect()
                    };
                    let lot = if rng.gen_bool(0.7) {
                        Some(value(&mut rng))
                    } else {
                        None
                    };
                    let serial = if rng.gen_bool(0.5) {
                        Some(value(&mut rng))
                    } else {
                        None
                    };
                    let gtin =
                        ["09506000134352", "00614141000036", "10614141000033"][rng.gen_range(0..3)];
                    Gs1Key::new(gtin, None, lot.as_deref(), serial.as_deref()).map(Identifier::Gs1)
                }
            };
            if let Ok(id) = id {
                ids.insert(id);
            }
        }
        ids.into_iter().collect()
    }

    #[test]
    fn distinct_identifiers_have_distinct_valid_names() {
        let ids = generated(30_000);
        let mut names = HashSet::new();
        for id in &ids {
            let name = identifier_name(id);
            assert_valid(&name);
            assert!(names.insert(name.clone()), "{id} repeats the name {name}");
        }
        // Namespace names are valid too, and an identifier is never a namespace's name
        // unless its suffix is the next prefix segment (the documented shared name).
        for id in &ids {
            let ns = id.namespace();
            let Ok(ns) = Namespace::from_key(&ns.namespace_key()) else {
                continue;
            };
            assert_valid(&namespace_name(&ns));
        }
        assert_eq!(
            name("86.1000/23"),
            ns("hdl:86.1000.23"),
            "the documented shared name"
        );
    }

    #[test]
    fn plain_labels() {
        for ok in ["a", "0", "pkg-1", "a--b", "h-x", &"a".repeat(63)] {
            assert!(is_plain_label(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "-a",
            "a-",
            "a.b",
            "a_b",
            "h--",
            "h--x",
            &"a".repeat(64),
            "é",
        ] {
            assert!(!is_plain_label(bad), "{bad}");
        }
        assert_eq!(hashed_label(b"x").len(), HASHED_LABEL_LEN);
        assert!(!is_plain_label(&hashed_label(b"x")));
    }
}
