//! Two-phase transfers (TigerBeetle's `docs/coding/two-phase-transfers.md` and the `amount`,
//! `timeout` and post/void field rules of `docs/reference/transfer.md`): pending, post (full with
//! AMOUNT_MAX, partial, zero), void (0 or the exact amount), and expiry driven only by batch
//! timestamps.

use crate::common::*;
use tally_ledger::*;

use CreateTransferStatus as S;

/// Accounts 1 and 2 (1 with history), and pending transfer 100 of 123 from 1 to 2.
fn with_pending_123(timeout: u32) -> Harness {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::HISTORY), account_with(2, AccountFlags::HISTORY)]);
    harness.transfers_ok(&[Transfer {
        user_data_128: 7,
        user_data_64: 8,
        user_data_32: 9,
        ..pending(100, 1, 2, 123, timeout)
    }]);
    harness
}

#[test]
fn pending_reserves_without_posting() {
    let harness = with_pending_123(0);
    assert_eq!(harness.balances(1), (123, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 123, 0));
}

#[test]
fn post_full_amount_with_amount_max() {
    let mut harness = with_pending_123(0);
    let timestamp = harness.now;
    assert_eq!(harness.transfer_status(post(10, 100, AMOUNT_MAX)), S::Created);
    assert_eq!(harness.balances(1), (0, 123, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 123));
    // The post is stored with the pending transfer's amount, accounts, ledger, code and user
    // data (the zero fields were inherited).
    let stored = harness.transfer(10).unwrap();
    assert_eq!(
        stored,
        Transfer {
            id: 10,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 123,
            pending_id: 100,
            user_data_128: 7,
            user_data_64: 8,
            user_data_32: 9,
            timeout: 0,
            ledger: LEDGER,
            code: CODE,
            flags: TransferFlags::POST_PENDING_TRANSFER,
            timestamp,
        }
    );
    // The pending transfer itself is immutable.
    let pending_transfer = harness.transfer(100).unwrap();
    assert_eq!(pending_transfer.amount, 123);
    assert_eq!(pending_transfer.flags, TransferFlags::PENDING);
}

#[test]
fn post_exact_amount_posts_everything() {
    let mut harness = with_pending_123(0);
    assert_eq!(harness.transfer_status(post(10, 100, 123)), S::Created);
    assert_eq!(harness.balances(1), (0, 123, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 123));
}

#[test]
fn post_partial_amount_releases_the_rest() {
    let mut harness = with_pending_123(0);
    assert_eq!(harness.transfer_status(post(10, 100, 100)), S::Created);
    assert_eq!(harness.balances(1), (0, 100, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 100));
    assert_eq!(harness.transfer(10).unwrap().amount, 100);
    // Resolved once: the released remainder can't be posted later.
    assert_eq!(harness.transfer_status(post(11, 100, 23)), S::PendingTransferAlreadyPosted);
}

#[test]
fn post_zero_amount_posts_nothing_and_releases_everything() {
    // 0.16: only AMOUNT_MAX means "the whole amount"; 0 is an ordinary (smallest) partial amount.
    let mut harness = with_pending_123(0);
    assert_eq!(harness.transfer_status(post(10, 100, 0)), S::Created);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    assert_eq!(harness.transfer(10).unwrap().amount, 0);
}

#[test]
fn post_with_explicit_matching_fields() {
    let mut harness = with_pending_123(0);
    let explicit = Transfer {
        debit_account_id: 1,
        credit_account_id: 2,
        ledger: LEDGER,
        code: CODE,
        user_data_128: 70,
        ..post(10, 100, 50)
    };
    assert_eq!(harness.transfer_status(explicit), S::Created);
    let stored = harness.transfer(10).unwrap();
    // A nonzero user_data is kept; zero ones are inherited.
    assert_eq!((stored.user_data_128, stored.user_data_64, stored.user_data_32), (70, 8, 9));
}

#[test]
fn void_with_zero_amount_voids_everything() {
    let mut harness = with_pending_123(0);
    assert_eq!(harness.transfer_status(void(10, 100, 0)), S::Created);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    let stored = harness.transfer(10).unwrap();
    assert_eq!(stored.amount, 123);
    assert_eq!((stored.debit_account_id, stored.credit_account_id), (1, 2));
    assert_eq!(stored.flags, TransferFlags::VOID_PENDING_TRANSFER);
}

#[test]
fn void_with_exact_amount() {
    let mut harness = with_pending_123(0);
    assert_eq!(harness.transfer_status(void(10, 100, 123)), S::Created);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
}

