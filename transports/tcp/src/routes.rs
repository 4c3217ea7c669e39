//! [`GroupRoutes`]: which mailbox receives the batches of each Raft group.
//! One transport (one connection per pair of processes) serves every group
//! a process hosts (multi-raft): its receiving side looks the group of each
//! batch up here. The TCP and the HTTP transport both use it.
//!
//! It must never block a connection task on a mailbox (delivery is
//! `do_send`), nor deliver a batch to any group but its own.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;

use actix::Recipient;
use raft_actors::core::{GroupId, Message};
use raft_actors::transport::Peer;

/// The mailbox of each group served; groups may come and go while the
/// transport runs.
///
/// ```
/// use raft_actors_transport_tcp::routes::GroupRoutes;
/// let routes = GroupRoutes::default();
/// assert!(!routes.serves(3));
/// // A batch of a group not served is handed back, undelivered.
/// assert!(routes.deliver(3, vec![]).is_err());
/// ```
#[derive(Default)]
pub struct GroupRoutes {
    inboxes: RwLock<BTreeMap<GroupId, Recipient<Peer>>>,
}

impl fmt::Debug for GroupRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inboxes = self.inboxes.read().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("GroupRoutes")
            .field("groups", &inboxes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl GroupRoutes {
    /// Delivers `group`'s batches to `inbox` from now on (replacing an
    /// earlier mailbox: a group's node restarted).
    pub fn set(&self, group: GroupId, inbox: Recipient<Peer>) {
        let mut inboxes = self.inboxes.write().unwrap_or_else(|p| p.into_inner());
        inboxes.insert(group, inbox);
    }

    /// Stops delivering `group`'s batches; answers whether it was served.
    pub fn remove(&self, group: GroupId) -> bool {
        let mut inboxes = self.inboxes.write().unwrap_or_else(|p| p.into_inner());
        inboxes.remove(&group).is_some()
    }

    /// Whether `group` has a mailbox.
    pub fn serves(&self, group: GroupId) -> bool {
        let inboxes = self.inboxes.read().unwrap_or_else(|p| p.into_inner());
        inboxes.contains_key(&group)
    }

    /// How many groups are served.
    pub fn len(&self) -> usize {
        let inboxes = self.inboxes.read().unwrap_or_else(|p| p.into_inner());
        inboxes.len()
    }

    /// Whether no group is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands `messages` to `group`'s mailbox as one [`Peer`] message (a
    /// stopped node drops it: a crashed peer, to Raft). A group not served
    /// gets nothing: the messages come back in `Err`.
    pub fn deliver(&self, group: GroupId, messages: Vec<Message>) -> Result<(), Vec<Message>> {
        let inboxes = self.inboxes.read().unwrap_or_else(|p| p.into_inner());
        match inboxes.get(&group) {
            Some(inbox) => {
                inbox.do_send(Peer { messages });
                Ok(())
            }
            None => Err(messages),
        }
    }
}
