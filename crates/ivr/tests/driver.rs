//! The IVR driver against an in-process caller speaking RTP/G.711 over loopback UDP: what a
//! caller on 14 0113 hears and what their keys and words lead to.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::sync::mpsc;
use veertien_core::Settings;
use veertien_ivr::{
    AnnounceKind, DialogueConfig, DialogueOutcome, IvrLimits, IvrResult, IvrSetup, LogWhat,
    CallerHistory, NameScore, NameScorer, PlanAndSettings, PromptLibrary, ScoreError,
    ScoreRequest, Signal, run,
};
use veertien_ivr::driver::ScoreFuture;
use veertien_media::g711::Codec;

fn routing(settings: &Settings) -> Arc<PlanAndSettings> {
    Arc::new(PlanAndSettings {
        plan: Arc::new(plan().clone()),
        settings: Arc::new(settings.clone()),
    })
}

fn quick(speech: bool) -> DialogueConfig {
    DialogueConfig {
        speech,
        no_input_ms: 1000,
        ..DialogueConfig::default()
    }
}

async fn start(
    pool: u16,
    codec: Codec,
    prompts: Arc<PromptLibrary>,
    config: DialogueConfig,
    scorer: Option<Arc<dyn NameScorer>>,
) -> (Phone, mpsc::Sender<Signal>, tokio::task::JoinHandle<IvrResult>) {
    start_with(pool, codec, prompts, config, scorer, IvrLimits::default()).await
}

async fn start_with(
    pool: u16,
    codec: Codec,
    prompts: Arc<PromptLibrary>,
    config: DialogueConfig,
    scorer: Option<Arc<dyn NameScorer>>,
    limits: IvrLimits,
) -> (Phone, mpsc::Sender<Signal>, tokio::task::JoinHandle<IvrResult>) {
    let settings = Settings::defaults(plan());
    let (phone, socket, negotiated) = call(pool, codec).await;
    let (tx, rx) = mpsc::channel(8);
    let setup = IvrSetup {
        socket,
        negotiated,
        decision: ask("0113", &settings),
        routing: routing(&settings),
        config,
        prompts,
        scorer,
        started: now(),
        limits,
        history: CallerHistory::known(Vec::new()),
    };
    (phone, tx, tokio::spawn(run(setup, rx)))
}

async fn finish(h: tokio::task::JoinHandle<IvrResult>, max: Duration) -> IvrResult {
    tokio::time::timeout(max, h)
        .await
        .expect("the dialogue ends")
        .expect("driver task")
}

