//! TigerBeetle's benchmark workload on Tally's ledger: full batches of 8,190 transfers between
//! random pairs of accounts, one thread, the state digest maintained after every batch.
//!
//! `cargo bench -p tally-ledger` runs three ledgers: 10,000 accounts; 1,000,000 accounts; and
//! 1,000,000 accounts after 10,000,000 transfers are already in the ledger (to show that the
//! cost per transfer does not grow with the ledger). Before measuring, it prints the memory the
//! ledger holds per account and per transfer, read from the process's resident set size.
//! `TALLY_BENCH_QUICK=1` runs only the first.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tally_ledger::*;

const LEDGER: u32 = 1;

/// A small deterministic generator (SplitMix64), so every run measures the same workload.
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
}

/// Batches of transfers between random pairs of `accounts` accounts, with fresh ids.
struct Generator {
    accounts: u64,
    next_id: u128,
    random: Random,
}

/// A ledger with its clock.
struct Subject {
    ledger: Ledger,
    timestamp: u64,
}

struct Workload {
    generator: Generator,
    subject: Subject,
}

impl Workload {
    /// A ledger that grows as it fills (so that the memory it reports is what it needs, and the
    /// cost of growing is measured too).
    fn new(accounts: u64) -> Self {
        let ledger = Ledger::new();
        let mut workload = Self {
            generator: Generator { accounts, next_id: 1, random: Random(42) },
            subject: Subject { ledger, timestamp: 1 },
        };
        let mut id = 1;
        while id <= accounts {
            let end = (id + BATCH_EVENTS_MAX as u64 - 1).min(accounts);
            let batch: Vec<Account> = (id..=end)
                .map(|id| Account { id: u128::from(id), ledger: LEDGER, code: 1, ..Account::default() })
                .collect();
            let timestamp = workload.subject.tick(batch.len());
            let results = workload.subject.ledger.create_accounts(timestamp, &batch);
            assert!(results.iter().all(|result| result.status == CreateAccountStatus::Created));
            id = end + 1;
        }
        workload
    }
}

impl Subject {
    fn tick(&mut self, events: usize) -> u64 {
        let timestamp = self.timestamp;
        self.timestamp += events as u64;
        timestamp
    }

    fn apply(&mut self, batch: &[Transfer]) {
        let timestamp = self.tick(batch.len());
        let results = self.ledger.create_transfers(timestamp, batch);
        debug_assert!(results.iter().all(|result| result.status == CreateTransferStatus::Created));
        black_box(self.ledger.digest());
    }
}

impl Generator {
    fn batch(&mut self) -> Vec<Transfer> {
        (0..BATCH_EVENTS_MAX)
            .map(|_| {
                let debit = 1 + self.random.below(self.accounts);
                let mut credit = 1 + self.random.below(self.accounts - 1);
                if credit >= debit {
                    credit += 1;
                }
                let id = self.next_id;
                self.next_id += 1;
                Transfer {
                    id,
                    debit_account_id: u128::from(debit),
                    credit_account_id: u128::from(credit),
                    amount: u128::from(1 + self.random.below(1_000)),
                    ledger: LEDGER,
                    code: 1,
                    ..Transfer::default()
                }
            })
            .collect()
    }
}

/// The resident set size of this process in bytes (Linux), or 0 where it cannot be read.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kilobytes| kilobytes * 1024)
}

fn prepare(accounts: u64, transfers: u64) -> Workload {
    let before = resident_bytes();
    let mut workload = Workload::new(accounts);
    let with_accounts = resident_bytes();
    let mut loaded = 0;
    while loaded < transfers {
        let batch = workload.generator.batch();
        workload.subject.apply(&batch);
        loaded += batch.len() as u64;
    }
    let with_transfers = resident_bytes();
    eprintln!(
        "ledger with {accounts} accounts: {:.0} bytes of memory per account",
        with_accounts.saturating_sub(before) as f64 / accounts as f64
    );
    if loaded > 0 {
        eprintln!(
            "ledger with {loaded} transfers: {:.0} bytes of memory per transfer",
            with_transfers.saturating_sub(with_accounts) as f64 / loaded as f64
        );
    }
    workload
}

fn bench_workload(criterion: &mut Criterion, name: &str, accounts: u64, preloaded_transfers: u64) {
    let mut workload = prepare(accounts, preloaded_transfers);
    let mut group = criterion.benchmark_group("create_transfers");
    group.throughput(Throughput::Elements(BATCH_EVENTS_MAX as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function(name, |bencher| {
        bencher.iter_batched(
            || workload.generator.batch(),
            |batch| workload.subject.apply(&batch),
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn benches(criterion: &mut Criterion) {
    bench_workload(criterion, "10k_accounts", 10_000, 0);
    if std::env::var_os("TALLY_BENCH_QUICK").is_none() {
        bench_workload(criterion, "1m_accounts", 1_000_000, 0);
        bench_workload(criterion, "1m_accounts_after_10m_transfers", 1_000_000, 10_000_000);
    }
}

criterion_group!(ledger, benches);
criterion_main!(ledger);
