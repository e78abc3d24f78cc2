//! Tally's ledger state machine: TigerBeetle's accounts and transfers, applied deterministically.
//!
//! Every validator runs this state machine on the agreed sequence of batches. It does no IO,
//! reads no clock and draws no randomness: the caller passes each batch's timestamp, and the same
//! batches in give the same results and the same [`Ledger::digest`] out, bit for bit. Replicas
//! prove to each other that they agree by comparing digests.
//!
//! ```
//! use tally_ledger::*;
//!
//! let mut ledger = Ledger::new();
//! let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
//! let results = ledger.create_accounts(1_000, &[account(1), account(2)]);
//! assert!(results.iter().all(|result| result.status == CreateAccountStatus::Created));
//!
//! let transfer = Transfer {
//!     id: 10, debit_account_id: 1, credit_account_id: 2, amount: 50, ledger: 1, code: 1,
//!     ..Transfer::default()
//! };
//! let results = ledger.create_transfers(2_000, &[transfer]);
//! assert_eq!(results[0].status, CreateTransferStatus::Created);
//! assert_eq!(ledger.lookup_accounts(&[2])[0].credits_posted, 50);
//! ```
//!
//! The rules live in `rules.rs`, the queries in `query.rs`, the state digest in `commitment.rs`
//! and the maps behind the small `store::Store` interface; `docs/LEDGER.md` explains the design.

mod account_table;
mod chunk_proof;
mod codec;
mod commitment;
pub mod constants;
#[doc(hidden)]
pub mod fuzzing;
mod hash_lanes;
mod id_index;
mod ledger;
mod merkle;
mod query;
mod query_index;
mod rules;
mod snapshot;
mod store;
mod transfer_log;
mod types;

pub use account_table::SegmentProof;
pub use chunk_proof::ChainingValue;
pub use codec::{DecodeError, decode_accounts, decode_transfers, encode_accounts, encode_transfers};
pub use commitment::{AccountProof, BalanceProof, DigestParts, TransferProof};
pub use constants::{AMOUNT_MAX, BATCH_EVENTS_MAX, QUERY_RESULTS_MAX};
pub use ledger::{BatchError, Ledger};
pub use merkle::{Hash, verify_proof};
pub use snapshot::RestoreError;
pub use store::{AccountIndex, BalanceEntry, MemoryStore, PendingStatus, Store, TransferIndex};
pub use transfer_log::TransferLogProof;
pub use types::{
    Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags, CreateAccountResult, CreateAccountStatus,
    CreateTransferResult, CreateTransferStatus, QueryFilter, QueryFilterFlags, Transfer, TransferFlags,
};
