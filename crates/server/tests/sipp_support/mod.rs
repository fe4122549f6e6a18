//! What every test with a real SIP peer needs: the SIPp scenarios, free loopback ports, whether
//! a tool is installed, the tail of a peer's output, SIPp as the carrier ([`Uac`]) and as a
//! destination that answers OPTIONS probes ([`OptionsUas`]). Std only, so that the tests of any crate
//! can include this file (`#[path = ".../server/tests/sipp_support/mod.rs"] mod sipp_support;`)
//! and `support` and `ivr_support` share one copy.
#![allow(dead_code)]
// `support` and `ivr_support` each include this file, so a test binary with both (tls.rs) has
// it twice; harmless for plain functions, and neither helper module needs the other.
#![allow(clippy::duplicate_mod)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

/// SIPp as the carrier's UAC against `server`: one call of a scenario of `tests/sipp/` to
/// `service` from free loopback ports, started at one a second, 40 s at the most, unless the
/// methods say otherwise.
pub struct Uac<'a> {
    server: SocketAddr,
    scenario: PathBuf,
    service: &'a str,
    calls: u32,
    /// `-r`; `None`: SIPp's own default.
    rate: Option<u32>,
    timeout: &'a str,
    args: Vec<&'a str>,
    dir: Option<&'a Path>,
}

impl<'a> Uac<'a> {
    pub fn new(server: SocketAddr, scenario_file: &str, service: &'a str) -> Uac<'a> {
        Uac { server, scenario: scenario(scenario_file), service, calls: 1, rate: Some(1), timeout: "40s", args: Vec::new(), dir: None }
    }

    /// `calls` calls, started at `rate` a second.
    pub fn calls(mut self, calls: u32, rate: u32) -> Self {
        (self.calls, self.rate) = (calls, Some(rate));
        self
    }

    /// No `-r`: SIPp's own default call rate (10 a second) instead of one a second.
    pub fn default_rate(mut self) -> Self {
        self.rate = None;
        self
    }

    /// Runs SIPp in `dir`, where the scenario finds the files it names (a `-inf` file, the
    /// pcap it plays).
    pub fn dir(mut self, dir: &'a Path) -> Self {
        self.dir = Some(dir);
        self
    }

    /// How long SIPp may take for all its calls (`-timeout`; running out is a failure).
    pub fn timeout(mut self, timeout: &'a str) -> Self {
        self.timeout = timeout;
        self
    }

    /// More SIPp arguments: a transport (`-t t1`), credentials (`-au`, `-ap`), `-key name value`...
    pub fn args(mut self, args: &[&'a str]) -> Self {
        self.args.extend_from_slice(args);
        self
    }

    /// Runs SIPp to its end: (exit code, output tail).
    pub fn run(self) -> (i32, String) {
        let mut sipp = Command::new("sipp");
        if let Some(dir) = self.dir {
            sipp.current_dir(dir);
        }
        sipp.arg(self.server.to_string())
            .args(&self.args)
            .arg("-sf")
            .arg(&self.scenario)
            .args(["-s", self.service, "-i", "127.0.0.1"])
            .args(["-p", &free_udp_port().to_string(), "-mp", &free_media_port().to_string()])
            .args(["-m", &self.calls.to_string()]);
        if let Some(rate) = self.rate {
            sipp.args(["-r", &rate.to_string()]);
        }
        let out = sipp
            .args(["-timeout", self.timeout, "-timeout_error", "-nostdin"])
            .output()
            .expect("sipp runs (install the Debian package sip-tester)");
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), tail(&text, 90))
    }
}

/// SIPp scenario of a municipality's destination that answers every OPTIONS probe with 200,
/// and INVITEs as `invite` says: scenario steps that end the call with `next="end"`, or `None`
/// for a destination that gets only probes.
pub fn options_uas_scenario(invite: Option<&str>) -> String {
    // With INVITEs too, a call starts with either request: the OPTIONS branch is optional.
    let (optional, invite) = match invite {
        Some(steps) => (r#" optional="true""#, steps),
        None => ("", ""),
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="municipality answering OPTIONS">
  <recv request="OPTIONS"{optional} next="options" />{invite}
  <label id="options" />
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]O[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Allow: INVITE, ACK, BYE, CANCEL, OPTIONS
      Content-Length: 0

    ]]>
  </send>
  <label id="end" />
  <nop />
</scenario>
"#
    )
}

/// A SIPp UAS on `127.0.0.1:port` playing [`options_uas_scenario`], its scenario file written
/// in `dir`; killed when dropped.
pub struct OptionsUas(Child);

impl OptionsUas {
    pub fn start(dir: &Path, port: u16, invite: Option<&str>) -> OptionsUas {
        // Named by the port: a test may run several destinations from one directory.
        let sf = dir.join(format!("options_uas_{port}.xml"));
        std::fs::write(&sf, options_uas_scenario(invite)).unwrap();
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&sf)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &free_udp_port().to_string(), "-nostdin"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp runs (install the Debian package sip-tester)");
        OptionsUas(child)
    }

    /// SIGKILL: the destination vanishes without a goodbye, as a crashed PBX does.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for OptionsUas {
    fn drop(&mut self) {
        self.kill();
    }
}
