//! Starting a node's groups: the layout it keeps (or is founded with), and
//! one Raft node per group beyond group 0 over the node's one transport.
//!
//! It must never start a group on a layout other than the stored one, nor
//! bootstrap a group on a node its placement does not put it on.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use actix::Arbiter;
use raft_actors::core::NodeId;
use raft_actors::node::{ApplyFactory, ApplyThread, NodeConfig};
use raft_actors::transport::NetworkTransport;
use raft_actors::{Apply, Raft};
use tracing::warn;

use super::{Layout, LayoutError};
use crate::directory::Directory;
use crate::machine::Machine;
use crate::sessions::SessionBounds;
use crate::storage::{GroupStorage, OpenError};
use crate::Service;

/// Files a store of a build before group layouts leaves in its data dir:
/// such a node is a single-group one.
const OLDER_STORE: [&str; 3] = ["raft.redb", "wal", "roster"];

/// The layout of the node whose data dir is `dir`: the one kept there, or,
/// for a new dir, `asked`, with `true`: the caller keeps it
/// ([`Layout::store`]) once the storage opened. A dir a single-group build
/// used is one group. Flags that disagree with a kept layout are warned
/// about and ignored, as `--peers` is. A dir that holds several groups'
/// rosters but lost its layout is refused: guessing would move keys.
pub(crate) fn resolve_layout(
    dir: Option<&Path>,
    asked: Layout,
) -> Result<(Layout, bool), OpenError> {
    let Some(dir) = dir else {
        return Ok((asked, false));
    };
    std::fs::create_dir_all(dir).map_err(|source| OpenError::DataDir {
        dir: dir.display().to_string(),
        source,
    })?;
    if let Some(kept) = Layout::load(dir)? {
        if (kept.groups, kept.replication) != (asked.groups, asked.replication) {
            warn!(
                kept_groups = kept.groups,
                kept_replication = kept.replication,
                asked_groups = asked.groups,
                asked_replication = asked.replication,
                "--groups/--replication disagree with the layout this node was founded with; keeping it"
            );
        }
        return Ok((kept, false));
    }
    if dir.join("roster-1").exists() {
        return Err(LayoutError::Damaged {
            path: dir.join("groups"),
            reason: "missing, though the data dir holds several groups".into(),
        }
        .into());
    }
    let older = OLDER_STORE.iter().any(|f| dir.join(f).exists());
    let layout = if older {
        if asked.groups != 1 {
            warn!(
                asked = asked.groups,
                "this data dir holds one group (written before group layouts); ignoring --groups"
            );
        }
        Layout::single(asked.voters)
    } else {
        asked
    };
    Ok((layout, true))
}

/// What the groups beyond group 0 start from.
pub(crate) struct GroupStart<'a> {
    pub id: NodeId,
    pub layout: &'a Layout,
    /// Whether the node was started with `--peers` (it founds the groups it
    /// is placed on; without, it waits to be added to each).
    pub founding: bool,
    pub cfg: &'a NodeConfig,
    pub network: &'a Arc<dyn NetworkTransport>,
    pub sessions: SessionBounds,
    pub timeout: std::time::Duration,
}

/// Starts groups `1..` on `storages` (index 0 is group 1's), their state
/// machines on a few shared threads; answers the nodes and the threads.
pub(crate) fn start_groups<S: Service>(
    at: GroupStart<'_>,
    storages: Vec<GroupStorage>,
) -> (Vec<Raft<Machine<S>>>, Vec<Arbiter>) {
    let threads: Vec<Arbiter> = if storages.is_empty() {
        Vec::new()
    } else {
        (0..2).map(|_| Arbiter::new()).collect()
    };
    let rafts = (1..)
        .zip(storages)
        .map(|(g, (storage, roster))| {
            let holders: BTreeSet<NodeId> = at.layout.holders(g);
            let mut cfg = at.cfg.clone();
            cfg.bootstrap_voters = (at.founding && holders.contains(&at.id)).then_some(holders);
            cfg.roster = roster;
            // Groups of one node must not all time out on the same tick.
            cfg.seed = cfg.seed.wrapping_add(g.wrapping_mul(7919));
            cfg.apply_thread = ApplyThread::On(threads[(g as usize) % threads.len()].handle());
            // Only group 0's state machine keeps the address book that
            // reaches the transport.
            let book = Directory::new(Arc::new(|_, _| {}));
            let sessions = at.sessions;
            let apply: ApplyFactory<Machine<S>> = Arc::new(move || {
                Box::new(Machine::<S>::new(book.clone(), sessions)) as Box<dyn Apply<Machine<S>>>
            });
            let raft = Raft::start(at.id, cfg, storage, at.network.group_sender(g), apply)
                .with_timeout(at.timeout);
            at.network.serve_group(g, raft.addr().clone().recipient());
            raft
        })
        .collect();
    (rafts, threads)
}
