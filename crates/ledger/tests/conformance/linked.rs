//! Linked chains (TigerBeetle's `docs/coding/linked-events.md`): a chain succeeds or fails as a
//! unit, the first failing event keeps its own status and the others get `LinkedEventFailed`,
//! effects inside a chain are visible to its later events, and independent chains don't interact.

use crate::common::*;
use tally_ledger::*;

use CreateAccountStatus as A;
use CreateTransferStatus as S;

#[test]
fn account_chain_succeeds_as_a_unit() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[linked_account(account(1)), linked_account(account(2)), account(3)]);
    assert_eq!(statuses, vec![A::Created; 3]);
    assert_eq!(account_ids(&harness.ledger.lookup_accounts(&[1, 2, 3])), vec![1, 2, 3]);
    // The chain's flag is stored as given (it is part of the account).
    assert!(harness.account(1).flags.contains(AccountFlags::LINKED));
}

#[test]
fn account_chain_failure_rolls_back_and_frees_the_ids() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[
        account(9),
        linked_account(account(1)),
        linked_account(account(2)),
        Account { code: 0, ..account(3) },
        account(4),
    ]);
    assert_eq!(
        statuses,
        vec![A::Created, A::LinkedEventFailed, A::LinkedEventFailed, A::CodeMustNotBeZero, A::Created]
    );
    assert!(harness.ledger.lookup_accounts(&[1, 2, 3]).is_empty());
    assert_eq!(account_ids(&harness.ledger.lookup_accounts(&[9, 4])), vec![9, 4]);
    // The rolled-back ids are free.
    assert_eq!(harness.account_statuses(&[account(1), account(2), account(3)]), vec![A::Created; 3]);
}

#[test]
fn account_chain_events_after_the_failure_fail_too() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[
        linked_account(account(1)),
        linked_account(account(0)),
        linked_account(account(2)),
        account(3),
    ]);
    assert_eq!(statuses, vec![A::LinkedEventFailed, A::IdMustNotBeZero, A::LinkedEventFailed, A::LinkedEventFailed]);
    assert!(harness.ledger.lookup_accounts(&[1, 2, 3]).is_empty());
}

#[test]
fn account_exists_breaks_a_chain_like_any_status_other_than_created() {
    // TigerBeetle reports `exists` as a result distinct from `ok`; inside a chain it is the
    // chain's first failure, so the chain's other events are `linked_event_failed`.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1)]);
    let statuses = harness.account_statuses(&[linked_account(account(2)), account(1)]);
    assert_eq!(statuses, vec![A::LinkedEventFailed, A::Exists]);
    assert!(harness.ledger.lookup_accounts(&[2]).is_empty());
}

#[test]
fn account_chain_with_a_duplicate_of_its_own_account_sees_the_earlier_event() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[linked_account(account(1)), Account { code: CODE + 1, ..account(1) }]);
    // The second event sees the first (created in the same chain) and differs from it, first of
    // all in `flags.linked`.
    assert_eq!(statuses, vec![A::LinkedEventFailed, A::ExistsWithDifferentFlags]);
    assert!(harness.ledger.lookup_accounts(&[1]).is_empty());
}

#[test]
fn account_chain_open_at_the_end_of_the_batch() {
    let mut harness = Harness::new();
    let statuses = harness.account_statuses(&[account(1), linked_account(account(2)), linked_account(account(3))]);
    assert_eq!(statuses, vec![A::Created, A::LinkedEventFailed, A::LinkedEventChainOpen]);
    assert_eq!(account_ids(&harness.ledger.lookup_accounts(&[1, 2, 3])), vec![1]);
}

#[test]
fn transfer_chain_succeeds_as_a_unit() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    let statuses = harness.transfer_statuses(&[
        linked(transfer(10, 1, 2, 10)),
        linked(transfer(11, 2, 3, 4)),
        transfer(12, 3, 1, 1),
    ]);
    assert_eq!(statuses, vec![S::Created; 3]);
    assert_eq!(harness.balances(1), (0, 10, 0, 1));
    assert_eq!(harness.balances(2), (0, 4, 0, 10));
    assert_eq!(harness.balances(3), (0, 1, 0, 4));
}

