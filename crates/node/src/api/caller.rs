//! Who is calling, and what the validator lets one caller hold: a share of the body budget per
//! client address (`BODY_BYTES_PER_ADDRESS_MAX`), and the write slots (`WRITES_IN_FLIGHT_MAX`),
//! which only a checked request takes.
//!
//! The server (`serve.rs`) puts each connection's peer address in its requests' extensions
//! (`ConnectInfo`); the router holds one `Limits` for every handler (`router`).

use crate::api::ApiState;
use crate::api::failure::Failure;
use crate::constants::{BODY_BYTES_IN_FLIGHT_MAX, BODY_BYTES_PER_ADDRESS_MAX, WRITES_IN_FLIGHT_MAX};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Body bytes held per client address: the synchronous bookkeeping behind the per-address
/// share. An address holding nothing has no entry, so the map holds at most one entry per body
/// being read.
#[derive(Debug, Default)]
pub struct AddressShares {
    held: HashMap<IpAddr, usize>,
}

impl AddressShares {
    /// Takes `bytes` more for `address`, or returns false if that would put it over its share.
    pub fn take(&mut self, address: IpAddr, bytes: usize) -> bool {
        let held = self.held.entry(address).or_insert(0);
        if *held + bytes > BODY_BYTES_PER_ADDRESS_MAX {
            if *held == 0 {
                self.held.remove(&address);
            }
            return false;
        }
        *held += bytes;
        true
    }

    /// Gives back `bytes` that `address` took.
    pub fn give(&mut self, address: IpAddr, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let held = self.held.get_mut(&address).expect("an address gives back only what it took");
        assert!(*held >= bytes, "an address gives back only what it took");
        *held -= bytes;
        if *held == 0 {
            self.held.remove(&address);
        }
    }

    /// Bytes `address` holds.
    pub fn held(&self, address: IpAddr) -> usize {
        self.held.get(&address).copied().unwrap_or(0)
    }

    /// Addresses holding bytes.
    pub fn addresses(&self) -> usize {
        self.held.len()
    }
}

/// What the router's handlers share beyond `Shared`.
#[derive(Debug)]
pub struct Limits {
    /// One permit per write in progress, from its submission to its answer.
    writes: Arc<Semaphore>,
    shares: Mutex<AddressShares>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { writes: Arc::new(Semaphore::new(WRITES_IN_FLIGHT_MAX)), shares: Mutex::default() }
    }
}

impl Limits {
    fn shares(&self) -> std::sync::MutexGuard<'_, AddressShares> {
        // Only assertion-checked methods change the shares; a panic in one has been reported
        // already, and the bytes must still be given back.
        self.shares.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The caller of a request: its address, and the limits it is held to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub address: IpAddr,
    limits: Arc<Limits>,
}

impl Caller {
    /// A caller from `address`, under `limits`.
    pub fn new(address: IpAddr, limits: Arc<Limits>) -> Self {
        Self { address, limits }
    }

    /// A write slot, held until the write is answered; 429 `busy` at once when every slot is
    /// taken. Take it only for a request that has been read and checked.
    pub fn write_slot(&self) -> Result<OwnedSemaphorePermit, Failure> {
        self.limits.writes.clone().try_acquire_owned().map_err(|_| {
            Failure::busy(format!("{WRITES_IN_FLIGHT_MAX} writes are in progress here already; retry shortly"))
        })
    }

    /// An empty share of the body budget, which grows as a body's bytes arrive.
    pub fn body_share(&self) -> BodyShare {
        BodyShare { caller: self.clone(), bytes: 0, budget: None }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &ApiState) -> Result<Self, Self::Rejection> {
        // A request that did not come through `serve` (none does in production) counts as one
        // unknown address.
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |ConnectInfo(peer)| peer.ip());
        let limits =
            parts.extensions.get::<Arc<Limits>>().cloned().expect("the router adds its limits to every request");
        Ok(Self { address, limits })
    }
}

/// The body bytes one request holds: of its address's share and of the validator's budget.
/// Dropping it gives them back.
#[derive(Debug)]
pub struct BodyShare {
    caller: Caller,
    bytes: usize,
    budget: Option<OwnedSemaphorePermit>,
}

