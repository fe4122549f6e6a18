//! Bounded server-transaction table for the front door (RFC 3261 17.2).
//!
//! The front door answers most requests at once with a final response (302, 404, 503, ...).
//! What it must still do per RFC 3261 is: resend that final response when the request is
//! retransmitted, retransmit a non-2xx INVITE response over UDP until the ACK arrives
//! (Timer G/H), absorb the ACK (Timer I), and keep non-INVITE answers for Timer J — without
//! ever growing beyond a fixed number of entries, which is where the Rust SIP stacks measured
//! in issue 3 collapsed. This table is that, specialised to "final response known at once"
//! so it costs one hash lookup per message; it has no provisional/proceeding machinery because
//! calls that need it (bridge, IVR) are handed to their own state machines.
//!
//! Time is passed in (`Instant`), so the table is deterministic under test.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use veertien_sip::{Method, Request};

/// RFC 3261 timer values.
pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
pub const T4: Duration = Duration::from_secs(5);
/// Timer H and J: 64*T1.
pub const TIMER_H: Duration = Duration::from_secs(32);

/// Transaction identity (RFC 3261 17.2.3): branch + sent-by + method, where ACK matches the
/// INVITE it acknowledges. Requests without an RFC 3261 branch (RFC 2543 peers, or a branch
/// that is only the magic cookie) are keyed on Call-ID, CSeq, From tag and sent-by instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxKey {
    id: Bytes,
    sent_by: Bytes,
    method: MethodClass,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum MethodClass {
    Invite,
    Cancel,
    Other(Bytes),
}

impl TxKey {
    /// The key of `req`; for ACK, the key of the INVITE it acknowledges. `None` when the
    /// request lacks the headers needed (it is then rejected before reaching the table).
    pub fn of(req: &Request) -> Option<TxKey> {
        Self::with_method(req, req.method())
    }

    /// The key of the INVITE that a CANCEL refers to (same branch, method INVITE).
    pub fn invite_of_cancel(req: &Request) -> Option<TxKey> {
        Self::with_method(req, &Method::Invite)
    }

    fn with_method(req: &Request, method: &Method) -> Option<TxKey> {
        let via = req.top_via()?;
        let method = match method {
            Method::Invite | Method::Ack => MethodClass::Invite,
            Method::Cancel => MethodClass::Cancel,
            other => MethodClass::Other(Bytes::copy_from_slice(other.as_str().as_bytes())),
        };
        let rfc3261 = via
            .branch
            .as_ref()
            .filter(|b| b.len() > Via::MAGIC.len() && b.starts_with(Via::MAGIC));
        let id = match rfc3261 {
            Some(b) => b.clone(),
            None => {
                // RFC 3261 17.2.3 fallback for RFC 2543 peers: Request-URI, To tag, From tag,
                // Call-ID, CSeq number, top Via. The To tag is left out so that the ACK
                // (which carries our To tag) matches its INVITE.
                let mut v = Vec::with_capacity(128);
                v.extend_from_slice(req.call_id()?);
                v.push(0);
                v.extend_from_slice(req.cseq()?.seq.to_string().as_bytes());
                v.push(0);
                if let Some(tag) = req.from()?.tag.as_ref() {
                    v.extend_from_slice(tag);
                }
                v.push(0);
                v.extend_from_slice(&via.raw);
                Bytes::from(v)
            }
        };
        Some(TxKey { id, sent_by: via.sent_by.clone(), method })
    }
}

struct Via;
impl Via {
    const MAGIC: &'static [u8] = veertien_sip::Via::MAGIC_COOKIE;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Final response sent; waiting for ACK (INVITE) or Timer J (non-INVITE).
    Completed,
    /// ACK received (INVITE only); absorbing ACK retransmissions until Timer I.
    Confirmed,
}

struct Entry {
    key: TxKey,
    state: State,
    /// The final response, resent on request retransmissions and Timer G.
    response: Bytes,
    /// Where it goes; `None` on reliable transports (the connection answers, no Timer G).
    udp_target: Option<SocketAddr>,
    invite: bool,
    /// Next Timer G interval (INVITE over UDP).
    retransmit_interval: Duration,
    retransmit_at: Option<Instant>,
    /// Timer H / I / J.
    expires_at: Instant,
}

/// A place in the table. Its generation grows on every reschedule and every reuse, so a heap
/// entry that names an older generation is recognised as stale.
struct Slot {
    entry: Option<Entry>,
    generation: u32,
}

/// What the table says about an incoming request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A new transaction: process it.
    New,
    /// A retransmission: send these bytes again (or nothing if `None`, e.g. a repeated ACK).
    Retransmission(Option<Bytes>),
}

/// Why a transaction could not be added.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// A timer that fired: resend `response` to `target`.
#[derive(Debug, PartialEq, Eq)]
pub struct Resend {
    pub target: SocketAddr,
    pub response: Bytes,
}

