//! Scenario tests as data files (`testdata/*.txt`), in the style of etcd
//! raft's datadriven tests: each file is a story of commands driving pure
//! cores, with the expected output under each. After an intended change,
//! regenerate the expected output and review the diff:
//!
//! `REWRITE=1 cargo test -p raft-actors --test scenarios`
//!
//! Commands (node ids are bare numbers):
//! - `cluster voters=(1,2,3) [learners=(4)] [prevote=false] [checkquorum=false]
//!   [election=10] [heartbeat=1] [max-entries=N] [inflight=N] [seed=N]`
//! - `log id=(2,3) terms=(1,1,4) [term=T] [commit=C]`: a node's stored log,
//!   then restart it from that
//! - `campaign 1`, `tick 1 2 [times=K] [settle]` (no ids: every node; `settle`
//!   delivers all messages after each tick), `propose 1 [cmd=x] [count=N]`,
//!   `read 1 [lease]`, `transfer 1 to=2`
//! - `deliver [from=1] [to=2] [kinds=(Append,...)]`: delivers matching queued
//!   messages (and the answers they cause, if they match) until none is left,
//!   printing each; `drop ...` discards them instead
//! - `duplicate [from=1] [to=2] [kinds=(..)] [hold]`: queues a copy of each
//!   matching queued message (a duplicating network), printing it; with
//!   `hold` the copies wait aside until `replay` queues them (a copy
//!   delivered long after, in a later term)
//! - `stabilize [nodes=(1,2)]`: delivers everything until quiet; messages to
//!   or from nodes outside `nodes` are lost
//! - `isolate 1`, `cut from=1 to=2` (one way), `heal`, `crash 1
//!   [lose-unsynced]` (the disk loses every write it was not asked to sync),
//!   `restart 1`
//! - `change 1 add-learner=4|add-voter=4|remove=4|voters=(..) [learners=(..)]|leave-joint`:
//!   a membership change proposed at leader 1; `members [1 2]` prints
//!   configurations; `snapshot 1` snapshots node 1's state machine
//! - `cluster ... [spares=(4,5)] [snapshot-threshold=N] [trailing=N] [chunk=N]
//!   [snapshot-padding=N] [promotion-lag=N] [auto-leave=false] [quiesce=N]`
//! - `status [1 2]`, `queue`
//!
//! Every command also runs the simulation's safety checker, so a story that
//! breaks a Raft property fails loudly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use bytes::Bytes;
use datadriven::TestCase;
use raft_actors::core::{
    Body, ConfChange, Config, Entry, HardState, Membership, Message, NodeId, Payload, Role, Term,
};
use raft_actors::simulation::{Checker, SimNode, StateMachine};

#[derive(Default)]
struct Scenario {
    nodes: BTreeMap<NodeId, SimNode>,
    queue: Vec<Message>,
    /// Copies held back by `duplicate hold`, queued again by `replay`.
    held: Vec<Message>,
    cut: BTreeSet<(NodeId, NodeId)>,
    checker: Checker,
    next_seed: u64,
    next_req: u64,
    seen: BTreeMap<NodeId, Option<(Role, Term, Option<NodeId>)>>,
    events: Vec<String>,
    /// Every snapshot a node recorded, by node and index (for `unreadable`).
    taken: BTreeMap<(NodeId, u64), raft_actors::core::Snapshot>,
}

type Res = Result<String, String>;

fn ids(tc: &TestCase) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = tc
        .args
        .iter()
        .filter(|(_, vals)| vals.is_empty())
        .filter_map(|(k, _)| k.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

fn list<T: std::str::FromStr>(tc: &TestCase, key: &str) -> Result<Option<Vec<T>>, String> {
    match tc.args.get(key) {
        None => Ok(None),
        Some(vals) => vals
            .iter()
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| format!("bad value {v:?} for {key}"))
            })
            .collect::<Result<Vec<T>, String>>()
            .map(Some),
    }
}

