//! What a bad request gets: an HTTP status, a stable code, the offending field and a message,
//! as `{"error": {"code", "field", "message"}}`. The codes are part of the API (docs/API.md):
//! clients match on them, so they never change meaning.

use crate::constants::RETRY_AFTER_SECONDS_BUSY;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tally_api::ApiError;

/// Every code the API answers with, its HTTP status and when.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("malformed_json", 400, "the body is not JSON"),
    ("invalid_type", 400, "a field has the wrong JSON type or text form (a number for a decimal string, bad hex)"),
    ("missing_field", 400, "a required field is missing"),
    ("unknown_field", 400, "a field this version does not know"),
    ("duplicate_field", 400, "an object of the body names the same field twice"),
    (
        "invalid_path",
        400,
        "the path, a query parameter's name or its value has a bad percent-encoding (not % and two hex digits, or \
         not UTF-8)",
    ),
    ("invalid_number", 400, "a decimal string that is not a plain integer, or out of the field's range"),
    ("unknown_flag", 400, "a flag name this version does not know"),
    (
        "malformed_request",
        400,
        "an application/octet-stream body that is not one request's encoding: too short, a body length that is not \
         whole events or disagrees with the body's size",
    ),
    ("unknown_kind", 400, "a request kind other than create_accounts and create_transfers"),
    (
        "expiry_too_far",
        400,
        "the request's expires_ns lies more than ten minutes after the validator's clock (is the client's clock \
         ahead?)",
    ),
    ("batch_too_long", 400, "more than 8,190 events or ids"),
    ("empty_batch", 400, "a request with no events"),
    ("bad_signature", 401, "the request's signature does not verify for this chain, kind, id and events"),
    ("unauthorized", 401, "gateway mode: no gateway here, or a missing or wrong bearer token"),
    ("unknown_client", 403, "the client key is not listed in the genesis"),
    (
        "request_not_found",
        404,
        "no finalized request with this client and id (not final yet, or included so long ago that the chain forgot its \
         name: ten minutes past its expiry)",
    ),
    (
        "outcome_not_held",
        404,
        "the request was finalized below the history this validator holds (ask another validator), or it expired \
         more than ten minutes before the chain's last block and no validator holds whether it was included",
    ),
    (
        "header_not_held",
        404,
        "the height is not finalized here, is below the history this validator holds, or is genesis (which no \
         certificate signs); ask another validator or a lower height",
    ),
    (
        "receipt_not_held",
        404,
        "the request and the block above it are final here, but this validator holds no certificate near enough \
         above to prove them (it caught up by fetching blocks); ask another validator",
    ),
    ("account_not_found", 404, "no account with this id"),
    ("transfer_not_found", 404, "no transfer with this id"),
    ("route_not_found", 404, "no such path"),
    ("method_not_allowed", 405, "the path exists but not with this method"),
    (
        "body_timeout",
        408,
        "the body arrived slower than 16 KiB/s after the first 2 s, stalled for 2 s, did not arrive within 30 s, or \
         broke off",
    ),
    (
        "request_id_conflict",
        409,
        "the client already used this request id for other events; an identical retry answers the recorded outcome",
    ),
    (
        "request_expired",
        410,
        "the request's expires_ns passed before any block included it, so no block ever will: sign it again with a \
         later expiry (the same id is fine)",
    ),
    ("body_too_large", 413, "the body is over 8 MiB"),
    (
        "busy",
        429,
        "the mempool, this validator's queue, its write slots or its body budget (all of it, or an address's share) \
         are full, or the caller's address holds its most connections; retry after Retry-After seconds",
    ),
    (
        "outcome_repairing",
        503,
        "the request's finalized record is damaged on this validator's disk and being fetched again from its peers; \
         retry shortly or ask another validator",
    ),
    (
        "proof_not_ready",
        503,
        "a read with ?proof=true: no certified header commits to the state read yet (the next block is not final \
         within 3 s), or this validator holds no certificate near enough above it; retry or ask another validator",
    ),
    (
        "snapshot_not_ready",
        503,
        "GET /v1/backup: this validator holds no snapshot yet that the certified block above it proves; retry \
         later or ask another validator",
    ),
    ("halted", 503, "this validator stopped (a storage failure or a state divergence); use another"),
];

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        debug_assert!(ERROR_CODES.iter().any(|(name, http, _)| *name == code && *http == status.as_u16()));
        Self { status, code, field: field.into(), message: message.into() }
    }

    pub fn invalid_type(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_type", field, message)
    }

    pub fn invalid_path(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", field, message)
    }

    pub fn missing_field(field: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "missing_field", field, format!("{field} is required"))
    }

    pub fn unknown_field(field: &str, known: &[&str]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unknown_field",
            field,
            format!("unknown field {field}; the fields are {}", known.join(", ")),
        )
    }

    pub fn invalid_number(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_number", field, message)
    }

    pub fn unknown_kind(text: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unknown_kind",
            "kind",
            format!("unknown kind {text:?}; the kinds are create_accounts, create_transfers"),
        )
    }

    pub fn malformed_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", "", message)
    }

    pub fn batch_too_long(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "batch_too_long", field, message)
    }

    pub fn empty_batch(field: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "empty_batch", field, format!("{field} must hold at least one event"))
    }

    pub fn bad_signature(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "bad_signature", "signature", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "", message)
    }

    pub fn unknown_client(client: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "unknown_client",
            "client",
            format!("client {client} is not listed in the genesis"),
        )
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, "", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "", "this path does not take this method")
    }

    pub fn body_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "", message)
    }

    pub fn body_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", "", message)
    }

    /// A request whose name (client, id) names a request with other events, held or finalized.
    pub fn request_id_conflict(id: u128, client: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "request_id_conflict",
            "request_id",
            format!(
                "request id {id} of client {client} was already used for other events; a retry must send the same \
                 events, and a new request needs a new id"
            ),
        )
    }

    /// A request that expired before any block included it: it never will be.
    pub fn request_expired(error: &tally_chain::ChainError) -> Self {
        Self::new(StatusCode::GONE, "request_expired", "expires_ns", error.to_string())
    }

    /// A request whose expiry lies further ahead than a validator accepts.
    pub fn expiry_too_far(error: &tally_chain::ChainError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "expiry_too_far", "expires_ns", error.to_string())
    }

    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "busy", "", message)
    }

    /// The outcome's record is damaged here and being repaired from peers.
    pub fn outcome_repairing(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "outcome_repairing", "", message)
    }

    /// A read with `?proof=true` whose state no certified header commits to yet.
    pub fn proof_not_ready(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "proof_not_ready", "", message)
    }

    /// `GET /v1/backup` before this validator holds a proven snapshot.
    pub fn snapshot_not_ready(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "snapshot_not_ready", "", message)
    }

    pub fn halted() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "halted",
            "",
            "this validator has stopped (see its log); send requests to another validator",
        )
    }

    /// The body of the answer.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "field": self.field, "message": self.message } })
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        let status = StatusCode::from_u16(error.code.http_status()).expect("tally-api statuses are valid");
        Self::new(status, error.code.name(), error.field, error.message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.to_json())).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS_BUSY));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tally_api_code_is_listed_with_its_status() {
        for code in tally_api::ErrorCode::ALL {
            assert!(
                ERROR_CODES.iter().any(|(name, status, _)| *name == code.name() && *status == code.http_status()),
                "{code} is not in ERROR_CODES"
            );
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut names: Vec<&str> = ERROR_CODES.iter().map(|(name, _, _)| *name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ERROR_CODES.len());
    }
}
