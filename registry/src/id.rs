//! Identifier syntax: the three ways to write a medid identifier, parsed into one
//! canonical value.
//!
//! - [`Identifier`] — a parsed identifier, one of
//!   - [`Handle`] — Handle System style `PREFIX/SUFFIX`, such as `86.1000.23/PKG-0001`,
//!     whose [`Prefix`] is the dotted, hierarchical part that is created and delegated;
//!   - [`Oid`] — `urn:oid:1.2.156.112604.1`, whose arcs are the hierarchy;
//!   - [`Gs1Key`] — a GTIN with its key qualifiers (consumer product variant, batch/lot,
//!     serial number), written as a GS1 element string `(01)09506000134352(10)LOT7` or as
//!     a GS1 Digital Link path `/01/09506000134352/10/LOT7` or URI.
//!
//!   [`Identifier::parse`] picks the syntax from the input; [`Identifier::canonical`]
//!   (also `Display` and serde) writes the one canonical form, and parsing that gives
//!   back an equal value.
//! - [`Namespace`] — what controls an identifier (a handle prefix, an OID's parent arcs,
//!   the GS1 Company Prefix digits of a GTIN), with string keys for a longest-prefix
//!   search in a sorted key-value store ([`Namespace::namespace_key`],
//!   [`Namespace::ancestors_keys`]).
//! - [`IdError`] — why a string is not an identifier, naming the part, the position and
//!   what to write instead.
//!
//! Parsing never normalises silently: input that is not canonical is refused with an
//! error that shows the canonical form. The only exceptions are equivalences that the
//! syntaxes define themselves:
//! - handle prefixes are case-insensitive in the Handle System, so a prefix is
//!   lower-cased (the suffix is kept exactly as written);
//! - the URN scheme and namespace identifier are case-insensitive (RFC 8141, RFC 3061),
//!   so `URN:OID:` is read as `urn:oid:`;
//! - a GS1 element string may list its AIs in any order, and a Digital Link value may be
//!   percent-encoded in any equivalent way (`%2f` = `%2F`, `%41` = `A`); the canonical
//!   form is the Digital Link path `/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`;
//! - the scheme, host and any path before `/01/` of a Digital Link URI name the
//!   resolver, not the object, and are dropped;
//! - GS1 data attributes ((11), (13), (15), (17) dates) describe the object but do not
//!   identify it: they are kept in [`Gs1Key::attributes`] and left out of equality and
//!   of the canonical form.
//!
//! Everything here is a pure function of its input, without I/O. The rules are written
//! by hand because no maintained crate validates Handle prefixes, OIDs and GS1 keys with
//! the registry's rules and errors (a check digit error that names the expected digit, a
//! canonical Digital Link path).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest input [`Identifier::parse`] looks at, in bytes (a Digital Link URI with a
/// long host is the longest legitimate form).
pub const MAX_INPUT_LEN: usize = 2048;
/// Longest handle prefix, in bytes. A handle maps to a DNS name
/// `<suffix label>.<prefix segments reversed>.hdl.<zone>` of at most 253 bytes; 128
/// leaves room for a 63-byte suffix label and the zone.
pub const MAX_PREFIX_LEN: usize = 128;
/// Longest handle prefix segment, in characters (a DNS label).
pub const MAX_PREFIX_SEGMENT_LEN: usize = 63;
/// Longest handle suffix, in bytes.
pub const MAX_SUFFIX_LEN: usize = 200;
/// Longest OID, in characters of its dotted form (after `urn:oid:`).
pub const MAX_OID_LEN: usize = 512;
/// Longest GS1 consumer product variant, batch/lot or serial number, in characters.
pub const MAX_GS1_VALUE_LEN: usize = 20;
/// Shortest GS1 Company Prefix a [`Namespace`] may hold, in digits.
pub const MIN_GS1_COMPANY_PREFIX_LEN: usize = 6;
/// Longest GS1 Company Prefix, in digits: all of a GTIN-14 but its indicator and check
/// digits.
pub const MAX_GS1_COMPANY_PREFIX_LEN: usize = 12;

/// The syntaxes, as error messages name them.
const SYNTAXES: &str = "a handle PREFIX/SUFFIX (86.1000.23/PKG-0001), an OID \
    (urn:oid:1.2.156.112604.1) or a GS1 key ((01)09506000134352(10)LOT7 or \
    /01/09506000134352/10/LOT7)";

/// The characters of GS1 AI encodable character set 82, as error messages name them.
const CSET82: &str = "A-Z a-z 0-9 and ! \" % & ' ( ) * + , - . / : ; < = > ? _";

/// Why a string is not an identifier (or a prefix, or a namespace key).
///
/// Every message names the offending part and, where it helps, its position
/// (1-based, in characters of that part) and the canonical form to write instead.
/// Input quoted in a message is shortened past 64 characters and control characters are
/// escaped, so messages are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The input is empty.
    #[error("the identifier is empty: write {}", SYNTAXES)]
    EmptyInput,
    /// The input, or one part of it, is longer than its syntax allows.
    #[error("{what} is {len} bytes long; at most {max} bytes are allowed")]
    TooLong {
        /// The part that is too long, such as "the handle suffix".
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most its syntax allows.
        max: usize,
    },
    /// The input starts or ends with whitespace.
    #[error(
        "the identifier has whitespace at its {side}: remove it (no identifier syntax \
         contains whitespace)"
    )]
    SurroundingWhitespace {
        /// `"start"` or `"end"`.
        side: &'static str,
    },
    /// A URI scheme or URN namespace that is none of the identifier syntaxes.
    #[error("`{scheme}:` is not an identifier syntax{}; write {}", scheme_hint(.scheme), SYNTAXES)]
    UnsupportedScheme {
        /// The scheme as written (for a URN, `urn:<namespace>`).
        scheme: String,
    },
    /// No `/` in something that can only be a handle.
    #[error(
        "`{input}` has no `/SUFFIX`: a handle is PREFIX/SUFFIX, such as \
         86.1000.23/PKG-0001 (an OID is written urn:oid:1.2.3)"
    )]
    MissingSuffix {
        /// The input as written.
        input: String,
    },
    /// Nothing before the `/` of a handle, or an empty prefix.
    #[error(
        "the handle prefix is empty: a handle is PREFIX/SUFFIX, such as \
         86.1000.23/PKG-0001 (a GS1 Digital Link path starts with /01/)"
    )]
    EmptyPrefix,
    /// A segment of a handle prefix breaks the segment rules.
    #[error("handle prefix segment {index} `{segment}` {reason}")]
    BadPrefixSegment {
        /// Position of the segment in the prefix, from 1.
        index: usize,
        /// The segment as written.
        segment: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The suffix of a handle breaks the suffix rules.
    #[error("invalid handle suffix: {reason}")]
    BadSuffix {
        /// What is wrong with it.
        reason: String,
    },
    /// An OID breaks the OID rules.
    #[error("invalid OID: {reason}")]
    BadOid {
        /// What is wrong with it.
        reason: String,
    },
    /// A GS1 element string, Digital Link path or Digital Link URI breaks the GS1 rules.
    #[error("invalid GS1 key: {reason}")]
    BadGs1 {
        /// What is wrong with it.
        reason: String,
    },
    /// A GTIN whose last digit is not its GS1 mod-10 check digit.
    #[error("GTIN {gtin}: check digit is {}, expected {expected}", last_char(.gtin))]
    BadCheckDigit {
        /// The 14-digit GTIN as written.
        gtin: String,
        /// The check digit its first 13 digits call for.
        expected: u8,
    },
    /// A string that is not a namespace key (`hdl:…`, `oid:…`, `gs1:…`).
    #[error("invalid namespace key: {reason}")]
    BadNamespaceKey {
        /// What is wrong with it.
        reason: String,
    },
}

