//! Balance limits (`flags.debits_must_not_exceed_credits`, `flags.credits_must_not_exceed_debits`),
//! balancing transfers (`docs/reference/transfer.md#flagsbalancing_debit`,
//! `recipes/balance-conditional-transfers.md`) and closing transfers (`flags.closing_debit`,
//! `flags.closing_credit`, `Account.flags.closed`, `recipes/close-account.md`).

use crate::common::*;
use tally_ledger::*;

use CreateTransferStatus as S;

const DEBIT_LIMIT: AccountFlags = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
const CREDIT_LIMIT: AccountFlags = AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;

#[test]
fn debits_must_not_exceed_credits_allows_up_to_the_credits() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, DEBIT_LIMIT), account(2)]);
    harness.fund(1, 2, 1, 100);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 60)), S::Created);
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 41)), S::ExceedsCredits);
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 40)), S::Created);
    assert_eq!(harness.balances(1), (0, 100, 0, 100));
    assert_eq!(harness.transfer_status(transfer(13, 1, 2, 1)), S::ExceedsCredits);
    // Zero always fits.
    assert_eq!(harness.transfer_status(transfer(14, 1, 2, 0)), S::Created);
}

#[test]
fn credits_must_not_exceed_debits_allows_up_to_the_debits() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), account_with(2, CREDIT_LIMIT)]);
    harness.fund(1, 2, 1, 100); // account 2's debits: 100
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 100)), S::Created);
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 1)), S::ExceedsDebits);
    assert_eq!(harness.balances(2), (0, 100, 0, 100));
}

#[test]
fn pending_credits_count_against_the_credit_limit() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), account_with(2, CREDIT_LIMIT)]);
    harness.fund(1, 2, 1, 10);
    harness.transfers_ok(&[pending(10, 1, 2, 6, 0)]);
    assert_eq!(harness.transfer_status(transfer(11, 1, 2, 5)), S::ExceedsDebits);
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 4)), S::Created);
}

#[test]
fn limits_apply_only_to_the_flagged_side() {
    // A debit limit doesn't restrict credits and vice versa.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, DEBIT_LIMIT), account_with(2, CREDIT_LIMIT)]);
    assert_eq!(harness.transfer_status(transfer(10, 2, 1, 1_000)), S::Created);
    assert_eq!(harness.balances(1), (0, 0, 0, 1_000));
    assert_eq!(harness.balances(2), (0, 1_000, 0, 0));
}

#[test]
fn balancing_debit_clamps_to_the_debit_accounts_credits() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(1, 3, 1, 20), transfer(2, 1, 3, 10)]);
    let balancing = transfer_with(10, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_DEBIT);
    assert_eq!(harness.transfer_status(balancing), S::Created);
    let stored = harness.transfer(10).unwrap();
    assert_eq!(stored.amount, 10);
    assert_eq!(stored.flags, TransferFlags::BALANCING_DEBIT);
    assert_eq!(harness.balances(1), (0, 20, 0, 20));
    assert_eq!(harness.balances(2), (0, 0, 0, 10));
}

#[test]
fn balancing_debit_keeps_an_amount_below_the_limit() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.fund(1, 3, 1, 20);
    assert_eq!(harness.transfer_status(transfer_with(10, 1, 2, 7, TransferFlags::BALANCING_DEBIT)), S::Created);
    assert_eq!(harness.transfer(10).unwrap().amount, 7);
    assert_eq!(harness.balances(1), (0, 7, 0, 20));
}

#[test]
fn balancing_debit_counts_pending_debits() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.fund(1, 3, 1, 20);
    harness.transfers_ok(&[pending(10, 1, 2, 15, 0)]);
    harness.transfers_ok(&[transfer_with(11, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_DEBIT)]);
    assert_eq!(harness.transfer(11).unwrap().amount, 5);
}

#[test]
fn balancing_debit_with_nothing_available_moves_zero() {
    // transfer.md#flagsbalancing_debit: "If the highest amount transferable is 0, returns
    // exceeds_credits" is listed only under "Client release < 0.16.0". From 0.16 the amount is
    // clamped (possibly to 0) and only the accounts' limit flags can refuse the transfer; the
    // balance-invariant-transfers recipe depends on this.
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(1, 3, 1, 20), transfer(2, 1, 3, 20)]);
    let status = harness.transfer_status(transfer_with(10, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_DEBIT));
    assert_eq!(status, S::Created);
    assert_eq!(harness.transfer(10).unwrap().amount, 0);
    assert_eq!(harness.balances(1), (0, 20, 0, 20));
    // Also for an account that has never been credited, and on a limited account.
    let status = harness.transfer_status(transfer_with(11, 2, 1, 5, TransferFlags::BALANCING_DEBIT));
    assert_eq!(status, S::Created);
    harness.accounts_ok(&[account_with(4, DEBIT_LIMIT)]);
    let status = harness.transfer_status(transfer_with(12, 4, 1, 5, TransferFlags::BALANCING_DEBIT));
    assert_eq!(status, S::Created);
    assert_eq!(harness.transfer(12).unwrap().amount, 0);
}

