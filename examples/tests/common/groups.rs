//! The harness's side of raft-kv over many Raft groups (`--groups N`):
//! the flag from `RAFT_KV_GROUPS`, the documented key hash, and waits that
//! cover every group. The suite calls them so that with one group they
//! give the one-group answer (`groups()` is `None`, `groups_led_among` is
//! true, `keys_of_group_zero` takes every key), and runs unchanged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{agent_within, wait_until, Cluster, WAIT};

/// `RAFT_KV_GROUPS=N cargo test -p examples` runs every raft-kv cluster
/// with `--groups N` (the black-box suite over many Raft groups); unset or
/// 1, with one group, as CI does.
pub fn kv_groups() -> Option<u64> {
    std::env::var("RAFT_KV_GROUPS")
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("RAFT_KV_GROUPS={v:?}: not a number of groups"))
        })
        .filter(|n| *n > 1)
}

/// The reference's hash from key to group, written out again here: 64-bit
/// FNV-1a of the key's bytes, modulo the number of groups.
pub fn group_of(key: &str, groups: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % groups
}

impl Cluster {
    /// `n` keys `prefix0`, `prefix1`, ...: with several groups, only those
    /// of group 0, whose log `/status` and the snapshot's index show.
    pub fn keys_of_group_zero(&self, prefix: &str, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .filter(|k| self.groups().is_none_or(|g| group_of(k, g) == 0))
            .take(n)
            .collect()
    }

    /// How many groups `RAFT_KV_GROUPS` gives raft-kv's nodes, if more than
    /// one (a test that passes `--groups` itself runs its own number).
    pub fn groups(&self) -> Option<u64> {
        self.opts.groups.filter(|_| self.opts.storage != "wal")
    }

    /// Each group's entry in node `id`'s `/status`, by group (empty with
    /// one group).
    pub fn group_status(&self, id: u64) -> Option<BTreeMap<u64, Value>> {
        let s = self.status(id)?;
        let Some(list) = s["groups"].as_array() else {
            return Some(BTreeMap::new());
        };
        Some(
            list.iter()
                .filter_map(|e| Some((e["group"].as_u64()?, e.clone())))
                .collect(),
        )
    }

    /// With several groups: whether every group that `ids` hold has one
    /// leader among them, on which they agree. (With one group, true.)
    pub fn groups_led_among(&self, ids: &[u64]) -> bool {
        if self.groups().is_none() {
            return true;
        }
        let mut leaders: BTreeMap<u64, u64> = BTreeMap::new();
        for id in ids {
            let Some(groups) = self.group_status(*id) else {
                return false;
            };
            for (g, e) in groups {
                let Some(l) = e["leader"].as_u64() else {
                    return false;
                };
                if !ids.contains(&l) || *leaders.entry(g).or_insert(l) != l {
                    return false;
                }
            }
        }
        true
    }

    /// Waits until node `id` has applied, in every group it is a member
    /// of, what the nodes that answer have committed there. Each poll asks
    /// every running node with a short timeout, so a frozen one (SIGSTOP)
    /// is skipped, not waited for; a node in no group at all never counts
    /// as caught up.
    pub fn wait_caught_up(&self, id: u64) {
        let quick = agent_within(Duration::from_secs(2));
        let entries = |node: u64| -> Vec<Value> {
            let Ok(r) = quick.get(&self.url(node, "/status")).call() else {
                return Vec::new();
            };
            let text = r.into_string().unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or_default();
            json["groups"].as_array().cloned().unwrap_or_default()
        };
        wait_until(Instant::now() + WAIT, "the node to catch up", || {
            // Per group: the highest commit index heard, and its members.
            let mut target: BTreeMap<u64, u64> = BTreeMap::new();
            let mut members: BTreeMap<u64, bool> = BTreeMap::new();
            for node in self.running() {
                for e in entries(node) {
                    let g = e["group"].as_u64()?;
                    let t = target.entry(g).or_insert(0);
                    *t = (*t).max(e["commit_index"].as_u64().unwrap_or(0));
                    let listed = ["voters", "learners"].iter().any(|k| {
                        e[*k]
                            .as_array()
                            .is_some_and(|a| a.contains(&Value::from(id)))
                    });
                    *members.entry(g).or_insert(false) |= listed;
                }
            }
            let held: BTreeMap<u64, Value> = entries(id)
                .into_iter()
                .filter_map(|e| Some((e["group"].as_u64()?, e)))
                .collect();
            let of_id: Vec<u64> = members.iter().filter(|m| *m.1).map(|m| *m.0).collect();
            let caught_up = of_id.iter().all(|g| {
                held.get(g)
                    .is_some_and(|e| e["applied_index"].as_u64() >= target.get(g).copied())
            });
            (!of_id.is_empty() && caught_up).then_some(())
        })
        .unwrap_or_else(|e| panic!("node {id}: {e}"));
    }
}
