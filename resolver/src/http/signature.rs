//! HTTP Message Signatures (RFC 9421) with Ed25519 keys named by `did:key`: how a
//! reader proves who asks for a restricted value.
//!
//! - [`Message`] — the parts of a request a signature can cover.
//! - [`signature_base`] — the signature base of RFC 9421 §2.5.
//! - [`verify`] — checks the `Signature-Input` and `Signature` fields of a request
//!   against a [`Policy`] (required components, age) with keys from a resolver
//!   function; [`verify_did_signatures`] is the node's policy with `keyid` = a did:key.
//! - [`sign`] / [`sign_with_did`] — the other side, for clients and tests.
//!
//! Written by hand rather than with a crate: the part medid needs — the derived
//! components of a request, header fields without parameters, and the two Structured
//! Field dictionaries (RFC 8941) of the signature fields — is small, and the crates that
//! implement the whole RFC bring their own HTTP and crypto stacks. It is checked against
//! the RFC's Ed25519 example (appendix B.2.6). Unsupported on purpose: component
//! parameters (`;sf`, `;key`, `;bs`, `;req`, `;name`), `@query-param` and `@status`; a
//! signature covering them does not verify here.
//!
//! Pure functions: the caller passes the current time.

use std::fmt::Write as _;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use medid_did::{DidKey, KeyPair};

/// How old a signature may be (its `created` parameter), in seconds.
pub const MAX_AGE_SECONDS: i64 = 300;

/// How far in the future `created` may be (clock skew), in seconds.
pub const MAX_SKEW_SECONDS: i64 = 60;

/// The parts of an HTTP request that derived components are made of, and its fields.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The method, as sent (`GET`).
    pub method: &'a str,
    /// The scheme of the target URI (`http` or `https`).
    pub scheme: &'a str,
    /// The authority: host and port as in the `Host` field.
    pub authority: &'a str,
    /// The absolute path, as sent (percent-encoded).
    pub path: &'a str,
    /// The query, without `?`, as sent.
    pub query: Option<&'a str>,
    /// The header fields.
    pub headers: &'a HeaderMap,
}

/// Why a signature was not made or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The request has no `Signature-Input` or `Signature` field.
    #[error("the request is not signed (no Signature-Input and Signature fields)")]
    Unsigned,
    /// A signature field is not a valid Structured Field dictionary of the right shape.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A label of `Signature-Input` has no signature in `Signature`.
    #[error("signature `{0}` is in Signature-Input but not in Signature")]
    MissingSignature(String),
    /// A covered component is not supported, or absent from the request.
    #[error("component {0}")]
    Component(String),
    /// The signature does not cover what the policy requires.
    #[error("the signature must cover {0}")]
    NotCovered(&'static str),
    /// A required parameter is missing, or a parameter has the wrong value.
    #[error("signature parameter {0}")]
    Parameter(String),
    /// The signature is too old, from the future, or expired.
    #[error("the signature is stale: {0}")]
    Stale(String),
    /// The `keyid` names no key this verifier knows.
    #[error("unknown key `{0}`")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// What a signature must satisfy to be accepted.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Seconds after `created` that the signature stays acceptable.
    pub max_age: i64,
    /// Seconds `created` may lie ahead of the verifier's clock.
    pub max_skew: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_age: MAX_AGE_SECONDS,
            max_skew: MAX_SKEW_SECONDS,
        }
    }
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Its label in the signature fields.
    pub label: String,
    /// Its `keyid`.
    pub keyid: String,
    /// Its `created` time, Unix seconds.
    pub created: i64,
}

/// The parameters a signer sets. Serialised in the order created, expires, nonce, keyid,
/// alg, tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureParams {
    /// `created`: Unix seconds.
    pub created: Option<i64>,
    /// `expires`: Unix seconds.
    pub expires: Option<i64>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `keyid`.
    pub keyid: Option<String>,
    /// `alg` (`ed25519`).
    pub alg: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
}

/// The two header field values of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// The `Signature-Input` value.
    pub signature_input: String,
    /// The `Signature` value.
    pub signature: String,
}

