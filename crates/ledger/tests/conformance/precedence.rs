//! Precedence between neighbouring checks: when an event breaks two rules, the status listed
//! first in TigerBeetle's result list (our `::ALL` order) wins.

use crate::accounts::imported;
use crate::common::*;
use crate::transfers::{
    against_pending, against_plain_accounts, imported_transfer, with_imported_accounts, with_pending,
};
use tally_ledger::*;

use CreateAccountStatus as A;
use CreateTransferStatus as S;

/// Asserts that `first` precedes `second` in `CreateAccountStatus::ALL` (so the test pins the
/// documented order) and that `observed` is `first`.
fn account_first(first: A, second: A, observed: A) {
    let position = |status| A::ALL.iter().position(|s| *s == status).unwrap();
    assert!(position(first) < position(second), "{first:?} is listed after {second:?}");
    assert_eq!(observed, first, "{first:?} must win over {second:?}");
}

/// The same for transfers.
fn transfer_first(first: S, second: S, observed: S) {
    let position = |status| S::ALL.iter().position(|s| *s == status).unwrap();
    assert!(position(first) < position(second), "{first:?} is listed after {second:?}");
    assert_eq!(observed, first, "{first:?} must win over {second:?}");
}

fn account_alone(account: Account) -> A {
    Harness::new().account_status(account)
}

// --- create_accounts ---------------------------------------------------------------------------

#[test]
fn account_linked_event_chain_open_beats_invalid_fields() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[linked_account(Account { code: 0, ..account(0) })]);
    account_first(A::LinkedEventChainOpen, A::IdMustNotBeZero, statuses[0]);
}

#[test]
fn account_linked_event_chain_open_beats_imported_event_expected() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[imported(1, 100), linked_account(account(2))]);
    assert_eq!(statuses[0], A::Created);
    account_first(A::LinkedEventChainOpen, A::ImportedEventExpected, statuses[1]);
}

#[test]
fn account_linked_event_failed_beats_imported_event_not_expected() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[linked_account(account(0)), imported(2, 100)]);
    assert_eq!(statuses[0], A::IdMustNotBeZero);
    account_first(A::LinkedEventFailed, A::ImportedEventNotExpected, statuses[1]);
}

#[test]
fn account_imported_event_expected_beats_timestamp_must_be_zero() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[imported(1, 100), Account { timestamp: 200, ..account(2) }]);
    account_first(A::ImportedEventExpected, A::TimestampMustBeZero, statuses[1]);
}

#[test]
fn account_imported_event_not_expected_beats_reserved_field() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[account(1), Account { reserved: 1, ..imported(2, 100) }]);
    account_first(A::ImportedEventNotExpected, A::ReservedField, statuses[1]);
}

#[test]
fn account_timestamp_must_be_zero_beats_reserved_field() {
    let observed = account_alone(Account { timestamp: 5, reserved: 1, ..account(1) });
    account_first(A::TimestampMustBeZero, A::ReservedField, observed);
}

#[test]
fn account_imported_timestamp_out_of_range_beats_reserved_field() {
    let observed = account_alone(Account { reserved: 1, ..imported(1, 0) });
    account_first(A::ImportedEventTimestampOutOfRange, A::ReservedField, observed);
}

#[test]
fn account_imported_timestamp_must_not_advance_beats_reserved_field() {
    let mut harness = Harness::new();
    let future = harness.now + 10;
    let observed = harness.account_status(Account { reserved: 1, ..imported(1, future) });
    account_first(A::ImportedEventTimestampMustNotAdvance, A::ReservedField, observed);
}

#[test]
fn account_reserved_field_beats_reserved_flag() {
    let observed = account_alone(Account { reserved: 1, flags: AccountFlags::from_bits_retain(1 << 15), ..account(1) });
    account_first(A::ReservedField, A::ReservedFlag, observed);
}

#[test]
fn account_reserved_flag_beats_id_must_not_be_zero() {
    let observed = account_alone(Account { flags: AccountFlags::from_bits_retain(1 << 15), ..account(0) });
    account_first(A::ReservedFlag, A::IdMustNotBeZero, observed);
}

#[test]
fn account_id_must_not_be_zero_beats_flags_are_mutually_exclusive() {
    let flags = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    account_first(A::IdMustNotBeZero, A::FlagsAreMutuallyExclusive, account_alone(account_with(0, flags)));
    account_first(A::IdMustNotBeIntMax, A::FlagsAreMutuallyExclusive, account_alone(account_with(u128::MAX, flags)));
}

#[test]
fn account_id_must_not_be_int_max_beats_ledger_must_not_be_zero() {
    account_first(
        A::IdMustNotBeIntMax,
        A::LedgerMustNotBeZero,
        account_alone(Account { ledger: 0, ..account(u128::MAX) }),
    );
}

