//! veertien-sip: a strict, I/O-free SIP stack (RFC 3261 parsing, validation, message
//! building and transaction state machines).
//!
//! Nothing here touches sockets, clocks or threads: callers feed bytes and `Instant`s in and
//! get messages, responses and [`transaction::Action`]s out (the quinn-proto pattern), so the
//! tokio drivers in the server crate own all I/O and every behaviour here is unit-testable
//! with synthetic time.

mod build;
pub mod header;
mod message;
mod scan;
pub mod tcp;
pub mod transaction;
pub mod uri;
mod validate;

pub use build::{RequestBuilder, ResponseBuilder, branch_from, default_reason, reject_unparseable, response_target, unparseable_is_ack};
pub use header::{CSeq, Contact, Header, HeaderName, Headers, MediaType, Method, NameAddr, Transport, Via};
pub use message::{Message, ParseError, Request, Response};
pub use uri::{SipUri, TelUri, Uri, UriKind};
pub use validate::{Discard, Policy, Rejection, multipart_sdp, validate_request, validate_request_with, validate_response};
