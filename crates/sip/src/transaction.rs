//! RFC 3261 section 17 transaction layer (with RFC 6026 for INVITE 2xx), I/O-free.
//!
//! The [`Table`] is fed received messages, TU responses/requests and the current time; it
//! queues [`Action`]s (send these bytes, deliver this request to the TU, transaction timed out
//! or terminated) that the caller drains with [`Table::poll_action`] after every call, and
//! tells via [`Table::next_timeout`] when [`Table::on_timer`] must run next.
//!
//! Memory is bounded: the transaction slab, the key index and the timer heap are all sized
//! from [`Config::max_transactions`] up front. When the table is full, new INVITEs are refused
//! statelessly with 503 + Retry-After (a share of the capacity is kept for BYE/CANCEL/ACK
//! traffic so calls in progress can still end), and nothing grows.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slab::Slab;

use crate::build::response_target;
use crate::header::{HeaderName, Method, Transport};
use crate::message::{Request, Response};

/// Timer values and capacity.
#[derive(Clone, Debug)]
pub struct Config {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// Hard bound on live transactions (server + client).
    pub max_transactions: usize,
    /// New INVITE server transactions are refused (503) once this many transactions are live;
    /// the rest of the capacity stays available for non-INVITE requests and client transactions.
    pub invite_limit: usize,
    /// Retry-After seconds in the 503 sent when the table is full.
    pub retry_after_secs: u32,
    /// Send 100 Trying for an INVITE if the TU has not responded within this delay
    /// (RFC 3261 17.2.1 suggests 200 ms). `Duration::ZERO` sends it at once.
    pub trying_delay: Option<Duration>,
    /// Retransmit 2xx responses to INVITE over unreliable transports until the ACK arrives
    /// (RFC 3261 13.3.1.4, a UAS core duty that the table does for the TU).
    pub retransmit_2xx: bool,
    /// Seed for To tags of responses the table generates itself (503 when full).
    pub tag_seed: u64,
    /// Safety net against a TU that never answers: a server INVITE transaction still without
    /// a final response after this long is answered 408 (and the TU told with `Timeout`), so
    /// a lost call can never hold a table slot for ever.
    pub server_invite_timeout: Duration,
    /// The same for non-INVITE server transactions (the client gives up after 64*T1 anyway).
    pub server_non_invite_timeout: Duration,
    /// Reserve room for `max_transactions` at creation, so the table never allocates under
    /// load (the server's shared table). A table per call leaves this off: it is sized for
    /// the busiest call but most calls use a handful of transactions, and a transaction holds
    /// its request (over 1 KB), so reserving the bound would cost ~100 KB per call.
    pub preallocate: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            max_transactions: 65_536,
            invite_limit: 65_536 * 9 / 10,
            retry_after_secs: 5,
            trying_delay: Some(Duration::from_millis(200)),
            retransmit_2xx: true,
            tag_seed: 0x7665_6572_7469_656e,
            server_invite_timeout: Duration::from_secs(300),
            server_non_invite_timeout: Duration::from_secs(32),
            preallocate: true,
        }
    }
}

impl Config {
    /// Config with a capacity; the INVITE limit is 90% of it.
    pub fn with_capacity(max_transactions: usize) -> Config {
        Config { max_transactions, invite_limit: max_transactions * 9 / 10, ..Config::default() }
    }
}

