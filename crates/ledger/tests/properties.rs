//! Properties of the ledger over random scenarios (see `support/mod.rs` for what they mix): money
//! is conserved per ledger, balance limits hold, re-submitting a batch changes nothing, replicas
//! agree on the digest and a different state shows in it, snapshots restore exactly and refuse
//! corruption.
//!
//! `PROPTEST_CASES=10000 cargo test -p tally-ledger --test properties` runs more cases.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use support::*;
use tally_ledger::*;

const STEPS: usize = 10;
const EVENTS_MAX: usize = 40;

/// Per ledger, posted debits equal posted credits and pending debits equal pending credits; no
/// account breaks its balance-limit flag.
fn check_invariants(step: usize, ledger: &Ledger) -> Result<(), TestCaseError> {
    // Per ledger: (debits_pending, credits_pending, debits_posted, credits_posted).
    let mut sums: BTreeMap<u32, [WideSum; 4]> = BTreeMap::new();
    for account in ledger.lookup_accounts(&account_ids()) {
        let entry = sums.entry(account.ledger).or_default();
        entry[0].add(account.debits_pending);
        entry[1].add(account.credits_pending);
        entry[2].add(account.debits_posted);
        entry[3].add(account.credits_posted);
        let debits = account.debits_pending.checked_add(account.debits_posted);
        let credits = account.credits_pending.checked_add(account.credits_posted);
        prop_assert!(debits.is_some() && credits.is_some(), "step {}: balances overflow: {:?}", step, account);
        if account.flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) {
            prop_assert!(
                debits.unwrap() <= account.credits_posted,
                "step {}: debits exceed credits: {:?}",
                step,
                account
            );
        }
        if account.flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) {
            prop_assert!(
                credits.unwrap() <= account.debits_posted,
                "step {}: credits exceed debits: {:?}",
                step,
                account
            );
        }
    }
    for (ledger_number, [debits_pending, credits_pending, debits_posted, credits_posted]) in sums {
        prop_assert_eq!(debits_pending, credits_pending, "step {}: ledger {}: pending sums", step, ledger_number);
        prop_assert_eq!(debits_posted, credits_posted, "step {}: ledger {}: posted sums", step, ledger_number);
    }
    Ok(())
}

/// The index of the first event of the linked chain that holds event `index` (itself if the
/// event is not part of a chain).
fn chain_start(linked: &[bool], index: usize) -> usize {
    let mut start = index;
    while start > 0 && linked[start - 1] {
        start -= 1;
    }
    start
}

/// Overflows are not transient in TigerBeetle, yet may pass later (pending amounts are released).
fn overflows(status: CreateTransferStatus) -> bool {
    use CreateTransferStatus as S;
    matches!(
        status,
        S::OverflowsDebitsPending
            | S::OverflowsCreditsPending
            | S::OverflowsDebitsPosted
            | S::OverflowsCreditsPosted
            | S::OverflowsDebits
            | S::OverflowsCredits
    )
}

/// A batch of the same length whose events all fail without touching state (id zero).
fn filler(batch: &Batch) -> Batch {
    match batch {
        Batch::Accounts(events) => {
            Batch::Accounts(vec![Account { ledger: 1, code: 1, ..Account::default() }; events.len()])
        }
        Batch::Transfers(events) => Batch::Transfers(vec![Transfer::default(); events.len()]),
    }
}