/// What to do instead of a scheme that is no identifier syntax.
fn scheme_hint(scheme: &str) -> &'static str {
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "hdl" | "doi" => " (drop the scheme: a handle is written PREFIX/SUFFIX)",
        "did" => " (a DID is an identity: resolve it through the DID resolution binding)",
        s if s.starts_with("urn:") => " (the only URN namespace here is urn:oid:)",
        _ => "",
    }
}

/// The last character of a string, for [`IdError::BadCheckDigit`].
fn last_char(s: &str) -> char {
    s.chars().next_back().unwrap_or('?')
}

/// A piece of input as an error message quotes it: control characters and invisible
/// non-ASCII characters escaped, and shortened past 64 characters.
fn shown(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_ascii_graphic() || c == ' ' || (!c.is_ascii() && c.is_alphanumeric()) {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// A character as an error message names it: `` `c` (U+0063) ``.
fn char_desc(c: char) -> String {
    format!(
        "`{}` (U+{:04X})",
        shown(c.encode_utf8(&mut [0; 4])),
        u32::from(c)
    )
}

/// The first character of `s` that `allowed` refuses, with its position from 1.
fn first_refused(s: &str, allowed: impl Fn(char) -> bool) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|&(_, c)| !allowed(c))
        .map(|(i, c)| (i + 1, c))
}

/// The checks every public parser makes first: not empty, not too long, no whitespace
/// around it.
fn check_outer(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::EmptyInput);
    }
    if s.len() > MAX_INPUT_LEN {
        return Err(IdError::TooLong {
            what: "the identifier",
            len: s.len(),
            max: MAX_INPUT_LEN,
        });
    }
    if s.starts_with(char::is_whitespace) {
        return Err(IdError::SurroundingWhitespace { side: "start" });
    }
    if s.ends_with(char::is_whitespace) {
        return Err(IdError::SurroundingWhitespace { side: "end" });
    }
    Ok(())
}

/// Whether `s` is a URI scheme name (RFC 3986: a letter, then letters, digits, `+`,
/// `-` and `.`).
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

// ---------------------------------------------------------------------------------------
// Identifier
// ---------------------------------------------------------------------------------------

/// A medid identifier in one of its three syntaxes.
///
/// Two identifiers are equal when their canonical forms are equal. `Display`, serde and
/// [`Identifier::canonical`] write the canonical form; `FromStr`, serde and
/// [`Identifier::parse`] read any accepted form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    /// A Handle System style `PREFIX/SUFFIX`.
    Handle(Handle),
    /// An OID, `urn:oid:…`.
    Oid(Oid),
    /// A GS1 key: a GTIN and its key qualifiers.
    Gs1(Gs1Key),
}

impl Identifier {
    /// Parses any identifier syntax, chosen by the input's start:
    /// - `urn:oid:` (any case) → [`Oid`];
    /// - `(`, a `/` followed by digits, or `http://` / `https://` → [`Gs1Key`] (element
    ///   string, Digital Link path, Digital Link URI);
    /// - anything else → [`Handle`].
    ///
    /// Other URI schemes and URN namespaces are refused with
    /// [`IdError::UnsupportedScheme`].
    pub fn parse(s: &str) -> Result<Identifier, IdError> {
        check_outer(s)?;
        if s.starts_with('(') {
            return Gs1Key::parse(s).map(Identifier::Gs1);
        }
        if let Some(rest) = s.strip_prefix('/') {
            let first = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
                return Gs1Key::parse(s).map(Identifier::Gs1);
            }
            return Handle::parse(s).map(Identifier::Handle);
        }
        let head = s.split('/').next().unwrap_or_default();
        if let Some((scheme, after)) = head.split_once(':')
            && is_scheme(scheme)
        {
            if scheme.eq_ignore_ascii_case("urn") {
                let nid = after.split(':').next().unwrap_or_default();
                if nid.eq_ignore_ascii_case("oid") {
                    return Oid::parse(s).map(Identifier::Oid);
                }
                return Err(IdError::UnsupportedScheme {
                    scheme: format!("urn:{}", shown(nid)),
                });
            }
            if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") {
                return Gs1Key::parse(s).map(Identifier::Gs1);
            }
            return Err(IdError::UnsupportedScheme {
                scheme: shown(scheme),
            });
        }
        Handle::parse(s).map(Identifier::Handle)
    }

    /// The canonical form: `prefix/suffix` with the prefix lower-cased, `urn:oid:…`, or
    /// the GS1 Digital Link path `/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`.
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// What controls this identifier: the handle's prefix, the OID's arcs without the
    /// last, or the GTIN's digits 2 to 13 (the range of every GS1 Company Prefix that
    /// can have allocated it).
    pub fn namespace(&self) -> Namespace {
        match self {
            Identifier::Handle(handle) => Namespace::Handle(handle.prefix.clone()),
            Identifier::Oid(oid) => {
                let arcs = oid.arcs.split_last().map(|(_, parent)| parent.to_vec());
                Namespace::Oid(arcs.unwrap_or_default())
            }
            Identifier::Gs1(key) => Namespace::Gs1Gtin(key.company_digits().to_owned()),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Handle(handle) => handle.fmt(f),
            Identifier::Oid(oid) => oid.fmt(f),
            Identifier::Gs1(key) => key.fmt(f),
        }
    }
}

impl FromStr for Identifier {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identifier::parse(s)
    }
}

impl From<Handle> for Identifier {
    fn from(handle: Handle) -> Self {
        Identifier::Handle(handle)
    }
}

impl From<Oid> for Identifier {
    fn from(oid: Oid) -> Self {
        Identifier::Oid(oid)
    }
}

impl From<Gs1Key> for Identifier {
    fn from(key: Gs1Key) -> Self {
        Identifier::Gs1(key)
    }
}

impl Serialize for Identifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Identifier::parse(&text).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Handles and prefixes
// ---------------------------------------------------------------------------------------

