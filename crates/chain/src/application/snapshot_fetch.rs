//! Fetching a peer's snapshot from several peers at once: the decisions, without I/O.
//!
//! A validator on an empty disk, far behind the chain, asks its peers what snapshot they hold.
//! Each offer names a height, a length, and the certified header of the block above (which
//! commits to the state digest at that height; the actor verifies it before it gets here).
//! Then:
//!
//! 1. **The chunk-hash list.** Each peer that offered a height is asked for the SHA-256 of every
//!    chunk (`SNAPSHOT_CHUNK_SIZE` bytes) of its snapshot at that height, and of the other
//!    offered heights below (it usually holds the one before its newest). A snapshot's bytes
//!    are canonical (`snapshot.rs`: the same state at the same height is the same bytes on every
//!    validator), so every honest peer sends the same list for a height. A list is adopted once
//!    f + 1 distinct peers sent it identically (n = 3f + 1 genesis validators): at least one of
//!    them is honest, so the list is the true one.
//! 2. **The chunks.** They are asked from every peer whose list is the adopted one, a bounded
//!    number in flight per peer (`CHUNKS_IN_FLIGHT_PER_PEER`), lowest missing chunk first, to
//!    the least busy peer. Each chunk is checked on arrival against its hash: one that does not
//!    match marks its peer as lying (the caller blocks it) and is asked from another peer. A
//!    chunk not answered within `CHUNK_TIMEOUT` is asked from another peer; a peer silent
//!    `PEER_TIMEOUTS_MAX` times in a row is no longer asked. A slow or lying peer costs one
//!    chunk, not the download.
//! 3. **The final check.** The whole snapshot is restored and its state digest compared with
//!    the certified header of the block above. That check is the safety anchor (a quorum of
//!    validators signed it); the vouched list only lets each chunk be judged early. If the
//!    check fails, every peer that vouched for the list vouched for a false one: they are all
//!    blocked, and the fetch starts again.
//!
//! Why no protocol change: the chunk-hash list is not in any header, so nothing validators sign
//! commits to it. It is trusted because f + 1 validators vouch for it (one of them honest), and
//! the certified state digest checks the result at the end. Adding a chunk root to block headers
//! would let a single peer's list be trusted, at the price of a new header version.

use crate::application::snapshots::{SNAPSHOT_CHUNK_SIZE, SNAPSHOT_SIZE_MAX, SnapshotMessage};
use crate::keys::ValidatorKey;
use commonware_cryptography::{Hasher as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

/// The SHA-256 of one snapshot chunk.
pub type ChunkHash = [u8; 32];

/// How long a chunk asked of a peer may take before it is asked of another.
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(4);

/// The most chunks asked of one peer and not yet answered.
pub const CHUNKS_IN_FLIGHT_PER_PEER: usize = 2;

/// Chunks a peer may leave unanswered in a row before it is no longer asked.
pub const PEER_TIMEOUTS_MAX: u32 = 3;

const _: () = assert!(CHUNKS_IN_FLIGHT_PER_PEER > 0);
const _: () = assert!(SNAPSHOT_SIZE_MAX / SNAPSHOT_CHUNK_SIZE as u64 <= u32::MAX as u64);

/// The hash of a chunk's bytes.
pub fn chunk_hash(bytes: &[u8]) -> ChunkHash {
    let digest = Sha256::hash(&[bytes]);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// How many chunks a snapshot of `length` bytes has.
pub fn chunk_count(length: u64) -> u64 {
    length.div_ceil(SNAPSHOT_CHUNK_SIZE as u64)
}

/// A peer's list of chunk hashes for a snapshot height: the snapshot's length and one hash per
/// chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashList {
    pub length: u64,
    pub hashes: Vec<ChunkHash>,
}

impl HashList {
    /// The list of `bytes`, a whole snapshot.
    pub fn of(bytes: &[u8]) -> Self {
        Self { length: bytes.len() as u64, hashes: bytes.chunks(SNAPSHOT_CHUNK_SIZE).map(chunk_hash).collect() }
    }

    /// Whether the list has one hash per chunk of a snapshot of a size this validator takes.
    pub fn is_well_formed(&self) -> bool {
        self.length > 0 && self.length <= SNAPSHOT_SIZE_MAX && self.hashes.len() as u64 == chunk_count(self.length)
    }

    /// The length of chunk `index`.
    fn chunk_length(&self, index: usize) -> usize {
        let offset = index as u64 * SNAPSHOT_CHUNK_SIZE as u64;
        assert!(offset < self.length, "chunk {index} is within the snapshot");
        (self.length - offset).min(SNAPSHOT_CHUNK_SIZE as u64) as usize
    }
}

/// A message to send to one peer.
pub type Outgoing = (ValidatorKey, SnapshotMessage);

/// Why a chunk is asked of another peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The peer asked did not answer within `CHUNK_TIMEOUT`.
    TimedOut,
    /// The peer asked sent bytes that do not match the chunk's hash.
    Mismatched,
}

