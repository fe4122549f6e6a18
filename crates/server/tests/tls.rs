//! SIP over TLS (`[sip] tls`, optional in issue 3): a real TLS client (tokio-rustls, trusting
//! only the test's self-signed certificate from rcgen) talks to the in-process server. SIPp on
//! this machine is built without TLS (`-t l1` is not offered), hence the Rust client. Calls
//! from it are bridged to (and, after the IVR, put through to) a SIPp UAS over UDP playing the
//! municipality; the caller's leg must stay on its TLS connection throughout. A municipality
//! reached over TLS is either a Rust contact centre or SIPp over TCP behind a TLS front
//! (`tls_front`), so that SIPp's own requests come back on the connection we opened.

mod support;
mod ivr_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use veertien_core::{Plan, Settings};
use veertien_sip::{Message, Method, Request, Response, Transport, tcp::Framer};
use veertien_store::{Delivery, Outcome};

/// SIPp and the RTP port range: one call test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A self-signed certificate for `localhost`, written as PEM files: (cert path, key path, DER).
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("sip.crt"), dir.join("sip.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key, ck.cert.der().clone())
}

fn tls_request(method: &str, uri: &str, branch: &str) -> String {
    request(method, uri, branch, &format!("tls-{branch}"), 5061).replace("SIP/2.0/UDP", "SIP/2.0/TLS")
}

async fn next_message<S: AsyncReadExt + Unpin>(stream: &mut S, framer: &mut Framer, within: Duration) -> Message {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(m) = framer.next_message().expect("the server's messages frame and parse") {
            return m;
        }
        let n = tokio::time::timeout(within, stream.read(&mut buf)).await.expect("a message from the server in time").unwrap();
        assert!(n > 0, "the server closed the TLS connection");
        framer.push(&buf[..n]).unwrap();
    }
}

async fn next_response<S: AsyncReadExt + Unpin>(stream: &mut S, framer: &mut Framer) -> Response {
    loop {
        if let Message::Response(r) = next_message(stream, framer, Duration::from_secs(5)).await {
            return r;
        }
    }
}

/// A TLS connection to the server, trusting only `der`.
async fn connect(addr: SocketAddr, der: CertificateDer<'static>) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let client = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("handshake with our certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed(dir.path());
    let ts = TestServer::start(|c| {
        c.sip.tls = Some("127.0.0.1:0".parse().unwrap());
        c.sip.tls_cert = Some(cert.clone());
        c.sip.tls_key = Some(key.clone());
    })
    .await;
    let addr = ts.server.tls_addr().expect("TLS listener bound");
    let mut tls = connect(addr, der).await;
    let mut framer = Framer::new(65_535);

    // OPTIONS: 200 with Allow, on the same connection.
    tls.write_all(tls_request("OPTIONS", "sip:127.0.0.1", "z9hG4bK-tls1").as_bytes()).await.unwrap();
    let r = next_response(&mut tls, &mut framer).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "Allow").is_some_and(|a| a.contains("INVITE")), "{r:?}");

    // The shared framer: a framed message that does not parse gets 400 naming the fault and the
    // connection stays usable.
    let bad = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-tls2\r\nContent-Length: 0\r\n\r\n";
    tls.write_all(bad.as_bytes()).await.unwrap();
    let r = next_response(&mut tls, &mut framer).await;
    assert_eq!(r.status(), 400, "{r:?}");

    // A call over TLS is decided like any other: the redirect number gets its 302.
    let (fourteen, _, destination) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@127.0.0.1");
    tls.write_all(tls_request("INVITE", &uri, "z9hG4bK-tls3").as_bytes()).await.unwrap();
    let mut r = next_response(&mut tls, &mut framer).await;
    while r.status() < 200 {
        r = next_response(&mut tls, &mut framer).await;
    }
    assert_eq!(r.status(), 302, "{r:?}");
    assert!(header(&r, "Contact").is_some_and(|c| c.contains(destination.trim_start_matches("tel:"))), "{r:?} vs {destination}");
    ts.server.shutdown().await;
}

#[test]
fn tls_without_certificate_or_key_is_refused_naming_the_key() {
    let mut c = veertien_server::Config::default();
    c.sip.tls = Some("127.0.0.1:5061".parse().unwrap());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("sip.tls") && e.contains("tls_cert"), "{e}");
}

#[tokio::test]
async fn an_unreadable_certificate_stops_start_up_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.crt");
    let mut c = test_config(dir.path());
    c.sip.tls = Some("127.0.0.1:0".parse().unwrap());
    c.sip.tls_cert = Some(missing.clone());
    c.sip.tls_key = Some(missing.clone());
    let e = veertien_server::Server::start(c, false, None).await.err().expect("start-up refused").to_string();
    assert!(e.contains("missing.crt"), "{e}");
}

// ---- calls over TLS ------------------------------------------------------------------------

/// A port bound for both UDP and TCP that the caller names in its Via sent-by and Contact. A
/// server falling back from TLS would answer or send there (RFC 3261 18.2.2 sends responses
/// to the sent-by when the connection is gone; in-dialog requests go to the Contact), so
/// nothing may ever arrive on it.
struct Watch {
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    port: u16,
}

impl Watch {
    fn bind() -> Watch {
        loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                return Watch { udp, tcp, port };
            }
        }
    }

    fn assert_untouched(&self) {
        self.udp.set_nonblocking(true).unwrap();
        self.tcp.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2048];
        match self.udp.recv_from(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("something of the TLS call came over UDP: {other:?} {}", String::from_utf8_lossy(&buf)),
        }
        match self.tcp.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the server opened a plain TCP connection for the TLS call: {other:?}"),
        }
    }
}

/// The carrier's side of one call over its TLS connection, built by hand so every header the
/// server sends can be checked.
struct TlsCaller {
    tls: TlsStream<TcpStream>,
    framer: Framer,
    call_id: String,
    tag: String,
    /// Where our Via and Contact point (a [`Watch`] port).
    sent_by: u16,
    to_tag: String,
    /// The server's Contact from its 200: the Request-URI of our in-dialog requests.
    remote_target: String,
    cseq: u32,
    branches: u32,
}

impl TlsCaller {
    fn new(tls: TlsStream<TcpStream>, sent_by: u16) -> TlsCaller {
        let n = fastrand::u64(..);
        TlsCaller {
            tls,
            framer: Framer::new(65_535),
            call_id: format!("tls-call-{n:x}"),
            tag: format!("c{n:x}"),
            sent_by,
            to_tag: String::new(),
            remote_target: String::new(),
            cseq: 1,
            branches: 0,
        }
    }

    async fn send(&mut self, text: String) {
        self.tls.write_all(text.as_bytes()).await.unwrap();
    }

