//! Decodes arbitrary bytes as batches of accounts and transfers, applies them, and checks the
//! ledger's invariants after every batch.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _created = tally_ledger::fuzzing::apply_arbitrary_batches(data);
});
