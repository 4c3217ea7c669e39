//! The HTTP body: one version byte ([`WIRE_VERSION`], the TCP transport's),
//! then a postcard [`Envelope`].
//!
//! Bodies come from the network: decoding checks the version first and
//! never panics; the size limit is enforced by the endpoint before the
//! body is read (413).

use raft_actors::core::NodeId;
use raft_actors::transport::GroupBatch;
pub use raft_actors_transport_tcp::frame::WIRE_VERSION;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The path the endpoint serves, versioned so a future format can live
/// beside this one.
pub const PATH: &str = "/raft/v1/batches";

/// The request header carrying the sender's own endpoint address
/// (`host:port`), when it advertises one.
pub const ADVERTISE_HEADER: &str = "x-raft-advertise";

/// One request: every batch queued for one peer, in send order, each
/// delivered as one `Peer` message. Each request carries the cluster id
/// and both node ids, which HTTP's stateless requests need in place of a
/// connection handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The cluster both sides must belong to.
    pub cluster_id: u64,
    /// The sender.
    pub from: NodeId,
    /// The node it means to reach.
    pub to: NodeId,
    /// The batches, oldest first, each with its Raft group: one request
    /// carries the batches of every group the sender hosts.
    pub batches: Vec<GroupBatch>,
}

/// Why a body is not an [`Envelope`].
#[derive(Debug, Error)]
pub enum BodyError {
    /// No bytes at all.
    #[error("empty body")]
    Empty,
    /// Another wire version: a node of an older or newer release. Its
    /// bytes are never parsed.
    #[error("the peer speaks wire version {got}, this build speaks only {expected}: upgrade every node of the cluster to one release (version 3 added group ids)")]
    Version {
        /// The version byte received.
        got: u8,
        /// [`WIRE_VERSION`].
        expected: u8,
    },
    /// Not a postcard [`Envelope`].
    #[error("malformed body: {0}")]
    Malformed(#[from] postcard::Error),
    /// Bytes left after the envelope.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

impl Envelope {
    /// The body bytes: version byte, then postcard.
    ///
    /// ```
    /// use raft_actors_transport_http::wire::Envelope;
    /// let e = Envelope { cluster_id: 1, from: 2, to: 3, batches: vec![] };
    /// assert_eq!(Envelope::decode(&e.encode().unwrap()).unwrap(), e);
    /// assert!(Envelope::decode(&[0xff]).is_err());
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, BodyError> {
        Ok(postcard::to_extend(self, vec![WIRE_VERSION])?)
    }

    /// Decodes a body, version byte first.
    pub fn decode(body: &[u8]) -> Result<Self, BodyError> {
        let (&version, rest) = body.split_first().ok_or(BodyError::Empty)?;
        if version != WIRE_VERSION {
            return Err(BodyError::Version {
                got: version,
                expected: WIRE_VERSION,
            });
        }
        let (env, left) = postcard::take_from_bytes::<Envelope>(rest)?;
        if !left.is_empty() {
            return Err(BodyError::Trailing(left.len()));
        }
        Ok(env)
    }
}