    fn headers(&mut self, method: &str, uri: &str, cseq: u32, to: &str) -> String {
        self.branches += 1;
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK-{tag}-{b}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Beller\" <sip:0612345678@127.0.0.1>;tag={tag}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:0612345678@127.0.0.1:{port};transport=tls>\r\n",
            port = self.sent_by,
            tag = self.tag,
            b = self.branches,
            call_id = self.call_id,
        )
    }

    /// INVITE with an SDP offer (PCMU, telephone-event) for RTP at `rtp_port`.
    async fn invite(&mut self, number: &str, rtp_port: u16) {
        let sdp = format!(
            "v=0\r\no=beller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
        );
        let uri = format!("sip:{number}@127.0.0.1");
        let mut m = self.headers("INVITE", &uri, 1, &format!("<{uri}>"));
        m.push_str(&format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()));
        self.send(m).await;
    }

    /// The final response to the INVITE (provisional ones skipped).
    async fn invite_answered(&mut self, within: Duration) -> Response {
        loop {
            match next_message(&mut self.tls, &mut self.framer, within).await {
                Message::Response(r) if r.status() >= 200 => {
                    if r.status() == 200 {
                        self.to_tag = to_tag(&r);
                        let contact = header(&r, "Contact").unwrap_or_default();
                        self.remote_target = contact.trim().trim_start_matches('<').split('>').next().unwrap_or_default().to_owned();
                    }
                    return r;
                }
                Message::Response(_) => {}
                Message::Request(q) => panic!("a request before the INVITE was answered: {q:?}"),
            }
        }
    }

    fn dialog_to(&self) -> String {
        format!("<sip:x@127.0.0.1>;tag={}", self.to_tag)
    }

    async fn ack(&mut self) {
        let (uri, to) = (self.remote_target.clone(), self.dialog_to());
        let mut m = self.headers("ACK", &uri, 1, &to);
        m.push_str("Content-Length: 0\r\n\r\n");
        self.send(m).await;
    }

    /// A key by SIP INFO (application/dtmf-relay); its response (retransmitted 200s to the
    /// INVITE skipped).
    async fn key_by_info(&mut self, digit: char) -> Response {
        self.cseq += 1;
        let (uri, to, cseq) = (self.remote_target.clone(), self.dialog_to(), self.cseq);
        let body = format!("Signal={digit}\r\nDuration=160\r\n");
        let mut m = self.headers("INFO", &uri, cseq, &to);
        m.push_str(&format!("Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
        self.send(m).await;
        loop {
            match next_message(&mut self.tls, &mut self.framer, Duration::from_secs(5)).await {
                Message::Response(r) if r.cseq().is_some_and(|c| c.seq == cseq) && r.status() >= 200 => return r,
                Message::Response(_) => {}
                Message::Request(q) => panic!("a request while our INFO was pending: {q:?}"),
            }
        }
    }

    /// The server's BYE, answered 200 on this connection.
    async fn bye_answered(&mut self, within: Duration) -> Request {
        loop {
            match next_message(&mut self.tls, &mut self.framer, within).await {
                Message::Request(q) if *q.method() == Method::Bye => {
                    let ok = Response::builder(&q, 200).build();
                    self.tls.write_all(&ok.to_bytes()).await.unwrap();
                    return q;
                }
                Message::Request(q) => panic!("an unexpected request on the caller's leg: {q:?}"),
                Message::Response(_) => {}
            }
        }
    }
}

/// A server with a TLS listener whose settings bridge `cbs` to the SIPp UAS `kcc`: (server,
/// the certificate to trust).
async fn tls_bridge_server(cbs: &str, kcc: &Uas) -> (TestServer, CertificateDer<'static>) {
    tls_server_bridging(cbs, &kcc.uri("kcc"), kcc.addr, |_| {}).await
}

/// A server with a TLS listener whose settings bridge `cbs` to `destination` (the outbound
/// trunk at `outbound`): (server, the certificate to trust).
async fn tls_server_bridging(
    cbs: &str,
    destination: &str,
    outbound: SocketAddr,
    adjust: impl FnOnce(&mut veertien_server::Config),
) -> (TestServer, CertificateDer<'static>) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed(dir.path());
    let settings = dir.path().join("settings.toml");
    let toml = format!("[municipality.{cbs}]\nmode = \"bridge\"\ndestination = \"{destination}\"\n");
    Settings::from_toml_str(&toml, Plan::builtin()).expect("test settings are valid");
    std::fs::write(&settings, toml).unwrap();
    let ts = TestServer::start_in(dir, |c| {
        c.sip.tls = Some("127.0.0.1:0".parse().unwrap());
        c.sip.tls_cert = Some(cert.clone());
        c.sip.tls_key = Some(key.clone());
        c.plan.settings = Some(settings.clone());
        c.trunk.outbound = Some(outbound);
        c.trunk.no_response_ms = 1_000;
        // SIPp does not expect OPTIONS probes.
        c.health.enabled = false;
        c.rtp.port_min = 32_000;
        c.rtp.port_max = 32_099;
        adjust(c);
    })
    .await;
    (ts, der)
}

/// What every message of the caller's leg must say: our TLS listener, over TLS.
fn assert_tls_contact(r: &Response, tls_port: u16) {
    assert_eq!(
        header(r, "Contact").as_deref(),
        Some(format!("<sip:veertien@127.0.0.1:{tls_port};transport=tls>").as_str()),
        "our Contact on the TLS leg names the TLS listener with transport=tls: {r:?}"
    );
}

fn assert_tls_via(bye: &Request, tls_port: u16) {
    let via = bye.top_via().expect("our BYE has a Via");
    assert_eq!(via.transport, Transport::Tls, "our Via on the caller's leg says TLS: {bye:?}");
    assert_eq!((&via.host[..], via.port), (&b"127.0.0.1"[..], Some(tls_port)), "our Via names the TLS listener: {bye:?}");
}

/// A call from a carrier on TLS to a server that bridges `cbs` to a SIPp contact centre which
/// answers and then hangs up: the caller connected (trusting the server's certificate), with
/// its RTP socket and the port that must stay untouched.
struct TlsCall {
    ts: TestServer,
    kcc: Uas,
    tls_port: u16,
    watch: Watch,
    rtp: std::net::UdpSocket,
    caller: TlsCaller,
}

async fn tls_call(cbs: &str) -> TlsCall {
    let kcc = Uas::start("uas_answer_then_bye.xml", 1);
    let (ts, der) = tls_bridge_server(cbs, &kcc).await;
    let tls_addr = ts.server.tls_addr().unwrap();
    let watch = Watch::bind();
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let caller = TlsCaller::new(connect(tls_addr, der).await, watch.port);
    TlsCall { ts, kcc, tls_port: tls_addr.port(), watch, rtp, caller }
}

/// A bridged call from a carrier on TLS: the INVITE (with SDP) on its connection, answered
/// through the bridge by the municipality (SIPp over UDP), ACK; the municipality hangs up, so
/// our BYE must reach the caller on its TLS connection (Via `SIP/2.0/TLS`, our TLS port), and
/// the caller's 200 to it ends the call. Before, such an INVITE was redirected with a 302.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_call_from_a_tls_carrier_hung_up_by_the_municipality() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let TlsCall { ts, kcc, tls_port, watch, rtp, mut caller } = tls_call(&cbs).await;

    caller.invite(&fourteen, rtp.local_addr().unwrap().port()).await;
    let ok = caller.invite_answered(Duration::from_secs(10)).await;
    assert_eq!(ok.status(), 200, "answered through the bridge, not redirected: {ok:?}");
    assert!(String::from_utf8_lossy(ok.body()).contains("m=audio"), "the answer carries SDP: {ok:?}");
    assert_tls_contact(&ok, tls_port);
    caller.ack().await;

    let bye = caller.bye_answered(Duration::from_secs(10)).await;
    assert_tls_via(&bye, tls_port);
    let (code, log) = tokio::task::spawn_blocking(move || kcc.finish(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, 0, "municipality: INVITE answered, ACK seen, its BYE answered 200:\n{log}");
    watch.assert_untouched();

    let m = ts.server.engine().metrics();
    assert_eq!((m.bridged, m.redirected), (1, 0), "{m:?}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
    assert_eq!(recs[0].delivery, Some(Delivery::Bridge), "{:?}", recs[0]);
    assert_eq!(recs[0].route_steps.value()[0]["result"], "answered", "{:?}", recs[0]);
}

/// An IVR call over TLS: 140113 is a shared area code, so the IVR answers on the caller's TLS
/// connection; the caller chooses Kapelle by SIP INFO during the welcome, is put through to
/// Kapelle's contact centre (SIPp over UDP), which answers and hangs up; our BYE comes back
/// over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_call_from_a_tls_carrier_reaches_its_municipality() {
    let _g = SERIAL.lock().await;
    if !have("sipp") || !have("espeak-ng") {
        eprintln!("skipped: needs sipp and espeak-ng (the IVR's prompts)");
        return;
    }
    let (cbs, digit) = ivr_support::kapelle();
    let TlsCall { ts, kcc, tls_port, watch, rtp, mut caller } = tls_call(&cbs).await;

    caller.invite("140113", rtp.local_addr().unwrap().port()).await;
    // The IVR synthesises its prompts on first use: allow for espeak-ng.
    let ok = caller.invite_answered(Duration::from_secs(30)).await;
    assert_eq!(ok.status(), 200, "answered by the IVR, not refused 480: {ok:?}");
    assert_tls_contact(&ok, tls_port);
    caller.ack().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = caller.key_by_info(digit).await;
    assert_eq!(r.status(), 200, "the key by INFO is taken: {r:?}");

    let bye = caller.bye_answered(Duration::from_secs(30)).await;
    assert_tls_via(&bye, tls_port);
    let (code, log) = tokio::task::spawn_blocking(move || kcc.finish(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, 0, "Kapelle: the put-through call answered, its BYE answered 200:\n{log}");
    watch.assert_untouched();

    assert_eq!(ts.server.engine().metrics().ivr, 1);
    // Shut down at once: the call settles just after the caller's 200 to our BYE, and its
    // record must be kept even when shutdown starts meanwhile (it once was not: the call
    // counted as over before its record was queued, and shutdown closed the writer between).
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = &recs[0];
    assert_eq!(rec.decision_kind, "ask", "{rec:?}");
    assert_eq!(rec.municipality_cbs.as_deref(), Some(cbs.as_str()), "the INFO key chose Kapelle: {rec:?}");
    assert_eq!(rec.outcome, Some(Outcome::Answered), "{rec:?}");
    assert_eq!(rec.delivery, Some(Delivery::Bridge), "{rec:?}");
}

// ---- destinations over TLS -----------------------------------------------------------------

/// A certificate for the IP address 127.0.0.1 (no DNS on the call path: a destination is
/// verified for its address), as (PEM, DER, PKCS#8 key DER).
fn ip_certificate() -> (String, CertificateDer<'static>, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    (ck.cert.pem(), ck.cert.der().clone(), ck.key_pair.serialize_der())
}

/// Serves one SIP connection of a test contact centre: answers an INVITE with `status` (a 200
/// with SDP and `contact`), takes the ACK and answers a BYE 200.
/// Returns the requests it got once the BYE is answered, or once the ACK of a failure is in
/// and `done` is notified (the connection is held open until then, as a real peer would).
async fn serve_sip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    status: u16,
    contact: String,
    done: Arc<tokio::sync::Notify>,
) -> Result<Vec<Request>, String> {
    let mut framer = Framer::new(65_535);
    let mut seen = Vec::new();
    loop {
        let Message::Request(q) = next_message(&mut stream, &mut framer, Duration::from_secs(20)).await else { continue };
        seen.push(q.clone());
        let reply = match q.method() {
            Method::Invite if status == 200 => {
                // PCMA: what the caller (bridge_uac.xml) offers; the relay does not transcode.
                let sdp = "v=0\r\no=kcc 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
                Response::builder(&q, 200)
                    .to_tag("kcc1")
                    .header(veertien_sip::HeaderName::Contact, format!("<{contact}>"))
                    .body("application/sdp", sdp)
                    .build()
            }
            Method::Invite => Response::builder(&q, status).to_tag("kcc0").build(),
            Method::Ack if status != 200 => {
                let _ = tokio::time::timeout(Duration::from_secs(20), done.notified()).await;
                return Ok(seen);
            }
            Method::Ack => continue,
            _ => Response::builder(&q, 200).build(),
        };
        stream.write_all(&reply.to_bytes()).await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        if *q.method() == Method::Bye {
            let _ = stream.shutdown().await;
            done.notify_one();
            return Ok(seen);
        }
    }
}

/// A TLS acceptor with `cert` (and its PKCS#8 `key`).
fn acceptor(cert: CertificateDer<'static>, key: Vec<u8>) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A municipality's contact centre over TLS, in Rust: accepts one connection with `cert`,
/// answers one INVITE 200 (SDP, Contact with `;transport=tls`), takes the ACK and answers the
/// BYE. The requests it got, or why the connection failed.
async fn tls_contact_centre(
    cert: CertificateDer<'static>,
    key: Vec<u8>,
) -> (SocketAddr, tokio::task::JoinHandle<Result<Vec<Request>, String>>) {
    tls_contact_centre_with(cert, key, |addr| format!("sip:kcc@{addr};transport=tls")).await
}

/// As [`tls_contact_centre`], with the Contact of its 200 from `contact(its address)`.
async fn tls_contact_centre_with(
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    contact: impl FnOnce(SocketAddr) -> String,
) -> (SocketAddr, tokio::task::JoinHandle<Result<Vec<Request>, String>>) {
    let acceptor = acceptor(cert, key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let contact = contact(addr);
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let tls = acceptor.accept(tcp).await.map_err(|e| format!("handshake: {e}"))?;
        serve_sip(tls, 200, contact, Arc::new(tokio::sync::Notify::new())).await
    });
    (addr, task)
}

/// A contact centre speaking SIP over plain TCP and over TLS on the same port, as some SBCs
/// do: each connection is told apart by its first byte (a TLS ClientHello starts with 0x16, a
/// SIP request with a letter). Over TCP it answers an INVITE `tcp_status`; over TLS 200. What
/// each connection carried, by transport ("TCP", "TLS"), for the connections made within 20 s
/// (at most two).
async fn tcp_and_tls_contact_centre(
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    tcp_status: u16,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<(&'static str, Result<Vec<Request>, String>)>>) {
    let acceptor = acceptor(cert, key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let done = Arc::new(tokio::sync::Notify::new());
        let mut conns = Vec::new();
        for _ in 0..2 {
            let Ok(Ok((tcp, _))) = tokio::time::timeout(Duration::from_secs(20), listener.accept()).await else { break };
            let mut first = [0u8; 1];
            let (acceptor, done) = (acceptor.clone(), done.clone());
            let tls = matches!(tcp.peek(&mut first).await, Ok(1) if first[0] == 0x16);
            conns.push(tokio::spawn(async move {
                if !tls {
                    return ("TCP", serve_sip(tcp, tcp_status, format!("sip:kcc@{addr};transport=tcp"), done).await);
                }
                match acceptor.accept(tcp).await {
                    Ok(tls) => ("TLS", serve_sip(tls, 200, format!("sip:kcc@{addr};transport=tls"), done).await),
                    Err(e) => ("TLS", Err(format!("handshake: {e}"))),
                }
            }));
        }
        let mut out = Vec::new();
        for c in conns {
            out.push(c.await.unwrap());
        }
        out
    });
    (addr, task)
}

/// A municipality reached over TLS (`;transport=tls` in its destination; `[trunk] tls_ca` holds
/// its certificate): a call from a UDP carrier is bridged; the INVITE, the ACK and the BYE
/// reach the municipality on one verified TLS connection, with our Via `SIP/2.0/TLS` and a
/// Contact with `;transport=tls` on our TLS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn municipality_reached_over_tls() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let (pem, der, key) = ip_certificate();
    let (kcc, centre) = tls_contact_centre(der, key).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), pem).unwrap();
    let ca_path = ca.path().to_path_buf();
    let destination = format!("sip:kcc@{kcc};transport=tls");
    let (ts, _) = tls_server_bridging(&cbs, &destination, kcc, |c| c.trunk.tls_ca = Some(ca_path)).await;
    let (udp, tls_port) = (ts.udp, ts.server.tls_addr().unwrap().port());
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "bridge_uac.xml", &fourteen).run()).await.unwrap();
    assert_eq!(code, 0, "caller (UDP): answered through the bridge, BYE answered:\n{log}");
    let seen = centre.await.unwrap().expect("the municipality's TLS connection carried the call");
    let methods: Vec<&str> = seen.iter().map(|q| q.method().as_str()).collect();
    assert_eq!(methods, ["INVITE", "ACK", "BYE"], "{seen:?}");
    for q in &seen {
        let via = q.top_via().unwrap();
        assert_eq!(via.transport, Transport::Tls, "{q:?}");
        assert_eq!(via.port, Some(tls_port), "our Via names our TLS listener: {q:?}");
    }
    assert_eq!(
        header_of(&seen[0], "Contact").as_deref(),
        Some(format!("<sip:veertien@127.0.0.1:{tls_port};transport=tls>").as_str()),
        "the municipality's requests in this dialog come back over TLS: {:?}",
        seen[0]
    );
    let layer = ts.server.engine().call_layer().unwrap();
    assert_eq!(layer.metrics.tcp_dials.load(std::sync::atomic::Ordering::Relaxed), 1, "one connection for the call");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
    assert_eq!(recs[0].destination.as_deref(), Some(destination.as_str()), "{:?}", recs[0]);
}

