//! Lookups and queries, with TigerBeetle's `AccountFilter` and `QueryFilter` semantics.
//!
//! Objects are stored in timestamp order, and each account lists its transfers in timestamp
//! order, so a timestamp range is found by binary search. Field filters (`user_data_*`, `ledger`,
//! `code`) are checked one object at a time within that range, stopping at `limit`: the cost is
//! the number of objects in the range that are looked at, not the size of the ledger. A filter
//! that TigerBeetle would reject as invalid returns nothing.

use crate::commitment::BalanceProof;
use crate::constants::QUERY_RESULTS_MAX;
use crate::ledger::Ledger;
use crate::rules::partition_point;
use crate::store::{AccountIndex, BalanceEntry, Store};
use crate::types::{
    Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags, QueryFilter, QueryFilterFlags, Transfer,
};

impl<S: Store> Ledger<S> {
    /// The accounts with these ids, in the order asked; missing ids are left out.
    pub fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account> {
        ids.iter()
            .take(QUERY_RESULTS_MAX)
            .filter_map(|id| self.store.account_index(*id).map(|index| *self.store.account(index)))
            .collect()
    }

    /// The transfers with these ids, in the order asked; missing ids are left out.
    pub fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer> {
        ids.iter()
            .take(QUERY_RESULTS_MAX)
            .filter_map(|id| self.store.transfer_index(*id).map(|index| *self.store.transfer(index)))
            .collect()
    }

    /// The transfers of one account that match the filter, oldest first (newest first with
    /// `reversed`).
    pub fn get_account_transfers(&self, filter: AccountFilter) -> Vec<Transfer> {
        let Some(account) = self.filtered_account(&filter) else {
            return Vec::new();
        };
        let transfers = self.store.account_transfers(account);
        let count = transfers.len() as u64;
        let timestamp = |position: u64| self.store.transfer(transfers[position as usize]).timestamp;
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let start = partition_point(count, |position| timestamp(position) < min);
        let end = partition_point(count, |position| timestamp(position) <= max);
        let in_range = transfers[start as usize..end.max(start) as usize]
            .iter()
            .map(|index| self.store.transfer(*index))
            .filter(|transfer| matches_account_filter(&filter, transfer));
        collect_limited(in_range, filter.limit, filter.flags.contains(AccountFilterFlags::REVERSED))
    }

    /// The balance history of one account (it must have `flags.history`): its balances after
    /// each transfer that matches the filter, oldest first (newest first with `reversed`).
    pub fn get_account_balances(&self, filter: AccountFilter) -> Vec<AccountBalance> {
        self.balance_entries(filter).into_iter().map(|entry| entry.balance).collect()
    }

    /// `get_account_balances`, each entry with its proof against [`Ledger::digest`]: the id of
    /// the transfer that made it and its path in the balance-history tree.
    pub fn prove_account_balances(&self, filter: AccountFilter) -> Vec<(AccountBalance, BalanceProof)> {
        let entries = self.balance_entries(filter);
        entries
            .into_iter()
            .map(|entry| {
                let proof = BalanceProof {
                    account_id: filter.account_id,
                    transfer_id: self.store.transfer(entry.transfer).id,
                    sequence: entry.sequence,
                    path: self.commitment.balance_path(entry.sequence),
                    parts: self.commitment.parts(),
                };
                (entry.balance, proof)
            })
            .collect()
    }

    /// The history entries `get_account_balances` answers with.
    fn balance_entries(&self, filter: AccountFilter) -> Vec<BalanceEntry> {
        let Some(account) = self.filtered_account(&filter) else {
            return Vec::new();
        };
        if !self.store.account(account).flags.contains(AccountFlags::HISTORY) {
            return Vec::new();
        }
        let entries = self.store.balances(account);
        let count = entries.len() as u64;
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let start = partition_point(count, |position| entries[position as usize].balance.timestamp < min);
        let end = partition_point(count, |position| entries[position as usize].balance.timestamp <= max);
        let in_range = entries[start as usize..end.max(start) as usize]
            .iter()
            .filter(|entry| matches_account_filter(&filter, self.store.transfer(entry.transfer)));
        collect_limited(in_range, filter.limit, filter.flags.contains(AccountFilterFlags::REVERSED))
    }

    /// The accounts whose fields equal every nonzero field of the filter.
    pub fn query_accounts(&self, filter: QueryFilter) -> Vec<Account> {
        if !query_filter_is_valid(&filter) {
            return Vec::new();
        }
        let count = u64::from(self.store.account_count());
        let timestamp = |index: u64| self.store.account(index as AccountIndex).timestamp;
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let start = partition_point(count, |index| timestamp(index) < min);
        let end = partition_point(count, |index| timestamp(index) <= max).max(start);
        let in_range = (start..end).map(|index| self.store.account(index as AccountIndex)).filter(|account| {
            matches_query_filter(
                &filter,
                (account.user_data_128, account.user_data_64, account.user_data_32, account.ledger, account.code),
            )
        });
        collect_limited(in_range, filter.limit, filter.flags.contains(QueryFilterFlags::REVERSED))
    }

