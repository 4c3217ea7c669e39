//! `raftctl certs`: a test CA and the certificates of a local cluster,
//! written to a directory, for trying TLS out and for tests.
//!
//! It must never be mistaken for a CA to run production on: the CA's key
//! is dropped once the files are written, so nothing more can be issued.

use std::path::Path;

use anyhow::{bail, Context, Result};
use raft_actors_tls::generate::TestCa;
use raft_actors_tls::node_name;

/// Writes the files; answers what it wrote, one line each.
pub fn write(dir: &Path, nodes: &[u64]) -> Result<String> {
    if nodes.is_empty() || nodes.contains(&0) {
        bail!("--nodes needs node ids of at least 1");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = TestCa::new("raft-actors test CA")?;
    let ca_path = dir.join("ca.pem");
    ca.write(&ca_path)?;
    let mut lines = vec![format!("{}  the CA", ca_path.display())];
    for &id in nodes {
        let (cert, key) = ca.node(id)?.write(dir, &node_name(id))?;
        lines.push(format!(
            "{} {}  node {id} (node-{id}, localhost, 127.0.0.1)",
            cert.display(),
            key.display()
        ));
    }
    let (cert, key) = ca
        .issue_for("raftctl", &["raftctl"])?
        .write(dir, "client")?;
    lines.push(format!(
        "{} {}  a client (raftctl --cert/--key, curl --cert/--key)",
        cert.display(),
        key.display()
    ));
    Ok(lines.join("\n"))
}
