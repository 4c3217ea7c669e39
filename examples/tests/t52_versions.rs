//! A node of an older release, met on the wire or on disk, is refused with
//! one line and never misread (`examples/REFERENCE.md`, "Between nodes"):
//! wire format 3 and store format 3 carry the Raft group of every batch
//! and record; a peer speaking wire version 2, or a data dir written in
//! store format 2, predates them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use common::*;

/// A `Hello` frame as a node of wire version 2 sends it: the length
/// prefix, the version byte 2, then postcard's `Frame::Hello` (variant 0,
/// then cluster id, from and to as varints).
fn version_2_hello() -> Vec<u8> {
    let body = [2u8, 0, 1, 9, 1];
    let mut raw = (body.len() as u32).to_be_bytes().to_vec();
    raw.extend_from_slice(&body);
    raw
}

#[test]
fn a_peer_of_the_older_wire_version_is_refused_with_one_line_and_the_cluster_serves_on() {
    let c = Cluster::start(Opts::new(KV), 3);
    let leader = c.wait_leader();
    let mut s = TcpStream::connect(("127.0.0.1", c.nodes[&leader].raft)).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(&version_2_hello()).expect("write");
    // The node closes the connection: a read ends (EOF or reset) instead
    // of timing out.
    let mut sink = Vec::new();
    let read = s.read_to_end(&mut sink);
    assert!(
        !matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "the connection stayed open: {read:?}"
    );
    let line = wait_until(Instant::now() + WAIT, "the refusal in the log", || {
        let log = c.stderr(leader);
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("wire version 2"))
            .map(str::to_owned)
            .collect();
        (!lines.is_empty()).then_some(lines)
    })
    .expect("the node logs the refusal");
    assert_eq!(line.len(), 1, "one line: {line:?}");
    assert!(
        line[0].contains("only 3") && line[0].contains("upgrade every node"),
        "{}",
        line[0]
    );
    // The cluster serves on, its own peers unaffected.
    let a = c.req(leader, "PUT", "/kv/after-the-old-node", Some(b"v"));
    assert_eq!(a.status, 200, "{}", a.text());
    let a = c.req(leader, "GET", "/kv/after-the-old-node", None);
    assert_eq!(a.status, 200, "{}", a.text());
}

/// Writes, record by record, what a build of store format 2 left in a data
/// dir: the marker in `meta`, records keyed without a group, and the
/// marker file beside the database.
fn write_format_2_store(dir: &std::path::Path) {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    const LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
    std::fs::create_dir_all(dir).expect("dir");
    let db = redb::Database::create(dir.join("raft.redb")).expect("redb");
    let txn = db.begin_write().expect("txn");
    {
        let mut meta = txn.open_table(META).expect("meta");
        meta.insert("format", [2u8].as_slice()).expect("marker");
        // A record's header: version 2, then a CRC of the body; the body
        // is never read by a build that refuses the format first.
        meta.insert("hard_state", [2u8, 0, 0, 0, 0].as_slice())
            .expect("hard state");
        let mut log = txn.open_table(LOG).expect("log");
        log.insert(1, [2u8, 0, 0, 0, 0].as_slice()).expect("entry");
    }
    txn.commit().expect("commit");
    std::fs::write(
        dir.join("raft.redb.format"),
        b"raft-actors-storage-redb format 2\n",
    )
    .expect("marker file");
}

#[test]
fn a_data_dir_of_the_store_format_before_group_ids_is_refused_at_start_with_one_line() {
    let tmp = TempDir::new("format-2");
    let dir = tmp.0.join("n1");
    write_format_2_store(&dir);
    let before = std::fs::read(dir.join("raft.redb")).expect("read");
    let mut args = single_node_args(&dir, free_port(), free_port());
    args.extend(["--storage".to_string(), "redb".into()]);
    let line = one_line_failure(KV, &args, "format version 2");
    assert!(line.contains("raft.redb"), "{line}");
    let after = std::fs::read(dir.join("raft.redb")).expect("read");
    assert_eq!(before, after, "the refused store is left as it was");
}
