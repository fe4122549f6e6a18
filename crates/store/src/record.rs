//! The call record: one row per call, written by the SIP service through
//! [`crate::RecordWriter`] and read by `veertien calls` and the portal.

use serde::{Deserialize, Serialize};

/// How a call was (to be) delivered to the municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// 302 to the destination: the platform leaves the call.
    Redirect,
    /// B2BUA: the platform stays in the call and can measure answer times.
    Bridge,
}

impl Delivery {
    pub const ALL: [Delivery; 2] = [Delivery::Redirect, Delivery::Bridge];

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Redirect => "redirect",
            Delivery::Bridge => "bridge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// Final outcome of a call. The database stores the snake_case name, and a CHECK
/// constraint keeps it to this list, so adding a variant needs a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Redirected,
    Answered,
    Busy,
    NoAnswer,
    Unreachable,
    CallerHungUpDuringSelection,
    CallerHungUpWhileRinging,
    Announcement,
    Rejected,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Redirected,
        Outcome::Answered,
        Outcome::Busy,
        Outcome::NoAnswer,
        Outcome::Unreachable,
        Outcome::CallerHungUpDuringSelection,
        Outcome::CallerHungUpWhileRinging,
        Outcome::Announcement,
        Outcome::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Redirected => "redirected",
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Unreachable => "unreachable",
            Outcome::CallerHungUpDuringSelection => "caller_hung_up_during_selection",
            Outcome::CallerHungUpWhileRinging => "caller_hung_up_while_ringing",
            Outcome::Announcement => "announcement",
            Outcome::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Dutch label for portal and CLI output.
    pub fn label_nl(self) -> &'static str {
        match self {
            Outcome::Redirected => "doorgeschakeld",
            Outcome::Answered => "beantwoord",
            Outcome::Busy => "bezet",
            Outcome::NoAnswer => "niet opgenomen",
            Outcome::Unreachable => "onbereikbaar",
            Outcome::CallerHungUpDuringSelection => "beller hing op tijdens keuze",
            Outcome::CallerHungUpWhileRinging => "beller hing op tijdens overgaan",
            Outcome::Announcement => "mededeling",
            Outcome::Rejected => "geweigerd",
        }
    }

    /// English label for portal and CLI output.
    pub fn label_en(self) -> &'static str {
        match self {
            Outcome::Redirected => "redirected",
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no answer",
            Outcome::Unreachable => "unreachable",
            Outcome::CallerHungUpDuringSelection => "caller hung up during selection",
            Outcome::CallerHungUpWhileRinging => "caller hung up while ringing",
            Outcome::Announcement => "announcement",
            Outcome::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::parse(s).ok_or_else(|| {
            let all: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            format!("unknown outcome '{s}' (expected one of: {})", all.join(", "))
        })
    }
}

/// One call. The SIP service submits it when the call ends, and may submit it earlier
/// (e.g. when decided) — a later submit with the same `call_id` replaces the row, so the
/// record is always the latest known state.
///
/// Timestamps are unix epoch milliseconds (UTC).
///
/// `ivr` is owned by the IVR; the store reads two optional keys from it for the
/// management figures (see [`IVR_KEY_RECOGNISED_FIRST_TIME`], [`IVR_KEY_CORRECTIONS`])
/// and keeps the rest as-is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Platform call id (unique per call; primary key).
    pub call_id: String,
    /// SIP Call-ID of the carrier leg.
    pub sip_call_id: String,
    /// Node that handled the call (for multi-node deployments and incident analysis).
    pub node_id: String,
    /// Caller number as presented (From/P-Asserted-Identity user part).
    pub caller: String,
    /// Dialled number as received in the Request-URI.
    pub dialled: String,
    /// Normalised 14-number, e.g. "140113"; None when the dialled number was not a 14-number.
    pub normalised: Option<String>,
    /// Area code part, e.g. "0113".
    pub area_code: Option<String>,
    /// Kind of routing decision, e.g. "forward", "ask", "announce", "reject" (opaque to the store).
    pub decision_kind: String,
    /// The full routing decision as JSON (opaque to the store).
    #[serde(default)]
    pub decision: RawJson,
    /// CBS code of the municipality the call went to, e.g. "GM0664".
    pub municipality_cbs: Option<String>,
    /// Destination the call was delivered to (number or SIP URI).
    pub destination: Option<String>,
    pub delivery: Option<Delivery>,
    pub received_ms: i64,
    pub decided_ms: Option<i64>,
    pub ringing_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// None while the call is in progress.
    pub outcome: Option<Outcome>,
    pub reject_reason: Option<String>,
    /// Final SIP status sent to the caller (e.g. 302, 200, 486, 404).
    pub sip_status: Option<u16>,
    pub post_dial_delay_ms: Option<i64>,
    /// Route steps tried, in order (JSON array, opaque to the store).
    #[serde(default = "RawJson::empty_array")]
    pub route_steps: RawJson,
    /// IVR dialogue (what was heard, scores, confirmations, digits, timings), filled by the IVR.
    #[serde(default)]
    pub ivr: Option<serde_json::Value>,
}

