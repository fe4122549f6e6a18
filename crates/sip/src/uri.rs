//! SIP, SIPS (RFC 3261 19.1) and tel (RFC 3966) URIs; other absolute URIs are kept opaque.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::scan::{self, is_unreserved};

/// A parsed URI. `raw` is the exact text as received (zero-copy slice of the message).
#[derive(Clone, PartialEq, Eq)]
pub struct Uri {
    raw: Bytes,
    kind: UriKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UriKind {
    Sip(SipUri),
    Tel(TelUri),
    /// Any other absolute URI (`im:`, `http:`, ...). Only the scheme is interpreted.
    Other { scheme: Bytes },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// Still %-escaped, as received.
    pub user: Option<Bytes>,
    pub password: Option<Bytes>,
    pub host: Bytes,
    pub port: Option<u16>,
    /// Raw `;a=b;c` parameter text without the leading `;` (empty if none).
    pub params: Bytes,
    /// Raw header text after `?` (without it), if any.
    pub headers: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelUri {
    /// The number as written, including a leading `+` and visual separators.
    pub number: Bytes,
    pub global: bool,
    /// Raw parameter text without the leading `;`.
    pub params: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UriError(pub &'static str);

impl Uri {
    /// Parses a URI from text (used by builders and configuration).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        Uri::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Parses a URI, keeping `raw` as the backing storage (zero-copy).
    pub fn from_bytes(raw: Bytes) -> Result<Uri, UriError> {
        let colon = memchr::memchr(b':', &raw).ok_or(UriError("URI without scheme"))?;
        let scheme = &raw[..colon];
        if scheme.is_empty()
            || !scheme[0].is_ascii_alphabetic()
            || !scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(UriError("Malformed URI scheme"));
        }
        let rest = &raw[colon + 1..];
        if rest.is_empty() {
            return Err(UriError("Empty URI"));
        }
        let kind = if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            UriKind::Sip(parse_sip(&raw, colon + 1, scheme.len() == 4)?)
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            UriKind::Tel(parse_tel(&raw, colon + 1)?)
        } else {
            // absoluteURI: be strict about what can never appear (whitespace, CTLs, <>"), and
            // leave the rest opaque since we never route to such URIs.
            if rest.iter().any(|&b| b <= 0x20 || b >= 0x7f || matches!(b, b'<' | b'>' | b'"')) {
                return Err(UriError("Malformed URI"));
            }
            UriKind::Other { scheme: raw.slice(..colon) }
        };
        Ok(Uri { raw, kind })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
    pub fn kind(&self) -> &UriKind {
        &self.kind
    }
    pub fn sip(&self) -> Option<&SipUri> {
        match &self.kind {
            UriKind::Sip(s) => Some(s),
            _ => None,
        }
    }
    pub fn tel(&self) -> Option<&TelUri> {
        match &self.kind {
            UriKind::Tel(t) => Some(t),
            _ => None,
        }
    }
    /// Scheme in lower case (`sip`, `sips`, `tel`, or the other scheme as written, lowered).
    pub fn scheme(&self) -> Cow<'_, str> {
        match &self.kind {
            UriKind::Sip(s) if s.secure => Cow::Borrowed("sips"),
            UriKind::Sip(_) => Cow::Borrowed("sip"),
            UriKind::Tel(_) => Cow::Borrowed("tel"),
            UriKind::Other { scheme } => Cow::Owned(String::from_utf8_lossy(scheme).to_ascii_lowercase()),
        }
    }
    /// The user part of a SIP URI or the number of a tel URI, %-unescaped.
    pub fn user(&self) -> Option<Cow<'_, [u8]>> {
        match &self.kind {
            UriKind::Sip(s) => s.user.as_deref().map(unescape),
            UriKind::Tel(t) => Some(Cow::Borrowed(&t.number[..])),
            UriKind::Other { .. } => None,
        }
    }
    /// A URI parameter (`;name=value`); `Some(None)` for a flag such as `;lr`.
    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        let params = match &self.kind {
            UriKind::Sip(s) => &s.params,
            UriKind::Tel(t) => &t.params,
            UriKind::Other { .. } => return None,
        };
        scan::find_param(params, name.as_bytes())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.raw))
    }
}
impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uri({self})")
    }
}

