//! Runs the fuzz target's body (`tally_ledger::fuzzing`) on random bytes, so that CI exercises
//! it without cargo-fuzz.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

/// Transfers the plausible cases created, summed over all cases.
static PLAUSIBLE_TRANSFERS_CREATED: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_batches_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        tally_ledger::fuzzing::apply_arbitrary_batches(&data);
    }

    /// Bytes shaped like valid events (ledger 1, code 1, no reserved bits) get past validation
    /// and exercise the balance rules, not just the early refusals.
    #[test]
    fn plausible_batches_keep_the_invariants(seeds in proptest::collection::vec((any::<u8>(), any::<[u8; 16]>()), 1..48)) {
        let mut data = Vec::new();
        for (header, noise) in seeds {
            data.push(header);
            for event in 0..usize::from(header & 0x0f).max(1) {
                let mut record = [0u8; 128];
                record[..16].copy_from_slice(&u128::from(noise[event % 16]).to_le_bytes());
                record[16..32].copy_from_slice(&u128::from(noise[(event + 1) % 16]).to_le_bytes());
                record[32..48].copy_from_slice(&u128::from(noise[(event + 2) % 16]).to_le_bytes());
                if header & 0x10 == 0 {
                    // An account: zero balances, ledger 1, code 1, flags from the noise.
                    record[16..80].fill(0);
                    record[112..116].copy_from_slice(&1u32.to_le_bytes());
                    record[116..118].copy_from_slice(&1u16.to_le_bytes());
                    // Linked, one balance limit or none, history; never closed.
                    let flags = u16::from(noise[3] & 0x09) | [0, 0, 0x02, 0x04][usize::from(noise[3] >> 6)];
                    record[118..120].copy_from_slice(&flags.to_le_bytes());
                } else {
                    // A transfer: small amount, ledger 1, code 1, flags from the noise.
                    // At most one of pending, post and void; sometimes balancing or closing.
                    let phase: u16 = [0, 0, 0, 0, 0x02, 0x02, 0x04, 0x08][usize::from(noise[7] % 8)];
                    let extra: u16 = if phase == 0x02 { u16::from(noise[7] & 0xf0) } else { 0 };
                    let flags = phase | extra | u16::from(noise[8] & 0x01);
                    let second_phase = phase & 0x0c != 0;
                    record[48..64].copy_from_slice(&u128::from(noise[4]).to_le_bytes());
                    let pending_id = if second_phase { u128::from(noise[5] % 64) } else { 0 };
                    record[64..80].copy_from_slice(&pending_id.to_le_bytes());
                    let timeout = if phase == 0x02 { u32::from(noise[6] % 3) } else { 0 };
                    record[108..112].copy_from_slice(&timeout.to_le_bytes());
                    record[112..116].copy_from_slice(&1u32.to_le_bytes());
                    record[116..118].copy_from_slice(&1u16.to_le_bytes());
                    record[118..120].copy_from_slice(&flags.to_le_bytes());
                }
                data.extend_from_slice(&record);
            }
        }
        let (_, transfers) = tally_ledger::fuzzing::apply_arbitrary_batches(&data);
        PLAUSIBLE_TRANSFERS_CREATED.fetch_add(transfers, Ordering::Relaxed);
    }
}

/// The plausible generator reaches the balance rules: transfers do get created.
#[test]
fn plausible_batches_create_transfers() {
    plausible_batches_keep_the_invariants();
    assert!(PLAUSIBLE_TRANSFERS_CREATED.load(Ordering::Relaxed) > 100);
}
