//! Public inputs, outputs and configuration of the call machine.

use crate::msg::{InRequest, InResponse, OutRequest, OutResponse};
use jiff::Timestamp;
use std::net::SocketAddr;
use std::time::Duration;

/// The two legs of a bridged call: A faces the carrier that called us, B faces the
/// municipality's destination over the outbound trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    A,
    B,
}

impl Leg {
    pub(crate) fn idx(self) -> usize {
        match self {
            Leg::A => 0,
            Leg::B => 1,
        }
    }
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}

/// The driver's handle for a server transaction (a request it received and must answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxn(pub u64);

/// Identifies a request the machine asked the driver to send, unique within one call. The
/// driver reports responses and failures of that request with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Timers the machine asks the driver to run. A timer is identified by its id within the call;
/// starting an id that is running restarts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerId {
    /// Overall limit on call setup (from the A-leg INVITE to an answer).
    Setup,
    /// No-answer timeout of attempt `n` (per route step).
    NoAnswer(u32),
    /// Attempt `n` got no response at all: the destination counts as unreachable.
    NoResponse(u32),
    /// How long to wait for the 487 after cancelling attempt `n` before moving on.
    CancelWait(u32),
    /// Retransmit our 2xx on this leg (RFC 3261 13.3.1.4).
    Retransmit2xx(Leg),
    /// Give up waiting for the ACK of our 2xx on this leg.
    AckWait(Leg),
    /// Hard limit on an answered call's duration.
    MaxDuration,
    /// Forget an abandoned B-leg INVITE that never completed.
    Straggler(RequestId),
}

/// How the driver must send a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    /// A new client transaction (fresh Via branch).
    Transaction,
    /// A CANCEL: same Via branch as the INVITE it cancels (RFC 3261 9.1).
    Cancel { invite: RequestId },
    /// ACK for a 2xx: sent directly, no transaction, fresh branch (RFC 3261 13.2.2.4).
    Ack,
}

/// Instructions for the RTP relay, whose sockets the driver allocated before creating the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaAction {
    /// Send the media arriving from the other side to `remote` (the address this side's SDP
    /// announced). Repeated when a side's SDP changes (forked early media, re-INVITE).
    Connect { side: Leg, remote: SocketAddr },
    /// Stop sending towards this side (its SDP disabled the stream or put it on hold with
    /// `0.0.0.0`).
    Disconnect { side: Leg },
    /// The call is over: free the relay.
    Release,
}

/// An input to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A request (other than ACK) on either leg: CANCEL of the A-leg INVITE, BYE, re-INVITE,
    /// UPDATE, INFO, OPTIONS... The machine tells the legs apart by Call-ID and To-tag.
    Request { txn: ServerTxn, request: InRequest },
    /// An ACK on either leg.
    Ack { request: InRequest },
    /// A response to a request the machine sent (provisional or final, including
    /// retransmitted 2xx for an INVITE).
    Response { id: RequestId, response: InResponse },
    /// The transaction of a request the machine sent failed without a final response
    /// (timeout, transport error, no route to the destination).
    RequestFailed { id: RequestId, reason: String },
    /// A timer started with [`Action::StartTimer`] expired.
    Timer(TimerId),
    /// OPTIONS probing marked this destination dead (RFC 3261 URI as given in the route).
    DestinationDown { destination: String },
}

/// An output of the machine, drained with [`crate::Call::poll_action`] in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send { leg: Leg, id: RequestId, kind: SendKind, request: OutRequest },
    Respond { leg: Leg, txn: ServerTxn, response: OutResponse },
    Media(MediaAction),
    StartTimer { timer: TimerId, after: Duration },
    CancelTimer(TimerId),
    Record(RecordEvent),
    /// The A-leg goes to an announcement: the IVR takes over the still-pending A-leg INVITE
    /// transaction; this machine is done with it.
    HandOff(HandOff),
    /// The call is over from the caller's point of view; emitted exactly once. The machine may
    /// still need events for abandoned B-leg INVITEs until [`crate::Call::is_finished`].
    Finished(CallSummary),
}

/// What the IVR needs to continue the A-leg when a route ends in an announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    pub prompt: String,
    pub txn: ServerTxn,
    /// The To-tag we already used in provisional responses on the A-leg (keep using it).
    pub to_tag: String,
    pub contact: String,
    pub record_route: Vec<String>,
}

