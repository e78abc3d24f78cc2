//! The one error enum of the client: what kept a call from getting an answer. Ledger outcomes
//! (`ExceedsCredits`, `Exists`) are not errors: they are the statuses in a batch's results.

use std::path::PathBuf;

/// Why a call failed. Every variant has a stable snake-case [`code`](ClientError::code): for an
/// error a validator answered, the validator's own code (`bad_signature`, `unknown_client`,
/// `account_not_found`, …, see the HTTP API); for the client's own errors, the names below.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client was given no validator URL.
    #[error("no validator URL was given")]
    NoValidators,

    /// A validator URL that this client cannot use (only `http://` and `https://` are).
    #[error("invalid validator URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {reason}")]
    Setup { reason: String },

    /// Options that cannot work together (a zero timeout, a backoff longer than the wait).
    #[error("invalid client options: {reason}")]
    Options { reason: String },

    /// The client key file could not be read or does not hold a key.
    #[error("client key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },

    /// Input refused before anything was sent. `code` is the code a validator would give for the
    /// same input where there is one (`empty_batch`, `unknown_flag`, `batch_too_long`).
    #[error("{code} at {field}: {message}")]
    Input { code: &'static str, field: String, message: String },

    /// A validator refused the call with one of the API's stable error codes. These are final:
    /// another validator would answer the same, so the client does not retry them.
    #[error("{validator} answered {status} {code}{}: {message}", field_suffix(field))]
    Api { validator: String, status: u16, code: String, field: String, message: String },

    /// No validator gave a final answer within the call's bounds (refused connections,
    /// timeouts, 5xx, `busy`; see [`ClientOptions`](crate::ClientOptions) for when a call gives
    /// up). `failures` says what went wrong at each validator tried, in the order given, as
    /// "validator http://… is down: connection refused". A request may still have reached a
    /// validator and apply; sending it again with the same id is safe: it applies at most once
    /// (while the chain holds its name: ten minutes past its expiry).
    #[error("{}", unavailable_message(*attempts, failures))]
    Unavailable { attempts: u32, failures: Vec<String> },

    /// What answers at a validator URL is not a Tally validator's API (a web page, a 404
    /// without the API's error form): the URL is likely wrong, for example a peer-to-peer port.
    #[error("{validator} does not answer as a Tally validator: {reason}")]
    NotTally { validator: String, reason: String },

    /// A request was accepted but not finalized within the client's total wait. It may still be
    /// finalized: send it again with the same id (`create_*_with_id`), which applies it at most
    /// once and answers its results.
    #[error(
        "request {request_id} was not final after {waited_ms} ms; retry with the same id within ten minutes, it \
         applies at most once"
    )]
    NotFinal { request_id: u128, waited_ms: u64 },

    /// The request id was already used by this client for a request with other events (the
    /// validator answered 409 `request_id_conflict`, or the recorded outcome is of other
    /// events). Nothing of this request applied: send it with a new id.
    #[error(
        "{validator}: request id {request_id} was already used for other events; nothing applied, send it with a new id"
    )]
    RequestIdConflict { validator: String, request_id: u128 },

    /// The request expired (its `expires_ns`, [`ClientOptions::request_ttl`] after it was
    /// signed) before any block included it: nothing of it applied, and it never will (the
    /// validators answered 410 `request_expired`). Send the events again in a new request.
    ///
    /// [`ClientOptions::request_ttl`]: crate::ClientOptions::request_ttl
    #[error("{validator}: request {request_id} expired before any block included it; nothing applied, and never will")]
    RequestExpired { validator: String, request_id: u128 },

    /// The ledger refused a finalized request as a whole (its batch timestamp left no room for
    /// its events), so none of its events applied. The request is spent: its id answers this
    /// again.
    #[error("request {request_id}, final at height {height}, was refused as a whole: {reason}")]
    BatchRefused { request_id: u128, height: u64, reason: String },

    /// A batch sent as several requests stopped at a request that failed. The requests before it
    /// are final (`requests`, with the results of the events before `events_final`); the events
    /// from `events_final` on were not applied by this call. If `source` says the failed request
    /// may still apply (`not_final`, `unavailable`), send it again only with the same id.
    #[error("batch stopped after {events_final} events in final requests: {source}")]
    BatchIncomplete {
        events_final: usize,
        requests: Vec<crate::RequestReceipt>,
        results: crate::EventResults,
        source: Box<ClientError>,
    },

    /// No validator gave a receipt of the request's outcome that verifies against the genesis
    /// this client was given ([`Client::verifying`](crate::Client::verifying)): each entry says
    /// which validator answered what that did not verify. The request may well be final; the
    /// answers about it could not be trusted.
    #[error("unverified: {}", failures.join("; "))]
    Unverified { failures: Vec<String> },

    /// A validator's answer does not follow the API (a bug or an incompatible version).
    #[error("{validator} gave an answer this client does not understand: {reason}")]
    InvalidAnswer { validator: String, reason: String },
}

