//! Lookups and queries: `lookup_accounts`, `lookup_transfers`, `get_account_transfers`,
//! `get_account_balances` (`AccountFilter`), `query_accounts`, `query_transfers` (`QueryFilter`).

use crate::common::*;
use tally_ledger::*;

#[test]
fn lookups_keep_the_request_order_and_leave_out_missing_ids() {
    let mut harness = Harness::with_accounts(&[1, 2, 3]);
    harness.transfers_ok(&[transfer(10, 1, 2, 1), transfer(11, 2, 3, 1)]);
    assert_eq!(account_ids(&harness.ledger.lookup_accounts(&[3, 99, 1, 0, u128::MAX])), vec![3, 1]);
    assert_eq!(transfer_ids(&harness.ledger.lookup_transfers(&[11, 98, 10])), vec![11, 10]);
    assert!(harness.ledger.lookup_accounts(&[]).is_empty());
    // One answer per id asked for, repeats included.
    assert_eq!(account_ids(&harness.ledger.lookup_accounts(&[2, 2, 1])), vec![2, 2, 1]);
    assert!(harness.ledger.lookup_transfers(&[1, 2, 3]).is_empty(), "account ids are not transfer ids");
}

/// Accounts 1 (history), 2 and 3; transfers alternating sides of account 1 with distinct user
/// data and codes. Returns the harness and the transfers' timestamps by id (10..=15).
fn with_account_activity() -> (Harness, Vec<u64>) {
    let mut harness = Harness::new();
    harness.accounts_ok(&[account_with(1, AccountFlags::HISTORY), account(2), account(3)]);
    let mut timestamps = Vec::new();
    for (index, id) in (10..16u128).enumerate() {
        let (debit, credit) = if index % 2 == 0 { (1, 2) } else { (3, 1) };
        let transfer = Transfer {
            user_data_128: 100 + (index as u128 % 3),
            user_data_64: 200 + (index as u64 % 2),
            user_data_32: 300,
            code: if index < 3 { CODE } else { CODE + 1 },
            ..transfer(id, debit, credit, 1 + index as u128)
        };
        timestamps.push(harness.now);
        harness.transfers_ok(&[transfer]);
    }
    // Unrelated transfer between other accounts.
    harness.transfers_ok(&[transfer(16, 2, 3, 1)]);
    (harness, timestamps)
}

#[test]
fn account_transfers_on_both_sides_in_timestamp_order() {
    let (harness, timestamps) = with_account_activity();
    let found = harness.ledger.get_account_transfers(account_filter(1));
    assert_eq!(transfer_ids(&found), vec![10, 11, 12, 13, 14, 15]);
    let found_timestamps: Vec<u64> = found.iter().map(|transfer| transfer.timestamp).collect();
    assert_eq!(found_timestamps, timestamps);
}

#[test]
fn account_transfers_debits_or_credits_only() {
    let (harness, _) = with_account_activity();
    let debits = AccountFilter { flags: AccountFilterFlags::DEBITS, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(debits)), vec![10, 12, 14]);
    let credits = AccountFilter { flags: AccountFilterFlags::CREDITS, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(credits)), vec![11, 13, 15]);
}

#[test]
fn account_transfers_reversed_and_limited() {
    let (harness, _) = with_account_activity();
    let reversed = AccountFilter {
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS | AccountFilterFlags::REVERSED,
        ..account_filter(1)
    };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(reversed)), vec![15, 14, 13, 12, 11, 10]);
    let limited = AccountFilter { limit: 2, ..reversed };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(limited)), vec![15, 14]);
    let limited = AccountFilter { limit: 4, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(limited)), vec![10, 11, 12, 13]);
}

#[test]
fn account_transfers_timestamp_range_is_inclusive() {
    let (harness, timestamps) = with_account_activity();
    let range = AccountFilter { timestamp_min: timestamps[1], timestamp_max: timestamps[3], ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(range)), vec![11, 12, 13]);
    let from = AccountFilter { timestamp_min: timestamps[4], ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(from)), vec![14, 15]);
    let until = AccountFilter { timestamp_max: timestamps[0], ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(until)), vec![10]);
    let reversed_range = AccountFilter {
        flags: AccountFilterFlags::CREDITS | AccountFilterFlags::REVERSED,
        timestamp_min: timestamps[1],
        timestamp_max: timestamps[4],
        ..account_filter(1)
    };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(reversed_range)), vec![13, 11]);
}

