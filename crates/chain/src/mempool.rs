//! The mempool: client requests a validator has accepted and not yet seen finalized.
//!
//! Bounded by count and bytes. When full it refuses with `ChainError::Busy` (backpressure to
//! the client); it never drops a request it accepted. A request leaves the mempool only when a
//! finalized block includes it. Requests are proposed in arrival order.
//!
//! Gossip is best effort, so requests are gossiped again while held, with exponential backoff:
//! at the 2nd, 4th, 8th, ... gossip tick after arrival, within a byte budget per tick. A lost
//! message cannot strand a request, and a busy mempool does not flood the links. A request that
//! a proposed block already includes is not gossiped again for its first `PROPOSED_TICKS` ticks
//! (it is on its way to finality); after that it is, since that block may never be finalized (a
//! proposal that reached too few validators, whose view then timed out), and the next leaders
//! must hold the request to propose it.

use crate::constants::{MEMPOOL_REQUESTS_MAX, MEMPOOL_SIZE_MAX};
use crate::error::ChainError;
use crate::request::{Request, RequestKey, VerifiedRequest};
use commonware_codec::EncodeSize as _;
use std::collections::{BTreeMap, HashMap};

/// Gossip ticks during which a request that a proposed block includes is not gossiped again.
pub const PROPOSED_TICKS: u32 = 8;

/// A held request and the gossip ticks it has been held for.
#[derive(Debug)]
struct Held {
    request: Request,
    ticks: u32,
}

/// Pending client requests in arrival order.
#[derive(Debug, Default)]
pub struct Mempool {
    /// Arrival sequence number to request.
    requests: BTreeMap<u64, Held>,
    /// Request name to arrival sequence number.
    sequence_by_key: HashMap<RequestKey, u64>,
    sequence_next: u64,
    size: usize,
}

impl Mempool {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Encoded bytes held.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The held request of this name.
    pub fn get(&self, key: &RequestKey) -> Option<&Request> {
        self.sequence_by_key.get(key).map(|sequence| &self.requests[sequence].request)
    }

