//! The application actor: the async shell around `ApplicationState`. It only moves messages:
//! receive (from marshal, Simplex's reporter, clients, or peers), call the state, send what the
//! state answers.
//!
//! Marshal (`ordering.rs`) fetches every block this validator needs, keeps the blocks it votes
//! for durable, and delivers finalized blocks in height order. What is left here:
//! - proposals and verifications, judged on the state's pending blocks (`marshaled.rs` feeds
//!   the ancestors it reads from marshal);
//! - each delivered finalized block executed, its outcomes appended to the finalized log and
//!   synced, and only then acknowledged to marshal and answered to waiting clients;
//! - client requests: accepted into the mempool and gossiped to the peers;
//! - snapshots: written every `snapshot_interval` heights, served to peers (with the hash of
//!   each chunk), and fetched by a validator on an empty disk far behind the chain, from several
//!   peers at once, each chunk checked on arrival against a chunk-hash list f + 1 peers vouch for
//!   (`snapshot_fetch.rs` decides). A peer offers its latest snapshot with the certified header
//!   of the block above it, so the whole snapshot is checked (its block and state digest) before
//!   it is adopted; marshal then takes that certificate as its floor and delivers from the block
//!   above the snapshot. A peer whose chunk does not match its hash is blocked;
//! - damaged finalized records: the scrub reads the whole log again at a bounded rate, and a
//!   record that cannot be read or breaks the chain is fetched again from peers and checked
//!   against a finalization certificate (`repair.rs`); one above the snapshot is rebuilt at
//!   start from the block marshal holds. Meanwhile its outcomes answer `OutcomeRepairing`. A
//!   validator alone, which no peer can repair, halts on damage.

use crate::application::evidence_file::EvidenceFile;
use crate::application::ingress::{BackupSource, Built, Judged, Mailbox, Message};
use crate::application::log::{FinalizedLog, LogRecord};
use crate::application::repair::{
    Ask, Chunk, Found, REPAIR_CHUNK_SIZE, Repairs, SCRUB_BYTES_PER_TURN, Scrub, check_bundle, encode_bundle,
    record_results_root,
};
use crate::application::snapshot_fetch::{Note, Poll, Received, SnapshotFetch, Whole, Why};
use crate::application::snapshots::{
    SNAPSHOT_SIZE_MAX, SnapshotInfo, SnapshotMessage, Snapshots, floor_partition, read_floor,
};
use crate::application::state::{ApplicationState, Finalized, FinalizedBlock, Lookup, OutcomeLookup, Status};
use crate::block::{Block, Header, StateDigest};
use crate::certified::{CERTIFIED_DESCENDANTS_MAX, CertifiedHeader};
use crate::consensus::{ConsensusContext, Finalization, block_context};
use crate::constants::EVIDENCE_KEPT_MAX;
use crate::error::ChainError;
use crate::evidence::{Admitted, Evidence};
use crate::execution::{ChainState, RequestOutcome};
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use crate::ordering::Marshal;
use crate::receipt::OutcomeReceipt;
use crate::request::{RequestKey, VerifiedRequest};
use crate::snapshot::{SnapshotProofError, check_snapshot_proof, check_snapshot_state};
use commonware_codec::{Encode as _, EncodeSize as _};
use commonware_consensus::types::Height;
use commonware_macros::select_loop;
use commonware_p2p::{Blocker, CheckedSender as _, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, ContextCell, Handle, Metrics, Spawner, Storage, spawn_cell};
use commonware_utils::Acknowledgement as _;
use commonware_utils::acknowledgement::Exact;
use commonware_utils::channel::{fallible::OneshotExt as _, mpsc, oneshot};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{debug, error, info, warn};

/// The most verifications waiting for the local clock at once; the oldest are dropped beyond
/// it (consensus treats a dropped answer as a timeout, never as a vote).
const WAITING_MAX: usize = 256;

/// How often the loop wakes without a message: retries verifications waiting for the clock,
/// proposals waiting for a request, and snapshot fetches.
const TICK: Duration = Duration::from_millis(250);

/// How long to wait for snapshot offers before asking the peers again.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(2);

/// How long a validator on an empty disk holds the finalized blocks marshal delivers while it
/// waits for a snapshot, before it executes the chain from genesis instead.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(30);

/// How often held requests are considered for gossiping again (with backoff, see `Mempool`),
/// and the most bytes sent again per tick. Gossip is best effort; repeating it makes a request
/// reach the other validators despite lost messages.
const GOSSIP_RETRY: Duration = Duration::from_secs(1);
const GOSSIP_RETRY_BYTES: usize = 2 * 1024 * 1024;

/// Client messages queued for the actor before it answers busy.
const CLIENT_QUEUE_MAX: usize = 1_024;

/// The most clients waiting for outcomes at once; beyond it a waiter is told to ask later.
const WAITERS_MAX: usize = 16_384;

/// A peer repairing a damaged record is served at most one new bundle per this interval (each
/// reads a record and the headers above it); other asks are ignored, and the peer asks again.
const BUNDLE_INTERVAL: Duration = Duration::from_millis(100);

/// A damaged record could not be read; it is being repaired.
#[derive(Debug, Clone, Copy)]
struct Damaged;

/// What an application actor is.
#[derive(Debug)]
pub struct ActorConfig<B> {
    pub genesis: Genesis,
    /// This validator's key (its peers are the other genesis validators).
    pub validator: ValidatorKey,
    /// Where the finalized block log lives.
    pub log_partition: String,
    /// Blocks per file of the finalized log.
    pub log_blocks_per_section: u64,
    /// Where snapshots live.
    pub snapshot_partition: String,
    /// Where evidence of misbehaviour lives.
    pub evidence_partition: String,
    /// A snapshot is written every this many finalized heights, if the state changed.
    pub snapshot_interval: u64,
    /// How long a leader with nothing to propose holds its proposal for a request before it
    /// proposes an empty block (`ConsensusConfig::heartbeat`).
    pub heartbeat: Duration,
    /// Blocks peers that send malformed messages.
    pub blocker: B,
    /// The height marshal counted as processed when it opened (it delivers from the next).
    pub marshal_processed: Option<u64>,
}

/// The actor's network links (Simplex and marshal have their own): where it gossips requests,
/// the requests peers gossiped once `gossip::check_gossip` checked them, and snapshots.
#[derive(Debug)]
pub struct Links<S, R> {
    pub requests: S,
    pub gossiped: mpsc::Receiver<VerifiedRequest>,
    pub snapshots: (S, R),
}

/// A proposal held (up to the heartbeat) for a request to propose.
struct WaitingProposal {
    context: ConsensusContext,
    response: oneshot::Sender<Built>,
    /// When Simplex asked.
    asked: SystemTime,
}

/// A verification waiting for the local clock to reach the block's timestamp.
struct WaitingVerification {
    context: ConsensusContext,
    block: Block,
    response: oneshot::Sender<Judged>,
}

