//! The vote record: every vote a validator sends is written down before it leaves, and a vote
//! that conflicts with one written earlier is never sent.
//!
//! Simplex journals its own votes and syncs them before broadcasting, which is enough after a
//! crash or a power loss. It is not enough after damage: a journal whose bytes were changed
//! while the validator was stopped is cut back at the first bad page, with only a library
//! warning, and the validator forgets the votes after the cut. Restarted, it could sign a
//! notarize of another proposal, or a nullify in a view it finalized: what a Byzantine validator
//! does, and what could let a conflicting block be finalized.
//!
//! The record is a second, independent copy of what matters for that (view, kind, proposal),
//! checked by the vote channel's sender (`VoteSender`) on every outgoing vote:
//! - a vote already written is sent again (Simplex repeats votes after a restart or a timeout);
//! - a new vote that conflicts with a written one is refused: another proposal notarized or
//!   finalized in a view, a nullify in a finalized view, a finalize in a nullified one (the three
//!   kinds of evidence Simplex reports);
//! - a vote in a view below what the record keeps is refused;
//! - any other vote is written, then sent.
//!
//! Without a record. A validator that opens with a finalized state (a snapshot) but no vote in
//! its record was restored from a backup, or lost its `*-votes` directory: its key may have
//! signed votes this record never saw. Simplex starts it at view 1 of the genesis floor, and it
//! soon votes to skip that view; peers that still keep view 1 (a chain within ten views of it)
//! and hold its key's finalize there take the nullify for equivocation and block the key for an
//! hour, so it hears from no one. Such a validator is fenced: it sends no vote until Simplex
//! reports a certificate (`HighestCertified`), then only in views more than one above the
//! highest certified view it had heard of when it judged its first vote after that (that view
//! is then fixed: a rising one would hold back every vote). The highest, not the first: an old
//! certificate (a Byzantine peer can send any valid one, and Simplex replays its journal's in
//! view order) would open the fence lower, while honest peers keep repeating the newest; a
//! Byzantine peer that is faster than all of them can still open it low, and then the
//! validator risks being blocked, not the ledger's safety. The newest certificate is at
//! most one view behind the cluster, and its predecessor, stopped before, voted at most in the
//! cluster's view: every view the fence opens is one its key never voted in. (A validator that
//! lost only its `*-votes` directory still has Simplex's journal, which keeps it from
//! contradicting the votes it holds.) The fence needs a quorum without it: a cluster in which
//! more than f validators were restored at once waits, each holding its votes back, until the
//! others return. A validator with an empty data directory (a new cluster, or one rejoining from
//! a peer's snapshot) is not fenced: at genesis, every validator starts so.
//!
//! Durability. An entry is written and synced before its vote is handed to the network (the
//! votes that arrive together share one sync), as Simplex does with its own journal: a crash
//! or a power loss at any moment leaves the record holding every vote that left. A torn entry at
//! the end of a section is one whose vote never left.
//!
//! Layout. Partition `{partition}-votes`, one blob per `SECTION_VIEWS` views named by the
//! section number (8 bytes, big-endian), each a sequence of 64-byte entries:
//! view (8 bytes, big-endian), kind (1: 0 notarize, 1 nullify, 2 finalize), the SHA-256 of the
//! encoded proposal (32, zero for a nullify), zeros (15), and the first 8 bytes of the SHA-256 of
//! the 56 bytes before. The two newest sections are kept; views below them are refused (Simplex
//! only votes in its current view, so it never asks for one that old).

use crate::BlockDigest;
use crate::block::hash;
use crate::consensus::Scheme;
use crate::error::ChainError;
use crate::keys::ValidatorKey;
use commonware_actor::{Feedback, Unreliable};
use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::Viewable as _;
use commonware_consensus::simplex::types::{Proposal, Vote};
use commonware_p2p::{CheckedSender, LimitedSender, Recipients, Sender};
use commonware_runtime::{Blob as _, IoBufs, ReadOptions, Spawner, Storage, Supervisor, WriteOptions};
use commonware_utils::channel::mpsc;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use tracing::{debug, error, info, warn};

