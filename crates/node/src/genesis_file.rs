//! The genesis as a file: what every validator and client of a cluster agrees on before the
//! first block, plus where each validator listens. JSON:
//!
//! ```json
//! {
//!   "chain_id": 1,
//!   "timestamp_ns": 1767225600000000000,
//!   "validators": [
//!     { "key": "<64 hex>", "p2p": "10.0.0.1:7100", "api": "http://10.0.0.1:7101" }
//!   ],
//!   "clients": ["<64 hex>"]
//! }
//! ```
//!
//! The chain id, the validator keys, the client keys and the timestamp make the genesis block
//! (`tally_chain::Genesis`); the addresses are for dialing and for clients, and changing them
//! does not change the chain. A chain re-founded from a backup of another also has
//!
//! ```json
//!   "founding": { "chain_id": 1, "height": 512, "block": "<64 hex>", "state_digest": "<64 hex>" }
//! ```
//!
//! the backup's chain and height, the block at that height, and the digest of the state the new
//! chain starts from (`tally_chain::genesis::Founding`); it is part of the genesis block too.

use crate::error::NodeError;
use crate::key_file::{parse_public_key, public_key_hex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use tally_chain::Genesis;
use tally_chain::genesis::Founding;
use tally_chain::keys::{ClientKey, ValidatorKey};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenesis {
    chain_id: u64,
    timestamp_ns: u64,
    validators: Vec<RawValidator>,
    clients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    founding: Option<RawFounding>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFounding {
    chain_id: u64,
    height: u64,
    block: String,
    state_digest: String,
}

/// 32 bytes as 64 hex digits.
fn digest_from_hex(text: &str, name: &str) -> Result<[u8; 32], String> {
    let bytes = crate::hex::decode(text, 32).map_err(|why| format!("founding.{name} {why}"))?;
    Ok(<[u8; 32]>::try_from(bytes.as_slice()).expect("decoded 32 bytes"))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    key: String,
    p2p: String,
    api: String,
}

/// One validator as the genesis file lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorEntry {
    pub key: ValidatorKey,
    /// Where the other validators dial it.
    pub p2p: SocketAddr,
    /// The base URL of its HTTP API (`http://host:port`).
    pub api: String,
}

/// A checked genesis file.
#[derive(Debug, Clone)]
pub struct GenesisFile {
    genesis: Genesis,
    /// In the file's order.
    validators: Vec<ValidatorEntry>,
    /// In the file's order.
    clients: Vec<ClientKey>,
}

impl GenesisFile {
    /// Checks a genesis: at least one validator, keys strong and unique, addresses valid and
    /// unique.
    pub fn new(
        chain_id: u64,
        timestamp_ns: u64,
        validators: Vec<ValidatorEntry>,
        clients: Vec<ClientKey>,
    ) -> Result<Self, String> {
        if validators.is_empty() {
            return Err("validators: the genesis lists no validators".into());
        }
        let mut keys = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for (index, validator) in validators.iter().enumerate() {
            if !keys.insert(validator.key.clone()) {
                return Err(format!("validators[{index}].key: {} is listed twice", validator.key));
            }
            if !addresses.insert(validator.p2p) {
                return Err(format!("validators[{index}].p2p: {} is listed twice", validator.p2p));
            }
            check_api_url(&validator.api).map_err(|why| format!("validators[{index}].api: {why}"))?;
        }
        let mut unique_clients = BTreeSet::new();
        for (index, client) in clients.iter().enumerate() {
            if !unique_clients.insert(client.clone()) {
                return Err(format!("clients[{index}]: {client} is listed twice"));
            }
        }
        let genesis = Genesis::new(
            chain_id,
            validators.iter().map(|validator| validator.key.clone()).collect(),
            clients.clone(),
            timestamp_ns,
        )
        .map_err(|error| error.to_string())?;
        Ok(Self { genesis, validators, clients })
    }

    /// Parses and checks the JSON text of a genesis file.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let raw: RawGenesis = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let mut validators = Vec::with_capacity(raw.validators.len());
        for (index, validator) in raw.validators.into_iter().enumerate() {
            let key = parse_public_key(&validator.key).map_err(|why| format!("validators[{index}].key {why}"))?;
            let p2p = validator.p2p.parse::<SocketAddr>().map_err(|_| {
                format!("validators[{index}].p2p: {:?} is not an address such as 10.0.0.1:7100", validator.p2p)
            })?;
            validators.push(ValidatorEntry { key, p2p, api: validator.api });
        }
        let mut clients = Vec::with_capacity(raw.clients.len());
        for (index, client) in raw.clients.iter().enumerate() {
            clients.push(parse_public_key(client).map_err(|why| format!("clients[{index}] {why}"))?);
        }
        let file = Self::new(raw.chain_id, raw.timestamp_ns, validators, clients)?;
        match raw.founding {
            None => Ok(file),
            Some(founding) => {
                let block = digest_from_hex(&founding.block, "block")?;
                let founding = Founding {
                    chain_id: founding.chain_id,
                    height: founding.height,
                    block: commonware_cryptography::sha256::Digest::from(block),
                    state_digest: digest_from_hex(&founding.state_digest, "state_digest")?,
                };
                file.with_founding(founding)
            }
        }
    }

    /// This genesis, for a chain re-founded from `founding`.
    pub fn with_founding(mut self, founding: Founding) -> Result<Self, String> {
        self.genesis = self.genesis.with_founding(founding).map_err(|error| error.to_string())?;
        Ok(self)
    }

    /// Reads and checks a genesis file.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::io(path, source))?;
        Self::from_json(&text).map_err(|problem| NodeError::Genesis { path: path.to_path_buf(), problem })
    }

    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        let raw = RawGenesis {
            chain_id: self.genesis.chain_id(),
            timestamp_ns: self.genesis.timestamp_ns(),
            validators: self
                .validators
                .iter()
                .map(|validator| RawValidator {
                    key: public_key_hex(&validator.key),
                    p2p: validator.p2p.to_string(),
                    api: validator.api.clone(),
                })
                .collect(),
            clients: self.clients.iter().map(public_key_hex).collect(),
            founding: self.genesis.founding().map(|founding| RawFounding {
                chain_id: founding.chain_id,
                height: founding.height,
                block: crate::hex::encode(founding.block.as_ref()),
                state_digest: crate::hex::encode(&founding.state_digest),
            }),
        };
        let mut text = serde_json::to_string_pretty(&raw).expect("a genesis serializes");
        text.push('\n');
        text
    }

    /// The chain's genesis, as the replicated core takes it.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn chain_id(&self) -> u64 {
        self.genesis.chain_id()
    }

    /// The validators, in the file's order.
    pub fn validators(&self) -> &[ValidatorEntry] {
        &self.validators
    }

    /// The validator with this key.
    pub fn validator(&self, key: &ValidatorKey) -> Option<&ValidatorEntry> {
        self.validators.iter().find(|validator| &validator.key == key)
    }

    /// The clients allowed to write, in the file's order.
    pub fn clients(&self) -> &[ClientKey] {
        &self.clients
    }
}