/// The application actor of one validator.
pub struct Actor<E: Clock + Spawner + Storage + Metrics, B, S, R> {
    context: ContextCell<E>,
    state: ApplicationState,
    /// Messages from marshal and Simplex: unbounded, because they bound their own requests and
    /// a finalized block must never be dropped.
    mailbox: mpsc::UnboundedReceiver<Message>,
    /// Messages from clients: bounded, a full queue answers busy.
    clients: mpsc::Receiver<Message>,
    /// Where requests are gossiped to the peers.
    requests: S,
    /// Requests peers gossiped, their signatures checked (`gossip.rs`).
    checked_gossip: mpsc::Receiver<VerifiedRequest>,
    snapshot_link: (S, R),
    marshal: Marshal,
    marshal_processed: Option<u64>,
    /// When the oldest mempool requests were last gossiped again, and to how many peers.
    gossiped: SystemTime,
    gossip_peers: usize,
    /// When waiting verifications were last retried by the clock.
    ticked: SystemTime,
    /// Proposals held (up to `heartbeat`) for a request to propose.
    idle_proposals: Vec<WaitingProposal>,
    /// How long a leader with nothing to propose holds its proposal.
    heartbeat: Duration,
    /// The peers a proposal must reach for a quorum to vote on it (with this validator's vote).
    quorum_peers: usize,
    /// The peers connected when last counted, and when (see `connected_peers`).
    connected: (SystemTime, usize),
    verifications: Vec<WaitingVerification>,
    /// Finalized blocks executed and not yet acknowledged to marshal (once the log holds them).
    acks: Vec<(u64, Exact)>,
    /// Finalized blocks held, unexecuted, while this validator waits for a snapshot.
    parked: Vec<(Block, Exact)>,
    /// Finalized blocks delivered at or below the finalized height (`Status::blocks_delivered_again`).
    blocks_delivered_again: u64,
    /// The highest finalized height marshal knows of.
    tip: u64,
    /// Blocks peers that send malformed messages.
    blocker: B,
    log_partition: String,
    log_blocks_per_section: u64,
    snapshot_partition: String,
    snapshot_interval: u64,
    /// The state digest of the newest snapshot (of the genesis state while there is none): a
    /// state that has not changed since is not written again.
    snapshot_state_digest: StateDigest,
    /// Opened by `run`.
    log: Option<FinalizedLog<E>>,
    snapshots: Option<Snapshots<E>>,
    evidence_partition: String,
    evidence_file: Option<EvidenceFile<E>>,
    /// The snapshot being fetched from peers, and the offers and chunk-hash lists that choose it
    /// (`snapshot_fetch.rs`); the proof of an offer is the certified header of the block above.
    fetch: SnapshotFetch<CertifiedHeader>,
    /// When peers were last asked what snapshots they hold.
    offers_asked: SystemTime,
    /// When this validator started waiting for a snapshot to catch up from.
    catch_up_since: Option<SystemTime>,
    /// Clients waiting for requests to be finalized and durable, in key order so that a
    /// simulated run answers them in the same order every time.
    waiters: BTreeMap<RequestKey, Vec<oneshot::Sender<RequestOutcome>>>,
    waiting_clients: usize,
    /// The finalized height when waiters were last answered.
    answered_height: u64,
    /// Damaged finalized records being fetched again from peers.
    repairs: Repairs,
    /// The walk over the finalized log that finds damaged records.
    scrub: Scrub,
    /// The repair bundle last built for a peer (height and bytes), and when.
    served: Option<(u64, bytes::Bytes)>,
    served_at: SystemTime,
    /// When the scrub last read (it reads once per `TICK`).
    scrubbed: SystemTime,
}

impl<E: Clock + Spawner + Storage + Metrics, B, S, R> std::fmt::Debug for Actor<E, B, S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("status", &self.state.status())
            .field("waiting_verifications", &self.verifications.len())
            .finish_non_exhaustive()
    }
}

/// Halts the validator: its state can no longer be trusted (non-determinism, corruption, a
/// storage failure). Consensus stops with it (see `validator.rs`).
fn halt(error: impl std::fmt::Display) -> ! {
    error!(%error, "validator halted");
    panic!("validator halted: {error}")
}

