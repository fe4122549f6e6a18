//! `MediaSession`: the IVR's media leg. A thin tokio driver around the pure pieces:
//! paced prompt playback, RTP receive from the negotiated peer only, jitter buffer →
//! G.711 decode → VAD + in-band DTMF, RFC 4733 and SIP INFO DTMF, barge-in, media timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::dtmf::{Digit, DtmfSource, EventDeduplicator, TelephoneEvent};
use crate::inband::{InbandConfig, InbandDetector};
use crate::jitter::{Concealer, JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::pacer::{Pacer, Prompt};
use crate::ports::MediaSocket;
use crate::rtp::{Datagram, classify};
use crate::sdp::Negotiated;
use crate::vad::{Vad, VadConfig, VadEvent};

const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `MediaTimeout` is reported after this long without RTP from the peer.
    pub media_timeout: Duration,
    pub jitter: JitterConfig,
    pub vad: VadConfig,
    pub inband: InbandConfig,
    /// Look for DTMF tones in the audio (switched off automatically once the peer sends RFC 4733).
    pub inband_dtmf: bool,
    /// Send silence packets while no prompt plays.
    pub send_silence: bool,
    /// Capacity of the event channel; events beyond it are dropped and counted.
    pub event_capacity: usize,
    /// Report the audio of an utterance while it is spoken ([`MediaEvent::SpeechAudio`]), so
    /// recognition can run before the VAD declares the end of speech. Off by default: ~50
    /// events a second during speech are wasted on a consumer that only wants utterances.
    pub stream_speech: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            media_timeout: Duration::from_secs(20),
            jitter: JitterConfig::default(),
            vad: VadConfig::default(),
            inband: InbandConfig::default(),
            inband_dtmf: true,
            send_silence: true,
            event_capacity: 64,
            stream_speech: false,
        }
    }
}

/// What the IVR hears from the media leg.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    Dtmf { digit: Digit, source: DtmfSource },
    SpeechStarted { at: Instant },
    /// 8 kHz mono utterance including ~300 ms pre-roll.
    Utterance { pcm: Vec<i16>, started: Instant, ended: Instant },
    /// With [`SessionConfig::stream_speech`]: the next samples of the utterance in progress.
    /// Concatenated from its `SpeechStarted`, they start with exactly the samples of the
    /// `Utterance` that follows (which may be shorter: the hangover is trimmed off it).
    SpeechAudio { pcm: Vec<i16> },
    /// A prompt ended; `interrupted` when barge-in or `stop_prompts` cut it short.
    PromptFinished { id: u64, interrupted: bool },
    /// No RTP from the peer for `silent_for`; reported once per silence.
    MediaTimeout { silent_for: Duration },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub malformed: u64,
    pub rtcp: u64,
    /// Packets from a source other than the negotiated (latched) peer.
    pub foreign: u64,
    pub unknown_payload_type: u64,
    pub events_dropped: u64,
    pub jitter: JitterStats,
}

#[derive(Debug)]
enum Command {
    Play(Prompt),
    StopPrompts,
    InjectDtmf(Digit),
    Update(Negotiated),
    SpeechBargeIn(bool),
    Close,
}

/// The session has ended; the command could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("media session has ended")]
pub struct SessionClosed;

/// Cloneable control handle (e.g. for the SIP layer to inject SIP INFO DTMF).
#[derive(Debug, Clone)]
pub struct SessionHandle {
    cmd: mpsc::Sender<Command>,
}

impl SessionHandle {
    async fn send(&self, c: Command) -> Result<(), SessionClosed> {
        self.cmd.send(c).await.map_err(|_| SessionClosed)
    }

    /// Queues a prompt after those already queued.
    pub async fn play(&self, prompt: Prompt) -> Result<(), SessionClosed> {
        self.send(Command::Play(prompt)).await
    }

    /// Stops the current prompt and empties the queue.
    pub async fn stop_prompts(&self) -> Result<(), SessionClosed> {
        self.send(Command::StopPrompts).await
    }

    /// A digit received by SIP INFO; handled like any other DTMF (including barge-in).
    pub async fn inject_sip_info_dtmf(&self, digit: Digit) -> Result<(), SessionClosed> {
        self.send(Command::InjectDtmf(digit)).await
    }

    /// New negotiation after a re-INVITE (new remote address, hold, codec).
    pub async fn update(&self, negotiated: Negotiated) -> Result<(), SessionClosed> {
        self.send(Command::Update(negotiated)).await
    }

