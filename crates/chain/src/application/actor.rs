//! The application actor: the async shell around `ApplicationState`. It only moves messages:
//! receive (from Simplex, clients, or peers), call the state, send what the state answers.
//!
//! Requests that cannot be answered yet (a proposal or verification whose parent block has not
//! arrived, a finalization whose blocks have not arrived) wait in bounded lists and are retried
//! each time a block arrives. Meanwhile the actor asks every peer for the missing block on the
//! fetch channel, again every `FETCH_RETRY` until it arrives; a peer that holds the block sends
//! it back on the block channel, where it is checked like any other block (its digest is
//! computed from its bytes, so a peer cannot answer with a different block).

use crate::application::fault::Fault;
use crate::application::ingress::{Mailbox, Message};
use crate::application::log::FinalizedLog;
use crate::application::state::{ApplicationState, Finalized, Lookup};
use crate::application::voted::VotedBlocks;
use crate::block::{Block, BlockDigest};
use crate::consensus::{ConsensusContext, Plan};
use crate::error::ChainError;
use crate::execution::RequestOutcome;
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use crate::request::{Request, RequestKey};
use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::Viewable as _;
use commonware_macros::select_loop;
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, ContextCell, Handle, Metrics, Spawner, Storage, spawn_cell};
use commonware_utils::channel::{fallible::OneshotExt as _, mpsc, oneshot};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most proposals or verifications waiting for blocks at once; the oldest are dropped
/// beyond it (consensus treats a dropped answer as a timeout, never as a vote).
const WAITING_MAX: usize = 256;

/// The most missing blocks asked for at once.
const WANTED_MAX: usize = 64;

/// How long to wait for a missing block before asking the peers again.
const FETCH_RETRY: Duration = Duration::from_millis(250);

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
pub struct Actor<E, B, S, R> {
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
    /// Missing blocks and when they were last asked for.
    wanted: BTreeMap<BlockDigest, SystemTime>,
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
    /// Verdicts to send once their blocks are synced.
    vouches: Vec<Vouch>,
    /// Clients waiting for requests to be finalized and durable.
    waiters: HashMap<RequestKey, Vec<oneshot::Sender<RequestOutcome>>>,
    waiting_clients: usize,
    /// The finalized height when waiters were last answered.
    answered_height: u64,
}

