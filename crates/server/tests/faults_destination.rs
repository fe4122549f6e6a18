//! Fault: a municipality's destination stops answering (issue 6) → marked dead by OPTIONS
//! probing within 5 s, and alive again once it answers. The destination is a real SIPp UAS on
//! loopback acting as the outbound trunk; it is SIGKILLed and restarted on the same port.

mod sipp_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipp_support::{OptionsUas, free_udp_port};
use tokio_util::sync::CancellationToken;
use veertien_core::{DeliveryMode, Destination, Overflow, Plan, Settings};
use veertien_server::health::{HealthConfig, HealthMonitor, bridged_destinations};
use veertien_server::{Routing, Snapshot};

async fn wait_for(mut rx: tokio::sync::broadcast::Receiver<veertien_server::health::HealthNotice>, dest: &str, alive: bool, within: Duration) -> Option<veertien_server::health::HealthNotice> {
    tokio::time::timeout(within, async {
        loop {
            match rx.recv().await {
                Ok(n) if n.destination == dest && n.alive == alive => return n,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("notice channel closed: {e}"),
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_destination_is_marked_within_five_seconds_and_recovers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let trunk: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut uas = OptionsUas::start(dir.path(), port, None);

    // Defaults except a short recovery cap, so the test does not wait 30 s for the backoff.
    let cfg = HealthConfig { recovery_max_ms: 2_000, ..HealthConfig::default() };
    let monitor = HealthMonitor::new(cfg, "127.0.0.1".parse().unwrap(), Some(trunk));
    let dests = ["tel:+31113123456", "sip:kcc@goes.example"];
    assert!(monitor.set_destinations(dests).is_empty());
    let stop = CancellationToken::new();
    let task = monitor.spawn(stop.clone()).await.unwrap();

    // SIPp answers: probes succeed and the synthetic-call probe sees 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    while monitor.statuses().iter().any(|s| s.last_status != Some(200)) {
        assert!(Instant::now() < deadline, "SIPp never answered the probes: {:?}", monitor.statuses());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dests.iter().all(|d| monitor.is_alive(d)));
    let r = monitor.probe_once("tel:+31113123456").await.unwrap();
    assert_eq!(r.status, Some(200));
    assert!(r.rtt.is_some());

    // Kill the destination: both destinations behind that trunk go dead within 5 s.
    let down = monitor.subscribe();
    let down2 = monitor.subscribe();
    uas.kill();
    let killed = Instant::now();
    let n = wait_for(down, dests[0], false, Duration::from_secs(5)).await.expect("marked dead within 5 s of the kill");
    assert!(n.reason.contains("no answer"), "{n:?}");
    wait_for(down2, dests[1], false, Duration::from_secs(5).saturating_sub(killed.elapsed())).await.expect("second destination dead within 5 s");
    assert!(dests.iter().all(|d| !monitor.is_alive(d)));
    let r = monitor.probe_once(dests[1]).await.unwrap();
    assert_eq!(r.status, None, "nobody answers a probe now");

    // Restart on the same port: alive again (recovery probing capped at 2 s here).
    let up = monitor.subscribe();
    let _uas2 = OptionsUas::start(dir.path(), port, None);
    wait_for(up, dests[0], true, Duration::from_secs(10)).await.expect("alive again after the restart");
    assert!(monitor.is_alive(dests[0]));
    let m = monitor.metrics();
    assert!(m.timeouts >= 2 && m.answers >= 3, "{m:?}");

    stop.cancel();
    task.await.unwrap();
}

/// What is probed comes from the routing snapshot: every destination a bridged call can go to
/// (primary, overflow, calamity), and nothing that is only ever redirected to.
#[test]
fn probed_destinations_are_the_bridged_ones_of_the_real_plan() {
    let plan = Arc::new(Plan::builtin().clone());
    let settings = Settings::defaults(&plan);
    let goes = plan.municipalities().iter().find(|m| m.name == "Goes").expect("Goes in the plan");
    let epe = plan.municipalities().iter().find(|m| m.name == "Epe").expect("Epe in the plan");
    let mut g = settings.get(goes.id).clone();
    g.mode = DeliveryMode::Bridge;
    g.destination = Destination::parse("sip:kcc@goes.example").unwrap();
    g.overflow = Some(Overflow { destination: Destination::parse("0113 249 000").unwrap(), no_answer_secs: 20 });
    let mut e = settings.get(epe.id).clone();
    e.mode = DeliveryMode::Redirect;
    e.destination = Destination::parse("0578 713 713").unwrap();
    let settings = settings.with(goes.id, g).with(epe.id, e);
    let routing = Routing::from_parts(plan.clone(), settings);
    let snap: Arc<Snapshot> = routing.snapshot();
    let dests = bridged_destinations(&snap);
    assert!(dests.contains(&"sip:kcc@goes.example".to_owned()), "{dests:?}");
    assert!(dests.contains(&"tel:+31113249000".to_owned()), "{dests:?}");
    assert!(!dests.iter().any(|d| d.contains("+31578713713")), "a redirect-only destination is not probed: {dests:?}");
    assert!(!dests.iter().any(|d| d.contains(".invalid")), "the placeholder trunk is never probed");
    let uniq: std::collections::HashSet<_> = dests.iter().collect();
    assert_eq!(uniq.len(), dests.len(), "no destination probed twice");
}
