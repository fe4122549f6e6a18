//! Destination health: SIP OPTIONS probing of the destinations bridged calls go to.
//!
//! Issue 3 ("a dead destination is bypassed within 5 seconds") and issue 6 (fault: "a
//! municipality's destination stops answering"). One tokio task owns one UDP socket on the SIP
//! listen IP and sends an OPTIONS to every monitored destination each `interval`; a probe that
//! gets no final response within `timeout` (or a final status listed in `dead_statuses`) is a
//! miss, and `dead_after` consecutive misses mark the destination dead. Probes are not
//! serialised behind each other, so with the defaults (1 s interval, 1 s timeout, 2 misses) a
//! destination that dies right after a good probe is marked dead after at most ~3 s. A dead
//! destination is probed again with exponential backoff (interval, 2×, 4×, … capped at
//! `recovery_max_ms`) and is alive again after `alive_after` good answers.
//!
//! The call path only reads: [`HealthMonitor::is_alive`] is an `ArcSwap` pointer load, a hash
//! lookup and an atomic load, never a lock or an await. State changes are also published on a
//! `tokio::sync::broadcast` channel ([`HealthMonitor::subscribe`]); the call layer turns a
//! [`HealthNotice`] with `alive == false` into `veertien_b2bua::Event::DestinationDown` for
//! calls that are ringing that destination.
//!
//! Everything is bounded: at most `max_destinations` destinations are monitored (the rest are
//! reported by [`HealthMonitor::set_destinations`] and treated as alive, i.e. tried as before
//! probing existed), and the table of outstanding probes is bounded by destinations × the
//! number of probes that fit in one timeout.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use veertien_core::{DeliveryMode, Destination};
use veertien_sip::{HeaderName, Message, Method, Request, Transport, Uri, branch_from};

use crate::config::ConfigError;
use crate::routing::Snapshot;

/// `[health]` in the server config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Probe bridged destinations at all. Off: every destination counts as alive.
    pub enabled: bool,
    /// Time between two probes of a live destination.
    pub interval_ms: u64,
    /// A probe without a final response after this long is a miss.
    pub timeout_ms: u64,
    /// Consecutive misses that mark a destination dead.
    pub dead_after: u32,
    /// Consecutive good answers that mark a dead destination alive again.
    pub alive_after: u32,
    /// Cap of the exponential backoff between probes of a dead destination.
    pub recovery_max_ms: u64,
    /// Most destinations monitored; beyond it destinations are not probed (and count as alive).
    pub max_destinations: usize,
    /// Final statuses that count as a miss although the peer answered: the trunk or the
    /// destination says it cannot take calls. Any other final status shows a live peer (many
    /// PBXs answer OPTIONS with 404 or 405 and take calls fine).
    pub dead_statuses: Vec<u16>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            interval_ms: 1_000,
            timeout_ms: 1_000,
            dead_after: 2,
            alive_after: 1,
            recovery_max_ms: 30_000,
            max_destinations: 1_024,
            dead_statuses: vec![408, 480, 502, 503, 504],
        }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, reason: &str) -> ConfigError {
            ConfigError::Invalid { key, reason: reason.to_owned() }
        }
        if !(50..=600_000).contains(&self.interval_ms) {
            return Err(invalid("health.interval_ms", "must be between 50 and 600000"));
        }
        if !(50..=60_000).contains(&self.timeout_ms) {
            return Err(invalid("health.timeout_ms", "must be between 50 and 60000"));
        }
        if self.dead_after == 0 || self.dead_after > 100 {
            return Err(invalid("health.dead_after", "must be between 1 and 100"));
        }
        if self.alive_after == 0 || self.alive_after > 100 {
            return Err(invalid("health.alive_after", "must be between 1 and 100"));
        }
        if self.recovery_max_ms < self.interval_ms {
            return Err(invalid("health.recovery_max_ms", "must be at least health.interval_ms"));
        }
        if self.max_destinations == 0 || self.max_destinations > 100_000 {
            return Err(invalid("health.max_destinations", "must be between 1 and 100000"));
        }
        if self.dead_statuses.iter().any(|s| !(200..=699).contains(s)) {
            return Err(invalid("health.dead_statuses", "must be final SIP statuses (200-699)"));
        }
        Ok(())
    }

    /// Worst case from a destination's death to it being marked dead (the bound the 5 s
    /// bypass guarantee rests on): the last good probe, then `dead_after` probes that each
    /// run into the timeout.
    pub fn worst_detection(&self) -> Duration {
        Duration::from_millis(self.interval_ms * u64::from(self.dead_after) + self.timeout_ms)
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Where probes go: the same next hop as the bridged INVITE. A `sip:` URI with an IP address
/// goes to that address; a `sip:` URI with a host name and a `tel:` number (rewritten to
/// `sip:<number>@<trunk>;user=phone`) go to the outbound trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub request_uri: String,
    pub addr: SocketAddr,
}

