//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA).
//!
//! Written by hand on purpose: the codec is ~40 lines of integer arithmetic fixed by the
//! standard since 1972, and the crates that offer it either pull in a full media framework
//! or are unmaintained one-offs. Decoding uses 256-entry tables built at compile time;
//! encoding uses the segment search of the reference implementation (Sun Microsystems'
//! public-domain g711.c), which is bit-exact with ITU-T G.191's reference.

/// The two G.711 laws, with their static RTP payload types (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, RTP payload type 0.
    Pcmu,
    /// A-law, RTP payload type 8.
    Pcma,
}

impl Codec {
    /// Static RTP payload type (RFC 3551 table 4).
    pub const fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name as used in SDP `a=rtpmap`.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The code a sample of digital silence encodes to (used to pad frames).
    pub const fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// Codec for a static payload type, if it is one of ours.
    pub const fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// Codec for an SDP encoding name (case-insensitive, per RFC 4566 §6).
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }

    #[inline]
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(s),
            Codec::Pcma => alaw_encode(s),
        }
    }

    #[inline]
    pub fn decode_sample(self, c: u8) -> i16 {
        match self {
            Codec::Pcmu => ULAW_TO_LINEAR[c as usize],
            Codec::Pcma => ALAW_TO_LINEAR[c as usize],
        }
    }

    /// Encodes `pcm` and appends one byte per sample to `out`.
    pub fn encode(self, pcm: &[i16], out: &mut Vec<u8>) {
        out.reserve(pcm.len());
        match self {
            Codec::Pcmu => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
            Codec::Pcma => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
        }
    }

    /// Decodes `payload` and appends one sample per byte to `out`.
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            Codec::Pcmu => &ULAW_TO_LINEAR,
            Codec::Pcma => &ALAW_TO_LINEAR,
        };
        out.reserve(payload.len());
        out.extend(payload.iter().map(|&c| table[c as usize]));
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;
const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

#[inline]
const fn search(val: i32, table: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if val <= table[i] {
            return i;
        }
        i += 1;
    }
    8
}

/// Linear 16-bit sample to µ-law.
#[inline]
pub const fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 2;
    let mask: i32 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS >> 2;
    let seg = search(pcm, &SEG_UEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let uval = ((seg as i32) << 4) | ((pcm >> (seg + 1)) & 0xF);
    (uval ^ mask) as u8
}

/// µ-law to linear 16-bit sample.
#[inline]
pub const fn ulaw_decode(code: u8) -> i16 {
    let u = !code as i32;
    let mut t = ((u & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { ULAW_BIAS - t } else { t - ULAW_BIAS }) as i16
}

/// Linear 16-bit sample to A-law.
#[inline]
pub const fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 3;
    let mask: i32 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = search(pcm, &SEG_AEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut aval = (seg as i32) << 4;
    if seg < 2 {
        aval |= (pcm >> 1) & 0xF;
    } else {
        aval |= (pcm >> seg) & 0xF;
    }
    (aval ^ mask) as u8
}

/// A-law to linear 16-bit sample.
#[inline]
pub const fn alaw_decode(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn build_table(ulaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if ulaw { ulaw_decode(i as u8) } else { alaw_decode(i as u8) };
        i += 1;
    }
    t
}

static ULAW_TO_LINEAR: [i16; 256] = build_table(true);
static ALAW_TO_LINEAR: [i16; 256] = build_table(false);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_from_g711_tables() {
        // Reference points from ITU-T G.711 tables 1a/2a (as 16-bit linear).
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_round_trips_through_its_decoded_value() {
        for c in 0..=255u8 {
            // µ-law has two codes for zero (0x7F and 0xFF); both decode to 0 which encodes to 0xFF.
            let d = ulaw_decode(c);
            let back = ulaw_encode(d);
            assert_eq!(ulaw_decode(back), d, "µ-law code {c:#04x}");
            if c != 0x7F {
                assert_eq!(back, c, "µ-law code {c:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law code {c:#04x}");
        }
    }

    #[test]
    fn slice_api_matches_sample_api() {
        let pcm: Vec<i16> = (0..160).map(|i| ((i as f32 * 0.3).sin() * 12000.0) as i16).collect();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut enc = Vec::new();
            codec.encode(&pcm, &mut enc);
            assert_eq!(enc.len(), 160);
            let mut dec = Vec::new();
            codec.decode(&enc, &mut dec);
            for (i, (&a, &b)) in pcm.iter().zip(&dec).enumerate() {
                assert_eq!(codec.decode_sample(codec.encode_sample(a)), b, "sample {i}");
            }
        }
    }

    fn max_step(s: i16) -> i32 {
        // Quantisation step in the segment holding |s|, 16-bit scale: 8 at the bottom,
        // doubling per segment up to 1024 (µ-law) / 1024 (A-law).
        let a = (s as i32).abs();
        let mut step = 16;
        let mut edge = 256;
        while a >= edge && step < 2048 {
            step *= 2;
            edge *= 2;
        }
        step
    }

    proptest! {
        #[test]
        fn quantisation_error_is_within_half_a_step(s in any::<i16>()) {
            let u = ulaw_decode(ulaw_encode(s)) as i32;
            let a = alaw_decode(alaw_encode(s)) as i32;
            let clip = |v: i32, lim: i32| v.clamp(-lim, lim);
            prop_assert!((u - clip(s as i32, 32124)).abs() <= max_step(s), "µ-law {s} -> {u}");
            prop_assert!((a - clip(s as i32, 32256)).abs() <= max_step(s), "A-law {s} -> {a}");
        }

        #[test]
        fn encoding_is_monotonic(a in any::<i16>(), b in any::<i16>()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(ulaw_decode(ulaw_encode(lo)) <= ulaw_decode(ulaw_encode(hi)));
            prop_assert!(alaw_decode(alaw_encode(lo)) <= alaw_decode(alaw_encode(hi)));
        }
    }
}
