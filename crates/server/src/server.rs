//! Sockets, timers, signals: the tokio side of `veertien serve`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use veertien_sip::tcp::{FrameError, Framer};
use veertien_sip::transaction::Peer as SipPeer;
use veertien_store::{RecordWriter, Store, WriterConfig, WriterMetrics};

use crate::udp::SipUdp;
use crate::calls::{CallLayer, IvrContext};
use crate::health::HealthMonitor;
use crate::config::{Config, UntrustedPolicy};
use crate::engine::{Engine, MetricsSnapshot, Transport};
use crate::routing::{LoadError, Routing};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Routing(#[from] LoadError),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the store at {location}: {source}")]
    Store {
        location: String,
        source: veertien_store::StoreError,
    },
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    #[error(transparent)]
    Ivr(#[from] crate::calls::ivr_load_error::IvrLoadError),
    #[error("SIP TLS: {0}")]
    Tls(String),
}

/// What the portal/API gets to work with.
#[derive(Clone)]
pub struct AppContext {
    pub config: Config,
    pub routing: Arc<Routing>,
    pub engine: Arc<Engine>,
    /// `None` when the server runs without a store (tests of the SIP path only).
    pub store: Option<Store>,
}

pub type BoxFuture = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// Hook for the web crate: given the bound listener of `http.listen`, serve the portal until
/// `shutdown` is cancelled. Kept free of any HTTP framework so the server does not depend on
/// one.
pub trait HttpApp: Send + 'static {
    fn serve(self: Box<Self>, listener: TcpListener, ctx: AppContext, shutdown: CancellationToken) -> BoxFuture;
}

/// A running server (in-process). Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    engine: Arc<Engine>,
    store: Option<Store>,
    writer: Option<RecordWriter>,
    udp_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
    /// The UDP receivers are threads, not tasks the JoinSet aborts: a server dropped without
    /// `shutdown` (a test's early return) must still stop them and free its port.
    _stop_on_drop: tokio_util::sync::DropGuard,
}

/// Figures reported when the server stops.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShutdownReport {
    pub metrics: MetricsSnapshot,
    pub records: Option<WriterMetrics>,
}

