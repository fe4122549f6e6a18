//! Opening hours in Europe/Amsterdam: a weekly schedule, Dutch public holidays (Easter-based ones
//! computed) and exception days.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

/// The time zone of every municipality. Bundled with jiff, so decisions do not depend on the host.
pub fn amsterdam() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::get("Europe/Amsterdam").unwrap_or(TimeZone::UTC))
}

/// A half-open interval of minutes after midnight, `[from, to)`; `to` may be 1440 ("24:00").
/// Serialised as "08:30-17:00".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeRange {
    pub from_min: u16,
    pub to_min: u16,
}

impl TimeRange {
    pub fn contains(&self, minute: u16) -> bool {
        self.from_min <= minute && minute < self.to_min
    }

    /// Parse "08:30-17:00".
    pub fn parse(s: &str) -> Result<TimeRange, String> {
        let (a, b) = s.split_once('-').ok_or_else(|| format!("'{s}' is not a time range like 08:30-17:00"))?;
        let from = parse_hhmm(a.trim()).ok_or_else(|| format!("'{}' is not a time (HH:MM)", a.trim()))?;
        let to = parse_hhmm(b.trim()).ok_or_else(|| format!("'{}' is not a time (HH:MM)", b.trim()))?;
        if to <= from {
            return Err(format!("'{s}' ends before it starts"));
        }
        Ok(TimeRange { from_min: from, to_min: to })
    }
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl Serialize for TimeRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}-{:02}:{:02}", self.from_min / 60, self.from_min % 60, self.to_min / 60, self.to_min % 60)
    }
}

/// Dutch public holidays (feestdagen). Which of them close a contact centre is a per-municipality setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holiday {
    Nieuwjaarsdag,
    GoedeVrijdag,
    EerstePaasdag,
    TweedePaasdag,
    Koningsdag,
    Bevrijdingsdag,
    Hemelvaartsdag,
    EerstePinksterdag,
    TweedePinksterdag,
    EersteKerstdag,
    TweedeKerstdag,
}

impl Holiday {
    pub const ALL: [Holiday; 11] = [
        Holiday::Nieuwjaarsdag,
        Holiday::GoedeVrijdag,
        Holiday::EerstePaasdag,
        Holiday::TweedePaasdag,
        Holiday::Koningsdag,
        Holiday::Bevrijdingsdag,
        Holiday::Hemelvaartsdag,
        Holiday::EerstePinksterdag,
        Holiday::TweedePinksterdag,
        Holiday::EersteKerstdag,
        Holiday::TweedeKerstdag,
    ];

    /// The holidays on which municipal offices are closed by default: the general holidays of the
    /// Algemene termijnenwet. Goede Vrijdag and Bevrijdingsdag (a day off only in lustrum years for
    /// many employers) are opt-in.
    pub const DEFAULT_CLOSED: [Holiday; 9] = [
        Holiday::Nieuwjaarsdag,
        Holiday::EerstePaasdag,
        Holiday::TweedePaasdag,
        Holiday::Koningsdag,
        Holiday::Hemelvaartsdag,
        Holiday::EerstePinksterdag,
        Holiday::TweedePinksterdag,
        Holiday::EersteKerstdag,
        Holiday::TweedeKerstdag,
    ];

    /// The date of this holiday in `year`.
    pub fn date(self, year: i16) -> Date {
        let easter = easter_sunday(year);
        let plus = |days: i64| easter.checked_add(jiff::Span::new().days(days)).unwrap_or(easter);
        match self {
            Holiday::Nieuwjaarsdag => Date::constant(year, 1, 1),
            Holiday::GoedeVrijdag => plus(-2),
            Holiday::EerstePaasdag => easter,
            Holiday::TweedePaasdag => plus(1),
            // King's Day moves to the Saturday before when 27 April is a Sunday.
            Holiday::Koningsdag => {
                let d = Date::new(year, 4, 27).unwrap_or(easter);
                if d.weekday() == Weekday::Sunday { Date::new(year, 4, 26).unwrap_or(d) } else { d }
            }
            Holiday::Bevrijdingsdag => Date::new(year, 5, 5).unwrap_or(easter),
            Holiday::Hemelvaartsdag => plus(39),
            Holiday::EerstePinksterdag => plus(49),
            Holiday::TweedePinksterdag => plus(50),
            Holiday::EersteKerstdag => Date::new(year, 12, 25).unwrap_or(easter),
            Holiday::TweedeKerstdag => Date::new(year, 12, 26).unwrap_or(easter),
        }
    }