/// Re-submits `step` (already applied, with `first` as its results) at the earliest later
/// timestamp, and checks that balances and transfers do not change and that statuses are those
/// of a retry: an event created before now `Exists` (or, after the first event of a linked chain,
/// fails with the chain that the `Exists` broke); an event that failed still fails, and one that
/// failed transiently now gets `IdAlreadyFailed`.
///
/// One exception, TigerBeetle's: overflows are not transient, so an event that overflowed may
/// pass on a retry once pending amounts were released (even by a later event of the same batch);
/// a batch with an overflow is not checked for changes, nor its failed events for failing again.
fn check_resubmission(
    index: usize,
    ledger: &Ledger,
    step: &Step,
    first: &Results,
    transfer_ids: &[u128],
) -> Result<(), TestCaseError> {
    let later = step.timestamp + step.batch.len() as u64;
    // Both copies see the same expiries at `later`; only one sees the batch again.
    let mut baseline = ledger.clone();
    apply(&mut baseline, later, &filler(&step.batch));
    let mut retried = ledger.clone();
    let second = apply(&mut retried, later, &step.batch);
    let overflowed = matches!(first, Results::Transfers(results) if results.iter().any(|r| overflows(r.status)));
    if !overflowed {
        let account_ids = account_ids();
        prop_assert_eq!(
            baseline.lookup_accounts(&account_ids),
            retried.lookup_accounts(&account_ids),
            "step {}: re-submission changed accounts",
            index
        );
        prop_assert_eq!(
            baseline.lookup_transfers(transfer_ids),
            retried.lookup_transfers(transfer_ids),
            "step {}: re-submission changed transfers",
            index
        );
    }
    match (&step.batch, first, &second) {
        (Batch::Accounts(events), Results::Accounts(first), Results::Accounts(second)) => {
            let linked: Vec<bool> = events.iter().map(|a| a.flags.contains(AccountFlags::LINKED)).collect();
            for (i, (before, after)) in first.iter().zip(second).enumerate() {
                use CreateAccountStatus as S;
                if before.status == S::Created {
                    let expected = if chain_start(&linked, i) == i { S::Exists } else { S::LinkedEventFailed };
                    prop_assert_eq!(after.status, expected, "step {}, event {}: {:?}", index, i, events[i]);
                    if expected == S::Exists {
                        prop_assert_eq!(after.timestamp, before.timestamp, "step {}, event {}", index, i);
                    }
                } else {
                    prop_assert_ne!(after.status, S::Created, "step {}, event {}: {:?}", index, i, events[i]);
                }
            }
        }
        (Batch::Transfers(events), Results::Transfers(first), Results::Transfers(second)) => {
            let linked: Vec<bool> = events.iter().map(|t| t.flags.contains(TransferFlags::LINKED)).collect();
            for (i, (before, after)) in first.iter().zip(second).enumerate() {
                use CreateTransferStatus as S;
                if before.status == S::Created {
                    let expected = if chain_start(&linked, i) == i { S::Exists } else { S::LinkedEventFailed };
                    prop_assert_eq!(after.status, expected, "step {}, event {}: {:?}", index, i, events[i]);
                    if expected == S::Exists {
                        prop_assert_eq!(after.timestamp, before.timestamp, "step {}, event {}", index, i);
                    }
                } else if support::reference::transient(before.status) {
                    prop_assert!(
                        matches!(after.status, S::IdAlreadyFailed | S::LinkedEventFailed),
                        "step {}, event {}: failed with {:?}, retried: {:?}; {:?}",
                        index,
                        i,
                        before.status,
                        after.status,
                        events[i]
                    );
                } else if !overflowed {
                    prop_assert_ne!(after.status, S::Created, "step {}, event {}: {:?}", index, i, events[i]);
                }
            }
        }
        _ => unreachable!("results match their batch"),
    }
    Ok(())
}

/// Changes one event of a batch a little (so that the outcome usually differs).
fn mutate(batch: &Batch, which: Index, how: u8) -> Batch {
    match batch {
        Batch::Accounts(events) => {
            let mut events = events.clone();
            let at = which.index(events.len());
            let event = &mut events[at];
            match how % 3 {
                0 => event.user_data_32 ^= 1,
                1 => event.id = event.id.wrapping_add(1),
                _ => event.flags = AccountFlags::from_bits_retain(event.flags.bits() ^ AccountFlags::HISTORY.bits()),
            }
            Batch::Accounts(events)
        }
        Batch::Transfers(events) => {
            let mut events = events.clone();
            let at = which.index(events.len());
            let event = &mut events[at];
            match how % 3 {
                0 => event.amount = event.amount.wrapping_add(1),
                1 => event.user_data_64 ^= 1,
                _ => event.id = event.id.wrapping_add(1),
            }
            Batch::Transfers(events)
        }
    }
}

