//! The client's bounds and default timeouts, in one place.

use crate::error::ClientError;
use std::time::Duration;

/// The most events one request carries (the chain's limit). Longer batches are split.
pub const REQUEST_EVENTS_MAX: usize = tally_chain::constants::REQUEST_EVENTS_MAX;

/// The shortest pause between two questions about a pending request.
pub const POLL_MIN: Duration = Duration::from_millis(20);

/// How long the client waits for things, and how it backs off.
///
/// Reads and writes follow one policy. A call tries the validators in turn, starting with the
/// last one that answered:
///
/// - A final answer (200, or a refusal with one of the API's error codes) ends the call.
/// - An answer that asks to wait (429 `busy`, 5xx, or 202 for a write not yet final) moves on
///   to the next validator, or polls, with backoff, until the call's wait is over
///   (`read_wait` for a read, `submit_wait` for a write, whose wait includes finalization).
/// - No HTTP answer at all (the connection refused, not made within `connect_timeout`, closed
///   without an answer, or no answer within `http_timeout`) moves on too, but after
///   `unreachable_rounds` rounds in a row in which no validator answered, the call ends at
///   once: the URLs are wrong or the validators down, and waiting longer would only hide it.
///
/// A call that gives up says, for each validator, what went wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// To open a TCP connection to a validator.
    pub connect_timeout: Duration,
    /// For one HTTP exchange. A validator holds `POST /v1/requests` until the request is final
    /// or its own wait limit passes (`api.wait_ms`, 5 s by default; then it answers 202), so
    /// this should be longer than that limit. A timeout is safe: the request goes to the next
    /// validator with the same id.
    pub http_timeout: Duration,
    /// In total for one request: every attempt, backoff and poll until it is final (an exchange
    /// still under way when it passes is cut short).
    pub submit_wait: Duration,
    /// In total for one read (a lookup, a query, the status) over every attempt.
    pub read_wait: Duration,
    /// Rounds in a row (each validator tried once) without any HTTP answer that end a call
    /// before its wait is over.
    pub unreachable_rounds: u32,
    /// The first pause after every validator failed once; it doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// The longest `Retry-After` the client honours as asked; longer ones are cut to this.
    pub retry_after_max: Duration,
    /// While a request is pending, how often it is sent again (same id, so it applies at most
    /// once), in case the validator that took it in failed before passing it on.
    pub resubmit_interval: Duration,
    /// The most events the client puts in one request when it splits a long batch: at most
    /// [`REQUEST_EVENTS_MAX`], which is the default. Smaller requests finalize sooner and are
    /// lighter on the validators, at the cost of more requests.
    pub request_events_max: usize,
    /// How long after signing a request may still be included (its `expires_ns`, by this
    /// machine's clock): two minutes by default, at most ten (the validators refuse an expiry
    /// further ahead of their clocks with `expiry_too_far`). A request not included by then never
    /// will be: the validators answer `request_expired`, a definite "not applied".
    pub request_ttl: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            http_timeout: Duration::from_secs(15),
            submit_wait: Duration::from_secs(60),
            read_wait: Duration::from_secs(10),
            unreachable_rounds: 2,
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            retry_after_max: Duration::from_secs(5),
            resubmit_interval: Duration::from_secs(5),
            request_events_max: REQUEST_EVENTS_MAX,
            request_ttl: Duration::from_nanos(tally_chain::constants::REQUEST_TTL_DEFAULT_NS),
        }
    }
}

impl ClientOptions {
    /// Refuses options that cannot work: zero timeouts or backoffs, an inverted backoff range.
    pub fn check(&self) -> Result<(), ClientError> {
        let invalid = |reason: &str| Err(ClientError::Options { reason: reason.to_string() });
        let durations = [
            ("connect_timeout", self.connect_timeout),
            ("http_timeout", self.http_timeout),
            ("submit_wait", self.submit_wait),
            ("read_wait", self.read_wait),
            ("backoff_initial", self.backoff_initial),
            ("backoff_max", self.backoff_max),
            ("resubmit_interval", self.resubmit_interval),
            ("request_ttl", self.request_ttl),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, duration)| duration.is_zero()) {
            return invalid(&format!("{name} must be longer than zero"));
        }
        if self.unreachable_rounds == 0 {
            return invalid("unreachable_rounds must be at least 1");
        }
        if self.backoff_initial > self.backoff_max {
            return invalid("backoff_initial must not exceed backoff_max");
        }
        if self.request_ttl > Duration::from_nanos(tally_chain::constants::REQUEST_TTL_MAX_NS) {
            return invalid("request_ttl must be at most ten minutes (the validators refuse expiries further ahead)");
        }
        if self.request_events_max == 0 || self.request_events_max > REQUEST_EVENTS_MAX {
            return invalid(&format!("request_events_max must be from 1 to {REQUEST_EVENTS_MAX}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_options_are_refused() {
        ClientOptions::default().check().unwrap();
        let zero = ClientOptions { read_wait: Duration::ZERO, ..ClientOptions::default() };
        assert_eq!(zero.check().unwrap_err().code(), "invalid_options");
        let inverted = ClientOptions { backoff_initial: Duration::from_secs(3), ..ClientOptions::default() };
        assert!(inverted.check().is_err());
        let no_rounds = ClientOptions { unreachable_rounds: 0, ..ClientOptions::default() };
        assert_eq!(no_rounds.check().unwrap_err().code(), "invalid_options");
        for events in [0, REQUEST_EVENTS_MAX + 1] {
            let options = ClientOptions { request_events_max: events, ..ClientOptions::default() };
            assert_eq!(options.check().unwrap_err().code(), "invalid_options");
        }
    }
}