#[test]
fn void_amount_max_exceeds_the_pending_amount() {
    // AMOUNT_MAX means "everything" only for posts; a void's amount must be 0 or exact.
    let mut harness = with_pending_123(0);
    assert_eq!(harness.transfer_status(void(10, 100, AMOUNT_MAX)), S::ExceedsPendingTransferAmount);
}

#[test]
fn post_and_void_keep_other_pending_transfers_reserved() {
    let mut harness = with_pending_123(0);
    harness.transfers_ok(&[pending(101, 1, 2, 7, 0)]);
    harness.transfers_ok(&[void(10, 100, 0)]);
    assert_eq!(harness.balances(1), (7, 0, 0, 0));
    harness.transfers_ok(&[post(11, 101, AMOUNT_MAX)]);
    assert_eq!(harness.balances(1), (0, 7, 0, 0));
}

#[test]
fn post_does_not_recheck_balance_limits() {
    // The pending amount was checked when reserved; posting can't break a limit.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2), account(3)]);
    harness.fund(1, 3, 1, 100);
    harness.transfers_ok(&[pending(100, 1, 2, 100, 0)]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 1)), S::ExceedsCredits);
    assert_eq!(harness.transfer_status(post(11, 100, AMOUNT_MAX)), S::Created);
    assert_eq!(harness.balances(1), (0, 100, 0, 100));
}

#[test]
fn pessimistic_pending_transfer_fails_when_reserving() {
    // two-phase-transfers.md: credits_posted 100, debits_posted 70; a pending 50 fails at once.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2)]);
    harness.transfers_ok(&[transfer(1, 2, 1, 100), transfer(2, 1, 2, 70)]);
    assert_eq!(harness.transfer_status(pending(10, 1, 2, 50, 0)), S::ExceedsCredits);
    assert_eq!(harness.transfer_status(pending(11, 1, 2, 30, 0)), S::Created);
    // Now everything is used: even a single-phase transfer of 1 fails.
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 1)), S::ExceedsCredits);
}

#[test]
fn pending_transfer_expires_only_when_a_later_batch_reaches_its_expiry() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    let created_at = harness.now;
    harness.transfers_ok(&[pending(100, 1, 2, 50, 2)]);
    let expires_at = created_at + 2 * SECOND_NS;
    // Queries don't move time: still reserved.
    assert_eq!(harness.balances(1), (50, 0, 0, 0));
    // A batch before the expiry leaves it reserved.
    harness.set_now(expires_at - 2_000);
    harness.transfers_ok(&[transfer(10, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (50, 0, 0, 0));
    // A batch at the expiry releases it first, whatever the batch holds.
    harness.set_now(expires_at);
    harness.transfers_ok(&[transfer(11, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    assert_eq!(harness.transfer_status(post(12, 100, AMOUNT_MAX)), S::PendingTransferExpired);
    assert_eq!(harness.transfer_status(void(13, 100, 0)), S::PendingTransferExpired);
    // The pending transfer itself stays stored.
    assert_eq!(harness.transfer(100).unwrap().amount, 50);
}

#[test]
fn post_just_before_expiry_succeeds() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let created_at = harness.now;
    harness.transfers_ok(&[pending(100, 1, 2, 50, 1)]);
    harness.set_now(created_at + SECOND_NS - 1);
    assert_eq!(harness.transfer_status(post(10, 100, AMOUNT_MAX)), S::Created);
    assert_eq!(harness.balances(1), (0, 50, 0, 0));
    // Posted before expiry: passing the expiry later changes nothing.
    harness.advance_seconds(10);
    harness.transfers_ok(&[transfer(11, 2, 1, 1)]);
    assert_eq!(harness.balances(1), (0, 50, 0, 1));
}

#[test]
fn post_at_an_event_timestamp_at_or_past_expiry_is_expired() {
    // The batch starts before the expiry, but the post's own event timestamp is the expiry.
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    let created_at = harness.now;
    harness.transfers_ok(&[pending(100, 1, 2, 50, 1)]);
    let expires_at = created_at + SECOND_NS;
    harness.set_now(expires_at - 1);
    let statuses = harness.transfer_statuses(&[transfer(10, 3, 4, 1), post(11, 100, AMOUNT_MAX)]);
    assert_eq!(statuses, vec![S::Created, S::PendingTransferExpired]);
    // By the next batch it has expired and released its amounts.
    harness.transfers_ok(&[transfer(12, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
}

#[test]
fn expiry_releases_only_the_expired_transfers() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    harness.transfers_ok(&[pending(100, 1, 2, 1, 1), pending(101, 1, 2, 10, 3), pending(102, 1, 2, 100, 0)]);
    harness.advance_seconds(2);
    harness.transfers_ok(&[transfer(10, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (110, 0, 0, 0));
    harness.advance_seconds(2);
    harness.transfers_ok(&[transfer(11, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (100, 0, 0, 0));
    // No timeout: never expires.
    harness.advance_seconds(1_000_000);
    harness.transfers_ok(&[transfer(12, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (100, 0, 0, 0));
    assert_eq!(harness.transfer_status(post(13, 102, AMOUNT_MAX)), S::Created);
}

#[test]
fn expired_amount_frees_the_balance_limit() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2), account(3)]);
    harness.fund(1, 3, 1, 10);
    harness.transfers_ok(&[pending(100, 1, 2, 10, 1)]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 10)), S::ExceedsCredits);
    harness.advance_seconds(1);
    // The expiry runs before this batch, so the same amount fits now (under a new id: 10 failed
    // transiently).
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 10)), S::Created);
}

#[test]
fn expiry_is_recorded_in_the_balance_history() {
    // Tally records an `AccountBalance` when an expiry releases a history account's pending
    // amounts (see the report: TigerBeetle's get_account_balances.md says expiries don't change
    // historical balances).
    let mut harness = with_pending_123(1);
    let pending_at = harness.transfer(100).unwrap().timestamp;
    harness.advance_seconds(2);
    let batch_at = harness.now;
    harness.accounts_ok(&[account(3), account(4)]);
    harness.transfers_ok(&[transfer(10, 3, 4, 1)]);
    let history = harness.ledger.get_account_balances(account_filter(1));
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0], AccountBalance { debits_pending: 123, timestamp: pending_at, ..AccountBalance::default() });
    assert_eq!((history[1].debits_pending, history[1].debits_posted), (0, 0));
    assert!(history[1].timestamp >= pending_at + SECOND_NS && history[1].timestamp <= batch_at + 10_000);
    let history = harness.ledger.get_account_balances(account_filter(2));
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].credits_pending, 0);
}

