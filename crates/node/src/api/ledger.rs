//! Reads: lookups and queries on the ledger as of the last finalized block. Every answer comes
//! from one immutable finalized state, so a read never sees half a block. With `?proof=true` a
//! read of accounts, transfers or balance history carries a state receipt of each object it
//! lists, checkable against the genesis alone (`docs/API.md`); it proves what is listed, not that
//! nothing was left out.

use crate::api::caller::Caller;
use crate::api::failure::Failure;
use crate::api::input::{decimal_text, object, page_options, parse_json, read_body, required, wants_proof};
use crate::api::status::signers_to_json;
use crate::api::{ApiState, off_runtime};
use crate::constants::{OUTCOME_POLL_MS, PROOF_WAIT_MS};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tally_chain::ChainState;
use tally_chain::certified::CertifiedHeader;
use tally_chain::state_receipt::{StateProof, StateReceipt};
use tally_ledger::{Account, AccountFilter, Ledger, QueryFilter, QueryFilterFlags, Transfer};
use tokio::time::Instant;

type Answer = Result<Json<Value>, Failure>;

/// What a read lists, and what in it a proof covers: accounts and transfers by id, or the
/// balance history entries a filter selects.
struct Listing {
    value: Value,
    accounts: Vec<u128>,
    transfers: Vec<u128>,
    balances: Option<AccountFilter>,
}

impl Listing {
    fn accounts(name: &str, accounts: &[Account]) -> Self {
        Self {
            value: json!({ name: accounts.iter().map(tally_api::account_to_json).collect::<Vec<_>>() }),
            accounts: accounts.iter().map(|account| account.id).collect(),
            transfers: Vec::new(),
            balances: None,
        }
    }

    fn transfers(name: &str, transfers: &[Transfer]) -> Self {
        Self {
            value: json!({ name: transfers.iter().map(tally_api::transfer_to_json).collect::<Vec<_>>() }),
            accounts: Vec::new(),
            transfers: transfers.iter().map(|transfer| transfer.id).collect(),
            balances: None,
        }
    }

    fn plain(value: Value) -> Self {
        Self { value, accounts: Vec::new(), transfers: Vec::new(), balances: None }
    }
}

/// Answers `query` on the ledger of the last finalized block. The query and its JSON run on
/// tokio's blocking threads: up to 8,190 objects each, they must not hold up consensus. With
/// `proof`, the answer carries a state receipt of every account and transfer it lists
/// (`tally_chain::state_receipt`), built from the same state.
async fn read(api: &ApiState, proof: bool, query: impl FnOnce(&Ledger) -> Listing + Send + 'static) -> Answer {
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let state: Arc<ChainState> = api.mailbox.finalized_state().await.ok_or_else(|| api.unavailable())?;
    let (mut value, proven) = off_runtime(move || {
        let listing = query(state.ledger());
        let proven = proof.then(|| match listing.balances {
            Some(filter) => StateProof::collect_balances(&state, filter),
            None => StateProof::collect(&state, &listing.accounts, &listing.transfers),
        });
        Ok((listing.value, proven))
    })
    .await?;
    if let Some(proven) = proven
        && let Some(fields) = value.as_object_mut()
    {
        let receipt = certify(api, proven).await?;
        let verified = receipt.certified.certified().height;
        fields.insert(
            "proof".into(),
            json!({
                "height": receipt.proof.height.to_string(),
                "certified_height": verified.to_string(),
                "signers": signers_to_json(&receipt.certified, api.genesis.genesis()),
                "receipt": crate::hex::encode(&receipt.encode()),
            }),
        );
    }
    Ok(Json(value))
}

/// The certified header that commits to the proven state: the header of the state's own block
/// when that block left the state as it was (an idle chain's empty blocks), else the header
/// above it, which a validator finalizes next (waiting up to `PROOF_WAIT_MS` for it).
async fn certify(api: &ApiState, proof: StateProof) -> Result<StateReceipt, Failure> {
    let digest = proof.state_digest();
    let commits = |certified: &Option<Option<CertifiedHeader>>| matches!(certified, Some(Some(certified)) if certified.header.state_digest == digest);
    if proof.height > 0 {
        let own = api.mailbox.certified_header(proof.height).await;
        if commits(&own) {
            return Ok(StateReceipt::new(proof, own.flatten().expect("matched")));
        }
    }
    let deadline = Instant::now() + Duration::from_millis(PROOF_WAIT_MS);
    loop {
        if api.health.is_halted() {
            return Err(Failure::halted());
        }
        let status = api.mailbox.status().await.ok_or_else(|| api.unavailable())?;
        if status.finalized_height > proof.height {
            let above = api.mailbox.certified_header(proof.height + 1).await;
            if commits(&above) {
                return Ok(StateReceipt::new(proof, above.flatten().expect("matched")));
            }
            return Err(Failure::proof_not_ready(format!(
                "this validator holds no certificate near enough above height {} to prove its state; ask another \
                 validator",
                proof.height
            )));
        }
        if Instant::now() >= deadline || *api.stopping.borrow() {
            return Err(Failure::proof_not_ready(format!(
                "the block above height {} is not final yet; retry shortly",
                proof.height
            )));
        }
        tokio::time::sleep(Duration::from_millis(OUTCOME_POLL_MS)).await;
    }
}