/// The signature base (RFC 9421 §2.5) for `components` (component identifiers without
/// quotes, such as `@method` or `content-type`) and the serialised signature
/// parameters `params` (`("@method" …);created=…`).
pub fn signature_base(
    message: &Message<'_>,
    components: &[String],
    params: &str,
) -> Result<String, SignatureError> {
    let mut base = String::new();
    for (i, name) in components.iter().enumerate() {
        if components[..i].contains(name) {
            return Err(SignatureError::Component(format!(
                "\"{name}\" is listed twice"
            )));
        }
        let value = component_value(message, name)?;
        // Writing to a String cannot fail.
        let _ = writeln!(base, "\"{name}\": {value}");
    }
    let _ = write!(base, "\"@signature-params\": {params}");
    Ok(base)
}

/// The value of one component of `message`.
fn component_value(message: &Message<'_>, name: &str) -> Result<String, SignatureError> {
    let query = message.query.map(|q| format!("?{q}"));
    let path = if message.path.is_empty() {
        "/"
    } else {
        message.path
    };
    Ok(match name {
        "@method" => message.method.to_owned(),
        "@scheme" => message.scheme.to_ascii_lowercase(),
        "@authority" => message.authority.to_ascii_lowercase(),
        "@path" => path.to_owned(),
        "@query" => query.unwrap_or_else(|| "?".to_owned()),
        "@request-target" => format!("{path}{}", query.unwrap_or_default()),
        "@target-uri" => format!(
            "{}://{}{path}{}",
            message.scheme.to_ascii_lowercase(),
            message.authority.to_ascii_lowercase(),
            query.unwrap_or_default()
        ),
        derived if derived.starts_with('@') => {
            return Err(SignatureError::Component(format!(
                "\"{derived}\" is not supported here"
            )));
        }
        field => {
            let mut values = Vec::new();
            for value in message.headers.get_all(field) {
                let text = value.to_str().map_err(|_| {
                    SignatureError::Component(format!("\"{field}\" is not visible ASCII"))
                })?;
                values.push(text.trim_matches([' ', '\t']));
            }
            if values.is_empty() {
                return Err(SignatureError::Component(format!(
                    "\"{field}\" is not in the request"
                )));
            }
            values.join(", ")
        }
    })
}

/// Signs `message` over `components` with `key`, labelled `label`.
pub fn sign(
    message: &Message<'_>,
    components: &[&str],
    params: &SignatureParams,
    key: &SigningKey,
    label: &str,
) -> Result<SignatureHeaders, SignatureError> {
    if !is_key(label) {
        return Err(SignatureError::Parameter(format!(
            "label `{label}` is not an sf-key"
        )));
    }
    let components: Vec<String> = components.iter().map(|c| (*c).to_owned()).collect();
    let mut serialised = String::from("(");
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            serialised.push(' ');
        }
        serialised.push_str(&serialise_string(c)?);
    }
    serialised.push(')');
    let mut members: Vec<(&str, BareItem)> = Vec::new();
    if let Some(created) = params.created {
        members.push(("created", BareItem::Integer(created)));
    }
    if let Some(expires) = params.expires {
        members.push(("expires", BareItem::Integer(expires)));
    }
    for (name, value) in [
        ("nonce", &params.nonce),
        ("keyid", &params.keyid),
        ("alg", &params.alg),
        ("tag", &params.tag),
    ] {
        if let Some(value) = value {
            members.push((name, BareItem::String(value.clone())));
        }
    }
    for (name, value) in &members {
        serialised.push(';');
        serialised.push_str(name);
        serialise_param_value(&mut serialised, value)?;
    }
    let base = signature_base(message, &components, &serialised)?;
    let signature = key.sign(base.as_bytes());
    Ok(SignatureHeaders {
        signature_input: format!("{label}={serialised}"),
        signature: format!("{label}=:{}:", BASE64.encode(signature.to_bytes())),
    })
}

/// The node's way to sign a request: over `"@method" "@target-uri"`, created `now`,
/// `keyid` the signer's did:key, `alg="ed25519"`, label `medid`.
pub fn sign_with_did(
    message: &Message<'_>,
    key: &KeyPair,
    now: i64,
) -> Result<SignatureHeaders, SignatureError> {
    let params = SignatureParams {
        created: Some(now),
        keyid: Some(key.did().to_string()),
        alg: Some("ed25519".to_owned()),
        ..SignatureParams::default()
    };
    sign(
        message,
        &["@method", "@target-uri"],
        &params,
        key.signing_key(),
        "medid",
    )
}

