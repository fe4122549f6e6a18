//! `RtpRelay`: the B2BUA's media path. Two legs, each a socket from the port pool;
//! packets from one leg's peer go out of the other leg unchanged (both legs negotiated
//! the same codec, so no transcoding), except that the telephone-event payload type is
//! rewritten when the legs chose different dynamic numbers for it.
//!
//! Latching is symmetric (RFC 4961 style): each leg accepts RTP only from its peer's SDP
//! address, latches to the first such source (the port may differ behind NAT) and sends
//! to where it latched. Counters are lock-free atomics; resources are fixed: two sockets,
//! one 2 KiB buffer per leg, one bounded event channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::ports::MediaSocket;
use crate::rtp::{Datagram, classify};
use crate::sdp::Negotiated;

/// One side of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The caller (carrier) side.
    A,
    /// The destination (municipality) side.
    B,
}

/// A leg's negotiated peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegPeer {
    /// The peer's RTP address from its SDP; `None` while it is on hold with 0.0.0.0.
    pub remote: Option<SocketAddr>,
    pub telephone_event_pt: Option<u8>,
}

impl From<&Negotiated> for LegPeer {
    fn from(n: &Negotiated) -> Self {
        LegPeer { remote: n.remote, telephone_event_pt: n.telephone_event_pt }
    }
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `MediaTimeout` is reported for a leg after this long without RTP from its peer.
    pub media_timeout: Duration,
    /// Accept the first RTP from any address on a leg, not only the SDP address
    /// (for peers behind NAT that put private addresses in their SDP).
    pub latch_any_source: bool,
    pub event_capacity: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig { media_timeout: Duration::from_secs(20), latch_any_source: false, event_capacity: 8 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEvent {
    /// No RTP from this leg's peer for `silent_for` (reported once per silence).
    MediaTimeout { leg: Leg, silent_for: Duration },
}

/// Counters of one direction, named by the leg the packets came in on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    pub packets: u64,
    pub bytes: u64,
    /// Packets missing from the sequence-number space (RFC 3550 §A.3 "cumulative lost").
    pub lost: u64,
    pub foreign: u64,
    pub malformed: u64,
    pub rtcp: u64,
    /// Forwardable packets dropped because the other leg had no peer address yet.
    pub no_destination: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub a_to_b: DirectionStats,
    pub b_to_a: DirectionStats,
}

#[derive(Debug, Default)]
struct Counters {
    packets: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    foreign: AtomicU64,
    malformed: AtomicU64,
    rtcp: AtomicU64,
    no_destination: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DirectionStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DirectionStats {
            packets: g(&self.packets),
            bytes: g(&self.bytes),
            lost: g(&self.lost),
            foreign: g(&self.foreign),
            malformed: g(&self.malformed),
            rtcp: g(&self.rtcp),
            no_destination: g(&self.no_destination),
        }
    }
}

/// Loss from sequence numbers: expected (highest − first + 1) minus received, per SSRC.
#[derive(Debug, Clone, Default)]
pub struct LossCounter {
    ssrc: Option<u32>,
    first: i64,
    highest: i64,
    received: u64,
    lost_before: u64,
}

impl LossCounter {
    /// Counts a packet; returns the cumulative loss.
    pub fn packet(&mut self, ssrc: u32, seq: u16) -> u64 {
        if self.ssrc != Some(ssrc) {
            self.lost_before = self.lost();
            self.ssrc = Some(ssrc);
            self.first = seq as i64;
            self.highest = seq as i64;
            self.received = 1;
            return self.lost();
        }
        let ext = self.highest + (seq.wrapping_sub(self.highest as u16) as i16) as i64;
        if ext - self.highest > 3000 || self.highest - ext > 3000 {
            // Sequence restart within the same SSRC: start counting afresh.
            self.lost_before = self.lost();
            self.first = ext;
            self.highest = ext;
            self.received = 1;
            return self.lost();
        }
        self.highest = self.highest.max(ext);
        self.received += 1;
        self.lost()
    }

    pub fn lost(&self) -> u64 {
        if self.ssrc.is_none() {
            return self.lost_before;
        }
        let expected = (self.highest - self.first + 1) as u64;
        // Duplicates can make `received` exceed `expected`; loss never goes negative.
        self.lost_before + expected.saturating_sub(self.received)
    }
}

#[derive(Debug)]
enum Command {
    Update(Leg, LegPeer),
    Stop,
}

/// A running relay. Dropping it stops the task and frees both ports.
#[derive(Debug)]
pub struct RtpRelay {
    cmd: mpsc::Sender<Command>,
    counters: Arc<[Counters; 2]>,
    local: [SocketAddr; 2],
    task: JoinHandle<[MediaSocket; 2]>,
}

