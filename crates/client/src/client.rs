//! The client: one signer, several validators, failover and safe retries.

use crate::constants::{self, ClientOptions};
use crate::error::ClientError;
use crate::keys::{client_key_to_hex, random_request_id};
use crate::status::ClusterStatus;
use crate::wire::{self, Reader};
use bytes::Bytes;
use commonware_codec::Encode as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tally_chain::keys::{ClientKey, ClientSigner, public_key};
use tally_chain::receipt::{OutcomeReceipt, ReceiptError};
use tally_chain::state_receipt::StateReceipt;
use tally_chain::{ChainError, Genesis, Request, RequestKind, RequestResult};
use tally_ledger::{
    Account, AccountBalance, AccountFilter, AccountFilterFlags, CreateAccountResult, CreateTransferResult, QueryFilter,
    QueryFilterFlags, Transfer,
};
use tokio::time::Instant;

/// The ledger's results for the events of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResults {
    Accounts(Vec<CreateAccountResult>),
    Transfers(Vec<CreateTransferResult>),
}

/// A finalized request: where the chain ordered it and what the ledger answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub request_id: u128,
    /// The height of the block that holds the request.
    pub height: u64,
    /// The timestamp (ns) the ledger gave the request's batch.
    pub timestamp: u64,
    /// One result per event, in the order of the request.
    pub results: EventResults,
    /// What proved it, when the client verifies answers ([`Client::verifying`]).
    pub proven: Option<Proven>,
}

/// An answer proven by a receipt checked against the genesis: what it says is what a quorum of
/// validators signed for, whichever validator served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// For a request's outcome, the height of the block that holds the request; for a read, the
    /// height of the block after which the ledger held what was read.
    pub height: u64,
    /// How many validators signed the certificate, and how many the genesis names.
    pub signers: usize,
    pub validators: usize,
    /// The receipt's bytes (`tally_chain::receipt` for an outcome, `tally_chain::state_receipt`
    /// for a read), to keep or check again offline.
    pub receipt: Vec<u8>,
}

/// One request sent for a batch, and which of the batch's events it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestReceipt {
    pub request_id: u128,
    pub height: u64,
    pub timestamp: u64,
    /// The positions of its events in the batch.
    pub events: Range<usize>,
    /// What proved it, when the client verifies answers.
    pub proven: Option<Proven>,
}

/// The outcome of a batch: the requests it took (one, unless the batch was longer than a
/// request holds) and one result per event, in the order of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome<R> {
    pub requests: Vec<RequestReceipt>,
    pub results: Vec<R>,
}

impl<R> BatchOutcome<R> {
    /// The height of the block that holds the batch's last request.
    pub fn height(&self) -> u64 {
        self.requests.last().expect("a batch has at least one request").height
    }
}

/// The outcome of `create_accounts`.
pub type CreateAccountsOutcome = BatchOutcome<CreateAccountResult>;
/// The outcome of `create_transfers`.
pub type CreateTransfersOutcome = BatchOutcome<CreateTransferResult>;

/// A client of a Tally cluster.
///
/// Writes are signed requests: each gets an id, and the pair (client key, id) names it on every
/// validator, so the client can send it again, to the same or another validator, after any
/// failure, and the chain applies it at most once. A validator that fails (refused connection,
/// timeout, 5xx, `busy`) is skipped for the next one; a request that is accepted but not yet
/// final is followed with `GET /v1/requests/{client}/{id}` until it is.
///
/// ```no_run
/// # async fn example() -> Result<(), tally_client::ClientError> {
/// use tally_client::{Client, load_signer};
/// use tally_ledger::{Account, CreateAccountStatus};
///
/// let signer = load_signer("client.key".as_ref())?;
/// let client = Client::new(["http://127.0.0.1:7001", "http://127.0.0.1:7003"], 1, signer)?;
/// let outcome = client.create_accounts(&[Account { id: 1, ledger: 1, code: 10, ..Account::default() }]).await?;
/// assert_eq!(outcome.results[0].status, CreateAccountStatus::Created);
/// let account = client.lookup_account(1).await?.expect("created");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client {
    validators: Vec<String>,
    chain_id: u64,
    signer: ClientSigner,
    key: ClientKey,
    key_hex: String,
    options: ClientOptions,
    http: reqwest::Client,
    /// The validator to try first: the last one that answered.
    preferred: AtomicUsize,
    /// The genesis that every answer is checked against (`verifying`).
    genesis: Option<Arc<Genesis>>,
    /// The highest height a verified answer proved: a verifying client takes no read of an
    /// older state (read-your-writes across validators), unless `older_reads` allows it.
    seen: AtomicU64,
    older_reads: bool,
}

/// Ledger objects a state receipt proves.
trait Provable: Sized {
    /// What the API calls a list of them.
    const NAME: &'static str;
    fn id(&self) -> u128;
    fn proven(receipt: &StateReceipt) -> Vec<Self>;
}

impl Provable for Account {
    const NAME: &'static str = "accounts";
    fn id(&self) -> u128 {
        self.id
    }
    fn proven(receipt: &StateReceipt) -> Vec<Self> {
        receipt.proof.accounts.iter().map(|(account, _)| *account).collect()
    }
}

impl Provable for Transfer {
    const NAME: &'static str = "transfers";
    fn id(&self) -> u128 {
        self.id
    }
    fn proven(receipt: &StateReceipt) -> Vec<Self> {
        receipt.proof.transfers.iter().map(|(transfer, _)| *transfer).collect()
    }
}

/// A proven balance history entry: the account, the transfer that made it, the balances after.
struct HistoryEntry {
    account_id: u128,
    transfer_id: u128,
    balance: AccountBalance,
}

impl Provable for HistoryEntry {
    const NAME: &'static str = "balances";
    fn id(&self) -> u128 {
        self.transfer_id
    }
    fn proven(receipt: &StateReceipt) -> Vec<Self> {
        receipt
            .proof
            .balances
            .iter()
            .map(|(balance, proof)| HistoryEntry {
                account_id: proof.account_id,
                transfer_id: proof.transfer_id,
                balance: *balance,
            })
            .collect()
    }
}

/// What a verifying client makes of a read's answer.
enum ReadVerdict<T> {
    /// The objects a verified receipt proves, and what proved them.
    Taken(Vec<T>, Proven),
    /// Proven, but of a state older than this client has seen: the validator may lag.
    Stale(String),
    /// The receipt does not verify, or what it proves does not answer the question.
    Lie(String),
}

/// The state receipt in a read's answer (`"proof": {"receipt": …}`), checked against `genesis`.
fn proven_state(genesis: &Genesis, value: &Value) -> Result<(StateReceipt, Proven), String> {
    let text = value
        .get("proof")
        .and_then(|proof| proof.get("receipt"))
        .and_then(Value::as_str)
        .ok_or("the answer carries no state receipt")?;
    let bytes = wire::from_hex(text).ok_or("the state receipt is not hex")?;
    let receipt = StateReceipt::decode(&bytes, genesis).map_err(|error| error.to_string())?;
    let verified = receipt.verify(genesis).map_err(|error| error.to_string())?;
    let proven = Proven {
        height: verified.height,
        signers: verified.signers.len(),
        validators: verified.validators,
        receipt: bytes,
    };
    Ok((receipt, proven))
}

/// A body to send, cheap to clone for each attempt.
#[derive(Clone)]
struct Body {
    bytes: Bytes,
    content_type: &'static str,
}

impl Body {
    fn json(value: &Value) -> Self {
        let bytes = serde_json::to_vec(value).expect("JSON values serialize");
        Self { bytes: Bytes::from(bytes), content_type: "application/json" }
    }

    fn binary(bytes: Bytes) -> Self {
        Self { bytes, content_type: "application/octet-stream" }
    }
}

/// What one exchange with a validator came to.
enum Verdict {
    /// 200 and a JSON body.
    Answer(Value),
    /// 202: accepted, not final yet.
    Pending { retry_after: Option<Duration> },
    /// Worth trying again, here or elsewhere: no answer, 5xx, 429.
    Retry(Failure),
    /// A final refusal with the API's error code.
    Refused(ClientError),
}

