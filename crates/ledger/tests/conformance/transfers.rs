//! `create_transfers`: one scenario per `CreateTransferStatus` (TigerBeetle's
//! `docs/reference/requests/create_transfers.md`), plus results' timestamps, `Exists` on
//! re-submission and `IdAlreadyFailed` after a transient failure.

use crate::common::*;
use tally_ledger::*;

use CreateTransferStatus as S;

status_cases! {
    CreateTransferStatus;
    created => Created,
    linked_event_failed => LinkedEventFailed,
    linked_event_chain_open => LinkedEventChainOpen,
    imported_event_expected => ImportedEventExpected,
    imported_event_not_expected => ImportedEventNotExpected,
    timestamp_must_be_zero => TimestampMustBeZero,
    imported_event_timestamp_out_of_range => ImportedEventTimestampOutOfRange,
    imported_event_timestamp_must_not_advance => ImportedEventTimestampMustNotAdvance,
    reserved_flag => ReservedFlag,
    id_must_not_be_zero => IdMustNotBeZero,
    id_must_not_be_int_max => IdMustNotBeIntMax,
    exists_with_different_flags => ExistsWithDifferentFlags,
    exists_with_different_pending_id => ExistsWithDifferentPendingId,
    exists_with_different_timeout => ExistsWithDifferentTimeout,
    exists_with_different_debit_account_id => ExistsWithDifferentDebitAccountId,
    exists_with_different_credit_account_id => ExistsWithDifferentCreditAccountId,
    exists_with_different_amount => ExistsWithDifferentAmount,
    exists_with_different_user_data_128 => ExistsWithDifferentUserData128,
    exists_with_different_user_data_64 => ExistsWithDifferentUserData64,
    exists_with_different_user_data_32 => ExistsWithDifferentUserData32,
    exists_with_different_ledger => ExistsWithDifferentLedger,
    exists_with_different_code => ExistsWithDifferentCode,
    exists => Exists,
    id_already_failed => IdAlreadyFailed,
    flags_are_mutually_exclusive => FlagsAreMutuallyExclusive,
    debit_account_id_must_not_be_zero => DebitAccountIdMustNotBeZero,
    debit_account_id_must_not_be_int_max => DebitAccountIdMustNotBeIntMax,
    credit_account_id_must_not_be_zero => CreditAccountIdMustNotBeZero,
    credit_account_id_must_not_be_int_max => CreditAccountIdMustNotBeIntMax,
    accounts_must_be_different => AccountsMustBeDifferent,
    pending_id_must_be_zero => PendingIdMustBeZero,
    pending_id_must_not_be_zero => PendingIdMustNotBeZero,
    pending_id_must_not_be_int_max => PendingIdMustNotBeIntMax,
    pending_id_must_be_different => PendingIdMustBeDifferent,
    timeout_reserved_for_pending_transfer => TimeoutReservedForPendingTransfer,
    closing_transfer_must_be_pending => ClosingTransferMustBePending,
    ledger_must_not_be_zero => LedgerMustNotBeZero,
    code_must_not_be_zero => CodeMustNotBeZero,
    debit_account_not_found => DebitAccountNotFound,
    credit_account_not_found => CreditAccountNotFound,
    accounts_must_have_the_same_ledger => AccountsMustHaveTheSameLedger,
    transfer_must_have_the_same_ledger_as_accounts => TransferMustHaveTheSameLedgerAsAccounts,
    pending_transfer_not_found => PendingTransferNotFound,
    pending_transfer_not_pending => PendingTransferNotPending,
    pending_transfer_has_different_debit_account_id => PendingTransferHasDifferentDebitAccountId,
    pending_transfer_has_different_credit_account_id => PendingTransferHasDifferentCreditAccountId,
    pending_transfer_has_different_ledger => PendingTransferHasDifferentLedger,
    pending_transfer_has_different_code => PendingTransferHasDifferentCode,
    exceeds_pending_transfer_amount => ExceedsPendingTransferAmount,
    pending_transfer_has_different_amount => PendingTransferHasDifferentAmount,
    pending_transfer_already_posted => PendingTransferAlreadyPosted,
    pending_transfer_already_voided => PendingTransferAlreadyVoided,
    pending_transfer_expired => PendingTransferExpired,
    imported_event_timestamp_must_not_regress => ImportedEventTimestampMustNotRegress,
    imported_event_timestamp_must_postdate_debit_account => ImportedEventTimestampMustPostdateDebitAccount,
    imported_event_timestamp_must_postdate_credit_account => ImportedEventTimestampMustPostdateCreditAccount,
    imported_event_timeout_must_be_zero => ImportedEventTimeoutMustBeZero,
    debit_account_already_closed => DebitAccountAlreadyClosed,
    credit_account_already_closed => CreditAccountAlreadyClosed,
    overflows_debits_pending => OverflowsDebitsPending,
    overflows_credits_pending => OverflowsCreditsPending,
    overflows_debits_posted => OverflowsDebitsPosted,
    overflows_credits_posted => OverflowsCreditsPosted,
    overflows_debits => OverflowsDebits,
    overflows_credits => OverflowsCredits,
    overflows_timeout => OverflowsTimeout,
    exceeds_credits => ExceedsCredits,
    exceeds_debits => ExceedsDebits,
}

