//! IVR calls: the platform answers the caller, runs the dialogue (shared area code) or speaks
//! a notice (closed, calamity, not connected), and puts the caller through.
//!
//! An IVR call is a [`CallTask`] with a [`Front`]: the task's SIP plumbing (its own bounded
//! transaction table, timers, next hop) is shared; the front owns the caller's dialog while
//! the IVR talks to the caller:
//!
//! ```text
//! INVITE ─▶ 200 OK (SDP answer: our RTP port, G.711 + telephone-event) ─▶ ivr::run
//!   INFO (dtmf-relay / dtmf) ─▶ Signal::Dtmf      BYE ─▶ 200 + Signal::HangUp
//! DialogueOutcome::Deliver / Operator / Announce{forward_to}
//!   ─▶ b2bua::Call over a synthetic INVITE: the caller's media restricted to the negotiated
//!      codec; the machine's A-leg responses are absorbed (the caller is answered already):
//!      1xx dropped, 2xx = the destination answered (synthetic ACK, RTP relay started on
//!      the IVR's own socket), final ≥ 300 = every route step failed ─▶ "niet bereikbaar" ─▶ BYE
//!   while the destination rings the caller hears the Dutch ringing tone
//! DialogueOutcome::Announce (no forward) ─▶ the message was spoken ─▶ BYE
//! ```
//!
//! Requests on the caller's dialog go to the machine while it runs (it shares our To-tag,
//! `<token>a`, so it recognises the caller's BYE/re-INVITE), to the front otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use veertien_b2bua::{
    Body, Call, CallSummary, DestinationHealth, Dialog, Event, InRequest, Leg, Method as BMethod, OutResponse, RouteStep,
    ServerTxn, StepTarget, ViaSpec,
};
use veertien_core::decide::Decision;
use veertien_core::settings::DeliveryMode;
use veertien_core::{Lang, MunicipalityRef};
use veertien_ivr::announce::{PlaySetup, Played, announcement, play, ringback_tone};
use veertien_ivr::{
    AnnounceKind, DialogueConfig, DialogueLog, DialogueOutcome, IvrLimits, IvrResult, IvrSetup, IvrStats, LogWhat,
    NameScorer, PlanView, Prompt, PromptLibrary, RecognizerScorer, Signal,
};
use veertien_media::pacer::{Prompt as MediaPrompt, PromptAudio};
use veertien_media::ports::MediaSocket;
use veertien_media::relay::{LegPeer, RtpRelay};
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy, Negotiated};
use veertien_media::session::{MediaSession, SessionConfig};
use veertien_sip::transaction::{Peer, TxId};
use veertien_sip::{Request, Transport};
use veertien_store::{CallRecord, Delivery, Outcome};

use super::{AllAlive, CallTask};

mod choices;
use crate::config::{Config, IvrConfig, Transfer};
use crate::routing::Routing;

/// The machine's A-leg INVITE transaction of an IVR call: a pseudo id, never a real one
/// (those count up from 1). Responses the machine sends on it are absorbed by the front.
pub(super) const PRE_ANSWERED: ServerTxn = ServerTxn(u64::MAX);
/// T1 and the 2xx retransmission/ACK-wait bounds of RFC 3261 13.3.1.4.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Our BYE gets no final response: give up after 64*T1, as its transaction does.
const BYE_WAIT: Duration = Duration::from_secs(32);
/// REFER: no final response, or no NOTIFY after the 202, within 64*T1 → bridge instead.
const REFER_WAIT: Duration = Duration::from_secs(32);
/// Bound on signals queued to one dialogue (keys by SIP INFO, hang-up).
const SIGNALS: usize = 16;
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// Process-wide IVR resources, loaded once when `serve` starts.
pub struct IvrContext {
    pub cfg: IvrConfig,
    pub routing: Arc<Routing>,
    pub prompts: Arc<PromptLibrary>,
    /// Set once the recogniser has loaded (in the background after start); calls before that,
    /// or without a model, get the keypad menu.
    scorer: OnceLock<Arc<dyn NameScorer>>,
    speech_note: Mutex<String>,
    /// Callers' earlier confirmed choices: a prior for recognition.
    choices: choices::Choices,
    prompts_dir: PathBuf,
    prompt_report: veertien_ivr::library::LoadReport,
}

