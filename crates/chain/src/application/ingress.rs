//! Messages into the application actor, and the mailbox that clients (and Simplex's reporter)
//! hold.
//!
//! Simplex reaches the application through marshal's inline wrapper (`marshaled.rs`): proposals,
//! verifications and the ancestors they need arrive as messages here, and so do the finalized
//! blocks marshal delivers. The mailbox itself is a Simplex `Reporter`: every activity feeds the
//! status page, evidence of misbehaviour is checked and kept, and finalization certificates
//! are kept in the finalized log.

use crate::application::activity::Observed;
use crate::application::snapshot_fetch::HashList;
use crate::application::state::{FinalizedBlock, History, Status};
use crate::block::{Block, BlockDigest};
use crate::certified::CertifiedHeader;
use crate::consensus::{Activity, ConsensusContext, Finalization};
use crate::error::ChainError;
use crate::evidence::Evidence;
use crate::execution::{ChainState, RequestOutcome};
use crate::receipt::OutcomeReceipt;
use crate::request::{RequestKey, VerifiedRequest};
use commonware_consensus::Reporter;
use commonware_utils::acknowledgement::Exact;
use commonware_utils::channel::{fallible::FallibleExt as _, mpsc, oneshot};
use std::sync::Arc;

/// What a proposal came to.
#[derive(Debug)]
pub enum Built {
    Block(Block),
    /// The parent's chain lacks this block.
    Missing(BlockDigest),
    /// The parent cannot be built on (it broke a rule, or conflicts with the finalized chain).
    Declined,
}

/// What a verification came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    Valid,
    Invalid,
    /// The block's chain lacks this block.
    Missing(BlockDigest),
    /// The state holds as many pending blocks as it may: ask again later.
    Full,
}

/// A request to the application actor.
pub enum Message {
    Propose {
        context: ConsensusContext,
        response: oneshot::Sender<Built>,
    },
    Verify {
        context: ConsensusContext,
        block: Block,
        response: oneshot::Sender<Judged>,
    },
    /// An ancestor a proposal or verification needs, read from marshal's ancestry.
    Ancestor {
        block: Block,
        response: oneshot::Sender<Result<(), ChainError>>,
    },
    /// The next finalized block, from marshal; `ack` once its outcomes are durable.
    Delivered {
        block: Block,
        ack: Exact,
    },
    /// The highest finalized height marshal knows of.
    Tip {
        height: u64,
    },
    Finalized {
        finalization: Box<Finalization>,
    },
    Observed(Observed),
    /// Evidence of misbehaviour Simplex reported (its signatures not yet checked).
    Reported(Box<Evidence>),
    /// The evidence kept.
    Evidence {
        response: oneshot::Sender<Vec<Evidence>>,
    },
    Submit {
        request: VerifiedRequest,
        response: oneshot::Sender<Result<(), ChainError>>,
    },
    Status {
        response: oneshot::Sender<Status>,
    },
    History {
        response: oneshot::Sender<History>,
    },
    Outcome {
        key: RequestKey,
        response: oneshot::Sender<Result<Option<RequestOutcome>, ChainError>>,
    },
    WaitOutcome {
        key: RequestKey,
        response: oneshot::Sender<RequestOutcome>,
    },
    FinalizedState {
        response: oneshot::Sender<Arc<ChainState>>,
    },
    Blocks {
        from_height: u64,
        limit: usize,
        response: oneshot::Sender<Vec<FinalizedBlock>>,
    },
    CertifiedHeader {
        height: u64,
        response: oneshot::Sender<Option<CertifiedHeader>>,
    },
    Receipt {
        key: RequestKey,
        response: oneshot::Sender<Result<Option<OutcomeReceipt>, ChainError>>,
    },
    /// The newest snapshot a backup can be taken of (see [`BackupSource`]).
    Backup {
        response: oneshot::Sender<Option<BackupSource>>,
    },
    SnapshotChunk {
        height: u64,
        index: u32,
        response: oneshot::Sender<Option<Vec<u8>>>,
    },
}

