//! Tally's replicated core: validators order blocks of client requests with Commonware's
//! Simplex consensus and execute the finalized blocks, in order, on the ledger state machine.
//!
//! The path of a request:
//!
//! 1. A client signs a [`Request`] (`request.rs`) and submits it to any validator through its
//!    [`Mailbox`](application::Mailbox).
//! 2. The validator checks the client and signature and holds it in its [`Mempool`]
//!    (`mempool.rs`), answering busy when full, and gossips it to the other validators.
//! 3. The next leader builds a [`Block`] (`block.rs`) from its mempool on the parent Simplex
//!    names (`application/state.rs`), and marshal (`ordering.rs`) broadcasts it to the others.
//! 4. Each validator's marshal receives the block (or fetches it and any missing ancestors
//!    from peers), and the application verifies it: its round, parent, height, timestamp, every
//!    request, and the state digest after the parent, by executing the parent chain
//!    speculatively (`execution.rs`).
//! 5. Simplex (`consensus.rs`) finalizes the block; marshal stores it with its certificate and
//!    delivers finalized blocks in height order; the application executes each, halting if its
//!    own state digest disagrees with the block's.
//! 6. The outcomes are appended to the on-disk log and synced (`application/log.rs`) before the
//!    block is acknowledged to marshal and any outcome is answered
//!    ([`Mailbox::outcome`](application::Mailbox::outcome)).
//!
//! `docs/ARCHITECTURE.md` draws this path.

pub mod application;
pub mod backup;
pub mod block;
pub mod certified;
pub mod consensus;
pub mod constants;
pub mod error;
pub mod evidence;
pub mod execution;
pub mod genesis;
pub mod keys;
pub mod mempool;
pub mod ordering;
pub mod receipt;
pub mod request;
pub mod request_set;
pub mod snapshot;
pub mod state_receipt;
pub mod validator;
pub mod votes;

pub use application::{FinalizedBlock, Mailbox, Status, ValidatorActivity};
pub use block::{Block, BlockDigest, StateDigest};
pub use error::ChainError;
pub use execution::{ChainState, RequestOutcome, RequestResult};
pub use genesis::Genesis;
pub use mempool::Mempool;
pub use request::{Events, Request, RequestKey, RequestKind, VerifiedRequest, default_expiry, expires_in};