#[test]
fn transfer_chain_failure_rolls_back_balances_lookups_and_ids() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), account(2), account_with(3, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)]);
    let accounts_before = harness.ledger.lookup_accounts(&[1, 2, 3]);
    let timestamp = harness.now;
    let results = harness.create_transfers(&[
        linked(transfer(10, 1, 2, 10)),
        linked(pending(11, 1, 2, 7, 0)),
        transfer(12, 3, 1, 1),
    ]);
    let statuses: Vec<S> = results.iter().map(|result| result.status).collect();
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::LinkedEventFailed, S::ExceedsCredits]);
    // Failed events report the timestamp they were given.
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.timestamp, timestamp + index as u64);
    }
    assert_eq!(harness.ledger.lookup_accounts(&[1, 2, 3]), accounts_before);
    assert!(harness.ledger.lookup_transfers(&[10, 11, 12]).is_empty());
    assert!(harness.ledger.get_account_transfers(account_filter(1)).is_empty());
    assert!(harness.ledger.query_transfers(query_filter()).is_empty());
    // The ids of the rolled-back events were never used: they can be created now.
    assert_eq!(
        harness.transfer_statuses(&[transfer(10, 1, 2, 10), pending(11, 1, 2, 7, 0)]),
        vec![S::Created, S::Created]
    );
}

#[test]
fn transfer_chain_events_after_the_failure_fail_too() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[
        transfer(9, 1, 2, 1),
        linked(transfer(10, 1, 2, 1)),
        linked(transfer(11, 1, 1, 1)),
        linked(transfer(12, 1, 2, 1)),
        transfer(13, 1, 2, 1),
        transfer(14, 1, 2, 1),
    ]);
    assert_eq!(
        statuses,
        vec![
            S::Created,
            S::LinkedEventFailed,
            S::AccountsMustBeDifferent,
            S::LinkedEventFailed,
            S::LinkedEventFailed,
            S::Created,
        ]
    );
    assert_eq!(transfer_ids(&harness.ledger.lookup_transfers(&[9, 10, 11, 12, 13, 14])), vec![9, 14]);
    assert_eq!(harness.balances(1), (0, 2, 0, 0));
}

#[test]
fn transfer_chain_effects_are_visible_to_later_events_of_the_chain() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2), account(3)]);
    // Account 1 can only spend what the chain's first event gives it.
    let statuses = harness.transfer_statuses(&[linked(transfer(10, 2, 1, 10)), transfer(11, 1, 3, 10)]);
    assert_eq!(statuses, vec![S::Created, S::Created]);
    // A pending transfer and its post in one chain.
    let statuses = harness.transfer_statuses(&[linked(pending(20, 2, 3, 5, 0)), post(21, 20, AMOUNT_MAX)]);
    assert_eq!(statuses, vec![S::Created, S::Created]);
    assert_eq!(harness.balances(3), (0, 0, 0, 15));
}

#[test]
fn transfer_chain_rollback_is_invisible_to_later_events() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2), account(3)]);
    let statuses = harness.transfer_statuses(&[
        linked(transfer(10, 2, 1, 10)),
        transfer(11, 1, 3, 20),
        // Independent: the 10 credited above was rolled back.
        transfer(12, 1, 3, 5),
    ]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::ExceedsCredits, S::ExceedsCredits]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
}

#[test]
fn transfer_chain_rollback_restores_a_pending_transfer_it_posted() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 0)]);
    let statuses = harness.transfer_statuses(&[linked(post(10, 100, 20)), transfer(11, 1, 1, 1)]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::AccountsMustBeDifferent]);
    assert_eq!(harness.balances(1), (50, 0, 0, 0));
    // The pending transfer is still pending: it can be posted now.
    assert_eq!(harness.transfer_status(post(12, 100, 20)), S::Created);
    assert_eq!(harness.balances(1), (0, 20, 0, 0));
}

#[test]
fn transfer_chain_rollback_reopens_an_account_it_closed() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[
        linked(transfer_with(10, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT)),
        transfer(11, 2, 2, 1),
    ]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::AccountsMustBeDifferent]);
    assert!(!harness.is_closed(1));
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 1)), S::Created);
}

#[test]
fn transfer_chain_open_at_the_end_of_the_batch() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[
        transfer(9, 1, 2, 1),
        linked(transfer(10, 1, 2, 1)),
        linked(transfer(11, 1, 2, 1)),
    ]);
    assert_eq!(statuses, vec![S::Created, S::LinkedEventFailed, S::LinkedEventChainOpen]);
    assert_eq!(transfer_ids(&harness.ledger.lookup_transfers(&[9, 10, 11])), vec![9]);
    assert_eq!(harness.balances(1), (0, 1, 0, 0));
    // A batch of one linked event is an open chain too.
    assert_eq!(harness.transfer_status(linked(transfer(12, 1, 2, 1))), S::LinkedEventChainOpen);
}

#[test]
fn independent_chains_in_one_batch() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let statuses = harness.transfer_statuses(&[
        linked(transfer(10, 1, 2, 1)),
        transfer(11, 1, 2, 2),
        linked(transfer(12, 1, 2, 4)),
        transfer(13, 1, 9, 8),
        linked(transfer(14, 1, 2, 16)),
        linked(transfer(15, 1, 2, 32)),
        transfer(16, 1, 2, 64),
        transfer(17, 1, 2, 128),
    ]);
    assert_eq!(
        statuses,
        vec![
            S::Created,
            S::Created,
            S::LinkedEventFailed,
            S::CreditAccountNotFound,
            S::Created,
            S::Created,
            S::Created,
            S::Created,
        ]
    );
    assert_eq!(harness.balances(1), (0, 1 + 2 + 16 + 32 + 64 + 128, 0, 0));
}

