//! Prompt pacing: turns queued prompts into 20 ms RTP packets with continuous sequence
//! numbers and timestamps, marker bit at the start of each talkspurt (RFC 3551 §4.1).
//!
//! The caller drives it with a tick index (20 ms periods since the stream started);
//! timestamps follow the tick index, so if the driver skips ticks under load the
//! timestamps still match wall-clock time and the receiver sees a pause, not a drift.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::g711::Codec;
use crate::rtp::{RtpHeader, build_rtp};

/// Samples per packet (20 ms at 8 kHz).
pub const SAMPLES_PER_PACKET: usize = 160;

/// Prompt audio: 8 kHz mono, either linear or already G.711-encoded.
#[derive(Debug, Clone)]
pub enum PromptAudio {
    Pcm(Arc<[i16]>),
    G711 { codec: Codec, data: Arc<[u8]> },
}

impl PromptAudio {
    pub fn samples(&self) -> usize {
        match self {
            PromptAudio::Pcm(p) => p.len(),
            PromptAudio::G711 { data, .. } => data.len(),
        }
    }
}

/// A prompt to play.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Chosen by the caller; reported back in `PromptFinished`.
    pub id: u64,
    pub audio: PromptAudio,
    /// Whether caller speech or a key press may interrupt it.
    pub barge_in: bool,
}

/// What happened on one tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickOutcome {
    /// A packet was written to the output buffer.
    pub sent: bool,
    /// Prompts that played to their end on this tick.
    pub finished: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct Pacer {
    codec: Codec,
    payload_type: u8,
    ssrc: u32,
    seq: u16,
    ts_base: u32,
    /// Keep sending silence between prompts (keeps NAT bindings and dumb gateways' media
    /// timers alive); when false, nothing is sent while idle.
    send_silence: bool,
    queue: VecDeque<Prompt>,
    position: usize,
    talkspurt: bool,
    scratch: Vec<u8>,
}

impl Pacer {
    pub fn new(codec: Codec, payload_type: u8, ssrc: u32, first_seq: u16, ts_base: u32, send_silence: bool) -> Self {
        Pacer {
            codec,
            payload_type,
            ssrc,
            seq: first_seq,
            ts_base,
            send_silence,
            queue: VecDeque::new(),
            position: 0,
            talkspurt: false,
            scratch: Vec::with_capacity(SAMPLES_PER_PACKET),
        }
    }

