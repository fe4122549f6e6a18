//! Synthetic messages and a recording driver for exercising the call machine.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use veertien_b2bua::*;

pub const A_SDP: &str = "v=0\r\no=carrier 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
pub const B_SDP: &str = "v=0\r\no=pbx 5 5 IN IP4 203.0.113.20\r\ns=-\r\nc=IN IP4 203.0.113.20\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
pub const B2_SDP: &str = "v=0\r\no=pbx2 9 9 IN IP4 203.0.113.30\r\ns=-\r\nc=IN IP4 203.0.113.30\r\nt=0 0\r\nm=audio 42000 RTP/AVP 8\r\n";

pub const A_CALL_ID: &str = "carrier-call-1@198.51.100.7";
pub const PRIMARY: &str = "sip:+31201234567@trunk.example.net";
pub const OVERFLOW: &str = "sip:+31207654321@trunk.example.net";
pub const CALAMITY: &str = "sip:+31880000000@trunk.example.net";
pub const GENERAL: &str = "sip:+31205550000@trunk.example.net";

pub fn anchor() -> MediaAnchor {
    MediaAnchor { a_facing: "127.0.0.1:20000".parse().unwrap(), b_facing: "127.0.0.1:20002".parse().unwrap() }
}

pub fn config() -> CallConfig {
    CallConfig {
        a_contact: "sip:veertien@192.0.2.1:5060".into(),
        b_contact: "sip:veertien@10.1.1.1:5060".into(),
        trunk_route: vec!["<sip:trunk.example.net;lr>".into()],
        ..CallConfig::default()
    }
}

pub fn bridge(label: &str, dest: &str, no_answer_s: Option<u64>) -> RouteStep {
    RouteStep {
        label: label.into(),
        target: StepTarget::Bridge { destination: dest.into() },
        no_answer: no_answer_s.map(Duration::from_secs),
    }
}

pub fn redirect(dest: &str) -> RouteStep {
    RouteStep { label: "general".into(), target: StepTarget::Redirect { destination: dest.into() }, no_answer: None }
}

pub fn announce(prompt: &str) -> RouteStep {
    RouteStep { label: "announcement".into(), target: StepTarget::Announcement { prompt: prompt.into() }, no_answer: None }
}

pub fn full_route() -> Vec<RouteStep> {
    vec![
        bridge("primary", PRIMARY, Some(20)),
        bridge("overflow", OVERFLOW, Some(15)),
        bridge("calamity", CALAMITY, None),
        announcement_step(),
    ]
}

pub fn announcement_step() -> RouteStep {
    announce("gesloten")
}

pub fn invite_a(sdp: Option<&str>) -> InRequest {
    InRequest {
        method: Method::Invite,
        request_uri: "sip:14020@192.0.2.1".into(),
        from: NameAddr { display: Some("Burger".into()), uri: "sip:+31612345678@carrier.example".into(), tag: Some("ctag".into()) },
        to: NameAddr::new("sip:14020@192.0.2.1"),
        call_id: A_CALL_ID.into(),
        cseq: 10,
        contact: Some("sip:+31612345678@198.51.100.7:5060".into()),
        record_route: vec!["<sip:edge1.carrier.example;lr>".into(), "<sip:edge2.carrier.example;lr>".into()],
        max_forwards: Some(69),
        body: sdp.map(|s| Body::sdp(s.to_owned())),
        headers: vec![
            ("P-Asserted-Identity".into(), "<sip:+31612345678@carrier.example>".into()),
            ("X-Internal".into(), "secret".into()),
        ],
    }
}

/// An in-dialog request from the caller (A-leg), after we sent our To-tag.
pub fn a_req(method: Method, cseq: u32, sdp: Option<&str>) -> InRequest {
    let mut r = invite_a(sdp);
    r.method = method;
    r.cseq = cseq;
    r.to.tag = Some(A_TAG.into());
    r.record_route.clear();
    r.headers.clear();
    r
}

pub const TOKEN: &str = "0123456789abcdef";
pub const A_TAG: &str = "0123456789abcdefa";

pub fn resp(status: u16, tag: Option<&str>, sdp: Option<&str>) -> InResponse {
    InResponse {
        status,
        reason: match status {
            100 => "Trying",
            180 => "Ringing",
            183 => "Session Progress",
            200 => "OK",
            486 => "Busy Here",
            487 => "Request Terminated",
            503 => "Service Unavailable",
            600 => "Busy Everywhere",
            _ => "Whatever",
        }
        .into(),
        to_tag: tag.map(Into::into),
        contact: Some("sip:agent7@10.9.9.9:5070".into()),
        record_route: vec!["<sip:sbc2.gemeente.example;lr>".into(), "<sip:sbc1.gemeente.example;lr>".into()],
        body: sdp.map(|s| Body::sdp(s.to_owned())),
        headers: vec![],
    }
}

