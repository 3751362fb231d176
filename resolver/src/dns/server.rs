//! The sockets: one UDP socket per core on one address (SO_REUSEPORT), each served by
//! its own thread with blocking I/O (no task wake-ups between a datagram and its
//! answer), and a TCP listener on the tokio runtime (RFC 7766). They only move bytes;
//! [`Responder`] answers.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::message;
use super::responder::{DEFAULT_MAX_UDP_PAYLOAD, Responder, Transport};
use super::rrl::{RateLimit, RateLimiter, Verdict};
use super::zone::{Zone, ZoneConfig, ZoneConfigError, ZoneIndex};
use crate::cache::AnswerCache;

/// Largest UDP query read; longer datagrams are cut and answered FORMERR.
const MAX_UDP_QUERY: usize = 4096;
/// Responses gathered before a TCP write when queries are pipelined.
const TCP_WRITE_BATCH: usize = 16 * 1024;
/// Attempts to find a port free for both UDP and TCP when the configured port is 0.
const PORT_ATTEMPTS: usize = 16;
/// How long the TCP listener waits after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// How often a UDP thread wakes up on its own to look for a stop request (it is woken
/// at once by [`DnsServer::shutdown`]; this is the safety net).
const UDP_POLL: Duration = Duration::from_secs(1);

/// Everything a DNS front end needs to start.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Address for UDP and TCP (`127.0.0.1:5353`; port 0 picks a free port, the same
    /// for both).
    pub listen: SocketAddr,
    /// The zone answered.
    pub zone: ZoneConfig,
    /// UDP sockets on the address (SO_REUSEPORT); `0`: one per core.
    pub udp_sockets: usize,
    /// Threads reading each UDP socket (at least 1). The kernel spreads clients over
    /// the sockets by a hash of their address and port, so with few clients one socket
    /// can get most of the load while another core idles; several threads on fewer
    /// sockets even that out (with dnsperf's 16 clients on 2 cores, 1 socket × 2
    /// threads answered 10–25% more queries than 2 sockets × 1 thread).
    pub udp_threads_per_socket: usize,
    /// The largest UDP response, and the payload size advertised with EDNS.
    pub max_udp_payload: u16,
    /// TCP connections served at once; more are closed as soon as accepted.
    pub tcp_max_connections: usize,
    /// A TCP connection with no complete query (or unread answer) for this long is
    /// closed.
    pub tcp_idle_timeout: Duration,
    /// Response rate limiting on UDP.
    pub rate_limit: RateLimit,
    /// Names whose cache subject is remembered (see [`Responder`]).
    pub name_capacity: u64,
}

impl DnsConfig {
    /// The defaults for zone `zone` on `listen`: one UDP socket per core, 1232-byte UDP
    /// payloads, 512 TCP connections idle at most 10 s, rate limiting at 200 responses
    /// per second per /24 (see [`RateLimit::default`]).
    pub fn new(listen: SocketAddr, zone: &str) -> Self {
        Self {
            listen,
            zone: ZoneConfig::new(zone),
            udp_sockets: 0,
            udp_threads_per_socket: 1,
            max_udp_payload: DEFAULT_MAX_UDP_PAYLOAD,
            tcp_max_connections: 512,
            tcp_idle_timeout: Duration::from_secs(10),
            rate_limit: RateLimit::default(),
            name_capacity: 1 << 20,
        }
    }
}

/// Why the DNS front end did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The zone configuration is not valid.
    #[error(transparent)]
    Zone(#[from] ZoneConfigError),
    /// A socket could not be opened or bound.
    #[error("DNS on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
}

/// A running DNS front end. Stop it with [`DnsServer::shutdown`]; dropping it stops it
/// too, without waiting.
pub struct DnsServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    responder: Arc<Responder>,
    stop: watch::Sender<bool>,
    tcp_task: Option<JoinHandle<()>>,
    udp_stop: Arc<AtomicBool>,
    udp_threads: Vec<ThreadHandle<()>>,
}

impl DnsServer {
    /// The bound UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The bound TCP address (the same port as UDP).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The request handler the sockets share.
    pub fn responder(&self) -> &Arc<Responder> {
        &self.responder
    }