/// A municipality whose contact centre takes SIP over TCP and over TLS on the same address
/// and port: the primary step (`;transport=tcp`) is busy, the overflow (`;transport=tls`, same
/// address) answers. Connections are keyed by transport and address, so the overflow gets a
/// TLS connection of its own while the TCP one is still open, instead of being refused (or,
/// worse, sent in the clear on the TCP connection). Only the TLS one carries Via `;alias`
/// (RFC 5923 defines connection reuse for TLS alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_tls_destinations_on_one_address_each_get_their_own_connection() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let (pem, der, key) = ip_certificate();
    let (kcc, centre) = tcp_and_tls_contact_centre(der, key, 486).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let settings = dir.path().join("settings.toml");
    let toml = format!(
        "[municipality.{cbs}]\nmode = \"bridge\"\ndestination = \"sip:kcc@{kcc};transport=tcp\"\n\
         overflow = {{ destination = \"sip:kcc@{kcc};transport=tls\", no_answer_secs = 10 }}\n"
    );
    std::fs::write(&settings, toml).unwrap();
    let ts = TestServer::start_in(dir, |c| {
        c.plan.settings = Some(settings.clone());
        c.trunk.outbound = Some(kcc);
        c.trunk.tls_ca = Some(ca.clone());
        c.trunk.no_response_ms = 1_000;
        c.health.enabled = false;
        c.rtp.port_min = 32_000;
        c.rtp.port_max = 32_099;
    })
    .await;
    let udp = ts.udp;
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "bridge_uac.xml", &fourteen).run()).await.unwrap();
    assert_eq!(code, 0, "caller: answered by the overflow over TLS, BYE answered:\n{log}");
    let conns = centre.await.unwrap();
    let methods = |want: &str| -> Vec<String> {
        let (_, r) = conns.iter().find(|(t, _)| *t == want).unwrap_or_else(|| panic!("no {want} connection: {conns:?}"));
        let seen = r.as_ref().unwrap_or_else(|e| panic!("{want} connection failed: {e}"));
        seen.iter().map(|q| q.method().as_str().to_owned()).collect()
    };
    assert_eq!(conns.len(), 2, "{conns:?}");
    assert_eq!(methods("TCP"), ["INVITE", "ACK"], "the busy primary over TCP");
    assert_eq!(methods("TLS"), ["INVITE", "ACK", "BYE"], "the overflow over TLS carried the whole call");
    let aliases = |want: &str| -> Vec<bool> {
        let (_, r) = conns.iter().find(|(t, _)| *t == want).unwrap();
        r.as_ref().unwrap().iter().map(|q| has_alias(&q.top_via().unwrap().raw)).collect()
    };
    assert_eq!(aliases("TCP"), [false, false], "RFC 5923 offers only TLS connections for reuse: {conns:?}");
    assert_eq!(aliases("TLS"), [true, true, true], "our TLS connection is offered for reuse: {conns:?}");
    let layer = ts.server.engine().call_layer().unwrap();
    assert_eq!(layer.metrics.tcp_dials.load(std::sync::atomic::Ordering::Relaxed), 2, "one connection per transport");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    let route = recs[0].route_steps.value();
    let steps: Vec<(&str, &str)> =
        route.as_array().unwrap().iter().map(|s| (s["label"].as_str().unwrap_or("?"), s["result"].as_str().unwrap_or("?"))).collect();
    assert_eq!(steps, [("primary", "busy"), ("overflow", "answered")], "{:?}", recs[0]);
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
}