/// A validated handle prefix: dot-separated segments of 1 to 63 characters of
/// `0-9 A-Z a-z -`, none starting or ending with `-`, at most [`MAX_PREFIX_LEN`] bytes.
///
/// Prefixes are case-insensitive in the Handle System, so a prefix is stored
/// lower-cased: `86.ABC` and `86.abc` are the same prefix, written `86.abc`. This is the
/// one normalisation a handle gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix(String);

impl Prefix {
    /// Parses a prefix on its own, as the "create prefix" and "delegate prefix"
    /// operations name it: `86.1000.23`, `20.500.12345`.
    pub fn parse(s: &str) -> Result<Prefix, IdError> {
        if s.is_empty() {
            return Err(IdError::EmptyPrefix);
        }
        if s.len() > MAX_PREFIX_LEN {
            return Err(IdError::TooLong {
                what: "the handle prefix",
                len: s.len(),
                max: MAX_PREFIX_LEN,
            });
        }
        for (i, segment) in s.split('.').enumerate() {
            check_prefix_segment(i + 1, segment)?;
        }
        Ok(Prefix(s.to_ascii_lowercase()))
    }

    /// The prefix as a string, lower-cased.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, from the root: `86`, `1000`, `23`.
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('.')
    }

    /// The prefix one segment shorter (`86.1000` for `86.1000.23`); `None` for a
    /// single-segment prefix.
    pub fn parent(&self) -> Option<Prefix> {
        self.0
            .rsplit_once('.')
            .map(|(parent, _)| Prefix(parent.to_owned()))
    }

    /// Whether `other` lies strictly below this prefix: `86.1000` is an ancestor of
    /// `86.1000.23`, but not of itself nor of `86.10001`.
    pub fn is_ancestor_of(&self, other: &Prefix) -> bool {
        other
            .0
            .strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.starts_with('.'))
    }
}

/// Checks one segment of a handle prefix; `index` counts from 1.
fn check_prefix_segment(index: usize, segment: &str) -> Result<(), IdError> {
    let bad = |reason: String| IdError::BadPrefixSegment {
        index,
        segment: shown(segment),
        reason,
    };
    if segment.is_empty() {
        return Err(bad(
            "is empty: segments are separated by single dots, with no dot \
             at the start or the end"
                .into(),
        ));
    }
    if let Some((pos, c)) = first_refused(segment, |c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(bad(format!(
            "contains {} at character {pos}; a segment is made of 0-9, A-Z, a-z and `-`",
            char_desc(c)
        )));
    }
    if segment.len() > MAX_PREFIX_SEGMENT_LEN {
        return Err(bad(format!(
            "has {} characters; a segment has at most {MAX_PREFIX_SEGMENT_LEN}",
            segment.len()
        )));
    }
    if segment.starts_with('-') {
        return Err(bad(
            "starts with `-`; a segment starts with a letter or digit".into(),
        ));
    }
    if segment.ends_with('-') {
        return Err(bad(
            "ends with `-`; a segment ends with a letter or digit".into()
        ));
    }
    Ok(())
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Prefix {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Prefix::parse(s)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Prefix::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A Handle System style identifier `PREFIX/SUFFIX`: a [`Prefix`], then after the first
/// `/` a suffix of 1 to [`MAX_SUFFIX_LEN`] printable ASCII characters (0x21 to 0x7E,
/// `/` included), case-sensitive and kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    prefix: Prefix,
    suffix: String,
}

impl Handle {
    /// The handle `suffix` under `prefix`, as a "create identifier" operation names it.
    pub fn new(prefix: Prefix, suffix: &str) -> Result<Handle, IdError> {
        check_suffix(suffix)?;
        Ok(Handle {
            prefix,
            suffix: suffix.to_owned(),
        })
    }

    /// Parses `PREFIX/SUFFIX`; the prefix is lower-cased (see [`Prefix`]).
    pub fn parse(s: &str) -> Result<Handle, IdError> {
        check_outer(s)?;
        let Some((prefix, suffix)) = s.split_once('/') else {
            return Err(IdError::MissingSuffix { input: shown(s) });
        };
        let prefix = Prefix::parse(prefix)?;
        Handle::new(prefix, suffix)
    }

    /// The prefix, lower-cased.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The suffix, exactly as written.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }
}

/// Checks a handle suffix.
fn check_suffix(suffix: &str) -> Result<(), IdError> {
    if suffix.is_empty() {
        return Err(IdError::BadSuffix {
            reason: format!(
                "the suffix after `/` is empty; it has 1 to {MAX_SUFFIX_LEN} printable ASCII \
                 characters, such as 86.1000.23/PKG-0001"
            ),
        });
    }
    if suffix.len() > MAX_SUFFIX_LEN {
        return Err(IdError::TooLong {
            what: "the handle suffix",
            len: suffix.len(),
            max: MAX_SUFFIX_LEN,
        });
    }
    if let Some((pos, c)) = first_refused(suffix, |c| c.is_ascii_graphic()) {
        return Err(IdError::BadSuffix {
            reason: format!(
                "character {pos} is {}; a suffix is printable ASCII (0x21 to 0x7E), without \
                 spaces, control or non-ASCII characters",
                char_desc(c)
            ),
        });
    }
    Ok(())
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.suffix)
    }
}

impl FromStr for Handle {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Handle::parse(s)
    }
}

// ---------------------------------------------------------------------------------------
// OIDs
// ---------------------------------------------------------------------------------------

/// An ASN.1 object identifier: at least two arcs, the first 0, 1 or 2, the second at most
/// 39 under 0 and 1, each fitting in a `u128`, at most [`MAX_OID_LEN`] characters in
/// dotted form. Written `urn:oid:1.2.156.112604.1` (RFC 3061).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid {
    arcs: Vec<u128>,
}

impl Oid {
    /// Parses `urn:oid:` (the `urn` and `oid` in any case) followed by dotted arcs.
    pub fn parse(s: &str) -> Result<Oid, IdError> {
        const URN_OID: &str = "urn:oid:";
        check_outer(s)?;
        let Some(dotted) = s
            .get(..URN_OID.len())
            .filter(|head| head.eq_ignore_ascii_case(URN_OID))
            .and_then(|_| s.get(URN_OID.len()..))
        else {
            return Err(IdError::BadOid {
                reason: format!(
                    "`{}` does not start with urn:oid:; an OID is written urn:oid: and its \
                     dotted arcs, such as urn:oid:1.2.156.112604.1",
                    shown(s)
                ),
            });
        };
        Oid::parse_dotted(dotted)
    }

    /// Parses the dotted arcs alone, `1.2.156.112604.1`, as they follow `urn:oid:`.
    pub fn parse_dotted(dotted: &str) -> Result<Oid, IdError> {
        let arcs = parse_arcs(dotted, |reason| IdError::BadOid { reason })?;
        Oid::from_arcs(arcs)
    }