impl Server {
    /// Binds every socket and starts every loop; returns once the server accepts traffic.
    /// `with_store = false` runs the SIP path without call records.
    pub async fn start(config: Config, with_store: bool, http: Option<Box<dyn HttpApp>>) -> Result<Server, ServeError> {
        config.validate()?;
        let routing = Arc::new(Routing::load(config.plan.dir.as_deref(), config.plan.settings.as_deref())?);
        // A destination this configuration can never call (TLS without trunk.tls_ca, ...)
        // stops start-up here, and later reloads and portal saves, instead of failing calls.
        let trunk = config.trunk.clone();
        routing.guard(Arc::new(move |uri: &str| trunk.destination_refusal(uri)))?;
        let snap = routing.snapshot();
        tracing::info!(plan = ?snap.plan, trunk = snap.settings.trunk(), "routing snapshot loaded");
        for w in snap.settings.warnings() {
            tracing::warn!(warning = %w, "settings");
        }
        drop(snap);

        let (store, writer) = if with_store {
            let location = config.store.path.to_string_lossy().into_owned();
            if let Some(parent) = config.store.path.parent().filter(|p| !p.as_os_str().is_empty())
                && !location.contains("://")
            {
                let _ = std::fs::create_dir_all(parent);
            }
            let store = Store::open(&location).await.map_err(|source| ServeError::Store { location, source })?;
            let writer = store.writer(WriterConfig {
                queue_capacity: config.store.record_queue,
                batch_linger: Duration::from_millis(config.store.record_batch_ms),
                batch_max: config.store.record_batch_max,
                ..WriterConfig::default()
            });
            (Some(store), Some(writer))
        } else {
            (None, None)
        };

        let engine = Arc::new(Engine::new(config.clone(), routing.clone(), writer.clone()));
        let stop = CancellationToken::new();
        // Cancels on any early return below too, so receiver threads already started end.
        let stop_on_drop = stop.clone().drop_guard();
        let mut tasks = JoinSet::new();

        let mut udp_addr = None;
        let mut udp_socket = None;
        if let Some(addr) = config.sip.udp {
            let sock = SipUdp::bind(addr).map_err(|source| ServeError::Bind { what: "SIP UDP", addr, source })?;
            udp_addr = Some(sock.local_addr().map_err(|source| ServeError::Bind { what: "SIP UDP", addr, source })?);
            let sock = Arc::new(sock);
            let ivr = if config.ivr.enabled {
                let (cfg, routing) = (config.clone(), routing.clone());
                let ctx = tokio::task::spawn_blocking(move || IvrContext::load(&cfg, routing))
                    .await
                    .map_err(|e| ServeError::Signal(std::io::Error::other(e.to_string())))??;
                let ctx = Arc::new(ctx);
                if let Some(store) = &store {
                    ctx.attach_store(store.clone());
                }
                tracing::info!(status = ?ctx.status(), "IVR ready");
                if config.ivr.speech {
                    // The model takes seconds to load: callers meanwhile get the keypad menu.
                    let c = ctx.clone();
                    tokio::task::spawn_blocking(move || c.load_speech());
                }
                Some(ctx)
            } else {
                None
            };
            if let Some(outbound) = config.trunk.outbound {
                let health = if config.health.enabled {
                    let ip = config.sip.advertised_ip.unwrap_or(addr.ip());
                    // Probes are UDP: a trunk reached over TCP is not probed (its destinations
                    // count as alive; a dead one is passed by the no-response timer).
                    let probe_trunk = (config.trunk.transport == crate::config::TrunkTransport::Udp).then_some(outbound);
                    let monitor = HealthMonitor::new(config.health.clone(), ip, probe_trunk);
                    let unmonitored = monitor.track_snapshot(&routing.snapshot());
                    if !unmonitored.is_empty() {
                        tracing::warn!(?unmonitored, "destinations not probed (treated as alive)");
                    }
                    let prober = monitor
                        .spawn(stop.clone())
                        .await
                        .map_err(|source| ServeError::Bind { what: "OPTIONS prober", addr, source })?;
                    tasks.spawn(async move {
                        let _ = prober.await;
                    });
                    Some(monitor)
                } else {
                    None
                };
                let layer = CallLayer::new(&config, sock.clone(), Some(outbound), writer.clone(), health, ivr)
                    .map_err(|source| ServeError::Bind { what: "RTP port pool", addr, source })?;
                tracing::info!(%outbound, "bridged calls enabled");
                engine.set_call_layer(Arc::new(layer));
            } else if ivr.is_some() {
                // IVR calls without an outbound trunk: answered and asked; put through only to
                // IP-literal SIP destinations (others hear that the municipality is unreachable).
                let layer = CallLayer::new(&config, sock.clone(), None, writer.clone(), None, ivr)
                    .map_err(|source| ServeError::Bind { what: "RTP port pool", addr, source })?;
                engine.set_call_layer(Arc::new(layer));
            }
            if let Some(layer) = engine.call_layer() {
                layer.set_tcp_dialer(tcp_dialer(Arc::downgrade(&engine), stop.clone(), tls_connector(&config.trunk)?));
            }
            let receivers =
                crate::udp::spawn_receivers(sock.clone(), engine.clone(), stop.clone(), config.sip.udp_workers, tokio::runtime::Handle::current())
                    .map_err(|source| ServeError::Bind { what: "SIP UDP receiver threads", addr, source })?;
            tasks.spawn(async move {
                let _ = tokio::task::spawn_blocking(move || receivers.into_iter().for_each(|t| { let _ = t.join(); })).await;
            });
            udp_socket = Some(sock);
        }
        tasks.spawn(timer_loop(udp_socket, engine.clone(), stop.clone()));

        let mut tcp_addr = None;
        if let Some(addr) = config.sip.tcp {
            let l = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { what: "SIP TCP", addr, source })?;
            tcp_addr = Some(l.local_addr().map_err(|source| ServeError::Bind { what: "SIP TCP", addr, source })?);
            if let (Some(layer), Some(a)) = (engine.call_layer(), tcp_addr) {
                layer.set_tcp_port(a.port());
            }
            tasks.spawn(tcp_accept_loop(l, None, engine.clone(), stop.clone()));
        }

