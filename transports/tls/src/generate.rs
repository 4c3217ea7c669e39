//! Certificates made in code (feature `generate`): a CA, node certificates
//! naming `node-<id>` and the local host, a certificate of another CA, an
//! expired one. For tests and the quickstart (`raftctl certs`); a
//! production cluster uses its own PKI.
//!
//! It must never be the only thing standing between a cluster and the
//! network: these keys are written unencrypted, next to each other.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::{node_name, TlsError};

fn gen_error(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

/// A certificate and its key, as PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl Issued {
    /// Writes `<dir>/<stem>.pem` and `<dir>/<stem>-key.pem`; answers both
    /// paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), TlsError> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        for (path, text, private) in [(&cert, &self.cert_pem, false), (&key, &self.key_pem, true)] {
            write_file(path, text, private).map_err(|source| TlsError::Read {
                path: path.clone(),
                source,
            })?;
        }
        Ok((cert, key))
    }
}

/// Writes `text` to `path`; a `private` file (a key) is readable by its
/// owner only.
fn write_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)?.write_all(text.as_bytes())
}

/// A certificate authority made in code.
///
/// ```
/// use raft_actors_tls::generate::TestCa;
/// let ca = TestCa::new("cluster CA")?;
/// let node = ca.node(1)?;
/// assert!(node.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
/// # Ok::<(), raft_actors_tls::TlsError>(())
/// ```
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A fresh CA, its common name `name`.
    pub fn new(name: &str) -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(gen_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_error)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(gen_error)?;
        Ok(TestCa { cert, key })
    }

    /// The CA's certificate, for `--peer-tls-ca`, `--client-tls-ca` or
    /// `raftctl --cacert`.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA's certificate to `path`.
    pub fn write(&self, path: &Path) -> Result<(), TlsError> {
        std::fs::write(path, self.cert_pem()).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    /// A certificate for node `id`: it names `node-<id>`, `localhost`,
    /// `127.0.0.1` and `::1`, for servers and clients alike, so one file
    /// serves the peer transport and the client API of a local cluster.
    pub fn node(&self, id: u64) -> Result<Issued, TlsError> {
        self.issue(
            &node_name(id),
            &[&node_name(id), "localhost", "127.0.0.1", "::1"],
            false,
        )
    }

    /// Node `id`'s certificate, expired since 2021.
    pub fn expired_node(&self, id: u64) -> Result<Issued, TlsError> {
        self.issue(
            &node_name(id),
            &[&node_name(id), "localhost", "127.0.0.1"],
            true,
        )
    }

    /// Node `names`' certificate (expired if `expired`), written into `dir`
    /// as `<stem>.pem` and `<stem>-key.pem`: the files' paths.
    pub fn node_files(
        &self,
        dir: &Path,
        stem: &str,
        names: u64,
        expired: bool,
    ) -> Result<(PathBuf, PathBuf), TlsError> {
        let issued = if expired {
            self.expired_node(names)?
        } else {
            self.node(names)?
        };
        issued.write(dir, stem)
    }

    /// A node's TLS presenting [`node_files`](Self::node_files) and trusting
    /// the CA whose certificate is at `trusted`: a test's peer in one call.
    pub fn peer_tls(
        &self,
        dir: &Path,
        stem: &str,
        names: u64,
        expired: bool,
        trusted: &Path,
    ) -> Result<crate::PeerTls, TlsError> {
        let (cert, key) = self.node_files(dir, stem, names, expired)?;
        crate::PeerTls::load(&cert, &key, trusted)
    }

    /// A certificate with common name `name` and the DNS or IP names
    /// `names` (e.g. a client's, or a host's for the client API).
    pub fn issue_for(&self, name: &str, names: &[&str]) -> Result<Issued, TlsError> {
        self.issue(name, names, false)
    }

    fn issue(&self, cn: &str, names: &[&str], expired: bool) -> Result<Issued, TlsError> {
        let key = KeyPair::generate().map_err(gen_error)?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(gen_error)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(gen_error)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The files [`write_cluster`] made.
#[derive(Clone, Debug)]
pub struct ClusterFiles {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// Each node's certificate and key, by id.
    pub nodes: Vec<(u64, PathBuf, PathBuf)>,
}

/// Writes a CA (`ca.pem`) and a certificate for each of `ids`
/// (`node-<id>.pem`, `node-<id>-key.pem`) into `dir`, creating it.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let files = raft_actors_tls::generate::write_cluster(dir.path(), &[1, 2, 3])?;
/// let (_, cert, key) = &files.nodes[0];
/// raft_actors_tls::PeerTls::load(cert, key, &files.ca)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_cluster(dir: &Path, ids: &[u64]) -> Result<ClusterFiles, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca = TestCa::new("raft-actors cluster CA")?;
    let ca_path = dir.join("ca.pem");
    ca.write(&ca_path)?;
    let mut nodes = Vec::new();
    for &id in ids {
        let (cert, key) = ca.node(id)?.write(dir, &node_name(id))?;
        nodes.push((id, cert, key));
    }
    Ok(ClusterFiles { ca: ca_path, nodes })
}
