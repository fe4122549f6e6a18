//! The dialogue over the real national plan: every path a caller can take on real shared area codes.

use jiff::Timestamp;
use veertien_core::{
    Calamity, CallInfo, ConnectionStatus, Decision, MunicipalityId, Plan, Settings, decide,
};
use veertien_ivr::{
    Action, AnnounceKind, Dialogue, DialogueConfig, DialogueOutcome, Event, Grammar, Prompt,
};

fn plan() -> &'static Plan {
    Plan::builtin()
}

fn id(name: &str) -> MunicipalityId {
    plan()
        .by_name(name)
        .unwrap_or_else(|| panic!("no municipality {name}"))
}

/// A Monday morning: every default municipality is open.
fn now() -> Timestamp {
    "2026-11-23T09:30:00Z".parse().unwrap()
}

fn ask(code: &str, settings: &Settings) -> Decision {
    let dialled = format!("14{code}");
    let d = decide(
        &CallInfo {
            dialled: &dialled,
            caller: None,
        },
        plan(),
        settings,
        now(),
    );
    assert!(
        matches!(d, Decision::Ask { .. }),
        "14{code} should ask: {d:?}"
    );
    d
}

/// Feeds events to a dialogue, collecting actions, until it finishes.
struct Call<'a> {
    d: Dialogue<'a>,
    t: u64,
    actions: Vec<Action>,
}

impl<'a> Call<'a> {
    fn new(code: &str, settings: &'a Settings, config: DialogueConfig) -> Call<'a> {
        let decision = ask(code, settings);
        let mut d =
            Dialogue::new(&decision, plan(), settings, config, now()).expect("an Ask decision");
        let actions = d.handle(Event::Start, 0);
        Call { d, t: 0, actions }
    }

    fn send(&mut self, e: Event) -> Vec<Action> {
        self.t += 700;
        let a = self.d.handle(e, self.t);
        self.actions.extend(a.clone());
        a
    }

    fn heard(&mut self, text: &str, confidence: f32) -> Vec<Action> {
        self.send(Event::Heard {
            text: text.into(),
            confidence,
        })
    }

    /// Asserts the dialogue asks "Bedoelt u `name`?" and answers yes with key 1.
    fn yes_to(&mut self, name: &str) -> Vec<Action> {
        let (prompts, text) = self.last_prompt();
        assert!(
            matches!(&prompts[..], [Prompt::Confirm { name: n }] if n == name),
            "expected \"Bedoelt u {name}?\", got {text:?}"
        );
        self.key('1')
    }

    fn key(&mut self, k: char) -> Vec<Action> {
        self.send(Event::Dtmf { key: k })
    }

    /// The caller stays silent and lets prompts play.
    fn silence(&mut self) -> Vec<Action> {
        let mut a = self.send(Event::PromptFinished);
        a.extend(self.send(Event::Timeout));
        a
    }

    /// The last prompt plays to its end; returns the outcome if the dialogue finished.
    fn outcome(&mut self) -> Option<DialogueOutcome> {
        self.send(Event::PromptFinished);
        self.finished()
    }

    fn finished(&self) -> Option<DialogueOutcome> {
        self.actions.iter().find_map(|a| match a {
            Action::Finish { outcome } => Some(outcome.clone()),
            _ => None,
        })
    }

    fn last_prompt(&self) -> (Vec<Prompt>, String) {
        self.actions
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Play { prompts, text, .. } => Some((prompts.clone(), text.clone())),
                _ => None,
            })
            .expect("a prompt was played")
    }
}

fn delivered(o: Option<DialogueOutcome>) -> String {
    match o {
        Some(DialogueOutcome::Deliver {
            municipality,
            decision,
        }) => {
            assert!(
                matches!(*decision, Decision::Forward { .. }),
                "{decision:?}"
            );
            municipality.name
        }
        other => panic!("expected Deliver, got {other:?}"),
    }
}

fn digit_of(decision: &Decision, name: &str) -> char {
    let Decision::Ask { candidates, .. } = decision else {
        unreachable!()
    };
    let c = candidates
        .iter()
        .find(|c| c.municipality.name == name)
        .unwrap_or_else(|| panic!("{name} not a candidate"));
    char::from_digit(u32::from(c.digit.expect("has a digit")) % 10, 10).unwrap()
}

