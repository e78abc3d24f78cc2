//! Requests gossiped by peers, decoded and checked on a task of their own, beside the actor.
//!
//! A request's signature covers its whole body (up to a megabyte), so checking it is the
//! costliest thing done per request before execution. Done here, it runs in parallel with the
//! actor (on a thread of its own under the tokio runtime), and the actor receives only requests
//! whose signature was checked ([`VerifiedRequest`]): the actor checks none, and a request the
//! mempool holds is not checked again when a block includes it. (A request gossiped again by
//! several peers is checked on each copy: the mempool's duplicate check comes after.)
//!
//! Honest validators gossip only requests they checked, so a peer that sends bytes that do not
//! decode, a request from a client the genesis does not list, or a bad signature is faulty, and
//! is blocked.

use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use crate::request::{Request, VerifiedRequest};
use commonware_codec::Decode as _;
use commonware_p2p::{Blocker, Receiver};
use commonware_utils::channel::mpsc;
use tracing::{debug, warn};

/// Checked requests queued for the actor: at most 64 MiB (a request is at most 1 MiB). When it
/// is full the checker waits, and the network queues (then drops) gossip: peers gossip a held
/// request again (`Mempool::tick_gossip`).
pub const CHECKED_QUEUE_MAX: usize = 64;

/// Decodes and checks each request peers gossip, hands the good ones to the actor through
/// `checked`, and blocks the peers that sent the others. Returns when the network or the actor
/// stops.
pub async fn check_gossip<R, B>(mut gossip: R, genesis: Genesis, mut blocker: B, checked: mpsc::Sender<VerifiedRequest>)
where
    R: Receiver<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey>,
{
    while let Ok((peer, bytes)) = gossip.recv().await {
        let judged = match Request::decode_cfg(bytes, &()) {
            Err(error) => Err(format!("a request that does not decode ({error})")),
            Ok(request) if !genesis.allows_client(request.client()) => {
                Err(format!("request {} of client {}, which the genesis does not list", request.id(), request.client()))
            }
            Ok(request) => {
                let id = request.id();
                request.verify(genesis.chain_id()).map_err(|_| format!("request {id} with a bad signature"))
            }
        };
        match judged {
            Ok(request) => {
                debug!(%peer, id = request.id(), "received a gossiped request");
                if checked.send(request).await.is_err() {
                    return;
                }
            }
            Err(what) => {
                warn!(%peer, "blocking a peer: it gossiped {what}");
                blocker.block(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{public_key, signer_from_seed};
    use commonware_codec::Encode as _;
    use commonware_p2p::BlockedSubscription;
    use commonware_runtime::{IoBuf, Runner as _, deterministic};
    use commonware_utils::NZUsize;
    use commonware_utils::channel::ring;
    use std::collections::VecDeque;
    use std::num::NonZeroUsize;
    use std::sync::{Arc, Mutex};
    use tally_ledger::Transfer;

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    const CHAIN: u64 = 5;

    /// Gossip that arrives in a fixed order, then the network closes.
    #[derive(Debug)]
    struct Arrivals(VecDeque<(ValidatorKey, IoBuf)>);

    impl Receiver for Arrivals {
        type Error = std::io::Error;
        type PublicKey = ValidatorKey;

        async fn recv(&mut self) -> Result<commonware_p2p::Message<ValidatorKey>, std::io::Error> {
            self.0.pop_front().ok_or_else(|| std::io::Error::other("closed"))
        }

        fn capacity(&self) -> NonZeroUsize {
            NZUsize!(16)
        }
    }

    /// Remembers whom it blocked.
    #[derive(Clone, Default)]
    struct Blocked(Arc<Mutex<Vec<ValidatorKey>>>);

    impl Blocker for Blocked {
        type PublicKey = ValidatorKey;

        fn block(&mut self, peer: ValidatorKey) -> commonware_actor::Feedback {
            self.0.lock().unwrap().push(peer);
            commonware_actor::Feedback::Ok
        }

        fn blocked(&mut self) -> BlockedSubscription<ValidatorKey> {
            ring::channel(NZUsize!(1)).1
        }
    }

    fn transfer(id: u128) -> Transfer {
        Transfer { id, debit_account_id: 1, credit_account_id: 2, amount: 1, ledger: 1, code: 1, ..Transfer::default() }
    }

    #[test]
    fn only_checked_requests_reach_the_actor_and_each_faulty_sender_is_blocked() {
        let client = signer_from_seed(60);
        let stranger = signer_from_seed(61);
        let genesis =
            Genesis::new(CHAIN, vec![public_key(&signer_from_seed(0))], vec![public_key(&client)], 1_000).unwrap();
        let peer = |seed| public_key(&signer_from_seed(seed));
        let good = Request::create_transfers(CHAIN, 1, EXPIRES_NS, &client, &[transfer(1)]).unwrap();
        let unlisted = Request::create_transfers(CHAIN, 2, EXPIRES_NS, &stranger, &[transfer(2)]).unwrap();
        let other_chain = Request::create_transfers(CHAIN + 1, 3, EXPIRES_NS, &client, &[transfer(3)]).unwrap();
        let forged = Request::from_parts(
            good.kind(),
            good.id(),
            good.expires_ns(),
            good.client().clone(),
            good.body().to_vec(),
            unlisted.signature().clone(),
        )
        .unwrap();
        let arrivals = Arrivals(VecDeque::from([
            (peer(1), IoBuf::from(vec![0xff; 10])),
            (peer(2), IoBuf::from(unlisted.encode())),
            (peer(3), IoBuf::from(forged.encode())),
            (peer(4), IoBuf::from(other_chain.encode())),
            (peer(5), IoBuf::from(good.encode())),
        ]));
        let blocked = Blocked::default();
        let seen = blocked.clone();
        deterministic::Runner::default().start(|_| async move {
            let (checked, mut received) = mpsc::channel(CHECKED_QUEUE_MAX);
            check_gossip(arrivals, genesis, blocked, checked).await;
            let request = received.recv().await.expect("the good request");
            assert_eq!(*request, good);
            assert!(received.recv().await.is_none(), "nothing else reaches the actor");
        });
        assert_eq!(*seen.0.lock().unwrap(), vec![peer(1), peer(2), peer(3), peer(4)]);
    }
}
