//! Dialled-number normalisation (14+ numbers) and parsing of ordinary Dutch numbers (callers,
//! destinations, general numbers).
//!
//! Written by hand because the accepted forms are specific to this service: RFC 3966 `tel:` URIs
//! with visual separators and `phone-context`, SIP URIs with `user=phone`, carrier prefixes
//! (`+31`, `0031`) — and each refusal must say precisely what is wrong. General phone-number crates
//! do not know 14+ numbers (they are not E.164 numbers) and reject or mangle them.

use std::fmt;

use serde::{Serialize, Serializer};

/// A 14+ number: "14" followed by a geographic area code. Whether the area code exists is a
/// question for the plan (see [`crate::decide`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourteenNumber {
    code: [u8; 4],
    len: u8,
}

impl FourteenNumber {
    /// The area code, e.g. "0113".
    pub fn area_code(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.code[..self.len as usize]).unwrap_or("")
    }

    /// "14 0113", the way it is written for people.
    pub fn spaced(&self) -> String {
        format!("14 {}", self.area_code())
    }
}

impl fmt::Display for FourteenNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "14{}", self.area_code())
    }
}

impl fmt::Debug for FourteenNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourteenNumber(14{})", self.area_code())
    }
}

impl Serialize for FourteenNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a dialled number is not a 14+ number. [`NormaliseError::code`] is a stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error("the number is empty")]
    Empty,
    #[error("unexpected character '{ch}' at position {position}")]
    InvalidCharacter { ch: char, position: usize },
    #[error("the number has too many digits ({len})")]
    TooLong { len: usize },
    #[error("unsupported URI scheme '{scheme}:' (expected tel:, sip: or sips:)")]
    UnsupportedScheme { scheme: String },
    #[error("malformed URI: {reason}")]
    BadUri { reason: String },
    #[error("URI parameter '{name}' is not supported for a 14+ number")]
    UnsupportedParameter { name: String },
    #[error("phone-context '{context}' is not +31: a 14+ number exists only in the Netherlands")]
    BadPhoneContext { context: String },
    #[error("+{digits} is not a Dutch number (country code +31)")]
    Foreign { digits: String },
    #[error("'{digits}' has a trunk prefix 0 before 14; a 14+ number is dialled as 14 + area code")]
    TrunkPrefix { digits: String },
    #[error("'{digits}' is not a 14+ number (it does not start with 14)")]
    NotFourteen { digits: String },
    #[error("after 14 comes an area code starting with 0 (for example 14 020); '{digits}' has '{after}'")]
    BadAreaCode { digits: String, after: String },
    #[error("'{digits}' has {len} digits; a 14+ number has 5 (14 + 0xx) or 6 (14 + 0xxx)")]
    WrongLength { digits: String, len: usize },
    #[error("'{digits}' has {len} digits after the country code or trunk prefix; a Dutch number has 9")]
    BadLength { digits: String, len: usize },
    #[error("'{digits}' has neither a country code nor a leading 0")]
    NoPrefix { digits: String },
}

impl NormaliseError {
    /// Stable machine-readable code, e.g. for JSON and logs.
    pub fn code(&self) -> &'static str {
        match self {
            NormaliseError::Empty => "empty",
            NormaliseError::InvalidCharacter { .. } => "invalid_character",
            NormaliseError::TooLong { .. } => "too_long",
            NormaliseError::UnsupportedScheme { .. } => "unsupported_scheme",
            NormaliseError::BadUri { .. } => "bad_uri",
            NormaliseError::UnsupportedParameter { .. } => "unsupported_parameter",
            NormaliseError::BadPhoneContext { .. } => "bad_phone_context",
            NormaliseError::Foreign { .. } => "foreign_number",
            NormaliseError::TrunkPrefix { .. } => "trunk_prefix",
            NormaliseError::NotFourteen { .. } => "not_fourteen",
            NormaliseError::BadAreaCode { .. } => "bad_area_code",
            NormaliseError::WrongLength { .. } => "wrong_length",
            NormaliseError::NoPrefix { .. } => "no_prefix",
            NormaliseError::BadLength { .. } => "bad_length",
        }
    }
}

const MAX_DIGITS: usize = 20;

