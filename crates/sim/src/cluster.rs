//! Runs one scenario: a whole cluster of validators in Commonware's deterministic runtime, on
//! the simulated network, with the scenario's faults and concurrent clients, and returns what
//! the checkers need.
//!
//! The run has four phases, all in simulated time:
//!
//! 1. Start every validator (a twin is two instances on split channels) and create the
//!    workload's accounts.
//! 2. The clients run while the director applies the scenario's partitions, crashes and
//!    restarts at their instants (relative to the end of phase 1). A power loss ends the
//!    runtime itself (Commonware's checkpoint: unsynced writes are lost or torn) and a second
//!    runtime restarts every validator from its disk and the clients where they were.
//! 3. Once the last fault heals, every honest validator must finalize past the highest height
//!    any honest validator had at that moment within `PROGRESS_BOUND`, and every client request
//!    must be acknowledged within `WORKLOAD_BOUND`. Then honest validators get `SETTLE_BOUND`
//!    to reach every height a request was acknowledged at (an acknowledgement may come from a
//!    validator ahead of the rest).
//! 4. Every instance reports its finalized history, is stopped, and its durable log is read
//!    back.

use crate::byzantine::{ByzantineProposer, Corruption};
use crate::check::{
    Acknowledgement, Answer, Evidence, Liveness, Observation, ProvenRead, ValidatorRecord, Verification,
};
use crate::liar::Liar;
use crate::scenario::{Byzantine, Damage, Draw, Scenario, Stored};
use crate::workload::{self, ClientWorkload};
use commonware_p2p::Recipients;
use commonware_p2p::simulated::{self, Link, Network, SplitOrigin, SplitTarget};
use commonware_runtime::deterministic::{FaultConfig, PartialWriteMode, WriteConfig};
use commonware_runtime::{
    Blob as _, Clock as _, IoBuf, Metrics as _, Quota, ReadOptions, Runner as _, Spawner as _, Storage as _,
    Supervisor as _, WriteOptions, deterministic,
};
use commonware_utils::{NZU32, NZUsize, Probability};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tally_chain::application::log::FinalizedLog;
use tally_chain::consensus::ConsensusConfig;
use tally_chain::constants::{MESSAGE_SIZE_MAX, REQUEST_TTL_DEFAULT_NS};
use tally_chain::keys::{ClientSigner, ValidatorKey, ValidatorSigner, public_key, signer_from_seed};
use tally_chain::receipt::OutcomeReceipt;
use tally_chain::state_receipt::{StateProof, StateReceipt};
use tally_chain::validator::{self, Channels, Validator};
use tally_chain::{ChainError, Genesis, Mailbox, Request, RequestKey, RequestResult};
use tally_ledger::Transfer;

/// The chain id of every simulated cluster.
pub const CHAIN_ID: u64 = 0x7a11;
/// After the last fault heals, every honest validator finalizes a new block within this much
/// simulated time.
pub const PROGRESS_BOUND: Duration = Duration::from_secs(30);
/// After the last fault heals, every client request is acknowledged within this much simulated
/// time. A client acknowledges only a receipt, which needs the block above the request's to be
/// final too, and reads proven accounts between requests: with one validator of four halted and
/// lossy links, a seed's workload takes some 70 s after healing (seed 350 of the 4-validator
/// sweep), so the bound is 90 s.
pub const WORKLOAD_BOUND: Duration = Duration::from_secs(90);
/// How long honest validators get, once the workload is done, to finalize every height some
/// validator acknowledged a request at.
pub const SETTLE_BOUND: Duration = Duration::from_secs(10);
/// Simulated time after which the runtime gives up on a run (a stall is a failure too).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the director and the clients poll.
const POLL: Duration = Duration::from_millis(100);
/// How long a stopped validator's tasks get to release their storage.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Finalized heights between snapshots in the simulator: small, so that a restart usually
/// starts from a snapshot.
const SNAPSHOT_INTERVAL: u64 = 8;

/// Finalized blocks per file of the log in the simulator: small, so that a run's log has
/// files older than the last two, where damage is repaired from peers rather than stopping the
/// validator.
const LOG_BLOCKS_PER_SECTION: u64 = 4;

/// What a run produced: the observation the checkers judge, and how long it took.
#[derive(Debug)]
pub struct Run {
    pub observation: Observation,
    /// Simulated time the run covered.
    pub simulated: Duration,
    /// The highest finalized height of an honest validator at the end.
    pub height: u64,
    /// How many (validator, peer) pairs the network blocked: peers caught misbehaving.
    pub blocked: usize,
    /// How many blocks each honest instance refused since it last started (in instance order):
    /// a Byzantine proposer's corrupted blocks.
    pub blocks_refused: Vec<u64>,
    /// The validators whose stored data was damaged (bytes were flipped), and what became of
    /// them.
    pub damaged: Vec<Damaged>,
}

/// Whether to print validators' progress while waiting for liveness (`TALLY_SIM_TRACE=1`).
/// Asking for it sends messages to the validators, so a traced run is a different run.
fn trace() -> bool {
    std::env::var_os("TALLY_SIM_TRACE").is_some()
}

/// One validator instance: a validator, or one half of a twin.
struct Instance {
    index: usize,
    name: String,
    honest: bool,
    /// Restarted on an empty disk: it forgot the votes it signed, and peers that see it sign
    /// a conflicting one block it. It counts as the one faulty validator then: the liveness
    /// checks do not wait for it, the safety checks still hold it to the chain.
    lost_disk: bool,
    /// Its stored data was damaged while it was down: if it halts (its tasks end, or it does
    /// not start), that is a fail-stop the scenario has room for, and the liveness checks stop
    /// waiting for it.
    damaged: bool,
    partition: String,
    running: Option<Validator>,
}

/// What the clients and the director share. The deterministic runtime is single-threaded; the
/// lock is never held across an await.
#[derive(Default)]
struct Shared {
    /// The mailbox of each instance, `None` while it is down.
    mailboxes: Vec<Option<Mailbox>>,
    /// The name of each instance.
    names: Vec<String>,
    /// The liar behind each instance that lies to clients (`liar.rs`), by instance.
    liars: BTreeMap<usize, Liar>,
    /// What the clients' verification saw.
    verification: Verification,
    acknowledged: Vec<Acknowledgement>,
    /// Requests a validator answered `request_expired` for: never to be in the chain.
    expired: Vec<RequestKey>,
    refusals: Vec<String>,
    clients: Vec<ClientProgress>,
    /// Damage done to validators' stored data, by validator (kept across a power loss).
    damaged: BTreeMap<usize, Damaged>,
}

