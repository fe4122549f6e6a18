//! Messages without a dialogue: the notice for a top-level `Decision::Announce` (a
//! municipality alone on its area code that is closed, in calamity or not connected), the
//! "cannot be reached" message after a failed bridge, and the ringing tone a caller hears
//! while the IVR puts them through.
//!
//! [`play`] speaks prompts on the caller's media leg and hands the socket back, like
//! [`crate::run`]; every wait is bounded by the prompts' length plus a margin.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use veertien_core::{AnnounceReason, Decision, Lang};
use veertien_media::pacer::{Prompt as MediaPrompt, PromptAudio};
use veertien_media::ports::MediaSocket;
use veertien_media::sdp::Negotiated;
use veertien_media::session::{MediaEvent, MediaSession, SessionConfig, SessionStats};

use crate::dialogue::AnnounceKind;
use crate::driver::{PlanView, Signal};
use crate::library::PromptLibrary;
use crate::prompts::{Prompt, prompt_lang};

/// The spoken notice for a top-level `Decision::Announce`; `None` for other decisions.
/// Mirrors what the dialogue says when a caller chose such a municipality.
pub fn announcement(decision: &Decision) -> Option<(Prompt, AnnounceKind)> {
    let Decision::Announce {
        municipality,
        reason,
        general_number,
        forward_to,
        message,
        opens_at,
        ..
    } = decision
    else {
        return None;
    };
    // The prompt names it the way people say it, as the dialogue does ("Den Bosch").
    let name = municipality.everyday_name.clone();
    Some(match reason {
        AnnounceReason::NotConnected => (
            Prompt::NotConnected {
                name,
                number: general_number.raw.clone(),
                forwarding: forward_to.is_some(),
            },
            AnnounceKind::NotConnected,
        ),
        AnnounceReason::Closed => (
            Prompt::Closed {
                name,
                opens: opens_at.as_deref().and_then(opening),
            },
            AnnounceKind::Closed,
        ),
        AnnounceReason::Calamity => (
            Prompt::Calamity {
                name,
                message: message.clone(),
            },
            AnnounceKind::Calamity,
        ),
    })
}

/// "2026-11-23T08:30:00+01:00" → (weekday Monday = 0, 8, 30), as the prompt reads it.
fn opening(rfc3339: &str) -> Option<(u8, i8, i8)> {
    let z: jiff::Zoned = rfc3339.parse().ok().or_else(|| {
        let ts: jiff::Timestamp = rfc3339.parse().ok()?;
        ts.in_tz("Europe/Amsterdam").ok()
    })?;
    Some((z.weekday().to_monday_zero_offset() as u8, z.hour(), z.minute()))
}

/// What [`play`] needs.
pub struct PlaySetup {
    pub socket: MediaSocket,
    pub negotiated: Negotiated,
    pub prompts: Vec<Prompt>,
    pub lang: Lang,
    pub library: Arc<PromptLibrary>,
    pub routing: Arc<dyn PlanView>,
    pub media: SessionConfig,
    /// Added to the prompts' length before giving up waiting for their end.
    pub margin: Duration,
}

/// How [`play`] ended.
pub struct Played {
    pub socket: MediaSocket,
    /// The caller hung up (BYE/CANCEL signal, or no RTP for the media timeout) first.
    pub hung_up: bool,
    /// Every prompt played to its end.
    pub complete: bool,
    /// The texts played, for the call record.
    pub texts: Vec<String>,
    /// Prompts whose audio could not be rendered (logged).
    pub missing: Vec<String>,
    pub duration_ms: u64,
    pub media: SessionStats,
}