/// A destination over TLS whose certificate is not from `[trunk] tls_ca` is never sent the
/// call: the handshake fails, the attempt is unreachable with the reason, and the caller gets
/// its final answer at once instead of after the no-response timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_with_an_untrusted_certificate_is_not_called() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let (_, der, key) = ip_certificate();
    let (trusted_pem, _, _) = ip_certificate();
    let (kcc, centre) = tls_contact_centre(der, key).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), trusted_pem).unwrap();
    let ca_path = ca.path().to_path_buf();
    let (ts, _) =
        tls_server_bridging(&cbs, &format!("sip:kcc@{kcc};transport=tls"), kcc, |c| c.trunk.tls_ca = Some(ca_path)).await;
    let client = Client::new(ts.udp).await;
    let uri = format!("sip:{fourteen}@127.0.0.1");
    client.send(request("INVITE", &uri, "z9hG4bK-untrusted", "tls-untrusted", client.port()).as_bytes()).await;
    let mut r = client.recv().await;
    while r.status() < 200 {
        r = client.recv().await;
    }
    assert_eq!(r.status(), 480, "{r:?}");
    let refused = centre.await.unwrap().expect_err("no request reached the untrusted destination");
    assert!(refused.contains("handshake"), "{refused}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].outcome, Some(Outcome::Unreachable), "{:?}", recs[0]);
    let detail = recs[0].route_steps.value()[0]["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("TLS handshake with the destination failed") && detail.contains("certificate"), "{:?}", recs[0]);
}

/// A TLS destination that refuses the connection: the route step's detail, which the portal
/// shows, names TLS (it said "TCP" before, for every stream transport).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_tls_destination_is_reported_as_tls() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let (pem, _, _) = ip_certificate();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), pem).unwrap();
    let ca_path = ca.path().to_path_buf();
    let (ts, _) =
        tls_server_bridging(&cbs, &format!("sip:kcc@{closed};transport=tls"), closed, |c| c.trunk.tls_ca = Some(ca_path)).await;
    let client = Client::new(ts.udp).await;
    let uri = format!("sip:{fourteen}@127.0.0.1");
    client.send(request("INVITE", &uri, "z9hG4bK-refused", "tls-refused", client.port()).as_bytes()).await;
    let mut r = client.recv().await;
    while r.status() < 200 {
        r = client.recv().await;
    }
    assert_eq!(r.status(), 480, "{r:?}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    let detail = recs[0].route_steps.value()[0]["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.starts_with("TLS connection to the destination failed"), "{detail}");
    assert!(!detail.contains("TCP"), "{detail}");
}

