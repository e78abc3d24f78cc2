//! The Simplex application: proposes blocks from the mempool, verifies peers' blocks, and
//! executes the finalized blocks marshal delivers in order. `state.rs` decides, `actor.rs` moves
//! messages, `ingress.rs` defines them, `marshaled.rs` is the side marshal calls, `repair.rs`
//! decides how damaged finalized records are found and fetched again, `snapshot_fetch.rs` how a
//! peer's snapshot is fetched from several peers at once, `evidence_file.rs` where evidence of
//! misbehaviour is kept, `gossip.rs` how peers' gossiped requests are checked beside the actor.

pub mod activity;
pub mod actor;
pub mod evidence_file;
pub mod gossip;
pub mod ingress;
pub mod log;
pub mod marshaled;
pub mod repair;
pub mod snapshot_fetch;
pub mod snapshots;
pub mod state;

pub use activity::{Observed, ValidatorActivity};
pub use actor::{Actor, ActorConfig, Links};
pub use ingress::Mailbox;
pub use state::{ApplicationState, FinalizedBlock, FinalizedEntry, History, OutcomeLookup, Status};