impl ProbeTarget {
    /// How a destination of a route is reached; `None` when it cannot be probed (a `tel:`
    /// number without a trunk, a host name without a trunk, `;transport=tcp` or `tls`, `sips:`,
    /// not a URI).
    pub fn resolve(destination: &str, trunk: Option<SocketAddr>) -> Option<ProbeTarget> {
        let uri = Uri::parse(destination.trim()).ok()?;
        if let Some(tel) = uri.tel() {
            let trunk = trunk?;
            let number = String::from_utf8_lossy(&tel.number);
            let host = match trunk.ip() {
                IpAddr::V4(v4) => format!("{v4}:{}", trunk.port()),
                IpAddr::V6(v6) => format!("[{v6}]:{}", trunk.port()),
            };
            return Some(ProbeTarget { request_uri: format!("sip:{number}@{host};user=phone"), addr: trunk });
        }
        // Probes are UDP; a destination reached over TCP or TLS (`sips:` included) is not
        // probed (treated as alive).
        if crate::calls::uri_transport(destination).is_some() {
            return None;
        }
        let sip = uri.sip()?;
        let host = std::str::from_utf8(&sip.host).ok()?;
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            let port = sip.port.unwrap_or(5060);
            return Some(ProbeTarget { request_uri: destination.trim().to_owned(), addr: SocketAddr::new(ip, port) });
        }
        trunk.map(|trunk| ProbeTarget { request_uri: destination.trim().to_owned(), addr: trunk })
    }
}

/// The answer to one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProbeResult {
    /// Final status, `None` when nothing final arrived within the timeout.
    pub status: Option<u16>,
    /// Time from the first transmission to the final response.
    pub rtt: Option<Duration>,
}

impl ProbeResult {
    /// Whether this answer shows a destination able to take calls.
    pub fn is_alive(&self, config: &HealthConfig) -> bool {
        self.status.is_some_and(|s| !config.dead_statuses.contains(&s))
    }
}

/// A destination changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthNotice {
    /// The destination as given in the route (the key of [`DestinationHealth::is_alive`]).
    pub destination: String,
    pub alive: bool,
    pub at: jiff::Timestamp,
    /// What the last probe saw ("no answer within 1000 ms", "503 Service Unavailable", "200").
    pub reason: String,
}

/// One monitored destination as shown on the portal's status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DestinationStatus {
    pub destination: String,
    pub alive: bool,
    pub last_status: Option<u16>,
    pub last_rtt_ms: Option<u64>,
    pub probes: u64,
    pub misses: u64,
    pub since: Option<jiff::Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HealthMetrics {
    pub destinations: usize,
    pub dead: usize,
    pub probes_sent: u64,
    pub answers: u64,
    pub timeouts: u64,
    /// Destinations beyond `max_destinations` or without a probe target at the last update.
    pub unmonitored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("destination '{0}' cannot be probed: not a SIP URI with an IP address, and no outbound trunk configured")]
    Unroutable(String),
    #[error("cannot build the OPTIONS request: {0}")]
    Build(String),
    #[error("probe socket: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
struct Entry {
    destination: Arc<str>,
    target: ProbeTarget,
    alive: AtomicBool,
    stats: Mutex<EntryStats>,
}

#[derive(Debug, Default)]
struct EntryStats {
    last_status: Option<u16>,
    last_rtt: Option<Duration>,
    probes: u64,
    misses: u64,
    since: Option<jiff::Timestamp>,
}

type Table = HashMap<Arc<str>, Arc<Entry>>;