/// What the caller logs for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A chunk-hash list was vouched for: the snapshot at `height` is fetched from `peers`.
    Started { height: u64, length: u64, chunks: u64, peers: Vec<ValidatorKey> },
    /// `peer` sent a list for `height` other than the vouched one; it is not asked for chunks.
    Differs { peer: ValidatorKey, height: u64 },
    /// Chunk `index` is asked of `to`, after `from` failed it.
    Reasked { height: u64, index: u32, from: ValidatorKey, to: ValidatorKey, why: Why },
    /// `peer` left `PEER_TIMEOUTS_MAX` chunks unanswered in a row; it is no longer asked.
    Silent { peer: ValidatorKey, height: u64 },
    /// No peer is left to ask: the fetch of `height` is dropped, and offers are asked again.
    GaveUp { height: u64 },
}

/// What a poll decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Poll {
    pub asks: Vec<Outgoing>,
    pub notes: Vec<Note>,
}

/// A whole snapshot whose every chunk matched the vouched list.
#[derive(Debug, PartialEq, Eq)]
pub struct Whole<P> {
    pub height: u64,
    pub bytes: Vec<u8>,
    /// The certified header of the block above, from an offer.
    pub proof: P,
    /// From the start of the fetch to its last chunk.
    pub elapsed: Duration,
    /// The bytes each peer sent that were kept.
    pub bytes_per_peer: Vec<(ValidatorKey, u64)>,
    /// The peers whose identical lists were adopted.
    pub vouchers: Vec<ValidatorKey>,
}

/// What a chunk did.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<P> {
    /// Not a chunk of the snapshot being fetched, or one already held.
    Ignored,
    /// Kept; more are needed.
    Kept,
    /// Its bytes do not match the vouched hash: `peer` is lying (or its disk is damaged). The
    /// caller blocks it; the chunk is asked of another peer.
    Mismatched { peer: ValidatorKey, height: u64, index: u32 },
    /// The last chunk: the snapshot is whole.
    Whole(Whole<P>),
}

#[derive(Debug, Clone)]
enum ChunkState {
    /// To be asked; `previous` is the peer that failed it, if any.
    Missing {
        previous: Option<(ValidatorKey, Why)>,
    },
    Asked {
        peer: ValidatorKey,
        at: SystemTime,
    },
    Done,
}

#[derive(Debug, Default)]
struct Source {
    in_flight: usize,
    /// Chunks left unanswered in a row.
    timeouts: u32,
    /// Bytes kept from this peer.
    bytes: u64,
    /// Still asked (not silent).
    active: bool,
}

#[derive(Debug)]
struct Fetch<P> {
    height: u64,
    list: HashList,
    proof: P,
    started: SystemTime,
    bytes: Vec<u8>,
    chunks: Vec<ChunkState>,
    done: usize,
    sources: BTreeMap<ValidatorKey, Source>,
    /// The peers whose lists made the list vouched for.
    vouchers: Vec<ValidatorKey>,
}

/// The snapshot fetch of a validator on an empty disk. `P` is the proof an offer carries (the
/// certified header of the block above the snapshot), handed back with the whole snapshot.
#[derive(Debug)]
pub struct SnapshotFetch<P> {
    /// The other genesis validators.
    peers: BTreeSet<ValidatorKey>,
    /// How many distinct peers must send the same list: f + 1.
    vouches_needed: usize,
    /// The latest height each peer offered.
    offers: BTreeMap<ValidatorKey, u64>,
    /// A verified proof for each offered height.
    proofs: BTreeMap<u64, P>,
    /// Lists asked for and not yet received.
    asked: BTreeSet<(u64, ValidatorKey)>,
    /// Lists received, by height, while no fetch is under way.
    lists: BTreeMap<u64, BTreeMap<ValidatorKey, HashList>>,
    /// Peers that lied or sent proofs that do not verify: never asked again.
    refused: BTreeSet<ValidatorKey>,
    fetch: Option<Fetch<P>>,
    /// Spreads chunks over equally busy peers.
    rotation: usize,
}