proptest! {
    #![proptest_config(config(96))]

    /// After every batch: per ledger, sum(debits_posted) == sum(credits_posted) and
    /// sum(debits_pending) == sum(credits_pending); no account breaks its limit flag.
    #[test]
    fn money_is_conserved_and_limits_hold(generated in scenario(STEPS, EVENTS_MAX)) {
        let steps = resolve(&generated);
        check(&steps, || {
            let mut ledger = Ledger::new();
            for (index, step) in steps.iter().enumerate() {
                apply(&mut ledger, step.timestamp, &step.batch);
                check_invariants(index, &ledger)?;
            }
            Ok(())
        })?;
    }

    /// Re-submitting any batch right after it (at a later timestamp) changes no balance and no
    /// transfer, and answers as a retry should.
    #[test]
    fn resubmitting_a_batch_is_idempotent(generated in scenario(STEPS, EVENTS_MAX)) {
        let steps = resolve(&generated);
        check(&steps, || {
            let transfer_ids = transfer_ids(&steps);
            let mut ledger = Ledger::new();
            for (index, step) in steps.iter().enumerate() {
                let results = apply(&mut ledger, step.timestamp, &step.batch);
                check_resubmission(index, &ledger, step, &results, &transfer_ids)?;
            }
            Ok(())
        })?;
    }

    /// Two ledgers fed the same batches agree on the results and the digest after every batch.
    /// A third fed one extra account at step `extra` disagrees from then on, and a fourth fed a
    /// slightly changed batch at step `changed` disagrees whenever its visible state differs.
    #[test]
    fn replicas_agree_on_the_digest_and_differences_show(
        generated in scenario(STEPS, EVENTS_MAX),
        extra in 0..STEPS,
        changed in 1..STEPS,
        which in any::<Index>(),
        how in any::<u8>(),
    ) {
        let steps = resolve(&generated);
        check(&steps, || {
            let transfer_ids = transfer_ids(&steps);
            let (mut a, mut b, mut c, mut d) = (Ledger::new(), Ledger::new(), Ledger::new(), Ledger::new());
            for (index, step) in steps.iter().enumerate() {
                let results_a = apply(&mut a, step.timestamp, &step.batch);
                let results_b = apply(&mut b, step.timestamp, &step.batch);
                prop_assert_eq!(&results_a, &results_b, "step {}: same batch, different results", index);
                prop_assert_eq!(a.digest(), b.digest(), "step {}: same batches, different digests", index);

                apply(&mut c, step.timestamp, &step.batch);
                if index == extra {
                    let account = Account { id: 1_000_000, ledger: 1, code: 1, ..Account::default() };
                    let results = c.create_accounts(step.timestamp + step.batch.len() as u64, &[account]);
                    prop_assert_eq!(results[0].status, CreateAccountStatus::Created);
                }
                if index >= extra {
                    prop_assert_ne!(a.digest(), c.digest(), "step {}: an extra account does not show in the digest", index);
                }

                let batch_d = if index == changed { mutate(&step.batch, which, how) } else { step.batch.clone() };
                apply(&mut d, step.timestamp, &batch_d);
                if observe(&a, &transfer_ids) != observe(&d, &transfer_ids) {
                    prop_assert_ne!(a.digest(), d.digest(), "step {}: different states, same digest", index);
                }
            }
            Ok(())
        })?;
    }

    /// A restored snapshot has the same digest, answers every lookup and query the same, and
    /// snapshots to the same bytes; a ledger restored after every batch and fed the rest gives the
    /// same results and digests as the original.
    #[test]
    fn snapshot_restore_keeps_digest_answers_and_future(generated in scenario(STEPS, EVENTS_MAX)) {
        let steps = resolve(&generated);
        check(&steps, || {
            let transfer_ids = transfer_ids(&steps);
            let mut original = Ledger::new();
            let mut restored = Ledger::restore(&Ledger::new().snapshot()).expect("an empty ledger restores");
            prop_assert_eq!(original.digest(), restored.digest());
            for (index, step) in steps.iter().enumerate() {
                let results_original = apply(&mut original, step.timestamp, &step.batch);
                let results_restored = apply(&mut restored, step.timestamp, &step.batch);
                prop_assert_eq!(&results_original, &results_restored, "step {}: results after restore", index);

                let snapshot = original.snapshot();
                let copy = Ledger::restore(&snapshot)
                    .map_err(|error| TestCaseError::fail(format!("step {index}: a snapshot does not restore: {error:?}")))?;
                prop_assert_eq!(copy.digest(), original.digest(), "step {}: digest after restore", index);
                prop_assert_eq!(copy.snapshot(), snapshot, "step {}: a restored ledger snapshots differently", index);
                prop_assert_eq!(observe(&copy, &transfer_ids), observe(&original, &transfer_ids), "step {}: answers after restore", index);

                // The continuing ledger goes through a snapshot after every batch.
                restored = Ledger::restore(&restored.snapshot())
                    .map_err(|error| TestCaseError::fail(format!("step {index}: a snapshot does not restore: {error:?}")))?;
                prop_assert_eq!(restored.digest(), original.digest(), "step {}: digest of the continuing ledger", index);
            }
            prop_assert_eq!(observe(&restored, &transfer_ids), observe(&original, &transfer_ids));
            Ok(())
        })?;
    }
}