impl<E, B, S, R> Actor<E, B, S, R>
where
    E: Clock + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = ValidatorKey>,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
{
    /// Builds the actor and the mailbox that marshal, Simplex and clients use.
    pub fn new(context: E, config: ActorConfig<B>, links: Links<S, R>, marshal: Marshal) -> (Self, Mailbox) {
        let ActorConfig {
            genesis,
            validator,
            log_partition,
            log_blocks_per_section,
            snapshot_partition,
            evidence_partition,
            snapshot_interval,
            heartbeat,
            blocker,
            marshal_processed,
        } = config;
        let (sender, mailbox) = mpsc::unbounded_channel();
        let (client_sender, clients) = mpsc::channel(CLIENT_QUEUE_MAX);
        let quorum_peers = genesis.quorum() - 1;
        let peers = genesis.validators().iter().filter(|key| **key != validator).cloned().collect();
        let fetch = SnapshotFetch::new(genesis.validators(), &validator);
        let state = ApplicationState::new(genesis);
        let snapshot_state_digest = state.finalized_state().state_digest();
        let actor = Self {
            context: ContextCell::new(context),
            state,
            mailbox,
            clients,
            requests: links.requests,
            checked_gossip: links.gossiped,
            snapshot_link: links.snapshots,
            marshal,
            marshal_processed,
            gossiped: UNIX_EPOCH,
            gossip_peers: 0,
            ticked: UNIX_EPOCH,
            idle_proposals: Vec::new(),
            heartbeat,
            quorum_peers,
            connected: (UNIX_EPOCH, 0),
            verifications: Vec::new(),
            acks: Vec::new(),
            parked: Vec::new(),
            blocks_delivered_again: 0,
            tip: 0,
            blocker,
            log_partition,
            log_blocks_per_section,
            snapshot_partition,
            snapshot_interval,
            snapshot_state_digest,
            log: None,
            snapshots: None,
            evidence_partition,
            evidence_file: None,
            fetch,
            offers_asked: UNIX_EPOCH,
            catch_up_since: None,
            waiters: BTreeMap::new(),
            waiting_clients: 0,
            answered_height: 0,
            repairs: Repairs::new(peers),
            scrub: Scrub::new(),
            served: None,
            served_at: UNIX_EPOCH,
            scrubbed: UNIX_EPOCH,
        };
        (actor, Mailbox::new(sender, client_sender))
    }

    pub fn start(mut self) -> Handle<()> {
        spawn_cell!(self.context, self.run())
    }

    fn now_ns(&self) -> u64 {
        let since_epoch = self.context.current().duration_since(UNIX_EPOCH).expect("clock after 1970");
        u64::try_from(since_epoch.as_nanos()).expect("nanoseconds fit in u64 until 2554")
    }

    async fn run(mut self) {
        self.open().await.unwrap_or_else(|error| halt(error));
        select_loop! {
            self.context,
            on_stopped => {},
            Some(message) = self.mailbox.recv() else break => {
                self.handle(message).await;
            },
            Some(message) = self.clients.recv() else break => {
                self.handle(message).await;
            },
            Ok((peer, bytes)) = self.snapshot_link.1.recv() else break => {
                match SnapshotMessage::decode(bytes::Bytes::copy_from_slice(bytes.as_ref())) {
                    Some(message) => self.snapshot_message(peer, message).await,
                    None => {
                        warn!(%peer, "blocking a peer: malformed snapshot message");
                        self.blocker.block(peer);
                    }
                }
            },
            _ = self.context.sleep(TICK) => {},
            Some(request) = self.checked_gossip.recv() else break => {
                // Checked already (`gossip.rs`): a duplicate or a full mempool is normal.
                let id = request.id();
                let now_ns = self.now_ns();
                if let Err(error) = self.state.submit(request, now_ns) {
                    debug!(id, %error, "a gossiped request was not taken in");
                }
            },
            on_end => {
                // Finalized blocks reach the disk before any later message is answered, so no
                // outcome is visible before its block is durable.
                self.propose_idle();
                self.persist().await;
                self.catch_up().await;
                self.repair();
                self.scrub().await;
                self.gossip_again();
                self.tick();
            },
        }
    }

    /// Opens the disk: restores the newest snapshot, then executes the finalized log's blocks
    /// after it, then the blocks marshal processed beyond the log (a log that lost its tail).
    async fn open(&mut self) -> Result<(), ChainError> {
        let (evidence_file, evidence) =
            EvidenceFile::open(&self.context.child("evidence"), self.evidence_partition.clone(), self.state.genesis())
                .await?;
        let now = self.context.current();
        self.state.restore_evidence(evidence, now);
        self.evidence_file = Some(evidence_file);
        let (snapshots, restored) =
            Snapshots::open(self.context.child("snapshots"), self.snapshot_partition.clone()).await?;
        let mut log = FinalizedLog::open_with_sections(
            self.context.child("finalized_log"),
            self.log_partition.clone(),
            self.log_blocks_per_section,
        )
        .await?;
        let base = restored.as_ref().map_or(0, ChainState::height);
        if let Some(state) = restored {
            self.snapshot_state_digest = state.state_digest();
            self.state.start_from(state);
        }
        if self.state.awaits_founding_state() {
            let founding = self.state.genesis().founding().expect("only a re-founded chain awaits one");
            return Err(ChainError::Founding(format!(
                "this chain was re-founded from a backup of chain {} at height {}, and this validator's data \
                 directory holds no state of it: seed it first with `tally restore BACKUP --config CONFIG`, BACKUP \
                 being a backup of this chain or the one its genesis was made from (the chain's founders, before it \
                 first runs, add --first-start); a restore keeps a `*-votes` directory already there",
                founding.chain_id, founding.height
            )));
        }
        if base > 0 && self.marshal_processed.unwrap_or(0) < base {
            // A validator restored from a backup: marshal holds nothing yet. The certified block
            // above the backup is its floor, so it fetches only what lies above the snapshot.
            let partition = floor_partition(&self.snapshot_partition);
            let snapshot = self.state.finalized_state();
            let floor = read_floor(&self.context.child("floor"), &partition, self.state.genesis(), &snapshot).await?;
            if let Some(above) = floor {
                info!(
                    height = base,
                    floor = base + 1,
                    "started from a restored snapshot: marshal fetches the finalized blocks from its floor, the \
                     certified block above the snapshot"
                );
                self.marshal.set_floor(above.finalization);
            }
        }
        if log.start() > base {
            return Err(ChainError::Storage(format!(
                "the finalized log starts above height {} but the newest snapshot is at height {base}",
                log.start()
            )));
        }
        if log.len() < base {
            // A peer's snapshot was adopted and written, and the log not yet restarted above it.
            log.restart_above(base).await?;
        }
        for height in base + 1..=log.len() {
            match log.read(height).await {
                Ok(record) => {
                    let record = record.expect("within the log's bounds");
                    self.state.restore(record.block, record.finalization)?;
                }
                Err(damage @ ChainError::LogDamaged { .. }) => {
                    // Above the snapshot every block is executed again anyway, so the block is
                    // all it takes, and marshal holds every finalized block above its floor.
                    let Some(block) = self.marshal.get_block(Height::new(height)).await else {
                        return Err(ChainError::Storage(format!(
                            "{damage}, and marshal holds no block at height {height} to rebuild it from: {}",
                            crate::votes::REJOIN_ADVICE
                        )));
                    };
                    self.state.restore(block.inner().clone(), None)?;
                    let record = self.state.unpersisted(height - 1).into_iter().next().expect("just executed");
                    assert_eq!(record.block.header.height, height);
                    log.repair(&record).await?;
                    warn!(%damage, "rebuilt a damaged finalized record from the block marshal holds");
                }
                Err(error) => return Err(error),
            }
        }
        self.state.persisted(log.len());
        self.log = Some(log);
        self.snapshots = Some(snapshots);
        let height = self.state.finalized_height();
        let processed = self.marshal_processed.unwrap_or(0);
        if processed > height {
            info!(from = height + 1, to = processed, "executing finalized blocks marshal holds beyond the log");
            for height in height + 1..=processed {
                let Some(block) = self.marshal.get_block(Height::new(height)).await else {
                    return Err(ChainError::Storage(format!(
                        "marshal processed height {processed} but holds no block at height {height}"
                    )));
                };
                self.execute_finalized(block.inner())?;
            }
        }
        info!(height = self.state.finalized_height(), base, "opened the finalized state");
        self.answered_height = self.state.finalized_height();
        Ok(())
    }

    /// Reads a finalized record from the log. A damaged record is marked for repair and reads
    /// as `Damaged`; any other storage failure halts the validator.
    async fn read_log(&mut self, height: u64) -> Result<Option<LogRecord>, Damaged> {
        let log = self.log.as_ref().expect("opened before the loop");
        match log.read(height).await {
            Ok(record) => Ok(record),
            Err(damage @ ChainError::LogDamaged { .. }) => {
                self.want_repair(height, &damage);
                Err(Damaged)
            }
            Err(error) => halt(error),
        }
    }

    /// Marks the record at `height` for repair from peers; a validator alone halts, since no
    /// peer can repair it.
    fn want_repair(&mut self, height: u64, damage: &dyn std::fmt::Display) {
        if !self.repairs.has_peers() {
            halt(format!(
                "{damage}; no peer can repair it (this validator is the only one): restore the data directory \
                 from a backup"
            ));
        }
        if self.repairs.want(height) {
            warn!(height, %damage, "a finalized record is damaged: fetching it again from peers");
        }
    }

    fn log_start(&self) -> u64 {
        self.log.as_ref().expect("opened before the loop").start()
    }

    /// The outcome of `key`, reading the log if it is no longer in memory. `Err` if it was
    /// finalized below the history this validator holds.
    async fn outcome(&mut self, key: &RequestKey) -> Result<Option<RequestOutcome>, ChainError> {
        match self.state.outcome(key) {
            OutcomeLookup::Final(outcome) => Ok(Some(outcome)),
            OutcomeLookup::NotFinal => Ok(None),
            OutcomeLookup::Stored { height } => {
                let record = match self.read_log(height).await {
                    Ok(Some(record)) => record,
                    Ok(None) => return Err(ChainError::OutcomeNotHeld { height }),
                    Err(Damaged) => return Err(ChainError::OutcomeRepairing { height }),
                };
                let index = record.block.requests.iter().position(|request| request.key() == *key);
                let index = index.expect("the included set names the block holding the request");
                Ok(Some(record.outcomes[index].clone()))
            }
        }
    }

    /// The receipt of a finalized request's outcome, once the block above its block is
    /// finalized too (its header commits to the outcome). Built from the log, which holds every
    /// finalized height before an outcome is answered.
    async fn receipt(&mut self, key: &RequestKey) -> Result<Option<OutcomeReceipt>, ChainError> {
        let height = match self.state.outcome(key) {
            OutcomeLookup::NotFinal => return Ok(None),
            OutcomeLookup::Final(outcome) => outcome.height,
            OutcomeLookup::Stored { height } => height,
        };
        let record = match self.read_log(height).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(ChainError::OutcomeNotHeld { height }),
            Err(Damaged) => return Err(ChainError::OutcomeRepairing { height }),
        };
        let Some(above) = self.certified_header(height + 1).await else {
            return Ok(None);
        };
        let position = record.block.requests.iter().position(|request| request.key() == *key);
        let position = position.expect("the included set names the block holding the request");
        let LogRecord { block, outcomes, .. } = record;
        Ok(Some(OutcomeReceipt::build(block.header, &block.requests, &outcomes, position, above)))
    }

    /// The finalized block at `height`, from memory or the log, if this validator holds it.
    async fn finalized_block(&mut self, height: u64) -> Option<FinalizedBlock> {
        if let Some(block) = self.state.finalized_block(height) {
            return Some(block);
        }
        let block = self.read_log(height).await.ok()??.block;
        let state_digest = match self.state.history().get(height) {
            Some(entry) => entry.state_digest,
            None => match self.state.finalized_block(height + 1) {
                Some(above) => above.block.header.state_digest,
                None => self.read_log(height + 1).await.ok()??.block.header.state_digest,
            },
        };
        Some(FinalizedBlock { height, digest: block.digest(), block, state_digest })
    }

    /// Checks a piece of evidence Simplex reported, and keeps it (synced to the evidence file)
    /// if it verifies and is new.
    async fn keep_evidence(&mut self, evidence: Evidence) {
        let (kind, view) = (evidence.kind(), evidence.view());
        let now = self.context.current();
        match self.state.admit_evidence(evidence.clone(), now) {
            Admitted::New(accused) => {
                let file = self.evidence_file.as_mut().expect("opened before any message is handled");
                file.append(&evidence).await.unwrap_or_else(|error| halt(error));
                warn!(
                    accused = %accused,
                    kind = kind.name(),
                    view,
                    kept = self.state.evidence().len(),
                    "evidence of misbehaviour: validator {accused} {} in view {view}; kept (GET /v1/evidence serves \
                     it, `tally evidence verify` checks it). Its operator should find out why: a second instance \
                     running with its key, or a compromised key",
                    kind.describe()
                );
            }
            Admitted::Full(accused) => warn!(
                accused = %accused,
                kind = kind.name(),
                view,
                kept_max = EVIDENCE_KEPT_MAX,
                "evidence of misbehaviour: validator {accused} {} in view {view}; counted, not kept: \
                 the evidence file is full",
                kind.describe()
            ),
            Admitted::Duplicate => debug!(kind = kind.name(), view, "evidence already kept"),
            Admitted::Refused(error) => {
                warn!(kind = kind.name(), view, %error, "Simplex reported evidence that does not verify; not kept")
            }
        }
    }

    async fn handle(&mut self, message: Message) {
        match message {
            Message::Propose { context, response } => {
                let asked = self.context.current();
                self.propose(WaitingProposal { context, response, asked })
            }
            Message::Verify { context, block, response } => {
                self.verify(WaitingVerification { context, block, response })
            }
            Message::Ancestor { block, response } => {
                response.send_lossy(self.state.insert_block(block).map(|_| ()));
            }
            Message::Delivered { block, ack } => self.deliver(block, ack).await,
            Message::Tip { height } => self.tip = self.tip.max(height),
            Message::Finalized { finalization } => self.state.certify(*finalization),
            Message::Observed(observed) => {
                let now = self.context.current();
                self.state.observe(observed, now);
            }
            Message::Reported(evidence) => self.keep_evidence(*evidence).await,
            Message::Evidence { response } => {
                response.send_lossy(self.state.evidence().to_vec());
            }
            Message::Submit { request, response } => {
                let encoded = request.encode();
                let now_ns = self.now_ns();
                let result = self.state.submit(request, now_ns);
                if result.is_ok() {
                    // Make the request reach whoever proposes next.
                    let peers = self.requests.send(Recipients::All, encoded, false).len();
                    debug!(peers, "took a client request in and gossiped it");
                }
                response.send_lossy(result);
            }
            Message::Status { response } => {
                let status = Status {
                    records_repairing: self.repairs.wanted() as u64,
                    blocks_delivered_again: self.blocks_delivered_again,
                    ..self.state.status()
                };
                response.send_lossy(status);
            }
            Message::History { response } => {
                response.send_lossy(self.state.history().clone());
            }
            Message::Outcome { key, response } => {
                response.send_lossy(self.outcome(&key).await);
            }
            Message::WaitOutcome { key, response } => {
                // Outcomes in the state are durable: the actor persists before it reads the
                // next message.
                if self.waiting_clients >= WAITERS_MAX {
                    // Clients that gave up (an HTTP wait that timed out) leave closed waiters
                    // behind; forget them before refusing a new one.
                    self.forget_closed_waiters();
                }
                match self.outcome(&key).await {
                    Ok(Some(outcome)) => {
                        response.send_lossy(outcome);
                    }
                    Ok(None) if self.waiting_clients < WAITERS_MAX => {
                        self.waiting_clients += 1;
                        self.waiters.entry(key).or_default().push(response);
                    }
                    // Beyond the bound, or an outcome held elsewhere, the response is dropped:
                    // the client asks `outcome` later.
                    Ok(None) | Err(_) => {}
                }
            }
            Message::FinalizedState { response } => {
                response.send_lossy(self.state.finalized_state());
            }
            Message::Blocks { from_height, limit, response } => {
                let mut blocks = Vec::new();
                let top = self.state.finalized_height();
                let mut height = from_height;
                while height <= top && blocks.len() < limit {
                    // Heights at or below a snapshot this validator joined from are not held (the
                    // log's start is the snapshot's height; its first record is the one above).
                    if let Some(block) = self.finalized_block(height).await {
                        blocks.push(block);
                    } else if height <= self.log_start() {
                        height = self.log_start() + 1;
                        continue;
                    } else {
                        // Damaged and being repaired: the blocks below it are the answer.
                        break;
                    }
                    height += 1;
                }
                response.send_lossy(blocks);
            }
            Message::CertifiedHeader { height, response } => {
                let proof = self.certified_header(height).await;
                response.send_lossy(proof);
            }
            Message::Receipt { key, response } => {
                let receipt = self.receipt(&key).await;
                response.send_lossy(receipt);
            }
            Message::Backup { response } => {
                let source = self.backup_source().await;
                response.send_lossy(source);
            }
            Message::SnapshotChunk { height, index, response } => {
                let snapshots = self.snapshots.as_ref().expect("opened before the loop");
                response.send_lossy(snapshots.read_chunk(height, index).await);
            }
        }
    }

    /// A finalized block's header and its own certificate, from memory or the log.
    async fn finalized_header(&mut self, height: u64) -> Option<(Header, Option<Finalization>)> {
        if let Some((header, finalization)) = self.state.finalized_header(height) {
            return Some((header.clone(), finalization.cloned()));
        }
        let record = self.read_log(height).await.ok()??;
        Some((record.block.header, record.finalization))
    }

    /// The header at `height` and the headers above it up to the nearest block with its own
    /// finalization certificate (see `certified.rs`).
    async fn certified_header(&mut self, height: u64) -> Option<CertifiedHeader> {
        let top = self.state.finalized_height();
        if height == 0 || height > top {
            return None;
        }
        let (header, mut finalization) = self.finalized_header(height).await?;
        let mut descendants = Vec::new();
        let mut above = height;
        while finalization.is_none() {
            above += 1;
            if above > top || descendants.len() == CERTIFIED_DESCENDANTS_MAX {
                return None;
            }
            let (next, certificate) = self.finalized_header(above).await?;
            descendants.push(next);
            finalization = certificate;
        }
        let finalization = finalization.expect("the loop ends on a certificate");
        Some(CertifiedHeader { header, descendants, finalization })
    }

    fn propose(&mut self, waiting: WaitingProposal) {
        let parent = waiting.context.parent.1;
        let waited = self.context.current().duration_since(waiting.asked).unwrap_or_default();
        if waited < self.heartbeat {
            let now_ns = self.now_ns();
            match self.state.should_propose_now(parent, now_ns) {
                // A proposal sent before enough peers are connected (the first moments after
                // the validators start) reaches too few to be voted on, and its view is lost to
                // the leader timeout, which is long with quiet timings: hold it until they are.
                Ok(true) if self.connected_peers() < self.quorum_peers => {
                    debug!(
                        peers = self.connected.1,
                        needed = self.quorum_peers,
                        "holding a proposal until enough peers are connected to vote on it"
                    );
                    self.idle_proposals.push(waiting);
                    return;
                }
                Ok(true) => {
                    debug!(
                        view = waiting.context.round.view().get(),
                        "proposing at once: requests to order or results to commit"
                    );
                }
                Ok(false) => {
                    self.idle_proposals.push(waiting);
                    return;
                }
                Err(Lookup::Missing(digest)) => {
                    waiting.response.send_lossy(Built::Missing(digest));
                    return;
                }
                // The parent is invalid or conflicts with finality: decline.
                Err(_) => {
                    waiting.response.send_lossy(Built::Declined);
                    return;
                }
            }
        }
        let now_ns = self.now_ns();
        let context = block_context(&waiting.context);
        let built = match self.state.propose(context, now_ns) {
            Ok(block) => Built::Block(block),
            Err(Lookup::Missing(digest)) => Built::Missing(digest),
            Err(_) => Built::Declined,
        };
        waiting.response.send_lossy(built);
    }

    /// How many peers are connected, counted at most once per `TICK` (a count takes a message
    /// from each peer's rate limit on the request channel).
    fn connected_peers(&mut self) -> usize {
        let now = self.context.current();
        if now.duration_since(self.connected.0).unwrap_or_default() >= TICK {
            let peers = self.requests.check(Recipients::All).map_or(0, |checked| checked.recipients().len());
            self.connected = (now, peers);
        }
        self.connected.1
    }

    /// Judges a peer's block: stores it among the pending blocks, then checks it against the
    /// round and executes it on its parent's state.
    fn verify(&mut self, waiting: WaitingVerification) {
        let digest = waiting.block.digest();
        match self.state.insert_block(waiting.block.clone()) {
            Ok(_) => {}
            Err(ChainError::TooManyPendingBlocks) => {
                waiting.response.send_lossy(Judged::Full);
                return;
            }
            Err(error) => {
                warn!(block = %digest, height = waiting.block.header.height, %error, "refused a block");
                waiting.response.send_lossy(Judged::Invalid);
                return;
            }
        }
        match self.state.verify(&block_context(&waiting.context), digest, self.now_ns()) {
            Lookup::Ready => {
                waiting.response.send_lossy(Judged::Valid);
            }
            Lookup::Invalid(error) => {
                warn!(block = %digest, height = waiting.block.header.height, %error, "refused a block");
                waiting.response.send_lossy(Judged::Invalid);
            }
            Lookup::Missing(missing) => {
                waiting.response.send_lossy(Judged::Missing(missing));
            }
            // Retried on the next tick, once the local clock has moved.
            Lookup::Later => {
                if self.verifications.len() == WAITING_MAX {
                    self.verifications.remove(0);
                }
                self.verifications.push(waiting);
            }
        }
    }

    /// Whether delivered blocks are held for a snapshot: nothing is finalized here yet, the
    /// chain is more than a snapshot interval ahead, and the wait has not run out.
    fn waiting_for_snapshot(&mut self) -> bool {
        if self.state.finalized_height() > 0 || self.tip <= self.snapshot_interval {
            return false;
        }
        let now = self.context.current();
        let since = *self.catch_up_since.get_or_insert_with(|| {
            info!(tip = self.tip, "behind on an empty disk: asking peers for a snapshot");
            now
        });
        now.duration_since(since).unwrap_or_default() < SNAPSHOT_WAIT
    }

    /// Executes the next finalized block marshal delivered (acknowledged once it is in the log),
    /// or holds it while a snapshot is awaited.
    async fn deliver(&mut self, block: Block, ack: Exact) {
        if self.waiting_for_snapshot() {
            self.parked.push((block, ack));
            return;
        }
        let height = block.header.height;
        self.execute_finalized(&block).unwrap_or_else(|error| halt(error));
        self.acks.push((height, ack));
    }

    /// Executes a finalized block that extends the finalized chain; one at or below the
    /// finalized height (delivered again after a restart, or below an adopted snapshot) must
    /// be the block already finalized there, if this validator still knows it.
    fn execute_finalized(&mut self, block: &Block) -> Result<(), ChainError> {
        let (height, digest) = (block.header.height, block.digest());
        let finalized = self.state.finalized_height();
        if height <= finalized {
            self.blocks_delivered_again += 1;
            return match self.state.history().get(height) {
                Some(entry) if entry.block != digest => Err(ChainError::FinalizedBlockInvalid {
                    height,
                    block: digest,
                    reason: format!("marshal delivered it where block {} is finalized", entry.block),
                }),
                _ => Ok(()),
            };
        }
        assert_eq!(height, finalized + 1, "marshal delivers finalized blocks in height order, without gaps");
        match self.state.insert_finalized_ancestor(block.clone()) {
            Ok(_) => {}
            Err(error) => {
                return Err(ChainError::FinalizedBlockInvalid { height, block: digest, reason: error.to_string() });
            }
        }
        match self.state.finalize(digest)? {
            Finalized::Done { height: done } if done == height => Ok(()),
            other => Err(ChainError::FinalizedBlockInvalid {
                height,
                block: digest,
                reason: format!("it does not extend the finalized block ({other:?})"),
            }),
        }
    }

    /// Makes what the last message changed durable, then answers what waited for it: appends
    /// newly finalized blocks to the log and syncs it, then acknowledges them to marshal and
    /// answers clients waiting for those outcomes. Writes a snapshot every `snapshot_interval`
    /// heights, if the state changed since the newest one.
    async fn persist(&mut self) {
        let height = self.state.finalized_height();
        let log = self.log.as_mut().expect("opened before the loop");
        if log.len() != height {
            let records = self.state.unpersisted(log.len());
            log.append(&records).await.unwrap_or_else(|error| halt(error));
            self.state.persisted(height);
            let snapshots = self.snapshots.as_mut().expect("opened before the loop");
            let latest = snapshots.latest().map_or(0, |latest| latest.height);
            let state = self.state.finalized_state();
            // Empty blocks leave the state digest as it was (but for one that forgets expired
            // request names, ten minutes or so after the last requests): an idle chain writes no snapshot,
            // and the newest one stays where the last request left it (a restart executes the
            // empty blocks above it from the log).
            if height >= latest + self.snapshot_interval && state.state_digest() != self.snapshot_state_digest {
                snapshots.write(height, state.snapshot()).await.unwrap_or_else(|error| halt(error));
                self.snapshot_state_digest = state.state_digest();
            }
        }
        let log_height = self.log.as_ref().expect("opened before the loop").len();
        for (acked, ack) in std::mem::take(&mut self.acks) {
            assert!(
                acked <= log_height.max(self.state.history().base),
                "a block is acknowledged only once the log holds it"
            );
            ack.acknowledge();
        }
        if height != self.answered_height {
            self.answered_height = height;
            self.answer_waiters().await;
        }
    }

    fn forget_closed_waiters(&mut self) {
        self.waiters.retain(|_, responses| {
            responses.retain(|response| !response.is_closed());
            !responses.is_empty()
        });
        self.waiting_clients = self.waiters.values().map(Vec::len).sum();
    }

    /// Answers the clients whose requests are now finalized (and durable), and forgets those
    /// that stopped waiting.
    async fn answer_waiters(&mut self) {
        let keys: Vec<RequestKey> = self
            .waiters
            .keys()
            .filter(|key| !matches!(self.state.outcome(key), OutcomeLookup::NotFinal))
            .cloned()
            .collect();
        for key in keys {
            let outcome = self.outcome(&key).await;
            let responses = self.waiters.remove(&key).unwrap_or_default();
            if let Ok(Some(outcome)) = outcome {
                for response in responses {
                    response.send_lossy(outcome.clone());
                }
            }
        }
        self.forget_closed_waiters();
    }

    /// Proposes for the leaders that waited for a request, now that one arrived or the wait is
    /// over (a proposal waits at most one more turn of the loop, which wakes every `TICK`).
    fn propose_idle(&mut self) {
        for waiting in std::mem::take(&mut self.idle_proposals) {
            if !waiting.response.is_closed() {
                self.propose(waiting);
            }
        }
    }

    /// Retries waiting verifications every `TICK` (a block whose timestamp was ahead of the
    /// local clock becomes judgeable as time passes).
    fn tick(&mut self) {
        let now = self.context.current();
        if self.verifications.is_empty() || now.duration_since(self.ticked).unwrap_or_default() < TICK {
            return;
        }
        self.ticked = now;
        for waiting in std::mem::take(&mut self.verifications) {
            if !waiting.response.is_closed() {
                self.verify(waiting);
            }
        }
    }

    /// Gossips held requests again, with backoff, every `GOSSIP_RETRY`; all of them when a peer
    /// connected since the last time (gossip sent before a peer is connected is dropped, as in
    /// the first seconds after the validators start).
    fn gossip_again(&mut self) {
        let now = self.context.current();
        if now.duration_since(self.gossiped).unwrap_or_default() < GOSSIP_RETRY {
            return;
        }
        self.gossiped = now;
        let peers = self.connected_peers();
        let connected = peers > self.gossip_peers;
        self.gossip_peers = peers;
        for request in self.state.requests_to_gossip_again(GOSSIP_RETRY_BYTES, connected) {
            let peers = self.requests.send(Recipients::All, request.encode(), false).len();
            debug!(peers, "gossiped a held request again");
        }
    }

    /// Keeps a snapshot fetch going while one is awaited (asks for chunks, again of another
    /// peer when one is late, see `SnapshotFetch::poll`; asks peers for offers until a chunk-hash
    /// list is vouched for), and executes the held blocks once no snapshot is awaited any more.
    async fn catch_up(&mut self) {
        if !self.waiting_for_snapshot() {
            self.fetch.reset();
            if !self.parked.is_empty() {
                info!(blocks = self.parked.len(), "no snapshot adopted: executing the finalized chain from genesis");
                for (block, ack) in std::mem::take(&mut self.parked) {
                    let height = block.header.height;
                    self.execute_finalized(&block).unwrap_or_else(|error| halt(error));
                    self.acks.push((height, ack));
                }
            }
            return;
        }
        let now = self.context.current();
        if self.fetch.fetching().is_some() {
            let Poll { asks, notes } = self.fetch.poll(now);
            self.log_fetch(notes);
            self.send_snapshot_messages(asks);
            return;
        }
        if now.duration_since(self.offers_asked).unwrap_or_default() >= SNAPSHOT_RETRY {
            self.offers_asked = now;
            self.snapshot_link.0.send(Recipients::All, SnapshotMessage::AskOffer.encode(), false);
        }
    }

    fn send_snapshot_messages(&mut self, messages: Vec<(ValidatorKey, SnapshotMessage)>) {
        for (peer, message) in messages {
            self.snapshot_link.0.send(Recipients::One(peer), message.encode(), false);
        }
    }

    /// Logs what the snapshot fetch decided, for an operator.
    fn log_fetch(&mut self, notes: Vec<Note>) {
        for note in notes {
            match note {
                Note::Started { height, length, chunks, peers } => info!(
                    height,
                    length,
                    chunks,
                    peers = %names(&peers),
                    vouched_by = self.fetch.vouches_needed(),
                    "snapshot sync started: fetching its chunks from these peers at once"
                ),
                Note::Differs { peer, height } => warn!(
                    %peer,
                    height,
                    "a peer's snapshot chunk hashes differ from those its peers vouch for: not fetching from it"
                ),
                Note::Reasked { height, index, from, to, why } => {
                    let why = match why {
                        Why::TimedOut => "it did not answer in time",
                        Why::Mismatched => "its chunk did not match the vouched hash",
                    };
                    info!(height, index, %from, %to, why, "snapshot chunk asked of another peer");
                }
                Note::Silent { peer, height } => warn!(
                    %peer,
                    height,
                    "a peer left snapshot chunks unanswered several times in a row: no longer asking it"
                ),
                Note::GaveUp { height } => {
                    warn!(height, "snapshot sync gave up: no peer left to fetch from; asking peers for offers again");
                    self.offers_asked = self.context.current();
                }
            }
        }
    }

    /// This validator's latest snapshot that a peer can check: the block above it has its own
    /// finalization certificate (the floor marshal starts from).
    async fn offer(&mut self) -> SnapshotMessage {
        match self.latest_proven().await {
            Some((latest, above)) => {
                SnapshotMessage::Offer { height: latest.height, length: latest.length, above: above.encode() }
            }
            None => SnapshotMessage::none(),
        }
    }

    /// The newest snapshot and the certified header of the block above it, if that block has
    /// its own finalization certificate.
    async fn latest_proven(&mut self) -> Option<(SnapshotInfo, CertifiedHeader)> {
        let latest = self.snapshots.as_ref().expect("opened before the loop").latest()?;
        match self.certified_header(latest.height + 1).await {
            Some(above) if above.descendants.is_empty() => Some((latest, above)),
            _ => None,
        }
    }

    /// What a backup of this validator holds: its newest proven snapshot, the hash of each
    /// chunk, and the certified header above it (`GET /v1/backup`).
    async fn backup_source(&mut self) -> Option<BackupSource> {
        let (latest, above) = self.latest_proven().await?;
        let snapshots = self.snapshots.as_mut().expect("opened before the loop");
        let list = snapshots.chunk_hashes(latest.height).await?;
        assert_eq!(list.length, latest.length, "the hashes are of the snapshot held");
        Some(BackupSource { height: latest.height, list, above })
    }

    /// Answers or follows up a snapshot message from a peer.
    async fn snapshot_message(&mut self, peer: ValidatorKey, message: SnapshotMessage) {
        match message {
            SnapshotMessage::AskOffer => {
                let offer = self.offer().await;
                self.snapshot_link.0.send(Recipients::One(peer), offer.encode(), false);
            }
            SnapshotMessage::AskChunk { height, index } => {
                let snapshots = self.snapshots.as_ref().expect("opened before the loop");
                if let Some(bytes) = snapshots.read_chunk(height, index).await {
                    let chunk = SnapshotMessage::Chunk { height, index, bytes: bytes.into() };
                    self.snapshot_link.0.send(Recipients::One(peer), chunk.encode(), false);
                }
            }
            SnapshotMessage::Offer { height, length, above } => {
                // Only while a snapshot is awaited, from a peer not refused before.
                if height == 0 || !self.waiting_for_snapshot() || self.fetch.is_refused(&peer) {
                    return;
                }
                if length == 0 || length > SNAPSHOT_SIZE_MAX {
                    return;
                }
                let genesis = self.state.genesis().clone();
                let checked = CertifiedHeader::decode(&above, &genesis)
                    .map_err(|source| SnapshotProofError::Certificate { height: height + 1, source })
                    .and_then(|above| check_snapshot_proof(&genesis, height, &above).map(|()| above));
                let above = match checked {
                    Ok(above) => above,
                    Err(error) => {
                        warn!(%peer, height, %error, "refused a snapshot offer: its certified header does not verify");
                        self.fetch.refuse(&peer);
                        return;
                    }
                };
                let asks = self.fetch.offer(&peer, height, length, above);
                self.send_snapshot_messages(asks);
            }
            SnapshotMessage::AskChunkHashes { height } => {
                let snapshots = self.snapshots.as_mut().expect("opened before the loop");
                if let Some(list) = snapshots.chunk_hashes(height).await {
                    let message = SnapshotMessage::ChunkHashes { height, list };
                    self.snapshot_link.0.send(Recipients::One(peer), message.encode(), false);
                }
            }
            SnapshotMessage::ChunkHashes { height, list } => {
                if !self.waiting_for_snapshot() {
                    return;
                }
                let notes = self.fetch.hashes(&peer, height, list, self.context.current());
                self.log_fetch(notes);
            }
            SnapshotMessage::Chunk { height, index, bytes } => {
                match self.fetch.chunk(&peer, height, index, &bytes, self.context.current()) {
                    Received::Ignored | Received::Kept => {}
                    Received::Mismatched { peer, height, index } => {
                        warn!(
                            %peer,
                            height,
                            index,
                            "blocking a peer: a snapshot chunk it sent does not match the hash its peers vouch for"
                        );
                        self.blocker.block(peer);
                    }
                    Received::Whole(whole) => self.adopt(whole).await,
                }
            }
            SnapshotMessage::AskRecord { height, index } => self.serve_bundle(peer, height, index).await,
            SnapshotMessage::RecordChunk { height, index, length, bytes } => {
                let now = self.context.current();
                match self.repairs.chunk(&peer, height, index, length, &bytes, now) {
                    Chunk::Ignored => {}
                    Chunk::More(ask) => self.ask_bundle(ask),
                    Chunk::Whole { peer, height, bundle } => self.repaired(peer, height, &bundle).await,
                    Chunk::Refused { peer, height } => {
                        warn!(%peer, height, "blocking a peer: its repair bundle's chunks do not add up");
                        self.blocker.block(peer);
                    }
                }
            }
        }
    }

    /// Sends a peer chunk `index` of the bundle that repairs the record at `height`, if this
    /// validator holds that record and a certified header above it.
    async fn serve_bundle(&mut self, peer: ValidatorKey, height: u64, index: u32) {
        let bundle = match &self.served {
            Some((served, bundle)) if *served == height => bundle.clone(),
            _ => {
                let now = self.context.current();
                if now.duration_since(self.served_at).unwrap_or_default() < BUNDLE_INTERVAL {
                    return;
                }
                self.served_at = now;
                let Ok(Some(record)) = self.read_log(height).await else {
                    return;
                };
                let Some(above) = self.certified_header(height + 1).await else {
                    return;
                };
                let bundle = bytes::Bytes::from(encode_bundle(&above, &record));
                self.served = Some((height, bundle.clone()));
                bundle
            }
        };
        let offset = index as usize * REPAIR_CHUNK_SIZE;
        if offset >= bundle.len() {
            return;
        }
        let bytes = bundle.slice(offset..bundle.len().min(offset + REPAIR_CHUNK_SIZE));
        let chunk = SnapshotMessage::RecordChunk { height, index, length: bundle.len() as u64, bytes };
        self.snapshot_link.0.send(Recipients::One(peer), chunk.encode(), false);
    }

    fn ask_bundle(&mut self, ask: Ask) {
        let Ask { peer, height, index } = ask;
        let message = SnapshotMessage::AskRecord { height, index };
        self.snapshot_link.0.send(Recipients::One(peer), message.encode(), false);
    }

    /// Keeps the repairs going: asks again for a late chunk, or asks the next peer.
    fn repair(&mut self) {
        let (ask, gave_up) = self.repairs.poll(self.context.current());
        if let Some((peer, height)) = gave_up {
            let (tried, peers) = self.repairs.tried();
            warn!(%peer, height, tried, peers, "repairing a damaged finalized record: a peer did not answer, asking the next");
        }
        if let Some(ask) = ask {
            self.ask_bundle(ask);
        }
    }

    /// Checks a peer's whole repair bundle and, if it holds the finalized record, keeps it in
    /// place of the damaged one. A bundle that does not check blocks its peer: an honest peer
    /// sends only records it read back whole, with a certificate.
    async fn repaired(&mut self, peer: ValidatorKey, height: u64, bundle: &[u8]) {
        let checked = check_bundle(self.state.genesis(), height, bundle).and_then(|record| {
            match self.state.history().get(height) {
                Some(entry) if entry.block != record.block.digest() => {
                    Err(format!("this validator finalized block {} there", entry.block))
                }
                _ => Ok(record),
            }
        });
        match checked {
            Ok(record) => {
                let log = self.log.as_mut().expect("opened before the loop");
                log.repair(&record).await.unwrap_or_else(|error| halt(error));
                self.repairs.done(height);
                self.served = None;
                info!(%peer, height, left = self.repairs.wanted(), "repaired a damaged finalized record from a peer");
            }
            Err(reason) => {
                warn!(%peer, height, %reason, "blocking a peer: its repair of a damaged record does not check");
                self.repairs.refused(&peer);
                self.blocker.block(peer);
            }
        }
    }

    /// Reads the next records of the finalized log (about `SCRUB_BYTES_PER_TURN` bytes, once per
    /// `TICK`) and checks each against the one below; damaged ones are fetched again from peers.
    async fn scrub(&mut self) {
        let now = self.context.current();
        if now.duration_since(self.scrubbed).unwrap_or_default() < TICK {
            return;
        }
        self.scrubbed = now;
        let log = self.log.as_ref().expect("opened before the loop");
        let (start, end) = (log.start(), log.len());
        let mut read = 0;
        while read < SCRUB_BYTES_PER_TURN {
            let Some(height) = self.scrub.next(start, end, now) else {
                break;
            };
            match self.read_log(height).await {
                Ok(Some(record)) => {
                    read += record.block.encode_size();
                    let block = &record.block;
                    let roots = (record_results_root(&record), block.header.results_root);
                    let found = self.scrub.read(height, block.digest(), block.header.parent, roots);
                    if let Found::Damaged(heights) = found {
                        for height in heights {
                            self.want_repair(height, &"the finalized log's records do not link");
                        }
                    }
                }
                Ok(None) => break,
                Err(Damaged) => {
                    read += 1;
                    self.scrub.unreadable(height);
                }
            }
        }
        if let Some((last, damaged)) = self.scrub.finish_pass(end, now) {
            info!(from = start + 1, to = last, damaged, "read the whole finalized log back");
        }
    }

    /// Adopts a fetched snapshot if it is the state the certified header above it commits to:
    /// writes it as this validator's own, restarts the log above it (in this order, so that a
    /// crash between the two finds the snapshot and restarts the log on open), and gives marshal
    /// the certificate of the block above it as its floor. The blocks held meanwhile are below
    /// the snapshot: they are acknowledged. A snapshot that is not that state blocks every peer
    /// that vouched for its chunk hashes (no honest validator would have).
    async fn adopt(&mut self, whole: Whole<CertifiedHeader>) {
        let Whole { height, bytes, proof: above, elapsed, bytes_per_peer, vouchers } = whole;
        let state = match check_snapshot_state(height, &bytes, &above) {
            Ok(state) => state,
            Err(error) => {
                warn!(
                    height,
                    %error,
                    vouchers = %names(&vouchers),
                    "blocking peers: the snapshot their chunk hashes vouch for is not the state the certified block \
                     above it commits to"
                );
                self.fetch.refute(&vouchers);
                for peer in vouchers {
                    self.blocker.block(peer);
                }
                return;
            }
        };
        if self.state.finalized_height() > 0 {
            // The wait ran out meanwhile and the chain is being executed from genesis.
            return;
        }
        let per_peer: Vec<String> = bytes_per_peer.iter().map(|(peer, bytes)| format!("{peer}={bytes}")).collect();
        info!(
            height,
            seconds = elapsed.as_secs_f64(),
            bytes = bytes.len(),
            bytes_per_peer = %per_peer.join(","),
            "snapshot sync done: adopted the snapshot"
        );
        self.snapshot_state_digest = state.state_digest();
        self.state.start_from(state);
        let snapshots = self.snapshots.as_mut().expect("opened before the loop");
        snapshots.write(height, bytes).await.unwrap_or_else(|error| halt(error));
        let log = self.log.as_mut().expect("opened before the loop");
        log.restart_above(height).await.unwrap_or_else(|error| halt(error));
        self.state.persisted(height);
        self.marshal.set_floor(above.finalization);
        for (block, ack) in std::mem::take(&mut self.parked) {
            let height = block.header.height;
            self.execute_finalized(&block).unwrap_or_else(|error| halt(error));
            self.acks.push((height, ack));
        }
    }
}

/// Peers' keys, for a log line.
fn names(peers: &[ValidatorKey]) -> String {
    peers.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
