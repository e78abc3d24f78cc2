//! The dashboard's verifier (`crates/node/assets/verify.js`) is JavaScript written apart from the
//! Rust it must agree with. `tests/dashboard/verify-vectors.json` holds what Rust computes: BLAKE3
//! in every mode the ledger uses, a genesis file with its digest, and a state receipt with the
//! objects it proves. This test checks that the file is what Rust computes now; the browser test
//! (`scripts/dashboard-test.sh`) checks that verify.js computes the same, in Chromium.
//!
//! After a deliberate change: `TALLY_WRITE_VECTORS=1 cargo test -p tally-node --test verify_vectors`.

use blake3::hazmat::{HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root};
use serde_json::{Value, json};
use std::path::PathBuf;
use tally_chain::block::{Block, BlockContext};
use tally_chain::certified::{CertifiedHeader, sign_finalization};
use tally_chain::keys::{ValidatorSigner, public_key, signer_from_seed};
use tally_chain::state_receipt::{StateProof, StateReceipt};
use tally_chain::{ChainState, Request, RequestResult};
use tally_ledger::{Account, AccountFlags, Transfer, TransferFlags};
use tally_node::genesis_file::{GenesisFile, ValidatorEntry};
use tally_node::hex;

const KEY: &[u8; 32] = b"tally.dashboard.verify.vectors..";
const CONTEXT: &str = "tally 2026 chain state digest v1";
const CHAIN_ID: u64 = 7;
/// Above 2^53, where a JavaScript number loses digits.
const GENESIS_TIME_NS: u64 = 1_767_225_600_123_456_789;
/// The requests' expiry: five minutes after genesis, ahead of every block here.
const EXPIRES_NS: u64 = GENESIS_TIME_NS + 300_000_000_000;

/// BLAKE3's test-vector input: byte `i` is `i % 251`.
fn input(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index % 251) as u8).collect()
}

fn blake3_vectors() -> Value {
    let hashes: Vec<Value> = [0usize, 1, 63, 64, 65, 127, 208, 1023, 1024, 1025, 2048, 2049, 3072, 5000, 16 * 1024 + 7]
        .iter()
        .map(|&len| {
            let bytes = input(len);
            json!({
                "len": len,
                "hash": hex::encode(blake3::hash(&bytes).as_bytes()),
                "keyed_hash": hex::encode(blake3::keyed_hash(KEY, &bytes).as_bytes()),
                "derive_key": hex::encode(&blake3::derive_key(CONTEXT, &bytes)),
            })
        })
        .collect();
    // Subtrees at input offsets, as the ledger's proofs hash them: single chunks (counters past
    // 2^32 among them) and whole power-of-two runs, and a partial tail at offset 0.
    let chaining_values: Vec<Value> = [
        (1usize, 0u64),
        (1024, 0),
        (1024, 1024),
        (777, 5 * 1024),
        (100, 1 << 50),
        (2048, 2048),
        (4096, 3 * 4096),
        (3000, 0),
    ]
    .iter()
    .map(|&(len, offset)| {
        let mut hasher = blake3::Hasher::new_keyed(KEY);
        hasher.set_input_offset(offset);
        hasher.update(&input(len));
        json!({ "len": len, "offset": offset.to_string(), "chaining_value": hex::encode(&hasher.finalize_non_root()) })
    })
    .collect();
    let merges: Vec<Value> = (0u8..3)
        .map(|seed| {
            let left: [u8; 32] = std::array::from_fn(|index| seed.wrapping_mul(31).wrapping_add(index as u8));
            let right: [u8; 32] = std::array::from_fn(|index| seed.wrapping_mul(17).wrapping_add(200 + index as u8));
            json!({
                "left": hex::encode(&left),
                "right": hex::encode(&right),
                "non_root": hex::encode(&merge_subtrees_non_root(&left, &right, Mode::KeyedHash(KEY))),
                "root": hex::encode(merge_subtrees_root(&left, &right, Mode::KeyedHash(KEY)).as_bytes()),
            })
        })
        .collect();
    json!({
        "input": "byte i of an input of len bytes is i % 251",
        "key": hex::encode(KEY),
        "context": CONTEXT,
        "hashes": hashes,
        "chaining_values": chaining_values,
        "merges": merges,
    })
}

