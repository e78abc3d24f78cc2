//! Damaged finalized data, found and fetched again from peers: the decisions, without I/O.
//!
//! - `Scrub` walks the finalized log from its first record to its last, again and again at a
//!   bounded rate, and checks what each record says against its neighbour: the block at height
//!   h + 1 names block h as its parent and commits to the Merkle root of h's outcomes. A record
//!   that cannot be read (checksum, decoding, position) or that breaks the chain is damaged.
//! - `Repairs` fetches each damaged record from one peer at a time, in chunks, moving to the
//!   next peer when one is silent or sends something that does not check.
//! - `check_bundle` is that check: a peer sends the record at height h with the certified
//!   header at h + 1 (`certified.rs`). The record is taken only if the certificate is a quorum
//!   of the genesis validators, the block's digest is the certified header's parent, and its
//!   outcomes' Merkle root is the certified header's results root. A peer cannot make a
//!   validator keep a record that is not the finalized one.
//!
//! Wire format of a bundle: `certified header length (4) | certified header (h + 1) | record (h,
//! as in log.rs)`. It is sent in chunks of `REPAIR_CHUNK_SIZE` (`snapshots.rs` has the
//! messages).

use crate::application::log::LogRecord;
use crate::block::{BlockDigest, Root};
use crate::certified::CertifiedHeader;
use crate::execution::results_root;
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use commonware_codec::{Decode as _, Encode as _};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// The size of one chunk of a repair bundle.
pub const REPAIR_CHUNK_SIZE: usize = 1024 * 1024;

/// The largest bundle: a largest block with its outcomes and certificates.
pub const BUNDLE_SIZE_MAX: u64 = 8 * 1024 * 1024;

/// The most bytes of the certified header in a bundle.
const CERTIFIED_SIZE_MAX: usize = 64 * 1024;

/// How long to wait for a chunk before asking again, and how often before trying another peer.
pub const REPAIR_RETRY: Duration = Duration::from_secs(2);
const REPAIR_ATTEMPTS: u32 = 3;

/// How many bytes of the log the scrub reads per turn (the actor gives it one turn per 250 ms;
/// it always reads at least one record), and how long it rests after a whole pass.
pub const SCRUB_BYTES_PER_TURN: usize = 256 * 1024;
pub const SCRUB_REST: Duration = Duration::from_secs(600);

/// Encodes the bundle that repairs the record at `record`'s height.
pub fn encode_bundle(above: &CertifiedHeader, record: &LogRecord) -> Vec<u8> {
    let above = above.encode();
    let record = record.encode();
    let mut bytes = Vec::with_capacity(4 + above.len() + record.len());
    bytes.extend_from_slice(&u32::try_from(above.len()).expect("a certified header is small").to_be_bytes());
    bytes.extend_from_slice(&above);
    bytes.extend_from_slice(&record);
    bytes
}

/// The record a peer's bundle holds for `height`, if it is the finalized one (see the module's
/// documentation), or why not. A finalization certificate the record carries is kept only if it
/// verifies.
pub fn check_bundle(genesis: &Genesis, height: u64, bytes: &[u8]) -> Result<LogRecord, String> {
    let length = bytes.get(..4).ok_or("no certified header length")?;
    let length = u32::from_be_bytes(length.try_into().expect("four bytes")) as usize;
    if length > CERTIFIED_SIZE_MAX || bytes.len() < 4 + length {
        return Err(format!("a certified header of {length} bytes"));
    }
    let above = CertifiedHeader::decode(&bytes[4..4 + length], genesis).map_err(|error| error.to_string())?;
    above.verify(genesis, height + 1).map_err(|error| error.to_string())?;
    let record = bytes::Bytes::copy_from_slice(&bytes[4 + length..]);
    let mut record = LogRecord::decode_cfg(record, &()).map_err(|error| format!("the record: {error}"))?;
    if record.block.header.height != height {
        return Err(format!("a record of height {}", record.block.header.height));
    }
    if record.block.digest() != above.header.parent {
        return Err("the block is not the certified header's parent".into());
    }
    if record_results_root(&record) != above.header.results_root {
        return Err("the outcomes are not those the certified header commits to".into());
    }
    if let Some(finalization) = record.finalization.take() {
        let own = CertifiedHeader { header: record.block.header.clone(), descendants: Vec::new(), finalization };
        if own.verify(genesis, height).is_ok() {
            record.finalization = Some(own.finalization);
        }
    }
    Ok(record)
}