/// Why one attempt at one validator failed.
struct Failure {
    /// What the validator did, to follow its URL: "is down: connection refused".
    reason: String,
    /// How long the validator asked to be left alone.
    retry_after: Option<Duration>,
    /// Whether the validator gave an HTTP answer at all.
    answered: bool,
}

impl Failure {
    fn answered(reason: String, retry_after: Option<Duration>) -> Self {
        Self { reason, retry_after, answered: true }
    }

    fn unanswered(reason: String) -> Self {
        Self { reason, retry_after: None, answered: false }
    }

    /// The failure as a sentence about `validator`.
    fn at(&self, validator: &str) -> String {
        format!("validator {validator} {}", self.reason)
    }
}

/// The bookkeeping of one call's attempts: which validator is next, how long to back off, and
/// when to give up (the policy [`ClientOptions`] describes).
struct Attempts {
    started: Instant,
    deadline: Instant,
    count: u32,
    index: usize,
    validators: usize,
    backoff: Duration,
    /// Each validator's last failure in this call, by index.
    failures: Vec<Option<String>>,
    /// Attempts in a row that got no HTTP answer.
    unanswered: usize,
}

impl Attempts {
    fn new(first: usize, validators: usize, wait: Duration, backoff: Duration) -> Self {
        assert!(validators > 0);
        let started = Instant::now();
        Self {
            started,
            deadline: started + wait,
            count: 0,
            index: first % validators,
            validators,
            backoff,
            failures: vec![None; validators],
            unanswered: 0,
        }
    }

    /// A validator answered (202, or a 404 while following a request): it can be reached.
    fn heard(&mut self) {
        self.unanswered = 0;
    }

    fn waited_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Moves to the next validator after a failed attempt at `validator` and sleeps: the
    /// server's `Retry-After` if it gave one (bounded), or an exponential backoff once every
    /// validator has been tried. Returns false if the call's time is up, or if no validator has
    /// answered for `unreachable_rounds` rounds.
    async fn fail(&mut self, validator: &str, failure: Failure, options: &ClientOptions) -> bool {
        self.count += 1;
        self.failures[self.index] = Some(failure.at(validator));
        self.unanswered = if failure.answered { 0 } else { self.unanswered + 1 };
        self.index = (self.index + 1) % self.validators;
        if self.unanswered >= self.validators * options.unreachable_rounds as usize {
            return false;
        }
        let pause = match failure.retry_after {
            Some(wait) => wait.min(options.retry_after_max),
            None if (self.count as usize).is_multiple_of(self.validators) => {
                let pause = self.backoff;
                self.backoff = (self.backoff * 2).min(options.backoff_max);
                pause
            }
            None => Duration::ZERO,
        };
        self.sleep(pause).await
    }

    /// Sleeps for `pause`, or until the deadline; false if the time is up.
    async fn sleep(&mut self, pause: Duration) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(pause.min(self.deadline - now)).await;
        Instant::now() < self.deadline
    }

    fn unavailable(&self) -> ClientError {
        assert!(self.count > 0, "a call gives up only after a failed attempt");
        ClientError::Unavailable { attempts: self.count, failures: self.failures.iter().flatten().cloned().collect() }
    }
}

/// The receipt in a `/receipt` answer, checked for `request` against `genesis`, as the outcome
/// it proves; `Err` says why it does not verify.
fn proven_receipt(
    genesis: &Genesis,
    request: &Request,
    value: &Value,
    validator: &str,
) -> Result<Result<Receipt, ClientError>, String> {
    let text = value.get("receipt").and_then(Value::as_str).ok_or("the answer carries no receipt")?;
    let bytes = wire::from_hex(text).ok_or("the receipt is not hex")?;
    let receipt = OutcomeReceipt::decode(&bytes, genesis).map_err(|error| error.to_string())?;
    let verified = match receipt.verify_for(genesis, request) {
        Ok(verified) => verified,
        // A final request of this id with other bytes, proven: the id was used for other events.
        Err(ReceiptError::OtherRequest { .. }) if receipt.key == request.key() && receipt.verify(genesis).is_ok() => {
            return Ok(Err(ClientError::RequestIdConflict {
                validator: validator.to_string(),
                request_id: request.id(),
            }));
        }
        Err(error) => return Err(error.to_string()),
    };
    let outcome = &receipt.outcome;
    let proven = Proven {
        height: verified.height,
        signers: verified.signers.len(),
        validators: verified.validators,
        receipt: bytes,
    };
    let (results, count) = match (&outcome.result, request.kind()) {
        (RequestResult::Accounts(results), RequestKind::CreateAccounts) => {
            (EventResults::Accounts(results.clone()), results.len())
        }
        (RequestResult::Transfers(results), RequestKind::CreateTransfers) => {
            (EventResults::Transfers(results.clone()), results.len())
        }
        (RequestResult::Refused(error), _) => {
            return Ok(Err(ClientError::BatchRefused {
                request_id: request.id(),
                height: outcome.height,
                reason: error.to_string(),
            }));
        }
        _ => return Err(String::from("the proven outcome is of another kind than the request")),
    };
    if count != request.events_count() {
        return Err(format!("the proven outcome has {count} results for {} events", request.events_count()));
    }
    Ok(Ok(Receipt {
        request_id: request.id(),
        height: outcome.height,
        timestamp: outcome.timestamp_ns,
        results,
        proven: Some(proven),
    }))
}

/// Splits a batch into requests of at most `max` events, cutting only between linked chains
/// (after an event without the `linked` flag) where it can: a chain cut in two would fail as
/// `linked_event_chain_open`. A chain longer than `max` is cut at `max`, and the ledger refuses
/// its pieces.
pub fn split_batch<T>(events: &[T], max: usize, is_linked: impl Fn(&T) -> bool) -> Vec<Range<usize>> {
    assert!(max > 0);
    let mut ranges = Vec::with_capacity(events.len().div_ceil(max));
    let mut start = 0;
    while start < events.len() {
        let mut end = (start + max).min(events.len());
        if end < events.len() {
            // The last chain end in [start, end): the event there is not linked to the next.
            if let Some(last) = events[start..end].iter().rposition(|event| !is_linked(event)) {
                end = start + last + 1;
            }
        }
        assert!(start < end && end - start <= max);
        ranges.push(start..end);
        start = end;
    }
    ranges
}

fn request_error(error: ChainError, field: &str) -> ClientError {
    match error {
        ChainError::EmptyRequest => ClientError::input("empty_batch", field, "a batch needs at least one event"),
        ChainError::RequestTooLong { .. } => ClientError::input(
            "batch_too_long",
            field,
            format!("one request holds at most {} events", constants::REQUEST_EVENTS_MAX),
        ),
        other => ClientError::input("invalid_request", field, other.to_string()),
    }
}

/// Checks a validator URL and returns it without a trailing slash.
fn check_url(url: &str) -> Result<String, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl { url: url.to_string(), reason: reason.to_string() };
    let trimmed = url.trim().trim_end_matches('/');
    let Some(rest) = trimmed.strip_prefix("http://") else {
        return Err(invalid("expected http://HOST:PORT (this client speaks plain HTTP)"));
    };
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(invalid("no host after http://"));
    }
    Ok(trimmed.to_string())
}