#[test]
fn balancing_debit_is_refused_by_the_credit_accounts_limit() {
    // The clamp looks at the debit account only; the credit account's limit still applies.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), account_with(2, CREDIT_LIMIT), account(3)]);
    harness.fund(1, 3, 1, 20);
    let status = harness.transfer_status(transfer_with(10, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_DEBIT));
    assert_eq!(status, S::ExceedsDebits);
}

#[test]
fn balance_invariant_transfer_recipe() {
    // recipes/balance-invariant-transfers.md, per-transfer credits_must_not_exceed_debits:
    // source 1, destination 2 (no limit flags), control 3 (credits_must_not_exceed_debits).
    let mut harness = Harness::new();
    harness.accounts_ok(&[account(1), account(2), account_with(3, CREDIT_LIMIT), account(4)]);
    let chain = |id: u128| {
        [
            linked(transfer(id, 1, 2, 123)),
            linked(transfer_with(id + 1, 2, 3, 1, TransferFlags::PENDING | TransferFlags::BALANCING_DEBIT)),
            void(id + 2, id + 1, 0),
        ]
    };
    // The destination's credits would exceed its debits: the balancing transfer moves 1 to the
    // control account, which refuses it, and the chain fails.
    assert_eq!(
        harness.transfer_statuses(&chain(10)),
        vec![S::LinkedEventFailed, S::ExceedsDebits, S::LinkedEventFailed]
    );
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    // With enough debits on the destination, the balancing transfer moves 0 and the chain holds.
    harness.transfers_ok(&[transfer(1, 2, 4, 200)]);
    assert_eq!(harness.transfer_statuses(&chain(20)), vec![S::Created; 3]);
    assert_eq!(harness.transfer(21).unwrap().amount, 0);
    assert_eq!(harness.balances(2), (0, 200, 0, 123));
    assert_eq!(harness.balances(3), (0, 0, 0, 0));
}

#[test]
fn balancing_credit_clamps_to_the_credit_accounts_debits() {
    // close-account.md's account B: debits 30, credits 5; a balancing credit moves 25.
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(1, 2, 3, 30), transfer(2, 3, 2, 5)]);
    assert_eq!(
        harness.transfer_status(transfer_with(10, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_CREDIT)),
        S::Created
    );
    assert_eq!(harness.transfer(10).unwrap().amount, 25);
    assert_eq!(harness.balances(2), (0, 30, 0, 30));
}

#[test]
fn balancing_credit_with_nothing_available_moves_zero() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let status = harness.transfer_status(transfer_with(10, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_CREDIT));
    assert_eq!(status, S::Created);
    assert_eq!(harness.transfer(10).unwrap().amount, 0);
}

#[test]
fn balancing_debit_and_credit_take_the_smaller_bound() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.fund(1, 3, 1, 20); // account 1 may be debited 20
    harness.fund(2, 2, 3, 8); // account 2 may be credited 8
    let flags = TransferFlags::BALANCING_DEBIT | TransferFlags::BALANCING_CREDIT;
    assert_eq!(harness.transfer_status(transfer_with(10, 1, 2, AMOUNT_MAX, flags)), S::Created);
    assert_eq!(harness.transfer(10).unwrap().amount, 8);
}

#[test]
fn balancing_transfer_retry_is_judged_against_the_recorded_amount() {
    // transfer.md: a retry returns exists_with_different_amount only when its maximum is below
    // the amount actually transferred.
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.fund(1, 3, 1, 10);
    harness.transfers_ok(&[transfer_with(10, 1, 2, 50, TransferFlags::BALANCING_DEBIT)]);
    assert_eq!(harness.transfer(10).unwrap().amount, 10);
    let retry = |amount| transfer_with(10, 1, 2, amount, TransferFlags::BALANCING_DEBIT);
    assert_eq!(harness.transfer_status(retry(50)), S::Exists);
    assert_eq!(harness.transfer_status(retry(AMOUNT_MAX)), S::Exists);
    assert_eq!(harness.transfer_status(retry(10)), S::Exists);
    assert_eq!(harness.transfer_status(retry(9)), S::ExistsWithDifferentAmount);
    assert_eq!(harness.balances(1), (0, 10, 0, 10));
}

