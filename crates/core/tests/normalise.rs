//! Dialled-number normalisation: every accepted form of every area code, precise refusals, and
//! property tests (separators are irrelevant, garbage never panics).

use proptest::prelude::*;
use veertien_core::*;

fn forms(fourteen: &str) -> Vec<String> {
    let code = &fourteen[2..];
    vec![
        fourteen.to_string(),
        format!("14 {code}"),
        format!("14-{code}"),
        format!("(14) {code}"),
        format!("+31{fourteen}"),
        format!("+31 14 {code}"),
        format!("+31 (0)14 {code}"),
        format!("0031{fourteen}"),
        format!("00 31 14 {code}"),
        format!("tel:+31-14-{code}"),
        format!("tel:+31.14.{code}"),
        format!("tel:{fourteen};phone-context=+31"),
        format!("TEL:{fourteen}"),
        format!("sip:{fourteen}@sbc.example.nl;user=phone"),
        format!("sip:+31{fourteen}@sbc.example.nl"),
        format!("sip:%2B31{fourteen}@sbc.example.nl:5060;user=phone"),
        format!("sips:{fourteen}@[2001:db8::1];user=phone"),
        format!("<sip:+31-14-{code}@sbc.example.nl;user=phone>"),
        format!("sip:{fourteen};phone-context=+31@sbc.example.nl;user=phone"),
        format!("  {fourteen}  "),
        format!("14\u{a0}{code}"),
        format!("+31\u{202f}14\t{code}"),
    ]
}

#[test]
fn every_area_code_in_every_form() {
    for a in Plan::builtin().area_codes() {
        for f in forms(&a.fourteen) {
            let n = normalise(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(n.to_string(), a.fourteen, "{f}");
            assert_eq!(n.area_code(), a.code, "{f}");
        }
    }
}

#[test]
fn refusals_are_precise() {
    let code = |s: &str| normalise(s).unwrap_err().code();
    assert_eq!(code(""), "empty");
    assert_eq!(code("   "), "empty");
    assert_eq!(code("14 02O"), "invalid_character");
    assert_eq!(code("14020#"), "invalid_character");
    assert_eq!(code("+3214020"), "foreign_number");
    assert_eq!(code("004914020"), "foreign_number");
    assert_eq!(code("014020"), "trunk_prefix");
    assert_eq!(code("+31014020"), "trunk_prefix");
    assert_eq!(code("0201234567"), "not_fourteen");
    assert_eq!(code("112"), "not_fourteen");
    assert_eq!(code("141234"), "bad_area_code");
    assert_eq!(code("1400123"), "bad_area_code");
    assert_eq!(code("1402"), "wrong_length");
    assert_eq!(code("14020123"), "wrong_length");
    assert_eq!(code("14"), "wrong_length");
    assert_eq!(code("mailto:14020@x"), "unsupported_scheme");
    assert_eq!(code("sip:sbc.example.nl"), "bad_uri");
    assert_eq!(code("sip:14020@"), "bad_uri");
    assert_eq!(code("tel:14020;ext=12"), "unsupported_parameter");
    assert_eq!(code("tel:14020;phone-context=+32"), "bad_phone_context");
    assert_eq!(code("tel:14020;phone-context=example.com"), "bad_phone_context");
    assert_eq!(code("1 4 0 2 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6"), "too_long");
    assert_eq!(code("14+020"), "invalid_character");
    let e = normalise("14 02x").unwrap_err();
    assert_eq!(e, NormaliseError::InvalidCharacter { ch: 'x', position: 5 });
    assert_eq!(e.to_string(), "unexpected character 'x' at position 5");
    assert_eq!(
        normalise("014020").unwrap_err().to_string(),
        "'014020' has a trunk prefix 0 before 14; a 14+ number is dialled as 14 + area code"
    );
}

#[test]
fn phone_numbers_parse() {
    assert_eq!(parse_phone("020-123 4567").unwrap().e164, "+31201234567");
    assert_eq!(parse_phone("+31 (0)20 123 4567").unwrap().nsn, "201234567");
    assert_eq!(parse_phone("sip:+31612345678@carrier.example;user=phone").unwrap().e164, "+31612345678");
    assert_eq!(parse_phone("+32 2 123 45 67").unwrap().e164, "+3221234567");
    assert!(parse_phone("anonymous").is_err());
    assert!(parse_phone("12345").is_err());
}

fn separator() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![" ", "-", ".", "(", ")"]), 0..3).prop_map(|v| v.concat())
}

fn code_strategy() -> impl Strategy<Value = String> {
    let codes: Vec<String> = Plan::builtin().area_codes().iter().map(|a| a.fourteen.clone()).collect();
    prop::sample::select(codes)
}

proptest! {
    #[test]
    fn separators_are_irrelevant(n in code_strategy(), seps in prop::collection::vec(separator(), 7), prefix in 0usize..4) {
        let head = ["", "+31", "0031", "tel:+31"][prefix];
        let mut s = String::from(head);
        for (i, ch) in n.chars().enumerate() {
            s.push_str(&seps[i]);
            s.push(ch);
        }
        s.push_str(&seps[6]);
        let got = normalise(&s);
        prop_assert_eq!(got.map(|x| x.to_string()), Ok(n.clone()), "{}", s);
    }

    #[test]
    fn every_accepted_form_normalises_to_itself(n in code_strategy(), i in 0usize..22) {
        let f = &forms(&n)[i];
        prop_assert_eq!(normalise(f).map(|x| x.to_string()), Ok(n.clone()));
    }

    #[test]
    fn garbage_never_panics(s in "\\PC{0,40}") {
        let _ = normalise(&s);
        let _ = parse_phone(&s);
    }

    #[test]
    fn uri_like_garbage_never_panics(s in "(sip|tel|sips|<sip):[-+0-9a-z@;=%.:<>() ]{0,40}") {
        let _ = normalise(&s);
        let _ = parse_phone(&s);
        let _ = decide(&CallInfo { dialled: &s, caller: Some(&s) }, Plan::builtin(), &Settings::defaults(Plan::builtin()), jiff::Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn digits_only_inputs_are_accepted_exactly_when_14_plus_a_0_code(d in "[0-9]{1,8}") {
        let r = normalise(&d);
        let ok = d.starts_with("140") && (d.len() == 5 || d.len() == 6) && d.as_bytes()[3] != b'0';
        prop_assert_eq!(r.is_ok(), ok, "{}: {:?}", d, r);
    }
}