impl<P: Clone> SnapshotFetch<P> {
    /// The fetch of validator `me` among the genesis `validators`.
    pub fn new(validators: &[ValidatorKey], me: &ValidatorKey) -> Self {
        let faults = validators.len().saturating_sub(1) / 3;
        let peers: BTreeSet<ValidatorKey> = validators.iter().filter(|key| *key != me).cloned().collect();
        Self {
            peers,
            vouches_needed: faults + 1,
            offers: BTreeMap::new(),
            proofs: BTreeMap::new(),
            asked: BTreeSet::new(),
            lists: BTreeMap::new(),
            refused: BTreeSet::new(),
            fetch: None,
            rotation: 0,
        }
    }

    /// How many distinct peers must send the same list before it is adopted.
    pub fn vouches_needed(&self) -> usize {
        self.vouches_needed
    }

    /// The height being fetched, once a list is vouched for.
    pub fn fetching(&self) -> Option<u64> {
        self.fetch.as_ref().map(|fetch| fetch.height)
    }

    pub fn is_refused(&self, peer: &ValidatorKey) -> bool {
        self.refused.contains(peer)
    }

    /// Forgets everything but the refused peers (no snapshot is awaited any more).
    pub fn reset(&mut self) {
        self.offers.clear();
        self.proofs.clear();
        self.asked.clear();
        self.lists.clear();
        self.fetch = None;
    }

    /// `peer` is never asked again (its offer did not verify, or it lied). Chunks it was asked
    /// for are asked of others.
    pub fn refuse(&mut self, peer: &ValidatorKey) {
        self.refused.insert(peer.clone());
        self.offers.remove(peer);
        self.asked.retain(|(_, asked)| asked != peer);
        for lists in self.lists.values_mut() {
            lists.remove(peer);
        }
        if let Some(fetch) = &mut self.fetch {
            fetch.sources.remove(peer);
            for chunk in &mut fetch.chunks {
                if matches!(chunk, ChunkState::Asked { peer: asked, .. } if asked == peer) {
                    *chunk = ChunkState::Missing { previous: Some((peer.clone(), Why::Mismatched)) };
                }
            }
        }
    }

    /// A peer offered its snapshot at `height` with a verified `proof`: asks it for the chunk
    /// hashes of that height and of lower offered heights, and asks peers that offered higher
    /// heights for this one's.
    pub fn offer(&mut self, peer: &ValidatorKey, height: u64, length: u64, proof: P) -> Vec<Outgoing> {
        if height == 0
            || length == 0
            || length > SNAPSHOT_SIZE_MAX
            || !self.peers.contains(peer)
            || self.is_refused(peer)
        {
            return Vec::new();
        }
        self.offers.insert(peer.clone(), height);
        self.proofs.entry(height).or_insert(proof);
        let offered: BTreeSet<u64> = self.offers.values().copied().collect();
        // Proofs and lists of heights no peer offers any more are dropped (bounded memory).
        self.proofs.retain(|height, _| offered.contains(height));
        self.lists.retain(|height, _| offered.contains(height));
        self.asked.retain(|(height, _)| offered.contains(height));

        let mut wanted: Vec<(u64, ValidatorKey)> =
            offered.range(..=height).map(|lower| (*lower, peer.clone())).collect();
        for (other, offered) in &self.offers {
            if *offered > height {
                wanted.push((height, other.clone()));
            }
        }
        if let Some(fetch) = &self.fetch {
            if height >= fetch.height && !wanted.contains(&(fetch.height, peer.clone())) {
                wanted.push((fetch.height, peer.clone()));
            }
        }
        let mut asks = Vec::new();
        for (height, peer) in wanted {
            let known = match &self.fetch {
                Some(fetch) if fetch.height == height => fetch.sources.contains_key(&peer),
                _ => self.lists.get(&height).is_some_and(|lists| lists.contains_key(&peer)),
            };
            if known {
                continue;
            }
            self.asked.insert((height, peer.clone()));
            asks.push((peer, SnapshotMessage::AskChunkHashes { height }));
        }
        asks
    }

