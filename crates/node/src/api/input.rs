//! Reading what a caller sent: a bounded body, JSON objects with known fields, decimal ids,
//! hex keys, and the `limit` of a page.

use crate::api::ApiState;
use crate::api::caller::{BodyShare, Caller};
use crate::api::failure::Failure;
use crate::constants::{
    BODIES_IN_FLIGHT_MAX, BODY_READ_GAP_MAX_MS, BODY_READ_GRACE_MS, BODY_READ_RATE_MIN_BYTES_PER_SECOND,
    BODY_READ_TIMEOUT_MS, BODY_SIZE_MAX, BODY_TURN_WAIT_MS, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX,
};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use hyper::body::Body as _;
use serde_json::{Map, Value};
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A body that was read, holding its share of the validator's `BODY_BYTES_IN_FLIGHT_MAX` (and of
/// its address's `BODY_BYTES_PER_ADDRESS_MAX`) and one of its `BODIES_IN_FLIGHT_MAX` parsing
/// turns until it is dropped: keep it until the body is parsed, so that at most that many
/// bodies and their parsed JSON are in memory at once.
#[derive(Debug)]
pub struct Received {
    bytes: Bytes,
    _share: BodyShare,
    _turn: OwnedSemaphorePermit,
}

impl Received {
    /// The body's bytes (shared, not copied); keep `self` while they are parsed.
    pub fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }
}

impl std::ops::Deref for Received {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads a body of at most `BODY_SIZE_MAX` bytes, arriving at no less than the minimum rate,
/// with no stall longer than `BODY_READ_GAP_MAX_MS`, and within `BODY_READ_TIMEOUT_MS` (408
/// `body_timeout`), and then takes one of the validator's `BODIES_IN_FLIGHT_MAX` parsing turns
/// (429 `busy` after `BODY_TURN_WAIT_MS`). The turn is taken only once the whole body is here,
/// so callers sending slowly hold no turn.
pub async fn read_body(api: &ApiState, caller: &Caller, headers: &HeaderMap, body: Body) -> Result<Received, Failure> {
    let (bytes, share) = read_bytes(caller.body_share(), &api.body_bytes, headers, body).await?;
    let turn = tokio::time::timeout(Duration::from_millis(BODY_TURN_WAIT_MS), api.bodies.clone().acquire_owned())
        .await
        .map_err(|_| {
            Failure::busy(format!("{BODIES_IN_FLIGHT_MAX} request bodies are being parsed already; retry shortly"))
        })?
        .expect("the body semaphore is never closed");
    Ok(Received { bytes, _share: share, _turn: turn })
}

/// How long after a request began its body may have sent only `received` bytes: the grace, and
/// then the time those bytes take at the minimum rate.
pub fn body_due(received: usize) -> Duration {
    let rate_micros = (received as u64).saturating_mul(1_000_000) / BODY_READ_RATE_MIN_BYTES_PER_SECOND;
    Duration::from_millis(BODY_READ_GRACE_MS) + Duration::from_micros(rate_micros)
}

/// Which bound a body that is still arriving meets first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyBound {
    /// `BODY_READ_TIMEOUT_MS` since the request began.
    Deadline,
    /// Too few bytes for the time taken (`body_due`).
    Rate,
    /// No bytes for `BODY_READ_GAP_MAX_MS`.
    Gap,
}

/// When a body that began at `started`, has `received` bytes so far and last sent some at
/// `last_arrival`, is cut off, and by which bound.
pub fn body_cutoff(started: Instant, last_arrival: Instant, received: usize) -> (Instant, BodyBound) {
    assert!(last_arrival >= started);
    [
        (started + Duration::from_millis(BODY_READ_TIMEOUT_MS), BodyBound::Deadline),
        (started + body_due(received), BodyBound::Rate),
        (last_arrival + Duration::from_millis(BODY_READ_GAP_MAX_MS), BodyBound::Gap),
    ]
    .into_iter()
    .min_by_key(|(at, _)| *at)
    .expect("three bounds")
}