/// What the portal's health page shows about the IVR.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IvrStatus {
    pub prompts_dir: PathBuf,
    pub prompt_pieces: usize,
    /// Pieces without audio file (synthesised with espeak-ng when first needed).
    pub prompt_pieces_missing: usize,
    /// Speech recognition is on (model loaded); otherwise callers get the keypad menu.
    pub speech: bool,
    /// Why speech is off, in Dutch and English, or where the model came from.
    pub speech_note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IvrLoadError {
    #[error("IVR prompts: {0}")]
    Prompts(#[from] veertien_ivr::LibraryError),
}

impl IvrContext {
    /// Loads the prompt library. Blocking (reads every piece): call it from a blocking thread.
    /// Missing pieces are synthesised with espeak-ng when a call first needs them (written to
    /// the prompts directory); without espeak-ng this fails naming them.
    pub fn load(config: &Config, routing: Arc<Routing>) -> Result<IvrContext, IvrLoadError> {
        let dir = config.ivr_prompts_dir().to_path_buf();
        let snap = routing.snapshot();
        let prompts = PromptLibrary::load(&dir, &snap.plan, &[Lang::Nl, Lang::En, Lang::Fy])?;
        let prompt_report = prompts.report().clone();
        let note = if config.ivr.speech {
            "spraakmodel wordt geladen / speech model loading"
        } else {
            "spraakherkenning uitgeschakeld ([ivr] speech = false) / speech recognition switched off"
        };
        Ok(IvrContext {
            cfg: config.ivr.clone(),
            routing,
            prompts: Arc::new(prompts),
            scorer: OnceLock::new(),
            speech_note: Mutex::new(note.into()),
            choices: choices::Choices::default(),
            prompts_dir: dir,
            prompt_report,
        })
    }

    /// Loads the recogniser when speech is on and the model is installed (blocking, seconds:
    /// `serve` runs it in the background). A missing model is not an error: the IVR stays
    /// keypad-only and says so in the log and in [`IvrContext::status`].
    pub fn load_speech(&self) {
        if !self.cfg.speech {
            return;
        }
        let model = self.cfg.model_dir.clone().unwrap_or_else(veertien_speech::default_model_dir);
        let note = if !veertien_speech::is_installed(&model) {
            tracing::warn!(dir = %model.display(), "speech model not installed: shared area codes get the keypad menu only (run `veertien model install`)");
            format!("geen spraakmodel in {} (`veertien model install`) / no speech model installed", model.display())
        } else {
            match veertien_speech::Recognizer::load(&model) {
                Ok(r) => {
                    let _ = self.scorer.set(Arc::new(RecognizerScorer::new(Arc::new(r))));
                    tracing::info!(dir = %model.display(), "speech recogniser loaded");
                    format!("model {}", model.display())
                }
                Err(e) => {
                    tracing::warn!(dir = %model.display(), error = %e, "speech model failed to load: keypad menu only");
                    format!("spraakmodel niet geladen / speech model failed to load: {e}")
                }
            }
        };
        *self.speech_note.lock() = note;
    }

    /// Where callers' earlier choices are looked up (in the background, never by a call).
    pub fn attach_store(&self, store: veertien_store::Store) {
        self.choices.attach_store(store);
    }

    /// The recogniser, once loaded.
    pub fn scorer(&self) -> Option<Arc<dyn NameScorer>> {
        self.scorer.get().cloned()
    }

    /// For the portal's health page and logs.
    pub fn status(&self) -> IvrStatus {
        IvrStatus {
            prompts_dir: self.prompts_dir.clone(),
            prompt_pieces: self.prompt_report.pieces,
            prompt_pieces_missing: self.prompt_report.missing,
            speech: self.scorer.get().is_some(),
            speech_note: self.speech_note.lock().clone(),
        }
    }

    fn limits(&self) -> IvrLimits {
        IvrLimits {
            media: self.media(),
            max_duration: Duration::from_secs(self.cfg.max_dialogue_secs),
            ..IvrLimits::default()
        }
    }

    fn media(&self) -> SessionConfig {
        SessionConfig { media_timeout: Duration::from_secs(self.cfg.media_timeout_secs), ..SessionConfig::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the INVITE to reach the front (first table action).
    New,
    /// 200 sent with an offer (the INVITE had none): the answer comes in the ACK.
    AwaitingAnswer,
    /// The dialogue or a message runs (`job`).
    Talking,
    /// The machine puts the caller through.
    Bridging,
    /// A REFER asks the caller's side to call the destination itself (RFC 3515).
    Referring,
    /// Our BYE is out.
    Ending,
    Done,
}

/// What a finished job hands back.
pub(super) enum JobResult {
    Dialogue(Box<IvrResult>),
    Played(Box<Played>),
}

/// What comes after a message.
#[derive(Debug, Clone)]
enum After {
    Bye,
    Bridge(Vec<RouteStep>),
    /// REFER the caller to `refer_to`; `steps` are bridged if the transfer fails.
    Refer { refer_to: String, steps: Vec<RouteStep> },
}

/// How the call ended, for the record.
#[derive(Debug, Clone)]
enum Final {
    HungUpDuringSelection,
    Announcement,
    /// Put through (or tried): the machine's summary says how it went.
    Bridged,
    /// The caller's side took over the call to the destination (REFER accepted; `confirmed`:
    /// a NOTIFY reported the new call answered).
    Referred { confirmed: bool },
    Rejected(String),
}

/// A REFER in progress.
struct Refer {
    tx: Option<TxId>,
    refer_to: String,
    /// Bridged instead when the transfer fails.
    steps: Vec<RouteStep>,
    /// 2xx to the REFER seen.
    accepted: bool,
    /// No final response / no (final) NOTIFY by then → bridge.
    deadline: Instant,
    started_ms: i64,
    /// Status codes the NOTIFYs reported (sipfrag), in order.
    progress: Vec<u16>,
}

/// The IVR side of one call (see the module documentation).
pub(super) struct Front {
    ctx: Arc<IvrContext>,
    phase: Phase,
    socket: Option<MediaSocket>,
    negotiated: Option<Negotiated>,
    snapshot: Option<Arc<crate::routing::Snapshot>>,
    invite_txn: Option<ServerTxn>,
    invite_view: Option<InRequest>,
    dialog: Option<Dialog>,
    ok: Option<OutResponse>,
    retransmit: Option<(Instant, Duration)>,
    ack_deadline: Option<Instant>,
    acked: bool,
    signals: Option<mpsc::Sender<Signal>>,
    job: Option<JoinHandle<JobResult>>,
    after: After,
    caller_gone: bool,
    hurried: bool,
    answered_ms: Option<i64>,
    log: Option<DialogueLog>,
    outcome: Option<DialogueOutcome>,
    stats: Option<IvrStats>,
    messages: Vec<serde_json::Value>,
    chosen: Option<MunicipalityRef>,
    /// Ringing tone on the caller's socket while the destination rings.
    hold: Option<MediaSession>,
    /// RTP peers the machine connected before the relay runs.
    peers: [LegPeer; 2],
    b_sock: Option<MediaSocket>,
    summary: Option<CallSummary>,
    bye: Option<(TxId, Instant)>,
    final_: Option<Final>,
    delivery: Option<Delivery>,
    refer: Option<Refer>,
    /// The REFER's step in the record's `route_steps` (first, before any bridge attempt).
    refer_step: Option<serde_json::Value>,
    /// A plain bridged call whose route ended in a message: the front answers the caller and
    /// plays this (set until the message starts).
    handoff_prompt: Option<String>,
    /// This front took over a plain bridged call (its message comes after the route steps).
    took_over: bool,
    pub(super) clients: std::collections::HashSet<TxId>,
}

impl Front {
    pub(super) fn new(ctx: Arc<IvrContext>) -> Front {
        let none = LegPeer { remote: None, telephone_event_pt: None };
        Front {
            ctx,
            phase: Phase::New,
            socket: None,
            negotiated: None,
            snapshot: None,
            invite_txn: None,
            invite_view: None,
            dialog: None,
            ok: None,
            retransmit: None,
            ack_deadline: None,
            acked: false,
            signals: None,
            job: None,
            after: After::Bye,
            caller_gone: false,
            hurried: false,
            answered_ms: None,
            log: None,
            outcome: None,
            stats: None,
            messages: Vec::new(),
            chosen: None,
            hold: None,
            peers: [none, none],
            b_sock: None,
            summary: None,
            bye: None,
            final_: None,
            delivery: None,
            refer: None,
            refer_step: None,
            handoff_prompt: None,
            took_over: false,
            clients: Default::default(),
        }
    }

    pub(super) fn set_socket(&mut self, sock: MediaSocket) {
        self.socket = Some(sock);
    }

    pub(super) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Answering, prompting, listening or speaking a message: what `[ivr] max_calls` bounds.
    /// Not while the caller is being transferred or bridged (or the call is ending), so a
    /// caller talking to the municipality does not keep a new caller out of the IVR.
    pub(super) fn in_dialogue(&self) -> bool {
        matches!(self.phase, Phase::New | Phase::AwaitingAnswer | Phase::Talking)
    }

    /// Requests and ACKs on the caller's dialog go to the machine while it puts the call
    /// through, to the front otherwise.
    pub(super) fn takes_requests(&self, machine_running: bool) -> bool {
        !(self.phase == Phase::Bridging && machine_running)
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit.map(|(t, _)| t), self.ack_deadline, self.bye.map(|(_, t)| t), self.refer.as_ref().map(|r| r.deadline)]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Waits for the front's job (dialogue or message) to finish; pending when there is none.
pub(super) async fn job_done(front: &mut Option<Box<Front>>) -> JobResult {
    let Some(job) = front.as_mut().and_then(|f| f.job.as_mut()) else {
        return std::future::pending().await;
    };
    let r = job.await;
    if let Some(f) = front.as_mut() {
        f.job = None;
    }
    match r {
        Ok(r) => r,
        // The IVR task panicked (a bug): treat as a hang-up so the call still ends cleanly.
        Err(e) => {
            tracing::error!(error = %e, "IVR task failed");
            std::future::pending().await
        }
    }
}

impl CallTask {
    fn front(&mut self) -> &mut Front {
        self.front.as_mut().expect("IVR call")
    }

    /// A new request on the caller's side while the front owns the dialog.
    pub(super) async fn front_request(&mut self, id: ServerTxn, request: &Request, view: InRequest) {
        use veertien_b2bua::Method as M;
        let f = self.front();
        if f.phase == Phase::New && view.method == M::Invite {
            return self.front_invite(id, view).await;
        }
        if view.method == M::Cancel {
            // Our 200 went out at once, so the CANCEL finds no pending INVITE: 200, no effect
            // (RFC 3261 9.2); the caller's BYE follows.
            return self.respond_plain(id, 200, "OK", &[]).await;
        }
        let in_dialog = f.dialog.as_ref().is_some_and(|d| {
            view.call_id == d.call_id && view.to.tag.as_deref() == d.local.tag.as_deref()
        });
        if !in_dialog {
            return self.respond_plain(id, 481, "Call/Transaction Does Not Exist", &[]).await;
        }
        if !self.front().dialog.as_mut().expect("in dialog").accept_remote_cseq(view.cseq) {
            return self.respond_plain(id, 500, "CSeq Out of Order", &[]).await;
        }
        match view.method {
            M::Bye => {
                self.respond_plain(id, 200, "OK", &[]).await;
                self.caller_hung_up().await;
            }
            M::Info => {
                let ct = view.body.as_ref().map(|b| b.content_type.clone()).unwrap_or_default();
                let body = view.body.as_ref().map(|b| String::from_utf8_lossy(&b.data).into_owned()).unwrap_or_default();
                if view.body.is_none() {
                    // An empty INFO is a keep-alive probe.
                    return self.respond_plain(id, 200, "OK", &[]).await;
                }
                match veertien_media::dtmf::parse_sip_info(&ct, &body) {
                    Ok(d) => {
                        self.respond_plain(id, 200, "OK", &[]).await;
                        if let Some(s) = &self.front().signals
                            && s.try_send(Signal::Dtmf(d.as_char())).is_err()
                        {
                            tracing::debug!(call = %self.record_id, "IVR signal queue full; key dropped");
                        }
                    }
                    Err(veertien_media::dtmf::SipInfoError::ContentType(_)) => {
                        self.respond_plain(id, 415, "Unsupported Media Type", &[("Accept", "application/dtmf-relay, application/dtmf")])
                            .await
                    }
                    Err(e) => self.respond_plain(id, 400, &format!("Bad Request ({e})"), &[]).await,
                }
            }
            M::Options => self.respond_plain(id, 200, "OK", &[("Allow", ALLOW), ("Accept", "application/sdp")]).await,
            M::Invite | M::Update => {
                // A session refresh or a new offer while the IVR talks: the media stay where
                // they are (our SDP again); the caller's new address is not followed.
                let mut r = OutResponse::new(200, "OK");
                r.contact = Some(self.a_contact());
                r.headers.push(("Allow".into(), ALLOW.into()));
                if view.method == M::Invite {
                    r.body = self.front().ok.as_ref().and_then(|o| o.body.clone());
                }
                self.respond(id, &r).await;
            }
            M::Prack => self.respond_plain(id, 481, "Call/Transaction Does Not Exist", &[]).await,
            M::Other(ref m) if m == "NOTIFY" => self.front_notify(id, &view).await,
            _ => self.respond_plain(id, 501, "Not Implemented", &[("Allow", ALLOW)]).await,
        }
        let _ = request;
    }

    async fn respond_plain(&mut self, id: ServerTxn, status: u16, reason: &str, headers: &[(&str, &str)]) {
        let mut r = OutResponse::new(status, reason);
        if status >= 200 {
            r.to_tag = self.front().dialog.as_ref().and_then(|d| d.local.tag.clone()).or_else(|| Some(format!("{}a", self.token)));
        }
        r.headers = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.respond(id, &r).await;
    }

    /// The caller's INVITE: answer it with our SDP and start the IVR.
    async fn front_invite(&mut self, id: ServerTxn, view: InRequest) {
        let a_tag = format!("{}a", self.token);
        let contact = self.a_contact();
        let facing = self.anchor.a_facing;
        let local = LocalEndpoint { addr: facing.ip(), port: facing.port(), session_id: rand::random::<u32>() as u64, session_version: 1 };
        let policy = MediaPolicy::default();
        let offer = view.body.as_ref().filter(|b| b.is_sdp()).map(|b| String::from_utf8_lossy(&b.data).into_owned());
        let (negotiated, sdp_text) = match &offer {
            Some(o) => match sdp::answer(o, &policy, &local) {
                Ok((n, a)) => (Some(n), a),
                Err(e) => {
                    let status = e.sip_status();
                    let mut r = OutResponse::new(status, format!("Not Acceptable Here ({e})"));
                    r.to_tag = Some(a_tag);
                    self.respond(id, &r).await;
                    let f = self.front();
                    f.final_ = Some(Final::Rejected(format!("sdp: {e}")));
                    f.phase = Phase::Done;
                    f.invite_txn = Some(id);
                    return self.front_finish().await;
                }
            },
            None if view.body.is_some() => {
                let mut r = OutResponse::new(415, "Unsupported Media Type");
                r.to_tag = Some(a_tag);
                r.headers.push(("Accept".into(), "application/sdp".into()));
                self.respond(id, &r).await;
                let f = self.front();
                f.final_ = Some(Final::Rejected("body is not application/sdp".into()));
                f.phase = Phase::Done;
                return self.front_finish().await;
            }
            // Late offer: we offer, the caller answers in its ACK.
            None => (None, sdp::offer(&policy, &local)),
        };
        let mut ok = OutResponse::new(200, "OK");
        ok.to_tag = Some(a_tag.clone());
        ok.contact = Some(contact.clone());
        ok.record_route = view.record_route.clone();
        ok.headers.push(("Allow".into(), ALLOW.into()));
        ok.headers.push(("Accept".into(), "application/sdp, application/dtmf-relay, application/dtmf".into()));
        ok.body = Some(Body::sdp(sdp_text.into_bytes()));
        self.respond(id, &ok).await;
        let now = Instant::now();
        let answered = jiff::Timestamp::now().as_millisecond();
        let f = self.front();
        f.dialog = Some(Dialog::uas(&view, &a_tag, &contact));
        f.invite_txn = Some(id);
        f.invite_view = Some(view);
        f.ok = Some(ok);
        f.retransmit = Some((now + T1, T1));
        f.ack_deadline = Some(now + 64 * T1);
        f.answered_ms = Some(answered);
        match negotiated {
            Some(n) => {
                f.negotiated = Some(n);
                self.front_start().await;
            }
            None => f.phase = Phase::AwaitingAnswer,
        }
    }

    /// The ACK for our 200 (and, after a late offer, the caller's answer).
    pub(super) async fn front_ack(&mut self, request: &Request) {
        let Ok(view) = InRequest::from_sip(request) else { return };
        let f = self.front();
        let Some(inv) = f.invite_view.as_ref() else { return };
        if view.cseq != inv.cseq || view.call_id != inv.call_id || f.acked {
            return;
        }
        f.acked = true;
        f.retransmit = None;
        f.ack_deadline = None;
        if f.phase == Phase::AwaitingAnswer {
            let answer = view.body.as_ref().filter(|b| b.is_sdp()).map(|b| String::from_utf8_lossy(&b.data).into_owned());
            match answer.as_deref().map(|a| sdp::accept_answer(a, &MediaPolicy::default())) {
                Some(Ok(n)) => {
                    f.negotiated = Some(n);
                    self.front_start().await;
                }
                other => {
                    let why = match other {
                        Some(Err(e)) => format!("answer in ACK refused: {e}"),
                        _ => "no SDP answer in the ACK".to_owned(),
                    };
                    tracing::info!(call = %self.record_id, %why, "IVR call ended");
                    self.front().final_ = Some(Final::Rejected(why));
                    self.front_bye().await;
                }
            }
        }
    }

    /// Starts the dialogue (Ask) or the notice (Announce).
    async fn front_start(&mut self) {
        let decision = self.new.decision.clone();
        let started = jiff::Timestamp::from_millisecond(self.new.received_ms).unwrap_or_else(|_| jiff::Timestamp::now());
        let f = self.front.as_mut().expect("IVR call");
        let (Some(socket), Some(negotiated)) = (f.socket.take(), f.negotiated) else { return };
        let (tx, rx) = mpsc::channel(SIGNALS);
        f.signals = Some(tx);
        f.phase = Phase::Talking;
        if let Some(prompt) = f.handoff_prompt.take() {
            // The route of a bridged call ended in a message: play it, then BYE.
            let prompt = route_message(f.chosen.as_ref(), prompt);
            f.after = After::Bye;
            f.messages.push(serde_json::json!({ "kind": "announcement", "prompt": prompt.id() }));
            return self.spawn_message(vec![prompt], socket, negotiated, rx);
        }
        let ctx = f.ctx.clone();
        // The snapshot of this call's decision: settings saved in the portal apply from the
        // next call on.
        let snap = ctx.routing.snapshot();
        f.snapshot = Some(snap.clone());
        match &decision {
            Decision::Ask { .. } => {
                let setup = IvrSetup {
                    socket,
                    negotiated,
                    decision,
                    routing: snap,
                    config: DialogueConfig { speech: ctx.scorer.get().is_some(), no_input_ms: ctx.cfg.no_input_ms, ..DialogueConfig::default() },
                    prompts: ctx.prompts.clone(),
                    scorer: ctx.scorer(),
                    started,
                    limits: ctx.limits(),
                    history: match &self.new.decision {
                        Decision::Ask { area_code, .. } => ctx.choices.lookup(&self.new.caller, area_code),
                        _ => veertien_ivr::CallerHistory::default(),
                    },
                };
                f.job = Some(tokio::spawn(async move { JobResult::Dialogue(Box::new(veertien_ivr::run(setup, rx).await)) }));
            }
            _ => {
                let (prompt, kind, after) = match (announcement(&decision), &decision) {
                    (Some((p, k)), Decision::Announce { forward_to, .. }) => {
                        let after = match forward_to {
                            Some(to) => After::Bridge(vec![single_step("forward", to)]),
                            None => After::Bye,
                        };
                        (p, k, after)
                    }
                    // A plain bridged decision with a message first (calamity): speak it, then
                    // walk the route.
                    (_, Decision::Forward { route, .. }) => {
                        let planned = veertien_b2bua::plan_route(route, None);
                        let msg = planned.pre_announcement.unwrap_or_default();
                        let name = decision.municipality().map(|m| m.everyday_name.clone()).unwrap_or_default();
                        (Prompt::Calamity { name, message: Some(msg) }, AnnounceKind::Calamity, After::Bridge(planned.steps))
                    }
                    _ => (Prompt::NoChoice, AnnounceKind::NoChoice, After::Bye),
                };
                f.chosen = decision.municipality().cloned();
                f.after = after;
                f.messages.push(serde_json::json!({ "kind": kind, "prompt": prompt.id() }));
                self.spawn_message(vec![prompt], socket, negotiated, rx);
            }
        }
    }

    fn spawn_message(&mut self, prompts: Vec<Prompt>, socket: MediaSocket, negotiated: Negotiated, rx: mpsc::Receiver<Signal>) {
        let f = self.front.as_mut().expect("IVR call");
        let ctx = f.ctx.clone();
        let routing: Arc<dyn PlanView> = match &f.snapshot {
            Some(s) => s.clone(),
            None => ctx.routing.snapshot(),
        };
        let setup = PlaySetup {
            socket,
            negotiated,
            prompts,
            lang: Lang::Nl,
            library: ctx.prompts.clone(),
            routing,
            media: ctx.media(),
            margin: Duration::from_secs(3),
        };
        f.phase = Phase::Talking;
        f.job = Some(tokio::spawn(async move { JobResult::Played(Box::new(play(setup, rx).await)) }));
    }

    /// The dialogue or a message has ended.
    pub(super) async fn front_job_done(&mut self, r: JobResult) {
        let f = self.front();
        match r {
            JobResult::Dialogue(res) => {
                let IvrResult { outcome, log, socket, stats } = *res;
                f.socket = Some(socket);
                f.log = Some(log);
                f.stats = Some(stats);
                f.outcome = Some(outcome.clone());
                if f.caller_gone || f.hurried {
                    f.final_.get_or_insert(Final::HungUpDuringSelection);
                    return self.front_bye().await;
                }
                match outcome {
                    DialogueOutcome::CallerHungUp => {
                        // No BYE seen: the media timed out. End the dialog ourselves.
                        f.final_ = Some(Final::HungUpDuringSelection);
                        self.front_bye().await
                    }
                    DialogueOutcome::Announce { municipality, forward_to, .. } => {
                        f.chosen = municipality;
                        match forward_to {
                            Some(to) => self.front_bridge(vec![single_step("forward", &to)]).await,
                            None => {
                                f.final_ = Some(Final::Announcement);
                                self.front_bye().await
                            }
                        }
                    }
                    DialogueOutcome::Operator { destination } => {
                        self.front_bridge(vec![single_step("operator", &destination)]).await
                    }
                    DialogueOutcome::Deliver { municipality, decision } => {
                        f.chosen = Some(municipality.clone());
                        match *decision {
                            Decision::Forward { route, destination_configured, mode, destination, .. } => {
                                if !destination_configured {
                                    return self.front_unreachable("destination not configured").await;
                                }
                                let planned = veertien_b2bua::plan_route(&route, None);
                                // Redirect mode: the platform would have left the call with a 302;
                                // after a dialogue the call is answered, so REFER does the same.
                                let after = if mode == DeliveryMode::Redirect && self.refer_possible() {
                                    After::Refer { refer_to: super::contact_for(&self.layer, &destination), steps: planned.steps }
                                } else {
                                    After::Bridge(planned.steps)
                                };
                                match planned.pre_announcement {
                                    Some(msg) => {
                                        let name = municipality.everyday_name.clone();
                                        self.front().after = after;
                                        self.front_say(Prompt::Calamity { name, message: Some(msg) }, "calamity").await
                                    }
                                    None => self.front_deliver(after).await,
                                }
                            }
                            _ => self.front_unreachable("dialogue delivered a decision that is not a forward").await,
                        }
                    }
                }
            }
            JobResult::Played(p) => {
                let p = *p;
                f.socket = Some(p.socket);
                if let Some(m) = f.messages.last_mut() {
                    m["complete"] = serde_json::Value::Bool(p.complete);
                    m["text"] = serde_json::Value::String(p.texts.join(" "));
                    m["duration_ms"] = serde_json::json!(p.duration_ms);
                }
                if p.hung_up || f.caller_gone || f.hurried {
                    f.final_.get_or_insert(if f.log.is_some() { Final::HungUpDuringSelection } else { Final::Announcement });
                    return self.front_bye().await;
                }
                match std::mem::replace(&mut f.after, After::Bye) {
                    After::Bye => {
                        f.final_.get_or_insert(Final::Announcement);
                        self.front_bye().await
                    }
                    after => self.front_deliver(after).await,
                }
            }
        }
    }

    /// Speaks one more message on the caller's socket; `after` says what follows.
    async fn front_say(&mut self, prompt: Prompt, kind: &str) {
        let f = self.front();
        let (Some(socket), Some(neg)) = (f.socket.take(), f.negotiated) else {
            return self.front_bye().await;
        };
        f.messages.push(serde_json::json!({ "kind": kind, "prompt": prompt.id() }));
        let (tx, rx) = mpsc::channel(SIGNALS);
        f.signals = Some(tx);
        self.spawn_message(vec![prompt], socket, neg, rx);
    }

    /// Every route step failed (or none was usable): tell the caller, then BYE.
    async fn front_unreachable(&mut self, why: &str) {
        tracing::info!(call = %self.record_id, why, "IVR call not put through");
        let name = self.front().chosen.as_ref().map(|m| m.everyday_name.clone()).unwrap_or_default();
        let f = self.front();
        f.after = After::Bye;
        if f.final_.is_none() && f.summary.is_none() {
            f.final_ = Some(Final::Rejected(why.to_owned()));
        }
        self.front_say(Prompt::Unreachable { name }, "unreachable").await
    }

    /// The caller's source address over UDP: where a request on its leg goes when its dialog
    /// names no usable next hop.
    fn caller_hop(&self, branch: String) -> (ViaSpec, Peer) {
        let via = ViaSpec {
            transport: Transport::Udp,
            host: super::host_text(self.layer.advertised.ip()),
            port: Some(self.layer.advertised.port()),
            branch,
            alias: false,
        };
        (via, Peer { addr: self.new.source, transport: Transport::Udp })
    }

    /// The ringing tone on the caller's socket while a destination rings (bridge or REFER).
    async fn start_ringing_tone(&mut self) {
        let f = self.front();
        let Some(neg) = f.negotiated else { return };
        if let Some(sock) = f.socket.take() {
            let (hold, _events) = MediaSession::start(sock, neg, SessionConfig { media_timeout: Duration::from_secs(3600), ..f.ctx.media() });
            let tone = ringback_tone();
            for i in 0..3 {
                let _ = hold.play(MediaPrompt { id: i, audio: PromptAudio::Pcm(tone.clone()), barge_in: false }).await;
            }
            f.hold = Some(hold);
        }
    }

    /// Stops the ringing tone; the socket is the front's again.
    async fn stop_ringing_tone(&mut self) {
        let f = self.front();
        if let Some(h) = f.hold.take() {
            f.socket = Some(h.finish().await.0);
        }
    }

    /// REFER is used when configured and the caller's side does not say it cannot take one
    /// (an Allow header in its INVITE without REFER).
    fn refer_possible(&self) -> bool {
        let Some(f) = self.front.as_ref() else { return false };
        if f.ctx.cfg.transfer != Transfer::Refer {
            return false;
        }
        let allow = f.invite_view.as_ref().and_then(|v| {
            v.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Allow")).map(|(_, v)| v.to_ascii_uppercase())
        });
        match allow {
            Some(a) if !a.split(',').any(|m| m.trim() == "REFER") => {
                tracing::info!(call = %self.record_id, allow = %a, "the caller does not allow REFER: bridging");
                false
            }
            _ => true,
        }
    }

    async fn front_deliver(&mut self, after: After) {
        match after {
            After::Bye => self.front_bye().await,
            After::Bridge(steps) => self.front_bridge(steps).await,
            After::Refer { refer_to, steps } => self.front_refer(refer_to, steps).await,
        }
    }

    /// RFC 3515: asks the caller's side to call `refer_to` itself. A 2xx NOTIFY ends our part
    /// (BYE, outcome `redirected`); a refusal, a failing NOTIFY or silence bridges `steps`.
    async fn front_refer(&mut self, refer_to: String, steps: Vec<RouteStep>) {
        let fourteen = match &self.new.decision {
            Decision::Ask { fourteen, .. } | Decision::Forward { fourteen, .. } | Decision::Announce { fourteen, .. } => fourteen.clone(),
            Decision::Reject { .. } => String::new(),
        };
        let advertised = self.layer.advertised;
        let f = self.front();
        f.signals = None;
        if f.caller_gone || f.hurried || f.dialog.is_none() {
            return self.front_bye().await;
        }
        let dialog = f.dialog.as_mut().expect("checked");
        let mut req = dialog.request(BMethod::Other("REFER".into()));
        // REFER is a target refresh request: it carries our Contact (RFC 3515 2.4.1).
        req.contact = Some(dialog.local_contact.clone());
        req.headers.push(("Refer-To".into(), format!("<{refer_to}>")));
        // The destination sees that the call comes from the 14+ number.
        req.headers.push(("Referred-By".into(), format!("<sip:{fourteen}@{advertised}>")));
        req.headers.push(("Allow".into(), ALLOW.into()));
        let now = Instant::now();
        f.refer = Some(Refer {
            tx: None,
            refer_to: refer_to.clone(),
            steps,
            accepted: false,
            deadline: now + REFER_WAIT,
            started_ms: jiff::Timestamp::now().as_millisecond(),
            progress: Vec::new(),
        });
        f.phase = Phase::Referring;
        let branch = format!("z9hG4bK{}ref{:08x}", self.token, rand::random::<u32>());
        let (via, hop) = self.route_request(Leg::A, &req, branch).unwrap_or_else(|| self.caller_hop(branch_fallback(&self.token)));
        let sent = req
            .to_sip(&via)
            .map_err(|e| e.to_string())
            .and_then(|wire| self.table.send_request(wire, hop, now).map_err(|e| e.to_string()));
        match sent {
            Ok(tx) => {
                self.layer.metrics.refer_sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(call = %self.record_id, %refer_to, "REFER sent to the caller");
                let f = self.front();
                f.clients.insert(tx);
                if let Some(r) = f.refer.as_mut() {
                    r.tx = Some(tx);
                }
                self.start_ringing_tone().await;
            }
            Err(e) => self.front_refer_failed("not_sent", &e).await,
        }
    }

    /// A response to a request the front sent (BYE or REFER).
    pub(super) async fn front_client_response(&mut self, tx: TxId, status: u16) {
        let is_refer = self.front().refer.as_ref().is_some_and(|r| r.tx == Some(tx));
        if !is_refer {
            if status >= 200 {
                self.front_client_done(tx).await;
            }
            return;
        }
        if status < 200 {
            return;
        }
        self.front().clients.remove(&tx);
        if status >= 300 {
            return self.front_refer_failed("refused", &format!("{status} to the REFER")).await;
        }
        let f = self.front();
        if let Some(r) = f.refer.as_mut() {
            r.accepted = true;
            // The NOTIFYs report the new call; none within 64*T1 → bridge.
            if r.progress.is_empty() {
                r.deadline = Instant::now() + REFER_WAIT;
            }
        }
    }

    /// A NOTIFY on the caller's dialog: the progress of the call our REFER asked for
    /// (`message/sipfrag`, RFC 3515 2.4.5).
    async fn front_notify(&mut self, id: ServerTxn, view: &InRequest) {
        let header = |name: &str, compact: &str| {
            view.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
                .map(|(_, v)| v.trim().to_ascii_lowercase())
        };
        let event_is_refer = header("Event", "o").is_some_and(|e| e.split(';').next().is_some_and(|t| t.trim() == "refer"));
        if !event_is_refer {
            return self.respond_plain(id, 489, "Bad Event", &[("Allow-Events", "refer")]).await;
        }
        let status = view
            .body
            .as_ref()
            .filter(|b| b.content_type.to_ascii_lowercase().starts_with("message/sipfrag"))
            .and_then(|b| sipfrag_status(&b.data));
        self.respond_plain(id, 200, "OK", &[]).await;
        let Some(status) = status else {
            tracing::info!(call = %self.record_id, "NOTIFY without a readable sipfrag status; ignored");
            return;
        };
        let ring_wait = self.layer.call_cfg.setup_timeout;
        let f = self.front();
        let Some(r) = f.refer.as_mut() else { return };
        r.progress.push(status);
        match status {
            100..=199 => {
                // The destination rings: wait as long as a bridged call would.
                r.deadline = Instant::now() + ring_wait;
            }
            200..=299 => self.front_refer_succeeded().await,
            _ => self.front_refer_failed("failed", &format!("NOTIFY sipfrag {status}")).await,
        }
    }

    /// The caller's side reached the destination: our part is over.
    async fn front_refer_succeeded(&mut self) {
        self.stop_ringing_tone().await;
        let f = self.front();
        let Some(r) = f.refer.take() else { return };
        f.refer_step = Some(refer_step(&r, "redirected", None));
        f.final_ = Some(Final::Referred { confirmed: true });
        f.delivery = Some(Delivery::Redirect);
        self.layer.metrics.refer_succeeded.fetch_add(1, Ordering::Relaxed);
        self.front_bye().await
    }

    /// The REFER was refused, failed or timed out: bridge the caller instead.
    async fn front_refer_failed(&mut self, result: &str, detail: &str) {
        tracing::info!(call = %self.record_id, result, detail, "REFER did not transfer the caller: bridging");
        self.stop_ringing_tone().await;
        let f = self.front();
        let Some(r) = f.refer.take() else { return };
        if let Some(tx) = r.tx {
            f.clients.remove(&tx);
        }
        f.refer_step = Some(refer_step(&r, result, Some(detail)));
        self.layer.metrics.refer_fell_back.fetch_add(1, Ordering::Relaxed);
        let f = self.front();
        if f.caller_gone || f.hurried {
            return self.front_bye().await;
        }
        f.phase = Phase::Talking;
        self.front_bridge(r.steps).await
    }

    /// Hands the caller to the B2BUA machine with these route steps.
    async fn front_bridge(&mut self, steps: Vec<RouteStep>) {
        let f = self.front();
        f.signals = None;
        let (Some(neg), Some(view)) = (f.negotiated, f.invite_view.clone()) else {
            return self.front_bye().await;
        };
        let Some(remote) = neg.remote else {
            return self.front_unreachable("the caller gave no RTP address").await;
        };
        // Without an outbound trunk only IP-literal SIP destinations can be reached.
        let usable: Vec<RouteStep> = steps
            .into_iter()
            .filter(|s| match &s.target {
                StepTarget::Bridge { destination } => self.layer.outbound.is_some() || super::ip_hop(destination).is_some(),
                _ => true,
            })
            .collect();
        if !usable.iter().any(|s| matches!(s.target, StepTarget::Bridge { .. })) {
            return self.front_unreachable("no destination reachable (no outbound trunk)").await;
        }
        let b_sock = match self.layer.ports.bind() {
            Ok(s) => s,
            Err(e) => return self.front_unreachable(&format!("no RTP port for the bridge: {e}")).await,
        };
        self.anchor.b_facing = SocketAddr::new(self.layer.advertised.ip(), b_sock.port());
        let f = self.front();
        f.b_sock = Some(b_sock);
        f.phase = Phase::Bridging;
        f.delivery = Some(Delivery::Bridge);
        // While the destination rings the caller hears the ringing tone on the same socket.
        self.start_ringing_tone().await;
        let f = self.front();
        // The machine sees the caller's INVITE with the media restricted to the codec the IVR
        // negotiated, so the destination is offered only what the caller already uses.
        let policy = MediaPolicy {
            codecs: vec![neg.codec],
            telephone_event: neg.telephone_event_pt.is_some(),
            honour_offer_order: true,
            telephone_event_pt: neg.telephone_event_pt.unwrap_or(101),
        };
        let caller_media = sdp::offer(&policy, &LocalEndpoint { addr: remote.ip(), port: remote.port(), session_id: 1, session_version: 1 });
        let mut invite = view;
        invite.body = Some(Body::sdp(caller_media.into_bytes()));
        // In-dialog requests the caller sent during the dialogue raised its CSeq.
        invite.cseq = f.dialog.as_ref().and_then(|d| d.remote_cseq).unwrap_or(invite.cseq);
        let health: &dyn DestinationHealth = match &self.layer.health {
            Some(h) => h,
            None => &AllAlive,
        };
        let call =
            Call::new(self.call_cfg(), &self.token, self.anchor, usable, PRE_ANSWERED, invite, jiff::Timestamp::now(), health, &self.b_legs());
        self.call = Some(call);
    }

    /// A response the machine sends to the caller's (already answered) INVITE.
    pub(super) async fn front_machine_response(&mut self, response: OutResponse) {
        let status = response.status;
        if status < 200 {
            return;
        }
        if status < 300 {
            // The destination answered: ringing tone off, relay on the IVR's socket.
            self.layer.metrics.ivr_put_through.fetch_add(1, Ordering::Relaxed);
            let f = self.front();
            let sock = match f.hold.take() {
                Some(h) => Some(h.finish().await.0),
                None => f.socket.take(),
            };
            let f = self.front();
            if let (Some(a), Some(b)) = (sock, f.b_sock.take()) {
                let (relay, events) = RtpRelay::start(a, f.peers[0], b, f.peers[1], self.layer.relay_cfg.clone());
                self.relay = Some(relay);
                self.relay_events = Some(events);
            }
            let a_tag = format!("{}a", self.token);
            let f = self.front();
            let Some(inv) = f.invite_view.as_ref() else { return };
            let cseq = f.dialog.as_ref().and_then(|d| d.remote_cseq).unwrap_or(inv.cseq);
            let mut to = inv.to.clone();
            to.tag = Some(a_tag);
            let ack = InRequest {
                method: BMethod::Ack,
                request_uri: inv.request_uri.clone(),
                from: inv.from.clone(),
                to,
                call_id: inv.call_id.clone(),
                cseq,
                contact: None,
                record_route: Vec::new(),
                max_forwards: Some(70),
                body: None,
                headers: Vec::new(),
            };
            self.events.push_back(Event::Ack { request: ack });
            return;
        }
        // Every step failed, or the caller hung up while it rang (the machine took its BYE);
        // the machine has closed its side and its summary says which.
        let caller_left = self
            .call
            .as_ref()
            .is_some_and(|c| c.summary().outcome == veertien_b2bua::Outcome::CallerHungUpWhileRinging);
        let f = self.front();
        f.final_ = Some(Final::Bridged);
        if let Some(h) = f.hold.take() {
            f.socket = Some(h.finish().await.0);
        }
        let f = self.front();
        f.b_sock = None;
        if caller_left {
            // `front_machine_finished` ends the call.
            f.caller_gone = true;
            return;
        }
        if f.hurried {
            return self.front_bye().await;
        }
        f.phase = Phase::Talking;
        self.front_unreachable(&format!("route ended with {status}")).await
    }

    /// Before a plain bridged call's route hands off to a message: an IVR front that will
    /// answer the caller and play it. False when there is no IVR, it is at its bound
    /// (`[ivr] max_calls`) or no RTP port is free; the caller then gets a final status.
    pub(super) async fn prepare_announcement(&mut self) -> bool {
        let Some(ctx) = self.layer.ivr.clone() else { return false };
        let layer = &self.layer;
        if layer.ivr_live.fetch_add(1, Ordering::AcqRel) >= ctx.cfg.max_calls {
            layer.ivr_live.fetch_sub(1, Ordering::AcqRel);
            layer.metrics.ivr_refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // The caller was never connected to the destination: the relay's ports go back to the
        // pool before the message takes one.
        if let Some(relay) = self.relay.take() {
            let stats = relay.stop().await;
            self.count_rtp(&stats);
        }
        self.relay_events = None;
        let sock = match self.layer.ports.bind() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call = %self.record_id, error = %e, "no RTP port for the route's message");
                self.layer.ivr_live.fetch_sub(1, Ordering::AcqRel);
                self.layer.metrics.ivr_refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        self.layer.metrics.ivr_started.fetch_add(1, Ordering::Relaxed);
        self.anchor.a_facing = SocketAddr::new(self.layer.advertised.ip(), sock.port());
        let mut front = Front::new(ctx);
        front.set_socket(sock);
        front.took_over = true;
        front.chosen = self.new.decision.municipality().cloned();
        front.delivery = Some(Delivery::Bridge);
        front.final_ = Some(Final::Announcement);
        self.front = Some(Box::new(front));
        self.holds_ivr_slot = true;
        true
    }

    /// An announcement step of the route: speak it, then end the call. `txn` is the caller's
    /// INVITE, still unanswered when the front took over a plain bridged call.
    pub(super) async fn front_handoff(&mut self, txn: ServerTxn, prompt: String) {
        if self.front().phase == Phase::New {
            // `txn` is the caller's INVITE: its server transaction's entry holds the request.
            let view = match self.servers.get(&txn).map(|e| InRequest::from_sip(&e.request)) {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("no server transaction".to_owned()),
            };
            let view = match view {
                Ok(v) => v,
                Err(e) => {
                    // Parsed when the call started; cannot fail now, but never leave it unanswered.
                    tracing::error!(call = %self.record_id, error = %e, "caller's INVITE unreadable at hand-off");
                    let mut r = OutResponse::new(480, "Temporarily Unavailable");
                    r.to_tag = Some(format!("{}a", self.token));
                    self.respond(txn, &r).await;
                    self.front().phase = Phase::Done;
                    return self.front_finish().await;
                }
            };
            self.front().handoff_prompt = Some(prompt);
            return self.front_invite(txn, view).await;
        }
        let f = self.front();
        if let Some(h) = f.hold.take() {
            f.socket = Some(h.finish().await.0);
        }
        let f = self.front();
        f.b_sock = None;
        f.after = After::Bye;
        f.final_ = Some(Final::Announcement);
        let prompt = route_message(f.chosen.as_ref(), prompt);
        f.phase = Phase::Talking;
        self.front_say(prompt, "announcement").await
    }

    /// The machine connects a leg's media before the relay runs.
    pub(super) fn front_media(&mut self, leg: Leg, peer: LegPeer) {
        let i = match leg {
            Leg::A => 0,
            Leg::B => 1,
        };
        self.front().peers[i] = peer;
    }

    /// The machine's record is complete.
    pub(super) async fn front_machine_finished(&mut self, summary: CallSummary) {
        let f = self.front();
        f.final_.get_or_insert(Final::Bridged);
        let answered = summary.answered_at.is_some();
        f.summary = Some(summary);
        if answered || f.caller_gone {
            // The machine ended the caller's dialog itself (BYE either way).
            f.phase = Phase::Done;
            self.front_finish().await;
        }
    }

    /// The caller hung up (BYE) while the front owns the dialog.
    async fn caller_hung_up(&mut self) {
        let f = self.front();
        f.caller_gone = true;
        f.retransmit = None;
        f.ack_deadline = None;
        if let Some(r) = f.refer.take() {
            // Many transferees end the old call as soon as they took the new one, before
            // (or instead of) the final NOTIFY: once the REFER was accepted it is theirs.
            let confirmed = r.progress.iter().any(|s| (200..300).contains(s));
            let accepted = r.accepted || !r.progress.is_empty();
            f.refer_step = Some(refer_step(&r, if accepted { "redirected" } else { "caller_hung_up" }, None));
            if accepted {
                f.final_ = Some(Final::Referred { confirmed });
                f.delivery = Some(Delivery::Redirect);
            } else {
                f.final_ = Some(Final::HungUpDuringSelection);
            }
            f.phase = Phase::Done;
            return self.front_finish().await;
        }
        match &f.signals {
            Some(s) => {
                let _ = s.try_send(Signal::HangUp);
            }
            None if f.job.is_none() => {
                f.final_.get_or_insert(Final::HungUpDuringSelection);
                f.phase = Phase::Done;
                self.front_finish().await;
            }
            None => {}
        }
    }

    /// Shutdown grace is over: end the dialogue now.
    pub(super) async fn front_hurry(&mut self) {
        let f = self.front();
        f.hurried = true;
        if let Some(s) = &f.signals {
            let _ = s.try_send(Signal::HangUp);
        }
        if f.phase == Phase::Referring && f.refer.is_some() {
            // No time left to wait for the transfer: end our side of the call.
            self.stop_ringing_tone().await;
            let f = self.front();
            if let Some(r) = f.refer.take() {
                f.refer_step = Some(refer_step(&r, "shutdown", None));
                f.final_ = Some(if r.accepted { Final::Referred { confirmed: false } } else { Final::Rejected("shutdown during transfer".into()) });
            }
            self.front_bye().await;
        }
    }

    /// Sends BYE to the caller (unless it already hung up) and ends once it is answered.
    async fn front_bye(&mut self) {
        let f = self.front();
        if let Some(h) = f.hold.take() {
            f.socket = Some(h.finish().await.0);
        }
        let f = self.front();
        f.signals = None;
        f.retransmit = None;
        f.ack_deadline = None;
        if f.caller_gone || f.dialog.is_none() {
            f.phase = Phase::Done;
            return self.front_finish().await;
        }
        let req = f.dialog.as_mut().expect("checked").request(BMethod::Bye);
        f.phase = Phase::Ending;
        let branch = format!("z9hG4bK{}bye{:08x}", self.token, rand::random::<u32>());
        let (via, hop) = self.route_request(Leg::A, &req, branch).unwrap_or_else(|| self.caller_hop(branch_fallback(&self.token)));
        match req.to_sip(&via) {
            Ok(wire) => match self.table.send_request(wire, hop, Instant::now()) {
                Ok(tx) => {
                    let f = self.front();
                    f.clients.insert(tx);
                    f.bye = Some((tx, Instant::now() + BYE_WAIT));
                }
                Err(e) => {
                    tracing::warn!(call = %self.record_id, error = %e, "BYE to the caller not sent");
                    self.front().phase = Phase::Done;
                    self.front_finish().await;
                }
            },
            Err(e) => {
                tracing::error!(call = %self.record_id, error = %e, "cannot build BYE");
                self.front().phase = Phase::Done;
                self.front_finish().await;
            }
        }
    }

    /// A final response (or failure) for our BYE.
    pub(super) async fn front_client_done(&mut self, tx: TxId) {
        if self.front().refer.as_ref().is_some_and(|r| r.tx == Some(tx)) {
            return self.front_refer_failed("timeout", "no final response to the REFER").await;
        }
        let f = self.front();
        f.clients.remove(&tx);
        if f.bye.is_some_and(|(b, _)| b == tx) {
            f.bye = None;
            f.phase = Phase::Done;
            self.front_finish().await;
        }
    }

    /// Front timers: 2xx retransmission, ACK wait, BYE wait.
    pub(super) async fn front_timers(&mut self, now: Instant) {
        let f = self.front();
        if let Some((at, interval)) = f.retransmit
            && at <= now
        {
            let next = (interval * 2).min(T2);
            f.retransmit = Some((now + next, next));
            if let (Some(txn), Some(ok)) = (f.invite_txn, f.ok.clone()) {
                self.respond(txn, &ok).await;
            }
        }
        if self.front().ack_deadline.is_some_and(|t| t <= now) {
            tracing::info!(call = %self.record_id, "no ACK for the IVR's 200 within 64*T1: ending the call");
            let f = self.front();
            f.ack_deadline = None;
            f.retransmit = None;
            if f.final_.is_none() && f.job.is_none() {
                f.final_ = Some(Final::Rejected("no ACK".into()));
            }
            // Stop the dialogue (it ends as a hang-up) and BYE (RFC 3261 13.3.1.4).
            match &f.signals {
                Some(s) => {
                    f.hurried = true;
                    let _ = s.try_send(Signal::HangUp);
                }
                None => self.front_bye().await,
            }
        }
        if self.front().refer.as_ref().is_some_and(|r| r.deadline <= now) {
            let accepted = self.front().refer.as_ref().is_some_and(|r| r.accepted);
            let detail = if accepted { "no final NOTIFY in time" } else { "no answer to the REFER in time" };
            self.front_refer_failed("timeout", detail).await;
        }
        let f = self.front();
        if f.bye.is_some_and(|(_, t)| t <= now) {
            f.bye = None;
            f.phase = Phase::Done;
            self.front_finish().await;
        }
    }

    /// The call is over for the caller: write the record once.
    pub(super) async fn front_finish(&mut self) {
        let f = self.front();
        if let Some(h) = f.hold.take() {
            let _ = h.finish().await;
        }
        let f = self.front();
        f.phase = Phase::Done;
        f.socket = None;
        f.b_sock = None;
        if self.settled {
            return;
        }
        self.settled = true;
        // Record first: shutdown closes the record writer once no call is live.
        self.write_ivr_record();
        self.layer.live.fetch_sub(1, Ordering::AcqRel);
    }

    fn write_ivr_record(&self) {
        let Some(w) = &self.layer.records else { return };
        let Some(f) = self.front.as_ref() else { return };
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
        if let Some(m) = &f.chosen {
            rec.municipality_cbs = Some(m.cbs.clone());
        }
        let ms = |t: jiff::Timestamp| t.as_millisecond();
        let now = jiff::Timestamp::now().as_millisecond();
        rec.ended_ms = Some(now);
        rec.sip_status = Some(if f.answered_ms.is_some() { 200 } else { 488 });
        // Post-dial delay as the caller's network sees it: INVITE in → answered by the IVR.
        rec.post_dial_delay_ms = Some(f.answered_ms.unwrap_or(now) - n.received_ms);
        rec.delivery = f.delivery;
        let outcome = match f.final_.clone().unwrap_or(Final::HungUpDuringSelection) {
            Final::HungUpDuringSelection => Outcome::CallerHungUpDuringSelection,
            Final::Announcement => {
                // After route steps (a message at the end of the route): what was tried.
                if let Some(s) = &f.summary {
                    rec.ringing_ms = s.ringing_at.map(ms);
                    rec.destination = s.attempts.last().map(|a| a.destination.clone());
                }
                Outcome::Announcement
            }
            Final::Rejected(why) => {
                rec.reject_reason = Some(why);
                Outcome::Rejected
            }
            Final::Referred { .. } => {
                rec.destination = f.refer_step.as_ref().and_then(|s| s["destination"].as_str().map(str::to_owned));
                Outcome::Redirected
            }
            Final::Bridged => match &f.summary {
                Some(s) => {
                    rec.ringing_ms = s.ringing_at.map(ms);
                    rec.answered_ms = s.answered_at.map(ms);
                    rec.destination = s.destination.clone().or_else(|| s.attempts.last().map(|a| a.destination.clone()));
                    if let veertien_b2bua::Outcome::Rejected { reason, .. } = &s.outcome {
                        rec.reject_reason = Some(reason.clone());
                    }
                    super::store_outcome(&s.outcome)
                }
                None => Outcome::Rejected,
            },
        };
        rec.outcome = Some(outcome);
        if let Some(s) = &f.summary {
            rec.route_steps = super::attempts_json(s).into();
        }
        if let Some(step) = &f.refer_step {
            let mut steps = rec.route_steps.value().as_array().cloned().unwrap_or_default();
            let mut step = step.clone();
            if let Some(Final::Referred { confirmed }) = &f.final_ {
                // false: the caller left after accepting, before a NOTIFY said "answered".
                step["confirmed"] = serde_json::Value::Bool(*confirmed);
            }
            steps.insert(0, step);
            rec.route_steps = serde_json::Value::Array(steps).into();
        }
        rec.ivr = f.log.as_ref().map(|log| ivr_json(log, f.outcome.as_ref(), f.stats.as_ref(), &f.messages));
        if rec.ivr.is_none() && !f.messages.is_empty() {
            // A notice without a dialogue: not an IVR choice, but the record says what was said.
            let mut steps = rec.route_steps.value().as_array().cloned().unwrap_or_default();
            let step = serde_json::json!({ "label": "announcement", "result": "played", "messages": f.messages });
            // A message before the route comes first; one the route ended in comes last.
            let at = if f.took_over { steps.len() } else { 0 };
            steps.insert(at, step);
            rec.route_steps = serde_json::Value::Array(steps).into();
        }
        f.ctx.choices.finished(&rec, f.outcome.as_ref());
        if w.try_submit(rec).is_err() {
            tracing::warn!(call = %self.record_id, "call record queue full; record counted as dropped");
        }
    }
}

/// The REFER's entry in `route_steps`.
fn refer_step(r: &Refer, result: &str, detail: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "step": 0,
        "label": "refer",
        "destination": r.refer_to,
        "started_ms": r.started_ms,
        "ended_ms": jiff::Timestamp::now().as_millisecond(),
        "result": result,
        "detail": detail,
        "notify": r.progress,
    })
}

/// The status code of a `message/sipfrag` status line (`SIP/2.0 200 OK`).
fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.trim_start().lines().next()?;
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let code = rest.get(..3)?.parse::<u16>().ok()?;
    (100..700).contains(&code).then_some(code)
}

fn branch_fallback(token: &str) -> String {
    format!("z9hG4bK{token}f{:08x}", rand::random::<u32>())
}

/// The prompt of a route's message step: its own text, or the standard notice that the
/// municipality cannot be reached now when the step has none (`[trunk] route_end`).
fn route_message(chosen: Option<&MunicipalityRef>, text: String) -> Prompt {
    let name = chosen.map(|m| m.everyday_name.clone()).unwrap_or_default();
    if text.trim().is_empty() { Prompt::Unreachable { name } } else { Prompt::Calamity { name, message: Some(text) } }
}

fn single_step(label: &str, destination: &str) -> RouteStep {
    RouteStep { label: label.to_owned(), target: StepTarget::Bridge { destination: destination.to_owned() }, no_answer: None }
}

/// The call record's `ivr` object: the dialogue log, its outcome, the driver's counters, the
/// messages played after it, and the two keys the reports read
/// ([`veertien_store::IVR_KEY_RECOGNISED_FIRST_TIME`], [`veertien_store::IVR_KEY_CORRECTIONS`]).
pub(crate) fn ivr_json(
    log: &DialogueLog,
    outcome: Option<&DialogueOutcome>,
    stats: Option<&IvrStats>,
    messages: &[serde_json::Value],
) -> serde_json::Value {
    let mut v = serde_json::to_value(log).unwrap_or_else(|_| serde_json::json!({}));
    // The dialogue fills these itself; computed here only if a log lacks them.
    if v.get(veertien_store::IVR_KEY_CORRECTIONS).is_none() {
        let corrections = log.entries.iter().filter(|e| matches!(e.what, LogWhat::Answer { yes: Some(false), .. })).count();
        v[veertien_store::IVR_KEY_CORRECTIONS] = serde_json::json!(corrections);
    }
    if v.get(veertien_store::IVR_KEY_RECOGNISED_FIRST_TIME).is_none()
        && let Some(first) = recognised_first_time(log)
    {
        v[veertien_store::IVR_KEY_RECOGNISED_FIRST_TIME] = serde_json::Value::Bool(first);
    }
    v["digits"] = serde_json::json!(log.entries.iter().filter(|e| matches!(e.what, LogWhat::Digit { .. })).count());
    if let Some(o) = outcome {
        v["outcome"] = serde_json::to_value(o).unwrap_or_default();
    }
    if let Some(s) = stats {
        v["stats"] = serde_json::to_value(s).unwrap_or_default();
    }
    if !messages.is_empty() {
        v["messages"] = serde_json::Value::Array(messages.to_vec());
    }
    v
}

/// Whether the caller's first utterance was recognised as a municipality and led to it
/// without a miss or a correction; `None` when the caller never spoke a name (keys only,
/// silence, keypad-only IVR).
fn recognised_first_time(log: &DialogueLog) -> Option<bool> {
    let spoke = |e: &veertien_ivr::LogEntry| match &e.what {
        LogWhat::Heard { .. } => true,
        LogWhat::Miss { reason, .. } => matches!(*reason, "not_understood" | "no_match" | "low_confidence"),
        LogWhat::RecognitionFailed { .. } => true,
        _ => false,
    };
    let first = log.entries.iter().position(spoke)?;
    let LogWhat::Heard { municipality: Some(_), .. } = &log.entries[first].what else {
        return Some(false);
    };
    let later_trouble = log.entries[first + 1..].iter().any(|e| {
        matches!(e.what, LogWhat::Miss { .. } | LogWhat::Answer { yes: Some(false), .. } | LogWhat::RecognitionFailed { .. })
    });
    Some(!later_trouble)
}