/// Accounts 1..=4 (plain), and the status of `transfer` against them; asserts that a rejected
/// transfer leaves no trace in lookups or balances.
pub fn against_plain_accounts(transfer: Transfer) -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    let before: Vec<Account> = harness.ledger.lookup_accounts(&[1, 2, 3, 4]);
    let status = harness.transfer_status(transfer);
    if status != S::Created && transfer.id != 0 && transfer.id != u128::MAX {
        assert!(harness.transfer(transfer.id).is_none());
        assert_eq!(harness.ledger.lookup_accounts(&[1, 2, 3, 4]), before);
    }
    status
}

/// A harness with accounts 1..=4 and transfer `original` created; the result of re-submitting
/// `resubmitted`, after checking that `Exists`-family results carry the original timestamp and
/// change nothing: the digest equals that of a twin ledger whose batch at the same timestamp held
/// an event refused for its id alone.
pub fn resubmitted(original: Transfer, resubmitted: Transfer) -> CreateTransferStatus {
    let setup = |harness: &mut Harness| harness.transfers_ok(&[original]);
    let mut twin = Harness::with_accounts(&[1, 2, 3, 4]);
    setup(&mut twin);
    assert_eq!(twin.transfer_status(transfer(0, 1, 2, 1)), S::IdMustNotBeZero);

    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    setup(&mut harness);
    let stored = harness.transfer(original.id).expect("created");
    let accounts = harness.ledger.lookup_accounts(&[1, 2, 3, 4]);
    let result = harness.create_transfers(&[resubmitted])[0];
    assert_eq!(result.timestamp, stored.timestamp, "exists-family results carry the stored timestamp");
    assert_eq!(harness.transfer(original.id), Some(stored));
    assert_eq!(harness.ledger.lookup_accounts(&[1, 2, 3, 4]), accounts);
    assert_eq!(harness.ledger.digest(), twin.ledger.digest(), "re-submission changes nothing");
    result.status
}

/// A harness with accounts 1..=4 and pending transfer 100 (1 -> 2, amount 50, no timeout).
pub fn with_pending() -> Harness {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 0)]);
    harness
}

/// The status of `transfer` against `with_pending()`; asserts a rejection changes no balance.
pub fn against_pending(transfer: Transfer) -> CreateTransferStatus {
    let mut harness = with_pending();
    let status = harness.transfer_status(transfer);
    if status != S::Created {
        assert_eq!(harness.balances(1), (50, 0, 0, 0));
        assert_eq!(harness.balances(2), (0, 0, 50, 0));
    }
    status
}

pub fn created() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let new = Transfer { user_data_128: 5, user_data_64: 6, user_data_32: 7, ..transfer(10, 1, 2, 30) };
    let timestamp = harness.now;
    let result = harness.create_transfers(&[new])[0];
    assert_eq!(result.timestamp, timestamp);
    assert_eq!(harness.transfer(10), Some(Transfer { timestamp, ..new }));
    assert_eq!(harness.balances(1), (0, 30, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 30));
    result.status
}