struct Shared {
    config: HealthConfig,
    trunk: Option<SocketAddr>,
    local_ip: IpAddr,
    table: ArcSwap<Table>,
    notices: broadcast::Sender<HealthNotice>,
    probes_sent: AtomicU64,
    answers: AtomicU64,
    timeouts: AtomicU64,
    unmonitored: std::sync::atomic::AtomicUsize,
}

/// Handle to the destination health state; cheap to clone, shared by the call layer, the
/// prober task and the portal.
#[derive(Clone)]
pub struct HealthMonitor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HealthMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthMonitor").field("metrics", &self.metrics()).finish()
    }
}

impl veertien_b2bua::DestinationHealth for HealthMonitor {
    fn is_alive(&self, destination: &str) -> bool {
        HealthMonitor::is_alive(self, destination)
    }
}

/// The destinations bridged calls of this snapshot can go to (primary, overflow and calamity
/// destinations of municipalities delivered by bridging, or with an overflow, which forces
/// bridging), deduplicated, in municipality order. Destinations on the placeholder trunk
/// (`*.invalid`) are left out: they cannot be reached and are never called.
pub fn bridged_destinations(snapshot: &Snapshot) -> Vec<String> {
    let s = &snapshot.settings;
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in snapshot.plan.municipalities() {
        let ms = s.get(m.id);
        let mut add = |d: &Destination| {
            let uri = d.uri(&m.cbs, s.trunk());
            if !uri.contains(".invalid") && seen.insert(uri.clone()) {
                out.push(uri);
            }
        };
        if ms.mode == DeliveryMode::Bridge || ms.overflow.is_some() {
            add(&ms.destination);
        }
        if let Some(o) = &ms.overflow {
            add(&o.destination);
        }
        if let Some(d) = ms.calamity.as_ref().and_then(|c| c.destination.as_ref()) {
            add(d);
        }
    }
    out
}

