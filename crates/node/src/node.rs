//! A running validator: Commonware's tokio runtime with the validator's data directory as its
//! storage, authenticated and encrypted TCP to the other validators (`p2p::authenticated`,
//! lookup mode: every peer's address is known from the config), the replicated core from
//! `tally-chain`, and the HTTP API on the same runtime.
//!
//! Each validator gets its own runtime on its own thread, so several can run in one process
//! (`tally dev`, the tests). An orderly stop closes the API (waiting submissions answer 202 at
//! once), then asks every task of the runtime to stop and waits for them; the validator
//! persists every finalized block before it answers anything, so nothing acknowledged is lost
//! either way.

use crate::api::{self, ApiState, Health, Shared};
use crate::config::{NodeConfig, P2pProfile};
use crate::constants::STOP_TIMEOUT_MS;
use crate::error::NodeError;
use crate::metrics::NodeMetrics;
use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Metrics as _, Quota, Runner as _, Spawner as _, Supervisor as _, tokio as runtime};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use tally_chain::consensus::ConsensusConfig;
use tally_chain::constants::MESSAGE_SIZE_MAX;
use tally_chain::keys::ValidatorKey;
use tally_chain::validator::{self, Channels};
use tokio::sync::{Semaphore, oneshot, watch};

/// Messages per second a peer may send on one channel before it is throttled. Commonware sizes
/// each channel's inbound queue as peers x this burst, so it is also a memory bound: 10,000 let
/// a 4-validator `tally dev` grow past 2 GB, 100,000 past 20 GB. A validator sends a few
/// messages per view on each channel.
const PEER_MESSAGES_PER_SECOND: u32 = 1_000;
/// Messages queued per p2p actor.
const P2P_MAILBOX_SIZE: usize = 1_024;
/// How far apart two validators' clocks may be for a handshake to succeed.
const HANDSHAKE_CLOCK_SKEW: Duration = Duration::from_secs(5);
/// How old a handshake may be.
const HANDSHAKE_AGE_MAX: Duration = Duration::from_secs(10);
/// The prefix of the validator's storage partitions in its data directory.
const PARTITION: &str = "validator";

/// Consensus timeouts for the network the validators share: quiet when idle
/// (`ConsensusConfig::quiet`: one empty block per 10 s heartbeat, under 1 MiB written a minute
/// per validator; a request is proposed at once). Its 11 s leader and 12 s certification
/// timeouts already leave links of a few hundred milliseconds room; a WAN profile gives fetches
/// more time.
fn consensus_config(profile: P2pProfile) -> ConsensusConfig {
    let quiet = ConsensusConfig::quiet(PARTITION.to_string());
    match profile {
        P2pProfile::Lan => quiet,
        P2pProfile::Wan => ConsensusConfig { fetch_timeout: Duration::from_secs(3), ..quiet },
    }
}

/// A validator running on its own thread. Dropping it stops it (and waits).
#[derive(Debug)]
pub struct RunningNode {
    validator: ValidatorKey,
    api_address: SocketAddr,
    health: Arc<Health>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), NodeError>>>,
}

impl RunningNode {
    /// This validator's key.
    pub fn validator(&self) -> &ValidatorKey {
        &self.validator
    }

    /// Where the HTTP API listens (the config's address, with the port chosen if it was 0).
    pub fn api_address(&self) -> SocketAddr {
        self.api_address
    }

    /// Whether the validator halted (a storage failure or a state divergence): its consensus is
    /// stopped, so it votes no more, and its API answers 503 until it is started again.
    pub fn has_halted(&self) -> bool {
        self.health.is_halted()
    }

    /// Whether the validator's thread has ended on its own (it only does if its runtime
    /// crashed).
    pub fn has_exited(&self) -> bool {
        self.thread.as_ref().is_none_or(|thread| thread.is_finished())
    }

