//! Whole clusters in Commonware's deterministic runtime with simulated links: validators order
//! client requests with Simplex and execute them, and must agree block by block.
//!
//! A failure prints its seed; `TALLY_SEED=<seed> cargo test -p tally-chain --test cluster`
//! replays it.

mod support;

use commonware_p2p::simulated::{self, Link};
use commonware_runtime::{Clock as _, Quota, Runner as _, Spawner as _, Storage as _, Supervisor as _, deterministic};
use commonware_utils::{NZU32, probability};
use std::time::Duration;
use tally_chain::application::{History, Status};
use tally_chain::consensus::ConsensusConfig;
use tally_chain::keys::{ClientSigner, ValidatorKey, ValidatorSigner, public_key, signer_from_seed};
use tally_chain::validator::{Validator, channel};
use tally_chain::{ChainError, Genesis, Mailbox, Request, RequestKey, RequestOutcome, RequestResult};
use tally_ledger::{Account, CreateAccountStatus, CreateTransferStatus, Transfer};

/// An expiry ahead of every block timestamp here: simulated time starts at 1970, and a test
/// submits its requests in its first 590 simulated seconds (a block at time 0 may include them).
const EXPIRES_NS: u64 = 590_000_000_000;

const CHAIN_ID: u64 = 7;
const VALIDATORS: u64 = 4;
const CLIENTS: u64 = 3;
const ACCOUNTS: u128 = 8;
const ROUNDS: u128 = 12;
const TRANSFERS_PER_REQUEST: u128 = 20;
/// Simulated time a run may take before it is a failure.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// What one run of the cluster produced, per validator.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    histories: Vec<History>,
    outcomes: Vec<Vec<RequestOutcome>>,
    statuses: Vec<Status>,
    /// Requests the clients submitted.
    requests: usize,
    /// Simulated time the run took.
    elapsed: Duration,
}

fn seed() -> u64 {
    support::seed(42)
}

fn transfer(id: u128, round: u128) -> Transfer {
    // A ring of transfers between the accounts: money moves but the total stays.
    let debit = id % ACCOUNTS + 1;
    let credit = (id + round) % ACCOUNTS + 1;
    let credit = if credit == debit { debit % ACCOUNTS + 1 } else { credit };
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount: 10,
        ledger: 1,
        code: 1,
        ..Transfer::default()
    }
}

/// Submits with retries while the validator answers busy.
async fn submit(context: &deterministic::Context, mailbox: &Mailbox, request: Request) {
    loop {
        match mailbox.submit(request.clone().verify(CHAIN_ID).unwrap()).await {
            Ok(()) => return,
            Err(ChainError::Busy) => context.sleep(Duration::from_millis(50)).await,
            Err(error) => panic!("request {} refused: {error}", request.id()),
        }
    }
}

/// Waits (in simulated time, up to `bound`) until the validator has finalized `height`.
async fn wait_for_height(context: &deterministic::Context, mailbox: &Mailbox, height: u64, bound: Duration) {
    let started = context.current();
    while mailbox.status().await.map_or(0, |status| status.finalized_height) < height {
        let waited = context.current().duration_since(started).unwrap_or_default();
        assert!(waited < bound, "the validator did not reach height {height} within {bound:?}");
        context.sleep(Duration::from_millis(100)).await;
    }
}

/// Reliable links with small jitter.
fn reliable() -> Link {
    Link { latency: Duration::from_millis(20), jitter: Duration::from_millis(5), success_rate: probability!(1.0) }
}

/// What a run puts the cluster through.
#[derive(Clone)]
struct Scenario {
    link: Link,
    /// A validator to stop abruptly at round `CRASH_ROUND` and restart from its storage at
    /// `RESTART_ROUND`.
    restart: Option<usize>,
    /// Run with the timings validators run with (`ConsensusConfig::quiet`: a 10 s heartbeat)
    /// rather than the quick ones of tests.
    quiet: bool,
}

const CRASH_ROUND: u128 = 3;
/// Polls (100 ms each) a client waits for an outcome before retrying through another validator.
const CLIENT_RETRY_POLLS: usize = 30;
const RESTART_ROUND: u128 = 7;

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("latency", &self.link.latency)
            .field("jitter", &self.link.jitter)
            .field("success_rate", &self.link.success_rate)
            .field("restart", &self.restart)
            .finish()
    }
}

impl Scenario {
    fn honest() -> Self {
        Self { link: reliable(), restart: None, quiet: false }
    }
}

/// Finalized heights between snapshots in these tests: small, so that restarts start from one.
const SNAPSHOT_INTERVAL: u64 = 16;

/// Starts validator `index` with its storage partitions (reused on restart).
async fn start_validator(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    genesis: &Genesis,
    signer: &ValidatorSigner,
    index: usize,
) -> Validator {
    start_validator_on(context, oracle, genesis, signer, index, &format!("validator-{index}")).await
}

/// The consensus configuration of these tests' validators: the quick timings, or those
/// validators run with.
fn consensus(partition: &str, quiet: bool) -> ConsensusConfig {
    let timings =
        if quiet { ConsensusConfig::quiet(partition.into()) } else { ConsensusConfig::local(partition.into()) };
    ConsensusConfig { snapshot_interval: SNAPSHOT_INTERVAL, ..timings }
}