    /// The OID with these arcs, checked against the OID rules.
    pub fn from_arcs(arcs: Vec<u128>) -> Result<Oid, IdError> {
        let bad = |reason: String| IdError::BadOid { reason };
        match arcs.as_slice() {
            [] => return Err(bad("an OID has at least two arcs, such as 1.2".into())),
            [only] => {
                return Err(bad(format!(
                    "`{only}` has a single arc; an OID has at least two, such as {only}.1"
                )));
            }
            [first, second, ..] => check_top_arcs(*first, Some(*second)).map_err(bad)?,
        }
        let oid = Oid { arcs };
        let len = oid.dotted().len();
        if len > MAX_OID_LEN {
            return Err(IdError::TooLong {
                what: "the OID",
                len,
                max: MAX_OID_LEN,
            });
        }
        Ok(oid)
    }

    /// The arcs, from the root.
    pub fn arcs(&self) -> &[u128] {
        &self.arcs
    }

    /// The OID one arc shorter; `None` for a two-arc OID, whose parent (a lone first
    /// arc) is no OID.
    pub fn parent(&self) -> Option<Oid> {
        match self.arcs.split_last() {
            Some((_, parent)) if parent.len() >= 2 => Some(Oid {
                arcs: parent.to_vec(),
            }),
            _ => None,
        }
    }

    /// The dotted arcs without `urn:oid:`: `1.2.156.112604.1`.
    pub fn dotted(&self) -> String {
        join_arcs(&self.arcs)
    }
}

/// `1.2.3` from `[1, 2, 3]`.
fn join_arcs(arcs: &[u128]) -> String {
    let arcs: Vec<String> = arcs.iter().map(u128::to_string).collect();
    arcs.join(".")
}

/// Parses dotted decimal arcs (at least one), each without leading zeros; `error` turns
/// a reason into the caller's error.
fn parse_arcs(dotted: &str, error: impl Fn(String) -> IdError) -> Result<Vec<u128>, IdError> {
    if dotted.is_empty() {
        return Err(error(
            "there are no arcs; write them dotted, such as urn:oid:1.2.156.112604.1".into(),
        ));
    }
    if dotted.len() > MAX_OID_LEN {
        return Err(IdError::TooLong {
            what: "the OID",
            len: dotted.len(),
            max: MAX_OID_LEN,
        });
    }
    let mut arcs = Vec::new();
    for (i, arc) in dotted.split('.').enumerate() {
        let n = i + 1;
        if arc.is_empty() {
            return Err(error(format!(
                "arc {n} is empty: arcs are separated by single dots, with no dot at the \
                 start or the end"
            )));
        }
        if let Some((pos, c)) = first_refused(arc, |c| c.is_ascii_digit()) {
            return Err(error(format!(
                "arc {n} `{}` contains {} at character {pos}; an arc is a decimal number",
                shown(arc),
                char_desc(c)
            )));
        }
        if arc.len() > 1 && arc.starts_with('0') {
            let trimmed = arc.trim_start_matches('0');
            let canonical = if trimmed.is_empty() { "0" } else { trimmed };
            return Err(error(format!(
                "arc {n} `{}` has a leading zero; write `{}`",
                shown(arc),
                shown(canonical)
            )));
        }
        let value = arc.parse::<u128>().map_err(|_| {
            error(format!(
                "arc {n} `{}` is larger than 2^128-1, the largest arc accepted",
                shown(arc)
            ))
        })?;
        arcs.push(value);
    }
    if let [first, rest @ ..] = arcs.as_slice() {
        check_top_arcs(*first, rest.first().copied()).map_err(error)?;
    }
    Ok(arcs)
}

/// The rules of X.660 for the first two arcs.
fn check_top_arcs(first: u128, second: Option<u128>) -> Result<(), String> {
    if first > 2 {
        return Err(format!(
            "the first arc is {first}; it must be 0 (ITU-T), 1 (ISO) or 2 (joint ISO/ITU-T)"
        ));
    }
    if let Some(second) = second
        && first < 2
        && second > 39
    {
        return Err(format!(
            "the second arc is {second}; under first arc {first} it must be 0 to 39"
        ));
    }
    Ok(())
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "urn:oid:{}", self.dotted())
    }
}

impl FromStr for Oid {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Oid::parse(s)
    }
}

// ---------------------------------------------------------------------------------------
// GS1 keys
// ---------------------------------------------------------------------------------------

/// What an accepted GS1 Application Identifier is to an identifier.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AiRole {
    /// (01), the primary key.
    Gtin,
    /// A key qualifier, part of the identity, ranked in Digital Link path order.
    Qualifier(u8),
    /// A data attribute (a date), carried but not part of the identity.
    Attribute,
}

/// An accepted GS1 Application Identifier.
struct Ai {
    code: &'static str,
    name: &'static str,
    role: AiRole,
}

/// The AIs an identifier accepts; every other AI is refused.
const AIS: [Ai; 8] = [
    Ai {
        code: "01",
        name: "GTIN",
        role: AiRole::Gtin,
    },
    Ai {
        code: "22",
        name: "consumer product variant",
        role: AiRole::Qualifier(1),
    },
    Ai {
        code: "10",
        name: "batch/lot",
        role: AiRole::Qualifier(2),
    },
    Ai {
        code: "21",
        name: "serial number",
        role: AiRole::Qualifier(3),
    },
    Ai {
        code: "11",
        name: "production date",
        role: AiRole::Attribute,
    },
    Ai {
        code: "13",
        name: "packaging date",
        role: AiRole::Attribute,
    },
    Ai {
        code: "15",
        name: "best before date",
        role: AiRole::Attribute,
    },
    Ai {
        code: "17",
        name: "expiration date",
        role: AiRole::Attribute,
    },
];

/// The accepted AI `code`, or the error that says which AIs are accepted.
fn ai(code: &str) -> Result<&'static Ai, IdError> {
    AIS.iter().find(|ai| ai.code == code).ok_or_else(|| {
        gs1_error(format!(
            "AI ({}) is not accepted in an identifier: the key is (01) GTIN with the \
             qualifiers (22) consumer product variant, (10) batch/lot and (21) serial \
             number; the dates (11), (13), (15) and (17) are carried as data attributes",
            shown(code)
        ))
    })
}

/// An [`IdError::BadGs1`].
fn gs1_error(reason: String) -> IdError {
    IdError::BadGs1 { reason }
}

/// A GS1 key: a GTIN-14 (AI 01) with its optional key qualifiers consumer product
/// variant (AI 22), batch/lot (AI 10) and serial number (AI 21).
///
/// Canonical form: the GS1 Digital Link path
/// `/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`, values percent-encoded except
/// `A-Z a-z 0-9 - . _`. [`Gs1Key::element_string`] gives the element string form.
///
/// Data attributes read with the key (AI 11, 13, 15, 17: production, packaging, best
/// before and expiration dates) are kept in [`Gs1Key::attributes`] but are not part of
/// the identity: equality, ordering, hashing and the canonical form ignore them.
#[derive(Debug, Clone)]
pub struct Gs1Key {
    gtin: String,
    cpv: Option<String>,
    lot: Option<String>,
    serial: Option<String>,
    attributes: Vec<(String, String)>,
}

