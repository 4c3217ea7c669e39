//! Reading PEM files: certificate chains, one private key, CA sets. Every
//! error names its file; a file holding nothing usable is an error, never
//! an empty trust store (which would refuse everyone, silently).

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, detail: impl Into<String>) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// The certificates in a PEM file, in order (a chain: the end entity
/// first). Refuses a file with none.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let f = dir.path().join("empty.pem");
/// std::fs::write(&f, "not a certificate")?;
/// let e = raft_actors_tls::pem::certificates(&f).unwrap_err();
/// assert!(e.to_string().contains("empty.pem"), "{e}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| bad(path, format!("holds no usable PEM private key: {e}")))
}

/// The CAs in PEM files, as one trust store. Refuses a file with no CA,
/// or with one rustls cannot use.
pub fn roots(paths: &[&Path]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for path in paths {
        for cert in certificates(path)? {
            store.add(cert).map_err(|source| TlsError::Rustls {
                what: format!("{}: not a usable CA certificate", path.display()),
                source,
            })?;
        }
    }
    Ok(store)
}