/// What to do with a validator whose data cannot be repaired in place. The vote record stays:
/// without it, a validator that rejoins may sign votes that conflict with ones it signed before.
pub const REJOIN_ADVICE: &str = "move the validator's data directory aside, then copy its `*-votes` directory (the record \
     of the votes it signed) into a new, empty one, and start it again: it rejoins the cluster from a peer's snapshot";

/// While fenced, one held-back vote in this many is logged (Simplex repeats a skip vote every
/// `timeout_retry`, 2 s: about one line a minute).
const FENCED_LOG_EVERY: u64 = 30;

/// Views per blob of the record.
pub const SECTION_VIEWS: u64 = 4_096;
/// Bytes per entry.
pub const ENTRY_BYTES: usize = 64;
/// Votes waiting to be written and sent; Simplex repeats a vote the queue had no room for.
const QUEUE_MAX: usize = 1_024;

/// One vote, reduced to what a conflict is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cast {
    pub view: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A notarize of the proposal with this hash.
    Notarize([u8; 32]),
    Nullify,
    /// A finalize of the proposal with this hash.
    Finalize([u8; 32]),
}

impl Cast {
    /// Reduces an encoded Simplex vote (what the vote channel carries).
    pub fn decode(bytes: &[u8]) -> Result<Self, commonware_codec::Error> {
        let vote = Vote::<Scheme, BlockDigest>::decode_cfg(bytes::Bytes::copy_from_slice(bytes), &())?;
        let view = vote.view().get();
        let kind = match &vote {
            Vote::Notarize(notarize) => Kind::Notarize(proposal_hash(&notarize.proposal)),
            Vote::Nullify(_) => Kind::Nullify,
            Vote::Finalize(finalize) => Kind::Finalize(proposal_hash(&finalize.proposal)),
        };
        Ok(Self { view, kind })
    }

    /// The entry that records this vote.
    pub fn entry(&self) -> [u8; ENTRY_BYTES] {
        let mut entry = [0u8; ENTRY_BYTES];
        entry[..8].copy_from_slice(&self.view.to_be_bytes());
        let (tag, proposal) = match self.kind {
            Kind::Notarize(proposal) => (0, proposal),
            Kind::Nullify => (1, [0; 32]),
            Kind::Finalize(proposal) => (2, proposal),
        };
        entry[8] = tag;
        entry[9..41].copy_from_slice(&proposal);
        let check = hash(&entry[..56]);
        entry[56..].copy_from_slice(&check.as_ref()[..8]);
        entry
    }

    /// Reads an entry back; `None` if its checksum or its kind is wrong.
    pub fn from_entry(entry: &[u8; ENTRY_BYTES]) -> Option<Self> {
        if hash(&entry[..56]).as_ref()[..8] != entry[56..] {
            return None;
        }
        let view = u64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
        let proposal: [u8; 32] = entry[9..41].try_into().expect("32 bytes");
        let kind = match entry[8] {
            0 => Kind::Notarize(proposal),
            1 if proposal == [0; 32] => Kind::Nullify,
            2 => Kind::Finalize(proposal),
            _ => return None,
        };
        Some(Self { view, kind })
    }

    pub fn section(&self) -> u64 {
        self.view / SECTION_VIEWS
    }
}

fn proposal_hash(proposal: &Proposal<BlockDigest>) -> [u8; 32] {
    let digest = hash(&proposal.encode());
    digest.as_ref().try_into().expect("a SHA-256 digest is 32 bytes")
}

/// What the record says of an outgoing vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen before, and conflicts with nothing: write it, then send it.
    New,
    /// Already written: send it again.
    Repeat,
    /// Never send it.
    Refused(&'static str),
}

/// The votes of one view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ViewVotes {
    notarized: Option<[u8; 32]>,
    finalized: Option<[u8; 32]>,
    nullified: bool,
}

