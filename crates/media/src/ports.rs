//! A bounded pool of UDP ports for RTP.
//!
//! Ports are even (RFC 3550 §11: RTP on even, RTCP on the next odd port, which stays
//! free for it) and are reused least-recently-released first, so a late packet of a
//! finished call is unlikely to reach the next call on the same port.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("RTP port range {0}-{1} holds no even port")]
    EmptyRange(u16, u16),
    #[error("no free RTP port: all {0} ports of the pool are in use")]
    Exhausted(usize),
    #[error("cannot bind RTP socket on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

#[derive(Debug)]
struct Inner {
    ip: IpAddr,
    free: VecDeque<u16>,
    total: usize,
}

/// Cloneable handle to the pool.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<Inner>>,
}

impl PortPool {
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Result<PortPool, PortError> {
        let free: VecDeque<u16> = range.clone().filter(|p| p % 2 == 0 && *p != 0).collect();
        if free.is_empty() {
            return Err(PortError::EmptyRange(*range.start(), *range.end()));
        }
        let total = free.len();
        Ok(PortPool { inner: Arc::new(Mutex::new(Inner { ip, free, total })) })
    }

    pub fn ip(&self) -> IpAddr {
        self.inner.lock().unwrap().ip
    }

    /// Ports not in use by this pool.
    pub fn available(&self) -> usize {
        self.inner.lock().unwrap().free.len()
    }

    pub fn capacity(&self) -> usize {
        self.inner.lock().unwrap().total
    }

    /// Binds a UDP socket on the next free port. A port taken by another program is
    /// skipped (and returned to the end of the queue). Must be called within a tokio runtime.
    pub fn bind(&self) -> Result<MediaSocket, PortError> {
        let (ip, candidates) = {
            let g = self.inner.lock().unwrap();
            (g.ip, g.free.len())
        };
        let mut last_err = None;
        for _ in 0..candidates {
            let Some(port) = self.inner.lock().unwrap().free.pop_front() else { break };
            let addr = SocketAddr::new(ip, port);
            match std::net::UdpSocket::bind(addr).and_then(|s| {
                s.set_nonblocking(true)?;
                UdpSocket::from_std(s)
            }) {
                Ok(socket) => return Ok(MediaSocket { socket, local: addr, lease: Lease { pool: self.clone(), port } }),
                Err(source) => {
                    self.inner.lock().unwrap().free.push_back(port);
                    last_err = Some(PortError::Bind { addr, source });
                }
            }
        }
        Err(last_err.unwrap_or_else(|| PortError::Exhausted(self.capacity())))
    }
}

#[derive(Debug)]
struct Lease {
    pool: PortPool,
    port: u16,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut g) = self.pool.inner.lock() {
            g.free.push_back(self.port);
        }
    }
}

/// A bound RTP socket; its port returns to the pool when dropped.
#[derive(Debug)]
pub struct MediaSocket {
    // Declared before the lease so the socket closes before the port is handed out again.
    pub(crate) socket: UdpSocket,
    local: SocketAddr,
    #[allow(dead_code)]
    lease: Lease,
}

impl MediaSocket {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn port(&self) -> u16 {
        self.local.port()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_even_ports_returned_on_drop() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41000..=41005).unwrap();
        assert_eq!(pool.capacity(), 3);
        let a = pool.bind().unwrap();
        let b = pool.bind().unwrap();
        let c = pool.bind().unwrap();
        assert!([a.port(), b.port(), c.port()].iter().all(|p| p % 2 == 0));
        assert!(matches!(pool.bind(), Err(PortError::Exhausted(3)) | Err(PortError::Bind { .. })));
        let freed = b.port();
        drop(b);
        assert_eq!(pool.available(), 1);
        let d = pool.bind().unwrap();
        assert_eq!(d.port(), freed);
        drop((a, c, d));
        assert_eq!(pool.available(), 3);
    }

    #[tokio::test]
    async fn port_held_by_someone_else_is_skipped() {
        let squatter = std::net::UdpSocket::bind("127.0.0.1:41010").unwrap();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 41010..=41012).unwrap();
        let s = pool.bind().unwrap();
        assert_eq!(s.port(), 41012);
        let e = pool.bind().unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:41010"), "{e}");
        drop(squatter);
    }

    #[test]
    fn empty_range_is_an_error() {
        assert!(matches!(PortPool::new("127.0.0.1".parse().unwrap(), 41001..=41001), Err(PortError::EmptyRange(41001, 41001))));
    }
}