pub fn linked_event_failed() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[linked(transfer(10, 1, 2, 5)), transfer(11, 1, 9, 5)]);
    assert_eq!(statuses[1], S::CreditAccountNotFound);
    assert!(harness.transfer(10).is_none());
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    statuses[0]
}

pub fn linked_event_chain_open() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[transfer(10, 1, 2, 5), linked(transfer(11, 1, 2, 5))]);
    assert_eq!(statuses[0], S::Created);
    assert!(harness.transfer(11).is_none());
    assert_eq!(harness.balances(1), (0, 5, 0, 0));
    statuses[1]
}

/// An imported transfer with a user timestamp.
pub fn imported_transfer(id: u128, debit: u128, credit: u128, amount: u128, timestamp: u64) -> Transfer {
    Transfer { timestamp, flags: TransferFlags::IMPORTED, ..transfer(id, debit, credit, amount) }
}

/// A harness with imported accounts 1 (timestamp 100) and 2 (timestamp 200).
pub fn with_imported_accounts() -> Harness {
    let mut harness = Harness::new();
    harness.accounts_ok(&[crate::accounts::imported(1, 100), crate::accounts::imported(2, 200)]);
    harness
}

pub fn imported_event_expected() -> CreateTransferStatus {
    let mut harness = with_imported_accounts();
    let statuses = harness.transfer_statuses(&[imported_transfer(10, 1, 2, 5, 1_000), transfer(11, 1, 2, 5)]);
    assert_eq!(statuses[0], S::Created);
    statuses[1]
}

pub fn imported_event_not_expected() -> CreateTransferStatus {
    let mut harness = with_imported_accounts();
    let statuses = harness.transfer_statuses(&[transfer(10, 1, 2, 5), imported_transfer(11, 1, 2, 5, 1_000)]);
    assert_eq!(statuses[0], S::Created);
    statuses[1]
}

pub fn timestamp_must_be_zero() -> CreateTransferStatus {
    against_plain_accounts(Transfer { timestamp: 1, ..transfer(10, 1, 2, 5) })
}

pub fn imported_event_timestamp_out_of_range() -> CreateTransferStatus {
    let zero = with_imported_accounts().transfer_status(imported_transfer(10, 1, 2, 5, 0));
    let too_large = with_imported_accounts().transfer_status(imported_transfer(10, 1, 2, 5, 1 << 63));
    assert_eq!(zero, too_large);
    zero
}

pub fn imported_event_timestamp_must_not_advance() -> CreateTransferStatus {
    let mut harness = with_imported_accounts();
    let event_timestamp = harness.now;
    harness.transfer_status(imported_transfer(10, 1, 2, 5, event_timestamp))
}

pub fn reserved_flag() -> CreateTransferStatus {
    against_plain_accounts(transfer_with(10, 1, 2, 5, TransferFlags::from_bits_retain(1 << 15)))
}

pub fn id_must_not_be_zero() -> CreateTransferStatus {
    against_plain_accounts(transfer(0, 1, 2, 5))
}

pub fn id_must_not_be_int_max() -> CreateTransferStatus {
    against_plain_accounts(transfer(u128::MAX, 1, 2, 5))
}

pub fn exists_with_different_flags() -> CreateTransferStatus {
    let pending_flag = resubmitted(transfer(10, 1, 2, 5), pending(10, 1, 2, 5, 0));
    let balancing_flag = resubmitted(transfer(10, 1, 2, 5), transfer_with(10, 1, 2, 5, TransferFlags::BALANCING_DEBIT));
    assert_eq!(pending_flag, balancing_flag);
    pending_flag
}

pub fn exists_with_different_pending_id() -> CreateTransferStatus {
    let mut harness = with_pending();
    harness.transfers_ok(&[pending(101, 1, 2, 50, 0), post(200, 100, AMOUNT_MAX)]);
    harness.transfer_status(post(200, 101, AMOUNT_MAX))
}

pub fn exists_with_different_timeout() -> CreateTransferStatus {
    resubmitted(pending(10, 1, 2, 5, 60), pending(10, 1, 2, 5, 61))
}

pub fn exists_with_different_debit_account_id() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), transfer(10, 3, 2, 5))
}

pub fn exists_with_different_credit_account_id() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), transfer(10, 1, 3, 5))
}