    /// Stops accepting and answering, closes every socket and connection, and waits
    /// until every thread and task has ended.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(task) = self.tcp_task.take() {
            let _ = task.await;
        }
        let threads = std::mem::take(&mut self.udp_threads);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }

    /// Tells every thread and task to stop, and wakes the UDP threads.
    fn signal_stop(&mut self) {
        let _ = self.stop.send(true);
        self.udp_stop.store(true, Ordering::Release);
        // An empty datagram wakes a thread blocked in `recv_from`, which then sees the
        // stop flag. (Shutting the socket's reading side down would wake it too, but
        // the standard library panics on the address-less result.) Sockets sharing the
        // port get datagrams by a hash of the sender's port, so each comes from a new
        // port, a few per thread; the poll interval covers a thread none reached.
        let target = match self.udp_addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, a.port()))
            }
            addr => addr,
        };
        let source = match target {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        for _ in 0..self.udp_threads.len() * 4 {
            if let Ok(sender) = std::net::UdpSocket::bind(source) {
                let _ = sender.send_to(&[], target);
            }
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// Starts the DNS front end of a node: binds UDP (one socket per core, SO_REUSEPORT)
/// and TCP on `config.listen` and answers from `index` through `cache`. Must be called
/// within a tokio runtime.
///
/// When [`ZoneConfig::ns_addresses`] is empty and the listen address is not
/// unspecified, the listen address is the name server's glue.
pub async fn start(
    config: DnsConfig,
    index: Arc<dyn ZoneIndex>,
    cache: AnswerCache,
) -> Result<DnsServer, DnsError> {
    let mut zone_config = config.zone.clone();
    if zone_config.ns_addresses.is_empty() && !config.listen.ip().is_unspecified() {
        zone_config.ns_addresses.push(config.listen.ip());
    }
    let zone = Zone::new(zone_config)?;
    let responder = Arc::new(
        Responder::new(zone, index, cache)
            .with_max_udp_payload(config.max_udp_payload)
            .with_name_capacity(config.name_capacity),
    );
    let count = match config.udp_sockets {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let (udp, tcp) = bind_all(config.listen, count)?;
    let udp_addr = udp
        .first()
        .and_then(|first| first.local_addr().ok())
        .and_then(|addr| addr.as_socket())
        .ok_or_else(|| bind_error(config.listen, io::Error::other("no UDP address")))?;
    let tcp_addr = tcp
        .local_addr()
        .map_err(|source| bind_error(config.listen, source))?;
    let (stop, stopped) = watch::channel(false);
    let limiter = RateLimiter::new(config.rate_limit).map(Arc::new);
    let transport = Transport::Udp {
        max_payload: config.max_udp_payload,
    };
    let udp_stop = Arc::new(AtomicBool::new(false));
    let mut udp_threads = Vec::with_capacity(udp.len());
    for (i, socket) in udp.into_iter().enumerate() {
        for j in 0..config.udp_threads_per_socket.max(1) {
            let clone = socket
                .try_clone()
                .map_err(|source| bind_error(udp_addr, source))?;
            let worker = UdpWorker {
                socket: clone.into(),
                responder: responder.clone(),
                limiter: limiter.clone(),
                transport,
                stop: udp_stop.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("medid-dns-udp-{i}-{j}"))
                .spawn(move || worker.run())
                .map_err(|source| bind_error(udp_addr, source))?;
            udp_threads.push(thread);
        }
    }
    let tcp_task = tokio::spawn(serve_tcp(
        tcp,
        responder.clone(),
        TcpLimits {
            max_connections: config.tcp_max_connections.max(1),
            idle: config.tcp_idle_timeout,
        },
        stopped,
    ));
    Ok(DnsServer {
        udp_addr,
        tcp_addr,
        responder,
        stop,
        tcp_task: Some(tcp_task),
        udp_stop,
        udp_threads,
    })
}

fn bind_error(addr: SocketAddr, source: io::Error) -> DnsError {
    DnsError::Bind { addr, source }
}

/// Binds `count` UDP sockets and one TCP listener on one port. With port 0, the first
/// UDP socket picks the port, the others join it; if TCP finds that port taken, it
/// starts over with another.
fn bind_all(addr: SocketAddr, count: usize) -> Result<(Vec<Socket>, TcpListener), DnsError> {
    let attempts = if addr.port() == 0 { PORT_ATTEMPTS } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let first = udp_socket(addr).map_err(|source| bind_error(addr, source))?;
        let port = first
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .ok_or_else(|| bind_error(addr, io::Error::other("no local address")))?;
        let bound = SocketAddr::new(addr.ip(), port);
        let tcp = match tcp_listener(bound) {
            Ok(tcp) => tcp,
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                last_error = Some(e);
                continue;
            }
            Err(source) => return Err(bind_error(bound, source)),
        };
        let mut sockets = vec![first];
        for _ in 1..count {
            sockets.push(udp_socket(bound).map_err(|source| bind_error(bound, source))?);
        }
        let tcp = TcpListener::from_std(tcp).map_err(|source| bind_error(bound, source))?;
        return Ok((sockets, tcp));
    }
    Err(bind_error(
        addr,
        last_error.unwrap_or_else(|| io::Error::other("no free port for UDP and TCP")),
    ))
}

/// A blocking UDP socket with SO_REUSEPORT, bound to `addr`.
fn udp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // A larger receive buffer absorbs bursts; the kernel may grant less.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_read_timeout(Some(UDP_POLL))?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A non-blocking TCP listener bound to `addr`.
fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// One UDP socket and the thread that serves it.
struct UdpWorker {
    socket: std::net::UdpSocket,
    responder: Arc<Responder>,
    limiter: Option<Arc<RateLimiter>>,
    transport: Transport,
    stop: Arc<AtomicBool>,
}

impl UdpWorker {
    /// Receive, answer, rate-limit, send, until told to stop.
    fn run(self) {
        let mut buffer = vec![0u8; MAX_UDP_QUERY];
        let mut out = Vec::with_capacity(usize::from(DEFAULT_MAX_UDP_PAYLOAD) * 2);
        while !self.stop.load(Ordering::Acquire) {
            let Ok((len, peer)) = self.socket.recv_from(&mut buffer) else {
                // A timeout, a wake-up, an ICMP error about one datagram: look at the
                // stop flag and go on.
                continue;
            };
            let Some(query) = buffer.get(..len) else {
                continue;
            };
            if !self.responder.respond(query, self.transport, &mut out) {
                continue;
            }
            if let Some(limiter) = &self.limiter {
                match limiter.check(peer.ip(), Instant::now()) {
                    Verdict::Send => {}
                    Verdict::Slip => message::truncate(&mut out),
                    Verdict::Drop => continue,
                }
            }
            // A send error (no route, buffer full) loses this answer only; the client
            // retries.
            let _ = self.socket.send_to(&out, peer);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct TcpLimits {
    max_connections: usize,
    idle: Duration,
}

/// The TCP accept loop.
async fn serve_tcp(
    listener: TcpListener,
    responder: Arc<Responder>,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors and the like: back off a little, then accept
            // again (connections ending meanwhile free descriptors).
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the limit: close at once, so the client can go elsewhere.
            drop(stream);
            continue;
        };
        let responder = responder.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            serve_connection(stream, &responder, limits.idle, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    connections.join_all().await;
}

/// One TCP connection (RFC 7766): length-prefixed queries, answered in order,
/// pipelined queries answered in one write.
async fn serve_connection(
    stream: TcpStream,
    responder: &Responder,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut query = Vec::new();
    let mut answer = Vec::new();
    let mut pending = Vec::with_capacity(TCP_WRITE_BATCH);
    loop {
        let length = tokio::select! {
            biased;
            _ = stop.changed() => break,
            length = tokio::time::timeout(idle, reader.read_u16()) => length,
        };
        let Ok(Ok(length)) = length else {
            break;
        };
        query.resize(usize::from(length), 0);
        match tokio::time::timeout(idle, reader.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        if responder.respond(&query, Transport::Tcp, &mut answer) {
            let Ok(len) = u16::try_from(answer.len()) else {
                break;
            };
            pending.extend_from_slice(&len.to_be_bytes());
            pending.extend_from_slice(&answer);
        }
        // Write when no further query is already buffered, or enough is gathered.
        if (reader.buffer().is_empty() || pending.len() >= TCP_WRITE_BATCH) && !pending.is_empty() {
            match tokio::time::timeout(idle, writer.write_all(&pending)).await {
                Ok(Ok(())) => pending.clear(),
                _ => break,
            }
        }
    }
    if !pending.is_empty() {
        let _ = tokio::time::timeout(idle, writer.write_all(&pending)).await;
    }
    let _ = writer.shutdown().await;
}
