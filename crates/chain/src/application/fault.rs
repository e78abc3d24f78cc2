//! Byzantine proposers, for the simulator: a validator configured with a `Fault` builds an
//! honest block and then corrupts it before proposing. Honest validators must refuse every such
//! block, so it can never gather a notarization. Production validators run `Fault::None`.

use crate::block::Block;
use crate::keys::{self, ClientKey};
use crate::request::{Request, RequestKind};
use tally_ledger::{Transfer, encode_transfers};

/// How a proposer misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Honest.
    #[default]
    None,
    /// Adds a request that claims a listed client but is signed by another key.
    ForgedRequest,
    /// Commits to a ledger digest other than the one after the parent.
    WrongStateDigest,
}

/// The id forged requests use: far from any honest client's ids, one per view.
pub fn forged_request_id(view: u64) -> u128 {
    u128::MAX - u128::from(view)
}

/// Corrupts an honest block as `fault` says. `victim` is the client a forgery claims to be.
pub(crate) fn corrupt(block: &Block, fault: Fault, victim: &ClientKey) -> Block {
    let mut requests = block.requests.clone();
    let mut commitment = block.header.commitment();
    match fault {
        Fault::None => return block.clone(),
        Fault::ForgedRequest => {
            let transfer = Transfer {
                id: forged_request_id(block.header.view),
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1_000_000,
                ledger: 1,
                code: 1,
                ..Transfer::default()
            };
            let body = encode_transfers(&[transfer]);
            // A well-formed signature, but by a key that is not the victim's.
            let forger = keys::signer_from_seed(u64::MAX - block.header.view);
            let signature = keys::sign(&forger, crate::constants::REQUEST_NAMESPACE, &body);
            let forged = Request::from_parts(
                RequestKind::CreateTransfers,
                forged_request_id(block.header.view),
                victim.clone(),
                body,
                signature,
            )
            .expect("one event is a valid body");
            if requests.len() == crate::constants::BLOCK_REQUESTS_MAX {
                requests.pop();
            }
            requests.insert(0, forged);
        }
        Fault::WrongStateDigest => commitment.state_digest[0] ^= 1,
    }
    let header = &block.header;
    Block::new(header.context(), header.height, header.timestamp_ns, commitment, requests)
}