/// The votes a validator sent, by view, from `floor`. Synchronous: the caller writes what
/// `check` calls new before sending it.
#[derive(Debug, Clone, Default)]
pub struct VoteRecord {
    /// Votes in views below this are refused.
    floor: u64,
    views: BTreeMap<u64, ViewVotes>,
    /// The newest section written, if any.
    newest_section: Option<u64>,
}

impl VoteRecord {
    /// Rebuilds the record from the entries of the sections kept (oldest first); the oldest
    /// section sets the floor.
    pub fn restore(sections: &[(u64, Vec<Cast>)]) -> Self {
        let mut record = Self {
            floor: sections.first().map_or(0, |(section, _)| section * SECTION_VIEWS),
            views: BTreeMap::new(),
            newest_section: sections.last().map(|(section, _)| *section),
        };
        for cast in sections.iter().flat_map(|(_, casts)| casts) {
            // Entries are only written after `check` called them new, so replaying them in
            // order finds no conflict; an entry that does conflict was not written by Tally.
            if let Verdict::Refused(reason) = record.apply(cast) {
                warn!(view = cast.view, reason, "the vote record holds conflicting entries; keeping the first");
            }
        }
        record
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Whether the record holds no vote (none written, or every entry damaged).
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Judges `cast`, and records it when new.
    pub fn check(&mut self, cast: &Cast) -> Verdict {
        if cast.view < self.floor {
            return Verdict::Refused("its view is below the views the vote record keeps");
        }
        self.apply(cast)
    }

    fn apply(&mut self, cast: &Cast) -> Verdict {
        let votes = self.views.entry(cast.view).or_default();
        match cast.kind {
            Kind::Notarize(proposal) => match votes.notarized {
                Some(notarized) if notarized == proposal => Verdict::Repeat,
                Some(_) => Verdict::Refused("this validator notarized another proposal in this view"),
                None => {
                    votes.notarized = Some(proposal);
                    Verdict::New
                }
            },
            Kind::Finalize(proposal) => match votes.finalized {
                Some(finalized) if finalized == proposal => Verdict::Repeat,
                Some(_) => Verdict::Refused("this validator finalized another proposal in this view"),
                None if votes.nullified => Verdict::Refused("this validator nullified this view"),
                None => {
                    votes.finalized = Some(proposal);
                    Verdict::New
                }
            },
            Kind::Nullify if votes.nullified => Verdict::Repeat,
            Kind::Nullify if votes.finalized.is_some() => Verdict::Refused("this validator finalized in this view"),
            Kind::Nullify => {
                votes.nullified = true;
                Verdict::New
            }
        }
    }

    /// Called before writing a new entry in `section`: the sections to remove (all but this
    /// one and the one before), and the floor rises to the older kept one.
    pub fn enter_section(&mut self, section: u64) -> Vec<u64> {
        let Some(newest) = self.newest_section else {
            self.newest_section = Some(section);
            return Vec::new();
        };
        if section <= newest {
            return Vec::new();
        }
        self.newest_section = Some(section);
        let keep_from = section.saturating_sub(1);
        let removed: Vec<u64> = (self.floor / SECTION_VIEWS..keep_from.min(newest + 1)).collect();
        self.floor = self.floor.max(keep_from * SECTION_VIEWS);
        self.views = self.views.split_off(&self.floor);
        removed
    }
}

/// The view of the highest certificate (notarization, nullification or finalization) Simplex
/// reported since the validator started: a reporter that records it, shared with the vote task.
/// Views start at 1, so 0 means none yet.
#[derive(Debug, Clone, Default)]
pub struct HighestCertified(Arc<AtomicU64>);

impl HighestCertified {
    pub fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            view => Some(view),
        }
    }

    fn record(&self, view: u64) {
        self.0.fetch_max(view, Ordering::AcqRel);
    }
}

