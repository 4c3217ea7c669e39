//! The Raft paper's five safety properties (Figure 3), plus linearizable
//! reads and exactly-once commands, checked against everything a simulated
//! cluster does.
//!
//! It observes from outside: what nodes persisted, applied and answered,
//! and each node's public status. It must never trust the core's own
//! bookkeeping for a verdict.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::node::{state_hash, StateMachine};
use crate::core::{Entry, LogIndex, NodeId, Payload, RaftCore, Role, Term};

/// A safety or liveness property of the Raft paper (Figure 3), or of reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    /// At most one leader per term.
    ElectionSafety,
    /// A leader never overwrites or deletes entries in its log.
    LeaderAppendOnly,
    /// Two logs with an entry of the same index and term are identical up
    /// to it.
    LogMatching,
    /// An entry committed in a term is in the log of every leader of a
    /// later term.
    LeaderCompleteness,
    /// No two nodes apply different entries at one index.
    StateMachineSafety,
    /// A read answer reflects every write acknowledged before it began.
    LinearizableRead,
    /// A client's command is appended at most once, however often the
    /// network delivers its (forwarded) proposal: each command is stored at
    /// one (index, term) only, so it can apply only once.
    ExactlyOnce,
    /// An entry a leader counts as committed is on the disks of a quorum
    /// (§5.3 "replicated on a majority", with Figure 2's rule that a
    /// server's stable storage is what it promises): a crash of every node
    /// at that moment must not lose it.
    DurableCommit,
    /// After faults heal, a leader is elected and a proposal commits.
    Liveness,
}

/// A property found broken, with what showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property.
    pub property: Property,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} violated: {}", self.property, self.detail)
    }
}

impl std::error::Error for Violation {}