#[test]
fn welcome_asks_for_a_name_and_listens_for_names_with_keys_as_barge_in() {
    let s = Settings::defaults(plan());
    let c = Call::new("0113", &s, DialogueConfig::default());
    match &c.actions[..] {
        [
            Action::Play {
                prompts,
                text,
                input: Some(input),
            },
        ] => {
            assert_eq!(prompts, &vec![Prompt::Welcome, Prompt::AskName]);
            assert!(
                text.starts_with("Welkom") && text.contains("Zeg de naam van uw gemeente"),
                "{text}"
            );
            let Some(Grammar::Names { candidates }) = &input.speech else {
                panic!("{input:?}")
            };
            assert_eq!(candidates.len(), 5);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_keypad_digit_on_0113_and_035_puts_through_to_its_municipality_even_during_the_welcome() {
    let s = Settings::defaults(plan());
    for code in ["0113", "035"] {
        let decision = ask(code, &s);
        let Decision::Ask { candidates, .. } = &decision else {
            unreachable!()
        };
        assert!(candidates.len() >= 5);
        for cand in candidates.iter().filter(|c| c.digit.is_some()) {
            let mut c = Call::new(code, &s, DialogueConfig::default());
            let a = c.key(digit_of(&decision, &cand.municipality.name));
            assert_eq!(
                a.first(),
                Some(&Action::StopPrompt),
                "a key stops the welcome"
            );
            let (_, text) = c.last_prompt();
            assert!(
                text.starts_with("Even geduld, u wordt doorverbonden met de gemeente"),
                "{text}"
            );
            assert_eq!(delivered(c.outcome()), cand.municipality.name, "{code}");
        }
    }
}

#[test]
fn a_clear_name_is_put_through_without_confirmation() {
    let s = Settings::defaults(plan());
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.send(Event::SpeechStarted);
    c.heard("Kapelle", 0.97);
    assert_eq!(delivered(c.outcome()), "Kapelle");
    assert!(!c.actions.iter().any(|a| matches!(a, Action::Play { prompts, .. } if matches!(prompts[0], Prompt::Confirm { .. }))));
    let log = c.d.log().to_json();
    assert!(
        log.contains("\"what\":\"heard\"") && log.contains("Kapelle") && log.contains("barge_in"),
        "{log}"
    );
}

#[test]
fn a_medium_confidence_name_is_confirmed_by_voice_or_key() {
    let s = Settings::defaults(plan());
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.heard("Kapelle", 0.6);
    let (prompts, text) = c.last_prompt();
    assert_eq!(
        prompts,
        vec![Prompt::Confirm {
            name: "Kapelle".into()
        }]
    );
    assert_eq!(
        text,
        "Bedoelt u Kapelle? Zeg ja of toets 1. Zeg nee of toets 2."
    );
    c.heard("ja", 0.9);
    assert_eq!(delivered(c.outcome()), "Kapelle");

    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.heard("Kapelle", 0.6);
    c.key('1');
    assert_eq!(delivered(c.outcome()), "Kapelle");

    // "No" leads to the keypad menu, where the caller picks.
    let decision = ask("0113", &s);
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.heard("Kapelle", 0.6);
    c.heard("nee", 0.9);
    let (prompts, _) = c.last_prompt();
    assert!(
        matches!(&prompts[..], [Prompt::Menu { items }] if items.len() == 5),
        "{prompts:?}"
    );
    c.key(digit_of(&decision, "Goes"));
    assert_eq!(delivered(c.outcome()), "Goes");
}

#[test]
fn silence_leads_to_the_keypad_menu_then_a_digit_delivers() {
    let s = Settings::defaults(plan());
    let decision = ask("0113", &s);
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.silence();
    let (prompts, text) = c.last_prompt();
    assert!(
        matches!(&prompts[..], [Prompt::Menu { .. }]),
        "silence needs no 'not understood': {prompts:?}"
    );
    for name in [
        "Borsele",
        "Goes",
        "Kapelle",
        "Noord-Beveland",
        "Reimerswaal",
    ] {
        assert!(text.contains(&format!("Voor {name}, toets")), "{text}");
    }
    c.key(digit_of(&decision, "Reimerswaal"));
    assert_eq!(delivered(c.outcome()), "Reimerswaal");
}

#[test]
fn garbage_or_a_weak_match_says_not_understood_and_offers_the_menu() {
    let s = Settings::defaults(plan());
    for ev in [
        Event::NotUnderstood,
        Event::Heard {
            text: "blub blabla".into(),
            confidence: 0.9,
        },
        Event::Heard {
            text: "Goes".into(),
            confidence: 0.2,
        },
    ] {
        let mut c = Call::new("0113", &s, DialogueConfig::default());
        c.send(ev.clone());
        let (prompts, text) = c.last_prompt();
        assert!(
            matches!(&prompts[..], [Prompt::NotUnderstood, Prompt::Menu { .. }]),
            "{ev:?}: {prompts:?}"
        );
        assert!(text.starts_with("Ik heb u niet verstaan."), "{text}");
    }
}

#[test]
fn a_second_miss_goes_to_the_operator_when_the_group_has_one() {
    let s = Settings::defaults(plan());
    let config = DialogueConfig {
        operator: Some("sip:operator@goes.example".into()),
        ..DialogueConfig::default()
    };
    let mut c = Call::new("0113", &s, config);
    c.silence();
    c.key('#');
    assert_eq!(c.last_prompt().0, vec![Prompt::Operator]);
    assert_eq!(
        c.outcome(),
        Some(DialogueOutcome::Operator {
            destination: "sip:operator@goes.example".into()
        })
    );
}

#[test]
fn without_an_operator_the_menu_repeats_and_then_a_clear_goodbye_ends_the_call() {
    let s = Settings::defaults(plan());
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.silence();
    c.silence();
    assert!(matches!(
        &c.last_prompt().0[..],
        [Prompt::NotUnderstood, Prompt::Menu { .. }]
    ));
    c.silence();
    let (prompts, text) = c.last_prompt();
    assert_eq!(prompts, vec![Prompt::NoChoice]);
    assert!(text.contains("algemene nummer"), "{text}");
    assert!(matches!(
        c.outcome(),
        Some(DialogueOutcome::Announce {
            reason: AnnounceKind::NoChoice,
            ..
        })
    ));
}

#[test]
fn haarlemmermeer_on_023_never_reaches_haarlem_and_when_not_connected_its_number_is_read_out() {
    let defaults = Settings::defaults(plan());
    let mut c = Call::new("023", &defaults, DialogueConfig::default());
    // Prefix names are never put through unasked, however sure the recogniser is.
    c.heard("Haarlemmermeer", 0.95);
    c.yes_to("Haarlemmermeer");
    assert_eq!(delivered(c.outcome()), "Haarlemmermeer");
    let mut c = Call::new("023", &defaults, DialogueConfig::default());
    c.heard("Haarlem", 0.99);
    c.yes_to("Haarlem");
    assert_eq!(delivered(c.outcome()), "Haarlem");

    let hm = id("Haarlemmermeer");
    let mut ms = defaults.get(hm).clone();
    ms.status = ConnectionStatus::NotConnected;
    let s = defaults.with(hm, ms);
    for code in ["023", "020"] {
        let mut c = Call::new(code, &s, DialogueConfig::default());
        c.heard("Haarlemmermeer", 0.95);
        if code == "023" {
            c.yes_to("Haarlemmermeer");
        }
        let (prompts, text) = c.last_prompt();
        assert!(
            matches!(&prompts[..], [Prompt::NotConnected { .. }]),
            "{code}: {prompts:?}"
        );
        assert!(text.starts_with("De gemeente Haarlemmermeer is niet aangesloten op veertien plus. U kunt bellen met nul"), "{text}");
        match c.outcome() {
            Some(DialogueOutcome::Announce {
                municipality: Some(m),
                reason: AnnounceKind::NotConnected,
                ..
            }) => {
                assert_eq!(m.name, "Haarlemmermeer")
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[test]
fn epe_said_on_deventers_0570_is_told_14_0578_or_forwarded_never_deventer() {
    let s = Settings::defaults(plan());
    let mut c = Call::new("0570", &s, DialogueConfig::default());
    c.heard("Epe", 0.95);
    // A three-letter name is always confirmed first.
    c.yes_to("Epe");
    let (_, text) = c.last_prompt();
    assert_eq!(
        text,
        "De gemeente Epe hoort bij veertien, nul vijf zeven acht. Belt u dat nummer."
    );
    match c.outcome() {
        Some(DialogueOutcome::Announce {
            municipality: Some(m),
            reason: AnnounceKind::OtherAreaCode { fourteen },
            ..
        }) => {
            assert_eq!((m.name.as_str(), fourteen.as_str()), ("Epe", "140578"))
        }
        other => panic!("{other:?}"),
    }
    let config = DialogueConfig {
        forward_other_area_code: true,
        ..DialogueConfig::default()
    };
    let mut c = Call::new("0570", &s, config);
    c.heard("Epe", 0.95);
    c.yes_to("Epe");
    assert_eq!(delivered(c.outcome()), "Epe");
    // On Epe's own code it is Epe, still confirmed (short name).
    let mut c = Call::new("0578", &s, DialogueConfig::default());
    c.heard("gemeente Epe", 0.95);
    c.yes_to("Epe");
    assert_eq!(delivered(c.outcome()), "Epe");
}

#[test]
fn velp_is_settled_by_the_area_code_or_asked() {
    let s = Settings::defaults(plan());
    // A place name with a namesake elsewhere is confirmed, never put through unasked.
    let mut c = Call::new("026", &s, DialogueConfig::default());
    c.heard("Velp", 0.99);
    c.yes_to("Rheden");
    assert_eq!(delivered(c.outcome()), "Rheden");
    let mut c = Call::new("0485", &s, DialogueConfig::default());
    c.heard("Velp", 0.99);
    c.yes_to("Land van Cuijk");
    assert_eq!(delivered(c.outcome()), "Land van Cuijk");

    // On a third code both are strangers: which Velp? Then the caller is told its number.
    let mut c = Call::new("020", &s, DialogueConfig::default());
    c.heard("Velp", 0.95);
    let (prompts, text) = c.last_prompt();
    assert!(
        matches!(&prompts[..], [Prompt::WhichOne { .. }]),
        "{prompts:?}"
    );
    assert!(text.starts_with("Welke Velp bedoelt u: in "), "{text}");
    assert!(
        text.contains("Rheden") && text.contains("Land van Cuijk"),
        "{text}"
    );
    let Prompt::WhichOne { options, .. } = &prompts[0] else {
        unreachable!()
    };
    let k = options.iter().find(|o| o.name == "Rheden").unwrap().digit;
    c.key(char::from_digit(k.into(), 10).unwrap());
    match c.outcome() {
        Some(DialogueOutcome::Announce {
            municipality: Some(m),
            reason: AnnounceKind::OtherAreaCode { fourteen },
            ..
        }) => {
            assert_eq!((m.name.as_str(), fourteen.as_str()), ("Rheden", "14026"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_calamity_message_is_spoken_instead_of_putting_through() {
    let defaults = Settings::defaults(plan());
    let k = id("Kapelle");
    let mut ms = defaults.get(k).clone();
    ms.calamity = Some(Calamity {
        active: true,
        destination: None,
        message: "Door een storing zijn wij niet bereikbaar.".into(),
    });
    let s = defaults.with(k, ms);
    let decision = ask("0113", &s);
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.key(digit_of(&decision, "Kapelle"));
    assert_eq!(
        c.last_prompt().1,
        "Door een storing zijn wij niet bereikbaar."
    );
    assert!(matches!(
        c.outcome(),
        Some(DialogueOutcome::Announce {
            reason: AnnounceKind::Calamity,
            ..
        })
    ));
}

#[test]
fn hanging_up_ends_the_dialogue_at_any_point() {
    let s = Settings::defaults(plan());
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.heard("Goes", 0.97);
    c.send(Event::HangUp);
    assert_eq!(c.finished(), Some(DialogueOutcome::CallerHungUp));
    assert!(c.d.is_done());
    assert!(
        c.send(Event::PromptFinished).is_empty(),
        "nothing after the end"
    );
}

#[test]
fn without_speech_the_menu_comes_straight_after_the_welcome_in_english_too() {
    let s = Settings::defaults(plan());
    let config = DialogueConfig {
        speech: false,
        lang: veertien_core::Lang::En,
        ..DialogueConfig::default()
    };
    let c = Call::new("035", &s, config);
    match &c.actions[..] {
        [
            Action::Play {
                prompts,
                text,
                input: Some(input),
            },
        ] => {
            assert!(
                matches!(&prompts[..], [Prompt::Welcome, Prompt::Menu { .. }]),
                "{prompts:?}"
            );
            assert!(input.speech.is_none());
            assert!(
                text.starts_with("Welcome") && text.contains("Hilversum, press"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn outside_opening_hours_the_caller_hears_when_the_municipality_opens_again() {
    use veertien_core::{OpeningHours, TimeRange};
    let defaults = Settings::defaults(plan());
    let g = id("Goes");
    let mut ms = defaults.get(g).clone();
    let day = vec![TimeRange::parse("08:30-17:00").unwrap()];
    ms.opening_hours = OpeningHours {
        weekly: Some([
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day,
            vec![],
            vec![],
        ]),
        ..OpeningHours::default()
    };
    let s = defaults.with(g, ms);
    let decision = ask("0113", &s);
    // Saturday 23:00 in Goes: next opening Monday 08:30.
    let saturday_night: Timestamp = "2026-11-28T22:00:00Z".parse().unwrap();
    let mut d = Dialogue::new(
        &decision,
        plan(),
        &s,
        DialogueConfig::default(),
        saturday_night,
    )
    .unwrap();
    d.handle(Event::Start, 0);
    let a = d.handle(
        Event::Heard {
            text: "Goes".into(),
            confidence: 0.95,
        },
        1000,
    );
    let text = a
        .iter()
        .find_map(|a| match a {
            Action::Play { text, .. } => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        text,
        "De gemeente Goes is nu gesloten. U kunt weer bellen op maandag vanaf acht uur dertig."
    );
    let end = d.handle(Event::PromptFinished, 6000);
    assert!(
        matches!(
            &end[..],
            [Action::Finish {
                outcome: DialogueOutcome::Announce {
                    reason: AnnounceKind::Closed,
                    ..
                }
            }]
        ),
        "{end:?}"
    );
}

#[test]
fn after_a_no_no_spoken_answer_is_put_through_unasked_and_the_rejected_name_is_not_proposed_again() {
    let s = Settings::defaults(plan());
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.heard("Goes", 0.7);
    let (prompts, _) = c.last_prompt();
    assert!(matches!(&prompts[..], [Prompt::Confirm { name }] if name == "Goes"), "{prompts:?}");
    c.heard("nee", 0.9);
    // The keypad menu, with speech still allowed.
    let (prompts, _) = c.last_prompt();
    assert!(prompts.iter().any(|p| matches!(p, Prompt::Menu { .. })), "{prompts:?}");
    // A very confident second answer is still confirmed ...
    c.heard("Kapelle", 0.99);
    c.yes_to("Kapelle");
    assert_eq!(delivered(c.outcome()), "Kapelle");
    let log = c.d.log();
    assert_eq!(log.corrections, 1);
    assert_eq!(log.recognised_first_time, Some(false));
    let v: serde_json::Value = serde_json::from_str(&log.to_json()).unwrap();
    assert_eq!(v["corrections"], 1);
    assert_eq!(v["recognised_first_time"], false);

    // ... and the name just rejected is not proposed again: the caller gets the menu.
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.heard("Goes", 0.7);
    c.key('2');
    c.heard("Goes", 0.99);
    let (prompts, _) = c.last_prompt();
    assert!(prompts.iter().any(|p| matches!(p, Prompt::Menu { .. })), "{prompts:?}");
    assert!(c.outcome().is_none());
}

#[test]
fn a_small_margin_to_the_runner_up_or_a_prior_decision_asks_first() {
    let s = Settings::defaults(plan());
    let config = DialogueConfig { put_through: 0.8, put_through_margin: 0.8, ..DialogueConfig::default() };
    let ranked = |top: Vec<(&str, f32)>, prior_decided: bool| Event::HeardRanked {
        text: top[0].0.to_string(),
        confidence: top[0].1,
        top: top.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        prior_decided,
    };
    // 0.85 vs 0.10: margin 0.75 < 0.8 → confirm.
    let mut c = Call::new("0113", &s, config.clone());
    c.send(ranked(vec![("Kapelle", 0.85), ("Goes", 0.10), ("Borsele", 0.05)], false));
    c.yes_to("Kapelle");
    assert_eq!(delivered(c.outcome()), "Kapelle");
    // 0.95 vs 0.03: through directly, and that counts as recognised first time.
    let mut c = Call::new("0113", &s, config.clone());
    c.send(ranked(vec![("Kapelle", 0.95), ("Goes", 0.03), ("Borsele", 0.02)], false));
    assert_eq!(delivered(c.outcome()), "Kapelle");
    assert_eq!(c.d.log().recognised_first_time, Some(true));
    assert_eq!(c.d.log().corrections, 0);
    // The same, but the caller's history decided it: confirm.
    let mut c = Call::new("0113", &s, config);
    c.send(ranked(vec![("Kapelle", 0.95), ("Goes", 0.03), ("Borsele", 0.02)], true));
    c.yes_to("Kapelle");
    assert_eq!(delivered(c.outcome()), "Kapelle");
}

#[test]
fn keys_only_calls_have_no_recognised_first_time_key() {
    let s = Settings::defaults(plan());
    let decision = ask("0113", &s);
    let mut c = Call::new("0113", &s, DialogueConfig::default());
    c.key(digit_of(&decision, "Goes"));
    assert_eq!(delivered(c.outcome()), "Goes");
    let v: serde_json::Value = serde_json::from_str(&c.d.log().to_json()).unwrap();
    assert!(v.get("recognised_first_time").is_none(), "{v}");
    assert_eq!(v["corrections"], 0);
}