/// Re-submits account 1 (created plain) as `resubmitted`.
fn account_resubmitted(resubmitted: Account) -> A {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1)]);
    harness.account_status(resubmitted)
}

#[test]
fn account_exists_with_different_fields_in_documented_order() {
    let base = account(1);
    let cases: [(A, A, Account); 5] = [
        (
            A::ExistsWithDifferentFlags,
            A::ExistsWithDifferentUserData128,
            Account { flags: AccountFlags::HISTORY, user_data_128: 1, ..base },
        ),
        (
            A::ExistsWithDifferentUserData128,
            A::ExistsWithDifferentUserData64,
            Account { user_data_128: 1, user_data_64: 1, ..base },
        ),
        (
            A::ExistsWithDifferentUserData64,
            A::ExistsWithDifferentUserData32,
            Account { user_data_64: 1, user_data_32: 1, ..base },
        ),
        (
            A::ExistsWithDifferentUserData32,
            A::ExistsWithDifferentLedger,
            Account { user_data_32: 1, ledger: LEDGER + 1, ..base },
        ),
        (
            A::ExistsWithDifferentLedger,
            A::ExistsWithDifferentCode,
            Account { ledger: LEDGER + 1, code: CODE + 1, ..base },
        ),
    ];
    for (first, second, resubmitted) in cases {
        account_first(first, second, account_resubmitted(resubmitted));
    }
}

#[test]
fn account_exists_family_beats_field_validation() {
    // The idempotency check comes right after the id checks, before flag and field validation.
    let both_limits = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    account_first(
        A::ExistsWithDifferentFlags,
        A::FlagsAreMutuallyExclusive,
        account_resubmitted(account_with(1, both_limits)),
    );
    account_first(
        A::Exists,
        A::DebitsPendingMustBeZero,
        account_resubmitted(Account { debits_pending: 1, ..account(1) }),
    );
    account_first(
        A::ExistsWithDifferentLedger,
        A::LedgerMustNotBeZero,
        account_resubmitted(Account { ledger: 0, ..account(1) }),
    );
    account_first(
        A::ExistsWithDifferentCode,
        A::CodeMustNotBeZero,
        account_resubmitted(Account { code: 0, ..account(1) }),
    );
}

#[test]
fn account_exists_beats_imported_timestamp_must_not_regress() {
    // Re-importing the same account (same user timestamp) is idempotent.
    let mut harness = Harness::new();
    harness.accounts_ok(&[imported(1, 100), imported(2, 200)]);
    let results = harness.create_accounts(&[imported(1, 100)]);
    account_first(A::Exists, A::ImportedEventTimestampMustNotRegress, results[0].status);
    assert_eq!(results[0].timestamp, 100);
}

#[test]
fn account_flags_are_mutually_exclusive_beats_debits_pending_must_be_zero() {
    let flags = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    let observed = account_alone(Account { debits_pending: 1, ..account_with(1, flags) });
    account_first(A::FlagsAreMutuallyExclusive, A::DebitsPendingMustBeZero, observed);
}

#[test]
fn account_balance_and_ledger_fields_in_documented_order() {
    let base = account(1);
    let cases: [(A, A, Account); 5] = [
        (
            A::DebitsPendingMustBeZero,
            A::DebitsPostedMustBeZero,
            Account { debits_pending: 1, debits_posted: 1, ..base },
        ),
        (
            A::DebitsPostedMustBeZero,
            A::CreditsPendingMustBeZero,
            Account { debits_posted: 1, credits_pending: 1, ..base },
        ),
        (
            A::CreditsPendingMustBeZero,
            A::CreditsPostedMustBeZero,
            Account { credits_pending: 1, credits_posted: 1, ..base },
        ),
        (A::CreditsPostedMustBeZero, A::LedgerMustNotBeZero, Account { credits_posted: 1, ledger: 0, ..base }),
        (A::LedgerMustNotBeZero, A::CodeMustNotBeZero, Account { ledger: 0, code: 0, ..base }),
    ];
    for (first, second, candidate) in cases {
        account_first(first, second, account_alone(candidate));
    }
}

#[test]
fn account_code_must_not_be_zero_beats_imported_timestamp_must_not_regress() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[imported(1, 500)]);
    let observed = harness.account_status(Account { code: 0, ..imported(2, 400) });
    account_first(A::CodeMustNotBeZero, A::ImportedEventTimestampMustNotRegress, observed);
}

// --- create_transfers --------------------------------------------------------------------------

#[test]
fn transfer_linked_event_chain_open_beats_invalid_fields() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[linked(transfer(0, 0, 0, 5))]);
    transfer_first(S::LinkedEventChainOpen, S::IdMustNotBeZero, statuses[0]);
}