pub fn exists_with_different_amount() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), transfer(10, 1, 2, 6))
}

pub fn exists_with_different_user_data_128() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), Transfer { user_data_128: 1, ..transfer(10, 1, 2, 5) })
}

pub fn exists_with_different_user_data_64() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), Transfer { user_data_64: 1, ..transfer(10, 1, 2, 5) })
}

pub fn exists_with_different_user_data_32() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), Transfer { user_data_32: 1, ..transfer(10, 1, 2, 5) })
}

pub fn exists_with_different_ledger() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), Transfer { ledger: LEDGER + 1, ..transfer(10, 1, 2, 5) })
}

pub fn exists_with_different_code() -> CreateTransferStatus {
    resubmitted(transfer(10, 1, 2, 5), Transfer { code: CODE + 1, ..transfer(10, 1, 2, 5) })
}

pub fn exists() -> CreateTransferStatus {
    let original = Transfer { user_data_128: 1, user_data_64: 2, user_data_32: 3, ..transfer(10, 1, 2, 5) };
    resubmitted(original, original)
}

pub fn id_already_failed() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1]);
    // Fails transiently: the credit account does not exist yet.
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 5)), S::CreditAccountNotFound);
    harness.accounts_ok(&[account(2)]);
    // The same transfer would now succeed, but its id already failed.
    let status = harness.transfer_status(transfer(10, 1, 2, 5));
    assert!(harness.transfer(10).is_none());
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    status
}

pub fn flags_are_mutually_exclusive() -> CreateTransferStatus {
    against_plain_accounts(transfer_with(10, 1, 2, 5, TransferFlags::PENDING | TransferFlags::POST_PENDING_TRANSFER))
}

pub fn debit_account_id_must_not_be_zero() -> CreateTransferStatus {
    against_plain_accounts(transfer(10, 0, 2, 5))
}

pub fn debit_account_id_must_not_be_int_max() -> CreateTransferStatus {
    against_plain_accounts(transfer(10, u128::MAX, 2, 5))
}

pub fn credit_account_id_must_not_be_zero() -> CreateTransferStatus {
    against_plain_accounts(transfer(10, 1, 0, 5))
}

pub fn credit_account_id_must_not_be_int_max() -> CreateTransferStatus {
    against_plain_accounts(transfer(10, 1, u128::MAX, 5))
}

pub fn accounts_must_be_different() -> CreateTransferStatus {
    against_plain_accounts(transfer(10, 1, 1, 5))
}

pub fn pending_id_must_be_zero() -> CreateTransferStatus {
    against_plain_accounts(Transfer { pending_id: 7, ..transfer(10, 1, 2, 5) })
}

pub fn pending_id_must_not_be_zero() -> CreateTransferStatus {
    let post_status = against_pending(post(10, 0, AMOUNT_MAX));
    let void_status = against_pending(void(10, 0, 0));
    assert_eq!(post_status, void_status);
    post_status
}

pub fn pending_id_must_not_be_int_max() -> CreateTransferStatus {
    against_pending(post(10, u128::MAX, AMOUNT_MAX))
}

pub fn pending_id_must_be_different() -> CreateTransferStatus {
    against_pending(post(10, 10, AMOUNT_MAX))
}

pub fn timeout_reserved_for_pending_transfer() -> CreateTransferStatus {
    let plain = against_plain_accounts(Transfer { timeout: 1, ..transfer(10, 1, 2, 5) });
    let post_with_timeout = against_pending(Transfer { timeout: 1, ..post(10, 100, AMOUNT_MAX) });
    assert_eq!(plain, post_with_timeout);
    plain
}

pub fn closing_transfer_must_be_pending() -> CreateTransferStatus {
    let debit = against_plain_accounts(transfer_with(10, 1, 2, 0, TransferFlags::CLOSING_DEBIT));
    let credit = against_plain_accounts(transfer_with(10, 1, 2, 0, TransferFlags::CLOSING_CREDIT));
    assert_eq!(debit, credit);
    debit
}

pub fn ledger_must_not_be_zero() -> CreateTransferStatus {
    against_plain_accounts(Transfer { ledger: 0, ..transfer(10, 1, 2, 5) })
}

