//! `veertien serve` configuration: one TOML file, every key optional.
//!
//! Every section and key has a default that gives a working platform on loopback, so
//! `veertien serve` without a file starts. Unknown keys are rejected (a typo must not
//! silently fall back to a default), and every validation error names the key.

use std::net::{IpAddr, SocketAddr};
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
    /// OPTIONS probing of the destinations of bridged calls (`[health]`).
    pub health: crate::health::HealthConfig,
    /// Incident notifications, reminders and synthetic test calls of the portal (`[notify]`).
    pub notify: NotifyConfig,
    /// The IVR for shared area codes and announcements (`[ivr]`, docs/IVR.md).
    pub ivr: IvrConfig,
}

/// `[ivr]`: calls that need a dialogue with the caller (a shared area code: "which
/// municipality?") or a spoken notice (closed, calamity, not connected) are answered by the
/// platform and run through the IVR; after the choice they are bridged (B2BUA).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IvrConfig {
    /// Off: such calls are answered 480 naming the reason, as before the IVR existed.
    pub enabled: bool,
    /// IVR calls at the same time (dialogue, message or being put through); beyond it new
    /// ones get 503 + Retry-After.
    pub max_calls: usize,
    /// Prompt audio (`veertien prompts build`); default: `[http] prompts_dir`, where the portal
    /// stores the municipalities' own recordings. Missing pieces are synthesised with
    /// espeak-ng when first needed; without espeak-ng, serve refuses to start naming them.
    pub prompts_dir: Option<PathBuf>,
    /// Use speech recognition when the model is installed (else keypad menu only).
    pub speech: bool,
    /// Model directory; default `$VEERTIEN_MODEL_DIR` or `~/.cache/veertien/whisper-base`.
    pub model_dir: Option<PathBuf>,
    /// Wait for input after a question (ms).
    pub no_input_ms: u32,
    /// Hard bound on one dialogue; then its closing message plays.
    pub max_dialogue_secs: u64,
    /// No RTP from the caller this long ends the dialogue as a hang-up.
    pub media_timeout_secs: u64,
    /// How a caller who chose a municipality in `redirect` mode is delivered: `refer` asks the
    /// caller's side to call the destination itself (RFC 3515; the platform leaves the call
    /// once the transfer succeeded, and bridges if it is refused or fails); `bridge` keeps
    /// the platform in the call. Municipalities in `bridge` mode are always bridged.
    pub transfer: Transfer,
}

/// `[ivr] transfer`: delivery after the dialogue for `redirect`-mode municipalities.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    #[default]
    Refer,
    Bridge,
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            enabled: true,
            max_calls: 200,
            prompts_dir: None,
            speech: true,
            model_dir: None,
            no_input_ms: 5_000,
            max_dialogue_secs: 180,
            media_timeout_secs: 20,
            transfer: Transfer::Refer,
        }
    }
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
    /// SIP over TLS listen address (optional; needs `tls_cert` and `tls_key`). Its connections
    /// are framed and bounded like TCP ones.
    pub tls: Option<SocketAddr>,
    /// PEM certificate chain of the TLS listener (leaf first).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS listener (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Threads receiving on the SIP UDP socket (each parses, decides and answers inline).
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
    /// Our address in Via, Contact and SDP of bridged calls; default: the UDP listen address
    /// (127.0.0.1 when that is 0.0.0.0 / ::).
    pub advertised_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Portal/API listen address (the web crate mounts its router here).
    pub listen: SocketAddr,
    /// `Secure` flag on portal cookies. Unset = automatic: on, except when `listen` is a
    /// loopback address, because `veertien serve` speaks plain HTTP and clients (curl, some
    /// browsers for 127.0.0.1) drop `Secure` cookies received over plain HTTP, which would make
    /// logging in on a development machine impossible. Behind a TLS reverse proxy on the same
    /// host (listening on loopback) set this to `true` explicitly.
    pub secure_cookies: Option<bool>,
    /// SIP hosts (e.g. `kcc.operator.nl`) that municipalities may use as destination
    /// (`sip:…@host`) besides Dutch phone numbers — the toll-fraud guard refuses every other host.
    /// Empty = only the trunk of the settings file.
    pub trunks: Vec<String>,
    /// Prompts directory shared with the IVR: uploaded welcome prompts are written to
    /// `<prompts_dir>/custom/<cbs>/welcome.wav`.
    pub prompts_dir: PathBuf,
    /// Reverse proxies (addresses/networks) whose `X-Forwarded-For` header names the client;
    /// without this, per-address login throttling behind a proxy would see only the proxy.
    pub trusted_proxies: Vec<IpNet>,
}