/// The remote end of a message: address and transport (the caller maps it to a socket or a
/// connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// Handle of a live transaction. Stale handles (after termination) are detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxId {
    index: u32,
    generation: u32,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the peer.
    Send { to: Peer, bytes: Bytes },
    /// A new request for the TU, which must answer it with [`Table::respond`].
    Request { tx: TxId, request: Request, source: Peer },
    /// A CANCEL (its own transaction `tx`, answer it 200 or 481) for `invite`, the INVITE
    /// server transaction it cancels if one matched.
    Cancel { tx: TxId, invite: Option<TxId>, request: Request, source: Peer },
    /// An ACK that is not absorbed by a transaction: the ACK for a 2xx (with the INVITE
    /// transaction it acknowledges, if still known) or a stray ACK.
    Ack { invite: Option<TxId>, request: Request, source: Peer },
    /// A response on a client transaction, for the TU.
    Response { tx: TxId, response: Response },
    /// A response that matches no client transaction.
    StrayResponse { response: Response, source: Peer },
    /// Timer B/F (no final response: treat as 408), H (no ACK for a final response) or L
    /// without ACK for a 2xx (RFC 3261 13.3.1.4: the TU should end the dialog).
    Timeout { tx: TxId },
    /// The caller reported a transport failure for this transaction.
    TransportError { tx: TxId },
    /// The table refused a request because it is full (a 503 has been queued as `Send`).
    Refused { request: Request, source: Peer },
    /// The transaction is gone; its id is no longer valid.
    Terminated { tx: TxId },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction table is full")]
    Full,
    #[error("unknown or terminated transaction")]
    UnknownTransaction,
    #[error("response not allowed in the transaction's current state")]
    InvalidState,
    #[error("request has no Via branch")]
    NoBranch,
    #[error("ACK is not sent in a transaction")]
    Ack,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ServerInvite,
    ServerNonInvite,
    ClientInvite,
    ClientNonInvite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    /// RFC 6026: after a 2xx to INVITE.
    Accepted,
}

/// Transaction key (RFC 3261 17.1.3 / 17.2.3, with the RFC 2543 fallback).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Server { branch: Bytes, sent_by: Bytes, method: Method },
    Server2543 { request_uri: Bytes, from_tag: Option<Bytes>, call_id: Bytes, cseq: u32, top_via: Bytes, method: Method },
    Client { branch: Bytes, method: Method },
}

/// Identifies the ACK for a 2xx (new branch, same dialog and CSeq number).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AckKey {
    call_id: Bytes,
    from_tag: Option<Bytes>,
    cseq: u32,
}