    /// Whether detected speech stops a barge-in prompt (default on). A keypad-only dialogue
    /// turns it off: there a cough or a radio in the room must not cut the menu short, while
    /// a key press still does.
    pub async fn set_speech_barge_in(&self, on: bool) -> Result<(), SessionClosed> {
        self.send(Command::SpeechBargeIn(on)).await
    }
}

/// A running media session. Dropping it (and all handles) ends the task.
#[derive(Debug)]
pub struct MediaSession {
    handle: SessionHandle,
    local: SocketAddr,
    task: JoinHandle<(MediaSocket, SessionStats)>,
}

impl MediaSession {
    /// Starts the session on `socket` (whose port went into the SDP answer/offer).
    pub fn start(socket: MediaSocket, negotiated: Negotiated, cfg: SessionConfig) -> (MediaSession, mpsc::Receiver<MediaEvent>) {
        let (cmd_tx, cmd_rx) = mpsc::channel(32);
        let (ev_tx, ev_rx) = mpsc::channel(cfg.event_capacity.max(1));
        let local = socket.local_addr();
        let driver = Driver::new(socket, negotiated, cfg, ev_tx);
        let task = tokio::spawn(driver.run(cmd_rx));
        (MediaSession { handle: SessionHandle { cmd: cmd_tx }, local, task }, ev_rx)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }

    pub async fn play(&self, prompt: Prompt) -> Result<(), SessionClosed> {
        self.handle.play(prompt).await
    }

    pub async fn stop_prompts(&self) -> Result<(), SessionClosed> {
        self.handle.stop_prompts().await
    }

    pub async fn inject_sip_info_dtmf(&self, digit: Digit) -> Result<(), SessionClosed> {
        self.handle.inject_sip_info_dtmf(digit).await
    }

    /// See [`SessionHandle::set_speech_barge_in`].
    pub async fn set_speech_barge_in(&self, on: bool) -> Result<(), SessionClosed> {
        self.handle.set_speech_barge_in(on).await
    }

    /// Ends the session, frees its port and returns its counters.
    pub async fn close(self) -> SessionStats {
        let _ = self.handle.cmd.send(Command::Close).await;
        self.task.await.map(|(_, stats)| stats).unwrap_or_default()
    }

    /// Ends the session and hands the socket back (still bound, same port), e.g. so the
    /// B2BUA's relay can go on using the port an early-media SDP already announced.
    /// A panic of the session task is propagated: it is a bug, and the socket is gone with it.
    pub async fn finish(self) -> (MediaSocket, SessionStats) {
        let _ = self.handle.cmd.send(Command::Close).await;
        match self.task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled only when the runtime shuts down, which drops this future as well.
            Err(e) => panic!("media session task cancelled: {e}"),
        }
    }
}

struct Driver {
    socket: MediaSocket,
    neg: Negotiated,
    cfg: SessionConfig,
    events: mpsc::Sender<MediaEvent>,
    pacer: Pacer,
    latched: Option<SocketAddr>,
    ssrc: Option<u32>,
    jitter: JitterBuffer,
    concealer: Concealer,
    dedup: EventDeduplicator,
    inband: InbandDetector,
    rfc4733_seen: bool,
    /// While an RFC 4733 key is held down, the audio carries its tone (or muting); keep it from the VAD.
    event_until: Option<Instant>,
    vad: Vad,
    last_rx: Instant,
    timeout_reported: bool,
    stats: SessionStats,
    playout: Vec<Playout>,
    pcm: Vec<i16>,
    digits: Vec<Digit>,
    vad_events: Vec<VadEvent>,
    speech_barge_in: bool,
    /// Samples of the current utterance already sent as `SpeechAudio`.
    speech_sent: usize,
}

impl Driver {
    fn new(socket: MediaSocket, neg: Negotiated, cfg: SessionConfig, events: mpsc::Sender<MediaEvent>) -> Driver {
        Driver {
            pacer: Pacer::with_random_origin(neg.codec, neg.payload_type, cfg.send_silence),
            jitter: JitterBuffer::new(cfg.jitter),
            inband: InbandDetector::new(cfg.inband),
            vad: Vad::new(cfg.vad),
            socket,
            neg,
            cfg,
            events,
            latched: None,
            ssrc: None,
            concealer: Concealer::default(),
            dedup: EventDeduplicator::new(),
            rfc4733_seen: false,
            event_until: None,
            last_rx: Instant::now(),
            timeout_reported: false,
            stats: SessionStats::default(),
            playout: Vec::new(),
            pcm: Vec::with_capacity(480),
            digits: Vec::new(),
            vad_events: Vec::new(),
            speech_barge_in: true,
            speech_sent: 0,
        }
    }