impl HttpConfig {
    /// The effective `Secure` cookie flag (see [`HttpConfig::secure_cookies`]).
    pub fn effective_secure_cookies(&self) -> bool {
        self.secure_cookies.unwrap_or(!self.listen.ip().is_loopback())
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file; its directory is created when missing.
    pub path: PathBuf,
    /// Bound of the in-memory record queue in front of the database writer.
    pub record_queue: usize,
    /// How long the writer gathers records after the first of a quiet spell before one
    /// transaction writes them all (ms). Records are journalled before they are queued, so this
    /// only delays when a call shows in reports; longer shares each commit (and its fsync)
    /// among more calls. 0: write each record at once.
    pub record_batch_ms: u64,
    /// Most records in one transaction. A commit writes every page it dirtied once, so a batch
    /// that spans many municipalities, numbers and callers costs per page, not per record;
    /// larger batches share those pages among more calls under load.
    pub record_batch_max: usize,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PlanConfig {
    /// Directory with the number plan CSV files; default: the plan built into the binary.
    pub dir: Option<PathBuf>,
    /// Per-municipality settings file (TOML); reloaded on SIGHUP.
    pub settings: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkConfig {
    /// Outbound trunk for bridged calls (`host:port`); without it, bridge decisions fall back
    /// to redirect. `tel:` destinations become `sip:<number>@<outbound>;user=phone` and go
    /// here, as do SIP URIs with a host name; a SIP URI with an IP address goes to that address.
    /// The trunk's address is trusted for its answers and in-dialog requests.
    pub outbound: Option<SocketAddr>,
    /// Overall limit from the caller's INVITE to an answer (all route steps together).
    pub setup_timeout_secs: u64,
    /// No-answer timeout of a route step without its own (the primary uses the municipality's
    /// overflow `no_answer_secs`).
    pub no_answer_secs: u64,
    /// A destination that sends no response at all within this time counts as unreachable
    /// and the next route step is tried.
    pub no_response_ms: u64,
    /// Hard limit on an answered call (ends calls whose BYE was lost).
    pub max_call_secs: u64,
    /// Logged when a leg sends no RTP for this long.
    pub media_timeout_secs: u64,
    /// Digest authentication per trunk (`[[trunk.auth]]`, docs/AUTH.md): INVITEs from an
    /// entry's networks must carry its credentials or get 407. Empty: address trust only.
    pub auth: Vec<crate::digest::TrunkAuth>,
    /// What a caller gets when every step of a bridged route failed (busy, no answer,
    /// unreachable): a final status (486/480, the default) or, with the IVR on, an answer
    /// and the spoken notice that the municipality cannot be reached now, then BYE.
    pub route_end: RouteEnd,
    /// Transport towards `outbound`: `udp` (default), `tcp` (one reused connection per
    /// destination) or `tls` (the same over TLS, verified against `tls_ca`). A destination URI
    /// with `;transport=tcp` or `;transport=tls` uses that whatever this says.
    pub transport: TrunkTransport,
    /// PEM file of the certificate authorities (or self-signed certificates) a destination
    /// reached over TLS must present a certificate from; the certificate must name the
    /// destination's host (its IP address, or `tls_server_name`: no DNS on the call path).
    /// Without it, settings with a destination over TLS (`sips:` or `;transport=tls`) are
    /// refused when loaded, reloaded or saved.
    pub tls_ca: Option<PathBuf>,
    /// The DNS name every destination reached over TLS must have in its certificate, instead
    /// of its IP address (destinations are reached by address, without DNS: a certificate
    /// that names only a host name, e.g. an SBC's, is verified against this name). Sent as
    /// the TLS server name (SNI) too. Needs `tls_ca`.
    pub tls_server_name: Option<String>,
    /// PEM certificate chain (leaf first) presented to destinations over TLS that ask for a
    /// client certificate (mutual TLS); with `tls_key`. Needs `tls_ca`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
}

impl TrunkConfig {
    /// Why bridged calls could never reach destination `uri` with this configuration, if so:
    /// it asks for TLS (`sips:`, which RFC 3261 26.2 makes TLS on every hop, or
    /// `;transport=tls`) and `tls_ca` is not set, so no certificate can be verified; or it is a
    /// `sips:` URI with a host name, which goes to the outbound trunk, and the trunk is not
    /// reached over TLS. Checked when settings are loaded, reloaded or saved in the portal,
    /// so the fault shows there and not on a caller's call. The reason names the key.
    pub fn destination_refusal(&self, uri: &str) -> Option<String> {
        let u = veertien_sip::Uri::parse(uri.trim()).ok()?;
        let sip = u.sip()?;
        let tls_param = u.param("transport").flatten().is_some_and(|t| t.eq_ignore_ascii_case(b"tls"));
        if !sip.secure && !tls_param {
            return None;
        }
        let asks = if sip.secure { "sips: means TLS on every hop (RFC 3261 26.2)" } else { ";transport=tls asks for TLS" };
        if self.tls_ca.is_none() {
            return Some(format!(
                "{asks}, and trunk.tls_ca is not set: the platform cannot verify a destination's certificate, so it can never call this one (set trunk.tls_ca to the PEM file of the CAs)"
            ));
        }
        let host = std::str::from_utf8(&sip.host).unwrap_or_default();
        let ip_literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
        if sip.secure && !ip_literal && self.transport != TrunkTransport::Tls {
            return Some(format!(
                "{asks}; with a host name it goes to the outbound trunk, which trunk.transport = \"{}\" does not reach over TLS (set trunk.transport = \"tls\", or give the destination's IP address)",
                match self.transport {
                    TrunkTransport::Udp => "udp",
                    TrunkTransport::Tcp => "tcp",
                    TrunkTransport::Tls => "tls",
                }
            ));
        }
        None
    }
}

/// `[trunk] route_end`: the end of a bridged route where every destination failed.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RouteEnd {
    /// 486 when the last destination was busy, else 480, with the reason.
    #[default]
    Status,
    /// Answered; the "cannot be reached now" notice is played (outcome `announcement`).
    Announce,
}

/// `[trunk] transport`: how requests reach the outbound trunk.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrunkTransport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    pub port_min: u16,
    pub port_max: u16,
    /// Address the RTP sockets bind to and announce; default: `sip.advertised_ip`.
    pub address: Option<IpAddr>,
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
            health: crate::health::HealthConfig::default(),
            notify: NotifyConfig::default(),
            ivr: IvrConfig::default(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            tls: None,
            tls_cert: None,
            tls_key: None,
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
            advertised_ip: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            secure_cookies: None,
            trunks: Vec::new(),
            prompts_dir: PathBuf::from("prompts"),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("var/veertien.db"),
            record_queue: 65_536,
            // 250 ms and up to 2 048 records: under load a transaction then spans more calls
            // than there are municipalities, numbers and rollup rows it touches, so pages are
            // shared; 50 ms / 256 cost 14–17 % more CPU per varied redirected call at 3 000/s
            // (docs/PERFORMANCE-sip-load.md). A call shows in reports 250 ms later at most.
            record_batch_ms: 250,
            record_batch_max: 2048,
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            port_min: 20_000,
            port_max: 29_999,
            address: None,
        }
    }
}

