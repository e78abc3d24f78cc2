//! Recovery in a deterministic cluster.
//!
//! - A validator whose finalized log was damaged while it was stopped finds the damage, fetches
//!   the records again from its peers (checked against finalization certificates), and then
//!   answers every old outcome as the others do. Never a wrong answer meanwhile: a damaged
//!   outcome answers `OutcomeRepairing`.
//! - A validator down for 10,000 heights catches up through marshal's backfill (on demand:
//!   `--ignored`).
//!
//! A failure prints its seed; `TALLY_SEED=<seed> cargo test -p tally-chain --test recovery`
//! replays it.

mod support;

use commonware_p2p::simulated::{self, Link};
use commonware_runtime::{
    Blob as _, Clock as _, ReadOptions, Runner as _, Storage as _, Supervisor as _, WriteOptions, deterministic,
};
use commonware_utils::probability;
use std::time::Duration;
use tally_chain::application::log::FinalizedLog;
use tally_chain::consensus::ConsensusConfig;
use tally_chain::keys::{ClientSigner, ValidatorKey, ValidatorSigner, public_key, signer_from_seed};
use tally_chain::validator::Validator;
use tally_chain::{ChainError, Genesis, Request, RequestKey};
use tally_ledger::{Account, Transfer};

const CHAIN_ID: u64 = 9;
const VALIDATORS: u64 = 4;
/// Records per section of the finalized log (`log.rs`): the journal checks its last two
/// sections when it opens, so damage in older ones is what a validator must find by itself.
const BLOCKS_PER_SECTION: u64 = 1_024;
const SNAPSHOT_INTERVAL: u64 = 64;

fn seed() -> u64 {
    support::seed(0)
}

async fn start(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    genesis: &Genesis,
    signer: &ValidatorSigner,
    index: usize,
) -> Validator {
    support::start_validator(
        context,
        oracle,
        genesis,
        signer,
        index,
        ConsensusConfig {
            snapshot_interval: SNAPSHOT_INTERVAL,
            ..ConsensusConfig::local(format!("validator-{index}"))
        },
    )
    .await
}

/// A running cluster on fast, reliable simulated links.
struct Cluster {
    signers: Vec<ValidatorSigner>,
    client: ClientSigner,
    genesis: Genesis,
    oracle: simulated::Oracle<ValidatorKey, deterministic::Context>,
    running: Vec<Validator>,
}

async fn start_cluster(context: &deterministic::Context) -> Cluster {
    let signers: Vec<ValidatorSigner> = (0..VALIDATORS).map(signer_from_seed).collect();
    let validators: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
    let client: ClientSigner = signer_from_seed(1_000);
    let genesis = Genesis::new(CHAIN_ID, validators.clone(), vec![public_key(&client)], 0).unwrap();
    let link =
        Link { latency: Duration::from_millis(5), jitter: Duration::from_millis(1), success_rate: probability!(1.0) };
    let oracle = support::start_network(context, &validators, link).await;
    let mut running = Vec::new();
    for (index, signer) in signers.iter().enumerate() {
        running.push(start(context, &oracle, &genesis, signer, index).await);
    }

    Cluster { signers, client, genesis, oracle, running }
}

/// A client's expiry for a request signed now: two minutes ahead of the simulated clock (a
/// long test runs for more simulated minutes than any fixed expiry would cover).
fn expiry(context: &deterministic::Context) -> u64 {
    let now = context.current().duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::try_from(now.as_nanos()).unwrap() + tally_chain::constants::REQUEST_TTL_DEFAULT_NS
}