/// A snapshot this validator holds, with what proves it: the hash of each chunk and the
/// certified header of the block above (with its own certificate), as a peer's offer carries.
#[derive(Debug, Clone)]
pub struct BackupSource {
    pub height: u64,
    pub list: HashList,
    pub above: CertifiedHeader,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Propose { context, .. } => write!(f, "Propose({context:?})"),
            Self::Verify { context, block, .. } => write!(f, "Verify({context:?}, {})", block.digest()),
            Self::Ancestor { block, .. } => write!(f, "Ancestor({})", block.digest()),
            Self::Delivered { block, .. } => write!(f, "Delivered({}, {})", block.header.height, block.digest()),
            Self::Tip { height } => write!(f, "Tip({height})"),
            Self::Finalized { finalization } => write!(f, "Finalized({})", finalization.proposal.payload),
            Self::Observed(observed) => write!(f, "Observed({observed:?})"),
            Self::Reported(evidence) => write!(f, "Reported({}, {})", evidence.kind().name(), evidence.view()),
            Self::Evidence { .. } => write!(f, "Evidence"),
            Self::Submit { request, .. } => write!(f, "Submit({})", request.id()),
            Self::Status { .. } => write!(f, "Status"),
            Self::History { .. } => write!(f, "History"),
            Self::Outcome { key, .. } => write!(f, "Outcome({})", key.id),
            Self::WaitOutcome { key, .. } => write!(f, "WaitOutcome({})", key.id),
            Self::FinalizedState { .. } => write!(f, "FinalizedState"),
            Self::Blocks { from_height, limit, .. } => write!(f, "Blocks({from_height}, {limit})"),
            Self::CertifiedHeader { height, .. } => write!(f, "CertifiedHeader({height})"),
            Self::Receipt { key, .. } => write!(f, "Receipt({})", key.id),
            Self::Backup { .. } => write!(f, "Backup"),
            Self::SnapshotChunk { height, index, .. } => write!(f, "SnapshotChunk({height}, {index})"),
        }
    }
}

/// The handle to a validator's application actor: the consensus side is unbounded (Simplex and
/// marshal bound their own requests), the clients' side is bounded.
#[derive(Debug, Clone)]
pub struct Mailbox {
    sender: mpsc::UnboundedSender<Message>,
    clients: mpsc::Sender<Message>,
}

impl Mailbox {
    pub(crate) fn new(sender: mpsc::UnboundedSender<Message>, clients: mpsc::Sender<Message>) -> Self {
        Self { sender, clients }
    }

    /// The handle marshal holds (proposals, verifications, finalized blocks).
    pub fn marshaled(&self) -> crate::application::marshaled::Marshaled {
        crate::application::marshaled::Marshaled::new(self.sender.clone())
    }

    /// Queues a client message, or `false` if the queue is full or the actor stopped.
    fn send_client(&self, message: Message) -> bool {
        self.clients.try_send(message).is_ok()
    }

