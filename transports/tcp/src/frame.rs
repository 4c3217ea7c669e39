//! The wire format: a 4-byte big-endian length, then one version byte, then
//! one postcard-encoded [`Frame`].
//!
//! This module only turns bytes into frames and back. It must never trust
//! a length prefix: the limit is checked before a single byte is reserved
//! for the frame, and every malformed input is a [`FrameError`], never a
//! panic (a peer's bytes are untrusted input).

use bytes::{Buf, BufMut, BytesMut};
use raft_actors::core::{GroupId, Message, NodeId};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio_util::codec::Decoder;

/// The version byte every frame starts with. Bumped on any incompatible
/// change of [`Frame`] or of the core's [`Message`], so a node never
/// misreads a newer peer's bytes as valid messages.
/// Version 2: `InstallSnapshot` carries the snapshot's size and CRC.
/// Version 3: every batch carries its Raft group ([`GroupId`]), so one
/// connection can carry the batches of many groups.
pub const WIRE_VERSION: u8 = 3;

/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;

/// The default largest frame body (version byte included): 16 MiB, far
/// above the core's default 1 MiB AppendEntries and snapshot chunks.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

/// What travels on a connection.
///
/// The dialling side sends [`Frame::Hello`] and waits for
/// [`Frame::Welcome`] (or [`Frame::Refused`]); then it sends only
/// [`Frame::Batch`]es, and the accepting side sends nothing more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// The handshake: who dials, whom it means, in which cluster.
    Hello {
        /// The cluster both sides must belong to.
        cluster_id: u64,
        /// The dialling node.
        from: NodeId,
        /// The node it expects to reach.
        to: NodeId,
    },
    /// The handshake was accepted.
    Welcome,
    /// The handshake was refused; the connection closes after this frame.
    Refused {
        /// Why, for the dialler's log.
        reason: String,
    },
    /// One [`Transport::send`](raft_actors::transport::Transport::send)
    /// batch, delivered as one `Peer` message to the node of its group.
    Batch {
        /// The Raft group the messages belong to.
        group: GroupId,
        /// The messages, in send order.
        messages: Vec<Message>,
    },
    /// A [`Frame::Hello`] that also says where the dialling node listens,
    /// so a node that does not know it yet (one joining the cluster, with
    /// [`TcpConfig::learn_peers`](crate::TcpConfig::learn_peers)) can
    /// accept it and answer. Sent when
    /// [`TcpConfig::advertise`](crate::TcpConfig::advertise) is set.
    HelloAt {
        /// The cluster both sides must belong to.
        cluster_id: u64,
        /// The dialling node.
        from: NodeId,
        /// The node it expects to reach.
        to: NodeId,
        /// Where the dialling node accepts connections.
        addr: std::net::SocketAddr,
    },
}

/// Why bytes are not a frame. Each closes the connection it came from.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The length prefix (or an encoded frame) exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The claimed or encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A zero length prefix: not even a version byte.
    #[error("empty frame")]
    Empty,
    /// The peer speaks another wire version: a node of an older or newer
    /// build. Its bytes are never parsed, since every version changes
    /// what they mean.
    #[error("the peer speaks wire version {got}, this build speaks only {expected}: upgrade every node of the cluster to one release (version 3 added group ids)")]
    Version {
        /// The version byte received.
        got: u8,
        /// [`WIRE_VERSION`].
        expected: u8,
    },
    /// The body is not a postcard [`Frame`].
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
    /// The body decoded, but bytes were left over.
    #[error("{0} trailing bytes after the frame")]
    Trailing(usize),
    /// The connection failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Encodes and decodes length-prefixed, versioned frames with a size
/// limit. Counts the bytes it decoded, for the per-peer metrics.
///
/// ```
/// use bytes::BytesMut;
/// use raft_actors_transport_tcp::frame::{Frame, FrameCodec};
/// use tokio_util::codec::Decoder;
/// let mut codec = FrameCodec::new(1024);
/// let mut buf = BytesMut::new();
/// codec.encode_into(&Frame::Welcome, &mut buf).unwrap();
/// assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Welcome));
/// // A prefix claiming 4 GiB is refused before anything is reserved.
/// let mut huge = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1][..]);
/// assert!(codec.decode(&mut huge).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct FrameCodec {
    max_frame: usize,
    decoded_bytes: u64,
}

impl FrameCodec {
    /// A codec refusing frame bodies over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameCodec {
            max_frame,
            decoded_bytes: 0,
        }
    }

    /// The body limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes (prefixes included) of every frame decoded so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded_bytes
    }

    /// Appends `frame`, prefixed, to `dst`; answers the bytes appended.
    /// A frame over the limit is refused and leaves `dst` as it was.
    pub fn encode_into(&self, frame: &Frame, dst: &mut BytesMut) -> Result<usize, FrameError> {
        let body = postcard::to_extend(frame, vec![WIRE_VERSION])?;
        if body.len() > self.max_frame {
            return Err(FrameError::TooLarge {
                len: body.len(),
                max: self.max_frame,
            });
        }
        let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
            len: body.len(),
            max: self.max_frame,
        })?;
        dst.reserve(LEN_BYTES + body.len());
        dst.put_u32(len);
        dst.put_slice(&body);
        Ok(LEN_BYTES + body.len())
    }
}

/// Decodes one frame body (version byte first, no prefix).
///
/// ```
/// use raft_actors_transport_tcp::frame::{decode_body, FrameError};
/// assert!(matches!(decode_body(&[9, 1]), Err(FrameError::Version { got: 9, .. })));
/// assert!(matches!(decode_body(&[]), Err(FrameError::Empty)));
/// ```
pub fn decode_body(body: &[u8]) -> Result<Frame, FrameError> {
    let (&version, rest) = body.split_first().ok_or(FrameError::Empty)?;
    if version != WIRE_VERSION {
        return Err(FrameError::Version {
            got: version,
            expected: WIRE_VERSION,
        });
    }
    let (frame, left) = postcard::take_from_bytes::<Frame>(rest)?;
    if !left.is_empty() {
        return Err(FrameError::Trailing(left.len()));
    }
    Ok(frame)
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(prefix) = src.get(..LEN_BYTES) else {
            return Ok(None);
        };
        let mut raw = [0u8; LEN_BYTES];
        raw.copy_from_slice(prefix);
        // u32 always fits a usize on the 32- and 64-bit targets we build
        // for; saturating keeps a 16-bit target on the "too large" side.
        let len = usize::try_from(u32::from_be_bytes(raw)).unwrap_or(usize::MAX);
        // The limit first: a peer claiming 4 GiB must not make us reserve it.
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if src.len() < LEN_BYTES + len {
            src.reserve(LEN_BYTES + len - src.len());
            return Ok(None);
        }
        src.advance(LEN_BYTES);
        let body = src.split_to(len);
        self.decoded_bytes += (LEN_BYTES + len) as u64;
        decode_body(&body).map(Some)
    }
}
