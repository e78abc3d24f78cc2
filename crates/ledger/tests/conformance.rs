//! Conformance of `tally-ledger` to TigerBeetle's documented semantics (0.16): every result
//! status of `create_accounts` and `create_transfers`, the precedence between neighbouring checks,
//! linked chains, two-phase transfers and timeouts, balance limits, balancing and closing
//! transfers, imported events, result timestamps, queries and batch limits.
//!
//! Written from TigerBeetle's reference docs (`docs/reference/requests/create_accounts.md`,
//! `create_transfers.md`, `account.md`, `transfer.md`, `docs/coding/two-phase-transfers.md`,
//! `linked-events.md`, `recipes/close-account.md`, `recipes/balance-conditional-transfers.md`,
//! `account-filter.md`, `query-filter.md`, `get_account_balances.md`), with Tally's own choices
//! from the ledger's API notes where they differ (results carry timestamps, `Created` for `ok`,
//! `IdAlreadyFailed` for ids that failed transiently).
//!
//! Every status has a scenario function named after it; `status_cases!` turns each into a test and
//! into a row of a table that `coverage::every_status_is_triggered` runs, so that a status added
//! to `::ALL` without a scenario fails the suite.

mod common;

/// Turns scenario functions `fn name() -> Status` into one `#[test]` each (in a `status`
/// submodule, named after the status) and a `CASES` table of `(expected status, scenario)`.
macro_rules! status_cases {
    ($status:ident; $( $(#[$attr:meta])* $name:ident => $variant:ident, )*) => {
        /// Every scenario of this module with the status it must produce.
        pub const CASES: &[($status, fn() -> $status)] = &[ $( ($status::$variant, $name), )* ];

        mod status {
            use tally_ledger::*;
            $(
                #[test]
                $(#[$attr])*
                fn $name() {
                    assert_eq!(super::$name(), $status::$variant);
                }
            )*
        }
    };
}

#[path = "conformance/accounts.rs"]
mod accounts;
#[path = "conformance/balancing_closing.rs"]
mod balancing_closing;
#[path = "conformance/batches.rs"]
mod batches;
#[path = "conformance/coverage.rs"]
mod coverage;
#[path = "conformance/imported.rs"]
mod imported;
#[path = "conformance/linked.rs"]
mod linked;
#[path = "conformance/precedence.rs"]
mod precedence;
#[path = "conformance/queries.rs"]
mod queries;
#[path = "conformance/transfers.rs"]
mod transfers;
#[path = "conformance/two_phase.rs"]
mod two_phase;