/// Damage done to one validator's stored data, and what became of the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub validator: usize,
    pub target: Stored,
    /// Bytes flipped, over all its damages.
    pub bytes: u64,
    /// Whether it halted (stopped answering, or did not start) rather than going on.
    pub halted: bool,
}

type SharedState = Arc<Mutex<Shared>>;

fn lock(shared: &SharedState) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().expect("no task panics while holding the lock")
}

fn link(scenario: &Scenario) -> Link {
    Link {
        latency: Duration::from_millis(scenario.link.latency_ms),
        jitter: Duration::from_millis(scenario.link.jitter_ms),
        success_rate: commonware_utils::Probability::new(scenario.link.delivery_percent, 100)
            .expect("a percentage is a probability"),
    }
}

/// Who each half of a split validator talks to.
#[derive(Clone)]
struct Audience {
    primary: Arc<Vec<ValidatorKey>>,
    secondary: Arc<Vec<ValidatorKey>>,
}

/// Restricts a split sender's recipients to its half's audience.
fn forwarder(
    audience: Audience,
) -> impl Fn(SplitOrigin, &Recipients<ValidatorKey>, &IoBuf) -> Option<Recipients<ValidatorKey>>
+ Send
+ Sync
+ Clone
+ 'static {
    move |origin: SplitOrigin, recipients: &Recipients<ValidatorKey>, _message: &IoBuf| {
        let allowed = match origin {
            SplitOrigin::Primary => &audience.primary,
            SplitOrigin::Secondary => &audience.secondary,
        };
        let chosen: Vec<ValidatorKey> = match recipients {
            Recipients::All => allowed.to_vec(),
            Recipients::Some(keys) => keys.iter().filter(|key| allowed.contains(key)).cloned().collect(),
            Recipients::One(key) => allowed.iter().filter(|allowed| *allowed == key).cloned().collect(),
        };
        (!chosen.is_empty()).then_some(Recipients::Some(chosen))
    }
}

/// Registers a validator's channels on the simulated network.
async fn register(
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    key: &ValidatorKey,
) -> Channels<simulated::Sender<ValidatorKey, deterministic::Context>, simulated::Receiver<ValidatorKey>> {
    let control = oracle.control(key.clone());
    let quota = Quota::per_second(NZU32!(10_000));
    Channels::register_async(async |id| control.register(id, quota).await.expect("the network runs")).await
}

/// Runs `scenario` and returns what the checkers need.
pub fn run(scenario: &Scenario) -> Run {
    let shared: SharedState = Arc::default();
    lock(&shared).clients = (0..scenario.clients as u64)
        .map(|client| ClientProgress {
            workload: ClientWorkload::new(client, scenario.workload_seed),
            next_request: 1,
            in_flight: None,
            seen_height: 0,
        })
        .collect();
    let mut config = deterministic::Config::new()
        .with_seed(scenario.seed)
        .with_timeout(Some(RUN_TIMEOUT))
        // A validator that halts (its task panics) must not take the simulator down: it stops
        // answering, and the checkers report it.
        .with_catch_panics(true);
    if scenario.power_loss_retention_percent > 0 {
        // On power loss, each unsynced write keeps a prefix of its bytes: a torn write.
        let retention = Probability::new(scenario.power_loss_retention_percent, 100).expect("a percentage");
        config = config.with_storage_fault_config(FaultConfig::default().write(WriteConfig {
            failure_rate: Probability::new(0, 100).expect("zero"),
            retention_rate: retention,
            mode: PartialWriteMode::Prefix,
        }));
    }
    let scenario = scenario.clone();
    let Some(power_loss) = scenario.power_loss else {
        return deterministic::Runner::new(config).start(|context| async move {
            let mut cluster = Cluster::new(context, scenario, shared).await;
            cluster.begin().await;
            cluster.direct(Duration::ZERO, None).await;
            cluster.finish().await
        });
    };
    // Until the power loss; ending the runtime drops every task and loses unsynced writes.
    let (workload_started, checkpoint) = deterministic::Runner::new(config).start_and_recover({
        let (scenario, shared) = (scenario.clone(), shared.clone());
        |context| async move {
            let mut cluster = Cluster::new(context, scenario, shared).await;
            cluster.begin().await;
            cluster.direct(Duration::ZERO, Some(power_loss)).await;
            cluster.workload_started
        }
    });
    {
        let mut shared = lock(&shared);
        shared.mailboxes.clear();
        shared.names.clear();
        // Each liar keeps its memory across the power loss: instances start again in order.
    }
    // Power is back: every validator restarts from what its disk kept.
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let mut cluster = Cluster::new(context, scenario, shared).await;
        cluster.workload_started = workload_started;
        cluster.resume(power_loss).await;
        cluster.direct(power_loss, None).await;
        cluster.finish().await
    })
}

/// One client's place in its workload, kept outside the runtime so that it survives a power
/// loss: the request it is delivering is delivered again, with the same id, afterwards.
#[derive(Debug)]
struct ClientProgress {
    workload: ClientWorkload,
    next_request: u128,
    in_flight: Option<Vec<Transfer>>,
    /// The highest height the client has seen proven: it refuses older states.
    seen_height: u64,
}

struct Cluster {
    context: deterministic::Context,
    scenario: Scenario,
    genesis: Genesis,
    signers: Vec<ValidatorSigner>,
    clients: Vec<ClientSigner>,
    oracle: simulated::Oracle<ValidatorKey, deterministic::Context>,
    instances: Vec<Instance>,
    shared: SharedState,
    /// How many active partitions cut each directed link.
    cuts: BTreeMap<(usize, usize), usize>,
    /// When the workload (and the fault schedule) started.
    workload_started: SystemTime,
}

