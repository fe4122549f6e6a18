//! Receive-side jitter buffer: puts packets back in sequence order (with 16-bit
//! wrap-around), holds a fixed number of packets to absorb reordering, drops late and
//! duplicate packets, and reports gaps so the decoder can conceal them.
//!
//! The IVR analyses audio rather than playing it to a loudspeaker, so release is driven
//! by arrivals (and by a hold-time limit when the stream pauses) instead of a playout
//! clock; this keeps it independent of the sender's packet time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Packets held back to wait for stragglers (3 × 20 ms = 60 ms).
    pub depth: usize,
    /// A held packet is released after this long even if fewer than `depth` followed.
    pub max_hold: Duration,
    /// Hard bound on packets held.
    pub capacity: usize,
    /// A sequence jump larger than this is taken as a stream restart, not a loss.
    pub max_seq_jump: u16,
    /// A single gap is never concealed with more than this many samples.
    pub max_gap_samples: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig { depth: 3, max_hold: Duration::from_millis(80), capacity: 64, max_seq_jump: 1000, max_gap_samples: 8000 }
    }
}

/// Output of the buffer, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    Packet { sequence: u16, timestamp: u32, payload: Vec<u8> },
    /// Packets were lost: this much audio (samples) is missing before the next packet.
    Gap { samples: u32, packets: u32 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub released: u64,
    pub late: u64,
    pub duplicate: u64,
    pub lost: u64,
    pub overflow: u64,
    pub restarts: u64,
}

#[derive(Debug, Clone)]
struct Held {
    timestamp: u32,
    samples: u32,
    arrived: Instant,
    payload: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    held: BTreeMap<i64, Held>,
    /// Extended sequence number expected next on output.
    next: Option<i64>,
    /// Highest extended sequence number seen (anchor for unwrapping).
    highest: Option<i64>,
    /// (timestamp, samples) of the last packet released, to size gaps.
    last_out: Option<(u32, u32)>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(cfg: JitterConfig) -> Self {
        JitterBuffer { cfg, held: BTreeMap::new(), next: None, highest: None, last_out: None, stats: JitterStats::default() }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Forgets all state (new SSRC).
    pub fn reset(&mut self) {
        self.held.clear();
        self.next = None;
        self.highest = None;
        self.last_out = None;
    }

    fn unwrap_seq(&self, seq: u16) -> i64 {
        match self.highest {
            None => seq as i64 + (1 << 16),
            Some(h) => h + (seq.wrapping_sub(h as u16) as i16) as i64,
        }
    }

    /// Adds a packet carrying `samples` samples of audio; releases what is due into `out`.
    pub fn push(&mut self, sequence: u16, timestamp: u32, samples: u32, payload: &[u8], now: Instant, out: &mut Vec<Playout>) {
        self.stats.received += 1;
        let mut ext = self.unwrap_seq(sequence);
        if let Some(h) = self.highest
            && (ext - h).abs() > self.cfg.max_seq_jump as i64
        {
            // The sender restarted its sequence (or a new source took over): deliver
            // what we have and start afresh rather than counting thousands as lost.
            self.flush(out);
            self.reset();
            self.stats.restarts += 1;
            ext = self.unwrap_seq(sequence);
        }
        if let Some(n) = self.next
            && ext < n
        {
            self.stats.late += 1;
            return;
        }
        if self.held.contains_key(&ext) {
            self.stats.duplicate += 1;
            return;
        }
        if self.held.len() >= self.cfg.capacity {
            self.stats.overflow += 1;
            self.release_first(out);
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.held.insert(ext, Held { timestamp, samples, arrived: now, payload: payload.to_vec() });
        while self.held.len() > self.cfg.depth {
            self.release_first(out);
        }
        self.release_due(now, out);
    }

    /// Releases packets that have waited longer than `max_hold` (call on every tick).
    pub fn release_due(&mut self, now: Instant, out: &mut Vec<Playout>) {
        // Everything up to the newest overdue packet goes, so order is preserved.
        let overdue = self.held.iter().filter(|(_, h)| now.duration_since(h.arrived) >= self.cfg.max_hold).map(|(k, _)| *k).max();
        if let Some(last) = overdue {
            while self.held.first_key_value().is_some_and(|(k, _)| *k <= last) {
                self.release_first(out);
            }
        }
    }

    /// Releases everything held, in order.
    pub fn flush(&mut self, out: &mut Vec<Playout>) {
        while !self.held.is_empty() {
            self.release_first(out);
        }
    }

    fn release_first(&mut self, out: &mut Vec<Playout>) {
        let Some((ext, h)) = self.held.pop_first() else { return };
        let next = self.next.unwrap_or(ext);
        if ext > next {
            let packets = (ext - next) as u32;
            self.stats.lost += packets as u64;
            let samples = match self.last_out {
                Some((ts, n)) => {
                    let d = h.timestamp.wrapping_sub(ts.wrapping_add(n));
                    if d > 0 && d <= self.cfg.max_gap_samples { d } else { (n * packets).min(self.cfg.max_gap_samples) }
                }
                None => (h.samples * packets).min(self.cfg.max_gap_samples),
            };
            out.push(Playout::Gap { samples, packets });
        }
        self.next = Some(ext + 1);
        self.last_out = Some((h.timestamp, h.samples));
        self.stats.released += 1;
        out.push(Playout::Packet { sequence: ext as u16, timestamp: h.timestamp, payload: h.payload });
    }
}

/// Fills gaps in decoded audio: the first 20 ms repeat the last frame, fading out;
/// after that, silence. Simple on purpose — the consumers are a VAD, a DTMF detector
/// and a recogniser, for which a faded repeat avoids a click-like onset.
#[derive(Debug, Clone, Default)]
pub struct Concealer {
    last: Vec<i16>,
}

impl Concealer {
    /// Remembers the latest good audio.
    pub fn good(&mut self, pcm: &[i16]) {
        let keep = pcm.len().min(160);
        self.last.clear();
        self.last.extend_from_slice(&pcm[pcm.len() - keep..]);
    }

    /// Appends `samples` of concealment audio to `out`.
    pub fn conceal(&mut self, samples: u32, out: &mut Vec<i16>) {
        let n = samples as usize;
        let fade = self.last.len().min(n);
        for i in 0..fade {
            let g = 1.0 - (i + 1) as f32 / fade as f32;
            out.push((self.last[i] as f32 * g) as i16);
        }
        out.extend(std::iter::repeat_n(0i16, n - fade));
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seqs(out: &[Playout]) -> Vec<u16> {
        out.iter().filter_map(|p| if let Playout::Packet { sequence, .. } = p { Some(*sequence) } else { None }).collect()
    }

    #[test]
    fn reorders_across_wrap_and_drops_late_and_duplicates() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        let order = [65533u16, 65535, 65534, 0, 0, 2, 1, 3, 4];
        for (i, s) in order.iter().enumerate() {
            jb.push(*s, (*s as u32).wrapping_mul(160), 160, &[*s as u8], t0 + Duration::from_millis(i as u64 * 20), &mut out);
        }
        jb.push(65534, 0, 160, &[0], t0, &mut out); // long gone: late
        jb.flush(&mut out);
        assert_eq!(seqs(&out), vec![65533, 65534, 65535, 0, 1, 2, 3, 4]);
        let st = jb.stats();
        assert_eq!((st.duplicate, st.late, st.lost), (1, 1, 0));
    }

    #[test]
    fn loss_becomes_a_gap_sized_from_timestamps() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        for s in [10u16, 11, 14, 15, 16, 17] {
            jb.push(s, s as u32 * 240, 240, &[0; 240], t0, &mut out);
        }
        jb.flush(&mut out);
        assert_eq!(out[2], Playout::Gap { samples: 480, packets: 2 });
        assert_eq!(jb.stats().lost, 2);
    }

    #[test]
    fn paused_stream_is_released_after_the_hold_time() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        jb.push(1, 0, 160, &[1], t0, &mut out);
        jb.push(2, 160, 160, &[2], t0, &mut out);
        assert!(out.is_empty());
        jb.release_due(t0 + Duration::from_millis(50), &mut out);
        assert!(out.is_empty());
        jb.release_due(t0 + Duration::from_millis(80), &mut out);
        assert_eq!(seqs(&out), vec![1, 2]);
    }

