//! [`AdminToken`]: the bearer token that guards the cluster API. With one
//! set (`--admin-token-file`), every request that changes the cluster
//! (`POST`/`DELETE /cluster/members`, `POST /cluster/leader`,
//! `POST /cluster/snapshot`) needs `Authorization: Bearer <token>` and is
//! answered `401` otherwise; with [`protecting_reads`](AdminToken::protecting_reads)
//! (`--admin-token-protects-reads`) so are `/status`, `/cluster/status`,
//! `/health`, `/metrics` and `/ui`. The client API of the service itself
//! stays open. Nodes send the token on to each other (a follower's forward
//! to the leader, `/cluster/status` asking the members), so every node of a
//! cluster must hold the same one.
//!
//! It must never compare tokens in a time that depends on where they
//! differ, nor print the token in a log or an error.

use std::fmt;
use std::path::Path;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use subtle::ConstantTimeEq;

use super::ApiError;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// The token file could not be read.
    #[error("cannot read the admin token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty (or only whitespace).
    #[error("the admin token is empty")]
    Empty,
    /// The token cannot travel in an HTTP header: only visible ASCII
    /// characters, no spaces.
    #[error("the admin token must be visible ASCII characters without spaces")]
    NotPrintable,
}

/// The cluster API's bearer token.
///
/// ```
/// use actix_web::http::Method;
/// use raft_actors_service::admin::AdminToken;
/// let t = AdminToken::new("s3cret").expect("a token");
/// assert!(t.guards(&Method::POST, "/cluster/snapshot"));
/// assert!(!t.guards(&Method::GET, "/status"), "reads stay open by default");
/// assert!(t.clone().protecting_reads(true).guards(&Method::GET, "/status"));
/// assert!(!t.guards(&Method::PUT, "/kv/a"), "the service's own API stays open");
/// // One group's membership is the cluster's too.
/// assert!(t.guards(&Method::POST, "/cluster/groups/3/members"));
/// assert!(t.guards(&Method::DELETE, "/cluster/groups/3/members/2"));
/// assert!(t.clone().protecting_reads(true).guards(&Method::GET, "/cluster/groups"));
/// assert_eq!(format!("{t:?}"), "AdminToken(..)");
/// ```
#[derive(Clone)]
pub struct AdminToken {
    token: String,
    protects_reads: bool,
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token itself.
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// A token; surrounding whitespace (a file's last newline) is dropped.
    pub fn new(token: &str) -> Result<Self, AdminTokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AdminTokenError::Empty);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminTokenError::NotPrintable);
        }
        Ok(AdminToken {
            token: token.to_string(),
            protects_reads: false,
        })
    }

    /// The token in `path` (`--admin-token-file`).
    pub fn from_file(path: &Path) -> Result<Self, AdminTokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| AdminTokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&text)
    }

    /// Whether the cluster API's reads need the token too
    /// (`--admin-token-protects-reads`).
    pub fn protecting_reads(mut self, yes: bool) -> Self {
        self.protects_reads = yes;
        self
    }

    /// Whether a request of `method` on `path` needs the token.
    pub fn guards(&self, method: &Method, path: &str) -> bool {
        let change = match (method, path) {
            (&Method::POST, "/cluster/members" | "/cluster/leader" | "/cluster/snapshot") => true,
            (&Method::POST, p) => p.starts_with("/cluster/groups/"),
            (&Method::DELETE, p) => {
                p.starts_with("/cluster/members/") || p.starts_with("/cluster/groups/")
            }
            _ => false,
        };
        let read = method == Method::GET
            && matches!(
                path,
                "/status" | "/cluster/status" | "/cluster/groups" | "/health" | "/metrics" | "/ui"
            );
        change || (read && self.protects_reads)
    }

    /// Whether `headers` carry this token, compared in constant time.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        bool::from(given.trim().as_bytes().ct_eq(self.token.as_bytes()))
    }

    /// The `Authorization` header that carries it, for requests a node
    /// sends on.
    pub fn header(&self) -> (header::HeaderName, HeaderValue) {
        let value = HeaderValue::from_str(&format!("Bearer {}", self.token))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        (header::AUTHORIZATION, value)
    }
}

/// The middleware that answers `401` to a guarded request without the
/// token (the server wraps every route in it when a token is set).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refused = req
        .app_data::<web::Data<AdminToken>>()
        .is_some_and(|t| t.guards(req.method(), req.path()) && !t.admits(req.headers()));
    if refused {
        let e = ApiError::unauthorized(
            "this request needs the admin token (Authorization: Bearer <token>)",
        );
        return Ok(req.error_response(e).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