/// A genesis of four validators (listed out of key order) and two clients, and a state receipt:
/// block 1 creates 40 accounts (two BLAKE3 chunks of their segment), ten transfers (two chunks
/// of the log) among them two pending ones, and voids one of those; block 2 above it commits to
/// that state and is finalized by three of the four validators.
fn receipt_vector() -> Value {
    let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
    let client = signer_from_seed(100);
    let entries = signers
        .iter()
        .enumerate()
        .rev()
        .map(|(index, signer)| ValidatorEntry {
            key: public_key(signer),
            p2p: format!("127.0.0.1:{}", 7100 + 2 * index).parse().unwrap(),
            api: format!("http://127.0.0.1:{}", 7101 + 2 * index),
        })
        .collect();
    let file = GenesisFile::new(
        CHAIN_ID,
        GENESIS_TIME_NS,
        entries,
        vec![public_key(&client), public_key(&signer_from_seed(101))],
    )
    .unwrap();
    let genesis = file.genesis().clone();

    let accounts: Vec<Account> = (1..=40u128)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 10,
            user_data_128: id << 100,
            flags: if id == 3 { AccountFlags::HISTORY } else { AccountFlags::NONE },
            ..Account::default()
        })
        .collect();
    let transfer = |id: u128, debit: u128, credit: u128, amount: u128, flags| Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        flags,
        ..Transfer::default()
    };
    let mut transfers: Vec<Transfer> =
        (0..8u128).map(|n| transfer(1_000 + n, 1 + n, 2 + n, (1 << 70) + n, TransferFlags::NONE)).collect();
    transfers.push(transfer(2_000, 3, 4, 500, TransferFlags::PENDING));
    transfers.push(transfer(2_001, 5, 6, 600, TransferFlags::PENDING));
    let void =
        Transfer { id: 2_002, pending_id: 2_001, flags: TransferFlags::VOID_PENDING_TRANSFER, ..Transfer::default() };
    let requests = vec![
        Request::create_accounts(CHAIN_ID, 1, EXPIRES_NS, &client, &accounts).unwrap(),
        Request::create_transfers(CHAIN_ID, 2, EXPIRES_NS, &client, &transfers).unwrap(),
        Request::create_transfers(CHAIN_ID, 3, EXPIRES_NS, &client, &[void]).unwrap(),
    ];
    let leader = genesis.validators()[0].clone();
    let mut state = ChainState::genesis(&genesis.block());
    let block = Block::new(
        BlockContext::following(genesis.block().digest(), 1, leader.clone()),
        1,
        GENESIS_TIME_NS + 1_000_000_000,
        state.commitment(),
        requests,
    );
    state.check_child(&genesis, &block).unwrap();
    for (_, outcome) in state.apply(&block) {
        match outcome.result {
            RequestResult::Accounts(results) => {
                assert!(results.iter().all(|result| result.status == tally_ledger::CreateAccountStatus::Created))
            }
            RequestResult::Transfers(results) => {
                assert!(results.iter().all(|result| result.status == tally_ledger::CreateTransferStatus::Created))
            }
            RequestResult::Refused(error) => panic!("refused: {error:?}"),
        }
    }
    let above = Block::new(
        BlockContext::following(block.digest(), 2, leader),
        2,
        GENESIS_TIME_NS + 2_000_000_000,
        state.commitment(),
        vec![],
    );
    let finalization = sign_finalization(&above.header, &signers[1..], &genesis);
    let certified = CertifiedHeader { header: above.header.clone(), descendants: vec![], finalization };
    let proof = StateProof::collect(&state, &[3, 40, 33, 1], &[2_000, 1_007, 2_002, 2_001]);
    let receipt = StateReceipt::new(proof, certified);
    let verified = receipt.verify(&genesis).unwrap();
    assert_eq!((verified.height, verified.certified_height, verified.signers.len()), (1, 2, 3));
    let bytes = receipt.encode();
    assert_eq!(StateReceipt::decode(&bytes, &genesis).unwrap(), receipt);

    // The same genesis as a chain re-founded from a backup of chain 6 at height 512.
    let founding = tally_chain::genesis::Founding {
        chain_id: CHAIN_ID - 1,
        height: 512,
        block: [0x5a; 32].into(),
        state_digest: [0xa5; 32],
    };
    let founded = file.clone().with_founding(founding).unwrap();

    json!({
        "genesis": file.to_json(),
        "genesis_digest": hex::encode(genesis.block().header.parent.as_ref()),
        "founded_genesis": founded.to_json(),
        "founded_genesis_digest": hex::encode(founded.genesis().block().header.parent.as_ref()),
        "receipt": hex::encode(&bytes),
        "height": "1",
        "certified_height": "2",
        "signers": verified.signers.iter().map(|key| hex::encode(key.as_ref())).collect::<Vec<_>>(),
        "accounts": receipt.proof.accounts.iter().map(|(account, _)| tally_api::account_to_json(account)).collect::<Vec<_>>(),
        "transfers": receipt.proof.transfers.iter().map(|(transfer, _)| tally_api::transfer_to_json(transfer)).collect::<Vec<_>>(),
    })
}

#[test]
fn the_verifier_vectors_are_what_rust_computes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/dashboard/verify-vectors.json");
    let expected = json!({
        "about": "Computed by crates/node/tests/verify_vectors.rs; checked against crates/node/assets/verify.js by tests/dashboard/dashboard.test.mjs",
        "blake3": blake3_vectors(),
        "state_receipt": receipt_vector(),
    });
    let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
    if std::env::var_os("TALLY_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    let stored: Value = serde_json::from_str(&stored).unwrap_or(Value::Null);
    assert!(
        stored == expected,
        "{} is not what Rust computes: after a deliberate change, rewrite it with \
         TALLY_WRITE_VECTORS=1 cargo test -p tally-node --test verify_vectors",
        path.display()
    );
}
