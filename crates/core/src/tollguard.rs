//! The toll-fraud guard: which destinations a municipality's calls may be sent to.
//!
//! A compromised portal account (or a typo) must never turn the free 14+ number into a bridge to a
//! premium-rate, mobile or foreign number paid by the platform. Allowed, by range of the Dutch
//! numbering plan (national significant number after +31):
//!
//! | Range | Decision | Why |
//! |---|---|---|
//! | 01x–05x, 07x (9 digits) | allowed | geographic numbers: the normal contact-centre line |
//! | 085, 088 (9 digits) | allowed | location-independent / corporate numbers, common for contact centres |
//! | 0800 (7 or 10 digits) | allowed | freephone: the callee pays |
//! | 0900, 0906, 0909 (and all other 090x) | forbidden | premium rate: the caller (here: the platform) pays |
//! | 06 (mobile, incl. 066 pagers) | forbidden | not a contact centre; mobile termination is expensive and a classic fraud route |
//! | 067, 084, 087, 082, 091, 097 and other 08x/09x | forbidden | data, personal-assistant, VPN, M2M ranges: not a contact centre |
//! | 14 + area code | forbidden | loops back into the platform (refused already by [`Destination::parse`]) |
//! | 112 and other short codes, 1xxx | forbidden | emergency/short numbers are never a forwarding target (not E.164 either) |
//! | international (+ not 31, incl. Caribbean Netherlands +599) | forbidden | international revenue-share fraud |
//! | SIP URI | allowed only on a configured operator trunk host | any other host is an unknown route out |
//! | `trunk` | allowed | the operator's own contact-centre trunk |

use std::fmt;

use crate::settings::Destination;

/// Why a destination is refused. `Display` is Dutch (users read it in the portal); [`ForbiddenDestination::english`] gives English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForbiddenDestination {
    Premium { number: String },
    Mobile { number: String },
    NonContactRange { number: String },
    International { number: String },
    ShortCode { number: String },
    BadLength { number: String },
    SipHostNotTrunk { uri: String, host: String },
}

impl ForbiddenDestination {
    pub fn english(&self) -> String {
        match self {
            Self::Premium { number } => format!("{number} is a premium-rate number (090x): not allowed as destination"),
            Self::Mobile { number } => format!("{number} is a mobile number (06): not allowed as destination"),
            Self::NonContactRange { number } => {
                format!("{number} is in a range that is not a contact-centre line (only geographic, 085, 088 and 0800 are allowed)")
            }
            Self::International { number } => format!("{number} is a foreign number: only Dutch numbers are allowed"),
            Self::ShortCode { number } => format!("{number} is a short or emergency code: not allowed as destination"),
            Self::BadLength { number } => format!("{number} does not have the length of a Dutch number in its range"),
            Self::SipHostNotTrunk { uri, host } => {
                format!("{uri}: host {host} is not one of the operator's configured trunks")
            }
        }
    }
}

impl fmt::Display for ForbiddenDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Premium { number } => write!(f, "{number} is een betaalnummer (090x): niet toegestaan als bestemming"),
            Self::Mobile { number } => write!(f, "{number} is een mobiel nummer (06): niet toegestaan als bestemming"),
            Self::NonContactRange { number } => write!(
                f,
                "{number} valt in een reeks die geen klantcontactlijn is (alleen geografische nummers, 085, 088 en 0800 zijn toegestaan)"
            ),
            Self::International { number } => write!(f, "{number} is een buitenlands nummer: alleen Nederlandse nummers zijn toegestaan"),
            Self::ShortCode { number } => write!(f, "{number} is een kort of alarmnummer: niet toegestaan als bestemming"),
            Self::BadLength { number } => write!(f, "{number} heeft niet de lengte van een Nederlands nummer in deze reeks"),
            Self::SipHostNotTrunk { uri, host } => {
                write!(f, "{uri}: host {host} is geen van de geconfigureerde trunks van de beheerder")
            }
        }
    }
}

impl std::error::Error for ForbiddenDestination {}

/// The host of a SIP URI or trunk pattern ("sip:{cbs}@kcc.example.nl;transport=tcp" → "kcc.example.nl").
pub fn sip_host(uri: &str) -> &str {
    let rest = uri.split_once(':').map(|(_, r)| r).unwrap_or(uri);
    let host = rest.rsplit('@').next().unwrap_or("");
    host.split([';', '?', ':', '>']).next().unwrap_or("")
}

/// Checks a destination against the ranges above. `trunks` are the operator's trunk URIs or
/// patterns (`{cbs}` allowed); a SIP destination must use the host of one of them.
pub fn check_destination(dest: &Destination, trunks: &[&str]) -> Result<(), ForbiddenDestination> {
    match dest {
        Destination::Trunk => Ok(()),
        Destination::Sip(uri) => {
            let host = sip_host(uri);
            if !host.is_empty() && trunks.iter().any(|t| sip_host(t).eq_ignore_ascii_case(host)) {
                Ok(())
            } else {
                Err(ForbiddenDestination::SipHostNotTrunk { uri: uri.clone(), host: host.to_string() })
            }
        }
        Destination::Tel(e164) => check_e164(e164),
    }
}