/// An API base URL: `http://` or `https://`, a host, no path.
fn check_api_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains('/') || rest.contains(char::is_whitespace) {
        return Err(format!("{url:?} must be a base URL such as http://10.0.0.1:7101"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_chain::keys::{public_key, signer_from_seed};

    fn entry(seed: u64) -> ValidatorEntry {
        ValidatorEntry {
            key: public_key(&signer_from_seed(seed)),
            p2p: format!("127.0.0.1:{}", 7000 + seed).parse().unwrap(),
            api: format!("http://127.0.0.1:{}", 8000 + seed),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let file = GenesisFile::new(7, 42, vec![entry(1), entry(2)], vec![public_key(&signer_from_seed(9))]).unwrap();
        let again = GenesisFile::from_json(&file.to_json()).unwrap();
        assert_eq!(again.genesis(), file.genesis());
        assert_eq!(again.validators(), file.validators());
        assert_eq!(again.clients(), file.clients());

        let founding = Founding { chain_id: 3, height: 40, block: [5; 32].into(), state_digest: [6; 32] };
        let founded = file.clone().with_founding(founding.clone()).unwrap();
        assert!(founded.to_json().contains("\"founding\""));
        let again = GenesisFile::from_json(&founded.to_json()).unwrap();
        assert_eq!(again.genesis(), founded.genesis());
        assert_eq!(again.genesis().founding(), Some(&founding));
        assert_ne!(again.genesis().block().digest(), file.genesis().block().digest());
        // A founding of the chain itself, or a digest of the wrong length, is refused.
        let same = file.clone().with_founding(Founding { chain_id: 7, ..founding });
        assert!(same.unwrap_err().contains("must differ"), "{}", "same chain");
        let short = founded.to_json().replace(&crate::hex::encode(&[6u8; 32]), "0606");
        assert!(GenesisFile::from_json(&short).unwrap_err().contains("founding.state_digest"));
    }

    #[test]
    fn problems_are_named() {
        let problem = |text: &str| GenesisFile::from_json(text).unwrap_err();
        let key = public_key_hex(&public_key(&signer_from_seed(1)));
        assert!(problem(r#"{"chain_id": 1}"#).contains("missing field"));
        assert!(
            problem(r#"{"chain_id": 1, "timestamp_ns": 0, "validators": [], "clients": [], "x": 1}"#)
                .contains("unknown field")
        );
        assert!(
            problem(r#"{"chain_id": 1, "timestamp_ns": 0, "validators": [], "clients": []}"#).contains("no validators")
        );
        let bad_key = r#"{"chain_id": 1, "timestamp_ns": 0, "clients": [],
            "validators": [{"key": "00", "p2p": "127.0.0.1:1", "api": "http://127.0.0.1:2"}]}"#;
        assert!(problem(bad_key).contains("validators[0].key"));
        let bad_p2p = format!(
            r#"{{"chain_id": 1, "timestamp_ns": 0, "clients": [],
            "validators": [{{"key": "{key}", "p2p": "nowhere", "api": "http://127.0.0.1:2"}}]}}"#
        );
        assert!(problem(&bad_p2p).contains("validators[0].p2p"));
        let bad_api = format!(
            r#"{{"chain_id": 1, "timestamp_ns": 0, "clients": [],
            "validators": [{{"key": "{key}", "p2p": "127.0.0.1:1", "api": "127.0.0.1:2"}}]}}"#
        );
        assert!(problem(&bad_api).contains("validators[0].api"));
        let twice = format!(
            r#"{{"chain_id": 1, "timestamp_ns": 0, "clients": [],
            "validators": [{{"key": "{key}", "p2p": "127.0.0.1:1", "api": "http://127.0.0.1:2"}},
                           {{"key": "{key}", "p2p": "127.0.0.1:3", "api": "http://127.0.0.1:4"}}]}}"#
        );
        assert!(problem(&twice).contains("validators[1].key"));
        let bad_client = format!(
            r#"{{"chain_id": 1, "timestamp_ns": 0, "clients": ["zz"],
            "validators": [{{"key": "{key}", "p2p": "127.0.0.1:1", "api": "http://127.0.0.1:2"}}]}}"#
        );
        assert!(problem(&bad_client).contains("clients[0]"));
    }
}