#[test]
fn account_transfers_filtered_by_user_data_and_code() {
    let (harness, _) = with_account_activity();
    let by_128 = AccountFilter { user_data_128: 100, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(by_128)), vec![10, 13]);
    let by_64 = AccountFilter { user_data_64: 201, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(by_64)), vec![11, 13, 15]);
    let by_32 = AccountFilter { user_data_32: 300, ..account_filter(1) };
    assert_eq!(harness.ledger.get_account_transfers(by_32).len(), 6);
    let by_code = AccountFilter { code: CODE + 1, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(by_code)), vec![13, 14, 15]);
    let combined = AccountFilter { code: CODE + 1, user_data_64: 200, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(combined)), vec![14]);
}

#[test]
fn invalid_account_filters_return_nothing() {
    let (harness, timestamps) = with_account_activity();
    let invalid = [
        AccountFilter { account_id: 0, ..account_filter(1) },
        AccountFilter { account_id: u128::MAX, ..account_filter(1) },
        AccountFilter { limit: 0, ..account_filter(1) },
        AccountFilter { flags: AccountFilterFlags::NONE, ..account_filter(1) },
        AccountFilter { flags: AccountFilterFlags::REVERSED, ..account_filter(1) },
        AccountFilter { timestamp_min: timestamps[3], timestamp_max: timestamps[1], ..account_filter(1) },
        AccountFilter { timestamp_min: u64::MAX, ..account_filter(1) },
        AccountFilter { timestamp_max: u64::MAX, ..account_filter(1) },
    ];
    for filter in invalid {
        assert!(harness.ledger.get_account_transfers(filter).is_empty(), "{filter:?}");
        assert!(harness.ledger.get_account_balances(filter).is_empty(), "{filter:?}");
    }
    // A missing account has no transfers.
    assert!(harness.ledger.get_account_transfers(account_filter(77)).is_empty());
}

#[test]
fn account_balances_follow_each_transfer() {
    let (harness, timestamps) = with_account_activity();
    let balances = harness.ledger.get_account_balances(account_filter(1));
    assert_eq!(balances.len(), 6);
    let mut debits = 0;
    let mut credits = 0;
    for (index, balance) in balances.iter().enumerate() {
        if index % 2 == 0 {
            debits += 1 + index as u128;
        } else {
            credits += 1 + index as u128;
        }
        assert_eq!(
            *balance,
            AccountBalance {
                debits_posted: debits,
                credits_posted: credits,
                timestamp: timestamps[index],
                ..AccountBalance::default()
            }
        );
    }
    // Reversed, limited and ranged like get_account_transfers.
    let filter = AccountFilter {
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS | AccountFilterFlags::REVERSED,
        limit: 2,
        ..account_filter(1)
    };
    let newest: Vec<u64> = harness.ledger.get_account_balances(filter).iter().map(|b| b.timestamp).collect();
    assert_eq!(newest, vec![timestamps[5], timestamps[4]]);
    let filter = AccountFilter { timestamp_min: timestamps[2], timestamp_max: timestamps[2], ..account_filter(1) };
    assert_eq!(harness.ledger.get_account_balances(filter), vec![balances[2]]);
    let debits_only = AccountFilter { flags: AccountFilterFlags::DEBITS, ..account_filter(1) };
    assert_eq!(harness.ledger.get_account_balances(debits_only), vec![balances[0], balances[2], balances[4]]);
}

#[test]
fn account_balances_need_the_history_flag() {
    let (harness, _) = with_account_activity();
    // Account 2 took part in transfers but has no history flag.
    assert!(!harness.ledger.get_account_transfers(account_filter(2)).is_empty());
    assert!(harness.ledger.get_account_balances(account_filter(2)).is_empty());
}

