//! The mempool: client requests a validator has accepted and not yet seen finalized.
//!
//! Bounded by count and bytes. When full it refuses with `ChainError::Busy` (backpressure to
//! the client); it never drops a request it accepted. A request leaves the mempool only when a
//! finalized block includes it. Requests are proposed in arrival order.

use crate::constants::{MEMPOOL_REQUESTS_MAX, MEMPOOL_SIZE_MAX};
use crate::error::ChainError;
use crate::request::{Request, RequestKey};
use commonware_codec::EncodeSize as _;
use std::collections::{BTreeMap, HashMap};

/// Pending client requests in arrival order.
#[derive(Debug, Default)]
pub struct Mempool {
    /// Arrival sequence number to request.
    requests: BTreeMap<u64, Request>,
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

    pub fn contains(&self, key: &RequestKey) -> bool {
        self.sequence_by_key.contains_key(key)
    }

    /// Accepts a request whose signature the caller verified. A request already held is a
    /// duplicate (a client retry); a full mempool answers busy.
    pub fn insert(&mut self, request: Request) -> Result<(), ChainError> {
        let key = request.key();
        if self.sequence_by_key.contains_key(&key) {
            return Err(ChainError::DuplicateRequest { id: key.id });
        }
        let size = request.encode_size();
        if self.requests.len() >= MEMPOOL_REQUESTS_MAX || self.size + size > MEMPOOL_SIZE_MAX {
            return Err(ChainError::Busy);
        }
        let sequence = self.sequence_next;
        self.sequence_next += 1;
        self.requests.insert(sequence, request);
        self.sequence_by_key.insert(key, sequence);
        self.size += size;
        self.check_invariants();
        Ok(())
    }

    /// Removes requests (because a finalized block included them).
    pub fn remove<'a>(&mut self, keys: impl IntoIterator<Item = &'a RequestKey>) {
        for key in keys {
            if let Some(sequence) = self.sequence_by_key.remove(key) {
                let request = self.requests.remove(&sequence).expect("indexed request is held");
                self.size -= request.encode_size();
            }
        }
        self.check_invariants();
    }

    /// The oldest requests, skipping those `skip` names, up to `count_max` requests and
    /// `size_max` encoded bytes.
    pub fn select(&self, skip: impl Fn(&RequestKey) -> bool, count_max: usize, size_max: usize) -> Vec<Request> {
        let mut selected = Vec::new();
        let mut size = 0;
        for request in self.requests.values() {
            if selected.len() == count_max {
                break;
            }
            if skip(&request.key()) {
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

    fn check_invariants(&self) {
        assert_eq!(self.requests.len(), self.sequence_by_key.len());
        assert!(self.requests.len() <= MEMPOOL_REQUESTS_MAX);
        assert!(self.size <= MEMPOOL_SIZE_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::signer_from_seed;
    use tally_ledger::Transfer;

    fn request(id: u128) -> Request {
        let transfer = Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        Request::create_transfers(1, id, &signer_from_seed(1), &[transfer]).unwrap()
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
    fn selects_in_arrival_order_within_limits() {
        let mut mempool = Mempool::new();
        for id in [5, 3, 9, 1] {
            mempool.insert(request(id)).unwrap();
        }
        let ids = |requests: Vec<Request>| requests.iter().map(Request::id).collect::<Vec<_>>();
        assert_eq!(ids(mempool.select(|_| false, 10, usize::MAX)), [5, 3, 9, 1]);
        assert_eq!(ids(mempool.select(|_| false, 2, usize::MAX)), [5, 3]);
        assert_eq!(ids(mempool.select(|key| key.id == 3, 2, usize::MAX)), [5, 9]);
        let one = request(0).encode_size();
        assert_eq!(ids(mempool.select(|_| false, 10, 2 * one)), [5, 3]);
        mempool.remove([&request(9).key(), &request(5).key()]);
        assert_eq!(ids(mempool.select(|_| false, 10, usize::MAX)), [3, 1]);
        assert_eq!(mempool.size(), 2 * one);
    }
}
