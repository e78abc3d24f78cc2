//! The one error enum of the chain crate: operational failures and adversarial input. Ledger
//! outcomes (an `ExceedsCredits` transfer) are values in `RequestOutcome`, never errors.

use crate::block::BlockDigest;

/// What went wrong in the replicated core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    // Client requests.
    #[error("request client key is not listed in the genesis")]
    UnknownClient,
    #[error("request signature does not verify")]
    BadSignature,
    #[error("request carries no events")]
    EmptyRequest,
    #[error("request body of {bytes} bytes is not a whole number of events")]
    PartialEvent { bytes: usize },
    #[error("request body of {bytes} bytes is longer than the limit of {max} bytes")]
    RequestTooLong { bytes: usize, max: usize },
    #[error("request id {id} from this client was already accepted")]
    DuplicateRequest { id: u128 },
    #[error("request id {id} from this client names a request with other events; use a new id")]
    RequestIdConflict { id: u128 },
    #[error(
        "request id {id} expired at {expires_ns} ns (Unix time) without being included, and never will be; \
         sign it again with a later expiry to have it applied"
    )]
    RequestExpired { id: u128, expires_ns: u64 },
    #[error(
        "request id {id} expires at {expires_ns} ns (Unix time), after the latest allowed, {latest_ns} ns (ten \
         minutes ahead); is the client's clock ahead?"
    )]
    ExpiryTooFar { id: u128, expires_ns: u64, latest_ns: u64 },
    #[error(
        "request id {id} expired at {expires_ns} ns (Unix time), more than ten minutes before the chain's last \
         block: whether it was included is no longer held (request names are kept ten minutes past their expiry)"
    )]
    ExpiryForgotten { id: u128, expires_ns: u64 },
    #[error("the mempool is full; retry later")]
    Busy,
    #[error(
        "request was finalized at height {height}, below the history this validator holds (it joined from a snapshot, or the request is older than the backup this chain was re-founded from); ask another validator"
    )]
    OutcomeNotHeld { height: u64 },
    #[error(
        "request was finalized at height {height}, whose record on this validator's disk is damaged and being repaired from its peers; retry shortly or ask another validator"
    )]
    OutcomeRepairing { height: u64 },

    // Genesis.
    #[error("this key is not one of the genesis validators")]
    NotAValidator,
    #[error("genesis lists no validators")]
    NoValidators,
    #[error("genesis key {key} is weak (small order or non-canonical)")]
    WeakKey { key: String },
    #[error("re-founding: {0}")]
    Founding(String),

    // Blocks.
    #[error("block parent {found} is not the parent consensus names ({expected})")]
    WrongParent { expected: BlockDigest, found: BlockDigest },
    #[error("block view {found} is not the consensus view {expected}")]
    WrongView { expected: u64, found: u64 },
    #[error("block height {found} does not follow its parent's height {parent}")]
    WrongHeight { parent: u64, found: u64 },
    #[error("block timestamp {found} ns does not advance past its parent's {parent} ns")]
    TimestampRegressed { parent: u64, found: u64 },
    #[error("block state digest does not match the state after executing its parent")]
    WrongStateDigest,
    #[error("block results root does not match the outcomes of its parent's requests")]
    WrongResultsRoot,
    #[error("block epoch {found} is not the epoch of the chain or of the consensus round")]
    WrongEpoch { found: u64 },
    #[error("block context does not match the consensus round: {0}")]
    WrongContext(&'static str),
    #[error("block repeats request id {id} of one client")]
    RepeatedRequest { id: u128 },
    #[error("block holds {count} requests, more than the limit of {max}")]
    TooManyRequests { count: usize, max: usize },
    #[error("block does not descend from the finalized block at height {height}")]
    ConflictsWithFinalized { height: u64 },
    #[error("too many unfinalized blocks are held")]
    TooManyPendingBlocks,

    // Storage: fail-stop, these halt a validator.
    #[error("storage failed: {0}")]
    Storage(String),
    /// Repaired from peers or from marshal's blocks when it can be; it halts a validator only
    /// when it cannot.
    #[error("the finalized log's record at height {height} is damaged (file {file}): {detail}")]
    LogDamaged { height: u64, file: String, detail: String },

    // Safety: these halt a validator.
    #[error(
        "state divergence at height {height}: the finalized block {block} commits to state \
         {expected}, but this validator's state is {local}"
    )]
    StateDivergence { height: u64, block: BlockDigest, expected: String, local: String },
    #[error("finalized block {block} at height {height} is invalid here: {reason}")]
    FinalizedBlockInvalid { height: u64, block: BlockDigest, reason: String },
}