impl commonware_consensus::Reporter for HighestCertified {
    type Activity = crate::consensus::Activity;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        use crate::consensus::Activity;
        match &activity {
            Activity::Notarization(_) | Activity::Nullification(_) | Activity::Finalization(_) => {
                let view = activity.view().get();
                if view > 0 {
                    self.record(view);
                }
            }
            _ => {}
        }
        Feedback::Ok
    }
}

/// Whether a fenced validator (see the module doc) must hold back a vote in `view`, given the
/// certified view the fence opens above.
pub fn fenced(certified: Option<u64>, view: u64) -> bool {
    match certified {
        None => true,
        Some(certified) => view <= certified.saturating_add(1),
    }
}

fn storage_error(error: impl std::fmt::Display) -> ChainError {
    ChainError::Storage(format!("vote record: {error}"))
}

/// One kept section of the record on disk.
struct Section<B> {
    blob: B,
    /// Where the next entry goes.
    end: u64,
    unsynced: bool,
}

/// The record on disk.
struct Store<E: Storage> {
    context: E,
    partition: String,
    sections: BTreeMap<u64, Section<E::Blob>>,
}

impl<E: Storage> Store<E> {
    /// Reads every section, cutting a torn entry off the end of each (a write a power loss
    /// interrupted: its vote was never sent). A damaged entry in the middle is skipped with a
    /// warning: Simplex's journal still holds that vote.
    async fn open(context: E, partition: String) -> Result<(Self, VoteRecord), ChainError> {
        let names = crate::application::snapshots::scan_heights(&context, &partition).await.map_err(storage_error)?;
        let mut store = Self { context, partition, sections: BTreeMap::new() };
        let mut restored = Vec::new();
        for section in names {
            let (blob, length) =
                store.context.open(&store.partition, &section.to_be_bytes()).await.map_err(storage_error)?;
            let whole = length - length % ENTRY_BYTES as u64;
            if whole < length {
                warn!(partition = store.partition, section, length, "cutting a torn entry off the vote record");
                blob.resize(whole).await.map_err(storage_error)?;
                blob.sync().await.map_err(storage_error)?;
            }
            let bytes = if whole == 0 {
                Vec::new()
            } else {
                let bytes = blob.read_at(0, whole as usize, ReadOptions::default()).await.map_err(storage_error)?;
                bytes.coalesce().as_ref().to_vec()
            };
            let mut casts = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
            for (index, entry) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
                match Cast::from_entry(entry.try_into().expect("64 bytes")) {
                    Some(cast) if cast.section() == section => casts.push(cast),
                    _ => warn!(
                        partition = store.partition,
                        section,
                        offset = index * ENTRY_BYTES,
                        "skipping a damaged entry of the vote record (Simplex's journal still holds that vote)"
                    ),
                }
            }
            store.sections.insert(section, Section { blob, end: whole, unsynced: false });
            restored.push((section, casts));
        }
        let record = VoteRecord::restore(&restored);
        info!(
            partition = store.partition,
            sections = restored.len(),
            votes = restored.iter().map(|(_, casts)| casts.len()).sum::<usize>(),
            floor = record.floor(),
            "vote record opened"
        );
        Ok((store, record))
    }

    async fn append(&mut self, record: &mut VoteRecord, cast: &Cast) -> Result<(), ChainError> {
        let section = cast.section();
        for removed in record.enter_section(section) {
            if self.sections.remove(&removed).is_some() {
                self.context.remove(&self.partition, Some(&removed.to_be_bytes())).await.map_err(storage_error)?;
            }
        }
        if !self.sections.contains_key(&section) {
            let (blob, _) = self.context.open(&self.partition, &section.to_be_bytes()).await.map_err(storage_error)?;
            self.sections.insert(section, Section { blob, end: 0, unsynced: false });
        }
        let kept = self.sections.get_mut(&section).expect("opened above");
        kept.blob.write_at(kept.end, cast.entry().to_vec(), WriteOptions::default()).await.map_err(storage_error)?;
        kept.end += ENTRY_BYTES as u64;
        kept.unsynced = true;
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), ChainError> {
        for kept in self.sections.values_mut().filter(|kept| kept.unsynced) {
            kept.blob.sync().await.map_err(storage_error)?;
            kept.unsynced = false;
        }
        Ok(())
    }
}

