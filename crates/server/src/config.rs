//! `veertien serve` configuration: one TOML file, every key optional.
//!
//! Every section and key has a default that gives a working platform on loopback, so
//! `veertien serve` without a file starts. Unknown keys are rejected (a typo must not
//! silently fall back to a default), and every validation error names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The toml/serde message already names the key and the line.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Written into every call record so records from several nodes can be told apart.
    pub node_id: String,
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub store: StoreConfig,
    pub plan: PlanConfig,
    pub trunk: TrunkConfig,
    pub rtp: RtpConfig,
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UntrustedPolicy {
    /// Answer 403 Forbidden: the peer learns it is not configured (friendlier for carriers
    /// during turn-up).
    Reject,
    /// Send nothing: gives scanners no signal and costs no outgoing packet.
    Drop,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ContactScheme {
    /// `tel:+31201234567` — what most carriers expect in a 302 towards the PSTN.
    Tel,
    /// `sip:+31201234567@<redirect_host>;user=phone`.
    Sip,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen address; port 0 picks a free port (tests).
    pub udp: Option<SocketAddr>,
    /// TCP listen address; port 0 picks a free port.
    pub tcp: Option<SocketAddr>,
    /// Number of UDP receive loops sharing the socket.
    pub udp_workers: usize,
    pub tcp_max_connections: usize,
    pub tcp_idle_timeout_secs: u64,
    /// Largest SIP message accepted (bytes); longer TCP messages close the connection.
    pub max_message_bytes: usize,
    /// Peers allowed to send calls. Default: loopback only.
    pub trusted_peers: Vec<IpNet>,
    pub untrusted: UntrustedPolicy,
    /// Sustained requests per second allowed per source IP.
    pub rate_limit_per_source: u32,
    /// Burst size of the per-source token bucket.
    pub rate_burst: u32,
    /// Calls in progress (INVITE server transactions not yet completed + bridged calls).
    pub max_concurrent_calls: usize,
    /// Bound of the transaction table; new INVITEs beyond it get 503.
    pub transaction_table_size: usize,
    /// Seconds put in Retry-After when shedding load.
    pub retry_after_secs: u32,
    pub contact_scheme: ContactScheme,
    /// Host part used when `contact_scheme = "sip"`.
    pub redirect_host: String,
    /// Add a Diversion header (RFC 5806) to 302s naming the dialled 14-number.
    pub diversion: bool,
    /// Value of the Server / User-Agent header.
    pub server_header: String,
    /// Send UDP responses to the packet's source address and port whatever the Via says
    /// (like Kamailio's `force_rport()`): for carriers behind NAT that do not ask for rport.
    pub respond_to_source: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Portal/API listen address (the web crate mounts its router here).
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file; its directory is created when missing.
    pub path: PathBuf,
    /// Bound of the in-memory record queue in front of the database writer.
    pub record_queue: usize,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PlanConfig {
    /// Directory with the number plan CSV files; default: the plan built into the binary.
    pub dir: Option<PathBuf>,
    /// Per-municipality settings file (TOML); reloaded on SIGHUP.
    pub settings: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkConfig {
    /// Outbound trunk for bridged calls (`host:port`); without it, bridge decisions fall back
    /// to redirect.
    pub outbound: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    pub port_min: u16,
    pub port_max: u16,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long calls in progress may continue after SIGTERM.
    pub grace_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: "veertien-1".into(),
            sip: SipConfig::default(),
            http: HttpConfig::default(),
            store: StoreConfig::default(),
            plan: PlanConfig::default(),
            trunk: TrunkConfig::default(),
            rtp: RtpConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            udp_workers: 2,
            tcp_max_connections: 1024,
            tcp_idle_timeout_secs: 60,
            max_message_bytes: 65_535,
            trusted_peers: vec![
                "127.0.0.0/8".parse().expect("literal"),
                "::1/128".parse().expect("literal"),
            ],
            untrusted: UntrustedPolicy::Reject,
            rate_limit_per_source: 5_000,
            rate_burst: 10_000,
            max_concurrent_calls: 20_000,
            transaction_table_size: 65_536,
            retry_after_secs: 5,
            contact_scheme: ContactScheme::Tel,
            redirect_host: "127.0.0.1".into(),
            diversion: true,
            server_header: concat!("veertien/", env!("CARGO_PKG_VERSION")).into(),
            respond_to_source: false,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("var/veertien.db"),
            record_queue: 65_536,
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            port_min: 20_000,
            port_max: 29_999,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_secs: 30 }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text (errors carry an empty path).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                reason: reason.into(),
            }
        }
        let s = &self.sip;
        if self.node_id.trim().is_empty() {
            return Err(invalid("node_id", "must not be empty"));
        }
        if s.udp.is_none() && s.tcp.is_none() {
            return Err(invalid("sip.udp", "at least one of sip.udp and sip.tcp must be set"));
        }
        if s.udp_workers == 0 || s.udp_workers > 64 {
            return Err(invalid("sip.udp_workers", "must be between 1 and 64"));
        }
        if s.tcp_max_connections == 0 {
            return Err(invalid("sip.tcp_max_connections", "must be at least 1"));
        }
        if s.tcp_idle_timeout_secs == 0 {
            return Err(invalid("sip.tcp_idle_timeout_secs", "must be at least 1"));
        }
        if !(1_024..=65_535).contains(&s.max_message_bytes) {
            return Err(invalid("sip.max_message_bytes", "must be between 1024 and 65535"));
        }
        if s.rate_limit_per_source == 0 {
            return Err(invalid("sip.rate_limit_per_source", "must be at least 1"));
        }
        if s.rate_burst == 0 {
            return Err(invalid("sip.rate_burst", "must be at least 1"));
        }
        if s.max_concurrent_calls == 0 {
            return Err(invalid("sip.max_concurrent_calls", "must be at least 1"));
        }
        if s.transaction_table_size < 16 {
            return Err(invalid("sip.transaction_table_size", "must be at least 16"));
        }
        if s.retry_after_secs == 0 || s.retry_after_secs > 3_600 {
            return Err(invalid("sip.retry_after_secs", "must be between 1 and 3600"));
        }
        if s.contact_scheme == ContactScheme::Sip
            && (s.redirect_host.is_empty() || s.redirect_host.contains(|c: char| c.is_whitespace() || c == '@' || c == '>'))
        {
            return Err(invalid("sip.redirect_host", "must be a host name or address"));
        }
        if s.server_header.is_empty() || s.server_header.contains(['\r', '\n']) {
            return Err(invalid("sip.server_header", "must be one non-empty line"));
        }
        if self.store.record_queue == 0 {
            return Err(invalid("store.record_queue", "must be at least 1"));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "must not be empty"));
        }
        if self.rtp.port_min == 0 || self.rtp.port_min >= self.rtp.port_max {
            return Err(invalid("rtp.port_min", "must be non-zero and below rtp.port_max"));
        }
        if self.shutdown.grace_secs > 3_600 {
            return Err(invalid("shutdown.grace_secs", "must be at most 3600"));
        }
        Ok(())
    }

    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.sip.tcp_idle_timeout_secs)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.shutdown.grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_working_loopback_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.sip.udp.unwrap().to_string(), "127.0.0.1:5060");
        assert_eq!(c.sip.tcp.unwrap().to_string(), "127.0.0.1:5060");
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert!(c.sip.trusted_peers.iter().any(|n| n.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap())));
    }

    #[test]
    fn keys_override_defaults() {
        let c = Config::parse(
            r#"
node_id = "ams-2"
[sip]
udp = "127.0.0.1:0"
trusted_peers = ["10.1.0.0/16"]
untrusted = "drop"
contact_scheme = "sip"
redirect_host = "trunk.example.nl"
[store]
path = "/tmp/x.db"
"#,
        )
        .unwrap();
        assert_eq!(c.node_id, "ams-2");
        assert_eq!(c.sip.untrusted, UntrustedPolicy::Drop);
        assert_eq!(c.sip.contact_scheme, ContactScheme::Sip);
        assert_eq!(c.sip.trusted_peers.len(), 1);
        assert_eq!(c.store.path, PathBuf::from("/tmp/x.db"));
        // Untouched keys keep their defaults.
        assert_eq!(c.sip.tcp, SipConfig::default().tcp);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[sip]\nudp_port = 5060\n").unwrap_err().to_string();
        assert!(e.contains("udp_port"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_line() {
        let e = Config::parse("[sip]\n\nmax_concurrent_calls = \"many\"\n").unwrap_err().to_string();
        assert!(e.contains("max_concurrent_calls") || e.contains("line 3"), "{e}");
    }

    #[test]
    fn bad_cidr_is_rejected() {
        let e = Config::parse("[sip]\ntrusted_peers = [\"10.0.0.0/99\"]\n").unwrap_err().to_string();
        assert!(e.contains("trusted_peers"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let e = Config::parse("[rtp]\nport_min = 30000\nport_max = 20000\n").unwrap_err().to_string();
        assert!(e.contains("rtp.port_min"), "{e}");
        let e = Config::parse("[sip]\nudp_workers = 0\n").unwrap_err().to_string();
        assert!(e.contains("sip.udp_workers"), "{e}");
    }
}