#[test]
fn failed_transfers_leave_no_history() {
    let mut harness = Harness::new();
    harness.accounts_ok(&[
        account_with(1, AccountFlags::HISTORY | AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        account(2),
    ]);
    assert_eq!(harness.transfer_status(transfer(10, 1, 2, 5)), CreateTransferStatus::ExceedsCredits);
    assert!(harness.ledger.get_account_balances(account_filter(1)).is_empty());
    assert!(harness.ledger.get_account_transfers(account_filter(1)).is_empty());
}

/// Accounts 1..=6 with varied user data, ledgers and codes.
fn with_varied_accounts() -> Harness {
    let mut harness = Harness::new();
    let accounts: Vec<Account> = (1..=6u128)
        .map(|id| Account {
            user_data_128: 1_000 + id % 2,
            user_data_64: 2_000 + (id % 3) as u64,
            user_data_32: 3_000,
            ledger: if id <= 3 { LEDGER } else { LEDGER + 1 },
            code: if id % 2 == 0 { CODE } else { CODE + 1 },
            ..account(id)
        })
        .collect();
    for account in accounts {
        harness.accounts_ok(&[account]);
    }
    harness
}

#[test]
fn query_accounts_matches_every_nonzero_field() {
    let harness = with_varied_accounts();
    let query = |filter: QueryFilter| account_ids(&harness.ledger.query_accounts(filter));
    assert_eq!(query(query_filter()), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(query(QueryFilter { user_data_128: 1_000, ..query_filter() }), vec![2, 4, 6]);
    assert_eq!(query(QueryFilter { user_data_64: 2_001, ..query_filter() }), vec![1, 4]);
    assert_eq!(query(QueryFilter { user_data_32: 3_000, ..query_filter() }), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(query(QueryFilter { ledger: LEDGER + 1, ..query_filter() }), vec![4, 5, 6]);
    assert_eq!(query(QueryFilter { code: CODE, ..query_filter() }), vec![2, 4, 6]);
    assert_eq!(query(QueryFilter { ledger: LEDGER, code: CODE + 1, ..query_filter() }), vec![1, 3]);
    assert!(query(QueryFilter { user_data_32: 1, ..query_filter() }).is_empty());
}

#[test]
fn query_accounts_order_limit_and_range() {
    let harness = with_varied_accounts();
    let query = |filter: QueryFilter| account_ids(&harness.ledger.query_accounts(filter));
    let reversed = QueryFilter { flags: QueryFilterFlags::REVERSED, ..query_filter() };
    assert_eq!(query(reversed), vec![6, 5, 4, 3, 2, 1]);
    assert_eq!(query(QueryFilter { limit: 2, ..reversed }), vec![6, 5]);
    assert_eq!(query(QueryFilter { limit: 3, ledger: LEDGER + 1, ..query_filter() }), vec![4, 5, 6]);
    let timestamp = |id| harness.account(id).timestamp;
    let range = QueryFilter { timestamp_min: timestamp(2), timestamp_max: timestamp(4), ..query_filter() };
    assert_eq!(query(range), vec![2, 3, 4]);
    assert!(query(QueryFilter { limit: 0, ..query_filter() }).is_empty());
    assert!(
        query(QueryFilter { timestamp_min: timestamp(4), timestamp_max: timestamp(2), ..query_filter() }).is_empty()
    );
}

#[test]
fn query_transfers_matches_every_nonzero_field() {
    let mut harness = with_varied_accounts();
    harness.accounts_ok(&[account(7)]);
    let transfers: Vec<Transfer> = (10..16u128)
        .map(|id| Transfer {
            user_data_128: 10 + id % 2,
            user_data_64: 20 + (id % 3) as u64,
            user_data_32: 30,
            code: if id < 13 { CODE } else { CODE + 1 },
            ..transfer(id, 1 + id % 2, 7, 1)
        })
        .collect();
    for transfer in &transfers {
        harness.transfers_ok(&[*transfer]);
    }
    harness.accounts_ok(&[Account { ledger: LEDGER + 1, ..account(8) }]);
    harness.transfers_ok(&[Transfer { ledger: LEDGER + 1, ..transfer(16, 4, 8, 1) }]);
    let query = |filter: QueryFilter| transfer_ids(&harness.ledger.query_transfers(filter));
    assert_eq!(query(query_filter()), vec![10, 11, 12, 13, 14, 15, 16]);
    assert_eq!(query(QueryFilter { user_data_128: 11, ..query_filter() }), vec![11, 13, 15]);
    assert_eq!(query(QueryFilter { user_data_64: 20, ..query_filter() }), vec![12, 15]);
    assert_eq!(query(QueryFilter { user_data_32: 30, ..query_filter() }), vec![10, 11, 12, 13, 14, 15]);
    assert_eq!(query(QueryFilter { ledger: LEDGER + 1, ..query_filter() }), vec![16]);
    assert_eq!(query(QueryFilter { code: CODE + 1, user_data_128: 10, ..query_filter() }), vec![14]);
    let reversed = QueryFilter { flags: QueryFilterFlags::REVERSED, limit: 3, ledger: LEDGER, ..query_filter() };
    assert_eq!(query(reversed), vec![15, 14, 13]);
    let timestamp = |id| harness.transfer(id).unwrap().timestamp;
    let range = QueryFilter { timestamp_min: timestamp(11), timestamp_max: timestamp(12), ..query_filter() };
    assert_eq!(query(range), vec![11, 12]);
}

#[test]
fn queries_see_post_and_void_transfers_with_inherited_fields() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[Transfer { user_data_64: 42, ..pending(10, 1, 2, 5, 0) }]);
    harness.transfers_ok(&[post(11, 10, AMOUNT_MAX)]);
    // The post inherited ledger, code and user_data_64.
    let found =
        harness.ledger.query_transfers(QueryFilter { user_data_64: 42, ledger: LEDGER, code: CODE, ..query_filter() });
    assert_eq!(transfer_ids(&found), vec![10, 11]);
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(account_filter(2))), vec![10, 11]);
}