/// Digits collected on the stack: normalisation runs for every call and allocates nothing on success.
#[derive(Clone, Copy)]
struct Digits {
    buf: [u8; MAX_DIGITS],
    len: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

struct Extracted {
    /// Began with '+' (or came with phone-context +31, see `national`).
    global: bool,
    digits: Digits,
}

/// Strip URI syntax and visual separators; returns the digits and whether they are in global form.
fn extract(input: &str) -> Result<Extracted, NormaliseError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(NormaliseError::Empty);
    }
    let s = match s.strip_prefix('<') {
        Some(inner) => inner.strip_suffix('>').ok_or_else(|| NormaliseError::BadUri { reason: "'<' without closing '>'".into() })?,
        None => s,
    };
    let (scheme, body) = match s.find(':') {
        Some(i) if s[..i].chars().all(|c| c.is_ascii_alphabetic()) && i > 0 => (Some(&s[..i]), &s[i + 1..]),
        _ => (None, s),
    };
    let mut decoded = String::new();
    let subscriber_and_params: &str = match scheme {
        None => body,
        Some(sc) if sc.eq_ignore_ascii_case("tel") => body,
        Some(sc) if sc.eq_ignore_ascii_case("sip") || sc.eq_ignore_ascii_case("sips") => {
            let at = body.find('@').ok_or_else(|| NormaliseError::BadUri { reason: "SIP URI without a user part (no '@')".into() })?;
            let (user, rest) = (&body[..at], &body[at + 1..]);
            let host_end = rest.find([';', '?', ':']).unwrap_or(rest.len());
            if rest[..host_end].is_empty() {
                return Err(NormaliseError::BadUri { reason: "SIP URI without a host".into() });
            }
            if user.contains(':') {
                return Err(NormaliseError::BadUri { reason: "SIP URI user part contains a password".into() });
            }
            decoded = percent_decode(user)?;
            &decoded
        }
        Some(sc) => return Err(NormaliseError::UnsupportedScheme { scheme: sc.to_string() }),
    };
    let mut parts = subscriber_and_params.split(';');
    let subscriber = parts.next().unwrap_or("");
    let mut context: Option<&str> = None;
    for p in parts {
        let (name, value) = match p.find('=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, ""),
        };
        let lname = name.trim();
        if lname.eq_ignore_ascii_case("phone-context") {
            context = Some(value.trim());
        } else if lname.eq_ignore_ascii_case("ext") || lname.eq_ignore_ascii_case("isub") || lname.eq_ignore_ascii_case("postd") {
            return Err(NormaliseError::UnsupportedParameter { name: lname.to_ascii_lowercase() });
        } else if lname.is_empty() {
            return Err(NormaliseError::BadUri { reason: "empty parameter (';;')".into() });
        }
        // Other parameters (npdi, rn, cic, ...) carry routing data that does not change the number.
    }

    // The offset of the subscriber inside `input`, so positions in errors point at the user's text.
    let base = (subscriber.as_ptr() as usize).checked_sub(input.as_ptr() as usize).filter(|b| *b <= input.len()).unwrap_or(0);
    let mut digits = Digits { buf: [0; MAX_DIGITS], len: 0 };
    let mut global = false;
    let bytes = subscriber.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'0'..=b'9' => {
                if digits.len == MAX_DIGITS {
                    return Err(NormaliseError::TooLong { len: subscriber.bytes().filter(u8::is_ascii_digit).count() });
                }
                digits.buf[digits.len] = b;
                digits.len += 1;
            }
            b'+' if digits.len == 0 && !global && bytes[..i].iter().all(|c| *c == b' ') => global = true,
            // "+31 (0)14 020": the Dutch way of writing an optional trunk prefix.
            b'(' if global && digits.as_bytes() == b"31" && bytes[i..].starts_with(b"(0)") => i += 2,
            b'-' | b'.' | b'(' | b')' | b' ' => {}
            _ => {
                let ch = subscriber[i..].chars().next().unwrap_or('?');
                // Numbers pasted from web pages carry non-breaking or thin spaces: still spaces.
                if ch.is_whitespace() {
                    i += ch.len_utf8();
                    continue;
                }
                // Inside a percent-decoded SIP user part offsets into the input do not exist.
                let position = if decoded.is_empty() { base + i } else { i };
                return Err(NormaliseError::InvalidCharacter { ch, position });
            }
        }
        i += 1;
    }
    if digits.len == 0 {
        return Err(NormaliseError::Empty);
    }
    if let Some(ctx) = context
        && !global
    {
        let ctx_digits: String = ctx.chars().filter(|c| c.is_ascii_digit()).collect();
        let only_sep = ctx.chars().all(|c| c.is_ascii_digit() || "+-.() ".contains(c));
        if !(ctx.starts_with('+') && only_sep && ctx_digits == "31") {
            return Err(NormaliseError::BadPhoneContext { context: ctx.to_string() });
        }
    }
    Ok(Extracted { global, digits })
}

fn percent_decode(s: &str) -> Result<String, NormaliseError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => out.push(v),
                None => return Err(NormaliseError::BadUri { reason: "bad percent-escape in the user part".into() }),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| NormaliseError::BadUri { reason: "user part is not UTF-8".into() })
}

/// Digits of the number in national form (without country code and without trunk prefix handling).
fn national(ex: &Extracted) -> Result<&[u8], NormaliseError> {
    let d = ex.digits.as_bytes();
    let intl = if ex.global {
        Some(d)
    } else {
        d.strip_prefix(b"00")
    };
    match intl {
        Some(rest) => match rest.strip_prefix(b"31") {
            Some(nat) => Ok(nat),
            None => Err(NormaliseError::Foreign { digits: String::from_utf8_lossy(rest).into_owned() }),
        },
        None => Ok(d),
    }
}