    /// A peer's chunk-hash list for `height` (well formed: the decoder checked it). Starts the
    /// fetch once f + 1 peers sent the same one.
    pub fn hashes(&mut self, peer: &ValidatorKey, height: u64, list: HashList, now: SystemTime) -> Vec<Note> {
        assert!(list.is_well_formed(), "the decoder refuses malformed lists");
        if !self.asked.remove(&(height, peer.clone())) {
            return Vec::new();
        }
        if let Some(fetch) = &mut self.fetch {
            if fetch.height != height {
                return Vec::new();
            }
            if list != fetch.list {
                return vec![Note::Differs { peer: peer.clone(), height }];
            }
            fetch.sources.insert(peer.clone(), Source { active: true, ..Source::default() });
            return Vec::new();
        }
        self.lists.entry(height).or_default().insert(peer.clone(), list.clone());
        let lists = &self.lists[&height];
        let vouchers: Vec<ValidatorKey> =
            lists.iter().filter(|(_, other)| **other == list).map(|(peer, _)| peer.clone()).collect();
        if vouchers.len() < self.vouches_needed {
            return Vec::new();
        }
        let Some(proof) = self.proofs.get(&height).cloned() else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        for (other, other_list) in lists {
            if *other_list != list {
                notes.push(Note::Differs { peer: other.clone(), height });
            }
        }
        let sources =
            vouchers.iter().map(|peer| (peer.clone(), Source { active: true, ..Source::default() })).collect();
        let chunks = list.hashes.len();
        let length = usize::try_from(list.length).expect("a snapshot this validator takes fits in memory");
        notes.insert(0, Note::Started { height, length: list.length, chunks: chunks as u64, peers: vouchers.clone() });
        self.fetch = Some(Fetch {
            height,
            list,
            proof,
            started: now,
            bytes: vec![0; length],
            chunks: vec![ChunkState::Missing { previous: None }; chunks],
            done: 0,
            sources,
            vouchers,
        });
        self.lists.clear();
        // Lists asked for other heights are no longer wanted; those for this height still add
        // peers to fetch from.
        self.asked.retain(|(asked, _)| *asked == height);
        notes
    }

    /// Asks again for chunks whose peer did not answer in time, and asks for missing chunks from
    /// peers with room in flight.
    pub fn poll(&mut self, now: SystemTime) -> Poll {
        let mut poll = Poll::default();
        let Some(fetch) = &mut self.fetch else {
            return poll;
        };
        let height = fetch.height;
        for chunk in &mut fetch.chunks {
            let ChunkState::Asked { peer, at } = chunk else {
                continue;
            };
            if now.duration_since(*at).unwrap_or_default() < CHUNK_TIMEOUT {
                continue;
            }
            let peer = peer.clone();
            let source = fetch.sources.get_mut(&peer).expect("chunks are asked of sources");
            source.in_flight -= 1;
            source.timeouts += 1;
            if source.active && source.timeouts >= PEER_TIMEOUTS_MAX {
                source.active = false;
                poll.notes.push(Note::Silent { peer: peer.clone(), height });
            }
            *chunk = ChunkState::Missing { previous: Some((peer, Why::TimedOut)) };
        }
        let order: Vec<ValidatorKey> =
            fetch.sources.iter().filter(|(_, source)| source.active).map(|(peer, _)| peer.clone()).collect();
        if order.is_empty() {
            poll.notes.push(Note::GaveUp { height });
            self.fetch = None;
            self.asked.clear();
            return poll;
        }
        for index in 0..fetch.chunks.len() {
            let ChunkState::Missing { previous } = &fetch.chunks[index] else {
                continue;
            };
            // The least busy peer with room, other than the one that just failed this chunk if
            // another has room; ties go round the peers.
            let start = self.rotation % order.len();
            let avoid = previous.as_ref().map(|(peer, _)| peer);
            let pick = (0..order.len())
                .map(|offset| &order[(start + offset) % order.len()])
                .filter(|peer| fetch.sources[*peer].in_flight < CHUNKS_IN_FLIGHT_PER_PEER)
                .min_by_key(|peer| (Some(*peer) == avoid, fetch.sources[*peer].in_flight))
                .cloned();
            let Some(peer) = pick else {
                break;
            };
            self.rotation = self.rotation.wrapping_add(1);
            let index_u32 = u32::try_from(index).expect("chunk counts are bounded");
            if let Some((from, why)) = previous {
                poll.notes.push(Note::Reasked {
                    height,
                    index: index_u32,
                    from: from.clone(),
                    to: peer.clone(),
                    why: *why,
                });
            }
            fetch.sources.get_mut(&peer).expect("picked from the sources").in_flight += 1;
            fetch.chunks[index] = ChunkState::Asked { peer: peer.clone(), at: now };
            poll.asks.push((peer, SnapshotMessage::AskChunk { height, index: index_u32 }));
        }
        poll
    }

