//! Loading, naming and reloading, without a network: what a node does with
//! its files at start and on SIGHUP.

use raft_actors_tls::generate::{write_cluster, TestCa};
use raft_actors_tls::{names_node, ApiTls, PeerTls, TlsError};

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_node_certificate_names_its_node_and_no_other() -> Result {
    let dir = tempfile::tempdir()?;
    let files = write_cluster(dir.path(), &[1, 2])?;
    let (_, cert, key) = &files.nodes[0];
    let tls = PeerTls::load(cert, key, &files.ca)?;
    let mine = tls.certificate().ok_or("a certificate")?;
    assert!(names_node(&mine, 1));
    assert!(!names_node(&mine, 2));
    assert!(
        !names_node(&mine, 11),
        "node-1 is not a prefix match of node-11"
    );
    assert!(PeerTls::check_claim(Some(std::slice::from_ref(&mine)), 1).is_ok());
    let refusal = PeerTls::check_claim(Some(std::slice::from_ref(&mine)), 2)
        .err()
        .ok_or("node 2 refused")?;
    assert!(refusal.contains("node-2"), "{refusal}");
    assert!(PeerTls::check_claim(None, 1).is_err());
    Ok(())
}

#[test]
fn bad_files_are_refused_naming_the_file() -> Result {
    let dir = tempfile::tempdir()?;
    let files = write_cluster(dir.path(), &[1, 2])?;
    let (_, cert1, key1) = &files.nodes[0];
    let (_, _, key2) = &files.nodes[1];
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n")?;
    let missing = dir.path().join("missing.pem");

    let cases: Vec<(&str, std::result::Result<PeerTls, TlsError>)> = vec![
        ("missing.pem", PeerTls::load(&missing, key1, &files.ca)),
        ("garbage.pem", PeerTls::load(&garbage, key1, &files.ca)),
        ("garbage.pem", PeerTls::load(cert1, &garbage, &files.ca)),
        ("garbage.pem", PeerTls::load(cert1, key1, &garbage)),
        // Node 2's key with node 1's certificate.
        ("node-1.pem", PeerTls::load(cert1, key2, &files.ca)),
    ];
    for (named, loaded) in cases {
        let e = loaded.err().ok_or(format!("{named} should be refused"))?;
        assert!(e.to_string().contains(named), "{named}: {e}");
    }
    Ok(())
}

#[test]
fn a_reload_takes_renewed_files_and_a_failed_one_keeps_the_old() -> Result {
    let dir = tempfile::tempdir()?;
    let files = write_cluster(dir.path(), &[1])?;
    let (_, cert, key) = &files.nodes[0];
    let tls = PeerTls::load(cert, key, &files.ca)?;
    let api = ApiTls::load(cert, key, Some(&files.ca))?;
    let before = tls.certificate().ok_or("a certificate")?;

    // A renewal: a new certificate of a new CA, written over the files.
    let renewed = write_cluster(&dir.path().join("renewed"), &[1])?;
    std::fs::copy(&renewed.ca, &files.ca)?;
    std::fs::copy(&renewed.nodes[0].1, cert)?;
    std::fs::copy(&renewed.nodes[0].2, key)?;
    tls.reload()?;
    api.reload()?;
    let after = tls.certificate().ok_or("a certificate")?;
    assert_ne!(before, after, "the renewed certificate is presented");
    assert!(names_node(&after, 1));

    // A half-written renewal: the reload fails and the node keeps serving.
    std::fs::write(cert, "")?;
    assert!(tls.reload().is_err());
    assert!(api.reload().is_err());
    assert_eq!(tls.certificate(), Some(after));
    Ok(())
}

#[test]
fn an_expired_certificate_loads_but_its_dates_are_in_the_past() -> Result {
    // Loading does not judge dates (a clock may be wrong at boot); the
    // handshake does: see the transports' tests of an expired peer.
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("ca")?;
    ca.write(&dir.path().join("ca.pem"))?;
    let (cert, key) = ca.expired_node(1)?.write(dir.path(), "old")?;
    let tls = PeerTls::load(&cert, &key, &dir.path().join("ca.pem"))?;
    assert!(tls.certificate().is_some());
    Ok(())
}