/// The Merkle root over a record's outcomes (what its child's header commits to).
pub fn record_results_root(record: &LogRecord) -> Root {
    let outcomes: Vec<_> = record
        .block
        .requests
        .iter()
        .zip(&record.outcomes)
        .map(|(request, outcome)| (request.key(), outcome.clone()))
        .collect();
    results_root(&outcomes)
}

/// The walk over the finalized log.
#[derive(Debug)]
pub struct Scrub {
    /// The next height to read (0: start a pass at the log's first record).
    next: u64,
    /// The record read just before `next`: its height, block digest and results root.
    below: Option<(u64, BlockDigest, Root)>,
    /// When the last pass ended.
    rested_since: Option<SystemTime>,
    /// Damaged records found in this pass.
    found: u64,
}

/// What the scrub found in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Sound,
    /// These heights are damaged (a broken link names both records it joins).
    Damaged(Vec<u64>),
}

impl Default for Scrub {
    fn default() -> Self {
        Self::new()
    }
}

impl Scrub {
    pub fn new() -> Self {
        Self { next: 0, below: None, rested_since: None, found: 0 }
    }

    /// The next height to read, if a pass is due: the log holds heights `start + 1 ..= end`.
    /// `None` while resting after a pass.
    pub fn next(&mut self, start: u64, end: u64, now: SystemTime) -> Option<u64> {
        if let Some(since) = self.rested_since {
            if now.duration_since(since).unwrap_or_default() < SCRUB_REST {
                return None;
            }
            self.rested_since = None;
        }
        if self.next <= start {
            self.next = start + 1;
            self.below = None;
        }
        (self.next <= end).then_some(self.next)
    }

    /// Whether the pass just ended (the last `next` returned the log's end): the caller logs
    /// it. Starts the rest.
    pub fn finish_pass(&mut self, end: u64, now: SystemTime) -> Option<(u64, u64)> {
        if self.next <= end || self.rested_since.is_some() || self.next == 0 {
            return None;
        }
        let found = std::mem::take(&mut self.found);
        let last = self.next - 1;
        self.next = 0;
        self.below = None;
        self.rested_since = Some(now);
        Some((last, found))
    }

    /// The record at the height `next` returned was read: checks it against the one below.
    pub fn read(&mut self, height: u64, digest: BlockDigest, parent: BlockDigest, roots: (Root, Root)) -> Found {
        assert_eq!(height, self.next, "the scrub reads the height it asked for");
        let (own_results, committed_results) = roots;
        let found = match self.below {
            Some((below, below_digest, below_results))
                if below + 1 == height && (below_digest != parent || below_results != committed_results) =>
            {
                Found::Damaged(vec![below, height])
            }
            _ => Found::Sound,
        };
        self.below = Some((height, digest, own_results));
        self.next = height + 1;
        if let Found::Damaged(heights) = &found {
            self.found += heights.len() as u64;
        }
        found
    }

    /// The record at the height `next` returned could not be read.
    pub fn unreadable(&mut self, height: u64) {
        assert_eq!(height, self.next, "the scrub reads the height it asked for");
        self.below = None;
        self.next = height + 1;
        self.found += 1;
    }
}

/// A request for one chunk of a repair bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub peer: ValidatorKey,
    pub height: u64,
    pub index: u32,
}

/// What a chunk did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Not the chunk awaited (late, repeated, or from another peer).
    Ignored,
    /// Ask for the next chunk.
    More(Ask),
    /// The bundle is whole: the caller checks it (`check_bundle`).
    Whole { peer: ValidatorKey, height: u64, bundle: Vec<u8> },
    /// The peer sent chunks that do not add up to what it announced.
    Refused { peer: ValidatorKey, height: u64 },
}

#[derive(Debug)]
struct Fetch {
    peer: ValidatorKey,
    height: u64,
    /// The bundle's length, once the first chunk said it.
    length: u64,
    bytes: Vec<u8>,
    asked: SystemTime,
    attempts: u32,
}

/// The damaged records this validator is fetching again, one at a time, lowest first.
#[derive(Debug)]
pub struct Repairs {
    /// The peers to ask, in turn.
    peers: Vec<ValidatorKey>,
    next_peer: usize,
    wanted: BTreeSet<u64>,
    fetch: Option<Fetch>,
    /// Peers tried without success for the lowest wanted height.
    tried: usize,
}

impl Repairs {
    pub fn new(peers: Vec<ValidatorKey>) -> Self {
        Self { peers, next_peer: 0, wanted: BTreeSet::new(), fetch: None, tried: 0 }
    }

