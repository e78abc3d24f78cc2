//! Ordered delivery of finalized blocks, by Commonware's marshal (standard mode).
//!
//! Marshal does for Tally what the application once did by hand:
//! - it disseminates proposed blocks (`commonware_broadcast::buffered`, on the blocks channel)
//!   and keeps the blocks this validator proposed or verified durable before it votes to
//!   finalize them;
//! - it stores every finalized block and the finalization certificates Simplex reports, by
//!   height, in immutable archives;
//! - it backfills what this validator lacks from its peers (`commonware_resolver`, on the
//!   backfill channel): blocks a proposal or verification needs, and finalized heights below a
//!   certificate it learned of, one peer at a time with retries, blocking peers that answer with
//!   blocks that do not match;
//! - it hands the application each finalized block once, in height order, and waits for an
//!   acknowledgement (given once the block's outcomes are in the finalized log) before it
//!   counts the block as processed; after a restart it delivers again from there;
//! - a validator that adopted a peer's snapshot installs a floor (a finalization certificate of
//!   the snapshot's block), and marshal delivers from there instead of from genesis.
//!
//! Tally's side is `application::marshaled`: building and checking blocks on the ancestry
//! marshal fetches, and executing the blocks it delivers. The Commonware types are named here so
//! that the rest of the crate reads as Tally.

use crate::block::{Block, BlockDigest};
use crate::consensus::{Finalization, MAILBOX_SIZE, PAGE_CACHE_PAGES, PAGE_SIZE, Scheme};
use crate::error::ChainError;
use crate::keys::ValidatorKey;
use commonware_broadcast::buffered;
use commonware_consensus::marshal::{self, Update, core, standard::Standard};
use commonware_consensus::types::{Epoch, FixedEpocher, ViewDelta};
use commonware_cryptography::certificate::ConstantProvider;
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_storage::archive::immutable;
use commonware_utils::{NZDuration, NZU16, NZU64, NZUsize};
use rand_core::CryptoRng;
use std::num::NonZeroU64;
use std::time::Duration;

/// Marshal's variant: whole blocks, their digest is the commitment.
pub type Variant = Standard<Block>;
/// The handle to a validator's marshal.
pub type Marshal = core::Mailbox<Scheme, Variant>;
/// What marshal delivers: a finalized tip as soon as it is known, and each finalized block in
/// order with an acknowledgement.
pub type Delivery = Update<Block>;
/// Signing schemes by epoch: Tally has one epoch and one validator set (its genesis).
pub type Provider = ConstantProvider<Scheme, Epoch>;
/// Where blocks are in the epochs: one epoch that never ends.
pub type Epochs = FixedEpocher;
/// The buffered broadcast of blocks.
pub type BlockBuffer = buffered::Mailbox<ValidatorKey, Block>;

/// The one epoch: every height a `u64` can name.
pub fn epochs() -> Epochs {
    FixedEpocher::new(NonZeroU64::MAX)
}

/// Blocks each peer may have in the broadcast buffer at once.
const BUFFERED_BLOCKS_PER_PEER: usize = 16;

/// Finalized blocks delivered and not yet acknowledged, at most.
const PENDING_ACKS_MAX: usize = 32;

/// Missing finalized heights fetched from peers at once.
const REPAIR_MAX: usize = 32;

/// Views of notarized blocks kept below the last processed finalization (for peers).
const VIEW_RETENTION: u64 = 64;

/// How long one backfill fetch waits for a peer before asking another.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
const FETCH_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Items per section of marshal's archives.
const ITEMS_PER_SECTION: u64 = 1_024;
const ARCHIVE_BUFFER: usize = 1024 * 1024;

fn storage(what: &str) -> impl FnOnce(commonware_storage::archive::Error) -> ChainError + '_ {
    move |error| ChainError::Storage(format!("marshal's {what}: {error}"))
}

fn archive_config<C>(prefix: &str, name: &str, codec_config: C, page_cache: &CacheRef) -> immutable::Config<C> {
    let partition = |part: &str| format!("{prefix}-{name}-{part}");
    immutable::Config {
        metadata_partition: partition("metadata"),
        freezer_table_partition: partition("freezer-table"),
        freezer_table_initial_size: 65_536,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 16_384,
        freezer_key_partition: partition("freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: partition("freezer-value"),
        freezer_value_target_size: 1024 * 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: partition("ordinal"),
        items_per_section: NZU64!(ITEMS_PER_SECTION),
        codec_config,
        replay_buffer: NZUsize!(ARCHIVE_BUFFER),
        freezer_key_write_buffer: NZUsize!(ARCHIVE_BUFFER),
        freezer_value_write_buffer: NZUsize!(ARCHIVE_BUFFER),
        ordinal_write_buffer: NZUsize!(ARCHIVE_BUFFER),
    }
}

/// A validator's marshal, opened and not yet started.
pub struct Opened<E>
where
    E: CryptoRng + Spawner + Metrics + Clock + Storage,
{
    actor: core::Actor<
        E,
        Variant,
        Provider,
        immutable::Archive<E, BlockDigest, Finalization>,
        immutable::Archive<E, BlockDigest, std::sync::Arc<Block>>,
        Epochs,
        Sequential,
    >,
    pub mailbox: Marshal,
    /// The height marshal last counted as processed (acknowledged), if any.
    pub processed: Option<u64>,
}

impl<E> std::fmt::Debug for Opened<E>
where
    E: CryptoRng + Spawner + Metrics + Clock + Storage,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("processed", &self.processed).finish_non_exhaustive()
    }
}

