//! Incident notifications: e-mail over SMTP (lettre) and signed webhooks (reqwest), delivered by
//! a background worker from a bounded queue, plus the missed-update reminder.
//!
//! Nothing here ever waits in a request: [`Notifier::enqueue`] is a `try_send`; a full queue is
//! logged as a failed delivery (visible to the operator) instead of back-pressuring the portal.
//! Every attempt — success, failure, retry — is written to the store's delivery log.
//!
//! Webhook signature: `X-Veertien-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>.<body>"` with the municipality's secret ([`sign`]/[`verify`]); the timestamp lets a
//! receiver refuse replays.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc};
use veertien_server::config::NotifyConfig;
use veertien_store::{Incident, NewDelivery, Store, UpdateKind};

use crate::i18n::Ui;

pub const SIGNATURE_HEADER: &str = "x-veertien-signature";
pub const EVENT_HEADER: &str = "x-veertien-event";
/// Deliveries in flight at once (SMTP sessions + HTTP requests).
const CONCURRENCY: usize = 8;

/// `t=<unix>,v1=<hex>` for `body` at `unix_secs`.
pub fn sign(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix_secs},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header (constant-time compare); for receivers and tests.
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

#[derive(Debug, Clone)]
pub enum Payload {
    Email { to: String, subject: String, body: String },
    Webhook { url: String, secret: String, event: String, body: String },
}

/// One delivery: what, and what it belongs to (for the log).
#[derive(Debug, Clone)]
pub struct Job {
    pub payload: Payload,
    pub incident_id: Option<i64>,
    pub update_id: Option<i64>,
    pub cbs: Option<String>,
}

impl Job {
    fn channel(&self) -> &'static str {
        match self.payload {
            Payload::Email { .. } => "email",
            Payload::Webhook { .. } => "webhook",
        }
    }
    fn target(&self) -> String {
        match &self.payload {
            Payload::Email { to, .. } => to.clone(),
            Payload::Webhook { url, .. } => url.clone(),
        }
    }
}

/// Outcome of one attempt: Ok(detail) or Err((detail, retry makes sense)).
type Attempt = Result<String, (String, bool)>;

pub struct Notifier {
    config: NotifyConfig,
    store: Store,
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    started: OnceLock<()>,
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    /// Why e-mail is off, when it is.
    smtp_error: Option<String>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("smtp_host", &self.config.smtp_host).finish()
    }
}

