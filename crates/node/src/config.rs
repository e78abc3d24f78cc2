//! A validator's configuration: one TOML file per validator.
//!
//! ```toml
//! chain_id = 1                    # must equal the genesis file's chain_id
//! genesis = "genesis.json"        # paths are relative to this file
//! key = "validator-0.key"         # this validator's private key (mode 0600)
//! data_dir = "data/validator-0"   # the finalized block log and the consensus journal (0700)
//! p2p_listen = "0.0.0.0:7100"     # where the other validators connect
//! api_listen = "0.0.0.0:7101"     # the HTTP API and the dashboard
//! p2p_profile = "wan"             # "lan": private addresses, fast redials; "wan": public only
//!
//! [api]
//! wait_ms = 5000                  # how long POST waits for finality before answering 202
//! waiting_requests_max = 1024     # submissions waiting at once before answering 429
//!
//! [[peers]]                       # every other genesis validator, with the address to dial
//! key = "<64 hex>"
//! p2p = "10.0.0.2:7102"
//!
//! [gateway]                       # optional: sign for callers that hold the token
//! client_key = "gateway.key"
//! token = "<at least 16 characters>"
//! ```
//!
//! A config file with a `[gateway]` section holds a secret: it must be readable by its owner
//! only (mode 0600), as key files must, or the validator refuses to start.

use crate::constants::{GATEWAY_TOKEN_LENGTH_MIN, WAIT_MS_DEFAULT, WAIT_MS_MAX, WAITING_REQUESTS_MAX_DEFAULT};
use crate::error::NodeError;
use crate::genesis_file::GenesisFile;
use crate::key_file::{self, parse_public_key, public_key_hex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tally_chain::keys::{ClientSigner, ValidatorKey, ValidatorSigner, public_key};

/// How the p2p layer treats addresses and redials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum P2pProfile {
    /// Private and loopback addresses allowed, peers redialed within a second: a LAN or one
    /// machine.
    Lan,
    /// Public addresses only, conservative redial and rate limits: the internet.
    #[default]
    Wan,
}

/// Creates a directory, and its missing parents, that only the owner can enter (mode 0700). An
/// existing directory is left as it is.
pub fn create_private_dir(path: &Path) -> Result<(), NodeError> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(|source| NodeError::io(path, source))
}

/// The HTTP API's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// How long a submission waits for finality before the answer is 202 "pending".
    pub wait_ms: u64,
    /// Submissions waiting for finality at once; more answer 429 "busy".
    pub waiting_requests_max: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self { wait_ms: WAIT_MS_DEFAULT, waiting_requests_max: WAITING_REQUESTS_MAX_DEFAULT }
    }
}

/// Another validator and where to dial it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    pub key: String,
    pub p2p: String,
}

/// Gateway mode: the validator signs requests for callers with the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    pub client_key: PathBuf,
    pub token: String,
}

/// The TOML file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub chain_id: u64,
    pub genesis: PathBuf,
    pub key: PathBuf,
    pub data_dir: PathBuf,
    pub p2p_listen: String,
    pub api_listen: String,
    #[serde(default)]
    pub p2p_profile: P2pProfile,
    #[serde(default)]
    pub api: ApiSection,
    pub peers: Vec<PeerSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewaySection>,
}

impl ConfigFile {
    /// The TOML text, with a header.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a config serializes");
        format!("# A Tally validator. Start it with `tally start --config <this file>`.\n\n{body}")
    }
}

/// Gateway mode, loaded.
#[derive(Clone)]
pub struct Gateway {
    pub signer: ClientSigner,
    pub token: String,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("client", &public_key(&self.signer)).finish_non_exhaustive()
    }
}

/// A checked configuration: keys loaded, genesis loaded, addresses parsed.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub genesis: GenesisFile,
    pub signer: ValidatorSigner,
    pub data_dir: PathBuf,
    pub p2p_listen: SocketAddr,
    pub api_listen: SocketAddr,
    pub p2p_profile: P2pProfile,
    /// Every other genesis validator and the address to dial it at.
    pub peers: Vec<(ValidatorKey, SocketAddr)>,
    pub gateway: Option<Gateway>,
    /// How long a submission waits for finality before the answer is 202.
    pub wait: Duration,
    /// Submissions waiting for finality at once before the answer is 429.
    pub waiting_requests_max: usize,
    /// A snapshot is written every this many finalized heights (not in the file: tests lower it
    /// so that a short run writes one).
    pub snapshot_interval: u64,
}

