//! Fault: a municipality's destination stops answering → bypassed to the next route step
//! within 5 s (issue 6), with OPTIONS probing on (`[health]` defaults), end to end: the real
//! server, the primary destination and the overflow partner as SIPp UASes on loopback. The
//! primary is SIGKILLed; 5 s later a call must go straight to the partner, the record naming
//! the primary as skipped because probing has it dead (not as timed out after trying it).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{OptionsUas, TestServer, Uac, free_udp_port};
use veertien_core::{Plan, Settings};
use veertien_store::{CallFilter, Outcome, Store};

/// The overflow partner's answer to an INVITE: 180, 200 + SDP, then the caller's BYE.
const ANSWER: &str = r#"
  <recv request="INVITE" crlf="true" />
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]M[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:kcc@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]M[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:kcc@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=kcc 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true" />
  <recv request="BYE" />
  <send next="end">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_primary_is_skipped_within_five_seconds_by_options_probing() {
    let plan = Plan::builtin();
    let area = plan.area_codes().iter().find(|a| a.municipalities.len() == 1).expect("a lone area code");
    let (fourteen, cbs) = (area.fourteen.clone(), plan.municipality(area.municipalities[0]).cbs.clone());
    let scen = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let mut primary = OptionsUas::start(scen.path(), pa, None);
    let mut partner = OptionsUas::start(scen.path(), pb, Some(ANSWER));

    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.toml");
    let toml = format!(
        "[municipality.{cbs}]\nmode = \"bridge\"\ndestination = \"sip:kcc@127.0.0.1:{pa}\"\noverflow = {{ destination = \"sip:kcc@127.0.0.1:{pb}\", no_answer_secs = 20 }}\n"
    );
    Settings::from_toml_str(&toml, plan).expect("test settings are valid");
    std::fs::write(&settings, toml).unwrap();
    let trunk: SocketAddr = format!("127.0.0.1:{pa}").parse().unwrap();
    let ts = TestServer::start_in(dir, |c| {
        c.plan.settings = Some(settings.clone());
        c.trunk.outbound = Some(trunk);
        c.rtp.port_min = 33_000;
        c.rtp.port_max = 33_999;
    })
    .await;
    // Both destinations answer their probes for a while, then the primary dies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    primary.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let udp = ts.udp;
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "bridge_uac.xml", &fourteen).timeout("30s").run()).await.unwrap();
    partner.kill();
    let db = ts.db_path();
    ts.server.shutdown().await;
    assert_eq!(code, 0, "the call failed:\n{log}");
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let recs = store.list_calls(&CallFilter { limit: 10, ..Default::default() }).await.unwrap();
    let r = &recs[0];
    assert_eq!(r.outcome, Some(Outcome::Answered), "{r:?}");
    let steps = r.route_steps.to_string();
    // Had probing not marked it dead within the 5 s, the primary would have been tried and
    // recorded as unreachable (no response) before the overflow.
    assert!(steps.contains("skipped_dead"), "the primary was skipped as dead, not tried: {steps}");
    assert!(!steps.contains("unreachable"), "{steps}");
}
