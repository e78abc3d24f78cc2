//! `GET /v1/evidence`: the evidence of misbehaviour this validator keeps, each piece with the
//! bytes that prove it (`tally_chain::evidence`), so that anyone holding the genesis can check
//! who lied without trusting this validator (`tally evidence verify`).

use crate::api::ApiState;
use crate::api::failure::Failure;
use crate::hex;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use tally_chain::Genesis;
use tally_chain::constants::EVIDENCE_KEPT_MAX;
use tally_chain::evidence::Evidence;

/// `GET /v1/evidence`.
pub async fn evidence(State(api): State<ApiState>) -> Result<Json<Value>, Failure> {
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let pieces = api.mailbox.evidence().await.ok_or_else(|| api.unavailable())?;
    let genesis = api.genesis.genesis();
    Ok(Json(json!({
        "chain_id": api.genesis.chain_id().to_string(),
        "kept_max": EVIDENCE_KEPT_MAX,
        "evidence": pieces.iter().map(|piece| evidence_to_json(piece, genesis)).collect::<Vec<_>>(),
    })))
}

/// One piece: what it says (kind, view, the accused validator) and the bytes that prove it.
pub fn evidence_to_json(piece: &Evidence, genesis: &Genesis) -> Value {
    let accused = piece.accused(genesis).expect("kept evidence verified against this genesis");
    json!({
        "kind": piece.kind().name(),
        "view": piece.view().to_string(),
        "validator": hex::encode(accused.as_ref()),
        "proof": hex::encode(&piece.encode()),
    })
}
