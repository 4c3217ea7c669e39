//! The node's mailbox, one file per family of messages (STYLE §5): what
//! clients ask ([`client`]), what peers send ([`peer`]), what the node tells
//! itself ([`internal`]) and what operators ask ([`admin`]).

pub mod admin;
pub mod client;
pub mod internal;
pub mod peer;
