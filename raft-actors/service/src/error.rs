//! [`ApiError`]: every 4xx and 5xx answer of the services, with the body
//! `{"error": "...", "leader": id or null}` that the reference (`examples/REFERENCE.md`)
//! requires, and the mapping from the runtime's [`ClientError`].
//!
//! 503 means nothing was proposed; 504 that the outcome is unknown. It must
//! never map an outcome-unknown error to 503, or a client would retry a
//! write that may have applied.
//!
//! The leader an error body names is the answering node's: an error that
//! does not name one itself gets it from [`name_leader`], which the server
//! wraps around every route, so no process-wide state is needed and several
//! nodes can serve from one process.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use raft_actors::core::NodeId;
use raft_actors::ClientError;
use serde_json::{Map, Value};

/// An error answer: a status, a message, and extra JSON fields.
///
/// ```
/// use raft_actors_service::ApiError;
/// use raft_actors::ClientError;
/// assert_eq!(ApiError::from(ClientError::Timeout).status().as_u16(), 504);
/// assert_eq!(ApiError::from(ClientError::NoLeader).status().as_u16(), 503);
/// let e = ApiError::from(ClientError::NotLeader { leader: Some(2) });
/// assert_eq!(e.leader(), Some(Some(2)));
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// `None`: not named yet ([`name_leader`] fills it in).
    leader: Option<Option<NodeId>>,
    extra: Map<String, Value>,
}

impl ApiError {
    /// An answer with `status` and `message`; the body names the leader
    /// the answering node knows, unless [`with_leader`](Self::with_leader)
    /// names one.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            leader: None,
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

    /// 401: the request needs credentials it did not carry.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the credentials do not allow this request.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 409: the state is not what the request expects (a CAS that did not
    /// swap); the body usually says what it is.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 429: refused for now, and not applied (an idempotency key below
    /// its client's window).
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    /// 500: the service failed on its own (a bug, a broken invariant).
    ///
    /// ```
    /// use raft_actors_service::ApiError;
    /// let e = ApiError::internal("the index is corrupt").with("index", 7);
    /// assert_eq!(e.status().as_u16(), 500);
    /// assert_eq!(e.message(), "the index is corrupt");
    /// ```
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 504: the request timed out after it was proposed: the outcome is
    /// unknown (it may still apply). Never use it for a request that
    /// certainly did nothing: that is [`unavailable`](Self::unavailable).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, message)
    }

    /// Adds a field to the body (a CAS's `current`, a counter's `value`).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(name.to_string(), value.into());
        self
    }

    /// Names `leader` (`None`: no leader) instead of the one the
    /// answering node knows.
    pub fn with_leader(mut self, leader: Option<NodeId>) -> Self {
        self.leader = Some(leader);
        self
    }

    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The leader named so far: `None` if none was named yet.
    pub fn leader(&self) -> Option<Option<NodeId>> {
        self.leader
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::NotLeader { leader: Some(l) } => {
                ApiError::unavailable(message).with_leader(Some(l))
            }
            ClientError::NotLeader { leader: None } => ApiError::unavailable(message),
            ClientError::NoLeader
            | ClientError::NoQuorum
            | ClientError::Busy
            | ClientError::ShuttingDown => ApiError::unavailable(message),
            // A failed node may have taken the write before it failed (its
            // entry committed, its state machine then panicked): unknown.
            ClientError::Timeout | ClientError::Interrupted | ClientError::Fatal(_) => {
                ApiError::timeout(message)
            }
            ClientError::Invalid(_) => ApiError::bad_request(message),
            ClientError::BadCommand(_) => ApiError::internal(message),
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
            self.leader.flatten().map_or(Value::Null, Value::from),
        );
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        let mut res = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110: a 401 names the scheme it wants.
            res.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.json(Value::Object(body))
    }
}

/// Names `leader` in an error answer that named none yet: the server runs
/// every response through it with the leader its node sees (from the
/// node's metrics watch).
///
/// ```
/// # #[actix_rt::main] async fn main() {
/// use actix_web::{test, web, App, HttpResponse};
/// use raft_actors_service::error::name_leader;
/// use raft_actors_service::ApiError;
/// let app = test::init_service(
///     App::new()
///         .wrap_fn(|req, srv| {
///             let fut = actix_web::dev::Service::call(srv, req);
///             async move { Ok(name_leader(fut.await?, Some(3))) }
///         })
///         .route("/", web::get().to(|| async {
///             Err::<HttpResponse, _>(ApiError::unavailable("no quorum"))
///         })),
/// )
/// .await;
/// let body: serde_json::Value =
///     test::call_and_read_body_json(&app, test::TestRequest::get().uri("/").to_request()).await;
/// assert_eq!(body["leader"], 3);
/// # }
/// ```
pub fn name_leader<B: MessageBody>(
    res: ServiceResponse<B>,
    leader: Option<NodeId>,
) -> ServiceResponse<EitherBody<B>> {
    let unnamed = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .filter(|e| e.leader.is_none())
        .cloned();
    match unnamed {
        Some(e) => res
            .into_response(e.with_leader(leader).error_response())
            .map_into_right_body(),
        None => res.map_into_left_body(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_unknown_is_never_503() {
        for e in [
            ClientError::Timeout,
            ClientError::Interrupted,
            ClientError::Fatal("state machine panicked".into()),
        ] {
            assert!(e.outcome_unknown());
            assert_eq!(ApiError::from(e).status(), StatusCode::GATEWAY_TIMEOUT);
        }
        for e in [
            ClientError::NoLeader,
            ClientError::NoQuorum,
            ClientError::Busy,
            ClientError::ShuttingDown,
            ClientError::NotLeader { leader: None },
        ] {
            assert!(!e.outcome_unknown(), "{e}");
            assert_eq!(ApiError::from(e).status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        assert_eq!(
            ApiError::from(ClientError::Invalid("x".into())).status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn the_body_has_error_leader_and_extras() {
        let e = ApiError::new(StatusCode::CONFLICT, "not swapped")
            .with("current", "v")
            .with_leader(Some(2));
        let res = e.error_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let body = actix_web::body::to_bytes(res.into_body());
        let body = futures::executor::block_on(body).expect("body");
        assert_eq!(
            &body[..],
            br#"{"current":"v","error":"not swapped","leader":2}"#
        );
    }

    #[test]
    fn an_explicit_leader_is_kept_and_none_is_null() {
        let e = ApiError::unavailable("no leader is known").with_leader(None);
        assert_eq!(e.leader(), Some(None));
        assert_eq!(ApiError::unavailable("x").leader(), None);
    }
}