    /// Submits a client request, its signature checked by the caller (`Request::verify`).
    /// `Err(Busy)` asks the client to retry later (the mempool or the queue in front of it is
    /// full, or the validator stopped).
    pub async fn submit(&self, request: VerifiedRequest) -> Result<(), ChainError> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::Submit { request, response }) {
            return Err(ChainError::Busy);
        }
        receiver.await.unwrap_or(Err(ChainError::Busy))
    }

    /// The validator's progress, or `None` if it stopped or is too busy to answer.
    pub async fn status(&self) -> Option<Status> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::Status { response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// The finalized chain by height, from the validator's base (genesis, or the snapshot it
    /// started from): each block and the state digest after it.
    pub async fn history(&self) -> Option<History> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::History { response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// What happened to a request: `Ok(None)` if it is not finalized (yet), `Err(Busy)` if the
    /// validator is too busy to answer or stopped, `Err(OutcomeNotHeld)` if it was finalized
    /// below the history this validator holds.
    pub async fn outcome(&self, key: RequestKey) -> Result<Option<RequestOutcome>, ChainError> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::Outcome { key, response }) {
            return Err(ChainError::Busy);
        }
        receiver.await.unwrap_or(Err(ChainError::Busy))
    }

    /// Waits until a request is finalized and its block is on disk, then answers its outcome.
    /// `None` if the validator stopped, or holds too many waiters to take another (ask
    /// [`Self::outcome`] later). Callers bound the wait with a timeout of their own.
    pub async fn wait_outcome(&self, key: RequestKey) -> Option<RequestOutcome> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::WaitOutcome { key, response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// The state after the last finalized block, to read the ledger from. It is immutable:
    /// later blocks make a new state.
    pub async fn finalized_state(&self) -> Option<Arc<ChainState>> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::FinalizedState { response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// The header of the finalized block at `height` with the certificate that proves it (see
    /// `certified.rs`): `Some(None)` if this validator cannot prove it (the height is not
    /// finalized here, is below the history it holds, or is genesis), `None` if the actor is
    /// busy or stopped.
    pub async fn certified_header(&self, height: u64) -> Option<Option<CertifiedHeader>> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::CertifiedHeader { height, response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// The receipt of a request's outcome (see `receipt.rs`): `Ok(None)` while it cannot be
    /// proven yet (the request is not finalized, or the block above it not yet), `Err(Busy)` if
    /// the validator is too busy to answer or stopped, `Err(OutcomeNotHeld)` or
    /// `Err(OutcomeRepairing)` as for [`Self::outcome`].
    pub async fn receipt(&self, key: RequestKey) -> Result<Option<OutcomeReceipt>, ChainError> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::Receipt { key, response }) {
            return Err(ChainError::Busy);
        }
        receiver.await.unwrap_or(Err(ChainError::Busy))
    }

    /// The evidence of misbehaviour this validator keeps, oldest first (each piece verified
    /// against the genesis); `None` if the validator is too busy to answer or stopped.
    pub async fn evidence(&self) -> Option<Vec<Evidence>> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::Evidence { response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// The newest snapshot a backup can be taken of: `Some(None)` if there is none yet (no
    /// snapshot written, or the block above the newest not yet certified), `None` if the actor
    /// is busy or stopped. The first call for a snapshot reads it whole once, to hash its chunks.
    pub async fn backup(&self) -> Option<Option<BackupSource>> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::Backup { response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// Chunk `index` (`SNAPSHOT_CHUNK_SIZE` bytes, the last one shorter) of the snapshot at
    /// `height`: `Some(None)` if that snapshot is no longer held (a newer one replaced it) or
    /// has no such chunk, `None` if the actor is busy or stopped.
    pub async fn snapshot_chunk(&self, height: u64, index: u32) -> Option<Option<Vec<u8>>> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::SnapshotChunk { height, index, response }) {
            return None;
        }
        receiver.await.ok()
    }

    /// Up to `limit` finalized blocks from `from_height` up, in height order.
    pub async fn blocks(&self, from_height: u64, limit: usize) -> Option<Vec<FinalizedBlock>> {
        let (response, receiver) = oneshot::channel();
        if !self.send_client(Message::Blocks { from_height, limit, response }) {
            return None;
        }
        receiver.await.ok()
    }
}

impl Reporter for Mailbox {
    type Activity = Activity;

    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        let observed = match &activity {
            // Counted once the actor has checked its signatures.
            Activity::ConflictingNotarize(_) | Activity::ConflictingFinalize(_) | Activity::NullifyFinalize(_) => {
                let evidence = Evidence::from_activity(activity).expect("an evidence activity");
                return if self.sender.send_lossy(Message::Reported(Box::new(evidence))) {
                    commonware_actor::Feedback::Ok
                } else {
                    commonware_actor::Feedback::Closed
                };
            }
            _ => self.sender.send_lossy(Message::Observed(Observed::from_activity(&activity))),
        };
        let Activity::Finalization(finalization) = activity else {
            return if observed { commonware_actor::Feedback::Ok } else { commonware_actor::Feedback::Closed };
        };
        if self.sender.send_lossy(Message::Finalized { finalization: Box::new(finalization) }) {
            commonware_actor::Feedback::Ok
        } else {
            commonware_actor::Feedback::Closed
        }
    }
}
