//! The Rust client of Tally: signs requests with a client key, sends them to any of several
//! validators, fails over, and retries with the same ids so that a retry never applies twice.
//!
//! ```no_run
//! # async fn example() -> Result<(), tally_client::ClientError> {
//! use tally_client::{Client, load_signer};
//! use tally_ledger::{Account, AccountFilter, AccountFilterFlags, CreateTransferStatus, Transfer};
//!
//! // The client key and the API URLs (not the peer-to-peer ports) of the cluster `tally dev` runs.
//! let signer = load_signer("tally-dev/client-0.key".as_ref())?;
//! let client = Client::new(["http://127.0.0.1:7001", "http://127.0.0.1:7003"], 1, signer)?;
//!
//! let account = |id| Account { id, ledger: 1, code: 10, ..Account::default() };
//! client.create_accounts(&[account(1), account(2)]).await?;
//! let transfer = Transfer {
//!     id: 100, debit_account_id: 1, credit_account_id: 2, amount: 25, ledger: 1, code: 1,
//!     ..Transfer::default()
//! };
//! let outcome = client.create_transfers(&[transfer]).await?;
//! assert_eq!(outcome.results[0].status, CreateTransferStatus::Created);
//! println!("final at height {}", outcome.height());
//!
//! let filter = AccountFilter { account_id: 2, limit: 10, flags: AccountFilterFlags::CREDITS, ..AccountFilter::default() };
//! let transfers = client.get_account_transfers(&filter).await?;
//! # Ok(()) }
//! ```
//!
//! # Requests, ids and retries
//!
//! A write is a request: a batch of accounts or transfers, signed with the client's ed25519 key
//! for one chain (`tally_chain::Request`). Each request has a 128-bit id, random unless given
//! (`create_*_with_id`); the chain applies a (client, id) pair at most once while it holds the name
//! (see the expiry below), and a validator asked
//! again answers the recorded results. So the client retries a request, on the same or another
//! validator, after a refused connection, a timeout, a 5xx, `busy` (429, honouring
//! `Retry-After` up to a bound) or a 202 (accepted, not final yet: then it asks
//! `GET /v1/requests/{client}/{id}` of any validator until the request is final), always with the
//! same id, within a total bound ([`ClientOptions::submit_wait`]). If the bound passes, the error
//! says whether the request may still apply ([`ClientError::NotFinal`]); sending it again with
//! the same id is safe while the chain holds the request's name: until ten minutes past its
//! expiry.
//!
//! Each request expires ([`ClientOptions::request_ttl`] after it is signed, two minutes by
//! default): a request no block included by then never will be, and the validators say so
//! ([`ClientError::RequestExpired`], a definite "nothing applied"). `create_*_with_id` signs a
//! new expiry each call, so calling it again with the same id after an expiry sends the events
//! again; after the chain forgot the first request's name (ten minutes past its expiry) that
//! would apply them a second time if the first was included, so look its events up instead.
//!
//! Reads retry the same way within [`ClientOptions::read_wait`]. For reads and writes alike, a
//! call ends at once when no validator gives any HTTP answer for a couple of rounds
//! ([`ClientOptions::unreachable_rounds`]): a wrong URL or a cluster that is down fails in
//! moments, with [`ClientError::Unavailable`] naming each validator and what went wrong there
//! ("validator http://127.0.0.1:7001 is down: connection refused"). A URL where something
//! other than a Tally validator answers gives [`ClientError::NotTally`]. [`ClientOptions`]
//! spells out the policy.
//!
//! # Long batches
//!
//! A request holds at most 8,190 events (or fewer, [`ClientOptions::request_events_max`]).
//! `create_accounts` and `create_transfers` send a longer batch as several requests, one after
//! the other, cut between linked chains; each request is atomic on its own, not the whole
//! batch, and if one fails the earlier ones stay applied ([`ClientError::BatchIncomplete`]).
//! [`BatchOutcome::requests`] lists the requests with their heights. `create_*_with_id` sends
//! exactly one request and refuses a longer batch (`batch_too_long`).
//!
//! # Errors
//!
//! Ledger outcomes (`exceeds_credits`, `exists`) are results, as the ledger's
//! `CreateAccountStatus` and `CreateTransferStatus`. [`ClientError`] is for calls that got no
//! answer or a refusal; [`ClientError::code`] is the validator's stable error code
//! (`bad_signature`, `unknown_client`, `busy`, …) or the client's own.

mod client;
pub mod constants;
mod error;
pub mod keys;
mod status;
pub mod wire;

pub use client::{
    BatchOutcome, Client, CreateAccountsOutcome, CreateTransfersOutcome, EventResults, Proven, Receipt, RequestReceipt,
    split_batch,
};
pub use constants::ClientOptions;
pub use error::ClientError;
pub use keys::{generate_signer, load_signer, random_request_id, signer_from_hex};
pub use status::{ClusterStatus, ValidatorActivity};
pub use tally_chain::keys::{ClientKey, ClientSigner};
