//! The one error enum of the node crate: what stops a validator from starting or running.
//! Bad input to the HTTP API is not an error of this kind; `api::failure` answers it.

use std::path::PathBuf;

/// Why a validator could not be configured, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    // The causes are part of the message (not `source()`), so that a plain `Display` and
    // anyhow's chain both print them once.
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("key file {path}: {problem}")]
    KeyFile { path: PathBuf, problem: String },
    #[error("genesis file {path}: {problem}")]
    Genesis { path: PathBuf, problem: String },
    #[error("config file {path}: {problem}")]
    Config { path: PathBuf, problem: String },
    #[error("cannot listen on {address} for {purpose}: {cause}")]
    Listen { address: std::net::SocketAddr, purpose: &'static str, cause: std::io::Error },
    #[error("cluster layout: {0}")]
    Layout(String),
    #[error("cannot seed the data directory {path}: {problem}")]
    Seed { path: PathBuf, problem: String },
    #[error("the validator failed to start: {0}")]
    Start(String),
    #[error("the validator's runtime crashed: {0}")]
    Crashed(String),
}

impl NodeError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self::Io { path: path.into(), cause }
    }
}
