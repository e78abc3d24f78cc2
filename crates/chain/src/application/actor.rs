//! The application actor: the async shell around `ApplicationState`. It only moves messages:
//! receive (from Simplex, clients, or peers), call the state, send what the state answers.
//!
//! Requests that cannot be answered yet (a proposal or verification whose parent block has not
//! arrived, a finalization whose blocks have not arrived) wait in bounded lists and are retried
//! each time a block arrives. Meanwhile the actor asks every peer for the missing block on the
//! fetch channel, again every `FETCH_RETRY` until it arrives; a peer that holds the block sends
//! it back on the block channel, where it is checked like any other block (its digest is
//! computed from its bytes, so a peer cannot answer with a different block). A fetch names the
//! height it expects, so that a peer can serve an old block from its log, and asks for a run of
//! ancestors when a finalized chain is being walked down.
//!
//! A validator with an empty disk, more than one snapshot interval behind a finalized block,
//! asks its peers for their latest snapshot, fetches it in chunks from
//! one of them, and offers it to the state as a candidate: it is adopted only once the
//! finalized chain reaches down to it and the block above it commits to its state digest (see
//! `ApplicationState::finalize`). A candidate that fails is dropped, and its peer is not asked
//! again.

use crate::application::fault::Fault;
use crate::application::ingress::{Mailbox, Message};
use crate::application::log::FinalizedLog;
use crate::application::snapshots::{SNAPSHOT_CHUNK_SIZE, SnapshotMessage, Snapshots};
use crate::application::state::{ApplicationState, Finalized, FinalizedBlock, Lookup, OutcomeLookup};
use crate::application::voted::VotedBlocks;
use crate::block::{Block, BlockDigest, Header};
use crate::certified::{CERTIFIED_DESCENDANTS_MAX, CertifiedHeader};
use crate::consensus::{ConsensusContext, Finalization, Plan, block_context};
use crate::error::ChainError;
use crate::execution::{ChainState, RequestOutcome};
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use crate::request::{Request, RequestKey};
use commonware_codec::{Decode as _, Encode as _};
use commonware_macros::select_loop;
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, ContextCell, Handle, Metrics, Spawner, Storage, spawn_cell};
use commonware_utils::channel::{fallible::OneshotExt as _, mpsc, oneshot};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most proposals or verifications waiting for blocks at once; the oldest are dropped
/// beyond it (consensus treats a dropped answer as a timeout, never as a vote).
const WAITING_MAX: usize = 256;

/// The most missing blocks asked for at once.
const WANTED_MAX: usize = 64;

/// The most digests tracked as ancestors of a finalized block not yet received.
const ANCESTORS_TRACKED_MAX: usize = 4_096;

/// How long to wait for a missing block before asking the peers again.
const FETCH_RETRY: Duration = Duration::from_millis(250);

/// The most blocks one fetch asks for: the block and its ancestors, when walking a finalized
/// chain down.
const FETCH_BATCH: u8 = 32;

/// The most block bytes one fetch is answered with (a run of small blocks is whole; a run of
/// large ones stops early), so that a short fetch cannot make a validator send much more.
const FETCH_REPLY_SIZE_MAX: usize = 8 * 1024 * 1024;

/// How long to wait for a snapshot offer or chunk before asking again, and how many times.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(2);
const SNAPSHOT_ATTEMPTS: u32 = 3;

/// How long a validator on an empty disk waits for a snapshot before it walks the finalized chain
/// down block by block instead (if no peer offers one it can use).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(30);

/// The largest snapshot accepted from a peer (it is assembled in memory).
const SNAPSHOT_SIZE_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// How often held requests are considered for gossiping again (with backoff, see `Mempool`),
/// and the most bytes sent again per tick. Gossip is best effort; repeating it makes a request
/// reach the other validators despite lost messages.
const GOSSIP_RETRY: Duration = Duration::from_secs(1);
const GOSSIP_RETRY_BYTES: usize = 2 * 1024 * 1024;

/// Client messages queued for the actor before it answers busy.
const CLIENT_QUEUE_MAX: usize = 1_024;

/// How long a leader with nothing to propose waits for a request before proposing an empty
/// block. An idle chain then makes a few blocks a second instead of one per network round trip
/// (each costing every validator two syncs), while a request that arrives meanwhile is
/// proposed at once. Well within the leader timeout, which would skip the view.
const PROPOSE_IDLE_WAIT: Duration = Duration::from_millis(200);

/// The most clients waiting for outcomes at once; beyond it a waiter is told to ask later.
const WAITERS_MAX: usize = 16_384;

