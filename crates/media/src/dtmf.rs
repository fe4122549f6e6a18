//! DTMF digits and RFC 4733 telephone-events: payload parse/build and the de-duplication
//! of the redundant packets a sender emits for one key press.

use std::fmt;

/// A DTMF key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digit {
    D0,
    D1,
    D2,
    D3,
    D4,
    D5,
    D6,
    D7,
    D8,
    D9,
    Star,
    Hash,
    A,
    B,
    C,
    D,
}

impl Digit {
    pub const ALL: [Digit; 16] = [
        Digit::D0, Digit::D1, Digit::D2, Digit::D3, Digit::D4, Digit::D5, Digit::D6, Digit::D7,
        Digit::D8, Digit::D9, Digit::Star, Digit::Hash, Digit::A, Digit::B, Digit::C, Digit::D,
    ];

    /// RFC 4733 §3.2 event code (0–9, * = 10, # = 11, A–D = 12–15).
    pub const fn event_code(self) -> u8 {
        self as u8
    }

    pub const fn from_event_code(code: u8) -> Option<Digit> {
        if code < 16 { Some(Digit::ALL[code as usize]) } else { None }
    }

    pub const fn as_char(self) -> char {
        match self {
            Digit::D0 => '0',
            Digit::D1 => '1',
            Digit::D2 => '2',
            Digit::D3 => '3',
            Digit::D4 => '4',
            Digit::D5 => '5',
            Digit::D6 => '6',
            Digit::D7 => '7',
            Digit::D8 => '8',
            Digit::D9 => '9',
            Digit::Star => '*',
            Digit::Hash => '#',
            Digit::A => 'A',
            Digit::B => 'B',
            Digit::C => 'C',
            Digit::D => 'D',
        }
    }

    /// Parses a key as written in SIP INFO bodies (`application/dtmf-relay` `Signal=5`,
    /// `application/dtmf` `5`) and dial strings: 0–9, *, #, A–D (case-insensitive), and
    /// the numeric codes 10/11 some devices send for * and #.
    pub fn parse(s: &str) -> Option<Digit> {
        let s = s.trim();
        match s {
            "10" => return Some(Digit::Star),
            "11" => return Some(Digit::Hash),
            _ => {}
        }
        let mut chars = s.chars();
        let c = chars.next()?;
        if chars.next().is_some() {
            return None;
        }
        match c.to_ascii_uppercase() {
            d @ '0'..='9' => Digit::from_event_code(d as u8 - b'0'),
            '*' => Some(Digit::Star),
            '#' => Some(Digit::Hash),
            c @ 'A'..='D' => Digit::from_event_code(c as u8 - b'A' + 12),
            _ => None,
        }
    }

    /// (row, column) frequencies in Hz (ITU-T Q.23).
    pub const fn frequencies(self) -> (f32, f32) {
        const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
        const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
        let (r, c) = match self {
            Digit::D1 => (0, 0),
            Digit::D2 => (0, 1),
            Digit::D3 => (0, 2),
            Digit::A => (0, 3),
            Digit::D4 => (1, 0),
            Digit::D5 => (1, 1),
            Digit::D6 => (1, 2),
            Digit::B => (1, 3),
            Digit::D7 => (2, 0),
            Digit::D8 => (2, 1),
            Digit::D9 => (2, 2),
            Digit::C => (2, 3),
            Digit::Star => (3, 0),
            Digit::D0 => (3, 1),
            Digit::Hash => (3, 2),
            Digit::D => (3, 3),
        };
        (ROWS[r], COLS[c])
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Reads the key from a SIP INFO body, given its Content-Type: `application/dtmf-relay`
/// (`Signal=5` + `Duration=160` lines, the de-facto format of Cisco and most phones) or
/// `application/dtmf` (the key alone). Parameters and case in the content type are ignored.
pub fn parse_sip_info(content_type: &str, body: &str) -> Result<Digit, SipInfoError> {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let key = match ct.as_str() {
        "application/dtmf-relay" => body
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
            })
            .ok_or(SipInfoError::NoSignal)?,
        "application/dtmf" => body.trim(),
        _ => return Err(SipInfoError::ContentType(content_type.trim().to_string())),
    };
    Digit::parse(key).ok_or_else(|| SipInfoError::BadKey(key.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipInfoError {
    #[error("INFO body type {0:?} is not application/dtmf-relay or application/dtmf")]
    ContentType(String),
    #[error("application/dtmf-relay body has no Signal= line")]
    NoSignal,
    #[error("{0:?} is not a DTMF key (0-9, *, #, A-D)")]
    BadKey(String),
}

/// Where a DTMF digit was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RTP telephone-event (RFC 4733).
    Rfc4733,
    /// SIP INFO (`application/dtmf-relay` or `application/dtmf`), injected by the SIP layer.
    SipInfo,
    /// Tones detected in the audio.
    InBand,
}

/// The 4-byte RFC 4733 §2.3 payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// Duration in timestamp units since the event's start.
    pub duration: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelephoneEventError {
    #[error("telephone-event payload is {0} bytes, need at least 4")]
    TooShort(usize),
    #[error("telephone-event payload length {0} is not a multiple of 4")]
    BadLength(usize),
}

impl TelephoneEvent {
    /// Parses the first event of a payload. RFC 4733 §2.5.1.5 allows several 4-byte
    /// blocks (redundancy for earlier events); the last block is the current event.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, TelephoneEventError> {
        if payload.len() < 4 {
            return Err(TelephoneEventError::TooShort(payload.len()));
        }
        if !payload.len().is_multiple_of(4) {
            return Err(TelephoneEventError::BadLength(payload.len()));
        }
        let b = &payload[payload.len() - 4..];
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, (self.end as u8) << 7 | (self.volume & 0x3F), d[0], d[1]]
    }

