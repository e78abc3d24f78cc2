//! Writes: signed requests (`POST /v1/requests`), gateway requests that the validator signs
//! (`POST /v1/accounts`, `POST /v1/transfers`), and a request's outcome by name.
//!
//! A submission is answered when its request is final and durable (200), or after the wait
//! limit with 202 and the request id to ask about later. A request already finalized answers
//! its recorded outcome, so a client can retry with the same id through any validator and the
//! ledger applies it once.

use crate::api::caller::Caller;
use crate::api::failure::Failure;
use crate::api::input::{decimal, decimal_text, hex_bytes, object, parse_json, read_body, required};
use crate::api::signed::{outcome_to_json, pending_to_json, request_from_bytes, request_from_json};
use crate::api::status::signers_to_json;
use crate::api::{ApiState, off_runtime};
use crate::constants::{OUTCOME_POLL_MS, RECEIPT_WAIT_MS, RETRY_AFTER_MS_PENDING};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::{Hasher as _, Sha256};
use rand_core::Rng as _;
use std::time::Duration;
use tally_chain::constants::REQUEST_TTL_MAX_NS;
use tally_chain::keys::{ClientKey, PUBLIC_KEY_SIZE};
use tally_chain::request::EventsDigest;
use tally_chain::{ChainError, Request, RequestKey, RequestOutcome, VerifiedRequest, default_expiry};
use tokio::time::Instant;

/// `POST /v1/requests`: a request the client signed, as JSON or, with `Content-Type:
/// application/octet-stream`, as its binary encoding (`signed::request_from_bytes`). Either way
/// the answer is JSON.
pub async fn signed_request(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Response {
    let result = signed(&api, &caller, &headers, body).await;
    respond(&api, result)
}

async fn signed(api: &ApiState, caller: &Caller, headers: &HeaderMap, body: Body) -> Result<Submitted, Failure> {
    let binary = is_binary(headers);
    let bytes = read_body(api, caller, headers, body).await?;
    let checking = api.clone();
    let request = off_runtime(move || {
        let request =
            if binary { request_from_bytes(bytes.bytes())? } else { request_from_json(&parse_json(&bytes)?)? };
        check(&checking, request)
    })
    .await?;
    submit(api, caller, request).await
}

/// Whether the body is a request's binary encoding: `Content-Type: application/octet-stream`
/// (any case, parameters ignored). Any other type, or none, is read as JSON, as it always was.
fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/octet-stream"))
}

/// Whether the genesis lists the request's client and its signature verifies for this chain:
/// the one check of its signature on this validator (the actor takes it as checked).
fn check(api: &ApiState, request: Request) -> Result<VerifiedRequest, Failure> {
    let client = crate::hex::encode(request.client().as_ref());
    if !api.genesis.genesis().allows_client(request.client()) {
        return Err(Failure::unknown_client(&client));
    }
    let id = request.id();
    // The far side of the expiry window, by this validator's clock (the near side, expired, is
    // the chain's to judge: see `submit`).
    let now_ns = u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    )
    .unwrap_or(u64::MAX);
    let latest_ns = now_ns.saturating_add(REQUEST_TTL_MAX_NS);
    if request.expires_ns() > latest_ns {
        return Err(Failure::expiry_too_far(&ChainError::ExpiryTooFar {
            id,
            expires_ns: request.expires_ns(),
            latest_ns,
        }));
    }
    request.verify(api.genesis.chain_id()).map_err(|_| {
        Failure::bad_signature(format!(
            "the signature does not verify for chain {}, this kind, id {} and these events under client {client}",
            api.genesis.chain_id(),
            id
        ))
    })
}

