//! Reads: lookups and queries on the ledger as of the last finalized block. Every answer comes
//! from one immutable finalized state, so a read never sees half a block.

use crate::api::caller::Caller;
use crate::api::failure::Failure;
use crate::api::input::{decimal_text, object, page_limit, parse_json, read_body, required};
use crate::api::{ApiState, off_runtime};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;
use tally_chain::ChainState;
use tally_ledger::{Ledger, QueryFilter, QueryFilterFlags};

type Answer = Result<Json<Value>, Failure>;

/// Answers `query` on the ledger of the last finalized block. The query and its JSON run on
/// tokio's blocking threads: up to 8,190 objects each, they must not hold up consensus.
async fn read(api: &ApiState, query: impl FnOnce(&Ledger) -> Value + Send + 'static) -> Answer {
    if api.health.is_halted() {
        return Err(Failure::halted());
    }
    let state: Arc<ChainState> = api.mailbox.finalized_state().await.ok_or_else(|| api.unavailable())?;
    off_runtime(move || Ok(Json(query(state.ledger())))).await
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

fn list(name: &str, items: Vec<Value>) -> Value {
    json!({ name: items })
}

/// `POST /v1/accounts/lookup`.
pub async fn lookup_accounts(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Answer {
    let ids = body_json(&api, &caller, &headers, body, ids).await?;
    read(&api, move |ledger| {
        list("accounts", ledger.lookup_accounts(&ids).iter().map(tally_api::account_to_json).collect())
    })
    .await
}

/// `POST /v1/transfers/lookup`.
pub async fn lookup_transfers(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Answer {
    let ids = body_json(&api, &caller, &headers, body, ids).await?;
    read(&api, move |ledger| {
        list("transfers", ledger.lookup_transfers(&ids).iter().map(tally_api::transfer_to_json).collect())
    })
    .await
}

/// `GET /v1/accounts/{id}`.
pub async fn account(State(api): State<ApiState>, Path(id): Path<String>) -> Answer {
    let id = decimal_text(&id, "id")?;
    let Json(found) =
        read(&api, move |ledger| ledger.lookup_accounts(&[id]).first().map_or(Value::Null, tally_api::account_to_json))
            .await?;
    if found.is_null() {
        return Err(Failure::not_found("account_not_found", format!("no account with id {id}")));
    }
    Ok(Json(found))
}

/// `GET /v1/transfers/{id}`.
pub async fn transfer(State(api): State<ApiState>, Path(id): Path<String>) -> Answer {
    let id = decimal_text(&id, "id")?;
    let Json(found) = read(&api, move |ledger| {
        ledger.lookup_transfers(&[id]).first().map_or(Value::Null, tally_api::transfer_to_json)
    })
    .await?;
    if found.is_null() {
        return Err(Failure::not_found("transfer_not_found", format!("no transfer with id {id}")));
    }
    Ok(Json(found))
}

/// `POST /v1/accounts/transfers`: an `AccountFilter`.
pub async fn account_transfers(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Answer {
    let filter = body_json(&api, &caller, &headers, body, account_filter).await?;
    read(&api, move |ledger| {
        list("transfers", ledger.get_account_transfers(filter).iter().map(tally_api::transfer_to_json).collect())
    })
    .await
}

/// `POST /v1/accounts/balances`: an `AccountFilter`.
pub async fn account_balances(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Answer {
    let filter = body_json(&api, &caller, &headers, body, account_filter).await?;
    read(&api, move |ledger| {
        list("balances", ledger.get_account_balances(filter).iter().map(tally_api::account_balance_to_json).collect())
    })
    .await
}

/// `POST /v1/accounts/query`: a `QueryFilter`.
pub async fn query_accounts(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Answer {
    let filter = body_json(&api, &caller, &headers, body, query_filter).await?;
    read(&api, move |ledger| {
        list("accounts", ledger.query_accounts(filter).iter().map(tally_api::account_to_json).collect())
    })
    .await
}

/// `POST /v1/transfers/query`: a `QueryFilter`.
pub async fn query_transfers(State(api): State<ApiState>, caller: Caller, headers: HeaderMap, body: Body) -> Answer {
    let filter = body_json(&api, &caller, &headers, body, query_filter).await?;
    read(&api, move |ledger| {
        list("transfers", ledger.query_transfers(filter).iter().map(tally_api::transfer_to_json).collect())
    })
    .await
}

/// `GET /v1/transfers/recent?limit=N`: the newest transfers, newest first.
pub async fn recent_transfers(State(api): State<ApiState>, RawQuery(query): RawQuery) -> Answer {
    let limit = page_limit(query.as_deref())?;
    let filter = QueryFilter {
        limit: u32::try_from(limit).expect("a page limit fits"),
        flags: QueryFilterFlags::REVERSED,
        ..QueryFilter::default()
    };
    read(&api, move |ledger| {
        list("transfers", ledger.query_transfers(filter).iter().map(tally_api::transfer_to_json).collect())
    })
    .await
}