/// JSON kept as its text. The SIP path serialises a call's decision and route once, straight
/// to text, and the journal and the database take that text as it is: as a
/// [`serde_json::Value`] tree each record cost ~30 allocations to build, two serialisations
/// and as many frees, about a tenth of a redirected call's CPU (docs/PERFORMANCE-sip-load.md).
/// Readers that look inside parse it with [`RawJson::value`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// `value` serialised; `null` if it cannot be (a map with non-string keys).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> RawJson {
        serde_json::value::to_raw_value(value).map(RawJson).unwrap_or_else(|_| RawJson::null())
    }

    /// Checks that `text` is one JSON value and keeps it as it is.
    pub fn from_text(text: String) -> Result<RawJson, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(RawJson)
    }

    pub fn null() -> RawJson {
        RawJson(serde_json::value::RawValue::NULL.to_owned())
    }

    pub fn empty_array() -> RawJson {
        RawJson::from_text("[]".into()).expect("[] is JSON")
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The parsed value, for readers that look inside.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).expect("RawJson holds valid JSON")
    }
}

impl Default for RawJson {
    fn default() -> Self {
        RawJson::null()
    }
}

impl From<serde_json::Value> for RawJson {
    fn from(v: serde_json::Value) -> Self {
        RawJson::of(&v)
    }
}

/// Equal when the values are equal, whatever the spacing or key order of the text.
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.value() == other.value()
    }
}

impl PartialEq<serde_json::Value> for RawJson {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.value() == *other
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Boolean key in [`CallRecord::ivr`]: the caller's first spoken name was recognised and
/// confirmed without a retry or correction. Absent when no name was asked for.
pub const IVR_KEY_RECOGNISED_FIRST_TIME: &str = "recognised_first_time";
/// Integer key in [`CallRecord::ivr`]: how often the caller corrected a proposed municipality.
pub const IVR_KEY_CORRECTIONS: &str = "corrections";

impl CallRecord {
    /// A finished call has an end time; only finished records fall under the
    /// "a crash loses no finished call" guarantee.
    pub fn is_finished(&self) -> bool {
        self.ended_ms.is_some()
    }

    pub(crate) fn ivr_used(&self) -> bool {
        matches!(&self.ivr, Some(v) if !v.is_null())
    }

    pub(crate) fn ivr_first_time(&self) -> Option<bool> {
        self.ivr.as_ref()?.get(IVR_KEY_RECOGNISED_FIRST_TIME)?.as_bool()
    }

    pub(crate) fn ivr_corrections(&self) -> i64 {
        self.ivr
            .as_ref()
            .and_then(|v| v.get(IVR_KEY_CORRECTIONS))
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
    }

    /// A minimal record for a call that has just been received; the SIP service fills in
    /// the rest as the call proceeds.
    pub fn received(
        call_id: impl Into<String>,
        sip_call_id: impl Into<String>,
        node_id: impl Into<String>,
        caller: impl Into<String>,
        dialled: impl Into<String>,
        received_ms: i64,
    ) -> Self {
        CallRecord {
            call_id: call_id.into(),
            sip_call_id: sip_call_id.into(),
            node_id: node_id.into(),
            caller: caller.into(),
            dialled: dialled.into(),
            normalised: None,
            area_code: None,
            decision_kind: String::new(),
            decision: RawJson::null(),
            municipality_cbs: None,
            destination: None,
            delivery: None,
            received_ms,
            decided_ms: None,
            ringing_ms: None,
            answered_ms: None,
            ended_ms: None,
            outcome: None,
            reject_reason: None,
            sip_status: None,
            post_dial_delay_ms: None,
            route_steps: RawJson::empty_array(),
            ivr: None,
        }
    }
}

/// Local (Europe/Amsterdam) calendar position of a call, stored beside the UTC timestamp
/// so per-day and per-hour-of-week figures follow Dutch days across DST changes without
/// time-zone support in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalSlot {
    /// "YYYY-MM-DD"
    pub day: String,
    /// 0 = Monday 00:00–00:59 … 167 = Sunday 23:00–23:59.
    pub hour_of_week: i64,
}