    /// Stops the validator in order and waits for it. Blocks the calling thread.
    pub fn stop(mut self) -> Result<(), NodeError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), NodeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            None => Ok(()),
            Some(thread) => thread.join().unwrap_or_else(|panic| Err(NodeError::Crashed(panic_message(&*panic)))),
        }
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        if let Err(error) = self.stop_and_join() {
            tracing::error!(%error, "validator stopped with an error");
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Starts a validator: binds its API and p2p addresses (so a taken port fails here, with the
/// address named), opens its data directory, and returns once the API accepts connections and
/// the validator has opened its storage, or halted trying (`RunningNode::has_halted`).
pub fn run(config: NodeConfig) -> Result<RunningNode, NodeError> {
    let api_listener = std::net::TcpListener::bind(config.api_listen).map_err(|cause| NodeError::Listen {
        address: config.api_listen,
        purpose: "the HTTP API",
        cause,
    })?;
    api_listener.set_nonblocking(true).map_err(|source| NodeError::io("the API socket", source))?;
    let api_address = api_listener.local_addr().map_err(|source| NodeError::io("the API socket", source))?;
    // The p2p layer binds inside the runtime, where a failure would only be logged: try first.
    drop(std::net::TcpListener::bind(config.p2p_listen).map_err(|cause| NodeError::Listen {
        address: config.p2p_listen,
        purpose: "the other validators",
        cause,
    })?);
    crate::config::create_private_dir(&config.data_dir)?;

    let validator = config.validator();
    let (stop, stop_receiver) = oneshot::channel();
    let (started, started_receiver) = std::sync::mpsc::channel();
    let name = format!("tally-{}", &crate::hex::encode(validator.as_ref())[..8]);
    let health = Arc::new(Health::default());
    let served = health.clone();
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || serve(config, api_listener, served, stop_receiver, started))
        .map_err(|source| NodeError::io("a validator thread", source))?;
    match started_receiver.recv() {
        Ok(Ok(())) => Ok(RunningNode { validator, api_address, health, stop: Some(stop), thread: Some(thread) }),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(error)
        }
        Err(_) => Err(match thread.join() {
            Ok(Err(error)) => error,
            Ok(Ok(())) => NodeError::Start("the runtime ended before the validator started".into()),
            Err(panic) => NodeError::Crashed(panic_message(&*panic)),
        }),
    }
}

/// The validator's thread: runs the runtime until asked to stop.
fn serve(
    config: NodeConfig,
    api_listener: std::net::TcpListener,
    health: Arc<Health>,
    stop: oneshot::Receiver<()>,
    started: std::sync::mpsc::Sender<Result<(), NodeError>>,
) -> Result<(), NodeError> {
    let runtime_config = runtime::Config::new()
        .with_storage_directory(config.data_dir.clone())
        // A task that panics (the validator halting on a storage failure or a state divergence)
        // ends alone; the API stays up to say so.
        .with_catch_panics(true);
    let run = std::panic::AssertUnwindSafe(|| {
        runtime::Runner::new(runtime_config).start(|context| async move {
            match start(&context, config, api_listener, health).await {
                Ok(running) => {
                    let _ = started.send(Ok(()));
                    // A dropped sender (the handle was leaked or its thread ended) also stops.
                    let _ = stop.await;
                    running.stop(context).await;
                    Ok(())
                }
                Err(error) => {
                    let _ = started.send(Err(error));
                    Ok(())
                }
            }
        })
    });
    std::panic::catch_unwind(run).unwrap_or_else(|panic| Err(NodeError::Crashed(panic_message(&*panic))))
}

/// Seeds an empty data directory with `snapshot`, the state at `height` (checked by the caller
/// against `above`, the certified header of the block above it), as the newest snapshot: a
/// validator started on the directory opens it as a restart does (the finalized log begins
/// above it), and marshal, given `above`'s finalization as its floor, fetches only the blocks
/// above from its peers. Refuses a directory that holds anything but a vote record (a `*-votes`
/// directory kept from the validator's old data, which keeps it from contradicting its votes).
/// With `first_start`, marks a founder of a re-founded chain that has not run yet: its founding
/// state is then no reason to hold its votes back (`validator::first_start_partition`).
pub fn seed_snapshot(
    data_dir: &std::path::Path,
    height: u64,
    snapshot: Vec<u8>,
    above: Option<&tally_chain::certified::CertifiedHeader>,
    first_start: bool,
) -> Result<(), NodeError> {
    let refuse = |problem: String| NodeError::Seed { path: data_dir.to_path_buf(), problem };
    if !holds_at_most_a_vote_record(data_dir).map_err(|error| refuse(error.to_string()))? {
        return Err(refuse(
            "the data directory holds more than a vote record (`*-votes`): a validator's data is never \
             overwritten; restore into a new directory (or move this one aside)"
                .into(),
        ));
    }
    crate::config::create_private_dir(data_dir)?;
    let runtime_config = runtime::Config::new().with_storage_directory(data_dir.to_path_buf());
    runtime::Runner::new(runtime_config).start(|context| async move {
        use tally_chain::application::snapshots::{Snapshots, floor_partition, write_floor};
        let partition = validator::snapshot_partition(PARTITION);
        // The floor first: a snapshot without it is still a correct start (from genesis). A
        // re-founded chain's founding state, at height 0, needs none.
        if let Some(above) = above {
            write_floor(&context, &floor_partition(&partition), above)
                .await
                .map_err(|error| refuse(error.to_string()))?;
        }
        if first_start {
            use commonware_runtime::{Blob as _, Storage as _};
            let (blob, _) = context
                .open(&validator::first_start_partition(PARTITION), b"first-start")
                .await
                .map_err(|error| refuse(error.to_string()))?;
            blob.sync().await.map_err(|error| refuse(error.to_string()))?;
        }
        let (mut snapshots, restored) =
            Snapshots::open(context.child("snapshots"), partition).await.map_err(|error| refuse(error.to_string()))?;
        assert!(restored.is_none(), "the directory was empty");
        snapshots.write(height, snapshot).await.map_err(|error| refuse(error.to_string()))
    })
}