/// What an application actor is.
#[derive(Debug)]
pub struct ActorConfig<B> {
    pub genesis: Genesis,
    /// Where the finalized block log lives.
    pub log_partition: String,
    /// Where the blocks this validator proposed or verified live until they are finalized.
    pub voted_partition: String,
    /// Where snapshots live.
    pub snapshot_partition: String,
    /// A snapshot is written every this many finalized heights.
    pub snapshot_interval: u64,
    /// How the proposer misbehaves (`Fault::None` outside the simulator).
    pub fault: Fault,
    /// Blocks peers that send malformed messages.
    pub blocker: B,
}

/// The actor's network links (Simplex has its own).
#[derive(Debug)]
pub struct Links<S, R> {
    pub blocks: (S, R),
    pub requests: (S, R),
    pub fetch: (S, R),
    pub snapshots: (S, R),
}

/// A snapshot being fetched from a peer.
struct Download {
    peer: ValidatorKey,
    height: u64,
    length: u64,
    bytes: Vec<u8>,
    asked: SystemTime,
    attempts: u32,
}

/// A proposal waiting for its parent's state.
struct WaitingProposal {
    context: ConsensusContext,
    response: oneshot::Sender<BlockDigest>,
    /// When Simplex asked.
    asked: SystemTime,
}

/// A verification waiting for blocks.
struct WaitingVerification {
    context: ConsensusContext,
    block: BlockDigest,
    response: oneshot::Sender<bool>,
}

/// A verdict for Simplex that waits until the block it vouches for is on disk.
enum Vouch {
    Proposed { response: oneshot::Sender<BlockDigest>, block: BlockDigest },
    Verified { response: oneshot::Sender<bool>, block: BlockDigest },
}

/// The application actor of one validator.
pub struct Actor<E: Clock + Spawner + Storage + Metrics, B, S, R> {
    context: ContextCell<E>,
    state: ApplicationState,
    /// Messages from Simplex: unbounded, because Simplex bounds its own requests and a
    /// finalization report must never be dropped.
    mailbox: mpsc::UnboundedReceiver<Message>,
    /// Messages from clients: bounded, a full queue answers busy.
    clients: mpsc::Receiver<Message>,
    blocks: (S, R),
    requests: (S, R),
    fetch: (S, R),
    snapshot_link: (S, R),
    /// Missing blocks: when they were last asked for, the height expected (0 if unknown), and
    /// whether to ask for a run of ancestors too.
    wanted: BTreeMap<BlockDigest, (SystemTime, u64, bool)>,
    /// Runs of heights asked for (lowest, highest, when), not asked again within `FETCH_RETRY`.
    runs: Vec<(u64, u64, SystemTime)>,
    /// Digests known to be ancestors of a finalized block (the parents on a finalized chain
    /// being walked down): held beyond the pending-block count, within a byte budget.
    ancestors: BTreeSet<BlockDigest>,
    /// When the oldest mempool requests were last gossiped again.
    gossiped: SystemTime,
    /// When waiting verifications were last retried by the clock.
    ticked: SystemTime,
    proposals: Vec<WaitingProposal>,
    /// Proposals waiting (up to `PROPOSE_IDLE_WAIT`) for a request to propose.
    idle_proposals: Vec<WaitingProposal>,
    verifications: Vec<WaitingVerification>,
    /// Finalized blocks not yet executed because blocks are missing (reports can arrive out of
    /// order, so several may wait; any of them may be the highest).
    finalizations: Vec<BlockDigest>,
    /// Blocks peers that send malformed messages.
    blocker: B,
    /// How this validator's proposer misbehaves (`Fault::None` outside the simulator).
    fault: Fault,
    /// Where the finalized block log lives.
    log_partition: String,
    /// Where vouched-for blocks live.
    voted_partition: String,
    snapshot_partition: String,
    snapshot_interval: u64,
    /// Opened by `run`.
    log: Option<FinalizedLog<E>>,
    voted: Option<VotedBlocks<E>>,
    snapshots: Option<Snapshots<E>>,
    /// The snapshot being fetched, if any.
    download: Option<Download>,
    /// When peers were last asked what snapshots they hold.
    offers_asked: SystemTime,
    /// When this validator started waiting for a snapshot to catch up from.
    catch_up_since: Option<SystemTime>,
    /// A fetched snapshot offered to the state: its bytes, the peer it came from, and the
    /// state's count of refused snapshots when it was offered.
    candidate: Option<(Vec<u8>, ValidatorKey, u64)>,
    /// Peers whose snapshot the chain refused.
    refused_peers: BTreeSet<ValidatorKey>,
    /// Verdicts to send once their blocks are synced.
    vouches: Vec<Vouch>,
    /// Clients waiting for requests to be finalized and durable.
    waiters: HashMap<RequestKey, Vec<oneshot::Sender<RequestOutcome>>>,
    waiting_clients: usize,
    /// The finalized height when waiters were last answered.
    answered_height: u64,
}

impl<E: Clock + Spawner + Storage + Metrics, B, S, R> std::fmt::Debug for Actor<E, B, S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("status", &self.state.status())
            .field("waiting_proposals", &self.proposals.len())
            .field("waiting_verifications", &self.verifications.len())
            .finish_non_exhaustive()
    }
}