impl HealthMonitor {
    /// A monitor without a prober task yet: every destination counts as alive until
    /// [`HealthMonitor::spawn`] runs and probes say otherwise. `local_ip` is the SIP listen IP
    /// the probe socket binds to (so trunks see probes from the address they trust).
    pub fn new(config: HealthConfig, local_ip: IpAddr, trunk: Option<SocketAddr>) -> HealthMonitor {
        let (notices, _) = broadcast::channel(256);
        HealthMonitor {
            shared: Arc::new(Shared {
                config,
                trunk,
                local_ip,
                table: ArcSwap::from_pointee(Table::new()),
                notices,
                probes_sent: AtomicU64::new(0),
                answers: AtomicU64::new(0),
                timeouts: AtomicU64::new(0),
                unmonitored: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    pub fn config(&self) -> &HealthConfig {
        &self.shared.config
    }

    /// Lock-free: whether calls should try this destination. Destinations that are not
    /// monitored count as alive.
    pub fn is_alive(&self, destination: &str) -> bool {
        self.shared.table.load().get(destination).is_none_or(|e| e.alive.load(Ordering::Acquire))
    }

    /// State changes from now on. A receiver that lags behind loses the oldest notices
    /// (`RecvError::Lagged`); [`HealthMonitor::is_alive`] stays authoritative.
    pub fn subscribe(&self) -> broadcast::Receiver<HealthNotice> {
        self.shared.notices.subscribe()
    }

    /// Replaces the set of monitored destinations (at start and after every settings change).
    /// Destinations kept keep their state; new ones start alive. Returns the destinations that
    /// are not monitored (over `max_destinations`, or with no way to reach them).
    pub fn set_destinations<I, S>(&self, destinations: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cfg = &self.shared.config;
        let old = self.shared.table.load_full();
        let mut table = Table::new();
        let mut left_out = Vec::new();
        for d in destinations {
            let d = d.as_ref().trim();
            if d.is_empty() || table.contains_key(d) {
                continue;
            }
            if !cfg.enabled || table.len() >= cfg.max_destinations {
                left_out.push(d.to_owned());
                continue;
            }
            if let Some(e) = old.get(d) {
                table.insert(e.destination.clone(), e.clone());
                continue;
            }
            match ProbeTarget::resolve(d, self.shared.trunk) {
                Some(target) => {
                    let destination: Arc<str> = Arc::from(d);
                    let entry = Entry { destination: destination.clone(), target, alive: AtomicBool::new(true), stats: Mutex::default() };
                    table.insert(destination, Arc::new(entry));
                }
                None => left_out.push(d.to_owned()),
            }
        }
        if !left_out.is_empty() {
            tracing::warn!(count = left_out.len(), first = %left_out[0], max = cfg.max_destinations, "destinations not monitored by OPTIONS probing (over the bound or unreachable without a trunk)");
        }
        self.shared.unmonitored.store(left_out.len(), Ordering::Relaxed);
        self.shared.table.store(Arc::new(table));
        left_out
    }

    /// Monitors the bridged destinations of a routing snapshot.
    pub fn track_snapshot(&self, snapshot: &Snapshot) -> Vec<String> {
        self.set_destinations(bridged_destinations(snapshot))
    }

    pub fn statuses(&self) -> Vec<DestinationStatus> {
        let table = self.shared.table.load();
        let mut out: Vec<DestinationStatus> = table
            .values()
            .map(|e| {
                let s = e.stats.lock();
                DestinationStatus {
                    destination: e.destination.to_string(),
                    alive: e.alive.load(Ordering::Acquire),
                    last_status: s.last_status,
                    last_rtt_ms: s.last_rtt.map(|d| d.as_millis() as u64),
                    probes: s.probes,
                    misses: s.misses,
                    since: s.since,
                }
            })
            .collect();
        out.sort_by(|a, b| a.destination.cmp(&b.destination));
        out
    }

    pub fn metrics(&self) -> HealthMetrics {
        let table = self.shared.table.load();
        HealthMetrics {
            destinations: table.len(),
            dead: table.values().filter(|e| !e.alive.load(Ordering::Relaxed)).count(),
            probes_sent: self.shared.probes_sent.load(Ordering::Relaxed),
            answers: self.shared.answers.load(Ordering::Relaxed),
            timeouts: self.shared.timeouts.load(Ordering::Relaxed),
            unmonitored: self.shared.unmonitored.load(Ordering::Relaxed),
        }
    }

    /// One probe now, outside the monitor's schedule and state (the portal's synthetic test
    /// call, `veertien` diagnostics). Uses its own ephemeral socket on the SIP listen IP.
    pub async fn probe_once(&self, destination: &str) -> Result<ProbeResult, ProbeError> {
        let target = ProbeTarget::resolve(destination, self.shared.trunk)
            .ok_or_else(|| ProbeError::Unroutable(destination.to_owned()))?;
        probe_once(&target, self.shared.local_ip, self.shared.config.timeout()).await
    }

    /// Starts the prober task on a UDP socket bound to the SIP listen IP (ephemeral port).
    /// It stops when `stop` is cancelled.
    pub async fn spawn(&self, stop: CancellationToken) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let sock = UdpSocket::bind(SocketAddr::new(self.shared.local_ip, 0)).await?;
        let me = self.clone();
        Ok(tokio::spawn(async move { me.run(sock, stop).await }))
    }

    async fn run(self, sock: UdpSocket, stop: CancellationToken) {
        let mut prober = Prober::new(self.shared.clone(), sock.local_addr().ok());
        let mut buf = vec![0u8; 65_535];
        // 50 ms granularity is 5 % of the default interval; probe timing needs no more.
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {
                    for (bytes, addr) in prober.on_tick(Instant::now()) {
                        if let Err(e) = sock.send_to(&bytes, addr).await {
                            // ICMP unreachable etc.: the timeout turns it into a miss.
                            tracing::debug!(error = %e, %addr, "OPTIONS probe send");
                        }
                    }
                }
                r = sock.recv_from(&mut buf) => match r {
                    Ok((n, _)) => prober.on_datagram(&buf[..n], Instant::now()),
                    // Linux reports an earlier ICMP port unreachable on the next receive.
                    Err(e) => tracing::debug!(error = %e, "OPTIONS probe receive"),
                },
            }
        }
    }
}

/// One OPTIONS probe with its own socket; retransmits per RFC 3261 Timer E (T1 = 500 ms,
/// doubling) until a final response or `timeout`.
pub async fn probe_once(target: &ProbeTarget, local_ip: IpAddr, timeout: Duration) -> Result<ProbeResult, ProbeError> {
    let sock = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    let local = sock.local_addr()?;
    let call_id = new_call_id();
    let bytes = options_request(target, local, &call_id)?;
    let start = Instant::now();
    let deadline = start + timeout;
    let mut next_send = start;
    let mut gap = Duration::from_millis(500);
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(ProbeResult { status: None, rtt: None });
        }
        if now >= next_send {
            // A send error (e.g. ICMP unreachable surfacing) leaves it to the timeout.
            let _ = sock.send_to(&bytes, target.addr).await;
            next_send = now + gap;
            gap = (gap * 2).min(Duration::from_secs(4));
        }
        let wait = next_send.min(deadline).saturating_duration_since(Instant::now());
        if let Ok(Ok((n, _))) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await
            && let Some((cid, status)) = final_status(&buf[..n])
            && cid == call_id
        {
            return Ok(ProbeResult { status: Some(status), rtt: Some(start.elapsed()) });
        }
    }
}