    /// The names of the held requests, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &RequestKey> {
        self.sequence_by_key.keys()
    }

    pub fn contains(&self, key: &RequestKey) -> bool {
        self.sequence_by_key.contains_key(key)
    }

    /// Accepts a request whose signature was checked (blocks skip the check for a request the
    /// mempool holds). A request already held is a duplicate (a client retry) if it asks the
    /// same, and a conflict if it reuses the name for other events; a full mempool answers busy.
    /// A duplicate signed to expire later takes the held copy's place (in its turn), so that a
    /// client that signs a retry again is not held to the first copy's expiry.
    pub fn insert(&mut self, request: VerifiedRequest) -> Result<(), ChainError> {
        let request = request.into_request();
        let key = request.key();
        if let Some(&sequence) = self.sequence_by_key.get(&key) {
            let held = &mut self.requests.get_mut(&sequence).expect("indexed request is held").request;
            if held.kind() == request.kind() && held.body() == request.body() {
                if request.expires_ns() > held.expires_ns() {
                    // Same kind, id and body, so the same encoded size.
                    *held = request;
                }
                return Err(ChainError::DuplicateRequest { id: key.id });
            }
            return Err(ChainError::RequestIdConflict { id: key.id });
        }
        let size = request.encode_size();
        if self.requests.len() >= MEMPOOL_REQUESTS_MAX || self.size + size > MEMPOOL_SIZE_MAX {
            return Err(ChainError::Busy);
        }
        let sequence = self.sequence_next;
        self.sequence_next += 1;
        self.requests.insert(sequence, Held { request, ticks: 0 });
        self.sequence_by_key.insert(key, sequence);
        self.size += size;
        self.check_invariants();
        Ok(())
    }

    /// Drops the requests that expire at or before `timestamp_ns` (a finalized block's): every
    /// later block's timestamp is past it, so none can include them. Returns how many.
    pub fn remove_expired(&mut self, timestamp_ns: u64) -> usize {
        let expired: Vec<RequestKey> = self
            .requests
            .values()
            .filter(|held| held.request.expires_ns() <= timestamp_ns)
            .map(|held| held.request.key())
            .collect();
        self.remove(&expired);
        expired.len()
    }

    /// Removes requests (because a finalized block included them).
    pub fn remove<'a>(&mut self, keys: impl IntoIterator<Item = &'a RequestKey>) {
        for key in keys {
            if let Some(sequence) = self.sequence_by_key.remove(key) {
                let held = self.requests.remove(&sequence).expect("indexed request is held");
                self.size -= held.request.encode_size();
            }
        }
        self.check_invariants();
    }

    /// The oldest requests a block with `timestamp_ns` may include (`Request::check_expiry`),
    /// skipping those `skip` names, up to `count_max` requests and `size_max` encoded bytes.
    pub fn select(
        &self,
        timestamp_ns: u64,
        skip: impl Fn(&RequestKey) -> bool,
        count_max: usize,
        size_max: usize,
    ) -> Vec<Request> {
        let mut selected = Vec::new();
        let mut size = 0;
        for Held { request, .. } in self.requests.values() {
            if selected.len() == count_max {
                break;
            }
            if request.check_expiry(timestamp_ns).is_err() || skip(&request.key()) {
                continue;
            }
            let request_size = request.encode_size();
            if size + request_size > size_max {
                continue;
            }
            size += request_size;
            selected.push(request.clone());
        }
        selected
    }

    /// Counts one gossip tick for every held request and returns those due to be gossiped
    /// again (held for 2, 4, 8, ... ticks), oldest first, within `size_max` encoded bytes,
    /// leaving out those `proposed` names while they are younger than `PROPOSED_TICKS`. With
    /// `all_due` (a peer connected since the last tick, and missed what was gossiped before),
    /// every held request is due. A due request beyond the budget waits for its next turn.
    pub fn tick_gossip(
        &mut self,
        proposed: impl Fn(&RequestKey) -> bool,
        size_max: usize,
        all_due: bool,
    ) -> Vec<Request> {
        let mut due = Vec::new();
        let mut size = 0;
        for held in self.requests.values_mut() {
            held.ticks = held.ticks.saturating_add(1);
            if !all_due && (held.ticks < 2 || !held.ticks.is_power_of_two()) {
                continue;
            }
            if held.ticks < PROPOSED_TICKS && proposed(&held.request.key()) {
                continue;
            }
            let request_size = held.request.encode_size();
            if size + request_size <= size_max {
                size += request_size;
                due.push(held.request.clone());
            }
        }
        due
    }

    fn check_invariants(&self) {
        assert_eq!(self.requests.len(), self.sequence_by_key.len());
        assert!(self.requests.len() <= MEMPOOL_REQUESTS_MAX);
        assert!(self.size <= MEMPOOL_SIZE_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::REQUEST_TTL_MAX_NS;
    use crate::keys::signer_from_seed;
    use tally_ledger::Transfer;

    const EXPIRES_NS: u64 = 300_000_000_000;

    fn request(id: u128) -> VerifiedRequest {
        let transfer = Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        Request::create_transfers(1, id, EXPIRES_NS, &signer_from_seed(1), &[transfer]).unwrap().verify(1).unwrap()
    }

    #[test]
    fn refuses_duplicates_and_answers_busy_when_full() {
        let mut mempool = Mempool::new();
        mempool.insert(request(0)).unwrap();
        assert_eq!(mempool.insert(request(0)), Err(ChainError::DuplicateRequest { id: 0 }));
        for id in 1..MEMPOOL_REQUESTS_MAX as u128 {
            mempool.insert(request(id)).unwrap();
        }
        assert_eq!(mempool.insert(request(MEMPOOL_REQUESTS_MAX as u128)), Err(ChainError::Busy));
        // Nothing accepted was dropped.
        assert_eq!(mempool.len(), MEMPOOL_REQUESTS_MAX);
        mempool.remove([&request(0).key()]);
        mempool.insert(request(MEMPOOL_REQUESTS_MAX as u128)).unwrap();
    }

    #[test]
    fn a_block_gets_only_requests_it_may_include_and_expired_ones_are_dropped() {
        let mut mempool = Mempool::new();
        let signer = signer_from_seed(1);
        let transfer = Transfer {
            id: 1,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let far = REQUEST_TTL_MAX_NS + 2_000;
        let soon = Request::create_transfers(1, 1, 1_000, &signer, std::slice::from_ref(&transfer)).unwrap();
        let later = Request::create_transfers(1, 2, far, &signer, &[transfer]).unwrap();
        mempool.insert(soon.clone().verify(1).unwrap()).unwrap();
        mempool.insert(later.clone().verify(1).unwrap()).unwrap();
        // The later one expires too far ahead of a block at 1,000 to be included by it.
        assert_eq!(mempool.select(1_000, |_| false, 16, usize::MAX), [soon.clone()]);
        assert_eq!(mempool.select(2_000, |_| false, 16, usize::MAX), [later.clone()], "the first expired");
        assert_eq!(mempool.remove_expired(999), 0, "a block after 999 may still include it");
        assert_eq!(mempool.remove_expired(1_000), 1, "every block after 1,000 is past its expiry");
        assert_eq!(mempool.len(), 1);
        assert!(mempool.contains(&later.key()));
        // The same request signed again to expire later takes the held copy's place.
        let transfers = tally_ledger::decode_transfers(later.body()).unwrap();
        let resigned = Request::create_transfers(1, 2, far + 1, &signer, &transfers).unwrap();
        assert_eq!(mempool.insert(resigned.clone().verify(1).unwrap()), Err(ChainError::DuplicateRequest { id: 2 }));
        assert_eq!(mempool.get(&later.key()), Some(&resigned));
        assert_eq!(mempool.insert(later.clone().verify(1).unwrap()), Err(ChainError::DuplicateRequest { id: 2 }));
        assert_eq!(mempool.get(&later.key()), Some(&resigned), "an earlier expiry does not replace a later one");
    }

    #[test]
    fn a_held_id_with_other_events_is_a_conflict() {
        let mut mempool = Mempool::new();
        mempool.insert(request(7)).unwrap();
        let mut other =
            Transfer { id: 7, debit_account_id: 1, credit_account_id: 2, ledger: 1, code: 1, ..Transfer::default() };
        other.amount = 2;
        let conflicting =
            Request::create_transfers(1, 7, EXPIRES_NS, &signer_from_seed(1), &[other]).unwrap().verify(1).unwrap();
        assert_eq!(conflicting.key(), request(7).key());
        assert_ne!(conflicting.events_digest(), request(7).events_digest());
        assert_eq!(mempool.insert(conflicting), Err(ChainError::RequestIdConflict { id: 7 }));
        // The same events are a retry, and the held request is the first one.
        assert_eq!(mempool.insert(request(7)), Err(ChainError::DuplicateRequest { id: 7 }));
        assert_eq!(mempool.get(&request(7).key()), Some(&*request(7)));
        assert_eq!(mempool.len(), 1);
    }

    #[test]
    fn selects_in_arrival_order_within_limits() {
        let mut mempool = Mempool::new();
        for id in [5, 3, 9, 1] {
            mempool.insert(request(id)).unwrap();
        }
        let ids = |requests: Vec<Request>| requests.iter().map(Request::id).collect::<Vec<_>>();
        assert_eq!(ids(mempool.select(0, |_| false, 10, usize::MAX)), [5, 3, 9, 1]);
        assert_eq!(ids(mempool.select(0, |_| false, 2, usize::MAX)), [5, 3]);
        assert_eq!(ids(mempool.select(0, |key| key.id == 3, 2, usize::MAX)), [5, 9]);
        let one = request(0).encode_size();
        assert_eq!(ids(mempool.select(0, |_| false, 10, 2 * one)), [5, 3]);
        mempool.remove([&request(9).key(), &request(5).key()]);
        assert_eq!(ids(mempool.select(0, |_| false, 10, usize::MAX)), [3, 1]);
        assert_eq!(mempool.size(), 2 * one);
    }

    #[test]
    fn gossips_again_with_backoff_within_a_budget() {
        let mut mempool = Mempool::new();
        mempool.insert(request(1)).unwrap();
        let ids = |requests: Vec<Request>| requests.iter().map(Request::id).collect::<Vec<_>>();
        let due: Vec<Vec<u128>> = (1..=9).map(|_| ids(mempool.tick_gossip(|_| false, usize::MAX, false))).collect();
        let empty: Vec<u128> = Vec::new();
        assert_eq!(
            due,
            [
                empty.clone(),
                vec![1],
                empty.clone(),
                vec![1],
                empty.clone(),
                empty.clone(),
                empty.clone(),
                vec![1],
                empty
            ]
        );
        // Proposed requests and requests beyond the budget are not sent.
        let mut mempool = Mempool::new();
        for id in [1, 2, 3] {
            mempool.insert(request(id)).unwrap();
        }
        let one = request(0).encode_size();
        mempool.tick_gossip(|_| false, usize::MAX, false);
        assert_eq!(ids(mempool.tick_gossip(|key| key.id == 2, 2 * one, false)), [1, 3]);
        mempool.tick_gossip(|_| false, usize::MAX, false);
        assert_eq!(ids(mempool.tick_gossip(|_| false, one, false)), [1]);
    }

    #[test]
    fn a_proposed_request_is_gossiped_again_once_its_block_is_overdue() {
        // Its block may never be finalized: after `PROPOSED_TICKS` it goes out again.
        let mut mempool = Mempool::new();
        mempool.insert(request(1)).unwrap();
        let sent: Vec<u32> =
            (1..=2 * PROPOSED_TICKS).filter(|_| !mempool.tick_gossip(|_| true, usize::MAX, false).is_empty()).collect();
        assert_eq!(sent, [PROPOSED_TICKS, 2 * PROPOSED_TICKS]);
    }

    #[test]
    fn a_peer_that_connects_gets_every_held_request_not_yet_proposed() {
        let mut mempool = Mempool::new();
        for id in [1, 2, 3] {
            mempool.insert(request(id)).unwrap();
        }
        let ids = |requests: Vec<Request>| requests.iter().map(Request::id).collect::<Vec<_>>();
        // The first tick: nothing is due, unless a peer connected.
        assert_eq!(ids(mempool.tick_gossip(|key| key.id == 2, usize::MAX, true)), [1, 3]);
        // The backoff goes on as before: all three are due at the 2nd tick.
        assert_eq!(ids(mempool.tick_gossip(|_| false, usize::MAX, false)), [1, 2, 3]);
        assert_eq!(ids(mempool.tick_gossip(|_| false, usize::MAX, false)), Vec::<u128>::new());
    }
}
