//! `create_accounts`: one scenario per `CreateAccountStatus` (TigerBeetle's
//! `docs/reference/requests/create_accounts.md`), plus the fields a created account gets.

use crate::common::*;
use tally_ledger::*;

use CreateAccountStatus as S;

status_cases! {
    CreateAccountStatus;
    created => Created,
    linked_event_failed => LinkedEventFailed,
    linked_event_chain_open => LinkedEventChainOpen,
    imported_event_expected => ImportedEventExpected,
    imported_event_not_expected => ImportedEventNotExpected,
    timestamp_must_be_zero => TimestampMustBeZero,
    imported_event_timestamp_out_of_range => ImportedEventTimestampOutOfRange,
    imported_event_timestamp_must_not_advance => ImportedEventTimestampMustNotAdvance,
    reserved_field => ReservedField,
    reserved_flag => ReservedFlag,
    id_must_not_be_zero => IdMustNotBeZero,
    id_must_not_be_int_max => IdMustNotBeIntMax,
    exists_with_different_flags => ExistsWithDifferentFlags,
    exists_with_different_user_data_128 => ExistsWithDifferentUserData128,
    exists_with_different_user_data_64 => ExistsWithDifferentUserData64,
    exists_with_different_user_data_32 => ExistsWithDifferentUserData32,
    exists_with_different_ledger => ExistsWithDifferentLedger,
    exists_with_different_code => ExistsWithDifferentCode,
    exists => Exists,
    flags_are_mutually_exclusive => FlagsAreMutuallyExclusive,
    debits_pending_must_be_zero => DebitsPendingMustBeZero,
    debits_posted_must_be_zero => DebitsPostedMustBeZero,
    credits_pending_must_be_zero => CreditsPendingMustBeZero,
    credits_posted_must_be_zero => CreditsPostedMustBeZero,
    ledger_must_not_be_zero => LedgerMustNotBeZero,
    code_must_not_be_zero => CodeMustNotBeZero,
    imported_event_timestamp_must_not_regress => ImportedEventTimestampMustNotRegress,
}

/// A rejected single account: asserts that nothing was created, and returns the status.
fn rejected(account: Account) -> CreateAccountStatus {
    let mut harness = Harness::new();
    let status = harness.account_status(account);
    if account.id != 0 && account.id != u128::MAX {
        assert!(harness.ledger.lookup_accounts(&[account.id]).is_empty());
    }
    status
}

/// A harness holding account 1 as `existing`, and the status of re-submitting `resubmitted`.
fn resubmitted(existing: Account, resubmitted: Account) -> CreateAccountStatus {
    // A twin ledger whose batch at the same timestamp held an event refused for its id alone.
    let mut twin = Harness::new();
    twin.accounts_ok(&[existing]);
    assert_eq!(twin.account_status(account(0)), S::IdMustNotBeZero);

    let mut harness = Harness::new();
    harness.accounts_ok(&[existing]);
    let before = harness.account(existing.id);
    let result = harness.create_accounts(&[resubmitted])[0];
    // An `Exists`-family result carries the existing account's timestamp and changes nothing.
    assert_eq!(result.timestamp, before.timestamp);
    assert_eq!(harness.account(existing.id), before);
    assert_eq!(harness.ledger.digest(), twin.ledger.digest(), "re-submission changes nothing");
    result.status
}

pub fn created() -> CreateAccountStatus {
    let mut harness = Harness::new();
    let new = Account {
        user_data_128: 11,
        user_data_64: 12,
        user_data_32: 13,
        flags: AccountFlags::HISTORY | AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        ..account(1)
    };
    let timestamp = harness.now;
    let result = harness.create_accounts(&[new])[0];
    assert_eq!(result.timestamp, timestamp);
    let stored = harness.account(1);
    assert_eq!(stored, Account { timestamp, ..new });
    result.status
}

