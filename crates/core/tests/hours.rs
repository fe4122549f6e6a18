//! Opening hours across daylight-saving changes, holidays and exceptions.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::date;
use veertien_core::{Holiday, OpeningHours, TimeRange};

fn weekdays_9_to_5() -> OpeningHours {
    let day = vec![TimeRange::parse("09:00-17:00").unwrap()];
    OpeningHours {
        weekly: Some([day.clone(), day.clone(), day.clone(), day.clone(), day, vec![], vec![]]),
        closed_on: Holiday::DEFAULT_CLOSED.to_vec(),
        exceptions: BTreeMap::new(),
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn local_time_follows_daylight_saving() {
    let h = weekdays_9_to_5();
    // Friday 27 March 2026 (CET, +01:00): 09:30 local = 08:30Z.
    assert!(h.is_open(ts("2026-03-27T08:30:00Z")));
    assert!(!h.is_open(ts("2026-03-27T07:30:00Z")));
    // Monday 30 March 2026 (CEST, +02:00): 09:30 local = 07:30Z; 08:30 local = 06:30Z.
    assert!(h.is_open(ts("2026-03-30T07:30:00Z")));
    assert!(!h.is_open(ts("2026-03-30T06:30:00Z")));
    // Closed over the weekend of the change; next opening is Monday 09:00 CEST.
    let next = h.next_opening(ts("2026-03-28T12:00:00Z")).unwrap();
    assert_eq!(next.timestamp(), ts("2026-03-30T07:00:00Z"));
}

#[test]
fn holidays_close_and_next_opening_skips_them() {
    let h = weekdays_9_to_5();
    // Thursday 24 December 2026 after closing: 25 and 26 December closed, 26/27 weekend → Monday 28th.
    let next = h.next_opening(ts("2026-12-24T17:00:00Z")).unwrap();
    assert_eq!(next.date(), date(2026, 12, 28));
    // Koningsdag 2025 is Saturday 26 April (27 April is a Sunday).
    assert_eq!(Holiday::on(date(2025, 4, 26)), Some(Holiday::Koningsdag));
    assert_eq!(Holiday::on(date(2025, 4, 27)), None);
    // Goede Vrijdag is not closed by default.
    assert!(h.is_open(ts("2026-04-03T09:00:00Z")));
}

#[test]
fn exceptions_override_weekdays_and_holidays() {
    let mut h = weekdays_9_to_5();
    h.exceptions.insert(date(2026, 12, 26), vec![TimeRange::parse("10:00-12:00").unwrap()]);
    h.exceptions.insert(date(2026, 3, 11), vec![]);
    assert!(h.is_open(ts("2026-12-26T10:30:00Z")));
    assert!(!h.is_open(ts("2026-03-11T10:00:00Z")));
    let always = OpeningHours::always_open();
    assert!(always.is_open(ts("2026-12-25T03:00:00Z")));
}

#[test]
fn time_ranges_parse_strictly() {
    assert_eq!(TimeRange::parse("00:00-24:00").unwrap().to_min, 1440);
    for bad in ["9-17", "09:00", "17:00-09:00", "09:60-10:00", "24:30-25:00", "aa:bb-cc:dd"] {
        assert!(TimeRange::parse(bad).is_err(), "{bad}");
    }
}
