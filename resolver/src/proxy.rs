//! The resolving proxy: answers any identifier by walking the hierarchy from the root,
//! over HTTP (the Handle REST API) and DNS (UDP), like the Handle proxy and a DNS
//! recursive resolver.
//!
//! - [`Proxy::resolve_http`] walks with `GET /api/handles/{id}`, following Handle 301
//!   referrals; [`Proxy::resolve_dns`] walks with DNS queries (RD off), following NS
//!   referrals and their glue (at the root's DNS port: a referral cannot carry a port).
//! - Answers and referrals are cached in moka for their TTL (answers: the smallest value
//!   TTL; referrals: the NS TTL for DNS, [`ProxyConfig::referral_ttl`] for HTTP);
//!   negative answers (not found, NXDOMAIN, NODATA) for the SOA MINIMUM (DNS) or
//!   [`ProxyConfig::negative_ttl`] (HTTP). A walk starts at the deepest cached referral.
//! - Concurrent identical lookups are coalesced into one walk (moka `try_get_with`).
//! - DNS is answered over UDP ([`serve_dns`]) and TCP ([`serve_dns_tcp`]); an upstream
//!   answer with TC set is asked again over TCP.
//! - Every upstream request has [`ProxyConfig::timeout`]; a walk that fails is not
//!   cached: HTTP answers 503 naming the hop that failed, DNS SERVFAIL. A cached answer
//!   is served until its TTL, whether its node is up or not.
//! - [`Proxy::upstream_requests`] counts requests sent upstream (for the coalescing
//!   measurements); `GET /api/proxy/stats` serves it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use medid_registry::id::Identifier;
use moka::Expiry;
use moka::future::Cache;
use serde_json::{Value, json};
use tokio::net::UdpSocket;

use crate::hierarchy::{
    DnsStep, HttpStep, MAX_HOPS, WalkError, classify_dns, classify_handle, dns_query, lower,
};

/// How a proxy reaches the hierarchy and how long it keeps what it learns.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The root node's HTTP base URL.
    pub root_http: String,
    /// The root node's DNS address (for DNS lookups).
    pub root_dns: Option<SocketAddr>,
    /// The bound on each upstream request.
    pub timeout: Duration,
    /// Cache entries (answers and referrals) kept at most.
    pub capacity: u64,
    /// How long a negative HTTP answer is kept (DNS uses the SOA MINIMUM).
    pub negative_ttl: Duration,
    /// How long an HTTP referral is kept.
    pub referral_ttl: Duration,
    /// The longest anything is kept.
    pub max_ttl: Duration,
}

impl ProxyConfig {
    /// A proxy of the root at `root_http`: timeout 2 s, 100,000 entries, negative
    /// answers 300 s (the zones' default SOA MINIMUM), referrals 3600 s, at most 1 day.
    pub fn new(root_http: &str) -> Self {
        Self {
            root_http: root_http.trim_end_matches('/').to_owned(),
            root_dns: None,
            timeout: Duration::from_secs(2),
            capacity: 100_000,
            negative_ttl: Duration::from_secs(300),
            referral_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(86_400),
        }
    }
}

/// Why a walk failed: the hop, its node and endpoint, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hop {hop} ({node} at {endpoint}) failed: {reason}")]
pub struct ProxyError {
    /// The hop, from 1 (the root).
    pub hop: usize,
    /// The node asked (`root`, or the name in the referral).
    pub node: String,
    /// The endpoint asked.
    pub endpoint: String,
    /// What went wrong.
    pub reason: String,
}

/// A cached value with its time to live.
#[derive(Debug)]
struct Entry {
    value: Value_,
    ttl: Duration,
}

#[derive(Debug)]
enum Value_ {
    /// An HTTP answer: status and body.
    Http { status: u16, body: Bytes },
    /// A DNS response from the node that answers.
    Dns(Vec<u8>),
    /// Where to ask for names under a prefix (HTTP): the node's name and base URL.
    HttpReferral { name: String, base: String },
    /// Where to ask for names under a cut (DNS).
    DnsReferral(Vec<SocketAddr>),
}

/// Entries live for their own TTL.
struct TtlExpiry;

impl<K> Expiry<K, Arc<Entry>> for TtlExpiry {
    fn expire_after_create(&self, _: &K, value: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

fn cache<K>(capacity: u64) -> Cache<K, Arc<Entry>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .expire_after(TtlExpiry)
        .build()
}

/// The resolving proxy; cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    client: reqwest::Client,
    http_answers: Cache<String, Arc<Entry>>,
    http_referrals: Cache<String, Arc<Entry>>,
    dns_answers: Cache<(String, u16), Arc<Entry>>,
    dns_referrals: Cache<String, Arc<Entry>>,
    upstream: AtomicU64,
}