/// A vote on its way out.
struct Outgoing {
    recipients: Recipients<ValidatorKey>,
    message: IoBufs,
    priority: bool,
}

/// The sender Simplex gets for its vote channel: it queues each vote for the record's task,
/// which writes it (or refuses it) and then hands it to the network.
#[derive(Clone)]
pub struct VoteSender {
    queue: mpsc::Sender<Outgoing>,
}

impl std::fmt::Debug for VoteSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoteSender").finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct CheckedVote<'a> {
    sender: &'a mut VoteSender,
    recipients: Recipients<ValidatorKey>,
}

impl LimitedSender for VoteSender {
    type PublicKey = ValidatorKey;
    type Checked<'a> = CheckedVote<'a>;

    fn check(&mut self, recipients: Recipients<ValidatorKey>) -> Result<CheckedVote<'_>, SystemTime> {
        Ok(CheckedVote { sender: self, recipients })
    }
}

impl CheckedSender for CheckedVote<'_> {
    type PublicKey = ValidatorKey;

    fn recipients(&self) -> Vec<ValidatorKey> {
        match &self.recipients {
            Recipients::All => Vec::new(),
            Recipients::Some(keys) => keys.clone(),
            Recipients::One(key) => vec![key.clone()],
        }
    }

    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        let outgoing = Outgoing { recipients: self.recipients, message: message.into(), priority };
        match self.sender.queue.try_send(outgoing) {
            Ok(()) => Unreliable::new(Feedback::Ok),
            Err(mpsc::error::TrySendError::Full(_)) => Unreliable::rejected(),
            Err(mpsc::error::TrySendError::Closed(_)) => Unreliable::new(Feedback::Closed),
        }
    }
}

