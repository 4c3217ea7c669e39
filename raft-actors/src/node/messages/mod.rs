//! The node's mailbox, one file per family of messages (STYLE §5), each
//! with the node's handlers of its messages beside them: what clients ask
//! ([`client`]), what peers send (the handler of
//! [`Peer`](crate::transport::Peer); the message lives beside the
//! transport that delivers it), what the node tells itself ([`internal`])
//! and what operators ask ([`admin`]).
//!
//! A handler hands its input to the core and schedules a drive; it must
//! never decide a Raft rule itself.

pub mod admin;
pub mod client;
pub mod internal;
mod peer;