pub fn linked_event_failed() -> CreateAccountStatus {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[linked_account(account(1)), Account { ledger: 0, ..account(2) }]);
    assert_eq!(statuses[1], S::LedgerMustNotBeZero);
    assert!(harness.ledger.lookup_accounts(&[1, 2]).is_empty());
    statuses[0]
}

pub fn linked_event_chain_open() -> CreateAccountStatus {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[account(1), linked_account(account(2))]);
    assert_eq!(statuses[0], S::Created);
    assert!(harness.ledger.lookup_accounts(&[2]).is_empty());
    statuses[1]
}

/// An imported account with a user timestamp.
pub fn imported(id: u128, timestamp: u64) -> Account {
    Account { timestamp, flags: AccountFlags::IMPORTED, ..account(id) }
}

pub fn imported_event_expected() -> CreateAccountStatus {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[imported(1, 100), account(2)]);
    assert_eq!(statuses[0], S::Created);
    statuses[1]
}

pub fn imported_event_not_expected() -> CreateAccountStatus {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[account(1), imported(2, 100)]);
    assert_eq!(statuses[0], S::Created);
    statuses[1]
}

pub fn timestamp_must_be_zero() -> CreateAccountStatus {
    rejected(Account { timestamp: 1, ..account(1) })
}

pub fn imported_event_timestamp_out_of_range() -> CreateAccountStatus {
    let zero = rejected(imported(1, 0));
    let too_large = rejected(imported(1, 1 << 63));
    assert_eq!(zero, too_large);
    zero
}

pub fn imported_event_timestamp_must_not_advance() -> CreateAccountStatus {
    let mut harness = Harness::new();
    // The event gets `now + 1`; a user timestamp equal to it is not in the past.
    let event_timestamp = harness.now + 1;
    let statuses = harness.account_statuses(&[imported(1, 100), imported(2, event_timestamp)]);
    assert_eq!(statuses[0], S::Created);
    statuses[1]
}

pub fn reserved_field() -> CreateAccountStatus {
    rejected(Account { reserved: 1, ..account(1) })
}

pub fn reserved_flag() -> CreateAccountStatus {
    rejected(Account { flags: AccountFlags::from_bits_retain(1 << 15), ..account(1) })
}

pub fn id_must_not_be_zero() -> CreateAccountStatus {
    rejected(account(0))
}

pub fn id_must_not_be_int_max() -> CreateAccountStatus {
    rejected(account(u128::MAX))
}

pub fn exists_with_different_flags() -> CreateAccountStatus {
    resubmitted(account(1), account_with(1, AccountFlags::HISTORY))
}

pub fn exists_with_different_user_data_128() -> CreateAccountStatus {
    resubmitted(account(1), Account { user_data_128: 1, ..account(1) })
}

pub fn exists_with_different_user_data_64() -> CreateAccountStatus {
    resubmitted(account(1), Account { user_data_64: 1, ..account(1) })
}

pub fn exists_with_different_user_data_32() -> CreateAccountStatus {
    resubmitted(account(1), Account { user_data_32: 1, ..account(1) })
}

pub fn exists_with_different_ledger() -> CreateAccountStatus {
    resubmitted(account(1), Account { ledger: LEDGER + 1, ..account(1) })
}

pub fn exists_with_different_code() -> CreateAccountStatus {
    resubmitted(account(1), Account { code: CODE + 1, ..account(1) })
}

pub fn exists() -> CreateAccountStatus {
    let original = Account {
        user_data_128: 1,
        user_data_64: 2,
        user_data_32: 3,
        flags: AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
        ..account(1)
    };
    resubmitted(original, original)
}

pub fn flags_are_mutually_exclusive() -> CreateAccountStatus {
    rejected(account_with(
        1,
        AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
    ))
}

pub fn debits_pending_must_be_zero() -> CreateAccountStatus {
    rejected(Account { debits_pending: 1, ..account(1) })
}

pub fn debits_posted_must_be_zero() -> CreateAccountStatus {
    rejected(Account { debits_posted: 1, ..account(1) })
}