impl Gs1Key {
    /// A key from its parts, each checked as its AI requires: `gtin` 14 digits with a
    /// valid check digit, the qualifiers 1 to 20 characters of GS1 character set 82.
    pub fn new(
        gtin: &str,
        cpv: Option<&str>,
        lot: Option<&str>,
        serial: Option<&str>,
    ) -> Result<Gs1Key, IdError> {
        let mut parts = Gs1Parts::default();
        parts.add(ai("01")?, gtin.to_owned())?;
        for (code, value) in [("22", cpv), ("10", lot), ("21", serial)] {
            if let Some(value) = value {
                parts.add(ai(code)?, value.to_owned())?;
            }
        }
        parts.finish()
    }

    /// Parses a GS1 element string `(01)…(10)…` (AIs in any order; a `(` inside a value
    /// is written `\(`), a Digital Link path `/01/…` or a Digital Link URI
    /// `https://host[/path]/01/…` (scheme, host and path before `/01/` are dropped). A
    /// Digital Link may carry date attributes in its query: `?17=270101`.
    pub fn parse(s: &str) -> Result<Gs1Key, IdError> {
        check_outer(s)?;
        if s.starts_with('(') {
            parse_element_string(s)
        } else if s.starts_with('/') {
            parse_digital_link_path(s)
        } else if s.contains("://") {
            parse_digital_link_uri(s)
        } else {
            Err(gs1_error(format!(
                "`{}` is neither an element string such as (01)09506000134352(10)LOT7 nor \
                 a Digital Link such as /01/09506000134352/10/LOT7",
                shown(s)
            )))
        }
    }

    /// The GTIN-14, AI (01).
    pub fn gtin(&self) -> &str {
        &self.gtin
    }

    /// The consumer product variant, AI (22).
    pub fn cpv(&self) -> Option<&str> {
        self.cpv.as_deref()
    }

    /// The batch/lot number, AI (10).
    pub fn lot(&self) -> Option<&str> {
        self.lot.as_deref()
    }

    /// The serial number, AI (21).
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// The data attributes read with the key, as `(AI, value)` sorted by AI, such as
    /// `("17", "270101")`. Not part of the identity.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attributes
    }

    /// The canonical Digital Link path, `/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`
    /// (the same as `Display`).
    pub fn digital_link_path(&self) -> String {
        self.to_string()
    }

    /// The element string of the key, `(01){gtin}[(22){cpv}][(10){lot}][(21){serial}]`,
    /// with a `(` inside a value written `\(`. Attributes are left out, as in the
    /// canonical form.
    pub fn element_string(&self) -> String {
        let mut out = format!("(01){}", self.gtin);
        for (code, value) in self.qualifiers() {
            out.push('(');
            out.push_str(code);
            out.push(')');
            out.push_str(&value.replace('(', "\\("));
        }
        out
    }

    /// The qualifiers that are present, in Digital Link order.
    fn qualifiers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("22", &self.cpv), ("10", &self.lot), ("21", &self.serial)]
            .into_iter()
            .filter_map(|(code, value)| value.as_deref().map(|value| (code, value)))
    }

    /// Digits 2 to 13 of the GTIN: without the indicator digit and the check digit.
    fn company_digits(&self) -> &str {
        self.gtin.get(1..13).unwrap_or_default()
    }

    /// What equality, ordering and hashing look at.
    fn identity(&self) -> (&str, Option<&str>, Option<&str>, Option<&str>) {
        (&self.gtin, self.cpv(), self.lot(), self.serial())
    }
}

impl PartialEq for Gs1Key {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Gs1Key {}

impl Hash for Gs1Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl PartialOrd for Gs1Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Gs1Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.identity().cmp(&other.identity())
    }
}

impl fmt::Display for Gs1Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/01/{}", self.gtin)?;
        for (code, value) in self.qualifiers() {
            write!(f, "/{code}/{}", percent_encode(value))?;
        }
        Ok(())
    }
}

impl FromStr for Gs1Key {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Gs1Key::parse(s)
    }
}

/// A GS1 key being read: each AI at most once.
#[derive(Default)]
struct Gs1Parts {
    gtin: Option<String>,
    cpv: Option<String>,
    lot: Option<String>,
    serial: Option<String>,
    attributes: Vec<(String, String)>,
}

impl Gs1Parts {
    /// Checks `value` as `ai` requires and keeps it; a second occurrence is an error.
    fn add(&mut self, ai: &Ai, value: String) -> Result<(), IdError> {
        let twice = || gs1_error(format!("AI ({}) {} appears twice", ai.code, ai.name));
        let slot = match ai.role {
            AiRole::Gtin => {
                check_gtin(&value)?;
                &mut self.gtin
            }
            AiRole::Qualifier(_) => {
                check_cset82_value(ai, &value)?;
                match ai.code {
                    "22" => &mut self.cpv,
                    "10" => &mut self.lot,
                    _ => &mut self.serial,
                }
            }
            AiRole::Attribute => {
                check_date(ai, &value)?;
                if self.attributes.iter().any(|(code, _)| code == ai.code) {
                    return Err(twice());
                }
                self.attributes.push((ai.code.to_owned(), value));
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(twice());
        }
        *slot = Some(value);
        Ok(())
    }

    fn finish(mut self) -> Result<Gs1Key, IdError> {
        let Some(gtin) = self.gtin else {
            return Err(gs1_error(
                "there is no AI (01) GTIN; a GS1 identifier is (01) and a 14-digit GTIN, \
                 such as (01)09506000134352"
                    .into(),
            ));
        };
        self.attributes.sort();
        Ok(Gs1Key {
            gtin,
            cpv: self.cpv,
            lot: self.lot,
            serial: self.serial,
            attributes: self.attributes,
        })
    }
}

/// The GS1 mod-10 check digit of the digits before it (ASCII).
fn gs1_check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d.saturating_sub(b'0')) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    // `sum % 10` is below 10, so the result is a single digit.
    ((10 - sum % 10) % 10) as u8
}