/// Starts validator `index` with the storage partitions named `partition`.
async fn start_validator_on(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    genesis: &Genesis,
    signer: &ValidatorSigner,
    index: usize,
    partition: &str,
) -> Validator {
    support::start_validator(context, oracle, genesis, signer, index, consensus(partition, false)).await
}

/// A running cluster of `VALIDATORS` validators on simulated links.
struct Cluster {
    signers: Vec<ValidatorSigner>,
    clients: Vec<ClientSigner>,
    genesis: Genesis,
    oracle: simulated::Oracle<ValidatorKey, deterministic::Context>,
    running: Vec<Validator>,
}

/// Starts the network and every validator of `scenario`.
async fn start_cluster(context: &deterministic::Context, scenario: &Scenario) -> Cluster {
    let signers: Vec<_> = (0..VALIDATORS).map(signer_from_seed).collect();
    let validators: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
    let clients: Vec<ClientSigner> = (0..CLIENTS).map(|index| signer_from_seed(1_000 + index)).collect();
    let genesis = Genesis::new(CHAIN_ID, validators.clone(), clients.iter().map(public_key).collect(), 0).unwrap();

    let oracle = support::start_network(context, &validators, scenario.link.clone()).await;

    let mut running = Vec::new();
    for (index, signer) in signers.iter().enumerate() {
        let config = consensus(&format!("validator-{index}"), scenario.quiet);
        running.push(support::start_validator(context, &oracle, &genesis, signer, index, config).await);
    }

    Cluster { signers, clients, genesis, oracle, running }
}