impl TelUri {
    /// Digits only (`+` and visual separators removed), for number-plan lookups.
    pub fn digits(&self) -> String {
        self.number.iter().filter(|b| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#')).map(|&b| b as char).collect()
    }
    pub fn phone_context(&self) -> Option<&[u8]> {
        scan::find_param(&self.params, b"phone-context").flatten()
    }
}

/// Whether the URI text (optionally as `<uri>` in a name-addr or Route entry) has the `sips:`
/// scheme: the scheme alone decides (RFC 3261 26.2), so this reads no further than it and
/// needs no parse. Used where a URI is only text (routes and Request-URIs being built).
pub fn is_sips(uri: &str) -> bool {
    let t = uri.trim_start();
    let t = t.strip_prefix('<').unwrap_or(t);
    t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:"))
}

/// %-decodes (invalid escapes are left as they are; they were rejected at parse time).
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(out)
}

const fn is_user_char(b: u8) -> bool {
    // user-unreserved = & = + $ , ; ? /
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}
const fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}
const fn is_paramchar(b: u8) -> bool {
    // param-unreserved = [ ] / : & + $
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}
const fn is_hnv_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

fn parse_sip(raw: &Bytes, start: usize, secure: bool) -> Result<SipUri, UriError> {
    let rest = &raw[start..];
    // userinfo cannot contain an unescaped '@', and neither can hostport, params or headers,
    // so the first '@' ends the userinfo (the user part may itself contain ';' and '?').
    let (user, password, host_start) = match memchr::memchr(b'@', rest) {
        Some(at) => {
            let userinfo = &rest[..at];
            let (u, p) = match memchr::memchr(b':', userinfo) {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            if u.is_empty() || !scan::valid_escaped(u, is_user_char) {
                return Err(UriError("Malformed user part in URI"));
            }
            if p.is_some_and(|p| !scan::valid_escaped(p, is_password_char)) {
                return Err(UriError("Malformed password in URI"));
            }
            let ustart = start;
            let user = raw.slice(ustart..ustart + u.len());
            let password = p.map(|p| raw.slice(ustart + u.len() + 1..ustart + u.len() + 1 + p.len()));
            (Some(user), password, start + at + 1)
        }
        None => (None, None, start),
    };
    let hp_rest = &raw[host_start..];
    let hp_end = hp_rest.iter().position(|&b| b == b';' || b == b'?').unwrap_or(hp_rest.len());
    let (host, port) =
        scan::split_hostport(&hp_rest[..hp_end]).ok_or(UriError("Malformed host in URI"))?;
    let host = raw.slice(host_start..host_start + host.len());
    let mut pos = host_start + hp_end;
    let mut params = Bytes::new();
    if raw.get(pos) == Some(&b';') {
        let pend = raw[pos..].iter().position(|&b| b == b'?').map_or(raw.len(), |i| pos + i);
        let ptext = &raw[pos + 1..pend];
        for p in ptext.split(|&b| b == b';') {
            let (n, v) = match memchr::memchr(b'=', p) {
                Some(i) => (&p[..i], Some(&p[i + 1..])),
                None => (p, None),
            };
            if n.is_empty() || !scan::valid_escaped(n, is_paramchar) {
                return Err(UriError("Malformed URI parameter"));
            }
            if v.is_some_and(|v| v.is_empty() || !scan::valid_escaped(v, is_paramchar)) {
                return Err(UriError("Malformed URI parameter"));
            }
        }
        params = raw.slice(pos + 1..pend);
        pos = pend;
    }
    let mut headers = None;
    if raw.get(pos) == Some(&b'?') {
        let htext = &raw[pos + 1..];
        for h in htext.split(|&b| b == b'&') {
            let eq = memchr::memchr(b'=', h).ok_or(UriError("Malformed URI header"))?;
            let (n, v) = (&h[..eq], &h[eq + 1..]);
            if n.is_empty() || !scan::valid_escaped(n, is_hnv_char) || !scan::valid_escaped(v, is_hnv_char) {
                return Err(UriError("Malformed URI header"));
            }
        }
        headers = Some(raw.slice(pos + 1..));
    }
    Ok(SipUri { secure, user, password, host, port, params, headers })
}

fn parse_tel(raw: &Bytes, start: usize) -> Result<TelUri, UriError> {
    let rest = &raw[start..];
    let nend = memchr::memchr(b';', rest).unwrap_or(rest.len());
    let number = &rest[..nend];
    let global = number.first() == Some(&b'+');
    let visual = |b: u8| matches!(b, b'-' | b'.' | b'(' | b')');
    let ok = if global {
        number[1..].iter().all(|&b| b.is_ascii_digit() || visual(b)) && number[1..].iter().any(u8::is_ascii_digit)
    } else {
        number.iter().all(|&b| b.is_ascii_hexdigit() || matches!(b, b'*' | b'#') || visual(b))
            && number.iter().any(|&b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
    };
    if !ok {
        return Err(UriError("Malformed telephone number"));
    }
    let mut params = Bytes::new();
    if nend < rest.len() {
        let ptext = &rest[nend + 1..];
        for p in ptext.split(|&b| b == b';') {
            let (n, v) = match memchr::memchr(b'=', p) {
                Some(i) => (&p[..i], Some(&p[i + 1..])),
                None => (p, None),
            };
            if n.is_empty() || !n.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(UriError("Malformed tel URI parameter"));
            }
            if v.is_some_and(|v| v.is_empty() || !scan::valid_escaped(v, is_paramchar)) {
                return Err(UriError("Malformed tel URI parameter"));
            }
        }
        params = raw.slice(start + nend + 1..);
    }
    let t = TelUri { number: raw.slice(start..start + nend), global, params };
    // RFC 3966 5.1.5: a local number must carry a phone-context.
    if !global && t.phone_context().is_none() {
        return Err(UriError("Local tel URI without phone-context"));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sips_is_read_from_the_scheme_of_bare_or_bracketed_text() {
        assert!(is_sips("sips:kcc@10.0.0.1") && is_sips(" <SIPS:kcc@10.0.0.1;lr>;expires=60"));
        assert!(!is_sips("sip:kcc@10.0.0.1;transport=tls") && !is_sips("<sip:sips@10.0.0.1>") && !is_sips("sips"));
    }

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:alice:pw@Example.COM:5070;transport=tcp;lr?subject=x&a=b").unwrap();
        let s = u.sip().unwrap();
        assert_eq!(&s.user.as_ref().unwrap()[..], b"alice");
        assert_eq!(&s.password.as_ref().unwrap()[..], b"pw");
        assert_eq!(&s.host[..], b"Example.COM");
        assert_eq!(s.port, Some(5070));
        assert_eq!(u.param("transport"), Some(Some(&b"tcp"[..])));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(&s.headers.as_ref().unwrap()[..], b"subject=x&a=b");
        assert_eq!(u.scheme(), "sip");
    }

    #[test]
    fn user_part_with_semicolon_and_escapes() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(&u.sip().unwrap().host[..], b"example.com");
        assert_eq!(&u.user().unwrap()[..], b"user;par=u@example.net");
    }

    #[test]
    fn tel_uris() {
        let u = Uri::parse("tel:+31-20-1234567;ext=12").unwrap();
        assert_eq!(u.tel().unwrap().digits(), "31201234567");
        let u = Uri::parse("tel:14020;phone-context=+31").unwrap();
        assert_eq!(u.tel().unwrap().phone_context(), Some(&b"+31"[..]));
        assert!(Uri::parse("tel:14020").is_err(), "local number needs phone-context");
        assert!(Uri::parse("tel:+").is_err());
    }

    #[test]
    fn bad_uris() {
        for bad in ["<sip:a@b>", "sip:", "sip:a@", "sip:a@b c", "sip:a@b:99999", "sip:a%zz@b", "sip:a@b;=x", "1sip:x"] {
            assert!(Uri::parse(bad).is_err(), "{bad} should be rejected");
        }
        let other = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(other.scheme(), "soap.beep");
    }
}
