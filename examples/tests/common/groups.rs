//! The harness's side of raft-kv over many Raft groups (`--groups N`):
//! the flag from `RAFT_KV_GROUPS`, the documented key hash, and waits that
//! cover every group. With one group every helper here is a no-op or the
//! one-group answer, so the suite runs unchanged.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use super::{try_request, wait_until, Cluster, WAIT};

/// `RAFT_KV_GROUPS=N cargo test -p examples` runs every raft-kv cluster
/// with `--groups N` (the black-box suite over many Raft groups); unset or
/// 1, with one group, as CI does.
pub fn kv_groups() -> Option<u64> {
    std::env::var("RAFT_KV_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
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

    /// How many groups raft-kv's nodes run with, if more than one.
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

    /// Waits until node `id` has applied, in every group it holds, what
    /// any running node has committed in that group by now.
    pub fn wait_caught_up(&self, id: u64) {
        let mut target: BTreeMap<u64, u64> = BTreeMap::new();
        for other in self.running() {
            for (g, e) in self.group_status(other).unwrap_or_default() {
                let commit = e["commit_index"].as_u64().unwrap_or(0);
                let t = target.entry(g).or_insert(0);
                *t = (*t).max(commit);
            }
        }
        // The groups `id` is a member of, as the cluster lists them: a node
        // just added may not list them itself yet.
        let member = |e: &Value| {
            ["voters", "learners"].iter().any(|k| {
                e[*k]
                    .as_array()
                    .is_some_and(|a| a.contains(&Value::from(id)))
            })
        };
        let of_id: Vec<u64> = self
            .running()
            .into_iter()
            .find_map(|other| {
                let a = try_request("GET", &self.url(other, "/cluster/groups"), None, &[])?;
                let list = a.json()["groups"].as_array()?.clone();
                Some(
                    list.iter()
                        .filter(|e| member(e))
                        .filter_map(|e| e["group"].as_u64())
                        .collect(),
                )
            })
            .unwrap_or_default();
        wait_until(Instant::now() + WAIT, "the node to catch up", || {
            let held = self.group_status(id)?;
            of_id
                .iter()
                .all(|g| {
                    let t = target.get(g).copied().unwrap_or(0);
                    held.get(g)
                        .is_some_and(|e| e["applied_index"].as_u64() >= Some(t))
                })
                .then_some(())
        })
        .unwrap_or_else(|e| panic!("node {id}: {e}"));
    }
}
