//! veertien-server: the tokio driver of the SIP service (`veertien serve`).
//!
//! The pure pieces (number plan and routing in veertien-core, SIP parsing and transactions in
//! veertien-sip, call records in veertien-store) are wired here to sockets, timers and signals.

pub mod config;
pub mod digest;
pub mod guard;
pub mod health;

pub use config::{Config, ConfigError};
pub mod txn;
pub mod calls;
pub mod engine;
pub mod routing;
pub mod server;
pub mod udp;

pub use engine::{Engine, MetricsSnapshot};
pub use routing::{Routing, Snapshot};
pub use server::{AppContext, HttpApp, ServeError, Server, ShutdownReport, serve};
