//! Every bound of the replicated core in one place, with their relationships asserted at compile
//! time. Sizes are in bytes unless the name says otherwise.

/// The size of one ledger event (an `Account` or a `Transfer`) on the wire.
pub const EVENT_SIZE: usize = 128;

/// The most events one client request carries: the ledger's batch limit, so that every request
/// is exactly one ledger batch.
pub const REQUEST_EVENTS_MAX: usize = tally_ledger::BATCH_EVENTS_MAX;

/// The largest request body (its encoded events).
pub const REQUEST_BODY_SIZE_MAX: usize = REQUEST_EVENTS_MAX * EVENT_SIZE;

/// The encoded size of a request without its body: kind (1), id (16), expiry (8), client key
/// (32), body length (4) and signature (64).
pub const REQUEST_HEADER_SIZE: usize = 1 + 16 + 8 + 32 + 4 + 64;

/// The furthest a request's expiry may lie after the timestamp of the block that includes it
/// (and, at submission, after the validator's clock): ten minutes.
pub const REQUEST_TTL_MAX_NS: u64 = 600 * 1_000_000_000;

/// The expiry a client sets by default: two minutes after it signs, ample for the retries of a
/// healthy cluster and well inside `REQUEST_TTL_MAX_NS` for a client whose clock runs ahead.
pub const REQUEST_TTL_DEFAULT_NS: u64 = 120 * 1_000_000_000;

/// How long past a request's expiry the chain still holds its name (and so answers a late retry
/// with its outcome, or with a definite `request_expired` if it was never included): ten
/// minutes. After that a retry cannot tell; the validators answer `outcome_not_held`.
pub const REQUEST_NAMES_KEPT_AFTER_EXPIRY_NS: u64 = 600 * 1_000_000_000;

/// The largest encoded request.
pub const REQUEST_SIZE_MAX: usize = REQUEST_HEADER_SIZE + REQUEST_BODY_SIZE_MAX;

/// The protocol version every header carries (`block.rs`). A validator refuses blocks of any
/// other version.
pub const PROTOCOL_VERSION: u16 = 1;

/// The encoded size of a block header: version (2), epoch (8), view (8), leader key (32),
/// parent view (8), parent digest (32), height (8), timestamp (8), request count (4), requests
/// root (32), state digest (32) and results root (32).
pub const BLOCK_HEADER_SIZE: usize = 2 + 8 + 8 + 32 + 8 + 32 + 8 + 8 + 4 + 32 + 32 + 32;

/// The most requests one block carries.
pub const BLOCK_REQUESTS_MAX: usize = 16;

/// The largest encoded block. A proposer stops adding requests before crossing it; a decoder
/// refuses anything larger.
pub const BLOCK_SIZE_MAX: usize = 4 * 1024 * 1024;

/// How far in the future (by the verifier's clock) a proposer's timestamp may be.
pub const BLOCK_TIMESTAMP_DRIFT_NS_MAX: u64 = 2_000_000_000;

/// The most requests a validator's mempool holds before it answers "busy".
pub const MEMPOOL_REQUESTS_MAX: usize = 4_096;

/// The most encoded bytes a validator's mempool holds before it answers "busy".
pub const MEMPOOL_SIZE_MAX: usize = 64 * 1024 * 1024;

/// The most blocks above the finalized height a validator keeps (received or built), so that a
/// peer cannot exhaust memory by sending blocks that never finalize.
pub const PENDING_BLOCKS_MAX: usize = 1_024;

/// The largest message on any validator channel: a whole block plus framing.
pub const MESSAGE_SIZE_MAX: usize = BLOCK_SIZE_MAX + 1_024;

/// Namespace of client request signatures (the chain id and request kind follow in the signed
/// bytes).
pub const REQUEST_NAMESPACE: &[u8] = b"tally/request";

/// Namespace of consensus votes (the chain id is appended).
pub const CONSENSUS_NAMESPACE: &[u8] = b"tally/consensus";

const _: () = assert!(REQUEST_EVENTS_MAX == 8_190);
const _: () = assert!(REQUEST_TTL_DEFAULT_NS <= REQUEST_TTL_MAX_NS);
const _: () = assert!(BLOCK_HEADER_SIZE == 206);
const _: () = assert!(REQUEST_BODY_SIZE_MAX <= u32::MAX as usize);
// A block always has room for at least one largest request.
const _: () = assert!(BLOCK_HEADER_SIZE + REQUEST_SIZE_MAX <= BLOCK_SIZE_MAX);
const _: () = assert!(BLOCK_REQUESTS_MAX <= u32::MAX as usize);
// A full mempool still fits a full block.
const _: () = assert!(MEMPOOL_SIZE_MAX >= BLOCK_SIZE_MAX);
const _: () = assert!(MEMPOOL_REQUESTS_MAX >= BLOCK_REQUESTS_MAX);
const _: () = assert!(MESSAGE_SIZE_MAX > BLOCK_SIZE_MAX);

/// The most pieces of evidence of misbehaviour a validator keeps (`evidence.rs`). Each is a
/// few hundred bytes, so the file that holds them stays under `EVIDENCE_KEPT_MAX *
/// EVIDENCE_RECORD_SIZE_MAX` bytes.
pub const EVIDENCE_KEPT_MAX: usize = 1_024;

/// The largest encoded piece of evidence: a kind tag and two votes (each a round, a parent
/// view, a block digest, a signer index and a signature, about 110 bytes).
pub const EVIDENCE_SIZE_MAX: usize = 512;

/// One piece of evidence in the evidence file: its length (2), its encoding and a checksum (8).
pub const EVIDENCE_RECORD_SIZE_MAX: usize = 2 + EVIDENCE_SIZE_MAX + 8;

const _: () = assert!(EVIDENCE_SIZE_MAX <= u16::MAX as usize);
const _: () = assert!(EVIDENCE_KEPT_MAX * EVIDENCE_RECORD_SIZE_MAX <= 1024 * 1024);
