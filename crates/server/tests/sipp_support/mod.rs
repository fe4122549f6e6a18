//! What every test with a real SIP peer needs: the SIPp scenarios, free loopback ports, whether
//! a tool is installed, the tail of a peer's output. Std only, so that the tests of any crate
//! can include this file (`#[path = ".../server/tests/sipp_support/mod.rs"] mod sipp_support;`)
//! and `support` and `ivr_support` share one copy.
#![allow(dead_code)]
// `support` and `ivr_support` each include this file, so a test binary with both (tls.rs) has
// it twice; harmless for plain functions, and neither helper module needs the other.
#![allow(clippy::duplicate_mod)]

use std::path::PathBuf;
use std::process::Command;

/// A scenario of `crates/server/tests/sipp/`, from the tests of any crate of the workspace.
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/sipp").join(name)
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An even free port whose next three are free too (SIPp's RTP, RTCP and, in some versions,
/// video).
pub fn free_media_port() -> u16 {
    loop {
        let p = free_udp_port() & !1;
        if p < 60_000 && (0..4).all(|i| std::net::UdpSocket::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    }
}

pub fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// The last `n` lines of a peer's output, for an assertion message.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
