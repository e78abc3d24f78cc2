//! Every bound of the node in one place. Sizes are in bytes unless the name says otherwise.

/// The largest HTTP request body: a full batch of the widest transfers as JSON fits.
pub const BODY_SIZE_MAX: usize = tally_api::BODY_BYTES_MAX;

/// How long a submission waits for finality, by default, before the answer is 202.
pub const WAIT_MS_DEFAULT: u64 = 5_000;

/// The longest wait a config may set: a client should hear back within a minute.
pub const WAIT_MS_MAX: u64 = 60_000;

/// Submissions waiting for finality at once, by default (the validator's client queue holds
/// as many).
pub const WAITING_REQUESTS_MAX_DEFAULT: usize = 1_024;

/// What a 202 answer suggests as the delay before asking again.
pub const RETRY_AFTER_MS_PENDING: u64 = 500;

/// What a 429 answer's `Retry-After` header says, in seconds.
pub const RETRY_AFTER_SECONDS_BUSY: u64 = 1;

/// The most blocks or recent transfers one page lists.
pub const PAGE_LIMIT_MAX: usize = 100;

/// The page size when `limit` is left out.
pub const PAGE_LIMIT_DEFAULT: usize = 20;

/// The shortest gateway bearer token a config may set.
pub const GATEWAY_TOKEN_LENGTH_MIN: usize = 16;

/// Connections the API serves at once per validator; more wait in the kernel's accept queue.
pub const CONNECTIONS_MAX: usize = 256;

/// Connections one client address may hold at once. When an address is at the cap, its
/// connection idle longest is closed to make room; if none of its connections is idle, the new
/// one is answered 429 `busy` and closed. So one address cannot take every slot.
pub const CONNECTIONS_PER_ADDRESS_MAX: usize = 64;

/// Above this many open connections, the validator closes idle ones (no request in progress),
/// idle longest first, and a connection that finishes a request closes instead of staying open
/// for the next: a new caller finds a free slot at once instead of waiting for idle sockets to
/// time out.
pub const CONNECTIONS_IDLE_CLOSE_FROM: usize = CONNECTIONS_MAX / 4 * 3;

/// How long a connection may take to send a request's headers, and stay idle between requests.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;

/// How long a caller may take to send a request's body, at most.
pub const BODY_READ_TIMEOUT_MS: u64 = 30_000;

/// The longest a body may stall: no bytes for this long ends the request with 408
/// `body_timeout`, whatever rate the bytes before earned. Without it, a large body sent fast
/// would earn minutes of credit at the minimum rate and hold its bytes until the deadline.
pub const BODY_READ_GAP_MAX_MS: u64 = BODY_READ_GRACE_MS;

/// The slowest a body may arrive: after `BODY_READ_GRACE_MS`, at least this many bytes a
/// second on average since the request began, or the request ends with 408 `body_timeout`. A
/// caller trickling a byte at a time is cut off within about the grace, not the full deadline.
pub const BODY_READ_RATE_MIN_BYTES_PER_SECOND: u64 = 16 * 1024;
pub const BODY_READ_GRACE_MS: u64 = 2_000;

/// Raw body bytes held at once per validator, across every body being read: a body takes its
/// share as its bytes arrive and gives it back when it is parsed. Over the budget, a request
/// answers 429 `busy`. Reading a body takes no parsing turn, so slow senders cannot hold the
/// turns; they can hold at most this many bytes, and only by sending them.
pub const BODY_BYTES_IN_FLIGHT_MAX: usize = 2 * BODIES_IN_FLIGHT_MAX * BODY_SIZE_MAX;

/// Raw body bytes one client address may hold at once, of `BODY_BYTES_IN_FLIGHT_MAX`: a few full
/// bodies. Over it, that address's request answers 429 `busy`, so one address sending large
/// bodies and then stalling cannot leave every other caller without budget.
pub const BODY_BYTES_PER_ADDRESS_MAX: usize = BODY_BYTES_IN_FLIGHT_MAX / 4;

/// Bodies parsed at once per validator (each up to `BODY_SIZE_MAX`, and its parsed JSON several
/// times that), and how long a body that has arrived waits for its turn before 429.
pub const BODIES_IN_FLIGHT_MAX: usize = 8;
pub const BODY_TURN_WAIT_MS: u64 = 2_000;

/// Writes (`POST /v1/requests`, `/v1/accounts`, `/v1/transfers`) in progress at once per
/// validator, from the submission of a checked request (its body read, its signature or bearer
/// token verified) to the answer; one more answers 429 `busy` at once. The other connections
/// stay free for reads, `/healthz` and `/metrics` while writes wait for finality, and a caller
/// with no valid request cannot take a write slot at all.
pub const WRITES_IN_FLIGHT_MAX: usize = CONNECTIONS_MAX / 2;