pub fn code_must_not_be_zero() -> CreateTransferStatus {
    against_plain_accounts(Transfer { code: 0, ..transfer(10, 1, 2, 5) })
}

pub fn debit_account_not_found() -> CreateTransferStatus {
    against_plain_accounts(transfer(10, 9, 2, 5))
}

pub fn credit_account_not_found() -> CreateTransferStatus {
    against_plain_accounts(transfer(10, 1, 9, 5))
}

pub fn accounts_must_have_the_same_ledger() -> CreateTransferStatus {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), Account { ledger: LEDGER + 1, ..account(2) }]);
    harness.transfer_status(transfer(10, 1, 2, 5))
}

pub fn transfer_must_have_the_same_ledger_as_accounts() -> CreateTransferStatus {
    against_plain_accounts(Transfer { ledger: LEDGER + 1, ..transfer(10, 1, 2, 5) })
}

pub fn pending_transfer_not_found() -> CreateTransferStatus {
    let post_status = against_pending(post(10, 999, AMOUNT_MAX));
    let void_status = against_pending(void(10, 999, 0));
    assert_eq!(post_status, void_status);
    post_status
}

pub fn pending_transfer_not_pending() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[transfer(100, 1, 2, 5)]);
    harness.transfer_status(post(10, 100, AMOUNT_MAX))
}

pub fn pending_transfer_has_different_debit_account_id() -> CreateTransferStatus {
    against_pending(Transfer { debit_account_id: 3, ..post(10, 100, AMOUNT_MAX) })
}

pub fn pending_transfer_has_different_credit_account_id() -> CreateTransferStatus {
    against_pending(Transfer { credit_account_id: 3, ..void(10, 100, 0) })
}

pub fn pending_transfer_has_different_ledger() -> CreateTransferStatus {
    against_pending(Transfer { ledger: LEDGER + 1, ..post(10, 100, AMOUNT_MAX) })
}

pub fn pending_transfer_has_different_code() -> CreateTransferStatus {
    against_pending(Transfer { code: CODE + 1, ..void(10, 100, 0) })
}

pub fn exceeds_pending_transfer_amount() -> CreateTransferStatus {
    against_pending(post(10, 100, 51))
}

pub fn pending_transfer_has_different_amount() -> CreateTransferStatus {
    let less = against_pending(void(10, 100, 49));
    assert_eq!(against_pending(void(10, 100, 51)), S::ExceedsPendingTransferAmount);
    less
}

pub fn pending_transfer_already_posted() -> CreateTransferStatus {
    let mut harness = with_pending();
    harness.transfers_ok(&[post(10, 100, 20)]);
    let again = harness.transfer_status(post(11, 100, 20));
    assert_eq!(harness.transfer_status(void(12, 100, 0)), again);
    assert_eq!(harness.balances(1), (0, 20, 0, 0));
    again
}

pub fn pending_transfer_already_voided() -> CreateTransferStatus {
    let mut harness = with_pending();
    harness.transfers_ok(&[void(10, 100, 0)]);
    let again = harness.transfer_status(void(11, 100, 0));
    assert_eq!(harness.transfer_status(post(12, 100, AMOUNT_MAX)), again);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    again
}

pub fn pending_transfer_expired() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 1)]);
    harness.advance_seconds(2);
    let status = harness.transfer_status(post(10, 100, AMOUNT_MAX));
    assert_eq!(harness.transfer_status(void(11, 100, 0)), status);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    status
}

pub fn imported_event_timestamp_must_not_regress() -> CreateTransferStatus {
    let mut harness = with_imported_accounts();
    harness.transfers_ok(&[imported_transfer(10, 1, 2, 5, 1_000)]);
    let status = harness.transfer_status(imported_transfer(11, 1, 2, 5, 900));
    assert!(harness.transfer(11).is_none());
    status
}

pub fn imported_event_timestamp_must_postdate_debit_account() -> CreateTransferStatus {
    // Account 1 at 100, account 2 at 200: a transfer at 150 predates its debit account 2.
    with_imported_accounts().transfer_status(imported_transfer(10, 2, 1, 5, 150))
}