#[test]
fn transfer_linked_event_chain_open_beats_imported_event_not_expected() {
    let mut harness = with_imported_accounts();
    let statuses = harness.transfer_statuses(&[transfer(10, 1, 2, 5), linked(imported_transfer(11, 1, 2, 5, 1_000))]);
    assert_eq!(statuses[0], S::Created);
    transfer_first(S::LinkedEventChainOpen, S::ImportedEventNotExpected, statuses[1]);
}

#[test]
fn transfer_linked_event_failed_beats_timestamp_must_be_zero() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses =
        harness.transfer_statuses(&[linked(transfer(10, 1, 1, 5)), Transfer { timestamp: 3, ..transfer(11, 1, 2, 5) }]);
    assert_eq!(statuses[0], S::AccountsMustBeDifferent);
    transfer_first(S::LinkedEventFailed, S::TimestampMustBeZero, statuses[1]);
}

#[test]
fn transfer_imported_event_expected_beats_timestamp_must_be_zero() {
    let mut harness = with_imported_accounts();
    let statuses = harness.transfer_statuses(&[
        imported_transfer(10, 1, 2, 5, 1_000),
        Transfer { timestamp: 2_000, ..transfer(11, 1, 2, 5) },
    ]);
    transfer_first(S::ImportedEventExpected, S::TimestampMustBeZero, statuses[1]);
}

#[test]
fn transfer_timestamp_must_be_zero_beats_reserved_flag() {
    let observed = against_plain_accounts(Transfer {
        timestamp: 5,
        flags: TransferFlags::from_bits_retain(1 << 15),
        ..transfer(10, 1, 2, 5)
    });
    transfer_first(S::TimestampMustBeZero, S::ReservedFlag, observed);
}

#[test]
fn transfer_imported_timestamp_out_of_range_beats_reserved_flag() {
    let flags = TransferFlags::IMPORTED | TransferFlags::from_bits_retain(1 << 15);
    let observed = with_imported_accounts().transfer_status(Transfer { flags, ..imported_transfer(10, 1, 2, 5, 0) });
    transfer_first(S::ImportedEventTimestampOutOfRange, S::ReservedFlag, observed);
}

#[test]
fn transfer_reserved_flag_beats_id_must_not_be_zero() {
    let observed = against_plain_accounts(transfer_with(0, 1, 2, 5, TransferFlags::from_bits_retain(1 << 15)));
    transfer_first(S::ReservedFlag, S::IdMustNotBeZero, observed);
}

#[test]
fn transfer_id_must_not_be_zero_beats_flags_are_mutually_exclusive() {
    let flags = TransferFlags::PENDING | TransferFlags::VOID_PENDING_TRANSFER;
    transfer_first(
        S::IdMustNotBeZero,
        S::FlagsAreMutuallyExclusive,
        against_plain_accounts(transfer_with(0, 1, 2, 5, flags)),
    );
    transfer_first(
        S::IdMustNotBeIntMax,
        S::FlagsAreMutuallyExclusive,
        against_plain_accounts(transfer_with(u128::MAX, 1, 2, 5, flags)),
    );
}

/// Accounts 1..=4 with the transfer `original` (a single-phase transfer or a pending one), and
/// the status of `resubmitted`.
fn transfer_resubmitted(original: Transfer, resubmitted: Transfer) -> S {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    harness.transfers_ok(&[original]);
    harness.transfer_status(resubmitted)
}

#[test]
fn transfer_exists_with_different_flags_beats_different_amount() {
    let observed = transfer_resubmitted(transfer(10, 1, 2, 5), pending(10, 1, 2, 6, 0));
    transfer_first(S::ExistsWithDifferentFlags, S::ExistsWithDifferentAmount, observed);
}

#[test]
fn transfer_exists_with_different_pending_id_beats_timeout() {
    let mut harness = with_pending();
    harness.transfers_ok(&[pending(101, 1, 2, 50, 0), post(200, 100, AMOUNT_MAX)]);
    let observed = harness.transfer_status(Transfer { timeout: 5, ..post(200, 101, AMOUNT_MAX) });
    transfer_first(S::ExistsWithDifferentPendingId, S::ExistsWithDifferentTimeout, observed);
}

