//! veertien-b2bua: the state machine of one bridged call, free of I/O.
//!
//! Like quinn-proto, the machine takes events and returns actions. The server driver owns
//! sockets, SIP transactions, timers and the RTP relay; it creates a [`Call`] when the routing
//! decision says "bridge", feeds it every event that concerns the call and carries out the
//! [`Action`]s it queues, in order.
//!
//! Driver contract:
//! - Every [`Action::Send`] other than an ACK eventually gets a final [`Event::Response`] or an
//!   [`Event::RequestFailed`] with its id (the transaction layer's timeouts guarantee it).
//!   Retransmitted 2xx responses to a B-leg INVITE are passed on too: the machine re-ACKs them.
//! - Every [`Action::StartTimer`] that is not cancelled fires once as [`Event::Timer`];
//!   starting a running timer restarts it. Late timers are harmless.
//! - [`Action::Respond`] may name a server transaction that already sent a 2xx: that is a 2xx
//!   retransmission (RFC 3261 13.3.1.4) and must be sent again; keep the request of an INVITE
//!   server transaction until the machine cancels `TimerId::AckWait` for it or the call ends.
//! - Before each B-leg INVITE the machine asks the driver's [`BLegSetup`] how it will carry
//!   that leg (UDP, or TCP/TLS and the address that reaches us over it) and names that in its
//!   Contact, in the dialog's requests and in its answers to the destination's requests; the
//!   driver sends the leg's requests the way it said and leaves the Contact alone.
//! - Requests whose Call-ID is the A-leg's or appears in one of this call's `Send` actions
//!   belong to this call; the machine tells the legs and dialogs apart itself.
//! - Drop the call once [`Call::is_finished`].

mod call;
mod dialog;
pub mod msg;
pub mod sdp;
mod route;
mod types;
mod wire;

pub use call::Call;
pub use dialog::Dialog;
pub use msg::{Body, InRequest, InResponse, Method, NameAddr, OutRequest, OutResponse};
pub use route::{PlannedRoute, plan_route};
pub use types::*;
pub use wire::{ViaSpec, WireError};
