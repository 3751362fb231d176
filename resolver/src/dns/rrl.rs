//! Response rate limiting for UDP, so that a node cannot be used to flood a forged
//! source address with answers (DNS amplification).
//!
//! Each source network (an IPv4 /24, an IPv6 /56, by default) has a token bucket of
//! [`RateLimit::responses_per_second`] tokens, refilled continuously, at most one
//! second's worth. A response takes a token. Over the limit a response is dropped,
//! except every [`RateLimit::slip`]-th one, which is sent as a truncated (TC=1) empty
//! answer: a real client behind that network retries over TCP, which a forged source
//! cannot, and a victim receives no more than a small fraction of small packets. TCP is
//! not rate-limited (it cannot be forged); its connection count and idle time are.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Response rate limiting on UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Responses per second per source network; `0` turns rate limiting off.
    pub responses_per_second: u32,
    /// Over the limit, every `slip`-th response is sent truncated (TC=1) instead of
    /// dropped; `0` drops them all, `1` truncates them all.
    pub slip: u32,
    /// Prefix length of an IPv4 source network.
    pub ipv4_prefix_len: u8,
    /// Prefix length of an IPv6 source network.
    pub ipv6_prefix_len: u8,
    /// Source networks tracked at once; when full, networks whose bucket is full are
    /// forgotten first (see [`RateLimiter`]).
    pub max_sources: usize,
}

impl Default for RateLimit {
    /// 200 responses per second per /24 or /56, slip 2, 100,000 networks: the
    /// defaults of NSD's rate limiting.
    fn default() -> Self {
        Self {
            responses_per_second: 200,
            slip: 2,
            ipv4_prefix_len: 24,
            ipv6_prefix_len: 56,
            max_sources: 100_000,
        }
    }
}

impl RateLimit {
    /// No rate limiting (for benchmarks).
    pub const OFF: RateLimit = RateLimit {
        responses_per_second: 0,
        slip: 0,
        ipv4_prefix_len: 24,
        ipv6_prefix_len: 56,
        max_sources: 0,
    };
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Send it truncated (TC=1, no records).
    Slip,
    /// Do not send anything.
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, in millionths.
    micro_tokens: u64,
    last: Instant,
    /// Responses over the limit since the bucket last had a token.
    over: u32,
}

/// Number of independently locked shards of the table.
const SHARDS: usize = 64;

/// The token buckets of the source networks, shared by the UDP sockets (sharded, so
/// that sockets rarely wait for each other). When a shard is full it forgets the
/// networks whose bucket has refilled (they are within their limit); if all are busy,
/// it starts over, which gives every tracked network a fresh second's worth.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    shards: Vec<Mutex<HashMap<(u8, u128), Bucket>>>,
}

impl RateLimiter {
    /// A limiter for `limit`; `None` when rate limiting is off.
    pub fn new(limit: RateLimit) -> Option<Self> {
        (limit.responses_per_second > 0).then(|| Self {
            limit,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// The verdict for one response to `source` at `now`.
    pub fn check(&self, source: IpAddr, now: Instant) -> Verdict {
        let key = self.network(source);
        let shard_index = (key.1 as usize ^ (key.1 >> 64) as usize) % SHARDS;
        let Some(shard) = self.shards.get(shard_index) else {
            return Verdict::Send;
        };
        let mut shard = match shard.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let full = u64::from(self.limit.responses_per_second) * 1_000_000;
        let per_shard = (self.limit.max_sources / SHARDS).max(1);
        if shard.len() >= per_shard && !shard.contains_key(&key) {
            let rate = u64::from(self.limit.responses_per_second);
            shard.retain(|_, b| refilled(b, now, rate, full) < full);
            if shard.len() >= per_shard {
                shard.clear();
            }
        }
        let bucket = shard.entry(key).or_insert(Bucket {
            micro_tokens: full,
            last: now,
            over: 0,
        });
        bucket.micro_tokens = refilled(
            bucket,
            now,
            u64::from(self.limit.responses_per_second),
            full,
        );
        bucket.last = now;
        if bucket.micro_tokens >= 1_000_000 {
            bucket.micro_tokens -= 1_000_000;
            bucket.over = 0;
            return Verdict::Send;
        }
        bucket.over = bucket.over.wrapping_add(1);
        match self.limit.slip {
            0 => Verdict::Drop,
            slip if bucket.over % slip == 0 => Verdict::Slip,
            _ => Verdict::Drop,
        }
    }

    /// The source network of an address: the family and the masked address.
    fn network(&self, source: IpAddr) -> (u8, u128) {
        match source {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let len = u32::from(self.limit.ipv4_prefix_len.min(32));
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                (4, u128::from(bits & mask))
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.network(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6);
                    let len = u32::from(self.limit.ipv6_prefix_len.min(128));
                    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                    (6, bits & mask)
                }
            },
        }
    }
}

/// The bucket's tokens at `now`.
fn refilled(bucket: &Bucket, now: Instant, rate: u64, full: u64) -> u64 {
    let elapsed = now.saturating_duration_since(bucket.last).as_micros();
    let added = u64::try_from(elapsed)
        .unwrap_or(u64::MAX)
        .saturating_mul(rate);
    bucket.micro_tokens.saturating_add(added).min(full)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_network_gets_its_rate_then_slips_and_drops() {
        let limiter = RateLimiter::new(RateLimit {
            responses_per_second: 10,
            slip: 2,
            ..RateLimit::default()
        })
        .unwrap();
        let start = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let same_net: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..14)
            .map(|i| limiter.check(if i % 2 == 0 { a } else { same_net }, start))
            .collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Send));
        assert_eq!(
            verdicts[10..],
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        assert_eq!(limiter.check(other, start), Verdict::Send, "per network");
        let later = start + Duration::from_millis(200);
        assert_eq!(limiter.check(a, later), Verdict::Send, "refilled: 2 tokens");
        assert_eq!(limiter.check(a, later), Verdict::Send);
        assert_ne!(limiter.check(a, later), Verdict::Send);
        assert!(RateLimiter::new(RateLimit::OFF).is_none());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = RateLimiter::new(RateLimit {
            responses_per_second: 1,
            max_sources: SHARDS * 4,
            ..RateLimit::default()
        })
        .unwrap();
        let now = Instant::now();
        for i in 0..100_000u32 {
            limiter.check(IpAddr::V4((i << 8).into()), now);
        }
        let total: usize = limiter.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= SHARDS * 4, "{total}");
    }
}