impl Notifier {
    /// The worker starts with the first delivery (inside the runtime), so this may be called
    /// anywhere. SMTP credentials are read from the environment variables the config names.
    pub fn new(store: Store, config: NotifyConfig) -> Notifier {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let (smtp, smtp_error) = match build_smtp(&config) {
            Ok(t) => (t, None),
            Err(e) => {
                tracing::error!(error = %e, "incident e-mail disabled");
                (None, Some(e))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            // A webhook must answer itself; following redirects would let it point us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("veertien-14plus-webhook/1")
            .build()
            .expect("reqwest client with rustls");
        Notifier { config, store, tx, rx: Mutex::new(Some(rx)), started: OnceLock::new(), http, smtp, smtp_error }
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// Whether a webhook URL is acceptable under this configuration.
    pub fn check_webhook_url(&self, url: &str) -> Result<(), (String, String)> {
        let u = reqwest::Url::parse(url.trim()).map_err(|e| (format!("Geen geldige URL: {e}"), format!("Not a valid URL: {e}")))?;
        match u.scheme() {
            "https" => {}
            "http" if self.config.allow_http_webhooks => {}
            _ => return Err(("Alleen https://-adressen zijn toegestaan.".into(), "Only https:// URLs are allowed.".into())),
        }
        if u.host_str().is_none_or(str::is_empty) || !u.username().is_empty() || u.password().is_some() {
            return Err(("De URL heeft geen host of bevat inloggegevens.".into(), "The URL has no host or contains credentials.".into()));
        }
        Ok(())
    }

    fn ensure_worker(self: &Arc<Self>) {
        self.started.get_or_init(|| {
            let Some(rx) = self.rx.lock().take() else { return };
            let me = self.clone();
            tokio::spawn(async move { me.run(rx).await });
        });
    }

    /// Queues a delivery without waiting. A full queue is logged as a failed attempt.
    pub fn enqueue(self: &Arc<Self>, job: Job) {
        self.ensure_worker();
        if let Err(e) = self.tx.try_send(job) {
            let job = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            tracing::error!(target = %job.target(), "notification queue full: delivery dropped");
            let store = self.store.clone();
            tokio::spawn(async move {
                let _ = store.log_delivery(&delivery(&job, 0, false, "wachtrij vol / queue full: not sent".into())).await;
            });
        }
    }

    async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Job>) {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        while let Some(job) = rx.recv().await {
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            let me = self.clone();
            tokio::spawn(async move {
                me.deliver(job).await;
                drop(permit);
            });
        }
    }

    async fn deliver(&self, job: Job) {
        let attempts = self.config.attempts.max(1);
        for attempt in 1..=attempts {
            let result = match &job.payload {
                Payload::Email { to, subject, body } => self.send_email(to, subject, body).await,
                Payload::Webhook { url, secret, event, body } => self.post_webhook(url, secret, event, body).await,
            };
            let (ok, detail, retry) = match result {
                Ok(d) => (true, d, false),
                Err((d, retry)) => (false, d, retry),
            };
            if ok {
                tracing::info!(channel = job.channel(), target = %job.target(), attempt, "notification delivered");
            } else {
                tracing::warn!(channel = job.channel(), target = %job.target(), attempt, detail = %detail, "notification attempt failed");
            }
            if let Err(e) = self.store.log_delivery(&delivery(&job, attempt, ok, detail)).await {
                tracing::error!(error = %e, "cannot write the delivery log");
            }
            if ok || !retry || attempt == attempts {
                return;
            }
            let backoff = self.config.retry_base_ms.saturating_mul(1u64 << (attempt - 1).min(16));
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        }
    }

    async fn send_email(&self, to: &str, subject: &str, body: &str) -> Attempt {
        let Some(smtp) = &self.smtp else {
            let why = self.smtp_error.clone().unwrap_or_else(|| "e-mail not configured ([notify] smtp_host)".into());
            return Err((why, false));
        };
        let msg = Message::builder()
            .from(self.config.from.parse().map_err(|e| (format!("[notify] from: {e}"), false))?)
            .to(to.parse().map_err(|e| (format!("recipient {to}: {e}"), false))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| (format!("message: {e}"), false))?;
        match smtp.send(msg).await {
            Ok(r) => Ok(format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))),
            // 5xx is permanent (bad recipient, refused); anything else (connection, 4xx) may heal.
            Err(e) => Err((e.to_string(), !e.is_permanent())),
        }
    }

    async fn post_webhook(&self, url: &str, secret: &str, event: &str, body: &str) -> Attempt {
        let now = jiff::Timestamp::now().as_second();
        let res = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event)
            .header(SIGNATURE_HEADER, sign(secret, now, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => Ok(format!("HTTP {}", r.status().as_u16())),
            // 408/429 and 5xx may heal; other 4xx will not.
            Ok(r) => {
                let s = r.status().as_u16();
                Err((format!("HTTP {s}"), s == 408 || s == 429 || s >= 500))
            }
            Err(e) => Err((format!("{e}"), true)),
        }
    }
}

fn delivery(job: &Job, attempt: u32, ok: bool, detail: String) -> NewDelivery {
    NewDelivery {
        incident_id: job.incident_id,
        update_id: job.update_id,
        cbs: job.cbs.clone(),
        channel: job.channel().into(),
        target: job.target(),
        attempt,
        ok,
        detail,
    }
}

fn build_smtp(c: &NotifyConfig) -> Result<Option<AsyncSmtpTransport<Tokio1Executor>>, String> {
    if c.smtp_host.trim().is_empty() {
        return Ok(None);
    }
    let host = c.smtp_host.trim();
    let b = match c.smtp_security.as_str() {
        "plain" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| format!("[notify] smtp_host {host}: {e}"))?,
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(|e| format!("[notify] smtp_host {host}: {e}"))?,
    };
    let mut b = b.port(c.smtp_port).timeout(Some(Duration::from_secs(c.timeout_secs.max(1))));
    let env = |name: &Option<String>| -> Result<Option<String>, String> {
        match name {
            None => Ok(None),
            Some(n) => std::env::var(n).map(Some).map_err(|_| format!("[notify] names environment variable {n}, which is not set")),
        }
    };
    match (env(&c.smtp_username_env)?, env(&c.smtp_password_env)?) {
        (Some(u), Some(p)) => b = b.credentials(Credentials::new(u, p)),
        (None, None) => {}
        _ => return Err("[notify] smtp_username_env and smtp_password_env must be set together".into()),
    }
    Ok(Some(b.build()))
}