fn header_of(q: &Request, name: &str) -> Option<String> {
    q.headers().get_str(name).map(|v| String::from_utf8_lossy(v).into_owned())
}

#[tokio::test]
async fn an_unreadable_trunk_ca_stops_start_up_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    c.trunk.outbound = Some("127.0.0.1:5070".parse().unwrap());
    c.trunk.tls_ca = Some(dir.path().join("missing-ca.pem"));
    let e = veertien_server::Server::start(c, false, None).await.err().expect("start-up refused").to_string();
    assert!(e.contains("missing-ca.pem"), "{e}");
}

#[test]
fn trunk_over_tls_without_a_ca_is_refused_naming_the_key() {
    let mut c = veertien_server::Config::default();
    c.trunk.transport = veertien_server::config::TrunkTransport::Tls;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("trunk.transport") && e.contains("tls_ca"), "{e}");
}

// ---- sips: destinations ----------------------------------------------------------------------

/// A settings file bridging `cbs` to `destination`, written into `dir`.
fn settings_file(dir: &std::path::Path, cbs: &str, destination: &str) -> std::path::PathBuf {
    let path = dir.join("settings.toml");
    std::fs::write(&path, format!("[municipality.{cbs}]\nmode = \"bridge\"\ndestination = \"{destination}\"\n")).unwrap();
    path
}

/// A `sips:` destination (RFC 3261 26.2: TLS on every hop) without a scheme-specific port or
/// transport parameter: the call goes over one verified TLS connection, never UDP or TCP, with
/// our Via `SIP/2.0/TLS` and a `sips:` Contact on our TLS listener (RFC 3261 8.1.1.8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sips_destination_is_called_over_tls_only() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let (pem, der, key) = ip_certificate();
    let (kcc, centre) = tls_contact_centre_with(der, key, |addr| format!("sips:kcc@{addr}")).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), pem).unwrap();
    let ca_path = ca.path().to_path_buf();
    let destination = format!("sips:kcc@{kcc}");
    // The outbound trunk is a UDP peer that must see nothing of this call.
    let trunk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (ts, _) = tls_server_bridging(&cbs, &destination, trunk.local_addr().unwrap(), |c| c.trunk.tls_ca = Some(ca_path)).await;
    let (udp, tls_port) = (ts.udp, ts.server.tls_addr().unwrap().port());
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "bridge_uac.xml", &fourteen).run()).await.unwrap();
    assert_eq!(code, 0, "caller (UDP): answered through the bridge, BYE answered:\n{log}");
    let seen = centre.await.unwrap().expect("the sips: destination's TLS connection carried the call");
    let methods: Vec<&str> = seen.iter().map(|q| q.method().as_str()).collect();
    assert_eq!(methods, ["INVITE", "ACK", "BYE"], "{seen:?}");
    for q in &seen {
        assert_eq!(q.top_via().unwrap().transport, Transport::Tls, "{q:?}");
    }
    assert_eq!(
        header_of(&seen[0], "Contact").as_deref(),
        Some(format!("<sips:veertien@127.0.0.1:{tls_port}>").as_str()),
        "a request to a sips: URI carries a sips: Contact: {:?}",
        seen[0]
    );
    trunk.set_nonblocking(true).unwrap();
    assert!(trunk.recv_from(&mut [0u8; 2048]).is_err(), "nothing of the sips: call went to the trunk over UDP");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
}