/// Checks an AI (01) value: 14 digits with a valid check digit.
fn check_gtin(value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(gs1_error(
            "AI (01) GTIN is empty; it takes 14 digits".into(),
        ));
    }
    if let Some((pos, c)) = first_refused(value, |c| c.is_ascii_digit()) {
        return Err(gs1_error(format!(
            "AI (01) GTIN `{}` contains {} at character {pos}; a GTIN is 14 digits",
            shown(value),
            char_desc(c)
        )));
    }
    match value.len() {
        14 => {}
        n @ (8 | 12 | 13) => {
            return Err(gs1_error(format!(
                "AI (01) GTIN `{value}` has {n} digits; AI (01) takes 14 digits, so write this \
                 GTIN-{n} zero-padded: {value:0>14}"
            )));
        }
        n => {
            return Err(gs1_error(format!(
                "AI (01) GTIN `{}` has {n} digits; AI (01) takes exactly 14 (a GTIN-8, -12 or \
                 -13 is zero-padded to 14)",
                shown(value)
            )));
        }
    }
    let (body, check) = value.as_bytes().split_at(13);
    let expected = gs1_check_digit(body);
    if check != [b'0' + expected] {
        return Err(IdError::BadCheckDigit {
            gtin: value.to_owned(),
            expected,
        });
    }
    Ok(())
}

/// Whether `b` is in GS1 AI encodable character set 82.
fn is_cset82(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'"'
                | b'%'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'-'
                | b'.'
                | b'/'
                | b':'
                | b';'
                | b'<'
                | b'='
                | b'>'
                | b'?'
                | b'_'
        )
}

/// Checks a qualifier value: 1 to 20 characters of GS1 character set 82.
fn check_cset82_value(ai: &Ai, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(gs1_error(format!(
            "AI ({}) {} is empty; it takes 1 to {MAX_GS1_VALUE_LEN} characters",
            ai.code, ai.name
        )));
    }
    if let Some((pos, c)) = first_refused(value, |c| u8::try_from(c).is_ok_and(is_cset82)) {
        return Err(gs1_error(format!(
            "AI ({}) {} `{}` contains {} at character {pos}, which is not in GS1 character \
             set 82 ({CSET82})",
            ai.code,
            ai.name,
            shown(value),
            char_desc(c)
        )));
    }
    if value.len() > MAX_GS1_VALUE_LEN {
        return Err(gs1_error(format!(
            "AI ({}) {} `{}` has {} characters; at most {MAX_GS1_VALUE_LEN}",
            ai.code,
            ai.name,
            shown(value),
            value.len()
        )));
    }
    Ok(())
}

/// Checks a date attribute: `YYMMDD`, day `00` meaning the whole month.
fn check_date(ai: &Ai, value: &str) -> Result<(), IdError> {
    let bad = |why: String| {
        gs1_error(format!(
            "AI ({}) {} `{}` {why}; the format is YYMMDD",
            ai.code,
            ai.name,
            shown(value)
        ))
    };
    let digits = value.as_bytes();
    if digits.len() != 6 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad("is not 6 digits".into()));
    }
    let pair = |i: usize| u32::from(digits[i] - b'0') * 10 + u32::from(digits[i + 1] - b'0');
    let (yy, mm, dd) = (pair(0), pair(2), pair(4));
    if !(1..=12).contains(&mm) {
        return Err(bad(format!("has month {mm:02}; months are 01 to 12")));
    }
    // Two-digit years fall in 2000..=2099 for any date this registry sees, where every
    // fourth year is a leap year.
    let days = match mm {
        2 if yy % 4 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if dd > days {
        return Err(bad(format!(
            "has day {dd:02}, but month {mm:02} has {days} days (day 00 stands for the whole \
             month)"
        )));
    }
    Ok(())
}

/// Parses a bracketed element string, `(01)09506000134352(17)270101(10)LOT7`. Positions
/// in its errors count characters of the whole string, from 1.
fn parse_element_string(s: &str) -> Result<Gs1Key, IdError> {
    let mut parts = Gs1Parts::default();
    let mut chars = s.chars().enumerate().peekable();
    while let Some((start, open)) = chars.next() {
        if open != '(' {
            // Only the first character can get here: a value runs to the next `(`.
            return Err(gs1_error(
                "an element string starts with an AI in parentheses, such as (01)".into(),
            ));
        }
        let not_an_ai = || {
            gs1_error(format!(
                "`(` at character {} does not open an AI (2 to 4 digits, then `)`); a `(` \
                 inside a value is written \\(",
                start + 1
            ))
        };
        let mut code = String::new();
        loop {
            match chars.next() {
                Some((_, ')')) if code.len() >= 2 => break,
                Some((_, d)) if d.is_ascii_digit() && code.len() < 4 => code.push(d),
                _ => return Err(not_an_ai()),
            }
        }
        let ai = ai(&code)?;
        let mut value = String::new();
        while let Some(&(at, c)) = chars.peek() {
            if c == '(' {
                break;
            }
            chars.next();
            if c == '\\' {
                if chars.next_if(|&(_, next)| next == '(').is_none() {
                    return Err(gs1_error(format!(
                        "`\\` at character {} in the value of AI ({code}) is not in GS1 \
                         character set 82; the only escape is \\( for a `(` inside a value",
                        at + 1
                    )));
                }
                value.push('(');
            } else {
                value.push(c);
            }
        }
        parts.add(ai, value)?;
    }
    parts.finish()
}

/// Parses a Digital Link path that starts at the primary key: `/01/…[?query]`.
fn parse_digital_link_path(s: &str) -> Result<Gs1Key, IdError> {
    let (path, query) = split_query(s)?;
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.first().copied() {
        Some("01") => parse_digital_link_segments(&segments, query),
        Some(first) => Err(primary_key_error(first)),
        None => Err(primary_key_error("")),
    }
}

/// Parses a Digital Link URI, `https://host[/custom/path]/01/…[?query]`.
fn parse_digital_link_uri(s: &str) -> Result<Gs1Key, IdError> {
    let uri_error = |why: &str| {
        gs1_error(format!(
            "`{}` {why}; a Digital Link URI is \
             https://host/01/{{gtin}}[/10/{{lot}}][/21/{{serial}}]",
            shown(s)
        ))
    };
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(uri_error("is not a URI"));
    };
    if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
        return Err(uri_error("has a scheme other than https or http"));
    }
    let (host, path_and_query) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |at| rest.split_at(at));
    if host.is_empty() {
        return Err(uri_error("has no host"));
    }
    if !path_and_query.starts_with('/') {
        return Err(uri_error("has no path"));
    }
    let (path, query) = split_query(path_and_query)?;
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    // The resolver may put a path of its own before the primary key.
    let Some(start) = segments.iter().position(|segment| *segment == "01") else {
        let key_like = segments.iter().find(|s| is_short_name(s) || is_ai_like(s));
        return Err(primary_key_error(key_like.copied().unwrap_or_default()));
    };
    // What is dropped (the host and the resolver's path) must still be URI text.
    for dropped in std::iter::once(host).chain(segments[..start].iter().copied()) {
        if let Some((_, c)) = first_refused(dropped, |c| !c.is_whitespace() && !c.is_control()) {
            return Err(uri_error(&format!("contains {}", char_desc(c))));
        }
    }
    parse_digital_link_segments(&segments[start..], query)
}