/// Entries live in slots (reused through a free list); the one map goes from key to slot and
/// the timer heap names slots. A transaction thus costs four hash lookups in its life (the
/// request, its answer, the ACK, the expiry) where a map per direction between keys and timer
/// handles cost about ten, a measurable share of the CPU per redirected call.
pub struct Table {
    index: HashMap<TxKey, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    capacity: usize,
    /// Non-INVITE transactions only exist to answer retransmissions identically; under
    /// pressure they are skipped (answered statelessly) so they never cost an INVITE its slot.
    non_invite_share: usize,
    /// INVITE transactions whose final response has not been acknowledged yet.
    awaiting_ack: usize,
}

impl Table {
    pub fn new(capacity: usize) -> Table {
        let reserve = capacity.min(1 << 16);
        Table {
            index: HashMap::with_capacity(reserve),
            slots: Vec::with_capacity(reserve),
            free: Vec::new(),
            timers: BinaryHeap::with_capacity(reserve),
            capacity,
            non_invite_share: capacity / 2,
            awaiting_ack: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// INVITE transactions still waiting for the caller's ACK (a clean shutdown lets them
    /// finish so the caller gets the answer despite packet loss).
    pub fn awaiting_ack(&self) -> usize {
        self.awaiting_ack
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True when a new INVITE transaction would not fit (the caller sheds it with 503).
    pub fn is_full(&self) -> bool {
        self.index.len() >= self.capacity
    }

    fn entry(&self, key: &TxKey) -> Option<&Entry> {
        let &slot = self.index.get(key)?;
        self.slots[slot as usize].entry.as_ref()
    }

    /// Classifies an incoming request (not ACK; see [`Table::ack`]).
    pub fn lookup(&self, key: &TxKey) -> Lookup {
        match self.entry(key) {
            None => Lookup::New,
            Some(e) => Lookup::Retransmission(Some(e.response.clone())),
        }
    }

    /// Does an INVITE transaction with this key exist (for CANCEL matching)?
    pub fn contains(&self, key: &TxKey) -> bool {
        self.index.contains_key(key)
    }

    /// Records the final response sent for a new request. `udp_target` is `Some` on UDP.
    pub fn complete(
        &mut self,
        key: TxKey,
        invite: bool,
        response: Bytes,
        udp_target: Option<SocketAddr>,
        now: Instant,
    ) -> Result<(), Full> {
        let limit = if invite { self.capacity } else { self.non_invite_share };
        let (retransmit_at, expires_at) = match (invite, udp_target.is_some()) {
            (true, true) => (Some(now + T1), now + TIMER_H),
            // Reliable transport: no Timer G; Timer H still bounds the wait for the ACK.
            (true, false) => (None, now + TIMER_H),
            // Timer J is 64*T1 on UDP and zero on reliable transports; we keep reliable
            // non-INVITE entries for T1 anyway so a duplicate on a second connection is
            // still recognised.
            (false, true) => (None, now + TIMER_H),
            (false, false) => (None, now + T1),
        };
        let len = self.index.len();
        // The entry keeps a copy (two reference counts) so an expiry can find its index entry.
        let slot = match self.index.entry(key.clone()) {
            MapEntry::Occupied(o) => {
                let slot = *o.get();
                let old = self.slots[slot as usize].entry.as_ref().expect("indexed slot is filled");
                if old.invite && old.state == State::Completed {
                    self.awaiting_ack -= 1;
                }
                slot
            }
            MapEntry::Vacant(v) => {
                if len >= limit {
                    return Err(Full);
                }
                let slot = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.slots.push(Slot { entry: None, generation: 0 });
                        (self.slots.len() - 1) as u32
                    }
                };
                *v.insert(slot)
            }
        };
        if invite {
            self.awaiting_ack += 1;
        }
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.entry = Some(Entry {
            key,
            state: State::Completed,
            response,
            udp_target,
            invite,
            retransmit_interval: T1,
            retransmit_at,
            expires_at,
        });
        let next = retransmit_at.unwrap_or(expires_at);
        self.timers.push(Reverse((next, s.generation, slot)));
        Ok(())
    }

    /// An ACK arrived. Returns true if it matched an INVITE transaction (it is then absorbed).
    pub fn ack(&mut self, key: &TxKey, now: Instant) -> bool {
        let Some(&slot) = self.index.get(key) else {
            return false;
        };
        let s = &mut self.slots[slot as usize];
        let Some(e) = s.entry.as_mut() else {
            return false;
        };
        if !e.invite {
            return false;
        }
        if e.state == State::Completed {
            e.state = State::Confirmed;
            self.awaiting_ack -= 1;
            e.retransmit_at = None;
            // Timer I: T4 on UDP (absorb ACK retransmissions), zero on reliable transports.
            e.expires_at = if e.udp_target.is_some() { now + T4 } else { now };
            s.generation = s.generation.wrapping_add(1);
            self.timers.push(Reverse((e.expires_at, s.generation, slot)));
        }
        true
    }

    /// Earliest pending timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Fires every timer due at `now`: Timer G retransmissions are returned, expired
    /// transactions (H, I, J) are removed.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Resend>) {
        while let Some(&Reverse((at, generation, slot))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let s = &mut self.slots[slot as usize];
            if s.generation != generation {
                continue;
            }
            let Some(e) = s.entry.as_mut() else {
                continue;
            };
            if now >= e.expires_at {
                if e.invite && e.state == State::Completed {
                    self.awaiting_ack -= 1;
                }
                let e = s.entry.take().expect("checked above");
                s.generation = s.generation.wrapping_add(1);
                self.index.remove(&e.key);
                self.free.push(slot);
                continue;
            }
            s.generation = s.generation.wrapping_add(1);
            if let (Some(rt), Some(target)) = (e.retransmit_at, e.udp_target)
                && rt <= now
            {
                out.push(Resend { target, response: e.response.clone() });
                e.retransmit_interval = (e.retransmit_interval * 2).min(T2);
                let next = now + e.retransmit_interval;
                e.retransmit_at = Some(next);
                self.timers.push(Reverse((next.min(e.expires_at), s.generation, slot)));
            } else {
                self.timers.push(Reverse((e.expires_at, s.generation, slot)));
            }
        }
        // Stale heap entries (superseded generations) are dropped lazily above; if they pile
        // up (many ACKs rescheduling), rebuild so the heap stays proportional to the table.
        if self.timers.len() > 4 * self.index.len() + 1024 {
            let slots = &self.slots;
            let live: Vec<_> = self
                .timers
                .drain()
                .filter(|Reverse((_, g, s))| slots[*s as usize].entry.is_some() && slots[*s as usize].generation == *g)
                .collect();
            self.timers = live.into_iter().collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veertien_sip::Message;

    fn req(method: &str, branch: &str, cseq_method: &str) -> Request {
        let text = format!(
            "{method} sip:14020@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:14020@y>\r\nCall-ID: c1\r\nCSeq: 1 {cseq_method}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn target() -> SocketAddr {
        "127.0.0.1:5070".parse().unwrap()
    }

    #[test]
    fn invite_retransmission_gets_the_same_response_and_ack_matches() {
        let mut t = Table::new(100);
        let now = Instant::now();
        let inv = req("INVITE", "z9hG4bK-1", "INVITE");
        let key = TxKey::of(&inv).unwrap();
        assert_eq!(t.lookup(&key), Lookup::New);
        t.complete(key.clone(), true, Bytes::from_static(b"302"), Some(target()), now).unwrap();
        assert_eq!(t.lookup(&key), Lookup::Retransmission(Some(Bytes::from_static(b"302"))));
        let ack = req("ACK", "z9hG4bK-1", "ACK");
        assert!(t.ack(&TxKey::of(&ack).unwrap(), now));
        // A different branch is a different transaction.
        let other = req("INVITE", "z9hG4bK-2", "INVITE");
        assert_eq!(t.lookup(&TxKey::of(&other).unwrap()), Lookup::New);
    }

    #[test]
    fn timer_g_retransmits_until_ack_then_timer_i_removes() {
        let mut t = Table::new(100);
        let now = Instant::now();
        let key = TxKey::of(&req("INVITE", "z9hG4bK-g", "INVITE")).unwrap();
        t.complete(key.clone(), true, Bytes::from_static(b"302"), Some(target()), now).unwrap();
        let mut out = Vec::new();
        t.poll(now + Duration::from_millis(499), &mut out);
        assert!(out.is_empty());
        t.poll(now + T1, &mut out);
        assert_eq!(out.len(), 1);
        // Next one after 2*T1 more.
        out.clear();
        t.poll(now + T1 + Duration::from_millis(999), &mut out);
        assert!(out.is_empty());
        t.poll(now + T1 + 2 * T1, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        let ack_at = now + Duration::from_secs(2);
        assert_eq!(t.awaiting_ack(), 1);
        assert!(t.ack(&key, ack_at));
        assert_eq!(t.awaiting_ack(), 0);
        t.poll(ack_at + Duration::from_secs(4), &mut out);
        assert!(out.is_empty(), "no retransmission after ACK");
        assert_eq!(t.len(), 1, "ACK retransmissions absorbed during Timer I");
        t.poll(ack_at + T4, &mut out);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn timer_h_ends_an_unacknowledged_invite() {
        let mut t = Table::new(100);
        let now = Instant::now();
        let key = TxKey::of(&req("INVITE", "z9hG4bK-h", "INVITE")).unwrap();
        t.complete(key, true, Bytes::from_static(b"404"), Some(target()), now).unwrap();
        let mut out = Vec::new();
        let mut at = now;
        while at < now + TIMER_H + T2 {
            at += Duration::from_millis(100);
            t.poll(at, &mut out);
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.awaiting_ack(), 0);
        // 500ms, 1s, 2s, 4s, 4s, ... until 32s: 4 doublings then every T2.
        assert!((8..=11).contains(&out.len()), "{} retransmissions", out.len());
    }

    #[test]
    fn a_reused_place_keeps_no_timer_of_its_former_transaction() {
        let mut t = Table::new(4);
        let now = Instant::now();
        let mut out = Vec::new();
        // A is acknowledged early: its Timer G entry in the heap is stale from then on.
        let a = TxKey::of(&req("INVITE", "z9hG4bK-a", "INVITE")).unwrap();
        t.complete(a.clone(), true, Bytes::from_static(b"302 a"), Some(target()), now).unwrap();
        assert!(t.ack(&a, now + Duration::from_millis(10)));
        t.poll(now + Duration::from_millis(10) + T4, &mut out);
        assert!(out.is_empty(), "an acknowledged answer is not resent");
        assert!(t.is_empty());
        // B takes A's place; only B's own timers fire, and B's ACK still finds it.
        let b_at = now + Duration::from_secs(6);
        let b = TxKey::of(&req("INVITE", "z9hG4bK-b", "INVITE")).unwrap();
        t.complete(b.clone(), true, Bytes::from_static(b"302 b"), Some(target()), b_at).unwrap();
        assert_eq!(t.lookup(&a), Lookup::New, "A is gone");
        t.poll(b_at + T1, &mut out);
        assert_eq!(out, vec![Resend { target: target(), response: Bytes::from_static(b"302 b") }]);
        assert!(t.ack(&b, b_at + T1));
        assert_eq!(t.awaiting_ack(), 0);
        // A new answer to the same transaction replaces the old one and its timers.
        out.clear();
        let c = TxKey::of(&req("INVITE", "z9hG4bK-c", "INVITE")).unwrap();
        t.complete(c.clone(), true, Bytes::from_static(b"100 first"), Some(target()), b_at).unwrap();
        t.complete(c.clone(), true, Bytes::from_static(b"302 c"), Some(target()), b_at + Duration::from_millis(200)).unwrap();
        assert_eq!(t.awaiting_ack(), 1);
        t.poll(b_at + T1, &mut out);
        assert!(out.is_empty(), "the replaced answer's Timer G is void");
        t.poll(b_at + Duration::from_millis(200) + T1, &mut out);
        assert_eq!(out, vec![Resend { target: target(), response: Bytes::from_static(b"302 c") }]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn table_is_bounded_and_non_invites_yield_to_invites() {
        let mut t = Table::new(16);
        let now = Instant::now();
        for i in 0..8 {
            let k = TxKey::of(&req("OPTIONS", &format!("z9hG4bK-o{i}"), "OPTIONS")).unwrap();
            t.complete(k, false, Bytes::new(), Some(target()), now).unwrap();
        }
        let k = TxKey::of(&req("OPTIONS", "z9hG4bK-o9", "OPTIONS")).unwrap();
        assert_eq!(t.complete(k, false, Bytes::new(), Some(target()), now), Err(Full));
        for i in 0..8 {
            let k = TxKey::of(&req("INVITE", &format!("z9hG4bK-i{i}"), "INVITE")).unwrap();
            t.complete(k, true, Bytes::new(), Some(target()), now).unwrap();
        }
        assert!(t.is_full());
        let k = TxKey::of(&req("INVITE", "z9hG4bK-i99", "INVITE")).unwrap();
        assert_eq!(t.complete(k, true, Bytes::new(), Some(target()), now), Err(Full));
        let mut out = Vec::new();
        t.poll(now + TIMER_H, &mut out);
        assert!(t.is_empty());
    }

    #[test]
    fn cancel_finds_its_invite_and_rfc2543_requests_get_a_key() {
        let inv = req("INVITE", "z9hG4bK-c", "INVITE");
        let cancel = req("CANCEL", "z9hG4bK-c", "CANCEL");
        assert_eq!(TxKey::invite_of_cancel(&cancel), TxKey::of(&inv));
        assert_ne!(TxKey::of(&cancel), TxKey::of(&inv));
        // Branch that is only the magic cookie (RFC 4475 3.2.1): fallback key, ACK still matches.
        let inv = req("INVITE", "z9hG4bK", "INVITE");
        let ack = req("ACK", "z9hG4bK", "ACK");
        assert_eq!(TxKey::of(&inv), TxKey::of(&ack));
    }
}