/// Submits one-transfer requests (about one a block) through validators 0 to 2 until `until`
/// says stop, with request ids from `next_id` on (id 1 opens the accounts); returns every
/// request accepted, in order.
async fn load(
    context: &deterministic::Context,
    cluster: &Cluster,
    next_id: &mut u128,
    mut until: impl AsyncFnMut() -> bool,
) -> Vec<RequestKey> {
    let mut keys = Vec::new();
    if *next_id == 1 {
        let accounts: Vec<Account> =
            (1..=4).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
        let opening = Request::create_accounts(CHAIN_ID, 1, expiry(context), &cluster.client, &accounts).unwrap();
        keys.push(opening.key());
        cluster.running[0].mailbox.submit(opening.verify(CHAIN_ID).unwrap()).await.unwrap();
        *next_id = 2;
    }
    let mut id = *next_id;
    while !until().await {
        let transfer = Transfer {
            id,
            debit_account_id: 1 + id % 4,
            credit_account_id: 1 + (id + 1) % 4,
            amount: id,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let request = Request::create_transfers(CHAIN_ID, id, expiry(context), &cluster.client, &[transfer]).unwrap();
        let key = request.key();
        match cluster.running[(id % 3) as usize].mailbox.submit(request.verify(CHAIN_ID).unwrap()).await {
            Ok(()) => {
                keys.push(key);
                id += 1;
            }
            Err(ChainError::Busy) => {}
            Err(error) => panic!("request {id} refused: {error}"),
        }
        context.sleep(Duration::from_millis(20)).await;
    }
    *next_id = id;
    keys
}

/// Flips one byte at `fraction` of the way through section `section` of validator 3's log.
async fn flip(context: &deterministic::Context, section: u64, fraction: f64) {
    let (blob, size) = context.open("validator-3-finalized_data", &section.to_be_bytes()).await.unwrap();
    let at = (size as f64 * fraction) as u64;
    let byte = blob.read_at(at, 1, ReadOptions::default()).await.unwrap().coalesce().as_ref()[0];
    blob.write_at(at, vec![byte ^ 0x10], WriteOptions::default()).await.unwrap();
    blob.sync().await.unwrap();
}

#[test]
fn a_validator_repairs_damaged_old_records_from_its_peers_and_answers_every_outcome() {
    let seed = seed();
    let config = deterministic::Config::new().with_seed(seed).with_timeout(Some(Duration::from_secs(3_600)));
    println!("seed {seed}");
    deterministic::Runner::new(config).start(|context| async move {
        let cluster = start_cluster(&context).await;

        // Requests flow (one a block, roughly) until validator 3's log holds three sections.
        let three_sections = 2 * BLOCKS_PER_SECTION + 100;
        let keys = load(&context, &cluster, &mut 1, async || {
            cluster.running[3].mailbox.status().await.unwrap().finalized_height >= three_sections
        })
        .await;
        let Cluster { signers, genesis, oracle, mut running, .. } = cluster;
        // Every request is finalized before validator 3 stops.
        let settle = context.current();
        for key in &keys {
            while running[0].mailbox.outcome(key.clone()).await.unwrap().is_none() {
                assert!(context.current().duration_since(settle).unwrap() < Duration::from_secs(60));
                context.sleep(Duration::from_millis(100)).await;
            }
        }
        let mut expected = Vec::new();
        for key in &keys {
            expected.push(running[0].mailbox.outcome(key.clone()).await.unwrap().unwrap());
        }
        let stopped_at = running[3].mailbox.status().await.unwrap().finalized_height;
        running[3].stop();
        // Its aborted tasks let go of its files.
        context.sleep(Duration::from_secs(1)).await;
        println!(
            "validator 3 stopped at height {stopped_at} after {:?}",
            context.current().duration_since(std::time::UNIX_EPOCH).unwrap()
        );

        // Bytes flipped in the oldest section of its finalized log.
        for fraction in [0.2, 0.5, 0.8] {
            flip(&context, 0, fraction).await;
        }
        let log = FinalizedLog::open(context.child("inspect"), "validator-3-finalized".into()).await.unwrap();
        let mut damaged = 0;
        for height in 1..=BLOCKS_PER_SECTION {
            if matches!(log.read(height).await, Err(ChainError::LogDamaged { .. })) {
                damaged += 1;
            }
        }
        drop(log);
        assert!(damaged > 0, "the flipped bytes damaged records");

        // It restarts; the scrub finds the damage and its peers repair it. Meanwhile every
        // answer is the right one, or `OutcomeRepairing`.
        running[3] = start(&context, &oracle, &genesis, &signers[3], 3).await;
        assert!(running[3].mailbox.status().await.unwrap().finalized_height >= stopped_at);
        let restarted = context.current();
        let mut repairing_seen = 0;
        loop {
            let mut pending = 0;
            for (key, expected) in keys.iter().zip(&expected) {
                match running[3].mailbox.outcome(key.clone()).await {
                    Ok(Some(outcome)) => assert_eq!(&outcome, expected, "validator 3 answered {key:?} wrongly"),
                    Err(ChainError::OutcomeRepairing { .. }) => pending += 1,
                    other => panic!("validator 3 answered {key:?} with {other:?}"),
                }
            }
            repairing_seen = repairing_seen.max(pending);
            if pending == 0 {
                break;
            }
            let waited = context.current().duration_since(restarted).unwrap();
            assert!(waited < Duration::from_secs(120), "{pending} outcomes still unrepaired after {waited:?}");
            context.sleep(Duration::from_secs(1)).await;
        }
        // The repaired records are kept beside the log.
        let repaired = context.scan("validator-3-finalized-repaired").await.unwrap();
        assert!(repaired.len() as u64 >= damaged, "{} repaired of {damaged} damaged", repaired.len());
        println!("{damaged} damaged records, {repairing_seen} outcomes answered `repairing` at once, all repaired");
    });
}

/// A validator down while the others finalize 10,000 heights restarts from its disk and catches
/// up through marshal's backfill, however far that is (no byte budget on the walk), and agrees
/// with the others block by block. About 8 minutes on two busy cores, so it runs on demand:
/// `cargo test --release -p tally-chain --test recovery -- --ignored`.
#[test]
#[ignore]
fn a_validator_down_for_ten_thousand_heights_catches_up() {
    const BEHIND: u64 = 10_000;
    let seed = seed();
    let config = deterministic::Config::new().with_seed(seed).with_timeout(Some(Duration::from_secs(36_000)));
    println!("seed {seed}");
    deterministic::Runner::new(config).start(|context| async move {
        let cluster = start_cluster(&context).await;
        // Validator 3 takes part for a while, then stops.
        let mut next_id = 1;
        load(&context, &cluster, &mut next_id, async || {
            cluster.running[3].mailbox.status().await.unwrap().finalized_height >= 20
        })
        .await;
        let stopped_at = cluster.running[3].mailbox.status().await.unwrap().finalized_height;
        cluster.running[3].stop();
        context.sleep(Duration::from_secs(1)).await;
        let target = stopped_at + BEHIND;
        load(&context, &cluster, &mut next_id, async || {
            cluster.running[0].mailbox.status().await.unwrap().finalized_height >= target
        })
        .await;
        let Cluster { signers, genesis, oracle, mut running, .. } = cluster;

        running[3] = start(&context, &oracle, &genesis, &signers[3], 3).await;
        let restarted = context.current();
        let reference = running[0].mailbox.status().await.unwrap().finalized_height;
        loop {
            let height = running[3].mailbox.status().await.unwrap().finalized_height;
            if height >= reference {
                break;
            }
            let waited = context.current().duration_since(restarted).unwrap();
            assert!(waited < Duration::from_secs(1_800), "validator 3 reached only height {height} of {reference}");
            context.sleep(Duration::from_secs(1)).await;
        }
        let caught_up = context.current().duration_since(restarted).unwrap();
        let history = running[3].mailbox.history().await.unwrap();
        assert_eq!(history.base, 0, "validator 3 kept its own chain (it had one): no snapshot adopted");
        assert!(history.agrees_with(&running[0].mailbox.history().await.unwrap()));
        println!("validator 3 caught up {} heights in {caught_up:?} (simulated)", reference - stopped_at);
    });
}
