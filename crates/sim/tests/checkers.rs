//! The checkers on fabricated histories: each property, broken on purpose, is reported, and
//! the unbroken history passes. This shows the checkers can fail without needing a buggy chain.

use std::time::Duration;
use tally_chain::ChainError;
use tally_chain::application::{FinalizedEntry, History};
use tally_chain::block::BlockContext;
use tally_chain::keys::{ClientSigner, public_key, signer_from_seed};
use tally_chain::{Block, ChainState, Genesis, Request, RequestResult};
use tally_ledger::{Account, Transfer};
use tally_sim::check::{
    Acknowledgement, Answer, Evidence, LieCount, Liveness, Observation, ProvenRead, ValidatorRecord, Verification,
    Violation, check, replay,
};

/// An expiry ahead of every block timestamp here (simulated time starts at 1970).
const EXPIRES_NS: u64 = 300_000_000_000;

const CHAIN: u64 = 5;

struct Fixture {
    genesis: Genesis,
    client: ClientSigner,
}

fn test_leader() -> tally_chain::keys::ValidatorKey {
    public_key(&signer_from_seed(0))
}

fn fixture() -> Fixture {
    let client = signer_from_seed(77);
    let validators = (0..4).map(|index| public_key(&signer_from_seed(index))).collect();
    Fixture { genesis: Genesis::new(CHAIN, validators, vec![public_key(&client)], 0).unwrap(), client }
}

fn accounts(fixture: &Fixture) -> Request {
    let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
    Request::create_accounts(CHAIN, 0, EXPIRES_NS, &fixture.client, &[account(1), account(2)]).unwrap()
}

fn transfer(fixture: &Fixture, id: u128, amount: u128) -> Request {
    let transfer =
        Transfer { id, debit_account_id: 1, credit_account_id: 2, amount, ledger: 1, code: 1, ..Transfer::default() };
    Request::create_transfers(CHAIN, id, EXPIRES_NS, &fixture.client, &[transfer]).unwrap()
}

/// Builds a chain of blocks on genesis, one block per list of requests, and returns the blocks
/// and the history a validator would report for them.
fn chain(fixture: &Fixture, blocks: Vec<Vec<Request>>, view_offset: u64) -> (Vec<Block>, Vec<FinalizedEntry>) {
    let mut state = ChainState::genesis(&fixture.genesis.block());
    let mut history = vec![FinalizedEntry { block: state.block(), state_digest: state.state_digest() }];
    let mut log = Vec::new();
    for requests in blocks {
        let height = state.height() + 1;
        let block = Block::new(
            BlockContext::following(state.block(), height + view_offset, test_leader()),
            height,
            1_000 * height + view_offset,
            state.commitment(),
            requests,
        );
        state.check_child(&fixture.genesis, &block).unwrap();
        state = state.execute(&block).0;
        history.push(FinalizedEntry { block: block.digest(), state_digest: state.state_digest() });
        log.push(block);
    }
    (log, history)
}

fn record(index: usize, log: Vec<Block>, history: Vec<FinalizedEntry>) -> ValidatorRecord {
    ValidatorRecord {
        index,
        name: index.to_string(),
        honest: true,
        history: Some(History { base: 0, entries: history }),
        log,
        log_start: 0,
        log_damage: None,
        damaged: false,
        lost_disk: false,
    }
}

/// Two honest validators that agree, and one acknowledged transfer.
fn agreeing(fixture: &Fixture) -> Observation {
    let (log, history) = chain(fixture, vec![vec![accounts(fixture)], vec![transfer(fixture, 1, 5)], vec![]], 0);
    let replayed = replay(&fixture.genesis, &log).unwrap();
    let key = transfer(fixture, 1, 5).key();
    let outcome = replayed.outcomes[&key].clone();
    Observation {
        genesis: fixture.genesis.clone(),
        validators: vec![record(0, log.clone(), history.clone()), record(1, log[..2].to_vec(), history[..3].to_vec())],
        acknowledged: vec![Acknowledgement { key, outcome, validator: "0".into() }],
        expired: Vec::new(),
        answers: Vec::new(),
        refusals: Vec::new(),
        liveness: Some(Liveness {
            heal_height: 1,
            progressed_after: Some(Duration::from_secs(1)),
            progress_bound: Duration::from_secs(30),
            workload_done_after: Some(Duration::from_secs(2)),
            workload_bound: Duration::from_secs(60),
            requests: 2,
        }),
        accounts: vec![1, 2],
        evidence: Vec::new(),
        verification: Verification::default(),
    }
}

#[test]
fn an_agreeing_history_passes() {
    let fixture = fixture();
    assert_eq!(check(&agreeing(&fixture)), Vec::<Violation>::new());
}

#[test]
fn divergent_chains_are_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    // Validator 1 finalized a different block at height 2 (another transfer, another view).
    let (log, history) = chain(&fixture, vec![vec![accounts(&fixture)], vec![transfer(&fixture, 9, 7)]], 0);
    observation.validators[1] = record(1, log, history);
    let violations = check(&observation);
    assert!(
        violations.iter().any(|violation| matches!(violation, Violation::Divergence { height: 2, .. })),
        "{violations:?}"
    );
    assert!(violations.iter().all(|violation| violation.is_safety()));
}