/// Whether `dir` is absent, empty, or holds only vote-record directories (`*-votes`), which a
/// restore may keep: they record the votes the validator's key signed.
pub fn holds_at_most_a_vote_record(dir: &std::path::Path) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let votes = entry.file_name().to_str().is_some_and(|name| name.ends_with("-votes"));
        if !votes || !entry.file_type()?.is_dir() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The parts of a started validator that an orderly stop needs.
struct Started {
    /// The validator's key in hex, for the log.
    name: String,
    stopping: watch::Sender<bool>,
    server: commonware_runtime::Handle<std::io::Result<()>>,
}

impl Started {
    async fn stop(self, context: runtime::Context) {
        tracing::info!(validator = %self.name, "stopping");
        let timeout = Duration::from_millis(STOP_TIMEOUT_MS);
        self.stopping.send_replace(true);
        if tokio::time::timeout(timeout, self.server).await.is_err() {
            tracing::warn!(validator = %self.name, "the API did not finish its answers in time");
        }
        if let Err(error) = context.stop(0, Some(timeout)).await {
            tracing::warn!(validator = %self.name, %error, "the validator's tasks did not stop in time");
        }
        tracing::info!(validator = %self.name, "stopped");
    }
}

/// The p2p network a validator's consensus runs on.
pub type NetworkChannels = Channels<lookup::Sender<ValidatorKey, runtime::Context>, lookup::Receiver<ValidatorKey>>;

/// Starts the validator's side of the p2p network: authenticated, encrypted TCP to the other
/// genesis validators on the config's p2p address, each channel registered. Returns the oracle
/// (who the peers are, and the blocker of misbehaving ones) and the channels. Public so that a
/// test can run two consensus instances on one validator's network (a twin, which equivocates).
pub fn start_network(
    context: &runtime::Context,
    config: &NodeConfig,
) -> (lookup::Oracle<ValidatorKey>, NetworkChannels) {
    let validator_key = config.validator();
    let validators = config.genesis.validators().len();
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: config.signer.clone(),
            synchrony_bound: HANDSHAKE_CLOCK_SKEW,
            max_handshake_age: HANDSHAKE_AGE_MAX,
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let peers_max = NonZeroUsize::new(validators).expect("a genesis has validators");
    let namespace = config.genesis.genesis().consensus_namespace();
    let p2p = match config.p2p_profile {
        P2pProfile::Lan => lookup::Config::local(
            handshake,
            &namespace,
            config.p2p_listen,
            peers_max,
            MESSAGE_SIZE_MAX as u32,
            NZUsize!(P2P_MAILBOX_SIZE),
        ),
        P2pProfile::Wan => lookup::Config::recommended(
            handshake,
            &namespace,
            config.p2p_listen,
            peers_max,
            MESSAGE_SIZE_MAX as u32,
            NZUsize!(P2P_MAILBOX_SIZE),
        ),
    };
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
    let own_address = config.genesis.validator(&validator_key).expect("checked by the config").p2p;
    let mut addresses: Vec<(ValidatorKey, Address)> =
        config.peers.iter().map(|(key, address)| (key.clone(), Address::from(*address))).collect();
    addresses.push((validator_key, Address::from(own_address)));
    let _ = oracle.track(0, Map::try_from(addresses).expect("validators are unique"));
    let quota = Quota::per_second(NZU32!(PEER_MESSAGES_PER_SECOND));
    let channels = Channels::register(|id| network.register(id, quota));
    network.start();
    (oracle, channels)
}