impl<E, B, S, R> Actor<E, B, S, R>
where
    E: Clock + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = ValidatorKey>,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
{
    /// Builds the actor and the mailbox that Simplex and clients use.
    pub fn new(context: E, config: ActorConfig<B>, links: Links<S, R>) -> (Self, Mailbox) {
        let ActorConfig {
            genesis,
            log_partition,
            voted_partition,
            snapshot_partition,
            snapshot_interval,
            fault,
            blocker,
        } = config;
        let (sender, mailbox) = mpsc::unbounded_channel();
        let (client_sender, clients) = mpsc::channel(CLIENT_QUEUE_MAX);
        let actor = Self {
            context: ContextCell::new(context),
            state: ApplicationState::new(genesis),
            mailbox,
            clients,
            blocks: links.blocks,
            requests: links.requests,
            fetch: links.fetch,
            snapshot_link: links.snapshots,
            wanted: BTreeMap::new(),
            runs: Vec::new(),
            ancestors: BTreeSet::new(),
            gossiped: UNIX_EPOCH,
            ticked: UNIX_EPOCH,
            proposals: Vec::new(),
            idle_proposals: Vec::new(),
            verifications: Vec::new(),
            finalizations: Vec::new(),
            blocker,
            fault,
            log_partition,
            voted_partition,
            snapshot_partition,
            snapshot_interval,
            log: None,
            voted: None,
            snapshots: None,
            download: None,
            offers_asked: UNIX_EPOCH,
            catch_up_since: None,
            candidate: None,
            refused_peers: BTreeSet::new(),
            vouches: Vec::new(),
            waiters: HashMap::new(),
            waiting_clients: 0,
            answered_height: 0,
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
        self.open().await.unwrap_or_else(|error| panic!("validator halted: {error}"));
        select_loop! {
            self.context,
            on_stopped => {},
            Some(message) = self.mailbox.recv() else break => {
                self.handle(message).await;
            },
            Some(message) = self.clients.recv() else break => {
                self.handle(message).await;
            },
            Ok((peer, bytes)) = self.blocks.1.recv() else break => {
                // A malformed block is a faulty peer; an unwanted one (too old, too many
                // pending) is dropped.
                match Block::decode_cfg(bytes, &()) {
                    Ok(block) => {
                        let digest = block.digest();
                        let parent = block.header.parent;
                        let inserted = if self.ancestors.remove(&digest) {
                            let inserted = self.state.insert_finalized_ancestor(block);
                            // A run of ancestors arrives child first: its parent comes next.
                            if inserted.is_ok() && self.ancestors.len() < ANCESTORS_TRACKED_MAX {
                                self.ancestors.insert(parent);
                            }
                            inserted
                        } else {
                            self.state.insert_block(block)
                        };
                        match inserted {
                            Ok(_) => {
                                self.wanted.remove(&digest);
                                self.retry();
                            }
                            // At or below the finalized height: no longer wanted, and a
                            // finalization of it (reported late, or below an adopted
                            // snapshot) has nothing left to do.
                            Err(ChainError::ConflictsWithFinalized { .. }) => {
                                self.wanted.remove(&digest);
                                self.finalizations.retain(|target| *target != digest);
                            }
                            Err(_) => {}
                        }
                    }
                    Err(_) => {
                        self.blocker.block(peer);
                    }
                }
            },
            Ok((peer, bytes)) = self.fetch.1.recv() else break => {
                match decode_fetch(bytes.as_ref()) {
                    Some((digest, height, count)) => self.serve_fetch(peer, digest, height, count).await,
                    None => {
                        self.blocker.block(peer);
                    }
                }
            },
            Ok((peer, bytes)) = self.snapshot_link.1.recv() else break => {
                match SnapshotMessage::decode(bytes::Bytes::copy_from_slice(bytes.as_ref())) {
                    Some(message) => self.snapshot_message(peer, message).await,
                    None => {
                        self.blocker.block(peer);
                    }
                }
            },
            _ = self.context.sleep(FETCH_RETRY) => {},
            Ok((peer, bytes)) = self.requests.1.recv() else break => {
                // Gossiped requests are re-verified. Honest validators gossip only requests they
                // verified, so a malformed or badly signed one marks a faulty peer; duplicates
                // and a full mempool are normal.
                let faulty = match Request::decode_cfg(bytes, &()) {
                    Ok(request) => matches!(
                        self.state.submit(request),
                        Err(ChainError::BadSignature | ChainError::UnknownClient)
                    ),
                    Err(_) => true,
                };
                if faulty {
                    self.blocker.block(peer);
                }
            },
            on_end => {
                // Finalized blocks reach the disk before any later message is answered, so no
                // outcome is visible before its block is durable.
                self.propose_idle();
                self.persist().await;
                self.ask();
                self.catch_up();
                self.gossip_again();
                self.tick();
            },
        }
    }

    /// Opens the disk: restores the newest snapshot, then executes the finalized log's blocks
    /// after it, and reads back the blocks vouched for before a restart.
    async fn open(&mut self) -> Result<(), ChainError> {
        let (snapshots, restored) =
            Snapshots::open(self.context.child("snapshots"), self.snapshot_partition.clone()).await?;
        let mut log = FinalizedLog::open(self.context.child("finalized_log"), self.log_partition.clone()).await?;
        let base = restored.as_ref().map_or(0, ChainState::height);
        if let Some(state) = restored {
            self.state.start_from(state);
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
            let record = log.read(height).await?.expect("within the log's bounds");
            self.state.restore(record.block, record.finalization)?;
        }
        self.state.persisted(log.len());
        self.log = Some(log);
        self.snapshots = Some(snapshots);
        // Blocks vouched for before a restart: Simplex may have notarized them, and peers may
        // need them from us.
        let (voted, vouched) =
            VotedBlocks::open(self.context.child("voted_blocks"), self.voted_partition.clone()).await?;
        for block in vouched {
            // Finalized meanwhile, or beyond the pending bound: not needed.
            let _ = self.state.insert_block(block);
        }
        self.voted = Some(voted);
        self.answered_height = self.state.finalized_height();
        Ok(())
    }

    fn log(&self) -> &FinalizedLog<E> {
        self.log.as_ref().expect("opened before the loop")
    }

    /// Reads a finalized record from the log; a storage failure halts the validator.
    async fn read_log(&mut self, height: u64) -> Option<crate::application::log::LogRecord> {
        let log = self.log.as_ref().expect("opened before the loop");
        log.read(height).await.unwrap_or_else(|error| panic!("validator halted: {error}"))
    }

    /// The outcome of `key`, reading the log if it is no longer in memory. `Err` if it was
    /// finalized below the history this validator holds.
    async fn outcome(&mut self, key: &RequestKey) -> Result<Option<RequestOutcome>, ChainError> {
        match self.state.outcome(key) {
            OutcomeLookup::Final(outcome) => Ok(Some(outcome)),
            OutcomeLookup::NotFinal => Ok(None),
            OutcomeLookup::Stored { height } => {
                let record = self.read_log(height).await.ok_or(ChainError::OutcomeNotHeld { height })?;
                let index = record.block.requests.iter().position(|request| request.key() == *key);
                let index = index.expect("the included set names the block holding the request");
                Ok(Some(record.outcomes[index].clone()))
            }
        }
    }

    /// The finalized block at `height`, from memory or the log, if this validator holds it.
    async fn finalized_block(&mut self, height: u64) -> Option<FinalizedBlock> {
        if let Some(block) = self.state.finalized_block(height) {
            return Some(block);
        }
        let block = self.read_log(height).await?.block;
        let state_digest = match self.state.history().get(height) {
            Some(entry) => entry.state_digest,
            None => match self.state.finalized_block(height + 1) {
                Some(above) => above.block.header.state_digest,
                None => self.read_log(height + 1).await?.block.header.state_digest,
            },
        };
        Some(FinalizedBlock { height, digest: block.digest(), block, state_digest })
    }

    /// Answers a peer's fetch: the block, and up to `count - 1` of its ancestors, from memory or
    /// the log. Unknown blocks get no answer.
    async fn serve_fetch(&mut self, peer: ValidatorKey, digest: BlockDigest, height: u64, count: u8) {
        let (mut digest, mut height) = (digest, height);
        let mut sent = 0;
        for _ in 0..count.min(FETCH_BATCH) {
            let block = match self.state.block(&digest) {
                Some(block) => block.clone(),
                None => match self.read_log(height).await {
                    Some(record) if record.block.digest() == digest => record.block,
                    _ => return,
                },
            };
            (digest, height) = (block.header.parent, block.header.height.saturating_sub(1));
            let encoded = block.encode();
            sent += encoded.len();
            self.fetch_reply(peer.clone(), encoded);
            if height == 0 || sent >= FETCH_REPLY_SIZE_MAX {
                return;
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
            Message::Broadcast { block, plan } => self.broadcast(block, plan),
            Message::Finalized { finalization } => {
                let block = finalization.proposal.payload;
                self.state.certify(*finalization);
                push_bounded(&mut self.finalizations, block);
                self.finalize();
            }
            Message::Observed(observed) => {
                let now = self.context.current();
                self.state.observe(observed, now);
            }
            Message::Submit { request, response } => {
                let encoded = request.encode();
                let result = self.state.submit(request);
                if result.is_ok() {
                    // Make the request reach whoever proposes next.
                    self.requests.0.send(Recipients::All, encoded, false);
                }
                response.send_lossy(result);
            }
            Message::Status { response } => {
                response.send_lossy(self.state.status());
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
                    // Heights below a snapshot this validator joined from are not held.
                    if let Some(block) = self.finalized_block(height).await {
                        blocks.push(block);
                    } else if height < self.log().start() {
                        height = self.log().start();
                        continue;
                    }
                    height += 1;
                }
                response.send_lossy(blocks);
            }
            Message::CertifiedHeader { height, response } => {
                let proof = self.certified_header(height).await;
                response.send_lossy(proof);
            }
        }
    }

    /// A finalized block's header and its own certificate, from memory or the log.
    async fn finalized_header(&mut self, height: u64) -> Option<(Header, Option<Finalization>)> {
        if let Some((header, finalization)) = self.state.finalized_header(height) {
            return Some((header.clone(), finalization.cloned()));
        }
        let record = self.read_log(height).await?;
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
        if waited < PROPOSE_IDLE_WAIT {
            match self.state.has_requests_to_propose(parent) {
                Ok(true) => {}
                Ok(false) => {
                    self.idle_proposals.push(waiting);
                    return;
                }
                Err(Lookup::Missing(digest)) => {
                    self.want(digest);
                    push_bounded(&mut self.proposals, waiting);
                    return;
                }
                // The parent is invalid or conflicts with finality: decline.
                Err(_) => return,
            }
        }
        let now_ns = self.now_ns();
        let context = block_context(&waiting.context);
        let proposal = match self.fault {
            Fault::None => self.state.propose(context, now_ns),
            fault => self.state.propose_faulty(context, now_ns, fault),
        };
        match proposal {
            Ok(block) => {
                // Answered once the block is on disk (see `persist`).
                self.vouches.push(Vouch::Proposed { response: waiting.response, block: block.digest() });
            }
            Err(Lookup::Missing(digest)) => {
                self.want(digest);
                push_bounded(&mut self.proposals, waiting);
            }
            // The parent is invalid or conflicts with finality: decline by dropping the response.
            Err(_) => {}
        }
    }

    fn verify(&mut self, waiting: WaitingVerification) {
        match self.state.verify(&block_context(&waiting.context), waiting.block, self.now_ns()) {
            Lookup::Ready => {
                // Answered once the block is on disk (see `persist`).
                self.vouches.push(Vouch::Verified { response: waiting.response, block: waiting.block });
            }
            Lookup::Invalid(_) => {
                waiting.response.send_lossy(false);
            }
            Lookup::Missing(digest) => {
                self.want(digest);
                push_bounded(&mut self.verifications, waiting);
            }
            // Retried on the next tick, once the local clock has moved.
            Lookup::Later => push_bounded(&mut self.verifications, waiting),
        }
    }

    fn finalize(&mut self) {
        // Before the targets are taken out of the list it reads.
        let catch_up = self.catch_up_target();
        for target in std::mem::take(&mut self.finalizations) {
            match self.state.finalize(target) {
                Ok(Finalized::Done { .. }) => {}
                Ok(Finalized::Missing(digest)) => {
                    if self.ancestors.len() < ANCESTORS_TRACKED_MAX {
                        self.ancestors.insert(digest);
                    }
                    // Walking a finalized chain down: ask for a run of ancestors at once. While a
                    // snapshot is awaited, ask one block at a time, and none below where the
                    // snapshot will pick up.
                    let height = self.state.expected_height(&digest);
                    match catch_up {
                        Some(target) if self.snapshot_will_cover(height, target) => {}
                        Some(_) => self.want(digest),
                        None => self.want_run(digest, height),
                    }
                    self.finalizations.push(target);
                }
                // Non-determinism or corruption must never be silent: halt this validator.
                Err(error) => panic!("validator halted: {error}"),
            }
        }
        if catch_up.is_none() {
            self.catch_up_since = None;
        }
    }

    fn broadcast(&mut self, digest: BlockDigest, plan: Plan) {
        let recipients = match plan {
            Plan::Prepare { .. } | Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
        };
        if let Some(block) = self.state.block(&digest) {
            self.blocks.0.send(recipients, block.encode(), false);
        }
    }

    /// Makes what the last message changed durable, then answers what waited for it: appends
    /// newly finalized blocks to the log and syncs it, then answers clients waiting for those
    /// outcomes; writes and syncs the blocks this validator just proposed or verified, then
    /// gives Simplex the verdicts. Writes a snapshot every `snapshot_interval` heights.
    async fn persist(&mut self) {
        let halt = |error: ChainError| -> ! { panic!("validator halted: {error}") };
        self.adopt_candidate().await.unwrap_or_else(|error| halt(error));
        let height = self.state.finalized_height();
        let log = self.log.as_mut().expect("opened before the loop");
        if log.len() != height {
            let records = self.state.unpersisted(log.len());
            log.append(&records).await.unwrap_or_else(|error| halt(error));
            self.state.persisted(height);
            let voted = self.voted.as_mut().expect("opened before the loop");
            voted.prune(height).await.unwrap_or_else(|error| halt(error));
            let snapshots = self.snapshots.as_mut().expect("opened before the loop");
            let latest = snapshots.latest().map_or(0, |latest| latest.height);
            if height >= latest + self.snapshot_interval {
                let state = self.state.finalized_state();
                snapshots.write(height, state.snapshot()).await.unwrap_or_else(|error| halt(error));
            }
        }
        if height != self.answered_height {
            self.answered_height = height;
            self.answer_waiters().await;
        }
        if self.vouches.is_empty() {
            return;
        }
        let voted = self.voted.as_mut().expect("opened before the loop");
        for vouch in &self.vouches {
            let (Vouch::Proposed { block, .. } | Vouch::Verified { block, .. }) = vouch;
            // A block pruned meanwhile was finalized or lost; either way the verdict stands.
            if let Some(block) = self.state.block(block).filter(|block| block.header.height > height) {
                voted.append(block).await.unwrap_or_else(|error| halt(error));
            }
        }
        voted.sync().await.unwrap_or_else(|error| halt(error));
        for vouch in std::mem::take(&mut self.vouches) {
            match vouch {
                Vouch::Proposed { response, block } => response.send_lossy(block),
                Vouch::Verified { response, .. } => response.send_lossy(true),
            };
        }
    }

    /// Once the state adopted a fetched snapshot, makes it this validator's own: writes it as
    /// its snapshot, then restarts the log above it (in this order, so that a crash between the
    /// two finds the snapshot and restarts the log on open). A snapshot the chain refused
    /// marks its peer.
    async fn adopt_candidate(&mut self) -> Result<(), ChainError> {
        let Some((bytes, peer, refused)) = self.candidate.take() else {
            return Ok(());
        };
        let base = self.state.history().base;
        if self.state.candidate_height().is_some() {
            // Still waiting for the chain to reach it.
            self.candidate = Some((bytes, peer, refused));
            return Ok(());
        }
        let log = self.log.as_mut().expect("opened before the loop");
        if base <= log.len() {
            // Refused, or overtaken by the chain: never adopted. Only a refusal marks the peer.
            if self.state.snapshots_refused() > refused {
                self.refused_peers.insert(peer);
            }
            return Ok(());
        }
        let snapshots = self.snapshots.as_mut().expect("opened before the loop");
        snapshots.write(base, bytes).await?;
        log.restart_above(base).await?;
        Ok(())
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
    /// over (a proposal waits at most one more turn of the loop, which wakes every
    /// `FETCH_RETRY`).
    fn propose_idle(&mut self) {
        for waiting in std::mem::take(&mut self.idle_proposals) {
            if !waiting.response.is_closed() {
                self.propose(waiting);
            }
        }
    }

    /// Retries waiting verifications every `FETCH_RETRY` even if no block arrives (a block
    /// whose timestamp was ahead of the local clock becomes judgeable as time passes).
    fn tick(&mut self) {
        let now = self.context.current();
        if self.verifications.is_empty() || now.duration_since(self.ticked).unwrap_or_default() < FETCH_RETRY {
            return;
        }
        self.ticked = now;
        self.retry();
    }

    /// Gossips held requests again, with backoff, every `GOSSIP_RETRY`.
    fn gossip_again(&mut self) {
        let now = self.context.current();
        if now.duration_since(self.gossiped).unwrap_or_default() < GOSSIP_RETRY {
            return;
        }
        self.gossiped = now;
        for request in self.state.requests_to_gossip_again(GOSSIP_RETRY_BYTES) {
            self.requests.0.send(Recipients::All, request.encode(), false);
        }
    }

    /// Sends a block a peer asked for, to that peer only.
    fn fetch_reply(&mut self, peer: ValidatorKey, block: bytes::Bytes) {
        self.blocks.0.send(Recipients::One(peer), block, false);
    }

    /// Keeps `wanted` within `WANTED_MAX` by forgetting the block asked for longest ago (one that
    /// may never come, such as a proposal a peer withheld), so that new wants are never refused.
    fn make_room_to_want(&mut self, digest: &BlockDigest) {
        if self.wanted.len() < WANTED_MAX || self.wanted.contains_key(digest) {
            return;
        }
        let oldest = self.wanted.iter().min_by_key(|(_, (asked, _, _))| *asked).map(|(digest, _)| *digest);
        if let Some(oldest) = oldest {
            self.wanted.remove(&oldest);
        }
    }

    /// Notes a missing block; `ask` requests it.
    fn want(&mut self, digest: BlockDigest) {
        let height = self.state.expected_height(&digest);
        if let Some(target) = self.catch_up_target()
            && self.snapshot_will_cover(height, target)
        {
            return;
        }
        self.make_room_to_want(&digest);
        let entry = self.wanted.entry(digest).or_insert((UNIX_EPOCH, height, false));
        // Learned since it was first wanted (a peer serves an old block only by height).
        if height > 0 {
            entry.1 = height;
        }
    }

    /// Notes a missing block of a finalized chain; `ask` requests it with a run of ancestors.
    fn want_run(&mut self, digest: BlockDigest, height: u64) {
        self.make_room_to_want(&digest);
        let entry = self.wanted.entry(digest).or_insert((UNIX_EPOCH, height, true));
        entry.2 = true;
        if height > 0 {
            entry.1 = height;
        }
    }

    /// Asks every peer for each missing block not asked for within `FETCH_RETRY`, except blocks
    /// a run asked for recently is bringing.
    fn ask(&mut self) {
        if self.wanted.is_empty() {
            return;
        }
        let now = self.context.current();
        let recent = |asked: SystemTime| now.duration_since(asked).unwrap_or_default() < FETCH_RETRY;
        self.runs.retain(|(_, _, asked)| recent(*asked));
        let due: Vec<(BlockDigest, u64, bool)> = self
            .wanted
            .iter()
            .filter(|(_, (asked, _, _))| !recent(*asked))
            .map(|(digest, (_, height, run))| (*digest, *height, *run))
            .collect();
        for (digest, height, run) in due {
            let coming = height > 0 && self.runs.iter().any(|(low, high, _)| (*low..=*high).contains(&height));
            if coming {
                continue;
            }
            let count = if run && height > 0 { FETCH_BATCH } else { 1 };
            self.fetch.0.send(Recipients::All, encode_fetch(digest, height, count), false);
            self.wanted.insert(digest, (now, height, run));
            if count > 1 {
                self.runs.push((height.saturating_sub(u64::from(count) - 1), height, now));
            }
        }
    }

    /// Starts fetching a snapshot when a finalized block is more than a snapshot interval ahead
    /// (peers have written one since this validator's finalized height), and keeps a fetch going: asks again for a chunk that did not come, and gives up
    /// on a peer after `SNAPSHOT_ATTEMPTS`.
    fn catch_up(&mut self) {
        let now = self.context.current();
        let since = |asked: SystemTime| now.duration_since(asked).unwrap_or_default();
        if let Some(download) = &mut self.download {
            if since(download.asked) < SNAPSHOT_RETRY {
                return;
            }
            download.attempts += 1;
            if download.attempts > SNAPSHOT_ATTEMPTS {
                // Given up (a slow or partitioned peer, or a snapshot it no longer holds); peers
                // are asked for offers again after `SNAPSHOT_RETRY`.
                self.download = None;
                self.offers_asked = now;
                return;
            } else {
                download.asked = now;
                let index = (download.bytes.len() / SNAPSHOT_CHUNK_SIZE) as u32;
                let message = SnapshotMessage::AskChunk { height: download.height, index };
                let peer = download.peer.clone();
                self.snapshot_link.0.send(Recipients::One(peer), message.encode(), false);
                return;
            }
        }
        if self.candidate.is_some() || since(self.offers_asked) < SNAPSHOT_RETRY {
            return;
        }
        if self.catch_up_target().is_some() {
            self.offers_asked = now;
            self.snapshot_link.0.send(Recipients::All, SnapshotMessage::AskOffer.encode(), false);
        }
    }

    /// Whether a block at `height` (0 if unknown) is below the snapshot being fetched, while this
    /// validator waits (up to `SNAPSHOT_WAIT`) for it to catch up to `target`: fetching the block
    /// would be wasted.
    fn snapshot_will_cover(&mut self, height: u64, target: u64) -> bool {
        let now = self.context.current();
        let since = *self.catch_up_since.get_or_insert(now);
        // Only once a peer offered a usable snapshot (none may have one yet).
        let coming = self.download.is_some() || self.candidate.is_some();
        let waiting = coming && now.duration_since(since).unwrap_or_default() < SNAPSHOT_WAIT;
        // A block of unknown height is a finalization Simplex reported (it reports the views it
        // learns of while catching up): one below the snapshot, most likely.
        waiting && (height == 0 || height + 2 * self.snapshot_interval < target)
    }

    /// The highest known finalized height, if it is more than a snapshot interval above this
    /// validator's: peers have written a snapshot since, and one is worth fetching.
    ///
    /// Only a validator with nothing finalized (an empty disk) catches up from a snapshot. One
    /// with a finalized chain walks the blocks down to it instead: a snapshot proves the chain
    /// above its own height, not that the chain extends this validator's finalized block, and
    /// beyond f faulty validators that could silently move it to a conflicting chain.
    fn catch_up_target(&self) -> Option<u64> {
        let finalized = self.state.finalized_height();
        if finalized > 0 {
            return None;
        }
        self.finalizations
            .iter()
            .filter_map(|target| self.state.block(target).map(|block| block.header.height))
            .max()
            .filter(|height| *height > finalized + self.snapshot_interval)
    }

    /// Answers or follows up a snapshot message from a peer.
    async fn snapshot_message(&mut self, peer: ValidatorKey, message: SnapshotMessage) {
        let snapshots = self.snapshots.as_ref().expect("opened before the loop");
        match message {
            SnapshotMessage::AskOffer => {
                let latest = snapshots.latest();
                let offer = SnapshotMessage::Offer {
                    height: latest.map_or(0, |latest| latest.height),
                    length: latest.map_or(0, |latest| latest.length),
                };
                self.snapshot_link.0.send(Recipients::One(peer), offer.encode(), false);
            }
            SnapshotMessage::AskChunk { height, index } => {
                if let Some(bytes) = snapshots.read_chunk(height, index).await {
                    let chunk = SnapshotMessage::Chunk { height, index, bytes: bytes.into() };
                    self.snapshot_link.0.send(Recipients::One(peer), chunk.encode(), false);
                }
            }
            SnapshotMessage::Offer { height, length } => {
                // Only while catching up, and only a snapshot below a block known to be
                // finalized (the block above it must exist to check it). A download under way
                // is replaced only before its first chunk.
                let below_target = self.catch_up_target().is_some_and(|target| height < target);
                let better =
                    self.download.as_ref().is_none_or(|download| download.bytes.is_empty() && height > download.height);
                let useful = below_target
                    && height > self.state.finalized_height()
                    && self.state.candidate_height().is_none_or(|candidate| height > candidate)
                    && self.candidate.is_none()
                    && length > 0
                    && length <= SNAPSHOT_SIZE_MAX;
                if better && useful && !self.refused_peers.contains(&peer) {
                    let ask = SnapshotMessage::AskChunk { height, index: 0 };
                    self.snapshot_link.0.send(Recipients::One(peer.clone()), ask.encode(), false);
                    let asked = self.context.current();
                    self.download = Some(Download { peer, height, length, bytes: Vec::new(), asked, attempts: 0 });
                }
            }
            SnapshotMessage::Chunk { height, index, bytes } => {
                let Some(download) = &mut self.download else {
                    return;
                };
                let expected = (download.bytes.len() / SNAPSHOT_CHUNK_SIZE) as u32;
                if download.peer != peer || download.height != height || index != expected {
                    return;
                }
                let whole = bytes.len() == SNAPSHOT_CHUNK_SIZE;
                download.bytes.extend_from_slice(&bytes);
                let received = download.bytes.len() as u64;
                if received > download.length || (received < download.length && !whole) {
                    // Not the snapshot it offered.
                    self.refused_peers.insert(peer);
                    self.download = None;
                    return;
                }
                if received < download.length {
                    download.asked = self.context.current();
                    download.attempts = 0;
                    let ask = SnapshotMessage::AskChunk { height, index: index + 1 };
                    self.snapshot_link.0.send(Recipients::One(peer), ask.encode(), false);
                    return;
                }
                let download = self.download.take().expect("matched above");
                match ChainState::restore(&download.bytes) {
                    Ok(state) if state.height() == height => {
                        let refused = self.state.snapshots_refused();
                        self.state.offer_candidate(state);
                        self.candidate = Some((download.bytes, peer, refused));
                        self.retry();
                    }
                    _ => {
                        self.refused_peers.insert(peer);
                    }
                }
            }
        }
    }

    /// Retries everything that waited for blocks.
    fn retry(&mut self) {
        for waiting in std::mem::take(&mut self.proposals) {
            if !waiting.response.is_closed() {
                self.propose(waiting);
            }
        }
        for waiting in std::mem::take(&mut self.verifications) {
            if !waiting.response.is_closed() {
                self.verify(waiting);
            }
        }
        self.finalize();
        if self.finalizations.is_empty() {
            self.ancestors.clear();
        }
        if self.proposals.is_empty() && self.verifications.is_empty() && self.finalizations.is_empty() {
            // Nothing waits for a block any more.
            self.wanted.clear();
        }
    }
}

/// A fetch: `digest (32) | expected height (8, 0 if unknown) | count (1)`.
fn encode_fetch(digest: BlockDigest, height: u64, count: u8) -> bytes::Bytes {
    let mut bytes = digest.encode().to_vec();
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.push(count);
    bytes.into()
}

fn decode_fetch(bytes: &[u8]) -> Option<(BlockDigest, u64, u8)> {
    if bytes.len() != 32 + 8 + 1 {
        return None;
    }
    let digest = BlockDigest::decode_cfg(bytes::Bytes::copy_from_slice(&bytes[..32]), &()).ok()?;
    let height = u64::from_be_bytes(bytes[32..40].try_into().ok()?);
    Some((digest, height, bytes[40]))
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() == WAITING_MAX {
        list.remove(0);
    }
    list.push(item);
}