/// Without `[trunk] tls_ca` no destination's certificate can be verified, so a `sips:`
/// destination could never be called: start-up is refused, naming the municipality's settings
/// key, the destination and the config key, instead of failing its calls.
#[tokio::test]
async fn a_sips_destination_without_a_trunk_ca_stops_start_up() {
    let (_, cbs) = lone_municipality();
    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    c.plan.settings = Some(settings_file(dir.path(), &cbs, "sips:kcc@192.0.2.7"));
    c.trunk.outbound = Some("127.0.0.1:5070".parse().unwrap());
    let e = veertien_server::Server::start(c, false, None).await.err().expect("start-up refused").to_string();
    for part in ["settings.toml", &format!("[municipality.{cbs}]"), "destination = \"sips:kcc@192.0.2.7\"", "trunk.tls_ca"] {
        assert!(e.contains(part), "{part} missing from: {e}");
    }
}

/// A settings change (SIGHUP reload, or a save in the portal) that would add a `sips:`
/// destination this server cannot call is refused with the reason, and the running settings
/// stay in force.
#[test]
fn a_sips_destination_without_a_trunk_ca_is_refused_on_reload_and_save() {
    use veertien_core::settings::{Destination, Overflow};
    let (_, cbs) = lone_municipality();
    let dir = tempfile::tempdir().unwrap();
    let path = settings_file(dir.path(), &cbs, "sip:kcc@192.0.2.7");
    let routing = veertien_server::Routing::load(None, Some(&path)).unwrap();
    let trunk = veertien_server::Config::default().trunk;
    assert!(trunk.tls_ca.is_none());
    routing.guard(Arc::new(move |uri: &str| trunk.destination_refusal(uri))).expect("a sip: destination is fine");
    settings_file(dir.path(), &cbs, "sips:kcc@192.0.2.7");
    let e = routing.reload().expect_err("reload refused").to_string();
    assert!(e.contains("sips:kcc@192.0.2.7") && e.contains("trunk.tls_ca"), "{e}");
    let snap = routing.snapshot();
    assert_eq!(snap.version, 1, "the running settings stay");
    let id = snap.plan.by_cbs(&cbs).unwrap();
    assert_eq!(snap.settings.destination_uri(id), "sip:kcc@192.0.2.7");

    // The portal's save: the overflow field is named.
    let mut ms = snap.settings.get(id).clone();
    ms.overflow = Some(Overflow { destination: Destination::Sip("sip:partner@192.0.2.8;transport=tls".into()), no_answer_secs: 20 });
    let r = routing.check_municipality(id, &ms).expect_err("a TLS overflow without a CA is refused");
    assert_eq!(r.form_field(), "overflow_destination", "{r}");
    assert!(r.reason.contains("trunk.tls_ca"), "{r}");
    // A document saved in the portal while a CA was configured, applied at start-up: the
    // municipality keeps the settings it had.
    routing.set_settings(snap.settings.with(id, ms));
    assert!(routing.snapshot().settings.get(id).overflow.is_none(), "the TLS overflow is not applied");
}

// ---- certificates naming a DNS name ------------------------------------------------------------

/// A certificate naming only the DNS name `name` (no IP address), as (PEM, DER, PKCS#8 key DER).
fn dns_certificate(name: &str) -> (String, CertificateDer<'static>, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    (ck.cert.pem(), ck.cert.der().clone(), ck.key_pair.serialize_der())
}

/// A destination reached by IP address whose certificate names only a DNS name (an SBC's):
/// with `[trunk] tls_server_name` set to that name the call goes through over TLS; with
/// another name, the handshake fails, the destination is passed with the reason, and no
/// request reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_naming_a_dns_name_is_verified_against_tls_server_name() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    for (configured, answered) in [("kcc.gemeente.test", true), ("elders.gemeente.test", false)] {
        let (pem, der, key) = dns_certificate("kcc.gemeente.test");
        let (kcc, centre) = tls_contact_centre(der, key).await;
        let ca = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca.path(), pem).unwrap();
        let ca_path = ca.path().to_path_buf();
        let (ts, _) = tls_server_bridging(&cbs, &format!("sip:kcc@{kcc};transport=tls"), kcc, |c| {
            c.trunk.tls_ca = Some(ca_path);
            c.trunk.tls_server_name = Some(configured.to_owned());
        })
        .await;
        let (code, log, seen, recs) = bridged_call(ts, &fourteen, centre).await;
        if answered {
            assert_eq!(code, 0, "caller: answered over TLS with the certificate verified for {configured}:\n{log}");
            let methods: Vec<String> = seen.expect("the call reached the destination").iter().map(|q| q.method().as_str().to_owned()).collect();
            assert_eq!(methods, ["INVITE", "ACK", "BYE"]);
            assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
        } else {
            assert_ne!(code, 0, "a certificate not naming {configured} must not be accepted:\n{log}");
            assert!(seen.expect_err("no request reached the destination").contains("handshake"));
            assert_eq!(recs[0].outcome, Some(Outcome::Unreachable), "{:?}", recs[0]);
            let detail = recs[0].route_steps.value()[0]["detail"].as_str().unwrap_or_default().to_owned();
            assert!(detail.contains("TLS handshake with the destination failed") && detail.contains("certificate"), "{detail}");
        }
    }
}

/// One SIPp call bridged by `ts` to the contact centre `centre`: the caller's exit code and log,
/// what the centre saw, and the server's single call record.
async fn bridged_call<T: Send + 'static>(
    ts: TestServer,
    fourteen: &str,
    centre: tokio::task::JoinHandle<T>,
) -> (i32, String, T, Vec<veertien_store::CallRecord>) {
    let (udp, number) = (ts.udp, fourteen.to_owned());
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "bridge_uac.xml", &number).run()).await.unwrap();
    let seen = centre.await.unwrap();
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    (code, log, seen, recs)
}

// ---- mutual TLS towards destinations -----------------------------------------------------------

/// A contact centre over TLS (certificate for 127.0.0.1) that demands a client certificate
/// issued by (here: equal to) `client_ca`; otherwise as [`tls_contact_centre`].
async fn mtls_contact_centre(
    client_ca: CertificateDer<'static>,
) -> (SocketAddr, String, tokio::task::JoinHandle<Result<Vec<Request>, String>>) {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let (pem, der, key) = ip_certificate();
    let mut roots = RootCertStore::empty();
    roots.add(client_ca).unwrap();
    let verifier = tokio_rustls::rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![der], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let tls = acceptor.accept(tcp).await.map_err(|e| format!("handshake: {e}"))?;
        serve_sip(tls, 200, format!("sip:kcc@{addr};transport=tls"), Arc::new(tokio::sync::Notify::new())).await
    });
    (addr, pem, task)
}