pub fn imported_event_timestamp_must_postdate_credit_account() -> CreateTransferStatus {
    with_imported_accounts().transfer_status(imported_transfer(10, 1, 2, 5, 150))
}

pub fn imported_event_timeout_must_be_zero() -> CreateTransferStatus {
    let imported_pending = Transfer {
        timeout: 1,
        flags: TransferFlags::IMPORTED | TransferFlags::PENDING,
        ..imported_transfer(10, 1, 2, 5, 1_000)
    };
    with_imported_accounts().transfer_status(imported_pending)
}

pub fn debit_account_already_closed() -> CreateTransferStatus {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::CLOSED), account(2)]);
    harness.transfer_status(transfer(10, 1, 2, 5))
}

pub fn credit_account_already_closed() -> CreateTransferStatus {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), account_with(2, AccountFlags::CLOSED)]);
    harness.transfer_status(transfer(10, 1, 2, 5))
}

const HALF: u128 = 1 << 127;

pub fn overflows_debits_pending() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[pending(10, 1, 2, u128::MAX - 1, 0)]);
    harness.transfer_status(pending(11, 1, 3, 2, 0))
}

pub fn overflows_credits_pending() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[pending(10, 1, 2, u128::MAX - 1, 0)]);
    harness.transfer_status(pending(11, 3, 2, 2, 0))
}

pub fn overflows_debits_posted() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(10, 1, 2, u128::MAX - 1)]);
    harness.transfer_status(transfer(11, 1, 3, 2))
}

pub fn overflows_credits_posted() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(10, 1, 2, u128::MAX - 1)]);
    harness.transfer_status(transfer(11, 3, 2, 2))
}

pub fn overflows_debits() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[pending(10, 1, 2, HALF, 0)]);
    // Neither debits_pending nor debits_posted alone overflows; their sum with the amount does.
    harness.transfer_status(transfer(11, 1, 3, HALF))
}

pub fn overflows_credits() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[pending(10, 1, 2, HALF, 0)]);
    harness.transfer_status(transfer(11, 3, 2, HALF))
}

pub fn overflows_timeout() -> CreateTransferStatus {
    let mut harness = Harness::with_accounts(&[1, 2]);
    // timestamp + timeout in ns must stay below 2^63.
    harness.set_now(TIMESTAMP_MAX - 10 * SECOND_NS);
    harness.transfer_status(pending(10, 1, 2, 5, 11))
}

pub fn exceeds_credits() -> CreateTransferStatus {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2)]);
    harness.transfer_status(transfer(10, 1, 2, 1))
}

pub fn exceeds_debits() -> CreateTransferStatus {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), account_with(2, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)]);
    harness.transfer_status(transfer(10, 1, 2, 1))
}

// --- Behaviour around the statuses -------------------------------------------------------------

#[test]
fn zero_amount_transfer_is_created() {
    // TigerBeetle 0.16 dropped `amount_must_not_be_zero`: a transfer may move nothing.
    let mut harness = Harness::with_accounts(&[1, 2]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 0)), S::Created);
    assert_eq!(harness.transfer(10).unwrap().amount, 0);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
}

#[test]
fn amount_max_single_phase_transfer_is_an_ordinary_amount() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, u128::MAX)), S::Created);
    assert_eq!(harness.balances(1), (0, u128::MAX, 0, 0));
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 1)), S::OverflowsDebitsPosted);
}

#[test]
fn transfer_results_carry_event_timestamps() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let timestamp = harness.now;
    let results = harness.create_transfers(&[transfer(10, 1, 2, 5), transfer(0, 1, 2, 5), transfer(11, 1, 2, 5)]);
    assert_eq!(results[0], CreateTransferResult { timestamp, status: S::Created });
    assert_eq!(results[1], CreateTransferResult { timestamp: timestamp + 1, status: S::IdMustNotBeZero });
    assert_eq!(results[2], CreateTransferResult { timestamp: timestamp + 2, status: S::Created });
    assert_eq!(harness.transfer(10).unwrap().timestamp, timestamp);
    assert_eq!(harness.transfer(11).unwrap().timestamp, timestamp + 2);
}

