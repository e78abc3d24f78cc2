//! Imported events (`Account.flags.imported`, `Transfer.flags.imported`): user-defined timestamps
//! that must be in the past, strictly increasing per kind, unique across objects, and after the
//! accounts a transfer touches.

use crate::accounts::imported;
use crate::common::*;
use crate::transfers::{imported_transfer, with_imported_accounts};
use tally_ledger::*;

use CreateAccountStatus as A;
use CreateTransferStatus as S;

#[test]
fn imported_accounts_keep_their_user_timestamps() {
    let mut harness = Harness::new();
    let results = harness.create_accounts(&[imported(1, 100), imported(2, 200)]);
    assert_eq!(results[0], CreateAccountResult { timestamp: 100, status: A::Created });
    assert_eq!(results[1], CreateAccountResult { timestamp: 200, status: A::Created });
    let stored = harness.account(1);
    assert_eq!(stored.timestamp, 100);
    assert!(stored.flags.contains(AccountFlags::IMPORTED));
}

#[test]
fn imported_transfers_keep_their_user_timestamps_and_move_balances() {
    let mut harness = with_imported_accounts();
    let results =
        harness.create_transfers(&[imported_transfer(10, 1, 2, 5, 1_000), imported_transfer(11, 2, 1, 2, 1_001)]);
    assert_eq!(results[0], CreateTransferResult { timestamp: 1_000, status: S::Created });
    assert_eq!(results[1], CreateTransferResult { timestamp: 1_001, status: S::Created });
    assert_eq!(harness.transfer(10).unwrap().timestamp, 1_000);
    assert_eq!(harness.balances(1), (0, 5, 0, 2));
    assert_eq!(harness.balances(2), (0, 2, 0, 5));
}

#[test]
fn imported_events_must_increase_within_a_batch() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[imported(1, 300), imported(2, 200), imported(3, 300), imported(4, 301)]);
    assert_eq!(
        statuses,
        vec![A::Created, A::ImportedEventTimestampMustNotRegress, A::ImportedEventTimestampMustNotRegress, A::Created]
    );
}

#[test]
fn imported_timestamps_are_unique_across_accounts_and_transfers() {
    let mut harness = with_imported_accounts(); // accounts at 100 and 200
    harness.transfers_ok(&[imported_transfer(10, 1, 2, 5, 300)]);
    // An account may not take a transfer's timestamp, and a transfer may not take an account's.
    assert_eq!(harness.account_status(imported(3, 300)), A::ImportedEventTimestampMustNotRegress);
    assert_eq!(harness.account_status(imported(3, 400)), A::Created);
    assert_eq!(harness.transfer_status(imported_transfer(11, 1, 2, 5, 400)), S::ImportedEventTimestampMustNotRegress);
    assert_eq!(harness.transfer_status(imported_transfer(12, 1, 2, 5, 401)), S::Created);
}

#[test]
fn imported_events_must_not_predate_regular_ones() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    // The regular accounts got T0 and T0 + 1.
    assert_eq!(harness.account_status(imported(3, T0 - 1)), A::ImportedEventTimestampMustNotRegress);
    assert_eq!(harness.account_status(imported(3, T0 + 2)), A::Created);
    harness.transfers_ok(&[transfer(10, 1, 2, 5)]);
    let regular_at = harness.transfer(10).unwrap().timestamp;
    assert_eq!(
        harness.transfer_status(imported_transfer(11, 1, 2, 5, regular_at - 1)),
        S::ImportedEventTimestampMustNotRegress
    );
    assert_eq!(harness.transfer_status(imported_transfer(11, 1, 2, 5, regular_at + 1)), S::Created);
}

#[test]
fn failed_imported_chain_leaves_the_timestamps_free() {
    // transfer.md recommends importing as one linked chain so that a failure changes nothing.
    let mut harness = with_imported_accounts();
    let statuses = harness
        .transfer_statuses(&[linked(imported_transfer(10, 1, 2, 5, 1_000)), imported_transfer(11, 1, 9, 5, 1_001)]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::CreditAccountNotFound]);
    let statuses = harness
        .transfer_statuses(&[linked(imported_transfer(10, 1, 2, 5, 1_000)), imported_transfer(12, 2, 1, 5, 1_001)]);
    assert_eq!(statuses, vec![S::Created, S::Created]);
}

#[test]
fn imported_pending_transfer_is_resolved_manually() {
    let mut harness = with_imported_accounts();
    let imported_pending =
        Transfer { flags: TransferFlags::IMPORTED | TransferFlags::PENDING, ..imported_transfer(10, 1, 2, 50, 1_000) };
    harness.transfers_ok(&[imported_pending]);
    assert_eq!(harness.balances(1), (50, 0, 0, 0));
    // An imported post...
    let imported_post = Transfer {
        timestamp: 1_001,
        flags: TransferFlags::IMPORTED | TransferFlags::POST_PENDING_TRANSFER,
        ..post(11, 10, 20)
    };
    assert_eq!(harness.transfer_status(imported_post), S::Created);
    assert_eq!(harness.transfer(11).unwrap().timestamp, 1_001);
    assert_eq!(harness.balances(1), (0, 20, 0, 0));
}

#[test]
fn regular_post_of_an_imported_pending_transfer() {
    let mut harness = with_imported_accounts();
    harness.transfers_ok(&[Transfer {
        flags: TransferFlags::IMPORTED | TransferFlags::PENDING,
        ..imported_transfer(10, 1, 2, 50, 1_000)
    }]);
    assert_eq!(harness.transfer_status(void(11, 10, 0)), S::Created);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
}

#[test]
fn imported_timestamp_just_below_the_event_timestamp_is_accepted() {
    let mut harness = Harness::new();
    let event_timestamp = harness.now;
    assert_eq!(harness.account_status(imported(1, event_timestamp - 1)), A::Created);
    assert_eq!(harness.account(1).timestamp, event_timestamp - 1);
}

#[test]
fn imported_timestamp_range_bounds() {
    let mut harness = Harness::new();
    assert_eq!(harness.account_status(imported(1, 1)), A::Created);
    let mut harness = Harness::new();
    assert_eq!(harness.account_status(imported(1, u64::MAX)), A::ImportedEventTimestampOutOfRange);
}

#[test]
fn imported_accounts_may_be_transacted_by_regular_transfers() {
    let mut harness = with_imported_accounts();
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 5)), S::Created);
    assert_eq!(harness.balances(2), (0, 0, 0, 5));
}

#[test]
fn failed_imported_event_reports_its_batch_timestamp() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[imported(1, 500)]);
    let timestamp = harness.now;
    let results = harness.create_accounts(&[imported(2, 600), imported(3, 400)]);
    assert_eq!(results[0], CreateAccountResult { timestamp: 600, status: A::Created });
    assert_eq!(
        results[1],
        CreateAccountResult { timestamp: timestamp + 1, status: A::ImportedEventTimestampMustNotRegress }
    );
}
