//! What a client pays to check a receipt (`tally_chain::receipt`): decoding it and verifying it
//! for its request against the genesis, on a 4-validator chain whose certificate carries 3
//! signatures. Two receipts: of a one-event request, and of a full request of 8,190 transfers
//! (its outcome, 12 bytes per event, is in the receipt). Then state receipts (`state_receipt`)
//! of reads from a ledger of 131,072 accounts and 1,048,576 transfers: one account, one transfer,
//! and 100 accounts. Before measuring, it prints each receipt's size.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tally_chain::block::{Block, BlockContext, Commitment};
use tally_chain::certified::{CertifiedHeader, sign_finalization};
use tally_chain::execution::results_root;
use tally_chain::keys::{ValidatorSigner, public_key, signer_from_seed};
use tally_chain::receipt::OutcomeReceipt;
use tally_chain::state_receipt::{StateProof, StateReceipt};
use tally_chain::{ChainState, Genesis, Request, RequestOutcome, RequestResult};
use tally_ledger::{Account, CreateTransferResult, CreateTransferStatus, Transfer};

/// An expiry ahead of every block timestamp here (simulated time starts at 1970).
const EXPIRES_NS: u64 = 300_000_000_000;

/// A block of `count` requests of `events` transfers each, the block above it finalized by 3 of
/// 4 validators, and the receipt of the last request.
fn receipt(count: u128, events: usize) -> (Genesis, Request, OutcomeReceipt) {
    let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
    let client = signer_from_seed(100);
    let genesis = Genesis::new(7, signers.iter().map(public_key).collect(), vec![public_key(&client)], 1_000).unwrap();
    let requests: Vec<Request> = (0..count)
        .map(|id| {
            let transfers: Vec<Transfer> = (0..events as u128)
                .map(|index| Transfer {
                    id: id * 100_000 + index + 1,
                    debit_account_id: 1,
                    credit_account_id: 2,
                    amount: 1,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                })
                .collect();
            Request::create_transfers(7, id, EXPIRES_NS, &client, &transfers).unwrap()
        })
        .collect();
    let outcomes: Vec<RequestOutcome> = requests
        .iter()
        .map(|request| RequestOutcome {
            events_digest: request.events_digest(),
            height: 1,
            timestamp_ns: 5_000,
            result: RequestResult::Transfers(
                (0..events as u64)
                    .map(|index| CreateTransferResult {
                        timestamp: 5_000 + index,
                        status: CreateTransferStatus::Created,
                    })
                    .collect(),
            ),
        })
        .collect();
    let leader = genesis.validators()[0].clone();
    let parent = genesis.block().digest();
    let commitment = Commitment { state_digest: [1; 32], results_root: results_root(&[]) };
    let block = Block::new(BlockContext::following(parent, 1, leader.clone()), 1, 2_000, commitment, requests.clone());
    let keyed: Vec<_> = requests.iter().map(Request::key).zip(outcomes.iter().cloned()).collect();
    let commitment = Commitment { state_digest: [2; 32], results_root: results_root(&keyed) };
    let above = Block::new(BlockContext::following(block.digest(), 2, leader), 2, 3_000, commitment, vec![]);
    let finalization = sign_finalization(&above.header, &signers[..3], &genesis);
    let certified = CertifiedHeader { header: above.header.clone(), descendants: vec![], finalization };
    let last = requests.len() - 1;
    let receipt = OutcomeReceipt::build(block.header.clone(), &requests, &outcomes, last, certified);
    (genesis, requests[last].clone(), receipt)
}

fn verify(c: &mut Criterion) {
    // A block of 16 one-event requests; a block of 3 full ones (a block holds at most 4 MiB).
    for (count, events) in [(16, 1), (3, 8_190)] {
        let (genesis, request, receipt) = receipt(count, events);
        let bytes = receipt.encode();
        println!("receipt of a request of {events} events: {} bytes", bytes.len());
        c.bench_function(&format!("decode and verify a receipt ({events} events)"), |b| {
            b.iter(|| {
                let receipt = OutcomeReceipt::decode(black_box(&bytes), &genesis).unwrap();
                black_box(receipt.verify_for(&genesis, &request).unwrap())
            })
        });
    }
}

/// A chain state of 131,072 accounts and 1,048,576 transfers among them, the block above it
/// finalized by 3 of 4 validators.
fn ledger_state() -> (Genesis, ChainState, CertifiedHeader) {
    const ACCOUNTS: u128 = 131_072;
    const TRANSFERS: u128 = 1_048_576;
    let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
    let client = signer_from_seed(100);
    let genesis = Genesis::new(7, signers.iter().map(public_key).collect(), vec![public_key(&client)], 1_000).unwrap();
    let leader = genesis.validators()[0].clone();
    let mut state = ChainState::genesis(&genesis.block());
    let mut requests = Vec::new();
    let accounts: Vec<Account> =
        (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
    for (index, chunk) in accounts.chunks(8_190).enumerate() {
        requests.push(Request::create_accounts(7, index as u128, EXPIRES_NS, &client, chunk).unwrap());
    }
    let transfers: Vec<Transfer> = (0..TRANSFERS)
        .map(|index| Transfer {
            id: 1_000_000 + index,
            debit_account_id: index % ACCOUNTS + 1,
            credit_account_id: (index * 7 + 1) % ACCOUNTS + 1,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        })
        .filter(|transfer| transfer.debit_account_id != transfer.credit_account_id)
        .collect();
    for (index, chunk) in transfers.chunks(8_190).enumerate() {
        requests.push(Request::create_transfers(7, 1_000 + index as u128, EXPIRES_NS, &client, chunk).unwrap());
    }
    for (height, request) in requests.into_iter().enumerate() {
        let height = height as u64 + 1;
        let block = Block::new(
            BlockContext::following(state.block(), height, leader.clone()),
            height,
            1_000 * height,
            state.commitment(),
            vec![request],
        );
        state.apply(&block);
    }
    let height = state.height() + 1;
    let above = Block::new(
        BlockContext::following(state.block(), height, leader),
        height,
        1_000 * height,
        state.commitment(),
        vec![],
    );
    let finalization = sign_finalization(&above.header, &signers[..3], &genesis);
    (genesis, state, CertifiedHeader { header: above.header.clone(), descendants: vec![], finalization })
}

fn verify_state(c: &mut Criterion) {
    let (genesis, state, certified) = ledger_state();
    let hundred: Vec<u128> = (0..100).map(|index| index * 1_301 + 7).collect();
    for (name, accounts, transfers) in [
        ("1 account", vec![65_537u128], vec![]),
        ("1 transfer", vec![], vec![1_500_000u128]),
        ("100 accounts", hundred, vec![]),
    ] {
        let proof = StateProof::collect(&state, &accounts, &transfers);
        assert_eq!(proof.accounts.len() + proof.transfers.len(), accounts.len() + transfers.len());
        let receipt = StateReceipt::new(proof, certified.clone());
        let bytes = receipt.encode();
        println!("state receipt of {name}: {} bytes", bytes.len());
        c.bench_function(&format!("build the proof of {name}"), |b| {
            b.iter(|| black_box(StateProof::collect(&state, &accounts, &transfers)))
        });
        c.bench_function(&format!("decode and verify a state receipt ({name})"), |b| {
            b.iter(|| {
                let receipt = StateReceipt::decode(black_box(&bytes), &genesis).unwrap();
                black_box(receipt.verify(&genesis).unwrap())
            })
        });
    }
}

criterion_group!(benches, verify, verify_state);
criterion_main!(benches);