fn retry_after_header(response: &reqwest::Response) -> Option<Duration> {
    let text = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Client {
    /// A client of the validators at `validator_urls` (`http://HOST:PORT`, tried in this order)
    /// on chain `chain_id`, signing with `signer`, with the default [`ClientOptions`].
    pub fn new(
        validator_urls: impl IntoIterator<Item = impl AsRef<str>>,
        chain_id: u64,
        signer: ClientSigner,
    ) -> Result<Self, ClientError> {
        Self::with_options(validator_urls, chain_id, signer, ClientOptions::default())
    }

    /// Like [`Client::new`], with explicit timeouts and bounds.
    pub fn with_options(
        validator_urls: impl IntoIterator<Item = impl AsRef<str>>,
        chain_id: u64,
        signer: ClientSigner,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let validators =
            validator_urls.into_iter().map(|url| check_url(url.as_ref())).collect::<Result<Vec<_>, _>>()?;
        if validators.is_empty() {
            return Err(ClientError::NoValidators);
        }
        options.check()?;
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.http_timeout)
            .build()
            .map_err(|error| ClientError::Setup { reason: error.to_string() })?;
        let key = public_key(&signer);
        let key_hex = client_key_to_hex(&key);
        Ok(Self {
            validators,
            chain_id,
            signer,
            key,
            key_hex,
            options,
            http,
            preferred: AtomicUsize::new(0),
            genesis: None,
            seen: AtomicU64::new(0),
            older_reads: false,
        })
    }

    /// This client, checking the outcome of every request it submits against `genesis` (the
    /// cluster's genesis file, `GenesisFile::genesis`): the results it returns are those a
    /// receipt proves, signed by a quorum of the genesis validators, not one validator's word
    /// (see [`Client::prove`]). Each [`RequestReceipt`] then carries what proved it.
    ///
    /// Reads of accounts and transfers are verified too: each answer carries a state receipt
    /// (`?proof=true`), and the objects returned are those it proves. An id a lookup does not
    /// find is taken as absent only when f + 1 validators' verified answers leave it out (there
    /// is no proof of absence). A query's receipt proves every object it lists, not that none
    /// was left out; the same for balance history. The status is not verified.
    /// The client remembers the highest height it has seen proven and takes no read of an
    /// older state (so it reads its own writes, whichever validator answers), unless
    /// [`Client::older_reads`] allows it.
    pub fn verifying(mut self, genesis: Genesis) -> Self {
        self.genesis = Some(Arc::new(genesis));
        self
    }

    /// A verifying client that takes reads of states older than the newest it has seen (from
    /// a validator that lags), instead of asking another validator.
    pub fn older_reads(mut self, allowed: bool) -> Self {
        self.older_reads = allowed;
        self
    }

    /// The highest height a verified answer proved to this client (0 before any).
    pub fn height_seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    fn saw(&self, height: u64) {
        self.seen.fetch_max(height, Ordering::Relaxed);
    }

    /// Judges a read's answer: its state receipt must verify against `genesis`, what it proves
    /// must `fit` the question, and its state must be no older than this client has seen
    /// (unless `older_reads`). A taken answer raises the height seen.
    fn judge_read<T: Provable>(
        &self,
        genesis: &Genesis,
        value: &Value,
        fits: &(dyn Fn(&[T]) -> Result<(), String> + Sync),
    ) -> ReadVerdict<T> {
        let proven = proven_state(genesis, value).and_then(|(receipt, proven)| {
            let objects = T::proven(&receipt);
            fits(&objects).map(|()| (objects, proven))
        });
        match proven {
            Err(reason) => ReadVerdict::Lie(reason),
            Ok((_, proven)) if !self.older_reads && proven.height < self.height_seen() => ReadVerdict::Stale(format!(
                "answered from the state at height {}, older than height {} this client has seen",
                proven.height,
                self.height_seen()
            )),
            Ok((objects, proven)) => {
                self.saw(proven.height);
                ReadVerdict::Taken(objects, proven)
            }
        }
    }

    /// The validators, in the order given.
    pub fn validators(&self) -> &[String] {
        &self.validators
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The public key that names this client in the genesis and in its requests.
    pub fn client_key(&self) -> &ClientKey {
        &self.key
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The expiry of a request signed now: [`ClientOptions::request_ttl`] ahead.
    fn expiry(&self) -> u64 {
        tally_chain::expires_in(self.options.request_ttl)
    }

    /// Creates `accounts`. A batch longer than a request holds (8,190 events, or
    /// [`ClientOptions::request_events_max`]) is sent as several requests, one after the other,
    /// each cut between linked chains; each request is atomic on its own, so if one fails the
    /// earlier ones stay applied ([`ClientError::BatchIncomplete`] says how far it got).
    pub async fn create_accounts(&self, accounts: &[Account]) -> Result<CreateAccountsOutcome, ClientError> {
        wire::check_accounts_representable(accounts)?;
        let ranges = split_batch(accounts, self.options.request_events_max, wire::account_is_linked);
        self.send_batch(ranges, "accounts", |range| {
            Request::create_accounts(self.chain_id, random_request_id(), self.expiry(), &self.signer, &accounts[range])
        })
        .await
    }

    /// Creates `accounts` in one request with the id `request_id`. Sending the same id again (after
    /// an error, from another process) is safe within the chain's window (ten minutes past the
    /// first request's expiry, see the crate's documentation): the chain applies it once and answers its recorded
    /// results.
    pub async fn create_accounts_with_id(
        &self,
        request_id: u128,
        accounts: &[Account],
    ) -> Result<CreateAccountsOutcome, ClientError> {
        wire::check_accounts_representable(accounts)?;
        let request = Request::create_accounts(self.chain_id, request_id, self.expiry(), &self.signer, accounts)
            .map_err(|error| request_error(error, "accounts"))?;
        self.send_batch(std::iter::once(0..accounts.len()), "accounts", |_| Ok(request.clone())).await
    }

    /// Creates `transfers`, split into requests like [`Client::create_accounts`].
    pub async fn create_transfers(&self, transfers: &[Transfer]) -> Result<CreateTransfersOutcome, ClientError> {
        wire::check_transfers_representable(transfers)?;
        let ranges = split_batch(transfers, self.options.request_events_max, wire::transfer_is_linked);
        self.send_batch(ranges, "transfers", |range| {
            Request::create_transfers(
                self.chain_id,
                random_request_id(),
                self.expiry(),
                &self.signer,
                &transfers[range],
            )
        })
        .await
    }

    /// Creates `transfers` in one request with the id `request_id` (see
    /// [`Client::create_accounts_with_id`]).
    pub async fn create_transfers_with_id(
        &self,
        request_id: u128,
        transfers: &[Transfer],
    ) -> Result<CreateTransfersOutcome, ClientError> {
        wire::check_transfers_representable(transfers)?;
        let request = Request::create_transfers(self.chain_id, request_id, self.expiry(), &self.signer, transfers)
            .map_err(|error| request_error(error, "transfers"))?;
        self.send_batch(std::iter::once(0..transfers.len()), "transfers", |_| Ok(request.clone())).await
    }

    /// Sends the requests of a batch in order and gathers their results.
    async fn send_batch<R: ResultOf>(
        &self,
        ranges: impl IntoIterator<Item = Range<usize>>,
        field: &str,
        sign: impl Fn(Range<usize>) -> Result<Request, ChainError>,
    ) -> Result<BatchOutcome<R>, ClientError> {
        let ranges: Vec<Range<usize>> = ranges.into_iter().collect();
        if ranges.is_empty() {
            return Err(request_error(ChainError::EmptyRequest, field));
        }
        let mut outcome = BatchOutcome { requests: Vec::with_capacity(ranges.len()), results: Vec::new() };
        for range in ranges {
            let request = sign(range.clone()).map_err(|error| request_error(error, field))?;
            let receipt = match self.submit(&request).await {
                Ok(receipt) => receipt,
                Err(error) if outcome.requests.is_empty() => return Err(error),
                Err(error) => {
                    return Err(ClientError::BatchIncomplete {
                        events_final: range.start,
                        requests: outcome.requests,
                        results: R::into_results(outcome.results),
                        source: Box::new(error),
                    });
                }
            };
            let results = R::from_results(receipt.results)
                .ok_or_else(|| ClientError::invalid_answer("validator", "results of the wrong kind"))?;
            assert_eq!(results.len(), range.len(), "submit checks one result per event");
            outcome.results.extend(results);
            outcome.requests.push(RequestReceipt {
                request_id: receipt.request_id,
                height: receipt.height,
                timestamp: receipt.timestamp,
                events: range,
                proven: receipt.proven,
            });
        }
        Ok(outcome)
    }

    /// Sends a signed request and waits until it is final: through the validators in turn on
    /// failures, following it while it is pending, always with the same request, so that it can
    /// apply only once. Gives up after [`ClientOptions::submit_wait`], or sooner when no
    /// validator can be reached (see [`ClientOptions`]).
    ///
    /// The request travels as its binary encoding (`application/octet-stream`): the exact bytes
    /// the chain stores, a ninth of its JSON and nothing for the validator to parse.
    pub async fn submit(&self, request: &Request) -> Result<Receipt, ClientError> {
        let body = Body::binary(request.encode());
        let outcome_path = format!("/v1/requests/{}/{}", client_key_to_hex(request.client()), request.id());
        let mut attempts = Attempts::new(
            self.preferred.load(Ordering::Relaxed),
            self.validators.len(),
            self.options.submit_wait,
            self.options.backoff_initial,
        );
        // When a validator last took the request in (answered 202): from then on, ask for its
        // outcome, and send it again only every `resubmit_interval` in case it was lost.
        let mut accepted_at: Option<Instant> = None;
        let mut poll = self.options.backoff_initial;
        // A verifying client takes a refusal on the word of f + 1 validators (so at least one
        // honest one), or of every validator it knows if it knows fewer: each one's code here.
        let mut refusals: Vec<Option<String>> = vec![None; self.validators.len()];
        // Which validators answered that they do not hold the request's outcome.
        let mut not_held = vec![false; self.validators.len()];
        loop {
            let index = attempts.index;
            let validator = &self.validators[index];
            let resend = accepted_at.is_none_or(|at| at.elapsed() >= self.options.resubmit_interval);
            let verdict = if resend {
                self.exchange_before(attempts.deadline, validator, Method::POST, "/v1/requests", Some(body.clone()))
                    .await
            } else {
                self.exchange_before(attempts.deadline, validator, Method::GET, &outcome_path, None).await
            };
            let keep_going = match verdict {
                Verdict::Answer(value) => {
                    self.preferred.store(attempts.index, Ordering::Relaxed);
                    return match &self.genesis {
                        None => self.receipt(validator, &value, request),
                        // The answer is one validator's word: take the outcome a receipt proves.
                        Some(genesis) => self.prove(genesis, request).await,
                    };
                }
                Verdict::Pending { retry_after } => {
                    attempts.heard();
                    if resend {
                        accepted_at = Some(Instant::now());
                    }
                    let pause = retry_after.unwrap_or(poll).min(self.options.backoff_max).max(constants::POLL_MIN);
                    attempts.sleep(pause).await
                }
                // Not final there yet (or that validator has not seen it finalize): ask around.
                Verdict::Refused(ClientError::Api { status: 404, ref code, .. })
                    if !resend && code == "request_not_found" =>
                {
                    attempts.heard();
                    attempts.index = (attempts.index + 1) % self.validators.len();
                    poll = (poll * 2).min(self.options.backoff_max);
                    attempts.sleep(poll).await
                }
                // That validator joined from a snapshot above the request's height and holds no
                // outcome from before; the others may. When none does, that is the answer: a
                // request of this id was included before the backup the chain was re-founded
                // from, or this one expired so long ago that the chain forgot whether it was
                // included (ten minutes past its expiry); either way this call applied nothing.
                Verdict::Refused(error) if matches!(&error, ClientError::Api { status: 404, code, .. } if code == "outcome_not_held") =>
                {
                    not_held[index] = true;
                    if not_held.iter().all(|held| *held) {
                        return Err(error);
                    }
                    let reason = String::from("does not hold the outcome (it joined from a snapshot above it)");
                    attempts.fail(validator, Failure::answered(reason, None), &self.options).await
                }
                Verdict::Refused(error)
                    if self.genesis.is_some() && !self.refusal_confirmed(&mut refusals, index, &error) =>
                {
                    let reason = format!("refused ({}), which another validator must confirm", error.code());
                    attempts.fail(validator, Failure::answered(reason, None), &self.options).await
                }
                Verdict::Refused(ClientError::Api { status: 409, code, validator, .. })
                    if code == "request_id_conflict" =>
                {
                    return Err(ClientError::RequestIdConflict { validator, request_id: request.id() });
                }
                Verdict::Refused(ClientError::Api { status: 410, code, validator, .. })
                    if code == "request_expired" =>
                {
                    return Err(ClientError::RequestExpired { validator, request_id: request.id() });
                }
                Verdict::Refused(error) => return Err(error),
                Verdict::Retry(failure) => attempts.fail(validator, failure, &self.options).await,
            };
            if !keep_going {
                return Err(match accepted_at {
                    Some(_) => ClientError::NotFinal { request_id: request.id(), waited_ms: attempts.waited_ms() },
                    None => attempts.unavailable(),
                });
            }
        }
    }

    /// Reads a request's outcome from an answer and checks that it answers `request`.
    fn receipt(&self, validator: &str, value: &Value, request: &Request) -> Result<Receipt, ClientError> {
        let reader = Reader { validator };
        let outcome = wire::outcome_from_json(
            &reader,
            value,
            request.id(),
            &client_key_to_hex(request.client()),
            &wire::hex(&request.events_digest()),
            request.events_count(),
        )?;
        let results = match request.kind() {
            RequestKind::CreateAccounts => EventResults::Accounts(wire::account_results(&reader, &outcome.results)?),
            RequestKind::CreateTransfers => EventResults::Transfers(wire::transfer_results(&reader, &outcome.results)?),
        };
        Ok(Receipt {
            request_id: outcome.request_id,
            height: outcome.height,
            timestamp: outcome.timestamp,
            results,
            proven: None,
        })
    }

    /// Records validator `index`'s refusal and says whether enough validators refused alike to
    /// take it: f + 1 of the genesis's, or all of this client's if it knows fewer.
    fn refusal_confirmed(&self, refusals: &mut [Option<String>], index: usize, error: &ClientError) -> bool {
        let code = error.code().to_string();
        refusals[index] = Some(code.clone());
        let agreeing = refusals.iter().filter(|refusal| refusal.as_deref() == Some(code.as_str())).count();
        let honest_one = self.genesis.as_ref().map_or(1, |genesis| genesis.faults_tolerated() + 1);
        agreeing >= honest_one.min(self.validators.len())
    }

    /// The outcome of `request` as a receipt proves it: asks the validators in turn for the
    /// receipt (`GET /v1/requests/{client}/{id}/receipt`) and takes the first that verifies
    /// against `genesis` for this very request. A validator that does not know the request is
    /// given it (the one that answered the submission may have lied; the same request applies
    /// at most once), one that answers "not yet" twice is left for the next, and one whose
    /// receipt does not verify is passed over. When every validator has either given a receipt
    /// that does not verify or been unreachable twice, or [`ClientOptions::submit_wait`] runs
    /// out after one did not verify, [`ClientError::Unverified`] names each.
    pub async fn prove(&self, genesis: &Genesis, request: &Request) -> Result<Receipt, ClientError> {
        let path = format!("/v1/requests/{}/{}/receipt", client_key_to_hex(request.client()), request.id());
        let body = Body::binary(request.encode());
        let mut attempts = Attempts::new(
            self.preferred.load(Ordering::Relaxed),
            self.validators.len(),
            self.options.submit_wait,
            self.options.backoff_initial,
        );
        let mut unverified = Vec::new();
        let mut refuted = vec![false; self.validators.len()];
        let mut unreachable = vec![0u32; self.validators.len()];
        let mut pending = 0;
        loop {
            let index = attempts.index;
            let validator = &self.validators[index];
            let failure = match self.exchange_before(attempts.deadline, validator, Method::GET, &path, None).await {
                Verdict::Answer(value) => match proven_receipt(genesis, request, &value, validator) {
                    Ok(receipt) => {
                        if let Ok(receipt) = &receipt {
                            self.saw(receipt.height);
                        }
                        return receipt;
                    }
                    Err(reason) => {
                        unverified.push(format!("{validator}: {reason}"));
                        refuted[index] = true;
                        Failure::answered(format!("unverified: {reason}"), None)
                    }
                },
                // Final there, the block above not yet: ask again, then another validator.
                Verdict::Pending { retry_after } if pending < 2 => {
                    pending += 1;
                    attempts.heard();
                    let pause =
                        retry_after.unwrap_or(constants::POLL_MIN).clamp(constants::POLL_MIN, self.options.backoff_max);
                    if attempts.sleep(pause).await {
                        continue;
                    }
                    Failure::answered(String::from("the receipt was not ready in time"), None)
                }
                Verdict::Pending { .. } => Failure::answered(String::from("the receipt was not ready"), None),
                // Not final there: give it the request, then ask again.
                Verdict::Refused(ClientError::Api { status: 404, ref code, .. }) if code == "request_not_found" => {
                    attempts.heard();
                    let sent = self
                        .exchange_before(attempts.deadline, validator, Method::POST, "/v1/requests", Some(body.clone()))
                        .await;
                    match sent {
                        Verdict::Answer(_) | Verdict::Pending { .. } if pending < 2 => {
                            pending += 1;
                            continue;
                        }
                        _ => Failure::answered(String::from("does not hold the request"), None),
                    }
                }
                // That validator cannot prove it (it joined from a snapshot above it): another may.
                Verdict::Refused(error) => Failure::answered(error.to_string(), None),
                Verdict::Retry(failure) => failure,
            };
            pending = 0;
            if !failure.answered {
                unreachable[index] += 1;
            }
            let settled = (0..refuted.len()).all(|index| refuted[index] || unreachable[index] >= 2);
            if !unverified.is_empty() && settled {
                return Err(ClientError::Unverified { failures: unverified });
            }
            if !attempts.fail(validator, failure, &self.options).await {
                return Err(if unverified.is_empty() {
                    attempts.unavailable()
                } else {
                    ClientError::Unverified { failures: unverified }
                });
            }
        }
    }

    /// One HTTP exchange with one validator, judged.
    async fn exchange(&self, validator: &str, method: Method, path: &str, body: Option<Body>) -> Verdict {
        let mut builder = self.http.request(method, format!("{validator}{path}"));
        if let Some(body) = body {
            builder = builder.header(reqwest::header::CONTENT_TYPE, body.content_type).body(body.bytes);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return Verdict::Retry(Failure::unanswered(describe(&error, &self.options))),
        };
        let status = response.status();
        let retry_after = retry_after_header(&response);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => return Verdict::Retry(Failure::unanswered(describe(&error, &self.options))),
        };
        let value = serde_json::from_slice::<Value>(&bytes).ok();
        judge(validator, status, value, retry_after)
    }

    /// One exchange, cut short at the call's deadline.
    async fn exchange_before(
        &self,
        deadline: Instant,
        validator: &str,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Verdict {
        match tokio::time::timeout_at(deadline, self.exchange(validator, method, path, body)).await {
            Ok(verdict) => verdict,
            Err(_) => {
                Verdict::Retry(Failure::unanswered(String::from("gave no answer before the call's wait was over")))
            }
        }
    }

    /// A read (a GET, or a POST that changes nothing) with failover. Gives up after
    /// [`ClientOptions::read_wait`], or sooner when no validator can be reached (see
    /// [`ClientOptions`]).
    async fn read(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        let body = body.map(|value| Body::json(&value));
        let mut attempts = Attempts::new(
            self.preferred.load(Ordering::Relaxed),
            self.validators.len(),
            self.options.read_wait,
            self.options.backoff_initial,
        );
        loop {
            let validator = &self.validators[attempts.index];
            let verdict = self.exchange_before(attempts.deadline, validator, method.clone(), path, body.clone()).await;
            let failure = match verdict {
                Verdict::Answer(value) => {
                    self.preferred.store(attempts.index, Ordering::Relaxed);
                    return Ok(value);
                }
                Verdict::Refused(error) => return Err(error),
                Verdict::Pending { retry_after } => {
                    Failure::answered(String::from("answered 202 to a read"), retry_after)
                }
                Verdict::Retry(failure) => failure,
            };
            if !attempts.fail(validator, failure, &self.options).await {
                return Err(attempts.unavailable());
            }
        }
    }

    /// The preferred validator's URL (for naming it in errors about an answer's content).
    fn answered_by(&self) -> &str {
        &self.validators[self.preferred.load(Ordering::Relaxed) % self.validators.len()]
    }

    /// Reads `name` of a read's answer as ledger objects.
    fn objects<T>(
        &self,
        value: &Value,
        name: &str,
        item: fn(&Value, &str) -> Result<T, tally_api::ApiError>,
    ) -> Result<Vec<T>, ClientError> {
        Reader { validator: self.answered_by() }.objects(value, name, item)
    }

    /// A verified read: asks the validators in turn for `path` with `?proof=true` and takes the
    /// first answer whose state receipt verifies against `genesis` and is not older than what
    /// this client has seen. Returns the objects it proves, what proved them, and which
    /// validator answered. A validator whose receipt does not verify is passed over; when every
    /// validator has either given one that does not verify or been unreachable twice,
    /// [`ClientError::Unverified`] names each. `fits` checks that the proven objects answer the
    /// question (each one a filter admits, in order, no more than the limit); one that does not
    /// is a lie like a bad proof. A refusal (4xx) is taken on the word of f + 1.
    async fn proven_read<T: Provable>(
        &self,
        genesis: &Genesis,
        path: &str,
        body: &Value,
        fits: &(dyn Fn(&[T]) -> Result<(), String> + Sync),
    ) -> Result<(Vec<T>, Proven, usize), ClientError> {
        let path = format!("{path}?proof=true");
        let body = Body::json(body);
        let mut attempts = Attempts::new(
            self.preferred.load(Ordering::Relaxed),
            self.validators.len(),
            self.options.read_wait,
            self.options.backoff_initial,
        );
        let mut unverified = Vec::new();
        let mut refuted = vec![false; self.validators.len()];
        let mut unreachable = vec![0u32; self.validators.len()];
        let mut refusals: Vec<Option<String>> = vec![None; self.validators.len()];
        loop {
            let index = attempts.index;
            let validator = &self.validators[index];
            let verdict =
                self.exchange_before(attempts.deadline, validator, Method::POST, &path, Some(body.clone())).await;
            let failure = match verdict {
                Verdict::Answer(value) => match self.judge_read(genesis, &value, fits) {
                    ReadVerdict::Taken(objects, proven) => {
                        self.preferred.store(index, Ordering::Relaxed);
                        return Ok((objects, proven, index));
                    }
                    ReadVerdict::Stale(reason) => Failure::answered(reason, None),
                    ReadVerdict::Lie(reason) => {
                        unverified.push(format!("{validator}: {reason}"));
                        refuted[index] = true;
                        Failure::answered(format!("unverified: {reason}"), None)
                    }
                },
                Verdict::Refused(error) if self.refusal_confirmed(&mut refusals, index, &error) => return Err(error),
                Verdict::Refused(error) => {
                    Failure::answered(format!("refused ({}), which another validator must confirm", error.code()), None)
                }
                Verdict::Pending { retry_after } => {
                    Failure::answered(String::from("answered 202 to a read"), retry_after)
                }
                Verdict::Retry(failure) => failure,
            };
            if !failure.answered {
                unreachable[index] += 1;
            }
            let settled = (0..refuted.len()).all(|index| refuted[index] || unreachable[index] >= 2);
            if !unverified.is_empty() && settled {
                return Err(ClientError::Unverified { failures: unverified });
            }
            if !attempts.fail(validator, failure, &self.options).await {
                return Err(if unverified.is_empty() {
                    attempts.unavailable()
                } else {
                    ClientError::Unverified { failures: unverified }
                });
            }
        }
    }

    /// A verified lookup of `ids` at `path`: the objects a state receipt proves, in the order
    /// asked (each once). An id the answer leaves out is asked of the other validators, one at a
    /// time: one whose verified answer holds it proves it exists; it is taken as absent once f + 1
    /// validators' verified answers (of states no older than this client has seen) leave it out.
    /// Otherwise (also when the client knows fewer than f + 1 validators)
    /// [`ClientError::Unverified`].
    async fn proven_lookup<T: Provable>(
        &self,
        genesis: &Genesis,
        path: &str,
        ids: &[u128],
    ) -> Result<(Vec<T>, Proven), ClientError> {
        let wanted: HashSet<u128> = ids.iter().copied().collect();
        let asked = |objects: &[T]| match objects.iter().find(|object| !wanted.contains(&object.id())) {
            Some(object) => Err(format!("the answer proves {} {}, which was not asked for", T::NAME, object.id())),
            None => Ok(()),
        };
        let (mut found, proven, first) = self.proven_read::<T>(genesis, path, &ids_json(ids), &asked).await?;
        let mut missing = wanted.clone();
        for object in &found {
            missing.remove(&object.id());
        }
        // f + 1 of the genesis's validators, so at least one honest: a client that knows fewer
        // URLs cannot take an absence as proven.
        let needed = genesis.faults_tolerated() + 1;
        let mut agreeing = 1;
        let mut failures = Vec::new();
        for step in 1..self.validators.len() {
            if missing.is_empty() || agreeing >= needed {
                break;
            }
            let validator = &self.validators[(first + step) % self.validators.len()];
            let deadline = Instant::now() + self.options.read_wait;
            let body = Body::json(&ids_json(&missing.iter().copied().collect::<Vec<_>>()));
            let path = format!("{path}?proof=true");
            let verdict = self.exchange_before(deadline, validator, Method::POST, &path, Some(body)).await;
            let value = match verdict {
                Verdict::Answer(value) => value,
                Verdict::Refused(error) => {
                    failures.push(format!("{validator}: {error}"));
                    continue;
                }
                Verdict::Pending { .. } => {
                    failures.push(format!("{validator}: answered 202 to a read"));
                    continue;
                }
                Verdict::Retry(failure) => {
                    failures.push(failure.at(validator));
                    continue;
                }
            };
            match self.judge_read(genesis, &value, &asked) {
                ReadVerdict::Taken(more, _) => {
                    for object in &more {
                        missing.remove(&object.id());
                    }
                    found.extend(more);
                    agreeing += 1;
                }
                ReadVerdict::Stale(reason) => failures.push(format!("{validator}: {reason}")),
                ReadVerdict::Lie(reason) => failures.push(format!("{validator}: unverified: {reason}")),
            }
        }
        if !missing.is_empty() && agreeing < needed {
            let mut ids: Vec<u128> = missing.into_iter().collect();
            ids.sort_unstable();
            let ids: Vec<String> = ids.iter().map(u128::to_string).collect();
            failures.push(format!(
                "{} {} not found by {agreeing} validator(s), and {needed} must agree that an id is absent",
                T::NAME,
                ids.join(", ")
            ));
            return Err(ClientError::Unverified { failures });
        }
        // In the order asked, each once.
        let mut by_id: HashMap<u128, T> = found.into_iter().map(|object| (object.id(), object)).collect();
        let ordered = ids.iter().filter_map(|id| by_id.remove(id)).collect();
        Ok((ordered, proven))
    }

    /// A read of objects: verified when the client is ([`Client::verifying`]), else as the
    /// answering validator lists them.
    async fn objects_read<T: Provable>(
        &self,
        path: &str,
        body: Value,
        item: fn(&Value, &str) -> Result<T, tally_api::ApiError>,
        fits: &(dyn Fn(&[T]) -> Result<(), String> + Sync),
    ) -> Result<(Vec<T>, Option<Proven>), ClientError> {
        match &self.genesis {
            Some(genesis) => {
                let (objects, proven, _) = self.proven_read::<T>(genesis, path, &body, fits).await?;
                Ok((objects, Some(proven)))
            }
            None => {
                let value = self.read(Method::POST, path, Some(body)).await?;
                Ok((self.objects(&value, T::NAME, item)?, None))
            }
        }
    }

    /// A lookup by ids, in pieces of at most 8,190 ids: verified when the client is.
    async fn lookup<T: Provable>(
        &self,
        path: &str,
        ids: &[u128],
        item: fn(&Value, &str) -> Result<T, tally_api::ApiError>,
    ) -> Result<(Vec<T>, Option<Proven>), ClientError> {
        let mut objects = Vec::with_capacity(ids.len());
        let mut proof = None;
        for chunk in ids.chunks(constants::REQUEST_EVENTS_MAX) {
            match &self.genesis {
                Some(genesis) => {
                    let (found, proven) = self.proven_lookup::<T>(genesis, path, chunk).await?;
                    objects.extend(found);
                    proof = Some(proven);
                }
                None => {
                    let value = self.read(Method::POST, path, Some(ids_json(chunk))).await?;
                    objects.extend(self.objects(&value, T::NAME, item)?);
                }
            }
        }
        Ok((objects, proof))
    }

    /// Looks up accounts by id; ids that do not exist are left out. More ids than one lookup
    /// takes (8,190) are asked in several.
    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, ClientError> {
        Ok(self.lookup_accounts_proven(ids).await?.0)
    }

    /// `lookup_accounts`, with what proved the answer when the client verifies (the last
    /// piece's proof, for more than 8,190 ids).
    pub async fn lookup_accounts_proven(&self, ids: &[u128]) -> Result<(Vec<Account>, Option<Proven>), ClientError> {
        self.lookup("/v1/accounts/lookup", ids, tally_api::account_from_json).await
    }

    /// Looks up transfers by id; ids that do not exist are left out.
    pub async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, ClientError> {
        Ok(self.lookup_transfers_proven(ids).await?.0)
    }

    /// `lookup_transfers`, with what proved the answer when the client verifies.
    pub async fn lookup_transfers_proven(&self, ids: &[u128]) -> Result<(Vec<Transfer>, Option<Proven>), ClientError> {
        self.lookup("/v1/transfers/lookup", ids, tally_api::transfer_from_json).await
    }

    /// One account, or `None` if it does not exist.
    pub async fn lookup_account(&self, id: u128) -> Result<Option<Account>, ClientError> {
        if self.genesis.is_some() {
            return Ok(self.lookup_accounts(&[id]).await?.pop());
        }
        match self.read(Method::GET, &format!("/v1/accounts/{id}"), None).await {
            Ok(value) => tally_api::account_from_json(&value, "account")
                .map(Some)
                .map_err(|error| ClientError::invalid_answer(self.answered_by(), error.to_string())),
            Err(error) if error.code() == "account_not_found" => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// One transfer, or `None` if it does not exist.
    pub async fn lookup_transfer(&self, id: u128) -> Result<Option<Transfer>, ClientError> {
        if self.genesis.is_some() {
            return Ok(self.lookup_transfers(&[id]).await?.pop());
        }
        match self.read(Method::GET, &format!("/v1/transfers/{id}"), None).await {
            Ok(value) => tally_api::transfer_from_json(&value, "transfer")
                .map(Some)
                .map_err(|error| ClientError::invalid_answer(self.answered_by(), error.to_string())),
            Err(error) if error.code() == "transfer_not_found" => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The transfers of an account that match `filter` (TigerBeetle's `get_account_transfers`).
    pub async fn get_account_transfers(&self, filter: &AccountFilter) -> Result<Vec<Transfer>, ClientError> {
        Ok(self.get_account_transfers_proven(filter).await?.0)
    }

    /// `get_account_transfers`, with what proved the transfers listed when the client verifies.
    pub async fn get_account_transfers_proven(
        &self,
        filter: &AccountFilter,
    ) -> Result<(Vec<Transfer>, Option<Proven>), ClientError> {
        let body = wire::account_filter_to_json(filter);
        let reversed = filter.flags.contains(AccountFilterFlags::REVERSED);
        let fits = |transfers: &[Transfer]| {
            fits_query(
                transfers,
                filter.limit,
                reversed,
                |transfer| filter.admits(transfer),
                |transfer| transfer.timestamp,
            )
        };
        self.objects_read("/v1/accounts/transfers", body, tally_api::transfer_from_json, &fits).await
    }

    /// The balance history of an account with the `history` flag (TigerBeetle's
    /// `get_account_balances`).
    pub async fn get_account_balances(&self, filter: &AccountFilter) -> Result<Vec<AccountBalance>, ClientError> {
        Ok(self.get_account_balances_proven(filter).await?.0)
    }

    /// `get_account_balances`, with what proved the entries listed when the client verifies:
    /// each is an entry of this account's history (the transfer that made it is named in the
    /// receipt), in timestamp order, within the filter's range and limit.
    pub async fn get_account_balances_proven(
        &self,
        filter: &AccountFilter,
    ) -> Result<(Vec<AccountBalance>, Option<Proven>), ClientError> {
        let body = wire::account_filter_to_json(filter);
        let Some(genesis) = &self.genesis else {
            let value = self.read(Method::POST, "/v1/accounts/balances", Some(body)).await?;
            return Ok((self.objects(&value, "balances", wire::balance_from_json)?, None));
        };
        let reversed = filter.flags.contains(AccountFilterFlags::REVERSED);
        let (min, max) =
            (filter.timestamp_min, if filter.timestamp_max == 0 { u64::MAX } else { filter.timestamp_max });
        let fits = |entries: &[HistoryEntry]| {
            if let Some(entry) = entries.iter().find(|entry| entry.account_id != filter.account_id) {
                return Err(format!(
                    "the answer proves an entry of account {}, not {}",
                    entry.account_id, filter.account_id
                ));
            }
            fits_query(
                entries,
                filter.limit,
                reversed,
                |entry| (min..=max).contains(&entry.balance.timestamp),
                |entry| entry.balance.timestamp,
            )
        };
        let (entries, proven, _) =
            self.proven_read::<HistoryEntry>(genesis, "/v1/accounts/balances", &body, &fits).await?;
        Ok((entries.into_iter().map(|entry| entry.balance).collect(), Some(proven)))
    }

    /// The accounts whose fields match every nonzero field of `filter`.
    pub async fn query_accounts(&self, filter: &QueryFilter) -> Result<Vec<Account>, ClientError> {
        Ok(self.query_accounts_proven(filter).await?.0)
    }

    /// `query_accounts`, with what proved the accounts listed when the client verifies.
    pub async fn query_accounts_proven(
        &self,
        filter: &QueryFilter,
    ) -> Result<(Vec<Account>, Option<Proven>), ClientError> {
        let body = wire::query_filter_to_json(filter);
        let reversed = filter.flags.contains(QueryFilterFlags::REVERSED);
        let fits = |accounts: &[Account]| {
            fits_query(
                accounts,
                filter.limit,
                reversed,
                |account| filter.admits_account(account),
                |account| account.timestamp,
            )
        };
        self.objects_read("/v1/accounts/query", body, tally_api::account_from_json, &fits).await
    }

    /// The transfers whose fields match every nonzero field of `filter`.
    pub async fn query_transfers(&self, filter: &QueryFilter) -> Result<Vec<Transfer>, ClientError> {
        Ok(self.query_transfers_proven(filter).await?.0)
    }

    /// `query_transfers`, with what proved the transfers listed when the client verifies.
    pub async fn query_transfers_proven(
        &self,
        filter: &QueryFilter,
    ) -> Result<(Vec<Transfer>, Option<Proven>), ClientError> {
        let body = wire::query_filter_to_json(filter);
        let reversed = filter.flags.contains(QueryFilterFlags::REVERSED);
        let fits = |transfers: &[Transfer]| {
            fits_query(
                transfers,
                filter.limit,
                reversed,
                |transfer| filter.admits_transfer(transfer),
                |transfer| transfer.timestamp,
            )
        };
        self.objects_read("/v1/transfers/query", body, tally_api::transfer_from_json, &fits).await
    }

    /// The status of the first validator that answers.
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        let value = self.read(Method::GET, "/v1/status", None).await?;
        ClusterStatus::from_json(&Reader { validator: self.answered_by() }, &value)
    }

    /// The status of every validator, in the order given: each validator's own answer, or why
    /// it gave none ("validator http://… is down: connection refused"). This asks each once,
    /// with no failover.
    pub async fn status_of_each(&self) -> Vec<(String, Result<ClusterStatus, ClientError>)> {
        let mut statuses = Vec::with_capacity(self.validators.len());
        for validator in &self.validators {
            let status = match self.exchange(validator, Method::GET, "/v1/status", None).await {
                Verdict::Answer(value) => ClusterStatus::from_json(&Reader { validator }, &value),
                Verdict::Refused(error) => Err(error),
                Verdict::Pending { .. } => Err(ClientError::invalid_answer(validator, "202 to GET /v1/status")),
                Verdict::Retry(failure) => {
                    Err(ClientError::Unavailable { attempts: 1, failures: vec![failure.at(validator)] })
                }
            };
            statuses.push((validator.clone(), status));
        }
        statuses
    }

    /// This client's key as the API writes it (64 hex digits).
    pub fn client_key_hex(&self) -> &str {
        &self.key_hex
    }
}

/// Whether a query's proven objects can be its answer: each one the filter admits, in timestamp
/// order (newest first when `reversed`), no more than `limit`. (That none was left out cannot be
/// proven.)
fn fits_query<T: Provable>(
    objects: &[T],
    limit: u32,
    reversed: bool,
    admits: impl Fn(&T) -> bool,
    timestamp: impl Fn(&T) -> u64,
) -> Result<(), String> {
    if objects.len() > limit as usize {
        return Err(format!("the answer lists {} {} for a limit of {limit}", objects.len(), T::NAME));
    }
    if let Some(object) = objects.iter().find(|object| !admits(object)) {
        return Err(format!("the answer lists {} {}, which the filter does not select", T::NAME, object.id()));
    }
    let ordered = objects.windows(2).all(|pair| {
        let (first, second) = (timestamp(&pair[0]), timestamp(&pair[1]));
        if reversed { first > second } else { first < second }
    });
    if !ordered {
        return Err(format!("the answer lists {} out of timestamp order", T::NAME));
    }
    Ok(())
}

fn ids_json(ids: &[u128]) -> Value {
    json!({ "ids": ids.iter().map(u128::to_string).collect::<Vec<_>>() })
}

/// The results of one kind of request, out of a receipt and back.
trait ResultOf: Sized {
    fn from_results(results: EventResults) -> Option<Vec<Self>>;
    fn into_results(results: Vec<Self>) -> EventResults;
}

impl ResultOf for CreateAccountResult {
    fn from_results(results: EventResults) -> Option<Vec<Self>> {
        match results {
            EventResults::Accounts(results) => Some(results),
            EventResults::Transfers(_) => None,
        }
    }

    fn into_results(results: Vec<Self>) -> EventResults {
        EventResults::Accounts(results)
    }
}

impl ResultOf for CreateTransferResult {
    fn from_results(results: EventResults) -> Option<Vec<Self>> {
        match results {
            EventResults::Transfers(results) => Some(results),
            EventResults::Accounts(_) => None,
        }
    }

    fn into_results(results: Vec<Self>) -> EventResults {
        EventResults::Transfers(results)
    }
}

/// What a validator did when an exchange got no HTTP answer, in a few words that follow its URL
/// ("is down: connection refused"). reqwest's own display omits the cause.
fn describe(error: &reqwest::Error, options: &ClientOptions) -> String {
    let causes = || std::iter::successors(std::error::Error::source(error), |cause| cause.source());
    let io_kind = causes().find_map(|cause| cause.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
    // The innermost cause says the most ("Connection refused", "failed to lookup address").
    let innermost = causes().last().map_or_else(|| error.to_string(), ToString::to_string);
    if error.is_connect() {
        if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
            String::from("is down: connection refused")
        } else if error.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
            format!("is unreachable: no connection within {:?}", options.connect_timeout)
        } else {
            format!("is unreachable: {innermost}")
        }
    } else if error.is_timeout() {
        format!("gave no answer within {:?}", options.http_timeout)
    } else {
        // Connected, but what answered does not speak HTTP (a peer-to-peer port), or it closed
        // the connection midway (a validator stopping).
        format!("gave no HTTP answer ({innermost}); is the URL a Tally validator's API?")
    }
}

fn not_tally(validator: &str, reason: String) -> ClientError {
    ClientError::NotTally { validator: validator.to_string(), reason }
}

/// What an HTTP answer means for the client.
fn judge(validator: &str, status: StatusCode, value: Option<Value>, retry_after: Option<Duration>) -> Verdict {
    let code = status.as_u16();
    match (code, value) {
        (200, Some(value)) => Verdict::Answer(value),
        (200, None) => Verdict::Refused(not_tally(validator, format!("it answered {status} without a JSON body"))),
        (202, value) => {
            let hinted = value
                .as_ref()
                .and_then(|value| value.get("retry_after_ms"))
                .and_then(|value| match value {
                    Value::String(text) => text.parse::<u64>().ok(),
                    other => other.as_u64(),
                })
                .map(Duration::from_millis);
            Verdict::Pending { retry_after: hinted.or(retry_after) }
        }
        (429 | 500..=599, value) => {
            let reason = match value.as_ref().and_then(wire::error_from_json) {
                Some((code_name, _, message)) => format!("answered {code} {code_name}: {message}"),
                None => format!("answered {status}"),
            };
            Verdict::Retry(Failure::answered(reason, retry_after))
        }
        (_, value) => match value.as_ref().and_then(wire::error_from_json) {
            Some((code_name, field, message)) => Verdict::Refused(ClientError::Api {
                validator: validator.to_string(),
                status: code,
                code: code_name,
                field,
                message,
            }),
            // A Tally validator answers every refusal in the API's error form.
            None => {
                Verdict::Refused(not_tally(validator, format!("it answered {status} without the API's error form")))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_chain::keys::signer_from_seed;
    use tally_ledger::{AccountFlags, TransferFlags};

    #[test]
    fn batches_split_between_linked_chains() {
        let linked = |flags: &[bool]| flags.to_vec();
        let is_linked = |linked: &bool| *linked;
        // No links: plain chunks.
        assert_eq!(split_batch(&linked(&[false; 7]), 3, is_linked), vec![0..3, 3..6, 6..7]);
        // A chain over the boundary (events 2-3) moves whole into the next request.
        assert_eq!(split_batch(&linked(&[false, false, true, false, false]), 3, is_linked), vec![0..2, 2..5]);
        // A chain longer than a request is cut at the limit.
        assert_eq!(split_batch(&linked(&[true, true, true, true, false]), 3, is_linked), vec![0..3, 3..5]);
        // Short batches are one request; empty batches none.
        assert_eq!(split_batch(&linked(&[true, false]), 3, is_linked), vec![0..2]);
        assert!(split_batch(&linked(&[]), 3, is_linked).is_empty());

        // With the real limit and flags.
        let accounts: Vec<Account> = (1..=8_191u128)
            .map(|id| Account {
                id,
                ledger: 1,
                code: 1,
                flags: if id == 8_190 { AccountFlags::LINKED } else { AccountFlags::NONE },
                ..Account::default()
            })
            .collect();
        assert_eq!(
            split_batch(&accounts, constants::REQUEST_EVENTS_MAX, wire::account_is_linked),
            vec![0..8_189, 8_189..8_191]
        );
        let transfers = [Transfer { flags: TransferFlags::LINKED, ..Transfer::default() }, Transfer::default()];
        assert_eq!(split_batch(&transfers, 1, wire::transfer_is_linked), vec![0..1, 1..2]);
    }

    #[test]
    fn urls_are_checked() {
        let signer = || signer_from_seed(1);
        let client = Client::new(["http://127.0.0.1:8080/", " http://localhost:9 "], 7, signer()).unwrap();
        assert_eq!(client.validators(), ["http://127.0.0.1:8080", "http://localhost:9"]);
        assert_eq!(client.chain_id(), 7);
        assert_eq!(client.client_key_hex().len(), 64);
        let none: [&str; 0] = [];
        assert_eq!(Client::new(none, 7, signer()).unwrap_err().code(), "no_validators");
        assert_eq!(Client::new(["127.0.0.1:8080"], 7, signer()).unwrap_err().code(), "invalid_url");
        assert_eq!(Client::new(["https://a:1"], 7, signer()).unwrap_err().code(), "invalid_url");
        assert_eq!(Client::new(["http://"], 7, signer()).unwrap_err().code(), "invalid_url");
    }

    #[test]
    fn answers_are_judged_by_status() {
        let verdict = |code: u16, value: Option<Value>| judge("v", StatusCode::from_u16(code).unwrap(), value, None);
        assert!(matches!(verdict(200, Some(json!({}))), Verdict::Answer(_)));
        assert!(matches!(verdict(200, None), Verdict::Refused(ClientError::NotTally { .. })));
        match verdict(202, Some(json!({"state": "pending", "retry_after_ms": 250}))) {
            Verdict::Pending { retry_after } => assert_eq!(retry_after, Some(Duration::from_millis(250))),
            _ => panic!("202 is pending"),
        }
        for code in [429, 500, 502, 503] {
            assert!(matches!(verdict(code, None), Verdict::Retry(Failure { answered: true, .. })), "{code} is retried");
        }
        let error = json!({"error": {"code": "unknown_client", "field": "client", "message": "not listed"}});
        match verdict(403, Some(error)) {
            Verdict::Refused(error) => {
                assert_eq!(error.code(), "unknown_client");
                assert!(matches!(error, ClientError::Api { status: 403, .. }));
            }
            _ => panic!("403 is final"),
        }
        match verdict(404, None) {
            Verdict::Refused(error) => {
                assert_eq!(error.code(), "not_tally");
                assert_eq!(
                    error.to_string(),
                    "v does not answer as a Tally validator: it answered 404 Not Found without the API's error form"
                );
            }
            _ => panic!("404 is final"),
        }
    }

    #[tokio::test]
    async fn local_refusals_send_nothing() {
        // Port 9 on loopback is closed: if anything were sent, the error would be "unavailable".
        let client = Client::new(["http://127.0.0.1:9"], 7, signer_from_seed(1)).unwrap();
        assert_eq!(client.create_accounts(&[]).await.unwrap_err().code(), "empty_batch");
        assert_eq!(client.create_transfers_with_id(5, &[]).await.unwrap_err().code(), "empty_batch");
        let too_many = vec![Transfer { id: 1, ..Transfer::default() }; constants::REQUEST_EVENTS_MAX + 1];
        assert_eq!(client.create_transfers_with_id(5, &too_many).await.unwrap_err().code(), "batch_too_long");
        let reserved = Account { id: 1, flags: AccountFlags::from_bits_retain(1 << 14), ..Account::default() };
        assert_eq!(client.create_accounts(&[reserved]).await.unwrap_err().code(), "unknown_flag");
    }

    #[tokio::test]
    async fn dead_validators_give_unavailable_within_the_bound() {
        let options = ClientOptions {
            submit_wait: Duration::from_millis(300),
            read_wait: Duration::from_millis(300),
            ..ClientOptions::default()
        };
        let client =
            Client::with_options(["http://127.0.0.1:9", "http://127.0.0.1:19"], 7, signer_from_seed(1), options)
                .unwrap();
        let started = std::time::Instant::now();
        let error = client.lookup_account(1).await.unwrap_err();
        assert_eq!(error.code(), "unavailable", "{error}");
        let error = client.create_accounts(&[Account { id: 1, ledger: 1, code: 1, ..Account::default() }]).await;
        let error = error.unwrap_err();
        assert_eq!(error.code(), "unavailable", "{error}");
        assert!(matches!(error, ClientError::Unavailable { attempts, .. } if attempts >= 2));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