impl NodeConfig {
    /// This validator's public key.
    pub fn validator(&self) -> ValidatorKey {
        public_key(&self.signer)
    }

    /// Reads a config file and everything it names.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::io(path, source))?;
        let problem = |problem: String| NodeError::Config { path: path.to_path_buf(), problem };
        let file: ConfigFile = toml::from_str(&text).map_err(|error| problem(error.to_string()))?;
        // The token lets anyone who reads it sign as the gateway client.
        if file.gateway.is_some()
            && let Some(why) = key_file::check_private(path, "the gateway token")?
        {
            return Err(problem(why));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_file(file, base).map_err(|error| match error {
            NodeError::Config { problem: text, .. } => problem(text),
            other => other,
        })
    }

    /// Checks a parsed config file; relative paths are relative to `base`.
    pub fn from_file(file: ConfigFile, base: &Path) -> Result<Self, NodeError> {
        let problem = |text: String| NodeError::Config { path: base.to_path_buf(), problem: text };
        let resolve = |path: &Path| if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
        let genesis = GenesisFile::load(&resolve(&file.genesis))?;
        if genesis.chain_id() != file.chain_id {
            return Err(problem(format!(
                "chain_id is {} but the genesis file is of chain {}",
                file.chain_id,
                genesis.chain_id()
            )));
        }
        let signer = key_file::read(&resolve(&file.key))?;
        let validator = public_key(&signer);
        if genesis.validator(&validator).is_none() {
            return Err(problem(format!(
                "key: validator {} is not one of the genesis validators",
                public_key_hex(&validator)
            )));
        }
        let address = |field: &str, text: &str| {
            text.parse::<SocketAddr>()
                .map_err(|_| problem(format!("{field}: {text:?} is not an address such as 0.0.0.0:7100")))
        };
        let p2p_listen = address("p2p_listen", &file.p2p_listen)?;
        let api_listen = address("api_listen", &file.api_listen)?;

        let mut peers = BTreeMap::new();
        for (index, peer) in file.peers.iter().enumerate() {
            let key = parse_public_key(&peer.key).map_err(|why| problem(format!("peers[{index}].key {why}")))?;
            if key == validator {
                return Err(problem(format!("peers[{index}].key is this validator's own key")));
            }
            if genesis.validator(&key).is_none() {
                return Err(problem(format!("peers[{index}].key {} is not a genesis validator", peer.key)));
            }
            let p2p = address(&format!("peers[{index}].p2p"), &peer.p2p)?;
            if peers.insert(key, p2p).is_some() {
                return Err(problem(format!("peers[{index}].key {} is listed twice", peer.key)));
            }
        }
        if let Some(missing) =
            genesis.validators().iter().find(|entry| entry.key != validator && !peers.contains_key(&entry.key))
        {
            return Err(problem(format!(
                "peers: genesis validator {} is missing (list every other validator)",
                public_key_hex(&missing.key)
            )));
        }

        let gateway = match file.gateway {
            None => None,
            Some(section) => {
                let signer = key_file::read(&resolve(&section.client_key))?;
                if !genesis.genesis().allows_client(&public_key(&signer)) {
                    return Err(problem(format!(
                        "gateway.client_key: client {} is not listed in the genesis",
                        public_key_hex(&public_key(&signer))
                    )));
                }
                if section.token.chars().count() < GATEWAY_TOKEN_LENGTH_MIN {
                    return Err(problem(format!(
                        "gateway.token must be at least {GATEWAY_TOKEN_LENGTH_MIN} characters"
                    )));
                }
                Some(Gateway { signer, token: section.token })
            }
        };
        if file.api.wait_ms == 0 || file.api.wait_ms > WAIT_MS_MAX {
            return Err(problem(format!("api.wait_ms must be from 1 to {WAIT_MS_MAX}")));
        }
        if file.api.waiting_requests_max == 0 {
            return Err(problem("api.waiting_requests_max must be at least 1".into()));
        }
        Ok(Self {
            genesis,
            signer,
            data_dir: resolve(&file.data_dir),
            p2p_listen,
            api_listen,
            p2p_profile: file.p2p_profile,
            peers: peers.into_iter().collect(),
            gateway,
            wait: Duration::from_millis(file.api.wait_ms),
            waiting_requests_max: file.api.waiting_requests_max,
            snapshot_interval: tally_chain::consensus::SNAPSHOT_INTERVAL,
        })
    }
}