/// A request from the municipality side on the B dialog `b_invite` established with `tag`.
pub fn b_req(method: Method, b_invite: &OutRequest, their_tag: &str, cseq: u32, sdp: Option<&str>) -> InRequest {
    InRequest {
        method,
        request_uri: "sip:veertien@10.1.1.1:5060".into(),
        from: NameAddr { display: None, uri: b_invite.to.uri.clone(), tag: Some(their_tag.into()) },
        to: b_invite.from.clone(),
        call_id: b_invite.call_id.clone(),
        cseq,
        contact: Some("sip:agent7@10.9.9.9:5070".into()),
        record_route: vec![],
        max_forwards: Some(70),
        body: sdp.map(|s| Body::sdp(s.to_owned())),
        headers: vec![],
    }
}

pub fn t0() -> jiff::Timestamp {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

/// A recording driver with a virtual clock.
pub struct H {
    pub call: Call,
    pub clock: Duration,
    pub dead: BTreeSet<String>,
    pub log: Vec<Action>,
    /// Running timers and their deadlines on the virtual clock.
    pub timers: BTreeMap<TimerId, Duration>,
    /// Requests sent (not ACK) still waiting for a final response.
    pub outstanding: BTreeMap<RequestId, (Leg, OutRequest)>,
    pub finished: usize,
    /// Requests whose transaction is over for good: non-2xx final, failure, or an abandoned
    /// INVITE whose straggler timer ran (it equals the transaction's Timer B, 64*T1).
    pub gone: BTreeSet<RequestId>,
    /// When each request (not ACK) was sent, for the transaction layer's 64*T1 limit.
    pub sent_at: BTreeMap<RequestId, Duration>,
    /// How the driver carries a B-leg, by its INVITE's Request-URI; UDP for any other.
    pub legs: BTreeMap<String, Result<LegTransport, String>>,
}

/// The setup a driver with `legs` answers (see [`H::legs`]).
fn setup(legs: &BTreeMap<String, Result<LegTransport, String>>) -> impl Fn(&OutRequest) -> Result<LegTransport, String> + '_ {
    |invite: &OutRequest| legs.get(&invite.request_uri).cloned().unwrap_or(Ok(LegTransport::Udp))
}

impl H {
    pub fn start(route: Vec<RouteStep>, invite: InRequest) -> (H, Vec<Action>) {
        Self::start_with(config(), route, invite, BTreeSet::new())
    }

    pub fn start_with(cfg: CallConfig, route: Vec<RouteStep>, invite: InRequest, dead: BTreeSet<String>) -> (H, Vec<Action>) {
        Self::start_carried(cfg, route, invite, dead, BTreeMap::new())
    }

    /// A call whose B-legs to the Request-URIs in `legs` are carried as given there.
    pub fn start_carried(
        cfg: CallConfig,
        route: Vec<RouteStep>,
        invite: InRequest,
        dead: BTreeSet<String>,
        legs: BTreeMap<String, Result<LegTransport, String>>,
    ) -> (H, Vec<Action>) {
        let health = |d: &str| !dead.contains(d);
        let call = Call::new(cfg, TOKEN, anchor(), route, ServerTxn(1), invite, t0(), &health, &setup(&legs));
        let mut h = H { call, clock: Duration::ZERO, dead: dead.clone(), log: vec![], timers: BTreeMap::new(), outstanding: BTreeMap::new(), finished: 0, gone: BTreeSet::new(), sent_at: BTreeMap::new(), legs };
        let new = h.collect();
        (h, new)
    }

    pub fn now(&self) -> jiff::Timestamp {
        t0() + self.clock
    }

    fn collect(&mut self) -> Vec<Action> {
        let mut new = vec![];
        while let Some(a) = self.call.poll_action() {
            match &a {
                Action::StartTimer { timer, after } => {
                    self.timers.insert(*timer, self.clock + *after);
                }
                Action::CancelTimer(t) => {
                    self.timers.remove(t);
                }
                Action::Send { id, leg, kind, request } if *kind != SendKind::Ack => {
                    self.outstanding.insert(*id, (*leg, request.clone()));
                    self.sent_at.insert(*id, self.clock);
                }
                Action::Finished(_) => self.finished += 1,
                _ => {}
            }
            new.push(a.clone());
            self.log.push(a);
        }
        new
    }