/// Whether a path segment looks like an AI number.
fn is_ai_like(segment: &str) -> bool {
    (2..=4).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a path segment is a GS1 Digital Link 1.0 short name of an accepted AI.
fn is_short_name(segment: &str) -> bool {
    short_name_ai(segment).is_some()
}

/// The AI of a GS1 Digital Link 1.0 short name.
fn short_name_ai(segment: &str) -> Option<&'static str> {
    match segment {
        "gtin" => Some("01"),
        "cpv" => Some("22"),
        "lot" => Some("10"),
        "ser" => Some("21"),
        _ => None,
    }
}

/// The error for a Digital Link whose primary key is not `/01/`.
fn primary_key_error(first: &str) -> IdError {
    if let Some(code) = short_name_ai(first) {
        return gs1_error(format!(
            "`/{first}/` is a GS1 Digital Link 1.0 short name; write the AI: /{code}/"
        ));
    }
    if is_ai_like(first) {
        return gs1_error(format!(
            "the primary key AI ({first}) is not accepted: an identifier's GS1 key is a GTIN, \
             /01/{{gtin}}"
        ));
    }
    gs1_error(
        "a Digital Link path starts with the primary key /01/{gtin}, such as \
         /01/09506000134352/10/LOT7"
            .into(),
    )
}

/// Splits a Digital Link path from its query; a fragment is an error.
fn split_query(s: &str) -> Result<(&str, Option<&str>), IdError> {
    if s.contains('#') {
        return Err(gs1_error(
            "a fragment (`#…`) is not part of an identifier; remove it".into(),
        ));
    }
    Ok(match s.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (s, None),
    })
}

/// Parses the path segments from `01` on, then the query.
fn parse_digital_link_segments(segments: &[&str], query: Option<&str>) -> Result<Gs1Key, IdError> {
    let mut parts = Gs1Parts::default();
    let mut ranks = Vec::new();
    let mut pairs = segments.iter();
    while let Some(&code) = pairs.next() {
        if code.is_empty() {
            return Err(gs1_error(
                "the Digital Link path has an empty segment (a doubled or trailing `/`)".into(),
            ));
        }
        if let Some(ai_code) = short_name_ai(code) {
            return Err(gs1_error(format!(
                "`/{code}/` is a GS1 Digital Link 1.0 short name; write the AI: /{ai_code}/"
            )));
        }
        let ai = ai(code)?;
        let Some(&raw) = pairs.next() else {
            return Err(gs1_error(format!(
                "/{}/ has no value after it in the Digital Link path",
                shown(code)
            )));
        };
        match ai.role {
            AiRole::Attribute => {
                return Err(gs1_error(format!(
                    "AI ({}) {} is a data attribute: a Digital Link carries it in the query \
                     (?{}=…), not in the path",
                    ai.code, ai.name, ai.code
                )));
            }
            AiRole::Gtin if !ranks.is_empty() => {
                return Err(gs1_error("AI (01) GTIN appears twice".into()));
            }
            AiRole::Gtin => ranks.push(0),
            AiRole::Qualifier(rank) => ranks.push(rank),
        }
        parts.add(ai, percent_decode(ai, raw)?)?;
    }
    if let Some(query) = query {
        parse_digital_link_query(query, &mut parts)?;
    }
    let key = parts.finish()?;
    if ranks.windows(2).any(|pair| pair[0] > pair[1]) {
        return Err(gs1_error(format!(
            "the key qualifiers are out of order; a Digital Link path is \
             /01/{{gtin}}/22/{{cpv}}/10/{{lot}}/21/{{serial}}, write {key}"
        )));
    }
    Ok(key)
}

/// Parses the query of a Digital Link: date attributes only.
fn parse_digital_link_query(query: &str, parts: &mut Gs1Parts) -> Result<(), IdError> {
    if query.is_empty() {
        return Err(gs1_error(
            "the query after `?` is empty; remove the `?`".into(),
        ));
    }
    for param in query.split('&') {
        let (code, raw) = param.split_once('=').unwrap_or((param, ""));
        match AIS.iter().find(|ai| ai.code == code) {
            Some(ai) if ai.role == AiRole::Attribute => {
                parts.add(ai, percent_decode(ai, raw)?)?;
            }
            Some(ai) => {
                return Err(gs1_error(format!(
                    "AI ({}) {} belongs in the Digital Link path (/{}/…), not in the query",
                    ai.code, ai.name, ai.code
                )));
            }
            None => {
                return Err(gs1_error(format!(
                    "query parameter `{}` is not part of an identifier; remove it (only the \
                     date attributes 11, 13, 15 and 17 may follow `?`)",
                    shown(param)
                )));
            }
        }
    }
    Ok(())
}

/// Whether a byte stands for itself in a canonical Digital Link value: RFC 3986
/// unreserved characters that are in GS1 character set 82.
fn is_plain_in_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

/// Decodes a Digital Link value. `%XX` (either case) stands for any byte; the only
/// characters that may stand for themselves are `A-Z a-z 0-9 - . _`: every other
/// character must be percent-encoded, as the GS1 Digital Link grammar says.
fn percent_decode(ai: &Ai, raw: &str) -> Result<String, IdError> {
    let what = || format!("AI ({}) {} `{}`", ai.code, ai.name, shown(raw));
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            let byte = hex.and_then(|hex| Some(hex_value(hex[0])? * 16 + hex_value(hex[1])?));
            let Some(byte) = byte else {
                return Err(gs1_error(format!(
                    "{} has an invalid percent-encoding at character {}; `%` is followed by \
                     two hexadecimal digits, such as %2F",
                    what(),
                    i + 1
                )));
            };
            decoded.push(byte);
            i += 3;
        } else if is_plain_in_path(b) {
            decoded.push(b);
            i += 1;
        } else {
            let c = raw
                .get(i..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(gs1_error(if u8::try_from(c).is_ok_and(is_cset82) {
                format!(
                    "{} has `{c}` at character {}; in a Digital Link path it is \
                     percent-encoded: %{:02X}",
                    what(),
                    i + 1,
                    u32::from(c)
                )
            } else {
                format!(
                    "{} has {} at character {}, which is not in GS1 character set 82 \
                     ({CSET82})",
                    what(),
                    char_desc(c),
                    i + 1
                )
            }));
        }
    }
    if let Some((pos, &b)) = decoded.iter().enumerate().find(|&(_, &b)| !is_cset82(b)) {
        let desc = if b.is_ascii() {
            char_desc(char::from(b))
        } else {
            format!("byte 0x{b:02X}")
        };
        return Err(gs1_error(format!(
            "{} decodes to {desc} at character {}, which is not in GS1 character set 82 \
             ({CSET82})",
            what(),
            pos + 1
        )));
    }
    Ok(decoded.into_iter().map(char::from).collect())
}

/// The value of a hexadecimal digit.
fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Encodes a character set 82 value for a canonical Digital Link path: everything but
/// `A-Z a-z 0-9 - . _` as `%XX` with upper-case hexadecimal digits.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if is_plain_in_path(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------