    #[test]
    fn sequence_restart_is_not_counted_as_loss() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        for s in [100u16, 101, 102, 30000, 30001, 30002, 30003] {
            jb.push(s, 0, 160, &[], t0, &mut out);
        }
        jb.flush(&mut out);
        assert_eq!(seqs(&out), vec![100, 101, 102, 30000, 30001, 30002, 30003]);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().restarts, 1);
    }

    #[test]
    fn concealment_fades_then_silence() {
        let mut c = Concealer::default();
        c.good(&[1000; 160]);
        let mut out = Vec::new();
        c.conceal(400, &mut out);
        assert_eq!(out.len(), 400);
        assert!(out[0] > 900 && out[159] == 0 && out[399] == 0);
    }

    proptest! {
        #[test]
        fn output_is_ordered_unique_and_bounded(
            start in any::<u16>(),
            jitter in proptest::collection::vec(0usize..3, 1..200),
            drop_mask in proptest::collection::vec(any::<bool>(), 200),
        ) {
            // Packets displaced by less than `depth` positions must all come out, in order.
            let n = jitter.len();
            let mut order: Vec<usize> = (0..n).collect();
            let mut i = 0;
            while i < n {
                if jitter[i] > 0 && i + 1 < n {
                    order.swap(i, i + 1);
                    i += 2;
                } else {
                    i += 1;
                }
            }
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let mut out = Vec::new();
            let mut sent = 0;
            for &i in &order {
                if drop_mask[i] && i % 7 == 3 { continue; }
                sent += 1;
                let s = start.wrapping_add(i as u16);
                jb.push(s, i as u32 * 160, 160, &[], t0, &mut out);
                prop_assert!(jb.len() <= 3);
            }
            jb.flush(&mut out);
            let got = seqs(&out);
            prop_assert_eq!(got.len(), sent);
            for w in got.windows(2) {
                prop_assert!(w[1].wrapping_sub(w[0]) as i16 > 0, "{:?}", w);
            }
        }
    }
}