#[test]
fn exists_on_resubmission_in_a_later_batch_keeps_the_original_timestamp() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let created_at = harness.now;
    harness.transfers_ok(&[transfer(10, 1, 2, 5)]);
    let results = harness.create_transfers(&[transfer(11, 1, 2, 1), transfer(10, 1, 2, 5)]);
    assert_eq!(results[1], CreateTransferResult { timestamp: created_at, status: S::Exists });
    assert_eq!(harness.balances(1), (0, 6, 0, 0));
}

#[test]
fn same_id_twice_in_one_batch_gives_created_then_exists() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[transfer(10, 1, 2, 5), transfer(10, 1, 2, 5)]);
    assert_eq!(statuses, vec![S::Created, S::Exists]);
    assert_eq!(harness.balances(1), (0, 5, 0, 0));
}

#[test]
fn exists_after_state_changed_that_would_now_reject_the_transfer() {
    // The idempotency check comes before every state-dependent check.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2), account(3)]);
    harness.fund(1, 2, 1, 10);
    harness.transfers_ok(&[transfer(10, 1, 2, 10)]);
    // Account 1 has nothing left; re-submitting the spent transfer is still `Exists`.
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 10)), S::Exists);
    // Close account 2 with a closing pending transfer; still `Exists`.
    harness.transfers_ok(&[transfer_with(11, 3, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_CREDIT)]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 10)), S::Exists);
}

#[test]
fn id_already_failed_after_each_transient_status() {
    // Each transient failure, followed by a retry that could now succeed: `IdAlreadyFailed`.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2), account(3)]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 5)), S::ExceedsCredits);
    assert!(S::ExceedsCredits.is_transient());
    harness.fund(1, 3, 1, 100);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 5)), S::IdAlreadyFailed);

    assert_eq!(harness.transfer_status(transfer(11, 4, 2, 5)), S::DebitAccountNotFound);
    harness.accounts_ok(&[account(4)]);
    assert_eq!(harness.transfer_status(transfer(11, 4, 2, 5)), S::IdAlreadyFailed);

    assert_eq!(harness.transfer_status(post(12, 500, AMOUNT_MAX)), S::PendingTransferNotFound);
    harness.transfers_ok(&[pending(500, 1, 2, 5, 0)]);
    assert_eq!(harness.transfer_status(post(12, 500, AMOUNT_MAX)), S::IdAlreadyFailed);
    assert!(harness.transfer(12).is_none());
    assert_eq!(harness.balances(1), (5, 0, 0, 100));
}

#[test]
fn id_already_failed_also_for_a_different_transfer_with_that_id() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 9, 5)), S::CreditAccountNotFound);
    assert_eq!(harness.transfer_status(transfer(10, 2, 1, 7)), S::IdAlreadyFailed);
}

#[test]
fn id_of_a_non_transient_failure_is_reusable() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    assert!(!S::LedgerMustNotBeZero.is_transient());
    assert_eq!(harness.transfer_status(Transfer { ledger: 0, ..transfer(10, 1, 2, 5) }), S::LedgerMustNotBeZero);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 5)), S::Created);
    assert_eq!(harness.transfer_status(transfer(11, 1, 1, 5)), S::AccountsMustBeDifferent);
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 5)), S::Created);
    assert_eq!(harness.transfer_status(post(12, 10, AMOUNT_MAX)), S::PendingTransferNotPending);
    assert!(!S::PendingTransferNotPending.is_transient());
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 5)), S::Created);
}

#[test]
fn exists_with_different_flags_when_only_linked_differs() {
    // `flags.linked` is part of the stored flags, so it takes part in the comparison.
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[transfer(10, 1, 2, 5)]);
    let statuses = harness.transfer_statuses(&[linked(transfer(10, 1, 2, 5)), transfer(11, 1, 2, 5)]);
    assert_eq!(statuses, vec![S::ExistsWithDifferentFlags, S::LinkedEventFailed]);
}

