//! Optional SIP digest authentication of trunks (RFC 3261 §22.3 as a proxy-style challenge,
//! RFC 8760 algorithms: MD5, SHA-256, SHA-512/256; RFC 7616 nonce semantics).
//!
//! Trust by source address stays the first gate (`[sip] trusted_peers`); a `[[trunk.auth]]`
//! entry additionally requires an INVITE from its `networks` to carry valid credentials. The
//! point is toll fraud: a carrier network is shared by many customers, and an address check
//! alone lets anyone on it place calls through us.
//!
//! Nonces are stateless to issue: `issued_ms ‖ random ‖ HMAC-SHA-256(secret, issued_ms ‖
//! random ‖ entry)`, so an INVITE flood without credentials costs one HMAC each and no memory.
//! State is kept only for nonces that have been *used* with valid credentials (their highest
//! nonce-count, to refuse replays), in a table bounded by [`MAX_TRACKED_NONCES`]. When the table
//! is full the oldest entries are evicted and a floor is raised: a nonce issued at or before
//! the floor that is no longer in the table is answered as stale, so eviction can cost an
//! honest peer one extra round trip but can never let a replay through.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use ipnet::IpNet;
use md5::Md5;
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512_256};
use veertien_sip::{Request, Response};

use crate::config::ConfigError;

/// Bound on the replay table (nonces used with valid credentials and not yet expired). With
/// the default 300 s nonce lifetime this holds 218 calls/s of distinct nonces, 5× the national
/// peak even if every call took a fresh nonce; entries are ~80 bytes, so ≈ 5 MB at most.
pub const MAX_TRACKED_NONCES: usize = 65_536;

/// Digest algorithms of RFC 8760 (the `-sess` variants are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256].into_iter().find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// Lower-case hex of the hash of `data`, as the digest computations want it.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data)),
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 => hex(&Sha512_256::digest(data)),
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 | Algorithm::Sha512_256 => 64,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// One `[[trunk.auth]]` entry: the credentials INVITEs from `networks` must present.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrunkAuth {
    /// Source networks this entry applies to (they must also be trusted peers to get this far).
    pub networks: Vec<IpNet>,
    /// Realm in the challenge; the peer's credentials are bound to it.
    pub realm: String,
    pub username: String,
    /// Plain password; or, to keep it out of the file, `ha1_md5` / `ha1_sha256` /
    /// `ha1_sha512_256` = hex H(username:realm:password) for each algorithm offered.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub ha1_md5: Option<String>,
    #[serde(default)]
    pub ha1_sha256: Option<String>,
    #[serde(default)]
    pub ha1_sha512_256: Option<String>,
    /// Offered in this order of preference, one Proxy-Authenticate header each (RFC 8760 §2.4).
    /// Default: SHA-256 then MD5 with a password, else the algorithms an HA1 is given for.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Lifetime of a nonce; a correct answer with an older one gets a new challenge with
    /// `stale=true`, so the peer retries without asking anyone for the password.
    #[serde(default = "default_nonce_secs")]
    pub nonce_secs: u64,
}

fn default_nonce_secs() -> u64 {
    300
}

// Hand-written so a logged config never shows the password or HA1s.
impl fmt::Debug for TrunkAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkAuth")
            .field("networks", &self.networks)
            .field("realm", &self.realm)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ha1", &"<redacted>")
            .field("algorithms", &self.algorithms)
            .field("nonce_secs", &self.nonce_secs)
            .finish()
    }
}

impl TrunkAuth {
    fn ha1_given(&self, a: Algorithm) -> Option<&String> {
        match a {
            Algorithm::Md5 => self.ha1_md5.as_ref(),
            Algorithm::Sha256 => self.ha1_sha256.as_ref(),
            Algorithm::Sha512_256 => self.ha1_sha512_256.as_ref(),
        }
    }