/// Verifies every signature of `message` under `policy` at time `now` (Unix seconds),
/// with the Ed25519 key that `resolve` gives for its `keyid`.
///
/// A signature is accepted when it covers `@method` and `@target-uri` or `@path`, has
/// `created` within the policy's window (and `expires`, if present, not past), names a
/// `keyid` that `resolve` knows, has no `alg` or `alg="ed25519"`, and verifies. Returns
/// the accepted signatures; if none is, the first reason.
pub fn verify(
    message: &Message<'_>,
    policy: &Policy,
    now: i64,
    resolve: impl Fn(&str) -> Option<VerifyingKey>,
) -> Result<Vec<Verified>, SignatureError> {
    let input = joined_field(message.headers, "signature-input")?;
    let signatures = joined_field(message.headers, "signature")?;
    let (Some(input), Some(signatures)) = (input, signatures) else {
        return Err(SignatureError::Unsigned);
    };
    let inputs = parse_dictionary(&input).map_err(|reason| SignatureError::Malformed {
        field: "Signature-Input",
        reason,
    })?;
    let signatures = parse_dictionary(&signatures).map_err(|reason| SignatureError::Malformed {
        field: "Signature",
        reason,
    })?;
    let mut accepted = Vec::new();
    let mut first_error = None;
    for (label, member) in &inputs {
        let signature = signatures
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, m)| m)
            .ok_or_else(|| SignatureError::MissingSignature(label.clone()));
        match signature.and_then(|s| verify_one(message, policy, now, &resolve, label, member, s)) {
            Ok(verified) => accepted.push(verified),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (accepted.is_empty(), first_error) {
        (false, _) => Ok(accepted),
        (true, Some(e)) => Err(e),
        (true, None) => Err(SignatureError::Unsigned),
    }
}

/// [`verify`] under the default [`Policy`] with keys named by `did:key`: the DIDs of
/// the signatures that verified.
pub fn verify_did_signatures(
    message: &Message<'_>,
    now: i64,
) -> Result<Vec<DidKey>, SignatureError> {
    let verified = verify(message, &Policy::default(), now, |keyid| {
        DidKey::parse(keyid).ok().map(|did| *did.verifying_key())
    })?;
    Ok(verified
        .iter()
        .filter_map(|v| DidKey::parse(&v.keyid).ok())
        .collect())
}

fn verify_one(
    message: &Message<'_>,
    policy: &Policy,
    now: i64,
    resolve: &impl Fn(&str) -> Option<VerifyingKey>,
    label: &str,
    input: &Member,
    signature: &Member,
) -> Result<Verified, SignatureError> {
    let Member::InnerList(items, params) = input else {
        return Err(SignatureError::Malformed {
            field: "Signature-Input",
            reason: format!("`{label}` is not an inner list"),
        });
    };
    let mut components = Vec::with_capacity(items.len());
    for (item, item_params) in items {
        let BareItem::String(name) = item else {
            return Err(SignatureError::Malformed {
                field: "Signature-Input",
                reason: "a component identifier is not a string".into(),
            });
        };
        if !item_params.is_empty() {
            return Err(SignatureError::Component(format!(
                "\"{name}\" has parameters, which are not supported here"
            )));
        }
        components.push(name.clone());
    }
    let covers = |name: &str| components.iter().any(|c| c == name);
    if !covers("@method") {
        return Err(SignatureError::NotCovered("\"@method\""));
    }
    if !covers("@target-uri") && !covers("@path") {
        return Err(SignatureError::NotCovered("\"@target-uri\" or \"@path\""));
    }
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let created = match param("created") {
        Some(BareItem::Integer(created)) => *created,
        Some(_) => {
            return Err(SignatureError::Parameter(
                "`created` is not an integer".into(),
            ));
        }
        None => return Err(SignatureError::Parameter("`created` is required".into())),
    };
    if now.saturating_sub(created) > policy.max_age {
        return Err(SignatureError::Stale(format!(
            "created {} s ago; at most {} s are accepted",
            now.saturating_sub(created),
            policy.max_age
        )));
    }
    if created.saturating_sub(now) > policy.max_skew {
        return Err(SignatureError::Stale(format!(
            "created {} s in the future",
            created.saturating_sub(now)
        )));
    }
    match param("expires") {
        None => {}
        Some(BareItem::Integer(expires)) if *expires >= now => {}
        Some(BareItem::Integer(_)) => {
            return Err(SignatureError::Stale("past its `expires` time".into()));
        }
        Some(_) => {
            return Err(SignatureError::Parameter(
                "`expires` is not an integer".into(),
            ));
        }
    }
    match param("alg") {
        None => {}
        Some(BareItem::String(alg)) if alg == "ed25519" => {}
        Some(_) => {
            return Err(SignatureError::Parameter(
                "`alg` must be \"ed25519\" when present".into(),
            ));
        }
    }
    let keyid = match param("keyid") {
        Some(BareItem::String(keyid)) => keyid.clone(),
        Some(_) => return Err(SignatureError::Parameter("`keyid` is not a string".into())),
        None => return Err(SignatureError::Parameter("`keyid` is required".into())),
    };
    let key = resolve(&keyid).ok_or_else(|| SignatureError::UnknownKey(keyid.clone()))?;
    let Member::Item(BareItem::Bytes(bytes), _) = signature else {
        return Err(SignatureError::Malformed {
            field: "Signature",
            reason: format!("`{label}` is not a byte sequence"),
        });
    };
    let signature = <[u8; 64]>::try_from(bytes.as_slice())
        .map(|b| Signature::from_bytes(&b))
        .map_err(|_| SignatureError::BadSignature)?;
    let serialised = serialise_inner_list(items, params)?;
    let base = signature_base(message, &components, &serialised)?;
    key.verify_strict(base.as_bytes(), &signature)
        .map_err(|_| SignatureError::BadSignature)?;
    Ok(Verified {
        label: label.to_owned(),
        keyid,
        created,
    })
}