fn one<T: std::str::FromStr>(tc: &TestCase, key: &str) -> Result<Option<T>, String> {
    Ok(list::<T>(tc, key)?.and_then(|v| v.into_iter().next()))
}

fn flag(tc: &TestCase, key: &str) -> bool {
    tc.args.contains_key(key)
}

fn compact_log(entries: &[Entry]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < entries.len() {
        let mut j = i;
        while j + 1 < entries.len() && entries[j + 1].term == entries[i].term {
            j += 1;
        }
        let (a, b, t) = (entries[i].index, entries[j].index, entries[i].term);
        if !out.is_empty() {
            out.push(' ');
        }
        if a == b {
            let _ = write!(out, "{a}/{t}");
        } else {
            let _ = write!(out, "{a}..{b}/{t}");
        }
        i = j + 1;
    }
    if out.is_empty() {
        out.push_str("empty");
    }
    out
}

fn describe(m: &Message) -> String {
    let head = format!("{}->{} {} t{}", m.from, m.to, m.body.kind(), m.term);
    let tail = match &m.body {
        Body::PreVote {
            last_index,
            last_term,
        } => format!("last={last_index}/{last_term}"),
        Body::Vote {
            last_index,
            last_term,
            transfer,
        } => {
            format!(
                "last={last_index}/{last_term}{}",
                if *transfer { " transfer" } else { "" }
            )
        }
        Body::PreVoteResponse { granted } | Body::VoteResponse { granted } => {
            (if *granted { "granted" } else { "rejected" }).to_string()
        }
        Body::Append {
            prev_index,
            prev_term,
            entries,
            commit,
        } => {
            let es: Vec<String> = entries
                .iter()
                .map(|e| format!("{}/{}", e.index, e.term))
                .collect();
            format!(
                "prev={prev_index}/{prev_term} [{}] commit={commit}",
                es.join(" ")
            )
        }
        Body::AppendResponse {
            index,
            conflict: None,
        } => format!("ok={index}"),
        Body::AppendResponse {
            index,
            conflict: Some(c),
        } => match c.term {
            Some(t) => format!(
                "rejected prev={index} hint: term {t} from {}",
                c.first_index
            ),
            None => format!(
                "rejected prev={index} hint: log ends before {}",
                c.first_index
            ),
        },
        Body::Heartbeat { commit, seq } => format!("commit={commit} seq={seq}"),
        Body::HeartbeatResponse { seq } => format!("seq={seq}"),
        Body::Quiesce { commit, seq } => format!("commit={commit} seq={seq}"),
        Body::TimeoutNow | Body::Wake => String::new(),
        Body::InstallSnapshot {
            meta,
            offset,
            data,
            done,
            ..
        } => format!(
            "snapshot={}/{} bytes={}..{}{}",
            meta.index,
            meta.term,
            offset,
            offset + data.len() as u64,
            if *done { " done" } else { "" }
        ),
        Body::SnapshotResponse {
            index,
            next_offset,
            done,
        } => {
            if *done {
                format!("snapshot={index} installed")
            } else {
                format!("snapshot={index} next={next_offset}")
            }
        }
        Body::ForwardProposals { proposals } => {
            let ps: Vec<String> = proposals.iter().map(|(id, _)| format!("p{id}")).collect();
            format!("[{}]", ps.join(" "))
        }
        Body::ProposalResults { results } => {
            let rs: Vec<String> = results
                .iter()
                .map(|o| match &o.result {
                    Ok((i, t)) => format!("p{}: {i}/{t}", o.id),
                    Err(e) => format!("p{}: {e}", o.id),
                })
                .collect();
            format!("[{}]", rs.join(", "))
        }
        Body::ForwardReads { ids, lease } => {
            let rs: Vec<String> = ids.iter().map(|id| format!("r{id}")).collect();
            format!("[{}]{}", rs.join(" "), if *lease { " lease" } else { "" })
        }
        Body::ReadResults { results } => {
            let rs: Vec<String> = results
                .iter()
                .map(|o| match &o.result {
                    Ok(i) => format!("r{}: {i}", o.id),
                    Err(e) => format!("r{}: {e}", o.id),
                })
                .collect();
            format!("[{}]", rs.join(", "))
        }
        Body::Founding(f) => format!("{f:?}"),
    };
    if tail.is_empty() {
        head
    } else {
        format!("{head} {tail}")
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

impl Scenario {
    fn exec(&mut self, tc: &TestCase) -> String {
        let result = self.dispatch(tc).and_then(|out| self.check().map(|()| out));
        let mut out = match result {
            Ok(s) => s,
            Err(e) => format!("error: {e}\n"),
        };
        let events = std::mem::take(&mut self.events);
        let mut text = String::new();
        for e in events {
            text.push_str(&e);
            text.push('\n');
        }
        text.push_str(&out);
        out = text;
        if out.is_empty() {
            out = "ok\n".into();
        }
        out
    }

    fn dispatch(&mut self, tc: &TestCase) -> Res {
        match tc.directive.as_str() {
            "cluster" => self.cluster(tc),
            "log" => self.log(tc),
            "campaign" => {
                for id in ids(tc) {
                    self.core(id)?.campaign();
                    self.drive(id)?;
                }
                Ok(String::new())
            }
            "tick" => {
                let times = one::<u64>(tc, "times")?.unwrap_or(1);
                let mut targets = ids(tc);
                if targets.is_empty() {
                    targets = self.nodes.keys().copied().collect();
                }
                let settle = flag(tc, "settle");
                for _ in 0..times {
                    for &id in &targets {
                        if let Ok(core) = self.core(id) {
                            core.tick();
                            self.drive(id)?;
                        }
                    }
                    if settle {
                        self.stabilize(None)?;
                    }
                    self.observe_roles();
                }
                Ok(String::new())
            }
            "propose" => {
                let id = *ids(tc).first().ok_or("propose needs a node")?;
                let cmd = one::<String>(tc, "cmd")?.unwrap_or_else(|| "x".into());
                // count=N proposes N commands before the node runs a Ready,
                // as a driver batching what arrived meanwhile would.
                let count = one::<u64>(tc, "count")?.unwrap_or(1);
                let mut out = String::new();
                for _ in 0..count {
                    self.next_req += 1;
                    let req = self.next_req;
                    let r = self.core(id)?.propose(req, Bytes::from(cmd.clone()));
                    let _ = match r {
                        Ok(()) => writeln!(out, "{id}: proposal p{req} submitted"),
                        Err(e) => writeln!(out, "{id}: proposal p{req} refused: {e}"),
                    };
                }
                self.drive(id)?;
                Ok(out)
            }
            "read" => {
                let id = *ids(tc).first().ok_or("read needs a node")?;
                self.next_req += 1;
                let req = self.next_req;
                let core = self.core(id)?;
                let r = if flag(tc, "lease") {
                    core.lease_read(req)
                } else {
                    core.read_index(req)
                };
                self.drive(id)?;
                Ok(match r {
                    Ok(()) => format!("{id}: read r{req} requested\n"),
                    Err(e) => format!("{id}: read r{req} refused: {e}\n"),
                })
            }
            "transfer" => {
                let id = *ids(tc).first().ok_or("transfer needs a node")?;
                let to = one::<NodeId>(tc, "to")?.ok_or("transfer needs to=")?;
                let r = self.core(id)?.transfer_leader(to);
                self.drive(id)?;
                Ok(match r {
                    Ok(()) => format!("{id}: transfer to {to} started\n"),
                    Err(e) => format!("{id}: transfer refused: {e}\n"),
                })
            }
            "deliver" => self.deliver(tc, false),
            "duplicate" => {
                let mut copies = Vec::new();
                for m in &self.queue {
                    if Self::matches(tc, m)? {
                        copies.push(m.clone());
                    }
                }
                let out = copies.iter().map(|m| describe(m) + "\n").collect();
                if flag(tc, "hold") {
                    self.held.extend(copies);
                } else {
                    self.queue.extend(copies);
                }
                Ok(out)
            }
            "replay" => {
                let held = std::mem::take(&mut self.held);
                let out = held.iter().map(|m| describe(m) + "\n").collect();
                self.queue.extend(held);
                Ok(out)
            }
            "drop" => self.deliver(tc, true),
            "stabilize" => {
                let only =
                    list::<NodeId>(tc, "nodes")?.map(|v| v.into_iter().collect::<BTreeSet<_>>());
                self.stabilize(only.as_ref())?;
                let shown: Vec<NodeId> = match &only {
                    Some(set) => set.iter().copied().collect(),
                    None => self.nodes.keys().copied().collect(),
                };
                Ok(self.status(&shown))
            }
            "isolate" => {
                let all: Vec<NodeId> = self.nodes.keys().copied().collect();
                for a in ids(tc) {
                    for &b in all.iter().filter(|b| **b != a) {
                        self.cut.insert((a, b));
                        self.cut.insert((b, a));
                    }
                }
                Ok(String::new())
            }
            "cut" => {
                let from = one::<NodeId>(tc, "from")?.ok_or("cut needs from=")?;
                let to = one::<NodeId>(tc, "to")?.ok_or("cut needs to=")?;
                self.cut.insert((from, to));
                Ok(String::new())
            }
            "heal" => {
                self.cut.clear();
                Ok(String::new())
            }
            "crash" => {
                let lose = flag(tc, "lose-unsynced");
                for id in ids(tc) {
                    let node = self.node(id)?;
                    node.crash();
                    if lose {
                        node.disk.lose_unsynced(0);
                    }
                }
                self.observe_roles();
                Ok(String::new())
            }
            "restart" => {
                for id in ids(tc) {
                    self.restart(id)?;
                }
                self.observe_roles();
                Ok(String::new())
            }
            "status" => {
                let mut shown = ids(tc);
                if shown.is_empty() {
                    shown = self.nodes.keys().copied().collect();
                }
                Ok(self.status(&shown))
            }
            "queue" => Ok(self.queue.iter().map(|m| describe(m) + "\n").collect()),
            "change" => self.change(tc),
            "snapshot" => {
                let mut out = String::new();
                for id in ids(tc) {
                    self.node(id)?.take_snapshot();
                    self.drive(id)?;
                    if let Some(snap) = self.node(id)?.disk.snapshot.clone() {
                        self.taken.insert((id, snap.meta.index), snap);
                    }
                    let s = self.core(id)?.status();
                    let _ = writeln!(
                        out,
                        "{id}: snapshot at {}, log from {}",
                        s.snapshot_index, s.first_index
                    );
                }
                Ok(out)
            }
            // The driver of <id> could not read its snapshot at index=N
            // (missing, short or damaged file): the core is told.
            "unreadable" => {
                let mut out = String::new();
                let index: u64 = one(tc, "index")?.ok_or("unreadable needs index=N")?;
                for id in ids(tc) {
                    let snap = self
                        .taken
                        .get(&(id, index))
                        .cloned()
                        .ok_or_else(|| format!("{id} took no snapshot at {index}"))?;
                    let what = self.core(id)?.snapshot_unreadable(&snap);
                    self.drive(id)?;
                    if let Some(snap) = self.node(id)?.disk.snapshot.clone() {
                        self.taken.insert((id, snap.meta.index), snap);
                    }
                    let _ = writeln!(out, "{id}: snapshot at {index} unreadable: {what:?}");
                }
                Ok(out)
            }
            "members" => {
                let mut shown = ids(tc);
                if shown.is_empty() {
                    shown = self.nodes.keys().copied().collect();
                }
                let mut out = String::new();
                for id in shown {
                    let Some(core) = self.nodes.get(&id).and_then(|n| n.core.as_ref()) else {
                        continue;
                    };
                    let s = core.status();
                    let m = &s.membership;
                    let _ = write!(out, "{id}: voters={:?}", m.voters);
                    if m.is_joint() {
                        let _ = write!(out, " outgoing={:?}", m.outgoing);
                    }
                    if !m.learners.is_empty() {
                        let _ = write!(out, " learners={:?}", m.learners);
                    }
                    let pending = if s.config_index > s.commit {
                        " (pending)"
                    } else {
                        ""
                    };
                    let _ = writeln!(out, " at {}{pending}", s.config_index);
                }
                Ok(out)
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }

    fn change(&mut self, tc: &TestCase) -> Res {
        let id = *ids(tc).first().ok_or("change needs the leader's id")?;
        let node = |k: &str| one::<NodeId>(tc, k);
        let change = if let Some(n) = node("add-learner")? {
            ConfChange::AddLearner(n)
        } else if let Some(n) = node("add-voter")? {
            ConfChange::AddVoter(n)
        } else if let Some(n) = node("remove")? {
            ConfChange::Remove(n)
        } else if let Some(voters) = list::<NodeId>(tc, "voters")? {
            let learners = list::<NodeId>(tc, "learners")?.unwrap_or_default();
            ConfChange::Replace {
                voters: voters.into_iter().collect(),
                learners: learners.into_iter().collect(),
            }
        } else if flag(tc, "leave-joint") {
            ConfChange::LeaveJoint
        } else {
            return Err(
                "change needs add-learner=, add-voter=, remove=, voters= or leave-joint".into(),
            );
        };
        self.next_req += 1;
        let req = self.next_req;
        let r = self.core(id)?.propose_conf_change(req, change);
        self.drive(id)?;
        Ok(match r {
            Ok(_) => format!("{id}: change p{req} submitted\n"),
            Err(e) => format!("{id}: change p{req} refused: {e}\n"),
        })
    }

    fn cluster(&mut self, tc: &TestCase) -> Res {
        let voters = list::<NodeId>(tc, "voters")?.ok_or("cluster needs voters=")?;
        let learners = list::<NodeId>(tc, "learners")?.unwrap_or_default();
        let base = Config::default();
        let cfg = Config {
            pre_vote: one::<bool>(tc, "prevote")?.unwrap_or(true),
            check_quorum: one::<bool>(tc, "checkquorum")?.unwrap_or(true),
            election_ticks: one(tc, "election")?.unwrap_or(base.election_ticks),
            heartbeat_ticks: one(tc, "heartbeat")?.unwrap_or(base.heartbeat_ticks),
            max_entries_per_message: one(tc, "max-entries")?
                .unwrap_or(base.max_entries_per_message),
            max_inflight: one(tc, "inflight")?.unwrap_or(base.max_inflight),
            snapshot_threshold: one(tc, "snapshot-threshold")?.unwrap_or(0),
            trailing_logs: one(tc, "trailing")?.unwrap_or(base.trailing_logs),
            snapshot_chunk_bytes: one(tc, "chunk")?.unwrap_or(base.snapshot_chunk_bytes),
            max_promotion_lag: one(tc, "promotion-lag")?.unwrap_or(base.max_promotion_lag),
            auto_leave_joint: one::<bool>(tc, "auto-leave")?.unwrap_or(true),
            quiesce_after_ticks: one(tc, "quiesce")?,
            ..base
        };
        self.next_seed = one::<u64>(tc, "seed")?.unwrap_or(0);
        let membership = Membership {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            ..Default::default()
        };
        // Spare nodes start empty, outside the cluster, until added.
        let spares = list::<NodeId>(tc, "spares")?.unwrap_or_default();
        let padding = one::<usize>(tc, "snapshot-padding")?.unwrap_or(0);
        for id in voters.iter().chain(&learners).chain(&spares) {
            self.next_seed += 1;
            let boot = if spares.contains(id) {
                Membership::default()
            } else {
                membership.clone()
            };
            let mut node =
                SimNode::new(*id, boot, cfg.clone(), self.next_seed).map_err(|e| e.to_string())?;
            node.snapshot_padding = padding;
            self.nodes.insert(*id, node);
        }
        self.observe_roles();
        self.events.clear();
        Ok("ok\n".into())
    }

    fn log(&mut self, tc: &TestCase) -> Res {
        let targets = list::<NodeId>(tc, "id")?.ok_or("log needs id=")?;
        let terms = list::<Term>(tc, "terms")?.unwrap_or_default();
        let term = one::<Term>(tc, "term")?;
        let commit = one::<u64>(tc, "commit")?.unwrap_or(0);
        for &id in &targets {
            let node = self.node(id)?;
            node.disk.entries = terms
                .iter()
                .enumerate()
                .map(|(i, t)| Entry {
                    index: i as u64 + 1,
                    term: *t,
                    payload: Payload::Command(Bytes::from(format!("{}/{}", i + 1, t))),
                })
                .collect();
            let last = terms.last().copied().unwrap_or(0);
            node.disk.hard_state = HardState {
                term: term.unwrap_or(last).max(last),
                vote: None,
                commit,
            };
            self.restart(id)?;
        }
        self.observe_roles();
        self.events.clear();
        Ok(self.status(&targets))
    }

    fn restart(&mut self, id: NodeId) -> Result<(), String> {
        self.next_seed += 1;
        let seed = self.next_seed;
        let restored = self.node(id)?.restart(seed).map_err(|e| e.to_string())?;
        self.checker.restarted(id);
        if let Some(state) = restored {
            self.checker
                .restored(id, state)
                .map_err(|v| v.to_string())?;
        }
        self.drive(id)
    }

    fn restored(&mut self, id: NodeId, state: StateMachine) -> Result<(), String> {
        self.checker
            .restored(id, state)
            .map_err(|v| v.to_string())?;
        self.events.push(format!(
            "{id}: state machine restored from snapshot at {}",
            state.index
        ));
        Ok(())
    }

    fn node(&mut self, id: NodeId) -> Result<&mut SimNode, String> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))
    }

    fn core(&mut self, id: NodeId) -> Result<&mut raft_actors::core::RaftCore, String> {
        self.node(id)?
            .core
            .as_mut()
            .ok_or_else(|| format!("node {id} is down"))
    }

    /// Executes the node's Ready batches, queueing its messages and noting
    /// what a reader of the story wants to see.
    fn drive(&mut self, id: NodeId) -> Result<(), String> {
        let out = self.node(id)?.drive(None);
        for (prev, entries) in &out.persisted {
            self.checker
                .persisted(id, *prev, entries)
                .map_err(|v| v.to_string())?;
        }
        let mut restores = out.restored.iter().peekable();
        for (i, e) in out.applied.iter().enumerate() {
            while let Some((_, state)) = restores.next_if(|(before, _)| *before <= i) {
                self.restored(id, *state)?;
            }
            self.checker.applied(id, e).map_err(|v| v.to_string())?;
        }
        for (_, state) in restores {
            self.restored(id, *state)?;
        }
        self.queue.extend(out.messages);
        for p in out.proposals {
            self.events.push(match p.result {
                Ok((i, t)) => format!("{id}: proposal p{} landed at {i}/{t}", p.id),
                Err(e) => format!("{id}: proposal p{} refused: {e}", p.id),
            });
        }
        for r in out.reads {
            self.events.push(match r.result {
                Ok(i) => format!("{id}: read r{} safe at index {i}", r.id),
                Err(e) => format!("{id}: read r{} failed: {e}", r.id),
            });
        }
        self.observe_roles();
        Ok(())
    }

    fn observe_roles(&mut self) {
        for (id, node) in &self.nodes {
            let now = node.core.as_ref().map(|c| (c.role(), c.term(), c.leader()));
            let before = self.seen.insert(*id, now);
            if before.is_some_and(|b| b.map(|x| (x.0, x.1)) != now.map(|x| (x.0, x.1))) {
                self.events.push(match now {
                    Some((role, term, _)) => format!("{id} is {} at term {term}", role_name(role)),
                    None => format!("{id} is down"),
                });
            }
        }
    }

    fn matches(tc: &TestCase, m: &Message) -> Result<bool, String> {
        let from = one::<NodeId>(tc, "from")?;
        let to = list::<NodeId>(tc, "to")?;
        let kinds = list::<String>(tc, "kinds")?;
        Ok(from.is_none_or(|f| f == m.from)
            && to.as_ref().is_none_or(|t| t.contains(&m.to))
            && kinds
                .as_ref()
                .is_none_or(|k| k.iter().any(|k| k == m.body.kind())))
    }

    fn deliver(&mut self, tc: &TestCase, drop: bool) -> Res {
        let mut out = String::new();
        loop {
            let mut picked = Vec::new();
            let mut kept = Vec::new();
            for m in std::mem::take(&mut self.queue) {
                if Self::matches(tc, &m)? {
                    picked.push(m);
                } else {
                    kept.push(m);
                }
            }
            self.queue = kept;
            if picked.is_empty() {
                break;
            }
            for m in picked {
                let lost = self.cut.contains(&(m.from, m.to));
                let down = self.nodes.get(&m.to).is_none_or(|n| n.core.is_none());
                let what = if drop {
                    "dropped"
                } else if lost {
                    "lost (cut)"
                } else if down {
                    "lost (down)"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "{}{}{}",
                    describe(&m),
                    if what.is_empty() { "" } else { ": " },
                    what
                );
                if what.is_empty() {
                    let to = m.to;
                    self.core(to)?.step(m);
                    self.drive(to)?;
                    for e in std::mem::take(&mut self.events) {
                        let _ = writeln!(out, "  {e}");
                    }
                }
            }
            if drop {
                break;
            }
        }
        Ok(out)
    }

    fn stabilize(&mut self, only: Option<&BTreeSet<NodeId>>) -> Result<(), String> {
        for _round in 0..10_000 {
            if self.queue.is_empty() {
                return Ok(());
            }
            for m in std::mem::take(&mut self.queue) {
                let inside = only.is_none_or(|s| s.contains(&m.from) && s.contains(&m.to));
                let up = self.nodes.get(&m.to).is_some_and(|n| n.core.is_some());
                if inside && up && !self.cut.contains(&(m.from, m.to)) {
                    let to = m.to;
                    self.core(to)?.step(m);
                    self.drive(to)?;
                }
            }
        }
        Err("no quiet after 10000 rounds".into())
    }

    fn status(&self, shown: &[NodeId]) -> String {
        let mut out = String::new();
        for id in shown {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            let Some(core) = node.core.as_ref() else {
                let _ = writeln!(out, "{id} down");
                continue;
            };
            let s = core.status();
            let lead = s.leader.map_or("-".to_string(), |l| l.to_string());
            let snap = if s.snapshot_index > 0 {
                format!(
                    " snapshot={} (log from {})",
                    s.snapshot_index, s.first_index
                )
            } else {
                String::new()
            };
            let quiesced = if core.is_quiesced() { " quiesced" } else { "" };
            let _ = writeln!(
                out,
                "{id} {} term={} lead={lead} log={} commit={}{snap}{quiesced}",
                role_name(s.role),
                s.term,
                compact_log(core.entries(1, s.last_index)),
                s.commit
            );
        }
        out
    }

    fn check(&mut self) -> Result<(), String> {
        let cores: Vec<_> = self
            .nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .collect();
        for c in &cores {
            self.checker
                .observe(c, &cores)
                .map_err(|v| format!("VIOLATION {v}"))?;
        }
        Ok(())
    }
}

#[test]
fn scenarios() {
    datadriven::walk("tests/testdata", |f| {
        let mut s = Scenario::default();
        f.run(|tc| s.exec(tc));
    });
}