/// A destination that demands a client certificate (mutual TLS): with `[trunk] tls_cert` and
/// `tls_key` the platform presents its certificate and the call goes through; without them the
/// destination refuses the handshake, no request reaches it, and the route step is unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_demanding_a_client_certificate_gets_ours() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let ours = rcgen::generate_simple_self_signed(vec!["veertien.gemeente.test".to_owned()]).unwrap();
    for with_certificate in [true, false] {
        let (kcc, server_pem, centre) = mtls_contact_centre(ours.cert.der().clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = (dir.path().join("ca.pem"), dir.path().join("client.crt"), dir.path().join("client.key"));
        std::fs::write(&ca, server_pem).unwrap();
        std::fs::write(&cert, ours.cert.pem()).unwrap();
        std::fs::write(&key, ours.key_pair.serialize_pem()).unwrap();
        let (ts, _) = tls_server_bridging(&cbs, &format!("sip:kcc@{kcc};transport=tls"), kcc, |c| {
            c.trunk.tls_ca = Some(ca);
            if with_certificate {
                c.trunk.tls_cert = Some(cert);
                c.trunk.tls_key = Some(key);
            }
        })
        .await;
        let (code, log, seen, recs) = bridged_call(ts, &fourteen, centre).await;
        if with_certificate {
            assert_eq!(code, 0, "caller: answered over mutual TLS:\n{log}");
            let methods: Vec<String> = seen.expect("our certificate was accepted").iter().map(|q| q.method().as_str().to_owned()).collect();
            assert_eq!(methods, ["INVITE", "ACK", "BYE"]);
            assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
        } else {
            assert_ne!(code, 0, "without a client certificate the call must not reach the destination:\n{log}");
            let refused = seen.expect_err("the destination refused the handshake");
            assert!(refused.contains("handshake"), "{refused}");
            assert_eq!(recs[0].outcome, Some(Outcome::Unreachable), "{:?}", recs[0]);
        }
    }
}

#[tokio::test]
async fn an_unreadable_client_key_stops_start_up_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, _, _) = ip_certificate();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();
    let cert = dir.path().join("client.crt");
    std::fs::write(&cert, &pem).unwrap();
    let mut c = test_config(dir.path());
    c.trunk.outbound = Some("127.0.0.1:5070".parse().unwrap());
    c.trunk.tls_ca = Some(ca);
    c.trunk.tls_cert = Some(cert);
    c.trunk.tls_key = Some(dir.path().join("missing-client.key"));
    let e = veertien_server::Server::start(c, false, None).await.err().expect("start-up refused").to_string();
    assert!(e.contains("missing-client.key"), "{e}");
}

// ---- the municipality's requests over the connection we opened ---------------------------------

/// What a [`tls_front`] carried on the one TLS connection the platform opened to it.
#[derive(Debug)]
struct FrontLog {
    /// Our end of that connection, as the municipality sees it.
    peer: SocketAddr,
    /// Every message the platform sent on it, in order.
    from_us: Vec<Message>,
    /// Every message the municipality sent back on it.
    to_us: Vec<Message>,
}

/// TLS in front of a SIPp contact centre over TCP, the way an SBC terminates TLS for a PBX
/// (SIPp here is built without TLS): takes one TLS connection on `listener` with `cert` and
/// carries its bytes to and from SIPp at `sipp` on one TCP connection, so everything SIPp sends,
/// its requests included, goes back on the connection the platform opened. Ends when either
/// side closes it.
fn tls_front(
    listener: tokio::net::TcpListener,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    sipp: SocketAddr,
) -> tokio::task::JoinHandle<Result<FrontLog, String>> {
    let acceptor = acceptor(cert, key);
    tokio::spawn(async move {
        let (tcp, peer) = match tokio::time::timeout(Duration::from_secs(20), listener.accept()).await {
            Ok(r) => r.map_err(|e| e.to_string())?,
            Err(_) => return Err("the platform opened no connection".into()),
        };
        let mut tls = acceptor.accept(tcp).await.map_err(|e| format!("handshake: {e}"))?;
        let mut pbx = TcpStream::connect(sipp).await.map_err(|e| format!("SIPp over TCP: {e}"))?;
        let (mut ours, mut theirs) = (Framer::new(65_535), Framer::new(65_535));
        let (mut a, mut b) = (vec![0u8; 16_384], vec![0u8; 16_384]);
        let mut log = FrontLog { peer, from_us: Vec::new(), to_us: Vec::new() };
        loop {
            tokio::select! {
                r = tls.read(&mut a) => {
                    let n = r.map_err(|e| format!("reading the platform: {e}"))?;
                    if n == 0 { break }
                    ours.push(&a[..n]).map_err(|e| e.to_string())?;
                    while let Some(m) = ours.next_message().map_err(|e| e.to_string())? {
                        log.from_us.push(m);
                    }
                    pbx.write_all(&a[..n]).await.map_err(|e| e.to_string())?;
                }
                r = pbx.read(&mut b) => {
                    let n = r.map_err(|e| format!("reading SIPp: {e}"))?;
                    if n == 0 { break }
                    theirs.push(&b[..n]).map_err(|e| e.to_string())?;
                    while let Some(m) = theirs.next_message().map_err(|e| e.to_string())? {
                        log.to_us.push(m);
                    }
                    tls.write_all(&b[..n]).await.map_err(|e| e.to_string())?;
                    tls.flush().await.map_err(|e| e.to_string())?;
                }
                _ = tokio::time::sleep(Duration::from_secs(30)) => return Err(format!("nothing for 30 s: {log:?}")),
            }
        }
        Ok(log)
    })
}

/// SIPp as a municipality's PBX over TCP (`-t t1`), with more SIPp arguments in `extra`.
struct PbxOverTcp {
    child: Option<std::process::Child>,
    addr: SocketAddr,
}

impl PbxOverTcp {
    fn start(scenario_file: &str, extra: &[&str]) -> PbxOverTcp {
        let port = free_udp_port();
        let child = std::process::Command::new("sipp")
            .args(["-t", "t1", "-sf", scenario(scenario_file).to_str().unwrap()])
            .args(extra)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &free_media_port().to_string()])
            .args(["-m", "1", "-rtp_echo", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sipp runs (install the Debian package sip-tester)");
        PbxOverTcp { child: Some(child), addr: SocketAddr::from(([127, 0, 0, 1], port)) }
    }

    /// Waits for SIPp's one call to end: (exit code, the end of its output).
    fn finish(mut self, within: Duration) -> (i32, String) {
        let mut child = self.child.take().unwrap();
        let deadline = std::time::Instant::now() + within;
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let lines: Vec<&str> = text.lines().collect();
        (out.status.code().unwrap_or(-1), lines[lines.len().saturating_sub(60)..].join("\n"))
    }
}