/// Europe/Amsterdam wall-clock time of a timestamp, "2026-11-23 14:05".
pub fn local_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(veertien_core::hours::amsterdam().clone()).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn severity_text(ui: Ui, s: veertien_store::Severity) -> String {
    match s {
        veertien_store::Severity::Minor => ui.t("beperkt", "minor"),
        veertien_store::Severity::Major => ui.t("ernstig", "major"),
        veertien_store::Severity::Critical => ui.t("kritiek", "critical"),
    }
}

pub fn event_name(kind: UpdateKind) -> &'static str {
    match kind {
        UpdateKind::Declared => "incident.declared",
        UpdateKind::Update => "incident.updated",
        UpdateKind::Resolved => "incident.resolved",
    }
}

/// Subject and plain-text body of the e-mail for the incident's latest update: Dutch, then English.
pub fn email_text(inc: &Incident, names: &[String], status_url: &str) -> (String, String) {
    let u = inc.latest();
    let tag = match u.kind {
        UpdateKind::Declared => "Storing / Outage",
        UpdateKind::Update => "Update",
        UpdateKind::Resolved => "Opgelost / Resolved",
    };
    let subject = format!("[14+ {tag}] #{} {}", inc.id, inc.title_nl);
    let scope_nl = if inc.all_municipalities { "alle gemeenten".to_string() } else { names.join(", ") };
    let scope_en = if inc.all_municipalities { "all municipalities".to_string() } else { names.join(", ") };
    let mut b = String::new();
    b.push_str(&format!("{}\n\nErnst: {}\nGemeenten: {}\nTijd: {}\n\n{}\n", inc.title_nl, severity_text(Ui::Nl, inc.severity), scope_nl, local_time(u.at_ms), u.text_nl));
    match u.next_update_ms {
        Some(t) => b.push_str(&format!("\nVolgende update uiterlijk: {}\n", local_time(t))),
        None => b.push_str("\nDeze storing is opgelost.\n"),
    }
    b.push_str("\n-- English --\n\n");
    b.push_str(&format!(
        "{}\n\nSeverity: {}\nMunicipalities: {}\nTime: {} (Amsterdam)\n\n{}\n",
        inc.title_en.as_deref().unwrap_or(&inc.title_nl),
        severity_text(Ui::En, inc.severity),
        scope_en,
        local_time(u.at_ms),
        u.text_en.as_deref().unwrap_or(&u.text_nl)
    ));
    match u.next_update_ms {
        Some(t) => b.push_str(&format!("\nNext update by: {} (Amsterdam)\n", local_time(t))),
        None => b.push_str("\nThis incident is resolved.\n"),
    }
    b.push_str(&format!("\nStatus: {status_url}\n"));
    (subject, b)
}

/// The webhook body for the incident's latest update, as sent to municipality `cbs`.
pub fn webhook_body(inc: &Incident, cbs: &str, status_url: &str) -> String {
    let u = inc.latest();
    let ts = |ms: i64| jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default();
    serde_json::json!({
        "event": event_name(u.kind),
        "municipality": cbs,
        "incident": {
            "id": inc.id,
            "title": { "nl": inc.title_nl, "en": inc.title_en },
            "severity": inc.severity.as_str(),
            "all_municipalities": inc.all_municipalities,
            "municipalities": inc.municipalities,
            "declared_at": ts(inc.declared_ms),
            "resolved_at": inc.resolved_ms().map(ts),
        },
        "update": {
            "id": u.id,
            "kind": u.kind.as_str(),
            "at": ts(u.at_ms),
            "text": { "nl": u.text_nl, "en": u.text_en },
            "next_update_at": u.next_update_ms.map(ts),
        },
        "status_url": status_url,
    })
    .to_string()
}

