//! A quick throughput probe without criterion, for profilers:
//! `cargo run --release -p tally-ledger --example throughput -- <accounts> <batches> [unique]`.
//! With `unique`, every transfer carries its id as `user_data_128` (an invoice number), so each
//! adds a value to that field's query index; otherwise `user_data` is zero, as in TigerBeetle's
//! benchmark.
//!
//! It reports transfers per second of wall time and, on Linux, per second the thread spent on a
//! CPU (from `/proc/thread-self/schedstat`), which stays comparable on a machine that other work
//! shares.

use std::time::Instant;

use tally_ledger::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let accounts: u64 = args.next().map_or(10_000, |value| value.parse().expect("accounts"));
    let batches: u64 = args.next().map_or(100, |value| value.parse().expect("batches"));
    let unique_user_data = match args.next().as_deref() {
        None => false,
        Some("unique") => true,
        Some(other) => panic!("the third argument is `unique` or nothing, not {other:?}"),
    };
    let mut ledger = Ledger::with_capacity(accounts as u32, batches * BATCH_EVENTS_MAX as u64);
    let mut timestamp = 1;
    for start in (1..=accounts).step_by(BATCH_EVENTS_MAX) {
        let end = (start + BATCH_EVENTS_MAX as u64 - 1).min(accounts);
        let batch: Vec<Account> =
            (start..=end).map(|id| Account { id: id.into(), ledger: 1, code: 1, ..Account::default() }).collect();
        ledger.create_accounts(timestamp, &batch);
        timestamp += batch.len() as u64;
    }
    let mut state = 42u64;
    let mut random = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let mut id = 1u128;
    let mut elapsed = std::time::Duration::ZERO;
    let mut on_cpu_ns = 0;
    for _ in 0..batches {
        let batch: Vec<Transfer> = (0..BATCH_EVENTS_MAX)
            .map(|_| {
                let debit = 1 + random(accounts);
                let credit = 1 + (debit + random(accounts - 1)) % accounts;
                id += 1;
                Transfer {
                    id,
                    debit_account_id: debit.into(),
                    credit_account_id: credit.into(),
                    amount: 1 + u128::from(random(1000)),
                    user_data_128: if unique_user_data { id } else { 0 },
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                }
            })
            .collect();
        let (start, start_on_cpu_ns) = (Instant::now(), thread_on_cpu_ns());
        let results = ledger.create_transfers(timestamp, &batch);
        std::hint::black_box(ledger.digest());
        elapsed += start.elapsed();
        on_cpu_ns += thread_on_cpu_ns().saturating_sub(start_on_cpu_ns);
        timestamp += batch.len() as u64;
        assert!(results.iter().all(|result| result.status == CreateTransferStatus::Created));
    }
    let transfers = batches * BATCH_EVENTS_MAX as u64;
    println!(
        "{transfers} transfers over {accounts} accounts in {:.3} s: {:.0} transfers/s ({:.0} per second on a CPU)",
        elapsed.as_secs_f64(),
        transfers as f64 / elapsed.as_secs_f64(),
        transfers as f64 / (on_cpu_ns as f64 / 1e9),
    );
}

/// Nanoseconds this thread has spent on a CPU (Linux), or 0 where that cannot be read.
fn thread_on_cpu_ns() -> u64 {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    schedstat.split_whitespace().next().and_then(|value| value.parse().ok()).unwrap_or(0)
}