fn new_call_id() -> String {
    format!("hc-{:016x}@veertien", fastrand::u64(..))
}

fn host_port(addr: SocketAddr) -> (String, u16) {
    match addr.ip() {
        IpAddr::V4(v4) => (v4.to_string(), addr.port()),
        IpAddr::V6(v6) => (format!("[{v6}]"), addr.port()),
    }
}

fn options_request(target: &ProbeTarget, local: SocketAddr, call_id: &str) -> Result<bytes::Bytes, ProbeError> {
    let uri = Uri::parse(&target.request_uri).map_err(|e| ProbeError::Build(format!("{}: {e}", target.request_uri)))?;
    let (host, port) = host_port(local);
    let req = Request::builder(Method::Options, uri)
        .via(Transport::Udp, &host, Some(port), &branch_from(fastrand::u128(..)))
        .max_forwards(70)
        .from(&format!("<sip:veertien@{host}:{port}>;tag={:08x}", fastrand::u32(..)))
        .to(&format!("<{}>", target.request_uri))
        .call_id(call_id)
        .cseq(1)
        .header(HeaderName::from("Accept"), "application/sdp")
        .build()
        .map_err(|e| ProbeError::Build(e.to_string()))?;
    Ok(req.to_bytes())
}

/// Call-ID and status of a final response to an OPTIONS; anything else is ignored.
fn final_status(datagram: &[u8]) -> Option<(String, u16)> {
    let Ok(Message::Response(r)) = Message::parse(datagram) else { return None };
    if r.status() < 200 || r.cseq().map(|c| c.method != Method::Options).unwrap_or(true) {
        return None;
    }
    let cid = String::from_utf8_lossy(r.call_id()?).into_owned();
    Some((cid, r.status()))
}

/// The prober's own bookkeeping (only its task touches it).
struct Prober {
    shared: Arc<Shared>,
    local: SocketAddr,
    table_seen: Option<Arc<Table>>,
    sched: HashMap<Arc<str>, Sched>,
    /// Outstanding probes by Call-ID.
    pending: HashMap<String, Pending>,
}

struct Sched {
    entry: Arc<Entry>,
    next_probe: Instant,
    misses: u32,
    goods: u32,
    /// Probes since the destination was marked dead (drives the backoff).
    dead_probes: u32,
}

struct Pending {
    destination: Arc<str>,
    bytes: bytes::Bytes,
    sent: Instant,
    next_retransmit: Instant,
    gap: Duration,
}

impl Prober {
    fn new(shared: Arc<Shared>, local: Option<SocketAddr>) -> Prober {
        let local = local.unwrap_or_else(|| SocketAddr::new(shared.local_ip, 0));
        Prober { shared, local, table_seen: None, sched: HashMap::new(), pending: HashMap::new() }
    }

    fn sync_table(&mut self, now: Instant) {
        let table = self.shared.table.load_full();
        if self.table_seen.as_ref().is_some_and(|t| Arc::ptr_eq(t, &table)) {
            return;
        }
        self.sched.retain(|k, s| table.get(k).is_some_and(|e| Arc::ptr_eq(e, &s.entry)));
        let n = table.len().max(1) as u32;
        for (i, (k, e)) in table.iter().enumerate() {
            // Spread first probes over one interval so a large table does not burst.
            let offset = self.shared.config.interval() * (i as u32) / n;
            self.sched.entry(k.clone()).or_insert_with(|| Sched { entry: e.clone(), next_probe: now + offset, misses: 0, goods: 0, dead_probes: 0 });
        }
        self.pending.retain(|_, p| table.contains_key(&p.destination));
        self.table_seen = Some(table);
    }

