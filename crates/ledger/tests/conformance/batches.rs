//! Whole-batch refusals: more than `BATCH_EVENTS_MAX` (8,190) events, or a batch timestamp that
//! does not advance past the previous batch's last event. `try_create_*` return a `BatchError`;
//! `create_*` panic (a programming error, not a ledger outcome).

use crate::common::*;
use tally_ledger::*;

fn accounts(count: usize) -> Vec<Account> {
    (1..=count as u128).map(account).collect()
}

fn transfers(count: usize) -> Vec<Transfer> {
    (1..=count as u128).map(|id| transfer(id, 1, 2, 1)).collect()
}

#[test]
fn batch_events_max_is_tigerbeetles() {
    assert_eq!(BATCH_EVENTS_MAX, 8_190);
}

#[test]
fn too_long_account_batch_is_refused_as_a_whole() {
    let mut ledger = Ledger::new();
    let digest = ledger.digest();
    let result = ledger.try_create_accounts(T0, &accounts(BATCH_EVENTS_MAX + 1));
    assert_eq!(result, Err(BatchError::TooLong { events: 8_191, max: 8_190 }));
    assert!(ledger.lookup_accounts(&[1, 8_191]).is_empty());
    assert_eq!(ledger.digest(), digest);
    // The refused batch used no time: the same timestamp works for a valid batch.
    assert_eq!(ledger.try_create_accounts(T0, &accounts(1)).unwrap()[0].status, CreateAccountStatus::Created);
}

#[test]
fn too_long_transfer_batch_is_refused_as_a_whole() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let timestamp = harness.now;
    let result = harness.ledger.try_create_transfers(timestamp, &transfers(BATCH_EVENTS_MAX + 1));
    assert_eq!(result, Err(BatchError::TooLong { events: 8_191, max: 8_190 }));
    assert!(harness.ledger.lookup_transfers(&[1]).is_empty());
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
}

#[test]
#[should_panic]
fn too_long_account_batch_panics_in_create_accounts() {
    let mut ledger = Ledger::new();
    ledger.create_accounts(T0, &accounts(BATCH_EVENTS_MAX + 1));
}

#[test]
#[should_panic]
fn too_long_transfer_batch_panics_in_create_transfers() {
    let mut ledger = Ledger::new();
    ledger.create_transfers(T0, &transfers(BATCH_EVENTS_MAX + 1));
}

#[test]
fn full_batches_are_accepted() {
    let mut harness = Harness::new();
    let results = harness.create_accounts(&accounts(BATCH_EVENTS_MAX));
    assert!(results.iter().all(|result| result.status == CreateAccountStatus::Created));
    let results = harness.create_transfers(&transfers(BATCH_EVENTS_MAX));
    assert!(results.iter().all(|result| result.status == CreateTransferStatus::Created));
    assert_eq!(harness.balances(1), (0, BATCH_EVENTS_MAX as u128, 0, 0));
    assert_eq!(harness.account(8_190).timestamp, T0 + 8_189);
}

#[test]
fn next_batch_must_start_after_the_previous_batchs_last_event() {
    let mut ledger = Ledger::new();
    ledger.create_accounts(1_000, &accounts(3)); // events at 1_000, 1_001, 1_002
    for timestamp in [999, 1_000, 1_002] {
        let result = ledger.try_create_transfers(timestamp, &[transfer(10, 1, 2, 1)]);
        assert!(matches!(result, Err(BatchError::TimestampRegressed { .. })), "{timestamp}: {result:?}");
        let result = ledger.try_create_accounts(timestamp, &[account(9)]);
        assert!(matches!(result, Err(BatchError::TimestampRegressed { .. })), "{timestamp}: {result:?}");
    }
    assert!(ledger.lookup_transfers(&[10]).is_empty());
    assert!(ledger.lookup_accounts(&[9]).is_empty());
    let results = ledger.try_create_transfers(1_003, &[transfer(10, 1, 2, 1)]).unwrap();
    assert_eq!(results[0], CreateTransferResult { timestamp: 1_003, status: CreateTransferStatus::Created });
}

#[test]
#[should_panic]
fn batch_timestamp_not_advancing_panics_in_create_transfers() {
    let mut ledger = Ledger::new();
    ledger.create_accounts(1_000, &accounts(3));
    ledger.create_transfers(1_002, &[transfer(10, 1, 2, 1)]);
}

#[test]
#[should_panic]
fn batch_timestamp_not_advancing_panics_in_create_accounts() {
    let mut ledger = Ledger::new();
    ledger.create_accounts(1_000, &accounts(1));
    ledger.create_accounts(1_000, &[account(2)]);
}

#[test]
fn batch_timestamps_advance_across_failed_events_too() {
    // Every event takes its timestamp, whatever its outcome.
    let mut ledger = Ledger::new();
    ledger.create_accounts(1_000, &[account(0), account(0)]);
    assert!(ledger.try_create_accounts(1_001, &[account(1)]).is_err());
    assert!(ledger.try_create_accounts(1_002, &[account(1)]).is_ok());
}

#[test]
fn batch_whose_events_would_pass_the_largest_timestamp_is_refused() {
    let mut ledger = Ledger::new();
    assert!(ledger.try_create_accounts(TIMESTAMP_MAX - 1, &accounts(3)).is_err());
    assert!(ledger.lookup_accounts(&[1]).is_empty());
}
