//! Real SIP peers for the integration tests: SIPp as a municipality's contact centre (UAS),
//! and from `sipp_support` SIPp as the carrier (`Uac`) and free loopback ports; the plan's lone
//! municipality.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use veertien_core::Plan;
use veertien_store::{CallFilter, CallRecord, Store};

use super::TestServer;

#[path = "../sipp_support/mod.rs"]
mod sipp_support;
pub use sipp_support::*;

/// A SIPp UAS playing one municipality destination, answering `calls` calls.
pub struct Uas {
    child: Option<Child>,
    pub addr: SocketAddr,
    name: &'static str,
}

impl Uas {
    pub fn start(scenario_file: &'static str, calls: u32) -> Uas {
        Self::start_on(scenario_file, calls, "u1")
    }

    /// As [`Uas::start`], on SIPp transport `transport` (`t1`: TCP, one connection per peer).
    pub fn start_on(scenario_file: &'static str, calls: u32, transport: &str) -> Uas {
        let port = free_udp_port();
        let child = Command::new("sipp")
            .args(["-t", transport, "-sf", scenario(scenario_file).to_str().unwrap()])
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &free_media_port().to_string()])
            // 60 s: an IVR call reaches the contact centre only after the welcome prompt,
            // which is synthesised on first use.
            .args(["-m", &calls.to_string(), "-rtp_echo", "-nostdin", "-timeout", "60s", "-timeout_error"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sipp runs (install the Debian package sip-tester)");
        Uas { child: Some(child), addr: SocketAddr::from(([127, 0, 0, 1], port)), name: scenario_file }
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    /// Waits for SIPp to finish its calls; returns (exit code, output tail).
    pub fn finish(mut self, within: Duration) -> (i32, String) {
        let deadline = std::time::Instant::now() + within;
        let mut child = self.child.take().unwrap();
        let timed_out = loop {
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break true;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().unwrap();
        let text = tail(&format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)), 60);
        if timed_out { (-2, format!("{} did not finish in time\n{text}", self.name)) } else { (out.status.code().unwrap_or(-1), text) }
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A municipality alone on its area code (no question asked): its 14+ number and CBS code.
pub fn lone_municipality() -> (String, String) {
    let plan = Plan::builtin();
    let a = plan
        .area_codes()
        .iter()
        .filter(|a| a.municipalities.len() == 1)
        .find(|a| a.code == "020")
        .or_else(|| plan.area_codes().iter().find(|a| a.municipalities.len() == 1))
        .expect("the plan has area codes with one municipality");
    (a.fourteen.clone(), plan.municipality(a.municipalities[0]).cbs.clone())
}

/// Shuts the server down cleanly (records flushed; no call may be left) and reads the
/// records back from its store.
pub async fn records(ts: TestServer) -> Vec<CallRecord> {
    let db = ts.db_path();
    let report = ts.server.shutdown().await;
    assert_eq!(report.metrics.live_calls, 0, "no call left over: {:?}", report.metrics);
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    store.list_calls(&CallFilter { limit: 100, ..Default::default() }).await.unwrap()
}
