//! A real SIP peer: SIPp places a call to a minimal in-test UAS whose 200 OK carries the
//! SDP answer of a `MediaSession`, then plays RFC 4733 key presses and G.711 audio from its
//! shipped pcap files with its own RTP engine, and hangs up. The session must report the keys.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;
use veertien_media::dtmf::{Digit, DtmfSource};
use veertien_media::ports::PortPool;
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy};
use veertien_media::session::{MediaEvent, MediaSession, SessionConfig};

const SCENARIO: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="veertien media: keys over RTP">
  <send retrans="500"><![CDATA[
INVITE sip:140113@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:140113@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
]]></send>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:140113@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:140113@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec play_pcap_audio="PCAPDIR/dtmf_2833_4.pcap"/></action></nop>
  <pause milliseconds="600"/>
  <nop><action><exec play_pcap_audio="PCAPDIR/dtmf_2833_pound.pcap"/></action></nop>
  <pause milliseconds="900"/>
  <send retrans="500"><![CDATA[
BYE sip:140113@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:140113@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"#;

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find(|l| l.len() > name.len() && l[..name.len()].eq_ignore_ascii_case(name) && l[name.len()..].starts_with(':'))
        .map(|l| l[name.len() + 1..].trim())
        .unwrap_or_else(|| panic!("no {name} header in:\n{msg}"))
}

/// The 200 OK a UAS sends: Via/From/Call-ID/CSeq copied, a To tag added.
fn ok(req: &str, body: &str, contact: SocketAddr) -> String {
    let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".into() };
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=veertien1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:ivr@{contact}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        header(req, "Via"),
        header(req, "From"),
        header(req, "To"),
        header(req, "Call-ID"),
        header(req, "CSeq"),
        body.len()
    )
}

#[tokio::test]
async fn sipp_call_with_rfc4733_keys_reaches_the_session() {
    let have_sipp = std::process::Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !have_sipp || !std::path::Path::new("/usr/share/sip-tester/dtmf_2833_4.pcap").exists() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester must be installed under CI");
        eprintln!("sipp not installed: skipping");
        return;
    }
    let dir = std::env::temp_dir().join(format!("veertien-media-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scen = dir.join("keys.xml");
    std::fs::write(&scen, SCENARIO.replace("PCAPDIR", "/usr/share/sip-tester")).unwrap();

    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sip_addr = sip.local_addr().unwrap();
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42400..=42420).unwrap();
    let mut child = tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(&scen)
        .args(["-m", "1", "-i", "127.0.0.1", "-p", "0", "-mp", "42500", "-timeout", "15s", "-timeout_error", "-nostdin"])
        .arg(sip_addr.to_string())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let mut buf = vec![0u8; 4096];
    let mut session = None;
    let mut events: Option<tokio::sync::mpsc::Receiver<MediaEvent>> = None;
    let mut digits = Vec::new();
    let outcome = timeout(Duration::from_secs(15), async {
        loop {
            tokio::select! {
                r = sip.recv_from(&mut buf) => {
                    let (n, from) = r.unwrap();
                    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                    if msg.starts_with("INVITE ") {
                        if session.is_none() {
                            let offer = &msg[msg.find("\r\n\r\n").expect("INVITE has a body") + 4..];
                            let media = pool.bind().unwrap();
                            let local = LocalEndpoint { addr: pool.ip(), port: media.port(), session_id: 9, session_version: 1 };
                            let (neg, answer) = sdp::answer(offer, &MediaPolicy::default(), &local).unwrap();
                            let (s, e) = MediaSession::start(media, neg, SessionConfig::default());
                            session = Some((s, answer));
                            events = Some(e);
                        }
                        let answer = &session.as_ref().unwrap().1;
                        sip.send_to(ok(&msg, answer, sip_addr).as_bytes(), from).await.unwrap();
                    } else if msg.starts_with("BYE ") {
                        sip.send_to(ok(&msg, "", sip_addr).as_bytes(), from).await.unwrap();
                        break;
                    }
                }
                Some(e) = async { match events.as_mut() { Some(ev) => ev.recv().await, None => std::future::pending().await } } => {
                    if let MediaEvent::Dtmf { digit, source } = e {
                        digits.push((digit, source));
                    }
                }
            }
        }
    })
    .await;
    let status = child.wait().await.unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut err).await;
    }
    assert!(outcome.is_ok(), "call did not complete; sipp stderr:\n{err}");
    assert!(status.success(), "sipp failed ({status}):\n{err}");
    let (session, _) = session.expect("INVITE received");
    // Events emitted just before the BYE may still be queued.
    if let Some(mut ev) = events {
        while let Ok(Some(e)) = timeout(Duration::from_millis(200), ev.recv()).await {
            if let MediaEvent::Dtmf { digit, source } = e {
                digits.push((digit, source));
            }
        }
    }
    let stats = session.close().await;
    assert_eq!(digits, vec![(Digit::D4, DtmfSource::Rfc4733), (Digit::Hash, DtmfSource::Rfc4733)], "{stats:?}");
    assert_eq!(stats.foreign, 0, "SIPp sent from the address in its SDP");
    let _ = std::fs::remove_dir_all(dir);
}