#[test]
fn transfer_exists_with_different_fields_in_documented_order() {
    let original = pending(10, 1, 2, 5, 60);
    let cases: [(S, S, Transfer); 9] = [
        (
            S::ExistsWithDifferentTimeout,
            S::ExistsWithDifferentDebitAccountId,
            Transfer { timeout: 61, debit_account_id: 3, ..original },
        ),
        (
            S::ExistsWithDifferentDebitAccountId,
            S::ExistsWithDifferentCreditAccountId,
            Transfer { debit_account_id: 3, credit_account_id: 4, ..original },
        ),
        (
            S::ExistsWithDifferentCreditAccountId,
            S::ExistsWithDifferentAmount,
            Transfer { credit_account_id: 3, amount: 6, ..original },
        ),
        (
            S::ExistsWithDifferentAmount,
            S::ExistsWithDifferentUserData128,
            Transfer { amount: 6, user_data_128: 1, ..original },
        ),
        (
            S::ExistsWithDifferentUserData128,
            S::ExistsWithDifferentUserData64,
            Transfer { user_data_128: 1, user_data_64: 1, ..original },
        ),
        (
            S::ExistsWithDifferentUserData64,
            S::ExistsWithDifferentUserData32,
            Transfer { user_data_64: 1, user_data_32: 1, ..original },
        ),
        (
            S::ExistsWithDifferentUserData32,
            S::ExistsWithDifferentLedger,
            Transfer { user_data_32: 1, ledger: LEDGER + 1, ..original },
        ),
        (
            S::ExistsWithDifferentLedger,
            S::ExistsWithDifferentCode,
            Transfer { ledger: LEDGER + 1, code: CODE + 1, ..original },
        ),
        (S::ExistsWithDifferentCode, S::Exists, Transfer { code: CODE + 1, ..original }),
    ];
    for (first, second, resubmitted) in cases {
        transfer_first(first, second, transfer_resubmitted(original, resubmitted));
    }
}

#[test]
fn transfer_exists_family_beats_field_validation() {
    // The idempotency check comes right after the id checks.
    transfer_first(
        S::ExistsWithDifferentFlags,
        S::FlagsAreMutuallyExclusive,
        transfer_resubmitted(
            transfer(10, 1, 2, 5),
            transfer_with(10, 1, 2, 5, TransferFlags::PENDING | TransferFlags::POST_PENDING_TRANSFER),
        ),
    );
    transfer_first(
        S::ExistsWithDifferentDebitAccountId,
        S::AccountsMustBeDifferent,
        transfer_resubmitted(transfer(10, 1, 2, 5), transfer(10, 2, 2, 5)),
    );
    transfer_first(
        S::ExistsWithDifferentLedger,
        S::LedgerMustNotBeZero,
        transfer_resubmitted(transfer(10, 1, 2, 5), Transfer { ledger: 0, ..transfer(10, 1, 2, 5) }),
    );
    transfer_first(
        S::ExistsWithDifferentCreditAccountId,
        S::CreditAccountNotFound,
        transfer_resubmitted(transfer(10, 1, 2, 5), transfer(10, 1, 9, 5)),
    );
}

#[test]
fn transfer_exists_beats_imported_timestamp_must_not_regress() {
    let mut harness = with_imported_accounts();
    harness.transfers_ok(&[imported_transfer(10, 1, 2, 5, 1_000), imported_transfer(11, 1, 2, 5, 2_000)]);
    let results = harness.create_transfers(&[imported_transfer(10, 1, 2, 5, 1_000)]);
    transfer_first(S::Exists, S::ImportedEventTimestampMustNotRegress, results[0].status);
    assert_eq!(results[0].timestamp, 1_000);
}

#[test]
fn transfer_id_already_failed_beats_flags_are_mutually_exclusive() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 9, 5)), S::CreditAccountNotFound);
    let observed = harness.transfer_status(transfer_with(
        10,
        1,
        2,
        5,
        TransferFlags::PENDING | TransferFlags::VOID_PENDING_TRANSFER,
    ));
    transfer_first(S::IdAlreadyFailed, S::FlagsAreMutuallyExclusive, observed);
    let observed = harness.transfer_status(transfer(10, 0, 2, 5));
    transfer_first(S::IdAlreadyFailed, S::DebitAccountIdMustNotBeZero, observed);
}

