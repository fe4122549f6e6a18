//! Synthetic test calls: a SIP OPTIONS from the platform to a municipality's destination, on
//! demand or every N minutes, with the result (reachable, status, round-trip time) stored.
//!
//! The probe itself is the server's destination-health prober
//! ([`veertien_server::health::probe_once`]), so a test call takes exactly the path a bridged
//! call's health check takes: `tel:` destinations go to the outbound trunk with the number in
//! the Request-URI, `sip:` URIs with an IP address go to that address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use veertien_server::health::{ProbeTarget, probe_once};
use veertien_store::NewSyntheticResult;

use crate::AppState;

/// Where test calls leave from and where `tel:` destinations go.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// The outbound trunk (`[trunk] outbound`).
    pub trunk: Option<SocketAddr>,
    /// Local address the probe socket binds to (the SIP listen IP).
    pub local_ip: IpAddr,
    /// No final response within this time = unreachable.
    pub timeout: Duration,
    /// Final statuses that mean "cannot take calls" although the peer answered.
    pub dead_statuses: Vec<u16>,
    /// At most this many probes at once (a scheduler round over hundreds of municipalities
    /// must not open hundreds of sockets at once).
    pub slots: Arc<Semaphore>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            trunk: None,
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            timeout: Duration::from_secs(4),
            dead_statuses: vec![408, 480, 502, 503, 504],
            slots: Arc::new(Semaphore::new(16)),
        }
    }
}

/// Runs one test call for `cbs` now and stores the result.
pub async fn run_test(state: &AppState, cbs: &str, requested_by: &str) -> Result<NewSyntheticResult, veertien_store::StoreError> {
    let cbs = cbs.to_uppercase();
    let snap = state.routing.snapshot();
    let destination = match snap.plan.by_cbs(&cbs) {
        Some(id) => snap.settings.destination_uri(id),
        None => return Err(veertien_store::StoreError::NotFound(format!("municipality {cbs}"))),
    };
    let cfg = &state.probe;
    let at_ms = jiff::Timestamp::now().as_millisecond();
    let mut r = NewSyntheticResult {
        cbs: cbs.clone(),
        at_ms,
        method: "OPTIONS".into(),
        target: destination.clone(),
        reachable: false,
        status_code: None,
        rtt_ms: None,
        detail: String::new(),
        requested_by: requested_by.to_string(),
    };
    if snap.settings.trunk_is_placeholder() && destination.contains(".invalid") {
        r.detail = "bestemming nog niet ingesteld / destination not configured yet".into();
    } else {
        match ProbeTarget::resolve(&destination, cfg.trunk) {
            None => {
                r.detail = "niet te testen: geen uitgaande trunk voor dit nummer / cannot test: no outbound trunk ([trunk] outbound) for this destination".into();
            }
            Some(target) => {
                r.target = format!("{} via {}", target.request_uri, target.addr);
                let _permit = cfg.slots.acquire().await;
                match probe_once(&target, cfg.local_ip, cfg.timeout).await {
                    Ok(p) => {
                        r.status_code = p.status;
                        r.rtt_ms = p.rtt.map(|d| d.as_millis().min(i64::MAX as u128) as i64);
                        r.reachable = p.status.is_some_and(|s| !cfg.dead_statuses.contains(&s));
                        r.detail = match p.status {
                            Some(s) => format!("{s} {}", veertien_sip::default_reason(s)),
                            None => format!("geen antwoord binnen / no answer within {} ms", cfg.timeout.as_millis()),
                        };
                    }
                    Err(e) => r.detail = e.to_string(),
                }
            }
        }
    }
    state.store.record_synthetic(&r).await?;
    tracing::info!(municipality = %cbs, reachable = r.reachable, status = ?r.status_code, rtt_ms = ?r.rtt_ms, "synthetic test call");
    Ok(r)
}

/// Starts every scheduled test whose interval has passed at `now_ms`; returns the municipalities
/// started. The tests run in the background (bounded by [`ProbeConfig::slots`]).
pub async fn run_due(state: &AppState, now_ms: i64) -> Vec<String> {
    let schedules = match state.store.synthetic_schedules().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read test-call schedules");
            return Vec::new();
        }
    };
    let mut started = Vec::new();
    for s in schedules {
        let due = s.last_run_ms.is_none_or(|last| now_ms - last >= i64::from(s.every_minutes) * 60_000);
        if !due {
            continue;
        }
        let st = state.clone();
        let cbs = s.cbs.clone();
        tokio::spawn(async move {
            if let Err(e) = run_test(&st, &cbs, "schedule").await {
                tracing::error!(municipality = %cbs, error = %e, "scheduled test call not stored");
            }
        });
        started.push(s.cbs);
    }
    started
}
