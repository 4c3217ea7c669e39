//! The HTTP side of raftctl: a request to the first endpoint that answers.
//!
//! An endpoint that cannot be reached is skipped; one that answers, with
//! any status, serves the command. It must never retry an operation on a
//! second endpoint once one answered: a membership change is not
//! idempotent for whoever watches the log.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use raft_actors_service::admin::AdminToken;
use raft_actors_tls::rustls::ClientConfig;
use serde_json::Value;

/// An answer: its status and JSON body (`Null` when the body is not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The body, or the error line for a non-2xx answer.
    pub fn ok(self, what: &str) -> Result<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let reason = self.body["error"]
            .as_str()
            .map_or_else(|| self.body.to_string(), str::to_string);
        bail!("{what}: {reason} (HTTP {})", self.status)
    }
}

/// The endpoints, tried in order.
pub struct Client {
    endpoints: Vec<String>,
    agent: ureq::Agent,
    /// The `Authorization` header's value, with `--token-file`.
    authorization: Option<String>,
}

impl Client {
    pub fn new(
        endpoints: Vec<String>,
        timeout: Duration,
        token: Option<AdminToken>,
        tls: Option<Arc<ClientConfig>>,
    ) -> Self {
        let mut agent = ureq::AgentBuilder::new().timeout(timeout);
        if let Some(tls) = tls {
            agent = agent.tls_config(tls);
        }
        let agent = agent.build();
        let authorization = token.and_then(|t| t.header().1.to_str().ok().map(str::to_string));
        Client {
            endpoints,
            agent,
            authorization,
        }
    }

    /// `method path` on the first endpoint that answers.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
        let mut failures = Vec::new();
        for e in &self.endpoints {
            match self.call_at(e, method, path, body) {
                Ok(a) => return Ok(a),
                Err(why) => failures.push(format!("{e} ({why})")),
            }
        }
        Err(anyhow!("no endpoint answered: {}", failures.join(", ")))
    }

    /// `method path` on one endpoint; `Err` only if it did not answer.
    pub fn call_at(
        &self,
        endpoint: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::result::Result<Answer, String> {
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let mut req = self.agent.request(method, &url);
        if let Some(auth) = &self.authorization {
            req = req.set("Authorization", auth);
        }
        let res = match body {
            Some(b) => req.send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(t.to_string()),
        };
        let status = resp.status();
        let text = resp.into_string().map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }
}
