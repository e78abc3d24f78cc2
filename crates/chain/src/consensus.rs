//! Tally's consensus configuration: Commonware Simplex with the ed25519 certificate scheme,
//! round-robin leaders, and block digests as payloads. The Commonware types the rest of the
//! crate needs are named here.

use crate::block::{BlockContext, BlockDigest};
use crate::genesis::Genesis;
use crate::keys::{ValidatorKey, ValidatorSigner};
use commonware_consensus::simplex;
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_runtime::buffer::paged::CacheRef;
use commonware_utils::{NZDuration, NZU16, NZUsize, ordered::Set};
use std::time::Duration;

/// Simplex's signing scheme for votes and certificates.
pub type Scheme = simplex::scheme::ed25519::Scheme;
/// What Simplex tells the application when it asks for a proposal or a verdict.
pub type ConsensusContext = simplex::types::Context<BlockDigest, ValidatorKey>;
/// How a block should be broadcast.
pub type Plan = simplex::Plan<ValidatorKey>;
/// What Simplex reports (votes, certificates, faults).
pub type Activity = simplex::types::Activity<Scheme, BlockDigest>;
/// A finalization: a block's round and digest with a quorum of validator signatures.
pub type Finalization = simplex::types::Finalization<Scheme, BlockDigest>;
/// Leader election: round robin over the sorted validators.
pub type Elector = simplex::elector::RoundRobin;

/// The block context of a consensus context: the round, its leader and the parent.
pub fn block_context(context: &ConsensusContext) -> BlockContext {
    BlockContext {
        epoch: context.round.epoch().get(),
        view: context.round.view().get(),
        leader: context.leader.clone(),
        parent_view: context.parent.0.get(),
        parent: context.parent.1,
    }
}

/// Consensus timing and buffering, in one place.
#[derive(Debug, Clone)]
pub struct ConsensusConfig {
    /// How long a leader with no request to propose holds its proposal for one before it
    /// proposes an empty block: an idle chain makes one block per heartbeat, while a request
    /// that reaches the leader meanwhile is proposed at once. Every view costs each validator
    /// disk writes (see docs/ARCHITECTURE.md, "An idle cluster"), so this bounds an idle
    /// validator's write rate.
    pub heartbeat: Duration,
    /// How long to wait for the leader's proposal before voting to skip the view: what a view
    /// whose proposal is lost costs. Above `heartbeat`, so that a leader holding its proposal
    /// on an idle chain is not skipped.
    pub leader_timeout: Duration,
    /// How long to wait for a notarized block to be certified before voting to skip the view.
    pub certification_timeout: Duration,
    /// How often to rebroadcast a skip vote while stuck in a view.
    pub timeout_retry: Duration,
    /// A leader nothing was heard from for this long, while a quorum was heard from, has its
    /// views skipped at once (Simplex's skip policy) rather than after `leader_timeout`: a
    /// crashed validator costs the leader timeout for the views it leads within this time of
    /// its crash, and a round of skip votes for each one after. Above `certification_timeout`
    /// and `timeout_retry` (Simplex asserts it), and above `heartbeat`, so that on an idle
    /// chain every live validator is heard from within it. `None`: never skipped early.
    pub skip_timeout: Option<Duration>,
    /// How many views of votes to keep below the finalized view.
    pub view_retention: u64,
    /// How long a certificate fetch waits for a peer.
    pub fetch_timeout: Duration,
    /// The prefix of this validator's storage partitions.
    pub partition: String,
    /// A snapshot of the finalized state is written every this many finalized heights, so that
    /// a restart executes at most this many blocks, and a validator starting on an empty disk
    /// can fetch one. At most `SNAPSHOT_INTERVAL_MAX`, so that a peer's snapshot is within reach
    /// of the pending blocks a validator holds while it walks down to the snapshot.
    pub snapshot_interval: u64,
    /// Finalized blocks per file of the finalized log. Damage in the log's last two files
    /// stops the validator when it opens; damage in older ones is repaired from peers. A storage
    /// format parameter: a validator's log must always be opened with the value it was written
    /// with.
    pub log_blocks_per_section: u64,
}

/// The default snapshot interval, in finalized heights.
pub const SNAPSHOT_INTERVAL: u64 = 256;

/// The largest snapshot interval: half the pending blocks a validator holds.
pub const SNAPSHOT_INTERVAL_MAX: u64 = crate::constants::PENDING_BLOCKS_MAX as u64 / 2;

impl ConsensusConfig {
    /// Quick timings for tests and the simulator (links under 100 ms): an idle leader waits
    /// 200 ms for a request, a silent one is skipped after 1 s, and skip votes are sent again
    /// every 2 s (a view whose skip votes were lost on a lossy link recovers in 2 s, not 10). Every view costs each validator
    /// disk writes (about 150 KB), so an idle cluster writes about 30 MiB a minute with these.
    pub fn local(partition: String) -> Self {
        Self {
            heartbeat: Duration::from_millis(200),
            leader_timeout: Duration::from_secs(1),
            certification_timeout: Duration::from_secs(2),
            timeout_retry: Duration::from_secs(2),
            skip_timeout: None,
            view_retention: 10,
            fetch_timeout: Duration::from_secs(1),
            partition,
            snapshot_interval: SNAPSHOT_INTERVAL,
            log_blocks_per_section: crate::application::log::BLOCKS_PER_SECTION,
        }
    }