#[test]
fn a_fork_at_the_first_block_is_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    // Same requests, another view: a different block at height 1 and everything after.
    let (log, history) = chain(&fixture, vec![vec![accounts(&fixture)], vec![transfer(&fixture, 1, 5)]], 1);
    observation.validators[1] = record(1, log, history);
    let violations = check(&observation);
    assert!(
        violations.iter().any(|violation| matches!(violation, Violation::Divergence { height: 1, .. })),
        "{violations:?}"
    );
}

#[test]
fn a_reported_state_digest_that_differs_is_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    let history = observation.validators[1].history.as_mut().unwrap();
    history.entries[2].state_digest[0] ^= 1;
    let violations = check(&observation);
    assert!(violations.contains(&Violation::StateDigestMismatch { height: 2, first: "0".into(), second: "1".into() }));
    assert!(violations.contains(&Violation::WrongLedgerDigest { validator: "1".into(), height: 2 }));
}

#[test]
fn a_reported_block_missing_from_the_log_is_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    observation.validators[1].log.pop();
    let violations = check(&observation);
    assert!(violations.contains(&Violation::NotDurable { validator: "1".into(), height: 2 }), "{violations:?}");
}

#[test]
fn a_request_answered_expired_that_a_block_holds_is_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    // Never included: fine.
    observation.expired.push(transfer(&fixture, 9, 5).key());
    assert_eq!(check(&observation), []);
    // Included at height 2 after all.
    observation.expired.push(transfer(&fixture, 1, 5).key());
    let violations = check(&observation);
    assert!(
        violations.iter().any(|violation| matches!(violation, Violation::ExpiredIncluded { id: 1, height: 2, .. })),
        "{violations:?}"
    );
    assert!(violations.iter().all(Violation::is_safety));
}

#[test]
fn an_acknowledged_request_missing_from_the_chain_is_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    let mut phantom = observation.acknowledged[0].clone();
    phantom.key = transfer(&fixture, 2, 5).key();
    observation.acknowledged.push(phantom);
    assert_eq!(
        check(&observation),
        vec![Violation::AcknowledgedNotOnce { id: 2, count: 0, validator: "0".into(), height: 2 }]
    );
}

#[test]
fn an_acknowledgement_with_other_results_is_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    let outcome = &mut observation.acknowledged[0].outcome;
    let RequestResult::Transfers(results) = &mut outcome.result else { panic!("a transfer request") };
    results[0].status = tally_ledger::CreateTransferStatus::ExceedsCredits;
    let violations = check(&observation);
    assert!(matches!(violations.as_slice(), [Violation::WrongAcknowledgement { id: 1, .. }]), "{violations:?}");
    // At another height, too.
    let mut observation = agreeing(&fixture);
    observation.acknowledged[0].outcome.height = 3;
    assert!(matches!(check(&observation).as_slice(), [Violation::WrongAcknowledgement { id: 1, .. }]));
}

#[test]
fn a_request_finalized_twice_is_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    // A log whose third block repeats the acknowledged request: the chain's rules refuse it on
    // replay, and the count shows the repeat.
    let (mut log, mut history) = chain(&fixture, vec![vec![accounts(&fixture)], vec![transfer(&fixture, 1, 5)]], 0);
    let state = replay(&fixture.genesis, &log).unwrap().state;
    let repeat = Block::new(
        BlockContext::following(state.block(), 3, test_leader()),
        3,
        3_000,
        state.commitment(),
        vec![transfer(&fixture, 1, 5)],
    );
    history.push(FinalizedEntry { block: repeat.digest(), state_digest: state.state_digest() });
    log.push(repeat);
    observation.validators = vec![record(0, log.clone(), history.clone()), record(1, log, history)];
    let violations = check(&observation);
    assert!(
        violations.iter().any(|violation| matches!(violation, Violation::InvalidFinalizedBlock { height: 3, .. })),
        "{violations:?}"
    );
}

#[test]
fn a_halted_validator_and_a_stalled_cluster_are_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    observation.validators[1].history = None;
    let liveness = observation.liveness.as_mut().unwrap();
    liveness.progressed_after = None;
    liveness.workload_done_after = None;
    let violations = check(&observation);
    assert!(violations.contains(&Violation::Halted { validator: "1".into() }));
    assert!(violations.iter().any(|violation| matches!(violation, Violation::NoProgress { heal_height: 1, .. })));
    assert!(violations.iter().any(|violation| matches!(violation, Violation::WorkloadStuck { .. })));
    assert!(violations.iter().all(|violation| !violation.is_safety()));
}

#[test]
fn byzantine_validators_are_not_held_to_agreement() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    let (log, history) = chain(&fixture, vec![vec![accounts(&fixture)], vec![transfer(&fixture, 9, 7)]], 0);
    observation.validators.push(ValidatorRecord { honest: false, ..record(2, log, history) });
    assert_eq!(check(&observation), Vec::<Violation>::new());
}