/// An answer and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// The HTTP status of the node's answer.
    pub status: u16,
    /// Its JSON body.
    pub body: Bytes,
    /// Whether it was served from the cache.
    pub cached: bool,
}

impl Proxy {
    /// A proxy with `config`.
    pub fn new(config: ProxyConfig) -> Result<Self, ProxyError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| ProxyError {
                hop: 0,
                node: "proxy".into(),
                endpoint: String::new(),
                reason: e.to_string(),
            })?;
        let capacity = config.capacity;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                http_answers: cache(capacity),
                http_referrals: cache(capacity),
                dns_answers: cache(capacity),
                dns_referrals: cache(capacity),
                upstream: AtomicU64::new(0),
            }),
        })
    }

    /// Requests sent upstream so far.
    pub fn upstream_requests(&self) -> u64 {
        self.inner.upstream.load(Ordering::Relaxed)
    }

    /// The node's Handle answer for `id`, from the cache or by walking from the root.
    pub async fn resolve_http(&self, id: &Identifier) -> Result<HttpAnswer, Arc<ProxyError>> {
        let key = id.to_string();
        if let Some(entry) = self.inner.http_answers.get(&key).await {
            return Ok(http_answer(&entry, true));
        }
        let entry = self
            .inner
            .http_answers
            .try_get_with(key, async { self.walk_http(id).await.map(Arc::new) })
            .await?;
        Ok(http_answer(&entry, false))
    }

    async fn walk_http(&self, id: &Identifier) -> Result<Entry, ProxyError> {
        let config = &self.inner.config;
        let (mut node, mut base) = ("root".to_owned(), config.root_http.clone());
        for key in id.namespace().ancestors_keys() {
            if let Some(entry) = self.inner.http_referrals.get(&key).await
                && let Value_::HttpReferral { name, base: url } = &entry.value
            {
                (node, base) = (name.clone(), url.clone());
                break;
            }
        }
        for hop in 1..=MAX_HOPS {
            let endpoint = format!("{base}/api/handles/{}", path_encode(&id.to_string()));
            let failed = |reason: String| ProxyError {
                hop,
                node: node.clone(),
                endpoint: endpoint.clone(),
                reason,
            };
            self.inner.upstream.fetch_add(1, Ordering::Relaxed);
            let response = self
                .inner
                .client
                .get(&endpoint)
                .send()
                .await
                .map_err(|e| failed(describe(&e)))?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| failed(describe(&e)))?;
            let json: Value = serde_json::from_slice(&body)
                .map_err(|e| failed(format!("the answer is not JSON: {e}")))?;
            match classify_handle(status, &json).map_err(|e| failed(e.to_string()))? {
                HttpStep::Found { ttl } => {
                    let ttl = Duration::from_secs(u64::from(ttl)).min(config.max_ttl);
                    return Ok(Entry {
                        value: Value_::Http { status, body },
                        ttl: ttl.max(Duration::from_secs(1)),
                    });
                }
                HttpStep::NotFound | HttpStep::NotResponsible => {
                    return Ok(Entry {
                        value: Value_::Http { status, body },
                        ttl: config.negative_ttl,
                    });
                }
                HttpStep::Referral {
                    prefix, node: to, ..
                } => {
                    let next = to.http_base().to_owned();
                    self.inner
                        .http_referrals
                        .insert(
                            prefix,
                            Arc::new(Entry {
                                value: Value_::HttpReferral {
                                    name: to.name.clone(),
                                    base: next.clone(),
                                },
                                ttl: config.referral_ttl,
                            }),
                        )
                        .await;
                    (node, base) = (to.name, next);
                }
                HttpStep::Parent(parent) => {
                    return Err(failed(format!(
                        "the node refers to its parent {parent}: the walk went astray"
                    )));
                }
            }
        }
        Err(ProxyError {
            hop: MAX_HOPS,
            node,
            endpoint: base,
            reason: WalkError::TooManyHops.to_string(),
        })
    }

    /// The response to a DNS query message (`None`: not a query, dropped; FORMERR when
    /// it does not parse): the answer
    /// of the node responsible, from the cache or by walking from the root, with the
    /// query's ID, RD copied, RA set and AA clear; SERVFAIL when the walk fails.
    pub async fn resolve_dns(&self, query: &[u8]) -> Option<Vec<u8>> {
        let Ok(message) = Message::from_vec(query) else {
            return format_error(query);
        };
        if message.metadata.message_type != MessageType::Query {
            return None;
        }
        let question = message.queries.first()?.clone();
        let name = question.name().clone();
        let key = (lower(&name), u16::from(question.query_type()));
        let entry = match self.inner.dns_answers.get(&key).await {
            Some(entry) => Ok(entry),
            None => {
                self.inner
                    .dns_answers
                    .try_get_with(key, async {
                        self.walk_dns(&name, question.query_type())
                            .await
                            .map(Arc::new)
                    })
                    .await
            }
        };
        let mut reply = match entry.as_deref() {
            Ok(Entry {
                value: Value_::Dns(bytes),
                ..
            }) => Message::from_vec(bytes).ok()?,
            _ => {
                let mut reply = Message::error_msg(
                    message.metadata.id,
                    message.metadata.op_code,
                    ResponseCode::ServFail,
                );
                reply.add_query(question);
                reply
            }
        };
        reply.metadata.id = message.metadata.id;
        reply.metadata.recursion_desired = message.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.authoritative = false;
        reply.to_vec().ok()
    }

    async fn walk_dns(&self, name: &Name, qtype: RecordType) -> Result<Entry, ProxyError> {
        let config = &self.inner.config;
        let root = config.root_dns.ok_or_else(|| ProxyError {
            hop: 1,
            node: "root".into(),
            endpoint: String::new(),
            reason: "no DNS address of the root is configured".into(),
        })?;
        let (mut node, mut servers, mut cut) = ("root".to_owned(), vec![root], String::new());
        let mut above = name.clone();
        loop {
            if let Some(entry) = self.inner.dns_referrals.get(&lower(&above)).await
                && let Value_::DnsReferral(addresses) = &entry.value
            {
                (node, servers, cut) = (lower(&above), addresses.clone(), lower(&above));
                break;
            }
            if above.is_root() {
                break;
            }
            above = above.base_name();
        }
        for hop in 1..=MAX_HOPS {
            let id: u16 = rand_id();
            let query = dns_query(id, name, qtype);
            let mut last = String::from("no server");
            let mut step = None;
            for server in &servers {
                self.inner.upstream.fetch_add(1, Ordering::Relaxed);
                match exchange(&query, *server, config.timeout).await {
                    Ok(response) => match classify_dns(&response, id, name, &cut) {
                        Ok(s) => {
                            step = Some((s, response));
                            break;
                        }
                        Err(e) => last = format!("{server}: {e}"),
                    },
                    Err(e) => last = format!("{server}: {e}"),
                }
            }
            let Some((step, response)) = step else {
                return Err(ProxyError {
                    hop,
                    node,
                    endpoint: servers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    reason: last,
                });
            };
            match step {
                DnsStep::Final { ttl, .. } => {
                    let ttl = Duration::from_secs(u64::from(ttl)).min(config.max_ttl);
                    return Ok(Entry {
                        value: Value_::Dns(response),
                        ttl,
                    });
                }
                DnsStep::Referral {
                    cut: next,
                    servers: glue,
                    ttl,
                } => {
                    let next_servers: Vec<SocketAddr> = glue
                        .iter()
                        .map(|ip: &IpAddr| SocketAddr::new(*ip, root.port()))
                        .collect();
                    self.inner
                        .dns_referrals
                        .insert(
                            next.clone(),
                            Arc::new(Entry {
                                value: Value_::DnsReferral(next_servers.clone()),
                                ttl: Duration::from_secs(u64::from(ttl)).min(config.max_ttl),
                            }),
                        )
                        .await;
                    (node, servers, cut) = (next.clone(), next_servers, next);
                }
            }
        }
        Err(ProxyError {
            hop: MAX_HOPS,
            node,
            endpoint: String::new(),
            reason: WalkError::TooManyHops.to_string(),
        })
    }
}

