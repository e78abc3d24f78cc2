//! Model-based test: random scenarios run on the ledger and on a small reference implementation
//! of TigerBeetle's rules (`support/reference.rs`); after every batch both must have answered
//! every event with the same status and timestamp, and hold the same accounts, transfers, balance
//! histories and query answers.
//!
//! `PROPTEST_CASES=10000 cargo test -p tally-ledger --test model` runs more cases.

mod support;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use support::reference::Model;
use support::*;
use tally_ledger::*;

/// Runs the scenario on both and compares after every batch.
fn check_against_model(steps: &[Step]) -> Result<(), TestCaseError> {
    let transfer_ids = transfer_ids(steps);
    let mut ledger = Ledger::new();
    let mut model = Model::new();
    for (index, step) in steps.iter().enumerate() {
        let actual = catch(|| apply(&mut ledger, step.timestamp, &step.batch))
            .map_err(|message| TestCaseError::fail(format!("step {index}: the ledger panicked: {message}")))?;
        match (&step.batch, actual) {
            (Batch::Accounts(events), Results::Accounts(actual)) => {
                let expected = model.create_accounts(step.timestamp, events);
                compare_results(index, step.timestamp, events, &expected, &actual)?;
            }
            (Batch::Transfers(events), Results::Transfers(actual)) => {
                let expected = model.create_transfers(step.timestamp, events);
                compare_results(index, step.timestamp, events, &expected, &actual)?;
            }
            _ => unreachable!("results match their batch"),
        }
        compare_state(index, &ledger, &model, &transfer_ids)?;
    }
    Ok(())
}

/// Compares results event by event, naming the first event that differs.
fn compare_results<E: std::fmt::Debug, R: std::fmt::Debug + PartialEq>(
    step: usize,
    timestamp: u64,
    events: &[E],
    expected: &[R],
    actual: &[R],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(expected.len(), actual.len(), "step {}: one result per event", step);
    for (index, (expected, actual)) in expected.iter().zip(actual).enumerate() {
        prop_assert_eq!(
            expected,
            actual,
            "step {} (batch timestamp {}), event {}: {:?}\nmodel (expected) vs ledger (actual)",
            step,
            timestamp,
            index,
            &events[index]
        );
    }
    Ok(())
}

fn compare_state(step: usize, ledger: &Ledger, model: &Model, transfer_ids: &[u128]) -> Result<(), TestCaseError> {
    let account_ids = account_ids();
    prop_assert_eq!(
        model.lookup_accounts(&account_ids),
        ledger.lookup_accounts(&account_ids),
        "step {}: accounts (model vs ledger)",
        step
    );
    prop_assert_eq!(
        model.lookup_transfers(transfer_ids),
        ledger.lookup_transfers(transfer_ids),
        "step {}: transfers (model vs ledger)",
        step
    );
    for &account_id in &account_ids {
        for filter in account_filters(account_id) {
            prop_assert_eq!(
                model.get_account_transfers(filter),
                ledger.get_account_transfers(filter),
                "step {}: get_account_transfers({:?}) (model vs ledger)",
                step,
                filter
            );
        }
        let both = AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS;
        for (limit, reversed) in [(8190, false), (3, true)] {
            let mut flags = both;
            flags.set(AccountFilterFlags::REVERSED, reversed);
            let filter = AccountFilter { account_id, limit, flags, ..AccountFilter::default() };
            prop_assert_eq!(
                model.get_account_balances_unfiltered(account_id, limit, reversed),
                ledger.get_account_balances(filter),
                "step {}: get_account_balances({:?}) (model vs ledger)",
                step,
                filter
            );
        }
    }
    for filter in query_filters() {
        prop_assert_eq!(
            model.query_transfers(filter),
            ledger.query_transfers(filter),
            "step {}: query_transfers({:?}) (model vs ledger)",
            step,
            filter
        );
        prop_assert_eq!(
            model.query_accounts(filter),
            ledger.query_accounts(filter),
            "step {}: query_accounts({:?}) (model vs ledger)",
            step,
            filter
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// The ledger and the reference model agree on every result and on the resulting state.
    #[test]
    fn ledger_matches_reference_model(generated in scenario(10, 40)) {
        let steps = resolve(&generated);
        check(&steps, || check_against_model(&steps))?;
    }
}