/// Opens marshal's archives under `partition` (blocks and certificates from `genesis` on).
pub async fn open<E>(context: E, partition: &str, scheme: Scheme, genesis: Block) -> Result<Opened<E>, ChainError>
where
    E: CryptoRng + Spawner + Metrics + Clock + Storage,
{
    let page_cache = CacheRef::new(NZU16!(PAGE_SIZE), NZUsize!(PAGE_CACHE_PAGES));
    let certificate_codec =
        <Scheme as commonware_cryptography::certificate::Verifier>::certificate_codec_config(&scheme);
    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        archive_config(partition, "finalizations", certificate_codec, &page_cache),
    )
    .await
    .map_err(storage("finalization archive"))?;
    let blocks =
        immutable::Archive::init(context.child("blocks"), archive_config(partition, "blocks", (), &page_cache))
            .await
            .map_err(storage("block archive"))?;
    let config = marshal::Config {
        provider: ConstantProvider::new(scheme),
        epocher: epochs(),
        start: marshal::Start::Genesis(commonware_cryptography::Digested::precomputed(
            std::sync::Arc::new(genesis.clone()),
            genesis.digest(),
        )),
        partition_prefix: partition.to_string(),
        mailbox_size: NZUsize!(MAILBOX_SIZE),
        view_retention: ViewDelta::new(VIEW_RETENTION),
        prunable_items_per_section: NZU64!(ITEMS_PER_SECTION),
        page_cache,
        replay_buffer: NZUsize!(ARCHIVE_BUFFER),
        key_write_buffer: NZUsize!(ARCHIVE_BUFFER),
        value_write_buffer: NZUsize!(ARCHIVE_BUFFER),
        block_codec_config: (),
        max_repair: NZUsize!(REPAIR_MAX),
        max_pending_acks: NZUsize!(PENDING_ACKS_MAX),
        strategy: Sequential,
    };
    let (actor, mailbox, floor) = core::Actor::init(context, finalizations, blocks, config).await;
    let processed = floor.processed().map(|processed| processed.height().get());
    Ok(Opened { actor, mailbox, processed })
}

impl<E> Opened<E>
where
    E: CryptoRng + Spawner + Metrics + Clock + Storage,
{
    /// Starts marshal with its block broadcast (on `blocks`) and backfill (on `backfill`),
    /// delivering finalized blocks to `application`.
    #[allow(clippy::too_many_arguments)]
    pub fn start<P, B, S, R, A>(
        self,
        context: E,
        me: ValidatorKey,
        peers: P,
        blocker: B,
        blocks: (S, R),
        backfill: (S, R),
        application: A,
    ) -> (BlockBuffer, commonware_runtime::Handle<()>)
    where
        P: commonware_p2p::Provider<PublicKey = ValidatorKey>,
        B: commonware_p2p::Blocker<PublicKey = ValidatorKey>,
        S: commonware_p2p::Sender<PublicKey = ValidatorKey>,
        R: commonware_p2p::Receiver<PublicKey = ValidatorKey>,
        A: commonware_consensus::Reporter<Activity = Delivery>,
    {
        let (engine, buffer) = buffered::Engine::new(
            context.child("block_broadcast"),
            buffered::Config {
                public_key: me.clone(),
                mailbox_size: NZUsize!(MAILBOX_SIZE),
                deque_size: BUFFERED_BLOCKS_PER_PEER,
                priority: false,
                codec_config: (),
                peer_provider: peers.clone(),
                strategy: Sequential,
            },
        );
        engine.start(blocks);
        let resolver = marshal::resolver::p2p::init(
            context.child("backfill"),
            marshal::resolver::p2p::Config {
                public_key: me,
                peer_provider: peers,
                blocker,
                mailbox_size: NZUsize!(MAILBOX_SIZE),
                fetch_timeout: NZDuration!(FETCH_TIMEOUT),
                fetch_retry_delay: FETCH_RETRY_DELAY,
                priority_requests: false,
                priority_responses: false,
            },
            backfill,
        );
        let handle = self.actor.start(application, buffer.clone(), resolver);
        (buffer, handle)
    }
}