    /// The algorithms offered, in order; validated.
    pub fn offered(&self) -> Result<Vec<Algorithm>, String> {
        let list = match &self.algorithms {
            Some(names) => {
                let mut v = Vec::new();
                for n in names {
                    let a = Algorithm::parse(n).ok_or_else(|| format!("unknown algorithm '{n}' (MD5, SHA-256, SHA-512-256)"))?;
                    if !v.contains(&a) {
                        v.push(a);
                    }
                }
                v
            }
            None if self.password.is_some() => vec![Algorithm::Sha256, Algorithm::Md5],
            None => [Algorithm::Sha256, Algorithm::Sha512_256, Algorithm::Md5].into_iter().filter(|a| self.ha1_given(*a).is_some()).collect(),
        };
        if list.is_empty() {
            return Err("needs a password or an ha1_* value".into());
        }
        for a in &list {
            if self.password.is_none() && self.ha1_given(*a).is_none() {
                return Err(format!("algorithm {} offered without password or its ha1", a.name()));
            }
        }
        Ok(list)
    }

    /// H(username:realm:password) for `a`.
    fn ha1(&self, a: Algorithm) -> String {
        match (self.ha1_given(a), &self.password) {
            (Some(h), _) => h.to_ascii_lowercase(),
            (None, Some(p)) => a.hex(format!("{}:{}:{}", self.username, self.realm, p).as_bytes()),
            (None, None) => String::new(), // excluded by validate
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { key: "trunk.auth", reason };
        if self.networks.is_empty() {
            return Err(invalid(format!("entry for '{}' names no networks", self.username)));
        }
        let quotable = |s: &str| !s.is_empty() && !s.contains(['"', '\\', '\r', '\n']);
        if !quotable(&self.realm) || !quotable(&self.username) {
            return Err(invalid("realm and username must be non-empty, without quotes, backslashes or line breaks".into()));
        }
        if !(1..=86_400).contains(&self.nonce_secs) {
            return Err(invalid("nonce_secs must be between 1 and 86400".into()));
        }
        let offered = self.offered().map_err(|e| invalid(format!("entry for '{}': {e}", self.username)))?;
        for a in offered {
            if let Some(h) = self.ha1_given(a)
                && (h.len() != a.hex_len() || unhex(h).is_none())
            {
                return Err(invalid(format!("ha1 for {} must be {} hex digits", a.name(), a.hex_len())));
            }
        }
        if self.password.as_deref() == Some("") {
            return Err(invalid("password must not be empty".into()));
        }
        Ok(())
    }
}

/// Counters (monotonic) for logs and tests.
#[derive(Debug, Default)]
pub struct DigestMetrics {
    /// 407 sent because no usable credentials were present.
    pub challenged: AtomicU64,
    /// INVITEs whose credentials were valid.
    pub accepted: AtomicU64,
    /// Credentials present but wrong (password, user, realm, URI, forged nonce).
    pub failed: AtomicU64,
    /// Correct credentials on an expired (or evicted) nonce: 407 with stale=true.
    pub stale: AtomicU64,
    /// A nonce-count not above the last one seen for the nonce.
    pub replayed: AtomicU64,
}

struct Entry {
    auth: TrunkAuth,
    offered: Vec<Algorithm>,
    /// HA1 per offered algorithm, computed once.
    ha1: Vec<(Algorithm, String)>,
}

#[derive(Default)]
struct Replay {
    /// nonce → (issued_ms, highest nc used).
    seen: HashMap<String, (u64, u32)>,
    /// Insertion order, for eviction.
    order: VecDeque<(String, u64)>,
    /// Nonces issued at or before this (ms) and absent from `seen` are refused as stale.
    floor_ms: u64,
}

/// What [`DigestAuth::check`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No entry applies to the source, or its credentials are valid.
    Pass,
    /// Answer 407 with a fresh challenge.
    Challenge { stale: bool },
}

pub struct DigestAuth {
    entries: Vec<Entry>,
    key: [u8; 32],
    capacity: usize,
    replay: Mutex<Replay>,
    pub metrics: DigestMetrics,
}

const NONCE_RANDOM: usize = 8;
const NONCE_MAC: usize = 16;

impl DigestAuth {
    /// `entries` must have passed [`TrunkAuth::validate`].
    pub fn new(entries: &[TrunkAuth]) -> DigestAuth {
        Self::with_capacity(entries, MAX_TRACKED_NONCES)
    }

    pub fn with_capacity(entries: &[TrunkAuth], capacity: usize) -> DigestAuth {
        let entries = entries
            .iter()
            .map(|a| {
                let offered = a.offered().unwrap_or_default();
                let ha1 = offered.iter().map(|&alg| (alg, a.ha1(alg))).collect();
                Entry { auth: a.clone(), offered, ha1 }
            })
            .collect();
        DigestAuth { entries, key: rand::random(), capacity: capacity.max(1), replay: Mutex::new(Replay::default()), metrics: DigestMetrics::default() }
    }