impl Notifier {
    /// Queues the e-mails and webhooks for the incident's latest update: one e-mail per contact
    /// address (so no municipality sees another's contacts), one webhook per affected
    /// municipality that has one. Returns the number of deliveries queued.
    pub async fn incident_changed(self: &Arc<Self>, inc: &Incident, plan: &veertien_core::Plan) -> usize {
        let status_url = format!("{}/status", self.config.public_url.trim_end_matches('/'));
        let names: Vec<String> =
            inc.municipalities.iter().map(|c| plan.by_cbs(c).map(|id| plan.municipality(id).name.clone()).unwrap_or_else(|| c.clone())).collect();
        let (subject, body) = email_text(inc, &names, &status_url);
        let update_id = Some(inc.latest().id);
        let mut n = 0;
        let contacts = match self.store.all_contacts().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, incident = inc.id, "cannot read contacts: no e-mail sent");
                Vec::new()
            }
        };
        let mut seen = std::collections::HashSet::new();
        for c in contacts.into_iter().filter(|c| inc.affects(&c.cbs)) {
            if !seen.insert(c.email.clone()) {
                continue;
            }
            self.enqueue(Job {
                payload: Payload::Email { to: c.email, subject: subject.clone(), body: body.clone() },
                incident_id: Some(inc.id),
                update_id,
                cbs: Some(c.cbs),
            });
            n += 1;
        }
        match self.store.all_webhooks().await {
            Ok(hooks) => {
                for h in hooks.into_iter().filter(|h| inc.affects(&h.cbs)) {
                    self.enqueue(Job {
                        payload: Payload::Webhook {
                            body: webhook_body(inc, &h.cbs, &status_url),
                            url: h.url,
                            secret: h.secret,
                            event: event_name(inc.latest().kind).into(),
                        },
                        incident_id: Some(inc.id),
                        update_id,
                        cbs: Some(h.cbs),
                    });
                    n += 1;
                }
            }
            Err(e) => tracing::error!(error = %e, incident = inc.id, "cannot read webhooks: none sent"),
        }
        n
    }

    /// Reminds the operator of every promise that passed at `now_ms` without an update, once
    /// per promise (the store's reminder table decides "once", also across nodes). Returns the
    /// incident ids reminded.
    pub async fn check_reminders(self: &Arc<Self>, now_ms: i64) -> Vec<i64> {
        let due = match self.store.incidents_needing_reminder(now_ms).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot check promised update times");
                return Vec::new();
            }
        };
        let mut reminded = Vec::new();
        for (inc, update_id) in due {
            match self.store.record_reminder(inc.id, update_id).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(error = %e, incident = inc.id, "cannot record reminder");
                    continue;
                }
            }
            let promised = inc.next_update_ms().map(local_time).unwrap_or_default();
            tracing::warn!(incident = inc.id, promised = %promised, "promised incident update is overdue: operator reminded");
            let url = format!("{}/incidents/{}", self.config.public_url.trim_end_matches('/'), inc.id);
            let subject = format!("[14+ Herinnering / Reminder] #{} {}: update te laat / update overdue", inc.id, inc.title_nl);
            let body = format!(
                "De beloofde update voor storing #{id} ({title}) had uiterlijk {promised} moeten komen en is niet geplaatst.\n\
                 Plaats nu een update: {url}\n\n\
                 The promised update for incident #{id} ({title}) was due by {promised} (Amsterdam) and has not been posted.\n\
                 Post an update now: {url}\n",
                id = inc.id,
                title = inc.title_nl
            );
            if self.config.operator_emails.is_empty() {
                tracing::error!(incident = inc.id, "no [notify] operator_emails: the reminder is only in the portal banner");
            }
            for to in &self.config.operator_emails {
                self.enqueue(Job {
                    payload: Payload::Email { to: to.clone(), subject: subject.clone(), body: body.clone() },
                    incident_id: Some(inc.id),
                    update_id: Some(update_id),
                    cbs: None,
                });
            }
            reminded.push(inc.id);
        }
        reminded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_detect_tampering() {
        let h = sign("geheim-0123456789", 1_700_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert!(verify("geheim-0123456789", &h, b"{\"a\":1}"));
        assert!(!verify("geheim-0123456789", &h, b"{\"a\":2}"));
        assert!(!verify("ander-geheim-0123", &h, b"{\"a\":1}"));
        assert!(!verify("geheim-0123456789", &h.replace("t=1700000000", "t=1700000001"), b"{\"a\":1}"));
        assert!(!verify("geheim-0123456789", "v1=00", b"{\"a\":1}"));
    }
}
