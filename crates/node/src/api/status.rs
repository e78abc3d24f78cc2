//! How the validator is doing: liveness, Prometheus metrics, its status with what it has seen
//! of every validator, and the newest finalized blocks.

use crate::api::ApiState;
use crate::api::failure::Failure;
use crate::api::input::decimal_text;
use crate::api::input::page_limit;
use crate::hex;
use crate::metrics::{ChainGauges, connected_peers};
use axum::Json;
use axum::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use commonware_codec::Encode as _;
use serde_json::{Value, json};
use std::time::SystemTime;
use tally_chain::block::Header as BlockHeader;
use tally_chain::certified::CertifiedHeader;
use tally_chain::{FinalizedBlock, Genesis};

/// Lets a dashboard served by another validator read this answer: the cluster's dashboards
/// probe every validator's health and height. Only `/healthz` and `/v1/status` allow it.
const ANY_ORIGIN: (header::HeaderName, &str) = (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");

/// `GET /healthz`: 200 while the validator works, 503 once it halted.
pub async fn health(State(api): State<ApiState>) -> Response {
    if api.health.is_halted() {
        (StatusCode::SERVICE_UNAVAILABLE, [ANY_ORIGIN], Json(json!({ "status": "halted" }))).into_response()
    } else {
        (StatusCode::OK, [ANY_ORIGIN], Json(json!({ "status": "ok" }))).into_response()
    }
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
pub async fn metrics(State(api): State<ApiState>) -> Response {
    let halted = api.health.is_halted();
    api.metrics.set_halted(halted);
    if !halted && let Some(status) = api.mailbox.status().await {
        api.metrics.set_chain(ChainGauges {
            finalized_height: status.finalized_height,
            view: status.view,
            mempool_requests: status.mempool_requests as u64,
            requests_finalized: status.requests_finalized as u64,
            request_names_held: status.request_names_held as u64,
            blocks_refused: status.blocks_refused,
            evidence: status.evidence,
            records_repairing: status.records_repairing,
            blocks_delivered_again: status.blocks_delivered_again,
        });
    }
    let runtime = (api.runtime_metrics)();
    api.metrics.set_connected_peers(connected_peers(&runtime));
    let text = api.metrics.encode(&runtime);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// `GET /v1/status`.
pub async fn status(State(api): State<ApiState>) -> Response {
    ([ANY_ORIGIN], status_json(&api).await).into_response()
}

async fn status_json(api: &ApiState) -> Result<Json<Value>, Failure> {
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let status = api.mailbox.status().await.ok_or_else(|| api.unavailable())?;
    let now = SystemTime::now();
    let validators: Vec<Value> = api
        .genesis
        .validators()
        .iter()
        .map(|entry| {
            let activity = status.validators.iter().find(|activity| activity.key == entry.key);
            let last_seen_ms = activity
                .and_then(|activity| activity.last_vote_at)
                .map(|at| now.duration_since(at).unwrap_or_default().as_millis() as u64);
            json!({
                "key": hex::encode(entry.key.as_ref()),
                "p2p": entry.p2p.to_string(),
                "api": entry.api,
                "last_vote_view": activity.map_or(0, |activity| activity.last_vote_view).to_string(),
                "last_seen_ms": last_seen_ms,
                "missed_finalizations": activity.map_or(0, |activity| activity.missed_finalizations),
                "faults": activity.map_or(0, |activity| activity.faults),
                "self": entry.key == api.validator,
            })
        })
        .collect();
    Ok(Json(json!({
        "chain_id": api.genesis.chain_id().to_string(),
        "validator": hex::encode(api.validator.as_ref()),
        "height": status.finalized_height.to_string(),
        "finalized_block": hex::encode(status.finalized_block.as_ref()),
        "state_digest": hex::encode(&status.state_digest),
        "ledger_digest": hex::encode(&status.ledger_digest),
        "view": status.view.to_string(),
        "leader": hex::encode(status.leader.as_ref()),
        "mempool_requests": status.mempool_requests,
        "requests_finalized": status.requests_finalized,
        "events_finalized": status.events_finalized,
        "blocks_refused": status.blocks_refused,
        "evidence": status.evidence,
        "records_repairing": status.records_repairing,
        "faults_tolerated": api.genesis.genesis().faults_tolerated(),
        "quorum": api.genesis.genesis().quorum(),
        "validators": validators,
    })))
}

/// `GET /v1/genesis`: the genesis file this validator runs, as `genesis.json` holds it. A reader
/// that trusts no validator takes its genesis from elsewhere; this lets one compare, or fetch it
/// and check its digest against one published out of band (the dashboard does, `docs/DASHBOARD.md`).
pub async fn genesis(State(api): State<ApiState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], api.genesis.to_json()).into_response()
}

/// `GET /v1/headers/{height}`: the finalized header at `height` with the certificate that proves
/// it (the headers above it up to the nearest block with its own certificate, and that
/// certificate), as JSON fields and as the bytes a client checks (`proof`, see `docs/API.md`).
pub async fn certified_header(State(api): State<ApiState>, Path(height): Path<String>) -> Result<Json<Value>, Failure> {
    let height = u64::try_from(decimal_text(&height, "height")?)
        .map_err(|_| Failure::invalid_number("height", format!("height must be at most {}", u64::MAX)))?;
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let proof = api.mailbox.certified_header(height).await.ok_or_else(|| api.unavailable())?;
    let Some(proof) = proof else {
        return Err(Failure::not_found(
            "header_not_held",
            format!("this validator cannot prove a finalized header at height {height}"),
        ));
    };
    let certified = proof.certified();
    let signers = signers_to_json(&proof, api.genesis.genesis());
    Ok(Json(json!({
        "height": height.to_string(),
        "header": header_to_json(&proof.header),
        "certified_height": certified.height.to_string(),
        "certified_digest": hex::encode(certified.digest().as_ref()),
        "signers": signers,
        "proof": hex::encode(&proof.encode()),
    })))
}

/// The validators whose signatures a certified header's certificate carries, as hex keys.
pub fn signers_to_json(proof: &CertifiedHeader, genesis: &Genesis) -> Value {
    Value::Array(proof.signers(genesis).iter().map(|key| json!(hex::encode(key.as_ref()))).collect())
}

/// A header's fields.
fn header_to_json(header: &BlockHeader) -> Value {
    json!({
        "digest": hex::encode(header.digest().as_ref()),
        "version": header.version,
        "epoch": header.epoch.to_string(),
        "view": header.view.to_string(),
        "leader": hex::encode(header.leader.as_ref()),
        "parent_view": header.parent_view.to_string(),
        "parent": hex::encode(header.parent.as_ref()),
        "height": header.height.to_string(),
        "timestamp": header.timestamp_ns.to_string(),
        "requests": header.request_count,
        "requests_root": hex::encode(header.requests_root.as_ref()),
        "parent_state_digest": hex::encode(&header.state_digest),
        "parent_results_root": hex::encode(header.results_root.as_ref()),
    })
}

/// A finalized block: its header's fields, its events, and the state digest after it.
fn block_to_json(block: &FinalizedBlock) -> Value {
    debug_assert_eq!(block.height, block.block.header.height);
    let events: usize = block.block.requests.iter().map(|request| request.events_count()).sum();
    let mut json = header_to_json(&block.block.header);
    json["events"] = json!(events);
    json["state_digest"] = json!(hex::encode(&block.state_digest));
    json
}

/// `GET /v1/blocks?limit=N`: the newest finalized blocks, newest first.
pub async fn blocks(State(api): State<ApiState>, RawQuery(query): RawQuery) -> Result<Json<Value>, Failure> {
    let limit = page_limit(query.as_deref())?;
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let height = api.mailbox.finalized_state().await.ok_or_else(|| api.unavailable())?.height();
    let from_height = (height + 1).saturating_sub(limit as u64);
    let mut blocks = api.mailbox.blocks(from_height, limit).await.ok_or_else(|| api.unavailable())?;
    blocks.retain(|block| block.height <= height);
    blocks.reverse();
    Ok(Json(json!({ "blocks": blocks.iter().map(block_to_json).collect::<Vec<_>>() })))
}
