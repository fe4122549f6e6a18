//! Byte-level helpers for the RFC 3261 grammar (section 25).
//!
//! Hand-written on purpose: the SIP grammar has several context-dependent rules (LWS around
//! separators, quoted-pair escapes, `word` vs `token`) that general tokenisers such as httparse
//! reject or accept too liberally, and the strictness of this parser is a project requirement.
//! Header values reach these helpers already unfolded (CRLF+WSP replaced by SP).

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
pub(crate) const fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// `word` characters (Call-ID): token plus ( ) < > : \ DQUOTE / [ ] ? { }.
pub(crate) const fn is_word(b: u8) -> bool {
    is_token(b)
        || matches!(
            b,
            b'(' | b')' | b'<' | b'>' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'{' | b'}'
        )
}

/// RFC 3261 `unreserved` = alphanum / mark.
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')')
}

pub(crate) const fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

pub(crate) fn trim_wsp(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_wsp(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_wsp(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Checks `%HH` escapes and that every other byte satisfies `allowed`.
pub(crate) fn valid_escaped(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' {
            if i + 2 >= s.len() || !s[i + 1].is_ascii_hexdigit() || !s[i + 2].is_ascii_hexdigit() {
                return false;
            }
            i += 3;
        } else if allowed(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Parses a decimal number made only of digits (leading zeros allowed), rejecting overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A cursor over an (unfolded) header value.
pub(crate) struct Cursor<'a> {
    pub s: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Cursor { s, pos: 0 }
    }
    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    pub fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    pub fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }
    /// Consumes `SWS c SWS` if the next non-space byte is `c`.
    pub fn sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> (usize, usize) {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if !f(b) {
                break;
            }
            self.pos += 1;
        }
        (start, self.pos)
    }
    pub fn token(&mut self) -> Option<(usize, usize)> {
        let r = self.take_while(is_token);
        (r.1 > r.0).then_some(r)
    }
    /// Parses a quoted-string starting at the current DQUOTE; returns the range including quotes.
    pub fn quoted_string(&mut self) -> Result<(usize, usize), &'static str> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return Err("Malformed quoted string");
        }
        self.pos += 1;
        loop {
            match self.peek() {
                None => return Err("Unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos));
                }
                Some(b'\\') => {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    match self.s.get(self.pos + 1) {
                        Some(&c) if c <= 0x7f && c != 0x0a && c != 0x0d => self.pos += 2,
                        _ => return Err("Malformed quoted string"),
                    }
                }
                // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
                Some(c) if c == b' ' || c == b'\t' || c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80 => {
                    self.pos += 1
                }
                Some(_) => return Err("Control character in quoted string"),
            }
        }
    }
    /// `gen-value = token / host / quoted-string`.
    pub fn gen_value(&mut self) -> Result<(usize, usize), &'static str> {
        match self.peek() {
            Some(b'"') => self.quoted_string(),
            Some(b'[') => {
                let start = self.pos;
                let r = self.take_while(|b| b != b']');
                if self.peek() != Some(b']') || !self.s[r.0 + 1..r.1].iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                    return Err("Malformed IPv6 reference");
                }
                self.pos += 1;
                Ok((start, self.pos))
            }
            _ => self.token().ok_or("Malformed parameter value"),
        }
    }
}

/// Validates `host` (hostname / IPv4address / IPv6reference) from RFC 3261.
pub(crate) fn valid_host(h: &[u8]) -> bool {
    if h.is_empty() {
        return false;
    }
    if h[0] == b'[' {
        return h.len() > 2
            && h[h.len() - 1] == b']'
            && h[1..h.len() - 1].contains(&b':')
            && h[1..h.len() - 1].iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    let h = h.strip_suffix(b".").unwrap_or(h);
    if h.is_empty() {
        return false;
    }
    h.split(|&b| b == b'.').all(|label| {
        !label.is_empty()
            && label[0].is_ascii_alphanumeric()
            && label[label.len() - 1].is_ascii_alphanumeric()
            && label.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Parses a port: 1*DIGIT within u16.
pub(crate) fn parse_port(s: &[u8]) -> Option<u16> {
    parse_u64(s).and_then(|v| u16::try_from(v).ok())
}

/// Splits `host[:port]`, accepting an IPv6 reference.
pub(crate) fn split_hostport(s: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, port) = if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']')?;
        let rest = &s[close + 1..];
        match rest {
            [] => (&s[..=close], None),
            [b':', p @ ..] => (&s[..=close], Some(parse_port(p)?)),
            _ => return None,
        }
    } else {
        match memchr::memchr(b':', s) {
            Some(i) => (&s[..i], Some(parse_port(&s[i + 1..])?)),
            None => (s, None),
        }
    };
    valid_host(host).then_some((host, port))
}

/// Iterates over `;name[=value]` parameters of a raw parameter string (starting after the
/// first `;`) and finds `name` case-insensitively. Returns `Some(None)` for a flag parameter.
pub(crate) fn find_param<'a>(params: &'a [u8], name: &[u8]) -> Option<Option<&'a [u8]>> {
    for p in params.split(|&b| b == b';') {
        let p = trim_wsp(p);
        let (n, v) = match memchr::memchr(b'=', p) {
            Some(i) => (trim_wsp(&p[..i]), Some(trim_wsp(&p[i + 1..]))),
            None => (p, None),
        };
        if n.eq_ignore_ascii_case(name) {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_checked() {
        assert!(valid_escaped(b"a%20b", is_unreserved));
        assert!(!valid_escaped(b"a%2", is_unreserved));
        assert!(!valid_escaped(b"a%", is_unreserved));
        assert!(!valid_escaped(b"a%zz", is_unreserved));
        assert!(!valid_escaped(b"a b", is_unreserved));
    }

    #[test]
    fn hosts() {
        assert!(valid_host(b"example.com"));
        assert!(valid_host(b"192.0.2.1"));
        assert!(valid_host(b"[2001:db8::1]"));
        assert!(valid_host(b"example.com."));
        assert!(!valid_host(b"-bad.example.com"));
        assert!(!valid_host(b"a..b"));
        assert!(!valid_host(b"a b"));
        assert_eq!(split_hostport(b"h.example:5060"), Some((&b"h.example"[..], Some(5060))));
        assert_eq!(split_hostport(b"h.example:99999"), None);
        assert_eq!(split_hostport(b"[::1]:5"), Some((&b"[::1]"[..], Some(5))));
    }

    #[test]
    fn quoted_strings() {
        let mut c = Cursor::new(br#""a \"b\" c" rest"#);
        assert_eq!(c.quoted_string(), Ok((0, 11)));
        let mut c = Cursor::new(br#""unterminated"#);
        assert!(c.quoted_string().is_err());
    }
}