/// The lines of a field joined with `, ` (RFC 9110 §5.3), or `None` if absent.
fn joined_field(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, SignatureError> {
    let mut lines = Vec::new();
    for value in headers.get_all(name) {
        lines.push(value.to_str().map_err(|_| SignatureError::Malformed {
            field: if name == "signature" {
                "Signature"
            } else {
                "Signature-Input"
            },
            reason: "not visible ASCII".into(),
        })?);
    }
    Ok((!lines.is_empty()).then(|| lines.join(", ")))
}

// Structured Fields (RFC 8941), the subset the signature fields use: dictionaries
// whose members are items or inner lists, with parameters; bare items that are
// integers, strings, tokens, byte sequences or booleans (decimals are refused).

/// A bare item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BareItem {
    Integer(i64),
    String(String),
    Token(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

type Parameters = Vec<(String, BareItem)>;

/// A dictionary member's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Member {
    Item(BareItem, Parameters),
    InnerList(Vec<(BareItem, Parameters)>, Parameters),
}

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip(&mut self, set: &[u8]) {
        while self.peek().is_some_and(|b| set.contains(&b)) {
            self.at += 1;
        }
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at))
    }

    fn key(&mut self) -> Result<String, String> {
        let start = self.at;
        match self.peek() {
            Some(b) if b.is_ascii_lowercase() || b == b'*' => self.at += 1,
            _ => return self.fail("expected a key"),
        }
        while self.peek().is_some_and(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        }) {
            self.at += 1;
        }
        Ok(String::from_utf8_lossy(&self.input[start..self.at]).into_owned())
    }

    fn bare_item(&mut self) -> Result<BareItem, String> {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b':') => self.bytes(),
            Some(b'?') => {
                self.at += 1;
                match self.peek() {
                    Some(b'0') => {
                        self.at += 1;
                        Ok(BareItem::Boolean(false))
                    }
                    Some(b'1') => {
                        self.at += 1;
                        Ok(BareItem::Boolean(true))
                    }
                    _ => self.fail("expected ?0 or ?1"),
                }
            }
            Some(b) if b == b'-' || b.is_ascii_digit() => self.integer(),
            Some(b) if b.is_ascii_alphabetic() || b == b'*' => self.token(),
            _ => self.fail("expected an item"),
        }
    }

    fn integer(&mut self) -> Result<BareItem, String> {
        let negative = self.eat(b'-');
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.input[start..self.at];
        if digits.is_empty() || digits.len() > 15 {
            return self.fail("expected an integer of 1 to 15 digits");
        }
        if self.peek() == Some(b'.') {
            return self.fail("decimals are not supported");
        }
        let value: i64 = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("bad integer at byte {start}"))?;
        Ok(BareItem::Integer(if negative { -value } else { value }))
    }

    fn string(&mut self) -> Result<BareItem, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(BareItem::String(out));
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(char::from(c));
                            self.at += 1;
                        }
                        _ => return self.fail("bad escape in string"),
                    }
                }
                Some(c @ 0x20..=0x7e) => {
                    out.push(char::from(c));
                    self.at += 1;
                }
                Some(_) => return self.fail("invalid character in string"),
            }
        }
    }

    fn token(&mut self) -> Result<BareItem, String> {
        let start = self.at;
        self.at += 1;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
        {
            self.at += 1;
        }
        Ok(BareItem::Token(
            String::from_utf8_lossy(&self.input[start..self.at]).into_owned(),
        ))
    }

    fn bytes(&mut self) -> Result<BareItem, String> {
        self.at += 1;
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            self.at += 1;
        }
        let text = &self.input[start..self.at];
        if !self.eat(b':') {
            return self.fail("unterminated byte sequence");
        }
        BASE64
            .decode(text)
            .map(BareItem::Bytes)
            .map_err(|e| format!("byte sequence at byte {start}: {e}"))
    }

    fn parameters(&mut self) -> Result<Parameters, String> {
        let mut params: Parameters = Vec::new();
        while self.eat(b';') {
            self.skip(b" ");
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.bare_item()?
            } else {
                BareItem::Boolean(true)
            };
            match params.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => params.push((key, value)),
            }
        }
        Ok(params)
    }

    fn member(&mut self) -> Result<Member, String> {
        if self.eat(b'(') {
            let mut items = Vec::new();
            loop {
                self.skip(b" ");
                if self.eat(b')') {
                    return Ok(Member::InnerList(items, self.parameters()?));
                }
                let item = self.bare_item()?;
                items.push((item, self.parameters()?));
                match self.peek() {
                    Some(b' ' | b')') => {}
                    _ => return self.fail("expected a space or `)` in an inner list"),
                }
            }
        }
        let item = self.bare_item()?;
        Ok(Member::Item(item, self.parameters()?))
    }
}