fn prompt_ids(r: &IvrResult) -> Vec<&'static str> {
    r.log
        .entries
        .iter()
        .filter_map(|e| match &e.what {
            LogWhat::Prompt { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn delivered_to(r: &IvrResult) -> Option<String> {
    match &r.outcome {
        DialogueOutcome::Deliver { municipality, .. } => Some(municipality.name.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pressed_during_the_welcome_barges_in_and_delivers_that_municipality() {
    let Some(lib) = espeak_library() else { return };
    let settings = Settings::defaults(plan());
    let key = digit_for("0113", "Kapelle", &settings);
    let (phone, _signals, h) = start(43000, Codec::Pcmu, lib, quick(false), None).await;
    // A second into the welcome, the caller knows their key.
    phone.wait_audible(1000, Duration::from_secs(5)).await;
    let heard_before_key = phone.audible_ms();
    phone.press(key);
    let r = finish(h, Duration::from_secs(30)).await;
    assert_eq!(delivered_to(&r).as_deref(), Some("Kapelle"), "{}", r.log.to_json());
    assert!(r.log.entries.iter().any(|e| matches!(e.what, LogWhat::BargeIn { by: "key" })));
    assert_eq!(prompt_ids(&r), ["welcome", "menu", "putting_through"]);
    // The welcome + menu were cut: what the caller heard is the first second plus "even
    // geduld, u wordt doorverbonden met de gemeente Kapelle", far less than the whole menu.
    let welcome_and_menu = {
        let lib = espeak_library().unwrap();
        let area = plan().area_code_id("0113").unwrap();
        let items = settings
            .menu(area)
            .iter()
            .filter_map(|e| e.digit.map(|digit| veertien_ivr::MenuItem {
                digit,
                name: plan().municipality(e.municipality).everyday_name.clone(),
            }))
            .collect();
        let ms = |p| lib.render(&p, veertien_core::Lang::Nl, plan()).unwrap().duration_ms();
        ms(veertien_ivr::Prompt::Welcome) + ms(veertien_ivr::Prompt::Menu { items })
    };
    assert!(
        heard_before_key + 500 < welcome_and_menu,
        "test premise: the key came during the prompt ({heard_before_key} of {welcome_and_menu} ms)"
    );
    assert!(r.stats.media.packets_in > 20, "the caller's RTP was received");
    assert_eq!(r.socket.port(), 43000, "the socket comes back for the bridge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_arrive_as_paced_rtp_in_the_negotiated_codec() {
    let lib = tone_library("paced");
    for (pool, codec, pt) in [(43020, Codec::Pcma, 8u8), (43040, Codec::Pcmu, 0)] {
        let (phone, signals, h) = start(pool, codec, lib.clone(), quick(false), None).await;
        phone.wait_audible(600, Duration::from_secs(5)).await;
        signals.send(Signal::HangUp).await.unwrap();
        let r = finish(h, Duration::from_secs(10)).await;
        assert_eq!(r.outcome, DialogueOutcome::CallerHungUp);
        let rx = phone.received.lock().unwrap().clone();
        assert!(rx.len() >= 30, "{} packets", rx.len());
        assert!(rx.iter().all(|p| p.pt == pt), "payload type {pt} for {codec:?}");
        let ssrc = rx[0].ssrc;
        for w in rx.windows(2) {
            assert_eq!(w[1].ssrc, ssrc);
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "no packet skipped or repeated");
            assert_eq!(w[1].ts.wrapping_sub(w[0].ts), 160, "20 ms of 8 kHz audio per packet");
        }
        // Paced in real time, not sent in a burst: 30 packets carry 600 ms and take ~as long.
        let span = rx[29].at - rx[0].at;
        assert!(span >= Duration::from_millis(400), "30 packets in {span:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_caller_gets_the_keypad_menu_and_then_a_goodbye_never_a_loop() {
    let lib = tone_library("silence");
    let (_phone, _signals, h) = start(43060, Codec::Pcma, lib, quick(false), None).await;
    let r = finish(h, Duration::from_secs(60)).await;
    assert_eq!(
        r.outcome,
        DialogueOutcome::Announce {
            municipality: None,
            reason: AnnounceKind::NoChoice,
            forward_to: None
        },
        "{}",
        r.log.to_json()
    );
    let ids = prompt_ids(&r);
    assert_eq!(ids.first(), Some(&"welcome"));
    assert_eq!(ids.last(), Some(&"no_choice"), "the ending is spoken: {ids:?}");
    let menus = ids.iter().filter(|i| **i == "menu").count();
    assert!((2..=3).contains(&menus), "the menu is repeated, but not forever: {ids:?}");
    let silences = r
        .log
        .entries
        .iter()
        .filter(|e| matches!(e.what, LogWhat::Miss { reason: "silence", .. }))
        .count();
    assert_eq!(silences, 3);
}

/// A recogniser that hears the same thing in every utterance.
struct Fixed(&'static str, f32);

impl NameScorer for Fixed {
    fn score(&self, pcm: Vec<i16>, request: ScoreRequest) -> ScoreFuture {
        let (text, confidence) = (self.0.to_string(), self.1);
        Box::pin(async move {
            if pcm.is_empty() {
                return Err(ScoreError("empty utterance".into()));
            }
            assert!(request.texts().any(|p| p == "Kapelle"), "{:?}", request.phrases);
            Ok(NameScore {
                text,
                confidence,
                top: vec![],
                prior_decided: false,
                speculative: false,
                queued: Duration::ZERO,
                compute: Duration::from_millis(5),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mumbling_that_is_not_understood_ends_at_the_keypad_menu() {
    let lib = tone_library("garbage");
    let scorer: Arc<dyn NameScorer> = Arc::new(Fixed("Kapelle", 0.2));
    let (phone, _signals, h) = start(43080, Codec::Pcmu, lib, quick(true), Some(scorer)).await;
    phone.wait_audible(200, Duration::from_secs(5)).await;
    // A loud, voiced murmur: the VAD takes it for speech, the recogniser is not sure of anything.
    phone.say(speechlike(900));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Then the caller uses the menu they are offered.
    let key = digit_for("0113", "Goes", &Settings::defaults(plan()));
    phone.press(key);
    let r = finish(h, Duration::from_secs(30)).await;
    let ids = prompt_ids(&r);
    assert_eq!(&ids[..2], ["welcome", "ask_name"], "{ids:?}");
    assert!(r.log.entries.iter().any(|e| matches!(e.what, LogWhat::BargeIn { by: "speech" })), "{}", r.log.to_json());
    assert!(
        r.log.entries.iter().any(|e| matches!(e.what, LogWhat::Miss { reason: "low_confidence", .. })),
        "{}",
        r.log.to_json()
    );
    assert!(ids.contains(&"menu"), "after the miss comes the keypad menu: {ids:?}");
    assert_eq!(delivered_to(&r).as_deref(), Some("Goes"));
    let rec = r
        .log
        .entries
        .iter()
        .find_map(|e| match &e.what {
            LogWhat::Recognised { speech_ms, latency_ms, .. } => Some((*speech_ms, *latency_ms)),
            _ => None,
        })
        .expect("the utterance is logged with its timings");
    assert!(rec.0 >= 500, "utterance length logged: {rec:?}");
    assert_eq!(r.stats.recognitions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_mid_prompt_ends_the_dialogue_at_once() {
    let lib = tone_library("hangup");
    let (phone, signals, h) = start(43100, Codec::Pcma, lib, quick(false), None).await;
    phone.wait_audible(100, Duration::from_secs(5)).await;
    signals.send(Signal::HangUp).await.unwrap();
    let r = finish(h, Duration::from_secs(5)).await;
    assert_eq!(r.outcome, DialogueOutcome::CallerHungUp);
    assert_eq!(prompt_ids(&r), ["welcome", "menu"]);
    assert!(r.stats.duration_ms < 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_line_ends_by_media_timeout() {
    let lib = tone_library("deadline");
    let settings = Settings::defaults(plan());
    let (phone, socket, negotiated) = call(43120, Codec::Pcma).await;
    phone.mute();
    let (_tx, rx) = mpsc::channel(1);
    let mut limits = IvrLimits::default();
    limits.media.media_timeout = Duration::from_millis(800);
    let r = finish(
        tokio::spawn(run(
            IvrSetup {
                socket,
                negotiated,
                decision: ask("0113", &settings),
                routing: routing(&settings),
                config: DialogueConfig { no_input_ms: 20_000, ..quick(false) },
                prompts: lib,
                scorer: None,
                started: now(),
                limits,
                history: CallerHistory::default(),
            },
            rx,
        )),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(r.outcome, DialogueOutcome::CallerHungUp);
    assert!(r.stats.media_timeout);
    assert!(r.log.entries.iter().any(|e| matches!(e.what, LogWhat::Note { kind: "media_timeout", .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_info_keys_work_like_rfc4733_keys() {
    let lib = tone_library("info");
    let settings = Settings::defaults(plan());
    let key = digit_for("0113", "Borsele", &settings);
    let (phone, signals, h) = start(43140, Codec::Pcmu, lib, quick(false), None).await;
    phone.wait_audible(100, Duration::from_secs(5)).await;
    signals.send(Signal::Dtmf(key)).await.unwrap();
    let r = finish(h, Duration::from_secs(10)).await;
    assert_eq!(delivered_to(&r).as_deref(), Some("Borsele"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_dialogue_has_a_hard_time_limit_and_still_says_goodbye() {
    let lib = tone_library("limit");
    let settings = Settings::defaults(plan());
    let (_phone, socket, negotiated) = call(43160, Codec::Pcmu).await;
    let (_tx, rx) = mpsc::channel(1);
    let limits = IvrLimits {
        max_duration: Duration::from_millis(1500),
        ..IvrLimits::default()
    };
    let r = finish(
        tokio::spawn(run(
            IvrSetup {
                socket,
                negotiated,
                decision: ask("0113", &settings),
                routing: routing(&settings),
                // A caller who never answers, with long no-input timers.
                config: DialogueConfig { no_input_ms: 60_000, ..quick(false) },
                prompts: lib,
                scorer: None,
                started: now(),
                limits,
                history: CallerHistory::default(),
            },
            rx,
        )),
        Duration::from_secs(20),
    )
    .await;
    assert!(r.stats.time_limit);
    assert!(matches!(r.outcome, DialogueOutcome::Announce { reason: AnnounceKind::NoChoice, .. }));
    assert_eq!(prompt_ids(&r).last(), Some(&"no_choice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saying_noord_beveland_on_0113_reaches_noord_beveland() {
    let Some(lib) = espeak_library() else { return };
    let dir = veertien_speech::default_model_dir();
    if !veertien_speech::is_installed(&dir) {
        eprintln!("speech model not installed in {}: skipping (veertien model install)", dir.display());
        return;
    }
    let rec = Arc::new(veertien_speech::Recognizer::load(&dir).expect("model loads"));
    let scorer: Arc<dyn NameScorer> = Arc::new(veertien_ivr::RecognizerScorer::new(rec));
    // This checks recognition end to end, not the confidence gate: a clear name goes straight
    // through rather than via "bedoelt u …?", which this scripted caller does not answer.
    // (Kapelle was the name here until the recogniser began scoring from 200 ms before the
    // speech (9eae05d): espeak-ng's "Kapelle", dithered by sox, is now heard as Goes in most
    // renderings — a recognition weakness on synthetic speech, docs/PERFORMANCE-speech.md.)
    let config = DialogueConfig { put_through: 0.5, confirm: 0.3, put_through_margin: 0.3, ..quick(true) };
    // The machine may be busy (CI, other builds): recognition gets time; its latency is logged.
    let limits = IvrLimits { score_timeout: Duration::from_secs(60), ..IvrLimits::default() };
    let (phone, _signals, h) = start_with(43180, Codec::Pcma, lib, config, Some(scorer), limits).await;
    phone.wait_audible(1500, Duration::from_secs(5)).await;
    phone.say(speak("Noord-Beveland"));
    let r = finish(h, Duration::from_secs(120)).await;
    let log = r.log.to_json();
    assert!(r.log.entries.iter().any(|e| matches!(e.what, LogWhat::BargeIn { by: "speech" })), "{log}");
    let (best, latency) = r
        .log
        .entries
        .iter()
        .find_map(|e| match &e.what {
            LogWhat::Recognised { best, latency_ms, .. } => Some((best.clone(), *latency_ms)),
            _ => None,
        })
        .expect("recognised");
    eprintln!("recognised {best:?}, {latency} ms after the end of speech");
    for e in &r.log.entries {
        if matches!(e.what, LogWhat::Recognised { .. }) {
            eprintln!("{}", serde_json::to_string(&e.what).unwrap());
        }
    }
    assert_eq!(best, "Noord-Beveland", "{log}");
    assert_eq!(delivered_to(&r).as_deref(), Some("Noord-Beveland"), "{log}");
}

/// A recogniser with fixed acoustic scores per municipality (by name; others far below), which
/// combines them with the request's priors exactly as the real one does
/// (`veertien_speech::combine`, softmax at the configured temperature, `prior_decided`).
struct Acoustic {
    scores: Vec<(&'static str, f32)>,
    /// The priors of the names questions scored, for the test to inspect.
    seen: std::sync::Mutex<Vec<veertien_speech::Priors<String>>>,
}

impl Acoustic {
    fn new(scores: Vec<(&'static str, f32)>) -> Arc<Acoustic> {
        Arc::new(Acoustic { scores, seen: Default::default() })
    }
}

impl NameScorer for Acoustic {
    fn score(&self, _pcm: Vec<i16>, request: ScoreRequest) -> ScoreFuture {
        let cfg = veertien_speech::RecognizerConfig::default();
        let mut keyed: Vec<(String, String)> = Vec::new();
        for (text, key) in request.phrases.iter() {
            if !keyed.iter().any(|(_, k)| k == key) {
                keyed.push((text.clone(), key.clone()));
            }
        }
        let acoustic: Vec<(String, f32)> = keyed
            .iter()
            .map(|(_, key)| {
                let name = &plan().municipality(plan().by_cbs(key).expect("keys are CBS codes")).name;
                let a = self.scores.iter().find(|(n, _)| n == name).map_or(-8.0, |s| s.1);
                (key.clone(), a)
            })
            .collect();
        let totals = veertien_speech::combine(&acoustic, &request.priors, &cfg);
        let probs = veertien_speech::recognizer::softmax(&totals, cfg.temperature);
        let acoustic_probs = veertien_speech::recognizer::softmax(
            &acoustic.iter().map(|a| a.1).collect::<Vec<_>>(),
            cfg.temperature,
        );
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
        let (best, acoustic_best) = (argmax(&totals), argmax(&acoustic_probs));
        let prior_decided = veertien_speech::recognizer::prior_decided(
            best != acoustic_best,
            acoustic_probs[best],
            probs[best],
            &cfg,
        );
        let mut order: Vec<usize> = (0..keyed.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        self.seen.lock().unwrap().push(request.priors.clone());
        let score = NameScore {
            text: keyed[best].0.clone(),
            confidence: probs[best],
            top: order.iter().take(5).map(|&i| (keyed[i].0.clone(), probs[i])).collect(),
            prior_decided,
            speculative: false,
            queued: Duration::ZERO,
            compute: Duration::from_millis(1),
        };
        Box::pin(async move { Ok(score) })
    }
}

fn questions(r: &IvrResult) -> Vec<String> {
    r.log
        .entries
        .iter()
        .filter_map(|e| match &e.what {
            LogWhat::Prompt { ids, text } if ids.iter().any(|i| matches!(*i, "confirm" | "menu")) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// One caller on 0113 who says something the recogniser takes for `scores`, then answers
/// "Bedoelt u …?" with `confirm_key` and, if the menu follows, picks `wanted` by key.
async fn returning_caller(
    pool: u16,
    scorer: Arc<Acoustic>,
    history: CallerHistory,
    confirm_key: char,
    wanted: &str,
) -> IvrResult {
    let settings = Settings::defaults(plan());
    let (phone, socket, negotiated) = call(pool, Codec::Pcmu).await;
    let (_tx, rx) = mpsc::channel(8);
    let setup = IvrSetup {
        socket,
        negotiated,
        decision: ask("0113", &settings),
        routing: routing(&settings),
        config: DialogueConfig { no_input_ms: 4000, ..quick(true) },
        prompts: tone_library(&format!("history-{pool}")),
        scorer: Some(scorer as Arc<dyn NameScorer>),
        started: now(),
        limits: IvrLimits::default(),
        history,
    };
    let h = tokio::spawn(run(setup, rx));
    phone.wait_audible(200, Duration::from_secs(5)).await;
    phone.say(speechlike(900));
    // End of speech (VAD hangover 700 ms), an instant answer, then "Bedoelt u …?" plays.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    phone.press(confirm_key);
    // If the answer was "nee", the keypad menu follows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    phone.press(digit_for("0113", wanted, &settings));
    finish(h, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_chose_kapelle_before_is_asked_fewer_questions() {
    let kapelle = plan().municipality(plan().by_name("Kapelle").unwrap()).cbs.clone();
    // The audio leans slightly to Goes; the caller means Kapelle.
    let scores = vec![("Goes", 0.0), ("Kapelle", -0.2)];

    let first = Acoustic::new(scores.clone());
    let r = returning_caller(43200, first.clone(), CallerHistory::known(vec![]), '2', "Kapelle").await;
    assert_eq!(delivered_to(&r).as_deref(), Some("Kapelle"), "{}", r.log.to_json());
    let without = questions(&r);
    assert_eq!(without.len(), 2, "\"Bedoelt u Goes?\" — nee — the keypad menu: {without:?}");
    assert!(without[0].contains("Goes"), "{without:?}");

    // The same caller again, now that their record says Kapelle three times (the population
    // prior still favours Goes, the larger municipality).
    let again = Acoustic::new(scores);
    let history = CallerHistory::known(vec![(kapelle.clone(), 3)]);
    let r = returning_caller(43220, again.clone(), history, '1', "Kapelle").await;
    assert_eq!(delivered_to(&r).as_deref(), Some("Kapelle"), "{}", r.log.to_json());
    let with = questions(&r);
    assert_eq!(with.len(), 1, "one question, \"Bedoelt u Kapelle?\" — ja: {with:?}");
    assert!(with[0].contains("Kapelle"), "{with:?}");
    // The priors reached the recogniser: the caller's choices and the plan's population.
    let seen = again.seen.lock().unwrap();
    assert_eq!(seen[0].confirmations(&kapelle), 3);
    assert_eq!(seen[0].log_prior.len(), 5, "population of the five municipalities on 0113");
    assert!(first.seen.lock().unwrap()[0].caller_history.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_history_costs_a_question_but_never_misroutes() {
    let kapelle = plan().municipality(plan().by_name("Kapelle").unwrap()).cbs.clone();
    // The caller clearly says Goes, but their history says Kapelle a thousand times: the
    // priors carry Kapelle past the put-through gate.
    let scorer = Acoustic::new(vec![("Goes", 0.0), ("Kapelle", -3.0)]);
    let history = CallerHistory::known(vec![(kapelle, 1000)]);
    let r = returning_caller(43240, scorer, history, '2', "Goes").await;
    let log = r.log.to_json();
    let heard = r
        .log
        .entries
        .iter()
        .find_map(|e| match &e.what {
            LogWhat::Recognised { best, confidence, prior_decided, .. } => Some((best.clone(), *confidence, *prior_decided)),
            _ => None,
        })
        .expect("recognised");
    assert_eq!(heard.0, "Kapelle", "the history did win the ranking: {log}");
    assert!(heard.1 >= DialogueConfig::default().put_through, "above the gate: {heard:?}");
    assert!(heard.2, "and the recogniser says the priors decided: {log}");
    let q = questions(&r);
    assert!(q[0].contains("Kapelle"), "Kapelle is proposed, not put through: {q:?}");
    assert_eq!(delivered_to(&r).as_deref(), Some("Goes"), "{log}");
}
