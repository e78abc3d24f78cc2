//! Lookups and queries, with TigerBeetle's `AccountFilter` and `QueryFilter` semantics.
//!
//! Objects are stored in timestamp order, each account lists its transfers and its balance
//! history in timestamp order, and the store lists, for each value of each field a filter can
//! set (`user_data_*`, `ledger`, `code`), the objects that have it in timestamp order
//! (`query_index.rs`). A query takes as its candidates the shortest of the lists that could hold
//! its answers, cut to its timestamp range by binary search, and checks the rest of the filter
//! per candidate, stopping at `limit`. A filter whose rarest field is rare in its range therefore
//! costs O(log n + the objects with that value in the range), not the size of the range; the
//! costs are in `docs/LEDGER.md`. A filter that TigerBeetle would reject as invalid returns
//! nothing.

use crate::commitment::BalanceProof;
use crate::constants::QUERY_RESULTS_MAX;
use crate::ledger::Ledger;
use crate::query_index::{FieldValue, Postings};
use crate::rules::partition_point;
use crate::store::{AccountIndex, BalanceEntry, Store, TransferIndex};
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
    ///
    /// The candidates are the shortest in the timestamp range of: the account's own transfers,
    /// and the transfers with each field the filter sets; the rest of the filter is checked per
    /// candidate.
    pub fn get_account_transfers(&self, filter: AccountFilter) -> Vec<Transfer> {
        let Some(account) = self.filtered_account(&filter) else {
            return Vec::new();
        };
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let timestamp = |index: &TransferIndex| self.store.transfer(*index).timestamp;
        let own = in_range(vec![self.store.account_transfers(account)], timestamp, min, max);
        let candidates = account_filter_fields(&filter)
            .map(|field| in_range(self.store.transfers_where(field), timestamp, min, max))
            .fold(own, shorter);
        let matching = candidates
            .iter()
            .flat_map(|part| part.iter())
            .map(|index| self.store.transfer(*index))
            .filter(|transfer| matches_account_filter(&filter, transfer));
        collect_limited(matching, filter.limit, filter.flags.contains(AccountFilterFlags::REVERSED))
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

    /// The history entries `get_account_balances` answers with: the candidates are the shortest
    /// in the timestamp range of the account's whole history and of its entries with each field
    /// the filter sets.
    fn balance_entries(&self, filter: AccountFilter) -> Vec<BalanceEntry> {
        let Some(account) = self.filtered_account(&filter) else {
            return Vec::new();
        };
        if !self.store.account(account).flags.contains(AccountFlags::HISTORY) {
            return Vec::new();
        }
        let entries = self.store.balances(account);
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let start = entries.partition_point(|entry| entry.balance.timestamp < min);
        let end = entries.partition_point(|entry| entry.balance.timestamp <= max).max(start);
        let timestamp = |position: &u64| entries[*position as usize].balance.timestamp;
        let shortest = account_filter_fields(&filter)
            .map(|field| in_range(self.store.balances_where(account, field), timestamp, min, max))
            .min_by_key(|positions| count(positions))
            .filter(|positions| count(positions) < end - start);
        let keep = |entry: &&BalanceEntry| matches_account_filter(&filter, self.store.transfer(entry.transfer));
        let reversed = filter.flags.contains(AccountFilterFlags::REVERSED);
        match shortest {
            Some(positions) => collect_limited(
                positions.iter().flat_map(|part| part.iter()).map(|position| &entries[*position as usize]).filter(keep),
                filter.limit,
                reversed,
            ),
            None => collect_limited(entries[start..end].iter().filter(keep), filter.limit, reversed),
        }
    }

    /// The accounts whose fields equal every nonzero field of the filter. The candidates are the
    /// accounts in the timestamp range with the rarest there of the fields the filter sets (all
    /// accounts in the range if it sets none); the other fields are checked per candidate.
    pub fn query_accounts(&self, filter: QueryFilter) -> Vec<Account> {
        if !query_filter_is_valid(&filter) {
            return Vec::new();
        }
        let count = self.store.account_count() as usize;
        let timestamp = |index: &AccountIndex| self.store.account(*index).timestamp;
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let shortest = query_filter_fields(&filter)
            .map(|field| in_range(self.store.accounts_where(field), timestamp, min, max))
            .reduce(shorter);
        let keep = |account: &&Account| filter.admits_account(account);
        let reversed = filter.flags.contains(QueryFilterFlags::REVERSED);
        match shortest {
            Some(indexes) => collect_limited(
                indexes.iter().flat_map(|part| part.iter()).map(|index| self.store.account(*index)).filter(keep),
                filter.limit,
                reversed,
            ),
            None => {
                let (start, end) = range_of_all(count, |index| timestamp(&(index as AccountIndex)), min, max);
                let all = (start..end).map(|index| self.store.account(index as AccountIndex));
                collect_limited(all, filter.limit, reversed)
            }
        }
    }

    /// The transfers whose fields equal every nonzero field of the filter, found as
    /// `query_accounts` finds accounts.
    pub fn query_transfers(&self, filter: QueryFilter) -> Vec<Transfer> {
        if !query_filter_is_valid(&filter) {
            return Vec::new();
        }
        let count = self.store.transfer_count() as usize;
        let timestamp = |index: &TransferIndex| self.store.transfer(*index).timestamp;
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let shortest = query_filter_fields(&filter)
            .map(|field| in_range(self.store.transfers_where(field), timestamp, min, max))
            .reduce(shorter);
        let keep = |transfer: &&Transfer| filter.admits_transfer(transfer);
        let reversed = filter.flags.contains(QueryFilterFlags::REVERSED);
        match shortest {
            Some(indexes) => collect_limited(
                indexes.iter().flat_map(|part| part.iter()).map(|index| self.store.transfer(*index)).filter(keep),
                filter.limit,
                reversed,
            ),
            None => {
                let (start, end) = range_of_all(count, |index| timestamp(&(index as TransferIndex)), min, max);
                let all = (start..end).map(|index| self.store.transfer(index as TransferIndex));
                collect_limited(all, filter.limit, reversed)
            }
        }
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

/// The fields an `AccountFilter` sets besides its account.
fn account_filter_fields(filter: &AccountFilter) -> impl Iterator<Item = FieldValue> {
    FieldValue::set_fields(filter.user_data_128, filter.user_data_64, filter.user_data_32, 0, filter.code)
}

fn query_filter_fields(filter: &QueryFilter) -> impl Iterator<Item = FieldValue> {
    FieldValue::set_fields(filter.user_data_128, filter.user_data_64, filter.user_data_32, filter.ledger, filter.code)
}

/// The positions, of parts ascending within and across them (`query_index::Postings`), whose
/// objects' timestamps lie in `[min, max]` (positions in creation order are in timestamp order):
/// two binary searches per part.
fn in_range<'a, P>(parts: Postings<'a, P>, timestamp: impl Fn(&P) -> u64, min: u64, max: u64) -> Postings<'a, P> {
    parts
        .into_iter()
        .map(|positions| {
            let start = positions.partition_point(|position| timestamp(position) < min);
            let end = positions.partition_point(|position| timestamp(position) <= max).max(start);
            &positions[start..end]
        })
        .filter(|positions| !positions.is_empty())
        .collect()
}