pub fn credits_pending_must_be_zero() -> CreateAccountStatus {
    rejected(Account { credits_pending: 1, ..account(1) })
}

pub fn credits_posted_must_be_zero() -> CreateAccountStatus {
    rejected(Account { credits_posted: 1, ..account(1) })
}

pub fn ledger_must_not_be_zero() -> CreateAccountStatus {
    rejected(Account { ledger: 0, ..account(1) })
}

pub fn code_must_not_be_zero() -> CreateAccountStatus {
    rejected(Account { code: 0, ..account(1) })
}

pub fn imported_event_timestamp_must_not_regress() -> CreateAccountStatus {
    let mut harness = Harness::new();
    harness.accounts_ok(&[imported(1, 500)]);
    let status = harness.account_status(imported(2, 400));
    assert!(harness.ledger.lookup_accounts(&[2]).is_empty());
    status
}

#[test]
fn created_accounts_get_consecutive_batch_timestamps() {
    let mut harness = Harness::new();
    let timestamp = harness.now;
    let results = harness.create_accounts(&[account(1), account(2), account(3)]);
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.status, S::Created);
        assert_eq!(result.timestamp, timestamp + index as u64);
    }
    let stored = harness.ledger.lookup_accounts(&[1, 2, 3]);
    let timestamps: Vec<u64> = stored.iter().map(|account| account.timestamp).collect();
    assert_eq!(timestamps, vec![timestamp, timestamp + 1, timestamp + 2]);
}

#[test]
fn failed_account_result_carries_the_event_timestamp() {
    let mut harness = Harness::new();
    let timestamp = harness.now;
    let results = harness.create_accounts(&[account(1), account(0), Account { code: 0, ..account(3) }]);
    assert_eq!(results[1], CreateAccountResult { timestamp: timestamp + 1, status: S::IdMustNotBeZero });
    assert_eq!(results[2], CreateAccountResult { timestamp: timestamp + 2, status: S::CodeMustNotBeZero });
}

#[test]
fn exists_result_carries_the_existing_account_timestamp() {
    let mut harness = Harness::new();
    let created_at = harness.now;
    harness.accounts_ok(&[account(1)]);
    let results = harness.create_accounts(&[account(2), account(1)]);
    assert_eq!(results[1], CreateAccountResult { timestamp: created_at, status: S::Exists });
}

#[test]
fn exists_ignores_balance_fields_of_the_resubmitted_account() {
    // create_accounts.md, `exists`: the existing account may differ in the four balance fields.
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[transfer(10, 1, 2, 7)]);
    assert_eq!(harness.account_status(account(1)), S::Exists);
    assert_eq!(harness.account_status(Account { credits_posted: 99, ..account(2) }), S::Exists);
    assert_eq!(harness.balances(2), (0, 0, 0, 7));
}

#[test]
fn same_id_twice_in_one_batch_gives_created_then_exists() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[account(1), account(1)]);
    assert_eq!(statuses, vec![S::Created, S::Exists]);
}

#[test]
fn account_may_be_created_closed() {
    // account.md, `flags.closed`: the flag can be set during account creation.
    let mut harness = Harness::new();
    assert_eq!(harness.account_status(account_with(1, AccountFlags::CLOSED)), S::Created);
    assert!(harness.is_closed(1));
}

#[test]
fn every_account_flag_but_the_exclusive_pair_is_accepted() {
    let mut harness = Harness::new();
    let flags = AccountFlags::HISTORY | AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CLOSED;
    assert_eq!(harness.account_status(account_with(1, flags)), S::Created);
    assert_eq!(harness.account(1).flags, flags);
}

#[test]
fn zero_user_data_and_any_nonzero_ledger_and_code_are_fine() {
    let mut harness = Harness::new();
    let edge = Account { ledger: u32::MAX, code: u16::MAX, ..account(1) };
    assert_eq!(harness.account_status(edge), S::Created);
    assert_eq!(harness.account(1).ledger, u32::MAX);
}