#[test]
fn transfer_flags_are_mutually_exclusive_for_every_documented_pair() {
    let f = |flags| transfer_with(10, 1, 2, 5, flags);
    use TransferFlags as F;
    let exclusive = [
        F::PENDING | F::POST_PENDING_TRANSFER,
        F::PENDING | F::VOID_PENDING_TRANSFER,
        F::POST_PENDING_TRANSFER | F::VOID_PENDING_TRANSFER,
        F::POST_PENDING_TRANSFER | F::BALANCING_DEBIT,
        F::POST_PENDING_TRANSFER | F::BALANCING_CREDIT,
        F::VOID_PENDING_TRANSFER | F::BALANCING_DEBIT,
        F::VOID_PENDING_TRANSFER | F::BALANCING_CREDIT,
    ];
    for flags in exclusive {
        assert_eq!(against_plain_accounts(f(flags)), S::FlagsAreMutuallyExclusive, "{flags:?}");
    }
    // transfer.md's table of modes: a post or void is never a closing transfer. The docs name
    // `closing_transfer_must_be_pending` for a closing flag without `pending`; TigerBeetle's
    // state machine answers `flags_are_mutually_exclusive` for a post/void (see the report).
    for flags in [
        F::POST_PENDING_TRANSFER | F::CLOSING_DEBIT,
        F::POST_PENDING_TRANSFER | F::CLOSING_CREDIT,
        F::VOID_PENDING_TRANSFER | F::CLOSING_DEBIT,
        F::VOID_PENDING_TRANSFER | F::CLOSING_CREDIT,
    ] {
        let status = against_pending(Transfer { flags, ..post(10, 100, 0) });
        assert!(
            matches!(status, S::FlagsAreMutuallyExclusive | S::ClosingTransferMustBePending),
            "{flags:?}: {status:?}"
        );
    }
    // Documented as compatible.
    let compatible =
        [F::PENDING | F::BALANCING_DEBIT, F::PENDING | F::BALANCING_CREDIT, F::BALANCING_DEBIT | F::BALANCING_CREDIT];
    for flags in compatible {
        assert_ne!(against_plain_accounts(f(flags)), S::FlagsAreMutuallyExclusive, "{flags:?}");
    }
}

#[test]
fn transfer_flags_are_mutually_exclusive_beats_account_id_checks() {
    let observed = against_plain_accounts(transfer_with(
        10,
        0,
        0,
        5,
        TransferFlags::PENDING | TransferFlags::POST_PENDING_TRANSFER,
    ));
    transfer_first(S::FlagsAreMutuallyExclusive, S::DebitAccountIdMustNotBeZero, observed);
    // A post/void with mutually exclusive flags, before its pending_id is looked at.
    let observed = against_pending(Transfer {
        pending_id: 0,
        ..transfer_with(10, 0, 0, 0, TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER)
    });
    transfer_first(S::FlagsAreMutuallyExclusive, S::PendingIdMustNotBeZero, observed);
}

#[test]
fn transfer_account_id_checks_in_documented_order() {
    let max = u128::MAX;
    let cases: [(S, S, Transfer); 5] = [
        (S::DebitAccountIdMustNotBeZero, S::CreditAccountIdMustNotBeZero, transfer(10, 0, 0, 5)),
        (S::DebitAccountIdMustNotBeIntMax, S::CreditAccountIdMustNotBeZero, transfer(10, max, 0, 5)),
        (S::CreditAccountIdMustNotBeZero, S::PendingIdMustBeZero, Transfer { pending_id: 3, ..transfer(10, 1, 0, 5) }),
        (
            S::CreditAccountIdMustNotBeIntMax,
            S::PendingIdMustBeZero,
            Transfer { pending_id: 3, ..transfer(10, 1, max, 5) },
        ),
        (S::AccountsMustBeDifferent, S::PendingIdMustBeZero, Transfer { pending_id: 3, ..transfer(10, 1, 1, 5) }),
    ];
    for (first, second, candidate) in cases {
        transfer_first(first, second, against_plain_accounts(candidate));
    }
}

#[test]
fn transfer_pending_id_and_timeout_checks_in_documented_order() {
    let cases: [(S, S, Transfer); 3] = [
        (
            S::PendingIdMustBeZero,
            S::TimeoutReservedForPendingTransfer,
            Transfer { pending_id: 3, timeout: 1, ..transfer(10, 1, 2, 5) },
        ),
        (
            S::TimeoutReservedForPendingTransfer,
            S::ClosingTransferMustBePending,
            Transfer { timeout: 1, ..transfer_with(10, 1, 2, 5, TransferFlags::CLOSING_DEBIT) },
        ),
        (
            S::ClosingTransferMustBePending,
            S::LedgerMustNotBeZero,
            Transfer { ledger: 0, ..transfer_with(10, 1, 2, 5, TransferFlags::CLOSING_CREDIT) },
        ),
    ];
    for (first, second, candidate) in cases {
        transfer_first(first, second, against_plain_accounts(candidate));
    }
    // The post/void pending_id checks, before the timeout check.
    let cases: [(S, S, Transfer); 3] = [
        (
            S::PendingIdMustNotBeZero,
            S::TimeoutReservedForPendingTransfer,
            Transfer { timeout: 1, ..post(10, 0, AMOUNT_MAX) },
        ),
        (
            S::PendingIdMustNotBeIntMax,
            S::TimeoutReservedForPendingTransfer,
            Transfer { timeout: 1, ..void(10, u128::MAX, 0) },
        ),
        (
            S::PendingIdMustBeDifferent,
            S::TimeoutReservedForPendingTransfer,
            Transfer { timeout: 1, ..post(10, 10, AMOUNT_MAX) },
        ),
    ];
    for (first, second, candidate) in cases {
        transfer_first(first, second, against_pending(candidate));
    }
    // A post/void with a timeout is refused before its pending transfer is looked up.
    transfer_first(
        S::TimeoutReservedForPendingTransfer,
        S::PendingTransferNotFound,
        against_pending(Transfer { timeout: 1, ..post(10, 999, AMOUNT_MAX) }),
    );
}

