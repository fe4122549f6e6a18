//! The call state machine for one bridged call.

use crate::dialog::{Dialog, target_and_route};
use crate::msg::{Body, InRequest, InResponse, Method, NameAddr, OutRequest, OutResponse, find_header, reason_for};
use crate::sdp::{self, Origin};
use crate::types::*;
use bytes::Bytes;
use jiff::Timestamp;
use std::collections::VecDeque;
use std::time::Duration;
use veertien_sip::uri::is_sips;

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
/// Bound on remembered early-dialog To-tags per attempt; a fork storm must not grow memory.
const MAX_EARLY_TAGS: usize = 16;
/// Bound on abandoned B-leg INVITEs kept to clean up late answers.
const MAX_STRAGGLERS: usize = 8;
/// Bound on in-dialog requests (INFO) forwarded and not yet answered: a peer flooding INFO must
/// not grow memory or flood the other side.
const MAX_PENDING: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AState {
    /// INVITE not yet answered with a final response.
    Pending,
    /// 200 sent; the dialog is (being) confirmed.
    Answered,
    /// Final non-2xx sent, handed off, or BYE completed.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CancelReason {
    NoAnswer,
    SetupTimeout,
}

#[derive(Debug, Clone)]
struct BAttempt {
    n: u32,
    step: usize,
    destination: String,
    started_at: Timestamp,
    invite_id: RequestId,
    /// Its Contact is ours on this B-leg, which its dialog keeps.
    invite: OutRequest,
    got_provisional: bool,
    got_ringing: bool,
    cancelling: Option<CancelReason>,
    cancel_sent: bool,
    early_tags: Vec<String>,
    /// For stragglers: To-tags of 2xx we already ACKed and BYEd.
    answered_tags: Vec<String>,
    /// For stragglers: when its INVITE transaction is over for sure (64*T1).
    forget_at: Timestamp,
}

#[derive(Debug, Clone)]
struct BConfirmed {
    dialog: Dialog,
    invite_id: RequestId,
    invite_cseq: u32,
    /// Late offer: the ACK must carry the caller's answer, so it waits for the A-leg ACK.
    ack_deferred: bool,
    /// Our ACK, re-sent when the 2xx is retransmitted.
    ack: Option<OutRequest>,
}

#[derive(Debug, Clone)]
enum Pending {
    /// BYE that ends one leg of the call.
    Bye,
    /// re-INVITE or UPDATE forwarded to leg `to` with CSeq `cseq`.
    Forwarded { to: Leg, cseq: u32, invite: bool },
    /// INFO forwarded from `from`; its final response is relayed.
    Info { from: Leg, txn: ServerTxn },
}

#[derive(Debug, Clone)]
struct Forwarded {
    from: Leg,
    txn: ServerTxn,
    method: Method,
    /// CSeq of the request we received (our 2xx to it is ACKed with this number).
    from_cseq: u32,
    cseq: u32,
    out_id: RequestId,
}

#[derive(Debug, Clone)]
struct Pending2xx {
    txn: ServerTxn,
    cseq: u32,
    response: OutResponse,
    interval: Duration,
    /// We answered a re-INVITE without SDP with an offer; the ACK carries the peer's answer.
    expect_answer: bool,
    initial: bool,
}

/// What the driver lends the machine for one call of [`Call::new`] or [`Call::handle`].
#[derive(Clone, Copy)]
struct Env<'a> {
    health: &'a dyn DestinationHealth,
    legs: &'a dyn BLegSetup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Busy,
    NoAnswer,
    Unreachable,
    Rejected(u16),
}

/// One bridged call. Feed it [`Event`]s with [`Call::handle`] and carry out the
/// [`Action`]s it queues (drain with [`Call::poll_action`]) in order.
#[derive(Debug)]
pub struct Call {
    cfg: CallConfig,
    token: String,
    anchor: MediaAnchor,
    route: Vec<RouteStep>,
    next_step: usize,
    setup_expired: bool,
    tried: Vec<String>,
    last_failure: Option<Failure>,

    a_txn: ServerTxn,
    a_tag: String,
    a_rr: Vec<String>,
    a_dialog: Dialog,
    a_state: AState,
    a_invite_cseq: u32,
    a_offer: Option<Bytes>,
    a_from: NameAddr,
    a_max_forwards: u32,
    a_pass: Vec<(String, String)>,
    origin: [Origin; 2],
    /// The SDP we last presented on each leg (re-sent for a re-INVITE without an offer).
    last_sdp: [Option<Bytes>; 2],

    attempt: Option<BAttempt>,
    attempts_made: u32,
    b: Option<BConfirmed>,
    stragglers: Vec<BAttempt>,
    pending: Vec<(RequestId, Pending)>,
    forwarded: Option<Forwarded>,
    p2xx: [Option<Pending2xx>; 2],
    bye_a_after_ack: bool,
    /// BYEs still outstanding while the call closes; `Some` once closing began.
    closing: Option<u8>,

    next_id: u64,
    summary: CallSummary,
    finished: bool,
    actions: VecDeque<Action>,
}

