//! One Tally validator on the real runtime: its configuration, authenticated TCP to the other
//! validators, its data directory, and the HTTP/JSON API it serves.
//!
//! - `config.rs`: the TOML file of one validator, checked against the genesis.
//! - `genesis_file.rs`: the genesis as a JSON file, with the validators' addresses.
//! - `key_file.rs`: private keys as hex files with mode 0600.
//! - `cluster.rs`: a whole cluster's files in one directory (`tally init`, `tally dev`).
//! - `node.rs`: `run(config)` starts the runtime, p2p, the validator and the API.
//! - `api/`: the HTTP/JSON API (docs/API.md); `api/routes.rs` lists every route.
//! - `metrics.rs`: the Prometheus metrics.

pub mod api;
pub mod cluster;
pub mod config;
pub mod constants;
pub mod error;
pub mod genesis_file;
pub mod hex;
pub mod key_file;
pub mod metrics;
pub mod node;

pub use config::NodeConfig;
pub use error::NodeError;
pub use node::{RunningNode, run};