/// Parses a Structured Field dictionary (RFC 8941 §4.2.2); later duplicates win.
fn parse_dictionary(text: &str) -> Result<Vec<(String, Member)>, String> {
    let mut parser = Parser {
        input: text.as_bytes(),
        at: 0,
    };
    parser.skip(b" ");
    let mut members: Vec<(String, Member)> = Vec::new();
    while parser.peek().is_some() {
        let key = parser.key()?;
        let member = if parser.eat(b'=') {
            parser.member()?
        } else {
            Member::Item(BareItem::Boolean(true), parser.parameters()?)
        };
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = member,
            None => members.push((key, member)),
        }
        parser.skip(b" \t");
        if parser.peek().is_none() {
            break;
        }
        if !parser.eat(b',') {
            return parser.fail("expected `,` between members");
        }
        parser.skip(b" \t");
        if parser.peek().is_none() {
            return parser.fail("trailing `,`");
        }
    }
    if members.is_empty() {
        return Err("empty dictionary".into());
    }
    Ok(members)
}

fn is_key(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        })
}

fn serialise_string(text: &str) -> Result<String, SignatureError> {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                return Err(SignatureError::Parameter(format!(
                    "`{}` cannot be a Structured Field string",
                    text.escape_default()
                )));
            }
        }
    }
    out.push('"');
    Ok(out)
}

fn serialise_param_value(out: &mut String, value: &BareItem) -> Result<(), SignatureError> {
    match value {
        BareItem::Boolean(true) => {}
        BareItem::Boolean(false) => out.push_str("=?0"),
        BareItem::Integer(i) => {
            let _ = write!(out, "={i}");
        }
        BareItem::String(s) => {
            out.push('=');
            out.push_str(&serialise_string(s)?);
        }
        BareItem::Token(t) => {
            out.push('=');
            out.push_str(t);
        }
        BareItem::Bytes(b) => {
            let _ = write!(out, "=:{}:", BASE64.encode(b));
        }
    }
    Ok(())
}