#[test]
fn balance_conditional_transfer_recipe() {
    // balance-conditional-transfers.md: a linked pending transfer of the threshold from the source
    // to a control account, its void, then the real transfer: the chain only goes through when
    // the source holds at least the threshold.
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, DEBIT_LIMIT), account(2), account(3), account(9)]);
    harness.fund(1, 3, 1, 100);
    let conditional = |id: u128, threshold: u128, amount: u128| {
        [linked(pending(id, 1, 9, threshold, 0)), linked(void(id + 1, id, 0)), transfer(id + 2, 1, 2, amount)]
    };
    assert_eq!(harness.transfer_statuses(&conditional(10, 60, 60)), vec![S::Created; 3]);
    assert_eq!(harness.balances(1), (0, 60, 0, 100));
    assert_eq!(
        harness.transfer_statuses(&conditional(20, 60, 10)),
        vec![S::ExceedsCredits, S::LinkedEventFailed, S::LinkedEventFailed]
    );
    assert_eq!(harness.balances(1), (0, 60, 0, 100));
    assert_eq!(harness.balances(9), (0, 0, 0, 0));
}

/// The close-account recipe's starting point: A (1) with a debit limit, debits 10 and credits 20;
/// B (2) with a credit limit, debits 30 and credits 5; C (3) the control account. Account 4 funds
/// the setup.
fn close_account_recipe_start() -> Harness {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, DEBIT_LIMIT), account_with(2, CREDIT_LIMIT), account(3), account(4)]);
    harness.transfers_ok(&[transfer(1, 4, 1, 20), transfer(2, 1, 4, 10), transfer(3, 2, 4, 30), transfer(4, 4, 2, 5)]);
    assert_eq!(harness.balances(1), (0, 10, 0, 20));
    assert_eq!(harness.balances(2), (0, 30, 0, 5));
    harness
}

#[test]
fn close_account_recipe() {
    let mut harness = close_account_recipe_start();
    let closing = |id, debit, credit, flag| transfer_with(id, debit, credit, 0, TransferFlags::PENDING | flag);
    let statuses = harness.transfer_statuses(&[
        linked(transfer_with(11, 1, 3, AMOUNT_MAX, TransferFlags::BALANCING_DEBIT)),
        closing(12, 1, 3, TransferFlags::CLOSING_DEBIT),
        linked(transfer_with(13, 3, 2, AMOUNT_MAX, TransferFlags::BALANCING_CREDIT)),
        closing(14, 3, 2, TransferFlags::CLOSING_CREDIT),
    ]);
    assert_eq!(statuses, vec![S::Created; 4]);
    assert_eq!(harness.transfer(11).unwrap().amount, 10);
    assert_eq!(harness.transfer(13).unwrap().amount, 25);
    assert_eq!(harness.account(1).flags, DEBIT_LIMIT | AccountFlags::CLOSED);
    assert_eq!(harness.account(2).flags, CREDIT_LIMIT | AccountFlags::CLOSED);
    assert_eq!(harness.balances(1), (0, 20, 0, 20));
    assert_eq!(harness.balances(2), (0, 30, 0, 30));
    assert_eq!(harness.balances(3), (0, 25, 0, 10));
    assert!(!harness.is_closed(3));

    // Closed accounts reject further transfers, on either side.
    assert_eq!(harness.transfer_status(transfer(20, 1, 3, 0)), S::DebitAccountAlreadyClosed);
    assert_eq!(harness.transfer_status(transfer(21, 3, 1, 1)), S::CreditAccountAlreadyClosed);
    assert_eq!(harness.transfer_status(transfer(22, 2, 3, 1)), S::DebitAccountAlreadyClosed);
    assert_eq!(harness.transfer_status(pending(23, 3, 2, 1, 0)), S::CreditAccountAlreadyClosed);

    // Voiding the closing transfers re-opens the accounts (balances stay).
    assert_eq!(harness.transfer_statuses(&[void(15, 12, 0), void(16, 14, 0)]), vec![S::Created, S::Created]);
    assert_eq!(harness.account(1).flags, DEBIT_LIMIT);
    assert_eq!(harness.account(2).flags, CREDIT_LIMIT);
    assert_eq!(harness.balances(1), (0, 20, 0, 20));
    assert_eq!(harness.balances(2), (0, 30, 0, 30));
    assert_eq!(harness.balances(3), (0, 25, 0, 10));
    // And they accept transfers again.
    assert_eq!(harness.transfer_status(transfer(24, 3, 1, 1)), S::Created);
}