    pub fn digit(self) -> Option<Digit> {
        Digit::from_event_code(self.event)
    }
}

/// Turns a stream of RFC 4733 packets into one report per key press.
///
/// A sender repeats the event every 50 ms while the key is down and sends the end
/// packet three times (§2.5.1.4); all carry the event's start timestamp. We report a
/// digit on the first packet of a new event (so barge-in is immediate) and swallow the
/// rest, including late or reordered repeats. Events longer than the 16-bit duration
/// field (§2.5.2.1, ~8 s) continue under a new timestamp; that continuation is not a
/// new key press.
#[derive(Debug, Default, Clone)]
pub struct EventDeduplicator {
    current: Option<Current>,
    /// (SSRC, timestamp) of recent earlier events, to recognise their stragglers.
    recent: std::collections::VecDeque<(u32, u32)>,
}

const RECENT_EVENTS: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Current {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    ended: bool,
    duration: u16,
}

impl EventDeduplicator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one telephone-event packet (its RTP SSRC and timestamp plus payload).
    /// Returns the digit when this packet starts a new key press.
    pub fn push(&mut self, ssrc: u32, timestamp: u32, ev: TelephoneEvent) -> Option<Digit> {
        if let Some(cur) = &mut self.current {
            if cur.ssrc == ssrc && cur.timestamp == timestamp {
                cur.ended |= ev.end;
                cur.duration = cur.duration.max(ev.duration);
                return None;
            }
            // Repeats of an earlier event arriving after a newer one started. Matching
            // on the exact start timestamp (not "older than") keeps a genuinely new event
            // from a sender whose timestamps jumped back (e.g. replayed captures) intact.
            if self.recent.contains(&(ssrc, timestamp)) {
                return None;
            }
            let continuation = cur.ssrc == ssrc
                && !cur.ended
                && cur.event == ev.event
                && cur.duration >= 0xFF00
                && timestamp.wrapping_sub(cur.timestamp) <= 0x1_0000;
            if continuation {
                *cur = Current { ssrc, timestamp, event: ev.event, ended: ev.end, duration: ev.duration };
                return None;
            }
        }
        if let Some(prev) = self.current {
            if self.recent.len() == RECENT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back((prev.ssrc, prev.timestamp));
        }
        self.current = Some(Current { ssrc, timestamp, event: ev.event, ended: ev.end, duration: ev.duration });
        ev.digit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn payload_round_trip_and_rfc_example() {
        // RFC 4733 figure: event 5, end bit, volume 10, duration 800.
        let e = TelephoneEvent { event: 5, end: true, volume: 10, duration: 800 };
        let b = e.to_bytes();
        assert_eq!(b, [5, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&b), Ok(e));
        assert_eq!(e.digit(), Some(Digit::D5));
        assert_eq!(TelephoneEvent::parse(&[1, 2]), Err(TelephoneEventError::TooShort(2)));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3, 4, 5]), Err(TelephoneEventError::BadLength(5)));
        // The reserved bit is ignored.
        assert_eq!(TelephoneEvent::parse(&[11, 0x40 | 7, 0, 160]).unwrap().volume, 7);
    }

    #[test]
    fn one_key_press_with_three_end_packets_is_one_digit() {
        let mut d = EventDeduplicator::new();
        let ts = 1000;
        let mut got = Vec::new();
        for (dur, end) in [(160, false), (320, false), (480, false), (640, true), (640, true), (640, true)] {
            got.extend(d.push(7, ts, TelephoneEvent { event: 1, end, volume: 10, duration: dur }));
        }
        assert_eq!(got, vec![Digit::D1]);
        // Same key pressed again: new timestamp, new digit.
        got.extend(d.push(7, ts + 2000, TelephoneEvent { event: 1, end: false, volume: 10, duration: 160 }));
        // A late end packet of the first press does not re-trigger.
        got.extend(d.push(7, ts, TelephoneEvent { event: 1, end: true, volume: 10, duration: 640 }));
        assert_eq!(got, vec![Digit::D1, Digit::D1]);
    }

    #[test]
    fn a_new_event_with_an_older_timestamp_is_still_a_new_press() {
        // SIPp's dtmf_2833_*.pcap files come from one capture: replayed in key order the
        // timestamps jump back and forth.
        let mut d = EventDeduplicator::new();
        let e = |event| TelephoneEvent { event, end: false, volume: 10, duration: 160 };
        assert_eq!(d.push(1, 67840, e(9)), Some(Digit::D9));
        assert_eq!(d.push(1, 17632, e(0)), Some(Digit::D0));
        assert_eq!(d.push(1, 67840, e(9)), None, "straggler of the previous press");
    }

    #[test]
    fn only_end_packets_received_still_reports_the_digit() {
        let mut d = EventDeduplicator::new();
        let e = TelephoneEvent { event: 11, end: true, volume: 10, duration: 800 };
        assert_eq!(d.push(1, 5, e), Some(Digit::Hash));
        assert_eq!(d.push(1, 5, e), None);
    }

    #[test]
    fn long_event_continuation_is_not_a_new_press() {
        let mut d = EventDeduplicator::new();
        assert_eq!(d.push(1, 0, TelephoneEvent { event: 9, end: false, volume: 10, duration: 0xFFFF }), Some(Digit::D9));
        assert_eq!(d.push(1, 0xFFFF, TelephoneEvent { event: 9, end: false, volume: 10, duration: 160 }), None);
    }

    #[test]
    fn sip_info_bodies() {
        assert_eq!(parse_sip_info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"), Ok(Digit::D5));
        assert_eq!(parse_sip_info("Application/DTMF-Relay; charset=x", "signal = #\nDuration=250"), Ok(Digit::Hash));
        assert_eq!(parse_sip_info("application/dtmf", "11\r\n"), Ok(Digit::Hash));
        assert_eq!(parse_sip_info("application/dtmf-relay", "Duration=160"), Err(SipInfoError::NoSignal));
        assert_eq!(parse_sip_info("application/dtmf-relay", "Signal=X"), Err(SipInfoError::BadKey("X".into())));
        assert!(matches!(parse_sip_info("text/plain", "5"), Err(SipInfoError::ContentType(_))));
    }

    #[test]
    fn sip_info_key_syntax() {
        assert_eq!(Digit::parse("5"), Some(Digit::D5));
        assert_eq!(Digit::parse(" * "), Some(Digit::Star));
        assert_eq!(Digit::parse("11"), Some(Digit::Hash));
        assert_eq!(Digit::parse("d"), Some(Digit::D));
        assert_eq!(Digit::parse("E"), None);
        assert_eq!(Digit::parse("12"), None);
        assert_eq!(Digit::parse(""), None);
    }

    proptest! {
        #[test]
        fn any_sequence_of_presses_yields_each_once(
            presses in proptest::collection::vec((0u8..16, 1usize..6, 0usize..3), 1..20)
        ) {
            let mut d = EventDeduplicator::new();
            let mut ts = 12345u32;
            let mut got = Vec::new();
            for &(ev, updates, dup_extra) in &presses {
                for i in 0..updates {
                    got.extend(d.push(9, ts, TelephoneEvent { event: ev, end: false, volume: 10, duration: 160 * (i as u16 + 1) }));
                }
                for _ in 0..3 + dup_extra {
                    got.extend(d.push(9, ts, TelephoneEvent { event: ev, end: true, volume: 10, duration: 160 * updates as u16 }));
                }
                ts = ts.wrapping_add(160 * updates as u32 + 800);
            }
            let want: Vec<Digit> = presses.iter().map(|p| Digit::from_event_code(p.0).unwrap()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