/// `POST /v1/accounts` (gateway mode): `{"accounts": [...], "request_id"?}`.
pub async fn gateway_accounts(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Response {
    let result = gateway(&api, &caller, &headers, body, "accounts").await;
    respond(&api, result)
}

/// `POST /v1/transfers` (gateway mode): `{"transfers": [...], "request_id"?}`.
pub async fn gateway_transfers(
    State(api): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = gateway(&api, &caller, &headers, body, "transfers").await;
    respond(&api, result)
}

/// The request a `/v1/requests/{client}/{id}` path names.
fn request_key(client: String, id: &str) -> Result<RequestKey, Failure> {
    let client_bytes = hex_bytes(&serde_json::Value::String(client), "client", PUBLIC_KEY_SIZE)?;
    let client = ClientKey::decode(client_bytes)
        .map_err(|_| Failure::invalid_type("client", "client is not an ed25519 public key"))?;
    Ok(RequestKey { client, id: decimal_text(id, "id")? })
}

/// `GET /v1/requests/{client}/{id}/receipt`: the proof of a finalized request's outcome that a
/// client checks against the genesis alone (`tally_chain::receipt`, `docs/API.md`), once the
/// block above the request's is finalized too (waiting up to `RECEIPT_WAIT_MS` for it); 202
/// until then.
pub async fn request_receipt(State(api): State<ApiState>, Path((client, id)): Path<(String, String)>) -> Response {
    let key = match request_key(client, &id) {
        Ok(key) => key,
        Err(failure) => return failure.into_response(),
    };
    if api.health.is_halted() {
        return Failure::halted().into_response();
    }
    let mut receipt = api.mailbox.receipt(key.clone()).await;
    // When there is no receipt yet: the request's height if it is final here, and whether the
    // block above it became final too while waiting.
    let mut final_height = None;
    let mut above_final = false;
    if matches!(receipt, Ok(None))
        && let Ok(Some(outcome)) = api.mailbox.outcome(key.clone()).await
    {
        final_height = Some(outcome.height);
        // The block above follows at once: wait for it a little.
        let deadline = Instant::now() + Duration::from_millis(RECEIPT_WAIT_MS);
        while Instant::now() < deadline && !api.health.is_halted() && !*api.stopping.borrow() {
            match api.mailbox.status().await {
                Some(status) if status.finalized_height > outcome.height => {
                    above_final = true;
                    break;
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(OUTCOME_POLL_MS)).await,
                None => break,
            }
        }
        receipt = api.mailbox.receipt(key.clone()).await;
    }
    match (receipt, final_height) {
        (Ok(Some(receipt)), _) => {
            let mut answer = outcome_to_json(&key, &receipt.outcome);
            let fields = answer.as_object_mut().expect("an object");
            fields.insert("certified_height".into(), receipt.above.certified().height.to_string().into());
            fields.insert("signers".into(), signers_to_json(&receipt.above, api.genesis.genesis()));
            fields.insert("receipt".into(), crate::hex::encode(&receipt.encode()).into());
            (StatusCode::OK, Json(answer)).into_response()
        }
        (Err(_) | Ok(None), _) if api.health.is_halted() => Failure::halted().into_response(),
        // Both final, and no certificate near enough above to prove them.
        (Ok(None), Some(height)) if above_final => Failure::not_found(
            "receipt_not_held",
            format!(
                "this validator holds no certificate near enough above height {height} to prove request {}; ask another validator",
                key.id
            ),
        )
        .into_response(),
        // Final, and the block above not yet.
        (Ok(None), Some(_)) => {
            (StatusCode::ACCEPTED, Json(pending_to_json(&key, RETRY_AFTER_MS_PENDING))).into_response()
        }
        (Ok(None), None) => Failure::not_found(
            "request_not_found",
            format!(
                "no finalized request {} from client {} (not final yet, or its name was forgotten ten minutes past its \
                 expiry)",
                key.id,
                crate::hex::encode(key.client.as_ref())
            ),
        )
        .into_response(),
        (Err(error @ ChainError::OutcomeNotHeld { .. }), _) => {
            Failure::not_found("outcome_not_held", error.to_string()).into_response()
        }
        (Err(error @ ChainError::OutcomeRepairing { .. }), _) => {
            Failure::outcome_repairing(error.to_string()).into_response()
        }
        (Err(_), _) => Failure::busy("this validator is too busy to answer; retry shortly").into_response(),
    }
}

/// `GET /v1/requests/{client}/{id}`: the outcome of a finalized request.
pub async fn request_outcome(
    State(api): State<ApiState>,
    Path((client, id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, Failure> {
    let key = request_key(client, &id)?;
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    match api.mailbox.outcome(key.clone()).await {
        Ok(Some(outcome)) => Ok(Json(outcome_to_json(&key, &outcome))),
        Err(_) | Ok(None) if api.health.is_halted() => Err(Failure::halted()),
        Ok(None) => Err(Failure::not_found(
            "request_not_found",
            format!(
                "no finalized request {} from client {} (not final yet, or its name was forgotten ten minutes past its \
                 expiry)",
                key.id,
                crate::hex::encode(key.client.as_ref())
            ),
        )),
        Err(error @ ChainError::OutcomeNotHeld { .. }) => {
            Err(Failure::not_found("outcome_not_held", error.to_string()))
        }
        Err(error @ ChainError::OutcomeRepairing { .. }) => Err(Failure::outcome_repairing(error.to_string())),
        Err(_) => Err(Failure::busy("this validator is too busy to answer; retry shortly")),
    }
}

/// What a submission ended with.
enum Submitted {
    Final(RequestKey, RequestOutcome),
    Pending(RequestKey),
}

fn respond(api: &ApiState, result: Result<Submitted, Failure>) -> Response {
    match result {
        Ok(Submitted::Final(key, outcome)) => {
            api.metrics.count_request("finalized");
            (StatusCode::OK, Json(outcome_to_json(&key, &outcome))).into_response()
        }
        Ok(Submitted::Pending(key)) => {
            api.metrics.count_request("pending");
            (StatusCode::ACCEPTED, Json(pending_to_json(&key, RETRY_AFTER_MS_PENDING))).into_response()
        }
        Err(failure) => {
            api.metrics.count_request(failure.code);
            failure.into_response()
        }
    }
}

/// Submits a request that passed `check` and waits for its outcome, up to the wait limit, in one
/// of the caller's write slots.
async fn submit(api: &ApiState, caller: &Caller, request: VerifiedRequest) -> Result<Submitted, Failure> {
    let client = crate::hex::encode(request.client().as_ref());
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let _slot = caller.write_slot()?;
    let key = request.key();
    let events_digest = request.events_digest();
    // A retry of a finalized request answers what happened the first time.
    match api.mailbox.outcome(key.clone()).await {
        Ok(Some(outcome)) => return answered(key, outcome, &events_digest),
        Ok(None) => {}
        Err(error @ ChainError::OutcomeNotHeld { .. }) => {
            return Err(Failure::not_found("outcome_not_held", error.to_string()));
        }
        Err(error @ ChainError::OutcomeRepairing { .. }) => {
            return Err(Failure::outcome_repairing(error.to_string()));
        }
        Err(_) if api.health.is_halted() => return Err(Failure::halted()),
        Err(_) => return Err(Failure::busy("this validator is too busy to answer; retry shortly")),
    }
    let Ok(_permit) = api.waiting.clone().try_acquire_owned() else {
        return Err(Failure::busy("too many submissions are waiting for finality here; retry shortly"));
    };
    let started = Instant::now();
    match api.mailbox.submit(request).await {
        // A duplicate is a retry of a request this validator holds or has finalized: wait for it.
        Ok(()) | Err(ChainError::DuplicateRequest { .. }) => {}
        Err(ChainError::RequestIdConflict { id }) => return Err(Failure::request_id_conflict(id, &client)),
        Err(error @ ChainError::RequestExpired { .. }) => return Err(Failure::request_expired(&error)),
        Err(error @ ChainError::ExpiryForgotten { .. }) => {
            return Err(Failure::not_found("outcome_not_held", error.to_string()));
        }
        Err(ChainError::Busy) => {
            return Err(if api.health.is_halted() {
                Failure::halted()
            } else {
                Failure::busy("the mempool is full; retry shortly")
            });
        }
        Err(ChainError::UnknownClient) => return Err(Failure::unknown_client(&client)),
        Err(ChainError::BadSignature) => return Err(Failure::bad_signature("the signature does not verify")),
        Err(other) => {
            // The request was checked above; the chain refusing it otherwise is a bug here.
            tracing::error!(%other, "the validator refused a checked request");
            return Err(Failure::halted());
        }
    }
    match wait_outcome(api, &key, started + api.wait).await {
        Some(outcome) => {
            api.metrics.observe_finalization(started.elapsed());
            answered(key, outcome, &events_digest)
        }
        None if api.health.is_halted() => Err(Failure::halted()),
        None => Ok(Submitted::Pending(key)),
    }
}

/// A finalized request's outcome as the answer to a submission of `events_digest` under its
/// name: the outcome if the submission is the same request (a retry), and a conflict if the
/// name was used for other events. (The request finalized may be another one than the one this
/// submission put in the mempool: whichever of the two reached a block first.)
fn answered(key: RequestKey, outcome: RequestOutcome, events_digest: &EventsDigest) -> Result<Submitted, Failure> {
    if outcome.events_digest != *events_digest {
        return Err(Failure::request_id_conflict(key.id, &crate::hex::encode(key.client.as_ref())));
    }
    Ok(Submitted::Final(key, outcome))
}

/// The outcome of `key` once final and durable, or `None` at `deadline`, when the validator
/// halts, or when it stops.
async fn wait_outcome(api: &ApiState, key: &RequestKey, deadline: Instant) -> Option<RequestOutcome> {
    let mut stopping = api.stopping.clone();
    if *stopping.borrow() {
        return None;
    }
    let waited = async {
        // The validator notifies its waiters; if it holds too many to take another, ask it
        // again and again instead.
        if let Some(outcome) = api.mailbox.wait_outcome(key.clone()).await {
            return Some(outcome);
        }
        loop {
            if api.health.is_halted() {
                return None;
            }
            if let Ok(Some(outcome)) = api.mailbox.outcome(key.clone()).await {
                return Some(outcome);
            }
            tokio::time::sleep(Duration::from_millis(OUTCOME_POLL_MS)).await;
        }
    };
    tokio::select! {
        outcome = tokio::time::timeout_at(deadline, waited) => outcome.ok().flatten(),
        _ = stopping.wait_for(|stopping| *stopping) => None,
    }
}

/// Whether `headers` carry the gateway's bearer token. The scheme's name is case-insensitive
/// (RFC 9110), so `bearer` and `BEARER` do too. Both tokens are hashed first and the digests
/// compared without an early exit, so the time taken says nothing about the token.
fn authorized(expected: &str, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token))
    else {
        return false;
    };
    let expected = Sha256::hash(&[expected.as_bytes()]);
    let given = Sha256::hash(&[given.trim().as_bytes()]);
    let difference = expected.as_ref().iter().zip(given.as_ref()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// A fresh request id for a gateway caller that gave none.
fn random_request_id() -> u128 {
    let mut bytes = [0u8; 16];
    commonware_utils::sys_rng().fill_bytes(&mut bytes);
    u128::from_be_bytes(bytes).max(1)
}

async fn gateway(
    api: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    events: &str,
) -> Result<Submitted, Failure> {
    let Some(gateway) = &api.gateway else {
        return Err(Failure::unauthorized(
            "this validator runs no gateway; sign requests yourself and POST them to /v1/requests",
        ));
    };
    if !authorized(&gateway.token, headers) {
        return Err(Failure::unauthorized("missing or wrong bearer token (Authorization: Bearer <token>)"));
    }
    let bytes = read_body(api, caller, headers, body).await?;
    let (signer, chain_id, events) = (gateway.signer.clone(), api.genesis.chain_id(), events.to_string());
    let request = off_runtime(move || {
        let value = parse_json(&bytes)?;
        let map = object(&value, "", &[&events, "request_id"])?;
        let list = required(map, "", &events)?;
        let id = match map.get("request_id") {
            Some(id) => decimal(id, "request_id")?,
            None => random_request_id(),
        };
        let request = if events == "accounts" {
            let accounts = tally_api::accounts_from_json(list, &events)?;
            if accounts.is_empty() {
                return Err(Failure::empty_batch(&events));
            }
            Request::create_accounts(chain_id, id, default_expiry(), &signer, &accounts)
        } else {
            let transfers = tally_api::transfers_from_json(list, &events)?;
            if transfers.is_empty() {
                return Err(Failure::empty_batch(&events));
            }
            Request::create_transfers(chain_id, id, default_expiry(), &signer, &transfers)
        };
        // Checked like a client's: the actor takes only checked requests.
        Ok(request.expect("a checked batch signs").verify(chain_id).expect("a request signed here verifies"))
    })
    .await?;
    submit(api, caller, request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_octet_stream_bodies_are_binary() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            is_binary(&headers)
        };
        assert!(with("application/octet-stream"));
        assert!(with("Application/Octet-Stream"));
        assert!(with("application/octet-stream; charset=binary"));
        assert!(!with("application/json"));
        assert!(!with("application/octet-streams"));
        assert!(!with("text/plain"));
        assert!(!is_binary(&HeaderMap::new()));
    }

    #[test]
    fn only_the_exact_token_authorizes() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            authorized("correct-horse-battery", &headers)
        };
        assert!(with("Bearer correct-horse-battery"));
        assert!(with("bearer correct-horse-battery"));
        assert!(with("BEARER correct-horse-battery"));
        assert!(with("BeArEr correct-horse-battery"));
        assert!(!with("Bearercorrect-horse-battery"));
        assert!(!with("Bearer: correct-horse-battery"));
        assert!(!with("bear correct-horse-battery"));
        assert!(!with("Bearer correct-horse-batter"));
        assert!(!with("Bearer correct-horse-battery2"));
        assert!(!with("Basic correct-horse-battery"));
        assert!(!with("correct-horse-battery"));
        assert!(!authorized("correct-horse-battery", &HeaderMap::new()));
    }
}
