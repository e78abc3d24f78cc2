//! A validator on an empty disk fetches a peer's snapshot from several peers at once, checking
//! each chunk against the chunk-hash list its peers vouch for, while one peer sends altered
//! chunks: the lying peer is blocked, its chunks are asked of the others, and the sync completes.
//!
//! The lying peer is an honest validator whose snapshot-channel sender is wrapped here (the
//! bytes of each chunk it sends are altered on the way out): no faulty code in the validator.
//!
//! A failure prints its seed; `TALLY_SEED=<seed> cargo test -p tally-chain --test snapshot_sync`
//! replays it.

mod support;

use commonware_actor::{Feedback, Unreliable};
use commonware_p2p::simulated::{self, Link};
use commonware_p2p::{CheckedSender, LimitedSender, Recipients};
use commonware_runtime::{Clock as _, IoBufs, Runner as _, deterministic};
use commonware_utils::probability;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use support::SimulatedSender;
use tally_chain::application::snapshots::{SNAPSHOT_CHUNK_SIZE, SnapshotMessage};
use tally_chain::consensus::ConsensusConfig;
use tally_chain::keys::{ClientSigner, ValidatorKey, ValidatorSigner, public_key, signer_from_seed};
use tally_chain::validator::{Validator, channel};
use tally_chain::{ChainError, Genesis, Mailbox, Request};
use tally_ledger::{Account, Transfer};

/// An expiry ahead of every block timestamp here: simulated time starts at 1970, and a test
/// submits its requests in its first 590 simulated seconds (a block at time 0 may include them).
const EXPIRES_NS: u64 = 590_000_000_000;

const CHAIN_ID: u64 = 11;
const VALIDATORS: u64 = 4;
const SNAPSHOT_INTERVAL: u64 = 16;
/// Requests of `TRANSFERS_PER_REQUEST` transfers (128 bytes each in a snapshot) that make the
/// state span several snapshot chunks.
const BIG_REQUESTS: u128 = 6;
const TRANSFERS_PER_REQUEST: u128 = 8_000;
const ACCOUNTS: u128 = 8;
/// The validator that alters the chunks it sends, and the one that joins on an empty disk.
const LIAR: usize = 2;
const JOINER: usize = 3;

fn seed() -> u64 {
    support::seed(5)
}

/// What one validator's snapshot channel sent: chunks per recipient.
#[derive(Clone, Default)]
struct Tap {
    /// Alter the bytes of every chunk sent.
    alter: bool,
    chunks_sent: Arc<Mutex<BTreeMap<ValidatorKey, u32>>>,
}

/// A link's sender, watched (and, for a lying validator, altered) on the snapshot channel.
#[derive(Clone)]
struct TappedSender {
    inner: SimulatedSender,
    /// Only on the snapshot channel.
    tap: Option<Tap>,
}

struct TappedChecked<'a> {
    inner: <SimulatedSender as LimitedSender>::Checked<'a>,
    tap: Option<Tap>,
}

impl LimitedSender for TappedSender {
    type PublicKey = ValidatorKey;
    type Checked<'a> = TappedChecked<'a>;

    fn check(&mut self, recipients: Recipients<ValidatorKey>) -> Result<TappedChecked<'_>, SystemTime> {
        let tap = self.tap.clone();
        Ok(TappedChecked { inner: self.inner.check(recipients)?, tap })
    }
}

impl CheckedSender for TappedChecked<'_> {
    type PublicKey = ValidatorKey;

    fn recipients(&self) -> Vec<ValidatorKey> {
        self.inner.recipients()
    }

    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        let Some(tap) = self.tap else {
            return self.inner.send(message, priority);
        };
        let bytes = bytes::Bytes::copy_from_slice(message.into().coalesce().as_ref());
        let Some(SnapshotMessage::Chunk { height, index, bytes: chunk }) = SnapshotMessage::decode(bytes.clone())
        else {
            return self.inner.send(bytes, priority);
        };
        {
            let mut sent = tap.chunks_sent.lock().unwrap();
            for recipient in self.inner.recipients() {
                *sent.entry(recipient).or_default() += 1;
            }
        }
        if !tap.alter {
            return self.inner.send(bytes, priority);
        }
        let mut altered = chunk.to_vec();
        let middle = altered.len() / 2;
        altered[middle] ^= 0x5a;
        let altered = SnapshotMessage::Chunk { height, index, bytes: altered.into() };
        self.inner.send(altered.encode(), priority)
    }
}

async fn start(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    genesis: &Genesis,
    signer: &ValidatorSigner,
    index: usize,
    partition: &str,
    tap: &Tap,
) -> Validator {
    support::start_validator_wrapped(
        context,
        oracle,
        genesis,
        signer,
        index,
        ConsensusConfig { snapshot_interval: SNAPSHOT_INTERVAL, ..ConsensusConfig::local(partition.into()) },
        |id, inner| TappedSender { inner, tap: (id == channel::SNAPSHOTS).then(|| tap.clone()) },
    )
    .await
}

/// Submits `request` through `mailbox` (again while busy) and waits until it is finalized.
async fn finalize(context: &deterministic::Context, mailbox: &Mailbox, request: Request) {
    let key = request.key();
    loop {
        match mailbox.submit(request.clone().verify(CHAIN_ID).unwrap()).await {
            Ok(()) => break,
            Err(ChainError::Busy) => context.sleep(Duration::from_millis(50)).await,
            Err(error) => panic!("request {} refused: {error}", request.id()),
        }
    }
    let submitted = context.current();
    while mailbox.outcome(key.clone()).await.ok().flatten().is_none() {
        let waited = context.current().duration_since(submitted).unwrap();
        assert!(waited < Duration::from_secs(30), "request {} not finalized after {waited:?}", request.id());
        context.sleep(Duration::from_millis(100)).await;
    }
}

