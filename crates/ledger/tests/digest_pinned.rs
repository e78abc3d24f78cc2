//! The state digest, proofs and snapshots pinned to the bytes they had before the ledger was made
//! faster (issue 11, item 7).
//!
//! Replicas that run different builds must still agree on every digest, so the way the digest is
//! computed may change but its value may not. Each case below drives a ledger of a given size
//! through a fixed random workload that mixes every kind of state the digest covers (plain,
//! pending, posted, voided, expired, balancing, closing and linked transfers; transient failures;
//! balance history; accounts created between transfer batches, so that account segments fill
//! across batches) and folds into one hash: the digest after every batch, the digest computed from
//! scratch, proofs of accounts and transfers, and the snapshot. The pinned values were computed
//! by the ledger at commit 69f0220; a different value means a replica running this build would
//! disagree with one running that build.

use tally_ledger::*;

const SECOND: u64 = 1_000_000_000;

/// SplitMix64: a small deterministic generator.
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

/// A ledger driven through the workload, and everything it produced folded into one hash.
struct Run {
    ledger: Ledger,
    random: Random,
    /// The first timestamp after the previous batch's events.
    timestamp: u64,
    accounts: u64,
    next_transfer_id: u128,
    pending_ids: Vec<u128>,
    fold: blake3::Hasher,
}

impl Run {
    fn new(seed: u64) -> Self {
        Self {
            ledger: Ledger::new(),
            random: Random(seed),
            timestamp: SECOND,
            accounts: 0,
            next_transfer_id: 1,
            pending_ids: Vec::new(),
            fold: blake3::Hasher::new(),
        }
    }

    /// The next batch timestamp: past the previous batch's events, sometimes by seconds (so that
    /// pending transfers with a timeout expire).
    fn tick(&mut self, events: usize) -> u64 {
        let gap = if self.random.one_in(4) { 2 * SECOND } else { 1 + self.random.below(1_000) };
        let timestamp = self.timestamp + gap;
        self.timestamp = timestamp + events as u64;
        timestamp
    }

    fn fold_digest(&mut self) {
        let digest = self.ledger.digest();
        self.fold.update(&digest);
    }

    fn create_accounts(&mut self, count: u64) {
        let mut created = 0;
        while created < count {
            let len = (count - created).min(BATCH_EVENTS_MAX as u64);
            let batch: Vec<Account> = (0..len)
                .map(|offset| {
                    let id = u128::from(self.accounts + created + offset + 1);
                    let mut flags = AccountFlags::NONE;
                    if self.random.one_in(8) {
                        flags |= AccountFlags::HISTORY;
                    }
                    match self.random.below(16) {
                        0 => flags |= AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                        1 => flags |= AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
                        _ => {}
                    }
                    Account { id, ledger: 1, code: 1, flags, user_data_64: self.random.next(), ..Account::default() }
                })
                .collect();
            let timestamp = self.tick(batch.len());
            let results = self.ledger.create_accounts(timestamp, &batch);
            assert!(results.iter().all(|result| result.status == CreateAccountStatus::Created));
            created += len;
            self.fold_digest();
        }
        self.accounts += count;
    }

    fn account_id(&mut self) -> u128 {
        u128::from(1 + self.random.below(self.accounts))
    }

    fn transfer(&mut self) -> Transfer {
        let id = self.next_transfer_id;
        self.next_transfer_id += 1;
        let debit = self.account_id();
        let mut credit = self.account_id();
        if credit == debit && !self.random.one_in(50) {
            credit = if debit == 1 { 2.min(self.accounts as u128) } else { debit - 1 };
        }
        let base = Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount: u128::from(1 + self.random.below(1_000)),
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        match self.random.below(40) {
            0..=3 => {
                self.pending_ids.push(id);
                let timeout = if self.random.one_in(2) { 1 } else { 0 };
                Transfer { flags: TransferFlags::PENDING, timeout, ..base }
            }
            4 | 5 if !self.pending_ids.is_empty() => {
                let pick = self.random.below(self.pending_ids.len() as u64) as usize;
                let pending_id = self.pending_ids.swap_remove(pick);
                let flags = if self.random.one_in(2) {
                    TransferFlags::POST_PENDING_TRANSFER
                } else {
                    TransferFlags::VOID_PENDING_TRANSFER
                };
                Transfer { pending_id, flags, amount: AMOUNT_MAX, debit_account_id: 0, credit_account_id: 0, ..base }
            }
            6 => Transfer { flags: TransferFlags::BALANCING_DEBIT, ..base },
            7 => Transfer { flags: TransferFlags::BALANCING_CREDIT, amount: AMOUNT_MAX, ..base },
            8 => {
                self.pending_ids.push(id);
                Transfer { flags: TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT, ..base }
            }
            9 => Transfer { debit_account_id: u128::from(self.accounts + 7), ..base }, // Not found.
            10 => Transfer { flags: TransferFlags::LINKED, ..base },
            11 => Transfer { amount: AMOUNT_MAX / 2, ..base }, // Overflows or exceeds a limit.
            _ => base,
        }
    }

