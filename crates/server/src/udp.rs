//! The SIP UDP socket and the threads that receive on it.
//!
//! Receiving is done by plain threads blocked in `recvfrom`, not by tokio tasks: a datagram
//! then costs the kernel one wake-up of one waiting thread, which parses, decides and
//! answers it inline (the redirect path never leaves the thread). Through tokio the same
//! datagram woke the reactor, which woke a worker, which polled the task — at 1 000 calls/s a
//! profile put a quarter of the CPU in those wake-ups and context switches
//! (docs/PERFORMANCE-sip-load.md). Several threads may wait on the socket; Linux wakes one per
//! datagram.
//!
//! The socket stays blocking for the receivers; every send passes `MSG_DONTWAIT`, so a send
//! from a tokio task never blocks a worker. A datagram the kernel cannot queue (send buffer
//! full: the box is past overload) is dropped and counted, as the network would; SIP's
//! retransmissions cover it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, Transport};

/// How often a blocked receiver looks whether the service is stopping.
const STOP_CHECK: Duration = Duration::from_millis(100);

pub struct SipUdp {
    sock: std::net::UdpSocket,
    send_dropped: AtomicU64,
}

impl SipUdp {
    pub fn bind(addr: SocketAddr) -> io::Result<SipUdp> {
        let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        // A large receive buffer absorbs bursts; beyond it the kernel drops, which is the
        // bounded queue in front of the receivers (SIP retransmits).
        let _ = sock.set_recv_buffer_size(4 << 20);
        let _ = sock.set_send_buffer_size(4 << 20);
        sock.bind(&addr.into())?;
        let sock: std::net::UdpSocket = sock.into();
        sock.set_read_timeout(Some(STOP_CHECK))?;
        Ok(SipUdp { sock, send_dropped: AtomicU64::new(0) })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sends without ever blocking the caller.
    pub fn send_to(&self, bytes: &[u8], target: SocketAddr) -> io::Result<usize> {
        let r = SockRef::from(&self.sock).send_to_with_flags(bytes, &target.into(), libc::MSG_DONTWAIT);
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.send_dropped.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Datagrams dropped because the kernel's send buffer was full.
    pub fn send_dropped(&self) -> u64 {
        self.send_dropped.load(Ordering::Relaxed)
    }
}

/// Starts `n` receiver threads. They run the engine inside `runtime`, so a call the engine
/// hands to a task (bridge, IVR) is spawned there; they end within [`STOP_CHECK`] of `stop`.
pub fn spawn_receivers(
    sock: Arc<SipUdp>,
    engine: Arc<Engine>,
    stop: CancellationToken,
    n: usize,
    runtime: tokio::runtime::Handle,
) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
    (0..n)
        .map(|i| {
            let (sock, engine, stop, runtime) = (sock.clone(), engine.clone(), stop.clone(), runtime.clone());
            std::thread::Builder::new().name(format!("sip-udp-{i}")).spawn(move || {
                let _in_runtime = runtime.enter();
                receive(&sock, &engine, &stop);
            })
        })
        .collect()
}

fn receive(sock: &SipUdp, engine: &Engine, stop: &CancellationToken) {
    let mut buf = vec![0u8; 65_535];
    while !stop.is_cancelled() {
        let (n, src) = match sock.sock.recv_from(&mut buf) {
            Ok(v) => v,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {
                continue;
            }
            // ICMP port unreachable from an earlier send surfaces here on Linux; not fatal.
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive");
                continue;
            }
        };
        if n == 0 {
            continue;
        }
        let data = Bytes::copy_from_slice(&buf[..n]);
        if let Some(out) = engine.handle(data, src, Transport::Udp)
            && let Err(e) = sock.send_to(&out.bytes, out.target)
        {
            tracing::debug!(error = %e, target = %out.target, "UDP send");
        }
    }
}