#[test]
fn transfer_ledger_must_not_be_zero_beats_code_must_not_be_zero() {
    let observed = against_plain_accounts(Transfer { ledger: 0, code: 0, ..transfer(10, 1, 2, 5) });
    transfer_first(S::LedgerMustNotBeZero, S::CodeMustNotBeZero, observed);
}

#[test]
fn transfer_code_must_not_be_zero_beats_debit_account_not_found() {
    let observed = against_plain_accounts(Transfer { code: 0, ..transfer(10, 8, 9, 5) });
    transfer_first(S::CodeMustNotBeZero, S::DebitAccountNotFound, observed);
}

#[test]
fn transfer_debit_account_not_found_beats_credit_account_not_found() {
    let observed = against_plain_accounts(transfer(10, 8, 9, 5));
    transfer_first(S::DebitAccountNotFound, S::CreditAccountNotFound, observed);
}

#[test]
fn transfer_credit_account_not_found_beats_ledger_mismatch() {
    let observed = against_plain_accounts(Transfer { ledger: LEDGER + 1, ..transfer(10, 1, 9, 5) });
    transfer_first(S::CreditAccountNotFound, S::TransferMustHaveTheSameLedgerAsAccounts, observed);
}

#[test]
fn transfer_accounts_must_have_the_same_ledger_beats_transfer_ledger_mismatch() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), Account { ledger: LEDGER + 1, ..account(2) }]);
    let observed = harness.transfer_status(Transfer { ledger: LEDGER + 2, ..transfer(10, 1, 2, 5) });
    transfer_first(S::AccountsMustHaveTheSameLedger, S::TransferMustHaveTheSameLedgerAsAccounts, observed);
}

#[test]
fn transfer_ledger_mismatch_beats_closed_accounts_and_limits() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[
        account_with(1, AccountFlags::CLOSED | AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        account(2),
    ]);
    let observed = harness.transfer_status(Transfer { ledger: LEDGER + 1, ..transfer(10, 1, 2, 5) });
    transfer_first(S::TransferMustHaveTheSameLedgerAsAccounts, S::DebitAccountAlreadyClosed, observed);
}

#[test]
fn transfer_pending_transfer_not_found_beats_different_fields() {
    // With no pending transfer there is nothing to compare the post's fields with.
    let observed = against_pending(Transfer {
        debit_account_id: 3,
        credit_account_id: 4,
        ledger: LEDGER + 1,
        code: CODE + 1,
        ..post(10, 999, 7)
    });
    transfer_first(S::PendingTransferNotFound, S::PendingTransferHasDifferentDebitAccountId, observed);
}

#[test]
fn transfer_pending_transfer_not_pending_beats_different_fields() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(100, 1, 2, 5)]);
    let observed = harness.transfer_status(Transfer { debit_account_id: 3, ..post(10, 100, 99) });
    transfer_first(S::PendingTransferNotPending, S::PendingTransferHasDifferentDebitAccountId, observed);
}

#[test]
fn transfer_pending_field_mismatches_in_documented_order() {
    let cases: [(S, S, Transfer); 5] = [
        (
            S::PendingTransferHasDifferentDebitAccountId,
            S::PendingTransferHasDifferentCreditAccountId,
            Transfer { debit_account_id: 3, credit_account_id: 4, ..post(10, 100, AMOUNT_MAX) },
        ),
        (
            S::PendingTransferHasDifferentCreditAccountId,
            S::PendingTransferHasDifferentLedger,
            Transfer { credit_account_id: 3, ledger: LEDGER + 1, ..post(10, 100, AMOUNT_MAX) },
        ),
        (
            S::PendingTransferHasDifferentLedger,
            S::PendingTransferHasDifferentCode,
            Transfer { ledger: LEDGER + 1, code: CODE + 1, ..void(10, 100, 0) },
        ),
        (
            S::PendingTransferHasDifferentCode,
            S::ExceedsPendingTransferAmount,
            Transfer { code: CODE + 1, ..post(10, 100, 51) },
        ),
        (S::ExceedsPendingTransferAmount, S::PendingTransferHasDifferentAmount, void(10, 100, 51)),
    ];
    for (first, second, candidate) in cases {
        transfer_first(first, second, against_pending(candidate));
    }
}

