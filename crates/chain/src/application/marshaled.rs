//! Tally's side of marshal (see `ordering.rs`): the application Simplex reaches through
//! marshal's inline wrapper, and the receiver of the finalized blocks marshal delivers.
//!
//! Marshal hands a proposal or a verification the ancestry it fetched: the block (when verifying)
//! then its parent, grandparent and so on, fetched from peers as they are read. The actor's
//! state executes pending blocks on top of its finalized block; when it lacks one (`Missing`),
//! this reads the ancestry down to that block and gives it to the actor, until the state can
//! judge. A validator too far behind to hold the whole path (more than `PENDING_BLOCKS_MAX`
//! blocks) waits, without voting, until the blocks marshal delivers bring its finalized block
//! close enough.
//!
//! `Marshaled` implements Commonware's `Application`; a [`BlockApplication`] is any application
//! of that shape, so that `validator::start_with` can hand marshal a wrapper around the honest
//! one (a test's proposer that corrupts the blocks it builds, say).

use crate::application::ingress::{Built, Judged, Message};
use crate::block::Block;
use crate::consensus::{ConsensusContext, Scheme};
use crate::constants::PENDING_BLOCKS_MAX;
use crate::ordering::Delivery;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::{Application, Reporter};
use commonware_cryptography::{Digested, Digestible as _};
use commonware_runtime::Clock;
use commonware_utils::channel::{fallible::FallibleExt as _, mpsc, oneshot};
use futures::StreamExt as _;
use std::time::Duration;

/// How long to wait before asking again when the state holds as many pending blocks as it may.
const FULL_RETRY: Duration = Duration::from_millis(250);

/// An application marshal's inline wrapper can drive for Simplex: it builds and verifies
/// Tally's blocks in Simplex's rounds. `Marshaled` is the honest one.
pub trait BlockApplication<E>:
    Application<E, SigningScheme = Scheme, Context = ConsensusContext, Block = Block, Input = ()>
{
}

impl<E, A> BlockApplication<E> for A where
    A: Application<E, SigningScheme = Scheme, Context = ConsensusContext, Block = Block, Input = ()>
{
}

/// The handle marshal holds: it forwards to the application actor.
#[derive(Debug, Clone)]
pub struct Marshaled {
    sender: mpsc::UnboundedSender<Message>,
}

impl Marshaled {
    pub(crate) fn new(sender: mpsc::UnboundedSender<Message>) -> Self {
        Self { sender }
    }

    async fn ask<T>(&self, message: impl FnOnce(oneshot::Sender<T>) -> Message) -> Option<T> {
        let (response, receiver) = oneshot::channel();
        if !self.sender.send_lossy(message(response)) {
            return None;
        }
        receiver.await.ok()
    }

    /// Gives the actor the ancestors down to `missing` from `ancestry`. `false` if the ancestry
    /// ends first, or the block cannot be held (it conflicts with the finalized chain, or the
    /// state is full: the caller retries).
    async fn supply(&self, ancestry: &mut impl Ancestry<Block>, missing: crate::block::BlockDigest) -> Supplied {
        while let Some(block) = ancestry.next().await {
            if block.digest() != missing {
                // An ancestor the state already holds (the stream starts above it).
                continue;
            }
            let block = block.inner().clone();
            return match self.ask(|response| Message::Ancestor { block, response }).await {
                Some(Ok(())) => Supplied::Given,
                Some(Err(crate::error::ChainError::TooManyPendingBlocks)) => Supplied::Full,
                Some(Err(_)) => Supplied::Refused,
                None => Supplied::Stopped,
            };
        }
        Supplied::Refused
    }
}

enum Supplied {
    Given,
    Full,
    Refused,
    Stopped,
}

impl<E: Clock + Send + Sync + 'static> Application<E> for Marshaled {
    type SigningScheme = Scheme;
    type Context = ConsensusContext;
    type Block = Block;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, context): (E, ConsensusContext),
        mut ancestry: impl Ancestry<Block>,
        _: (),
    ) -> Option<Digested<Block>> {
        let mut supplied = 0;
        loop {
            let context = context.clone();
            match self.ask(|response| Message::Propose { context, response }).await? {
                Built::Block(block) => {
                    let digest = block.digest();
                    return Some(Digested::precomputed(block, digest));
                }
                Built::Declined => return None,
                Built::Missing(digest) => {
                    supplied += 1;
                    if supplied > PENDING_BLOCKS_MAX {
                        return None;
                    }
                    match self.supply(&mut ancestry, digest).await {
                        Supplied::Given => {}
                        Supplied::Full => runtime.sleep(FULL_RETRY).await,
                        Supplied::Refused | Supplied::Stopped => return None,
                    }
                }
            }
        }
    }

    async fn verify(&mut self, (runtime, context): (E, ConsensusContext), mut ancestry: impl Ancestry<Block>) -> bool {
        // The first block of the ancestry is the one to judge.
        let Some(block) = ancestry.next().await else {
            return std::future::pending().await;
        };
        let block = block.inner().clone();
        loop {
            let (context, block) = (context.clone(), block.clone());
            let Some(judged) = self.ask(|response| Message::Verify { context, block, response }).await else {
                // Stopped (halted or shutting down): abstain.
                return std::future::pending().await;
            };
            match judged {
                Judged::Valid => return true,
                Judged::Invalid => return false,
                Judged::Full => runtime.sleep(FULL_RETRY).await,
                Judged::Missing(digest) => match self.supply(&mut ancestry, digest).await {
                    Supplied::Given => {}
                    Supplied::Full => runtime.sleep(FULL_RETRY).await,
                    // The block's chain does not reach the finalized block.
                    Supplied::Refused => return false,
                    Supplied::Stopped => return std::future::pending().await,
                },
            }
        }
    }
}

/// Finalized blocks, in height order, and the finalized tip.
impl Reporter for Marshaled {
    type Activity = Delivery;

    fn report(&mut self, activity: Delivery) -> commonware_actor::Feedback {
        let message = match activity {
            Delivery::Tip(_, height, _) => Message::Tip { height: height.get() },
            Delivery::Block(block, ack) => Message::Delivered { block: block.inner().clone(), ack },
        };
        if self.sender.send_lossy(message) {
            commonware_actor::Feedback::Ok
        } else {
            commonware_actor::Feedback::Closed
        }
    }
}