fn violation(property: Property, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

/// Everything observed so far, checked incrementally.
#[derive(Debug, Default)]
pub struct Checker {
    /// Leader of each term seen.
    leaders: BTreeMap<Term, NodeId>,
    /// Per (node, term) while leading: the log end last seen and its term.
    leader_logs: HashMap<(NodeId, Term), (LogIndex, Term)>,
    /// (index, term) -> (previous entry's term if known, payload) as persisted.
    persisted: HashMap<(LogIndex, Term), (Option<Term>, Payload)>,
    /// The entries applied anywhere: index i at position i - 1.
    applied: Vec<Entry>,
    /// State hash after applying each index (see `state_hash`).
    hashes: Vec<u64>,
    /// Lowest term in which a leader reported each index committed.
    commit_term: Vec<Term>,
    /// Next index each node must apply.
    next_apply: BTreeMap<NodeId, LogIndex>,
    /// Highest index of a write acknowledged to a client so far.
    acked_max: LogIndex,
    /// Where each command was appended (its payload: the simulation's
    /// commands are unique).
    commands: HashMap<bytes::Bytes, (LogIndex, Term)>,
    /// Per (node, term) while leading: the commit index last checked.
    leader_commits: HashMap<(NodeId, Term), LogIndex>,
}

impl Checker {
    /// A node restarted from disk: it applies from index 1 again.
    pub fn restarted(&mut self, node: NodeId) {
        self.next_apply.insert(node, 1);
    }

    /// Log Matching, checked where logs are made: every persisted entry is
    /// recorded with the term before it and its payload; one (index, term)
    /// with two histories is a violation.
    pub fn persisted(
        &mut self,
        node: NodeId,
        prev_term: Option<Term>,
        entries: &[Entry],
    ) -> Result<(), Violation> {
        let mut prev = prev_term;
        for e in entries {
            let seen = self
                .persisted
                .entry((e.index, e.term))
                .or_insert((prev, e.payload.clone()));
            if seen.0.is_none() {
                seen.0 = prev;
            }
            let prev_differs = matches!((seen.0, prev), (Some(a), Some(b)) if a != b);
            if prev_differs || seen.1 != e.payload {
                return violation(
                    Property::LogMatching,
                    format!(
                        "node {node} stored {}/{} after term {prev:?}; elsewhere it follows term {:?} or differs",
                        e.index, e.term, seen.0
                    ),
                );
            }
            prev = Some(e.term);
        }
        Ok(())
    }

    /// Exactly-once, for entries `node` persisted, when every command
    /// proposed is distinct (the simulation's are): a command stored
    /// anywhere sits at the one (index, term) where it was first seen; a
    /// second place means a leader appended it twice (a duplicated or
    /// replayed forward taken as new), so it could apply twice.
    pub fn unique_commands(&mut self, node: NodeId, entries: &[Entry]) -> Result<(), Violation> {
        for e in entries {
            let Payload::Command(c) = &e.payload else {
                continue;
            };
            let at = *self.commands.entry(c.clone()).or_insert((e.index, e.term));
            if at != (e.index, e.term) {
                return violation(
                    Property::ExactlyOnce,
                    format!(
                        "node {node} stored command {:?} at {}/{}; it was appended at {}/{} too",
                        String::from_utf8_lossy(c),
                        e.index,
                        e.term,
                        at.0,
                        at.1
                    ),
                );
            }
        }
        Ok(())
    }

    /// A node's state machine was restored from a snapshot: it must equal
    /// what applying the log up to its index gives, and applying resumes
    /// after it.
    pub fn restored(&mut self, node: NodeId, state: StateMachine) -> Result<(), Violation> {
        if state.index > 0 && self.hashes.get(state.index as usize - 1) != Some(&state.hash) {
            return violation(
                Property::StateMachineSafety,
                format!(
                    "node {node} restored a snapshot at {} that differs from the applied log",
                    state.index
                ),
            );
        }
        self.next_apply.insert(node, state.index + 1);
        Ok(())
    }

    /// State Machine Safety: applies happen in order, and one index never
    /// applies two different entries.
    pub fn applied(&mut self, node: NodeId, e: &Entry) -> Result<(), Violation> {
        let expected = self.next_apply.entry(node).or_insert(1);
        if e.index != *expected {
            return violation(
                Property::StateMachineSafety,
                format!(
                    "node {node} applied index {} when {} was next",
                    e.index, expected
                ),
            );
        }
        *expected += 1;
        match self.applied.get(e.index as usize - 1) {
            Some(first) if first != e => violation(
                Property::StateMachineSafety,
                format!(
                    "node {node} applied {}/{} where {}/{} was applied before",
                    e.index, e.term, first.index, first.term
                ),
            ),
            Some(_) => Ok(()),
            None => {
                let prev = self.hashes.last().copied().unwrap_or(0);
                self.hashes.push(state_hash(prev, e));
                self.applied.push(e.clone());
                Ok(())
            }
        }
    }

    /// Checks one live node's status after it acted: Election Safety,
    /// Leader Append-Only, and Leader Completeness for what it commits.
    pub fn observe(&mut self, core: &RaftCore, all: &[&RaftCore]) -> Result<(), Violation> {
        if core.role() != Role::Leader {
            return Ok(()); // cheap exit: only leaders are checked here
        }
        let s = core.status();
        let leader = *self.leaders.entry(s.term).or_insert(s.id);
        if leader != s.id {
            return violation(
                Property::ElectionSafety,
                format!("nodes {leader} and {} both led term {}", s.id, s.term),
            );
        }
        let key = (s.id, s.term);
        let newly_leader = !self.leader_logs.contains_key(&key);
        if let Some(&(last, last_term)) = self.leader_logs.get(&key) {
            let now_term = core.entries(last, last).first().map(|e| e.term);
            // An entry compacted away is covered by a snapshot; skip it.
            let compacted = last < s.first_index;
            if s.last_index < last || (last > 0 && !compacted && now_term != Some(last_term)) {
                return violation(
                    Property::LeaderAppendOnly,
                    format!(
                        "leader {} of term {} had {last}/{last_term}, now ends at {}",
                        s.id, s.term, s.last_index
                    ),
                );
            }
        }
        self.leader_logs.insert(key, (s.last_index, s.last_term));
        if newly_leader {
            self.check_completeness(core, 1, self.commit_term.len() as u64)?;
        }
        // What this leader commits is committed in its term at the latest:
        // lower the recorded commit term where it was higher, then every
        // leader of a later term must hold those entries. Commit terms never
        // decrease along the log (a commit covers the prefix), so the
        // entries to lower form a suffix.
        let limit = s.commit.min(self.applied.len() as u64) as usize;
        let known = self.commit_term.len();
        let start = self.commit_term.partition_point(|t| *t <= s.term);
        let mut changed = None;
        for slot in start..known.min(limit) {
            self.commit_term[slot] = s.term;
            changed.get_or_insert(slot);
        }
        for slot in known..limit {
            self.commit_term.push(s.term);
            changed.get_or_insert(slot);
        }
        if let Some(lo) = changed {
            for other in all {
                self.check_completeness(other, lo as u64 + 1, limit as u64)?;
            }
        }
        Ok(())
    }

    /// Durable Commit for `core` if it leads: once it moves its commit
    /// index, the entry there is on the disks of a quorum of its
    /// configuration. `on_disk(node, index, term)` says whether a node's
    /// disk holds that entry (or a snapshot covering it). The commit index
    /// a node has on becoming leader is the previous leader's, checked
    /// then.
    pub fn commit_durable(
        &mut self,
        core: &RaftCore,
        on_disk: impl Fn(NodeId, LogIndex, Term) -> bool,
    ) -> Result<(), Violation> {
        if core.role() != Role::Leader {
            return Ok(());
        }
        let commit = core.commit();
        let key = (core.id(), core.term());
        let Some(last) = self.leader_commits.insert(key, commit) else {
            return Ok(()); // its first look as leader: the baseline
        };
        if commit <= last {
            return Ok(());
        }
        let Some(term) = core.entries(commit, commit).first().map(|e| e.term) else {
            return Ok(()); // compacted: a snapshot covers it
        };
        if core.membership().has_quorum(|id| on_disk(id, commit, term)) {
            return Ok(());
        }
        violation(
            Property::DurableCommit,
            format!(
                "leader {} of term {} committed {commit}/{term}, on the disks of no quorum of {:?}",
                core.id(),
                core.term(),
                core.membership()
            ),
        )
    }

    /// Leader Completeness for `core` if it leads: it holds every entry in
    /// `from..=to` that was committed in an earlier term than its own.
    fn check_completeness(
        &self,
        core: &RaftCore,
        from: LogIndex,
        to: LogIndex,
    ) -> Result<(), Violation> {
        if core.role() != Role::Leader || from > to {
            return Ok(());
        }
        let term = core.term();
        // Entries compacted into the leader's snapshot are covered by it
        // (snapshots are checked against the log when restored).
        let first = core.status().first_index.max(from);
        let slots = (first as usize - 1)..(to as usize).min(self.commit_term.len());
        for slot in slots {
            let committed_in = self.commit_term[slot];
            if committed_in >= term {
                break; // and so are all later ones
            }
            let want = &self.applied[slot];
            let have = core.entries(want.index, want.index).first();
            if have.map(|e| e.term) != Some(want.term) {
                return violation(
                    Property::LeaderCompleteness,
                    format!(
                        "leader {} of term {term} lacks {}/{} committed in term {committed_in}",
                        core.id(),
                        want.index,
                        want.term
                    ),
                );
            }
        }
        Ok(())
    }

    /// A client saw its write at `index` applied: reads that begin from now
    /// on must reflect it.
    pub fn write_acked(&mut self, index: LogIndex) {
        self.acked_max = self.acked_max.max(index);
    }

    /// A read begins: what it must reflect.
    pub fn read_began(&self) -> LogIndex {
        self.acked_max
    }

    /// A read that began when `must_reflect` was acknowledged got `index`.
    pub fn read_answered(
        &mut self,
        node: NodeId,
        must_reflect: LogIndex,
        index: LogIndex,
    ) -> Result<(), Violation> {
        if index < must_reflect {
            return violation(
                Property::LinearizableRead,
                format!("node {node} answered a read at index {index}, but a write (or read) at {must_reflect} completed before it began"),
            );
        }
        // A client saw the state at `index`: reads that begin from now on
        // must not see an older one.
        self.acked_max = self.acked_max.max(index);
        Ok(())
    }

    /// How many entries were applied somewhere.
    pub fn applied_len(&self) -> usize {
        self.applied.len()
    }
}
