//! The front door's per-message logic, synchronous and I/O-free so both the UDP loops and
//! the TCP connection tasks call it inline (no task spawn, no channel hop per message):
//! admission (trust, rate) → parse/validate (veertien-sip) → transaction table → routing
//! decision (veertien-core) → response bytes + call record.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use veertien_core::decide::{CallInfo, Decision, RejectReason, decide};
use veertien_core::settings::DeliveryMode;
use veertien_core::NormaliseError;
use veertien_sip::{
    HeaderName, Message, Method, ParseError, Policy, Rejection, Request, Response, Uri, reject_unparseable,
    response_target, unparseable_is_ack, validate_request_with, validate_response,
};
use veertien_store::{CallRecord, Delivery, Outcome, RecordWriter};

use crate::calls::{CallLayer, Inbound, NewCall};
use crate::config::{Config, ContactScheme, UntrustedPolicy};
use crate::guard::{SourceLimiter, TrustList};
use crate::routing::Routing;
use crate::txn::{Lookup, Resend, Table, TxKey};

/// Counters exposed for tests, logs and the portal's health page.
#[derive(Debug, Default)]
pub struct Metrics {
    pub received: AtomicU64,
    pub parse_errors: AtomicU64,
    /// ACKs that did not parse: dropped, never answered (RFC 3261 17.2.1); also in `parse_errors`.
    pub malformed_acks: AtomicU64,
    pub untrusted: AtomicU64,
    pub rate_limited: AtomicU64,
    pub retransmissions: AtomicU64,
    pub invites: AtomicU64,
    pub redirected: AtomicU64,
    pub rejected: AtomicU64,
    /// New INVITEs answered 503 because the table or call limit was reached, or draining.
    pub shed: AtomicU64,
    pub records_dropped: AtomicU64,
    /// INVITEs handed to the call layer (bridged calls).
    pub bridged: AtomicU64,
    /// INVITEs answered by the IVR (shared area codes, announcements).
    pub ivr: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    pub received: u64,
    pub parse_errors: u64,
    pub malformed_acks: u64,
    pub untrusted: u64,
    pub rate_limited: u64,
    pub retransmissions: u64,
    pub invites: u64,
    pub redirected: u64,
    pub rejected: u64,
    pub shed: u64,
    pub records_dropped: u64,
    pub transactions: usize,
    pub bridged: u64,
    /// Bridged calls whose caller leg is not settled yet.
    pub live_calls: usize,
    pub ivr: u64,
    /// IVR calls in progress.
    pub ivr_calls: usize,
}

/// Which transport a message came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// TCP under TLS (`[sip] tls`): framed and answered like TCP, but the calls arriving on it
    /// keep TLS on the caller's leg, so the call layer must be told.
    Tls,
}

impl Transport {
    pub(crate) fn sip(self) -> veertien_sip::Transport {
        match self {
            Transport::Udp => veertien_sip::Transport::Udp,
            Transport::Tcp => veertien_sip::Transport::Tcp,
            Transport::Tls => veertien_sip::Transport::Tls,
        }
    }
}

/// A message to send. On TCP and TLS the target is ignored: the answer goes back on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub target: SocketAddr,
    pub bytes: Bytes,
}

pub struct Engine {
    config: Config,
    routing: Arc<Routing>,
    records: Option<RecordWriter>,
    trust: TrustList,
    /// Digest authentication of trunks (`[[trunk.auth]]`), checked on INVITEs after trust.
    digest: crate::digest::DigestAuth,
    limiter: SourceLimiter,
    policy: Policy,
    /// Requests inside a call the platform is in (bridged or IVR): also re-offers (UPDATE),
    /// PRACK (answered 481) and the NOTIFYs of a REFER the IVR sent.
    call_policy: Policy,
    allow: String,
    table: Mutex<Table>,
    draining: AtomicBool,
    call_seq: AtomicU64,
    boot_ms: i64,
    calls: OnceLock<Arc<CallLayer>>,
    pub metrics: Metrics,
}

