//! The call layer: bridged calls (B2BUA) driven by tokio tasks.
//!
//! The redirect fast path stays inline in [`crate::engine`]; a call that needs the platform to
//! stay in it (a `Forward` decision in bridge mode) is handed to one task here, which owns:
//! - a [`veertien_b2bua::Call`] (the I/O-free call state machine),
//! - a small [`veertien_sip::transaction::Table`] of its own for the call's server and client
//!   transactions (retransmissions, timers A–K, RFC 6026),
//! - the call's timers, and a [`veertien_media::relay::RtpRelay`] on two ports of the RTP pool.
//!
//! Every message whose Call-ID belongs to a call (the carrier leg's Call-ID, or a B-leg Call-ID
//! `<token>-<n>` this layer generated) is routed to that task over a bounded channel; nothing
//! in the task blocks the UDP loops. The registry is bounded (`sip.max_concurrent_calls`), and
//! so is the RTP port pool: a new call beyond either is refused with 503 + Retry-After.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jiff::Timestamp;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use veertien_b2bua::{
    Action, AllAlive, BLegSetup, Call, CallConfig, CallSummary, DestinationHealth, Event, InRequest, InResponse, Leg,
    LegTransport, MediaAction, MediaAnchor, OutRequest, OutResponse, RequestId, RouteStep, SendKind, ServerTxn, TimerId,
    ViaSpec,
};
use veertien_core::decide::Decision;
use veertien_media::ports::{PortPool, PortError};
use veertien_media::relay::{LegPeer, RelayConfig, RelayEvent, RtpRelay};
use veertien_sip::transaction::{self as txn, Peer, Table, TxId};
use veertien_sip::uri::is_sips;
use veertien_sip::{Method, Request, Response, Transport};
use veertien_store::{CallRecord, Delivery, Outcome, RecordWriter};

use crate::udp::SipUdp;
use crate::config::Config;
use crate::health::{HealthMonitor, HealthNotice};

mod ivr;
pub use ivr::{IvrContext, IvrStatus};
/// Errors of [`IvrContext::load`].
pub mod ivr_load_error {
    pub use super::ivr::IvrLoadError;
}

/// Bound of one call's inbound message queue. A call sees a handful of messages per second;
/// beyond this the UDP datagram is dropped and SIP retransmission recovers it.
const INBOX: usize = 64;
/// Bound of one call's own transaction table (the A-leg INVITE, CANCEL/BYE/INFO/re-INVITE on
/// both legs, B-leg INVITEs of every route step and their CANCELs).
const CALL_TRANSACTIONS: usize = 64;

/// Why a bridged call could not be started; the caller gets 503 + Retry-After.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("call limit reached ({0} calls in progress)")]
    Full(usize),
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error("IVR call limit reached ({0} IVR calls in progress)")]
    IvrFull(usize),
    #[error("the IVR is not enabled")]
    NoIvr,
}

/// A message for a call task, with where and how it came (TCP: the caller's connection).
#[derive(Debug)]
pub(crate) enum Inbound {
    // Boxed: a parsed message is over 1 KB, and a call's inbox reserves its slots up front.
    Request(Box<Request>, SocketAddr, Transport),
    Response(Box<Response>, SocketAddr, Transport),
    /// A TCP or TLS connection the call uses closed or could not be opened: its requests
    /// still waiting on it fail now (RFC 3261 17.1.4) instead of after Timer B/F.
    ConnectionLost { peer: Peer, reason: Arc<str> },
}

/// A TCP or TLS connection as the call layer sees it: where to write, and the calls that use
/// it (by token): it is not closed as idle while one does, and they hear when it is gone.
/// Connections are keyed by transport and address, so a TLS leg is only ever written to a TLS
/// connection, and a TCP and a TLS destination on the same address each get their own.
struct TcpConn {
    tx: mpsc::Sender<Bytes>,
    users: Vec<String>,
    /// Opened by us towards a destination (counted against the outbound bound).
    outbound: bool,
    /// Our end of a connection we open: bound before it connects, so that the first request
    /// on it can already name it in Via and Contact (see [`CallLayer::tcp_reserve`]).
    local: Option<SocketAddr>,
    /// Reserved by a call that is building its first request for it, not dialled yet: the
    /// bound socket and the outbox's reader, handed to the dialer with that first message.
    pending: Option<(tokio::net::TcpSocket, mpsc::Receiver<Bytes>)>,
}

impl TcpConn {
    /// Call `token` uses this connection (once, however many messages it sends).
    fn add_user(&mut self, token: &str) {
        if !self.users.iter().any(|u| u == token) {
            self.users.push(token.to_owned());
        }
    }
}

/// Opens a TCP or TLS (the `Transport`) connection to a destination from a socket already
/// bound to our end of it, and runs it (reader and writer, as for a carrier's connection): the
/// server installs one with [`CallLayer::set_tcp_dialer`].
pub type TcpDialer = Box<dyn Fn(SocketAddr, Transport, tokio::net::TcpSocket, mpsc::Receiver<Bytes>) + Send + Sync>;

/// Bound of the messages queued for one TCP connection's writer. A call sends a few messages
/// per second; beyond this the message is dropped and the transaction's timer reports it.
pub const TCP_OUTBOX: usize = 64;

#[derive(Default)]
struct Registry {
    /// Carrier-leg Call-ID → call.
    by_call_id: HashMap<Bytes, mpsc::Sender<Inbound>>,
    /// Token (prefix of every B-leg Call-ID this layer made) → call.
    by_token: HashMap<String, mpsc::Sender<Inbound>>,
}

/// Counters of the call layer.
#[derive(Debug, Default)]
pub struct CallMetrics {
    pub started: AtomicU64,
    pub refused: AtomicU64,
    pub answered: AtomicU64,
    pub inbox_full: AtomicU64,
    /// RTP packets relayed caller → destination and back, summed over finished calls.
    pub rtp_a_to_b: AtomicU64,
    pub rtp_b_to_a: AtomicU64,
    /// Calls answered by the IVR (dialogue or announcement).
    pub ivr_started: AtomicU64,
    /// IVR calls refused with 503 (`[ivr] max_calls` or no RTP port).
    pub ivr_refused: AtomicU64,
    /// IVR calls put through to a destination that answered.
    pub ivr_put_through: AtomicU64,
    /// REFERs sent to IVR callers (redirect-mode municipalities), and how they ended.
    pub refer_sent: AtomicU64,
    pub refer_succeeded: AtomicU64,
    /// Refused, failed (sipfrag ≥ 300) or timed out: the call was bridged instead.
    pub refer_fell_back: AtomicU64,
    /// TCP connections opened towards destinations (each is reused while it stays open).
    pub tcp_dials: AtomicU64,
}

/// What the call layer needs from the server, fixed when it starts.
pub struct CallLayer {
    sock: Arc<SipUdp>,
    /// Our address in Via, Contact and SDP.
    advertised: SocketAddr,
    /// `[trunk] outbound`: where `tel:` and host-name destinations go. Without it only
    /// IP-literal SIP destinations can be bridged (IVR calls).
    outbound: Option<SocketAddr>,
    ports: PortPool,
    call_cfg: CallConfig,
    relay_cfg: RelayConfig,
    registry: Mutex<Registry>,
    /// Calls holding a slot of `max_calls`: from the INVITE until the call is over (both legs
    /// ended). A finished call's task lingers up to 64*T1 to answer retransmissions, but it
    /// no longer counts here: at 800 bridged calls/s the lingering tasks used to fill all
    /// 20 000 slots and refuse new calls (bridge benchmark, 2026-11-23).
    tasks: AtomicUsize,
    /// Tasks alive, lingering ones included (what message routing and shutdown look at).
    running: AtomicUsize,
    /// Calls whose caller leg is not settled yet: what the shutdown grace period waits for.
    live: AtomicUsize,
    max_calls: usize,
    records: Option<RecordWriter>,
    node_id: String,
    boot_ms: i64,
    seq: AtomicU64,
    /// Cancelled when the shutdown grace period is over: every call is ended now.
    hurry: CancellationToken,
    /// OPTIONS probing of destinations: dead ones are skipped, and a destination dying while
    /// it is being called ends that attempt.
    health: Option<HealthMonitor>,
    /// The IVR (prompts, recogniser, limits); `None` when `[ivr] enabled = false`.
    ivr: Option<Arc<IvrContext>>,
    /// IVR calls in progress (bounded by `[ivr] max_calls`).
    ivr_live: AtomicUsize,
    /// `[sip]` as far as a REFER's Refer-To needs it (the same URI a 302 would carry).
    sip_cfg: crate::config::SipConfig,
    /// Open TCP and TLS connections (carriers' and those we opened towards destinations) by
    /// transport and peer address: a call that came in on one answers and sends its in-dialog
    /// requests on it (bounded by `sip.tcp_max_connections`).
    tcp: Mutex<HashMap<Peer, TcpConn>>,
    /// Our TCP listening port (Contact and Via of calls over TCP).
    tcp_port: std::sync::OnceLock<u16>,
    /// Our TLS listening port (Contact and Via of calls over TLS).
    tls_port: std::sync::OnceLock<u16>,
    /// Connects to destinations reached over TCP (`;transport=tcp`, `[trunk] transport`).
    tcp_dialer: std::sync::OnceLock<TcpDialer>,
    /// Connections we opened, bounded by `sip.tcp_max_connections` like the accepted ones.
    tcp_outbound: AtomicUsize,
    /// `[trunk] transport = "tcp"`: requests to the outbound trunk go over TCP.
    trunk_stream: Option<Transport>,
    pub metrics: CallMetrics,
}

