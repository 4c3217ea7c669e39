//! [`ApiError`]: every 4xx and 5xx answer of the services, with the body
//! `{"error": "...", "leader": id or null}` that the services' contract
//! requires, and the mapping from the runtime's [`ClientError`].
//!
//! 503 means nothing was proposed; 504 that the outcome is unknown. It must
//! never map an outcome-unknown error to 503, or a client would retry a
//! write that may have applied.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use raft_actors::core::NodeId;
use raft_actors::ClientError;
use serde_json::{Map, Value};

/// No leader known, in [`LEADER`].
const NONE: u64 = u64::MAX;

/// The leader this process's node last saw; one node runs per process, so
/// every error body can name it without threading the node through.
static LEADER: AtomicU64 = AtomicU64::new(NONE);

/// Records the leader the node sees, for later error bodies.
pub fn set_known_leader(leader: Option<NodeId>) {
    LEADER.store(leader.unwrap_or(NONE), Ordering::Relaxed);
}

/// The leader last recorded with [`set_known_leader`].
pub fn known_leader() -> Option<NodeId> {
    match LEADER.load(Ordering::Relaxed) {
        NONE => None,
        id => Some(id),
    }
}

/// An error answer: a status, a message, and extra JSON fields.
///
/// ```
/// use raft_actors_service::ApiError;
/// use raft_actors::ClientError;
/// assert_eq!(ApiError::from(ClientError::Timeout).status().as_u16(), 504);
/// assert_eq!(ApiError::from(ClientError::NoLeader).status().as_u16(), 503);
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    status: StatusCode,
    message: String,
    leader: Option<NodeId>,
    extra: Map<String, Value>,
}

impl ApiError {
    /// An answer with `status` and `message`, naming the known leader.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            leader: known_leader(),
            extra: Map::new(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such key (or route).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 413: a key or value over the limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 503: nothing was proposed; retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 422: the request was understood but not applied.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// Adds a field to the body (a CAS's `current`, a counter's `value`).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(name.to_string(), value.into());
        self
    }

    /// Names `leader` instead of the one last recorded.
    pub fn with_leader(mut self, leader: Option<NodeId>) -> Self {
        self.leader = leader;
        self
    }

    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::NotLeader { leader } => {
                ApiError::unavailable(message).with_leader(leader.or_else(known_leader))
            }
            ClientError::NoLeader
            | ClientError::NoQuorum
            | ClientError::Busy
            | ClientError::ShuttingDown => ApiError::unavailable(message),
            ClientError::Timeout | ClientError::Interrupted => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, message)
            }
            ClientError::Invalid(_) => ApiError::bad_request(message),
            ClientError::BadCommand(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message),
            ClientError::Fatal(_) => ApiError::unavailable(message),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.message.clone()));
        body.insert(
            "leader".into(),
            self.leader.map_or(Value::Null, Value::from),
        );
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        HttpResponse::build(self.status).json(Value::Object(body))
    }
}