/// Reads a body of at most `BODY_SIZE_MAX` bytes: a declared length over the limit is refused
/// before reading, any other body as soon as it crosses the limit. Each chunk grows `share` as
/// it arrives (429 `busy` when the caller's address or the validator holds too many body bytes
/// already).
async fn read_bytes(
    mut share: BodyShare,
    budget: &std::sync::Arc<Semaphore>,
    headers: &HeaderMap,
    mut body: Body,
) -> Result<(Bytes, BodyShare), Failure> {
    let too_large = || Failure::body_too_large(format!("the body is over the limit of {BODY_SIZE_MAX} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_SIZE_MAX as u64) {
        return Err(too_large());
    }
    let started = Instant::now();
    let mut last_arrival = started;
    let mut held: Vec<u8> = Vec::new();
    loop {
        let (due, bound) = body_cutoff(started, last_arrival, held.len());
        let frame = std::future::poll_fn(|context| Pin::new(&mut body).poll_frame(context));
        let frame = match tokio::time::timeout_at(due, frame).await {
            Err(_) => {
                let message = match bound {
                    BodyBound::Deadline => format!("the body did not arrive within {BODY_READ_TIMEOUT_MS} ms"),
                    BodyBound::Rate => format!(
                        "the body arrived slower than {BODY_READ_RATE_MIN_BYTES_PER_SECOND} bytes a second ({} bytes \
                         in {} ms)",
                        held.len(),
                        started.elapsed().as_millis()
                    ),
                    BodyBound::Gap => {
                        format!("the body stalled: no bytes for {BODY_READ_GAP_MAX_MS} ms after {} bytes", held.len())
                    }
                };
                return Err(Failure::body_timeout(message));
            }
            Ok(None) => break,
            // The connection broke or the chunked encoding was wrong: the caller may not even
            // hear this answer.
            Ok(Some(Err(error))) => {
                return Err(Failure::body_timeout(format!("the body broke off after {} bytes: {error}", held.len())));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        if held.len() + data.len() > BODY_SIZE_MAX {
            return Err(too_large());
        }
        if data.is_empty() {
            continue;
        }
        last_arrival = Instant::now();
        share.grow(budget, data.len())?;
        held.extend_from_slice(&data);
    }
    assert!(held.len() <= BODY_SIZE_MAX);
    assert_eq!(share.bytes(), held.len());
    Ok((Bytes::from(held), share))
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

/// Decodes `%XX` escapes, refusing a `%` not followed by two hex digits and bytes that are not
/// UTF-8. A `+` stays a `+`: no parameter of the API holds spaces.
pub fn percent_decode(text: &str) -> Result<String, String> {
    if !text.contains('%') {
        return Ok(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'%' {
            decoded.push(bytes[index]);
            index += 1;
            continue;
        }
        // Both digits are checked here: `from_str_radix` alone would take a sign (`%+1`).
        let escape = bytes
            .get(index + 1..index + 3)
            .filter(|digits| digits.iter().all(u8::is_ascii_hexdigit))
            .and_then(|digits| std::str::from_utf8(digits).ok());
        let Some(byte) = escape.and_then(|digits| u8::from_str_radix(digits, 16).ok()) else {
            let end = (index + 3).min(bytes.len());
            return Err(format!(
                "{:?} is not a percent-encoding (% and two hex digits)",
                String::from_utf8_lossy(&bytes[index..end])
            ));
        };
        decoded.push(byte);
        index += 3;
    }
    String::from_utf8(decoded).map_err(|_| format!("{text:?} does not decode to UTF-8"))
}

/// The query parameters of a read: `limit` (from 1 to `PAGE_LIMIT_MAX`) where `names` has it,
/// and `proof` (`true` or `false`) where `names` has it.
fn read_options(query: Option<&str>, names: &[&str]) -> Result<(usize, bool), Failure> {
    let (mut limit, mut proof) = (PAGE_LIMIT_DEFAULT, false);
    for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name).map_err(|why| Failure::invalid_path("query", why))?;
        if !names.contains(&name.as_str()) {
            return Err(Failure::unknown_field(&name, names));
        }
        let value = percent_decode(value).map_err(|why| Failure::invalid_path(name.clone(), why))?;
        if name == "proof" {
            proof = match value.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(Failure::invalid_type("proof", "proof must be true or false")),
            };
            continue;
        }
        let parsed = decimal_text(&value, "limit")?;
        if parsed == 0 || parsed > PAGE_LIMIT_MAX as u128 {
            return Err(Failure::invalid_number("limit", format!("limit must be from 1 to {PAGE_LIMIT_MAX}")));
        }
        limit = parsed as usize;
    }
    Ok((limit, proof))
}

/// `?limit=N`: a page's length.
pub fn page_limit(query: Option<&str>) -> Result<usize, Failure> {
    Ok(read_options(query, &["limit"])?.0)
}

/// `?limit=N&proof=true`: a page's length and whether the answer carries a state receipt.
pub fn page_options(query: Option<&str>) -> Result<(usize, bool), Failure> {
    read_options(query, &["limit", "proof"])
}

/// `?proof=true`: whether the answer carries a state receipt.
pub fn wants_proof(query: Option<&str>) -> Result<bool, Failure> {
    Ok(read_options(query, &["proof"])?.1)
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

    #[test]
    fn proof_is_true_or_false_and_only_where_a_read_takes_it() {
        assert!(!wants_proof(None).unwrap());
        assert!(wants_proof(Some("proof=true")).unwrap());
        assert!(!wants_proof(Some("proof=false")).unwrap());
        assert_eq!(wants_proof(Some("proof=1")).unwrap_err().code, "invalid_type");
        assert_eq!(wants_proof(Some("proof")).unwrap_err().code, "invalid_type");
        assert_eq!(wants_proof(Some("limit=3")).unwrap_err().code, "unknown_field");
        assert_eq!(page_options(Some("limit=3&proof=true")).unwrap(), (3, true));
        assert_eq!(page_limit(Some("proof=true")).unwrap_err().code, "unknown_field");
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(page_limit(Some("limit=%31")).unwrap(), 1);
        assert_eq!(page_limit(Some("%6Cimit=%32%35")).unwrap(), 25);
        for bad in ["limit=%ZZ", "limit=%3", "limit=%", "limit=%FF", "li%Gmit=1"] {
            assert_eq!(page_limit(Some(bad)).unwrap_err().code, "invalid_path", "{bad:?}");
        }
        // A decoded value still follows the decimal rule.
        assert_eq!(page_limit(Some("limit=%2B1")).unwrap_err().code, "invalid_number");
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("plain").unwrap(), "plain");
        assert_eq!(percent_decode("%41%62c").unwrap(), "Abc");
        assert_eq!(percent_decode("%C3%A9").unwrap(), "\u{e9}");
        for bad in ["%", "%4", "%4G", "%ZZ", "%FF", "%C3", "%+1", "%+F", "%-1", "% 1", "%1 "] {
            assert!(percent_decode(bad).is_err(), "{bad:?}");
        }
        assert_eq!(page_limit(Some("limit=%+1")).unwrap_err().code, "invalid_path");
    }

    #[test]
    fn a_body_may_trickle_only_during_the_grace() {
        assert_eq!(body_due(0), Duration::from_millis(BODY_READ_GRACE_MS));
        // Each further second needs the minimum rate's worth of bytes.
        let rate = BODY_READ_RATE_MIN_BYTES_PER_SECOND as usize;
        assert_eq!(body_due(rate), Duration::from_millis(BODY_READ_GRACE_MS + 1_000));
        assert_eq!(body_due(10 * rate), Duration::from_millis(BODY_READ_GRACE_MS + 10_000));
        // One byte buys well under a millisecond.
        assert!(body_due(1) < Duration::from_millis(BODY_READ_GRACE_MS + 1));
    }

    #[test]
    fn a_body_may_not_stall_whatever_it_sent_before() {
        let started = Instant::now();
        let gap = Duration::from_millis(BODY_READ_GAP_MAX_MS);
        // Nothing sent yet: the grace and the gap agree.
        assert_eq!(body_cutoff(started, started, 0).0, started + Duration::from_millis(BODY_READ_GRACE_MS));
        // A large body sent at once earns minutes at the minimum rate, but may still not stall.
        let later = started + Duration::from_millis(100);
        assert_eq!(body_cutoff(started, later, 4 * 1024 * 1024), (later + gap, BodyBound::Gap));
        // Bytes arriving steadily but too slowly meet the rate first.
        let slow = started + Duration::from_secs(5);
        assert_eq!(body_cutoff(started, slow, 1_000).1, BodyBound::Rate);
        // However fast and steady, the deadline holds.
        let late = started + Duration::from_millis(BODY_READ_TIMEOUT_MS - 1);
        assert_eq!(
            body_cutoff(started, late, 8 * 1024 * 1024),
            (started + Duration::from_millis(BODY_READ_TIMEOUT_MS), BodyBound::Deadline)
        );
    }
}