/// What the engine hands over for a new bridged call.
pub(crate) struct NewCall {
    pub invite: Request,
    pub source: SocketAddr,
    pub decision: Decision,
    pub steps: Vec<RouteStep>,
    pub caller: String,
    pub dialled: String,
    pub received_ms: i64,
    pub decided_ms: i64,
    /// How the caller's INVITE came: over TCP the call uses that connection for its leg.
    pub transport: Transport,
}

impl CallLayer {
    /// `sock` is the SIP UDP socket (bridged calls use UDP on both legs).
    pub fn new(
        config: &Config,
        sock: Arc<SipUdp>,
        outbound: Option<SocketAddr>,
        records: Option<RecordWriter>,
        health: Option<HealthMonitor>,
        ivr: Option<Arc<IvrContext>>,
    ) -> std::io::Result<CallLayer> {
        let local = sock.local_addr()?;
        let ip = config.sip.advertised_ip.unwrap_or_else(|| {
            if local.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { local.ip() }
        });
        let advertised = SocketAddr::new(ip, local.port());
        let rtp_ip = config.rtp.address.unwrap_or(ip);
        let ports = PortPool::new(rtp_ip, config.rtp.port_min..=config.rtp.port_max)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let contact = format!("sip:veertien@{}", advertised);
        let t = &config.trunk;
        let call_cfg = CallConfig {
            a_contact: contact.clone(),
            b_contact: contact,
            trunk_route: Vec::new(),
            trunk_domain: outbound.map(|o| o.to_string()),
            setup_timeout: Duration::from_secs(t.setup_timeout_secs),
            default_no_answer: Duration::from_secs(t.no_answer_secs),
            no_response: Duration::from_millis(t.no_response_ms),
            max_duration: Some(Duration::from_secs(t.max_call_secs)),
            ..CallConfig::default()
        };
        Ok(CallLayer {
            sock,
            advertised,
            outbound,
            ports,
            call_cfg,
            relay_cfg: RelayConfig { media_timeout: Duration::from_secs(t.media_timeout_secs), ..RelayConfig::default() },
            registry: Mutex::new(Registry::default()),
            tasks: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            max_calls: config.sip.max_concurrent_calls,
            records,
            node_id: config.node_id.clone(),
            boot_ms: Timestamp::now().as_millisecond(),
            seq: AtomicU64::new(0),
            hurry: CancellationToken::new(),
            health,
            ivr,
            ivr_live: AtomicUsize::new(0),
            sip_cfg: config.sip.clone(),
            tcp: Mutex::new(HashMap::new()),
            tcp_port: std::sync::OnceLock::new(),
            tls_port: std::sync::OnceLock::new(),
            tcp_dialer: std::sync::OnceLock::new(),
            tcp_outbound: AtomicUsize::new(0),
            trunk_stream: match config.trunk.transport {
                crate::config::TrunkTransport::Udp => None,
                crate::config::TrunkTransport::Tcp => Some(Transport::Tcp),
                crate::config::TrunkTransport::Tls => Some(Transport::Tls),
            },
            metrics: CallMetrics::default(),
        })
    }

    pub fn outbound(&self) -> Option<SocketAddr> {
        self.outbound
    }

    /// Bridged delivery of `Forward` decisions needs the outbound trunk.
    pub fn can_bridge(&self) -> bool {
        self.outbound.is_some()
    }

    /// The IVR, when enabled.
    pub fn ivr(&self) -> Option<&Arc<IvrContext>> {
        self.ivr.as_ref()
    }

    /// IVR calls in progress.
    pub fn ivr_calls(&self) -> usize {
        self.ivr_live.load(Ordering::Relaxed)
    }

    /// Our SIP address as announced in Via/Contact.
    pub fn advertised(&self) -> SocketAddr {
        self.advertised
    }

    pub fn health(&self) -> Option<&HealthMonitor> {
        self.health.as_ref()
    }