/// Live call-record events, in addition to the final [`CallSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordEvent {
    Ringing { at: Timestamp },
    Answered { at: Timestamp, destination: String },
    AttemptEnded(Attempt),
}

/// Who ended an answered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Caller,
    Callee,
    /// The platform: maximum duration, missing ACK, failed in-dialog request.
    Platform,
}

/// How the call ended for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Busy,
    NoAnswer,
    Unreachable,
    CallerHungUpWhileRinging,
    Redirected,
    Announcement,
    /// Rejected with this final status; `reason` says why in words.
    Rejected { status: u16, reason: String },
}

impl Outcome {
    /// The name used in call records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Unreachable => "unreachable",
            Outcome::CallerHungUpWhileRinging => "caller_hung_up_while_ringing",
            Outcome::Redirected => "redirected",
            Outcome::Announcement => "announcement",
            Outcome::Rejected { .. } => "rejected",
        }
    }
}

/// The result of trying one route step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Answered,
    Busy { status: u16 },
    NoAnswer,
    Unreachable { reason: String },
    Rejected { status: u16, reason: String },
    /// Not tried: OPTIONS probing has the destination marked dead.
    SkippedDead,
    /// Not tried: the same destination was already tried in this call (loop guard).
    SkippedDuplicate,
    /// Not tried or abandoned: the overall setup time ran out.
    SetupTimeout,
    CallerHungUp,
}

impl AttemptResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttemptResult::Answered => "answered",
            AttemptResult::Busy { .. } => "busy",
            AttemptResult::NoAnswer => "no_answer",
            AttemptResult::Unreachable { .. } => "unreachable",
            AttemptResult::Rejected { .. } => "rejected",
            AttemptResult::SkippedDead => "skipped_dead",
            AttemptResult::SkippedDuplicate => "skipped_duplicate",
            AttemptResult::SetupTimeout => "setup_timeout",
            AttemptResult::CallerHungUp => "caller_hung_up",
        }
    }
}

/// One route step as tried (or skipped) in this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Index into the route given to [`crate::Call::new`].
    pub step: usize,
    pub label: String,
    pub destination: String,
    /// When the INVITE was sent; `None` for skipped steps.
    pub started_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    pub result: AttemptResult,
}

/// The complete record of one call, emitted once in [`Action::Finished`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    pub received_at: Timestamp,
    pub ringing_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Timestamp,
    pub outcome: Outcome,
    /// The destination that answered, or the redirect target.
    pub destination: Option<String>,
    /// The final status we sent on the A-leg (200 for answered calls; `None` on hand-off).
    pub final_status: Option<u16>,
    pub ended_by: Option<Party>,
    pub attempts: Vec<Attempt>,
}

/// What a route step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepTarget {
    /// Bridge the call to this SIP URI over the outbound trunk.
    Bridge { destination: String },
    /// Leave the call: 302 with this URI in Contact (e.g. the municipality's general number).
    Redirect { destination: String },
    /// Hand the A-leg to the IVR to play this prompt (the message's text; empty: the standard
    /// "cannot be reached now" notice). The call ends after it: later steps are not tried.
    Announcement { prompt: String },
}

/// One step of a municipality's route, in the order to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStep {
    /// For records and logs: "primary", "overflow", "calamity", ...
    pub label: String,
    pub target: StepTarget,
    /// No-answer timeout for a bridge step; `None` uses [`CallConfig::default_no_answer`].
    pub no_answer: Option<Duration>,
}

/// The relay sockets allocated for this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaAnchor {
    /// The relay address announced to the A-leg (the carrier sends RTP here).
    pub a_facing: SocketAddr,
    /// The relay address announced to the B-leg.
    pub b_facing: SocketAddr,
}

/// Whether OPTIONS probing currently considers a destination alive.
pub trait DestinationHealth {
    fn is_alive(&self, destination: &str) -> bool;
}

/// Health view for when no probing runs: every destination is alive.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllAlive;

impl DestinationHealth for AllAlive {
    fn is_alive(&self, _: &str) -> bool {
        true
    }
}

impl<F: Fn(&str) -> bool> DestinationHealth for F {
    fn is_alive(&self, destination: &str) -> bool {
        self(destination)
    }
}