fn unavailable_message(attempts: u32, failures: &[String]) -> String {
    let failures = failures.join("; ");
    if attempts == 1 { failures } else { format!("no answer after {attempts} attempts: {failures}") }
}

fn field_suffix(field: &str) -> String {
    if field.is_empty() { String::new() } else { format!(" at {field}") }
}

impl ClientError {
    /// The error's stable snake-case code.
    pub fn code(&self) -> &str {
        match self {
            Self::NoValidators => "no_validators",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::KeyFile { .. } => "key_file",
            Self::Input { code, .. } => code,
            Self::Api { code, .. } => code,
            Self::Unavailable { .. } => "unavailable",
            Self::NotFinal { .. } => "not_final",
            Self::InvalidAnswer { .. } => "invalid_answer",
            Self::NotTally { .. } => "not_tally",
            Self::Setup { .. } => "setup",
            Self::Options { .. } => "invalid_options",
            Self::BatchIncomplete { .. } => "batch_incomplete",
            Self::BatchRefused { .. } => "batch_refused",
            Self::RequestIdConflict { .. } => "request_id_conflict",
            Self::RequestExpired { .. } => "request_expired",
            Self::Unverified { .. } => "unverified",
        }
    }

    pub(crate) fn input(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Input { code, field: field.into(), message: message.into() }
    }

    pub(crate) fn invalid_answer(validator: &str, reason: impl Into<String>) -> Self {
        Self::InvalidAnswer { validator: validator.to_string(), reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_error_keeps_the_validators_code() {
        let error = ClientError::Api {
            validator: "http://127.0.0.1:8080".into(),
            status: 401,
            code: "bad_signature".into(),
            field: "signature".into(),
            message: "the signature does not verify".into(),
        };
        assert_eq!(error.code(), "bad_signature");
        assert_eq!(
            error.to_string(),
            "http://127.0.0.1:8080 answered 401 bad_signature at signature: the signature does not verify"
        );
        let local = ClientError::input("empty_batch", "accounts", "a batch needs at least one event");
        assert_eq!(local.code(), "empty_batch");
        assert_eq!(ClientError::NotFinal { request_id: 7, waited_ms: 10 }.code(), "not_final");

        let down = String::from("validator http://127.0.0.1:7001 is down: connection refused");
        let once = ClientError::Unavailable { attempts: 1, failures: vec![down.clone()] };
        assert_eq!(once.to_string(), down);
        let busy = String::from("validator http://127.0.0.1:7003 answered 429 busy: the mempool is full");
        let twice = ClientError::Unavailable { attempts: 4, failures: vec![down, busy] };
        assert_eq!(
            twice.to_string(),
            "no answer after 4 attempts: validator http://127.0.0.1:7001 is down: connection refused; validator \
             http://127.0.0.1:7003 answered 429 busy: the mempool is full"
        );
        assert_eq!(twice.code(), "unavailable");
    }
}
