//! A selective query over a large ledger: `query_transfers` for the one `code` that 1 in 1,000
//! transfers has, over the whole timestamp range, on a ledger of 1,000,000 transfers. Without an
//! index this reads every transfer; with the per-value index it reads the 1,000 it answers with.
//! Also a `user_data_128` that one transfer has, and `get_account_transfers` of a busy account
//! for that rare code.
//!
//! `cargo bench -p tally-ledger --bench query_transfers`. Before measuring it prints the bytes
//! the query indexes hold per transfer. `TALLY_BENCH_TRANSFERS` overrides the ledger's size.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tally_ledger::*;

const ACCOUNTS: u64 = 10_000;
const TRANSFERS: u64 = 1_000_000;
/// One transfer in this many has `RARE_CODE`.
const RARE_EVERY: u64 = 1_000;
const RARE_CODE: u16 = 2;

/// A small deterministic generator (SplitMix64), so every run measures the same ledger.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Accounts 1 to `ACCOUNTS` on ledger 1, then `transfers` between random pairs, each with its id
/// as `user_data_128` (as an invoice number would be) and code 1, except every `RARE_EVERY`th,
/// which has `RARE_CODE`. Account 1 is on both sides of one transfer in ten.
fn ledger(transfers: u64) -> Ledger {
    let mut ledger = Ledger::new();
    let mut timestamp = 1;
    let accounts: Vec<Account> =
        (1..=ACCOUNTS).map(|id| Account { id: u128::from(id), ledger: 1, code: 1, ..Account::default() }).collect();
    for batch in accounts.chunks(BATCH_EVENTS_MAX) {
        ledger.create_accounts(timestamp, batch);
        timestamp += batch.len() as u64;
    }
    let mut random = Random(7);
    let mut id = 1u64;
    while id <= transfers {
        let end = (id + BATCH_EVENTS_MAX as u64 - 1).min(transfers);
        let batch: Vec<Transfer> = (id..=end)
            .map(|id| {
                let debit = if id % 10 == 0 { 1 } else { 1 + random.next() % ACCOUNTS };
                let credit = 1 + (debit + random.next() % (ACCOUNTS - 1)) % ACCOUNTS;
                Transfer {
                    id: u128::from(id),
                    debit_account_id: u128::from(debit),
                    credit_account_id: u128::from(credit),
                    amount: 1,
                    user_data_128: u128::from(id),
                    ledger: 1,
                    code: if id % RARE_EVERY == 0 { RARE_CODE } else { 1 },
                    ..Transfer::default()
                }
            })
            .collect();
        let results = ledger.create_transfers(timestamp, &batch);
        assert!(results.iter().all(|result| result.status == CreateTransferStatus::Created));
        timestamp += batch.len() as u64;
        id = end + 1;
    }
    ledger
}

fn benches(criterion: &mut Criterion) {
    let transfers =
        std::env::var("TALLY_BENCH_TRANSFERS").ok().and_then(|value| value.parse().ok()).unwrap_or(TRANSFERS);
    let ledger = ledger(transfers);
    eprintln!(
        "ledger with {transfers} transfers: the query indexes hold {:.1} bytes per transfer",
        ledger.query_index_bytes() as f64 / transfers as f64
    );
    let rare = QueryFilter { code: RARE_CODE, limit: u32::MAX, ..QueryFilter::default() };
    assert_eq!(ledger.query_transfers(rare).len() as u64, transfers / RARE_EVERY);
    let one = QueryFilter { user_data_128: u128::from(transfers / 2), limit: u32::MAX, ..QueryFilter::default() };
    assert_eq!(ledger.query_transfers(one).len(), 1);
    let busy = AccountFilter {
        account_id: 1,
        code: RARE_CODE,
        limit: u32::MAX,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    assert!(!ledger.get_account_transfers(busy).is_empty());

    let mut group = criterion.benchmark_group("query_transfers");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("code_1_in_1000_whole_range", |bencher| {
        bencher.iter(|| black_box(ledger.query_transfers(black_box(rare))))
    });
    group.bench_function("user_data_128_of_one_transfer", |bencher| {
        bencher.iter(|| black_box(ledger.query_transfers(black_box(one))))
    });
    group.bench_function("account_transfers_of_busy_account_by_rare_code", |bencher| {
        bencher.iter(|| black_box(ledger.get_account_transfers(black_box(busy))))
    });
    group.finish();
}

criterion_group!(queries, benches);
criterion_main!(queries);