    pub fn is_enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Tracked nonces (bounded by the capacity).
    pub fn tracked(&self) -> usize {
        self.replay.lock().seen.len()
    }

    fn applying(&self, src: IpAddr) -> impl Iterator<Item = (usize, &Entry)> {
        let src = match src {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(src),
            v4 => v4,
        };
        self.entries.iter().enumerate().filter(move |(_, e)| e.auth.networks.iter().any(|n| n.contains(&src)))
    }

    fn mac(&self, issued_ms: u64, random: &[u8], entry: usize) -> [u8; NONCE_MAC] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(&issued_ms.to_be_bytes());
        m.update(random);
        m.update(&(entry as u64).to_be_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; NONCE_MAC];
        out.copy_from_slice(&full[..NONCE_MAC]);
        out
    }

    fn new_nonce(&self, entry: usize, now_ms: u64) -> String {
        let random: [u8; NONCE_RANDOM] = rand::random();
        let mut raw = Vec::with_capacity(8 + NONCE_RANDOM + NONCE_MAC);
        raw.extend_from_slice(&now_ms.to_be_bytes());
        raw.extend_from_slice(&random);
        raw.extend_from_slice(&self.mac(now_ms, &random, entry));
        hex(&raw)
    }

    /// The issue time of a nonce we made for `entry`, or None for anything else.
    fn nonce_issued(&self, nonce: &str, entry: usize) -> Option<u64> {
        if nonce.len() != 2 * (8 + NONCE_RANDOM + NONCE_MAC) {
            return None;
        }
        let raw = unhex(nonce)?;
        let issued = u64::from_be_bytes(raw[..8].try_into().ok()?);
        let mac = self.mac(issued, &raw[8..8 + NONCE_RANDOM], entry);
        ct_eq(&mac, &raw[8 + NONCE_RANDOM..]).then_some(issued)
    }

    /// Decides an INVITE from `src`. Called for INVITEs only: ACK and CANCEL cannot be
    /// challenged (RFC 3261 §22.1) and in-dialog requests belong to a call already admitted.
    pub fn check(&self, req: &Request, src: IpAddr) -> Verdict {
        self.check_at(req, src, now_ms())
    }

    pub fn check_at(&self, req: &Request, src: IpAddr, now_ms: u64) -> Verdict {
        if self.applying(src).next().is_none() {
            return Verdict::Pass;
        }
        let mut stale = false;
        let mut saw_credentials = false;
        for value in req.headers().iter().filter(|h| h.name.as_str().eq_ignore_ascii_case("Proxy-Authorization")).map(|h| &h.value) {
            let Some(creds) = Credentials::parse(value) else {
                saw_credentials = true;
                continue;
            };
            for (idx, e) in self.applying(src) {
                if creds.realm != e.auth.realm {
                    continue; // meant for another realm on the path
                }
                saw_credentials = true;
                match self.verify(&creds, idx, e, req, now_ms) {
                    Check::Ok => {
                        self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
                        return Verdict::Pass;
                    }
                    Check::Stale => stale = true,
                    Check::Bad(why) => {
                        tracing::debug!(%src, username = %creds.username, reason = why, "digest authentication failed");
                    }
                }
            }
        }
        if stale {
            self.metrics.stale.fetch_add(1, Ordering::Relaxed);
        } else if saw_credentials {
            self.metrics.failed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metrics.challenged.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Challenge { stale }
    }

    fn verify(&self, c: &Credentials, idx: usize, e: &Entry, req: &Request, now_ms: u64) -> Check {
        if c.username != e.auth.username {
            return Check::Bad("unknown username");
        }
        let alg = match &c.algorithm {
            None => Algorithm::Md5, // RFC 3261: absent means MD5
            Some(a) => match Algorithm::parse(a) {
                Some(a) => a,
                None => return Check::Bad("algorithm not supported"),
            },
        };
        let Some((_, ha1)) = e.ha1.iter().find(|(a, _)| *a == alg) else {
            return Check::Bad("algorithm not offered");
        };
        if !uri_matches(&c.uri, req.uri().as_bytes()) {
            return Check::Bad("digest uri is not the request uri");
        }
        let Some(issued) = self.nonce_issued(&c.nonce, idx) else {
            return Check::Bad("nonce not issued by us");
        };
        let ha2 = alg.hex(format!("{}:{}", req.method().as_str(), c.uri).as_bytes());
        let (expected, nc) = match c.qop.as_deref() {
            None => (alg.hex(format!("{ha1}:{}:{ha2}", c.nonce).as_bytes()), 1),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc_s), Some(cnonce)) = (&c.nc, &c.cnonce) else {
                    return Check::Bad("qop=auth without nc or cnonce");
                };
                let nc = match u32::from_str_radix(nc_s, 16) {
                    Ok(n) if nc_s.len() == 8 && n > 0 => n,
                    _ => return Check::Bad("malformed nc"),
                };
                (alg.hex(format!("{ha1}:{}:{nc_s}:{cnonce}:auth:{ha2}", c.nonce).as_bytes()), nc)
            }
            Some(_) => return Check::Bad("qop not supported"),
        };
        if !ct_eq(expected.as_bytes(), c.response.to_ascii_lowercase().as_bytes()) {
            return Check::Bad("wrong response (password)");
        }
        // The answer is right; only now can the nonce be called stale (RFC 7616 §3.3).
        let lifetime_ms = e.auth.nonce_secs.saturating_mul(1000);
        if now_ms > issued.saturating_add(lifetime_ms) {
            return Check::Stale;
        }
        let mut r = self.replay.lock();
        if let Some((_, last)) = r.seen.get_mut(&c.nonce) {
            if nc <= *last {
                self.metrics.replayed.fetch_add(1, Ordering::Relaxed);
                return Check::Bad("nonce count replayed");
            }
            *last = nc;
            return Check::Ok;
        }
        if issued <= r.floor_ms {
            return Check::Stale; // may have been evicted: cannot prove it is not a replay
        }
        if r.seen.len() >= self.capacity {
            // Expired entries first (their nonces are refused as stale before this table is
            // consulted), then the oldest live ones, raising the floor.
            let mut i = 0;
            while i < r.order.len() && r.seen.len() >= self.capacity {
                let (n, iss) = r.order[i].clone();
                if now_ms > iss.saturating_add(lifetime_ms) {
                    r.seen.remove(&n);
                    r.order.remove(i);
                } else {
                    i += 1;
                }
                if i > 64 {
                    break; // bounded work per call; the loop below finishes the job
                }
            }
            while r.seen.len() >= self.capacity {
                let Some((n, iss)) = r.order.pop_front() else { break };
                r.seen.remove(&n);
                r.floor_ms = r.floor_ms.max(iss);
            }
            if issued <= r.floor_ms {
                return Check::Stale;
            }
        }
        r.seen.insert(c.nonce.clone(), (issued, nc));
        r.order.push_back((c.nonce.clone(), issued));
        Check::Ok
    }

    /// The 407 for `req`: one Proxy-Authenticate per offered algorithm, preferred first.
    pub fn challenge(&self, req: &Request, src: IpAddr, stale: bool, to_tag: &str) -> Response {
        self.challenge_at(req, src, stale, to_tag, now_ms())
    }

    pub fn challenge_at(&self, req: &Request, src: IpAddr, stale: bool, to_tag: &str, now_ms: u64) -> Response {
        let mut b = Response::builder(req, 407).to_tag(to_tag);
        for (idx, e) in self.applying(src) {
            let nonce = self.new_nonce(idx, now_ms);
            for a in &e.offered {
                b = b.header(
                    "Proxy-Authenticate",
                    format!(
                        "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                        e.auth.realm,
                        a.name(),
                        if stale { ", stale=true" } else { "" }
                    ),
                );
            }
        }
        b.build()
    }
}