    /// Sends due probes and retransmissions, expires timed-out probes.
    fn on_tick(&mut self, now: Instant) -> Vec<(bytes::Bytes, SocketAddr)> {
        self.sync_table(now);
        let cfg = self.shared.config.clone();
        let mut out = Vec::new();
        let expired: Vec<String> = self.pending.iter().filter(|(_, p)| now >= p.sent + cfg.timeout()).map(|(k, _)| k.clone()).collect();
        for cid in expired {
            if let Some(p) = self.pending.remove(&cid) {
                self.shared.timeouts.fetch_add(1, Ordering::Relaxed);
                self.record(&p.destination, ProbeResult { status: None, rtt: None }, now);
            }
        }
        for p in self.pending.values_mut() {
            if now >= p.next_retransmit {
                if let Some(s) = self.sched.get(&p.destination) {
                    out.push((p.bytes.clone(), s.entry.target.addr));
                }
                p.gap = (p.gap * 2).min(Duration::from_secs(4));
                p.next_retransmit = now + p.gap;
            }
        }
        for (k, s) in self.sched.iter_mut() {
            if now < s.next_probe {
                continue;
            }
            let alive = s.entry.alive.load(Ordering::Acquire);
            let wait = if alive {
                cfg.interval()
            } else {
                let factor = 1u64 << s.dead_probes.min(20);
                Duration::from_millis((cfg.interval_ms.saturating_mul(factor)).min(cfg.recovery_max_ms))
            };
            if !alive {
                s.dead_probes = s.dead_probes.saturating_add(1);
            }
            s.next_probe = now + wait;
            let call_id = new_call_id();
            match options_request(&s.entry.target, self.local, &call_id) {
                Ok(bytes) => {
                    out.push((bytes.clone(), s.entry.target.addr));
                    self.shared.probes_sent.fetch_add(1, Ordering::Relaxed);
                    s.entry.stats.lock().probes += 1;
                    let gap = Duration::from_millis(500);
                    self.pending.insert(call_id, Pending { destination: k.clone(), bytes, sent: now, next_retransmit: now + gap, gap });
                }
                Err(e) => tracing::warn!(destination = %k, error = %e, "cannot build OPTIONS probe"),
            }
        }
        out
    }

    fn on_datagram(&mut self, datagram: &[u8], now: Instant) {
        let Some((cid, status)) = final_status(datagram) else { return };
        let Some(p) = self.pending.remove(&cid) else { return };
        self.shared.answers.fetch_add(1, Ordering::Relaxed);
        self.record(&p.destination, ProbeResult { status: Some(status), rtt: Some(now.saturating_duration_since(p.sent)) }, now);
    }

