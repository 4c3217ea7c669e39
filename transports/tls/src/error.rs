//! [`TlsError`]: why certificates or keys could not be loaded, each naming
//! the file at fault, so a bad flag costs one clear line at start.

use std::path::PathBuf;

/// Why TLS settings could not be loaded (or reloaded).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not the PEM it should be.
    #[error("{path}: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// rustls refused a certificate, a key or a set of CAs.
    #[error("{what}: {source}")]
    Rustls {
        /// What was being loaded.
        what: String,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// No client verifier could be built from the CAs.
    #[error("{path}: {detail}")]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Making a certificate failed (the `generate` feature).
    #[error("generating a certificate: {0}")]
    Generate(String),
}
