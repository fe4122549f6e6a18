//! Shared helpers: an in-process server on free loopback ports with a temporary store, a
//! raw UDP SIP client, and real SIP peers (`peers`: SIPp as carrier or contact centre).
#![allow(dead_code)]

mod peers;
// Not every test binary uses a SIP peer.
#[allow(unused_imports)]
pub use peers::*;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UdpSocket;
use veertien_core::{DeliveryMode, MunicipalityId, Plan, Settings};
use veertien_server::{Config, Server};
use veertien_sip::{Message, Response};

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.sip.udp = Some("127.0.0.1:0".parse().unwrap());
    c.sip.tcp = Some("127.0.0.1:0".parse().unwrap());
    c.store.path = dir.join("calls.db");
    c.shutdown.grace_secs = 2;
    // Hermetic and fast: prompts synthesised into the test's own directory when a call needs
    // them, no speech model loaded (tests that want speech switch it on).
    c.ivr.prompts_dir = Some(dir.join("prompts"));
    c.ivr.speech = false;
    c
}

impl TestServer {
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_in(tempfile::tempdir().unwrap(), adjust).await
    }

    /// As [`TestServer::start`], with the store in `dir` (which may hold other test files).
    pub async fn start_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let server = Server::start(config, true, None).await.expect("server starts");
        let udp = server.udp_addr().unwrap();
        let tcp = server.tcp_addr().unwrap();
        TestServer { server, dir, udp, tcp }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("calls.db")
    }
}

pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl Client {
    pub async fn new(server: SocketAddr) -> Client {
        Client { sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(), server }
    }

    pub fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    pub async fn send(&self, msg: &[u8]) {
        self.sock.send_to(msg, self.server).await.unwrap();
    }

    /// Next response, or None after `wait`.
    pub async fn recv_within(&self, wait: Duration) -> Option<Response> {
        let mut buf = vec![0u8; 65_535];
        let (n, _) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf)).await.ok()?.unwrap();
        match Message::parse(&buf[..n]) {
            Ok(Message::Response(r)) => Some(r),
            other => panic!("server sent something that is not a response: {other:?}\n{}", String::from_utf8_lossy(&buf[..n])),
        }
    }

    /// The final response to the INVITE with Call-ID `call_id` (provisional ones skipped), or
    /// None when `wait` passes without a response. A final response of an earlier call is
    /// ACKed again and not taken for this one: after a stall the server's Timer G resends a
    /// 302 whose ACK it has not read yet, and a UAC's client transaction answers each resend
    /// with its ACK (RFC 3261 17.1.1.2).
    pub async fn final_for(&self, call_id: &str, wait: Duration) -> Option<Response> {
        loop {
            let r = self.recv_within(wait).await?;
            let answers = r.call_id().map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default();
            if answers == call_id {
                if r.status() >= 200 {
                    return Some(r);
                }
            } else if r.status() >= 200 {
                let branch = r.top_via().and_then(|v| v.branch.clone()).unwrap_or_default();
                let uri = r.to().map(|t| t.uri.to_string()).unwrap_or_default();
                let ack = ack_for(&uri, &String::from_utf8_lossy(&branch), &answers, self.port(), &to_tag(&r));
                self.send(ack.as_bytes()).await;
            }
        }
    }

    pub async fn recv(&self) -> Response {
        self.recv_within(Duration::from_secs(5)).await.expect("a response within 5 s")
    }

    /// Raw bytes of the next datagram.
    pub async fn recv_raw(&self, wait: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65_535];
        let (n, _) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf)).await.ok()?.unwrap();
        Some(buf[..n].to_vec())
    }
}

pub fn request(method: &str, uri: &str, branch: &str, call_id: &str, port: u16) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Test\" <sip:0612345678@127.0.0.1>;tag=t{branch}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:0612345678@127.0.0.1:{port}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

pub fn ack_for(uri: &str, branch: &str, call_id: &str, port: u16, to_tag: &str) -> String {
    format!(
        "ACK {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Test\" <sip:0612345678@127.0.0.1>;tag=t{branch}\r\n\
         To: <{uri}>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers().get_str(name).map(|v| String::from_utf8_lossy(v).into_owned())
}

pub fn to_tag(r: &Response) -> String {
    r.to().and_then(|t| t.tag.clone()).map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default()
}

/// A 14+ number whose area code has one municipality, delivered by redirect with a configured
/// destination under the default settings; with that municipality and its destination URI.
pub fn unique_redirect_number() -> (String, MunicipalityId, String) {
    let plan = Plan::builtin();
    let settings = Settings::defaults(plan);
    plan.area_codes()
        .iter()
        .filter(|a| a.municipalities.len() == 1)
        .find_map(|a| {
            let id = a.municipalities[0];
            let s = settings.get(id);
            (s.mode == DeliveryMode::Redirect && s.destination != veertien_core::Destination::Trunk)
                .then(|| (a.fourteen.clone(), id, settings.destination_uri(id)))
        })
        .expect("the national plan has a unique area code with a landline general number")
}

/// A shared area code (several municipalities → the caller must be asked).
pub fn shared_number() -> String {
    let plan = Plan::builtin();
    plan.area_codes().iter().find(|a| a.code == "0113").map(|a| a.fourteen.clone()).expect("0113 in plan")
}