#[test]
fn resubmitted_post_and_void_with_inherited_fields_exist() {
    // A retried post/void, with the same zero (inherited) fields and AMOUNT_MAX / 0 amounts, is
    // the same request and must be reported as `Exists` (reliable transaction submission).
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 0), pending(101, 3, 4, 40, 0)]);
    harness.transfers_ok(&[post(10, 100, AMOUNT_MAX), void(11, 101, 0)]);
    assert_eq!(harness.transfer_statuses(&[post(10, 100, AMOUNT_MAX), void(11, 101, 0)]), vec![S::Exists, S::Exists]);
    // With user data on the pending transfer, which the post inherits.
    harness.transfers_ok(&[Transfer {
        user_data_128: 1,
        user_data_64: 2,
        user_data_32: 3,
        ..pending(103, 3, 4, 9, 0)
    }]);
    harness.transfers_ok(&[post(13, 103, AMOUNT_MAX)]);
    assert_eq!(harness.transfer_statuses(&[post(13, 103, AMOUNT_MAX)]), vec![S::Exists]);
    assert_eq!(
        harness.transfer_status(Transfer { user_data_64: 5, ..post(13, 103, AMOUNT_MAX) }),
        S::ExistsWithDifferentUserData64
    );
    // A retried partial post likewise.
    harness.transfers_ok(&[pending(102, 1, 2, 50, 0), post(12, 102, 20)]);
    assert_eq!(harness.transfer_status(post(12, 102, 20)), S::Exists);
    assert_eq!(harness.balances(1), (0, 70, 0, 0));
}

#[test]
fn transient_statuses_are_the_state_dependent_ones() {
    // The validation statuses (a property of the event alone) are never transient.
    let event_only = [
        S::ReservedFlag,
        S::IdMustNotBeZero,
        S::FlagsAreMutuallyExclusive,
        S::AccountsMustBeDifferent,
        S::PendingIdMustBeZero,
        S::TimeoutReservedForPendingTransfer,
        S::LedgerMustNotBeZero,
        S::CodeMustNotBeZero,
    ];
    for status in event_only {
        assert!(!status.is_transient(), "{status:?}");
    }
    for status in [S::DebitAccountNotFound, S::CreditAccountNotFound, S::ExceedsCredits, S::ExceedsDebits] {
        assert!(status.is_transient(), "{status:?}");
    }
}

#[test]
fn overflow_statuses_are_not_transient() {
    for status in [
        S::OverflowsDebitsPending,
        S::OverflowsCreditsPending,
        S::OverflowsDebitsPosted,
        S::OverflowsCreditsPosted,
        S::OverflowsDebits,
        S::OverflowsCredits,
        S::OverflowsTimeout,
    ] {
        assert!(!status.is_transient(), "{status:?}");
    }
    // So an id refused for an overflow can be used again.
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[transfer(10, 1, 2, u128::MAX)]);
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 1)), S::OverflowsDebitsPosted);
    assert_eq!(harness.transfer_status(transfer(11, 2, 1, 1)), S::Created);
}

#[test]
fn transient_statuses_match_tigerbeetles_list() {
    // src/tigerbeetle.zig, CreateTransferResult.transient(): these and only these (besides the
    // overflows, see overflow_statuses_are_not_transient) depend on the ledger's state.
    let transient = [
        S::DebitAccountNotFound,
        S::CreditAccountNotFound,
        S::PendingTransferNotFound,
        S::ExceedsCredits,
        S::ExceedsDebits,
        S::DebitAccountAlreadyClosed,
        S::CreditAccountAlreadyClosed,
    ];
    for status in S::ALL.iter().copied().filter(|status| *status != S::Created) {
        let is_overflow = status.name().starts_with("overflows_");
        if !is_overflow {
            assert_eq!(status.is_transient(), transient.contains(&status), "{status:?}");
        }
    }
}

#[test]
fn id_already_failed_after_closed_and_exceeds_debits() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[
        account_with(1, AccountFlags::CLOSED),
        account(2),
        account_with(3, AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
    ]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 1)), S::DebitAccountAlreadyClosed);
    assert_eq!(harness.transfer_status(transfer(10, 2, 3, 1)), S::IdAlreadyFailed);
    assert_eq!(harness.transfer_status(transfer(11, 2, 3, 1)), S::ExceedsDebits);
    assert_eq!(harness.transfer_status(transfer(11, 3, 2, 1)), S::IdAlreadyFailed);
    // The account id space is separate: a failed transfer id is a fine account id.
    assert_eq!(harness.account_status(account(10)), CreateAccountStatus::Created);
}