    fn emit(&mut self, e: MediaEvent) {
        if self.events.try_send(e).is_err() {
            // Never block the 20 ms loop on a slow consumer; losing an event is logged.
            self.stats.events_dropped += 1;
            tracing::warn!(local = %self.socket.local_addr(), "media event channel full or closed; event dropped");
        }
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<Command>) -> (MediaSocket, SessionStats) {
        let origin = Instant::now();
        // `tick()` yields the scheduled instant, so tick indices derived from it are exact.
        let mut ticker = tokio::time::interval_at(origin, TICK);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        self.last_rx = origin;
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::with_capacity(200);
        loop {
            tokio::select! {
                biased;
                cmd = cmds.recv() => match cmd {
                    None | Some(Command::Close) => break,
                    Some(c) => self.command(c),
                },
                r = self.socket.socket.recv_from(&mut buf) => match r {
                    Ok((n, src)) => self.datagram(&buf[..n], src),
                    // ICMP port unreachable from an earlier send surfaces here on some
                    // systems; it says nothing about future packets.
                    Err(e) => tracing::debug!(error = %e, "RTP receive error"),
                },
                at = ticker.tick() => {
                    let index = ((at.duration_since(origin).as_micros() + TICK.as_micros() / 2) / TICK.as_micros()) as u64;
                    self.tick(index, at, &mut out).await;
                }
            }
        }
        self.stats.jitter = self.jitter.stats();
        (self.socket, self.stats)
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Play(p) => self.pacer.enqueue(p),
            Command::StopPrompts => {
                for id in self.pacer.stop_all() {
                    self.emit(MediaEvent::PromptFinished { id, interrupted: true });
                }
            }
            Command::InjectDtmf(d) => self.dtmf(d, DtmfSource::SipInfo),
            Command::SpeechBargeIn(on) => self.speech_barge_in = on,
            Command::Update(n) => {
                if n.codec != self.neg.codec || n.payload_type != self.neg.payload_type {
                    let queued = self.pacer.stop_all();
                    self.pacer = Pacer::with_random_origin(n.codec, n.payload_type, self.cfg.send_silence);
                    for id in queued {
                        self.emit(MediaEvent::PromptFinished { id, interrupted: true });
                    }
                }
                if n.remote.map(|r| r.ip()) != self.neg.remote.map(|r| r.ip()) {
                    self.latched = None;
                }
                self.neg = n;
                self.last_rx = Instant::now();
                self.timeout_reported = false;
            }
            Command::Close => {}
        }
    }

    fn barge_in(&mut self) {
        if let Some((_, true)) = self.pacer.current() {
            for id in self.pacer.stop_all() {
                self.emit(MediaEvent::PromptFinished { id, interrupted: true });
            }
        }
    }

    fn dtmf(&mut self, digit: Digit, source: DtmfSource) {
        // The tone is not speech: drop whatever the VAD had started on it.
        self.vad.cancel();
        self.barge_in();
        self.emit(MediaEvent::Dtmf { digit, source });
    }

    fn datagram(&mut self, data: &[u8], src: SocketAddr) {
        match self.latched {
            Some(l) if l != src => {
                self.stats.foreign += 1;
                return;
            }
            Some(_) => {}
            None => match self.neg.remote {
                // Latch to the first source at the address the SDP named; the port may
                // differ behind NAT, and later packets must come from that same source.
                Some(r) if r.ip() == src.ip() => {}
                _ => {
                    self.stats.foreign += 1;
                    return;
                }
            },
        }
        let rtp = match classify(data) {
            Ok(Datagram::Rtp(p)) => p,
            Ok(Datagram::Rtcp) => {
                self.stats.rtcp += 1;
                return;
            }
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(%src, error = %e, "malformed RTP ignored");
                return;
            }
        };
        if self.latched.is_none() {
            tracing::debug!(%src, "RTP source latched");
            self.latched = Some(src);
        }
        self.stats.packets_in += 1;
        let now = Instant::now();
        self.last_rx = now;
        self.timeout_reported = false;
        if self.ssrc != Some(rtp.ssrc) {
            self.ssrc = Some(rtp.ssrc);
            self.jitter.reset();
        }
        if Some(rtp.payload_type) == self.neg.telephone_event_pt {
            match TelephoneEvent::parse(rtp.payload) {
                Ok(ev) => {
                    // Updates come every 50 ms while the key is down (RFC 4733 §2.5.1.2).
                    self.event_until = if ev.end { None } else { Some(now + Duration::from_millis(150)) };
                    if let Some(d) = self.dedup.push(rtp.ssrc, rtp.timestamp, ev) {
                        self.rfc4733_seen = true;
                        self.dtmf(d, DtmfSource::Rfc4733);
                    }
                }
                Err(_) => self.stats.malformed += 1,
            }
        } else if rtp.payload_type == self.neg.payload_type {
            self.jitter.push(rtp.sequence, rtp.timestamp, rtp.payload.len() as u32, rtp.payload, now.into_std(), &mut self.playout);
            self.drain_playout();
        } else {
            // Comfort noise (13) and anything not negotiated.
            self.stats.unknown_payload_type += 1;
        }
    }

    fn drain_playout(&mut self) {
        if self.playout.is_empty() {
            return;
        }
        self.pcm.clear();
        for p in self.playout.drain(..) {
            match p {
                Playout::Packet { payload, .. } => {
                    let start = self.pcm.len();
                    self.neg.codec.decode(&payload, &mut self.pcm);
                    self.concealer.good(&self.pcm[start..]);
                }
                Playout::Gap { samples, .. } => self.concealer.conceal(samples, &mut self.pcm),
            }
        }
        let pcm = std::mem::take(&mut self.pcm);
        if self.cfg.inband_dtmf && !self.rfc4733_seen {
            self.inband.process(&pcm, &mut self.digits);
            for d in std::mem::take(&mut self.digits) {
                self.dtmf(d, DtmfSource::InBand);
            }
        }
        let key_down = self.inband.tone_present() || self.event_until.is_some_and(|t| Instant::now() < t);
        if key_down {
            self.vad.cancel();
        } else {
            self.vad.process(&pcm, &mut self.vad_events);
        }
        // The newest sample fed to the VAD was heard about now; map positions back from it.
        let now = Instant::now();
        let vad_pos = self.vad.position();
        let at = |pos: u64| now - Duration::from_micros(vad_pos.saturating_sub(pos) * 125);
        for e in std::mem::take(&mut self.vad_events) {
            match e {
                VadEvent::SpeechStarted { at: pos } => {
                    if self.speech_barge_in {
                        self.barge_in();
                    }
                    self.speech_sent = 0;
                    self.emit(MediaEvent::SpeechStarted { at: at(pos) });
                }
                VadEvent::Utterance { pcm, start, end } => {
                    let (started, ended) = (at(start), at(end));
                    if self.cfg.stream_speech && self.speech_sent < pcm.len() {
                        let rest = pcm[self.speech_sent..].to_vec();
                        self.emit(MediaEvent::SpeechAudio { pcm: rest });
                    }
                    self.speech_sent = 0;
                    self.emit(MediaEvent::Utterance { pcm, started, ended });
                }
            }
        }
        match self.vad.speech_so_far() {
            Some(so_far) if self.cfg.stream_speech && so_far.len() > self.speech_sent => {
                let rest = so_far[self.speech_sent..].to_vec();
                self.speech_sent = so_far.len();
                self.emit(MediaEvent::SpeechAudio { pcm: rest });
            }
            Some(_) => {}
            // Ended or cancelled (a key): the next utterance starts from its first sample.
            None => self.speech_sent = 0,
        }
        self.pcm = pcm;
    }

    async fn tick(&mut self, index: u64, at: Instant, out: &mut Vec<u8>) {
        let outcome = self.pacer.tick(index, out);
        for id in outcome.finished {
            self.emit(MediaEvent::PromptFinished { id, interrupted: false });
        }
        if outcome.sent
            && self.neg.direction.we_send()
            && let Some(dst) = self.latched.or(self.neg.remote)
        {
            match self.socket.socket.send_to(out, dst).await {
                Ok(_) => self.stats.packets_out += 1,
                Err(e) => tracing::debug!(%dst, error = %e, "RTP send failed"),
            }
        }
        self.jitter.release_due(at.into_std(), &mut self.playout);
        self.drain_playout();
        if self.neg.direction.we_receive() && !self.timeout_reported {
            let silent = at.saturating_duration_since(self.last_rx);
            if silent >= self.cfg.media_timeout {
                self.timeout_reported = true;
                self.emit(MediaEvent::MediaTimeout { silent_for: silent });
            }
        }
    }
}