/// Plays `prompts` in order without barge-in and returns once the last has ended, the caller
/// hung up, or the prompts' length plus `margin` has passed.
pub async fn play(setup: PlaySetup, mut signals: mpsc::Receiver<Signal>) -> Played {
    let PlaySetup {
        socket,
        negotiated,
        prompts,
        lang,
        library,
        routing,
        media,
        margin,
    } = setup;
    let started = Instant::now();
    let texts: Vec<String> = prompts.iter().map(|p| p.text(prompt_lang(lang))).collect();
    // Rendering may run espeak-ng for a piece never heard before: off the async workers.
    let rendered = {
        let (lib, routing) = (library.clone(), routing.clone());
        tokio::task::spawn_blocking(move || {
            prompts
                .iter()
                .map(|p| {
                    lib.render(p, lang, routing.plan())
                        .or_else(|_| lib.render(p, Lang::Nl, routing.plan()))
                        .map(|r| r.pcm)
                        .map_err(|e| format!("{}: {e}", p.id()))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
    };
    let (session, mut events) = MediaSession::start(socket, negotiated, media);
    let mut missing = Vec::new();
    let mut total = 0usize;
    let mut last = None;
    for (i, r) in rendered.into_iter().enumerate() {
        match r {
            Ok(pcm) => {
                total += pcm.len();
                let id = i as u64 + 1;
                let _ = session.play(MediaPrompt { id, audio: PromptAudio::Pcm(pcm), barge_in: false }).await;
                last = Some(id);
            }
            Err(e) => {
                tracing::error!(error = %e, "announcement audio missing");
                missing.push(e);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_millis(total as u64 / 8) + margin;
    let mut hung_up = false;
    let mut complete = last.is_none();
    let mut signals_open = true;
    while !complete && !hung_up {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(MediaEvent::PromptFinished { id, .. }) if Some(id) == last => complete = true,
                Some(MediaEvent::MediaTimeout { .. }) | None => hung_up = true,
                Some(_) => {}
            },
            s = signals.recv(), if signals_open => match s {
                Some(Signal::HangUp) => hung_up = true,
                Some(Signal::Dtmf(_)) => {}
                None => signals_open = false,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let (socket, stats) = session.finish().await;
    Played {
        socket,
        hung_up,
        complete,
        texts,
        missing,
        duration_ms: started.elapsed().as_millis() as u64,
        media: stats,
    }
}

/// The Dutch ringing tone (425 Hz, 1 s on, 4 s off; ETSI ES 201 970 for NL), 60 s of it at
/// 8 kHz, built once per process and shared: played to a caller the IVR already answered
/// while the municipality's phone rings, so the wait is not silence.
pub fn ringback_tone() -> Arc<[i16]> {
    static TONE: LazyLock<Arc<[i16]>> = LazyLock::new(|| {
        let cycle = 5 * 8000;
        (0..12 * cycle)
            .map(|i| {
                let t = i % cycle;
                if t < 8000 {
                    let x = (2.0 * std::f32::consts::PI * 425.0 * t as f32 / 8000.0).sin();
                    // About -13 dBm0: clearly audible, far from clipping after G.711.
                    (x * 6000.0) as i16
                } else {
                    0
                }
            })
            .collect()
    });
    TONE.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ringback_is_one_second_on_four_off() {
        let t = ringback_tone();
        assert_eq!(t.len(), 60 * 8000);
        let energy = |r: std::ops::Range<usize>| t[r].iter().map(|&s| (s as f64).powi(2)).sum::<f64>();
        assert!(energy(0..8000) > 1e9);
        assert_eq!(energy(8000..40_000), 0.0);
        assert!(energy(40_000..48_000) > 1e9);
    }

    #[test]
    fn announcement_for_a_closed_unique_area_code_names_the_municipality() {
        use veertien_core::{CallInfo, Settings, decide};
        let plan = veertien_core::Plan::builtin();
        // A municipality alone on its area code, made "not connected".
        let area = plan.area_codes().iter().find(|a| a.municipalities.len() == 1).expect("unique codes exist");
        let id = area.municipalities[0];
        let settings = Settings::defaults(plan);
        let mut s = settings.get(id).clone();
        s.status = veertien_core::ConnectionStatus::NotConnected;
        let settings = settings.with(id, s);
        let d = decide(&CallInfo { dialled: &area.fourteen, caller: None }, plan, &settings, jiff::Timestamp::now());
        let (prompt, kind) = announcement(&d).expect("an announcement");
        assert_eq!(kind, AnnounceKind::NotConnected);
        let text = prompt.text(Lang::Nl);
        assert!(text.contains(&plan.municipality(id).everyday_name), "{text}");
        assert!(text.contains("niet aangesloten"), "{text}");
        assert!(announcement(&Decision::Reject { reason: veertien_core::RejectReason::Malformed(veertien_core::NormaliseError::Empty) }).is_none());
    }
}