impl Call {
    /// Starts a call for an A-leg INVITE the driver accepted for bridging. `token` must be
    /// unique and unguessable (≥ 64 random bits, e.g. 16 hex digits): tags and B-leg Call-IDs
    /// derive from it. `txn` is the A-leg INVITE's server transaction. The first actions are
    /// 100 Trying and the first B-leg INVITE (or the redirect/announcement/final status when no
    /// bridge step is usable). `health` and `legs` are asked before each route step (here and
    /// in [`Call::handle`]): whether its destination is alive, and how the driver carries it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: CallConfig,
        token: &str,
        anchor: MediaAnchor,
        route: Vec<RouteStep>,
        txn: ServerTxn,
        invite: InRequest,
        now: Timestamp,
        health: &dyn DestinationHealth,
        legs: &dyn BLegSetup,
    ) -> Call {
        let a_tag = format!("{token}a");
        let seed = fnv1a(token.as_bytes());
        let a_dialog = Dialog {
            call_id: invite.call_id.clone(),
            local: NameAddr { tag: Some(a_tag.clone()), ..invite.to.clone() },
            remote: invite.from.clone(),
            remote_target: invite.contact.clone().unwrap_or_else(|| invite.from.uri.clone()),
            route_set: invite.record_route.clone(),
            local_cseq: 0,
            remote_cseq: Some(invite.cseq),
            local_contact: cfg.a_contact.clone(),
        };
        let a_pass = invite
            .headers
            .iter()
            .filter(|(n, _)| cfg.pass_headers.iter().any(|p| p.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        let mut call = Call {
            token: token.to_owned(),
            anchor,
            route,
            next_step: 0,
            setup_expired: false,
            tried: Vec::new(),
            last_failure: None,
            a_txn: txn,
            a_tag,
            a_rr: invite.record_route.clone(),
            a_dialog,
            a_state: AState::Pending,
            a_invite_cseq: invite.cseq,
            a_offer: None,
            a_from: invite.from.clone(),
            a_max_forwards: invite.max_forwards.unwrap_or(70).min(70),
            a_pass,
            origin: [Origin::new(seed >> 2), Origin::new((seed >> 2) ^ 0x5a5a)],
            last_sdp: [None, None],
            attempt: None,
            attempts_made: 0,
            b: None,
            stragglers: Vec::new(),
            pending: Vec::new(),
            forwarded: None,
            p2xx: [None, None],
            bye_a_after_ack: false,
            closing: None,
            next_id: 0,
            summary: CallSummary {
                received_at: now,
                ringing_at: None,
                answered_at: None,
                ended_at: now,
                outcome: Outcome::Rejected { status: 500, reason: "call not completed".to_owned() },
                destination: None,
                final_status: None,
                ended_by: None,
                attempts: Vec::new(),
            },
            finished: false,
            actions: VecDeque::new(),
            cfg,
        };
        call.respond_a(100, None);
        if invite.max_forwards == Some(0) {
            call.reject_a(483, "Too Many Hops", "Max-Forwards exhausted", now);
            call.try_complete(now);
            return call;
        }
        match invite.body.as_ref().filter(|b| b.is_sdp()) {
            Some(body) => match sdp::anchor(&body.data, call.anchor.a_facing, &mut Origin::new(0)) {
                Ok(a) => {
                    call.a_offer = Some(body.data.clone());
                    call.connect(Leg::A, a.remote_rtp);
                }
                Err(e) => {
                    let why = e.to_string();
                    call.reject_a(488, reason_for(488), &why, now);
                    call.try_complete(now);
                    return call;
                }
            },
            None if invite.body.is_some() => {
                call.reject_a(415, "Unsupported Media Type", "body is not application/sdp", now);
                call.try_complete(now);
                return call;
            }
            None => {}
        }
        let setup = call.cfg.setup_timeout;
        call.start_timer(TimerId::Setup, setup);
        call.advance(now, Env { health, legs });
        call.try_complete(now);
        call
    }

    /// Feeds one event. Events that do not fit the current state (late, duplicated, for
    /// another dialog) are absorbed or answered with the proper error; they never panic.
    pub fn handle(&mut self, event: Event, now: Timestamp, health: &dyn DestinationHealth, legs: &dyn BLegSetup) {
        let env = Env { health, legs };
        match event {
            Event::Request { txn, request } => self.on_request(txn, request, now),
            Event::Ack { request } => self.on_ack(request, now),
            Event::Response { id, response } => self.on_response(id, response, now, env),
            Event::RequestFailed { id, reason } => self.on_failed(id, reason, now, env),
            Event::Timer(t) => self.on_timer(t, now, env),
            Event::DestinationDown { destination } => self.on_dead(&destination, now, env),
        }
        // Timers may be late; the deadline is what counts.
        if self.stragglers.iter().any(|s| s.forget_at <= now) {
            let expired: Vec<RequestId> =
                self.stragglers.iter().filter(|s| s.forget_at <= now).map(|s| s.invite_id).collect();
            for id in expired {
                self.stragglers.retain(|s| s.invite_id != id);
                self.cancel_timer(TimerId::Straggler(id));
            }
        }
        self.try_complete(now);
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// True once the caller's side is settled ([`Action::Finished`] was emitted) and no
    /// abandoned B-leg INVITE can still be answered: the driver may drop the call.
    pub fn is_finished(&self) -> bool {
        self.finished && self.stragglers.is_empty()
    }

    /// The A-leg's Call-ID and our A-leg To-tag: requests matching them belong to this call.
    pub fn a_dialog_id(&self) -> (&str, &str) {
        (&self.a_dialog.call_id, &self.a_tag)
    }

    /// The record so far (complete once finished).
    pub fn summary(&self) -> &CallSummary {
        &self.summary
    }

    // ----- helpers ---------------------------------------------------------------------

    fn push(&mut self, a: Action) {
        self.actions.push_back(a);
    }

    fn start_timer(&mut self, timer: TimerId, after: Duration) {
        self.push(Action::StartTimer { timer, after });
    }

    fn cancel_timer(&mut self, timer: TimerId) {
        self.push(Action::CancelTimer(timer));
    }

    fn new_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn send(&mut self, leg: Leg, kind: SendKind, request: OutRequest) -> RequestId {
        let id = self.new_id();
        self.push(Action::Send { leg, id, kind, request });
        id
    }

    fn connect(&mut self, side: Leg, remote: Option<std::net::SocketAddr>) {
        self.push(Action::Media(match remote {
            Some(remote) => MediaAction::Connect { side, remote },
            None => MediaAction::Disconnect { side },
        }));
    }

    fn facing(&self, leg: Leg) -> std::net::SocketAddr {
        match leg {
            Leg::A => self.anchor.a_facing,
            Leg::B => self.anchor.b_facing,
        }
    }

    /// Anchors an SDP body from `from` for presentation on the other leg, connecting the relay
    /// towards `from`'s media address.
    fn anchor_for(&mut self, from: Leg, body: &Body) -> Result<Body, sdp::SdpError> {
        let to = from.other();
        let facing = self.facing(to);
        let a = sdp::anchor(&body.data, facing, &mut self.origin[to.idx()])?;
        self.connect(from, a.remote_rtp);
        self.last_sdp[to.idx()] = Some(a.body.clone());
        Ok(Body { content_type: body.content_type.clone(), data: a.body })
    }

    fn a_response(&self, status: u16, reason: &str, body: Option<Body>) -> OutResponse {
        let mut r = OutResponse::new(status, reason);
        if status != 100 {
            r.to_tag = Some(self.a_tag.clone());
        }
        if (101..300).contains(&status) {
            r.contact = Some(self.cfg.a_contact.clone());
            r.record_route = self.a_rr.clone();
        }
        r.body = body;
        r
    }

    fn respond_a(&mut self, status: u16, body: Option<Body>) {
        let r = self.a_response(status, reason_for(status), body);
        let txn = self.a_txn;
        self.push(Action::Respond { leg: Leg::A, txn, response: r });
    }

    fn respond(&mut self, leg: Leg, txn: ServerTxn, status: u16, reason: &str) {
        let mut r = OutResponse::new(status, reason);
        if status == 405 || status == 501 {
            r.headers.push(("Allow".to_owned(), ALLOW.to_owned()));
        }
        self.push(Action::Respond { leg, txn, response: r });
    }

    /// Final non-2xx on the A-leg INVITE that ends the call.
    fn reject_a(&mut self, status: u16, reason: &str, why: &str, now: Timestamp) {
        let r = self.a_response(status, reason, None);
        let txn = self.a_txn;
        self.push(Action::Respond { leg: Leg::A, txn, response: r });
        self.a_state = AState::Closed;
        self.summary.final_status = Some(status);
        self.summary.outcome = Outcome::Rejected { status, reason: why.to_owned() };
        self.summary.ended_at = now;
        self.cancel_timer(TimerId::Setup);
    }

    fn end_attempt(&mut self, att: &BAttempt, result: AttemptResult, now: Timestamp) {
        self.record_attempt(att.step, att.destination.clone(), Some(att.started_at), result, now);
    }

    fn skip_step(&mut self, step: usize, destination: &str, result: AttemptResult, now: Timestamp) {
        self.record_attempt(step, destination.to_owned(), None, result, now);
    }

    /// How a route step ended, for the driver's record and the call summary.
    fn record_attempt(
        &mut self,
        step: usize,
        destination: String,
        started_at: Option<Timestamp>,
        result: AttemptResult,
        now: Timestamp,
    ) {
        let rec = Attempt { step, label: self.route[step].label.clone(), destination, started_at, ended_at: now, result };
        self.push(Action::Record(RecordEvent::AttemptEnded(rec.clone())));
        self.summary.attempts.push(rec);
    }

    fn cancel_attempt_timers(&mut self, n: u32) {
        self.cancel_timer(TimerId::NoAnswer(n));
        self.cancel_timer(TimerId::NoResponse(n));
        self.cancel_timer(TimerId::CancelWait(n));
    }

    // ----- route walking ---------------------------------------------------------------

    /// Tries the next usable route step. Precondition: the A-leg is pending and no attempt
    /// is in progress. Steps are visited once each in order, so the walk always ends.
    fn advance(&mut self, now: Timestamp, env: Env<'_>) {
        debug_assert!(self.attempt.is_none());
        if self.a_state != AState::Pending {
            return;
        }
        while self.next_step < self.route.len() {
            let i = self.next_step;
            self.next_step += 1;
            match self.route[i].target.clone() {
                StepTarget::Bridge { destination } => {
                    if self.setup_expired {
                        self.skip_step(i, &destination, AttemptResult::SetupTimeout, now);
                        continue;
                    }
                    if self.tried.iter().any(|d| d == &destination) {
                        self.skip_step(i, &destination, AttemptResult::SkippedDuplicate, now);
                        continue;
                    }
                    if !env.health.is_alive(&destination) {
                        self.skip_step(i, &destination, AttemptResult::SkippedDead, now);
                        self.last_failure = Some(Failure::Unreachable);
                        continue;
                    }
                    if self.start_attempt(i, destination, now, env) {
                        return;
                    }
                }
                StepTarget::Redirect { destination } => {
                    let mut r = self.a_response(302, reason_for(302), None);
                    r.contact = Some(destination.clone());
                    let txn = self.a_txn;
                    self.push(Action::Respond { leg: Leg::A, txn, response: r });
                    self.a_state = AState::Closed;
                    self.summary.final_status = Some(302);
                    self.summary.outcome = Outcome::Redirected;
                    self.summary.destination = Some(destination);
                    self.summary.ended_at = now;
                    self.cancel_timer(TimerId::Setup);
                    return;
                }
                StepTarget::Announcement { prompt } => {
                    let h = HandOff {
                        prompt,
                        txn: self.a_txn,
                        to_tag: self.a_tag.clone(),
                        contact: self.cfg.a_contact.clone(),
                        record_route: self.a_rr.clone(),
                    };
                    self.push(Action::HandOff(h));
                    self.a_state = AState::Closed;
                    self.summary.outcome = Outcome::Announcement;
                    self.summary.ended_at = now;
                    self.cancel_timer(TimerId::Setup);
                    return;
                }
            }
        }
        // Route exhausted: a clear final status saying why.
        let (status, outcome) = match self.last_failure {
            Some(Failure::Busy) => (486, Outcome::Busy),
            Some(Failure::NoAnswer) | None if self.setup_expired => (480, Outcome::NoAnswer),
            Some(Failure::NoAnswer) => (480, Outcome::NoAnswer),
            Some(Failure::Unreachable) => (480, Outcome::Unreachable),
            Some(Failure::Rejected(s)) => (
                480,
                Outcome::Rejected { status: 480, reason: format!("every destination refused (last: {s})") },
            ),
            None => (
                480,
                Outcome::Rejected { status: 480, reason: "route has no usable step".to_owned() },
            ),
        };
        self.respond_a(status, None);
        self.a_state = AState::Closed;
        self.summary.final_status = Some(status);
        self.summary.outcome = outcome;
        self.summary.ended_at = now;
        self.cancel_timer(TimerId::Setup);
    }

    /// Sends the INVITE of a route step; false when the driver cannot carry that leg (recorded
    /// as unreachable, and the caller of this moves to the next step).
    fn start_attempt(&mut self, step: usize, destination: String, now: Timestamp, env: Env<'_>) -> bool {
        self.attempts_made += 1;
        let n = self.attempts_made;
        self.tried.push(destination.clone());
        let target = match (destination.strip_prefix("tel:"), &self.cfg.trunk_domain) {
            (Some(number), Some(domain)) => {
                // tel: parameters (phone-context, ...) become user parameters.
                format!("sip:{number}@{domain};user=phone")
            }
            _ => destination.clone(),
        };
        let (request_uri, route) = target_and_route(&target, &self.cfg.trunk_route);
        let body = match self.a_offer.clone() {
            Some(offer) => {
                let facing = self.anchor.b_facing;
                match sdp::anchor(&offer, facing, &mut self.origin[Leg::B.idx()]) {
                    Ok(a) => {
                        self.last_sdp[Leg::B.idx()] = Some(a.body.clone());
                        Some(Body::sdp(a.body))
                    }
                    // Validated in `new`; anchoring the same bytes cannot fail differently.
                    Err(_) => None,
                }
            }
            None => None,
        };
        let mut invite = OutRequest {
            method: Method::Invite,
            request_uri,
            from: NameAddr {
                display: self.a_from.display.clone(),
                uri: self.a_from.uri.clone(),
                tag: Some(format!("{}b{n}", self.token)),
            },
            to: NameAddr::new(target),
            call_id: format!("{}-{n}", self.token),
            cseq: 1,
            route,
            contact: None,
            max_forwards: self.a_max_forwards.saturating_sub(1),
            body,
            headers: self.a_pass.clone(),
        };
        let contact = match env.legs.b_leg(&invite) {
            Ok(transport) => self.b_leg_contact(transport, &invite),
            Err(reason) => {
                self.record_attempt(step, destination, Some(now), AttemptResult::Unreachable { reason }, now);
                self.last_failure = Some(Failure::Unreachable);
                return false;
            }
        };
        invite.contact = Some(contact);
        let invite_id = self.send(Leg::B, SendKind::Transaction, invite.clone());
        let no_answer = self.route[step].no_answer.unwrap_or(self.cfg.default_no_answer);
        self.start_timer(TimerId::NoAnswer(n), no_answer);
        let no_response = self.cfg.no_response;
        self.start_timer(TimerId::NoResponse(n), no_response);
        self.attempt = Some(BAttempt {
            n,
            step,
            destination,
            started_at: now,
            invite_id,
            invite,
            got_provisional: false,
            got_ringing: false,
            cancelling: None,
            cancel_sent: false,
            early_tags: Vec::new(),
            answered_tags: Vec::new(),
            forget_at: now,
        });
        true
    }

    /// Our Contact on a B-leg the driver carries as `transport` (RFC 3261 8.1.1.8: it must
    /// reach us over that transport, and be `sips:` when the INVITE's Request-URI or first
    /// Route is). The destination's BYE and re-INVITE come back to it, and our answer to a
    /// re-INVITE names it again, so a TCP or TLS dialog is never retargeted to UDP.
    fn b_leg_contact(&self, transport: LegTransport, invite: &OutRequest) -> String {
        let user = contact_user(&self.cfg.b_contact);
        match transport {
            LegTransport::Udp => self.cfg.b_contact.clone(),
            LegTransport::Tcp(at) => format!("sip:{user}{at};transport=tcp"),
            LegTransport::Tls(at) => {
                let first = invite.route.first().unwrap_or(&invite.request_uri);
                if is_sips(first) || is_sips(&invite.request_uri) {
                    format!("sips:{user}{at}")
                } else {
                    // A `sip:` dialog over TLS: TLS on this hop, without the every-hop promise
                    // of a `sips:` Contact (RFC 3261 26.2.2).
                    format!("sip:{user}{at};transport=tls")
                }
            }
        }
    }

    fn cancel_request(invite: &OutRequest) -> OutRequest {
        OutRequest {
            method: Method::Cancel,
            request_uri: invite.request_uri.clone(),
            from: invite.from.clone(),
            to: invite.to.clone(),
            call_id: invite.call_id.clone(),
            cseq: invite.cseq,
            route: invite.route.clone(),
            contact: None,
            max_forwards: 70,
            body: None,
            headers: Vec::new(),
        }
    }

    fn send_cancel(&mut self, att: &mut BAttempt) {
        if att.cancel_sent {
            return;
        }
        att.cancel_sent = true;
        let req = Self::cancel_request(&att.invite);
        self.send(Leg::B, SendKind::Cancel { invite: att.invite_id }, req);
    }

    /// Gives up on the current attempt without waiting for it to finish: CANCEL it if a
    /// provisional response allows that (RFC 3261 9.1), otherwise CANCEL as soon as one
    /// arrives; any late 2xx is ACKed and BYEd.
    fn abandon_attempt(&mut self, now: Timestamp) {
        let Some(mut att) = self.attempt.take() else { return };
        self.cancel_attempt_timers(att.n);
        if att.got_provisional {
            self.send_cancel(&mut att);
        }
        att.cancelling.get_or_insert(CancelReason::NoAnswer);
        self.keep_straggler(att, now);
    }

    fn keep_straggler(&mut self, mut att: BAttempt, now: Timestamp) {
        if self.stragglers.len() >= MAX_STRAGGLERS {
            // Oldest first: its INVITE has had the most time to finish.
            let old = self.stragglers.remove(0);
            self.cancel_timer(TimerId::Straggler(old.invite_id));
        }
        let wait = self.cfg.t1 * 64;
        att.forget_at = now + wait;
        self.start_timer(TimerId::Straggler(att.invite_id), wait);
        self.stragglers.push(att);
    }

    /// The current attempt failed or was given up; record why and try the next step.
    fn attempt_failed(&mut self, result: AttemptResult, failure: Failure, abandon: bool, now: Timestamp, env: Env<'_>) {
        let Some(att) = self.attempt.clone() else { return };
        self.end_attempt(&att, result, now);
        self.last_failure = Some(failure);
        if abandon {
            self.abandon_attempt(now);
        } else {
            self.cancel_attempt_timers(att.n);
            self.attempt = None;
        }
        self.advance(now, env);
    }

    // ----- responses -------------------------------------------------------------------

    fn on_response(&mut self, id: RequestId, resp: InResponse, now: Timestamp, env: Env<'_>) {
        if self.attempt.as_ref().is_some_and(|a| a.invite_id == id) {
            return self.on_attempt_response(resp, now, env);
        }
        if self.b.as_ref().is_some_and(|b| b.invite_id == id) {
            return self.on_b_invite_retransmission(resp);
        }
        if let Some(i) = self.stragglers.iter().position(|s| s.invite_id == id) {
            return self.on_straggler_response(i, resp);
        }
        if resp.status < 200 {
            return;
        }
        let Some(pos) = self.pending.iter().position(|(p, _)| *p == id) else { return };
        let (_, what) = self.pending.remove(pos);
        match what {
            Pending::Bye => self.bye_done(),
            Pending::Forwarded { to, cseq, invite } => {
                if self.forwarded.as_ref().is_some_and(|f| f.out_id == id) {
                    self.on_forwarded_final(Some(resp), now);
                } else if invite && (200..300).contains(&resp.status) {
                    // Orphaned by a hang-up while pending: every 2xx still needs its ACK.
                    if let Some(d) = self.dialog_opt(to) {
                        let ack = d.ack(cseq);
                        self.send(to, SendKind::Ack, ack);
                    }
                }
            }
            Pending::Info { from, txn } => {
                let status = resp.status;
                let mut r = OutResponse::new(status, resp.reason.clone());
                r.body = resp.body.clone();
                self.push(Action::Respond { leg: from, txn, response: r });
                if status == 481 || status == 408 {
                    self.hang_up(None, Party::Platform, now);
                }
            }
        }
    }

    fn on_failed(&mut self, id: RequestId, reason: String, now: Timestamp, env: Env<'_>) {
        if let Some(att) = self.attempt.as_ref().filter(|a| a.invite_id == id) {
            let n = att.n;
            let cancelling = att.cancelling.clone();
            if cancelling.is_some() {
                self.cancel_timer(TimerId::CancelWait(n));
                let result = match cancelling {
                    Some(CancelReason::SetupTimeout) => AttemptResult::SetupTimeout,
                    _ => AttemptResult::NoAnswer,
                };
                return self.attempt_failed(result, Failure::NoAnswer, false, now, env);
            }
            return self.attempt_failed(AttemptResult::Unreachable { reason }, Failure::Unreachable, false, now, env);
        }
        if let Some(i) = self.stragglers.iter().position(|s| s.invite_id == id) {
            let s = self.stragglers.remove(i);
            self.cancel_timer(TimerId::Straggler(s.invite_id));
            return;
        }
        let Some(pos) = self.pending.iter().position(|(p, _)| *p == id) else { return };
        let (_, what) = self.pending.remove(pos);
        match what {
            Pending::Bye => self.bye_done(),
            Pending::Forwarded { .. } => {
                if self.forwarded.as_ref().is_some_and(|f| f.out_id == id) {
                    self.on_forwarded_final(None, now);
                }
            }
            Pending::Info { from, txn } => {
                self.respond(from, txn, 408, reason_for(408));
                self.hang_up(None, Party::Platform, now);
            }
        }
    }

    fn on_attempt_response(&mut self, resp: InResponse, now: Timestamp, env: Env<'_>) {
        let Some(mut att) = self.attempt.take() else { return };
        let status = resp.status;
        if status < 200 {
            if !att.got_provisional {
                att.got_provisional = true;
                self.cancel_timer(TimerId::NoResponse(att.n));
            }
            if att.cancelling.is_some() {
                self.send_cancel(&mut att);
                self.attempt = Some(att);
                return;
            }
            if status == 100 {
                self.attempt = Some(att);
                return;
            }
            att.got_ringing = true;
            if let Some(tag) = &resp.to_tag
                && !att.early_tags.contains(tag)
                && att.early_tags.len() < MAX_EARLY_TAGS
            {
                att.early_tags.push(tag.clone());
            }
            self.attempt = Some(att);
            if self.summary.ringing_at.is_none() {
                self.summary.ringing_at = Some(now);
                self.push(Action::Record(RecordEvent::Ringing { at: now }));
            }
            // Early media only makes sense when the caller made the offer; in a late-offer call
            // an SDP in an unreliable 18x would be an offer we cannot pass on.
            let body = match resp.body.as_ref().filter(|b| b.is_sdp()) {
                Some(b) if self.a_offer.is_some() => self.anchor_for(Leg::B, b).ok(),
                _ => None,
            };
            let relay = if status == 199 { 183 } else { status };
            let reason = if resp.reason.is_empty() { reason_for(relay).to_owned() } else { resp.reason.clone() };
            let r = self.a_response(relay, &reason, body);
            let txn = self.a_txn;
            self.push(Action::Respond { leg: Leg::A, txn, response: r });
            return;
        }
        if (200..300).contains(&status) {
            // A 2xx racing our no-answer CANCEL still connects the caller: an agent picked up.
            self.cancel_attempt_timers(att.n);
            return self.on_attempt_answered(att, resp, now, env);
        }
        // Final failure.
        self.attempt = Some(att.clone());
        let (result, failure) = match (&att.cancelling, status) {
            (Some(CancelReason::SetupTimeout), 487) => (AttemptResult::SetupTimeout, Failure::NoAnswer),
            (Some(_), 487) => (AttemptResult::NoAnswer, Failure::NoAnswer),
            _ => classify(status, &resp.reason),
        };
        self.attempt_failed(result, failure, false, now, env);
    }

    fn on_attempt_answered(&mut self, att: BAttempt, resp: InResponse, now: Timestamp, env: Env<'_>) {
        let mut dialog = Dialog {
            call_id: att.invite.call_id.clone(),
            local: att.invite.from.clone(),
            remote: NameAddr { tag: resp.to_tag.clone(), ..att.invite.to.clone() },
            remote_target: resp.contact.clone().unwrap_or_else(|| att.destination.clone()),
            route_set: resp.record_route.iter().rev().cloned().collect(),
            local_cseq: att.invite.cseq,
            remote_cseq: None,
            local_contact: att.invite.contact.clone().unwrap_or_default(),
        };
        let sdp_body = resp.body.as_ref().filter(|b| b.is_sdp());
        let anchored = match sdp_body {
            Some(b) => self.anchor_for(Leg::B, b).map_err(|e| e.to_string()),
            None => Err("2xx without SDP".to_owned()),
        };
        let body = match anchored {
            Ok(b) => b,
            Err(why) => {
                // Unusable answer: this destination cannot be bridged. Close its dialog and
                // move on (RFC 3261 13.2.2.4: ACK every 2xx, then BYE).
                let ack = dialog.ack(att.invite.cseq);
                self.send(Leg::B, SendKind::Ack, ack);
                let bye = dialog.request(Method::Bye);
                self.send(Leg::B, SendKind::Transaction, bye);
                // Kept as a straggler so that other forks' 2xx get ACK and BYE too.
                let mut att = att;
                att.answered_tags = vec![resp.to_tag.clone().unwrap_or_default()];
                att.cancel_sent = true;
                self.attempt = Some(att);
                return self.attempt_failed(
                    AttemptResult::Rejected { status: resp.status, reason: format!("unusable answer: {why}") },
                    Failure::Rejected(488),
                    true,
                    now,
                    env,
                );
            }
        };
        let late_offer = self.a_offer.is_none();
        let ack = if late_offer {
            None
        } else {
            let ack = dialog.ack(att.invite.cseq);
            self.send(Leg::B, SendKind::Ack, ack.clone());
            Some(ack)
        };
        self.cancel_timer(TimerId::Setup);
        self.end_attempt(&att, AttemptResult::Answered, now);
        // Other forks may still answer for 64*T1 (RFC 6026), also after this call has ended:
        // remember the INVITE so their 2xx get ACK and BYE whatever our state.
        let mut done = att.clone();
        done.answered_tags = vec![resp.to_tag.clone().unwrap_or_default()];
        done.cancel_sent = true;
        self.keep_straggler(done, now);
        self.b = Some(BConfirmed {
            dialog,
            invite_id: att.invite_id,
            invite_cseq: att.invite.cseq,
            ack_deferred: late_offer,
            ack,
        });
        let response = self.a_response(200, reason_for(200), Some(body));
        let txn = self.a_txn;
        self.push(Action::Respond { leg: Leg::A, txn, response: response.clone() });
        self.a_state = AState::Answered;
        self.start_2xx(Leg::A, txn, self.a_invite_cseq, response, false, true);
        self.summary.answered_at = Some(now);
        self.summary.final_status = Some(200);
        self.summary.outcome = Outcome::Answered;
        self.summary.destination = Some(att.destination.clone());
        self.push(Action::Record(RecordEvent::Answered { at: now, destination: att.destination.clone() }));
        if let Some(max) = self.cfg.max_duration {
            self.start_timer(TimerId::MaxDuration, max);
        }
    }

    /// A 2xx for the INVITE that established the B dialog again: a retransmission (ACK it
    /// again) or another fork answering (ACK and BYE that dialog, RFC 3261 13.2.2.4).
    fn on_b_invite_retransmission(&mut self, resp: InResponse) {
        if !(200..300).contains(&resp.status) {
            return;
        }
        let Some(b) = self.b.as_ref() else { return };
        if resp.to_tag == b.dialog.remote.tag {
            if let Some(ack) = b.ack.clone() {
                self.send(Leg::B, SendKind::Ack, ack);
            }
            return;
        }
        let mut d = b.dialog.clone();
        d.remote.tag = resp.to_tag.clone();
        d.remote_target = resp.contact.clone().unwrap_or(d.remote_target);
        d.route_set = resp.record_route.iter().rev().cloned().collect();
        d.local_cseq = b.invite_cseq;
        let ack = d.ack(b.invite_cseq);
        self.send(Leg::B, SendKind::Ack, ack);
        let bye = d.request(Method::Bye);
        self.send(Leg::B, SendKind::Transaction, bye);
    }

    fn on_straggler_response(&mut self, i: usize, resp: InResponse) {
        let status = resp.status;
        if status < 200 {
            let mut s = self.stragglers[i].clone();
            s.got_provisional = true;
            self.send_cancel(&mut s);
            self.stragglers[i] = s;
            return;
        }
        if status >= 300 {
            let s = self.stragglers.remove(i);
            self.cancel_timer(TimerId::Straggler(s.invite_id));
            return;
        }
        // CANCEL lost the race with a 2xx: ACK it and hang that dialog up. Later 2xx with the
        // same tag are retransmissions: ACK again only.
        let s = &mut self.stragglers[i];
        let tag = resp.to_tag.clone().unwrap_or_default();
        let first = !s.answered_tags.contains(&tag);
        if first && s.answered_tags.len() < MAX_EARLY_TAGS {
            s.answered_tags.push(tag);
        }
        let mut d = Dialog {
            call_id: s.invite.call_id.clone(),
            local: s.invite.from.clone(),
            remote: NameAddr { tag: resp.to_tag.clone(), ..s.invite.to.clone() },
            remote_target: resp.contact.clone().unwrap_or_else(|| s.destination.clone()),
            route_set: resp.record_route.iter().rev().cloned().collect(),
            local_cseq: s.invite.cseq,
            remote_cseq: None,
            local_contact: s.invite.contact.clone().unwrap_or_default(),
        };
        let ack = d.ack(s.invite.cseq);
        self.send(Leg::B, SendKind::Ack, ack);
        if first {
            let bye = d.request(Method::Bye);
            self.send(Leg::B, SendKind::Transaction, bye);
        }
    }

    // ----- timers ----------------------------------------------------------------------

    fn on_timer(&mut self, t: TimerId, now: Timestamp, env: Env<'_>) {
        match t {
            TimerId::Setup => {
                if self.a_state != AState::Pending {
                    return;
                }
                self.setup_expired = true;
                match self.attempt.as_ref().map(|a| (a.cancelling.is_some(), a.got_provisional)) {
                    None => self.advance(now, env),
                    Some((true, _)) => {}
                    Some((false, true)) => self.begin_cancel(CancelReason::SetupTimeout),
                    Some((false, false)) => {
                        self.attempt_failed(AttemptResult::SetupTimeout, Failure::NoAnswer, true, now, env)
                    }
                }
            }
            TimerId::NoAnswer(n) => {
                let Some(att) = self.attempt.as_ref().filter(|a| a.n == n && a.cancelling.is_none()) else {
                    return;
                };
                if att.got_provisional {
                    self.begin_cancel(CancelReason::NoAnswer);
                } else {
                    self.attempt_failed(AttemptResult::NoAnswer, Failure::NoAnswer, true, now, env);
                }
            }
            TimerId::NoResponse(n) => {
                if self.attempt.as_ref().is_some_and(|a| a.n == n && !a.got_provisional && a.cancelling.is_none()) {
                    let reason = format!("no response within {} ms", self.cfg.no_response.as_millis());
                    self.attempt_failed(AttemptResult::Unreachable { reason }, Failure::Unreachable, true, now, env);
                }
            }
            TimerId::CancelWait(n) => {
                let Some(att) = self.attempt.as_ref().filter(|a| a.n == n && a.cancelling.is_some()) else {
                    return;
                };
                let result = match att.cancelling {
                    Some(CancelReason::SetupTimeout) => AttemptResult::SetupTimeout,
                    _ => AttemptResult::NoAnswer,
                };
                self.attempt_failed(result, Failure::NoAnswer, true, now, env);
            }
            TimerId::Retransmit2xx(leg) => {
                let Some(p) = self.p2xx[leg.idx()].as_mut() else { return };
                let response = p.response.clone();
                let txn = p.txn;
                p.interval = (p.interval * 2).min(self.cfg.t2);
                let next = p.interval;
                self.push(Action::Respond { leg, txn, response });
                self.start_timer(TimerId::Retransmit2xx(leg), next);
            }
            TimerId::AckWait(leg) => {
                let Some(p) = self.p2xx[leg.idx()].take() else { return };
                self.cancel_timer(TimerId::Retransmit2xx(leg));
                if leg == Leg::A && p.initial {
                    self.release_deferred_b_ack(None);
                }
                // RFC 3261 13.3.1.4: no ACK for our 2xx ends the dialog.
                self.hang_up(None, Party::Platform, now);
                if leg == Leg::A && self.bye_a_after_ack {
                    self.bye_a_after_ack = false;
                    self.send_bye(Leg::A);
                }
            }
            TimerId::MaxDuration => {
                if self.a_state == AState::Answered {
                    self.hang_up(None, Party::Platform, now);
                }
            }
            TimerId::Straggler(id) => {
                self.stragglers.retain(|s| s.invite_id != id);
            }
        }
    }

    /// CANCEL the current attempt (it has sent a provisional response) and wait a bounded
    /// time for its 487 before moving on.
    fn begin_cancel(&mut self, reason: CancelReason) {
        let Some(mut att) = self.attempt.take() else { return };
        self.cancel_timer(TimerId::NoAnswer(att.n));
        self.cancel_timer(TimerId::NoResponse(att.n));
        att.cancelling = Some(reason);
        self.send_cancel(&mut att);
        let n = att.n;
        self.attempt = Some(att);
        let wait = self.cfg.cancel_wait;
        self.start_timer(TimerId::CancelWait(n), wait);
    }

    fn on_dead(&mut self, destination: &str, now: Timestamp, env: Env<'_>) {
        let Some(att) = self.attempt.as_ref() else { return };
        // Ringing proves the destination alive whatever the probe says.
        if att.destination != destination || att.got_ringing || att.cancelling.is_some() {
            return;
        }
        let reason = "destination marked dead by OPTIONS probing".to_owned();
        self.attempt_failed(AttemptResult::Unreachable { reason }, Failure::Unreachable, true, now, env);
    }

    // ----- 2xx reliability -------------------------------------------------------------

    fn start_2xx(&mut self, leg: Leg, txn: ServerTxn, cseq: u32, response: OutResponse, expect_answer: bool, initial: bool) {
        let t1 = self.cfg.t1;
        self.p2xx[leg.idx()] = Some(Pending2xx { txn, cseq, response, interval: t1, expect_answer, initial });
        self.start_timer(TimerId::Retransmit2xx(leg), t1);
        self.start_timer(TimerId::AckWait(leg), t1 * 64);
    }

    /// Late offer: send the B-leg ACK that was waiting for the caller's answer.
    fn release_deferred_b_ack(&mut self, answer: Option<Body>) {
        let Some(b) = self.b.as_mut().filter(|b| b.ack_deferred) else { return };
        b.ack_deferred = false;
        let mut ack = b.dialog.ack(b.invite_cseq);
        ack.body = answer;
        b.ack = Some(ack.clone());
        self.send(Leg::B, SendKind::Ack, ack);
    }

    fn on_ack(&mut self, req: InRequest, now: Timestamp) {
        let Some(leg) = self.leg_of(&req) else { return };
        let Some(p) = self.p2xx[leg.idx()].as_ref() else { return };
        if p.cseq != req.cseq {
            return;
        }
        let p = self.p2xx[leg.idx()].take().expect("checked above");
        self.cancel_timer(TimerId::Retransmit2xx(leg));
        self.cancel_timer(TimerId::AckWait(leg));
        let sdp = req.body.as_ref().filter(|b| b.is_sdp());
        if p.initial && leg == Leg::A && self.b.as_ref().is_some_and(|b| b.ack_deferred) {
            let answer = sdp.and_then(|b| self.anchor_for(Leg::A, b).ok());
            let ok = answer.is_some();
            self.release_deferred_b_ack(answer);
            if !ok && self.closing.is_none() {
                self.hang_up(None, Party::Platform, now);
            }
        } else if p.expect_answer
            && let Some(b) = sdp
            && let Ok(a) = sdp::anchor(&b.data, self.facing(leg), &mut Origin::new(0))
        {
            self.connect(leg, a.remote_rtp);
        }
        if leg == Leg::A && self.bye_a_after_ack {
            self.bye_a_after_ack = false;
            self.send_bye(Leg::A);
        }
    }

    // ----- requests --------------------------------------------------------------------

    /// Which leg an in-dialog request belongs to, by Call-ID and our To-tag.
    fn leg_of(&self, req: &InRequest) -> Option<Leg> {
        if req.call_id == self.a_dialog.call_id && req.to.tag.as_deref() == Some(self.a_tag.as_str()) {
            return Some(Leg::A);
        }
        let b = self.b.as_ref()?;
        (req.call_id == b.dialog.call_id && req.to.tag == b.dialog.local.tag).then_some(Leg::B)
    }

    fn on_request(&mut self, txn: ServerTxn, req: InRequest, now: Timestamp) {
        if req.method == Method::Cancel {
            // CANCEL carries no To-tag; it matches the A-leg INVITE by Call-ID and CSeq.
            if req.call_id == self.a_dialog.call_id && req.cseq == self.a_invite_cseq {
                self.respond(Leg::A, txn, 200, reason_for(200));
                if self.a_state == AState::Pending {
                    self.caller_gave_up(now);
                }
            } else {
                self.respond(Leg::A, txn, 481, reason_for(481));
            }
            return;
        }
        let Some(leg) = self.leg_of(&req) else {
            // Covers requests on dialogs we already hung up and forged tags.
            let leg = if req.call_id == self.a_dialog.call_id { Leg::A } else { Leg::B };
            return self.respond(leg, txn, 481, reason_for(481));
        };
        let confirmed = self.a_state == AState::Answered && self.b.is_some() && self.closing.is_none();
        let dialog = match leg {
            Leg::A => &mut self.a_dialog,
            Leg::B => &mut self.b.as_mut().expect("leg_of checked").dialog,
        };
        if !dialog.accept_remote_cseq(req.cseq) {
            return self.respond(leg, txn, 500, "CSeq Out of Order");
        }
        match req.method {
            Method::Bye => {
                self.respond(leg, txn, 200, reason_for(200));
                match self.a_state {
                    AState::Pending if leg == Leg::A => self.caller_gave_up(now),
                    AState::Answered => {
                        let party = if leg == Leg::A { Party::Caller } else { Party::Callee };
                        self.hang_up(Some(leg), party, now);
                    }
                    _ => {}
                }
            }
            Method::Invite | Method::Update => self.on_offer(leg, txn, req, confirmed),
            Method::Info => {
                if !confirmed {
                    // RFC 6086 allows INFO in an early dialog, so the caller's DTMF pressed while
                    // the destination rings must not fail. It is absorbed, not relayed: without
                    // 100rel no B-leg early dialog is reliably established (a fork may vanish, and
                    // a 481 there would end the call), and before the answer nobody listens.
                    return self.respond(leg, txn, 200, reason_for(200));
                }
                if self.pending.len() >= MAX_PENDING {
                    let mut r = OutResponse::new(500, "Too Many Pending Requests");
                    r.headers.push(("Retry-After".to_owned(), "1".to_owned()));
                    return self.push(Action::Respond { leg, txn, response: r });
                }
                let other = leg.other();
                let mut out = self.dialog_mut(other).request(Method::Info);
                out.body = req.body.clone();
                out.headers = req.headers.clone();
                let id = self.send(other, SendKind::Transaction, out);
                self.pending.push((id, Pending::Info { from: leg, txn }));
            }
            Method::Options => {
                let mut r = OutResponse::new(200, reason_for(200));
                r.headers.push(("Allow".to_owned(), ALLOW.to_owned()));
                r.headers.push(("Accept".to_owned(), "application/sdp".to_owned()));
                self.push(Action::Respond { leg, txn, response: r });
            }
            Method::Prack => self.respond(leg, txn, 481, reason_for(481)),
            Method::Other(_) => self.respond(leg, txn, 501, "Not Implemented"),
            Method::Ack | Method::Cancel => {}
        }
    }

    /// Our Contact in the dialog on `leg`, for our 2xx to its re-INVITE or UPDATE: on the
    /// B-leg the one its INVITE carried, so a dialog over TCP or TLS stays on it.
    fn local_contact(&self, leg: Leg) -> String {
        match (leg, &self.b) {
            (Leg::A, _) => self.a_dialog.local_contact.clone(),
            (Leg::B, Some(b)) => b.dialog.local_contact.clone(),
            // Not reached: the B-leg's requests are answered only while its dialog exists.
            (Leg::B, None) => self.cfg.b_contact.clone(),
        }
    }

    fn dialog_opt(&mut self, leg: Leg) -> Option<&mut Dialog> {
        match leg {
            Leg::A => Some(&mut self.a_dialog),
            Leg::B => self.b.as_mut().map(|b| &mut b.dialog),
        }
    }

    fn dialog_mut(&mut self, leg: Leg) -> &mut Dialog {
        match leg {
            Leg::A => &mut self.a_dialog,
            Leg::B => &mut self.b.as_mut().expect("B dialog exists when confirmed").dialog,
        }
    }

    /// re-INVITE or UPDATE on a confirmed call. With an offer it is forwarded to the other leg
    /// (media changes are end-to-end); without one it is a refresh we answer ourselves with the
    /// SDP we last presented, so no cross-leg ACK dependency arises.
    fn on_offer(&mut self, leg: Leg, txn: ServerTxn, req: InRequest, confirmed: bool) {
        let is_invite = req.method == Method::Invite;
        let busy = self.forwarded.is_some() || self.p2xx.iter().any(Option::is_some);
        if !confirmed || busy {
            // RFC 3261 14.2 / RFC 3311 5.2: an offer while another is outstanding → 491.
            if confirmed || req.body.is_some() || is_invite {
                return self.respond(leg, txn, 491, reason_for(491));
            }
            return self.respond(leg, txn, 200, reason_for(200));
        }
        let contact = self.local_contact(leg);
        if let Some(target) = req.contact.clone() {
            self.dialog_mut(leg).remote_target = target;
        }
        match req.body.as_ref().filter(|b| b.is_sdp()) {
            None => {
                let mut r = OutResponse::new(200, reason_for(200));
                r.contact = Some(contact);
                r.headers.push(("Allow".to_owned(), ALLOW.to_owned()));
                if is_invite {
                    r.body = self.last_sdp[leg.idx()].clone().map(Body::sdp);
                }
                self.push(Action::Respond { leg, txn, response: r.clone() });
                if is_invite {
                    let expect = r.body.is_some();
                    self.start_2xx(leg, txn, req.cseq, r, expect, false);
                }
            }
            Some(body) => {
                let Ok(out_body) = self.anchor_for(leg, body) else {
                    return self.respond(leg, txn, 488, reason_for(488));
                };
                let other = leg.other();
                let mut out = self.dialog_mut(other).request(req.method.clone());
                out.body = Some(out_body);
                let cseq = out.cseq;
                let out_id = self.send(other, SendKind::Transaction, out);
                self.pending.push((out_id, Pending::Forwarded { to: other, cseq, invite: is_invite }));
                self.forwarded =
                    Some(Forwarded { from: leg, txn, method: req.method.clone(), from_cseq: req.cseq, cseq, out_id });
            }
        }
    }

    /// Final response (or failure) of a forwarded re-INVITE/UPDATE: ACK it on its leg and relay
    /// the result to the leg that asked.
    fn on_forwarded_final(&mut self, resp: Option<InResponse>, now: Timestamp) {
        let Some(f) = self.forwarded.take() else { return };
        let to = f.from.other();
        let Some(resp) = resp else {
            self.respond(f.from, f.txn, 408, reason_for(408));
            return self.hang_up(None, Party::Platform, now);
        };
        let status = resp.status;
        if (200..300).contains(&status) {
            if f.method == Method::Invite {
                let ack = self.dialog_mut(to).ack(f.cseq);
                self.send(to, SendKind::Ack, ack);
            }
            if let Some(t) = resp.contact.clone() {
                self.dialog_mut(to).remote_target = t;
            }
            let body = resp.body.as_ref().filter(|b| b.is_sdp()).and_then(|b| self.anchor_for(to, b).ok());
            let mut r = OutResponse::new(status, resp.reason.clone());
            r.contact = Some(self.local_contact(f.from));
            r.body = body;
            self.push(Action::Respond { leg: f.from, txn: f.txn, response: r.clone() });
            if f.method == Method::Invite {
                self.start_2xx(f.from, f.txn, f.from_cseq, r, false, false);
            }
        } else {
            let mut r = OutResponse::new(status, resp.reason.clone());
            if let Some(v) = find_header(&resp.headers, "Retry-After") {
                r.headers.push(("Retry-After".to_owned(), v.to_owned()));
            }
            self.push(Action::Respond { leg: f.from, txn: f.txn, response: r });
            // RFC 3261 12.2.1.2: 481/408 to an in-dialog request ends the dialog.
            if status == 481 || status == 408 {
                self.hang_up(None, Party::Platform, now);
            }
        }
    }

    /// The caller hung up (CANCEL or early BYE) before an answer.
    fn caller_gave_up(&mut self, now: Timestamp) {
        let txn = self.a_txn;
        let r = self.a_response(487, reason_for(487), None);
        self.push(Action::Respond { leg: Leg::A, txn, response: r });
        self.a_state = AState::Closed;
        self.cancel_timer(TimerId::Setup);
        if let Some(att) = self.attempt.clone() {
            self.end_attempt(&att, AttemptResult::CallerHungUp, now);
            self.abandon_attempt(now);
        }
        self.summary.final_status = Some(487);
        self.summary.outcome = Outcome::CallerHungUpWhileRinging;
        self.summary.ended_by = Some(Party::Caller);
        self.summary.ended_at = now;
    }

    // ----- teardown --------------------------------------------------------------------

    fn send_bye(&mut self, leg: Leg) {
        let bye = self.dialog_mut(leg).request(Method::Bye);
        let id = self.send(leg, SendKind::Transaction, bye);
        self.pending.push((id, Pending::Bye));
    }

    /// Ends an answered call: BYE every confirmed leg except the one that hung up.
    fn hang_up(&mut self, initiator: Option<Leg>, by: Party, now: Timestamp) {
        if self.closing.is_some() || self.a_state != AState::Answered {
            return;
        }
        self.summary.ended_by = Some(by);
        self.summary.ended_at = now;
        self.cancel_timer(TimerId::MaxDuration);
        if let Some(f) = self.forwarded.take()
            && Some(f.from) != initiator
        {
            self.respond(f.from, f.txn, 487, reason_for(487));
        }
        // The B-leg must be ACKed before it can be hung up.
        self.release_deferred_b_ack(None);
        let mut outstanding = 0u8;
        for leg in [Leg::A, Leg::B] {
            if Some(leg) == initiator {
                continue;
            }
            if leg == Leg::B && self.b.is_none() {
                continue;
            }
            outstanding += 1;
            if leg == Leg::A && self.p2xx[0].as_ref().is_some_and(|p| p.initial) {
                // RFC 3261 15: no BYE before the ACK for our 2xx (or its timeout).
                self.bye_a_after_ack = true;
            } else {
                self.send_bye(leg);
            }
        }
        for leg in [Leg::A, Leg::B] {
            if !self.p2xx[leg.idx()].as_ref().is_some_and(|p| p.initial) && self.p2xx[leg.idx()].take().is_some() {
                self.cancel_timer(TimerId::Retransmit2xx(leg));
                self.cancel_timer(TimerId::AckWait(leg));
            }
        }
        self.closing = Some(outstanding);
    }

    fn bye_done(&mut self) {
        if let Some(n) = self.closing.as_mut() {
            *n = n.saturating_sub(1);
        }
    }

    fn try_complete(&mut self, now: Timestamp) {
        if self.finished {
            return;
        }
        if self.a_state == AState::Answered && self.closing == Some(0) {
            if let Some(p) = self.p2xx[0].take() {
                let _ = p;
                self.cancel_timer(TimerId::Retransmit2xx(Leg::A));
                self.cancel_timer(TimerId::AckWait(Leg::A));
            }
            self.a_state = AState::Closed;
            self.b = None;
            self.summary.ended_at = now;
        }
        if self.a_state != AState::Closed || self.attempt.is_some() || self.b.is_some() && self.closing.is_none() {
            return;
        }
        self.finished = true;
        for leg in [Leg::A, Leg::B] {
            if self.p2xx[leg.idx()].take().is_some() {
                self.cancel_timer(TimerId::Retransmit2xx(leg));
                self.cancel_timer(TimerId::AckWait(leg));
            }
        }
        self.cancel_timer(TimerId::Setup);
        self.push(Action::Media(MediaAction::Release));
        let summary = self.summary.clone();
        self.push(Action::Finished(summary));
    }
}

fn classify(status: u16, reason: &str) -> (AttemptResult, Failure) {
    match status {
        486 | 600 => (AttemptResult::Busy { status }, Failure::Busy),
        408 | 480 | 500 | 502 | 503 | 504 => (
            AttemptResult::Unreachable { reason: format!("{status} {reason}") },
            Failure::Unreachable,
        ),
        300..=399 => (
            AttemptResult::Rejected { status, reason: "redirect from destination not followed".to_owned() },
            Failure::Rejected(status),
        ),
        _ => (AttemptResult::Rejected { status, reason: reason.to_owned() }, Failure::Rejected(status)),
    }
}

/// The user part of a Contact URI with its `@` (`veertien@`), or nothing when it has none.
fn contact_user(uri: &str) -> &str {
    // Neither URI parameters nor headers may hold an unescaped `@` (RFC 3261 25.1).
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    rest.find('@').map_or("", |at| &rest[..=at])
}


/// Stable per-call SDP session id from the token (RFC 4566 only asks for uniqueness).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