/// Reads a JSON body and turns it into `T` off the runtime, holding the body's turn until done.
async fn body_json<T: Send + 'static>(
    api: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    parse: impl FnOnce(&Value) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let received = read_body(api, caller, headers, body).await?;
    off_runtime(move || parse(&parse_json(&received)?)).await
}

fn account_filter(value: &Value) -> Result<tally_ledger::AccountFilter, Failure> {
    Ok(tally_api::account_filter_from_json(value, "")?)
}

fn query_filter(value: &Value) -> Result<QueryFilter, Failure> {
    Ok(tally_api::query_filter_from_json(value, "")?)
}

/// `{"ids": [...]}`: at most 8,190 decimal ids.
fn ids(value: &Value) -> Result<Vec<u128>, Failure> {
    let map = object(value, "", &["ids"])?;
    Ok(tally_api::ids_from_json(required(map, "", "ids")?, "ids")?)
}

/// `POST /v1/accounts/lookup`.
pub async fn lookup_accounts(
    State(api): State<ApiState>,
    RawQuery(query): RawQuery,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let proof = wants_proof(query.as_deref())?;
    let ids = body_json(&api, &caller, &headers, body, ids).await?;
    read(&api, proof, move |ledger| Listing::accounts("accounts", &ledger.lookup_accounts(&ids))).await
}

/// `POST /v1/transfers/lookup`.
pub async fn lookup_transfers(
    State(api): State<ApiState>,
    RawQuery(query): RawQuery,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let proof = wants_proof(query.as_deref())?;
    let ids = body_json(&api, &caller, &headers, body, ids).await?;
    read(&api, proof, move |ledger| Listing::transfers("transfers", &ledger.lookup_transfers(&ids))).await
}

/// `GET /v1/accounts/{id}`.
pub async fn account(State(api): State<ApiState>, Path(id): Path<String>, RawQuery(query): RawQuery) -> Answer {
    let id = decimal_text(&id, "id")?;
    let proof = wants_proof(query.as_deref())?;
    let Json(found) = read(&api, proof, move |ledger| match ledger.lookup_accounts(&[id]).first() {
        Some(account) => Listing { accounts: vec![id], ..Listing::plain(tally_api::account_to_json(account)) },
        None => Listing::plain(Value::Null),
    })
    .await?;
    if found.is_null() {
        return Err(Failure::not_found("account_not_found", format!("no account with id {id}")));
    }
    Ok(Json(found))
}

/// `GET /v1/transfers/{id}`.
pub async fn transfer(State(api): State<ApiState>, Path(id): Path<String>, RawQuery(query): RawQuery) -> Answer {
    let id = decimal_text(&id, "id")?;
    let proof = wants_proof(query.as_deref())?;
    let Json(found) = read(&api, proof, move |ledger| match ledger.lookup_transfers(&[id]).first() {
        Some(transfer) => Listing { transfers: vec![id], ..Listing::plain(tally_api::transfer_to_json(transfer)) },
        None => Listing::plain(Value::Null),
    })
    .await?;
    if found.is_null() {
        return Err(Failure::not_found("transfer_not_found", format!("no transfer with id {id}")));
    }
    Ok(Json(found))
}

/// `POST /v1/accounts/transfers`: an `AccountFilter`.
pub async fn account_transfers(
    State(api): State<ApiState>,
    RawQuery(query): RawQuery,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let proof = wants_proof(query.as_deref())?;
    let filter = body_json(&api, &caller, &headers, body, account_filter).await?;
    read(&api, proof, move |ledger| Listing::transfers("transfers", &ledger.get_account_transfers(filter))).await
}

/// `POST /v1/accounts/balances`: an `AccountFilter`.
pub async fn account_balances(
    State(api): State<ApiState>,
    RawQuery(query): RawQuery,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let proof = wants_proof(query.as_deref())?;
    let filter = body_json(&api, &caller, &headers, body, account_filter).await?;
    read(&api, proof, move |ledger| {
        let balances = ledger.get_account_balances(filter);
        let value = json!({ "balances": balances.iter().map(tally_api::account_balance_to_json).collect::<Vec<_>>() });
        Listing { balances: Some(filter), ..Listing::plain(value) }
    })
    .await
}

/// `POST /v1/accounts/query`: a `QueryFilter`.
pub async fn query_accounts(
    State(api): State<ApiState>,
    RawQuery(query): RawQuery,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let proof = wants_proof(query.as_deref())?;
    let filter = body_json(&api, &caller, &headers, body, query_filter).await?;
    read(&api, proof, move |ledger| Listing::accounts("accounts", &ledger.query_accounts(filter))).await
}

/// `POST /v1/transfers/query`: a `QueryFilter`.
pub async fn query_transfers(
    State(api): State<ApiState>,
    RawQuery(query): RawQuery,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let proof = wants_proof(query.as_deref())?;
    let filter = body_json(&api, &caller, &headers, body, query_filter).await?;
    read(&api, proof, move |ledger| Listing::transfers("transfers", &ledger.query_transfers(filter))).await
}

/// `GET /v1/transfers/recent?limit=N`: the newest transfers, newest first.
pub async fn recent_transfers(State(api): State<ApiState>, RawQuery(query): RawQuery) -> Answer {
    let (limit, proof) = page_options(query.as_deref())?;
    let filter = QueryFilter {
        limit: u32::try_from(limit).expect("a page limit fits"),
        flags: QueryFilterFlags::REVERSED,
        ..QueryFilter::default()
    };
    read(&api, proof, move |ledger| Listing::transfers("transfers", &ledger.query_transfers(filter))).await
}