/// FORMERR for a message that does not parse but has a query's header (QR clear):
/// the header with QR set, RCODE 1 and no sections; `None` for anything else.
fn format_error(query: &[u8]) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let mut reply = header.to_vec();
    reply[2] = 0x80 | (header[2] & 0x79);
    reply[3] = 0x80 | 0x01;
    reply[4..12].fill(0);
    Some(reply)
}

fn http_answer(entry: &Entry, cached: bool) -> HttpAnswer {
    match &entry.value {
        Value_::Http { status, body } => HttpAnswer {
            status: *status,
            body: body.clone(),
            cached,
        },
        _ => HttpAnswer {
            status: 500,
            body: Bytes::from_static(b"{\"error\":\"internal\"}"),
            cached,
        },
    }
}

/// A reqwest error with its cause, briefly.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection refused or unreachable".into()
    } else {
        error.to_string()
    }
}

fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    ((u64::from(nanos) ^ count.wrapping_mul(0x9e37_79b9)) & 0xffff) as u16
}

/// One UDP exchange with a bound on the wait.
async fn exchange(query: &[u8], server: SocketAddr, timeout: Duration) -> Result<Vec<u8>, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket
        .send_to(query, server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buffer = vec![0u8; 65_535];
    let wait = async {
        loop {
            let (n, from) = socket.recv_from(&mut buffer).await?;
            if from == server {
                return Ok::<usize, std::io::Error>(n);
            }
        }
    };
    let response = match tokio::time::timeout(timeout, wait).await {
        Ok(Ok(n)) => buffer[..n].to_vec(),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {} ms", timeout.as_millis())),
    };
    // TC set: the answer did not fit in UDP; ask again over TCP.
    if response.get(2).is_some_and(|flags| flags & 0x02 != 0) {
        return match tokio::time::timeout(timeout, exchange_tcp(query, server)).await {
            Ok(result) => result.map_err(|e| format!("over TCP: {e}")),
            Err(_) => Err(format!(
                "no answer over TCP within {} ms",
                timeout.as_millis()
            )),
        };
    }
    Ok(response)
}