    /// Quiet when idle, the validators' timings (see `docs/ARCHITECTURE.md`, "An idle
    /// cluster"). An idle leader holds its proposal
    /// for up to 10 s (one empty block per 10 s: under 1 MiB written a minute per validator),
    /// while a request, or a block whose results are still to be committed, is proposed at
    /// once. The price is paid under faults: a view whose proposal never comes costs the 11 s
    /// leader timeout, until the skip policy (13 s of silence) skips a crashed leader's views
    /// at once.
    pub fn quiet(partition: String) -> Self {
        Self {
            heartbeat: Duration::from_secs(10),
            leader_timeout: Duration::from_secs(11),
            certification_timeout: Duration::from_secs(12),
            timeout_retry: Duration::from_secs(2),
            skip_timeout: Some(Duration::from_secs(13)),
            ..Self::local(partition)
        }
    }
}

/// The digest Simplex treats as the implicitly finalized genesis.
pub fn genesis_floor(genesis: &Genesis) -> simplex::Floor<Scheme, BlockDigest> {
    simplex::Floor::Genesis(genesis.block().digest())
}

/// The scheme that checks this chain's certificates (anyone's: it signs nothing).
pub fn certificate_verifier(genesis: &Genesis) -> Scheme {
    let participants = Set::try_from(genesis.validators().to_vec()).expect("genesis validators are unique");
    Scheme::verifier(&genesis.consensus_namespace(), participants)
}

/// This validator's vote-signing scheme, or `None` if it is not a genesis validator.
pub fn signing_scheme(genesis: &Genesis, signer: ValidatorSigner) -> Option<Scheme> {
    let participants = Set::try_from(genesis.validators().to_vec()).expect("genesis validators are unique");
    Scheme::signer(&genesis.consensus_namespace(), participants, signer)
}

pub(crate) const EPOCH: Epoch = Epoch::new(0);
pub(crate) const MAILBOX_SIZE: usize = 1_024;
pub(crate) const JOURNAL_BUFFER_SIZE: usize = 1024 * 1024;
pub(crate) const PAGE_SIZE: u16 = 4_096;
pub(crate) const PAGE_CACHE_PAGES: usize = 64;
pub(crate) const FETCH_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Builds the Simplex configuration for one validator.
#[allow(clippy::type_complexity)]
pub(crate) fn simplex_config<B, A, F>(
    genesis: &Genesis,
    scheme: Scheme,
    blocker: B,
    application: A,
    reporter: F,
    config: &ConsensusConfig,
) -> simplex::Config<Scheme, Elector, B, BlockDigest, A, A, F, commonware_parallel::Sequential>
where
    B: commonware_p2p::Blocker<PublicKey = ValidatorKey>,
    A: commonware_consensus::CertifiableAutomaton<Context = ConsensusContext, Digest = BlockDigest>
        + commonware_consensus::Relay<Digest = BlockDigest, PublicKey = ValidatorKey, Plan = Plan>,
    F: commonware_consensus::Reporter<Activity = Activity>,
{
    // A leader holding its proposal for a request must be neither skipped nor taken for a
    // crashed one.
    assert!(config.heartbeat < config.leader_timeout, "the heartbeat is below the leader timeout");
    assert!(config.skip_timeout.is_none_or(|skip| config.heartbeat < skip), "the heartbeat is below the skip timeout");
    simplex::Config {
        scheme,
        elector: Elector::default(),
        blocker,
        automaton: application.clone(),
        relay: application,
        reporter,
        track_historical_votes: false,
        strategy: commonware_parallel::Sequential,
        partition: config.partition.clone(),
        mailbox_size: NZUsize!(MAILBOX_SIZE),
        epoch: EPOCH,
        floor: genesis_floor(genesis),
        replay_buffer: NZUsize!(JOURNAL_BUFFER_SIZE),
        write_buffer: NZUsize!(JOURNAL_BUFFER_SIZE),
        page_cache: CacheRef::new(NZU16!(PAGE_SIZE), NZUsize!(PAGE_CACHE_PAGES)),
        leader_timeout: config.leader_timeout,
        certification_timeout: config.certification_timeout,
        timeout_retry: config.timeout_retry,
        view_retention: ViewDelta::new(config.view_retention),
        skip: match config.skip_timeout {
            Some(timeout) => simplex::SkipPolicy::Enabled { timeout, budget: simplex::SkipBudget::default() },
            None => simplex::SkipPolicy::Disabled,
        },
        fetch_timeout: NZDuration!(config.fetch_timeout),
        fetch_retry_delay: FETCH_RETRY_DELAY,
        forward: simplex::ForwardPolicy::Disabled,
    }
}