/// Normalise any accepted form of a dialled 14+ number:
/// `14020`, `14 020`, `140113`, `+3114020`, `003114020`, `tel:+31-14-020`,
/// `tel:14020;phone-context=+31`, `sip:14020@host;user=phone`, `sip:+3114020@host`, with RFC 3966
/// visual separators (`-`, `.`, `(`, `)`) and spaces anywhere.
pub fn normalise(dialled: &str) -> Result<FourteenNumber, NormaliseError> {
    let ex = extract(dialled)?;
    let nat = national(&ex)?;
    let shown = || ex.digits.as_str().to_string();
    if !nat.starts_with(b"14") {
        if nat.starts_with(b"014") {
            return Err(NormaliseError::TrunkPrefix { digits: shown() });
        }
        return Err(NormaliseError::NotFourteen { digits: shown() });
    }
    let code = &nat[2..];
    if code.is_empty() || code[0] != b'0' || code.get(1) == Some(&b'0') {
        let after = String::from_utf8_lossy(&code[..code.len().min(4)]).into_owned();
        if code.is_empty() {
            return Err(NormaliseError::WrongLength { digits: shown(), len: nat.len() });
        }
        return Err(NormaliseError::BadAreaCode { digits: shown(), after });
    }
    if code.len() != 3 && code.len() != 4 {
        return Err(NormaliseError::WrongLength { digits: shown(), len: nat.len() });
    }
    let mut buf = [0u8; 4];
    buf[..code.len()].copy_from_slice(code);
    Ok(FourteenNumber { code: buf, len: code.len() as u8 })
}

/// An ordinary telephone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneNumber {
    /// "+31201234567"
    pub e164: String,
    /// National significant number for Dutch numbers ("201234567"), empty for foreign numbers.
    pub nsn: String,
}

impl PhoneNumber {
    pub fn is_dutch(&self) -> bool {
        self.e164.starts_with("+31")
    }
    /// "tel:+31201234567"
    pub fn tel_uri(&self) -> String {
        format!("tel:{}", self.e164)
    }
}

/// Parse a caller, destination or published number in any of the forms `normalise` accepts
/// (`0201234567`, `+31 20 123 4567`, `0031...`, `tel:`, `sip:`), plus foreign E.164 numbers.
pub fn parse_phone(s: &str) -> Result<PhoneNumber, NormaliseError> {
    let ex = extract(s)?;
    let d = ex.digits.as_bytes();
    let to_s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let intl = if ex.global { Some(d) } else { d.strip_prefix(b"00") };
    if let Some(rest) = intl {
        if let Some(nat) = rest.strip_prefix(b"31") {
            // "+31 0 20 ..." is a common slip; the 0 is never part of a Dutch NSN.
            let nat = nat.strip_prefix(b"0").unwrap_or(nat);
            return dutch(nat, ex.digits.as_str());
        }
        if rest.len() < 7 || rest.len() > 15 || rest[0] == b'0' {
            return Err(NormaliseError::BadUri { reason: format!("+{} is not a valid international number", to_s(rest)) });
        }
        return Ok(PhoneNumber { e164: format!("+{}", to_s(rest)), nsn: String::new() });
    }
    // A national number without 0 but with phone-context=+31 ("tel:201234567;phone-context=+31") is rare;
    // we only accept the usual trunk-prefixed national form.
    match d.strip_prefix(b"0") {
        Some(nat) => dutch(nat, ex.digits.as_str()),
        None => Err(NormaliseError::NoPrefix { digits: to_s(d) }),
    }
}

fn dutch(nat: &[u8], shown: &str) -> Result<PhoneNumber, NormaliseError> {
    // Dutch NSNs are 9 digits; 0800/0900 service numbers have 7 or 10.
    if nat.len() < 7 || nat.len() > 10 {
        return Err(NormaliseError::BadLength { digits: shown.to_string(), len: nat.len() });
    }
    let nsn = String::from_utf8_lossy(nat).into_owned();
    Ok(PhoneNumber { e164: format!("+31{nsn}"), nsn })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NsnKind {
    Geographic,
    Mobile,
    NonGeographic,
    Other,
}

/// Kind of a Dutch national significant number by its first digit (Nummerplan: 1–5 and 7
/// geographic, 6 mobile, 8 and 9 non-geographic).
pub fn classify_nsn(nsn: &str) -> NsnKind {
    match nsn.as_bytes().first() {
        Some(b'1'..=b'5' | b'7') => NsnKind::Geographic,
        Some(b'6') => NsnKind::Mobile,
        Some(b'8' | b'9') => NsnKind::NonGeographic,
        _ => NsnKind::Other,
    }
}
