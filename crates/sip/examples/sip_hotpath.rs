//! Runs one hot-path operation N times, for `perf stat` (cycles and instructions per
//! operation are far less sensitive to a shared, loaded machine than wall-clock time):
//!
//! ```text
//! cargo build --release -p veertien-sip --example sip_hotpath
//! perf stat -e cycles,instructions target/release/examples/sip_hotpath parse 1000000
//! ```
//! Operations: `parse` (parse + validate an INVITE), `build302`, `round` (INVITE → 302 → ACK
//! through the transaction table, including parsing both requests), `none` (loop overhead).

use std::hint::black_box;
use std::time::{Duration, Instant};

use veertien_sip::transaction::{Action, Config, Peer, Table};
use veertien_sip::{Message, Response, Transport, Uri, validate_request};

include!("../benches/support/messages.rs");

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_else(|| "parse".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let target = Uri::parse("sip:+31205551234@gemeente-amsterdam.example.nl;user=phone").unwrap();
    let Message::Request(inv) = Message::parse(INVITE.as_bytes()).unwrap() else { unreachable!() };
    let peer = Peer { addr: "192.0.2.10:5060".parse().unwrap(), transport: Transport::Udp };
    let mut cfg = Config::with_capacity(1024);
    cfg.trying_delay = None;
    let mut table = Table::new(cfg);
    let mut now = Instant::now();
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "parse" => {
                let Message::Request(r) = Message::parse(black_box(INVITE.as_bytes())).unwrap() else { unreachable!() };
                validate_request(&r).unwrap();
                black_box(r);
            }
            "build302" => {
                let resp = Response::builder(black_box(&inv), 302).to_tag("vt-1").contact(&target).build();
                black_box(resp.to_bytes());
            }
            "round" => {
                now += Duration::from_secs(6);
                table.on_timer(now);
                while table.poll_action().is_some() {}
                let Message::Request(r) = Message::parse(INVITE.as_bytes()).unwrap() else { unreachable!() };
                validate_request(&r).unwrap();
                let resp = Response::builder(&r, 302).to_tag("vt-1").contact(&target).build();
                table.on_request(r, peer, now);
                let mut tx = None;
                while let Some(a) = table.poll_action() {
                    if let Action::Request { tx: t, .. } = a {
                        tx = Some(t);
                    }
                }
                table.respond(tx.unwrap(), resp, now).unwrap();
                while let Some(a) = table.poll_action() {
                    black_box(a);
                }
                let Message::Request(ack) = Message::parse(ACK.as_bytes()).unwrap() else { unreachable!() };
                table.on_request(ack, peer, now);
                while table.poll_action().is_some() {}
            }
            "none" => {
                black_box(&inv);
            }
            other => panic!("unknown operation {other}"),
        }
    }
    let per = started.elapsed().as_nanos() as f64 / n as f64;
    eprintln!("{op}: {n} iterations, {per:.0} ns/op wall clock");
}