/// How the driver carries a B-leg, as it answers [`BLegSetup::b_leg`]. Our Contact on that
/// leg follows it: the destination's requests in the dialog (BYE, re-INVITE) go where it
/// points and over the transport it names, so it must be an address that reaches us over the
/// transport the leg uses (RFC 3261 8.1.1.8, 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegTransport {
    /// UDP: our Contact is [`CallConfig::b_contact`].
    Udp,
    /// A TCP connection; the address reaches us over TCP (see [`LegTransport::Tls`]).
    Tcp(SocketAddr),
    /// A TLS connection; the address reaches us over TLS: our TLS listener, or without one
    /// our own end of the connection the driver opens, on which a far end that reuses
    /// connections (RFC 5923) sends its requests back.
    Tls(SocketAddr),
}

/// Asked by the machine when it sets up a B-leg, just before it sends that leg's INVITE: how
/// the driver will carry it. Only the driver knows (the destination's URI, the trunk's
/// transport, the connections it has open) and only it can name its end of a connection it is
/// about to open; the machine then names that in its Contact in every request of the dialog
/// and in its answers to the destination's requests.
pub trait BLegSetup {
    /// `invite` is the B-leg's INVITE as it will be sent, without its Contact. `Err` says why
    /// the destination cannot be reached: the step counts as unreachable with that reason and
    /// the route moves on, as when the INVITE fails.
    fn b_leg(&self, invite: &OutRequest) -> Result<LegTransport, String>;
}

/// Setup for a driver that sends every B-leg over UDP.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllUdp;

impl BLegSetup for AllUdp {
    fn b_leg(&self, _: &OutRequest) -> Result<LegTransport, String> {
        Ok(LegTransport::Udp)
    }
}

impl<F: Fn(&OutRequest) -> Result<LegTransport, String>> BLegSetup for F {
    fn b_leg(&self, invite: &OutRequest) -> Result<LegTransport, String> {
        self(invite)
    }
}

/// Per-call settings (normally one shared value cloned from the server config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// Our Contact URI on the carrier side.
    pub a_contact: String,
    /// Our Contact URI on the trunk side when the B-leg runs over UDP. Over TCP or TLS the
    /// machine names, with this URI's user part, the address the leg's [`BLegSetup`] gave:
    /// `sip:<user>@<address>;transport=tcp` (`tls`), or `sips:<user>@<address>` in a dialog
    /// whose INVITE's Request-URI or first Route is `sips:` (RFC 3261 8.1.1.8).
    pub b_contact: String,
    /// Route set preloaded on B-leg INVITEs to reach the outbound trunk, e.g.
    /// `["<sip:trunk.example.net;lr>"]`. Empty: send to the destination URI directly.
    pub trunk_route: Vec<String>,
    /// Host of the outbound trunk. When set, `tel:` destinations are sent as
    /// `sip:<number>@<trunk_domain>;user=phone` (RFC 3261 19.1.6), which SIP trunks expect.
    pub trunk_domain: Option<String>,
    /// RFC 3261 T1 (500 ms); 2xx retransmission starts here and the ACK wait is 64*T1.
    pub t1: Duration,
    /// RFC 3261 T2 (4 s): cap on the 2xx retransmission interval.
    pub t2: Duration,
    /// Overall limit from the A-leg INVITE to an answer.
    pub setup_timeout: Duration,
    /// No-answer timeout of bridge steps that do not set their own.
    pub default_no_answer: Duration,
    /// A destination that has not sent any response (not even 100) by then counts as
    /// unreachable; keeps dead destinations from costing the caller the full 32 s timeout.
    pub no_response: Duration,
    /// How long to wait for the 487 after CANCEL before trying the next step anyway.
    pub cancel_wait: Duration,
    /// Hard limit on the duration of an answered call (`None`: unlimited).
    pub max_duration: Option<Duration>,
    /// A-leg headers copied onto the B-leg INVITE (case-insensitive names).
    pub pass_headers: Vec<String>,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            a_contact: "sip:veertien@127.0.0.1:5060".to_owned(),
            b_contact: "sip:veertien@127.0.0.1:5060".to_owned(),
            trunk_route: Vec::new(),
            trunk_domain: None,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            setup_timeout: Duration::from_secs(180),
            default_no_answer: Duration::from_secs(30),
            no_response: Duration::from_secs(4),
            cancel_wait: Duration::from_secs(2),
            max_duration: Some(Duration::from_secs(4 * 3600)),
            pass_headers: vec!["P-Asserted-Identity".to_owned(), "Privacy".to_owned()],
        }
    }
}
