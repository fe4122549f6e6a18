//! SIP over TLS (`[sip] tls`, optional in issue 3): a real TLS client (tokio-rustls, trusting
//! only the test's self-signed certificate from rcgen) talks to the in-process server. SIPp on
//! this machine is built without TLS (`-t l1` is not offered), hence the Rust client.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use veertien_sip::{Message, Response, tcp::Framer};

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

async fn next_response<S: AsyncReadExt + Unpin>(stream: &mut S, framer: &mut Framer) -> Response {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(Message::Response(r)) = framer.next_message().expect("the server's messages frame and parse") {
            return r;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("a response within 5 s").unwrap();
        assert!(n > 0, "the server closed the TLS connection");
        framer.push(&buf[..n]).unwrap();
    }
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

    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let client = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("handshake with our certificate");
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
