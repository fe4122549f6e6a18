//! Admission checks that run before a message is parsed: is the source a trusted peer, and
//! is it within its request budget. Both are cheap and lock-free on the hot path.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

/// The configured trusted networks.
#[derive(Debug, Clone)]
pub struct TrustList {
    nets: Vec<IpNet>,
}

impl TrustList {
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustList { nets }
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        // IPv4-mapped IPv6 sources (dual-stack sockets) must match IPv4 entries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// Per-source token bucket (GCRA via `governor`). Keys are source IPs.
pub struct SourceLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Above this many tracked sources, stale entries are pruned so a spoofed-source flood
    /// cannot grow memory without bound.
    max_tracked: usize,
}

impl SourceLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let per_second = NonZeroU32::new(per_second.max(1)).expect("max(1)");
        let burst = NonZeroU32::new(burst.max(1)).expect("max(1)");
        SourceLimiter {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            max_tracked: 100_000,
        }
    }

    /// True when the request may be processed.
    pub fn check(&self, ip: IpAddr) -> bool {
        if self.limiter.len() > self.max_tracked {
            self.prune();
        }
        self.limiter.check_key(&ip).is_ok()
    }

    /// Forgets sources whose bucket is full again; called periodically and when the map is large.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_default_is_trusted_and_others_not() {
        let t = TrustList::new(vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);
        assert!(t.is_trusted("127.0.0.1".parse().unwrap()));
        assert!(t.is_trusted("127.9.9.9".parse().unwrap()));
        assert!(t.is_trusted("::1".parse().unwrap()));
        assert!(t.is_trusted("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!t.is_trusted("10.0.0.1".parse().unwrap()));
        assert!(!t.is_trusted("::2".parse().unwrap()));
    }

    #[test]
    fn flood_from_one_source_is_limited_but_others_are_not() {
        let l = SourceLimiter::new(10, 20);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let allowed = (0..1_000).filter(|_| l.check(a)).count();
        // The burst passes (plus at most a few tokens refilled while looping), the flood does not.
        assert!((20..30).contains(&allowed), "allowed {allowed}");
        assert!(l.check(b));
    }
}
