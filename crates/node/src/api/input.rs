//! Reading what a caller sent: a bounded body, JSON objects with known fields, decimal ids,
//! hex keys, and the `limit` of a page.

use crate::api::ApiState;
use crate::api::failure::Failure;
use crate::constants::{
    BODIES_IN_FLIGHT_MAX, BODY_READ_TIMEOUT_MS, BODY_SIZE_MAX, BODY_TURN_WAIT_MS, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX,
};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// A body that was read, holding one of the validator's `BODIES_IN_FLIGHT_MAX` turns until it
/// is dropped: keep it until the body is parsed, so that at most that many large bodies and
/// their parsed JSON are in memory at once.
#[derive(Debug)]
pub struct Received {
    bytes: Bytes,
    _turn: OwnedSemaphorePermit,
}

impl std::ops::Deref for Received {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads a body of at most `BODY_SIZE_MAX` bytes within `BODY_READ_TIMEOUT_MS`, once one of the
/// validator's `BODIES_IN_FLIGHT_MAX` turns is free (429 `busy` after `BODY_TURN_WAIT_MS`).
pub async fn read_body(api: &ApiState, headers: &HeaderMap, body: Body) -> Result<Received, Failure> {
    let turn = tokio::time::timeout(Duration::from_millis(BODY_TURN_WAIT_MS), api.bodies.clone().acquire_owned())
        .await
        .map_err(|_| {
            Failure::busy(format!("{BODIES_IN_FLIGHT_MAX} request bodies are being read already; retry shortly"))
        })?
        .expect("the body semaphore is never closed");
    let read = tokio::time::timeout(Duration::from_millis(BODY_READ_TIMEOUT_MS), read_bytes(headers, body));
    let bytes = read
        .await
        .map_err(|_| Failure::body_timeout(format!("the body did not arrive within {BODY_READ_TIMEOUT_MS} ms")))??;
    Ok(Received { bytes, _turn: turn })
}

/// Reads a body of at most `BODY_SIZE_MAX` bytes: a declared length over the limit is refused
/// before reading, a chunked body as soon as it crosses the limit.
async fn read_bytes(headers: &HeaderMap, body: Body) -> Result<Bytes, Failure> {
    let too_large = || Failure::body_too_large(format!("the body is over the limit of {BODY_SIZE_MAX} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_SIZE_MAX as u64) {
        return Err(too_large());
    }
    // The only way reading a body fails without the connection being gone is the limit.
    axum::body::to_bytes(body, BODY_SIZE_MAX).await.map_err(|_| too_large())
}

/// A JSON body.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Failure> {
    tally_api::parse_body(bytes).map_err(Failure::from)
}

/// The fields of an object, refusing a non-object and unknown fields.
pub fn object<'a>(value: &'a Value, path: &str, known: &[&str]) -> Result<&'a Map<String, Value>, Failure> {
    let map = value.as_object().ok_or_else(|| {
        let what = if path.is_empty() { "the body" } else { path };
        Failure::invalid_type(path, format!("{what} must be a JSON object"))
    })?;
    if let Some(unknown) = map.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(Failure::unknown_field(&join(path, unknown), known));
    }
    Ok(map)
}

/// A required field.
pub fn required<'a>(map: &'a Map<String, Value>, path: &str, name: &str) -> Result<&'a Value, Failure> {
    map.get(name).ok_or_else(|| Failure::missing_field(&join(path, name)))
}

pub fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// A `u128` as a decimal string: ASCII digits, no sign, no leading zeros (the same rule as
/// every decimal field of the API).
pub fn decimal_text(text: &str, field: &str) -> Result<u128, Failure> {
    let invalid = |why: &str| Failure::invalid_number(field, format!("{field} {why}, got {text:?}"));
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid("must contain only the digits 0-9"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(invalid("must not have leading zeros"));
    }
    text.parse::<u128>().map_err(|_| invalid(&format!("must be at most {}", u128::MAX)))
}

/// A `u128` field given as a JSON string.
pub fn decimal(value: &Value, field: &str) -> Result<u128, Failure> {
    let text = value
        .as_str()
        .ok_or_else(|| Failure::invalid_type(field, format!("{field} must be a decimal string such as \"42\"")))?;
    decimal_text(text, field)
}

/// `length` bytes given as a hex string.
pub fn hex_bytes(value: &Value, field: &str, length: usize) -> Result<Vec<u8>, Failure> {
    let text = value.as_str().ok_or_else(|| {
        Failure::invalid_type(field, format!("{field} must be a string of {} hex characters", 2 * length))
    })?;
    crate::hex::decode(text, length).map_err(|why| Failure::invalid_type(field, format!("{field} {why}")))
}

/// The `limit` query parameter of a page: 1 to `PAGE_LIMIT_MAX`, `PAGE_LIMIT_DEFAULT` if absent.
pub fn page_limit(query: Option<&str>) -> Result<usize, Failure> {
    let mut limit = PAGE_LIMIT_DEFAULT;
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "limit" {
            return Err(Failure::unknown_field(name, &["limit"]));
        }
        let parsed = decimal_text(value, "limit")?;
        if parsed == 0 || parsed > PAGE_LIMIT_MAX as u128 {
            return Err(Failure::invalid_number("limit", format!("limit must be from 1 to {PAGE_LIMIT_MAX}")));
        }
        limit = parsed as usize;
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_follow_the_api_rule() {
        assert_eq!(decimal_text("0", "id").unwrap(), 0);
        assert_eq!(decimal_text(&u128::MAX.to_string(), "id").unwrap(), u128::MAX);
        for bad in ["", "-1", "01", "1.0", " 1", "340282366920938463463374607431768211456"] {
            assert_eq!(decimal_text(bad, "id").unwrap_err().code, "invalid_number", "{bad:?}");
        }
        assert_eq!(decimal(&serde_json::json!(1), "id").unwrap_err().code, "invalid_type");
    }

    #[test]
    fn page_limits_are_bounded() {
        assert_eq!(page_limit(None).unwrap(), PAGE_LIMIT_DEFAULT);
        assert_eq!(page_limit(Some("limit=7")).unwrap(), 7);
        assert_eq!(page_limit(Some("limit=0")).unwrap_err().code, "invalid_number");
        assert_eq!(page_limit(Some("limit=101")).unwrap_err().code, "invalid_number");
        assert_eq!(page_limit(Some("limit=x")).unwrap_err().code, "invalid_number");
        assert_eq!(page_limit(Some("offset=3")).unwrap_err().code, "unknown_field");
    }
}
