//! The one trait that names a service's types, and the encoding of its
//! commands into the log.
//!
//! A command is encoded once, by the caller's [`Raft`](crate::Raft) handle,
//! into the core's opaque bytes (a version byte, then postcard), and decoded
//! once per node when applied. Must never panic on a corrupt record: decoding
//! returns [`CodecError`], which the node treats as fatal.

use std::fmt::Debug;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// The user's types, tied together so user code names one type, not five.
///
/// ```
/// use raft_actors::TypeConfig;
/// #[derive(Debug)]
/// struct Kv;
/// impl TypeConfig for Kv {
///     type Command = (String, String); // set key to value
///     type Output = Option<String>;    // the previous value
///     type Query = String;             // get a key
///     type QueryAnswer = Option<String>;
///     type Snapshot = Vec<(String, String)>;
/// }
/// ```
pub trait TypeConfig: 'static + Send + Sync + Unpin {
    /// A write, replicated through the log.
    type Command: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Debug;
    /// What applying a command returns to its proposer.
    type Output: Send + Debug;
    /// A read-only question to the state machine.
    type Query: Send;
    /// The answer to a [`Query`](Self::Query).
    type QueryAnswer: Send;
    /// The whole state machine, as saved in a snapshot.
    type Snapshot: serde::Serialize + serde::de::DeserializeOwned + Send + 'static;
}

/// The format version written before every record. Bumped on an
/// incompatible change so an old node refuses what it cannot read instead of
/// misreading it.
pub const FORMAT_VERSION: u8 = 1;

/// A record that cannot be encoded or decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    /// The record is empty: not even a version byte.
    #[error("empty record")]
    Empty,
    /// The record was written by an unknown format version.
    #[error("unknown format version {0}")]
    Version(u8),
    /// postcard refused the bytes (truncated, trailing garbage, bad value).
    #[error("malformed record: {0}")]
    Malformed(String),
}

/// Encodes `value` as a version byte followed by postcard.
///
/// ```
/// use raft_actors::type_config::{decode, encode};
/// let bytes = encode(&(1u32, "x".to_string()))?;
/// assert_eq!(decode::<(u32, String)>(&bytes)?, (1, "x".to_string()));
/// assert!(decode::<(u32, String)>(&bytes[..2]).is_err()); // truncated
/// # Ok::<(), raft_actors::type_config::CodecError>(())
/// ```
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, CodecError> {
    // Sized first: the bytes live on in the log (and in the state machine
    // that keeps them), and a vec grown by doubling would hold up to twice
    // their size for as long.
    let size = postcard::experimental::serialized_size(value)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    let mut buf = Vec::with_capacity(1 + size);
    buf.push(FORMAT_VERSION);
    // postcard appends to the vec it is given, so the version byte stays in
    // front without a second copy.
    let buf = postcard::to_extend(value, buf).map_err(|e| CodecError::Malformed(e.to_string()))?;
    Ok(Bytes::from(buf))
}

/// Decodes a record written by [`encode`]. Trailing bytes are an error: a
/// record is exactly one value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version(version));
    }
    let (value, tail) =
        postcard::take_from_bytes(rest).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !tail.is_empty() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes",
            tail.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let good = encode(&("key".to_string(), 7u64)).expect("encodes");
        assert_eq!(decode::<(String, u64)>(&[]), Err(CodecError::Empty));
        let mut bad_version = good.to_vec();
        bad_version[0] = 9;
        assert_eq!(
            decode::<(String, u64)>(&bad_version),
            Err(CodecError::Version(9))
        );
        for cut in 1..good.len() {
            assert!(
                decode::<(String, u64)>(&good[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(decode::<(String, u64)>(&trailing).is_err());
    }
}
