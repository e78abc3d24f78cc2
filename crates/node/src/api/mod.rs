//! The HTTP/JSON API every validator serves (docs/API.md). Handlers only translate: JSON in,
//! a call on the validator's `Mailbox`, JSON out. Every route is listed in `routes.rs`.

pub mod backup;
pub mod caller;
pub mod connections;
pub mod dashboard;
pub mod evidence;
pub mod failure;
pub mod input;
pub mod ledger;
pub mod routes;
pub mod serve;
pub mod signed;
pub mod status;
pub mod submit;

use crate::config::Gateway;
use crate::genesis_file::GenesisFile;
use crate::metrics::NodeMetrics;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use failure::Failure;
use routes::{Endpoint, Method, ROUTES};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tally_chain::Mailbox;
use tally_chain::keys::ValidatorKey;
use tokio::sync::{Semaphore, watch};

/// Whether the validator still works, as the API reports it.
#[derive(Debug, Default)]
pub struct Health {
    halted: AtomicBool,
}

impl Health {
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    pub fn set_halted(&self) {
        self.halted.store(true, Ordering::Release);
    }
}

/// Encodes the runtime's own metrics (Commonware's registry).
pub type RuntimeMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler shares.
pub struct Shared {
    pub mailbox: Mailbox,
    pub genesis: GenesisFile,
    pub validator: ValidatorKey,
    pub gateway: Option<Gateway>,
    /// How long a submission waits for finality.
    pub wait: Duration,
    /// One permit per submission waiting for finality.
    pub waiting: Arc<Semaphore>,
    /// One permit per request body being parsed (`input::read_body`).
    pub bodies: Arc<Semaphore>,
    /// One permit per byte of request bodies held (`input::read_body`).
    pub body_bytes: Arc<Semaphore>,
    pub health: Arc<Health>,
    pub metrics: Arc<NodeMetrics>,
    pub runtime_metrics: RuntimeMetrics,
    /// Becomes `true` when the validator is stopping: waiting submissions answer at once.
    pub stopping: watch::Receiver<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("validator", &self.validator).finish_non_exhaustive()
    }
}

/// The handlers' state.
#[derive(Debug, Clone)]
pub struct ApiState(pub Arc<Shared>);

impl std::ops::Deref for ApiState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl ApiState {
    /// What to answer when the validator does not answer: it halted, or its queue is full.
    pub fn unavailable(&self) -> Failure {
        if self.health.is_halted() {
            Failure::halted()
        } else {
            Failure::busy("this validator's queue is full; retry shortly")
        }
    }
}

/// Runs CPU-heavy work (parsing a batch of up to 8,190 events, verifying or making a signature)
/// on tokio's blocking threads, so that consensus, which shares the runtime, is not held up.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn handler(method: Method, endpoint: Endpoint) -> MethodRouter<ApiState> {
    match (method, endpoint) {
        (Method::Get, Endpoint::Dashboard) => get(dashboard::page),
        (Method::Get, Endpoint::DashboardScript) => get(dashboard::script),
        (Method::Get, Endpoint::DashboardStyle) => get(dashboard::style),
        (Method::Get, Endpoint::VerifyScript) => get(dashboard::verify_script),
        (Method::Get, Endpoint::Health) => get(status::health),
        (Method::Get, Endpoint::Metrics) => get(status::metrics),
        (Method::Get, Endpoint::Status) => get(status::status),
        (Method::Get, Endpoint::Genesis) => get(status::genesis),
        (Method::Post, Endpoint::SubmitRequest) => post(submit::signed_request),
        (Method::Get, Endpoint::RequestOutcome) => get(submit::request_outcome),
        (Method::Get, Endpoint::RequestReceipt) => get(submit::request_receipt),
        (Method::Post, Endpoint::GatewayAccounts) => post(submit::gateway_accounts),
        (Method::Post, Endpoint::GatewayTransfers) => post(submit::gateway_transfers),
        (Method::Post, Endpoint::LookupAccounts) => post(ledger::lookup_accounts),
        (Method::Post, Endpoint::LookupTransfers) => post(ledger::lookup_transfers),
        (Method::Get, Endpoint::Account) => get(ledger::account),
        (Method::Get, Endpoint::Transfer) => get(ledger::transfer),
        (Method::Post, Endpoint::AccountTransfers) => post(ledger::account_transfers),
        (Method::Post, Endpoint::AccountBalances) => post(ledger::account_balances),
        (Method::Post, Endpoint::QueryAccounts) => post(ledger::query_accounts),
        (Method::Post, Endpoint::QueryTransfers) => post(ledger::query_transfers),
        (Method::Get, Endpoint::Blocks) => get(status::blocks),
        (Method::Get, Endpoint::Header) => get(status::certified_header),
        (Method::Get, Endpoint::Evidence) => get(evidence::evidence),
        (Method::Get, Endpoint::RecentTransfers) => get(ledger::recent_transfers),
        (Method::Get, Endpoint::Backup) => get(backup::backup),
        (method, endpoint) => panic!("ROUTES pairs {endpoint:?} with {method:?}, which it does not serve"),
    }
}

async fn route_not_found() -> Failure {
    Failure::not_found("route_not_found", "no such path; docs/API.md lists the routes")
}

async fn method_not_allowed() -> Failure {
    Failure::method_not_allowed()
}

/// Refuses a path with a bad percent-encoding in the API's own form, before any handler reads
/// its parameters (axum's own answer to one is plain text).
async fn check_path(request: Request, next: Next) -> Response {
    if let Err(why) = input::percent_decode(request.uri().path()) {
        return Failure::invalid_path("path", format!("the path is not valid: {why}")).into_response();
    }
    next.run(request).await
}

/// The API's router, built from `ROUTES`. Writes take their slot (`caller::Limits`) once their
/// request is read and checked, not here: a caller with no valid request must not hold one.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route.path, handler(route.method, route.endpoint));
    }
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(check_path))
        .layer(axum::Extension(Arc::new(caller::Limits::default())))
        // Bodies are read by `input::read_body`, which answers 413 in the API's own form.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}