        let mut tls_addr = None;
        if let Some(addr) = config.sip.tls {
            let acceptor = tls_acceptor(&config.sip)?;
            let l = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { what: "SIP TLS", addr, source })?;
            tls_addr = Some(l.local_addr().map_err(|source| ServeError::Bind { what: "SIP TLS", addr, source })?);
            if let (Some(layer), Some(a)) = (engine.call_layer(), tls_addr) {
                layer.set_tls_port(a.port());
            }
            tasks.spawn(tcp_accept_loop(l, Some(acceptor), engine.clone(), stop.clone()));
        }

        let mut http_addr = None;
        if let Some(app) = http {
            let addr = config.http.listen;
            let l = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { what: "HTTP", addr, source })?;
            http_addr = l.local_addr().ok();
            let ctx = AppContext { config: config.clone(), routing: routing.clone(), engine: engine.clone(), store: store.clone() };
            let fut = app.serve(l, ctx, stop.clone());
            tasks.spawn(async move {
                if let Err(e) = fut.await {
                    tracing::error!(error = %e, "HTTP service stopped");
                }
            });
        }
        tracing::info!(node = %config.node_id, udp = ?udp_addr, tcp = ?tcp_addr, tls = ?tls_addr, http = ?http_addr, store = with_store, "veertien SIP service started");
        Ok(Server { engine, store, writer, udp_addr, tcp_addr, tls_addr, http_addr, stop, tasks, _stop_on_drop: stop_on_drop })
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The SIP TLS listener, when `[sip] tls` is set.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Clean stop: refuse new INVITEs with 503, let open INVITE transactions finish within
    /// the grace period, stop the loops, flush every accepted call record.
    pub async fn shutdown(self) -> ShutdownReport {
        self.shutdown_unless(std::future::pending()).await
    }

    /// As [`Server::shutdown`], but `hurry` completing (a second SIGTERM) ends the grace
    /// period at once; records are still flushed.
    pub async fn shutdown_unless(mut self, hurry: impl Future<Output = ()>) -> ShutdownReport {
        let grace = self.engine.config().grace();
        self.engine.start_draining();
        tracing::info!(?grace, "draining: new calls are refused with 503");
        let deadline = Instant::now() + grace;
        // Calls finish by themselves on the redirect path; the wait matters once bridged
        // calls hold transactions. Keep answering retransmissions and ACKs meanwhile.
        let wait = async {
            while self.engine.active_calls() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = hurry => tracing::warn!("second signal: ending the grace period now"),
        }
        if let Some(layer) = self.engine.call_layer()
            && layer.live_calls() > 0
        {
            // Grace is over: BYE both legs of answered calls, cancel ringing ones, and give
            // those requests a moment to complete so the records say how the calls ended.
            tracing::warn!(calls = layer.live_calls(), "grace period over: ending bridged calls");
            layer.hang_up_all();
            let until = Instant::now() + Duration::from_secs(5);
            while layer.live_calls() > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        let records = match &self.writer {
            Some(w) => {
                let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(5));
                Some(w.flush_and_close(left).await)
            }
            None => None,
        };
        if let Some(store) = &self.store {
            store.close().await;
        }
        let report = ShutdownReport { metrics: self.engine.metrics(), records };
        tracing::info!(report = ?report, "veertien SIP service stopped");
        report
    }
}

/// `veertien serve`: start, reload on SIGHUP, stop cleanly on SIGTERM/SIGINT.
pub async fn serve(config: Config, http: Option<Box<dyn HttpApp>>) -> Result<ShutdownReport, ServeError> {
    let server = Server::start(config, true, http).await?;
    server.run_until_signal().await
}

impl Server {
    /// Serves until SIGTERM or SIGINT, then shuts down cleanly; SIGHUP reloads the plan and
    /// settings files without a restart.
    pub async fn run_until_signal(self) -> Result<ShutdownReport, ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
        let mut hup = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM"); break; }
                _ = int.recv() => { tracing::info!("SIGINT"); break; }
                _ = hup.recv() => match self.engine().routing().reload() {
                    Ok(v) => {
                        tracing::info!(version = v, "SIGHUP: plan and settings reloaded");
                        if let Some(h) = self.engine().call_layer().and_then(|l| l.health()) {
                            h.track_snapshot(&self.engine().routing().snapshot());
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed; keeping the running plan and settings"),
                },
            }
        }
        let hurry = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        Ok(self.shutdown_unless(hurry).await)
    }
}