    /// Calls whose caller leg is not settled (ringing or answered).
    pub fn live_calls(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Call tasks still running (settled calls linger up to 64*T1 for retransmissions).
    pub fn tasks(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Calls in progress: what `sip.max_concurrent_calls` bounds (lingering tasks excluded).
    pub fn calls_in_progress(&self) -> usize {
        self.tasks.load(Ordering::Relaxed)
    }

    /// Ends every call now (the shutdown grace period is over): answered calls get BYE on
    /// both legs, calls still ringing are cancelled and the caller gets a final response.
    pub fn hang_up_all(&self) {
        self.hurry.cancel();
    }

    fn lookup(&self, call_id: Option<&Bytes>) -> Option<mpsc::Sender<Inbound>> {
        if self.running.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let call_id = call_id?;
        let reg = self.registry.lock();
        reg.by_call_id.get(call_id).cloned().or_else(|| {
            let s = std::str::from_utf8(call_id).ok()?;
            let (token, n) = s.rsplit_once('-')?;
            n.parse::<u32>().ok()?;
            reg.by_token.get(token).cloned()
        })
    }

    /// Our TCP listening port, once bound.
    pub fn set_tcp_port(&self, port: u16) {
        let _ = self.tcp_port.set(port);
    }

    /// Our TLS listening port, once bound.
    pub fn set_tls_port(&self, port: u16) {
        let _ = self.tls_port.set(port);
    }

    /// Our listening port for calls whose caller leg uses `transport` (TCP or TLS).
    fn stream_port(&self, transport: Transport) -> Option<u16> {
        match transport {
            Transport::Tls => self.tls_port.get().copied(),
            _ => self.tcp_port.get().copied(),
        }
    }

    /// A carrier's TCP or TLS (`peer.transport`) connection opened: calls arriving on it write
    /// to `tx`.
    pub fn tcp_opened(&self, peer: Peer, tx: mpsc::Sender<Bytes>) {
        self.tcp.lock().insert(peer, TcpConn { tx, users: Vec::new(), outbound: false, local: None, pending: None });
    }

    /// A TCP or TLS connection closed (by either side, or idle).
    pub fn tcp_closed(&self, peer: Peer) {
        self.tcp_gone(peer, &format!("{} connection closed", peer.transport.as_str()));
    }

    /// Unregisters a TCP or TLS connection and tells the calls that used it, so a request
    /// waiting on it fails at once and the call moves to its next route step.
    pub fn tcp_gone(&self, peer: Peer, reason: &str) {
        let Some(conn) = self.tcp.lock().remove(&peer) else { return };
        if conn.outbound {
            self.tcp_outbound.fetch_sub(1, Ordering::AcqRel);
        }
        if conn.users.is_empty() {
            return;
        }
        let reason: Arc<str> = Arc::from(reason);
        let reg = self.registry.lock();
        for token in &conn.users {
            if let Some(tx) = reg.by_token.get(token) {
                // A full inbox: the call's own timers still end the wait.
                let _ = tx.try_send(Inbound::ConnectionLost { peer, reason: reason.clone() });
            }
        }
    }

    /// How the server opens connections to destinations over TCP and TLS.
    pub fn set_tcp_dialer(&self, dialer: TcpDialer) {
        let _ = self.tcp_dialer.set(dialer);
    }

    /// TCP and TLS connections we opened towards destinations and that are open (or opening).
    pub fn tcp_outbound(&self) -> usize {
        self.tcp_outbound.load(Ordering::Relaxed)
    }

    /// Queues bytes of call `token` for a destination reached over TCP or TLS
    /// (`peer.transport`): on the open connection of that transport to it (whoever opened
    /// it), else on a new one (the bytes wait in its outbox while it connects). The call is
    /// registered as a user of the connection in the same step, so a connect that fails at
    /// once still reaches it. Why it was not sent, if not: the text names the transport, as
    /// it ends up in the call record's route step.
    fn tcp_send_or_dial(&self, peer: Peer, bytes: Bytes, token: &str) -> Result<(), String> {
        let t = peer.transport.as_str();
        let mut map = self.tcp.lock();
        let c = match map.entry(peer) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(self.new_outbound(peer, token)?),
        };
        c.tx.try_send(bytes).map_err(|_| format!("{t} connection to the destination has a full queue"))?;
        c.add_user(token);
        // A reserved connection is dialled with its first message already in its outbox.
        let pending = c.pending.take();
        drop(map);
        // `new_outbound` made sure there is a dialer.
        if let (Some((socket, rx)), Some(dial)) = (pending, self.tcp_dialer.get()) {
            self.metrics.tcp_dials.fetch_add(1, Ordering::Relaxed);
            dial(peer.addr, peer.transport, socket, rx);
        }
        Ok(())
    }

    /// The connection call `token` will send its next request to `peer` on: the open (or
    /// already reserved) one of that transport, else a new one reserved now, its socket bound
    /// but not connected until the request is queued ([`CallLayer::tcp_send_or_dial`]). Our
    /// end of it, which the request's Via and Contact name when we have no listener of that
    /// transport; `None` for a carrier's connection (its end is our listener).
    ///
    /// Reserved rather than dialled here: a connection that failed before its first message
    /// was queued would be replaced by one on another port, and the message would name a
    /// port nothing answers on.
    fn tcp_reserve(&self, peer: Peer, token: &str) -> Result<Option<SocketAddr>, String> {
        let mut map = self.tcp.lock();
        if let Some(c) = map.get_mut(&peer) {
            c.add_user(token);
            return Ok(c.local);
        }
        let conn = self.new_outbound(peer, token)?;
        let local = conn.local;
        map.insert(peer, conn);
        Ok(local)
    }

    /// A connection of ours to `peer`, counted against `sip.tcp_max_connections`, with its
    /// socket bound (so its port is known) and not connected yet.
    fn new_outbound(&self, peer: Peer, token: &str) -> Result<TcpConn, String> {
        let t = peer.transport.as_str();
        if self.tcp_dialer.get().is_none() {
            return Err(format!("{t} to destinations is not available"));
        }
        if self.tcp_outbound.fetch_add(1, Ordering::AcqRel) >= self.sip_cfg.tcp_max_connections {
            self.tcp_outbound.fetch_sub(1, Ordering::AcqRel);
            return Err(format!("no {t} connection may be opened (sip.tcp_max_connections reached)"));
        }
        let (socket, local) = match bound_socket(peer.addr) {
            Ok(s) => s,
            Err(e) => {
                self.tcp_outbound.fetch_sub(1, Ordering::AcqRel);
                return Err(format!("{t} connection to the destination failed: no local socket: {e}"));
            }
        };
        let (tx, rx) = mpsc::channel(TCP_OUTBOX);
        Ok(TcpConn { tx, users: vec![token.to_owned()], outbound: true, local: Some(local), pending: Some((socket, rx)) })
    }

    /// A call in progress uses this connection: not to be closed as idle.
    pub fn tcp_busy(&self, peer: Peer) -> bool {
        self.tcp.lock().get(&peer).is_some_and(|c| !c.users.is_empty())
    }

    /// Whether calls can be served on this TCP or TLS connection: it is registered, and we
    /// know the listening port of its transport that our Via and Contact must name.
    pub(crate) fn tcp_usable(&self, peer: Peer) -> bool {
        self.stream_port(peer.transport).is_some() && self.tcp.lock().contains_key(&peer)
    }

    /// Call `token` uses the connection to `peer` (a carrier's, for a call that came on it).
    fn tcp_use(&self, peer: Peer, token: &str) {
        if let Some(c) = self.tcp.lock().get_mut(&peer) {
            c.add_user(token);
        }
    }

    /// Call `token` is over: it no longer keeps the connection to `peer` open. A connection
    /// reserved and never dialled (its request was never sent) is given up with its last user.
    fn tcp_release(&self, peer: Peer, token: &str) {
        let mut map = self.tcp.lock();
        let Some(c) = map.get_mut(&peer) else { return };
        c.users.retain(|u| u != token);
        if c.users.is_empty() && c.pending.is_some() {
            map.remove(&peer);
            self.tcp_outbound.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Queues bytes for the writer of the connection to `peer` (of its transport: a TLS leg's
    /// messages are never written to a plain TCP connection); false when it is gone or its
    /// queue is full.
    fn tcp_send(&self, peer: Peer, bytes: Bytes) -> bool {
        let tx = self.tcp.lock().get(&peer).map(|c| c.tx.clone());
        tx.is_some_and(|tx| tx.try_send(bytes).is_ok())
    }

    /// Whether a message with this Call-ID belongs to a call in progress.
    pub fn owns(&self, call_id: Option<&Bytes>) -> bool {
        self.lookup(call_id).is_some()
    }

    /// Routes a message to the call it belongs to; false when no call claims it.
    pub(crate) fn deliver(&self, msg: Inbound) -> bool {
        let call_id = match &msg {
            Inbound::Request(r, ..) => r.call_id(),
            Inbound::Response(r, ..) => r.call_id(),
            // Sent by the layer straight to the calls that use the connection.
            Inbound::ConnectionLost { .. } => return false,
        };
        let Some(tx) = self.lookup(call_id) else { return false };
        if tx.try_send(msg).is_err() {
            // Full inbox or a task that just ended: drop, retransmission recovers the former.
            self.metrics.inbox_full.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Starts a bridged call for a new INVITE (already validated and admitted).
    pub(crate) fn start(self: &Arc<Self>, new: NewCall) -> Result<(), StartError> {
        let Some(call_id) = new.invite.call_id().cloned() else {
            return Err(StartError::Full(0));
        };
        // Reserve the slot first so concurrent INVITEs cannot overshoot the bound.
        if self.tasks.fetch_add(1, Ordering::AcqRel) >= self.max_calls {
            self.tasks.fetch_sub(1, Ordering::AcqRel);
            self.metrics.refused.fetch_add(1, Ordering::Relaxed);
            return Err(StartError::Full(self.max_calls));
        }
        let sockets = self.ports.bind().and_then(|a| Ok((a, self.ports.bind()?)));
        let (a_sock, b_sock) = match sockets {
            Ok(s) => s,
            Err(e) => {
                self.tasks.fetch_sub(1, Ordering::AcqRel);
                self.metrics.refused.fetch_add(1, Ordering::Relaxed);
                return Err(e.into());
            }
        };
        self.spawn_task(call_id, new, TaskMedia::Bridge { a: a_sock, b: b_sock }, None);
        Ok(())
    }

    /// Starts an IVR call (shared area code, or an announcement) for a new INVITE: the
    /// platform answers it, runs the dialogue and puts the caller through (`ivr.rs`).
    pub(crate) fn start_ivr(self: &Arc<Self>, new: NewCall) -> Result<(), StartError> {
        let Some(ctx) = self.ivr.clone() else { return Err(StartError::NoIvr) };
        let Some(call_id) = new.invite.call_id().cloned() else {
            return Err(StartError::Full(0));
        };
        if self.ivr_live.fetch_add(1, Ordering::AcqRel) >= ctx.cfg.max_calls {
            self.ivr_live.fetch_sub(1, Ordering::AcqRel);
            self.metrics.ivr_refused.fetch_add(1, Ordering::Relaxed);
            return Err(StartError::IvrFull(ctx.cfg.max_calls));
        }
        if self.tasks.fetch_add(1, Ordering::AcqRel) >= self.max_calls {
            self.tasks.fetch_sub(1, Ordering::AcqRel);
            self.ivr_live.fetch_sub(1, Ordering::AcqRel);
            self.metrics.ivr_refused.fetch_add(1, Ordering::Relaxed);
            return Err(StartError::Full(self.max_calls));
        }
        let sock = match self.ports.bind() {
            Ok(s) => s,
            Err(e) => {
                self.tasks.fetch_sub(1, Ordering::AcqRel);
                self.ivr_live.fetch_sub(1, Ordering::AcqRel);
                self.metrics.ivr_refused.fetch_add(1, Ordering::Relaxed);
                return Err(e.into());
            }
        };
        self.metrics.ivr_started.fetch_add(1, Ordering::Relaxed);
        let front = ivr::Front::new(ctx);
        self.spawn_task(call_id, new, TaskMedia::Ivr(sock), Some(Box::new(front)));
        Ok(())
    }

    fn spawn_task(self: &Arc<Self>, call_id: Bytes, new: NewCall, media: TaskMedia, front: Option<Box<ivr::Front>>) {
        let is_ivr = front.is_some();
        // Tags and B-leg Call-IDs derive from the token: unguessable, from the OS CSPRNG.
        let token = format!("v{:016x}", rand::random::<u64>());
        let (tx, rx) = mpsc::channel(INBOX);
        self.running.fetch_add(1, Ordering::AcqRel);
        {
            let mut reg = self.registry.lock();
            reg.by_call_id.insert(call_id.clone(), tx.clone());
            reg.by_token.insert(token.clone(), tx);
        }
        self.live.fetch_add(1, Ordering::AcqRel);
        self.metrics.started.fetch_add(1, Ordering::Relaxed);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let record_id = format!("{}-{}{:x}-{seq}", self.node_id, if is_ivr { "i" } else { "b" }, self.boot_ms);
        let tcp_peer = new.transport.is_reliable().then_some(Peer { addr: new.source, transport: new.transport });
        if let Some(p) = tcp_peer {
            self.tcp_use(p, &token);
        }
        let task = CallTask::new(self.clone(), token, record_id, call_id.clone(), new, media, front);
        tokio::spawn(call_task(task, call_id, rx, tcp_peer));
    }
}

/// A call task's whole life, as spawned. Every call in progress holds this future, so all it
/// keeps across an await is paid per call: big or rarely needed work (the IVR front, the
/// announcement hand-off) is awaited boxed, and the size test below keeps the rest in check.
#[allow(clippy::manual_async_fn)] // see the block's comment
fn call_task(
    mut task: CallTask,
    call_id: Bytes,
    rx: mpsc::Receiver<Inbound>,
    tcp_peer: Option<Peer>,
) -> impl std::future::Future<Output = ()> + Send {
    // A block that uses `task` where it was captured: an async fn would keep a second copy
    // of its arguments in the future.
    async move {
        task.run(rx).await;
        let layer = task.layer.clone();
        let token = std::mem::take(&mut task.token);
        for peer in task.b_tcp.drain() {
            layer.tcp_release(peer, &token);
        }
        if !task.settled {
            layer.live.fetch_sub(1, Ordering::AcqRel);
        }
        task.release_ivr_slot();
        task.release_call_slot();
        let mut reg = layer.registry.lock();
        reg.by_call_id.remove(&call_id);
        reg.by_token.remove(&token);
        drop(reg);
        if let Some(p) = tcp_peer {
            layer.tcp_release(p, &token);
        }
        layer.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The RTP sockets a call task starts with.
enum TaskMedia {
    /// A bridged call: caller-facing and destination-facing relay sockets.
    Bridge { a: veertien_media::ports::MediaSocket, b: veertien_media::ports::MediaSocket },
    /// An IVR call: the caller-facing socket only (the destination's is taken when bridging).
    Ivr(veertien_media::ports::MediaSocket),
}

/// What a table or machine action leaves to await ([`CallTask::follow_up`]). Small on
/// purpose: the action itself is taken by a plain fn, so only this is held across the await.
enum FollowUp {
    Done,
    Send(Peer, Bytes),
    RelayUpdate(veertien_media::relay::Leg, LegPeer),
    RelayStop(RtpRelay),
    Front(Box<FrontAction>),
}

/// An action for the IVR front, which owns the caller's dialog while it talks.
// Only ever on the heap (`FollowUp::Front`), so its largest variant costs a call nothing.
#[allow(clippy::large_enum_variant)]
enum FrontAction {
    Request(ServerTxn, Request, InRequest),
    Ack(Request),
    ClientResponse(TxId, u16),
    ClientDone(TxId),
    MachineResponse(OutResponse),
    HandOff(ServerTxn, String),
    MachineFinished(CallSummary),
}

/// What a call task keeps of its [`NewCall`]: all but the INVITE, which goes straight to the
/// call's transaction table (the machine keeps what it needs of it, and the server
/// transaction's entry the request itself); a second copy here cost every call 1.3 KB.
struct CallInfo {
    /// The caller's Call-ID, for the record.
    call_id: Bytes,
    source: SocketAddr,
    decision: Decision,
    steps: Vec<RouteStep>,
    caller: String,
    dialled: String,
    received_ms: i64,
    decided_ms: i64,
    transport: Transport,
}

/// One server transaction of the call as the machine knows it.
struct ServerEntry {
    tx: TxId,
    request: Request,
    source: Peer,
}

struct CallTask {
    layer: Arc<CallLayer>,
    token: String,
    record_id: String,
    new: CallInfo,
    table: Table,
    call: Option<Call>,
    relay: Option<RtpRelay>,
    relay_events: Option<mpsc::Receiver<RelayEvent>>,
    anchor: MediaAnchor,
    next_txn: u64,
    servers: HashMap<ServerTxn, ServerEntry>,
    by_server_tx: HashMap<TxId, ServerTxn>,
    clients: HashMap<TxId, RequestId>,
    /// Via branch of every B-leg INVITE (CANCEL reuses it; retransmitted 2xx after the client
    /// transaction ended are matched by it).
    branches: HashMap<RequestId, String>,
    invite_by_branch: HashMap<String, RequestId>,
    timers: HashMap<TimerId, Instant>,
    events: VecDeque<Event>,
    /// The caller leg is settled (Finished emitted).
    settled: bool,
    /// The IVR in front of the bridge (IVR calls only): owns the caller's dialog until it
    /// hands the call to the machine, and again after a failed bridge (`ivr.rs`).
    front: Option<Box<ivr::Front>>,
    /// Destinations this call reaches over TCP or TLS (the call is a user of each connection,
    /// which keeps it from being closed as idle).
    b_tcp: std::collections::HashSet<Peer>,
    /// A message that could not be handed to its connection, and why: the requests waiting
    /// on that connection fail after the current action (see `pump`).
    unsendable: Option<(Peer, Arc<str>)>,
    /// Why the last connection was lost, for the requests it failed.
    lost_reason: Option<Arc<str>>,
    /// Holds one of `sip.max_concurrent_calls` (given back when the call is over).
    holds_call_slot: bool,
    /// Holds one of `[ivr] max_calls` (given back when the dialogue or message is over).
    pub(super) holds_ivr_slot: bool,
}

impl CallTask {
    fn new(
        layer: Arc<CallLayer>,
        token: String,
        record_id: String,
        call_id: Bytes,
        new: NewCall,
        media: TaskMedia,
        mut front: Option<Box<ivr::Front>>,
    ) -> CallTask {
        let cfg = txn::Config {
            max_transactions: CALL_TRANSACTIONS,
            invite_limit: CALL_TRANSACTIONS,
            trying_delay: None,
            // The call machine retransmits its own 2xx (it also needs them after Timer L).
            retransmit_2xx: false,
            preallocate: false,
            ..txn::Config::default()
        };
        let (anchor, relay, events) = match media {
            TaskMedia::Bridge { a: a_sock, b: b_sock } => {
                let anchor = MediaAnchor {
                    a_facing: SocketAddr::new(layer.advertised.ip(), a_sock.port()),
                    b_facing: SocketAddr::new(layer.advertised.ip(), b_sock.port()),
                };
                let none = LegPeer { remote: None, telephone_event_pt: None };
                let (relay, events) = RtpRelay::start(a_sock, none, b_sock, none, layer.relay_cfg.clone());
                (anchor, Some(relay), Some(events))
            }
            TaskMedia::Ivr(sock) => {
                let a = SocketAddr::new(layer.advertised.ip(), sock.port());
                if let Some(f) = front.as_mut() {
                    f.set_socket(sock);
                }
                // b_facing is set when a destination socket is taken for the bridge.
                (MediaAnchor { a_facing: a, b_facing: a }, None, None)
            }
        };
        let NewCall { invite, source, decision, steps, caller, dialled, received_ms, decided_ms, transport } = new;
        let mut table = Table::new(cfg);
        table.on_request(invite, Peer { addr: source, transport }, Instant::now());
        let new = CallInfo { call_id, source, decision, steps, caller, dialled, received_ms, decided_ms, transport };
        CallTask {
            layer,
            token,
            record_id,
            new,
            table,
            call: None,
            relay,
            relay_events: events,
            anchor,
            next_txn: 0,
            servers: HashMap::new(),
            by_server_tx: HashMap::new(),
            clients: HashMap::new(),
            branches: HashMap::new(),
            invite_by_branch: HashMap::new(),
            timers: HashMap::new(),
            events: VecDeque::new(),
            settled: false,
            holds_ivr_slot: front.is_some(),
            front,
            b_tcp: std::collections::HashSet::new(),
            unsendable: None,
            lost_reason: None,
            holds_call_slot: true,
        }
    }

    /// Runs the call; its INVITE is in the table already (see [`CallTask::new`]).
    async fn run(&mut self, mut rx: mpsc::Receiver<Inbound>) {
        self.pump().await;
        let hurry = self.layer.hurry.clone();
        let mut hurried = false;
        let mut notices = self.layer.health.as_ref().map(HealthMonitor::subscribe);
        loop {
            if self.holds_ivr_slot && self.front.as_ref().is_none_or(|f| !f.in_dialogue()) {
                self.release_ivr_slot();
            }
            let front_done = self.front.as_ref().is_none_or(|f| f.is_done());
            let call_done = self.call.as_ref().is_none_or(Call::is_finished);
            if front_done && call_done && self.table.is_empty() {
                break;
            }
            // Settled (the record is out) but not finished: the machine still waits up to 64*T1
            // for a retransmitted 2xx of an earlier B-leg INVITE, to ACK and BYE it. The call is
            // over for the caller and the municipality all the same.
            if front_done && (call_done || self.settled) && self.holds_call_slot && !self.start_lingering().await {
                break;
            }
            let deadline = self.next_deadline();
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            tokio::select! {
                m = rx.recv() => match m {
                    Some(Inbound::Request(req, src, transport)) => {
                        self.table.on_request(*req, Peer { addr: src, transport }, Instant::now());
                    }
                    Some(Inbound::Response(resp, src, transport)) => {
                        self.table.on_response(*resp, Peer { addr: src, transport }, Instant::now());
                    }
                    Some(Inbound::ConnectionLost { peer, reason }) => self.connection_lost(peer, reason),
                    None => break,
                },
                _ = sleep => {
                    self.fire_timers();
                    if self.front.is_some() {
                        Box::pin(self.front_timers(Instant::now())).await;
                    }
                }
                r = ivr::job_done(&mut self.front) => Box::pin(self.front_job_done(r)).await,
                Some(ev) = recv_opt(&mut self.relay_events) => {
                    let RelayEvent::MediaTimeout { leg, silent_for } = ev;
                    tracing::info!(call = %self.record_id, ?leg, ?silent_for, "no RTP from a leg");
                }
                Some(n) = recv_notice(&mut notices) => {
                    if !n.alive {
                        self.events.push_back(Event::DestinationDown { destination: n.destination });
                    }
                }
                _ = hurry.cancelled(), if !hurried => {
                    hurried = true;
                    if self.front.is_some() {
                        Box::pin(self.front_hurry()).await;
                    }
                    // Shutdown: end the call the way the machine ends stuck calls.
                    self.events.push_back(Event::Timer(TimerId::MaxDuration));
                    self.events.push_back(Event::Timer(TimerId::Setup));
                }
            }
            self.pump().await;
        }
        if let Some(relay) = self.relay.take() {
            let stats = Box::pin(relay.stop()).await;
            self.count_rtp(&stats);
        }
        if self.front.as_ref().is_some_and(|f| !f.is_done()) {
            // The task ends with the dialogue still open (its inbox closed): record it.
            Box::pin(self.front_finish()).await;
        }
    }

    fn count_rtp(&self, stats: &veertien_media::relay::RelayStats) {
        let m = &self.layer.metrics;
        m.rtp_a_to_b.fetch_add(stats.a_to_b.packets, Ordering::Relaxed);
        m.rtp_b_to_a.fetch_add(stats.b_to_a.packets, Ordering::Relaxed);
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let t = self.timers.values().min().copied().unwrap_or(far);
        let t = self.front.as_ref().and_then(|f| f.next_deadline()).map_or(t, |x| x.min(t));
        self.table.next_timeout().map_or(t, |x| x.min(t))
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        self.table.on_timer(now);
        let mut due: Vec<(TimerId, Instant)> = self.timers.iter().filter(|(_, at)| **at <= now).map(|(k, v)| (*k, *v)).collect();
        due.sort_by_key(|(_, at)| *at);
        for (t, _) in due {
            self.timers.remove(&t);
            self.events.push_back(Event::Timer(t));
        }
    }

    /// The call is over but its transactions still answer retransmissions (up to 64*T1):
    /// give back the call slot and the RTP ports and shrink what is kept. False when a quarter
    /// of `max_concurrent_calls` (at least 64) tasks linger already (each still holds its call
    /// state; at 1 600 bridged calls/s 64*T1 would mean 50 000 of them): this one ends now,
    /// and a late retransmission is answered statelessly by the engine instead.
    async fn start_lingering(&mut self) -> bool {
        self.release_call_slot();
        if let Some(relay) = self.relay.take() {
            let stats = Box::pin(relay.stop()).await;
            self.count_rtp(&stats);
        }
        self.relay_events = None;
        let layer = &self.layer;
        if layer.running.load(Ordering::Relaxed).saturating_sub(layer.tasks.load(Ordering::Relaxed)) > (layer.max_calls / 4).max(64) {
            return false;
        }
        self.table.shrink();
        self.timers.shrink_to_fit();
        self.events.shrink_to_fit();
        true
    }

    fn release_call_slot(&mut self) {
        if std::mem::take(&mut self.holds_call_slot) {
            self.layer.tasks.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(super) fn release_ivr_slot(&mut self) {
        if std::mem::take(&mut self.holds_ivr_slot) {
            self.layer.ivr_live.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Runs table actions, machine events and machine actions until all are drained.
    async fn pump(&mut self) {
        loop {
            let mut progressed = false;
            // `let ... else`, not `while let`: the latter would keep the (large) action's slot
            // in the future across the await.
            loop {
                let Some(a) = self.table.poll_action() else { break };
                progressed = true;
                let next = self.on_table_action(a);
                self.follow_up(next).await;
                if let Some((peer, reason)) = self.unsendable.take() {
                    self.connection_lost(peer, reason);
                }
            }
            if let Some(ev) = self.events.pop_front() {
                progressed = true;
                let health: &dyn DestinationHealth = match &self.layer.health {
                    Some(h) => h,
                    None => &AllAlive,
                };
                if let Some(call) = self.call.as_mut() {
                    let legs = BLegs { layer: &self.layer, token: &self.token, record_id: &self.record_id, b_tcp: &self.b_tcp };
                    call.handle(ev, Timestamp::now(), health, &legs);
                }
            }
            if self.front.is_none() {
                let mut batch: VecDeque<Action> = std::iter::from_fn(|| self.call.as_mut().and_then(Call::poll_action)).collect();
                progressed |= !batch.is_empty();
                // A route that ends in a message: the IVR answers the caller and plays it, and
                // its record (written after the message) replaces the machine's. Otherwise the
                // record leaves ahead of the final response.
                let announced = batch.iter().any(|a| matches!(a, Action::HandOff(_))) && Box::pin(self.prepare_announcement()).await;
                if !announced {
                    record_first(&mut batch);
                }
                while let Some(next) = batch.pop_front().map(|a| self.on_call_action(a)) {
                    self.follow_up(next).await;
                }
            }
            // An IVR call's front may replace the machine while acting on it (a new route
            // after a message), so its actions are taken one at a time from the current one.
            loop {
                let Some(a) = self.call.as_mut().and_then(Call::poll_action) else { break };
                progressed = true;
                let next = self.on_call_action(a);
                self.follow_up(next).await;
            }
            if !progressed {
                break;
            }
        }
    }

    async fn send_bytes(&mut self, to: Peer, bytes: &[u8]) {
        if self.b_tcp.contains(&to) {
            // A destination over TCP or TLS: its connection, opened on first use and then reused.
            if let Err(why) = self.layer.tcp_send_or_dial(to, Bytes::copy_from_slice(bytes), &self.token) {
                tracing::info!(call = %self.record_id, to = %to.addr, %why, "message not sent");
                self.unsendable = Some((to, Arc::from(why)));
            }
            return;
        }
        if to.transport.is_reliable() {
            // The caller's TCP or TLS connection (its writer task owns the stream).
            if !self.layer.tcp_send(to, Bytes::copy_from_slice(bytes)) {
                let why = format!("{} connection gone or its queue full", to.transport.as_str());
                tracing::info!(call = %self.record_id, to = %to.addr, %why, "message not sent");
                self.unsendable = Some((to, Arc::from(why)));
            }
            return;
        }
        if let Err(e) = self.layer.sock.send_to(bytes, to.addr) {
            tracing::debug!(to = %to.addr, error = %e, "SIP send failed");
        }
    }

    /// The TCP or TLS connection to `peer` is gone (or a message could not be queued on it):
    /// the requests waiting on it fail now, so a destination that refuses the connection is
    /// passed at once instead of after `[trunk] no_response_ms`.
    fn connection_lost(&mut self, peer: Peer, reason: Arc<str>) {
        tracing::info!(call = %self.record_id, peer = %peer.addr, transport = peer.transport.as_str(), %reason, "connection lost");
        self.lost_reason = Some(reason);
        self.table.on_connection_lost(peer);
    }

    /// Our Contact on the caller's leg: with `;transport=tcp` when the caller came over TCP
    /// and `;transport=tls` (our TLS port) over TLS, so its in-dialog requests keep using it.
    ///
    /// TLS: `sip:` with `transport=tls` (RFC 3261 19.1.1, 26.2), not `sips:`. RFC 5630
    /// deprecates the parameter in favour of `sips:`, but a `sips:` Contact promises TLS on
    /// every hop to the end (RFC 3261 26.2.2, RFC 5630 3.1.2), and the municipality's leg of
    /// a bridged call may be UDP or TCP. What we can promise is TLS on the caller's own hop,
    /// which is what `transport=tls` asks for.
    pub(crate) fn a_contact(&self) -> String {
        let host = host_text(self.layer.advertised.ip());
        match (self.new.transport, self.layer.stream_port(self.new.transport)) {
            (Transport::Tls, Some(port)) => format!("sip:veertien@{host}:{port};transport=tls"),
            (Transport::Tcp, Some(port)) => format!("sip:veertien@{host}:{port};transport=tcp"),
            _ => self.layer.call_cfg.a_contact.clone(),
        }
    }

    /// The machine's configuration for this call (its Contact on the caller's leg).
    pub(crate) fn call_cfg(&self) -> CallConfig {
        CallConfig { a_contact: self.a_contact(), ..self.layer.call_cfg.clone() }
    }

    /// Via and next hop of a request we send on `leg`. The caller's leg over TCP or TLS always
    /// uses the caller's own connection (a carrier's Contact need not accept connections, and
    /// a new connection would lose TLS's authentication of the carrier); else UDP to
    /// [`CallTask::next_hop`].
    pub(crate) fn route_request(&self, leg: Leg, req: &OutRequest, branch: String) -> Option<(ViaSpec, Peer)> {
        let host = host_text(self.layer.advertised.ip());
        if leg == Leg::A && self.new.transport.is_reliable() {
            let via = ViaSpec { transport: self.new.transport, host, port: self.layer.stream_port(self.new.transport), branch, alias: false };
            return Some((via, Peer { addr: self.new.source, transport: self.new.transport }));
        }
        let hop = self.next_hop(leg, req)?;
        if leg == Leg::B
            && let Some(t) = self.b_legs().stream(req, hop)
        {
            // Without a listener of that transport, `on_call_action` puts our end of the
            // connection in Via instead, once it is reserved.
            let port = self.layer.stream_port(t).unwrap_or(self.layer.advertised.port());
            let via = ViaSpec { transport: t, host, port: Some(port), branch, alias: false };
            return Some((via, Peer { addr: hop, transport: t }));
        }
        let via = ViaSpec { transport: Transport::Udp, host, port: Some(self.layer.advertised.port()), branch, alias: false };
        Some((via, Peer { addr: hop, transport: Transport::Udp }))
    }

    /// How this call reaches destinations (see [`BLegs`]).
    fn b_legs(&self) -> BLegs<'_> {
        BLegs { layer: &self.layer, token: &self.token, record_id: &self.record_id, b_tcp: &self.b_tcp }
    }

    /// Takes one action of the call's transaction table. What needs awaiting is handed back
    /// instead of awaited here: a table action (a parsed request) is over 1 KB, and what an
    /// async fn holds across an await every call holds for its whole life.
    fn on_table_action(&mut self, a: txn::Action) -> FollowUp {
        match a {
            txn::Action::Send { to, bytes } => return FollowUp::Send(to, bytes),
            txn::Action::Request { tx, request, source } | txn::Action::Cancel { tx, request, source, .. } => {
                self.next_txn += 1;
                let id = ServerTxn(self.next_txn);
                let view = InRequest::from_sip(&request);
                self.servers.insert(id, ServerEntry { tx, request: request.clone(), source });
                self.by_server_tx.insert(tx, id);
                let view = match view {
                    Ok(v) => v,
                    Err(e) => {
                        let resp = Response::builder(&request, 400).reason(format!("Bad Request ({e})")).build();
                        let _ = self.table.respond(tx, resp, Instant::now());
                        return FollowUp::Done;
                    }
                };
                if self.front_takes() {
                    return FollowUp::Front(Box::new(FrontAction::Request(id, request, view)));
                }
                if self.call.is_none() {
                    if *request.method() != Method::Invite {
                        let resp = Response::builder(&request, 481).build();
                        let _ = self.table.respond(tx, resp, Instant::now());
                        return FollowUp::Done;
                    }
                    let layer = self.layer.clone();
                    let health: &dyn DestinationHealth = match &layer.health {
                        Some(h) => h,
                        None => &AllAlive,
                    };
                    let steps = std::mem::take(&mut self.new.steps);
                    let call =
                        Call::new(self.call_cfg(), &self.token, self.anchor, steps, id, view, Timestamp::now(), health, &self.b_legs());
                    self.call = Some(call);
                } else {
                    self.events.push_back(Event::Request { txn: id, request: view });
                }
            }
            txn::Action::Ack { request, .. } => {
                if self.front_takes() {
                    return FollowUp::Front(Box::new(FrontAction::Ack(request)));
                }
                if let Ok(view) = InRequest::from_sip(&request) {
                    self.events.push_back(Event::Ack { request: view });
                }
            }
            txn::Action::Response { tx, response } => {
                if self.front.as_ref().is_some_and(|f| f.clients.contains(&tx)) {
                    return FollowUp::Front(Box::new(FrontAction::ClientResponse(tx, response.status())));
                }
                let Some(id) = self.clients.get(&tx).copied() else { return FollowUp::Done };
                match InResponse::from_sip(&response) {
                    Ok(view) => self.events.push_back(Event::Response { id, response: view }),
                    Err(e) => tracing::info!(call = %self.record_id, error = %e, "unusable response ignored"),
                }
            }
            txn::Action::StrayResponse { response, .. } => {
                // A 2xx retransmitted after our INVITE client transaction ended (RFC 6026):
                // the machine still ACKs it (and BYEs an extra fork).
                let is_invite_2xx =
                    (200..300).contains(&response.status()) && response.cseq().is_some_and(|c| c.method == Method::Invite);
                let id = response
                    .top_via()
                    .and_then(|v| v.branch.as_ref())
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|b| self.invite_by_branch.get(b).copied());
                if let (true, Some(id), Ok(view)) = (is_invite_2xx, id, InResponse::from_sip(&response)) {
                    self.events.push_back(Event::Response { id, response: view });
                }
            }
            txn::Action::Timeout { tx } | txn::Action::TransportError { tx } => {
                if self.front.as_ref().is_some_and(|f| f.clients.contains(&tx)) {
                    return FollowUp::Front(Box::new(FrontAction::ClientDone(tx)));
                }
                if let Some(id) = self.clients.get(&tx).copied() {
                    let reason = match (&a, &self.lost_reason) {
                        (txn::Action::TransportError { .. }, Some(why)) => why.to_string(),
                        _ => "no final response (timeout)".to_owned(),
                    };
                    self.events.push_back(Event::RequestFailed { id, reason });
                }
            }
            txn::Action::Refused { .. } => {}
            txn::Action::Terminated { tx } => {
                self.clients.remove(&tx);
                // Server transaction requests are kept: the machine may retransmit a 2xx on them.
                self.by_server_tx.remove(&tx);
            }
        }
        FollowUp::Done
    }

    /// Does what a table or machine action left to await.
    async fn follow_up(&mut self, next: FollowUp) {
        match next {
            FollowUp::Done => {}
            FollowUp::Send(to, bytes) => self.send_bytes(to, &bytes).await,
            FollowUp::RelayUpdate(leg, peer) => {
                if let Some(relay) = self.relay.as_ref() {
                    Box::pin(relay.update(leg, peer)).await;
                }
            }
            FollowUp::RelayStop(relay) => {
                let stats = Box::pin(relay.stop()).await;
                self.count_rtp(&stats);
                tracing::debug!(call = %self.record_id, ?stats, "relay released");
            }
            // Boxed: the IVR's futures are large, and only IVR calls (and a bridged call whose
            // route ends in a message) ever need them.
            FollowUp::Front(f) => Box::pin(self.front_action(*f)).await,
        }
    }

    /// The IVR front's part of a table or machine action.
    async fn front_action(&mut self, f: FrontAction) {
        match f {
            FrontAction::Request(id, request, view) => self.front_request(id, &request, view).await,
            FrontAction::Ack(request) => self.front_ack(&request).await,
            FrontAction::ClientResponse(tx, status) => self.front_client_response(tx, status).await,
            FrontAction::ClientDone(tx) => self.front_client_done(tx).await,
            FrontAction::MachineResponse(response) => self.front_machine_response(response).await,
            FrontAction::HandOff(txn, prompt) => self.front_handoff(txn, prompt).await,
            FrontAction::MachineFinished(summary) => self.front_machine_finished(summary).await,
        }
    }

    /// Next hop of a request we send: the first Route, else the Request-URI when its host is
    /// an IP address, else the leg's default (the carrier's address for leg A, the outbound
    /// trunk for leg B). DNS is deliberately not used on the call path.
    fn next_hop(&self, leg: Leg, req: &OutRequest) -> Option<SocketAddr> {
        match leg {
            Leg::A => Some(ip_hop(first_hop(req)).unwrap_or(self.new.source)),
            Leg::B => self.b_legs().hop(req),
        }
    }

    /// Whether requests on the caller's dialog go to the IVR front (not to the machine).
    fn front_takes(&self) -> bool {
        self.front.as_ref().is_some_and(|f| f.takes_requests(self.call.as_ref().is_some_and(|c| !c.is_finished())))
    }

    fn new_branch(&self, id: RequestId) -> String {
        format!("z9hG4bK{}r{}x{:08x}", self.token, id.0, rand::random::<u32>())
    }

    /// Takes one action of the call machine; what needs awaiting is handed back (see
    /// [`CallTask::on_table_action`]).
    fn on_call_action(&mut self, a: Action) -> FollowUp {
        match a {
            Action::Send { leg, id, kind, request } => {
                let branch = match kind {
                    SendKind::Cancel { invite } => match self.branches.get(&invite) {
                        Some(b) => b.clone(),
                        None => {
                            self.events.push_back(Event::RequestFailed { id, reason: "unknown INVITE".into() });
                            return FollowUp::Done;
                        }
                    },
                    _ => self.new_branch(id),
                };
                let Some((mut via, hop)) = self.route_request(leg, &request, branch.clone()) else {
                    if kind != SendKind::Ack {
                        let reason = format!("no outbound trunk for {}", request.request_uri);
                        self.events.push_back(Event::RequestFailed { id, reason });
                    }
                    return FollowUp::Done;
                };
                if leg == Leg::B && hop.transport.is_reliable() {
                    self.b_tcp.insert(hop);
                    // Via names what the machine's Contact names (see `BLegs`): our listener of
                    // that transport, else our end of the connection, reserved when the machine
                    // set the leg up (or now, for an in-dialog request to another address).
                    let ours = match self.layer.stream_port(hop.transport) {
                        Some(port) => Some(port),
                        None => match self.layer.tcp_reserve(hop, &self.token) {
                            Ok(local) => local.map(|a| a.port()),
                            Err(reason) => {
                                tracing::info!(call = %self.record_id, to = %hop.addr, %reason, "request not sent");
                                if kind != SendKind::Ack {
                                    self.events.push_back(Event::RequestFailed { id, reason });
                                }
                                return FollowUp::Done;
                            }
                        },
                    };
                    if let Some(port) = ours {
                        via.port = Some(port);
                    }
                    // Over TLS the connection is offered for the destination's requests in
                    // this dialog (RFC 5923), so a far end that honours the alias needs no
                    // connection to us (and no listener of ours) for its BYE or re-INVITE.
                    via.alias = hop.transport == Transport::Tls;
                }
                let wire = match request.to_sip(&via) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(call = %self.record_id, error = %e, "cannot build request");
                        if kind != SendKind::Ack {
                            self.events.push_back(Event::RequestFailed { id, reason: e.to_string() });
                        }
                        return FollowUp::Done;
                    }
                };
                if kind == SendKind::Ack {
                    return FollowUp::Send(hop, wire.to_bytes());
                }
                if request.method == veertien_b2bua::Method::Invite {
                    self.branches.insert(id, branch.clone());
                    self.invite_by_branch.insert(branch, id);
                }
                match self.table.send_request(wire, hop, Instant::now()) {
                    Ok(tx) => {
                        self.clients.insert(tx, id);
                    }
                    Err(e) => self.events.push_back(Event::RequestFailed { id, reason: e.to_string() }),
                }
            }
            Action::Respond { txn, response, .. } if txn == ivr::PRE_ANSWERED => {
                if self.front.is_some() {
                    return FollowUp::Front(Box::new(FrontAction::MachineResponse(response)));
                }
            }
            Action::Respond { txn, response, .. } => return self.respond_now(txn, &response),
            Action::Media(m) => {
                if self.relay.is_none()
                    && self.front.is_some()
                    && let MediaAction::Connect { side, .. } | MediaAction::Disconnect { side } = m
                {
                    let remote = match m {
                        MediaAction::Connect { remote, .. } => Some(remote),
                        _ => None,
                    };
                    self.front_media(side, LegPeer { remote, telephone_event_pt: None });
                    return FollowUp::Done;
                }
                if self.relay.is_none() {
                    return FollowUp::Done;
                }
                let (side, remote) = match m {
                    MediaAction::Connect { side, remote } => (side, Some(remote)),
                    MediaAction::Disconnect { side } => (side, None),
                    MediaAction::Release => return self.relay.take().map_or(FollowUp::Done, FollowUp::RelayStop),
                };
                let leg = match side {
                    Leg::A => veertien_media::relay::Leg::A,
                    Leg::B => veertien_media::relay::Leg::B,
                };
                return FollowUp::RelayUpdate(leg, LegPeer { remote, telephone_event_pt: None });
            }
            Action::StartTimer { timer, after } => {
                self.timers.insert(timer, Instant::now() + after);
            }
            Action::CancelTimer(t) => {
                self.timers.remove(&t);
            }
            Action::Record(ev) => tracing::debug!(call = %self.record_id, ?ev, "call event"),
            Action::HandOff(h) if self.front.is_some() => return FollowUp::Front(Box::new(FrontAction::HandOff(h.txn, h.prompt))),
            Action::HandOff(h) => {
                // No IVR to play it (switched off, or at its bound): the caller gets a clear
                // final status naming the announcement instead of silence.
                let mut r = OutResponse::new(480, format!("Temporarily Unavailable (announcement: {})", sanitize(&h.prompt)));
                r.to_tag = Some(h.to_tag.clone());
                return self.respond_now(h.txn, &r);
            }
            Action::Finished(summary) if self.front.is_some() => {
                if summary.answered_at.is_some() {
                    self.layer.metrics.answered.fetch_add(1, Ordering::Relaxed);
                }
                return FollowUp::Front(Box::new(FrontAction::MachineFinished(summary)));
            }
            Action::Finished(summary) => {
                self.settled = true;
                if summary.answered_at.is_some() {
                    self.layer.metrics.answered.fetch_add(1, Ordering::Relaxed);
                }
                // Record first: shutdown closes the record writer once no call is live, so a
                // call must not count as over before its record is queued.
                self.write_record(&summary);
                self.layer.live.fetch_sub(1, Ordering::AcqRel);
            }
        }
        FollowUp::Done
    }

    async fn respond(&mut self, txn: ServerTxn, response: &OutResponse) {
        let next = self.respond_now(txn, response);
        self.follow_up(next).await;
    }

    /// Hands a response to its server transaction; a send it still needs is handed back.
    fn respond_now(&mut self, txn: ServerTxn, response: &OutResponse) -> FollowUp {
        let Some(entry) = self.servers.get(&txn) else { return FollowUp::Done };
        let wire = match response.to_sip(&entry.request) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(call = %self.record_id, error = %e, "cannot build response");
                return FollowUp::Done;
            }
        };
        let tx = entry.tx;
        let fallback = txn::response_peer(&entry.request, entry.source);
        let bytes = wire.to_bytes();
        if self.table.respond(tx, wire, Instant::now()).is_err() {
            // The transaction is over (Timer L): a 2xx retransmission the machine asked for
            // goes out directly (RFC 3261 13.3.1.4 makes it the UAS core's job).
            if let Some(p) = fallback {
                return FollowUp::Send(p, bytes);
            }
        }
        FollowUp::Done
    }

    fn write_record(&self, s: &CallSummary) {
        let Some(w) = &self.layer.records else { return };
        let n = &self.new;
        let mut rec = CallRecord::received(
            self.record_id.clone(),
            String::from_utf8_lossy(&n.call_id).into_owned(),
            self.layer.node_id.clone(),
            n.caller.clone(),
            n.dialled.clone(),
            n.received_ms,
        );
        crate::engine::fill_decision(&mut rec, &n.decision);
        rec.decided_ms = Some(n.decided_ms);
        let ms = |t: Timestamp| t.as_millisecond();
        rec.ringing_ms = s.ringing_at.map(ms);
        rec.answered_ms = s.answered_at.map(ms);
        rec.ended_ms = Some(ms(s.ended_at));
        rec.outcome = Some(store_outcome(&s.outcome));
        rec.delivery = Some(if s.outcome == veertien_b2bua::Outcome::Redirected { Delivery::Redirect } else { Delivery::Bridge });
        rec.destination = s.destination.clone().or_else(|| s.attempts.last().map(|a| a.destination.clone()));
        rec.sip_status = s.final_status;
        if let veertien_b2bua::Outcome::Rejected { reason, .. } = &s.outcome {
            rec.reject_reason = Some(reason.clone());
        }
        // Post-dial delay: INVITE received → the caller hears ringing (or the final answer).
        let first = s.ringing_at.or(s.answered_at).unwrap_or(s.ended_at);
        rec.post_dial_delay_ms = Some(ms(first) - n.received_ms);
        rec.route_steps = attempts_json(s).into();
        if w.try_submit(rec).is_err() {
            tracing::warn!(call = %self.record_id, "call record queue full; record counted as dropped");
        }
    }
}

/// Moves the call's record (`Finished`) ahead of the rest of one batch of machine actions:
/// the final response that ends the caller's leg (486, 480, 487…) comes in the same batch,
/// and the record must be with the writer (and its journal) before that answer leaves, so a
/// crash right after it cannot lose the record. Writing it is `try_submit`: never blocks.
fn record_first(batch: &mut VecDeque<Action>) {
    if let Some(i) = batch.iter().position(|a| matches!(a, Action::Finished(_)))
        && let Some(f) = batch.remove(i)
    {
        batch.push_front(f);
    }
}

async fn recv_opt(rx: &mut Option<mpsc::Receiver<RelayEvent>>) -> Option<RelayEvent> {
    match rx {
        Some(r) => match r.recv().await {
            Some(e) => Some(e),
            None => {
                *rx = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

async fn recv_notice(rx: &mut Option<tokio::sync::broadcast::Receiver<HealthNotice>>) -> Option<HealthNotice> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let Some(r) = rx.as_mut() else { return std::future::pending().await };
        match r.recv().await {
            Ok(n) => return Some(n),
            // Missed notices: `is_alive` stays authoritative for the next route step.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => *rx = None,
        }
    }
}

/// The route steps of a call record: every attempt the machine made.
fn attempts_json(s: &CallSummary) -> serde_json::Value {
    let ms = |t: Timestamp| t.as_millisecond();
    serde_json::Value::Array(
        s.attempts
            .iter()
            .map(|a| {
                let detail = match &a.result {
                    veertien_b2bua::AttemptResult::Busy { status } => Some(status.to_string()),
                    veertien_b2bua::AttemptResult::Unreachable { reason } => Some(reason.clone()),
                    veertien_b2bua::AttemptResult::Rejected { status, reason } => Some(format!("{status} {reason}")),
                    _ => None,
                };
                serde_json::json!({
                    "step": a.step,
                    "label": a.label,
                    "destination": a.destination,
                    "started_ms": a.started_at.map(ms),
                    "ended_ms": ms(a.ended_at),
                    "result": a.result.as_str(),
                    "detail": detail,
                })
            })
            .collect(),
    )
}

fn store_outcome(o: &veertien_b2bua::Outcome) -> Outcome {
    use veertien_b2bua::Outcome as B;
    match o {
        B::Answered => Outcome::Answered,
        B::Busy => Outcome::Busy,
        B::NoAnswer => Outcome::NoAnswer,
        B::Unreachable => Outcome::Unreachable,
        B::CallerHungUpWhileRinging => Outcome::CallerHungUpWhileRinging,
        B::Redirected => Outcome::Redirected,
        B::Announcement => Outcome::Announcement,
        B::Rejected { .. } => Outcome::Rejected,
    }
}

/// How a call reaches destinations, lent by its task to the call machine while it runs (the
/// machine holds the task's `&mut Call`): the machine asks it how each B-leg is carried
/// ([`BLegSetup`]) to name that in its Contact, and the task asks it where and how to send
/// each B-leg request ([`CallTask::route_request`]).
struct BLegs<'a> {
    layer: &'a CallLayer,
    token: &'a str,
    record_id: &'a str,
    /// The call's [`CallTask::b_tcp`].
    b_tcp: &'a std::collections::HashSet<Peer>,
}

impl BLegs<'_> {
    /// Next hop of a B-leg request: see [`CallTask::next_hop`].
    fn hop(&self, req: &OutRequest) -> Option<SocketAddr> {
        ip_hop(first_hop(req)).or(self.layer.outbound)
    }

    /// A request towards the destination goes over TLS when its Request-URI or next hop is a
    /// `sips:` URI (RFC 3261 26.2: never UDP or TCP, whatever else is configured), over TCP
    /// (TLS) when its next hop says `;transport=tcp` (`tls`), when it goes to the outbound
    /// trunk and `[trunk] transport` says so, or when this call already reaches that address
    /// that way (a Contact without a transport parameter from a destination we called over TCP
    /// or TLS: its connection is reused). `None`: UDP.
    fn stream(&self, req: &OutRequest, hop: SocketAddr) -> Option<Transport> {
        if is_sips(&req.request_uri) {
            return Some(Transport::Tls);
        }
        uri_transport(first_hop(req))
            .or_else(|| self.layer.trunk_stream.filter(|_| Some(hop) == self.layer.outbound))
            // TLS first: a Contact without a transport parameter never downgrades a call that
            // reaches this address over TLS.
            .or_else(|| [Transport::Tls, Transport::Tcp].into_iter().find(|&t| self.b_tcp.contains(&Peer { addr: hop, transport: t })))
    }
}

impl BLegSetup for BLegs<'_> {
    /// The destination's requests in this dialog (BYE, re-INVITE) must come back over TCP
    /// (TLS) to an address that reaches us, so the machine's Contact (and our Via) name that
    /// transport and our listener of it when there is one, else our own end of the connection
    /// we open, reserved here so that its port is known before the INVITE is built: we keep
    /// it open while a call uses it, and requests arriving on it reach the call by Call-ID
    /// like any other. A far end finds it when it looks for an open connection to the
    /// Contact's address and port before opening one (connection reuse, RFC 3261 18 and RFC
    /// 5923; what SIP UAs without a listener, e.g. behind NAT, rely on); only a far end that
    /// always opens a new connection needs our listener (`[sip] tls`, `tcp`). Refusing a TLS
    /// destination without a listener instead would make every such deployment run a TLS
    /// server (and certificate) it otherwise has no use for, while the common far ends do
    /// reuse the connection.
    fn b_leg(&self, invite: &OutRequest) -> Result<LegTransport, String> {
        // Without a next hop the INVITE fails when it is sent ("no outbound trunk").
        let Some(hop) = self.hop(invite) else { return Ok(LegTransport::Udp) };
        let Some(transport) = self.stream(invite, hop) else { return Ok(LegTransport::Udp) };
        let port = match self.layer.stream_port(transport) {
            Some(port) => port,
            None => match self.layer.tcp_reserve(Peer { addr: hop, transport }, self.token) {
                Ok(Some(local)) => local.port(),
                // A connection opened to us (a carrier's): no end of ours on record to name.
                Ok(None) => return Ok(LegTransport::Udp),
                Err(reason) => {
                    tracing::info!(call = %self.record_id, to = %hop, %reason, "request not sent");
                    return Err(reason);
                }
            },
        };
        let us = SocketAddr::new(self.layer.advertised.ip(), port);
        Ok(match transport {
            Transport::Tls => LegTransport::Tls(us),
            _ => LegTransport::Tcp(us),
        })
    }
}

/// The first Route of a request we send, else its Request-URI: where it goes next.
fn first_hop(req: &OutRequest) -> &str {
    req.route.first().map(String::as_str).unwrap_or(req.request_uri.as_str())
}

/// The Refer-To of a REFER: the URI a 302 would carry for this destination.
fn contact_for(layer: &CallLayer, destination: &str) -> String {
    crate::engine::contact_uri(&layer.sip_cfg, destination)
}

/// The stream transport a SIP URI (optionally in `<...>`) asks for: TLS for every `sips:` URI
/// (RFC 3261 26.2: TLS on every hop, whatever a transport parameter says), else
/// `;transport=tcp` or `;transport=tls` (RFC 3261 19.1.1); `None` for UDP or no parameter.
pub(crate) fn uri_transport(uri: &str) -> Option<Transport> {
    let t = bare_uri(uri);
    let u = veertien_sip::Uri::parse(t).ok()?;
    // Not before the parse: a URI that does not parse asks for no transport, even `sips:`.
    if is_sips(t) {
        return Some(Transport::Tls);
    }
    let v = u.param("transport").flatten()?;
    if v.eq_ignore_ascii_case(b"tcp") {
        Some(Transport::Tcp)
    } else if v.eq_ignore_ascii_case(b"tls") {
        Some(Transport::Tls)
    } else {
        None
    }
}

/// `host:port` of a SIP URI (optionally in `<...>`) whose host is an IP literal; without a
/// port, 5061 when the URI asks for TLS (`sips:` or `;transport=tls`), else 5060 (RFC 3261
/// 19.1.2).
fn ip_hop(uri: &str) -> Option<SocketAddr> {
    let t = bare_uri(uri);
    let u = veertien_sip::Uri::parse(t).ok()?;
    let s = u.sip()?;
    let host = std::str::from_utf8(&s.host).ok()?;
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    let default = if uri_transport(t) == Some(Transport::Tls) { 5061 } else { 5060 };
    Some(SocketAddr::new(ip, s.port.unwrap_or(default)))
}

/// A TCP socket for a connection to `to`, bound to an ephemeral port of ours (any local
/// address: the kernel picks the route's at connect), and that end's address.
fn bound_socket(to: SocketAddr) -> std::io::Result<(tokio::net::TcpSocket, SocketAddr)> {
    let (socket, any) = match to {
        SocketAddr::V4(_) => (tokio::net::TcpSocket::new_v4()?, SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))),
        SocketAddr::V6(_) => (tokio::net::TcpSocket::new_v6()?, SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))),
    };
    socket.bind(any)?;
    let local = socket.local_addr()?;
    Ok((socket, local))
}

/// A URI as it stands in a header or a setting, without white space around it and without the
/// `<...>` of a name-addr (and what follows the `>`).
fn bare_uri(uri: &str) -> &str {
    let t = uri.trim();
    t.strip_prefix('<').map(|r| r.split('>').next().unwrap_or(r)).unwrap_or(t)
}

fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a closure would return, from its type alone: nothing is built,
    /// polled or run.
    fn future_size<F: std::future::Future>(_: impl FnOnce() -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    #[allow(unreachable_code)]
    fn a_call_task_future_holds_little_besides_the_call_state() {
        // Every call in progress holds its task's future for its whole life, and the future is
        // as large as the most it keeps across any one await. That used to be the IVR front's
        // and the table's big values (17.5 KB per call, 12 KB of it beyond the call's state, see
        // docs/PERFORMANCE-sip-load.md): rare work must stay boxed and actions be taken by
        // plain fns, or every bridged call pays for it again. The margin holds a UDP send's
        // future (over 400 bytes when the socket's send is async) and little else: a table
        // action kept across an await (1.3 KB) already breaks it.
        let future = future_size(|| call_task(unreachable!(), unreachable!(), unreachable!(), unreachable!()));
        let state = std::mem::size_of::<CallTask>();
        eprintln!("call task future: {future} bytes, of which the call's state (CallTask) {state}");
        assert!(future <= state + 1536, "call task future {future} bytes for {state} bytes of call state");
    }

    #[test]
    fn the_record_leaves_before_the_final_response_of_the_same_batch() {
        let now = Timestamp::now();
        let summary = CallSummary {
            received_at: now,
            ringing_at: None,
            answered_at: None,
            ended_at: now,
            outcome: veertien_b2bua::Outcome::Busy,
            destination: None,
            final_status: Some(486),
            ended_by: None,
            attempts: Vec::new(),
        };
        let busy = OutResponse::new(486, "Busy Here");
        let mut batch: VecDeque<Action> = VecDeque::from(vec![
            Action::CancelTimer(TimerId::Setup),
            Action::Respond { leg: Leg::A, txn: ServerTxn(1), response: busy },
            Action::Media(MediaAction::Release),
            Action::Finished(summary),
        ]);
        record_first(&mut batch);
        let kinds: Vec<&str> = batch
            .iter()
            .map(|a| match a {
                Action::Finished(_) => "finished",
                Action::Respond { .. } => "respond",
                Action::Media(_) => "media",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["finished", "other", "respond", "media"]);
        // Without a record in the batch nothing moves.
        let mut plain: VecDeque<Action> = VecDeque::from(vec![Action::CancelTimer(TimerId::Setup)]);
        record_first(&mut plain);
        assert_eq!(plain.len(), 1);
    }

    /// Without a listener of its transport, our Via and Contact name our end of the connection
    /// before it exists: it must then come from that very port, or the destination's requests
    /// (sent to the Contact, on the connection to that address) never find it.
    #[tokio::test]
    async fn a_connection_comes_from_the_port_reserved_for_its_first_request() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = Peer { addr: listener.local_addr().unwrap(), transport: Transport::Tls };
        let sock = Arc::new(SipUdp::bind("127.0.0.1:0".parse().unwrap()).unwrap());
        let layer = CallLayer::new(&Config::default(), sock, None, None, None, None).unwrap();
        let (dialled_tx, mut dialled) = mpsc::unbounded_channel();
        layer.set_tcp_dialer(Box::new(move |addr, _, socket, rx| {
            let _ = dialled_tx.send((addr, socket, rx));
        }));

        let local = layer.tcp_reserve(peer, "v1").unwrap().expect("our end is known before connecting");
        assert_ne!(local.port(), 0);
        assert_eq!(layer.tcp_reserve(peer, "v2").unwrap(), Some(local), "a second call shares the reserved connection");
        assert!(dialled.try_recv().is_err(), "nothing is dialled before a message is queued");
        layer.tcp_send_or_dial(peer, Bytes::from_static(b"INVITE"), "v1").unwrap();
        let (addr, socket, mut rx) = dialled.try_recv().expect("dialled once its first message is queued");
        assert_eq!(rx.try_recv().unwrap(), Bytes::from_static(b"INVITE"));
        layer.tcp_send_or_dial(peer, Bytes::from_static(b"ACK"), "v2").unwrap();
        assert!(dialled.try_recv().is_err(), "dialled once");
        let _stream = socket.connect(addr).await.unwrap();
        let (_, from) = listener.accept().await.unwrap();
        assert_eq!(from.port(), local.port(), "the destination sees the connection come from the port we named");
        assert_eq!(layer.tcp_outbound(), 1);

        // A reservation whose request was never sent is given up with its last call.
        let unused = Peer { addr: "127.0.0.1:9".parse().unwrap(), transport: Transport::Tls };
        layer.tcp_reserve(unused, "v3").unwrap();
        assert_eq!(layer.tcp_outbound(), 2);
        layer.tcp_release(unused, "v3");
        assert_eq!(layer.tcp_outbound(), 1);
        // A connection that was dialled stays (its reader unregisters it when it closes).
        layer.tcp_release(peer, "v1");
        layer.tcp_release(peer, "v2");
        assert_eq!(layer.tcp_outbound(), 1);
    }

    #[test]
    fn next_hop_from_ip_literal_uris_only() {
        assert_eq!(ip_hop("sip:+31113123456@127.0.0.1:5070;user=phone"), Some("127.0.0.1:5070".parse().unwrap()));
        assert_eq!(ip_hop("<sip:proxy.example;lr>"), None);
        assert_eq!(ip_hop("<sip:10.0.0.1;lr>"), Some("10.0.0.1:5060".parse().unwrap()));
        assert_eq!(ip_hop("sip:kcc@[::1]:5080"), Some("[::1]:5080".parse().unwrap()));
        assert_eq!(ip_hop("tel:+31113123456"), None);
        // TLS's default port (RFC 3261 19.1.2).
        assert_eq!(ip_hop("sips:kcc@10.0.0.1"), Some("10.0.0.1:5061".parse().unwrap()));
        assert_eq!(ip_hop("<sip:10.0.0.1;lr;transport=tls>"), Some("10.0.0.1:5061".parse().unwrap()));
        assert_eq!(ip_hop("sips:kcc@10.0.0.1:5071"), Some("10.0.0.1:5071".parse().unwrap()));
    }

    #[test]
    fn tcp_only_when_the_uri_asks_for_it() {
        assert_eq!(uri_transport("sip:kcc@127.0.0.1:5070;transport=tcp"), Some(Transport::Tcp));
        assert_eq!(uri_transport("<sip:sbc.example;lr;transport=TCP>"), Some(Transport::Tcp));
        assert_eq!(uri_transport("sip:kcc@127.0.0.1:5071;transport=tls"), Some(Transport::Tls));
        assert_eq!(uri_transport("sip:kcc@127.0.0.1:5070"), None);
        assert_eq!(uri_transport("sip:kcc@127.0.0.1:5070;transport=udp"), None);
        assert_eq!(uri_transport("tel:+31113123456"), None);
        // sips: means TLS whatever the parameter says (RFC 3261 26.2).
        assert_eq!(uri_transport("sips:kcc@127.0.0.1"), Some(Transport::Tls));
        assert_eq!(uri_transport("<SIPS:kcc@sbc.example;transport=tcp>"), Some(Transport::Tls));
        assert_eq!(uri_transport("sips:kcc@127.0.0.1;transport=udp"), Some(Transport::Tls));
        // A URI that does not parse asks for no transport, even with the `sips:` scheme.
        assert_eq!(uri_transport("sips:"), None);
    }
}