    fn create_transfers(&mut self, len: usize) {
        let batch: Vec<Transfer> = (0..len).map(|_| self.transfer()).collect();
        let timestamp = self.tick(batch.len());
        let results = self.ledger.create_transfers(timestamp, &batch);
        for result in &results {
            self.fold.update(&result.timestamp.to_le_bytes());
            self.fold.update(&[result.status as u8]);
        }
        self.fold_digest();
    }

    /// Proofs of a sample of accounts and transfers, checked and folded in; the digest from
    /// scratch; the snapshot.
    fn finish(mut self) -> String {
        let digest = self.ledger.digest();
        assert_eq!(digest, self.ledger.digest_from_scratch(), "incremental digest drifted");
        let parts = self.ledger.digest_parts();
        self.fold.update(&parts.digest());
        let mut account_ids: Vec<u128> = (0..16).map(|_| self.account_id()).collect();
        account_ids.extend([1, self.accounts as u128]);
        for id in account_ids {
            let (account, proof) = self.ledger.prove_account(id).expect("the account exists");
            assert!(proof.verify(&digest, &account));
            self.fold.update(&proof.index.to_le_bytes());
            for leaf in &proof.path.chunk {
                self.fold.update(leaf);
            }
            for sibling in &proof.path.siblings {
                self.fold.update(sibling);
            }
            for node in &proof.path.path {
                self.fold.update(node);
            }
        }
        let transfers = self.ledger.transfer_count();
        let mut transfer_ids: Vec<u128> = Vec::new();
        for _ in 0..24 {
            let id = u128::from(1 + self.random.below(self.next_transfer_id as u64 - 1));
            transfer_ids.push(id);
        }
        transfer_ids.extend(self.pending_ids.iter().take(8).copied());
        let mut proven = 0;
        for id in transfer_ids {
            let Some((transfer, proof)) = self.ledger.prove_transfer(id) else { continue };
            assert!(proof.verify(&digest, &transfer));
            proven += 1;
            self.fold.update(&proof.log.index.to_le_bytes());
            self.fold.update(&proof.log.count.to_le_bytes());
            self.fold.update(&proof.log.chunk);
            for sibling in &proof.log.siblings {
                self.fold.update(sibling);
            }
            if let Some((status, slot, path)) = &proof.pending {
                self.fold.update(&[*status as u8]);
                self.fold.update(&slot.to_le_bytes());
                for node in path {
                    self.fold.update(node);
                }
            }
        }
        assert!(transfers == 0 || proven > 0, "some sampled transfers exist");
        self.fold.update(&self.ledger.snapshot());
        self.fold.finalize().to_hex().to_string()
    }
}

/// Drives a ledger that ends with `accounts` accounts through `batches` batches of transfers of
/// up to `batch_len` events, creating its accounts in four steps between them.
fn run(seed: u64, accounts: u64, batches: usize, batch_len: usize) -> String {
    let mut run = Run::new(seed);
    let steps = [accounts / 2, accounts / 4, accounts / 8];
    let mut created = 0;
    for (batch, step) in (0..batches).zip(steps.iter().chain(std::iter::repeat(&0))) {
        if *step > 0 || (batch == 0 && accounts > 0) {
            let count = (*step).max(2);
            run.create_accounts(count);
            created += count;
        }
        let len = 1 + run.random.below(batch_len as u64) as usize;
        run.create_transfers(len);
    }
    if accounts > created {
        run.create_accounts(accounts - created);
        run.create_transfers(batch_len);
    }
    run.finish()
}

#[test]
fn digests_proofs_and_snapshots_are_pinned() {
    let cases: [(u64, u64, usize, usize, &str); 7] = [
        (1, 2, 6, 20, "d23934156e45869243294fd9f3e33bed8f5170f7001da238b88c46508be9beee"),
        (2, 33, 10, 60, "75ff054d1ecbeed8d9de025ec7fb734e3d0a1470726daeafe4e81615660048f2"),
        (3, 600, 12, 400, "53082578564d2087573ad84fe3536dda23b0d6a3a7b8a3f3427733faf6e5b5b6"),
        (4, 1_100, 12, 3_000, "41a289207710763e76e3662ffbf4e2134ca971c65324e257b2772cc62e387bd8"),
        (5, 5_000, 10, BATCH_EVENTS_MAX, "d73a1e2e1fdabce09a6d1e18e261cf0f7768d8cef54c00871cc6bf21645ffef9"),
        (6, 40_000, 6, BATCH_EVENTS_MAX, "1deb524c644a5ce9a423aef3d69337e1fc250a9b7ebe01a9f2236d3cc2895b63"),
        (7, 300_000, 5, BATCH_EVENTS_MAX, "f725d385889b1b8b75e196e45e1e2e16c87581a770296ddaba9bc533c15604ca"),
    ];
    let mut failures = Vec::new();
    for (seed, accounts, batches, batch_len, pinned) in cases {
        let fold = run(seed, accounts, batches, batch_len);
        if fold != pinned {
            failures.push(format!("{accounts} accounts: got {fold}, pinned {pinned}"));
        }
    }
    assert!(failures.is_empty(), "the digest changed: {failures:#?}");
}