    /// A chunk arrived from `peer`. Any chunk of the height being fetched is checked against
    /// its hash, whoever was asked (a late answer from a peer that timed out is still good).
    pub fn chunk(
        &mut self,
        peer: &ValidatorKey,
        height: u64,
        index: u32,
        bytes: &[u8],
        now: SystemTime,
    ) -> Received<P> {
        let Some(fetch) = &self.fetch else {
            return Received::Ignored;
        };
        if fetch.height != height || !fetch.sources.contains_key(peer) {
            return Received::Ignored;
        }
        let slot = index as usize;
        let matches = slot < fetch.chunks.len()
            && bytes.len() == fetch.list.chunk_length(slot)
            && chunk_hash(bytes) == fetch.list.hashes[slot];
        if !matches {
            self.refuse(peer);
            return Received::Mismatched { peer: peer.clone(), height, index };
        }
        let fetch = self.fetch.as_mut().expect("matched above");
        let source = fetch.sources.get_mut(peer).expect("checked above");
        let asked_here = matches!(&fetch.chunks[slot], ChunkState::Asked { peer: asked, .. } if asked == peer);
        if asked_here {
            source.in_flight -= 1;
        }
        source.timeouts = 0;
        source.active = true;
        if matches!(fetch.chunks[slot], ChunkState::Done) {
            return Received::Ignored;
        }
        if let ChunkState::Asked { peer: asked, .. } = &fetch.chunks[slot] {
            if asked != peer {
                // Answered late by a peer that timed out, while another was asked: the other's
                // answer, when it comes, is ignored.
                let asked = asked.clone();
                fetch.sources.get_mut(&asked).expect("chunks are asked of sources").in_flight -= 1;
            }
        }
        let offset = slot * SNAPSHOT_CHUNK_SIZE;
        fetch.bytes[offset..offset + bytes.len()].copy_from_slice(bytes);
        fetch.chunks[slot] = ChunkState::Done;
        fetch.done += 1;
        fetch.sources.get_mut(peer).expect("checked above").bytes += bytes.len() as u64;
        if fetch.done < fetch.chunks.len() {
            return Received::Kept;
        }
        let fetch = self.fetch.take().expect("matched above");
        assert!(fetch.chunks.iter().all(|chunk| matches!(chunk, ChunkState::Done)));
        let bytes_per_peer: Vec<(ValidatorKey, u64)> =
            fetch.sources.iter().map(|(peer, source)| (peer.clone(), source.bytes)).collect();
        assert_eq!(bytes_per_peer.iter().map(|(_, bytes)| bytes).sum::<u64>(), fetch.list.length);
        self.asked.clear();
        Received::Whole(Whole {
            height: fetch.height,
            bytes: fetch.bytes,
            proof: fetch.proof,
            elapsed: now.duration_since(fetch.started).unwrap_or_default(),
            bytes_per_peer,
            vouchers: fetch.vouchers,
        })
    }

    /// A whole snapshot did not restore to the certified state: every peer that vouched for its
    /// list (`Whole::vouchers`) vouched for a false one. They are refused (the caller blocks
    /// them), and offers are asked again.
    pub fn refute(&mut self, vouchers: &[ValidatorKey]) {
        for peer in vouchers {
            self.refuse(peer);
        }
        self.fetch = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{public_key, signer_from_seed};
    use std::time::UNIX_EPOCH;

    fn key(seed: u64) -> ValidatorKey {
        public_key(&signer_from_seed(seed))
    }

    fn at(milliseconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(milliseconds)
    }

    /// Validator 0 and its three peers (n = 4, f = 1: two must vouch).
    fn fetch() -> SnapshotFetch<&'static str> {
        let validators: Vec<ValidatorKey> = (0..4).map(key).collect();
        SnapshotFetch::new(&validators, &key(0))
    }