#[test]
fn queries_see_post_and_void_transfers_with_inherited_ledger_and_code() {
    let mut harness = Harness::with_accounts(&[1, 2]);
    harness.transfers_ok(&[pending(10, 1, 2, 5, 0), pending(11, 1, 2, 5, 0)]);
    harness.transfers_ok(&[post(12, 10, AMOUNT_MAX), void(13, 11, 0)]);
    let found = harness.ledger.query_transfers(QueryFilter { ledger: LEDGER, code: CODE, ..query_filter() });
    assert_eq!(transfer_ids(&found), vec![10, 11, 12, 13]);
    let debits = AccountFilter { flags: AccountFilterFlags::DEBITS, ..account_filter(1) };
    assert_eq!(transfer_ids(&harness.ledger.get_account_transfers(debits)), vec![10, 11, 12, 13]);
}

#[test]
fn queries_on_an_empty_ledger() {
    let ledger = Ledger::new();
    assert!(ledger.query_accounts(query_filter()).is_empty());
    assert!(ledger.query_transfers(query_filter()).is_empty());
    assert!(ledger.get_account_transfers(account_filter(1)).is_empty());
    assert!(ledger.get_account_balances(account_filter(1)).is_empty());
    assert!(ledger.lookup_accounts(&[1]).is_empty());
}

#[test]
fn query_limit_is_capped_at_query_results_max() {
    let mut harness = Harness::new();
    let first: Vec<Account> = (1..=BATCH_EVENTS_MAX as u128).map(account).collect();
    harness.accounts_ok(&first);
    harness.accounts_ok(&[account(100_000), account(100_001)]);
    let all = QueryFilter { limit: u32::MAX, ..query_filter() };
    assert_eq!(harness.ledger.query_accounts(all).len(), QUERY_RESULTS_MAX);
    let reversed = QueryFilter { flags: QueryFilterFlags::REVERSED, ..all };
    let newest = harness.ledger.query_accounts(reversed);
    assert_eq!(newest.len(), QUERY_RESULTS_MAX);
    assert_eq!(newest[0].id, 100_001);
}