impl RtpRelay {
    /// Starts relaying between leg A (socket `a`, peer `peer_a`) and leg B.
    pub fn start(a: MediaSocket, peer_a: LegPeer, b: MediaSocket, peer_b: LegPeer, cfg: RelayConfig) -> (RtpRelay, mpsc::Receiver<RelayEvent>) {
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, ev_rx) = mpsc::channel(cfg.event_capacity.max(1));
        let counters: Arc<[Counters; 2]> = Arc::new(Default::default());
        let local = [a.local_addr(), b.local_addr()];
        let task = tokio::spawn(run([a, b], [peer_a, peer_b], cfg, counters.clone(), cmd_rx, ev_tx));
        (RtpRelay { cmd: cmd_tx, counters, local, task }, ev_rx)
    }

    /// Our RTP address on a leg (goes into that leg's SDP).
    pub fn local_addr(&self, leg: Leg) -> SocketAddr {
        self.local[leg as usize]
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats { a_to_b: self.counters[0].snapshot(), b_to_a: self.counters[1].snapshot() }
    }

    /// A re-INVITE changed a leg's peer (new address, hold, new event payload type).
    pub async fn update(&self, leg: Leg, peer: LegPeer) -> bool {
        self.cmd.send(Command::Update(leg, peer)).await.is_ok()
    }

    /// Stops relaying, frees both ports and returns the final counters.
    pub async fn stop(self) -> RelayStats {
        self.stop_keep().await.0
    }

    /// Stops relaying and hands both sockets back, still bound (`[a, b]`; `None` only if the
    /// relay task panicked): the IVR plays a closing message to a caller whose bridge failed
    /// on the same port its SDP announced.
    pub async fn stop_keep(self) -> (RelayStats, Option<[MediaSocket; 2]>) {
        let _ = self.cmd.send(Command::Stop).await;
        let sockets = self.task.await.ok();
        (RelayStats { a_to_b: self.counters[0].snapshot(), b_to_a: self.counters[1].snapshot() }, sockets)
    }
}

struct LegState {
    peer: LegPeer,
    latched: Option<SocketAddr>,
    last_rx: Instant,
    timeout_reported: bool,
    loss: LossCounter,
}

impl LegState {
    fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.peer.remote)
    }
}

async fn run(
    sockets: [MediaSocket; 2],
    peers: [LegPeer; 2],
    cfg: RelayConfig,
    counters: Arc<[Counters; 2]>,
    mut cmds: mpsc::Receiver<Command>,
    events: mpsc::Sender<RelayEvent>,
) -> [MediaSocket; 2] {
    let now = Instant::now();
    let mut legs = peers.map(|peer| LegState { peer, latched: None, last_rx: now, timeout_reported: false, loss: LossCounter::default() });
    let mut bufs = [vec![0u8; 2048], vec![0u8; 2048]];
    let [buf_a, buf_b] = &mut bufs;
    let mut check = tokio::time::interval(Duration::from_millis(250));
    check.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let (from, n, src) = tokio::select! {
            biased;
            c = cmds.recv() => match c {
                Some(Command::Update(leg, peer)) => {
                    let l = &mut legs[leg as usize];
                    if peer.remote.map(|r| r.ip()) != l.peer.remote.map(|r| r.ip()) {
                        l.latched = None;
                    }
                    l.peer = peer;
                    l.last_rx = Instant::now();
                    l.timeout_reported = false;
                    continue;
                }
                None | Some(Command::Stop) => break,
            },
            r = sockets[0].socket.recv_from(buf_a) => match r {
                Ok((n, src)) => (0usize, n, src),
                Err(_) => continue,
            },
            r = sockets[1].socket.recv_from(buf_b) => match r {
                Ok((n, src)) => (1usize, n, src),
                Err(_) => continue,
            },
            at = check.tick() => {
                for (i, l) in legs.iter_mut().enumerate() {
                    let silent = at.saturating_duration_since(l.last_rx);
                    if !l.timeout_reported && l.peer.remote.is_some() && silent >= cfg.media_timeout {
                        l.timeout_reported = true;
                        let leg = if i == 0 { Leg::A } else { Leg::B };
                        if events.try_send(RelayEvent::MediaTimeout { leg, silent_for: silent }).is_err() {
                            tracing::warn!(?leg, "relay event channel full; media timeout not delivered");
                        }
                    }
                }
                continue;
            }
        };
        let to = 1 - from;
        let c = &counters[from];
        let buf = if from == 0 { &mut *buf_a } else { &mut *buf_b };
        let data = &mut buf[..n];
        let leg = &mut legs[from];
        match leg.latched {
            Some(l) if l != src => {
                c.foreign.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Some(_) => {}
            None => {
                let ok = cfg.latch_any_source || leg.peer.remote.is_some_and(|r| r.ip() == src.ip());
                if !ok {
                    c.foreign.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        }
        let (pt, ssrc, seq) = match classify(data) {
            Ok(Datagram::Rtp(p)) => (p.payload_type, p.ssrc, p.sequence),
            Ok(Datagram::Rtcp) => {
                c.rtcp.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(_) => {
                c.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        if leg.latched.is_none() {
            leg.latched = Some(src);
        }
        leg.last_rx = Instant::now();
        leg.timeout_reported = false;
        c.lost.store(leg.loss.packet(ssrc, seq), Ordering::Relaxed);
        let in_te = leg.peer.telephone_event_pt;
        let (out_te, dst) = (legs[to].peer.telephone_event_pt, legs[to].destination());
        if let (Some(i), Some(o)) = (in_te, out_te)
            && pt == i
            && i != o
        {
            data[1] = (data[1] & 0x80) | o;
        }
        let Some(dst) = dst else {
            c.no_destination.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match sockets[to].socket.send_to(data, dst).await {
            Ok(_) => {
                c.packets.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(%dst, error = %e, "relay send failed"),
        }
    }
    sockets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counting_with_wrap_reorder_and_ssrc_change() {
        let mut l = LossCounter::default();
        for s in [65530u16, 65531, 65533, 65532, 65535, 1, 2] {
            l.packet(1, s);
        }
        // Missing: 65534 and 0.
        assert_eq!(l.lost(), 2);
        l.packet(1, 2); // duplicate does not hide loss… nor invent it
        assert_eq!(l.lost(), 1, "a duplicate counts as received, as in RFC 3550");
        l.packet(2, 100);
        l.packet(2, 103);
        assert_eq!(l.lost(), 1 + 2);
    }
}
