//! Per-municipality settings documents (opaque JSON, versioned) and the append-only audit log.
//!
//! The settings types live in veertien-core; the store keeps them as JSON so it does not
//! depend on their shape. The audit log records one entry per changed field (a dotted
//! JSON path), which is what a municipality wants to read: "destinations changed from X to Y".

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The current settings document of one municipality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSettings {
    pub cbs: String,
    /// Starts at 1 and grows by one per saved change.
    pub version: i64,
    pub document: Value,
    pub updated_ms: i64,
    pub updated_by: String,
}

/// One audit log entry. `before`/`after` are None when the field was absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    /// None for platform-wide events (e.g. an operator action not tied to one municipality).
    pub municipality_cbs: Option<String>,
    /// What changed: a dotted JSON path for settings ("opening_hours.monday"), or an event name.
    pub what: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// An audit entry to append (the store assigns id and, if None, the time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    pub actor: String,
    pub municipality_cbs: Option<String>,
    pub what: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub municipality: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// 0 means 100; capped at 10 000.
    pub limit: u32,
    pub offset: u32,
}

impl AuditFilter {
    pub(crate) fn effective_limit(&self) -> i64 {
        match self.limit {
            0 => 100,
            n => n.min(10_000) as i64,
        }
    }
}

/// Result of [`crate::Store::save_settings`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSettings {
    /// The version now current (unchanged when the document was identical).
    pub version: i64,
    /// The audit entries written (empty when nothing changed).
    pub changes: Vec<AuditEntry>,
}

/// Field-level differences between two settings documents as (path, before, after).
/// Objects are compared key by key; arrays and scalars are compared whole, because
/// "destination list changed from [a,b] to [b,a]" reads better than index-by-index noise.
pub(crate) fn diff(before: &Value, after: &Value) -> Vec<(String, Option<Value>, Option<Value>)> {
    let mut out = Vec::new();
    diff_into(String::new(), Some(before), Some(after), &mut out);
    out
}

fn diff_into(
    path: String,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<(String, Option<Value>, Option<Value>)>,
) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff_into(p, b.get(k), a.get(k), out);
            }
        }
        (b, a) if b == a => {}
        (b, a) => {
            let p = if path.is_empty() { "$".to_string() } else { path };
            out.push((p, b.cloned(), a.cloned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_reports_changed_added_removed_leaves() {
        let b = json!({"status":"active","destinations":["0113 123456"],"hours":{"mon":"8-17","tue":"8-17"},"old":1});
        let a = json!({"status":"active","destinations":["0113 654321"],"hours":{"mon":"8-17","tue":"9-17"},"new":true});
        let d = diff(&b, &a);
        assert_eq!(
            d,
            vec![
                ("destinations".into(), Some(json!(["0113 123456"])), Some(json!(["0113 654321"]))),
                ("hours.tue".into(), Some(json!("8-17")), Some(json!("9-17"))),
                ("new".into(), None, Some(json!(true))),
                ("old".into(), Some(json!(1)), None),
            ]
        );
        assert!(diff(&a, &a).is_empty());
        // a non-object document is compared whole
        assert_eq!(diff(&json!(1), &json!(2)), vec![("$".into(), Some(json!(1)), Some(json!(2)))]);
    }
}