async fn start(
    context: &runtime::Context,
    config: NodeConfig,
    api_listener: std::net::TcpListener,
    health: Arc<Health>,
) -> Result<Started, NodeError> {
    let validator_key = config.validator();
    let (oracle, channels) = start_network(context, &config);
    let validator = validator::start(
        context.child("validator"),
        config.genesis.genesis().clone(),
        config.signer.clone(),
        ConsensusConfig { snapshot_interval: config.snapshot_interval, ..consensus_config(config.p2p_profile) },
        oracle.clone(),
        oracle,
        channels,
    )
    .await
    .map_err(|error| NodeError::Start(error.to_string()))?;

    // Watch the validator's tasks: any ending before a stop means it halted. Then the
    // others are stopped too: a validator whose state it can no longer trust must not vote (its
    // consensus would otherwise go on voting for blocks it cannot execute).
    let (stopping, stopping_receiver) = watch::channel(false);
    let watched = health.clone();
    let mut watched_stopping = stopping_receiver.clone();
    let watched_name = crate::hex::encode(validator_key.as_ref());
    let mut tasks = validator.tasks;
    context.child("watchdog").spawn(move |_| async move {
        let ended = tokio::select! {
            result = &mut tasks => match result {
                Ok(ended) => ended,
                Err(error) => format!("the validator's tasks ended: {error:?}"),
            },
            _ = watched_stopping.wait_for(|stopping| *stopping) => return,
        };
        if !*watched_stopping.borrow() {
            // Its tasks are already stopped: they end together.
            watched.set_halted();
            tracing::error!(
                validator = %watched_name,
                %ended,
                "the validator halted (the error above says why) and its consensus is stopped: it votes no more, \
                 and its API answers 503. Fix the cause (a full disk; damaged data: move the data directory aside, keeping its `validator-votes` directory) \
                 and start it again: it catches up from its peers"
            );
        }
    });

    let metrics_context = context.child("metrics");
    let opened = validator.mailbox.clone();
    let api_state = ApiState(Arc::new(Shared {
        mailbox: validator.mailbox,
        genesis: config.genesis.clone(),
        validator: validator_key,
        gateway: config.gateway.clone(),
        wait: config.wait,
        waiting: Arc::new(Semaphore::new(config.waiting_requests_max)),
        bodies: Arc::new(Semaphore::new(crate::constants::BODIES_IN_FLIGHT_MAX)),
        body_bytes: Arc::new(Semaphore::new(crate::constants::BODY_BYTES_IN_FLIGHT_MAX)),
        health: health.clone(),
        metrics: Arc::new(NodeMetrics::new()),
        runtime_metrics: Arc::new(move || metrics_context.encode()),
        stopping: stopping_receiver.clone(),
    }));
    let listener =
        tokio::net::TcpListener::from_std(api_listener).map_err(|source| NodeError::io("the API socket", source))?;
    // The application answers only once it has opened its storage (restored its snapshot and
    // executed its log). The API serves from then on (callers meanwhile wait in the listener's
    // backlog), so a validator that answers is open; one whose storage cannot open is halted
    // and its API says so.
    if opened.status().await.is_none() {
        health.set_halted();
    }
    let router = api::router(api_state);
    let server_stopping = stopping_receiver;
    let server = context.child("api").spawn(move |_| async move {
        api::serve::serve(listener, router, server_stopping).await;
        Ok(())
    });
    let name = crate::hex::encode(config.validator().as_ref());
    if health.is_halted() {
        tracing::error!(validator = %name, "the validator halted while opening its data directory (the error above says why)");
        return Ok(Started { name, stopping, server });
    }
    let genesis = config.genesis.genesis();
    let (validators, faults_tolerated) = (genesis.validators().len(), genesis.faults_tolerated());
    tracing::info!(
        validator = %name,
        api = %config.api_listen,
        p2p = %config.p2p_listen,
        validators,
        faults_tolerated,
        quorum = genesis.quorum(),
        "validator started"
    );
    if faults_tolerated == 0 {
        tracing::warn!(
            validators,
            "this cluster tolerates no faulty validator (n = 3f + 1): if one validator stops, the chain stops; 4 \
             validators are the fewest that tolerate one"
        );
    }
    Ok(Started { name, stopping, server })
}
