//! [`GroupSender`]: one Raft group's sending side on a transport that
//! many groups share (multi-raft): a node's [`Transport`] whose batches
//! the shared transport tags with the node's group.
//!
//! It holds no queue of its own and must never reorder or merge batches:
//! it hands each one to the shared transport, which queues it beside the
//! other groups' on the one link to the peer.

use std::fmt;
use std::sync::Arc;

use super::{Transport, TransportError};
use crate::core::{GroupId, Message, NodeId};

/// A transport that carries the batches of many Raft groups.
pub trait SharedTransport: Send + Sync + 'static {
    /// Queues `messages` of group `group`, all addressed to `to`, as
    /// [`Transport::send`] does one node's.
    fn send_group(
        &self,
        to: NodeId,
        group: GroupId,
        messages: Vec<Message>,
    ) -> Result<(), TransportError>;
}

/// The sending side of group `group`'s node on a [`SharedTransport`].
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use raft_actors::core::{GroupId, Message, NodeId};
/// use raft_actors::transport::{GroupSender, SharedTransport, Transport, TransportError};
/// #[derive(Default)]
/// struct Log(Mutex<Vec<(NodeId, GroupId)>>);
/// impl SharedTransport for Log {
///     fn send_group(&self, to: NodeId, group: GroupId, _: Vec<Message>) -> Result<(), TransportError> {
///         self.0.lock().unwrap().push((to, group));
///         Ok(())
///     }
/// }
/// let shared = Arc::new(Log::default());
/// GroupSender::new(shared.clone(), 7).send(2, vec![])?;
/// GroupSender::new(shared.clone(), 9).send(3, vec![])?;
/// assert_eq!(*shared.0.lock().unwrap(), vec![(2, 7), (3, 9)]);
/// # Ok::<(), TransportError>(())
/// ```
#[derive(Clone)]
pub struct GroupSender {
    shared: Arc<dyn SharedTransport>,
    group: GroupId,
}

impl GroupSender {
    /// Group `group`'s handle on `shared`.
    pub fn new(shared: Arc<dyn SharedTransport>, group: GroupId) -> Self {
        GroupSender { shared, group }
    }

    /// The group its batches are tagged with.
    pub fn group(&self) -> GroupId {
        self.group
    }
}

impl fmt::Debug for GroupSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSender")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Transport for GroupSender {
    fn send(&self, to: NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.shared.send_group(to, self.group, messages)
    }
}