impl Cluster {
    async fn new(context: deterministic::Context, scenario: Scenario, shared: SharedState) -> Self {
        let signers: Vec<ValidatorSigner> = (0..scenario.validators as u64).map(signer_from_seed).collect();
        let keys: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
        let clients: Vec<ClientSigner> =
            (0..scenario.clients as u64).map(|index| signer_from_seed(1_000 + index)).collect();
        let genesis = Genesis::new(CHAIN_ID, keys.clone(), clients.iter().map(public_key).collect(), 0)
            .expect("seeded keys are strong");
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size: MESSAGE_SIZE_MAX as u32,
                max_peers_per_set: NZUsize!(scenario.validators),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            keys.clone(),
        )
        .await;
        network.start();
        let workload_started = context.current();
        let cluster = Self {
            context,
            scenario,
            genesis,
            signers,
            clients,
            oracle,
            instances: Vec::new(),
            shared,
            cuts: BTreeMap::new(),
            workload_started,
        };
        for from in 0..cluster.scenario.validators {
            for to in 0..cluster.scenario.validators {
                if from != to {
                    cluster.connect(from, to).await;
                }
            }
        }
        cluster
    }

    fn key(&self, index: usize) -> ValidatorKey {
        public_key(&self.signers[index])
    }

    async fn connect(&self, from: usize, to: usize) {
        self.oracle.add_link(self.key(from), self.key(to), link(&self.scenario)).await.expect("the network runs");
    }

    async fn disconnect(&self, from: usize, to: usize) {
        // The link exists: `cuts` counts removals.
        self.oracle.remove_link(self.key(from), self.key(to)).await.expect("the link exists");
    }

    fn consensus_config(partition: &str) -> ConsensusConfig {
        // Snapshots often, so that restarts in a seed start from one and execute the rest.
        ConsensusConfig {
            snapshot_interval: SNAPSHOT_INTERVAL,
            log_blocks_per_section: LOG_BLOCKS_PER_SECTION,
            ..ConsensusConfig::local(partition.to_string())
        }
    }

    /// Starts every validator: honest ones and Byzantine proposers (the honest application in a
    /// wrapper) on plain channels, twins and vote withholders on split ones.
    async fn start_all(&mut self) {
        for index in 0..self.scenario.validators {
            let behaviour = self.scenario.byzantine(index).cloned();
            let partition = format!("validator-{index}");
            match behaviour {
                None => {
                    let validator = self.start_honest(index, &partition).await;
                    self.push_instance(index, index.to_string(), true, partition, validator);
                }
                Some(Byzantine::Proposer(corruption)) => {
                    let validator = self.start_byzantine_proposer(index, &partition, corruption).await;
                    self.push_instance(index, index.to_string(), false, partition, Some(validator));
                }
                Some(Byzantine::WithholdsVotes) => {
                    let everyone: Vec<ValidatorKey> = (0..self.scenario.validators)
                        .filter(|&other| other != index)
                        .map(|other| self.key(other))
                        .collect();
                    let all = Audience { primary: Arc::new(everyone.clone()), secondary: Arc::new(Vec::new()) };
                    let silent = Audience { primary: Arc::new(Vec::new()), secondary: Arc::new(Vec::new()) };
                    let (primary, _) = self
                        .start_split(
                            index,
                            &partition,
                            [silent, all.clone(), all.clone(), all.clone(), all.clone(), all.clone(), all],
                            Arc::new(everyone),
                            Arc::new(Vec::new()),
                        )
                        .await;
                    self.push_instance(index, index.to_string(), false, partition, Some(primary));
                }
                Some(Byzantine::Twin { primary_side }) => {
                    let primary_keys: Vec<ValidatorKey> = primary_side.iter().map(|&other| self.key(other)).collect();
                    let secondary_keys: Vec<ValidatorKey> = (0..self.scenario.validators)
                        .filter(|other| {
                            *other != index && !primary_side.contains(other) && self.scenario.is_honest(*other)
                        })
                        .map(|other| self.key(other))
                        .collect();
                    let audience = Audience {
                        primary: Arc::new(primary_keys.clone()),
                        secondary: Arc::new(secondary_keys.clone()),
                    };
                    let audiences = std::array::from_fn(|_| audience.clone());
                    let (primary, secondary) = self
                        .start_split(index, &partition, audiences, Arc::new(primary_keys), Arc::new(secondary_keys))
                        .await;
                    self.push_instance(index, index.to_string(), false, partition.clone(), Some(primary));
                    let secondary = secondary.expect("a twin has two instances");
                    let twin_partition = format!("{partition}-twin");
                    self.push_instance(index, format!("{index}-twin"), false, twin_partition, Some(secondary));
                }
            }
        }
    }

    fn push_instance(
        &mut self,
        index: usize,
        name: String,
        honest: bool,
        partition: String,
        validator: Option<Validator>,
    ) {
        let mut shared = lock(&self.shared);
        shared.mailboxes.push(validator.as_ref().map(|validator| validator.mailbox.clone()));
        shared.names.push(name.clone());
        let damaged = shared.damaged.contains_key(&index);
        let instance = shared.names.len() - 1;
        if !honest || self.scenario.liar == Some(index) {
            let seed = self.scenario.seed ^ (instance as u64 + 1).wrapping_mul(0x11a5_0000_0001);
            shared.liars.entry(instance).or_insert_with(|| Liar::new(seed, &self.genesis));
        }
        drop(shared);
        self.instances.push(Instance { index, name, honest, lost_disk: false, damaged, partition, running: validator });
    }

    /// Starts honest validator `index` from its storage. `None` if it does not start (marshal's
    /// archives do not open), which only damage drawn for it may cause: a fail-stop.
    async fn start_honest(&self, index: usize, partition: &str) -> Option<Validator> {
        match self.start_plain(index, partition).await {
            Ok(validator) => Some(validator),
            Err(error) => {
                assert!(
                    lock(&self.shared).damaged.contains_key(&index),
                    "validator {index}, whose storage was not damaged, did not start: {error}"
                );
                if trace() {
                    eprintln!("validator {index} did not start on its damaged storage: {error}");
                }
                None
            }
        }
    }

    async fn start_plain(&self, index: usize, partition: &str) -> Result<Validator, ChainError> {
        let channels = register(&self.oracle, &self.key(index)).await;
        validator::start(
            self.context.child("validator").with_attribute("index", partition),
            self.genesis.clone(),
            self.signers[index].clone(),
            Self::consensus_config(partition),
            self.oracle.manager(),
            self.oracle.control(self.key(index)),
            channels,
        )
        .await
    }

    /// Starts validator `index` on plain channels, its honest application wrapped in a
    /// proposer that corrupts every block it builds.
    async fn start_byzantine_proposer(&self, index: usize, partition: &str, corruption: Corruption) -> Validator {
        let channels = register(&self.oracle, &self.key(index)).await;
        let genesis = self.genesis.clone();
        validator::start_with(
            self.context.child("validator").with_attribute("index", partition),
            self.genesis.clone(),
            self.signers[index].clone(),
            Self::consensus_config(partition),
            self.oracle.manager(),
            self.oracle.control(self.key(index)),
            channels,
            move |honest| ByzantineProposer::new(honest, corruption, &genesis),
        )
        .await
        .expect("a genesis validator")
    }

    /// Starts validator `index` on split channels: each channel's sender forwards only to its
    /// audience (one per channel, in channel order), and incoming messages reach the primary
    /// instance if they come from `primary_from`, the secondary if from `secondary_from`. A
    /// second instance runs only if some secondary audience is non-empty.
    async fn start_split(
        &self,
        index: usize,
        partition: &str,
        audiences: [Audience; 7],
        primary_from: Arc<Vec<ValidatorKey>>,
        secondary_from: Arc<Vec<ValidatorKey>>,
    ) -> (Validator, Option<Validator>) {
        let channels = register(&self.oracle, &self.key(index)).await;
        let twin = audiences.iter().any(|audience| !audience.secondary.is_empty());
        let context = self.context.child("split").with_attribute("index", partition);
        let split = |(sender, receiver): (simulated::Sender<_, _>, simulated::Receiver<_>), audience: Audience| {
            let (primary_sender, secondary_sender) = sender.split_with(forwarder(audience));
            let (primary_from, secondary_from) = (primary_from.clone(), secondary_from.clone());
            let (primary_receiver, secondary_receiver) =
                receiver.split_with(context.child("router"), move |(peer, _): &(ValidatorKey, IoBuf)| {
                    if primary_from.contains(peer) {
                        SplitTarget::Primary
                    } else if secondary_from.contains(peer) {
                        SplitTarget::Secondary
                    } else {
                        SplitTarget::None
                    }
                });
            ((primary_sender, primary_receiver), (secondary_sender, secondary_receiver))
        };
        let [votes, certificates, resolver, blocks, requests, backfill, snapshots] = audiences;
        let (votes, votes_twin) = split(channels.votes, votes);
        let (certificates, certificates_twin) = split(channels.certificates, certificates);
        let (resolver, resolver_twin) = split(channels.resolver, resolver);
        let (blocks, blocks_twin) = split(channels.blocks, blocks);
        let (requests, requests_twin) = split(channels.requests, requests);
        let (backfill, backfill_twin) = split(channels.backfill, backfill);
        let (snapshots, snapshots_twin) = split(channels.snapshots, snapshots);
        let primary = validator::start(
            self.context.child("validator").with_attribute("index", partition),
            self.genesis.clone(),
            self.signers[index].clone(),
            Self::consensus_config(partition),
            self.oracle.manager(),
            self.oracle.control(self.key(index)),
            Channels { votes, certificates, resolver, blocks, requests, backfill, snapshots },
        )
        .await
        .expect("a genesis validator");
        if !twin {
            return (primary, None);
        }
        let twin_partition = format!("{partition}-twin");
        let secondary = validator::start(
            self.context.child("validator").with_attribute("index", twin_partition.as_str()),
            self.genesis.clone(),
            self.signers[index].clone(),
            Self::consensus_config(&twin_partition),
            self.oracle.manager(),
            self.oracle.control(self.key(index)),
            Channels {
                votes: votes_twin,
                certificates: certificates_twin,
                resolver: resolver_twin,
                blocks: blocks_twin,
                requests: requests_twin,
                backfill: backfill_twin,
                snapshots: snapshots_twin,
            },
        )
        .await
        .expect("a genesis validator");
        (primary, Some(secondary))
    }

    /// Stops instance `instance` abruptly (as `kill -9` would: its tasks are dropped).
    fn crash(&mut self, instance: usize) {
        if let Some(validator) = self.instances[instance].running.take() {
            validator.stop();
        }
        lock(&self.shared).mailboxes[instance] = None;
    }

    /// Restarts a crashed honest instance from its storage.
    async fn restart(&mut self, instance: usize) {
        assert!(self.instances[instance].running.is_none());
        let (index, partition) = (self.instances[instance].index, self.instances[instance].partition.clone());
        let validator = self.start_honest(index, &partition).await;
        lock(&self.shared).mailboxes[instance] = validator.as_ref().map(|validator| validator.mailbox.clone());
        self.instances[instance].running = validator;
    }

    /// Flips bytes of validator `index`'s stored data while it is down (see `Damage`). One
    /// restarted in the meantime (with everyone, after a power loss) is left alone.
    async fn damage(&mut self, index: usize, damage: Damage) {
        let instances = self.instances_of(index);
        assert_eq!(instances.len(), 1, "only honest validators crash, and they run one instance");
        let instance = instances[0];
        if self.instances[instance].running.is_some() {
            return;
        }
        let partition = self.instances[instance].partition.clone();
        let flipped = flip_bytes(&self.context, &partition, damage).await;
        if flipped == 0 {
            return;
        }
        self.instances[instance].damaged = true;
        let mut shared = lock(&self.shared);
        let damaged = shared.damaged.entry(index).or_insert(Damaged {
            validator: index,
            target: damage.target,
            bytes: 0,
            halted: false,
        });
        damaged.bytes += flipped;
    }

    /// The directed links partition `partition` of the scenario cuts.
    fn partition_links(&self, partition: usize) -> Vec<(usize, usize)> {
        let partition = &self.scenario.partitions[partition];
        let mut links = Vec::new();
        for &inside in &partition.side {
            for outside in partition.other_side(self.scenario.validators) {
                links.push((inside, outside));
                if !partition.one_way {
                    links.push((outside, inside));
                }
            }
        }
        links
    }

    async fn cut(&mut self, partition: usize) {
        for (from, to) in self.partition_links(partition) {
            let count = self.cuts.entry((from, to)).or_default();
            *count += 1;
            if *count == 1 {
                self.disconnect(from, to).await;
            }
        }
    }

    async fn heal(&mut self, partition: usize) {
        for (from, to) in self.partition_links(partition) {
            let count = self.cuts.get_mut(&(from, to)).expect("cut before healed");
            *count -= 1;
            if *count == 0 {
                self.connect(from, to).await;
            }
        }
    }

    /// The instances of validator `index`.
    fn instances_of(&self, index: usize) -> Vec<usize> {
        (0..self.instances.len()).filter(|&instance| self.instances[instance].index == index).collect()
    }

    /// Finalized heights of the running honest instances (`None` for one that stopped
    /// answering).
    async fn honest_heights(&self) -> Vec<Option<u64>> {
        let mut heights = Vec::new();
        for instance in &self.instances {
            if !instance.honest || instance.lost_disk {
                continue;
            }
            if let Some(validator) = &instance.running {
                let height = validator.mailbox.status().await.map(|status| status.finalized_height);
                if height.is_none() && instance.damaged {
                    // It halted on its damaged storage: a fail-stop, not waited for.
                    continue;
                }
                heights.push(height);
            }
        }
        heights
    }

    /// Whether a running honest instance is still fetching damaged records again from peers.
    async fn repairing(&self) -> bool {
        for instance in self.instances.iter().filter(|instance| instance.honest) {
            if let Some(validator) = &instance.running
                && validator.mailbox.status().await.is_some_and(|status| status.records_repairing > 0)
            {
                return true;
            }
        }
        false
    }

    /// Phase 1: starts the validators, creates the accounts, starts the clients.
    async fn begin(&mut self) {
        self.start_all().await;
        let accounts = workload::accounts();
        let ttl = Duration::from_nanos(REQUEST_TTL_DEFAULT_NS);
        let setup = Request::create_accounts(CHAIN_ID, 0, expiry(&self.context, ttl), &self.clients[0], &accounts)
            .expect("a valid batch");
        let mut draw = Draw::new(self.scenario.workload_seed);
        let outcome = deliver(&self.context, &self.shared, &self.genesis, 0, &mut draw, &setup)
            .await
            .expect("the accounts are created within the default expiry");
        assert!(
            matches!(&outcome.result, RequestResult::Accounts(results)
                if results.iter().all(|result| result.status == tally_ledger::CreateAccountStatus::Created)),
            "the workload's accounts are created: {outcome:?}"
        );
        self.workload_started = self.context.current();
        self.start_clients(0);
    }

    /// After a power loss at `at`: restarts every validator from its disk, cuts the partitions
    /// that were in force, and resumes the clients that had not finished.
    async fn resume(&mut self, at: Duration) {
        self.start_all().await;
        for partition in 0..self.scenario.partitions.len() {
            let cut = &self.scenario.partitions[partition];
            if cut.start < at && at <= cut.end {
                self.cut(partition).await;
            }
        }
        self.start_clients(1);
    }

    fn start_clients(&self, phase: u64) {
        for client in 0..self.scenario.clients {
            let unfinished =
                lock(&self.shared).clients[client].next_request <= self.scenario.requests_per_client as u128;
            if !unfinished {
                continue;
            }
            let signer = self.clients[client].clone();
            let shared = self.shared.clone();
            let seed = self.scenario.workload_seed ^ phase.wrapping_mul(0x9e37_79b9);
            let count = self.scenario.requests_per_client;
            let genesis = self.genesis.clone();
            self.context.child("client").with_attribute("index", client).spawn(move |context| async move {
                run_client(context, shared, &genesis, client, signer, seed, count).await;
            });
        }
    }

    /// Applies the scenario's fault events at or after `from` and before `until` (relative to
    /// the workload's start), each at its instant, then waits until `until`.
    async fn direct(&mut self, from: Duration, until: Option<Duration>) {
        let mut events: Vec<(Duration, Event)> = Vec::new();
        for (partition, cut) in self.scenario.partitions.iter().enumerate() {
            events.push((cut.start, Event::Cut(partition)));
            events.push((cut.end, Event::Heal(partition)));
        }
        for (number, crash) in self.scenario.crashes.iter().enumerate() {
            events.push((crash.at, Event::Crash(crash.validator)));
            if let Some(damage) = crash.damage {
                events.push((crash.at + damage.after, Event::Damage(number)));
            }
            let restart = if crash.disk_lost {
                Event::RestartOnEmptyDisk(crash.validator)
            } else {
                Event::Restart(crash.validator)
            };
            events.push((crash.at + crash.down_for, restart));
        }
        events.sort_by_key(|(at, event)| (*at, *event));
        let until_or_end = until.unwrap_or(Duration::MAX);
        for (at, event) in events.into_iter().filter(|(at, _)| from <= *at && *at < until_or_end) {
            self.sleep_until(at).await;
            match event {
                Event::Cut(partition) => self.cut(partition).await,
                // A partition in force at a power loss was cut again on resume, so every heal
                // in range follows its cut.
                Event::Heal(partition) => self.heal(partition).await,
                Event::Crash(index) => {
                    for instance in self.instances_of(index) {
                        self.crash(instance);
                    }
                }
                Event::Restart(index) => {
                    for instance in self.instances_of(index) {
                        // Down at a power loss, it restarted with everyone on resume.
                        if self.instances[instance].running.is_none() {
                            self.restart(instance).await;
                        }
                    }
                }
                Event::Damage(number) => {
                    let crash = self.scenario.crashes[number];
                    self.damage(crash.validator, crash.damage.expect("drawn with the crash")).await;
                }
                Event::RestartOnEmptyDisk(index) => {
                    for instance in self.instances_of(index) {
                        if self.instances[instance].running.is_none() {
                            // New partitions: the old disk is gone for good.
                            let partition = format!("{}-replaced", self.instances[instance].partition);
                            self.instances[instance].partition = partition;
                            self.instances[instance].lost_disk = true;
                            self.restart(instance).await;
                        }
                    }
                }
            }
        }
        if let Some(until) = until {
            self.sleep_until(until).await;
        }
    }

    async fn sleep_until(&self, at: Duration) {
        let now = self.context.current().duration_since(self.workload_started).unwrap_or_default();
        if at > now {
            self.context.sleep(at - now).await;
        }
    }

    /// Messages the simulated network has sent so far, per channel id (for tracing).
    fn sent_per_channel(&self) -> BTreeMap<u64, u64> {
        let mut sent = BTreeMap::new();
        for line in self.context.encode().lines() {
            if line.starts_with('#') || !line.contains("messages_sent_total") {
                continue;
            }
            let channel = line.split("channel=\"").nth(1).and_then(|rest| rest.split('"').next());
            let count = line.rsplit(' ').next().and_then(|count| count.parse::<f64>().ok());
            if let (Some(Ok(channel)), Some(count)) = (channel.map(str::parse::<u64>), count) {
                *sent.entry(channel).or_default() += count as u64;
            }
        }
        sent
    }

    /// Phases 3 and 4: liveness after healing, then the histories and logs.
    async fn finish(mut self) -> Run {
        let requests = 1 + self.scenario.clients * self.scenario.requests_per_client;
        let healed = self.context.current();
        let heal_height = self.honest_heights().await.into_iter().flatten().max().unwrap_or(0);
        let mut progressed_after = None;
        let mut workload_done_after = None;
        loop {
            let waited = self.context.current().duration_since(healed).unwrap_or_default();
            if progressed_after.is_none() {
                let heights = self.honest_heights().await;
                if heights.iter().all(|height| height.is_some_and(|height| height > heal_height)) {
                    progressed_after = Some(waited);
                }
            }
            let done = {
                let shared = lock(&self.shared);
                let count = self.scenario.requests_per_client as u128;
                shared.clients.iter().all(|client| client.next_request > count)
            };
            if workload_done_after.is_none() && done {
                workload_done_after = Some(waited);
            }
            if trace() && waited.as_millis() % 5_000 < POLL.as_millis() {
                eprintln!("[{waited:?} after healing] messages sent per channel so far: {:?}", self.sent_per_channel());
                for instance in &self.instances {
                    let status = match &instance.running {
                        Some(validator) => validator.mailbox.status().await,
                        None => None,
                    };
                    eprintln!("[{:?} after healing] validator {}: {status:?}", waited, instance.name);
                }
            }
            let progress_over = progressed_after.is_some() || waited >= PROGRESS_BOUND;
            let workload_over = workload_done_after.is_some() || waited >= WORKLOAD_BOUND;
            if progress_over && workload_over {
                break;
            }
            self.context.sleep(POLL).await;
        }
        let liveness = Liveness {
            heal_height,
            progressed_after,
            progress_bound: PROGRESS_BOUND,
            workload_done_after,
            workload_bound: WORKLOAD_BOUND,
            requests,
        };

        // Settle: an acknowledgement may come from a validator ahead of the others; give the
        // honest validators time to finalize up to every acknowledged height, and to fetch
        // again the damaged records they found, before reading their chains (a height they
        // never reach, a record still damaged, are reported by the checkers).
        let acknowledged_height =
            lock(&self.shared).acknowledged.iter().map(|acknowledgement| acknowledgement.outcome.height).max();
        let settle_started = self.context.current();
        while self.context.current().duration_since(settle_started).unwrap_or_default() < SETTLE_BOUND {
            let heights = self.honest_heights().await;
            let reached = heights.iter().all(|height| height.is_some_and(|height| Some(height) >= acknowledged_height));
            if reached && !self.repairing().await {
                break;
            }
            self.context.sleep(POLL).await;
        }

        let mut histories = Vec::new();
        let mut blocks_refused = Vec::new();
        let mut evidence = Vec::new();
        for instance in &self.instances {
            let history = match &instance.running {
                Some(validator) => validator.mailbox.history().await,
                None => None,
            };
            histories.push(history);
            if instance.honest {
                let status = match &instance.running {
                    Some(validator) => validator.mailbox.status().await,
                    None => None,
                };
                for seen in status.iter().flat_map(|status| &status.validators).filter(|seen| seen.faults > 0) {
                    let accused = (0..self.scenario.validators)
                        .find(|&index| self.key(index) == seen.key)
                        .expect("the status names genesis validators");
                    evidence.push(Evidence { accused, seen_by: instance.name.clone(), pieces: seen.faults });
                }
                blocks_refused.push(status.map_or(0, |status| status.blocks_refused));
            }
        }
        let answering: Vec<usize> = (0..self.instances.len())
            .filter(|&instance| self.instances[instance].honest && histories[instance].is_some())
            .collect();
        let answers = self.ask_outcomes(&answering).await;
        let blocked = self.oracle.blocked().await.unwrap_or_default().len();
        for instance in 0..self.instances.len() {
            self.crash(instance);
        }
        self.context.sleep(STOP_GRACE).await;
        let mut validators = Vec::new();
        for (instance, history) in self.instances.iter().zip(histories) {
            let partition = format!("{}-finalized", instance.partition);
            let (log_start, log, log_damage) = read_log(self.context.child("reader"), partition).await;
            if instance.damaged {
                let halted = history.is_none();
                lock(&self.shared).damaged.get_mut(&instance.index).expect("recorded when damaged").halted = halted;
            }
            validators.push(ValidatorRecord {
                index: instance.index,
                name: instance.name.clone(),
                honest: instance.honest,
                history,
                log,
                log_start,
                log_damage,
                damaged: instance.damaged,
                lost_disk: instance.lost_disk,
            });
        }
        let height = validators.iter().filter(|record| record.honest).map(|record| record.log.len()).max().unwrap_or(0);
        let shared = lock(&self.shared);
        let observation = Observation {
            genesis: self.genesis.clone(),
            validators,
            acknowledged: shared.acknowledged.clone(),
            expired: shared.expired.clone(),
            answers,
            refusals: shared.refusals.clone(),
            liveness: Some(liveness),
            accounts: workload::account_ids(),
            evidence,
            verification: shared.verification.clone(),
        };
        let simulated = self.context.current().duration_since(UNIX_EPOCH).unwrap_or_default();
        let damaged = shared.damaged.values().cloned().collect();
        Run { observation, simulated, height: height as u64, blocked, blocks_refused, damaged }
    }

    /// Asks each of the `answering` instances for the outcome of every acknowledged request.
    /// An answer of `outcome_repairing` (or busy) is asked again until `SETTLE_BOUND` has
    /// passed, and is what the checkers judge then.
    async fn ask_outcomes(&self, answering: &[usize]) -> Vec<Answer> {
        let keys: Vec<RequestKey> =
            lock(&self.shared).acknowledged.iter().map(|acknowledgement| acknowledgement.key.clone()).collect();
        let mut pending: Vec<(usize, RequestKey)> =
            answering.iter().flat_map(|&instance| keys.iter().map(move |key| (instance, key.clone()))).collect();
        let started = self.context.current();
        let mut answers = Vec::new();
        while !pending.is_empty() {
            let over = self.context.current().duration_since(started).unwrap_or_default() >= SETTLE_BOUND;
            let mut again = Vec::new();
            for (instance, key) in pending {
                let Some(validator) = &self.instances[instance].running else { continue };
                let answer = validator.mailbox.outcome(key.clone()).await;
                let unsettled = matches!(answer, Err(ChainError::OutcomeRepairing { .. } | ChainError::Busy));
                if unsettled && !over {
                    again.push((instance, key));
                    continue;
                }
                answers.push(Answer { validator: self.instances[instance].name.clone(), key, answer });
            }
            pending = again;
            if !pending.is_empty() {
                self.context.sleep(POLL).await;
            }
        }
        answers
    }
}