#[test]
fn transfer_amount_checks_beat_already_resolved() {
    let mut harness = with_pending();
    harness.transfers_ok(&[post(10, 100, AMOUNT_MAX)]);
    transfer_first(
        S::ExceedsPendingTransferAmount,
        S::PendingTransferAlreadyPosted,
        harness.transfer_status(post(11, 100, 51)),
    );
    let mut harness = with_pending();
    harness.transfers_ok(&[void(10, 100, 0)]);
    transfer_first(
        S::PendingTransferHasDifferentAmount,
        S::PendingTransferAlreadyVoided,
        harness.transfer_status(void(11, 100, 1)),
    );
}

#[test]
fn transfer_already_posted_and_already_voided_beat_expired() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 1), pending(101, 1, 2, 50, 1)]);
    harness.transfers_ok(&[post(10, 100, AMOUNT_MAX), void(11, 101, 0)]);
    harness.advance_seconds(5);
    let statuses = harness.transfer_statuses(&[post(12, 100, AMOUNT_MAX), void(13, 101, 0)]);
    transfer_first(S::PendingTransferAlreadyPosted, S::PendingTransferExpired, statuses[0]);
    transfer_first(S::PendingTransferAlreadyVoided, S::PendingTransferExpired, statuses[1]);
}

#[test]
fn transfer_expired_beats_closed_account() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 1)]);
    harness.transfers_ok(&[transfer_with(101, 1, 3, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT)]);
    harness.advance_seconds(5);
    let observed = harness.transfer_status(post(10, 100, AMOUNT_MAX));
    transfer_first(S::PendingTransferExpired, S::DebitAccountAlreadyClosed, observed);
}

#[test]
fn transfer_imported_checks_in_documented_order() {
    // Accounts 1 (at 100) and 2 (at 200).
    let mut harness = with_imported_accounts();
    // Equal to account 2's timestamp: regress, before "postdate".
    let observed = harness.transfer_status(imported_transfer(10, 2, 1, 5, 200));
    transfer_first(
        S::ImportedEventTimestampMustNotRegress,
        S::ImportedEventTimestampMustPostdateDebitAccount,
        observed,
    );

    // Both accounts newer than the transfer: debit first.
    let mut harness = Harness::new();
    harness.accounts_ok(&[imported(1, 100), imported(2, 200), imported(3, 300)]);
    harness.transfers_ok(&[imported_transfer(9, 1, 2, 1, 250)]);
    // A later account batch moves the account timestamps past 250 but transfers only need to
    // postdate the last transfer; use accounts created after the transfer: 4 at 400, 5 at 500.
    harness.accounts_ok(&[imported(4, 400), imported(5, 500)]);
    let observed = harness.transfer_status(imported_transfer(10, 4, 5, 1, 350));
    transfer_first(
        S::ImportedEventTimestampMustPostdateDebitAccount,
        S::ImportedEventTimestampMustPostdateCreditAccount,
        observed,
    );

    // Credit account newer, with a timeout as well: credit first.
    let observed = harness.transfer_status(Transfer {
        timeout: 1,
        flags: TransferFlags::IMPORTED | TransferFlags::PENDING,
        ..imported_transfer(11, 1, 5, 1, 450)
    });
    transfer_first(S::ImportedEventTimestampMustPostdateCreditAccount, S::ImportedEventTimeoutMustBeZero, observed);
}

#[test]
fn transfer_imported_timeout_must_be_zero_beats_closed_account() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[
        Account { flags: AccountFlags::IMPORTED | AccountFlags::CLOSED, ..imported(1, 100) },
        imported(2, 200),
    ]);
    let observed = harness.transfer_status(Transfer {
        timeout: 1,
        flags: TransferFlags::IMPORTED | TransferFlags::PENDING,
        ..imported_transfer(10, 1, 2, 5, 1_000)
    });
    transfer_first(S::ImportedEventTimeoutMustBeZero, S::DebitAccountAlreadyClosed, observed);
}

#[test]
fn transfer_debit_account_already_closed_beats_credit_account_already_closed() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::CLOSED), account_with(2, AccountFlags::CLOSED)]);
    let observed = harness.transfer_status(transfer(10, 1, 2, 5));
    transfer_first(S::DebitAccountAlreadyClosed, S::CreditAccountAlreadyClosed, observed);
}

#[test]
fn transfer_credit_account_already_closed_beats_exceeds_credits() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[
        account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        account_with(2, AccountFlags::CLOSED),
    ]);
    let observed = harness.transfer_status(transfer(10, 1, 2, 5));
    transfer_first(S::CreditAccountAlreadyClosed, S::ExceedsCredits, observed);
}