async fn timer_loop(sock: Option<Arc<SipUdp>>, engine: Arc<Engine>, stop: CancellationToken) {
    let mut resend = Vec::new();
    let mut last_prune = Instant::now();
    loop {
        let now = Instant::now();
        // Timer G's granularity is 500 ms; waking at least every 100 ms keeps it accurate
        // without a wake-up per transaction. Under load a deadline is due every fraction of a
        // millisecond, so waking for each would cost a thread wake-up per transaction: timers
        // due within the next 10 ms are fired together, at most 10 ms late.
        let next = engine
            .next_timer()
            .unwrap_or(now + Duration::from_millis(100))
            .clamp(now + Duration::from_millis(10), now + Duration::from_millis(100));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
        }
        engine.poll_timers(Instant::now(), &mut resend);
        if let Some(sock) = &sock {
            for r in resend.drain(..) {
                let _ = sock.send_to(&r.response, r.target);
            }
        }
        resend.clear();
        if last_prune.elapsed() > Duration::from_secs(60) {
            engine.prune_limiter();
            tokio::task::spawn_blocking(release_free_memory);
            last_prune = Instant::now();
        }
    }
}

/// Gives memory the allocator keeps but no longer uses back to the system. glibc's malloc
/// keeps freed memory in per-thread arenas; with calls allocating and freeing on several
/// threads the live heap stays flat (heaptrack, IVR-mix load: 55 MB from the first minute to
/// the tenth) while RSS crept up for half an hour (33 → 106 MB in 35 minutes).
/// `malloc_trim(0)` hands the free pages of every arena back; once a minute, off the runtime's
/// worker threads (it takes the arenas' locks).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks glibc's own arenas under their locks.
    let released = unsafe { libc::malloc_trim(0) } == 1;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let released = false;
    tracing::trace!(released, "free heap memory handed back");
}

/// The TLS server side from `[sip] tls_cert` / `tls_key` (PEM), refusing start-up with the
/// file and the reason when they do not load.
fn tls_acceptor(sip: &crate::config::SipConfig) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    let (Some(cert), Some(key)) = (&sip.tls_cert, &sip.tls_key) else {
        return Err(ServeError::Tls("sip.tls needs sip.tls_cert and sip.tls_key".into()));
    };
    let (certs, key_der) = cert_and_key(cert, key)?;
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| ServeError::Tls(format!("{} / {}: {e}", cert.display(), key.display())))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

type CertChain = Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>;

/// A certificate chain and its private key from PEM files, or the file and why it does not load.
fn cert_and_key(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(CertChain, tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>), ServeError> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())));
    let certs = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e:?}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!("{}: no PEM certificate in it", cert.display())));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| ServeError::Tls(format!("{}: {e:?}", key.display())))?;
    Ok((certs, key_der))
}

/// How long a TLS client may take for its handshake before the connection (and its slot) is
/// given up: a slow or silent client must not hold a connection slot.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Accepts TCP connections (or, with `tls`, TLS over them), bounded by
/// `sip.tcp_max_connections` per listener.
async fn tcp_accept_loop(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, engine: Arc<Engine>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(engine.config().sip.tcp_max_connections));
    let mut conns = JoinSet::new();
    let what = if tls.is_some() { "TLS" } else { "TCP" };
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if engine.config().sip.untrusted == UntrustedPolicy::Drop && !engine.is_trusted(peer) {
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, listener = what, "connection limit reached; closing new connection");
            continue;
        };
        let (engine, stop, tls) = (engine.clone(), stop.clone(), tls.clone());
        conns.spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let Some(tls) = tls else {
                return tcp_connection(stream, peer, engine, stop, Transport::Tcp).await;
            };
            match tokio::time::timeout(TLS_HANDSHAKE, tls.accept(stream)).await {
                Ok(Ok(stream)) => tcp_connection(stream, peer, engine, stop, Transport::Tls).await,
                Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
            }
        });
    }
    conns.shutdown().await;
}

