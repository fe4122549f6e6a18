//! The caller's earlier confirmed choices, as a prior for speech recognition.
//!
//! A caller who reached Kapelle through the dialogue before probably means Kapelle again. The
//! call records hold that, but the call path never awaits the database (ARCHITECTURE.md): the
//! choices live in a bounded in-memory map keyed by (caller, area code). A caller not in the
//! map gets a [`CallerHistory`] that is still pending, and one bounded background lookup in the
//! store fills it; the driver reads it only when the caller starts speaking, so the welcome
//! prompt gives the lookup seconds, and an unfinished or failed lookup simply means "no
//! history". Calls ending in this process are counted in at once.
//!
//! The history is only a prior: the recogniser reports when it, not the audio, decided the
//! answer, and the dialogue then asks "Bedoelt u …?" instead of putting the caller through, so
//! a wrong history can cost a question but never a misroute.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use veertien_ivr::{CallerHistory, DialogueOutcome};
use veertien_store::{CallFilter, CallRecord, Store};

/// (caller, area code) pairs kept; beyond this the map starts over (cheap, and only a prior).
const CAPACITY: usize = 100_000;
/// Store lookups in flight at once; more callers than this just get no history.
const LOOKUPS: usize = 4;
/// A lookup slower than this counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Earlier calls of one caller read per lookup (newest first).
const RECENT_CALLS: u32 = 500;

#[derive(Default)]
struct Entry {
    /// What calls starting now see (pending until the lookup is done).
    handle: CallerHistory,
    /// Times per municipality (CBS code): from the store once loaded, plus calls since.
    counts: HashMap<String, u32>,
    loaded: bool,
    /// Calls of this process counted in while the lookup ran (not counted twice).
    counted: HashSet<String>,
}

pub(crate) struct Choices {
    store: OnceLock<Store>,
    map: Arc<Mutex<HashMap<(String, String), Entry>>>,
    lookups: Arc<Semaphore>,
}

impl Default for Choices {
    fn default() -> Self {
        Choices { store: OnceLock::new(), map: Arc::default(), lookups: Arc::new(Semaphore::new(LOOKUPS)) }
    }
}

/// A caller number worth remembering choices for (not anonymous or withheld).
fn known_caller(caller: &str) -> bool {
    let digits = caller.trim_start_matches('+');
    digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn snapshot(counts: &HashMap<String, u32>) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort();
    v
}

/// The municipality a finished call reached through the dialogue (the caller chose it: a
/// confident answer, a "ja" or a key), from its record.
fn confirmed_choice(rec: &CallRecord) -> Option<&str> {
    let outcome = rec.ivr.as_ref().and_then(|v| v.get("outcome")).and_then(|o| o.get("outcome"));
    let deliver = outcome.and_then(|o| o.as_str()) == Some("deliver");
    (rec.decision_kind == "ask" && deliver).then_some(rec.municipality_cbs.as_deref()).flatten()
}

impl Choices {
    /// Where earlier calls are looked up; without it only this process's calls count.
    pub(crate) fn attach_store(&self, store: Store) {
        let _ = self.store.set(store);
    }