pub(crate) fn amsterdam() -> &'static jiff::tz::TimeZone {
    static TZ: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    TZ.get_or_init(|| {
        // The tz database is bundled into the binary (jiff feature tzdb-bundle-always), so
        // this cannot fail on a machine without /usr/share/zoneinfo.
        jiff::tz::TimeZone::get("Europe/Amsterdam").expect("bundled tzdb has Europe/Amsterdam")
    })
}

pub(crate) fn local_slot(unix_ms: i64) -> LocalSlot {
    let ts = jiff::Timestamp::from_millisecond(unix_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let z = ts.to_zoned(amsterdam().clone());
    let dow = z.weekday().to_monday_zero_offset() as i64;
    LocalSlot {
        day: z.date().to_string(),
        hour_of_week: dow * 24 + z.hour() as i64,
    }
}

/// Start of the local (Europe/Amsterdam) day `date` ("YYYY-MM-DD") as unix ms — helper for
/// callers building day-aligned periods.
pub fn local_day_start_ms(date: &str) -> Result<i64, crate::StoreError> {
    let d: jiff::civil::Date = date
        .parse()
        .map_err(|e| crate::StoreError::InvalidInput(format!("bad date '{date}': {e}")))?;
    let z = d
        .to_zoned(amsterdam().clone())
        .map_err(|e| crate::StoreError::InvalidInput(format!("bad date '{date}': {e}")))?;
    Ok(z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record's JSON goes to the journal and comes back as the same JSON, inline (not a
    /// string); text that is not JSON is refused; equality ignores spacing and key order.
    #[test]
    fn raw_json_round_trips_inline_and_compares_by_value() {
        let mut r = CallRecord::received("c1", "s1", "n", "0612345678", "14020", 0);
        r.decision = RawJson::of(&serde_json::json!({"kind": "forward", "route": [{"step": "primary"}]}));
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""decision":{"kind":"forward","route":[{"step":"primary"}]}"#), "{line}");
        assert!(line.contains(r#""route_steps":[]"#), "{line}");
        let back: CallRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.decision.as_str(), r.decision.as_str());
        assert_eq!(back, r);
        assert!(RawJson::from_text("{\"kind\": ".into()).is_err());
        let spaced = RawJson::from_text(r#"{ "route": [ {"step": "primary"} ], "kind": "forward" }"#.into()).unwrap();
        assert_eq!(spaced, r.decision);
        assert_ne!(spaced, RawJson::null());
        assert_eq!(r.decision.value()["route"][0]["step"], "primary");
        // A record journalled before the field existed still reads.
        let old: CallRecord = serde_json::from_str(&line.replace(r#","route_steps":[]"#, "")).unwrap();
        assert_eq!(old.route_steps.as_str(), "[]");
    }

    #[test]
    fn local_slot_follows_amsterdam_dst() {
        // 2025-03-30 01:30 UTC = 03:30 CEST (after the spring-forward), a Sunday.
        let s = local_slot(1_743_298_200_000);
        assert_eq!(s.day, "2025-03-30");
        assert_eq!(s.hour_of_week, 6 * 24 + 3);
        // 2025-01-06 23:30 UTC = 2025-01-07 00:30 CET, a Tuesday.
        let s = local_slot(1_736_206_200_000);
        assert_eq!(s.day, "2025-01-07");
        assert_eq!(s.hour_of_week, 24);
    }

    #[test]
    fn outcome_names_round_trip_and_match_serde() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), serde_json::json!(o.as_str()));
        }
        assert!("gone".parse::<Outcome>().unwrap_err().contains("no_answer"));
    }

    #[test]
    fn day_start_is_local_midnight() {
        // 2025-07-01 00:00 CEST = 2025-06-30 22:00 UTC
        assert_eq!(local_day_start_ms("2025-07-01").unwrap(), 1_751_320_800_000);
        assert!(local_day_start_ms("2025-13-01").is_err());
    }
}