    /// Whether any peer could repair anything (a validator alone cannot).
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Marks `height` damaged; `true` if it was not already.
    pub fn want(&mut self, height: u64) -> bool {
        self.wanted.insert(height)
    }

    pub fn is_wanted(&self, height: u64) -> bool {
        self.wanted.contains(&height)
    }

    pub fn wanted(&self) -> usize {
        self.wanted.len()
    }

    /// The record at `height` was repaired (or is no longer needed).
    pub fn done(&mut self, height: u64) {
        self.wanted.remove(&height);
        if self.fetch.as_ref().is_some_and(|fetch| fetch.height == height) {
            self.fetch = None;
        }
        self.tried = 0;
    }

    /// The whole bundle from `peer` failed its check: the next peer is asked.
    pub fn refused(&mut self, peer: &ValidatorKey) {
        if self.fetch.as_ref().is_some_and(|fetch| &fetch.peer == peer) {
            self.fetch = None;
        }
        self.tried += 1;
    }

    /// Peers tried without success for the lowest wanted height, of how many.
    pub fn tried(&self) -> (usize, usize) {
        (self.tried, self.peers.len())
    }

    /// What to ask now: a chunk again if one is late (a peer silent `REPAIR_ATTEMPTS` times is
    /// given up, `gave_up` names it), or the first chunk of the lowest wanted height from the
    /// next peer.
    pub fn poll(&mut self, now: SystemTime) -> (Option<Ask>, Option<(ValidatorKey, u64)>) {
        let mut gave_up = None;
        if let Some(fetch) = &mut self.fetch {
            if now.duration_since(fetch.asked).unwrap_or_default() < REPAIR_RETRY {
                return (None, None);
            }
            fetch.attempts += 1;
            if fetch.attempts <= REPAIR_ATTEMPTS {
                fetch.asked = now;
                let index = u32::try_from(fetch.bytes.len() / REPAIR_CHUNK_SIZE).expect("bundles are bounded");
                return (Some(Ask { peer: fetch.peer.clone(), height: fetch.height, index }), None);
            }
            let fetch = self.fetch.take().expect("matched above");
            gave_up = Some((fetch.peer, fetch.height));
            self.tried += 1;
        }
        let Some(&height) = self.wanted.first() else {
            return (None, gave_up);
        };
        if self.peers.is_empty() {
            return (None, gave_up);
        }
        let peer = self.peers[self.next_peer % self.peers.len()].clone();
        self.next_peer = self.next_peer.wrapping_add(1);
        self.fetch = Some(Fetch { peer: peer.clone(), height, length: 0, bytes: Vec::new(), asked: now, attempts: 0 });
        (Some(Ask { peer, height, index: 0 }), gave_up)
    }