/// One exchange over TCP (RFC 7766 framing).
async fn exchange_tcp(query: &[u8], server: SocketAddr) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server).await?;
    let length = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await?;
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut response).await?;
    Ok(response)
}

/// Percent-encodes what may not stand in a URL path as it is.
pub fn path_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/()!$&'*+,;=:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The proxy's HTTP front end: `GET /api/handles/{id}` (the answer of the node
/// responsible, `X-Medid-Cache: hit|miss`; 503 naming the hop that failed) and
/// `GET /api/proxy/stats`.
pub fn app(proxy: Proxy) -> Router {
    Router::new()
        .route("/api/handles/{*id}", get(http_resolve))
        .route("/api/proxy/stats", get(stats))
        .with_state(proxy)
}

async fn stats(State(proxy): State<Proxy>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"upstreamRequests": proxy.upstream_requests()}),
    )
}

async fn http_resolve(State(proxy): State<Proxy>, Path(text): Path<String>) -> Response {
    let id = match Identifier::parse(&text) {
        Ok(id) => id,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"responseCode": 102, "handle": text.chars().take(200).collect::<String>(),
                        "message": e.to_string(), "error": "invalidHandle"}),
            );
        }
    };
    match proxy.resolve_http(&id).await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                answer.body,
            )
                .into_response();
            response.headers_mut().insert(
                "x-medid-cache",
                HeaderValue::from_static(if answer.cached { "hit" } else { "miss" }),
            );
            response
        }
        Err(error) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": "upstreamUnavailable",
                "message": error.to_string(),
                "hop": {"index": error.hop, "node": error.node, "endpoint": error.endpoint},
            }),
        ),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

/// How long a DNS-over-TCP connection to the proxy may stay idle.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Answers DNS over TCP (RFC 7766: two-byte length, any number of queries per
/// connection, closed after [`TCP_IDLE`] without one) until the task is dropped.
pub async fn serve_dns_tcp(proxy: Proxy, listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let mut length = [0u8; 2];
                match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut length)).await {
                    Ok(Ok(_)) => {}
                    _ => return,
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                let Some(reply) = proxy.resolve_dns(&query).await else {
                    return;
                };
                let Ok(length) = u16::try_from(reply.len()) else {
                    return;
                };
                let mut framed = length.to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Answers DNS queries on `socket` through the proxy until the task is dropped.
pub async fn serve_dns(proxy: Proxy, socket: UdpSocket) {
    let socket = Arc::new(socket);
    let mut buffer = vec![0u8; 65_535];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let query = buffer[..n].to_vec();
        let (proxy, socket) = (proxy.clone(), socket.clone());
        tokio::spawn(async move {
            if let Some(reply) = proxy.resolve_dns(&query).await {
                let _ = socket.send_to(&reply, from).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_malformed_query_gets_formerr_and_a_response_nothing() {
        let reply = format_error(&[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff]).unwrap();
        assert_eq!(reply, [0x12, 0x34, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            format_error(&[0x12, 0x34, 0x81, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]),
            None
        );
        assert_eq!(format_error(&[1, 2, 3]), None);
    }

    #[tokio::test]
    async fn garbage_is_answered_without_asking_upstream() {
        let proxy = Proxy::new(ProxyConfig::new("http://127.0.0.1:9")).unwrap();
        let reply = proxy
            .resolve_dns(&[0xab, 0xcd, 0x01, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 7])
            .await;
        assert_eq!(reply.unwrap()[3] & 0x0f, 1);
        assert_eq!(proxy.upstream_requests(), 0);
    }
}
