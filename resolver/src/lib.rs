//! The resolver: medid's network front ends.
//!
//! - [`cache`] — [`AnswerCache`]: encoded answers (DNS wire bytes, HTTP JSON) kept for
//!   their TTL and dropped as soon as a write changes what they say.
//!
//! The front ends only turn bytes into a request and an answer back into bytes; what an
//! identifier resolves to is read from the registry's index.

pub mod cache;

pub use cache::{AnswerCache, CacheKey};