/// The canonical serialisation of a signature's inner list and parameters, the value
/// of `@signature-params`.
fn serialise_inner_list(
    items: &[(BareItem, Parameters)],
    params: &Parameters,
) -> Result<String, SignatureError> {
    let mut out = String::from("(");
    for (i, (item, _)) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match item {
            BareItem::String(s) => out.push_str(&serialise_string(s)?),
            _ => {
                return Err(SignatureError::Malformed {
                    field: "Signature-Input",
                    reason: "a component identifier is not a string".into(),
                });
            }
        }
    }
    out.push(')');
    for (key, value) in params {
        out.push(';');
        out.push_str(key);
        serialise_param_value(&mut out, value)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::HeaderValue;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// RFC 9421 appendix B.1.4, "Example Ed25519 Test Key" (JWK `d` and `x`).
    fn rfc_key() -> SigningKey {
        let d = URL_SAFE_NO_PAD
            .decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU")
            .unwrap();
        let key = SigningKey::from_bytes(&d.try_into().unwrap());
        let x = URL_SAFE_NO_PAD
            .decode("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs")
            .unwrap();
        assert_eq!(key.verifying_key().as_bytes().as_slice(), x.as_slice());
        key
    }

    /// The request of RFC 9421 appendix B.2 (`POST /foo?param=Value&Pet=dog`).
    fn rfc_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "example.com"),
            ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("content-type", "application/json"),
            (
                "content-digest",
                "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            ),
            ("content-length", "18"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        headers
    }

    fn rfc_message(headers: &HeaderMap) -> Message<'_> {
        Message {
            method: "POST",
            scheme: "https",
            authority: "example.com",
            path: "/foo",
            query: Some("param=Value&Pet=dog"),
            headers,
        }
    }

    const B26_INPUT: &str = "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \
        \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
    const B26_SIGNATURE: &str = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
    const B26_CREATED: i64 = 1_618_884_473;

    fn rfc_resolve(keyid: &str) -> Option<VerifyingKey> {
        (keyid == "test-key-ed25519").then(|| rfc_key().verifying_key())
    }

    #[test]
    fn rfc_9421_b_2_6_ed25519_signature_base_and_signature() {
        let headers = rfc_headers();
        let message = rfc_message(&headers);
        let components = [
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ];
        let params = SignatureParams {
            created: Some(B26_CREATED),
            keyid: Some("test-key-ed25519".into()),
            ..SignatureParams::default()
        };
        let signed = sign(&message, &components, &params, &rfc_key(), "sig-b26").unwrap();
        assert_eq!(signed.signature_input, B26_INPUT);
        // Ed25519 is deterministic: the RFC's signature, byte for byte.
        assert_eq!(signed.signature, B26_SIGNATURE);
        let expected_base = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
            \"@method\": POST\n\
            \"@path\": /foo\n\
            \"@authority\": example.com\n\
            \"content-type\": application/json\n\
            \"content-length\": 18\n\
            \"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \
            \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
        let components: Vec<String> = components.iter().map(|c| (*c).to_owned()).collect();
        let params = &B26_INPUT["sig-b26=".len()..];
        assert_eq!(
            signature_base(&message, &components, params).unwrap(),
            expected_base
        );
    }

    #[test]
    fn rfc_9421_b_2_6_verifies_and_what_breaks_it() {
        let mut headers = rfc_headers();
        headers.insert("signature-input", HeaderValue::from_static(B26_INPUT));
        headers.insert("signature", HeaderValue::from_static(B26_SIGNATURE));
        let verified = verify(
            &rfc_message(&headers),
            &Policy::default(),
            B26_CREATED + 10,
            rfc_resolve,
        )
        .unwrap();
        assert_eq!(
            verified,
            [Verified {
                label: "sig-b26".into(),
                keyid: "test-key-ed25519".into(),
                created: B26_CREATED
            }]
        );
        let check = |headers: &HeaderMap, now: i64| {
            verify(&rfc_message(headers), &Policy::default(), now, rfc_resolve)
        };
        assert!(matches!(
            check(&headers, B26_CREATED + 301),
            Err(SignatureError::Stale(_))
        ));
        assert!(matches!(
            check(&headers, B26_CREATED - 61),
            Err(SignatureError::Stale(_))
        ));
        assert!(check(&headers, B26_CREATED + 300).is_ok());

        // A covered field changed: the signature no longer verifies.
        let mut tampered = headers.clone();
        tampered.insert("content-length", HeaderValue::from_static("19"));
        assert_eq!(
            check(&tampered, B26_CREATED),
            Err(SignatureError::BadSignature)
        );
        // A covered field removed.
        let mut removed = headers.clone();
        removed.remove("date");
        assert!(matches!(
            check(&removed, B26_CREATED),
            Err(SignatureError::Component(_))
        ));
        // Another key.
        let other = |_: &str| Some(SigningKey::from_bytes(&[9; 32]).verifying_key());
        assert_eq!(
            verify(
                &rfc_message(&headers),
                &Policy::default(),
                B26_CREATED,
                other
            ),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(
                &rfc_message(&headers),
                &Policy::default(),
                B26_CREATED,
                |_| None
            ),
            Err(SignatureError::UnknownKey("test-key-ed25519".into()))
        );
        // The signature bytes altered.
        let mut flipped = headers.clone();
        flipped.insert(
            "signature",
            HeaderValue::from_str(&B26_SIGNATURE.replacen("wqcA", "wqcB", 1)).unwrap(),
        );
        assert_eq!(
            check(&flipped, B26_CREATED),
            Err(SignatureError::BadSignature)
        );
        // Unsigned, or half signed.
        assert_eq!(
            check(&rfc_headers(), B26_CREATED),
            Err(SignatureError::Unsigned)
        );
        let mut half = rfc_headers();
        half.insert("signature-input", HeaderValue::from_static(B26_INPUT));
        assert_eq!(check(&half, B26_CREATED), Err(SignatureError::Unsigned));
        // A label with no signature.
        let mut mislabelled = headers.clone();
        mislabelled.insert("signature", HeaderValue::from_static("other=:AAAA:"));
        assert_eq!(
            check(&mislabelled, B26_CREATED),
            Err(SignatureError::MissingSignature("sig-b26".into()))
        );
    }

    #[test]
    fn the_policy_requires_method_target_created_and_keyid() {
        let headers = rfc_headers();
        let message = rfc_message(&headers);
        let key = rfc_key();
        let keyid = || SignatureParams {
            created: Some(B26_CREATED),
            keyid: Some("test-key-ed25519".into()),
            ..SignatureParams::default()
        };
        let attempt = |components: &[&str], params: SignatureParams| {
            let signed = sign(&message, components, &params, &key, "s").unwrap();
            let mut h = rfc_headers();
            h.insert(
                "signature-input",
                HeaderValue::from_str(&signed.signature_input).unwrap(),
            );
            h.insert(
                "signature",
                HeaderValue::from_str(&signed.signature).unwrap(),
            );
            verify(
                &rfc_message(&h),
                &Policy::default(),
                B26_CREATED,
                rfc_resolve,
            )
        };
        assert!(attempt(&["@method", "@target-uri"], keyid()).is_ok());
        assert!(
            attempt(
                &["@method", "@request-target", "@path", "@query", "@scheme"],
                keyid()
            )
            .is_ok()
        );
        assert_eq!(
            attempt(&["@path"], keyid()),
            Err(SignatureError::NotCovered("\"@method\""))
        );
        assert!(matches!(
            attempt(&["@method", "@authority"], keyid()),
            Err(SignatureError::NotCovered(_))
        ));
        let no_created = SignatureParams {
            created: None,
            ..keyid()
        };
        assert!(matches!(
            attempt(&["@method", "@path"], no_created),
            Err(SignatureError::Parameter(_))
        ));
        let no_keyid = SignatureParams {
            keyid: None,
            ..keyid()
        };
        assert!(matches!(
            attempt(&["@method", "@path"], no_keyid),
            Err(SignatureError::Parameter(_))
        ));
        let rsa = SignatureParams {
            alg: Some("rsa-pss-sha512".into()),
            ..keyid()
        };
        assert!(matches!(
            attempt(&["@method", "@path"], rsa),
            Err(SignatureError::Parameter(_))
        ));
        let ed = SignatureParams {
            alg: Some("ed25519".into()),
            ..keyid()
        };
        assert!(attempt(&["@method", "@path"], ed).is_ok());
        let expired = SignatureParams {
            expires: Some(B26_CREATED - 1),
            ..keyid()
        };
        assert!(matches!(
            attempt(&["@method", "@path"], expired),
            Err(SignatureError::Stale(_))
        ));
        for components in [
            &["@method", "@path", "@status"][..],
            &["@method", "@path", "@path"],
        ] {
            assert!(matches!(
                sign(&message, components, &keyid(), &key, "s"),
                Err(SignatureError::Component(_))
            ));
            // The verifier refuses them too, whatever the signature.
            let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
            let input = format!(
                "s=({});created={B26_CREATED};keyid=\"test-key-ed25519\"",
                list.join(" ")
            );
            let mut h = rfc_headers();
            h.insert("signature-input", HeaderValue::from_str(&input).unwrap());
            let zero = format!("s=:{}:", BASE64.encode([0u8; 64]));
            h.insert("signature", HeaderValue::from_str(&zero).unwrap());
            assert!(matches!(
                verify(
                    &rfc_message(&h),
                    &Policy::default(),
                    B26_CREATED,
                    rfc_resolve
                ),
                Err(SignatureError::Component(_))
            ));
        }
    }

    #[test]
    fn did_signatures_round_trip() {
        let reader = KeyPair::generate();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("node.example:8080"));
        let message = Message {
            method: "GET",
            scheme: "http",
            authority: "node.example:8080",
            path: "/api/handles/86.1000/PKG-1",
            query: Some("type=PATIENT"),
            headers: &headers,
        };
        let signed = sign_with_did(&message, &reader, 1_000_000).unwrap();
        assert!(signed.signature_input.starts_with(
            "medid=(\"@method\" \"@target-uri\");created=1000000;keyid=\"did:key:z6Mk"
        ));
        headers.insert(
            "signature-input",
            HeaderValue::from_str(&signed.signature_input).unwrap(),
        );
        headers.insert(
            "signature",
            HeaderValue::from_str(&signed.signature).unwrap(),
        );
        let verify_at = |path: &str, now: i64| {
            let message = Message {
                method: "GET",
                scheme: "http",
                authority: "node.example:8080",
                path,
                query: Some("type=PATIENT"),
                headers: &headers,
            };
            verify_did_signatures(&message, now)
        };
        assert_eq!(
            verify_at("/api/handles/86.1000/PKG-1", 1_000_100).unwrap(),
            [reader.did()]
        );
        // Another target: the signature does not carry over.
        assert_eq!(
            verify_at("/api/handles/86.1000/PKG-2", 1_000_100),
            Err(SignatureError::BadSignature)
        );
        assert!(matches!(
            verify_at("/api/handles/86.1000/PKG-1", 1_000_301),
            Err(SignatureError::Stale(_))
        ));
    }

    #[test]
    fn structured_fields_parse_as_rfc_8941_says() {
        let parsed = parse_dictionary(
            "a=(\"x\" \"y\";k=1);created=5;keyid=\"k\\\"q\";f=?0;t=tok/x, b=:AAE=:, c",
        )
        .unwrap();
        assert_eq!(parsed.len(), 3);
        let Member::InnerList(items, params) = &parsed[0].1 else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].1, vec![("k".to_owned(), BareItem::Integer(1))]);
        assert_eq!(
            params,
            &vec![
                ("created".to_owned(), BareItem::Integer(5)),
                ("keyid".to_owned(), BareItem::String("k\"q".into())),
                ("f".to_owned(), BareItem::Boolean(false)),
                ("t".to_owned(), BareItem::Token("tok/x".into())),
            ]
        );
        assert_eq!(
            parsed[1].1,
            Member::Item(BareItem::Bytes(vec![0, 1]), vec![])
        );
        assert_eq!(parsed[2].1, Member::Item(BareItem::Boolean(true), vec![]));
        assert_eq!(
            serialise_inner_list(items, params).unwrap(),
            "(\"x\" \"y\");created=5;keyid=\"k\\\"q\";f=?0;t=tok/x"
        );
        for bad in [
            "",
            "A=1",
            "a=(\"x\"",
            "a=\"unterminated",
            "a=1.5",
            "a=:!!:",
            "a=1,",
            "a=1 b=2",
            "a=(\"x\"\"y\")",
            "a=\"\\n\"",
            "a=1234567890123456",
            "a=(1;",
            "a=:AAE=",
        ] {
            assert!(parse_dictionary(bad).is_err(), "{bad:?}");
        }
    }
}
