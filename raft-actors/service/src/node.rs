//! [`Node`]: what a route handler holds to write to and read from the
//! replicated state machine, with the reference's rules applied: the
//! idempotency key, the consistency parameter, membership, metrics.
//!
//! It must never answer a write before the runtime says it is applied
//! here, and never turn an outcome-unknown error into one that invites a
//! blind retry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "metrics")]
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use raft_actors::core::{GroupId, LogIndex, NodeId, Status};
use raft_actors::transport::NetworkTransport;
use raft_actors::{ClientError, Consistency, Raft};

use super::directory::{Addrs, Directory};
use super::error::ApiError;
use super::machine::{Envelope, Machine, Outcome};
#[cfg(feature = "metrics")]
use super::metrics::ServiceMetrics;
use super::sessions::IdempotencyKey;
use super::Service;

/// A write's answer: the index it was applied at (the first time, for a
/// retry) and the service's output.
#[derive(Debug)]
pub struct Written<O> {
    /// The log index of the write.
    pub index: LogIndex,
    /// What the service's `apply` answered.
    pub output: O,
}

/// What the node was started with that the routes need.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// A client request's deadline.
    pub timeout: Duration,
    /// How long one Raft tick lasts (to turn ticks into time).
    pub tick: Duration,
    /// Where peers reach this node.
    pub raft_addr: SocketAddr,
    /// Where clients reach it.
    pub http_addr: SocketAddr,
    /// The bootstrap voters, if any.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The cluster API's token, sent on with what this node asks of others.
    pub admin: Option<crate::admin::AdminToken>,
    /// How this node reaches other nodes' client API.
    pub calls: crate::node_client::NodeClient,
}

/// The running node, shared by all handlers (`web::Data<Node<S>>`).
pub struct Node<S: Service> {
    pub(crate) raft: Raft<Machine<S>>,
    pub(crate) directory: Directory,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: ServiceMetrics,
    pub(crate) network: Arc<dyn NetworkTransport>,
    pub(crate) groups: crate::groups::Groups<S>,
    pub(crate) settings: Settings,
}

impl<S: Service> Node<S> {
    /// The handle to the Raft node.
    pub fn raft(&self) -> &Raft<Machine<S>> {
        &self.raft
    }

    /// The replicated address book as this node last applied it.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.raft.id()
    }

    /// The leader this node sees now (from its metrics watch).
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.current().leader
    }

    /// The node's status; 503 if it is down.
    pub async fn status(&self) -> Result<Status, ApiError> {
        // Asking took no effect: a failed node is plainly unavailable here
        // (a write's `Fatal` is 504: that write may have been taken).
        self.raft.status().await.map_err(|e| match e {
            ClientError::Fatal(_) => ApiError::unavailable(e.to_string()),
            e => e.into(),
        })
    }

    /// Proposes `command` with the request's `Idempotency-Key`, if any, and
    /// answers once it is applied on this node: [`write_keyed`](Self::write_keyed)
    /// with the key taken from `req` (400 if malformed).
    pub async fn write(
        &self,
        req: &HttpRequest,
        command: S::Command,
    ) -> Result<Written<S::Output>, ApiError> {
        self.write_keyed(idempotency_key(req)?, command).await
    }

    /// Proposes `command` under `key` (exactly once per key) and answers
    /// once it is applied on this node.
    ///
    /// Answers 503 without proposing on a node that is not (or no longer) a
    /// member; 422 for a retry whose answer expired; 429 for a key the
    /// session table cannot keep (the client pipelined more keyed writes
    /// than its bound; not applied); 504 on a timeout.
    pub async fn write_keyed(
        &self,
        key: Option<IdempotencyKey>,
        command: S::Command,
    ) -> Result<Written<S::Output>, ApiError> {
        self.write_keyed_in(raft_actors::core::DEFAULT_GROUP, key, command)
            .await
    }

    /// [`write`](Self::write) in group `group` (see
    /// [`route`](Self::route)): the write of a key goes to the key's group.
    pub async fn write_in(
        &self,
        group: GroupId,
        req: &HttpRequest,
        command: S::Command,
    ) -> Result<Written<S::Output>, ApiError> {
        self.write_keyed_in(group, idempotency_key(req)?, command)
            .await
    }

    /// [`write_keyed`](Self::write_keyed) in group `group`: exactly once
    /// per idempotency key within the group (a key's writes all go to its
    /// group).
    pub async fn write_keyed_in(
        &self,
        group: GroupId,
        key: Option<IdempotencyKey>,
        command: S::Command,
    ) -> Result<Written<S::Output>, ApiError> {
        let raft = self.group_raft(group)?;
        // From the metrics watch, not a status round trip per write: the
        // node publishes its membership after every batch.
        if !crate::groups::holds(raft) {
            return Err(ApiError::unavailable(if group == 0 {
                "this node is not a member of the cluster".to_owned()
            } else {
                format!("this node is not a member of group {group}")
            }));
        }
        #[cfg(feature = "metrics")]
        let started = Instant::now();
        let shown = key.as_ref().map(ToString::to_string);
        let res = raft.propose(Envelope::Command { key, command }).await;
        #[cfg(feature = "metrics")]
        self.metrics.proposal(started.elapsed(), res.is_ok());
        match res?.output {
            Outcome::Done { index, output } => Ok(Written { index, output }),
            Outcome::Expired => Err(ApiError::unprocessable("idempotency key expired")),
            Outcome::BelowWindow => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "idempotency key {} is older than every answer kept for its client: \
                     not applied (too many keyed writes in flight; retry it)",
                    shown.unwrap_or_default()
                ),
            )),
            Outcome::Registered => Err(ApiError::unavailable("unexpected answer")),
        }
    }

    /// Answers `query` at the request's `?consistency=` (default
    /// linearizable); 400 for an unknown consistency.
    pub async fn read(&self, req: &HttpRequest, query: S::Query) -> Result<S::Answer, ApiError> {
        self.read_at(consistency(req)?, query).await
    }

    /// Answers `query` at `consistency`.
    pub async fn read_at(
        &self,
        consistency: Consistency,
        query: S::Query,
    ) -> Result<S::Answer, ApiError> {
        Ok(self.raft.read(query, consistency).await?)
    }

    /// [`read`](Self::read) from group `group` (see [`route`](Self::route)).
    pub async fn read_in(
        &self,
        group: GroupId,
        req: &HttpRequest,
        query: S::Query,
    ) -> Result<S::Answer, ApiError> {
        let consistency = consistency(req)?;
        Ok(self.group_raft(group)?.read(query, consistency).await?)
    }

    /// Proposes an address record (the cluster API's bookkeeping).
    pub(crate) async fn register(&self, id: NodeId, addrs: Addrs) -> Result<(), ApiError> {
        self.raft.propose(Envelope::Register { id, addrs }).await?;
        Ok(())
    }
}

