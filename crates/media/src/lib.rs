//! The media plane of veertien.
//!
//! Structured like quinn: the protocol and signal-processing pieces are pure, I/O-free
//! state machines tested on their own ([`g711`], [`rtp`], [`dtmf`], [`inband`], [`vad`],
//! [`jitter`], [`pacer`], [`sdp`]); [`session`] (the IVR's media leg) and [`relay`] (the
//! B2BUA's RTP relay) are thin tokio drivers around them, and [`ports`] hands out UDP
//! ports from a bounded range.

pub mod dtmf;
pub mod g711;
pub mod rtp;
pub mod inband;
pub mod jitter;
pub mod pacer;
pub mod vad;
pub mod sdp;
pub mod ports;
pub mod session;
pub mod relay;