impl BodyShare {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `bytes` more, of the address's share and then of `budget`; 429 `busy` if either is
    /// used up (what was taken before stays held until the share is dropped).
    pub fn grow(&mut self, budget: &Arc<Semaphore>, bytes: usize) -> Result<(), Failure> {
        if bytes == 0 {
            return Ok(());
        }
        if !self.caller.limits.shares().take(self.caller.address, bytes) {
            return Err(Failure::busy(format!(
                "requests from {} hold {BODY_BYTES_PER_ADDRESS_MAX} bytes of request bodies already, the most one \
                 address may; retry shortly",
                self.caller.address
            )));
        }
        let permits = u32::try_from(bytes).expect("a chunk is at most BODY_SIZE_MAX bytes");
        let Ok(taken) = budget.clone().try_acquire_many_owned(permits) else {
            self.caller.limits.shares().give(self.caller.address, bytes);
            return Err(Failure::busy(format!(
                "this validator holds {BODY_BYTES_IN_FLIGHT_MAX} bytes of request bodies already; retry shortly"
            )));
        };
        match self.budget.as_mut() {
            Some(held) => held.merge(taken),
            None => self.budget = Some(taken),
        }
        self.bytes += bytes;
        assert_eq!(self.budget.as_ref().map_or(0, OwnedSemaphorePermit::num_permits), self.bytes);
        Ok(())
    }
}

impl Drop for BodyShare {
    fn drop(&mut self) {
        self.caller.limits.shares().give(self.caller.address, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn an_address_holds_at_most_its_share() {
        let mut shares = AddressShares::default();
        assert!(shares.take(address(1), BODY_BYTES_PER_ADDRESS_MAX - 10));
        assert!(!shares.take(address(1), 11));
        assert!(shares.take(address(1), 10));
        assert!(!shares.take(address(1), 1));
        // Another address has a share of its own.
        assert!(shares.take(address(2), BODY_BYTES_PER_ADDRESS_MAX));
        shares.give(address(1), BODY_BYTES_PER_ADDRESS_MAX);
        assert_eq!(shares.held(address(1)), 0);
        assert_eq!(shares.addresses(), 1, "an address holding nothing leaves no entry");
        // A refusal leaves no entry either.
        assert!(!shares.take(address(3), BODY_BYTES_PER_ADDRESS_MAX + 1));
        assert_eq!(shares.addresses(), 1);
    }

    #[test]
    fn a_body_share_gives_back_what_it_took() {
        let limits = Arc::new(Limits::default());
        let budget = Arc::new(Semaphore::new(BODY_BYTES_IN_FLIGHT_MAX));
        let caller = Caller::new(address(1), limits.clone());
        let mut first = caller.body_share();
        first.grow(&budget, BODY_BYTES_PER_ADDRESS_MAX - 1).unwrap();
        let mut second = caller.body_share();
        assert_eq!(second.grow(&budget, 2).unwrap_err().code, "busy");
        second.grow(&budget, 1).unwrap();
        assert_eq!(limits.shares().held(address(1)), BODY_BYTES_PER_ADDRESS_MAX);
        assert_eq!(budget.available_permits(), BODY_BYTES_IN_FLIGHT_MAX - BODY_BYTES_PER_ADDRESS_MAX);
        drop(first);
        drop(second);
        assert_eq!(limits.shares().addresses(), 0);
        assert_eq!(budget.available_permits(), BODY_BYTES_IN_FLIGHT_MAX);
    }

    #[test]
    fn over_the_validator_budget_the_address_share_is_given_back() {
        let limits = Arc::new(Limits::default());
        let budget = Arc::new(Semaphore::new(10));
        let mut share = Caller::new(address(1), limits.clone()).body_share();
        share.grow(&budget, 10).unwrap();
        assert_eq!(share.grow(&budget, 1).unwrap_err().code, "busy");
        assert_eq!(share.bytes(), 10);
        assert_eq!(limits.shares().held(address(1)), 10);
    }
}