/// Opens the record in `partition` and starts the task that writes and sends the votes Simplex
/// gives the returned sender through `network`. The task ends (with why) if the record cannot
/// be written: the validator must then stop, since it could no longer vote safely.
///
/// `holds_state`: the data directory holds a finalized state (a snapshot). With an empty record,
/// the validator is then fenced until `heard` (the reporter given to Simplex) has a certificate.
pub async fn start<E, S>(
    context: E,
    partition: String,
    network: S,
    holds_state: bool,
    heard: HighestCertified,
) -> Result<(VoteSender, commonware_runtime::Handle<String>), ChainError>
where
    E: Storage + Spawner + Supervisor,
    S: Sender<PublicKey = ValidatorKey>,
{
    let (mut store, mut record) = Store::open(context.child("store"), partition).await?;
    let fence = holds_state && record.is_empty();
    if fence {
        warn!(
            "this validator has a finalized state but no record of the votes its key signed (a data directory \
             restored from a backup, or one whose `*-votes` directory was lost): it sends no vote until it hears \
             its peers certify a view, and then only in views above it, so that it cannot contradict a vote its \
             key signed before (its peers would block it as an equivocator). If it stays silent, check that it \
             reaches its peers, and that a quorum of the other validators runs (validators restored at once all \
             wait for one); never run two machines with one validator key"
        );
    }
    let mut held_back: u64 = 0;
    // The certified view the fence opens above, fixed once a certificate was heard.
    let mut opened_above: Option<u64> = None;
    let mut voted_since_fence = false;
    let (queue, mut outgoing) = mpsc::channel::<Outgoing>(QUEUE_MAX);
    let handle = context.spawn(move |_| async move {
        let mut network = network;
        while let Some(first) = outgoing.recv().await {
            // The votes queued together are written together, with one sync (group commit).
            let mut batch = vec![first];
            while batch.len() < QUEUE_MAX
                && let Ok(next) = outgoing.try_recv()
            {
                batch.push(next);
            }
            let mut ready = Vec::with_capacity(batch.len());
            let mut written = false;
            for Outgoing { recipients, message, priority } in batch {
                let bytes = message.coalesce();
                let cast = match Cast::decode(bytes.as_ref()) {
                    Ok(cast) => cast,
                    Err(decode) => {
                        // Simplex encoded it; failing closed costs one vote, sending blind could
                        // cost safety.
                        error!(%decode, "refusing to send a vote the vote record cannot read");
                        continue;
                    }
                };
                if fence {
                    // Fixed at the first vote judged once a certificate was heard: the highest
                    // heard by then. (A value that kept rising with the cluster would hold back
                    // every vote, each being in the view just above the newest certificate.)
                    if opened_above.is_none() {
                        opened_above = heard.get();
                    }
                    let certified = opened_above;
                    if fenced(certified, cast.view) {
                        held_back += 1;
                        if held_back % FENCED_LOG_EVERY == 1 {
                            info!(
                                view = cast.view,
                                vote = ?cast.kind,
                                certified,
                                held_back,
                                "holding back a vote: this validator has no record of its earlier votes and has not \
                                 heard its peers certify a view above it yet"
                            );
                        }
                        continue;
                    }
                    // The fence stays, at the view it opened above: Simplex may still send a late
                    // vote for a view below it (a finalize for a view whose notarize was held back).
                    if !voted_since_fence {
                        info!(
                            view = cast.view,
                            certified,
                            held_back,
                            "voting again: this validator heard its peers certify a view, and votes only above it"
                        );
                        voted_since_fence = true;
                    }
                }
                match record.check(&cast) {
                    Verdict::New => {
                        if let Err(failed) = store.append(&mut record, &cast).await {
                            error!(%failed, "the vote record cannot be written; stopping this validator's votes");
                            return failed.to_string();
                        }
                        written = true;
                    }
                    Verdict::Repeat => {}
                    Verdict::Refused(reason) => {
                        warn!(
                            view = cast.view,
                            vote = ?cast.kind,
                            reason,
                            "refusing to send a vote that conflicts with one this validator sent before"
                        );
                        continue;
                    }
                }
                ready.push((recipients, bytes, priority));
            }
            if written {
                if let Err(failed) = store.sync().await {
                    error!(%failed, "the vote record cannot be synced; stopping this validator's votes");
                    return failed.to_string();
                }
                debug!(votes = ready.len(), "vote record synced");
            }
            for (recipients, bytes, priority) in ready {
                network.send(recipients, bytes, priority);
            }
        }
        "Simplex closed its vote channel".to_string()
    });
    Ok((VoteSender { queue }, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notarize(view: u64, proposal: u8) -> Cast {
        Cast { view, kind: Kind::Notarize([proposal; 32]) }
    }
    fn finalize(view: u64, proposal: u8) -> Cast {
        Cast { view, kind: Kind::Finalize([proposal; 32]) }
    }
    fn nullify(view: u64) -> Cast {
        Cast { view, kind: Kind::Nullify }
    }

    #[test]
    fn repeats_pass_and_conflicts_are_refused() {
        let mut record = VoteRecord::default();
        assert_eq!(record.check(&notarize(5, 1)), Verdict::New);
        assert_eq!(record.check(&notarize(5, 1)), Verdict::Repeat);
        assert!(matches!(record.check(&notarize(5, 2)), Verdict::Refused(_)));
        assert_eq!(record.check(&finalize(5, 1)), Verdict::New);
        assert!(matches!(record.check(&nullify(5)), Verdict::Refused(_)));
        assert!(matches!(record.check(&finalize(5, 2)), Verdict::Refused(_)));

        // Notarize then nullify is what an honest validator does when the view times out; a
        // finalize after the nullify is not.
        assert_eq!(record.check(&notarize(6, 3)), Verdict::New);
        assert_eq!(record.check(&nullify(6)), Verdict::New);
        assert_eq!(record.check(&nullify(6)), Verdict::Repeat);
        assert!(matches!(record.check(&finalize(6, 3)), Verdict::Refused(_)));
    }

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        for cast in [notarize(7, 9), nullify(u64::MAX), finalize(0, 255)] {
            let entry = cast.entry();
            assert_eq!(Cast::from_entry(&entry), Some(cast));
            for byte in 0..ENTRY_BYTES {
                let mut damaged = entry;
                damaged[byte] ^= 0x10;
                assert_eq!(Cast::from_entry(&damaged), None, "a flipped byte {byte} is noticed");
            }
        }
        assert_eq!(Cast::from_entry(&[0; ENTRY_BYTES]), None, "an unwritten entry is not a vote");
    }

    #[test]
    fn a_restored_record_refuses_what_the_written_one_did() {
        let casts = vec![notarize(10, 1), finalize(10, 1), nullify(11)];
        let mut record = VoteRecord::restore(&[(0, casts)]);
        assert!(matches!(record.check(&nullify(10)), Verdict::Refused(_)));
        assert!(matches!(record.check(&finalize(11, 4)), Verdict::Refused(_)));
        assert_eq!(record.check(&notarize(10, 1)), Verdict::Repeat);
        assert_eq!(record.check(&notarize(12, 1)), Verdict::New);
    }

    #[test]
    fn a_fenced_validator_votes_only_two_views_above_the_view_it_opened_at() {
        // Nothing heard yet: every vote is held back, view 1's skip vote first of all.
        assert!(fenced(None, 1));
        assert!(fenced(None, u64::MAX));
        // The cluster certified view 10: it may be in view 11, where the predecessor may have
        // voted; from view 12 on, its key never voted.
        assert!(fenced(Some(10), 1));
        assert!(fenced(Some(10), 10));
        assert!(fenced(Some(10), 11));
        assert!(!fenced(Some(10), 12));
        assert!(fenced(Some(u64::MAX), u64::MAX));
    }

    #[test]
    fn the_highest_certificate_reported_is_kept() {
        let heard = HighestCertified::default();
        assert_eq!(heard.get(), None);
        heard.record(12);
        heard.record(7);
        assert_eq!(
            heard.get(),
            Some(12),
            "an older certificate (a Byzantine peer's, a replayed one) does not lower it"
        );
        heard.record(40);
        assert_eq!(heard.get(), Some(40));
        assert!(VoteRecord::default().is_empty());
        assert!(!VoteRecord::restore(&[(0, vec![nullify(3)])]).is_empty());
    }

    #[test]
    fn two_sections_are_kept_and_older_views_refused() {
        let mut record = VoteRecord::default();
        assert_eq!(record.enter_section(0), Vec::<u64>::new());
        assert_eq!(record.check(&notarize(3, 1)), Verdict::New);
        assert_eq!(record.enter_section(1), Vec::<u64>::new());
        assert_eq!(record.floor(), 0);
        assert_eq!(record.enter_section(2), vec![0]);
        assert_eq!(record.floor(), SECTION_VIEWS);
        assert!(matches!(record.check(&nullify(3)), Verdict::Refused(_)));
        assert!(matches!(record.check(&notarize(SECTION_VIEWS - 1, 1)), Verdict::Refused(_)));
        assert_eq!(record.check(&notarize(SECTION_VIEWS, 1)), Verdict::New);
        // A jump far ahead (a validator back after a long time down) drops everything kept.
        assert_eq!(record.enter_section(9), vec![1, 2]);
        assert_eq!(record.floor(), 8 * SECTION_VIEWS);
        assert!(matches!(record.check(&notarize(SECTION_VIEWS, 1)), Verdict::Refused(_)));

        // Restored from its two kept sections, the floor is the older one.
        let restored = VoteRecord::restore(&[(4, vec![nullify(4 * SECTION_VIEWS)]), (5, Vec::new())]);
        assert_eq!(restored.floor(), 4 * SECTION_VIEWS);
    }
}