enum Check {
    Ok,
    Stale,
    Bad(&'static str),
}

/// The digest-uri names the Request-URI (RFC 2617 §3.2.2.5), or — what SIPp and some
/// gateways send — the same SIP URI without its user part (`sip:host:port`). The uri is inside
/// HA2 either way, so it cannot be altered without the password; the check only keeps a
/// response computed for another server from being accepted here.
fn uri_matches(digest_uri: &str, request_uri: &[u8]) -> bool {
    let Ok(r) = std::str::from_utf8(request_uri) else { return false };
    if digest_uri == r {
        return true;
    }
    fn split(u: &str) -> Option<(String, bool, String)> {
        let (scheme, rest) = u.split_once(':')?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return None;
        }
        let rest = &rest[..rest.find([';', '?']).unwrap_or(rest.len())];
        let (user, host) = match rest.rfind('@') {
            Some(i) => (true, &rest[i + 1..]),
            None => (false, rest),
        };
        Some((scheme, user, host.to_ascii_lowercase()))
    }
    match (split(digest_uri), split(r)) {
        (Some((ds, false, dh)), Some((rs, _, rh))) => ds == rs && !dh.is_empty() && dh == rh,
        _ => false,
    }
}

fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}

/// Constant-time equality (lengths are public).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The parameters of one `Proxy-Authorization: Digest …` value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl Credentials {
    /// None for another scheme, a malformed value, or missing required parameters.
    pub fn parse(value: &[u8]) -> Option<Credentials> {
        let s = std::str::from_utf8(value).ok()?.trim();
        if s.len() > 4096 {
            return None;
        }
        let (scheme, mut rest) = s.split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials::default();
        let (mut has_user, mut has_realm, mut has_nonce, mut has_uri, mut has_resp) = (false, false, false, false, false);
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let eq = rest.find('=')?;
            let name = rest[..eq].trim().to_ascii_lowercase();
            rest = rest[eq + 1..].trim_start();
            let value: String;
            if let Some(q) = rest.strip_prefix('"') {
                let mut v = String::new();
                let mut chars = q.char_indices();
                let mut end = None;
                while let Some((i, ch)) = chars.next() {
                    match ch {
                        '\\' => v.push(chars.next()?.1),
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => v.push(ch),
                    }
                }
                rest = &q[end? + 1..];
                value = v;
            } else {
                let end = rest.find([',', ' ', '\t']).unwrap_or(rest.len());
                value = rest[..end].to_string();
                rest = &rest[end..];
            }
            match name.as_str() {
                "username" => (c.username, has_user) = (value, true),
                "realm" => (c.realm, has_realm) = (value, true),
                "nonce" => (c.nonce, has_nonce) = (value, true),
                "uri" => (c.uri, has_uri) = (value, true),
                "response" => (c.response, has_resp) = (value, true),
                "algorithm" => c.algorithm = Some(value),
                "qop" => c.qop = Some(value),
                "nc" => c.nc = Some(value),
                "cnonce" => c.cnonce = Some(value),
                _ => {} // opaque, auth-param: ignored
            }
        }
        (has_user && has_realm && has_nonce && has_uri && has_resp).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(nets: &[&str], algs: Option<&[&str]>, nonce_secs: u64) -> TrunkAuth {
        TrunkAuth {
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            realm: "veertien.test".into(),
            username: "carrier".into(),
            password: Some("geheim".into()),
            ha1_md5: None,
            ha1_sha256: None,
            ha1_sha512_256: None,
            algorithms: algs.map(|a| a.iter().map(|s| s.to_string()).collect()),
            nonce_secs,
        }
    }

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:140113@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:0201234567@127.0.0.1>;tag=a\r\nTo: <sip:140113@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match veertien_sip::Message::parse(text.as_bytes()).unwrap() {
            veertien_sip::Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    fn param(h: &str, name: &str) -> Option<String> {
        let i = h.find(&format!("{name}="))? + name.len() + 1;
        let rest = &h[i..];
        Some(match rest.strip_prefix('"') {
            Some(q) => q[..q.find('"')?].to_string(),
            None => rest.split([',', ' ']).next()?.to_string(),
        })
    }

    /// A client's answer computed independently of the code under test (the RFC 7616 formula).
    fn answer(challenge: &str, password: &str, nc: &str, uri: &str) -> String {
        let alg = Algorithm::parse(&param(challenge, "algorithm").unwrap()).unwrap();
        let realm = param(challenge, "realm").unwrap();
        let nonce = param(challenge, "nonce").unwrap();
        let ha1 = alg.hex(format!("carrier:{realm}:{password}").as_bytes());
        let ha2 = alg.hex(format!("INVITE:{uri}").as_bytes());
        let resp = alg.hex(format!("{ha1}:{nonce}:{nc}:0a4f113b:auth:{ha2}").as_bytes());
        format!(
            "Proxy-Authorization: Digest username=\"carrier\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"0a4f113b\"\r\n",
            alg.name()
        )
    }

    fn challenges(resp: &Response) -> Vec<String> {
        resp.headers().all(&"Proxy-Authenticate".into()).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }

    const SRC: &str = "10.1.2.3";

    #[test]
    fn rfc7616_vectors() {
        // RFC 7616 §3.9.1 (HTTP, but the computation is the one SIP uses).
        for (alg, want) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (Algorithm::Sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ] {
            let ha1 = alg.hex(b"Mufasa:http-auth@example.org:Circle of Life");
            let ha2 = alg.hex(b"GET:/dir/index.html");
            let r = alg.hex(
                format!("{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}")
                    .as_bytes(),
            );
            assert_eq!(r, want, "{}", alg.name());
        }
    }

    #[test]
    fn sources_outside_the_networks_pass_untouched() {
        let d = DigestAuth::new(&[entry(&["10.1.0.0/16"], None, 300)]);
        assert_eq!(d.check(&invite(""), "10.2.0.1".parse().unwrap()), Verdict::Pass);
        assert_eq!(d.check(&invite(""), SRC.parse().unwrap()), Verdict::Challenge { stale: false });
        // IPv4-mapped IPv6 (dual-stack socket) is the same source.
        assert_eq!(d.check(&invite(""), "::ffff:10.1.2.3".parse().unwrap()), Verdict::Challenge { stale: false });
    }

    #[test]
    fn challenge_offers_sha256_then_md5_and_both_answers_pass() {
        let d = DigestAuth::new(&[entry(&["10.1.0.0/16"], None, 300)]);
        let ch = challenges(&d.challenge(&invite(""), SRC.parse().unwrap(), false, "t"));
        assert_eq!(ch.len(), 2);
        assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"), "{ch:?}");
        assert!(ch.iter().all(|c| c.contains("qop=\"auth\"") && !c.contains("stale")));
        // One nonce for both headers: the peer answers one of them. Each algorithm on its own
        // challenge passes.
        assert_eq!(param(&ch[0], "nonce"), param(&ch[1], "nonce"));
        for i in 0..2 {
            let c = &challenges(&d.challenge(&invite(""), SRC.parse().unwrap(), false, "t"))[i];
            let req = invite(&answer(c, "geheim", "00000001", "sip:140113@127.0.0.1"));
            assert_eq!(d.check(&req, SRC.parse().unwrap()), Verdict::Pass, "{c}");
        }
        assert_eq!(d.metrics.accepted.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn wrong_password_user_uri_or_forged_nonce_are_challenged_again() {
        let d = DigestAuth::new(&[entry(&["10.1.0.0/16"], Some(&["SHA-512-256", "MD5"]), 300)]);
        let src: IpAddr = SRC.parse().unwrap();
        let ch = challenges(&d.challenge(&invite(""), src, false, "t"));
        assert!(ch[0].contains("algorithm=SHA-512-256"));
        let bad = [
            answer(&ch[0], "fout", "00000001", "sip:140113@127.0.0.1"),
            answer(&ch[1], "fout", "00000001", "sip:140113@127.0.0.1"),
            answer(&ch[0], "geheim", "00000001", "sip:0900123@127.0.0.1"),
            answer(&ch[0], "geheim", "00000001", "sip:140113@127.0.0.1").replace("username=\"carrier\"", "username=\"other\""),
            answer(&ch[0].replace(&param(&ch[0], "nonce").unwrap()[..8], "00000000"), "geheim", "00000001", "sip:140113@127.0.0.1"),
        ];
        for b in &bad {
            assert_eq!(d.check(&invite(b), src), Verdict::Challenge { stale: false }, "{b}");
        }
        assert_eq!(d.metrics.failed.load(Ordering::Relaxed), bad.len() as u64);
        // A nonce made for one entry is not valid for another with the same realm.
        let two = DigestAuth::new(&[entry(&["10.1.0.0/16"], None, 300), entry(&["10.9.0.0/16"], None, 300)]);
        let ch = challenges(&two.challenge(&invite(""), src, false, "t"));
        let other: IpAddr = "10.9.0.1".parse().unwrap();
        assert_eq!(two.check(&invite(&answer(&ch[0], "geheim", "00000001", "sip:140113@127.0.0.1")), other), Verdict::Challenge { stale: false });
        assert_eq!(two.check(&invite(&answer(&ch[0], "geheim", "00000001", "sip:140113@127.0.0.1")), src), Verdict::Pass);
    }

    #[test]
    fn expired_nonce_with_right_password_is_stale_and_wrong_password_is_not() {
        let d = DigestAuth::new(&[entry(&["10.1.0.0/16"], Some(&["MD5"]), 2)]);
        let src: IpAddr = SRC.parse().unwrap();
        let t0 = 1_800_000_000_000;
        let ch = challenges(&d.challenge_at(&invite(""), src, false, "t", t0));
        let good = invite(&answer(&ch[0], "geheim", "00000001", "sip:140113@127.0.0.1"));
        let wrong = invite(&answer(&ch[0], "fout", "00000001", "sip:140113@127.0.0.1"));
        assert_eq!(d.check_at(&good, src, t0 + 2_500), Verdict::Challenge { stale: true });
        assert_eq!(d.check_at(&wrong, src, t0 + 2_500), Verdict::Challenge { stale: false });
        assert_eq!(d.check_at(&good, src, t0 + 1_000), Verdict::Pass);
        let again = challenges(&d.challenge_at(&invite(""), src, true, "t", t0));
        assert!(again[0].contains("stale=true"));
    }

    #[test]
    fn nonce_count_replay_is_refused_and_increments_pass() {
        let d = DigestAuth::new(&[entry(&["10.1.0.0/16"], Some(&["SHA-256"]), 300)]);
        let src: IpAddr = SRC.parse().unwrap();
        let ch = challenges(&d.challenge(&invite(""), src, false, "t"));
        let uri = "sip:140113@127.0.0.1";
        assert_eq!(d.check(&invite(&answer(&ch[0], "geheim", "00000001", uri)), src), Verdict::Pass);
        assert_eq!(d.check(&invite(&answer(&ch[0], "geheim", "00000001", uri)), src), Verdict::Challenge { stale: false });
        assert_eq!(d.check(&invite(&answer(&ch[0], "geheim", "00000002", uri)), src), Verdict::Pass);
        assert_eq!(d.check(&invite(&answer(&ch[0], "geheim", "00000002", uri)), src), Verdict::Challenge { stale: false });
        assert_eq!(d.metrics.replayed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn replay_table_is_bounded_and_eviction_never_admits_a_replay() {
        let d = DigestAuth::with_capacity(&[entry(&["10.1.0.0/16"], Some(&["MD5"]), 300)], 8);
        let src: IpAddr = SRC.parse().unwrap();
        let uri = "sip:140113@127.0.0.1";
        let t0 = 1_800_000_000_000;
        let mut used = Vec::new();
        for i in 0..40u64 {
            let ch = challenges(&d.challenge_at(&invite(""), src, false, "t", t0 + i));
            let a = answer(&ch[0], "geheim", "00000001", uri);
            assert_eq!(d.check_at(&invite(&a), src, t0 + i), Verdict::Pass, "call {i}");
            used.push(a);
            assert!(d.tracked() <= 8);
        }
        // Every earlier answer replayed: refused, either as a replay (still tracked) or as
        // stale (evicted, below the floor).
        for (i, a) in used.iter().enumerate() {
            assert_ne!(d.check_at(&invite(a), src, t0 + 50), Verdict::Pass, "replay of call {i}");
        }
        // Expired entries are dropped first: after the lifetime, new nonces fit without
        // raising the floor past them.
        let late = t0 + 301_000;
        let ch = challenges(&d.challenge_at(&invite(""), src, false, "t", late));
        assert_eq!(d.check_at(&invite(&answer(&ch[0], "geheim", "00000001", uri)), src, late), Verdict::Pass);
    }

    #[test]
    fn config_file_section() {
        let c = crate::Config::parse(
            r#"
[sip]
trusted_peers = ["10.1.0.0/16"]
[[trunk.auth]]
networks = ["10.1.2.0/24"]
realm = "14.example.nl"
username = "carrier-a"
password = "geheim"
[[trunk.auth]]
networks = ["10.1.3.0/24"]
realm = "14.example.nl"
username = "carrier-b"
ha1_md5 = "0123456789abcdef0123456789abcdef"
nonce_secs = 60
"#,
        )
        .unwrap();
        assert_eq!(c.trunk.auth.len(), 2);
        assert_eq!(c.trunk.auth[0].offered().unwrap(), vec![Algorithm::Sha256, Algorithm::Md5]);
        assert_eq!(c.trunk.auth[1].offered().unwrap(), vec![Algorithm::Md5]);
        let e = crate::Config::parse("[[trunk.auth]]\nnetworks = [\"10.0.0.0/8\"]\nrealm = \"r\"\nusername = \"u\"\n").unwrap_err();
        assert!(e.to_string().contains("trunk.auth"), "{e}");
        let e = crate::Config::parse("[[trunk.auth]]\nnetworks = [\"10.0.0.0/8\"]\nrealm = \"r\"\nusername = \"u\"\npasword = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("pasword"), "{e}");
    }

    #[test]
    fn digest_uri_is_the_request_uri_or_its_host_part() {
        let r = b"sip:140113@10.0.0.1:5060;user=phone";
        assert!(uri_matches("sip:140113@10.0.0.1:5060;user=phone", r));
        assert!(uri_matches("sip:10.0.0.1:5060", r), "SIPp's form");
        assert!(!uri_matches("sip:10.0.0.2:5060", r));
        assert!(!uri_matches("sip:10.0.0.1", r), "port differs");
        assert!(!uri_matches("sip:0900123@10.0.0.1:5060", r), "another number");
        assert!(!uri_matches("sips:10.0.0.1:5060", r));
        assert!(!uri_matches("tel:140113", r));
    }

    #[test]
    fn credentials_parse() {
        let c = Credentials::parse(
            br#"Digest username="carrier",realm="veertien.test", nonce="abc", uri="sip:140113@x", response="0123", algorithm=MD5, qop=auth, nc=00000001, cnonce="x\"y", opaque="o""#,
        )
        .unwrap();
        assert_eq!(c.username, "carrier");
        assert_eq!(c.realm, "veertien.test");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.cnonce.as_deref(), Some("x\"y"));
        assert!(Credentials::parse(b"Basic dXNlcjpwYXNz").is_none());
        assert!(Credentials::parse(br#"Digest username="a", realm="b""#).is_none());
        assert!(Credentials::parse(br#"Digest username="a"#).is_none());
        assert!(Credentials::parse("Digest username=\"é\", realm=\"b\", nonce=\"n\", uri=\"u\", response=\"r\"".as_bytes()).is_some());
    }

    #[test]
    fn config_validation_names_the_fault_and_debug_hides_secrets() {
        assert!(entry(&["10.0.0.0/8"], None, 300).validate().is_ok());
        let mut e = entry(&[], None, 300);
        assert!(e.validate().unwrap_err().to_string().contains("trunk.auth"));
        e = entry(&["10.0.0.0/8"], Some(&["SHA-1"]), 300);
        assert!(e.validate().unwrap_err().to_string().contains("SHA-1"));
        e = entry(&["10.0.0.0/8"], Some(&["SHA-256"]), 300);
        e.password = None;
        assert!(e.validate().is_err(), "SHA-256 without password or ha1_sha256");
        e.ha1_sha256 = Some(Algorithm::Sha256.hex(b"carrier:veertien.test:geheim"));
        assert!(e.validate().is_ok());
        e.ha1_sha256 = Some("abc".into());
        assert!(e.validate().is_err());
        let shown = format!("{:?}", entry(&["10.0.0.0/8"], None, 300));
        assert!(!shown.contains("geheim"), "{shown}");
        // HA1 instead of the password gives the same answers.
        let mut h = entry(&["10.1.0.0/16"], Some(&["SHA-256"]), 300);
        h.password = None;
        h.ha1_sha256 = Some(Algorithm::Sha256.hex(b"carrier:veertien.test:geheim").to_uppercase());
        let d = DigestAuth::new(&[h]);
        let src: IpAddr = SRC.parse().unwrap();
        let ch = challenges(&d.challenge(&invite(""), src, false, "t"));
        assert_eq!(d.check(&invite(&answer(&ch[0], "geheim", "00000001", "sip:140113@127.0.0.1")), src), Verdict::Pass);
    }
}