#[test]
fn transfer_exists_breaks_a_chain_like_any_status_other_than_created() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[linked(transfer(10, 1, 2, 1)), transfer(11, 1, 2, 2)]);
    // Re-submitting the chain's first event, linked to a new one.
    let statuses = harness.transfer_statuses(&[linked(transfer(10, 1, 2, 1)), transfer(12, 1, 2, 4)]);
    assert_eq!(statuses, vec![S::Exists, S::LinkedEventFailed]);
    assert!(harness.transfer(12).is_none());
    assert_eq!(harness.balances(1), (0, 3, 0, 0));
}

#[test]
fn linked_event_failed_is_not_transient() {
    // Events that failed only because their chain failed can be retried.
    assert!(!S::LinkedEventFailed.is_transient());
    assert!(!S::LinkedEventChainOpen.is_transient());
    let mut harness = Harness::with_accounts(&[1, 2]);
    assert_eq!(
        harness.transfer_statuses(&[transfer(10, 1, 2, 1), linked(transfer(11, 1, 2, 1))]),
        vec![S::Created, S::LinkedEventChainOpen]
    );
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 1)), S::Created);
}

#[test]
fn rolled_back_pending_transfer_never_expires() {
    // A pending transfer with a timeout, created and rolled back in one chain, leaves nothing to
    // expire later.
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    let statuses = harness.transfer_statuses(&[linked(pending(100, 1, 2, 50, 1)), transfer(11, 1, 1, 1)]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::AccountsMustBeDifferent]);
    harness.advance_seconds(2);
    harness.transfers_ok(&[transfer(12, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    // The id is free, and a new pending transfer under it behaves normally.
    harness.transfers_ok(&[pending(100, 1, 2, 5, 1)]);
    assert_eq!(harness.balances(1), (5, 0, 0, 0));
    harness.advance_seconds(2);
    harness.transfers_ok(&[transfer(13, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
}

#[test]
fn rolled_back_post_leaves_the_pending_transfer_to_expire() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    harness.transfers_ok(&[pending(100, 1, 2, 50, 2)]);
    let statuses = harness.transfer_statuses(&[linked(post(10, 100, AMOUNT_MAX)), transfer(11, 1, 1, 1)]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::AccountsMustBeDifferent]);
    assert_eq!(harness.balances(1), (50, 0, 0, 0));
    harness.advance_seconds(2);
    harness.transfers_ok(&[transfer(12, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    assert_eq!(harness.transfer_status(post(13, 100, AMOUNT_MAX)), S::PendingTransferExpired);
}

#[test]
fn rolled_back_void_of_a_closing_transfer_keeps_the_account_closed() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[transfer_with(100, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT)]);
    let statuses = harness.transfer_statuses(&[linked(void(10, 100, 0)), transfer(11, 2, 2, 1)]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::AccountsMustBeDifferent]);
    assert!(harness.is_closed(1));
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 1)), S::DebitAccountAlreadyClosed);
    // The void itself is still possible.
    assert_eq!(harness.transfer_status(void(13, 100, 0)), S::Created);
    assert!(!harness.is_closed(1));
}

#[test]
fn rolled_back_chain_leaves_no_balance_history() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::HISTORY), account(2)]);
    let statuses = harness.transfer_statuses(&[
        linked(transfer(10, 1, 2, 5)),
        linked(transfer(11, 2, 1, 2)),
        transfer(12, 9, 1, 1),
    ]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::LinkedEventFailed, S::DebitAccountNotFound]);
    assert!(harness.ledger.get_account_balances(account_filter(1)).is_empty());
    assert!(harness.ledger.get_account_transfers(account_filter(1)).is_empty());
    assert!(harness.ledger.query_transfers(query_filter()).is_empty());
}

#[test]
fn rolled_back_balancing_and_limits_inside_one_chain() {
    // A chain that drains an account with a balancing transfer and then fails leaves the balance.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS), account(2), account(3)]);
    harness.fund(1, 3, 1, 30);
    let statuses = harness.transfer_statuses(&[
        linked(transfer_with(10, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_DEBIT)),
        transfer(11, 1, 2, 1),
    ]);
    assert_eq!(statuses, vec![S::LinkedEventFailed, S::ExceedsCredits]);
    assert_eq!(harness.balances(1), (0, 0, 0, 30));
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 30)), S::Created);
}