#[test]
fn closing_transfer_with_an_amount_reserves_it() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let closing = transfer_with(10, 1, 2, 5, TransferFlags::PENDING | TransferFlags::CLOSING_CREDIT);
    assert_eq!(harness.transfer_status(closing), S::Created);
    assert!(harness.is_closed(2));
    assert!(!harness.is_closed(1));
    assert_eq!(harness.balances(2), (0, 0, 5, 0));
}

#[test]
fn closing_both_accounts_at_once() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let flags = TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT | TransferFlags::CLOSING_CREDIT;
    assert_eq!(harness.transfer_status(transfer_with(10, 1, 2, 0, flags)), S::Created);
    assert!(harness.is_closed(1) && harness.is_closed(2));
    assert_eq!(harness.transfer_status(void(11, 10, 0)), S::Created);
    assert!(!harness.is_closed(1) && !harness.is_closed(2));
}

#[test]
fn posting_a_closing_transfer_is_refused_because_the_account_is_closed() {
    // account.md: a closed account rejects further transfers except voids of pending ones.
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[transfer_with(10, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT)]);
    assert_eq!(harness.transfer_status(post(11, 10, AMOUNT_MAX)), S::DebitAccountAlreadyClosed);
    assert!(harness.is_closed(1));
}

#[test]
fn other_pending_transfers_of_a_closed_account_can_be_voided_not_posted() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[pending(100, 1, 2, 5, 0), pending(101, 1, 2, 6, 0)]);
    harness.transfers_ok(&[transfer_with(10, 3, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_CREDIT)]);
    assert_eq!(harness.transfer_status(post(11, 100, AMOUNT_MAX)), S::CreditAccountAlreadyClosed);
    assert_eq!(harness.transfer_status(void(12, 101, 0)), S::Created);
    assert_eq!(harness.balances(2), (0, 0, 5, 0));
    // Voiding a non-closing pending transfer does not re-open the account.
    assert!(harness.is_closed(2));
}

#[test]
fn a_closing_transfer_on_an_already_closed_account_is_refused() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    let closing = |id| transfer_with(id, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT);
    harness.transfers_ok(&[closing(10)]);
    assert_eq!(harness.transfer_status(closing(11)), S::DebitAccountAlreadyClosed);
    // Voiding the first re-opens; the account can be closed again afterwards.
    harness.transfers_ok(&[void(12, 10, 0)]);
    assert_eq!(harness.transfer_status(closing(13)), S::Created);
    assert!(harness.is_closed(1));
}

#[test]
fn an_account_created_closed_stays_closed() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::CLOSED), account(2)]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 1)), S::DebitAccountAlreadyClosed);
    assert_eq!(harness.transfer_status(transfer(11, 2, 1, 1)), S::CreditAccountAlreadyClosed);
    assert_eq!(
        harness.transfer_status(transfer_with(12, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT)),
        S::DebitAccountAlreadyClosed
    );
}

#[test]
fn pending_transfer_of_a_closed_account_still_expires() {
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    harness.transfers_ok(&[pending(100, 1, 2, 5, 1)]);
    harness.transfers_ok(&[transfer_with(10, 1, 3, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT)]);
    harness.advance_seconds(1);
    harness.transfers_ok(&[transfer(11, 3, 4, 1)]);
    assert_eq!(harness.balances(1), (0, 0, 0, 0));
    assert_eq!(harness.balances(2), (0, 0, 0, 0));
    assert!(harness.is_closed(1), "only the closing transfer's void or expiry re-opens");
}

#[test]
fn expiry_of_a_closing_transfer_reopens_the_account() {
    // Expiry releases a pending transfer the way a void does; a closing transfer's effect (the
    // closed flag) is undone with it.
    let mut harness = Harness::with_accounts(&[1, 2, 3, 4]);
    let closing =
        Transfer { timeout: 1, ..transfer_with(10, 1, 2, 0, TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT) };
    harness.transfers_ok(&[closing]);
    assert!(harness.is_closed(1));
    harness.advance_seconds(1);
    harness.transfers_ok(&[transfer(11, 3, 4, 1)]);
    assert!(!harness.is_closed(1));
    assert_eq!(harness.transfer_status(transfer(12, 1, 2, 1)), S::Created);
}

#[test]
fn overflow_checks_use_the_clamped_amount() {
    // Account 2's credits are near the top; AMOUNT_MAX itself would overflow them, the clamped
    // amount does not.
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(1, 3, 2, u128::MAX - 20), transfer(2, 3, 1, 10)]);
    let status = harness.transfer_status(transfer_with(10, 1, 2, AMOUNT_MAX, TransferFlags::BALANCING_DEBIT));
    assert_eq!(status, S::Created);
    assert_eq!(harness.balances(2), (0, 0, 0, u128::MAX - 10));
}