/// What controls an identifier, for a registry's longest-prefix search of controllers.
///
/// Each namespace has a string key ([`Namespace::namespace_key`]) such as
/// `hdl:86.1000.23`, `oid:1.2.156.112604` or `gs1:950600013435`; the controllers of an
/// identifier are those of the longest of [`Namespace::ancestors_keys`] that a registry
/// holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// A handle prefix: it controls every handle under it and every longer prefix.
    Handle(Prefix),
    /// OID arcs (at least one): they control every OID below them. An OID's namespace
    /// is its arcs without the last.
    Oid(Vec<u128>),
    /// GS1 digits: for a GTIN, its digits 2 to 13 (without the indicator digit and the
    /// check digit); for a registration, a GS1 Company Prefix of
    /// [`MIN_GS1_COMPANY_PREFIX_LEN`] to [`MAX_GS1_COMPANY_PREFIX_LEN`] digits, which
    /// controls every GTIN whose digits 2 to 13 start with it.
    Gs1Gtin(String),
}

impl Namespace {
    /// The namespace of a GS1 Company Prefix (6 to 12 digits), as a manufacturer
    /// registers it.
    pub fn gs1_company_prefix(gcp: &str) -> Result<Namespace, IdError> {
        check_company_prefix(gcp).map_err(gs1_error)?;
        Ok(Namespace::Gs1Gtin(gcp.to_owned()))
    }

    /// The key of this namespace: `hdl:86.1000.23`, `oid:1.2.156.112604`,
    /// `gs1:950600013435`.
    pub fn namespace_key(&self) -> String {
        match self {
            Namespace::Handle(prefix) => format!("hdl:{prefix}"),
            Namespace::Oid(arcs) => format!("oid:{}", join_arcs(arcs)),
            Namespace::Gs1Gtin(digits) => format!("gs1:{digits}"),
        }
    }

    /// The keys of this namespace and of every ancestor, longest first:
    /// `hdl:86.1000.23`, `hdl:86.1000`, `hdl:86`; `oid:1.2.156`, `oid:1.2`, `oid:1`;
    /// for GS1 the digits shortened one at a time down to
    /// [`MIN_GS1_COMPANY_PREFIX_LEN`] digits.
    pub fn ancestors_keys(&self) -> Vec<String> {
        match self {
            Namespace::Handle(prefix) => {
                std::iter::successors(Some(prefix.clone()), Prefix::parent)
                    .map(|prefix| format!("hdl:{prefix}"))
                    .collect()
            }
            Namespace::Oid(arcs) => (1..=arcs.len())
                .rev()
                .map(|n| format!("oid:{}", join_arcs(&arcs[..n])))
                .collect(),
            Namespace::Gs1Gtin(digits) => {
                let ends: Vec<usize> = digits
                    .char_indices()
                    .map(|(at, c)| at + c.len_utf8())
                    .collect();
                let shortest = MIN_GS1_COMPANY_PREFIX_LEN.min(ends.len()).max(1);
                ends.iter()
                    .skip(shortest - 1)
                    .rev()
                    .map(|&end| format!("gs1:{}", &digits[..end]))
                    .collect()
            }
        }
    }

    /// Parses a key written by [`Namespace::namespace_key`]: `hdl:` and a prefix, `oid:`
    /// and dotted arcs (one or more), or `gs1:` and 6 to 12 digits.
    pub fn from_key(key: &str) -> Result<Namespace, IdError> {
        let bad = |reason: String| IdError::BadNamespaceKey { reason };
        let Some((kind, rest)) = key.split_once(':') else {
            return Err(bad(format!(
                "`{}` has no `hdl:`, `oid:` or `gs1:` in front",
                shown(key)
            )));
        };
        match kind {
            "hdl" => Prefix::parse(rest).map(Namespace::Handle),
            "oid" => {
                parse_arcs(rest, |reason| IdError::BadNamespaceKey { reason }).map(Namespace::Oid)
            }
            "gs1" => check_company_prefix(rest)
                .map(|()| Namespace::Gs1Gtin(rest.to_owned()))
                .map_err(bad),
            _ => Err(bad(format!(
                "`{}:` is not a namespace kind; the kinds are hdl:, oid: and gs1:",
                shown(kind)
            ))),
        }
    }
}

/// Checks a GS1 Company Prefix: 6 to 12 digits.
fn check_company_prefix(gcp: &str) -> Result<(), String> {
    if let Some((pos, c)) = first_refused(gcp, |c| c.is_ascii_digit()) {
        return Err(format!(
            "GS1 Company Prefix `{}` contains {} at character {pos}; it is digits only",
            shown(gcp),
            char_desc(c)
        ));
    }
    if !(MIN_GS1_COMPANY_PREFIX_LEN..=MAX_GS1_COMPANY_PREFIX_LEN).contains(&gcp.len()) {
        return Err(format!(
            "GS1 Company Prefix `{}` has {} digits; it has {MIN_GS1_COMPANY_PREFIX_LEN} to \
             {MAX_GS1_COMPANY_PREFIX_LEN}",
            shown(gcp),
            gcp.len()
        ));
    }
    Ok(())
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.namespace_key())
    }
}

/// Whether the GS1 Company Prefix `gcp` (6 to 12 digits) covers `gtin` (14 digits):
/// whether the GTIN's digits after the indicator digit start with it. Anything else
/// than digits of those lengths matches nothing.
pub fn gs1_company_prefix_matches(gcp: &str, gtin: &str) -> bool {
    check_company_prefix(gcp).is_ok()
        && gtin.len() == 14
        && gtin.bytes().all(|b| b.is_ascii_digit())
        && gtin.get(1..).is_some_and(|digits| digits.starts_with(gcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_of_known_gtins() {
        for (body, expected) in [
            ("0950600013435", 2),
            ("0061414100003", 6),
            ("1061414100003", 3),
            ("0000000000000", 0),
            ("9999999999999", 7),
        ] {
            assert_eq!(gs1_check_digit(body.as_bytes()), expected, "{body}");
        }
    }

    #[test]
    fn every_cset82_character_survives_percent_encoding() {
        let lot = ai("10").unwrap();
        for b in (0u8..=127).filter(|&b| is_cset82(b)) {
            let value = char::from(b).to_string();
            let encoded = percent_encode(&value);
            assert_eq!(percent_decode(lot, &encoded).as_deref(), Ok(value.as_str()));
            if encoded.starts_with('%') {
                let lower = encoded.to_ascii_lowercase();
                assert_eq!(percent_decode(lot, &lower).as_deref(), Ok(value.as_str()));
            }
        }
        assert!(!is_cset82(b'#'));
        assert_eq!((0u8..=127).filter(|&b| is_cset82(b)).count(), 82);
    }

    #[test]
    fn shown_escapes_and_shortens() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown("é中"), "é中");
        assert_eq!(shown("\u{202e}"), "\\u{202e}");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 65);
    }
}