impl Key {
    /// Server key for a received request; ACK maps to its INVITE (RFC 3261 17.2.3).
    pub fn server(req: &Request) -> Option<Key> {
        let method = match req.method() {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        Self::server_with_method(req, method)
    }

    fn server_with_method(req: &Request, method: Method) -> Option<Key> {
        let via = req.top_via()?;
        if via.has_rfc3261_branch() {
            return Some(Key::Server { branch: via.branch.clone()?, sent_by: via.sent_by.clone(), method });
        }
        Some(Key::Server2543 {
            request_uri: req.uri().raw().clone(),
            from_tag: req.from()?.tag.clone(),
            call_id: req.call_id()?.clone(),
            cseq: req.cseq()?.seq,
            top_via: via.raw.clone(),
            method,
        })
    }

    /// Client key for a received response (RFC 3261 17.1.3).
    pub fn client(resp: &Response) -> Option<Key> {
        let branch = resp.top_via()?.branch.clone()?;
        let method = match &resp.cseq()?.method {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        Some(Key::Client { branch, method })
    }
}

const RETRANS: usize = 0; // A, E, G, and 2xx retransmission
const TIMEOUT: usize = 1; // B, F, H, L
const CLEANUP: usize = 2; // D, I, J, K, M
const TRYING: usize = 3; // automatic 100 Trying
const SLOTS: usize = 4;

struct Tx {
    generation: u32,
    kind: Kind,
    state: State,
    key: Key,
    ack_key: Option<AckKey>,
    peer: Peer,
    /// Where responses go (server) — `None` if the Via pointed nowhere we may send to.
    response_to: Option<Peer>,
    request: Request,
    request_bytes: Bytes,
    last_response: Option<Bytes>,
    ack_bytes: Option<Bytes>,
    interval: Duration,
    acked: bool,
    timers: [Option<Instant>; SLOTS],
}

/// The transaction table. See the module documentation.
pub struct Table {
    cfg: Config,
    txs: Slab<Tx>,
    index: HashMap<Key, usize>,
    acks: HashMap<AckKey, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize, u32, usize)>>,
    timer_cap: usize,
    actions: VecDeque<Action>,
    next_generation: u32,
    hasher: std::collections::hash_map::RandomState,
    refused: u64,
}

impl Table {
    pub fn new(cfg: Config) -> Table {
        let n = cfg.max_transactions.max(1);
        let timer_cap = n * SLOTS + 16;
        let (room, timer_room) = if cfg.preallocate { (n, timer_cap) } else { (0, 0) };
        Table {
            txs: Slab::with_capacity(room),
            index: HashMap::with_capacity(room),
            acks: HashMap::with_capacity(room),
            timers: BinaryHeap::with_capacity(timer_room),
            timer_cap,
            actions: VecDeque::with_capacity(16),
            next_generation: 1,
            hasher: std::collections::hash_map::RandomState::new(),
            refused: 0,
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Gives back preallocated room beyond what the live transactions use: for a table that
    /// will only see its last transactions out (a finished call absorbing retransmissions),
    /// where the room grew with the whole call. The bound is unchanged; new transactions
    /// still fit up to it (allocating again).
    pub fn shrink(&mut self) {
        self.txs.shrink_to_fit();
        self.index.shrink_to_fit();
        self.acks.shrink_to_fit();
        self.timers.shrink_to_fit();
        self.actions.shrink_to_fit();
    }
    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
    /// Requests refused with 503 because the table was full, since creation.
    pub fn refused_count(&self) -> u64 {
        self.refused
    }
    /// Timer entries held (bounded by `SLOTS * max_transactions + 16`).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }
    pub fn state(&self, tx: TxId) -> Option<(Kind, State)> {
        self.get(tx).map(|t| (t.kind, t.state))
    }
    /// The request that created a transaction.
    pub fn request(&self, tx: TxId) -> Option<&Request> {
        self.get(tx).map(|t| &t.request)
    }

    /// Next queued action, if any. Drain after every call into the table.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Table::on_timer`] should be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, ..))| *t)
    }

    fn get(&self, tx: TxId) -> Option<&Tx> {
        self.txs.get(tx.index as usize).filter(|t| t.generation == tx.generation)
    }
    fn id(&self, idx: usize) -> TxId {
        TxId { index: idx as u32, generation: self.txs[idx].generation }
    }

    // ---------------------------------------------------------------- server side

    /// A request arrived from `source`. Validate it first (see [`crate::validate_request`]);
    /// a request without Via cannot be matched and is dropped.
    pub fn on_request(&mut self, request: Request, source: Peer, now: Instant) {
        let Some(key) = Key::server(&request) else { return };
        if let Some(&idx) = self.index.get(&key) {
            self.on_retransmission(idx, request, source, now);
            return;
        }
        match request.method() {
            Method::Ack => {
                let invite = self.match_2xx_ack(&request);
                self.actions.push_back(Action::Ack { invite, request, source });
            }
            Method::Cancel => {
                if self.txs.len() >= self.cfg.max_transactions {
                    self.refuse(request, source);
                    return;
                }
                let invite = Key::server_with_method(&request, Method::Invite)
                    .and_then(|k| self.index.get(&k).copied())
                    .map(|i| self.id(i));
                let idx = self.insert(Kind::ServerNonInvite, State::Trying, key, &request, source, Bytes::new());
                self.arm(idx, TIMEOUT, now + self.cfg.server_non_invite_timeout);
                let tx = self.id(idx);
                self.actions.push_back(Action::Cancel { tx, invite, request, source });
            }
            m => {
                let limit = if *m == Method::Invite { self.cfg.invite_limit } else { self.cfg.max_transactions };
                if self.txs.len() >= limit.min(self.cfg.max_transactions) {
                    self.refuse(request, source);
                    return;
                }
                let is_invite = *m == Method::Invite;
                let (kind, state) =
                    if is_invite { (Kind::ServerInvite, State::Proceeding) } else { (Kind::ServerNonInvite, State::Trying) };
                let idx = self.insert(kind, state, key, &request, source, Bytes::new());
                let lifetime =
                    if is_invite { self.cfg.server_invite_timeout } else { self.cfg.server_non_invite_timeout };
                self.arm(idx, TIMEOUT, now + lifetime);
                let tx = self.id(idx);
                if is_invite && let Some(d) = self.cfg.trying_delay {
                    if d.is_zero() {
                        self.send_trying(idx);
                    } else {
                        self.arm(idx, TRYING, now + d);
                    }
                }
                self.actions.push_back(Action::Request { tx, request, source });
            }
        }
    }

    fn on_retransmission(&mut self, idx: usize, request: Request, source: Peer, now: Instant) {
        let t = &mut self.txs[idx];
        let is_ack = *request.method() == Method::Ack;
        match (t.kind, t.state, is_ack) {
            (Kind::ServerInvite, State::Completed, true) => {
                t.state = State::Confirmed;
                t.timers[RETRANS] = None;
                t.timers[TIMEOUT] = None;
                if t.peer.transport.is_reliable() {
                    self.terminate(idx);
                } else {
                    let at = now + self.cfg.t4;
                    self.arm(idx, CLEANUP, at);
                }
            }
            (Kind::ServerInvite, State::Accepted, true) => {
                // Only an RFC 2543 peer's ACK for a 2xx matches the INVITE key.
                t.timers[RETRANS] = None;
                t.acked = true;
                let invite = Some(self.id(idx));
                self.actions.push_back(Action::Ack { invite, request, source });
            }
            (_, _, true) => {}
            (Kind::ServerInvite, State::Proceeding, false)
            | (Kind::ServerInvite, State::Completed, false)
            | (Kind::ServerNonInvite, State::Proceeding | State::Completed, false) => {
                if let (Some(bytes), Some(to)) = (t.last_response.clone(), t.response_to) {
                    self.actions.push_back(Action::Send { to, bytes });
                }
            }
            _ => {}
        }
    }

    fn match_2xx_ack(&mut self, ack: &Request) -> Option<TxId> {
        let key = AckKey { call_id: ack.call_id()?.clone(), from_tag: ack.from()?.tag.clone(), cseq: ack.cseq()?.seq };
        let idx = *self.acks.get(&key)?;
        let t = &mut self.txs[idx];
        t.timers[RETRANS] = None;
        t.acked = true;
        Some(self.id(idx))
    }

    fn refuse(&mut self, request: Request, source: Peer) {
        self.refused += 1;
        if *request.method() != Method::Ack {
            let tag = self.tag_for(&request);
            let resp = Response::builder(&request, 503)
                .to_tag(&tag)
                .header(HeaderName::RetryAfter, Bytes::from(self.cfg.retry_after_secs.to_string()))
                .build();
            if let Some(to) = response_peer(&request, source) {
                self.actions.push_back(Action::Send { to, bytes: resp.to_bytes() });
            }
        }
        self.actions.push_back(Action::Refused { request, source });
    }

    fn tag_for(&self, req: &Request) -> String {
        let mut h = self.hasher.build_hasher();
        self.cfg.tag_seed.hash(&mut h);
        req.call_id().map(|c| &c[..]).hash(&mut h);
        req.from().and_then(|f| f.tag.as_deref()).hash(&mut h);
        format!("{:016x}", h.finish())
    }

    fn send_trying(&mut self, idx: usize) {
        let t = &mut self.txs[idx];
        let bytes = Response::builder(&t.request, 100).build().to_bytes();
        t.last_response = Some(bytes.clone());
        if let Some(to) = t.response_to {
            self.actions.push_back(Action::Send { to, bytes });
        }
    }

    /// The TU answers a server transaction.
    pub fn respond(&mut self, tx: TxId, response: Response, now: Instant) -> Result<(), TxError> {
        let idx = tx.index as usize;
        if self.get(tx).is_none() {
            return Err(TxError::UnknownTransaction);
        }
        let status = response.status();
        let t = &mut self.txs[idx];
        let reliable = t.peer.transport.is_reliable();
        let bytes = response.to_bytes();
        match (t.kind, t.state) {
            (Kind::ServerInvite, State::Proceeding) => {
                t.timers[TRYING] = None;
                t.last_response = Some(bytes.clone());
                if status >= 300 {
                    t.state = State::Completed;
                    t.interval = self.cfg.t1;
                    if !reliable {
                        self.arm(idx, RETRANS, now + self.cfg.t1);
                    }
                    self.arm(idx, TIMEOUT, now + self.cfg.t1 * 64);
                } else if status >= 200 {
                    let t = &mut self.txs[idx];
                    t.state = State::Accepted;
                    t.interval = self.cfg.t1;
                    if let (Some(call_id), Some(cseq)) = (t.request.call_id(), t.request.cseq()) {
                        let k = AckKey { call_id: call_id.clone(), from_tag: t.request.from().and_then(|f| f.tag.clone()), cseq: cseq.seq };
                        t.ack_key = Some(k.clone());
                        self.acks.insert(k, idx);
                    }
                    if !reliable && self.cfg.retransmit_2xx {
                        self.arm(idx, RETRANS, now + self.cfg.t1);
                    }
                    self.arm(idx, TIMEOUT, now + self.cfg.t1 * 64);
                }
            }
            (Kind::ServerInvite, State::Accepted) if (200..300).contains(&status) => {
                t.last_response = Some(bytes.clone());
            }
            (Kind::ServerNonInvite, State::Trying | State::Proceeding) => {
                t.last_response = Some(bytes.clone());
                if status >= 200 {
                    t.state = State::Completed;
                    t.timers[TIMEOUT] = None;
                    if reliable {
                        self.send_response(idx, bytes);
                        self.terminate(idx);
                        return Ok(());
                    }
                    self.arm(idx, CLEANUP, now + self.cfg.t1 * 64);
                } else {
                    t.state = State::Proceeding;
                }
            }
            _ => return Err(TxError::InvalidState),
        }
        self.send_response(idx, bytes);
        Ok(())
    }

    fn send_response(&mut self, idx: usize, bytes: Bytes) {
        if let Some(to) = self.txs[idx].response_to {
            self.actions.push_back(Action::Send { to, bytes });
        }
    }

    // ---------------------------------------------------------------- client side

    /// Starts a client transaction: sends `request` to `to` and retransmits it as needed.
    pub fn send_request(&mut self, request: Request, to: Peer, now: Instant) -> Result<TxId, TxError> {
        if *request.method() == Method::Ack {
            return Err(TxError::Ack);
        }
        let branch = request.top_via().and_then(|v| v.branch.clone()).ok_or(TxError::NoBranch)?;
        if self.txs.len() >= self.cfg.max_transactions {
            return Err(TxError::Full);
        }
        let key = Key::Client { branch, method: request.method().clone() };
        if self.index.contains_key(&key) {
            return Err(TxError::InvalidState);
        }
        let bytes = request.to_bytes();
        let invite = *request.method() == Method::Invite;
        let (kind, state) = if invite { (Kind::ClientInvite, State::Calling) } else { (Kind::ClientNonInvite, State::Trying) };
        let idx = self.insert(kind, state, key, &request, to, bytes.clone());
        self.txs[idx].interval = self.cfg.t1;
        if !to.transport.is_reliable() {
            self.arm(idx, RETRANS, now + self.cfg.t1);
        }
        self.arm(idx, TIMEOUT, now + self.cfg.t1 * 64);
        self.actions.push_back(Action::Send { to, bytes });
        Ok(self.id(idx))
    }

    /// A response arrived. Validate it first (see [`crate::validate_response`]).
    pub fn on_response(&mut self, response: Response, source: Peer, now: Instant) {
        let Some(idx) = Key::client(&response).and_then(|k| self.index.get(&k).copied()) else {
            self.actions.push_back(Action::StrayResponse { response, source });
            return;
        };
        let status = response.status();
        let tx = self.id(idx);
        let t = &mut self.txs[idx];
        let reliable = t.peer.transport.is_reliable();
        match (t.kind, t.state) {
            (Kind::ClientInvite, State::Calling | State::Proceeding) => {
                t.timers[RETRANS] = None;
                if status < 200 {
                    t.state = State::Proceeding;
                    t.timers[TIMEOUT] = None;
                } else if status < 300 {
                    t.state = State::Accepted;
                    t.timers[TIMEOUT] = None;
                    self.arm(idx, CLEANUP, now + self.cfg.t1 * 64);
                } else {
                    let ack = t.request.ack_for(&response).to_bytes();
                    t.ack_bytes = Some(ack.clone());
                    t.state = State::Completed;
                    t.timers[TIMEOUT] = None;
                    let to = t.peer;
                    self.actions.push_back(Action::Send { to, bytes: ack });
                    if reliable {
                        self.actions.push_back(Action::Response { tx, response });
                        self.terminate(idx);
                        return;
                    }
                    self.arm(idx, CLEANUP, now + Duration::from_secs(32).max(self.cfg.t1 * 64));
                }
                self.actions.push_back(Action::Response { tx, response });
            }
            (Kind::ClientInvite, State::Accepted)
                if (200..300).contains(&status) => {
                    self.actions.push_back(Action::Response { tx, response });
                }
            (Kind::ClientInvite, State::Completed) => {
                if status >= 300
                    && let Some(bytes) = t.ack_bytes.clone()
                {
                    let to = t.peer;
                    self.actions.push_back(Action::Send { to, bytes });
                }
            }
            (Kind::ClientNonInvite, State::Trying | State::Proceeding) => {
                if status < 200 {
                    t.state = State::Proceeding;
                } else {
                    t.state = State::Completed;
                    t.timers[RETRANS] = None;
                    t.timers[TIMEOUT] = None;
                    self.actions.push_back(Action::Response { tx, response });
                    if reliable {
                        self.terminate(idx);
                    } else {
                        let at = now + self.cfg.t4;
                        self.arm(idx, CLEANUP, at);
                    }
                    return;
                }
                self.actions.push_back(Action::Response { tx, response });
            }
            _ => {}
        }
    }

    /// The caller could not deliver a message of this transaction (RFC 3261 17.1.4/17.2.4).
    pub fn on_transport_error(&mut self, tx: TxId) {
        if self.get(tx).is_some() {
            self.actions.push_back(Action::TransportError { tx });
            self.terminate(tx.index as usize);
        }
    }

    /// The connection to `peer` (its address and transport) closed or could not be opened
    /// (RFC 3261 17.1.4): every client transaction still waiting for its final response over
    /// it fails now, with [`Action::TransportError`], instead of waiting for Timer B/F.
    /// Transactions that already have their final response keep running (their ACK or
    /// retransmission absorption does not need the connection), and so do those to the same
    /// address over another transport (UDP, or TCP beside TLS: a separate connection).
    /// Returns how many failed.
    pub fn on_connection_lost(&mut self, peer: Peer) -> usize {
        let waiting: Vec<TxId> = self
            .txs
            .iter()
            .filter(|(_, t)| {
                t.peer == peer
                    && peer.transport.is_reliable()
                    && matches!(t.kind, Kind::ClientInvite | Kind::ClientNonInvite)
                    && matches!(t.state, State::Calling | State::Trying | State::Proceeding)
            })
            .map(|(i, t)| TxId { index: i as u32, generation: t.generation })
            .collect();
        for &tx in &waiting {
            self.on_transport_error(tx);
        }
        waiting.len()
    }

    /// Runs every timer due at `now`.
    pub fn on_timer(&mut self, now: Instant) {
        while let Some(&Reverse((at, idx, generation, slot))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let live = self.txs.get(idx).is_some_and(|t| t.generation == generation && t.timers[slot] == Some(at));
            if live {
                self.txs[idx].timers[slot] = None;
                self.fire(idx, slot, now);
            }
        }
    }

    fn fire(&mut self, idx: usize, slot: usize, now: Instant) {
        let cfg_t2 = self.cfg.t2;
        let t = &mut self.txs[idx];
        let tx = TxId { index: idx as u32, generation: t.generation };
        match (slot, t.kind, t.state) {
            (TRYING, Kind::ServerInvite, State::Proceeding)
                if t.last_response.is_none() => {
                    self.send_trying(idx);
                }
            (RETRANS, Kind::ClientInvite, State::Calling) => {
                // Timer A doubles without cap (RFC 3261 17.1.1.2).
                t.interval *= 2;
                let (to, bytes, next) = (t.peer, t.request_bytes.clone(), now + t.interval);
                self.actions.push_back(Action::Send { to, bytes });
                self.arm(idx, RETRANS, next);
            }
            (RETRANS, Kind::ClientNonInvite, State::Trying | State::Proceeding) => {
                t.interval = if t.state == State::Trying { (t.interval * 2).min(cfg_t2) } else { cfg_t2 };
                let (to, bytes, next) = (t.peer, t.request_bytes.clone(), now + t.interval);
                self.actions.push_back(Action::Send { to, bytes });
                self.arm(idx, RETRANS, next);
            }
            (RETRANS, Kind::ServerInvite, State::Completed | State::Accepted) => {
                if t.state == State::Accepted && t.acked {
                    return;
                }
                t.interval = (t.interval * 2).min(cfg_t2);
                let next = now + t.interval;
                if let (Some(bytes), Some(to)) = (t.last_response.clone(), t.response_to) {
                    self.actions.push_back(Action::Send { to, bytes });
                }
                self.arm(idx, RETRANS, next);
            }
            (TIMEOUT, Kind::ServerInvite, State::Proceeding) | (TIMEOUT, Kind::ServerNonInvite, State::Trying | State::Proceeding) => {
                // The TU never answered: answer for it so the peer stops retransmitting and
                // the slot is released through the normal Completed path.
                self.actions.push_back(Action::Timeout { tx });
                let tag = self.tag_for(&self.txs[idx].request);
                let resp = Response::builder(&self.txs[idx].request, 408).to_tag(&tag).build();
                let _ = self.respond(tx, resp, now);
            }
            (TIMEOUT, Kind::ServerInvite, State::Accepted) => {
                // Timer L: the transaction ends; without an ACK the TU must end the dialog.
                if !t.acked {
                    self.actions.push_back(Action::Timeout { tx });
                }
                self.terminate(idx);
            }
            (TIMEOUT, _, _) => {
                self.actions.push_back(Action::Timeout { tx });
                self.terminate(idx);
            }
            (CLEANUP, _, _) => self.terminate(idx),
            _ => {}
        }
    }

    // ---------------------------------------------------------------- internals

    fn insert(&mut self, kind: Kind, state: State, key: Key, request: &Request, peer: Peer, request_bytes: Bytes) -> usize {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let response_to = match kind {
            Kind::ServerInvite | Kind::ServerNonInvite => response_peer(request, peer),
            _ => None,
        };
        let idx = self.txs.insert(Tx {
            generation,
            kind,
            state,
            key: key.clone(),
            ack_key: None,
            peer,
            response_to,
            request: request.clone(),
            request_bytes,
            last_response: None,
            ack_bytes: None,
            interval: self.cfg.t1,
            acked: false,
            timers: [None; SLOTS],
        });
        self.index.insert(key, idx);
        idx
    }

    fn arm(&mut self, idx: usize, slot: usize, at: Instant) {
        if self.timers.len() >= self.timer_cap {
            self.compact_timers();
        }
        let t = &mut self.txs[idx];
        t.timers[slot] = Some(at);
        self.timers.push(Reverse((at, idx, t.generation, slot)));
    }

    /// Drops heap entries of cancelled timers and terminated transactions; afterwards the
    /// heap holds at most `SLOTS` entries per live transaction, so it never grows past its
    /// preallocated capacity.
    fn compact_timers(&mut self) {
        let mut live = Vec::with_capacity(self.timer_cap);
        for (idx, t) in self.txs.iter() {
            for (slot, at) in t.timers.iter().enumerate() {
                if let Some(at) = at {
                    live.push(Reverse((*at, idx, t.generation, slot)));
                }
            }
        }
        self.timers.clear();
        self.timers.extend(live);
    }

    fn terminate(&mut self, idx: usize) {
        if let Some(t) = self.txs.try_remove(idx) {
            if self.index.get(&t.key) == Some(&idx) {
                self.index.remove(&t.key);
            }
            if let Some(k) = t.ack_key
                && self.acks.get(&k) == Some(&idx)
            {
                self.acks.remove(&k);
            }
            self.actions.push_back(Action::Terminated { tx: TxId { index: idx as u32, generation: t.generation } });
        }
    }
}

/// Where responses to `req` received from `source` go: the same connection for reliable
/// transports, otherwise RFC 3261 18.2.2 / RFC 3581 via [`response_target`].
pub fn response_peer(req: &Request, source: Peer) -> Option<Peer> {
    if source.transport.is_reliable() {
        return Some(source);
    }
    let via = req.top_via()?;
    response_target(via, source.addr).map(|addr| Peer { addr, transport: source.transport })
}

#[cfg(test)]
mod tests;
