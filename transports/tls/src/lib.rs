//! TLS for raft-actors, on rustls (ring as the crypto provider; no
//! OpenSSL).
//!
//! | concept | item |
//! |---|---|
//! | mutual TLS between nodes; a certificate names its node `node-<id>` | [`PeerTls`], [`node_name`], [`server_name`] |
//! | HTTPS for the client API, optionally with client certificates | [`ApiTls`] |
//! | a client's trust (raftctl, nodes calling each other's API) | [`ClientTrust`] |
//! | what is presented and what is trusted, reloadable from the files | [`Identity`], [`Trust`] |
//! | reading PEM files | [`pem`] |
//! | certificates made in code, for tests and the quickstart | `generate` (feature `generate`) |
//!
//! Everything is loaded from files and can be re-read while the node runs
//! ([`PeerTls::reload`], [`ApiTls::reload`]): the next handshake uses the
//! new files, connections already open keep theirs, and a reload that
//! fails changes nothing.
//!
//! This crate knows certificates, not nodes: it must never open a socket
//! or decide who is a member; the transports ask it whether a certificate
//! names the node a peer claims to be.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
mod error;
#[cfg(feature = "generate")]
#[cfg_attr(docsrs, doc(cfg(feature = "generate")))]
pub mod generate;
mod peer;
pub mod pem;
mod reloadable;

pub use api::{client_config, ApiTls, ClientTrust};
pub use error::TlsError;
pub use peer::{names_node, node_name, server_name, PeerTls};
pub use reloadable::{Identity, Trust};
pub use rustls;