/// How a snapshot is damaged.
#[derive(Debug, Clone)]
enum Corruption {
    /// XOR bytes at these positions with these (nonzero) masks.
    Flip(Vec<(Index, u8)>),
    /// Keep only a prefix.
    Truncate(Index),
    /// Append bytes.
    Extend(Vec<u8>),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        4 => prop::collection::vec((any::<Index>(), 1u8..=255), 1..=3).prop_map(Corruption::Flip),
        1 => any::<Index>().prop_map(Corruption::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..=64).prop_map(Corruption::Extend),
    ]
}

fn corrupt(snapshot: &[u8], corruption: &Corruption) -> Vec<u8> {
    let mut bytes = snapshot.to_vec();
    match corruption {
        Corruption::Flip(flips) => {
            // Distinct positions, so that two masks never cancel out.
            let mut positions: Vec<(usize, u8)> =
                flips.iter().map(|(at, mask)| (at.index(bytes.len()), *mask)).collect();
            positions.sort_unstable_by_key(|(at, _)| *at);
            positions.dedup_by_key(|(at, _)| *at);
            for (at, mask) in positions {
                bytes[at] ^= mask;
            }
        }
        Corruption::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        Corruption::Extend(tail) => bytes.extend_from_slice(tail),
    }
    bytes
}

proptest! {
    #![proptest_config(config(128))]

    /// A damaged snapshot is refused with an error, never a panic and never a different ledger.
    #[test]
    fn corrupted_snapshots_are_refused(generated in scenario(4, 20), corruption in corruption()) {
        let steps = resolve(&generated);
        check(&steps, || {
            let mut ledger = Ledger::new();
            for step in &steps {
                apply(&mut ledger, step.timestamp, &step.batch);
            }
            let snapshot = ledger.snapshot();
            if let Err(error) = Ledger::restore(&snapshot) {
                return Err(TestCaseError::fail(format!("an intact snapshot does not restore: {error:?}")));
            }
            let damaged = corrupt(&snapshot, &corruption);
            prop_assert_ne!(&damaged, &snapshot);
            match Ledger::restore(&damaged) {
                // The error explains itself.
                Err(error) => prop_assert!(!error.to_string().is_empty()),
                Ok(restored) => {
                    prop_assert_ne!(restored.digest(), ledger.digest(), "a damaged snapshot restored the same ledger");
                    prop_assert!(false, "a damaged snapshot restored without an error ({:?})", corruption);
                }
            }
            Ok(())
        })?;
    }

    /// Arbitrary bytes are refused with an error, never a panic.
    #[test]
    fn arbitrary_bytes_are_not_a_snapshot(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(Ledger::restore(&bytes).is_err());
    }
}