/// The partitions that hold `target` for the validator whose partitions start with `partition`.
fn stored_partitions(partition: &str, target: Stored) -> Vec<String> {
    match target {
        Stored::Log => vec![format!("{partition}-finalized_data")],
        Stored::Snapshot => vec![format!("{partition}-snapshots")],
        // Simplex's journal of votes and certificates: the validator's own partition.
        Stored::Consensus => vec![partition.to_string()],
        Stored::Votes => vec![format!("{partition}-votes")],
        Stored::Marshal => ["blocks", "finalizations"]
            .into_iter()
            .flat_map(|archive| {
                ["freezer-value", "freezer-key", "freezer-table", "ordinal", "metadata"]
                    .into_iter()
                    .map(move |part| format!("{partition}-marshal-{archive}-{part}"))
            })
            .collect(),
    }
}

/// Flips `damage.bytes` bytes of `target`'s blobs, each in a drawn partition (among those with
/// written bytes), blob, and offset within its written length, XORed with a drawn non-zero
/// mask; syncs them. Returns how many bytes it flipped (none if nothing is stored yet).
async fn flip_bytes(context: &deterministic::Context, partition: &str, damage: Damage) -> u64 {
    let mut stored: Vec<(String, Vec<(Vec<u8>, u64)>)> = Vec::new();
    for partition in stored_partitions(partition, damage.target) {
        let Ok(names) = context.scan(&partition).await else { continue };
        let mut blobs = Vec::new();
        for name in names {
            let (_, length) = context.open(&partition, &name).await.expect("a listed blob opens");
            if length > 0 {
                blobs.push((name, length));
            }
        }
        if !blobs.is_empty() {
            stored.push((partition, blobs));
        }
    }
    if stored.is_empty() {
        return 0;
    }
    let mut draw = Draw::new(damage.seed);
    for _ in 0..damage.bytes {
        let (partition, blobs) = &stored[draw.index(stored.len())];
        let (name, length) = &blobs[draw.index(blobs.len())];
        let offset = draw.below(*length);
        let mask = draw.between(1, 255) as u8;
        let (blob, _) = context.open(partition, name).await.expect("a listed blob opens");
        let read = blob.read_at(offset, 1, ReadOptions::default()).await.expect("within the written length");
        let byte = read.coalesce().as_ref()[0];
        blob.write_at(offset, vec![byte ^ mask], WriteOptions::default()).await.expect("the disk works");
        blob.sync().await.expect("the disk works");
    }
    damage.bytes
}