impl<E, B, S, R> std::fmt::Debug for Actor<E, B, S, R> {
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
        let ActorConfig { genesis, log_partition, voted_partition, fault, blocker } = config;
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
            wanted: BTreeMap::new(),
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
        // Rebuild the ledger from the finalized log before answering anything.
        let log_context = self.context.child("finalized_log");
        let (mut log, blocks) = FinalizedLog::open(log_context, self.log_partition.clone())
            .await
            .unwrap_or_else(|error| panic!("validator halted: {error}"));
        for block in blocks {
            self.state.restore(block).unwrap_or_else(|error| panic!("validator halted: {error}"));
        }
        // Blocks vouched for before a restart: Simplex may have notarized them, and peers may
        // need them from us.
        let voted_context = self.context.child("voted_blocks");
        let (mut voted, vouched) = VotedBlocks::open(voted_context, self.voted_partition.clone())
            .await
            .unwrap_or_else(|error| panic!("validator halted: {error}"));
        for block in vouched {
            // Finalized meanwhile, or beyond the pending bound: not needed.
            let _ = self.state.insert_block(block);
        }
        self.answered_height = self.state.finalized_height();
        select_loop! {
            self.context,
            on_stopped => {},
            Some(message) = self.mailbox.recv() else break => {
                self.handle(message);
            },
            Some(message) = self.clients.recv() else break => {
                self.handle(message);
            },
            Ok((peer, bytes)) = self.blocks.1.recv() else break => {
                // A malformed block is a faulty peer; an unwanted one (too old, too many
                // pending) is dropped.
                match Block::decode_cfg(bytes, &()) {
                    Ok(block) => {
                        if let Ok(digest) = self.state.insert_block(block) {
                            self.wanted.remove(&digest);
                            self.retry();
                        }
                    }
                    Err(_) => {
                        self.blocker.block(peer);
                    }
                }
            },
            Ok((peer, bytes)) = self.fetch.1.recv() else break => {
                match BlockDigest::decode_cfg(bytes, &()) {
                    Ok(digest) => {
                        if let Some(block) = self.state.block(&digest) {
                            self.fetch_reply(peer, block.encode());
                        }
                    }
                    Err(_) => {
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
                self.persist(&mut log, &mut voted).await;
                self.ask();
                self.gossip_again();
                self.tick();
            },
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Propose { context, response } => {
                let asked = self.context.current();
                self.propose(WaitingProposal { context, response, asked })
            }
            Message::Verify { context, block, response } => {
                self.verify(WaitingVerification { context, block, response })
            }
            Message::Broadcast { block, plan } => self.broadcast(block, plan),
            Message::Finalized { block } => {
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
                response.send_lossy(self.state.history().to_vec());
            }
            Message::Outcome { key, response } => {
                response.send_lossy(self.state.outcome(&key).cloned());
            }
            Message::WaitOutcome { key, response } => {
                // Outcomes in the state are durable: the actor persists before it reads the
                // next message.
                if self.waiting_clients >= WAITERS_MAX {
                    // Clients that gave up (an HTTP wait that timed out) leave closed waiters
                    // behind; forget them before refusing a new one.
                    self.forget_closed_waiters();
                }
                if let Some(outcome) = self.state.outcome(&key) {
                    response.send_lossy(outcome.clone());
                } else if self.waiting_clients < WAITERS_MAX {
                    self.waiting_clients += 1;
                    self.waiters.entry(key).or_default().push(response);
                }
                // Beyond the bound the response is dropped: the client asks again later.
            }
            Message::FinalizedState { response } => {
                response.send_lossy(self.state.finalized_state());
            }
            Message::Blocks { from_height, limit, response } => {
                response.send_lossy(self.state.finalized_blocks(from_height, limit));
            }
        }
    }

    fn propose(&mut self, waiting: WaitingProposal) {
        let parent = waiting.context.parent.1;
        let view = waiting.context.view().get();
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
        let proposal = match self.fault {
            Fault::None => self.state.propose(parent, view, now_ns),
            fault => self.state.propose_faulty(parent, view, now_ns, fault),
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
        let parent = waiting.context.parent.1;
        let view = waiting.context.view().get();
        match self.state.verify(parent, view, waiting.block, self.now_ns()) {
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
        for target in std::mem::take(&mut self.finalizations) {
            match self.state.finalize(target) {
                Ok(Finalized::Done { .. }) => {}
                Ok(Finalized::Missing(digest)) => {
                    self.want(digest);
                    self.finalizations.push(target);
                }
                // Non-determinism or corruption must never be silent: halt this validator.
                Err(error) => panic!("validator halted: {error}"),
            }
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
    /// gives Simplex the verdicts.
    async fn persist(&mut self, log: &mut FinalizedLog<E>, voted: &mut VotedBlocks<E>) {
        let halt = |error: ChainError| -> ! { panic!("validator halted: {error}") };
        let height = self.state.finalized_height();
        if log.len() != height {
            let blocks: Vec<Block> = self.state.history()[(log.len() + 1) as usize..=height as usize]
                .iter()
                .map(|entry| self.state.block(&entry.block).expect("finalized blocks are kept").clone())
                .collect();
            log.append(&blocks).await.unwrap_or_else(|error| halt(error));
            voted.prune(height).await.unwrap_or_else(|error| halt(error));
        }
        if height != self.answered_height {
            self.answered_height = height;
            self.answer_waiters();
        }
        if self.vouches.is_empty() {
            return;
        }
        for vouch in &self.vouches {
            let (Vouch::Proposed { block, .. } | Vouch::Verified { block, .. }) = vouch;
            // A block pruned meanwhile was finalized or lost; either way the verdict stands.
            if let Some(block) = self.state.block(block).filter(|block| block.height > height) {
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

    fn forget_closed_waiters(&mut self) {
        self.waiters.retain(|_, responses| {
            responses.retain(|response| !response.is_closed());
            !responses.is_empty()
        });
        self.waiting_clients = self.waiters.values().map(Vec::len).sum();
    }

    /// Answers the clients whose requests are now finalized (and durable), and forgets those
    /// that stopped waiting.
    fn answer_waiters(&mut self) {
        for (key, responses) in &mut self.waiters {
            if let Some(outcome) = self.state.outcome(key) {
                for response in responses.drain(..) {
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

    /// Notes a missing block; `ask` requests it.
    fn want(&mut self, digest: BlockDigest) {
        if self.wanted.len() < WANTED_MAX {
            self.wanted.entry(digest).or_insert(UNIX_EPOCH);
        }
    }

    /// Asks every peer for each missing block not asked for within `FETCH_RETRY`.
    fn ask(&mut self) {
        if self.wanted.is_empty() {
            return;
        }
        let now = self.context.current();
        let due: Vec<BlockDigest> = self
            .wanted
            .iter()
            .filter(|(_, asked)| now.duration_since(**asked).unwrap_or_default() >= FETCH_RETRY)
            .map(|(digest, _)| *digest)
            .collect();
        for digest in due {
            self.fetch.0.send(Recipients::All, digest.encode(), false);
            self.wanted.insert(digest, now);
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
        if self.proposals.is_empty() && self.verifications.is_empty() && self.finalizations.is_empty() {
            // Nothing waits for a block any more.
            self.wanted.clear();
        }
    }
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() == WAITING_MAX {
        list.remove(0);
    }
    list.push(item);
}