#[test]
fn wrong_or_unsettled_answers_and_an_unreadable_log_are_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    let key = observation.acknowledged[0].key.clone();
    let outcome = observation.acknowledged[0].outcome.clone();
    let answer = |validator: &str, answer| Answer { validator: validator.into(), key: key.clone(), answer };
    // Right answers, and "not finalized" from a validator below the height, pass.
    observation.answers = vec![answer("0", Ok(Some(outcome.clone()))), answer("1", Ok(Some(outcome.clone())))];
    assert_eq!(check(&observation), Vec::<Violation>::new());
    let mut wrong = outcome.clone();
    wrong.timestamp_ns += 1;
    observation.answers = vec![
        answer("0", Ok(Some(wrong))),
        answer("1", Ok(None)),
        answer("0", Err(ChainError::OutcomeNotHeld { height: 2 })),
        answer("1", Err(ChainError::OutcomeRepairing { height: 2 })),
    ];
    observation.validators[0].log_damage = Some("damaged record".into());
    let violations = check(&observation);
    let wrong_answers = violations.iter().filter(|violation| matches!(violation, Violation::WrongAnswer { .. }));
    // Validator 1 finalized height 2 (its history reaches it): "not finalized" is wrong too.
    assert_eq!(wrong_answers.count(), 3, "{violations:?}");
    assert!(violations.contains(&Violation::StillRepairing { validator: "1".into(), height: 2 }), "{violations:?}");
    assert!(
        violations
            .iter()
            .any(|violation| matches!(violation, Violation::LogUnreadable { validator, .. } if validator == "0")),
        "{violations:?}"
    );
    assert!(!Violation::StillRepairing { validator: "1".into(), height: 2 }.is_safety());
}

#[test]
fn a_damaged_validator_that_halted_is_excused_and_no_other() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    let halted = &mut observation.validators[1];
    halted.history = None;
    halted.log_damage = Some("the journal does not open".into());
    halted.log.clear();
    let violations = check(&observation);
    assert!(violations.contains(&Violation::Halted { validator: "1".into() }), "{violations:?}");
    assert!(violations.iter().any(|violation| matches!(violation, Violation::LogUnreadable { .. })));
    observation.validators[1].damaged = true;
    assert_eq!(check(&observation), Vec::<Violation>::new());
    // A damaged validator that answers is held to durability like any other.
    observation.validators[0].damaged = true;
    observation.validators[0].log.pop();
    let violations = check(&observation);
    assert!(violations.contains(&Violation::NotDurable { validator: "0".into(), height: 3 }), "{violations:?}");
}

#[test]
fn evidence_against_an_honest_validator_is_reported_unless_it_lost_its_disk() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    observation.evidence = vec![Evidence { accused: 1, seen_by: "0".into(), pieces: 2 }];
    assert_eq!(
        check(&observation),
        vec![Violation::Equivocated { validator: "1".into(), seen_by: "0".into(), pieces: 2 }]
    );
    // A validator that restarted on an empty disk forgot its votes: one of the f faulty.
    observation.validators[1].lost_disk = true;
    assert_eq!(check(&observation), Vec::<Violation>::new());
    // Nor is a Byzantine one held to it.
    observation.validators[1].lost_disk = false;
    observation.validators[1].honest = false;
    assert_eq!(check(&observation), Vec::<Violation>::new());
}

#[test]
fn a_lie_accepted_a_true_receipt_refused_and_a_read_of_a_state_never_had_are_reported() {
    let fixture = fixture();
    let mut observation = agreeing(&fixture);
    let replayed = replay(&fixture.genesis, &observation.validators[0].log).unwrap();
    let read = |height: u64, state_digest| ProvenRead { validator: "1".into(), account: 1, height, state_digest };
    observation.verification = Verification {
        lies: [("balance", LieCount { told: 3, caught: 3 })].into_iter().collect(),
        lies_accepted: Vec::new(),
        true_refused: Vec::new(),
        stale_refused: 2,
        proven_reads: vec![read(1, replayed.state_digests[1]), read(2, replayed.state_digests[2])],
    };
    // Lies caught, stale answers refused, reads of the chain's own states: all as it should be.
    assert_eq!(check(&observation), Vec::<Violation>::new());
    assert_eq!(observation.verification.caught(), 3);

    observation.verification.lies_accepted = vec!["the balance lie".into()];
    observation.verification.true_refused = vec!["validator 0's receipt".into()];
    observation.verification.proven_reads.push(read(2, replayed.state_digests[1]));
    let violations = check(&observation);
    assert_eq!(
        violations,
        vec![
            Violation::LieAccepted { detail: "the balance lie".into() },
            Violation::TrueReceiptRefused { detail: "validator 0's receipt".into() },
            Violation::WrongProvenRead { validator: "1".into(), account: 1, height: 2 },
        ]
    );
    assert!(violations.iter().all(Violation::is_safety));
}