/// Unregisters a TCP or TLS connection from the call layer however its task ends.
struct TcpRegistration(Option<(Arc<crate::calls::CallLayer>, SipPeer)>);

impl Drop for TcpRegistration {
    fn drop(&mut self) {
        if let Some((layer, peer)) = self.0.take() {
            layer.tcp_closed(peer);
        }
    }
}

/// A carrier's connection, plain TCP or (after the handshake) TLS.
async fn tcp_connection<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    engine: Arc<Engine>,
    stop: CancellationToken,
    transport: Transport,
) {
    // Calls that arrive on this connection answer and send their in-dialog requests on it:
    // their tasks queue bytes here and this task writes them (through TLS when it is TLS).
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Bytes>(crate::calls::TCP_OUTBOX);
    let _registration = TcpRegistration(engine.call_layer().map(|l| {
        let key = SipPeer { addr: peer, transport: transport.sip() };
        l.tcp_opened(key, out_tx);
        (l.clone(), key)
    }));
    tcp_run(stream, peer, engine, stop, out_rx, transport).await;
}

/// The TLS client side towards destinations: certificates verified against `[trunk] tls_ca`
/// (PEM) for `[trunk] tls_server_name` when set, else for the destination's IP address.
#[derive(Clone)]
struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    name: Option<tokio_rustls::rustls::pki_types::ServerName<'static>>,
}

/// The [`TlsClient`] from `[trunk]`, refusing start-up with the file and the reason when
/// `tls_ca` (or the client certificate `tls_cert` / `tls_key`) does not load; `None` without
/// `tls_ca`.
fn tls_connector(trunk: &crate::config::TrunkConfig) -> Result<Option<TlsClient>, ServeError> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let Some(ca) = &trunk.tls_ca else { return Ok(None) };
    let name = match &trunk.tls_server_name {
        Some(n) => Some(ServerName::try_from(n.clone()).map_err(|e| ServeError::Tls(format!("trunk.tls_server_name '{n}': {e}")))?),
        None => None,
    };
    let pem = std::fs::read(ca).map_err(|e| ServeError::Tls(format!("{}: {e}", ca.display())))?;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| ServeError::Tls(format!("{}: {e:?}", ca.display())))?;
        roots.add(cert).map_err(|e| ServeError::Tls(format!("{}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(ServeError::Tls(format!("{}: no PEM certificate in it", ca.display())));
    }
    let config = tokio_rustls::rustls::ClientConfig::builder().with_root_certificates(roots);
    // Mutual TLS: our certificate for destinations that ask for one.
    let config = match (&trunk.tls_cert, &trunk.tls_key) {
        (Some(cert), Some(key)) => {
            let (chain, key_der) = cert_and_key(cert, key)?;
            config
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ServeError::Tls(format!("{} / {}: {e}", cert.display(), key.display())))?
        }
        _ => config.with_no_client_auth(),
    };
    Ok(Some(TlsClient { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), name }))
}