impl Drop for PbxOverTcp {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether a Via carries the `alias` parameter (RFC 5923).
fn has_alias(via: &[u8]) -> bool {
    via.split(|&b| b == b';').skip(1).any(|p| p.trim_ascii().eq_ignore_ascii_case(b"alias"))
}

/// A TCP listener and a UDP socket on one loopback port.
async fn tcp_and_udp_port() -> (tokio::net::TcpListener, std::net::UdpSocket) {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
            return (tcp, udp);
        }
    }
}

/// A municipality reached over TLS (SIPp behind [`tls_front`]) that refreshes the session with
/// a re-INVITE and then hangs up, for a `sips:` destination and a `;transport=tls` one, with our
/// TLS listener (`[sip] tls`) and without one. What it receives says TLS and names an address
/// that reaches us over TLS: the Via `SIP/2.0/TLS` and the Contact of our INVITE and of our 200 to
/// its re-INVITE name our TLS listener, or without one our end of this very connection, and the
/// Contact is `sips:` for a `sips:` destination (RFC 3261 8.1.1.8), else has `;transport=tls`;
/// the Via offers the connection for reuse (`;alias`, RFC 5923). Its BYE comes back on the connection we opened and ends the call on both legs: the caller
/// (SIPp over UDP) gets our BYE and the municipality our 200; nothing went over UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_municipality_over_tls_hangs_up_on_the_connection_we_opened() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    for (destination_kind, with_listener) in [("sips", false), ("sips", true), ("transport=tls", false)] {
        let case = format!("{destination_kind} destination, {} TLS listener", if with_listener { "with a" } else { "without" });
        let (pem, der, key) = ip_certificate();
        let (front_listener, udp_watch) = tcp_and_udp_port().await;
        let front = front_listener.local_addr().unwrap();
        let destination =
            if destination_kind == "sips" { format!("sips:kcc@{front}") } else { format!("sip:kcc@{front};transport=tls") };
        let front_addr = front.to_string();
        let kcc = PbxOverTcp::start("uas_tls_answer_then_bye.xml", &["-key", "kcc_contact", &destination, "-key", "kcc_via", &front_addr]);
        let log = tls_front(front_listener, der, key, kcc.addr);
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        // The outbound trunk is the front's UDP port too: nothing may arrive there.
        let (ts, _) = tls_server_bridging(&cbs, &destination, front, |c| {
            c.trunk.tls_ca = Some(ca);
            if !with_listener {
                c.sip.tls = None;
            }
        })
        .await;
        assert_eq!(ts.server.tls_addr().is_some(), with_listener);
        let udp = ts.udp;
        let number = fourteen.clone();
        let caller = tokio::task::spawn_blocking(move || Uac::new(udp, "bridge_uac_callee_hangs_up.xml", &number).run());
        let (code, out) = tokio::task::spawn_blocking(move || kcc.finish(Duration::from_secs(30))).await.unwrap();
        assert_eq!(code, 0, "{case}: the municipality's INVITE, re-INVITE and BYE all answered as it expects:\n{out}");
        let (code, out) = caller.await.unwrap();
        assert_eq!(code, 0, "{case}: the caller got our BYE after the municipality hung up:\n{out}");
        let log = log.await.unwrap().unwrap_or_else(|e| panic!("{case}: {e}"));

        // Where the municipality's requests in this dialog may go: our listener, else our end
        // of this connection.
        let port = ts.server.tls_addr().map_or(log.peer.port(), |a| a.port());
        let contact = if destination_kind == "sips" {
            format!("<sips:veertien@127.0.0.1:{port}>")
        } else {
            format!("<sip:veertien@127.0.0.1:{port};transport=tls>")
        };
        let ours: Vec<&Request> = log.from_us.iter().filter_map(|m| if let Message::Request(q) = m { Some(q) } else { None }).collect();
        let methods: Vec<&str> = ours.iter().map(|q| q.method().as_str()).collect();
        assert_eq!(methods, ["INVITE", "ACK"], "{case}: {:?}", log.from_us);
        for q in &ours {
            let via = q.top_via().unwrap();
            assert_eq!(via.transport, Transport::Tls, "{case}: {q:?}");
            assert_eq!((&via.host[..], via.port), (&b"127.0.0.1"[..], Some(port)), "{case}: our Via names where TLS reaches us: {q:?}");
            assert!(has_alias(&via.raw), "{case}: our Via offers the connection we opened for reuse (RFC 5923): {q:?}");
        }
        assert_eq!(header_of(ours[0], "Contact").as_deref(), Some(contact.as_str()), "{case}: {:?}", ours[0]);
        let refresh = log
            .from_us
            .iter()
            .find_map(|m| match m {
                Message::Response(r) if r.cseq().is_some_and(|c| c.seq == 2 && c.method == Method::Invite) => Some(r),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{case}: no answer to the re-INVITE on the connection: {:?}", log.from_us));
        assert_eq!(refresh.status(), 200, "{case}: {refresh:?}");
        assert_eq!(header(refresh, "Contact").as_deref(), Some(contact.as_str()), "{case}: the session refresh keeps the dialog on TLS: {refresh:?}");
        let bye_ok = log.from_us.iter().any(|m| matches!(m, Message::Response(r) if r.status() == 200 && r.cseq().is_some_and(|c| c.method == Method::Bye)));
        assert!(bye_ok, "{case}: the municipality's BYE was answered on the connection: {:?}", log.from_us);
        let theirs: Vec<&str> =
            log.to_us.iter().filter_map(|m| if let Message::Request(q) = m { Some(q.method().as_str()) } else { None }).collect();
        assert_eq!(theirs, ["INVITE", "ACK", "BYE"], "{case}: the municipality's requests came on our connection");

        let layer = ts.server.engine().call_layer().unwrap();
        assert_eq!(layer.metrics.tcp_dials.load(std::sync::atomic::Ordering::Relaxed), 1, "{case}: one connection for the call");
        udp_watch.set_nonblocking(true).unwrap();
        assert!(udp_watch.recv_from(&mut [0u8; 2048]).is_err(), "{case}: nothing of the call went over UDP");
        let recs = records(ts).await;
        assert_eq!(recs.len(), 1, "{case}: {recs:?}");
        assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{case}: {:?}", recs[0]);
    }
}