/// The number of positions in all parts.
fn count<P>(parts: &Postings<'_, P>) -> usize {
    parts.iter().map(|part| part.len()).sum()
}

/// The positions `start..end` of all `count` objects whose timestamps lie in `[min, max]`.
fn range_of_all(count: usize, timestamp: impl Fn(usize) -> u64, min: u64, max: u64) -> (usize, usize) {
    let start = partition_point(count as u64, |index| timestamp(index as usize) < min) as usize;
    let end = partition_point(count as u64, |index| timestamp(index as usize) <= max) as usize;
    (start, end.max(start))
}

/// The shorter of two candidate lists (the first if they are as long).
fn shorter<'a, P>(first: Postings<'a, P>, second: Postings<'a, P>) -> Postings<'a, P> {
    if count(&second) < count(&first) { second } else { first }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::types::TransferFlags;

    // ---------------------------------------------------------------------------------------
    // The reference: every query answered by scanning its whole timestamp range, one object at
    // a time (how queries were answered before the indexes). The indexed answers must equal it.

    fn reference_account_transfers(ledger: &Ledger, filter: AccountFilter) -> Vec<Transfer> {
        let Some(account) = ledger.filtered_account(&filter) else {
            return Vec::new();
        };
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let all = ledger.store.account_transfers(account).iter().map(|index| ledger.store.transfer(*index));
        let matching = all
            .filter(|transfer| (min..=max).contains(&transfer.timestamp))
            .filter(|transfer| matches_account_filter(&filter, transfer));
        collect_limited(matching, filter.limit, filter.flags.contains(AccountFilterFlags::REVERSED))
    }

    fn reference_account_balances(ledger: &Ledger, filter: AccountFilter) -> Vec<AccountBalance> {
        let Some(account) = ledger.filtered_account(&filter) else {
            return Vec::new();
        };
        if !ledger.store.account(account).flags.contains(AccountFlags::HISTORY) {
            return Vec::new();
        }
        let (min, max) = timestamp_bounds(filter.timestamp_min, filter.timestamp_max);
        let matching = ledger
            .store
            .balances(account)
            .iter()
            .filter(|entry| (min..=max).contains(&entry.balance.timestamp))
            .filter(|entry| matches_account_filter(&filter, ledger.store.transfer(entry.transfer)))
            .map(|entry| &entry.balance);
        collect_limited(matching, filter.limit, filter.flags.contains(AccountFilterFlags::REVERSED))
    }

    fn reference_query_accounts(ledger: &Ledger, filter: QueryFilter) -> Vec<Account> {
        if !query_filter_is_valid(&filter) {
            return Vec::new();
        }
        let all = (0..ledger.store.account_count()).map(|index| ledger.store.account(index));
        let matching = all.filter(|account| filter.admits_account(account));
        collect_limited(matching, filter.limit, filter.flags.contains(QueryFilterFlags::REVERSED))
    }

    fn reference_query_transfers(ledger: &Ledger, filter: QueryFilter) -> Vec<Transfer> {
        if !query_filter_is_valid(&filter) {
            return Vec::new();
        }
        let all = (0..ledger.store.transfer_count()).map(|index| ledger.store.transfer(index));
        let matching = all.filter(|transfer| filter.admits_transfer(transfer));
        collect_limited(matching, filter.limit, filter.flags.contains(QueryFilterFlags::REVERSED))
    }

    // ---------------------------------------------------------------------------------------
    // Random ledgers: few distinct field values, so that filters match; pending transfers that
    // are posted, voided or expire; linked chains that fail and roll back.

    /// SplitMix64, so that a failing case is its seed.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }

        fn one_in(&mut self, odds: u64) -> bool {
            self.below(odds) == 0
        }
    }

    const ACCOUNTS: u64 = 12;

    /// A random ledger, and how many of its transfers were rolled back with a failed chain.
    fn random_ledger(seed: u64) -> (Ledger, usize) {
        let mut rolled_back = 0;
        let mut random = Random(seed);
        let mut ledger = Ledger::new();
        let mut timestamp = 1_000;
        let accounts: Vec<Account> = (1..=ACCOUNTS)
            .map(|id| Account {
                id: u128::from(id),
                user_data_128: u128::from(random.below(4)),
                user_data_64: random.below(3),
                user_data_32: random.below(3) as u32,
                ledger: 1 + (id % 2) as u32,
                code: 1 + random.below(3) as u16,
                flags: if random.one_in(2) { AccountFlags::HISTORY } else { AccountFlags::default() },
                ..Account::default()
            })
            .collect();
        for batch in accounts.chunks(5) {
            ledger.create_accounts(timestamp, batch);
            timestamp = ledger.timestamp_last() + 1 + random.below(3);
        }
        let mut next_id = 1u128;
        let mut pending_ids: Vec<u128> = Vec::new();
        for _ in 0..random.below(14) {
            let mut batch = Vec::new();
            for _ in 0..random.below(40) {
                let debit = 1 + random.below(ACCOUNTS);
                // Mostly the same ledger (same parity of id), sometimes not, which fails.
                let mut credit = 1 + (debit + 2 * (1 + random.below(ACCOUNTS / 2 - 1)) - 1) % ACCOUNTS;
                if random.one_in(10) {
                    credit = 1 + random.below(ACCOUNTS);
                }
                let mut transfer = Transfer {
                    id: next_id,
                    debit_account_id: u128::from(debit),
                    credit_account_id: u128::from(credit),
                    amount: u128::from(1 + random.below(50)),
                    user_data_128: u128::from(random.below(4)),
                    user_data_64: random.below(3),
                    user_data_32: random.below(3) as u32,
                    ledger: 1 + (debit % 2) as u32,
                    code: 1 + random.below(3) as u16,
                    ..Transfer::default()
                };
                next_id += 1;
                match random.below(6) {
                    0 => {
                        transfer.flags |= TransferFlags::PENDING;
                        transfer.timeout = random.below(3) as u32;
                        pending_ids.push(transfer.id);
                    }
                    1 if !pending_ids.is_empty() => {
                        let pending = pending_ids[random.below(pending_ids.len() as u64) as usize];
                        transfer.flags |= if random.one_in(2) {
                            TransferFlags::POST_PENDING_TRANSFER
                        } else {
                            TransferFlags::VOID_PENDING_TRANSFER
                        };
                        transfer.pending_id = pending;
                        transfer.debit_account_id = 0;
                        transfer.credit_account_id = 0;
                        transfer.amount = 0;
                        transfer.ledger = 0;
                        transfer.code = 0;
                        if random.one_in(2) {
                            (transfer.user_data_128, transfer.user_data_64, transfer.user_data_32) = (0, 0, 0);
                        }
                    }
                    _ => {}
                }
                if random.one_in(4) {
                    transfer.flags |= TransferFlags::LINKED;
                }
                batch.push(transfer);
            }
            let results = ledger.create_transfers(timestamp, &batch);
            rolled_back +=
                results.iter().filter(|result| result.status == crate::CreateTransferStatus::LinkedEventFailed).count();
            // Up to two seconds between batches, so that pending transfers with timeouts expire.
            timestamp = ledger.timestamp_last() + 1 + random.below(2_000_000_000);
        }
        (ledger, rolled_back)
    }

    fn random_timestamp(random: &mut Random, ledger: &Ledger) -> u64 {
        match random.below(4) {
            0 => 0,
            _ => random.below(ledger.timestamp_last() + 2),
        }
    }

    fn random_limit(random: &mut Random) -> u32 {
        [0, 1, 2, 3, 7, u32::MAX][random.below(6) as usize]
    }

    fn random_field<T: From<u8>>(random: &mut Random) -> T {
        T::from(if random.one_in(2) { 0 } else { random.below(4) as u8 })
    }

    fn random_account_filter(random: &mut Random, ledger: &Ledger) -> AccountFilter {
        let mut min = random_timestamp(random, ledger);
        let mut max = random_timestamp(random, ledger);
        if max != 0 && min > max && !random.one_in(8) {
            std::mem::swap(&mut min, &mut max);
        }
        // Now and then a reserved flag, which makes the filter invalid.
        let flags = if random.one_in(16) { random.below(16) } else { random.below(8) } as u16;
        AccountFilter {
            account_id: u128::from(random.below(ACCOUNTS + 2)),
            user_data_128: random_field(random),
            user_data_64: random_field(random),
            user_data_32: random_field::<u32>(random),
            code: random_field(random),
            timestamp_min: min,
            timestamp_max: max,
            limit: random_limit(random),
            flags: AccountFilterFlags::from_bits_retain(flags),
        }
    }

    fn random_query_filter(random: &mut Random, ledger: &Ledger) -> QueryFilter {
        let mut min = random_timestamp(random, ledger);
        let mut max = random_timestamp(random, ledger);
        if max != 0 && min > max && !random.one_in(8) {
            std::mem::swap(&mut min, &mut max);
        }
        let flags = if random.one_in(16) { random.below(4) } else { random.below(2) } as u16;
        QueryFilter {
            user_data_128: random_field(random),
            user_data_64: random_field(random),
            user_data_32: random_field::<u32>(random),
            ledger: random_field::<u32>(random).min(2),
            code: random_field(random),
            timestamp_min: min,
            timestamp_max: max,
            limit: random_limit(random),
            flags: QueryFilterFlags::from_bits_retain(flags),
        }
    }

    fn check_against_reference(ledger: &Ledger, seed: u64) -> Result<(), TestCaseError> {
        let mut random = Random(seed ^ 0x5eed);
        for _ in 0..200 {
            let filter = random_account_filter(&mut random, ledger);
            prop_assert_eq!(
                ledger.get_account_transfers(filter),
                reference_account_transfers(ledger, filter),
                "{:?}",
                filter
            );
            prop_assert_eq!(
                ledger.get_account_balances(filter),
                reference_account_balances(ledger, filter),
                "{:?}",
                filter
            );
            let filter = random_query_filter(&mut random, ledger);
            prop_assert_eq!(ledger.query_accounts(filter), reference_query_accounts(ledger, filter), "{:?}", filter);
            prop_assert_eq!(ledger.query_transfers(filter), reference_query_transfers(ledger, filter), "{:?}", filter);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// For random ledgers and random filters, the indexed answers equal a scan of the whole
        /// range, and so do the answers of the ledger restored from a snapshot (whose indexes
        /// are rebuilt as its objects are loaded).
        #[test]
        fn indexed_queries_equal_a_scan(seed in any::<u64>()) {
            let (ledger, _) = random_ledger(seed);
            check_against_reference(&ledger, seed)?;
            let restored = Ledger::restore(&ledger.snapshot()).expect("a snapshot restores");
            prop_assert_eq!(restored.store.query_index_bytes() > 0, ledger.transfer_count() + ledger.account_count() > 0);
            check_against_reference(&restored, seed)?;
        }
    }

    /// The random ledgers and filters exercise what they are meant to: rollbacks, expiries,
    /// history, filters that find something and limits that cut.
    #[test]
    fn random_ledgers_have_rollbacks_expiries_and_history() {
        let (mut transfers, mut entries, mut expired, mut rolled_back) = (0, 0, 0, 0);
        let (mut answered_with_fields, mut answered_limited) = (0, 0);
        for seed in 0..64 {
            let (ledger, rolled) = random_ledger(seed);
            transfers += ledger.transfer_count();
            entries += ledger.store.balance_count();
            expired += (0..ledger.transfer_count())
                .filter(|index| ledger.store.pending_status(*index) == Some(crate::store::PendingStatus::Expired))
                .count();
            rolled_back += rolled;
            let mut random = Random(seed);
            for _ in 0..50 {
                let filter = random_query_filter(&mut random, &ledger);
                let fields = query_filter_fields(&filter).count();
                let found = ledger.query_transfers(filter).len();
                answered_with_fields += usize::from(fields > 0 && found > 0);
                answered_limited += usize::from(fields > 0 && found > 0 && found == filter.limit as usize);
            }
        }
        assert!(
            answered_with_fields > 500 && answered_limited > 100,
            "{answered_with_fields} answered with fields set, {answered_limited} cut by their limit"
        );
        assert!(
            transfers > 1_000 && entries > 500 && expired > 10 && rolled_back > 50,
            "{transfers} transfers, {entries} history entries, {expired} expired, {rolled_back} rolled back"
        );
    }

    // ---------------------------------------------------------------------------------------
    // Unit tests on a small ledger whose answers are known.

    /// Accounts 1 to 4 on ledger 1 (1 and 2 with history), account 5 on ledger 2; transfers 1
    /// to 60 alternate 1→2 and 2→1 with fields by their id: `user_data_128 = id % 4`,
    /// `user_data_64 = id % 5`, `user_data_32 = id % 2`, `code = 1 + id % 3`; transfer 61 is
    /// 3→4 with code 9. Transfer `id` has timestamp `1_000 + id`.
    fn known_ledger() -> Ledger {
        let mut ledger = Ledger::new();
        let accounts: Vec<Account> = (1..=5u128)
            .map(|id| Account {
                id,
                user_data_128: id % 2,
                user_data_64: 7,
                user_data_32: id as u32,
                ledger: if id == 5 { 2 } else { 1 },
                code: 1 + (id % 2) as u16,
                flags: if id <= 2 { AccountFlags::HISTORY } else { AccountFlags::default() },
                ..Account::default()
            })
            .collect();
        ledger.create_accounts(10, &accounts);
        let mut transfers: Vec<Transfer> = (1..=60u128)
            .map(|id| Transfer {
                id,
                debit_account_id: if id % 2 == 1 { 1 } else { 2 },
                credit_account_id: if id % 2 == 1 { 2 } else { 1 },
                amount: 1,
                user_data_128: id % 4,
                user_data_64: (id % 5) as u64,
                user_data_32: (id % 2) as u32,
                ledger: 1,
                code: 1 + (id % 3) as u16,
                ..Transfer::default()
            })
            .collect();
        transfers.push(Transfer {
            id: 61,
            debit_account_id: 3,
            credit_account_id: 4,
            amount: 1,
            ledger: 1,
            code: 9,
            ..Transfer::default()
        });
        let results = ledger.create_transfers(1_001, &transfers);
        assert!(results.iter().all(|result| result.status == crate::CreateTransferStatus::Created));
        ledger
    }

    fn ids(transfers: &[Transfer]) -> Vec<u128> {
        transfers.iter().map(|transfer| transfer.id).collect()
    }

    fn where_ids(predicate: impl Fn(u128) -> bool) -> Vec<u128> {
        (1..=61).filter(|id| predicate(*id)).collect()
    }

    fn all_transfers() -> QueryFilter {
        QueryFilter { limit: u32::MAX, ..QueryFilter::default() }
    }

    fn both_sides(account_id: u128) -> AccountFilter {
        AccountFilter {
            account_id,
            limit: u32::MAX,
            flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
            ..AccountFilter::default()
        }
    }

    #[test]
    fn query_transfers_by_each_field() {
        let ledger = known_ledger();
        let query = |filter: QueryFilter| ids(&ledger.query_transfers(filter));
        assert_eq!(query(QueryFilter { user_data_128: 3, ..all_transfers() }), where_ids(|id| id <= 60 && id % 4 == 3));
        assert_eq!(query(QueryFilter { user_data_64: 2, ..all_transfers() }), where_ids(|id| id <= 60 && id % 5 == 2));
        assert_eq!(query(QueryFilter { user_data_32: 1, ..all_transfers() }), where_ids(|id| id <= 60 && id % 2 == 1));
        assert_eq!(query(QueryFilter { ledger: 1, ..all_transfers() }), where_ids(|_| true));
        assert_eq!(query(QueryFilter { code: 2, ..all_transfers() }), where_ids(|id| id <= 60 && id % 3 == 1));
        assert_eq!(query(QueryFilter { code: 9, ..all_transfers() }), vec![61]);
        assert_eq!(query(all_transfers()), where_ids(|_| true));
    }

    #[test]
    fn query_transfers_combined_reversed_limited_and_bounded() {
        let ledger = known_ledger();
        let query = |filter: QueryFilter| ids(&ledger.query_transfers(filter));
        let combined = QueryFilter { user_data_128: 1, user_data_64: 1, code: 3, ..all_transfers() };
        let expected = where_ids(|id| id <= 60 && id % 4 == 1 && id % 5 == 1 && id % 3 == 2);
        assert_eq!(expected, vec![41]);
        assert_eq!(query(combined), expected);
        let code_2 = where_ids(|id| id <= 60 && id % 3 == 1);
        let reversed = QueryFilter { code: 2, flags: QueryFilterFlags::REVERSED, ..all_transfers() };
        assert_eq!(query(reversed), code_2.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(query(QueryFilter { limit: 3, ..reversed }), vec![58, 55, 52]);
        assert_eq!(query(QueryFilter { limit: 3, code: 2, ..all_transfers() }), vec![1, 4, 7]);
        // Timestamps 1_010 to 1_020 inclusive are transfers 10 to 20.
        let bounded = QueryFilter { code: 2, timestamp_min: 1_010, timestamp_max: 1_020, ..all_transfers() };
        assert_eq!(query(bounded), vec![10, 13, 16, 19]);
        assert_eq!(query(QueryFilter { flags: QueryFilterFlags::REVERSED, limit: 2, ..bounded }), vec![19, 16]);
        assert_eq!(query(QueryFilter { timestamp_min: 1_010, timestamp_max: 0, code: 9, ..all_transfers() }), vec![61]);
    }

    #[test]
    fn query_transfers_with_nothing_to_find() {
        let ledger = known_ledger();
        let query = |filter: QueryFilter| ledger.query_transfers(filter);
        assert!(query(QueryFilter { code: 4, ..all_transfers() }).is_empty(), "no transfer has the value");
        assert!(query(QueryFilter { ledger: 2, ..all_transfers() }).is_empty());
        assert!(query(QueryFilter { code: 9, user_data_32: 1, ..all_transfers() }).is_empty(), "fields disagree");
        assert!(query(QueryFilter { code: 2, timestamp_min: 1_062, ..all_transfers() }).is_empty(), "after all");
        assert!(query(QueryFilter { code: 2, timestamp_max: 1_000, ..all_transfers() }).is_empty(), "before all");
        assert!(query(QueryFilter { code: 2, limit: 0, ..all_transfers() }).is_empty(), "a zero limit");
        let inverted = QueryFilter { code: 2, timestamp_min: 1_020, timestamp_max: 1_010, ..all_transfers() };
        assert!(query(inverted).is_empty(), "an invalid range");
        assert!(Ledger::new().query_transfers(QueryFilter { code: 2, ..all_transfers() }).is_empty());
    }

    #[test]
    fn query_accounts_by_each_field_and_combined() {
        let ledger = known_ledger();
        let query =
            |filter: QueryFilter| ledger.query_accounts(filter).iter().map(|account| account.id).collect::<Vec<_>>();
        assert_eq!(query(QueryFilter { user_data_128: 1, ..all_transfers() }), vec![1, 3, 5]);
        assert_eq!(query(QueryFilter { user_data_64: 7, ..all_transfers() }), vec![1, 2, 3, 4, 5]);
        assert_eq!(query(QueryFilter { user_data_32: 4, ..all_transfers() }), vec![4]);
        assert_eq!(query(QueryFilter { ledger: 2, ..all_transfers() }), vec![5]);
        assert_eq!(query(QueryFilter { code: 1, ..all_transfers() }), vec![2, 4]);
        assert_eq!(query(QueryFilter { code: 2, ledger: 1, ..all_transfers() }), vec![1, 3]);
        assert_eq!(
            query(QueryFilter { code: 2, flags: QueryFilterFlags::REVERSED, limit: 2, ..all_transfers() }),
            vec![5, 3]
        );
        assert!(query(QueryFilter { code: 1, ledger: 2, ..all_transfers() }).is_empty());
        assert!(query(QueryFilter { user_data_64: 8, ..all_transfers() }).is_empty());
    }

    #[test]
    fn account_transfers_by_each_field_side_and_order() {
        let ledger = known_ledger();
        let query = |filter: AccountFilter| ids(&ledger.get_account_transfers(filter));
        assert_eq!(query(both_sides(1)), where_ids(|id| id <= 60));
        assert_eq!(query(AccountFilter { user_data_128: 2, ..both_sides(1) }), where_ids(|id| id <= 60 && id % 4 == 2));
        assert_eq!(query(AccountFilter { user_data_64: 4, ..both_sides(2) }), where_ids(|id| id <= 60 && id % 5 == 4));
        assert_eq!(query(AccountFilter { user_data_32: 1, ..both_sides(1) }), where_ids(|id| id <= 60 && id % 2 == 1));
        assert_eq!(query(AccountFilter { code: 3, ..both_sides(1) }), where_ids(|id| id <= 60 && id % 3 == 2));
        // A value that is rare overall but belongs to other accounts: the shortest list is the
        // code's, and none of it is account 1's.
        assert!(query(AccountFilter { code: 9, ..both_sides(1) }).is_empty());
        assert_eq!(query(AccountFilter { code: 9, ..both_sides(3) }), vec![61]);
        let debits = AccountFilter { code: 2, flags: AccountFilterFlags::DEBITS, ..both_sides(1) };
        assert_eq!(query(debits), where_ids(|id| id <= 60 && id % 3 == 1 && id % 2 == 1));
        let credits = AccountFilter { code: 2, flags: AccountFilterFlags::CREDITS, ..both_sides(1) };
        assert_eq!(query(credits), where_ids(|id| id <= 60 && id % 3 == 1 && id % 2 == 0));
        let newest = AccountFilter {
            code: 2,
            limit: 2,
            timestamp_max: 1_050,
            flags: AccountFilterFlags::CREDITS | AccountFilterFlags::REVERSED,
            ..both_sides(1)
        };
        assert_eq!(query(newest), vec![46, 40]);
        assert!(query(AccountFilter { code: 2, limit: 0, ..both_sides(1) }).is_empty());
        assert!(query(AccountFilter { code: 2, ..both_sides(99) }).is_empty(), "no such account");
        assert!(query(AccountFilter { code: 2, ..both_sides(5) }).is_empty(), "an account without transfers");
    }

    #[test]
    fn account_balances_by_each_field_side_and_order() {
        let ledger = known_ledger();
        // Account 1 keeps history; the entry made by transfer `id` is at timestamp 1_000 + id.
        let query = |filter: AccountFilter| {
            ledger
                .get_account_balances(filter)
                .iter()
                .map(|balance| u128::from(balance.timestamp - 1_000))
                .collect::<Vec<_>>()
        };
        assert_eq!(query(both_sides(1)), where_ids(|id| id <= 60));
        assert_eq!(query(AccountFilter { user_data_128: 1, ..both_sides(1) }), where_ids(|id| id <= 60 && id % 4 == 1));
        assert_eq!(query(AccountFilter { user_data_64: 3, ..both_sides(1) }), where_ids(|id| id <= 60 && id % 5 == 3));
        assert_eq!(query(AccountFilter { user_data_32: 1, ..both_sides(2) }), where_ids(|id| id <= 60 && id % 2 == 1));
        assert_eq!(query(AccountFilter { code: 1, ..both_sides(1) }), where_ids(|id| id <= 60 && id % 3 == 0));
        let combined = AccountFilter { code: 1, user_data_64: 0, user_data_128: 2, ..both_sides(1) };
        assert_eq!(query(combined), where_ids(|id| id <= 60 && id % 3 == 0 && id % 4 == 2));
        let newest = AccountFilter {
            code: 1,
            limit: 3,
            timestamp_min: 1_010,
            flags: AccountFilterFlags::DEBITS | AccountFilterFlags::REVERSED,
            ..both_sides(1)
        };
        assert_eq!(query(newest), vec![57, 51, 45]);
        assert!(query(AccountFilter { code: 9, ..both_sides(1) }).is_empty());
        assert!(query(AccountFilter { code: 9, ..both_sides(3) }).is_empty(), "account 3 keeps no history");
        assert!(query(AccountFilter { code: 1, timestamp_min: 1_061, ..both_sides(1) }).is_empty());
    }

    /// A chain that fails takes its objects out of the indexes with it.
    #[test]
    fn a_rolled_back_chain_leaves_nothing_in_the_indexes() {
        let mut ledger = known_ledger();
        let chain = [
            Transfer {
                id: 100,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1,
                ledger: 1,
                code: 77,
                user_data_128: 555,
                flags: TransferFlags::LINKED,
                ..Transfer::default()
            },
            Transfer {
                id: 101,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1,
                ledger: 1,
                code: 1,
                user_data_64: 3,
                flags: TransferFlags::LINKED,
                ..Transfer::default()
            },
            Transfer {
                id: 102,
                debit_account_id: 1,
                credit_account_id: 1,
                amount: 1,
                ledger: 1,
                code: 77,
                ..Transfer::default()
            },
        ];
        let results = ledger.create_transfers(2_000, &chain);
        assert!(results.iter().all(|result| result.status != crate::CreateTransferStatus::Created));
        assert!(ledger.query_transfers(QueryFilter { code: 77, ..all_transfers() }).is_empty());
        assert!(ledger.query_transfers(QueryFilter { user_data_128: 555, ..all_transfers() }).is_empty());
        assert_eq!(ledger.query_transfers(QueryFilter { user_data_64: 3, ..all_transfers() }).len(), 12);
        assert!(ledger.get_account_balances(AccountFilter { code: 77, ..both_sides(1) }).is_empty());
        // The lists stay consistent: a transfer with the rolled-back values is found alone.
        let transfer = Transfer { id: 103, code: 77, user_data_128: 555, flags: TransferFlags::default(), ..chain[0] };
        assert_eq!(ledger.create_transfers(3_000, &[transfer])[0].status, crate::CreateTransferStatus::Created);
        assert_eq!(ids(&ledger.query_transfers(QueryFilter { code: 77, ..all_transfers() })), vec![103]);
        assert_eq!(ids(&ledger.query_transfers(QueryFilter { user_data_128: 555, ..all_transfers() })), vec![103]);
        assert_eq!(ledger.digest(), ledger.digest_from_scratch());
    }
}