    /// With random SSRC, sequence and timestamp origin (RFC 3550 §5.1).
    pub fn with_random_origin(codec: Codec, payload_type: u8, send_silence: bool) -> Self {
        Self::new(codec, payload_type, rand::random(), rand::random(), rand::random(), send_silence)
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn enqueue(&mut self, p: Prompt) {
        self.queue.push_back(p);
    }

    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Id and barge-in flag of the prompt now playing.
    pub fn current(&self) -> Option<(u64, bool)> {
        self.queue.front().map(|p| (p.id, p.barge_in))
    }

    /// Stops the current prompt and drops the queue; returns the ids dropped (current first).
    pub fn stop_all(&mut self) -> Vec<u64> {
        self.position = 0;
        self.queue.drain(..).map(|p| p.id).collect()
    }

    /// Produces the packet for tick `tick` into `out` (cleared first).
    pub fn tick(&mut self, tick: u64, out: &mut Vec<u8>) -> TickOutcome {
        let mut outcome = TickOutcome::default();
        out.clear();
        self.scratch.clear();
        let mut marker = false;
        while let Some(p) = self.queue.front() {
            if self.position == 0 {
                marker = true;
            }
            if self.position >= p.audio.samples() {
                // Empty prompt or one that ended exactly on the previous tick.
                outcome.finished.push(p.id);
                self.queue.pop_front();
                self.position = 0;
                continue;
            }
            break;
        }
        if let Some(p) = self.queue.front() {
            let end = (self.position + SAMPLES_PER_PACKET).min(p.audio.samples());
            match &p.audio {
                PromptAudio::Pcm(pcm) => self.codec.encode(&pcm[self.position..end], &mut self.scratch),
                PromptAudio::G711 { codec, data } if *codec == self.codec => self.scratch.extend_from_slice(&data[self.position..end]),
                PromptAudio::G711 { codec, data } => {
                    for &c in &data[self.position..end] {
                        self.scratch.push(self.codec.encode_sample(codec.decode_sample(c)));
                    }
                }
            }
            self.position = end;
            if end == p.audio.samples() {
                outcome.finished.push(p.id);
                self.queue.pop_front();
                self.position = 0;
            }
            marker |= !self.talkspurt;
            self.talkspurt = true;
        } else if self.send_silence {
            marker = !self.talkspurt;
            self.talkspurt = true;
        } else {
            self.talkspurt = false;
            return outcome;
        }
        self.scratch.resize(SAMPLES_PER_PACKET, self.codec.silence());
        let header = RtpHeader {
            payload_type: self.payload_type,
            marker,
            sequence: self.seq,
            timestamp: self.ts_base.wrapping_add((tick as u32).wrapping_mul(SAMPLES_PER_PACKET as u32)),
            ssrc: self.ssrc,
        };
        build_rtp(&header, &self.scratch, out);
        self.seq = self.seq.wrapping_add(1);
        outcome.sent = true;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::parse_rtp;

    fn prompt(id: u64, n: usize) -> Prompt {
        Prompt { id, audio: PromptAudio::Pcm((0..n).map(|i| (i % 100) as i16 * 50).collect::<Vec<_>>().into()), barge_in: true }
    }

    #[test]
    fn frames_timestamps_markers_and_completion() {
        let mut p = Pacer::new(Codec::Pcmu, 0, 7, 65534, u32::MAX - 100, false);
        p.enqueue(prompt(1, 400)); // 2.5 packets
        p.enqueue(prompt(2, 160));
        let mut buf = Vec::new();
        let mut packets = Vec::new();
        let mut finished = Vec::new();
        for tick in 0..8 {
            let o = p.tick(tick, &mut buf);
            finished.extend(o.finished);
            if o.sent {
                let r = parse_rtp(&buf).unwrap();
                packets.push((r.sequence, r.timestamp, r.marker, r.payload.len(), r.payload[159]));
            }
        }
        assert_eq!(finished, vec![1, 2]);
        assert_eq!(packets.len(), 4);
        let base = u32::MAX - 100;
        assert_eq!(packets[0], (65534, base, true, 160, Codec::Pcmu.encode_sample(159 % 100 * 50)));
        assert_eq!(packets[1].0, 65535);
        assert_eq!(packets[2], (0, base.wrapping_add(320), false, 160, 0xFF)); // padded with silence
        assert!(packets[3].2, "next prompt starts a talkspurt");
        // Idle without silence: nothing sent; the next prompt starts a talkspurt again.
        p.enqueue(prompt(3, 160));
        let o = p.tick(20, &mut buf);
        let r = parse_rtp(&buf).unwrap();
        assert!(o.sent && r.marker && r.timestamp == base.wrapping_add(20 * 160) && r.sequence == 2);
    }

    #[test]
    fn silence_between_prompts_and_stop() {
        let mut p = Pacer::new(Codec::Pcma, 8, 1, 0, 0, true);
        let mut buf = Vec::new();
        let o = p.tick(0, &mut buf);
        let r = parse_rtp(&buf).unwrap();
        assert!(o.sent && r.marker && r.payload.iter().all(|&b| b == 0xD5));
        p.tick(1, &mut buf);
        assert!(!parse_rtp(&buf).unwrap().marker);
        p.enqueue(prompt(9, 16000));
        p.enqueue(prompt(10, 16000));
        p.tick(2, &mut buf);
        assert!(parse_rtp(&buf).unwrap().marker);
        assert_eq!(p.current(), Some((9, true)));
        assert_eq!(p.stop_all(), vec![9, 10]);
        assert!(!p.is_playing());
    }

    #[test]
    fn pre_encoded_prompts_pass_through_or_transcode() {
        let data: Arc<[u8]> = vec![0x12u8; 160].into();
        let mut same = Pacer::new(Codec::Pcmu, 0, 1, 0, 0, false);
        same.enqueue(Prompt { id: 1, audio: PromptAudio::G711 { codec: Codec::Pcmu, data: data.clone() }, barge_in: false });
        let mut buf = Vec::new();
        same.tick(0, &mut buf);
        assert!(parse_rtp(&buf).unwrap().payload.iter().all(|&b| b == 0x12));
        let mut other = Pacer::new(Codec::Pcma, 8, 1, 0, 0, false);
        other.enqueue(Prompt { id: 1, audio: PromptAudio::G711 { codec: Codec::Pcmu, data }, barge_in: false });
        other.tick(0, &mut buf);
        let want = Codec::Pcma.encode_sample(Codec::Pcmu.decode_sample(0x12));
        assert!(parse_rtp(&buf).unwrap().payload.iter().all(|&b| b == want));
    }
}