    /// A chunk of a bundle arrived from `peer`.
    pub fn chunk(
        &mut self,
        peer: &ValidatorKey,
        height: u64,
        index: u32,
        length: u64,
        bytes: &[u8],
        now: SystemTime,
    ) -> Chunk {
        let Some(fetch) = &mut self.fetch else {
            return Chunk::Ignored;
        };
        let expected = u32::try_from(fetch.bytes.len() / REPAIR_CHUNK_SIZE).expect("bundles are bounded");
        if &fetch.peer != peer || fetch.height != height || index != expected {
            return Chunk::Ignored;
        }
        if index == 0 {
            fetch.length = length;
        }
        fetch.bytes.extend_from_slice(bytes);
        let received = fetch.bytes.len() as u64;
        let whole_chunk = bytes.len() == REPAIR_CHUNK_SIZE;
        let wrong = length != fetch.length
            || length == 0
            || length > BUNDLE_SIZE_MAX
            || received > length
            || (received < length && !whole_chunk);
        if wrong {
            self.fetch = None;
            self.tried += 1;
            return Chunk::Refused { peer: peer.clone(), height };
        }
        if received < length {
            fetch.asked = now;
            fetch.attempts = 0;
            return Chunk::More(Ask { peer: peer.clone(), height, index: index + 1 });
        }
        let fetch = self.fetch.take().expect("matched above");
        Chunk::Whole { peer: fetch.peer, height, bundle: fetch.bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::hash;
    use crate::keys::{public_key, signer_from_seed};
    use std::time::UNIX_EPOCH;

    fn peer(seed: u64) -> ValidatorKey {
        public_key(&signer_from_seed(seed))
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn repairs_ask_one_peer_at_a_time_and_move_on_from_a_silent_one() {
        let mut repairs = Repairs::new(vec![peer(1), peer(2)]);
        assert_eq!(repairs.poll(at(0)), (None, None));
        assert!(repairs.want(7));
        assert!(!repairs.want(7));
        assert!(repairs.want(3));
        // Lowest first, from the first peer.
        let (ask, _) = repairs.poll(at(0));
        assert_eq!(ask, Some(Ask { peer: peer(1), height: 3, index: 0 }));
        // Nothing more until the retry interval passes, then the same chunk again, three times.
        assert_eq!(repairs.poll(at(1)), (None, None));
        for attempt in 1..=REPAIR_ATTEMPTS {
            let (ask, gave_up) = repairs.poll(at(2 * u64::from(attempt)));
            assert_eq!((ask, gave_up), (Some(Ask { peer: peer(1), height: 3, index: 0 }), None));
        }
        // Then the peer is given up and the next one asked.
        let (ask, gave_up) = repairs.poll(at(8));
        assert_eq!(gave_up, Some((peer(1), 3)));
        assert_eq!(ask, Some(Ask { peer: peer(2), height: 3, index: 0 }));
        assert_eq!(repairs.tried(), (1, 2));
        repairs.done(3);
        assert_eq!(repairs.wanted(), 1);
        assert_eq!(repairs.poll(at(9)).0.map(|ask| ask.height), Some(7));
    }

    #[test]
    fn chunks_assemble_a_bundle_and_a_peer_whose_chunks_do_not_add_up_is_refused() {
        let mut repairs = Repairs::new(vec![peer(1), peer(2)]);
        repairs.want(5);
        repairs.poll(at(0));
        let length = (REPAIR_CHUNK_SIZE + 10) as u64;
        let first = vec![1u8; REPAIR_CHUNK_SIZE];
        // Another peer's chunk, or a chunk out of order, is ignored.
        assert_eq!(repairs.chunk(&peer(2), 5, 0, length, &first, at(0)), Chunk::Ignored);
        assert_eq!(repairs.chunk(&peer(1), 5, 1, length, &first, at(0)), Chunk::Ignored);
        assert_eq!(
            repairs.chunk(&peer(1), 5, 0, length, &first, at(1)),
            Chunk::More(Ask { peer: peer(1), height: 5, index: 1 })
        );
        let Chunk::Whole { peer: from, height, bundle } = repairs.chunk(&peer(1), 5, 1, length, &[2; 10], at(1)) else {
            panic!("the bundle is whole");
        };
        assert_eq!((from, height, bundle.len() as u64), (peer(1), 5, length));

        // A short chunk before the end, a changed length, or an oversized bundle is refused.
        for (length, bytes) in [(length, vec![1u8; 10]), (BUNDLE_SIZE_MAX + 1, vec![1u8; 10]), (0, vec![])] {
            let ask = repairs.poll(at(100)).0.expect("a new fetch starts at once");
            let refused = Chunk::Refused { peer: ask.peer.clone(), height: 5 };
            assert_eq!(repairs.chunk(&ask.peer, 5, 0, length, &bytes, at(100)), refused);
        }
    }

    #[test]
    fn the_scrub_walks_the_log_finds_broken_links_and_rests_between_passes() {
        let mut scrub = Scrub::new();
        let digest = |height: u64| hash(&height.to_be_bytes());
        let root = |height: u64| hash(&[b'r', height as u8]);
        assert_eq!(scrub.next(2, 5, at(0)), Some(3));
        assert_eq!(scrub.read(3, digest(3), digest(2), (root(3), root(2))), Found::Sound);
        assert_eq!(scrub.next(2, 5, at(0)), Some(4));
        assert_eq!(scrub.read(4, digest(4), digest(3), (root(4), root(3))), Found::Sound);
        // Height 5 names another parent: 4 or 5 is damaged, both are fetched again.
        assert_eq!(scrub.next(2, 5, at(0)), Some(5));
        assert_eq!(scrub.read(5, digest(5), digest(9), (root(5), root(4))), Found::Damaged(vec![4, 5]));
        assert_eq!(scrub.finish_pass(5, at(1)), Some((5, 2)));
        // Resting, then a new pass from the start.
        assert_eq!(scrub.next(2, 6, at(2)), None);
        assert_eq!(scrub.next(2, 6, at(1) + SCRUB_REST), Some(3));
        scrub.unreadable(3);
        // A record after an unreadable one has nothing to be checked against.
        assert_eq!(scrub.next(2, 6, at(1) + SCRUB_REST), Some(4));
        assert_eq!(scrub.read(4, digest(4), digest(99), (root(4), root(99))), Found::Sound);
        assert_eq!(scrub.finish_pass(6, at(700)), None);
    }
}
