//! Helpers the routes share: reading a body under an explicit limit,
//! taking a key from the raw path, putting bytes into JSON.
//!
//! Every byte here comes from a client: limits are checked before a body
//! is buffered past them, and nothing panics on malformed input. It must
//! never leave a size decision to a framework default: the reference (`examples/REFERENCE.md`)
//! fixes the limits inclusively.

use actix_web::{web, HttpRequest};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The largest key, inclusive.
pub const MAX_KEY: usize = 1024;
/// The largest value, inclusive.
pub const MAX_VALUE: usize = 1 << 20;
/// The largest JSON body: a CAS carries two values of up to [`MAX_VALUE`]
/// bytes, each of which JSON may escape to 6 bytes a byte (`\u0001`).
pub const MAX_JSON_BODY: usize = 2 * 6 * MAX_VALUE + 64 * 1024;

/// Reads the whole body; 413 past `limit` bytes (inclusive limit), before
/// buffering more than that.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::too_large(format!(
                "body over the limit of {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads a value body: at most [`MAX_VALUE`] bytes.
pub async fn read_value(payload: web::Payload) -> Result<Bytes, ApiError> {
    read_body(payload, MAX_VALUE)
        .await
        .map_err(|e| match e.status().as_u16() {
            413 => ApiError::too_large(format!("value over {MAX_VALUE} bytes")),
            _ => e,
        })
}

/// Reads and parses a JSON body; 400 if it is not the expected JSON.
pub async fn read_json<T: DeserializeOwned>(payload: web::Payload) -> Result<T, ApiError> {
    Ok(read_json_and_body(payload).await?.0)
}

/// [`read_json`], also answering the raw body (to forward it).
pub async fn read_json_and_body<T: DeserializeOwned>(
    payload: web::Payload,
) -> Result<(T, Bytes), ApiError> {
    let body = read_body(payload, MAX_JSON_BODY).await?;
    // Every body of the API is a JSON object; serde would also take an
    // array for a struct (by position), which no client means.
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    if !json.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let value = serde_json::from_value(json)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok((value, body))
}

/// The percent-decoded path segment after `prefix` (e.g. `/kv/`), up to the
/// next `/`; 413 if it decodes to more than [`MAX_KEY`] bytes, 400 if empty.
///
/// Taken from the raw request path, so `%2F` stays inside the key.
pub fn key_after(req: &HttpRequest, prefix: &str) -> Result<Vec<u8>, ApiError> {
    let path = req.uri().path();
    let raw = path
        .strip_prefix(prefix)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    // A `%` must start an escape: `%zz` taken literally would make two
    // paths (`%zz`, `%25zz`) name one key.
    let bytes = raw.as_bytes();
    let bad_escape = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if bad_escape {
        return Err(ApiError::bad_request(
            "malformed percent-encoding in the key",
        ));
    }
    let key: Vec<u8> = percent_decode_str(raw).collect();
    if key.is_empty() {
        return Err(ApiError::bad_request("empty key"));
    }
    if key.len() > MAX_KEY {
        return Err(ApiError::too_large(format!("key over {MAX_KEY} bytes")));
    }
    Ok(key)
}

/// Puts `bytes` into `obj` as `name`: a string if they are UTF-8;
/// otherwise `null` and `<name>_base64` carrying them.
pub fn put_bytes(obj: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>) {
    match bytes.map(std::str::from_utf8) {
        None => {
            obj.insert(name.into(), Value::Null);
        }
        Some(Ok(s)) => {
            obj.insert(name.into(), Value::String(s.into()));
        }
        Some(Err(_)) => {
            obj.insert(name.into(), Value::Null);
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes.unwrap_or_default());
            obj.insert(format!("{name}_base64"), Value::String(b64));
        }
    }
}

/// Decodes a JSON field given as a string `name` or as `<name>_base64`.
/// `Ok(None)` when both are absent or `name` is `null`.
pub fn take_bytes(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
    if let Some(v) = obj.get(&format!("{name}_base64")) {
        let s = v
            .as_str()
            .ok_or_else(|| ApiError::bad_request(format!("{name}_base64 must be a string")))?;
        let b = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| ApiError::bad_request(format!("{name}_base64: {e}")))?;
        return Ok(Some(b));
    }
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone().into_bytes())),
        Some(_) => Err(ApiError::bad_request(format!(
            "{name} must be a string or null"
        ))),
    }
}

/// A JSON object answer.
pub fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The request log line (debug level): method, route pattern (not the
/// path, which may carry a key), status, latency.
pub(crate) fn log_request<B>(
    method: &actix_web::http::Method,
    res: &actix_web::dev::ServiceResponse<B>,
    took: std::time::Duration,
) {
    let route = res.request().match_pattern();
    tracing::debug!(
        target: "raft_actors_service::http",
        %method,
        route = route.as_deref().unwrap_or("(no route)"),
        status = res.status().as_u16(),
        latency_ms = took.as_secs_f64() * 1e3,
        "request"
    );
}