    pub fn ev(&mut self, e: Event) -> Vec<Action> {
        if let Event::Response { id, response } = &e
            && response.status >= 200
        {
            self.outstanding.remove(id);
            if response.status >= 300 {
                self.gone.insert(*id);
            }
        }
        if let Event::RequestFailed { id, .. } = &e {
            self.outstanding.remove(id);
            self.gone.insert(*id);
        }
        if let Event::Timer(TimerId::Straggler(id)) = &e {
            self.outstanding.remove(id);
            self.gone.insert(*id);
        }
        let dead = self.dead.clone();
        let health = move |d: &str| !dead.contains(d);
        let now = self.now();
        self.call.handle(e, now, &health, &setup(&self.legs));
        self.collect()
    }

    /// Advances the clock to the timer's deadline and fires it.
    pub fn fire(&mut self, t: TimerId) -> Vec<Action> {
        let deadline = *self.timers.get(&t).unwrap_or_else(|| panic!("timer {t:?} not running: {:?}", self.timers));
        self.clock = self.clock.max(deadline);
        // The transaction layer's Timer B/F (64*T1) runs on the same clock: transactions older
        // than that are over before this timer fires.
        let limit = Duration::from_millis(500) * 64;
        let expired: Vec<RequestId> = self
            .sent_at
            .iter()
            .filter(|(id, at)| **at + limit <= self.clock && !self.gone.contains(id))
            .map(|(id, _)| *id)
            .collect();
        let mut out = vec![];
        for id in expired {
            if self.outstanding.contains_key(&id) {
                out.extend(self.ev(Event::RequestFailed { id, reason: "timeout".into() }));
            }
            self.gone.insert(id);
        }
        if self.timers.remove(&t).is_some() {
            out.extend(self.ev(Event::Timer(t)));
        }
        out
    }

    pub fn respond(&mut self, id: RequestId, r: InResponse) -> Vec<Action> {
        self.ev(Event::Response { id, response: r })
    }

    pub fn has_timer(&self, t: TimerId) -> bool {
        self.timers.contains_key(&t)
    }

    /// Lets the driver's world run out: every outstanding request times out, every timer
    /// fires in deadline order. Bounded so a machine that keeps itself busy fails the test.
    pub fn run_out(&mut self) {
        for _ in 0..10_000 {
            if let Some((&id, _)) = self.outstanding.iter().next() {
                self.ev(Event::RequestFailed { id, reason: "timeout".into() });
                continue;
            }
            let Some((&t, _)) = self.timers.iter().min_by_key(|(_, d)| **d) else { return };
            self.fire(t);
        }
        panic!("call never settles: timers {:?}", self.timers);
    }
}

pub fn sends(actions: &[Action]) -> Vec<(RequestId, Leg, SendKind, OutRequest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { leg, id, kind, request } => Some((*id, *leg, *kind, request.clone())),
            _ => None,
        })
        .collect()
}

pub fn sends_of(actions: &[Action], m: Method) -> Vec<(RequestId, Leg, SendKind, OutRequest)> {
    sends(actions).into_iter().filter(|s| s.3.method == m).collect()
}

pub fn responses(actions: &[Action], leg: Leg) -> Vec<(ServerTxn, OutResponse)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Respond { leg: l, txn, response } if *l == leg => Some((*txn, response.clone())),
            _ => None,
        })
        .collect()
}

pub fn statuses(actions: &[Action], leg: Leg) -> Vec<u16> {
    responses(actions, leg).iter().map(|(_, r)| r.status).collect()
}

pub fn summary(actions: &[Action]) -> Option<CallSummary> {
    actions.iter().find_map(|a| match a {
        Action::Finished(s) => Some(s.clone()),
        _ => None,
    })
}

pub fn body_text(b: &Option<Body>) -> String {
    b.as_ref().map(|b| String::from_utf8(b.data.to_vec()).unwrap()).unwrap_or_default()
}

/// The only B-leg INVITE among `actions`.
pub fn the_invite(actions: &[Action]) -> (RequestId, OutRequest) {
    let v = sends_of(actions, Method::Invite);
    assert_eq!(v.len(), 1, "expected exactly one INVITE in {actions:#?}");
    (v[0].0, v[0].3.clone())
}