#[test]
fn balance_history_after_each_step_of_a_two_phase_transfer() {
    let mut harness = with_pending_123(0);
    harness.transfers_ok(&[post(10, 100, 100)]);
    let pending_at = harness.transfer(100).unwrap().timestamp;
    let post_at = harness.transfer(10).unwrap().timestamp;
    assert_eq!(
        harness.ledger.get_account_balances(account_filter(1)),
        vec![
            AccountBalance { debits_pending: 123, timestamp: pending_at, ..AccountBalance::default() },
            AccountBalance { debits_posted: 100, timestamp: post_at, ..AccountBalance::default() },
        ]
    );
    assert_eq!(
        harness.ledger.get_account_balances(account_filter(2)),
        vec![
            AccountBalance { credits_pending: 123, timestamp: pending_at, ..AccountBalance::default() },
            AccountBalance { credits_posted: 100, timestamp: post_at, ..AccountBalance::default() },
        ]
    );
}

#[test]
fn pending_transfer_with_balancing_reserves_the_clamped_amount() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.fund(1, 3, 1, 40);
    let flags = TransferFlags::PENDING | TransferFlags::BALANCING_DEBIT;
    assert_eq!(harness.transfer_status(transfer_with(10, 1, 2, AMOUNT_MAX, flags)), S::Created);
    assert_eq!(harness.transfer(10).unwrap().amount, 40);
    assert_eq!(harness.balances(1), (40, 0, 0, 40));
    assert_eq!(harness.transfer_status(post(11, 10, AMOUNT_MAX)), S::Created);
    assert_eq!(harness.balances(1), (0, 40, 0, 40));
}

#[test]
fn resolving_twice_in_one_batch() {
    let mut harness = with_pending_123(0);
    let statuses = harness.transfer_statuses(&[post(10, 100, 1), void(11, 100, 0), post(12, 100, 1)]);
    assert_eq!(statuses, vec![S::Created, S::PendingTransferAlreadyPosted, S::PendingTransferAlreadyPosted]);
}

#[test]
fn zero_amount_pending_transfer_posts_and_voids() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(100, 1, 2, 0, 0), pending(101, 1, 2, 0, 0)]);
    assert_eq!(harness.transfer_status(post(10, 100, AMOUNT_MAX)), S::Created);
    assert_eq!(harness.transfer(10).unwrap().amount, 0);
    assert_eq!(harness.transfer_status(void(11, 101, 0)), S::Created);
    assert_eq!(harness.transfer_status(post(12, 101, 0)), S::PendingTransferAlreadyVoided);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
}

