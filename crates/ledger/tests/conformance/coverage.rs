//! Every status of `CreateAccountStatus::ALL` and `CreateTransferStatus::ALL` has a scenario that
//! produces it. A status added to either enum without a scenario fails here.

use std::collections::BTreeSet;
use std::fmt::Debug;

use tally_ledger::*;

/// A status and the scenario that must produce it.
type Case<Status> = (Status, fn() -> Status);

fn check<Status: Copy + Ord + Debug>(all: &[Status], cases: &[Case<Status>]) {
    let listed: BTreeSet<Status> = cases.iter().map(|(status, _)| *status).collect();
    let all_set: BTreeSet<Status> = all.iter().copied().collect();
    let missing: Vec<&Status> = all_set.difference(&listed).collect();
    let unknown: Vec<&Status> = listed.difference(&all_set).collect();
    assert!(missing.is_empty(), "statuses without a scenario: {missing:?}");
    assert!(unknown.is_empty(), "scenarios for statuses not in ALL: {unknown:?}");
    assert_eq!(cases.len(), all.len(), "one scenario per status");

    let mut produced = BTreeSet::new();
    let mut wrong = Vec::new();
    for (expected, scenario) in cases {
        let observed = scenario();
        if observed == *expected {
            produced.insert(observed);
        } else {
            wrong.push((*expected, observed));
        }
    }
    assert!(wrong.is_empty(), "scenarios that produced another status (expected, observed): {wrong:?}");
    assert_eq!(produced, all_set);
}

#[test]
fn every_account_status_is_triggered() {
    check(CreateAccountStatus::ALL, crate::accounts::CASES);
}

#[test]
fn every_transfer_status_is_triggered() {
    check(CreateTransferStatus::ALL, crate::transfers::CASES);
}

#[test]
fn status_names_and_codes_round_trip() {
    for status in CreateAccountStatus::ALL {
        assert_eq!(CreateAccountStatus::from_code(status.code()), Some(*status));
        assert_eq!(CreateAccountStatus::from_name(status.name()), Some(*status));
    }
    for status in CreateTransferStatus::ALL {
        assert_eq!(CreateTransferStatus::from_code(status.code()), Some(*status));
        assert_eq!(CreateTransferStatus::from_name(status.name()), Some(*status));
    }
    // TigerBeetle 0.16 allows zero amounts: there is no such status.
    assert_eq!(CreateTransferStatus::from_name("amount_must_not_be_zero"), None);
}