fn run_cluster(seed: u64, scenario: Scenario) -> Run {
    let config = deterministic::Config::new().with_seed(seed).with_timeout(Some(RUN_TIMEOUT));
    let executor = deterministic::Runner::new(config);
    executor.start(|context| async move {
        let started = context.current();
        let Cluster { signers, clients, genesis, oracle, mut running } = start_cluster(&context, &scenario).await;

        // Create the accounts first, through validator 0, and wait until it is finalized so
        // that transfers never race their accounts.
        let accounts: Vec<Account> =
            (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
        let opening = Request::create_accounts(CHAIN_ID, 1, EXPIRES_NS, &clients[0], &accounts).unwrap();
        let mut keys = vec![opening.key()];
        // Transfer requests, for clients to retry.
        let mut submitted: Vec<Request> = Vec::new();
        submit(&context, &running[0].mailbox, opening).await;
        while running[0].mailbox.outcome(keys[0].clone()).await.ok().flatten().is_none() {
            context.sleep(Duration::from_millis(100)).await;
        }

        // Clients submit transfers through every (running) validator in turn; one retry goes
        // through a second validator with the same id and must be included once.
        let mut down = false;
        let mut height_at_crash = 0;
        for round in 0..ROUNDS {
            if let Some(crashed) = scenario.restart {
                if round == CRASH_ROUND {
                    // Crash once the validator has finalized something (slow, lossy links may
                    // take a while), so that its restart has a log to start from.
                    for _ in 0..600 {
                        height_at_crash = running[crashed].mailbox.status().await.unwrap().finalized_height;
                        if height_at_crash > 0 {
                            break;
                        }
                        context.sleep(Duration::from_millis(50)).await;
                    }
                    running[crashed].stop();
                    // Stopping reaches every task of the validator within a few turns of the
                    // runtime (each task is dropped when the runtime next polls it).
                    let mut answered = true;
                    for _ in 0..10 {
                        context.sleep(Duration::from_millis(1)).await;
                        answered = running[crashed].mailbox.status().await.is_some();
                        if !answered {
                            break;
                        }
                    }
                    assert!(!answered, "an aborted validator answers nothing");
                    down = true;
                }
                if round == RESTART_ROUND {
                    let restarted = start_validator(&context, &oracle, &genesis, &signers[crashed], crashed).await;
                    // The validator rebuilt its ledger from its own log before answering.
                    let status = restarted.mailbox.status().await.unwrap();
                    assert!(height_at_crash > 0, "the crash came before any finalization");
                    assert!(status.finalized_height >= height_at_crash, "restart lost finalized blocks: {status:?}");
                    running[crashed] = restarted;
                    down = false;
                }
            }
            let alive = |index: usize| !down || scenario.restart != Some(index);
            for (index, client) in clients.iter().enumerate() {
                let id = 100 + round * CLIENTS as u128 + index as u128;
                let transfers: Vec<Transfer> =
                    (0..TRANSFERS_PER_REQUEST).map(|offset| transfer(id * 1_000 + offset, round)).collect();
                let request = Request::create_transfers(CHAIN_ID, id, EXPIRES_NS, client, &transfers).unwrap();
                keys.push(request.key());
                submitted.push(request.clone());
                let mut through = (round as usize + index) % running.len();
                while !alive(through) {
                    through = (through + 1) % running.len();
                }
                submit(&context, &running[through].mailbox, request.clone()).await;
                if round == 3 && index == 0 {
                    let mut retry = (through + 1) % running.len();
                    while !alive(retry) {
                        retry = (retry + 1) % running.len();
                    }
                    // The other validator may already hold it from gossip: a duplicate answer is
                    // the idempotent outcome.
                    match running[retry].mailbox.submit(request.verify(CHAIN_ID).unwrap()).await {
                        Ok(()) | Err(ChainError::DuplicateRequest { .. }) => {}
                        Err(error) => panic!("retry refused: {error}"),
                    }
                }
            }
            context.sleep(Duration::from_millis(150)).await;
        }

        // Wait until every validator has finalized every request. A validator that accepts a
        // request holds it in memory only: if it crashes before the request reaches the others,
        // the request is lost, so a client without an outcome after a while retries through
        // another validator with the same id (the retry is included once at most).
        for key in &keys {
            let mut waited = 0;
            while running[0].mailbox.outcome(key.clone()).await.ok().flatten().is_none() {
                context.sleep(Duration::from_millis(100)).await;
                waited += 1;
                if waited % CLIENT_RETRY_POLLS == 0
                    && let Some(request) = submitted.iter().find(|request| request.key() == *key)
                {
                    let through = (waited / CLIENT_RETRY_POLLS) % running.len();
                    match running[through].mailbox.submit(request.clone().verify(CHAIN_ID).unwrap()).await {
                        Ok(()) | Err(ChainError::DuplicateRequest { .. } | ChainError::Busy) => {}
                        Err(error) => panic!("retry refused: {error}"),
                    }
                }
            }
        }
        for validator in &running {
            for key in &keys {
                while validator.mailbox.outcome(key.clone()).await.ok().flatten().is_none() {
                    context.sleep(Duration::from_millis(100)).await;
                }
            }
        }

        let mut histories = Vec::new();
        let mut outcomes = Vec::new();
        let mut statuses = Vec::new();
        for validator in &running {
            let mailbox = &validator.mailbox;
            statuses.push(mailbox.status().await.expect("validator running"));
            histories.push(mailbox.history().await.expect("validator running"));
            let mut validator_outcomes = Vec::new();
            for key in &keys {
                validator_outcomes.push(mailbox.outcome(RequestKey::clone(key)).await.unwrap().unwrap());
            }
            outcomes.push(validator_outcomes);
        }
        let elapsed = context.current().duration_since(started).unwrap();
        Run { histories, outcomes, statuses, requests: keys.len(), elapsed }
    })
}

fn check(seed: u64, run: &Run) {
    let context = format!("seed {seed} (replay: TALLY_SEED={seed} cargo test -p tally-chain --test cluster)");
    // Equal blocks and equal ledger digests at every height all validators reached.
    let common = run.histories.iter().map(History::height).min().unwrap();
    assert!(common > 1, "{context}: only {common} blocks finalized");
    for history in &run.histories[1..] {
        assert!(history.agrees_with(&run.histories[0]), "{context}: histories diverge");
    }
    // Every validator reports the same outcome for every request.
    for outcomes in &run.outcomes[1..] {
        assert_eq!(outcomes, &run.outcomes[0], "{context}: outcomes diverge");
    }
    // Every request executed, each event accepted, and each exactly once (heights ascend with
    // request ids within a client, and the retried request has one outcome).
    for outcome in &run.outcomes[0] {
        match &outcome.result {
            RequestResult::Accounts(results) => {
                assert!(results.iter().all(|r| r.status == CreateAccountStatus::Created), "{context}: {results:?}")
            }
            RequestResult::Transfers(results) => {
                assert!(results.iter().all(|r| r.status == CreateTransferStatus::Created), "{context}: {results:?}")
            }
            RequestResult::Refused(error) => panic!("{context}: refused batch {error}"),
        }
    }
    let total_events: usize = run.outcomes[0]
        .iter()
        .map(|outcome| match &outcome.result {
            RequestResult::Accounts(results) => results.len(),
            RequestResult::Transfers(results) => results.len(),
            RequestResult::Refused(_) => 0,
        })
        .sum();
    assert_eq!(total_events as u128, ACCOUNTS + ROUNDS * CLIENTS as u128 * TRANSFERS_PER_REQUEST);
    // Nothing but the clients' requests was finalized (no forgery, no repeat).
    for status in &run.statuses {
        assert_eq!(status.requests_finalized, run.requests, "{context}: {status:?}");
    }
    println!(
        "seed {seed}: {} blocks finalized, {} requests, {:?} simulated, refused per validator {:?}",
        common - 1,
        run.requests,
        run.elapsed,
        run.statuses.iter().map(|status| status.blocks_refused).collect::<Vec<_>>(),
    );
}

#[test]
fn four_validators_agree_on_blocks_and_ledger_digests() {
    let seed = seed();
    let run = run_cluster(seed, Scenario::honest());
    check(seed, &run);
    assert!(run.statuses.iter().all(|status| status.blocks_refused == 0), "honest blocks are never refused");
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let seed = seed() + 1;
    let first = run_cluster(seed, Scenario::honest());
    check(seed, &first);
    assert_eq!(run_cluster(seed, Scenario::honest()), first, "seed {seed} is not deterministic");
}

/// One message in five is lost on every link: validators that miss a block fetch it from their
/// peers, and Simplex repairs missing votes and certificates.
#[test]
fn lossy_links_still_agree() {
    let seed = seed() + 3;
    let lossy =
        Link { latency: Duration::from_millis(30), jitter: Duration::from_millis(15), success_rate: probability!(0.8) };
    let run = run_cluster(seed, Scenario { link: lossy, ..Scenario::honest() });
    check(seed, &run);
}

/// A validator stopped abruptly mid-load restarts from its own finalized log, catches up on the
/// blocks finalized while it was down (fetching them from peers), and ends with equal digests
/// and every request's outcome.
#[test]
fn a_crashed_validator_restarts_from_its_log_and_catches_up() {
    let seed = seed() + 4;
    let run = run_cluster(seed, Scenario { restart: Some(2), ..Scenario::honest() });
    check(seed, &run);
}

/// A small splitmix64 step: derives scenario parameters from a seed.
fn mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The scenario a sweep seed draws: link latency, jitter and loss, and with one chance in four
/// a crash and restart. (Byzantine validators are the simulator's: `crates/sim`.)
fn drawn(seed: u64) -> Scenario {
    let mut state = seed;
    let latency = Duration::from_millis(5 + mix(&mut state) % 100);
    let jitter = Duration::from_millis(mix(&mut state) % 30);
    let success_rate = commonware_utils::Probability::new(75 + mix(&mut state) % 26, 100).unwrap();
    let mut scenario = Scenario { link: Link { latency, jitter, success_rate }, ..Scenario::honest() };
    let crashed = (mix(&mut state) % VALIDATORS) as usize;
    if mix(&mut state) % 4 == 0 {
        scenario.restart = Some(crashed);
    }
    scenario
}

/// Runs `count` seeds from `start`, each drawing its own scenario; prints every failing seed
/// with the command that replays it, and a closing `N passed, M failed` line.
fn sweep(start: u64, count: u64) {
    let mut failed = Vec::new();
    for seed in start..start + count {
        let scenario = drawn(seed);
        println!("seed {seed}: {scenario:?}");
        let result = std::panic::catch_unwind(|| check(seed, &run_cluster(seed, scenario)));
        if result.is_err() {
            println!(
                "seed {seed} FAILED: replay with TALLY_SEED={seed} TALLY_SEEDS=1 cargo test --release -p tally-chain \
                 --test cluster seed_sweep -- --ignored --nocapture"
            );
            failed.push(seed);
        }
    }
    println!("{} passed, {} failed", count as usize - failed.len(), failed.len());
    assert!(failed.is_empty(), "failed seeds: {failed:?}");
}

/// Seeds on every test run: 200 in release builds (about 20 seconds), 2 in debug builds, where
/// a seed takes seconds.
#[test]
fn seeds_with_faults() {
    let count = if cfg!(debug_assertions) { 2 } else { 200 };
    sweep(seed() * 1_000, count);
}

/// A longer soak: `TALLY_SEEDS=5000 TALLY_SEED=1 cargo test --release -p tally-chain --test
/// cluster seed_sweep -- --ignored --nocapture`.
#[test]
#[ignore = "soak: runs TALLY_SEEDS seeds (default 1000) from TALLY_SEED; `seeds_with_faults` runs in CI"]
fn seed_sweep() {
    let count = std::env::var("TALLY_SEEDS").ok().map_or(1_000, |count| count.parse().expect("TALLY_SEEDS is a u64"));
    sweep(seed(), count);
}

/// Peers that send malformed requests or snapshot messages are blocked by every validator that
/// receives them. (Marshal's block broadcast and backfill drop malformed frames, and block a peer
/// whose backfill answer does not match what was asked for.)
#[test]
fn peers_sending_malformed_messages_are_blocked() {
    let executor =
        deterministic::Runner::new(deterministic::Config::new().with_seed(seed()).with_timeout(Some(RUN_TIMEOUT)));
    executor.start(|context| async move {
        let signers: Vec<_> = (0..VALIDATORS).map(signer_from_seed).collect();
        let validators: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
        let attackers: Vec<ValidatorKey> = (0..2).map(|index| public_key(&signer_from_seed(7_000 + index))).collect();
        let genesis =
            Genesis::new(CHAIN_ID, validators.clone(), vec![public_key(&signer_from_seed(1_000))], 0).unwrap();
        let everyone: Vec<ValidatorKey> = validators.iter().chain(&attackers).cloned().collect();
        let oracle = support::start_network(&context, &everyone, reliable()).await;
        let mut running = Vec::new();
        for (index, signer) in signers.iter().enumerate() {
            running.push(start_validator(&context, &oracle, &genesis, signer, index).await);
        }
        let quota = Quota::per_second(NZU32!(10_000));
        for (attacker, channel) in attackers.iter().zip([channel::REQUESTS, channel::SNAPSHOTS]) {
            let (mut sender, _receiver) = oracle.control(attacker.clone()).register(channel, quota).await.unwrap();
            commonware_p2p::Sender::send(&mut sender, commonware_p2p::Recipients::All, vec![0xff; 40], false);
        }
        context.sleep(Duration::from_secs(1)).await;
        let blocked = oracle.blocked().await.unwrap();
        for validator in &validators {
            for attacker in &attackers {
                assert!(
                    blocked.contains(&(validator.clone(), attacker.clone())),
                    "{validator} did not block {attacker}: {blocked:?}"
                );
            }
        }
        // Honest validators block no one.
        assert!(blocked.iter().all(|(_, peer)| attackers.contains(peer)), "{blocked:?}");
        drop(running);
    });
}

/// The whole cluster crashes at once (every unsynced write is lost) and restarts from its
/// files: every outcome a validator answered before the crash survives unchanged, and the
/// cluster goes on finalizing with equal digests.
/// A validator that lost its disk starts again with nothing but the genesis. It catches up from
/// a peer's snapshot plus the finalized blocks after it (the block above the snapshot commits to
/// its state digest), then takes part again.
#[test]
fn a_validator_with_an_empty_disk_catches_up_from_a_snapshot() {
    let config = deterministic::Config::new().with_seed(seed() + 9).with_timeout(Some(RUN_TIMEOUT));
    deterministic::Runner::new(config).start(|context| async move {
        let Cluster { signers, clients, genesis, oracle, mut running } =
            start_cluster(&context, &Scenario::honest()).await;
        let accounts: Vec<Account> =
            (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
        let opening = Request::create_accounts(CHAIN_ID, 1, EXPIRES_NS, &clients[0], &accounts).unwrap();
        let early = opening.key();
        submit(&context, &running[0].mailbox, opening).await;
        while running[0].mailbox.outcome(early.clone()).await.ok().flatten().is_none() {
            context.sleep(Duration::from_millis(100)).await;
        }

        // Validator 3 goes down; the others finalize well past a few snapshots.
        running[3].stop();
        let mut id = 2;
        while running[0].mailbox.status().await.unwrap().finalized_height <= 4 * SNAPSHOT_INTERVAL {
            let request = Request::create_transfers(CHAIN_ID, id, EXPIRES_NS, &clients[0], &[transfer(id, 1)]).unwrap();
            submit(&context, &running[(id % 3) as usize].mailbox, request).await;
            id += 1;
            context.sleep(Duration::from_millis(200)).await;
        }

        // It comes back on an empty disk.
        running[3] = start_validator_on(&context, &oracle, &genesis, &signers[3], 3, "validator-3-replaced").await;
        let target = running[0].mailbox.status().await.unwrap().finalized_height;
        wait_for_height(&context, &running[3].mailbox, target, Duration::from_secs(60)).await;
        let joined = running[3].mailbox.history().await.unwrap();
        assert!(joined.base > 0, "validator 3 started from a snapshot, not from genesis");
        let reference = running[0].mailbox.history().await.unwrap();
        assert!(joined.agrees_with(&reference), "validator 3 disagrees with validator 0");
        assert!(reference.get(joined.base).is_some(), "the snapshot's height is on the finalized chain");

        // It takes part: a request through it is finalized, and it answers the outcome.
        let request = Request::create_transfers(CHAIN_ID, id, EXPIRES_NS, &clients[0], &[transfer(id, 2)]).unwrap();
        let key = request.key();
        submit(&context, &running[3].mailbox, request).await;
        let mut waited = 0;
        let outcome = loop {
            if let Ok(Some(outcome)) = running[3].mailbox.outcome(key.clone()).await {
                break outcome;
            }
            waited += 1;
            assert!(waited < 600, "a request through validator 3 was not finalized");
            context.sleep(Duration::from_millis(100)).await;
        };
        assert!(outcome.height > joined.base);
        assert_eq!(Ok(Some(outcome)), running[0].mailbox.outcome(key).await);
        // A request finalized below its snapshot: it knows it was included, not what it did.
        assert!(matches!(
            running[3].mailbox.outcome(early.clone()).await,
            Err(ChainError::OutcomeNotHeld { height: 1.. })
        ));
        assert!(running[0].mailbox.outcome(early).await.unwrap().is_some());
        let (ours, theirs) = (running[3].mailbox.status().await.unwrap(), running[0].mailbox.status().await.unwrap());
        if ours.finalized_height == theirs.finalized_height {
            assert_eq!(ours.state_digest, theirs.state_digest);
        }
    });
}

/// A validator down while the others finalize more blocks than it holds pending
/// (`PENDING_BLOCKS_MAX`) restarts from its disk and walks the finalized chain down to its own
/// height: ancestors of a finalized block are held within a byte budget instead.
#[test]
fn a_validator_far_behind_walks_a_long_finalized_chain_down() {
    let config = deterministic::Config::new().with_seed(seed() + 11).with_timeout(Some(Duration::from_secs(1_200)));
    deterministic::Runner::new(config).start(|context| async move {
        let Cluster { signers, genesis, oracle, mut running, .. } = start_cluster(&context, &Scenario::honest()).await;
        running[3].stop();
        let behind = tally_chain::constants::PENDING_BLOCKS_MAX as u64 + 100;
        while running[0].mailbox.status().await.unwrap().finalized_height < behind {
            context.sleep(Duration::from_secs(1)).await;
        }
        running[3] = start_validator(&context, &oracle, &genesis, &signers[3], 3).await;
        let restarted = running[3].mailbox.status().await.unwrap().finalized_height;
        let target = running[0].mailbox.status().await.unwrap().finalized_height;
        assert!(target > restarted + tally_chain::constants::PENDING_BLOCKS_MAX as u64);
        wait_for_height(&context, &running[3].mailbox, target, Duration::from_secs(120)).await;
        let history = running[3].mailbox.history().await.unwrap();
        assert!(history.agrees_with(&running[0].mailbox.history().await.unwrap()));
    });
}

#[test]
fn the_whole_cluster_crashes_and_recovers_what_it_acknowledged() {
    let seed = seed() + 5;
    let signers: Vec<_> = (0..VALIDATORS).map(signer_from_seed).collect();
    let validators: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
    let client = signer_from_seed(1_000);
    let genesis = Genesis::new(CHAIN_ID, validators.clone(), vec![public_key(&client)], 0).unwrap();
    let transfers = |id: u128| -> Request {
        let transfers: Vec<Transfer> = (0..5).map(|offset| transfer(id * 1_000 + offset, id)).collect();
        Request::create_transfers(CHAIN_ID, id, EXPIRES_NS, &client, &transfers).unwrap()
    };

    // Starts the cluster on the network of this run (the network does not survive a crash;
    // storage does).
    let start = async |context: &deterministic::Context| {
        let oracle = support::start_network(context, &validators, reliable()).await;
        let mut running = Vec::new();
        for (index, signer) in signers.iter().enumerate() {
            running.push(start_validator(context, &oracle, &genesis, signer, index).await);
        }
        running
    };

    let (start, transfers, client) = (&start, &transfers, &client);

    // Before the crash: open accounts, acknowledge some transfers, and leave more in flight.
    let config = deterministic::Config::new().with_seed(seed).with_timeout(Some(RUN_TIMEOUT));
    let ((acknowledged, history), checkpoint) =
        deterministic::Runner::new(config).start_and_recover(|context| async move {
            let running = start(&context).await;
            let accounts: Vec<Account> =
                (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
            let opening = Request::create_accounts(CHAIN_ID, 1, EXPIRES_NS, client, &accounts).unwrap();
            let mut keys = vec![opening.key()];
            submit(&context, &running[0].mailbox, opening).await;
            while running[0].mailbox.outcome(keys[0].clone()).await.ok().flatten().is_none() {
                context.sleep(Duration::from_millis(50)).await;
            }
            for id in 2..10 {
                let request = transfers(id);
                keys.push(request.key());
                submit(&context, &running[id as usize % running.len()].mailbox, request).await;
            }
            let mut acknowledged = Vec::new();
            for key in keys {
                let outcome = loop {
                    if let Ok(Some(outcome)) = running[1].mailbox.outcome(key.clone()).await {
                        break outcome;
                    }
                    context.sleep(Duration::from_millis(50)).await;
                };
                acknowledged.push((key, outcome));
            }
            let history = running[1].mailbox.history().await.unwrap();
            // More requests in flight when the power goes out.
            for id in 10..14 {
                submit(&context, &running[id as usize % running.len()].mailbox, transfers(id)).await;
            }
            context.sleep(Duration::from_millis(30)).await;
            (acknowledged, history)
        });

    // After the crash: restart every validator from its files.
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let running = start(&context).await;
        let status = running[1].mailbox.status().await.unwrap();
        assert!(
            status.finalized_height >= history.height(),
            "validator 1 acknowledged height {} but restarted at {status:?}",
            history.height()
        );
        let mut keys: Vec<RequestKey> = acknowledged.iter().map(|(key, _)| key.clone()).collect();
        for id in 20..24 {
            let request = transfers(id);
            keys.push(request.key());
            submit(&context, &running[id as usize % running.len()].mailbox, request).await;
        }
        for validator in &running {
            for key in &keys {
                while validator.mailbox.outcome(key.clone()).await.ok().flatten().is_none() {
                    context.sleep(Duration::from_millis(50)).await;
                }
            }
            for (key, outcome) in &acknowledged {
                assert_eq!(validator.mailbox.outcome(key.clone()).await.unwrap().as_ref(), Some(outcome), "{}", key.id);
            }
            let after = validator.mailbox.history().await.unwrap();
            assert!(after.height() >= history.height());
            assert!(after.agrees_with(&history), "the finalized chain changed across the crash");
        }
    });
}

/// What clients and the node's API read from a validator: a wait that resolves when the
/// request is final, the finalized blocks, the finalized ledger, and what the validator saw of
/// consensus (views, leaders, every validator's votes).
#[test]
fn clients_wait_for_outcomes_and_read_the_finalized_chain() {
    let config = deterministic::Config::new().with_seed(seed()).with_timeout(Some(RUN_TIMEOUT));
    deterministic::Runner::new(config).start(|context| async move {
        let Cluster { clients, genesis, running, .. } = start_cluster(&context, &Scenario::honest()).await;
        let accounts: Vec<Account> =
            (1..=2).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
        let request = Request::create_accounts(CHAIN_ID, 1, EXPIRES_NS, &clients[0], &accounts).unwrap();
        let key = request.key();
        // Waiting starts before the request exists anywhere, through another validator.
        let waiter = running[1].mailbox.clone();
        let waiting = context.child("waiter").spawn(move |_| async move { waiter.wait_outcome(key).await });
        submit(&context, &running[0].mailbox, request.clone()).await;
        let outcome = waiting.await.expect("waiter ran").expect("validator running");
        assert!(outcome.height >= 1);
        assert!(matches!(&outcome.result, RequestResult::Accounts(results) if results.len() == 2));
        // Once final, a wait answers at once, and matches the recorded outcome.
        let again = running[1].mailbox.wait_outcome(request.key()).await.unwrap();
        assert_eq!(Ok(Some(again)), running[1].mailbox.outcome(request.key()).await);

        let state = running[1].mailbox.finalized_state().await.unwrap();
        assert!(state.height() >= outcome.height);
        assert_eq!(state.ledger().lookup_accounts(&[1, 2, 3]).len(), 2);

        let blocks = running[1].mailbox.blocks(0, 1_000).await.unwrap();
        assert_eq!(blocks.len() as u64, state.height() + 1, "genesis and every finalized block");
        assert_eq!(blocks[0].digest, genesis.block().digest());
        for pair in blocks.windows(2) {
            assert_eq!(pair[1].block.header.parent, pair[0].digest);
            assert_eq!(pair[1].height, pair[0].height + 1);
        }
        let including = &blocks[outcome.height as usize];
        assert!(including.block.requests.iter().any(|r| r.key() == request.key()));
        assert_eq!(running[1].mailbox.blocks(outcome.height, 1).await.unwrap()[0], *including);
        assert!(running[1].mailbox.blocks(state.height() + 5, 10).await.unwrap().is_empty());

        let status = running[1].mailbox.status().await.unwrap();
        assert!(status.view >= outcome.height, "views advance at least once per block: {status:?}");
        assert!(genesis.validators().contains(&status.leader));
        assert_eq!(status.validators.len(), VALIDATORS as usize);
        for validator in &status.validators {
            assert!(validator.last_vote_view > 0, "every honest validator was seen voting: {status:?}");
            assert!(validator.last_vote_at.is_some());
            assert_eq!(validator.faults, 0);
        }
        assert_eq!(status.evidence, 0);
        assert_eq!(status.events_finalized, 2, "the two accounts are the only events");
    });
}

/// The heights of validator `index`'s snapshots (blobs named by height), ascending.
async fn snapshot_heights(context: &deterministic::Context, index: usize) -> Vec<u64> {
    let names = context.scan(&format!("validator-{index}-snapshots")).await.unwrap_or_default();
    let mut heights: Vec<u64> =
        names.iter().map(|name| u64::from_be_bytes(name.as_slice().try_into().expect("named by height"))).collect();
    heights.sort_unstable();
    heights
}

/// Opens the ledger with the test accounts through validator 0 and waits for the outcome.
async fn open_accounts(mailbox: &Mailbox, client: &ClientSigner) {
    let accounts: Vec<Account> =
        (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
    let opening = Request::create_accounts(CHAIN_ID, 1, EXPIRES_NS, client, &accounts).unwrap();
    mailbox.submit(opening.clone().verify(CHAIN_ID).unwrap()).await.unwrap();
    mailbox.wait_outcome(opening.key()).await.unwrap();
}

/// An idle cluster is quiet: a leader with nothing to propose holds its proposal for the
/// heartbeat, so the chain makes one empty block per heartbeat (not one per round of votes),
/// and empty blocks leave the state as it was, so no snapshot is written however many heights
/// pass. A request that arrives while a leader holds is proposed at once, and the changed state
/// is snapshotted again.
#[test]
fn an_idle_cluster_makes_a_block_per_heartbeat_and_no_snapshot() {
    let config = deterministic::Config::new().with_seed(seed() + 13).with_timeout(Some(Duration::from_secs(1_200)));
    deterministic::Runner::new(config).start(|context| async move {
        let heartbeat = ConsensusConfig::quiet(String::new()).heartbeat;
        let quiet = Scenario { quiet: true, ..Scenario::honest() };
        let Cluster { clients, running, .. } = start_cluster(&context, &quiet).await;
        open_accounts(&running[0].mailbox, &clients[0]).await;

        // The accounts changed the state: a snapshot follows within an interval of heights.
        let mut snapshots = snapshot_heights(&context, 0).await;
        while snapshots.is_empty() {
            context.sleep(Duration::from_millis(500)).await;
            snapshots = snapshot_heights(&context, 0).await;
        }
        let snapshots_of = async |index| snapshot_heights(&context, index).await;
        let mut before_idle = Vec::new();
        for index in 0..VALIDATORS as usize {
            before_idle.push(snapshots_of(index).await);
        }

        // Idle for long enough that a snapshot would be due twice over, minute by minute: at
        // most one block per heartbeat (and one more for a minute's edges), and at least one.
        let blocks_per_minute_max = (60_000 / heartbeat.as_millis()) as u64 + 1;
        let minutes = (2 * SNAPSHOT_INTERVAL + 4) / blocks_per_minute_max + 1;
        let start = running[0].mailbox.status().await.unwrap().finalized_height;
        let mut height = start;
        for minute in 0..minutes {
            context.sleep(Duration::from_secs(60)).await;
            let now = running[0].mailbox.status().await.unwrap().finalized_height;
            let blocks = now - height;
            assert!(blocks <= blocks_per_minute_max, "{blocks} blocks in idle minute {minute}");
            assert!(blocks >= 1, "the heartbeat keeps the chain going");
            height = now;
        }
        assert!(height >= snapshots[snapshots.len() - 1] + 2 * SNAPSHOT_INTERVAL, "{start} -> {height}");
        for (index, before) in before_idle.iter().enumerate() {
            assert_eq!(&snapshots_of(index).await, before, "validator {index} wrote a snapshot of an unchanged state");
        }

        // A request that reaches the cluster while a leader holds an empty proposal (halfway
        // into a heartbeat) is proposed at once, not at the next heartbeat.
        context.sleep(heartbeat / 2).await;
        let request = Request::create_transfers(CHAIN_ID, 2, EXPIRES_NS, &clients[0], &[transfer(2, 1)]).unwrap();
        let submitted = context.current();
        running[1].mailbox.submit(request.clone().verify(CHAIN_ID).unwrap()).await.unwrap();
        let outcome = running[1].mailbox.wait_outcome(request.key()).await.unwrap();
        let latency = context.current().duration_since(submitted).unwrap();
        assert!(latency < Duration::from_millis(500), "a request to an idle cluster took {latency:?}");
        assert!(matches!(&outcome.result, RequestResult::Transfers(results)
            if results.len() == 1 && results[0].status == CreateTransferStatus::Created));

        // The transfer changed the state, and a snapshot is overdue: one is written with it.
        let mut later = snapshot_heights(&context, 0).await;
        while later == snapshots {
            let waited = context.current().duration_since(submitted).unwrap();
            assert!(waited < Duration::from_secs(5), "no snapshot of the changed state");
            context.sleep(Duration::from_millis(100)).await;
            later = snapshot_heights(&context, 0).await;
        }
        assert_eq!(later.last(), Some(&outcome.height), "a snapshot of the block that changed the state");
    });
}

/// A crashed validator costs the leader timeout only for the views it leads within the skip
/// timeout of its crash (at most two: the views between them are quick under load); after
/// that, its views are skipped at once (Simplex's skip policy), so no request waits out a
/// leader timeout for it.
#[test]
fn a_crashed_leader_costs_at_most_two_leader_timeouts() {
    let config = deterministic::Config::new().with_seed(seed() + 17).with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(|context| async move {
        let consensus = ConsensusConfig::quiet(String::new());
        let skip_timeout = consensus.skip_timeout.expect("validators skip silent leaders");
        let quiet = Scenario { quiet: true, ..Scenario::honest() };
        let Cluster { clients, running, .. } = start_cluster(&context, &quiet).await;
        open_accounts(&running[0].mailbox, &clients[0]).await;

        // One request at a time, each through a live validator: each block moves the view on,
        // so the crashed validator leads every fourth view.
        let request_one = async |id: u128, running: &[Validator]| -> Duration {
            let request = Request::create_transfers(CHAIN_ID, id, EXPIRES_NS, &clients[0], &[transfer(id, 1)]).unwrap();
            let submitted = context.current();
            let through = &running[(id % 3) as usize].mailbox;
            through.submit(request.clone().verify(CHAIN_ID).unwrap()).await.unwrap();
            through.wait_outcome(request.key()).await.unwrap();
            context.current().duration_since(submitted).unwrap()
        };
        running[3].stop();
        context.sleep(Duration::from_millis(1)).await;
        let crashed = context.current();
        let mut slow = 0;
        let mut id = 2;
        while context.current().duration_since(crashed).unwrap() < skip_timeout + consensus.leader_timeout {
            let latency = request_one(id, &running).await;
            assert!(latency <= consensus.leader_timeout + Duration::from_secs(1), "request {id} took {latency:?}");
            if latency > consensus.leader_timeout / 2 {
                slow += 1;
            }
            id += 1;
        }
        assert!(slow <= 2, "{slow} requests waited out a leader timeout after the crash");

        // From then on, the crashed leader's views are skipped at once.
        let views_before = running[0].mailbox.status().await.unwrap().view;
        let mut slowest = Duration::ZERO;
        for _ in 0..4 * VALIDATORS {
            slowest = slowest.max(request_one(id, &running).await);
            id += 1;
        }
        let views = running[0].mailbox.status().await.unwrap().view - views_before;
        assert!(views > 4 * VALIDATORS, "the requests went through the crashed leader's views: {views}");
        assert!(slowest < Duration::from_secs(1), "a request waited {slowest:?} with a leader down");
    });
}