    /// The caller's history on this area code for a call starting now. Never waits.
    pub(crate) fn lookup(&self, caller: &str, area_code: &str) -> CallerHistory {
        if !known_caller(caller) {
            return CallerHistory::known(Vec::new());
        }
        let key = (caller.to_owned(), area_code.to_owned());
        let mut map = self.map.lock();
        if let Some(e) = map.get(&key) {
            return e.handle.clone();
        }
        if map.len() >= CAPACITY {
            map.clear();
        }
        let entry = map.entry(key.clone()).or_default();
        let handle = entry.handle.clone();
        let (Some(store), Ok(permit)) = (self.store.get().cloned(), self.lookups.clone().try_acquire_owned()) else {
            // No store, or too many lookups at once: this call goes without; with a store the
            // next call of this caller tries again.
            if self.store.get().is_none() {
                entry.loaded = true;
                entry.handle.fill(Vec::new());
            } else {
                map.remove(&key);
                handle.fill(Vec::new());
            }
            return handle;
        };
        drop(map);
        let map = self.map.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let filter = CallFilter { number: Some(key.0.clone()), limit: RECENT_CALLS, ..CallFilter::default() };
            let found = tokio::time::timeout(LOOKUP_TIMEOUT, store.list_calls(&filter)).await;
            let mut map = map.lock();
            let Some(entry) = map.get_mut(&key) else { return };
            match found {
                Ok(Ok(records)) => {
                    for rec in &records {
                        if rec.caller != key.0 || rec.area_code.as_deref() != Some(key.1.as_str()) {
                            continue;
                        }
                        if entry.counted.contains(&rec.call_id) {
                            continue;
                        }
                        if let Some(cbs) = confirmed_choice(rec) {
                            *entry.counts.entry(cbs.to_owned()).or_insert(0) += 1;
                        }
                    }
                    entry.loaded = true;
                    entry.counted.clear();
                    entry.handle.fill(snapshot(&entry.counts));
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "caller history lookup failed");
                    entry.handle.fill(Vec::new());
                    map.remove(&key);
                }
                Err(_) => {
                    tracing::debug!("caller history lookup timed out");
                    entry.handle.fill(Vec::new());
                    map.remove(&key);
                }
            }
        });
        handle
    }

    /// A call of this process ended: count its choice for the caller's next calls.
    pub(crate) fn finished(&self, rec: &CallRecord, outcome: Option<&DialogueOutcome>) {
        let Some(DialogueOutcome::Deliver { municipality, .. }) = outcome else { return };
        let Some(area) = rec.area_code.as_deref() else { return };
        if rec.decision_kind != "ask" || !known_caller(&rec.caller) {
            return;
        }
        let mut map = self.map.lock();
        // Every call of a known caller made an entry at its start; without one (the map
        // started over, or the lookup failed) the next call reads this one from the store.
        let Some(entry) = map.get_mut(&(rec.caller.clone(), area.to_owned())) else { return };
        *entry.counts.entry(municipality.cbs.clone()).or_insert(0) += 1;
        if entry.loaded {
            entry.handle = CallerHistory::known(snapshot(&entry.counts));
        } else {
            entry.counted.insert(rec.call_id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivr_call(id: &str, caller: &str, area: &str, cbs: &str, outcome: &str) -> CallRecord {
        let mut r = CallRecord::received(id, id, "test", caller, format!("14{area}"), 1_700_000_000_000);
        r.area_code = Some(area.into());
        r.decision_kind = "ask".into();
        r.municipality_cbs = Some(cbs.into());
        r.ivr = Some(serde_json::json!({ "outcome": { "outcome": outcome } }));
        r
    }

    async fn settled(h: &CallerHistory) -> Vec<(String, u32)> {
        for _ in 0..500 {
            if let Some(v) = h.get() {
                return v.to_vec();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the lookup never finished");
    }

    #[tokio::test]
    async fn earlier_choices_come_from_the_store_without_the_call_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("calls.db").to_str().unwrap()).await.unwrap();
        store
            .write_calls(&[
                ivr_call("a", "0113111111", "0113", "GM0678", "deliver"),
                ivr_call("b", "0113111111", "0113", "GM0678", "deliver"),
                ivr_call("c", "0113111111", "0113", "GM0664", "deliver"),
                // Not choices: the caller hung up, another area code, another caller.
                ivr_call("d", "0113111111", "0113", "GM0654", "caller_hung_up"),
                ivr_call("e", "0113111111", "0570", "GM0232", "deliver"),
                ivr_call("f", "0113222222", "0113", "GM0703", "deliver"),
            ])
            .await
            .unwrap();
        let choices = Choices::default();
        choices.attach_store(store);
        let h = choices.lookup("0113111111", "0113");
        assert_eq!(settled(&h).await, vec![("GM0664".to_owned(), 1), ("GM0678".to_owned(), 2)]);

        // A call of this process counts at once for the next one.
        let done = ivr_call("g", "0113111111", "0113", "GM0678", "deliver");
        let plan = veertien_core::Plan::builtin();
        let kapelle = veertien_core::MunicipalityRef::new(plan, plan.by_cbs("GM0678").unwrap());
        let unused = veertien_core::decide::RejectReason::UnknownAreaCode { area_code: "0999".into(), did_you_mean: None };
        let deliver = DialogueOutcome::Deliver { municipality: kapelle, decision: Box::new(veertien_core::Decision::Reject { reason: unused }) };
        choices.finished(&done, Some(&deliver));
        let next = choices.lookup("0113111111", "0113");
        assert_eq!(next.get().map(<[_]>::to_vec), Some(vec![("GM0664".to_owned(), 1), ("GM0678".to_owned(), 3)]));
        // Anonymous callers never have a history.
        assert_eq!(choices.lookup("anonymous", "0113").get(), Some(&[][..]));
    }

    #[test]
    fn anonymous_callers_have_no_history() {
        assert!(!known_caller(""));
        assert!(!known_caller("anonymous"));
        assert!(!known_caller("12345"));
        assert!(known_caller("0113123456"));
        assert!(known_caller("+31113123456"));
    }
}