impl Default for TrunkConfig {
    fn default() -> Self {
        TrunkConfig {
            outbound: None,
            setup_timeout_secs: 180,
            no_answer_secs: 30,
            no_response_ms: 4_000,
            max_call_secs: 4 * 3_600,
            media_timeout_secs: 30,
            auth: Vec::new(),
            route_end: RouteEnd::Status,
            transport: TrunkTransport::Udp,
            tls_ca: None,
            tls_server_name: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[notify]`: how the portal delivers incident e-mails and webhooks (see docs/INCIDENTS.md).
/// Credentials are never in this file: `smtp_username_env`/`smtp_password_env` name the
/// environment variables that hold them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// SMTP relay host; empty = no e-mail (attempts are logged as not sent).
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls` (required STARTTLS), `tls` (implicit TLS, port 465) or `plain` (a local relay).
    pub smtp_security: String,
    pub smtp_username_env: Option<String>,
    pub smtp_password_env: Option<String>,
    /// Sender address, e.g. `"14+ storingen <storingen@operator.nl>"`.
    pub from: String,
    /// Who gets missed-update reminders (the operator's duty desk).
    pub operator_emails: Vec<String>,
    /// Base URL of the portal in e-mails and webhooks (links to `/status`).
    pub public_url: String,
    /// Per attempt, for SMTP and webhooks.
    pub timeout_secs: u64,
    /// Attempts per message/webhook including the first.
    pub attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub retry_base_ms: u64,
    /// Deliveries waiting beyond this are refused (logged), never blocking a request.
    pub queue: usize,
    /// Allow `http://` webhook URLs (only for tests and local receivers).
    pub allow_http_webhooks: bool,
    /// How often promised update times and scheduled test calls are checked.
    pub check_interval_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: "starttls".into(),
            smtp_username_env: None,
            smtp_password_env: None,
            from: "veertien 14+ <noreply@localhost>".into(),
            operator_emails: Vec::new(),
            public_url: "http://127.0.0.1:8080".into(),
            timeout_secs: 10,
            attempts: 4,
            retry_base_ms: 2_000,
            queue: 1_000,
            allow_http_webhooks: false,
            check_interval_secs: 30,
        }
    }
}

