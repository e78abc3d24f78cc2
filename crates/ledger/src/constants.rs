//! Every bound of the ledger in one place, with their relationships asserted at compile time.

/// The most events (accounts or transfers) one batch may carry. A longer batch is refused as a
/// whole (TigerBeetle's limit for a 1 MiB message of 128-byte events).
pub const BATCH_EVENTS_MAX: usize = 8_190;

/// The most pending transfers one batch expires before its events (the rest wait for the next
/// batches), so that a batch's cost stays bounded however many deadlines fall together.
pub const EXPIRIES_PER_BATCH_MAX: usize = BATCH_EVENTS_MAX;

/// The most objects one query or lookup answers with.
pub const QUERY_RESULTS_MAX: usize = BATCH_EVENTS_MAX;

/// The events of a batch whose objects the store is asked to bring into the CPU's caches at
/// once, before they are applied (`Store::prefetch_transfers`): enough requests to keep memory
/// busy, few enough that what they bring in (about 1 KiB per transfer) stays in a core's own
/// cache until it is used.
pub const PREFETCH_EVENTS: usize = 64;

/// The size in bytes of every stored object: `Account`, `Transfer` and `AccountBalance`.
pub const OBJECT_SIZE: usize = 128;

/// `Transfer.amount` meaning "as much as possible": the whole pending amount for a post, or no
/// upper bound for a balancing transfer.
pub const AMOUNT_MAX: u128 = u128::MAX;

/// The largest timestamp the ledger accepts, in nanoseconds (timestamps are 63-bit, as in
/// TigerBeetle, so that the top bit stays free).
pub const TIMESTAMP_MAX: u64 = (1 << 63) - 1;

/// Nanoseconds per second: `Transfer.timeout` is in seconds, timestamps are in nanoseconds.
pub const NANOSECONDS_PER_SECOND: u64 = 1_000_000_000;

const _: () = assert!(BATCH_EVENTS_MAX * OBJECT_SIZE <= 1024 * 1024);
const _: () = assert!(QUERY_RESULTS_MAX <= BATCH_EVENTS_MAX);
const _: () = assert!(PREFETCH_EVENTS > 0 && PREFETCH_EVENTS <= BATCH_EVENTS_MAX);
// A batch's events take consecutive timestamps; the last must stay in range.
const _: () = assert!((BATCH_EVENTS_MAX as u64) < TIMESTAMP_MAX);
// The longest timeout in nanoseconds fits in a u64, so `timestamp + timeout_ns` needs one check.
const _: () = assert!((u32::MAX as u64).checked_mul(NANOSECONDS_PER_SECOND).is_some());