    /// The holiday falling on `date`, if any.
    pub fn on(date: Date) -> Option<Holiday> {
        Holiday::ALL.into_iter().find(|h| h.date(date.year()) == date)
    }
}

/// Easter Sunday in the Gregorian calendar (anonymous Gregorian algorithm, Meeus/Jones/Butcher).
/// A dozen lines of arithmetic; not worth a dependency.
pub fn easter_sunday(year: i16) -> Date {
    let y = year as i32;
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(year, month as i8, day as i8).unwrap_or(Date::constant(2000, 4, 23))
}

/// When a municipality's contact centre takes calls.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OpeningHours {
    /// Monday first. `None`: open around the clock (the default — the contact centre's own systems
    /// handle its hours until the municipality configures them here).
    pub weekly: Option<[Vec<TimeRange>; 7]>,
    /// Closed all day on these holidays.
    pub closed_on: Vec<Holiday>,
    /// Days that differ from the schedule: empty = closed all day.
    pub exceptions: BTreeMap<Date, Vec<TimeRange>>,
}

impl OpeningHours {
    pub fn always_open() -> Self {
        OpeningHours::default()
    }

    pub fn is_always_open(&self) -> bool {
        self.weekly.is_none() && self.closed_on.is_empty() && self.exceptions.is_empty()
    }

    fn ranges_on(&self, date: Date) -> RangesOn<'_> {
        if let Some(r) = self.exceptions.get(&date) {
            return RangesOn::Some(r);
        }
        if !self.closed_on.is_empty()
            && let Some(h) = Holiday::on(date)
            && self.closed_on.contains(&h)
        {
            return RangesOn::Closed;
        }
        match &self.weekly {
            None => RangesOn::AllDay,
            Some(w) => RangesOn::Some(&w[date.weekday().to_monday_zero_offset() as usize]),
        }
    }

    pub fn is_open(&self, now: Timestamp) -> bool {
        if self.is_always_open() {
            return true;
        }
        let z = now.to_zoned(amsterdam().clone());
        let minute = z.hour() as u16 * 60 + z.minute() as u16;
        match self.ranges_on(z.date()) {
            RangesOn::AllDay => true,
            RangesOn::Closed => false,
            RangesOn::Some(r) => r.iter().any(|t| t.contains(minute)),
        }
    }

    /// The next moment (strictly after a closed `now`) the line opens, looking up to 31 days ahead.
    pub fn next_opening(&self, now: Timestamp) -> Option<Zoned> {
        let tz = amsterdam();
        let z = now.to_zoned(tz.clone());
        let now_min = z.hour() as u16 * 60 + z.minute() as u16;
        let mut date = z.date();
        for day in 0..=31 {
            let start = match self.ranges_on(date) {
                RangesOn::Closed => None,
                RangesOn::AllDay => Some(0),
                RangesOn::Some(r) => r.iter().map(|t| t.from_min).filter(|m| day > 0 || *m > now_min).min(),
            };
            // Today only counts openings still ahead; an all-day opening today would mean "open now".
            if let Some(m) = start.filter(|m| day > 0 || *m > now_min) {
                let dt = date.at((m / 60) as i8, (m % 60) as i8, 0, 0);
                return dt.to_zoned(tz.clone()).ok();
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

enum RangesOn<'a> {
    AllDay,
    Closed,
    Some(&'a [TimeRange]),
}
