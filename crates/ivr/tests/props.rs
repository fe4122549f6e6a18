//! No event sequence keeps a caller in the dialogue or leaves them in silence.

use jiff::Timestamp;
use proptest::prelude::*;
use veertien_core::{CallInfo, Decision, Plan, Settings, decide};
use veertien_ivr::{Action, Dialogue, DialogueConfig, DialogueOutcome, Event};

const CODES: [&str; 6] = ["0113", "035", "020", "023", "0570", "026"];
const SAID: [&str; 12] = [
    "Kapelle",
    "Goes",
    "Velp",
    "Epe",
    "Haarlemmermeer",
    "Hilversum",
    "ja",
    "nee",
    "ehm",
    "Amsterdam",
    "Deventer",
    "qwx",
];

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => Just(Event::PromptFinished),
        3 => Just(Event::Timeout),
        2 => Just(Event::SpeechStarted),
        2 => Just(Event::NotUnderstood),
        1 => Just(Event::Start),
        1 => Just(Event::HangUp),
        3 => prop::sample::select(vec!['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#']).prop_map(|key| Event::Dtmf { key }),
        4 => (prop::sample::select(SAID.to_vec()), 0.0f32..=1.0).prop_map(|(t, confidence)| Event::Heard { text: t.into(), confidence }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_event_sequence_ends_in_an_outcome_within_a_bound_and_never_in_silence(
        code in prop::sample::select(CODES.to_vec()),
        operator in any::<bool>(),
        speech in any::<bool>(),
        events in prop::collection::vec(event(), 0..120),
    ) {
        let plan = Plan::builtin();
        let settings = Settings::defaults(plan);
        let now: Timestamp = "2026-11-23T09:30:00Z".parse().unwrap();
        let dialled = format!("14{code}");
        let decision = decide(&CallInfo { dialled: &dialled, caller: None }, plan, &settings, now);
        prop_assert!(matches!(decision, Decision::Ask { .. }), "{:?}", decision);
        let config = DialogueConfig { speech, operator: operator.then(|| "sip:operator@example.nl".to_string()), ..DialogueConfig::default() };
        let max_events = config.max_events as usize;
        let max_misses = config.max_misses as usize;
        let mut d = Dialogue::new(&decision, plan, &settings, config, now).unwrap();

        let mut actions = Vec::new();
        let mut steps = 0usize;
        let mut outcome = None;
        let mut last_play_had_input = None;
        let mut feed = |d: &mut Dialogue, e: Event, steps: &mut usize, outcome: &mut Option<DialogueOutcome>| -> Result<(), TestCaseError> {
            *steps += 1;
            let is_timeout = e == Event::Timeout;
            let was_done = d.is_done();
            let out = d.handle(e, *steps as u64 * 100);
            if !was_done && is_timeout && outcome.is_none() && d_started(&actions) {
                // Never silence: a no-input timeout always makes the caller hear something.
                prop_assert!(out.iter().any(|a| matches!(a, Action::Play { .. } | Action::Finish { .. })), "silent after a timeout: {out:?}");
            }
            for a in &out {
                match a {
                    Action::Play { input, .. } => last_play_had_input = Some(input.is_some()),
                    Action::Finish { outcome: o } => {
                        prop_assert!(outcome.is_none(), "finished twice");
                        if *o != DialogueOutcome::CallerHungUp {
                            // Every non-hang-up ending is preceded by a closing message.
                            prop_assert_eq!(last_play_had_input, Some(false));
                        }
                        *outcome = Some(o.clone());
                    }
                    Action::StopPrompt => {}
                }
            }
            if was_done {
                prop_assert!(out.is_empty());
            }
            actions.extend(out);
            Ok(())
        };
        feed(&mut d, Event::Start, &mut steps, &mut outcome)?;
        for e in events {
            feed(&mut d, e, &mut steps, &mut outcome)?;
        }
        // Then the caller falls silent: the driver reports prompt ends and no-input timeouts.
        let before = steps;
        while outcome.is_none() {
            feed(&mut d, Event::PromptFinished, &mut steps, &mut outcome)?;
            if outcome.is_none() {
                feed(&mut d, Event::Timeout, &mut steps, &mut outcome)?;
            }
            prop_assert!(steps <= max_events + 4, "no end after {steps} events");
        }
        if before < max_events {
            // From any state, silence ends the dialogue in a few prompts.
            prop_assert!(steps - before <= 2 * max_misses + 4, "silence took {} events", steps - before);
        }
        prop_assert!(d.is_done());
        prop_assert!(matches!(
            outcome,
            Some(DialogueOutcome::Deliver { .. } | DialogueOutcome::Announce { .. } | DialogueOutcome::Operator { .. } | DialogueOutcome::CallerHungUp)
        ), "{:?}", outcome);
        // The log is JSON for the call record and ends with the outcome.
        let json: serde_json::Value = serde_json::from_str(&d.log().to_json()).unwrap();
        prop_assert_eq!(json["entries"].as_array().and_then(|e| e.last()).and_then(|e| e["what"].as_str()), Some("outcome"));
    }
}

fn d_started(actions: &[Action]) -> bool {
    !actions.is_empty()
}
