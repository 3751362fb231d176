//! The resolver: medid's network front ends.
//!
//! - [`cache`] — [`AnswerCache`]: encoded answers (DNS wire bytes, HTTP JSON) kept for
//!   their TTL and dropped as soon as a write changes what they say.
//! - [`dns`] — the DNS front end: [`dns::start`] serves the zone over UDP (one socket
//!   per core) and TCP; [`dns::respond`] is its pure request handler; identifiers map
//!   to names by [`medid_registry::dnsname`]; [`dns::export_zone`] writes a zone file.
//! - [`http`] — the HTTP front end: [`http::app`] builds the axum router (Handle.Net
//!   REST resolution, DID resolution, GS1 Digital Link, operation submission, the
//!   ledger's tiles and proofs, the witness) from an [`http::AppState`].
//! - [`hierarchy`] — walking the hierarchy from the root: referrals read from DNS and
//!   Handle answers, and [`hierarchy::verify`], trust from the root's key down.
//! - [`mirror`] — [`IndexMirror`]: what resolution reads from the index, in memory and
//!   kept equal to it by the commit hook; [`RecordReads`], the reads answers make.
//! - [`proxy`] — [`proxy::Proxy`], the resolving proxy (HTTP and DNS) with its caches.
//!
//! The front ends only turn bytes into a request and an answer back into bytes; what an
//! identifier resolves to is read from the registry's index.

pub mod cache;
pub mod dns;
pub mod hierarchy;
pub mod http;
pub mod mirror;
pub mod proxy;

pub use cache::{AnswerCache, CacheKey};
pub use mirror::{IndexMirror, RecordReads};