#[test]
fn retried_post_and_void_are_compared_field_by_field() {
    // An explicit field equal to the stored one is the same request; a different one is not.
    let mut harness = with_pending_123(0);
    harness.transfers_ok(&[pending(101, 1, 2, 50, 0)]);
    harness.transfers_ok(&[post(10, 100, 100), void(11, 101, 0)]);
    let explicit =
        Transfer { debit_account_id: 1, credit_account_id: 2, ledger: LEDGER, code: CODE, ..post(10, 100, 100) };
    assert_eq!(harness.transfer_status(explicit), S::Exists);
    assert_eq!(
        harness.transfer_status(Transfer { debit_account_id: 2, ..post(10, 100, 100) }),
        S::ExistsWithDifferentDebitAccountId
    );
    assert_eq!(
        harness.transfer_status(Transfer { credit_account_id: 1, ..post(10, 100, 100) }),
        S::ExistsWithDifferentCreditAccountId
    );
    assert_eq!(
        harness.transfer_status(Transfer { ledger: LEDGER + 1, ..post(10, 100, 100) }),
        S::ExistsWithDifferentLedger
    );
    assert_eq!(harness.transfer_status(Transfer { code: CODE + 1, ..post(10, 100, 100) }), S::ExistsWithDifferentCode);
    // The partial post stored 100: another amount differs.
    assert_eq!(harness.transfer_status(post(10, 100, 99)), S::ExistsWithDifferentAmount);
    // The void stored the whole 50: 0 and 50 are the same request.
    assert_eq!(harness.transfer_status(void(11, 101, 50)), S::Exists);
    assert_eq!(harness.transfer_status(void(11, 101, 0)), S::Exists);
    assert_eq!(harness.transfer_status(post(11, 101, 0)), S::ExistsWithDifferentFlags);
    assert_eq!(harness.transfer_status(void(11, 100, 0)), S::ExistsWithDifferentPendingId);
}

#[test]
fn retried_full_post_differs_from_a_stored_partial_post() {
    let mut harness = with_pending_123(0);
    harness.transfers_ok(&[post(10, 100, 100)]);
    assert_eq!(harness.transfer_status(post(10, 100, AMOUNT_MAX)), S::ExistsWithDifferentAmount);
    // And a full post retried with the exact pending amount is the same request.
    harness.transfers_ok(&[pending(101, 1, 2, 50, 0), post(11, 101, AMOUNT_MAX)]);
    assert_eq!(harness.transfer_status(post(11, 101, 50)), S::Exists);
}

#[test]
fn expiry_also_runs_before_an_account_batch() {
    // Expiry is driven by batch timestamps, whichever kind of batch comes next.
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 1)]);
    harness.advance_seconds(1);
    harness.accounts_ok(&[account(3)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.transfer_status(post(10, 100, AMOUNT_MAX)), S::PendingTransferExpired);
}

#[test]
fn many_pending_transfers_expiring_together() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    let batch: Vec<Transfer> = (100..200u128).map(|id| pending(id, 1, 2, 1, 1)).collect();
    harness.transfers_ok(&batch);
    assert_eq!(harness.balances(1), (100, 0, 0, 0));
    harness.advance_seconds(1);
    harness.transfers_ok(&[transfer(10, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
}

#[test]
fn voided_or_posted_pending_transfer_does_not_expire_later() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 1), pending(101, 1, 2, 7, 1), pending(102, 1, 2, 3, 5)]);
    harness.transfers_ok(&[void(10, 100, 0), post(11, 101, 4)]);
    assert_eq!(harness.balances(1), (3, 4, 0, 0));
    harness.advance_seconds(2);
    harness.transfers_ok(&[transfer(12, 3, 4, 1)]);
    // Only 102 is still pending, and it has not reached its expiry.
    assert_eq!(harness.balances(1), (3, 4, 0, 0));
    harness.advance_seconds(5);
    harness.transfers_ok(&[transfer(13, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 4, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 4));
}

#[test]
fn voided_closing_transfer_with_a_timeout_does_not_expire_later() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    let closing =
        Transfer { timeout: 1, ..transfer_with(100, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT) };
    harness.transfers_ok(&[closing]);
    harness.transfers_ok(&[void(10, 100, 0)]);
    assert!(!harness.is_closed(1));
    // Close it again with another closing transfer (no timeout); the first one's expiry time
    // passing must not re-open it.
    harness.transfers_ok(&[transfer_with(101, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT)]);
    harness.advance_seconds(2);
    harness.transfers_ok(&[transfer(11, 3, 4, 1)]);
    assert!(harness.is_closed(1));
}
