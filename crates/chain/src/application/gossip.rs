//! Requests gossiped by peers, decoded and checked on a task of their own, beside the actor.
//!
//! A request's signature covers its whole body (up to a megabyte), so checking it is the
//! costliest thing done per request before execution. Done here, it runs in parallel with the
//! actor (on another core under the tokio runtime), and the actor receives only requests whose
//! signature was checked ([`VerifiedRequest`]): each signature is checked once per validator.
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

/// Checked requests queued for the actor. When it is full the checker waits, and the network
/// queues (then drops) gossip: peers gossip a held request again (`Mempool::tick_gossip`).
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
        let fault = match Request::decode_cfg(bytes, &()) {
            Err(error) => Err(format!("a request that does not decode ({error})")),
            Ok(request) if !genesis.allows_client(request.client()) => {
                Err(format!("request {} of client {}, which the genesis does not list", request.id(), request.client()))
            }
            Ok(request) => {
                let id = request.id();
                request.verify(genesis.chain_id()).map_err(|_| format!("request {id} with a bad signature"))
            }
        };
        match fault {
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
