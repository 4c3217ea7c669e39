//! The faults and operator actions a run injects: partitions, crashes and
//! restarts, doomed new leaders, membership changes, leadership transfers,
//! snapshots, and the final heal. Each decides by the run's RNG alone, and
//! must never touch a core except through its public API.

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Sim;
use crate::core::{ConfChange, NodeId, Role, Term};
use crate::simulation::{NetworkFaults, Violation};

impl Sim<'_> {
    pub(super) fn inject_faults(&mut self) {
        let cfg = self.cfg;
        // New leaders elected since the last tick may be doomed.
        let leaders: Vec<(NodeId, Term)> = self
            .nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .filter(|c| c.role() == Role::Leader)
            .map(|c| (c.id(), c.term()))
            .collect();
        for (id, term) in leaders {
            if self.seen_leaders.insert((id, term)) && self.rng.gen_bool(cfg.new_leader_crash_rate)
            {
                let at = self.now + self.rng.gen_range(1..=8);
                self.doomed.push((at, id, term));
            }
        }
        let now = self.now;
        let due: Vec<(u64, NodeId, Term)> =
            self.doomed.iter().copied().filter(|d| d.0 <= now).collect();
        self.doomed.retain(|d| d.0 > now);
        for (_, id, term) in due {
            let still = self
                .nodes
                .get(&id)
                .and_then(|n| n.core.as_ref())
                .is_some_and(|c| c.term() == term);
            if still {
                self.crash(id);
            }
        }
        if self.rng.gen_bool(cfg.partition_rate) {
            let n = self.ids.len();
            match self.rng.gen_range(0..4) {
                // The leader is the node whose isolation tests the most.
                3 => {
                    if let Some(l) = self.leader() {
                        self.net.isolate(l, &self.ids);
                        self.trace(|| format!("partition: isolate leader {l}"));
                    }
                }
                0 => {
                    let a = self.ids[self.rng.gen_range(0..n)];
                    self.net.isolate(a, &self.ids);
                    self.trace(|| format!("partition: isolate {a}"));
                }
                1 => {
                    let mut side: Vec<NodeId> = self
                        .ids
                        .iter()
                        .copied()
                        .filter(|_| self.rng.gen_bool(0.5))
                        .collect();
                    side.truncate(n / 2);
                    self.net.split(&side, &self.ids);
                    self.trace(|| format!("partition: split {side:?} from the rest"));
                }
                _ => {
                    let a = self.ids[self.rng.gen_range(0..n)];
                    let b = self.ids[self.rng.gen_range(0..n)];
                    self.net.cut(a, b);
                    self.trace(|| format!("partition: cut {a} -> {b}"));
                }
            }
        }
        if self.rng.gen_bool(cfg.heal_rate) {
            self.net.heal();
            self.trace(|| "partition: heal".into());
        }
        if self.rng.gen_bool(cfg.crash_rate) {
            let live = self.live();
            let leader = self.leader().filter(|_| self.rng.gen_bool(0.5));
            if let Some(id) = leader
                .or_else(|| (!live.is_empty()).then(|| live[self.rng.gen_range(0..live.len())]))
            {
                self.crash(id);
            }
        }
        for id in self.ids.clone() {
            if self.nodes[&id].core.is_none() && self.rng.gen_bool(cfg.restart_rate) {
                self.pending_restarts.push(id);
            }
        }
    }

    pub(super) fn crash(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.crash();
            // The disk keeps a prefix of the writes it was not asked to
            // sync: a restart may see an older commit index.
            let keep = self.rng.gen_range(0..=n.disk.unsynced());
            n.disk.lose_unsynced(keep);
        }
        self.report.crashes += 1;
        // A crash empties a stalled node's mailbox; its clock restarts
        // with its core.
        self.stalled_until.remove(&id);
        self.held.remove(&id);
        // Whatever the node's clients waited for is now unknown.
        self.landed.retain(|(n, _), _| *n != id);
        self.reads.retain(|_, (n, _)| *n != id);
        self.trace(|| format!("crash {id}"));
    }

    pub(super) fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        let seed = self.rng.gen();
        self.trace(|| format!("restart {id}"));
        let Some(n) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        // The config was valid at start, so it is now.
        if let Ok(restored) = n.restart(seed) {
            self.checker.restarted(id);
            if let Some(state) = restored {
                self.report.snapshots_restored += 1;
                self.checker.restored(id, state)?;
            }
        }
        Ok(())
    }

    /// Asks the leader, now and then, to hand leadership to a random voter.
    pub(super) fn transfer_leadership(&mut self) {
        if !self.rng.gen_bool(self.cfg.transfer_rate) {
            return;
        }
        let Some(leader) = self.leader().filter(|l| !self.is_stalled(*l)) else {
            return;
        };
        let Some(core) = self.nodes.get_mut(&leader).and_then(|n| n.core_now()) else {
            return;
        };
        let voters: Vec<NodeId> = core.membership().voters.iter().copied().collect();
        if voters.is_empty() {
            return;
        }
        let to = voters[self.rng.gen_range(0..voters.len())];
        let r = core.transfer_leader(to);
        self.trace(|| format!("transfer at leader {leader} to {to}: {r:?}"));
    }

    /// Asks the leader for a random membership change: grow, shrink,
    /// promote, replace (joint), remove the leader itself.
    pub(super) fn change_membership(&mut self) {
        if !self.rng.gen_bool(self.cfg.membership_rate) {
            return;
        }
        let Some(leader) = self.leader().filter(|l| !self.is_stalled(*l)) else {
            return;
        };
        let Some(core) = self.nodes.get(&leader).and_then(|n| n.core.as_ref()) else {
            return;
        };
        let m = core.status().membership;
        let outsiders: Vec<NodeId> = self
            .ids
            .iter()
            .copied()
            .filter(|id| !m.contains(*id))
            .collect();
        let voters: Vec<NodeId> = m.voters.iter().copied().collect();
        let learners: Vec<NodeId> = m.learners.iter().copied().collect();
        let pick = |rng: &mut ChaCha8Rng, v: &[NodeId]| {
            (!v.is_empty()).then(|| v[rng.gen_range(0..v.len())])
        };
        let change = match self.rng.gen_range(0..8) {
            0 => pick(&mut self.rng, &outsiders).map(ConfChange::AddLearner),
            1 => pick(&mut self.rng, &learners).map(ConfChange::AddVoter),
            2 => pick(&mut self.rng, &voters)
                .filter(|_| voters.len() > 1)
                .map(ConfChange::Remove),
            3 => pick(&mut self.rng, &learners).map(ConfChange::Remove),
            4 => Some(ConfChange::Remove(leader)).filter(|_| voters.len() > 2),
            // Several voters at once, through a joint configuration:
            5 => {
                // replace one voter by a learner,
                let out = pick(&mut self.rng, &voters);
                let into = pick(&mut self.rng, &learners);
                out.zip(into).map(|(x, a)| {
                    let mut v = m.voters.clone();
                    v.remove(&x);
                    v.insert(a);
                    let rest = m.learners.iter().copied().filter(|l| *l != a).collect();
                    ConfChange::Replace {
                        voters: v,
                        learners: rest,
                    }
                })
            }
            6 => {
                // promote every learner at once,
                let mut v = m.voters.clone();
                v.extend(learners.iter().copied());
                (learners.len() >= 2).then_some(ConfChange::Replace {
                    voters: v,
                    learners: BTreeSet::new(),
                })
            }
            _ => {
                // or keep one voter and hand the rest over to the learners:
                // old and new majorities may then share no node.
                let keep = pick(&mut self.rng, &voters);
                keep.filter(|_| learners.len() >= 2).map(|k| {
                    let mut v: BTreeSet<NodeId> = learners.iter().copied().collect();
                    v.insert(k);
                    ConfChange::Replace {
                        voters: v,
                        learners: BTreeSet::new(),
                    }
                })
            }
        };
        let Some(change) = change else { return };
        let req = self.next_id;
        self.next_id += 1;
        if let Some(core) = self.nodes.get_mut(&leader).and_then(|n| n.core_now()) {
            let r = core.propose_conf_change(req, change.clone());
            if r.is_ok() {
                self.report.membership_changes += 1;
            }
            self.trace(|| format!("membership at leader {leader}: {change:?}: {r:?}"));
        }
    }

    pub(super) fn random_snapshot(&mut self) {
        if !self.rng.gen_bool(self.cfg.snapshot_rate) {
            return;
        }
        let live: Vec<NodeId> = self
            .live()
            .into_iter()
            .filter(|id| !self.is_stalled(*id))
            .collect();
        if live.is_empty() {
            return;
        }
        let id = live[self.rng.gen_range(0..live.len())];
        let applied = self.nodes.get_mut(&id).map(|n| {
            n.take_snapshot();
            n.state.index
        });
        self.trace(|| format!("snapshot at {id} (applied {applied:?})"));
    }

    pub(super) fn heal_all(&mut self) -> Result<(), Violation> {
        self.net.heal();
        // A healed network is a good one: no loss, and round trips well
        // inside an election timeout, or liveness could not be expected.
        let max_delay = self
            .cfg
            .network
            .max_delay
            .min(self.cfg.core.election_ticks / 4);
        self.net.faults = NetworkFaults {
            drop: 0.0,
            duplicate: 0.0,
            max_delay,
            replay: 0.0,
            replay_delay: 0,
        };
        // Clocks heal too: under 20% of drift, two voters whose timers
        // race split their votes for longer than the liveness bound allows
        // (safety never depended on it; leases stay checked throughout).
        for n in self.nodes.values_mut() {
            n.clock.set_rate(1_000_000);
        }
        for id in self.ids.clone() {
            if self.nodes[&id].core.is_none() {
                self.restart(id)?;
            }
        }
        self.trace(|| "--- faults healed; liveness phase".into());
        Ok(())
    }
}