#[test]
fn transfer_closed_account_beats_overflow() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(10, 1, 2, u128::MAX)]);
    harness.transfers_ok(&[transfer_with(11, 3, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_CREDIT)]);
    let observed = harness.transfer_status(transfer(12, 1, 2, 1));
    transfer_first(S::CreditAccountAlreadyClosed, S::OverflowsDebitsPosted, observed);
}

const HALF: u128 = 1 << 127;

#[test]
fn transfer_overflows_debits_pending_beats_overflows_credits_pending() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(10, 1, 2, u128::MAX - 1, 0)]);
    let observed = harness.transfer_status(pending(11, 1, 2, 2, 0));
    transfer_first(S::OverflowsDebitsPending, S::OverflowsCreditsPending, observed);
}

#[test]
fn transfer_overflows_credits_pending_beats_overflows_debits_posted() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    // Account 1: debits_posted near the top; account 2: credits_pending near the top.
    harness.transfers_ok(&[transfer(10, 1, 3, u128::MAX - 1), pending(11, 4, 2, u128::MAX - 1, 0)]);
    let observed = harness.transfer_status(pending(12, 1, 2, 2, 0));
    transfer_first(S::OverflowsCreditsPending, S::OverflowsDebitsPosted, observed);
}

#[test]
fn transfer_overflows_debits_posted_beats_overflows_credits_posted() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[transfer(10, 1, 2, u128::MAX - 1)]);
    let observed = harness.transfer_status(transfer(11, 1, 2, 2));
    transfer_first(S::OverflowsDebitsPosted, S::OverflowsCreditsPosted, observed);
}

#[test]
fn transfer_overflows_credits_posted_beats_overflows_debits() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    // Account 2: credits_posted near the top; account 1: debits_pending near the top.
    harness.transfers_ok(&[transfer(10, 3, 2, u128::MAX - 1), pending(11, 1, 4, u128::MAX - 1, 0)]);
    let observed = harness.transfer_status(transfer(12, 1, 2, 2));
    transfer_first(S::OverflowsCreditsPosted, S::OverflowsDebits, observed);
}

#[test]
fn transfer_overflows_debits_beats_overflows_credits() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(10, 1, 2, HALF, 0)]);
    let observed = harness.transfer_status(transfer(11, 1, 2, HALF));
    transfer_first(S::OverflowsDebits, S::OverflowsCredits, observed);
}

#[test]
fn transfer_overflows_credits_beats_overflows_timeout() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    // Account 2: credits_pending 2^126 and credits_posted 2^127. A pending 2^127 - 1 fits either
    // field alone, but not their sum.
    harness.transfers_ok(&[pending(10, 3, 2, 1 << 126, 0), transfer(11, 4, 2, HALF)]);
    harness.set_now(TIMESTAMP_MAX - 10 * SECOND_NS);
    let observed = harness.transfer_status(pending(12, 1, 2, HALF - 1, 11));
    transfer_first(S::OverflowsCredits, S::OverflowsTimeout, observed);
}

#[test]
fn transfer_overflows_timeout_beats_exceeds_credits() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2)]);
    harness.set_now(TIMESTAMP_MAX - 10 * SECOND_NS);
    let observed = harness.transfer_status(pending(10, 1, 2, 5, 11));
    transfer_first(S::OverflowsTimeout, S::ExceedsCredits, observed);
}

#[test]
fn transfer_exceeds_credits_beats_exceeds_debits() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[
        account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        account_with(2, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
    ]);
    let observed = harness.transfer_status(transfer(10, 1, 2, 5));
    transfer_first(S::ExceedsCredits, S::ExceedsDebits, observed);
}

#[test]
fn status_lists_follow_tigerbeetles_documented_order() {
    // Spot checks of the order that the tests above rely on.
    let position = |status| S::ALL.iter().position(|s| *s == status).unwrap();
    assert!(position(S::Exists) < position(S::IdAlreadyFailed));
    assert!(position(S::IdAlreadyFailed) < position(S::FlagsAreMutuallyExclusive));
    assert!(position(S::PendingTransferExpired) < position(S::ImportedEventTimestampMustNotRegress));
    assert!(position(S::CreditAccountAlreadyClosed) < position(S::OverflowsDebitsPending));
    assert!(position(S::OverflowsTimeout) < position(S::ExceedsCredits));
    assert_eq!(S::ALL[0], S::Created);
    assert_eq!(A::ALL[0], A::Created);
    assert_eq!(*A::ALL.last().unwrap(), A::ImportedEventTimestampMustNotRegress);
    assert_eq!(*S::ALL.last().unwrap(), S::ExceedsDebits);
}