    /// A snapshot of `chunks` chunks, the last one short, each chunk's bytes distinct.
    fn snapshot(chunks: usize) -> Vec<u8> {
        let length = (chunks - 1) * SNAPSHOT_CHUNK_SIZE + 100;
        (0..length).map(|at| (at / SNAPSHOT_CHUNK_SIZE) as u8 ^ (at % 251) as u8).collect()
    }

    fn chunk(bytes: &[u8], index: u32) -> &[u8] {
        bytes.chunks(SNAPSHOT_CHUNK_SIZE).nth(index as usize).unwrap()
    }

    fn asked_chunks(poll: &Poll) -> Vec<(ValidatorKey, u32)> {
        poll.asks
            .iter()
            .map(|(peer, message)| match message {
                SnapshotMessage::AskChunk { height: 16, index } => (peer.clone(), *index),
                other => panic!("not a chunk of height 16: {other:?}"),
            })
            .collect()
    }

    /// A fetch of `bytes` at height 16, vouched for by peers 1 and 2, with peer 3 a source too.
    fn started(bytes: &[u8]) -> SnapshotFetch<&'static str> {
        let mut fetch = fetch();
        let list = HashList::of(bytes);
        for peer in 1..=3 {
            fetch.offer(&key(peer), 16, list.length, "proof");
        }
        for peer in 1..=3 {
            fetch.hashes(&key(peer), 16, list.clone(), at(0));
        }
        assert_eq!(fetch.fetching(), Some(16));
        fetch
    }

    #[test]
    fn a_list_is_adopted_only_once_f_plus_one_peers_sent_it_identically() {
        let bytes = snapshot(2);
        let list = HashList::of(&bytes);
        let mut forged = list.clone();
        forged.hashes[1] = [9; 32];
        let mut fetch = fetch();
        assert_eq!(fetch.vouches_needed(), 2);

        // An offer asks its peer for the list; an unasked list is ignored.
        let asks = fetch.offer(&key(1), 16, list.length, "proof");
        assert_eq!(asks, vec![(key(1), SnapshotMessage::AskChunkHashes { height: 16 })]);
        assert!(fetch.hashes(&key(2), 16, list.clone(), at(0)).is_empty());
        // One peer's list is not enough, nor two different ones.
        assert!(fetch.hashes(&key(1), 16, list.clone(), at(0)).is_empty());
        fetch.offer(&key(2), 16, list.length, "proof");
        assert!(fetch.hashes(&key(2), 16, forged.clone(), at(0)).is_empty());
        assert_eq!(fetch.fetching(), None);
        // A second identical list starts the fetch; the peer that sent another is named.
        fetch.offer(&key(3), 16, list.length, "proof");
        let notes = fetch.hashes(&key(3), 16, list.clone(), at(0));
        assert_eq!(
            notes,
            vec![
                Note::Started { height: 16, length: list.length, chunks: 2, peers: vec![key(1), key(3)] },
                Note::Differs { peer: key(2), height: 16 },
            ]
        );
        assert_eq!(fetch.fetching(), Some(16));
        // The peer with the other list is not asked for chunks.
        let poll = fetch.poll(at(0));
        assert!(asked_chunks(&poll).iter().all(|(peer, _)| *peer != key(2)), "{poll:?}");
    }

    #[test]
    fn peers_are_asked_for_lower_offered_heights_too() {
        let mut fetch = fetch();
        fetch.offer(&key(1), 32, 10, "proof at 32");
        // Peer 2 offers 16: it is asked for 16, and peer 1 (which holds the one before its
        // newest) is asked for 16 too.
        let asks = fetch.offer(&key(2), 16, 10, "proof at 16");
        assert_eq!(
            asks,
            vec![
                (key(2), SnapshotMessage::AskChunkHashes { height: 16 }),
                (key(1), SnapshotMessage::AskChunkHashes { height: 16 }),
            ]
        );
        let list = HashList { length: 10, hashes: vec![[1; 32]] };
        fetch.hashes(&key(2), 16, list.clone(), at(0));
        let notes = fetch.hashes(&key(1), 16, list, at(0));
        assert!(matches!(&notes[..], [Note::Started { height: 16, .. }]), "{notes:?}");
        // Offers of nothing, too large, or from a validator outside the genesis are ignored.
        let mut fetch = self::fetch();
        assert!(fetch.offer(&key(1), 0, 10, "").is_empty());
        assert!(fetch.offer(&key(1), 16, SNAPSHOT_SIZE_MAX + 1, "").is_empty());
        assert!(fetch.offer(&key(9), 16, 10, "").is_empty());
        assert!(fetch.offer(&key(0), 16, 10, "").is_empty());
    }

    #[test]
    fn chunks_are_spread_over_peers_a_bounded_number_each_and_assemble_the_snapshot() {
        let bytes = snapshot(7);
        let mut fetch = started(&bytes);
        // Two in flight per peer, lowest chunks first, round the peers.
        let asked = asked_chunks(&fetch.poll(at(0)));
        assert_eq!(asked.len(), 3 * CHUNKS_IN_FLIGHT_PER_PEER);
        for peer in 1..=3 {
            assert_eq!(asked.iter().filter(|(asked, _)| *asked == key(peer)).count(), CHUNKS_IN_FLIGHT_PER_PEER);
        }
        assert_eq!(asked.iter().map(|(_, index)| *index).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
        // Nothing more until a peer answers.
        assert!(fetch.poll(at(10)).asks.is_empty());
        for (peer, index) in &asked {
            assert_eq!(fetch.chunk(peer, 16, *index, chunk(&bytes, *index), at(20)), Received::Kept);
        }
        // A repeated chunk is ignored.
        let (peer, index) = asked[0].clone();
        assert_eq!(fetch.chunk(&peer, 16, index, chunk(&bytes, index), at(20)), Received::Ignored);
        let last = asked_chunks(&fetch.poll(at(30)));
        assert_eq!(last.len(), 1);
        let (peer, index) = last[0].clone();
        assert_eq!(index, 6);
        let Received::Whole(whole) = fetch.chunk(&peer, 16, 6, chunk(&bytes, 6), at(1_030)) else {
            panic!("the snapshot is whole");
        };
        assert_eq!(whole.bytes, bytes);
        assert_eq!((whole.height, whole.proof, whole.elapsed), (16, "proof", Duration::from_millis(1_030)));
        assert_eq!(whole.vouchers, vec![key(1), key(2)]);
        assert_eq!(whole.bytes_per_peer.len(), 3);
        assert!(whole.bytes_per_peer.iter().all(|(_, bytes)| *bytes >= 2 * SNAPSHOT_CHUNK_SIZE as u64));
        assert_eq!(fetch.fetching(), None);
    }

    #[test]
    fn a_lying_peer_is_refused_and_its_chunk_asked_of_another() {
        let bytes = snapshot(4);
        let mut fetch = started(&bytes);
        let asked = asked_chunks(&fetch.poll(at(0)));
        let (liar, index) = asked.iter().find(|(peer, _)| *peer == key(3)).cloned().unwrap();
        let mut altered = chunk(&bytes, index).to_vec();
        altered[7] ^= 1;
        assert_eq!(
            fetch.chunk(&liar, 16, index, &altered, at(5)),
            Received::Mismatched { peer: liar.clone(), height: 16, index }
        );
        assert!(fetch.is_refused(&liar));
        // A chunk of the wrong length, or past the end, is a lie too.
        let mut other = started(&bytes);
        other.poll(at(0));
        assert!(matches!(other.chunk(&key(1), 16, 3, &[0; 10], at(0)), Received::Mismatched { .. }));
        assert!(matches!(other.chunk(&key(2), 16, 4, &[0; 10], at(0)), Received::Mismatched { .. }));

        // The chunk goes to another peer, which is named; the liar is never asked again, and
        // what it sends later is ignored.
        let honest: Vec<(ValidatorKey, u32)> = asked.iter().filter(|(peer, _)| *peer != liar).cloned().collect();
        for (peer, index) in &honest {
            fetch.chunk(peer, 16, *index, chunk(&bytes, *index), at(10));
        }
        let poll = fetch.poll(at(10));
        let again = asked_chunks(&poll);
        assert!(again.iter().all(|(peer, _)| *peer != liar));
        assert!(again.iter().any(|(_, asked)| *asked == index));
        let to = again.iter().find(|(_, asked)| *asked == index).unwrap().0.clone();
        assert!(poll.notes.contains(&Note::Reasked {
            height: 16,
            index,
            from: liar.clone(),
            to,
            why: Why::Mismatched
        }));
        assert_eq!(fetch.chunk(&liar, 16, index, chunk(&bytes, index), at(11)), Received::Ignored);
        assert!(fetch.offer(&liar, 16, bytes.len() as u64, "proof").is_empty());
        let mut whole = None;
        for (peer, index) in again {
            if let Received::Whole(done) = fetch.chunk(&peer, 16, index, chunk(&bytes, index), at(20)) {
                whole = Some(done);
            }
        }
        let whole = whole.expect("the honest peers finish the snapshot");
        assert_eq!(whole.bytes, bytes);
        assert!(!whole.bytes_per_peer.iter().any(|(peer, _)| *peer == liar));
    }

    #[test]
    fn a_silent_peer_times_out_its_chunks_go_to_others_and_a_late_answer_still_counts() {
        let bytes = snapshot(9);
        let mut fetch = started(&bytes);
        let silent = key(2);
        let mut now = 0;
        let mut asked = asked_chunks(&fetch.poll(at(now)));
        let mut notes = Vec::new();
        let mut late = None;
        let whole = loop {
            let mut whole = None;
            for (peer, index) in std::mem::take(&mut asked) {
                if peer == silent {
                    late.get_or_insert(index);
                    continue;
                }
                if let Received::Whole(done) = fetch.chunk(&peer, 16, index, chunk(&bytes, index), at(now)) {
                    whole = Some(done);
                }
            }
            if let Some(whole) = whole {
                break whole;
            }
            now += 500;
            assert!(now < 60_000, "the fetch does not finish without the silent peer");
            let poll = fetch.poll(at(now));
            notes.extend(poll.notes.clone());
            asked = asked_chunks(&poll);
        };
        assert_eq!(whole.bytes, bytes);
        // Each chunk the silent peer held was asked of another, after the timeout.
        let reasked: Vec<&Note> = notes.iter().filter(|note| matches!(note, Note::Reasked { .. })).collect();
        assert!(!reasked.is_empty());
        for note in reasked {
            let Note::Reasked { from, to, why, .. } = note else { unreachable!() };
            assert_eq!((from, why), (&silent, &Why::TimedOut));
            assert_ne!(to, &silent);
        }
        assert!(whole.bytes_per_peer.contains(&(silent.clone(), 0)));

        // A late answer from a peer that timed out is kept if it matches.
        let mut fetch = started(&bytes);
        let asked = asked_chunks(&fetch.poll(at(0)));
        let (slow, index) = asked[0].clone();
        let poll = fetch.poll(at(0) + CHUNK_TIMEOUT);
        let (other, again) = asked_chunks(&poll).into_iter().find(|(_, asked)| *asked == index).unwrap();
        assert_ne!(other, slow);
        assert_eq!(again, index);
        assert_eq!(fetch.chunk(&slow, 16, index, chunk(&bytes, index), at(4_100)), Received::Kept);
        assert_eq!(fetch.chunk(&other, 16, index, chunk(&bytes, index), at(4_200)), Received::Ignored);
    }

    #[test]
    fn a_fetch_with_no_peer_left_gives_up_and_a_refuted_list_refuses_its_vouchers() {
        let bytes = snapshot(2);
        let mut fetch = started(&bytes);
        let mut now = 0;
        let mut notes = Vec::new();
        while fetch.fetching().is_some() {
            notes.extend(fetch.poll(at(now)).notes);
            now += CHUNK_TIMEOUT.as_millis() as u64;
            assert!(now < 120_000);
        }
        assert_eq!(notes.last(), Some(&Note::GaveUp { height: 16 }));
        for peer in 1..=3 {
            assert!(notes.contains(&Note::Silent { peer: key(peer), height: 16 }));
            assert!(!fetch.is_refused(&key(peer)), "a silent peer is not refused: it may be slow");
        }

        // A whole snapshot that fails the final check refuses the peers that vouched for it.
        let mut fetch = started(&bytes);
        fetch.poll(at(0));
        let mut whole = None;
        for index in 0..2 {
            for peer in 1..=3 {
                if let Received::Whole(done) = fetch.chunk(&key(peer), 16, index, chunk(&bytes, index), at(0)) {
                    whole = Some(done);
                }
            }
        }
        let whole = whole.unwrap();
        fetch.refute(&whole.vouchers);
        assert!(fetch.is_refused(&key(1)) && fetch.is_refused(&key(2)) && !fetch.is_refused(&key(3)));
        assert_eq!(fetch.fetching(), None);
        // Offers from the others start over.
        assert_eq!(fetch.offer(&key(3), 16, bytes.len() as u64, "proof").len(), 1);
    }
}