async fn finalized_height(mailbox: &Mailbox) -> u64 {
    mailbox.status().await.map_or(0, |status| status.finalized_height)
}

#[test]
fn a_validator_syncs_a_snapshot_from_several_peers_while_one_sends_altered_chunks() {
    let seed = seed();
    println!("seed {seed}");
    let config = deterministic::Config::new().with_seed(seed).with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(|context| async move {
        let signers: Vec<ValidatorSigner> = (0..VALIDATORS).map(signer_from_seed).collect();
        let validators: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
        let client: ClientSigner = signer_from_seed(1_000);
        let genesis = Genesis::new(CHAIN_ID, validators.clone(), vec![public_key(&client)], 0).unwrap();
        let link = Link {
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(1),
            success_rate: probability!(1.0),
        };
        let oracle = support::start_network(&context, &validators, link).await;
        // Three validators run (a quorum of four); the fourth joins later on an empty disk.
        let taps: Vec<Tap> =
            (0..VALIDATORS as usize).map(|index| Tap { alter: index == LIAR, ..Tap::default() }).collect();
        let mut running = Vec::new();
        for index in 0..JOINER {
            let partition = format!("validator-{index}");
            running.push(start(&context, &oracle, &genesis, &signers[index], index, &partition, &taps[index]).await);
        }

        // A state that spans several snapshot chunks.
        let accounts: Vec<Account> =
            (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
        let opening = Request::create_accounts(CHAIN_ID, 1, EXPIRES_NS, &client, &accounts).unwrap();
        finalize(&context, &running[0].mailbox, opening).await;
        for request in 0..BIG_REQUESTS {
            let transfers: Vec<Transfer> = (0..TRANSFERS_PER_REQUEST)
                .map(|offset| {
                    let id = 1 + request * TRANSFERS_PER_REQUEST + offset;
                    Transfer {
                        id,
                        debit_account_id: 1 + id % ACCOUNTS,
                        credit_account_id: 1 + (id + 1) % ACCOUNTS,
                        amount: 1,
                        ledger: 1,
                        code: 1,
                        ..Transfer::default()
                    }
                })
                .collect();
            let request = Request::create_transfers(CHAIN_ID, 2 + request, EXPIRES_NS, &client, &transfers).unwrap();
            finalize(&context, &running[(request.id() % 3) as usize].mailbox, request).await;
        }
        let loaded = finalized_height(&running[0].mailbox).await;
        let snapshot_length = running[0].mailbox.finalized_state().await.unwrap().snapshot().len();
        let chunks = snapshot_length.div_ceil(SNAPSHOT_CHUNK_SIZE);
        assert!(chunks >= 6, "a snapshot of {snapshot_length} bytes spans {chunks} chunks");
        // The peers write snapshots that hold it.
        while finalized_height(&running[0].mailbox).await < loaded + 2 * SNAPSHOT_INTERVAL {
            context.sleep(Duration::from_millis(200)).await;
        }

        let joined_at = context.current();
        let joiner =
            start(&context, &oracle, &genesis, &signers[JOINER], JOINER, "validator-3-empty", &taps[JOINER]).await;
        let target = finalized_height(&running[0].mailbox).await;
        while finalized_height(&joiner.mailbox).await < target {
            let waited = context.current().duration_since(joined_at).unwrap();
            assert!(waited < Duration::from_secs(60), "the joiner did not reach height {target} in {waited:?}");
            context.sleep(Duration::from_millis(100)).await;
        }
        let waited = context.current().duration_since(joined_at).unwrap();

        // It started from a snapshot that holds the big state, on the finalized chain.
        let history = joiner.mailbox.history().await.unwrap();
        assert!(
            history.base > loaded,
            "the joiner started from height {}, not a snapshot above {loaded}",
            history.base
        );
        assert!(history.agrees_with(&running[0].mailbox.history().await.unwrap()));
        let (ours, theirs) = (joiner.mailbox.status().await.unwrap(), running[0].mailbox.status().await.unwrap());
        if ours.finalized_height == theirs.finalized_height {
            assert_eq!(ours.state_digest, theirs.state_digest);
        }

        // The lying peer was asked, sent altered chunks, and was blocked by the joiner (and by
        // no one else); the honest peers each sent chunks.
        let joiner_key = &validators[JOINER];
        let sent_to_joiner =
            |index: usize| taps[index].chunks_sent.lock().unwrap().get(joiner_key).copied().unwrap_or_default();
        let sent: Vec<u32> = (0..JOINER).map(sent_to_joiner).collect();
        assert!(sent[LIAR] >= 1, "the lying peer was never asked for a chunk: {sent:?}");
        let blocked = oracle.blocked().await.unwrap();
        assert!(blocked.contains(&(joiner_key.clone(), validators[LIAR].clone())), "{blocked:?}");
        assert!(blocked.iter().all(|(_, peer)| *peer == validators[LIAR]), "only the liar is blocked: {blocked:?}");
        let honest: Vec<u32> = (0..JOINER).filter(|index| *index != LIAR).map(|index| sent[index]).collect();
        assert!(honest.iter().all(|chunks| *chunks >= 1), "chunks came from every honest peer: {sent:?}");
        assert!(honest.iter().sum::<u32>() as usize >= chunks, "{sent:?} for {chunks} chunks");
        println!("synced {chunks} chunks in {waited:?} (simulated); chunks sent per peer {sent:?}, the liar blocked");
        drop(running);
    });
}