impl NotifyConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.smtp_security.as_str(), "starttls" | "tls" | "plain") {
            return Err(ConfigError::Invalid { key: "notify.smtp_security", reason: format!("'{}' is not starttls, tls or plain", self.smtp_security) });
        }
        if self.attempts == 0 || self.attempts > 20 {
            return Err(ConfigError::Invalid { key: "notify.attempts", reason: "must be 1..=20".into() });
        }
        if self.queue == 0 {
            return Err(ConfigError::Invalid { key: "notify.queue", reason: "must be at least 1".into() });
        }
        if self.check_interval_secs == 0 || self.timeout_secs == 0 {
            return Err(ConfigError::Invalid { key: "notify.check_interval_secs", reason: "intervals and timeouts must be at least 1 s".into() });
        }
        Ok(())
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
        if s.tls.is_some() && (s.tls_cert.is_none() || s.tls_key.is_none()) {
            return Err(invalid("sip.tls", "needs sip.tls_cert and sip.tls_key (PEM files)"));
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
        if self.store.record_batch_ms > 1_000 {
            return Err(invalid("store.record_batch_ms", "must be at most 1000 (records would show in reports late)"));
        }
        if !(1..=10_000).contains(&self.store.record_batch_max) {
            return Err(invalid("store.record_batch_max", "must be 1 to 10000"));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "must not be empty"));
        }
        if self.rtp.port_min == 0 || self.rtp.port_min >= self.rtp.port_max {
            return Err(invalid("rtp.port_min", "must be non-zero and below rtp.port_max"));
        }
        for t in &self.http.trunks {
            if t.is_empty() || t.contains(|c: char| c.is_whitespace() || matches!(c, '@' | ';' | '>' | '<' | '/')) {
                return Err(invalid("http.trunks", format!("'{t}' is not a host name or address")));
            }
        }
        if self.http.prompts_dir.as_os_str().is_empty() {
            return Err(invalid("http.prompts_dir", "must not be empty"));
        }
        let t = &self.trunk;
        if !(1..=3_600).contains(&t.setup_timeout_secs) {
            return Err(invalid("trunk.setup_timeout_secs", "must be between 1 and 3600"));
        }
        if !(1..=600).contains(&t.no_answer_secs) {
            return Err(invalid("trunk.no_answer_secs", "must be between 1 and 600"));
        }
        if !(100..=32_000).contains(&t.no_response_ms) {
            return Err(invalid("trunk.no_response_ms", "must be between 100 and 32000"));
        }
        if t.max_call_secs == 0 {
            return Err(invalid("trunk.max_call_secs", "must be at least 1"));
        }
        if t.media_timeout_secs == 0 {
            return Err(invalid("trunk.media_timeout_secs", "must be at least 1"));
        }
        if let Some(o) = t.outbound
            && (o.ip().is_unspecified() || o.port() == 0)
        {
            return Err(invalid("trunk.outbound", "must be a concrete address and port"));
        }
        if t.transport == TrunkTransport::Tls && t.tls_ca.is_none() {
            return Err(invalid("trunk.transport", "\"tls\" needs trunk.tls_ca (PEM file of the CAs to verify the trunk's certificate)"));
        }
        if let Some(name) = &t.tls_server_name {
            if t.tls_ca.is_none() {
                return Err(invalid("trunk.tls_server_name", "needs trunk.tls_ca (the certificates are verified against it)"));
            }
            let dns = tokio_rustls::rustls::pki_types::ServerName::try_from(name.as_str());
            if !matches!(dns, Ok(tokio_rustls::rustls::pki_types::ServerName::DnsName(_))) {
                return Err(invalid("trunk.tls_server_name", format!("'{name}' is not a DNS name")));
            }
        }
        match (&t.tls_cert, &t.tls_key) {
            (Some(_), None) => return Err(invalid("trunk.tls_cert", "needs trunk.tls_key (the certificate's private key, PEM)")),
            (None, Some(_)) => return Err(invalid("trunk.tls_key", "needs trunk.tls_cert (the client certificate, PEM)")),
            (Some(_), Some(_)) if t.tls_ca.is_none() => {
                return Err(invalid("trunk.tls_cert", "needs trunk.tls_ca (a client certificate is only used towards destinations over TLS)"));
            }
            _ => {}
        }
        for a in &t.auth {
            a.validate()?;
        }
        if self.shutdown.grace_secs > 3_600 {
            return Err(invalid("shutdown.grace_secs", "must be at most 3600"));
        }
        self.health.validate()?;
        let i = &self.ivr;
        if i.enabled && i.max_calls == 0 {
            return Err(invalid("ivr.max_calls", "must be at least 1 (or set ivr.enabled = false)"));
        }
        if !(500..=60_000).contains(&i.no_input_ms) {
            return Err(invalid("ivr.no_input_ms", "must be between 500 and 60000"));
        }
        if !(10..=3_600).contains(&i.max_dialogue_secs) {
            return Err(invalid("ivr.max_dialogue_secs", "must be between 10 and 3600"));
        }
        if !(2..=600).contains(&i.media_timeout_secs) {
            return Err(invalid("ivr.media_timeout_secs", "must be between 2 and 600"));
        }
        Ok(())
    }

    /// Where the IVR reads its prompts: `[ivr] prompts_dir`, else `[http] prompts_dir`.
    pub fn ivr_prompts_dir(&self) -> &Path {
        self.ivr.prompts_dir.as_deref().unwrap_or(&self.http.prompts_dir)
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
    fn http_cookie_policy_and_trunks() {
        let c = Config::parse("").unwrap();
        assert!(!c.http.effective_secure_cookies(), "plain HTTP on loopback: no Secure flag");
        let c = Config::parse("[http]\nlisten = \"0.0.0.0:8080\"\ntrunks = [\"kcc.operator.nl\"]\n").unwrap();
        assert!(c.http.effective_secure_cookies());
        assert_eq!(c.http.trunks, vec!["kcc.operator.nl".to_string()]);
        let c = Config::parse("[http]\nsecure_cookies = true\n").unwrap();
        assert!(c.http.effective_secure_cookies(), "explicit setting wins (TLS proxy on the same host)");
        let e = Config::parse("[http]\ntrunks = [\"sip:x@evil.example\"]\n").unwrap_err().to_string();
        assert!(e.contains("http.trunks"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let e = Config::parse("[rtp]\nport_min = 30000\nport_max = 20000\n").unwrap_err().to_string();
        assert!(e.contains("rtp.port_min"), "{e}");
        let e = Config::parse("[sip]\nudp_workers = 0\n").unwrap_err().to_string();
        assert!(e.contains("sip.udp_workers"), "{e}");
        let e = Config::parse("[store]\nrecord_batch_ms = 5000\n").unwrap_err().to_string();
        assert!(e.contains("store.record_batch_ms"), "{e}");
        assert_eq!(Config::parse("[store]\nrecord_batch_ms = 0\n").unwrap().store.record_batch_ms, 0, "0 writes at once");
        for bad in ["0", "10001"] {
            let e = Config::parse(&format!("[store]\nrecord_batch_max = {bad}\n")).unwrap_err().to_string();
            assert!(e.contains("store.record_batch_max"), "{e}");
        }
        assert_eq!(Config::parse("[store]\nrecord_batch_max = 1\n").unwrap().store.record_batch_max, 1, "one record per transaction");
    }

    #[test]
    fn destinations_over_tls_need_a_ca_and_sips_host_names_a_tls_trunk() {
        let mut t = TrunkConfig::default();
        for uri in ["sips:kcc@10.0.0.7", "sip:kcc@10.0.0.7;transport=tls", "SIPS:kcc@goes.example"] {
            let why = t.destination_refusal(uri).unwrap_or_else(|| panic!("{uri} refused without a CA"));
            assert!(why.contains("trunk.tls_ca"), "{why}");
        }
        for uri in ["sip:kcc@10.0.0.7", "sip:kcc@10.0.0.7;transport=tcp", "tel:+31113123456", "sip:kcc@goes.example"] {
            assert_eq!(t.destination_refusal(uri), None, "{uri}");
        }
        t.tls_ca = Some("ca.pem".into());
        assert_eq!(t.destination_refusal("sips:kcc@10.0.0.7"), None);
        assert_eq!(t.destination_refusal("sips:kcc@[2001:db8::7]:5071"), None);
        let why = t.destination_refusal("sips:kcc@goes.example").expect("a host name goes to a UDP trunk");
        assert!(why.contains("trunk.transport") && why.contains("\"udp\""), "{why}");
        t.transport = TrunkTransport::Tls;
        assert_eq!(t.destination_refusal("sips:kcc@goes.example"), None);
    }

    #[test]
    fn tls_server_name_is_a_dns_name_and_needs_a_ca() {
        let e = Config::parse("[trunk]\ntls_server_name = \"sbc.gemeente.nl\"\n").unwrap_err().to_string();
        assert!(e.contains("trunk.tls_server_name") && e.contains("tls_ca"), "{e}");
        let e = Config::parse("[trunk]\ntls_ca = \"ca.pem\"\ntls_server_name = \"not a name\"\n").unwrap_err().to_string();
        assert!(e.contains("trunk.tls_server_name") && e.contains("not a DNS name"), "{e}");
        let e = Config::parse("[trunk]\ntls_ca = \"ca.pem\"\ntls_server_name = \"10.0.0.7\"\n").unwrap_err().to_string();
        assert!(e.contains("trunk.tls_server_name"), "{e}");
        let c = Config::parse("[trunk]\ntls_ca = \"ca.pem\"\ntls_server_name = \"sbc.gemeente.nl\"\n").unwrap();
        assert_eq!(c.trunk.tls_server_name.as_deref(), Some("sbc.gemeente.nl"));
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_a_ca() {
        // (the [trunk] keys, the key the error names, the key it says is missing)
        for (keys, named, missing) in [
            ("tls_ca = \"ca.pem\"\ntls_cert = \"c.pem\"\n", "trunk.tls_cert", "trunk.tls_key"),
            ("tls_ca = \"ca.pem\"\ntls_key = \"k.pem\"\n", "trunk.tls_key", "trunk.tls_cert"),
            ("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n", "trunk.tls_cert", "trunk.tls_ca"),
        ] {
            let e = Config::parse(&format!("[trunk]\n{keys}")).unwrap_err().to_string();
            assert!(e.contains(&format!("`{named}`")) && e.contains(missing), "{keys}: {e}");
        }
        Config::parse("[trunk]\ntls_ca = \"ca.pem\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
    }
}