/// Opens the connections bridged calls need towards destinations over TCP or TLS. The call
/// layer registered the connection (and its outbox, which holds its first message) and bound
/// its socket before asking, so that message could name our end of it; this connects (and for
/// TLS completes the handshake, verifying the destination's certificate against
/// `[trunk] tls_ca` for `[trunk] tls_server_name`, else for the destination's host, its IP
/// address) within `[trunk] no_response_ms` and then runs it exactly like an accepted one: same framer limits,
/// idle timeout (not while a call uses it), outbox bound. A connection that fails is
/// unregistered and the calls waiting on it are told why, so they move to their next route
/// step at once (a refused connection takes a millisecond; waiting for the no-response timer
/// would keep the caller in silence for seconds).
fn tcp_dialer(
    engine: std::sync::Weak<Engine>,
    stop: CancellationToken,
    tls: Option<TlsClient>,
) -> crate::calls::TcpDialer {
    Box::new(move |peer, transport, socket, out_rx| {
        let (engine, stop, tls) = (engine.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            let Some(engine) = engine.upgrade() else { return };
            let layer = engine.call_layer().cloned();
            let key = SipPeer { addr: peer, transport };
            let _registration = TcpRegistration(layer.clone().map(|l| (l, key)));
            let within = Duration::from_millis(engine.config().trunk.no_response_ms);
            // The texts end up in the call record's route step: they name the real transport.
            let t = transport.as_str();
            let failed = |why: String| {
                tracing::info!(%peer, transport = t, %why, "connection to the destination failed");
                if let Some(l) = &layer {
                    l.tcp_gone(key, &why);
                }
            };
            let tls = match (transport, tls) {
                (veertien_sip::Transport::Tls, Some(c)) => Some(c),
                (veertien_sip::Transport::Tls, None) => {
                    return failed("TLS to the destination needs [trunk] tls_ca to verify its certificate".into());
                }
                _ => None,
            };
            let until = tokio::time::Instant::now() + within;
            let stream = tokio::select! {
                _ = stop.cancelled() => return,
                // From the socket the call layer bound: the first request on it names its port.
                r = tokio::time::timeout_at(until, socket.connect(peer)) => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return failed(format!("{t} connection to the destination failed: {e}")),
                    Err(_) => return failed(format!("{t} connection to the destination not open within {within:?}")),
                },
            };
            let _ = stream.set_nodelay(true);
            let Some(tls) = tls else {
                tracing::debug!(%peer, "TCP connection to the destination open");
                return tcp_run(stream, peer, engine, stop, out_rx, Transport::Tcp).await;
            };
            // No DNS on the call path: the destination's host is its IP address, and its
            // certificate must name that address, or the configured name.
            let name = tls.name.clone().unwrap_or_else(|| tokio_rustls::rustls::pki_types::ServerName::IpAddress(peer.ip().into()));
            let stream = tokio::select! {
                _ = stop.cancelled() => return,
                r = tokio::time::timeout_at(until, tls.connector.connect(name, stream)) => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return failed(format!("TLS handshake with the destination failed: {e}")),
                    Err(_) => return failed(format!("TLS handshake with the destination not done within {within:?}")),
                },
            };
            tracing::debug!(%peer, "TLS connection to the destination open");
            tcp_run(stream, peer, engine, stop, out_rx, Transport::Tls).await;
        });
    })
}

/// Reads and writes one SIP TCP (or TLS) connection until it closes, idles out or the server stops.
async fn tcp_run<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    engine: Arc<Engine>,
    stop: CancellationToken,
    mut out_rx: tokio::sync::mpsc::Receiver<Bytes>,
    transport: Transport,
) {
    let idle = engine.config().tcp_idle_timeout();
    let mut framer = Framer::new(engine.config().sip.max_message_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            _ = stop.cancelled() => return,
            Some(bytes) = out_rx.recv() => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
                continue;
            }
            r = tokio::time::timeout(idle, stream.read(&mut buf)) => match r {
                Err(_) if engine.call_layer().is_some_and(|l| l.tcp_busy(SipPeer { addr: peer, transport: transport.sip() })) => continue,
                Err(_) => { tracing::debug!(%peer, transport = transport.sip().as_str(), "idle timeout"); return; }
                Ok(Err(_)) | Ok(Ok(0)) => return,
                Ok(Ok(n)) => n,
            },
        };
        if let Err(e) = framer.push(&buf[..n]) {
            tracing::info!(%peer, transport = transport.sip().as_str(), error = %e, "closing connection");
            return;
        }
        loop {
            match framer.next_message() {
                Ok(Some(msg)) => {
                    if let Some(out) = engine.handle_message(msg, peer, transport)
                        && stream.write_all(&out.bytes).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(FrameError::Unparseable { error, bytes }) => {
                    // Framed, so the stream is still in sync: 400 (never for an ACK), read on.
                    if let Some(out) = engine.handle_unparsed(&bytes, &error, peer, transport)
                        && stream.write_all(&out.bytes).await.is_err()
                    {
                        return;
                    }
                }
                Err(FrameError::Malformed(e)) => {
                    // A stream cannot be resynchronised after a framing error.
                    tracing::info!(%peer, transport = transport.sip().as_str(), error = %e, "malformed SIP message on a stream; closing connection");
                    return;
                }
                Err(e) => {
                    tracing::info!(%peer, transport = transport.sip().as_str(), error = %e, "closing connection");
                    return;
                }
            }
        }
    }
}