/// What the decision turned into on the wire and in the record.
struct Delivered {
    status: u16,
    reason: String,
    contact: Option<String>,
    outcome: Outcome,
    delivery: Option<Delivery>,
    reject_reason: Option<String>,
}

impl Engine {
    pub fn new(config: Config, routing: Arc<Routing>, records: Option<RecordWriter>) -> Engine {
        let policy = Policy::default();
        let allow = policy.allow_header();
        let mut call_policy = policy.clone();
        call_policy.allowed_methods.extend([Method::Update, Method::Prack, Method::Notify]);
        Engine {
            trust: TrustList::new({
                // The outbound trunk answers our B-leg INVITEs and sends in-dialog requests.
                let mut nets = config.sip.trusted_peers.clone();
                if let Some(o) = config.trunk.outbound {
                    nets.push(ipnet::IpNet::from(o.ip()));
                }
                nets
            }),
            digest: crate::digest::DigestAuth::new(&config.trunk.auth),
            limiter: SourceLimiter::new(config.sip.rate_limit_per_source, config.sip.rate_burst),
            table: Mutex::new(Table::new(config.sip.transaction_table_size)),
            policy,
            call_policy,
            allow,
            routing,
            records,
            draining: AtomicBool::new(false),
            call_seq: AtomicU64::new(0),
            boot_ms: jiff::Timestamp::now().as_millisecond(),
            calls: OnceLock::new(),
            metrics: Metrics::default(),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Enables bridged calls (set once, when the SIP UDP socket is bound and an outbound trunk
    /// is configured).
    pub fn set_call_layer(&self, layer: Arc<CallLayer>) {
        let _ = self.calls.set(layer);
    }

    pub fn call_layer(&self) -> Option<&Arc<CallLayer>> {
        self.calls.get()
    }

    pub fn routing(&self) -> &Arc<Routing> {
        &self.routing
    }

    /// Stop taking new calls (SIGTERM): new INVITEs get 503 + Retry-After from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Transactions still open (the shutdown grace period waits for INVITE ones).
    pub fn open_transactions(&self) -> usize {
        self.table.lock().len()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.metrics;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            received: l(&m.received),
            parse_errors: l(&m.parse_errors),
            malformed_acks: l(&m.malformed_acks),
            untrusted: l(&m.untrusted),
            rate_limited: l(&m.rate_limited),
            retransmissions: l(&m.retransmissions),
            invites: l(&m.invites),
            redirected: l(&m.redirected),
            rejected: l(&m.rejected),
            shed: l(&m.shed),
            records_dropped: l(&m.records_dropped),
            transactions: self.table.lock().len(),
            bridged: l(&m.bridged),
            live_calls: self.calls.get().map_or(0, |c| c.live_calls()),
            ivr: l(&m.ivr),
            ivr_calls: self.calls.get().map_or(0, |c| c.ivr_calls()),
        }
    }

    /// Fires due transaction timers; returns Timer G retransmissions to send.
    pub fn poll_timers(&self, now: Instant, out: &mut Vec<Resend>) {
        self.table.lock().poll(now, out);
    }

    pub fn next_timer(&self) -> Option<Instant> {
        self.table.lock().next_deadline()
    }

    /// Forgets idle rate-limit buckets (called periodically).
    pub fn prune_limiter(&self) {
        self.limiter.prune();
    }

    /// INVITE transactions whose answer the caller has not acknowledged yet.
    pub fn active_calls(&self) -> usize {
        self.table.lock().awaiting_ack() + self.calls.get().map_or(0, |c| c.live_calls())
    }

    pub fn digest(&self) -> &crate::digest::DigestAuth {
        &self.digest
    }

    pub fn is_trusted(&self, peer: SocketAddr) -> bool {
        self.trust.is_trusted(peer.ip())
    }

    /// Rate limit and trust check. `None`: drop silently; `Some(trusted)`: go on.
    fn admit(&self, src: SocketAddr) -> Option<bool> {
        self.metrics.received.fetch_add(1, Ordering::Relaxed);
        // Rate limit before anything else, trusted or not: parsing is the expensive part.
        if !self.limiter.check(src.ip()) {
            self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let trusted = self.trust.is_trusted(src.ip());
        if !trusted {
            self.metrics.untrusted.fetch_add(1, Ordering::Relaxed);
            if self.config.sip.untrusted == UntrustedPolicy::Drop {
                return None;
            }
        }
        Some(trusted)
    }

    /// Handles one datagram.
    pub fn handle(&self, data: Bytes, src: SocketAddr, transport: Transport) -> Option<Outgoing> {
        let trusted = self.admit(src)?;
        match Message::parse_bytes(data.clone()) {
            Ok(m) => self.dispatch(m, src, transport, trusted),
            Err(e) => self.unparsed(&data, &e, src, transport),
        }
    }

    /// Handles one message framed on a stream whose bytes did not parse (TCP): answered like
    /// a datagram that did not parse; the connection stays usable.
    pub fn handle_unparsed(&self, data: &[u8], err: &ParseError, src: SocketAddr, transport: Transport) -> Option<Outgoing> {
        self.admit(src)?;
        self.unparsed(data, err, src, transport)
    }

    fn unparsed(&self, data: &[u8], err: &ParseError, src: SocketAddr, transport: Transport) -> Option<Outgoing> {
        self.metrics.parse_errors.fetch_add(1, Ordering::Relaxed);
        if unparseable_is_ack(data) {
            // RFC 3261 17.2.1/8.2: never answer an ACK. Its INVITE's final response keeps
            // being retransmitted until a good ACK or Timer H ends it.
            self.metrics.malformed_acks.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%src, error = %err, "malformed ACK dropped");
            return None;
        }
        let resp = reject_unparseable(data, err, &self.new_tag())?;
        self.reply_to_unparsed(resp, src, transport)
    }

    /// Handles one message already framed and parsed (TCP).
    pub fn handle_message(&self, msg: Message, src: SocketAddr, transport: Transport) -> Option<Outgoing> {
        let trusted = self.admit(src)?;
        self.dispatch(msg, src, transport, trusted)
    }

    fn dispatch(&self, msg: Message, src: SocketAddr, transport: Transport, trusted: bool) -> Option<Outgoing> {
        let mut req = match msg {
            Message::Request(r) => r,
            // No client transactions on the redirect path: responses are validated (so a
            // hostile one cannot cause anything) and absorbed.
            Message::Response(r) => {
                if validate_response(&r).is_ok()
                    && trusted
                    && let Some(layer) = self.calls.get()
                {
                    layer.deliver(Inbound::Response(Box::new(r), src, transport.sip()));
                }
                return None;
            }
        };
        // RFC 3261 18.2.1: note where the request really came from, so the response goes there.
        req.stamp_received(src);
        if !trusted {
            if *req.method() == Method::Ack {
                return None;
            }
            let resp = Response::builder(&req, 403).reason("Forbidden (peer not trusted)").to_tag(&self.new_tag()).build();
            return self.send(&req, resp, src, transport);
        }
        // Requests of a bridged call go to its task (its own transaction table absorbs
        // retransmissions); everything else takes the inline path.
        if let Some(layer) = self.calls.get()
            && layer.owns(req.call_id())
        {
            if *req.method() != Method::Ack
                && let Err(rej) = validate_request_with(&req, &self.call_policy)
            {
                if rej.silent {
                    return None;
                }
                return self.send(&req, self.rejection(&req, &rej), src, transport);
            }
            layer.deliver(Inbound::Request(Box::new(req), src, transport.sip()));
            return None;
        }
        self.handle_request(req, src, transport)
    }

    fn reply_to_unparsed(&self, resp: Response, src: SocketAddr, transport: Transport) -> Option<Outgoing> {
        let target = match transport {
            Transport::Udp if self.config.sip.respond_to_source => src,
            Transport::Udp => response_target(resp.top_via()?, src)?,
            Transport::Tcp | Transport::Tls => src,
        };
        Some(Outgoing { target, bytes: resp.to_bytes() })
    }

    fn handle_request(&self, req: Request, src: SocketAddr, transport: Transport) -> Option<Outgoing> {
        let now = Instant::now();
        let method = req.method().clone();
        if method == Method::Ack {
            // ACK for our non-2xx final: absorbed by its INVITE transaction. An ACK matching
            // nothing (e.g. for a 2xx we never sent) is dropped, as RFC 3261 17.2.3 allows.
            if let Some(key) = TxKey::of(&req) {
                self.table.lock().ack(&key, now);
            }
            return None;
        }
        let key = TxKey::of(&req);
        if let Some(key) = &key
            && let Lookup::Retransmission(resp) = self.table.lock().lookup(key)
        {
            self.metrics.retransmissions.fetch_add(1, Ordering::Relaxed);
            let bytes = resp?;
            let target = self.target_for(&req, src, transport)?;
            return Some(Outgoing { target, bytes });
        }
        if let Err(rej) = validate_request_with(&req, &self.policy) {
            if rej.silent {
                return None;
            }
            return self.finish(&req, key, self.rejection(&req, &rej), src, transport, now);
        }
        let resp = match method {
            Method::Invite => return self.invite(req, key, src, transport, now),
            Method::Options => Response::builder(&req, 200)
                .to_tag(&self.new_tag())
                .header(HeaderName::Allow, self.allow.clone())
                .header(HeaderName::Accept, "application/sdp")
                .header(HeaderName::Other(Bytes::from_static(b"Accept-Encoding")), "identity")
                .header(HeaderName::Other(Bytes::from_static(b"Accept-Language")), "nl, en")
                .header(HeaderName::Supported, "")
                .header(HeaderName::Server, self.config.sip.server_header.clone())
                .build(),
            Method::Cancel => {
                // Every INVITE is answered with a final response when it arrives, so a CANCEL
                // either matches a completed INVITE (200, no further effect: RFC 3261 9.2) or
                // nothing (481).
                let matched = TxKey::invite_of_cancel(&req).is_some_and(|k| self.table.lock().contains(&k));
                if matched {
                    Response::builder(&req, 200).to_tag(&self.new_tag()).build()
                } else {
                    Response::builder(&req, 481).to_tag(&self.new_tag()).build()
                }
            }
            // BYE and INFO only exist inside a dialog, and the redirect path creates none.
            _ => Response::builder(&req, 481).to_tag(&self.new_tag()).build(),
        };
        self.finish(&req, key, resp, src, transport, now)
    }

    fn rejection(&self, req: &Request, rej: &Rejection) -> Response {
        rej.to_response(req, &self.new_tag())
    }

    fn invite(
        &self,
        req: Request,
        key: Option<TxKey>,
        src: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Option<Outgoing> {
        self.metrics.invites.fetch_add(1, Ordering::Relaxed);
        // Shed before any routing work: an overloaded node answers fast rather than slowly.
        if self.is_draining() || self.table.lock().is_full() {
            self.metrics.shed.fetch_add(1, Ordering::Relaxed);
            let reason = if self.is_draining() { "Service Unavailable (shutting down)" } else { "Service Unavailable (overload)" };
            let resp = Response::builder(&req, 503)
                .reason(reason)
                .to_tag(&self.new_tag())
                .header(HeaderName::RetryAfter, self.config.sip.retry_after_secs.to_string())
                .build();
            // Not stored: the table is full, and a retransmitted INVITE is simply shed again.
            let target = self.target_for(&req, src, transport)?;
            return Some(Outgoing { target, bytes: resp.to_bytes() });
        }
        if let crate::digest::Verdict::Challenge { stale } = self.digest.check(&req, src.ip()) {
            let resp = self.digest.challenge(&req, src.ip(), stale, &self.new_tag());
            return self.finish(&req, key, resp, src, transport, now);
        }
        let received_ms = jiff::Timestamp::now().as_millisecond();
        let dialled = String::from_utf8_lossy(req.uri().as_bytes()).into_owned();
        let caller = req.from().map(|f| caller_of(&f.uri)).unwrap_or_default();
        let snap = self.routing.snapshot();
        let decision = decide(
            &CallInfo { dialled: &dialled, caller: (!caller.is_empty()).then_some(caller.as_str()) },
            &snap.plan,
            &snap.settings,
            jiff::Timestamp::now(),
        );
        let decided_ms = jiff::Timestamp::now().as_millisecond();
        // Calls that need a voice (a question, a notice, a message before the bridge) go to
        // the IVR; plain bridge decisions to the B2BUA; the rest stays on the inline path.
        // Over TCP or TLS the call keeps using the caller's connection (registered by its
        // reader, with its transport: a TLS caller's leg never falls back to plain TCP).
        let layer = self.calls.get().filter(|l| transport == Transport::Udp || l.tcp_usable(veertien_sip::transaction::Peer { addr: src, transport: transport.sip() }));
        let ivr = layer.filter(|l| l.ivr().is_some());
        let route_call = match &decision {
            Decision::Ask { .. } | Decision::Announce { forward_to: None, .. } if ivr.is_some() => Some(true),
            Decision::Forward { mode: DeliveryMode::Bridge, destination_configured: true, route, .. }
                if layer.is_some_and(|l| l.can_bridge()) =>
            {
                let message_first = matches!(route.first(), Some(veertien_core::RouteStep::Announcement { .. }));
                Some(message_first && ivr.is_some())
            }
            _ => None,
        };
        if let (Some(via_ivr), Some(layer)) = (route_call, layer) {
            // `[trunk] route_end = "announce"`: a route whose destinations all failed ends in
            // the spoken notice (an announcement step the call task plays through the IVR).
            let fallback = (self.config.trunk.route_end == crate::config::RouteEnd::Announce && ivr.is_some())
                .then(|| veertien_b2bua::StepTarget::Announcement { prompt: String::new() });
            let steps = match &decision {
                Decision::Forward { route, .. } => veertien_b2bua::plan_route(route, fallback).steps,
                _ => Vec::new(),
            };
            let new =
                NewCall { invite: req.clone(), source: src, steps, caller, dialled, received_ms, decided_ms, decision, transport: transport.sip() };
            let started = if via_ivr { layer.start_ivr(new) } else { layer.start(new) };
            return match started {
                Ok(()) => {
                    let counter = if via_ivr { &self.metrics.ivr } else { &self.metrics.bridged };
                    counter.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "call refused");
                    self.metrics.shed.fetch_add(1, Ordering::Relaxed);
                    let resp = Response::builder(&req, 503)
                        .reason("Service Unavailable (overload)")
                        .to_tag(&self.new_tag())
                        .header(HeaderName::RetryAfter, self.config.sip.retry_after_secs.to_string())
                        .build();
                    let target = self.target_for(&req, src, transport)?;
                    Some(Outgoing { target, bytes: resp.to_bytes() })
                }
            };
        }
        let d = self.deliver(&decision);
        let mut b = Response::builder(&req, d.status).reason(d.reason.clone()).to_tag(&self.new_tag());
        if let Some(c) = &d.contact {
            // The destination came from validated settings; if it still does not parse as a
            // URI we must not send a broken 302.
            match Uri::parse(c) {
                Ok(uri) => b = b.contact(&uri),
                Err(e) => {
                    tracing::error!(destination = %c, error = ?e, "destination is not a valid URI");
                    let resp = Response::builder(&req, 500)
                        .reason("Server Internal Error (invalid destination)")
                        .to_tag(&self.new_tag())
                        .build();
                    return self.finish(&req, key, resp, src, transport, now);
                }
            }
            if self.config.sip.diversion
                && let Some(fourteen) = decision_fourteen(&decision)
            {
                b = b.header(
                    HeaderName::Other(Bytes::from_static(b"Diversion")),
                    format!("<tel:{fourteen}>;reason=unconditional"),
                );
            }
        }
        let resp = b.build();
        if d.status == 302 {
            self.metrics.redirected.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
        }
        // The record goes to the writer (and its journal) before the answer can leave: a crash
        // right after the caller got its final response must not lose the record of the call.
        // `try_submit` never blocks, so the call path still never waits for the store.
        let ended_ms = jiff::Timestamp::now().as_millisecond();
        if let Some(w) = &self.records {
            let mut rec = CallRecord::received(
                self.call_id(),
                req.call_id().map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default(),
                self.config.node_id.clone(),
                caller,
                dialled,
                received_ms,
            );
            fill_decision(&mut rec, &decision);
            rec.destination = d.contact.clone();
            rec.delivery = d.delivery;
            rec.decided_ms = Some(decided_ms);
            rec.ended_ms = Some(ended_ms);
            rec.outcome = Some(d.outcome);
            rec.reject_reason = d.reject_reason;
            rec.sip_status = Some(d.status);
            // Post-dial delay as the caller's network sees it: INVITE in → final answer out.
            rec.post_dial_delay_ms = Some(ended_ms - received_ms);
            if let Decision::Forward { route, .. } = &decision {
                rec.route_steps = veertien_store::RawJson::of(route);
            }
            if w.try_submit(rec).is_err() {
                self.metrics.records_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Only now does the answer enter the transaction table (where a retransmitted INVITE
        // on another worker could pick it up) and go back to the loop that sends it.
        self.finish(&req, key, resp, src, transport, now)
    }

    /// Maps a routing decision to the SIP answer. Until the B2BUA and IVR drivers are wired
    /// in, bridge decisions to a configured destination are delivered by redirect (the caller
    /// reaches the right place; the platform just does not stay in the call), and decisions
    /// that need a dialogue with the caller (Ask; Announce without a forward) are answered
    /// 480 with the reason, never routed to a guessed destination.
    fn deliver(&self, decision: &Decision) -> Delivered {
        match decision {
            Decision::Forward { destination, destination_configured, .. } => {
                if !*destination_configured {
                    return Delivered::reject(480, "Temporarily Unavailable (destination not configured)", "destination_not_configured");
                }
                Delivered::redirect(self.contact_for(destination))
            }
            Decision::Announce { forward_to: Some(to), .. } => Delivered::redirect(self.contact_for(to)),
            Decision::Announce { reason, .. } => {
                let code = serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                Delivered::reject(
                    480,
                    &format!("Temporarily Unavailable (announcement: {code})"),
                    &format!("announcement_unavailable:{code}"),
                )
            }
            Decision::Ask { .. } => {
                Delivered::reject(480, "Temporarily Unavailable (shared area code: selection menu unavailable)", "ask_without_ivr")
            }
            Decision::Reject { reason } => {
                let status = match reason {
                    // Too few digits: the caller may still be dialling (overlap), RFC 3261 21.4.22.
                    RejectReason::Malformed(NormaliseError::WrongLength { digits, .. }) if digits.len() < 5 => 484,
                    RejectReason::Malformed(NormaliseError::Empty) => 484,
                    _ => 404,
                };
                let phrase = if status == 484 { "Address Incomplete" } else { "Not Found" };
                Delivered::reject(status, &format!("{phrase} ({})", sanitize(&reason.to_string())), reason.code())
            }
        }
    }

    /// The Contact URI for a destination (`tel:+31...` or a SIP URI), honouring
    /// `sip.contact_scheme`.
    fn contact_for(&self, destination: &str) -> String {
        contact_uri(&self.config.sip, destination)
    }

    fn target_for(&self, req: &Request, src: SocketAddr, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp if self.config.sip.respond_to_source => Some(src),
            Transport::Udp => response_target(req.top_via()?, src),
            Transport::Tcp | Transport::Tls => Some(src),
        }
    }

    /// Sends a final response and remembers it in the transaction table.
    fn finish(
        &self,
        req: &Request,
        key: Option<TxKey>,
        resp: Response,
        src: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Option<Outgoing> {
        let bytes = resp.to_bytes();
        let target = self.target_for(req, src, transport)?;
        if let Some(key) = key {
            let invite = *req.method() == Method::Invite;
            let udp = (transport == Transport::Udp).then_some(target);
            // A full table only means this (non-INVITE or already-shed) answer is not kept for
            // retransmissions; answering again statelessly is harmless for those.
            let _ = self.table.lock().complete(key, invite, bytes.clone(), udp, now);
        }
        Some(Outgoing { target, bytes })
    }

    fn send(&self, req: &Request, resp: Response, src: SocketAddr, transport: Transport) -> Option<Outgoing> {
        let target = self.target_for(req, src, transport)?;
        Some(Outgoing { target, bytes: resp.to_bytes() })
    }

    fn new_tag(&self) -> String {
        // Tags only need to be unique, not secret (RFC 3261 19.3).
        format!("{:x}", fastrand::u64(..))
    }

    fn call_id(&self) -> String {
        let seq = self.call_seq.fetch_add(1, Ordering::Relaxed);
        // Fixed width, so a node's ids sort in the order its calls arrived and each new
        // record lands at the end of the call-id index instead of on a random page of it
        // (a page written to the WAL per call; docs/PERFORMANCE-store.md).
        format!("{}-{:x}-{seq:010}", self.config.node_id, self.boot_ms)
    }
}

impl Delivered {
    fn redirect(contact: String) -> Delivered {
        Delivered {
            status: 302,
            reason: "Moved Temporarily".into(),
            contact: Some(contact),
            outcome: Outcome::Redirected,
            delivery: Some(Delivery::Redirect),
            reject_reason: None,
        }
    }

    fn reject(status: u16, reason: &str, record_reason: &str) -> Delivered {
        Delivered {
            status,
            reason: reason.to_string(),
            contact: None,
            outcome: Outcome::Rejected,
            delivery: None,
            reject_reason: Some(record_reason.to_string()),
        }
    }
}

/// The decision's part of a call record.
pub(crate) fn fill_decision(rec: &mut CallRecord, decision: &Decision) {
    let (normalised, area_code) = match decision {
        Decision::Forward { fourteen, area_code, .. }
        | Decision::Ask { fourteen, area_code, .. }
        | Decision::Announce { fourteen, area_code, .. } => (Some(fourteen.clone()), Some(area_code.clone())),
        Decision::Reject { reason: RejectReason::UnknownAreaCode { area_code, .. } } => {
            (Some(format!("14{area_code}")), Some(area_code.clone()))
        }
        Decision::Reject { .. } => (None, None),
    };
    rec.normalised = normalised;
    rec.area_code = area_code;
    rec.decision_kind = decision.kind().to_string();
    rec.decision = veertien_store::RawJson::of(decision);
    rec.municipality_cbs = decision.municipality().map(|m| m.cbs.clone());
}

/// Where a caller is sent when the platform leaves the call (302 Contact, REFER Refer-To):
/// the destination, or with `sip.contact_scheme = "sip"` a `tel:` number as a SIP URI.
pub(crate) fn contact_uri(sip: &crate::config::SipConfig, destination: &str) -> String {
    match (sip.contact_scheme, destination.strip_prefix("tel:")) {
        (ContactScheme::Sip, Some(number)) => format!("sip:{number}@{};user=phone", sip.redirect_host),
        _ => destination.to_string(),
    }
}

fn decision_fourteen(d: &Decision) -> Option<&str> {
    match d {
        Decision::Forward { fourteen, .. } | Decision::Announce { fourteen, .. } => Some(fourteen),
        _ => None,
    }
}

/// The caller's number as presented: user part of a SIP From, or the tel: number.
fn caller_of(uri: &Uri) -> String {
    match uri.tel() {
        Some(t) => String::from_utf8_lossy(&t.number).into_owned(),
        None => uri.user().map(|u| String::from_utf8_lossy(&u).into_owned()).unwrap_or_default(),
    }
}

/// A reason phrase must be one line of printable text (RFC 3261 25.1 reason-phrase).
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