/// How long writing an answer may wait for the caller to read: a connection whose socket takes
/// no bytes for this long (a caller that pipelines requests and never reads the answers, or is
/// gone without a word) is dropped, so it cannot keep its connection slot forever.
pub const ANSWER_WRITE_TIMEOUT_MS: u64 = 10_000;

/// How long a connection told to close may take to finish the request in progress: the longest
/// a request takes (its body, the longest wait for finality) and then its answer. When the
/// validator stops, waiting submissions answer at once and the wait is `STOP_TIMEOUT_MS`.
pub const CLOSE_AFTER_ANSWER_TIMEOUT_MS: u64 = BODY_READ_TIMEOUT_MS + WAIT_MS_MAX + ANSWER_WRITE_TIMEOUT_MS;

/// Refusals being written at once: a connection from an address at its cap gets a fixed 429
/// answer, written within `REFUSAL_WRITE_TIMEOUT_MS`. Beyond this many at once, it is closed
/// without one, so a flood of connections cannot make the validator hold their sockets.
pub const REFUSALS_IN_FLIGHT_MAX: usize = 64;
pub const REFUSAL_WRITE_TIMEOUT_MS: u64 = 1_000;

/// How often, at most, the API logs that it is refusing or closing connections for lack of room.
pub const CONNECTION_WARNING_INTERVAL_MS: u64 = 10_000;

/// How long an orderly stop waits for in-flight HTTP answers and for the validator's tasks.
pub const STOP_TIMEOUT_MS: u64 = 10_000;

/// How often a submission asks whether its request is final, while the chain has no
/// notification for it.
pub const OUTCOME_POLL_MS: u64 = 20;

/// How long a receipt route waits for the block above a final request's block (it follows at
/// once) before answering 202.
pub const RECEIPT_WAIT_MS: u64 = 2_000;

/// How long a read with `?proof=true` waits for a certified header that commits to the state it
/// read (the block above that state's, which follows at once after a block with requests) before
/// answering `proof_not_ready`.
pub const PROOF_WAIT_MS: u64 = 3_000;

const _: () = assert!(WAIT_MS_DEFAULT <= WAIT_MS_MAX);
const _: () = assert!(PAGE_LIMIT_DEFAULT <= PAGE_LIMIT_MAX);
const _: () = assert!(OUTCOME_POLL_MS < WAIT_MS_DEFAULT);
const _: () = assert!(CONNECTIONS_PER_ADDRESS_MAX < CONNECTIONS_IDLE_CLOSE_FROM);
const _: () = assert!(CONNECTIONS_IDLE_CLOSE_FROM < CONNECTIONS_MAX);
const _: () = assert!(WRITES_IN_FLIGHT_MAX < CONNECTIONS_MAX);
// One address's connections cannot take every write slot (two addresses together can: the
// cap per address bounds one caller, not a botnet).
const _: () = assert!(CONNECTIONS_PER_ADDRESS_MAX < WRITES_IN_FLIGHT_MAX);
const _: () = assert!(BODY_READ_GAP_MAX_MS < BODY_READ_TIMEOUT_MS);
// An address may send a full body, and cannot hold the whole budget.
const _: () = assert!(BODY_SIZE_MAX <= BODY_BYTES_PER_ADDRESS_MAX);
const _: () = assert!(BODY_BYTES_PER_ADDRESS_MAX < BODY_BYTES_IN_FLIGHT_MAX);
const _: () = assert!(REFUSAL_WRITE_TIMEOUT_MS < HEADER_READ_TIMEOUT_MS);
const _: () = assert!(BODY_READ_GRACE_MS < BODY_READ_TIMEOUT_MS);
// Every parsing turn can be used by a full body while others are still arriving.
const _: () = assert!(BODY_BYTES_IN_FLIGHT_MAX >= BODIES_IN_FLIGHT_MAX * BODY_SIZE_MAX);
// The rate divides a body's length into the time it may take; the deadline bounds large bodies
// (8 MiB at the minimum rate would take over eight minutes), the rate small ones.
const _: () = assert!(BODY_READ_RATE_MIN_BYTES_PER_SECOND > 0);
const _: () = assert!(BODY_SIZE_MAX as u64 / BODY_READ_RATE_MIN_BYTES_PER_SECOND * 1_000 > BODY_READ_TIMEOUT_MS);