    fn record(&mut self, destination: &Arc<str>, result: ProbeResult, _now: Instant) {
        let cfg = &self.shared.config;
        let Some(s) = self.sched.get_mut(destination) else { return };
        let good = result.is_alive(cfg);
        {
            let mut st = s.entry.stats.lock();
            st.last_status = result.status;
            if result.rtt.is_some() {
                st.last_rtt = result.rtt;
            }
            if !good {
                st.misses += 1;
            }
        }
        let was_alive = s.entry.alive.load(Ordering::Acquire);
        if good {
            s.misses = 0;
            s.goods = s.goods.saturating_add(1);
        } else {
            s.goods = 0;
            s.misses = s.misses.saturating_add(1);
        }
        let flip = if was_alive { s.misses >= cfg.dead_after } else { s.goods >= cfg.alive_after };
        if !flip {
            return;
        }
        let alive = !was_alive;
        s.entry.alive.store(alive, Ordering::Release);
        s.dead_probes = 0;
        if alive {
            // Back to the normal schedule at once rather than after the backoff gap.
            s.next_probe = s.next_probe.min(Instant::now() + cfg.interval());
        }
        let at = jiff::Timestamp::now();
        s.entry.stats.lock().since = Some(at);
        let reason = match result.status {
            Some(st) => format!("{st} {}", veertien_sip::default_reason(st)),
            None => format!("no answer within {} ms", cfg.timeout_ms),
        };
        if alive {
            tracing::info!(destination = %destination, %reason, "destination alive again");
        } else {
            tracing::warn!(destination = %destination, %reason, misses = s.misses, "destination dead: bypassed until it answers OPTIONS again");
        }
        // No receivers is fine (nothing to tell).
        let _ = self.shared.notices.send(HealthNotice { destination: destination.to_string(), alive, at, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_meet_the_five_second_bypass_bound() {
        let c = HealthConfig::default();
        c.validate().unwrap();
        assert!(c.worst_detection() <= Duration::from_secs(5), "{:?}", c.worst_detection());
    }

    #[test]
    fn bad_values_name_the_key() {
        let c = HealthConfig { dead_after: 0, ..HealthConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("health.dead_after"));
        let c = HealthConfig { recovery_max_ms: 10, ..HealthConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("health.recovery_max_ms"));
        let c = HealthConfig { dead_statuses: vec![180], ..HealthConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("health.dead_statuses"));
    }

    #[test]
    fn health_section_of_the_server_config() {
        let c = crate::Config::parse("[health]\ninterval_ms = 500\ndead_after = 3\n").unwrap();
        assert_eq!((c.health.interval_ms, c.health.dead_after, c.health.timeout_ms), (500, 3, 1_000));
        assert_eq!(crate::Config::parse("").unwrap().health, HealthConfig::default());
        let e = crate::Config::parse("[health]\ninterval = 5\n").unwrap_err().to_string();
        assert!(e.contains("interval"), "{e}");
        let e = crate::Config::parse("[health]\ndead_after = 0\n").unwrap_err().to_string();
        assert!(e.contains("health.dead_after"), "{e}");
    }

    #[test]
    fn targets_go_over_the_trunk_and_tel_becomes_sip() {
        let trunk: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let t = ProbeTarget::resolve("tel:+31113123456", Some(trunk)).unwrap();
        assert_eq!(t.request_uri, "sip:+31113123456@127.0.0.1:5070;user=phone");
        assert_eq!(t.addr, trunk);
        let t = ProbeTarget::resolve("sip:kcc@goes.example", Some(trunk)).unwrap();
        assert_eq!((t.request_uri.as_str(), t.addr), ("sip:kcc@goes.example", trunk));
        // An IP-literal SIP URI is its own next hop, trunk or not (as for bridged INVITEs).
        let t = ProbeTarget::resolve("sip:kcc@10.0.0.7:5080", Some(trunk)).unwrap();
        assert_eq!(t.addr, "10.0.0.7:5080".parse().unwrap());
        // Without a trunk: only IP-literal SIP URIs can be reached.
        assert_eq!(ProbeTarget::resolve("tel:+31113123456", None), None);
        assert_eq!(ProbeTarget::resolve("sip:kcc@goes.example", None), None);
        let t = ProbeTarget::resolve("sip:kcc@[::1]:5080", None).unwrap();
        assert_eq!(t.addr, "[::1]:5080".parse().unwrap());
        let t = ProbeTarget::resolve("sip:kcc@10.0.0.1", None).unwrap();
        assert_eq!(t.addr, "10.0.0.1:5060".parse().unwrap());
        // UDP probes would declare a TCP-only destination dead: it is not probed.
        assert_eq!(ProbeTarget::resolve("sip:kcc@10.0.0.7:5080;transport=tcp", Some(trunk)), None);
        assert_eq!(ProbeTarget::resolve("sip:kcc@10.0.0.7:5081;transport=tls", Some(trunk)), None);
        assert_eq!(ProbeTarget::resolve("sips:kcc@10.0.0.7", Some(trunk)), None, "sips: is reached over TLS only");
    }

    #[test]
    fn options_request_parses_with_our_own_strict_parser() {
        let t = ProbeTarget { request_uri: "sip:+31113123456@127.0.0.1:5070;user=phone".into(), addr: "127.0.0.1:5070".parse().unwrap() };
        let bytes = options_request(&t, "127.0.0.1:40000".parse().unwrap(), "hc-1@veertien").unwrap();
        let Ok(Message::Request(r)) = Message::parse(&bytes) else { panic!("not a request") };
        assert_eq!(r.method(), &Method::Options);
        veertien_sip::validate_request(&r).unwrap();
        assert_eq!(r.call_id().unwrap().as_ref(), b"hc-1@veertien");
    }

    fn monitor(cfg: HealthConfig) -> HealthMonitor {
        HealthMonitor::new(cfg, "127.0.0.1".parse().unwrap(), Some("127.0.0.1:5999".parse().unwrap()))
    }

    #[test]
    fn unmonitored_destinations_are_alive_and_the_bound_holds() {
        let m = monitor(HealthConfig { max_destinations: 2, ..HealthConfig::default() });
        let left = m.set_destinations(["tel:+31201", "tel:+31202", "tel:+31203", "not a uri"]);
        assert_eq!(left, vec!["tel:+31203".to_owned(), "not a uri".to_owned()]);
        assert_eq!(m.metrics().destinations, 2);
        assert!(m.is_alive("tel:+31203") && m.is_alive("tel:+31201") && m.is_alive("sip:unknown@x"));
    }

    /// Drives the prober's state machine with synthetic time: misses → dead after
    /// `dead_after`, exponential gaps while dead, alive after one good answer, notices sent.
    #[test]
    fn state_machine_dead_backoff_and_recovery() {
        let cfg = HealthConfig::default();
        let m = monitor(cfg.clone());
        m.set_destinations(["tel:+31113123456"]);
        let mut rx = m.subscribe();
        let mut p = Prober::new(m.shared.clone(), Some("127.0.0.1:40000".parse().unwrap()));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Nothing answers: probes at 0, 1000, 2000; the second miss (at 2000) marks it dead.
        let mut sent_at = Vec::new();
        for step in 0..=60u64 {
            let before = m.metrics().probes_sent;
            p.on_tick(ms(step * 50));
            if m.metrics().probes_sent > before {
                sent_at.push(step * 50);
            }
            if step * 50 < 2000 {
                assert!(m.is_alive("tel:+31113123456"), "alive until the second miss, at {} ms", step * 50);
            }
        }
        assert!(!m.is_alive("tel:+31113123456"), "dead after two missed probes");
        let n = rx.try_recv().unwrap();
        assert!(!n.alive && n.destination == "tel:+31113123456" && n.reason.contains("no answer"), "{n:?}");
        assert_eq!(&sent_at[..3], &[0, 1000, 2000], "{sent_at:?}");
        // While dead the gaps double: 1 s, 2 s, 4 s after the dead mark.
        let mut probes = Vec::new();
        for step in 61..=400u64 {
            let before = m.metrics().probes_sent;
            p.on_tick(ms(step * 50));
            if m.metrics().probes_sent > before {
                probes.push(step * 50);
            }
        }
        let gaps: Vec<u64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "backoff grows: {gaps:?}");
        assert!(gaps.last().copied().unwrap_or(0) >= 4000, "{gaps:?}");
        // A good answer to the outstanding probe brings it back.
        p.on_tick(ms(400 * 50 + 100_000));
        let (cid, _) = p.pending.iter().next().map(|(k, v)| (k.clone(), v.sent)).expect("a probe outstanding");
        let resp = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1\r\nFrom: <sip:veertien@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>;tag=2\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
        p.on_datagram(resp.as_bytes(), ms(400 * 50 + 100_010));
        assert!(m.is_alive("tel:+31113123456"));
        let n = loop {
            let n = rx.try_recv().unwrap();
            if n.alive {
                break n;
            }
        };
        assert_eq!(n.reason, "200 OK");
        let st = &m.statuses()[0];
        assert_eq!((st.alive, st.last_status), (true, Some(200)));
    }

    #[test]
    fn dead_statuses_count_as_misses() {
        let cfg = HealthConfig { dead_after: 1, ..HealthConfig::default() };
        let m = monitor(cfg);
        m.set_destinations(["sip:kcc@goes.example"]);
        let mut p = Prober::new(m.shared.clone(), None);
        let now = Instant::now();
        p.on_tick(now);
        let cid = p.pending.keys().next().unwrap().clone();
        let resp = format!("SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
        p.on_datagram(resp.as_bytes(), now);
        assert!(!m.is_alive("sip:kcc@goes.example"));
        // A 404 (a PBX that does not know that user for OPTIONS) shows a live peer.
        p.on_tick(now + Duration::from_secs(2));
        let cid = p.pending.keys().next().unwrap().clone();
        let resp = format!("SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
        p.on_datagram(resp.as_bytes(), now + Duration::from_secs(2));
        assert!(m.is_alive("sip:kcc@goes.example"));
    }
}