    /// The transfers whose fields equal every nonzero field of the filter.
    pub fn query_transfers(&self, filter: QueryFilter) -> Vec<Transfer> {
        if !query_filter_is_valid(&filter) {
            return Vec::new();
        }
        let count = self.store.transfer_count();
        let timestamp = |index: u64| self.store.transfer(index).timestamp;
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let start = partition_point(count, |index| timestamp(index) < min);
        let end = partition_point(count, |index| timestamp(index) <= max).max(start);
        let in_range = (start..end).map(|index| self.store.transfer(index)).filter(|transfer| {
            matches_query_filter(
                &filter,
                (transfer.user_data_128, transfer.user_data_64, transfer.user_data_32, transfer.ledger, transfer.code),
            )
        });
        collect_limited(in_range, filter.limit, filter.flags.contains(QueryFilterFlags::REVERSED))
    }

    /// The account an `AccountFilter` names, if the filter is valid and the account exists.
    fn filtered_account(&self, filter: &AccountFilter) -> Option<AccountIndex> {
        let valid = filter.account_id != 0
            && filter.account_id != u128::MAX
            && filter.timestamp_min != u64::MAX
            && filter.timestamp_max != u64::MAX
            && (filter.timestamp_max == 0 || filter.timestamp_min <= filter.timestamp_max)
            && filter.limit != 0
            && filter.flags.intersects(AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS)
            && !filter.flags.has_reserved_bits();
        if valid { self.store.account_index(filter.account_id) } else { None }
    }
}

impl AccountFilter {
    /// Whether `transfer` is one this filter selects (its account on a side the flags name, the
    /// nonzero fields equal, the timestamp in range): what a client checks of each transfer a
    /// validator lists for `get_account_transfers`.
    pub fn admits(&self, transfer: &Transfer) -> bool {
        let (min, max) = timestamp_bounds(self.timestamp_min, self.timestamp_max);
        (min..=max).contains(&transfer.timestamp) && matches_account_filter(self, transfer)
    }
}

impl QueryFilter {
    /// Whether `account` is one this filter selects for `query_accounts`.
    pub fn admits_account(&self, account: &Account) -> bool {
        let (min, max) = timestamp_bounds(self.timestamp_min, self.timestamp_max);
        (min..=max).contains(&account.timestamp)
            && matches_query_filter(
                self,
                (account.user_data_128, account.user_data_64, account.user_data_32, account.ledger, account.code),
            )
    }

    /// Whether `transfer` is one this filter selects for `query_transfers`.
    pub fn admits_transfer(&self, transfer: &Transfer) -> bool {
        let (min, max) = timestamp_bounds(self.timestamp_min, self.timestamp_max);
        (min..=max).contains(&transfer.timestamp)
            && matches_query_filter(
                self,
                (transfer.user_data_128, transfer.user_data_64, transfer.user_data_32, transfer.ledger, transfer.code),
            )
    }
}

fn query_filter_is_valid(filter: &QueryFilter) -> bool {
    filter.timestamp_min != u64::MAX
        && filter.timestamp_max != u64::MAX
        && (filter.timestamp_max == 0 || filter.timestamp_min <= filter.timestamp_max)
        && filter.limit != 0
        && !filter.flags.has_reserved_bits()
}

/// The inclusive timestamp range of a filter, where 0 means unbounded.
fn timestamp_bounds(min: u64, max: u64) -> (u64, u64) {
    (min, if max == 0 { u64::MAX } else { max })
}

fn matches_account_filter(filter: &AccountFilter, transfer: &Transfer) -> bool {
    let side = (filter.flags.contains(AccountFilterFlags::DEBITS) && transfer.debit_account_id == filter.account_id)
        || (filter.flags.contains(AccountFilterFlags::CREDITS) && transfer.credit_account_id == filter.account_id);
    side && (filter.user_data_128 == 0 || filter.user_data_128 == transfer.user_data_128)
        && (filter.user_data_64 == 0 || filter.user_data_64 == transfer.user_data_64)
        && (filter.user_data_32 == 0 || filter.user_data_32 == transfer.user_data_32)
        && (filter.code == 0 || filter.code == transfer.code)
}

fn matches_query_filter(
    filter: &QueryFilter,
    (user_data_128, user_data_64, user_data_32, ledger, code): (u128, u64, u32, u32, u16),
) -> bool {
    (filter.user_data_128 == 0 || filter.user_data_128 == user_data_128)
        && (filter.user_data_64 == 0 || filter.user_data_64 == user_data_64)
        && (filter.user_data_32 == 0 || filter.user_data_32 == user_data_32)
        && (filter.ledger == 0 || filter.ledger == ledger)
        && (filter.code == 0 || filter.code == code)
}

/// The first `limit` items (capped at `QUERY_RESULTS_MAX`), from the back if `reversed`.
fn collect_limited<'a, T: Copy + 'a>(
    items: impl DoubleEndedIterator<Item = &'a T>,
    limit: u32,
    reversed: bool,
) -> Vec<T> {
    let limit = (limit as usize).min(QUERY_RESULTS_MAX);
    if reversed { items.rev().take(limit).copied().collect() } else { items.take(limit).copied().collect() }
}