/// The `Idempotency-Key` header, parsed; 400 if malformed or repeated.
///
/// ```
/// use raft_actors_service::node::idempotency_key;
/// let req = actix_web::test::TestRequest::default()
///     .append_header(("idempotency-key", "web-1:7"))
///     .to_http_request();
/// assert_eq!(idempotency_key(&req).unwrap().map(|k| k.seq), Some(7));
/// ```
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request("more than one Idempotency-Key"));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key is not text"))?;
    value
        .parse()
        .map(Some)
        .map_err(|e: super::sessions::BadKey| ApiError::bad_request(e.to_string()))
}

/// The `consistency` query parameter (default linearizable); 400 for any
/// other value or a repeated one.
///
/// ```
/// use raft_actors::Consistency;
/// use raft_actors_service::node::consistency;
/// let req = actix_web::test::TestRequest::with_uri("/kv/a?consistency=stale").to_http_request();
/// assert_eq!(consistency(&req).unwrap(), Consistency::Stale);
/// let bad = actix_web::test::TestRequest::with_uri("/kv/a?consistency=fast").to_http_request();
/// assert_eq!(consistency(&bad).unwrap_err().status().as_u16(), 400);
/// ```
pub fn consistency(req: &HttpRequest) -> Result<Consistency, ApiError> {
    let q = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let mut asked = q.iter().filter(|(k, _)| k == "consistency").map(|(_, v)| v);
    let choice = asked.next();
    if asked.next().is_some() {
        return Err(ApiError::bad_request("consistency given more than once"));
    }
    match choice.map(String::as_str) {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("lease") => Ok(Consistency::Lease),
        Some("stale") => Ok(Consistency::Stale),
        Some(other) => Err(ApiError::bad_request(format!(
            "consistency must be linearizable, lease or stale, not `{other}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_idempotency_key_per_request() {
        let two = actix_web::test::TestRequest::default()
            .append_header(("idempotency-key", "a:1"))
            .append_header(("idempotency-key", "a:2"))
            .to_http_request();
        assert!(idempotency_key(&two).is_err());
        let one = actix_web::test::TestRequest::default()
            .append_header(("idempotency-key", "a:1"))
            .to_http_request();
        assert!(idempotency_key(&one).is_ok_and(|k| k.is_some_and(|k| k.seq == 1)));
    }
}

#[cfg(test)]
mod consistency_tests {
    use super::*;

    #[test]
    fn consistency_is_one_of_three_and_given_once() {
        let at = |q: &str| {
            consistency(&actix_web::test::TestRequest::with_uri(q).to_http_request())
                .map_err(|e| e.status().as_u16())
        };
        assert_eq!(at("/x"), Ok(Consistency::Linearizable));
        assert_eq!(
            at("/x?consistency=linearizable"),
            Ok(Consistency::Linearizable)
        );
        assert_eq!(at("/x?consistency=lease"), Ok(Consistency::Lease));
        assert_eq!(at("/x?consistency=stale"), Ok(Consistency::Stale));
        assert_eq!(at("/x?consistency=fast"), Err(400));
        assert_eq!(at("/x?consistency=stale&consistency=stale"), Err(400));
    }
}