/// A validator's finalized log as a restart would read it: its start, its blocks, and why it
/// stops short if it does (the blocks before the first damaged record are kept).
async fn read_log(
    context: deterministic::Context,
    partition: String,
) -> (u64, Vec<tally_chain::Block>, Option<String>) {
    let log = match FinalizedLog::open_with_sections(context, partition, LOG_BLOCKS_PER_SECTION).await {
        Ok(log) => log,
        Err(error) => return (0, Vec::new(), Some(error.to_string())),
    };
    let mut blocks = Vec::new();
    for height in log.start() + 1..=log.len() {
        match log.read(height).await {
            Ok(Some(record)) => blocks.push(record.block),
            Ok(None) => unreachable!("height {height} is within the log's bounds"),
            Err(error) => return (log.start(), blocks, Some(error.to_string())),
        }
    }
    (log.start(), blocks, None)
}

/// A fault event of the director, in the order to apply at equal instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Heal(usize),
    Restart(usize),
    /// A restart on an empty disk.
    RestartOnEmptyDisk(usize),
    Cut(usize),
    Crash(usize),
    /// The damage drawn with crash number `usize` of the scenario.
    Damage(usize),
}

/// One client: submits its requests one at a time, each through a random validator, retrying
/// with the same id through other validators until one proves it final with a receipt that
/// verifies; after some, reads an account's proven state. Its progress lives in `shared`, so a
/// client started again after a power loss carries on where it was.
async fn run_client(
    context: deterministic::Context,
    shared: SharedState,
    genesis: &Genesis,
    client: usize,
    signer: ClientSigner,
    seed: u64,
    count: usize,
) {
    let mut draw = Draw::new(seed.wrapping_add(client as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    loop {
        let (request_id, transfers) = {
            let mut shared = lock(&shared);
            let progress = &mut shared.clients[client];
            if progress.next_request > count as u128 {
                return;
            }
            if progress.in_flight.is_none() {
                progress.in_flight = Some(progress.workload.next_request());
            }
            (progress.next_request, progress.in_flight.clone().expect("just set"))
        };
        // Now and then a request with a short life, which a fault may outlast: it expires (the
        // validators answer `request_expired`, and the checker makes sure no block has it) or
        // is included in time.
        let ttl =
            if draw.chance(1, 5) { draw.millis(200, 3_000) } else { Duration::from_nanos(REQUEST_TTL_DEFAULT_NS) };
        let request = Request::create_transfers(CHAIN_ID, request_id, expiry(&context, ttl), &signer, &transfers)
            .expect("a valid batch");
        let outcome = deliver(&context, &shared, genesis, client, &mut draw, &request).await;
        {
            // No await since `deliver` recorded the acknowledgement: the two are one step.
            let mut shared = lock(&shared);
            let Some(outcome) = outcome else {
                // Expired: not applied, and never will be; the next request goes on.
                shared.expired.push(request.key());
                let progress = &mut shared.clients[client];
                progress.in_flight = None;
                progress.next_request += 1;
                continue;
            };
            match &outcome.result {
                RequestResult::Transfers(results) => shared.clients[client].workload.acknowledged(&transfers, results),
                RequestResult::Refused(_) => {}
                RequestResult::Accounts(_) => {
                    shared.refusals.push(format!("request {request_id} of client {client} answered as accounts"))
                }
            }
            let progress = &mut shared.clients[client];
            progress.in_flight = None;
            progress.next_request += 1;
        }
        if draw.chance(1, 2) {
            read_account(&context, &shared, genesis, client, &mut draw).await;
        }
        context.sleep(draw.millis(0, 300)).await;
    }
}

/// The expiry of a request signed now to live `ttl`, by the simulated clock (the one the
/// validators' block timestamps follow).
fn expiry(context: &deterministic::Context, ttl: Duration) -> u64 {
    let now = context.current().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from((now + ttl).as_nanos()).expect("simulated time fits")
}

/// A random instance: its index, name and mailbox (`None` while it is down).
fn pick(shared: &SharedState, draw: &mut Draw) -> (usize, String, Option<Mailbox>) {
    let shared = lock(shared);
    let instance = draw.below(shared.mailboxes.len() as u64) as usize;
    (instance, shared.names[instance].clone(), shared.mailboxes[instance].clone())
}

/// Submits `request` until some validator proves it final with a receipt that verifies, and
/// returns the proven outcome; or until a validator answers that it expired unincluded
/// (`None`). (The runtime's timeout bounds a run in which nothing is ever acknowledged.)
async fn deliver(
    context: &deterministic::Context,
    shared: &SharedState,
    genesis: &Genesis,
    client: usize,
    draw: &mut Draw,
    request: &Request,
) -> Option<tally_chain::RequestOutcome> {
    let key = request.key();
    // What a validator's API does before the actor sees a request: check its signature.
    let verified = request.clone().verify(genesis.chain_id()).expect("simulated clients sign their requests");
    loop {
        let (instance, name, mailbox) = pick(shared, draw);
        let Some(mailbox) = mailbox else {
            // Down: the client's connection fails; try another validator soon.
            context.sleep(POLL).await;
            continue;
        };
        match mailbox.submit(verified.clone()).await {
            // A duplicate: this validator already holds or finalized it (a retry).
            Ok(()) | Err(ChainError::DuplicateRequest { .. }) => {}
            Err(ChainError::Busy) => {
                context.sleep(POLL).await;
                continue;
            }
            Err(ChainError::RequestExpired { .. }) => return None,
            Err(error) => {
                lock(shared).refusals.push(format!("request {} refused by validator {name}: {error}", key.id));
                context.sleep(POLL).await;
                continue;
            }
        }
        let patience = draw.millis(1_000, 4_000);
        let asked = context.current();
        while context.current().duration_since(asked).unwrap_or_default() < patience {
            if let Ok(Some(receipt)) = mailbox.receipt(key.clone()).await {
                match judge_outcome(shared, genesis, client, instance, &name, request, receipt) {
                    Some(outcome) => return Some(outcome),
                    // Refused: ask another validator.
                    None => break,
                }
            }
            context.sleep(POLL).await;
        }
    }
}

/// What a client makes of the receipt instance `instance` (`name`) gives for `request`: the
/// outcome it proves, acknowledged, or `None` if it does not verify. A lying instance's lie is
/// told here, in place of the true receipt.
fn judge_outcome(
    shared: &SharedState,
    genesis: &Genesis,
    client: usize,
    instance: usize,
    name: &str,
    request: &Request,
    truth: OutcomeReceipt,
) -> Option<tally_chain::RequestOutcome> {
    let key = request.key();
    let mut guard = lock(shared);
    let shared = &mut *guard;
    let (lie, bytes) = match shared.liars.get_mut(&instance) {
        Some(liar) => {
            let (lie, bytes) = liar.outcome(truth);
            (Some(lie), bytes)
        }
        None => (None, truth.encode()),
    };
    let verdict = OutcomeReceipt::decode(&bytes, genesis)
        .and_then(|receipt| receipt.verify_for(genesis, request).map(|verified| (receipt, verified)));
    let verification = &mut shared.verification;
    match (verdict, lie) {
        (Ok((receipt, verified)), None) => {
            if receipt.outcome.events_digest != request.events_digest() {
                // Every retry carries the same events, so the outcome must be of them.
                shared
                    .refusals
                    .push(format!("request {} from validator {name} answered with another request's outcome", key.id));
            }
            let progress = &mut shared.clients[client];
            progress.seen_height = progress.seen_height.max(verified.height);
            shared.acknowledged.push(Acknowledgement {
                key,
                outcome: receipt.outcome.clone(),
                validator: name.to_string(),
            });
            Some(receipt.outcome)
        }
        (verdict, Some(lie)) => {
            verification.lie(lie.name(), verdict.is_err(), || {
                format!(
                    "client {client} verified validator {name}'s receipt for request {} with the lie \"{}\"",
                    key.id,
                    lie.name()
                )
            });
            None
        }
        (Err(error), None) => {
            verification
                .true_refused
                .push(format!("client {client} refused validator {name}'s receipt for request {}: {error}", key.id));
            None
        }
    }
}

/// The receipt of account `id` as of the newest state `mailbox`'s validator holds, if it holds
/// the account and a certified header committing to that state (its own block's header, when
/// that block left the state as it was, or the header above).
async fn prove_account(mailbox: &Mailbox, id: u128) -> Option<StateReceipt> {
    let state = mailbox.finalized_state().await?;
    let proof = StateProof::collect(&state, &[id], &[]);
    if proof.accounts.is_empty() {
        return None;
    }
    let digest = proof.state_digest();
    for height in [proof.height, proof.height + 1] {
        if height == 0 {
            continue;
        }
        if let Some(Some(certified)) = mailbox.certified_header(height).await
            && certified.header.state_digest == digest
        {
            return Some(StateReceipt::new(proof, certified));
        }
    }
    None
}

/// Reads one of the workload's accounts through up to three random validators, until one
/// gives a proven state that verifies, is of that account and is not older than the client has
/// seen.
async fn read_account(
    context: &deterministic::Context,
    shared: &SharedState,
    genesis: &Genesis,
    client: usize,
    draw: &mut Draw,
) {
    let accounts = workload::account_ids();
    let id = accounts[draw.index(accounts.len())];
    for _ in 0..3 {
        let (instance, name, mailbox) = pick(shared, draw);
        let Some(mailbox) = mailbox else { continue };
        let Some(truth) = prove_account(&mailbox, id).await else {
            context.sleep(POLL).await;
            continue;
        };
        if judge_state(shared, genesis, client, instance, &name, id, truth) {
            return;
        }
    }
}

/// What a client makes of the receipt instance `instance` (`name`) gives for account `id`:
/// whether it verified, was of that account, and not older than the client has seen.
fn judge_state(
    shared: &SharedState,
    genesis: &Genesis,
    client: usize,
    instance: usize,
    name: &str,
    id: u128,
    truth: StateReceipt,
) -> bool {
    let mut guard = lock(shared);
    let shared = &mut *guard;
    let seen = shared.clients[client].seen_height;
    let (lie, bytes) = match shared.liars.get_mut(&instance) {
        Some(liar) => {
            let (lie, bytes) = liar.state(truth, seen);
            (Some(lie), bytes)
        }
        None => (None, truth.encode()),
    };
    let verdict = StateReceipt::decode(&bytes, genesis)
        .and_then(|receipt| receipt.verify(genesis).map(|verified| (receipt, verified)))
        .map_err(|error| error.to_string())
        .and_then(|(receipt, verified)| match receipt.proof.accounts.as_slice() {
            [(account, _)] if account.id == id => Ok((receipt, verified)),
            _ => Err(format!("the receipt does not prove account {id} alone")),
        });
    let stale = matches!(&verdict, Ok((_, verified)) if verified.height < seen);
    let verification = &mut shared.verification;
    if let Some(lie) = lie {
        verification.lie(lie.name(), verdict.is_err() || stale, || {
            format!("client {client} verified validator {name}'s read of account {id} with the lie \"{}\"", lie.name())
        });
        return false;
    }
    match verdict {
        Ok(_) if stale => {
            verification.stale_refused += 1;
            false
        }
        Ok((receipt, verified)) => {
            verification.proven_reads.push(ProvenRead {
                validator: name.to_string(),
                account: id,
                height: verified.height,
                state_digest: receipt.certified.header.state_digest,
            });
            let progress = &mut shared.clients[client];
            progress.seen_height = progress.seen_height.max(verified.height);
            true
        }
        Err(error) => {
            verification
                .true_refused
                .push(format!("client {client} refused validator {name}'s proven read of account {id}: {error}"));
            false
        }
    }
}