/// Checks an E.164 number ("+31201234567").
pub fn check_e164(e164: &str) -> Result<(), ForbiddenDestination> {
    let number = e164.to_string();
    let Some(nsn) = e164.strip_prefix("+31") else {
        return Err(ForbiddenDestination::International { number });
    };
    let b = nsn.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(ForbiddenDestination::BadLength { number });
    }
    match b[0] {
        b'1' if b.get(1) == Some(&b'4') => Err(ForbiddenDestination::NonContactRange { number }),
        b'1' if b.len() < 9 => Err(ForbiddenDestination::ShortCode { number }),
        b'1'..=b'5' | b'7' => {
            if b.len() == 9 {
                Ok(())
            } else {
                Err(ForbiddenDestination::BadLength { number })
            }
        }
        b'6' => {
            if b.get(1) == Some(&b'7') {
                Err(ForbiddenDestination::NonContactRange { number })
            } else {
                Err(ForbiddenDestination::Mobile { number })
            }
        }
        b'8' => match (b.get(1), b.get(2)) {
            (Some(b'5' | b'8'), _) if b.len() == 9 => Ok(()),
            (Some(b'0'), Some(b'0')) if b.len() == 7 || b.len() == 10 => Ok(()),
            (Some(b'5' | b'8'), _) | (Some(b'0'), Some(b'0')) => Err(ForbiddenDestination::BadLength { number }),
            _ => Err(ForbiddenDestination::NonContactRange { number }),
        },
        b'9' if b.get(1) == Some(&b'0') => Err(ForbiddenDestination::Premium { number }),
        _ => Err(ForbiddenDestination::NonContactRange { number }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tel(s: &str) -> Destination {
        Destination::parse(s).unwrap()
    }
    const TRUNKS: &[&str] = &["sip:{cbs}@kcc.example.nl"];

    #[test]
    fn allowed_ranges() {
        for ok in ["020 555 1234", "0113 212345", "070-3456789", "0591 123456", "085 1234567", "088 1234567", "0800 1234", "0800 1234567", "+31 20 5551234"] {
            assert_eq!(check_destination(&tel(ok), TRUNKS), Ok(()), "{ok}");
        }
        assert_eq!(check_destination(&Destination::Trunk, TRUNKS), Ok(()));
        assert_eq!(check_destination(&tel("sip:gm0664@KCC.example.nl;transport=tcp"), TRUNKS), Ok(()));
    }

    #[test]
    fn premium_090x() {
        for n in ["0900 1852", "0900 1234567", "0906 1234567", "0909 1234567", "0909 1234"] {
            assert!(matches!(check_destination(&tel(n), TRUNKS), Err(ForbiddenDestination::Premium { .. })), "{n}");
        }
    }

    #[test]
    fn mobile_and_pager() {
        for n in ["06 12345678", "+31 6 12345678", "066 1234567"] {
            assert!(matches!(check_destination(&tel(n), TRUNKS), Err(ForbiddenDestination::Mobile { .. })), "{n}");
        }
    }

    #[test]
    fn non_contact_ranges() {
        for n in ["067 1234567", "084 1234567", "087 1234567", "082 1234567", "091 1234567", "097 12345678"] {
            assert!(matches!(check_destination(&tel(n), TRUNKS), Err(ForbiddenDestination::NonContactRange { .. })), "{n}");
        }
    }

    #[test]
    fn international_including_caribbean_netherlands() {
        for n in ["+32 2 1234567", "0044 20 12345678", "+599 7 123456", "+1 212 5551234"] {
            assert!(matches!(check_destination(&tel(n), TRUNKS), Err(ForbiddenDestination::International { .. })), "{n}");
        }
    }

    #[test]
    fn short_codes_never_parse_as_destinations() {
        // 112 and 18xx carry no trunk prefix: the destination parser refuses them already.
        for n in ["112", "1212", "0800"] {
            assert!(Destination::parse(n).is_err(), "{n}");
        }
        assert!(matches!(check_e164("+31112"), Err(ForbiddenDestination::ShortCode { .. })));
        assert!(matches!(check_e164("+311400"), Err(ForbiddenDestination::NonContactRange { .. })));
    }

    #[test]
    fn wrong_lengths_in_allowed_ranges() {
        assert!(matches!(check_e164("+3120555123"), Err(ForbiddenDestination::BadLength { .. })));
        assert!(matches!(check_e164("+318812345678"), Err(ForbiddenDestination::BadLength { .. })));
    }

    #[test]
    fn sip_host_must_be_a_trunk() {
        let e = check_destination(&tel("sip:x@evil.example"), TRUNKS).unwrap_err();
        assert!(matches!(e, ForbiddenDestination::SipHostNotTrunk { .. }));
        assert!(e.to_string().contains("evil.example"));
        // A user part that imitates the trunk host does not help.
        assert!(check_destination(&tel("sip:kcc.example.nl@evil.example"), TRUNKS).is_err());
    }
}
