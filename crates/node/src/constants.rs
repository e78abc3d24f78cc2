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

/// How long a connection may take to send a request's headers, and stay idle between requests.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;

/// How long a caller may take to send a request's body.
pub const BODY_READ_TIMEOUT_MS: u64 = 30_000;

/// Bodies read and parsed at once per validator (each up to `BODY_SIZE_MAX`, and its parsed
/// JSON several times that), and how long a request waits for its turn before 429.
pub const BODIES_IN_FLIGHT_MAX: usize = 8;
pub const BODY_TURN_WAIT_MS: u64 = 2_000;

/// How long an orderly stop waits for in-flight HTTP answers and for the validator's tasks.
pub const STOP_TIMEOUT_MS: u64 = 10_000;

/// How often a submission asks whether its request is final, while the chain has no
/// notification for it.
pub const OUTCOME_POLL_MS: u64 = 20;

const _: () = assert!(WAIT_MS_DEFAULT <= WAIT_MS_MAX);
const _: () = assert!(PAGE_LIMIT_DEFAULT <= PAGE_LIMIT_MAX);
const _: () = assert!(OUTCOME_POLL_MS < WAIT_MS_DEFAULT);
