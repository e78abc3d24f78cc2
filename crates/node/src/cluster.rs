//! A cluster's files, generated in one directory: what `tally init` writes and `tally dev`
//! starts from.
//!
//! ```text
//! genesis.json            chain id, validators (keys, addresses), clients, timestamp
//! validator-<i>.key       validator i's private key (0600)
//! validator-<i>.toml      validator i's config (0600: it may hold the gateway token)
//! client-<j>.key          client j's private key (0600), listed in the genesis
//! gateway.key             the gateway's client key (0600), if gateway mode is on
//! data/validator-<i>/     validator i's data directory (0700), created on first start
//! ```
//!
//! The directory itself is created with mode 0700. Validator `i` listens for peers on
//! `base_port + 2i` and serves its API on `base_port + 2i + 1`.

use crate::config::{ApiSection, ConfigFile, GatewaySection, P2pProfile, PeerSection, create_private_dir};
use crate::error::NodeError;
use crate::genesis_file::{GenesisFile, ValidatorEntry};
use crate::hex;
use crate::key_file::{self, public_key_hex};
use rand_core::Rng as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tally_chain::genesis::Founding;
use tally_chain::keys::{ClientKey, public_key};

/// The most validators one layout generates.
pub const VALIDATORS_MAX: usize = 100;
/// The most client keys one layout generates.
pub const CLIENTS_MAX: usize = 100;
/// The first port of a generated cluster unless another is given (`tally init`, `tally dev`):
/// validator 0's API is then at port 7001, validator 1's at 7003, and so on.
pub const BASE_PORT_DEFAULT: u16 = 7_000;

/// How many faulty validators a cluster of `validators` tolerates: the largest `f` with
/// `3f + 1 <= validators`.
pub fn faults_tolerated(validators: usize) -> usize {
    validators.saturating_sub(1) / 3
}

/// The smallest cluster that tolerates `faults` faulty validators.
pub fn validators_for(faults: usize) -> usize {
    3 * faults + 1
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Layout {
    pub validators: usize,
    /// One host for all validators, or one per validator.
    pub hosts: Vec<IpAddr>,
    pub base_port: u16,
    pub clients: usize,
    pub chain_id: u64,
    /// Give every validator a gateway with one shared client key and token.
    pub gateway: bool,
    /// Re-found the chain from a backup of another: its state, and its clients (kept, so that
    /// they write on with the keys they hold).
    pub refounding: Option<Refounding>,
}

/// What a chain re-founded from a backup keeps of the old one.
#[derive(Debug, Clone)]
pub struct Refounding {
    pub founding: Founding,
    /// The old genesis's clients, listed first in the new one.
    pub clients: Vec<ClientKey>,
}

impl Layout {
    /// `validators` validators on loopback from `base_port`, one client, a gateway.
    pub fn loopback(validators: usize, base_port: u16) -> Self {
        Self {
            validators,
            hosts: vec![IpAddr::from([127, 0, 0, 1])],
            base_port,
            clients: 1,
            chain_id: 1,
            gateway: true,
            refounding: None,
        }
    }

    /// A warning for a cluster that tolerates no faulty validator: one crash stops it.
    pub fn fault_warning(&self) -> Option<String> {
        let faults = faults_tolerated(self.validators);
        (faults == 0).then(|| {
            format!(
                "a cluster of {} validator{} tolerates {faults} faulty validators (n = 3f + 1): if one stops, the \
                 cluster stops; {} validators are the fewest that tolerate one",
                self.validators,
                if self.validators == 1 { "" } else { "s" },
                validators_for(1)
            )
        })
    }

    /// Refuses a layout that cannot be generated; nothing is written before this passes.
    pub fn check(&self) -> Result<(), NodeError> {
        let fail = |text: String| Err(NodeError::Layout(text));
        if self.validators == 0 || self.validators > VALIDATORS_MAX {
            return fail(format!("validators must be from 1 to {VALIDATORS_MAX}"));
        }
        if let Some(refounding) = &self.refounding
            && refounding.founding.chain_id == self.chain_id
        {
            return fail(format!(
                "--chain-id {}: a re-founded chain needs an id of its own, not the backup's chain's",
                self.chain_id
            ));
        }
        if self.clients > CLIENTS_MAX {
            return fail(format!("clients must be at most {CLIENTS_MAX}"));
        }
        if self.hosts.len() != 1 && self.hosts.len() != self.validators {
            return fail(format!(
                "give one host for all validators or one per validator ({}), not {}",
                self.validators,
                self.hosts.len()
            ));
        }
        if u32::from(self.base_port) + 2 * self.validators as u32 > u32::from(u16::MAX) + 1 {
            return fail(format!("base port {} leaves no room for {} validators", self.base_port, self.validators));
        }
        if self.base_port == 0 {
            return fail("base port must not be 0".into());
        }
        Ok(())
    }

    fn host(&self, index: usize) -> IpAddr {
        if self.hosts.len() == 1 { self.hosts[0] } else { self.hosts[index] }
    }

    /// Validator `index`'s peer port and API port.
    pub fn ports(&self, index: usize) -> (u16, u16) {
        let p2p = self.base_port + 2 * index as u16;
        (p2p, p2p + 1)
    }
}

/// The files of a cluster directory.
#[derive(Debug, Clone)]
pub struct ClusterFiles {
    pub dir: PathBuf,
    pub genesis: PathBuf,
    /// One per validator, in genesis order.
    pub configs: Vec<PathBuf>,
    pub client_keys: Vec<PathBuf>,
    /// The gateway's bearer token, if gateway mode is on.
    pub gateway_token: Option<String>,
}

impl ClusterFiles {
    /// The files of a cluster directory that `init` wrote.
    pub fn open(dir: &Path) -> Result<Self, NodeError> {
        let genesis_path = dir.join("genesis.json");
        let genesis = GenesisFile::load(&genesis_path)?;
        let configs: Vec<PathBuf> =
            (0..genesis.validators().len()).map(|index| dir.join(format!("validator-{index}.toml"))).collect();
        for path in &configs {
            if !path.exists() {
                return Err(NodeError::Layout(format!("{} is missing", path.display())));
            }
        }
        let client_keys =
            (0..).map(|index| dir.join(format!("client-{index}.key"))).take_while(|path| path.exists()).collect();
        let first = std::fs::read_to_string(&configs[0]).map_err(|source| NodeError::io(&configs[0], source))?;
        let first: ConfigFile = toml::from_str(&first)
            .map_err(|error| NodeError::Config { path: configs[0].clone(), problem: error.to_string() })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            genesis: genesis_path,
            configs,
            client_keys,
            gateway_token: first.gateway.map(|gateway| gateway.token),
        })
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    commonware_utils::sys_rng().fill_bytes(&mut bytes);
    hex::encode(&bytes)
}

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    u64::try_from(since_epoch.as_nanos()).expect("nanoseconds fit in u64 until 2554")
}

/// Whether validators on these hosts talk over private networks (or one machine).
fn is_private(host: &IpAddr) -> bool {
    match host {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// Writes a private file (mode 0600); never overwrites.
fn write_private(path: &Path, text: &str) -> Result<(), NodeError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| NodeError::io(path, source))?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|source| NodeError::io(path, source))
}

/// Generates a cluster's keys, genesis and configs into `dir` (created if missing). Refuses a
/// directory that already holds a genesis, so keys are never overwritten.
pub fn init(layout: &Layout, dir: &Path) -> Result<ClusterFiles, NodeError> {
    layout.check()?;
    create_private_dir(dir)?;
    let genesis_path = dir.join("genesis.json");
    if genesis_path.exists() {
        return Err(NodeError::Layout(format!("{} already exists; choose an empty directory", genesis_path.display())));
    }

    let mut validator_keys = Vec::with_capacity(layout.validators);
    let mut entries = Vec::with_capacity(layout.validators);
    for index in 0..layout.validators {
        let key = key_file::generate();
        key_file::write(&dir.join(format!("validator-{index}.key")), &key)?;
        let (p2p_port, api_port) = layout.ports(index);
        let host = layout.host(index);
        entries.push(ValidatorEntry {
            key: public_key(&key),
            p2p: SocketAddr::new(host, p2p_port),
            api: format!("http://{}", SocketAddr::new(host, api_port)),
        });
        validator_keys.push(key);
    }
    let mut clients: Vec<ClientKey> =
        layout.refounding.iter().flat_map(|refounding| refounding.clients.clone()).collect();
    let mut client_keys = Vec::new();
    for index in 0..layout.clients {
        let key = key_file::generate();
        let path = dir.join(format!("client-{index}.key"));
        key_file::write(&path, &key)?;
        clients.push(public_key(&key));
        client_keys.push(path);
    }
    let gateway_token = if layout.gateway {
        let key = key_file::generate();
        key_file::write(&dir.join("gateway.key"), &key)?;
        clients.push(public_key(&key));
        Some(random_token())
    } else {
        None
    };
    // A generated key cannot repeat a kept one (they are random), so the list stays unique.
    let mut genesis =
        GenesisFile::new(layout.chain_id, now_ns(), entries.clone(), clients).map_err(NodeError::Layout)?;
    if let Some(refounding) = &layout.refounding {
        genesis = genesis.with_founding(refounding.founding.clone()).map_err(NodeError::Layout)?;
    }

    let profile = if layout.hosts.iter().all(is_private) { P2pProfile::Lan } else { P2pProfile::Wan };
    let mut configs = Vec::with_capacity(layout.validators);
    for (index, entry) in entries.iter().enumerate() {
        let host = layout.host(index);
        // Bind the address peers dial when it is loopback; otherwise every interface, since a
        // public address is often not the machine's own (NAT).
        let listen_host = if host.is_loopback() {
            host
        } else if host.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        };
        let (p2p_port, api_port) = layout.ports(index);
        let config = ConfigFile {
            chain_id: layout.chain_id,
            genesis: PathBuf::from("genesis.json"),
            key: PathBuf::from(format!("validator-{index}.key")),
            data_dir: PathBuf::from(format!("data/validator-{index}")),
            p2p_listen: SocketAddr::new(listen_host, p2p_port).to_string(),
            api_listen: SocketAddr::new(listen_host, api_port).to_string(),
            p2p_profile: profile,
            api: ApiSection::default(),
            peers: entries
                .iter()
                .filter(|peer| peer.key != entry.key)
                .map(|peer| PeerSection { key: public_key_hex(&peer.key), p2p: peer.p2p.to_string() })
                .collect(),
            gateway: gateway_token
                .as_ref()
                .map(|token| GatewaySection { client_key: PathBuf::from("gateway.key"), token: token.clone() }),
        };
        let path = dir.join(format!("validator-{index}.toml"));
        write_private(&path, &config.to_toml())?;
        configs.push(path);
    }
    // The genesis goes last: its presence marks a complete directory.
    write_private(&genesis_path, &genesis.to_json())?;
    Ok(ClusterFiles { dir: dir.to_path_buf(), genesis: genesis_path, configs, client_keys, gateway_token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn init_writes_configs_that_load() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = dir.path().join("new");
        let files = init(&Layout::loopback(4, 17_000), &cluster).unwrap();
        assert_eq!(files.configs.len(), 4);
        // Only the owner can read the keys and configs (the gateway token), or enter the directory.
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cluster), 0o700);
        for path in files.configs.iter().chain(&files.client_keys) {
            assert_eq!(mode(path), 0o600, "{}", path.display());
        }
        assert_eq!(mode(&cluster.join("validator-0.key")), 0o600);
        assert_eq!(mode(&cluster.join("gateway.key")), 0o600);
        let configs: Vec<NodeConfig> = files.configs.iter().map(|path| NodeConfig::load(path).unwrap()).collect();
        for (index, config) in configs.iter().enumerate() {
            assert_eq!(config.peers.len(), 3);
            assert_eq!(config.genesis.validators()[index].key, config.validator());
            assert_eq!(config.api_listen.port(), 17_000 + 2 * index as u16 + 1);
            assert_eq!(config.p2p_profile, P2pProfile::Lan);
            assert!(config.gateway.is_some());
        }
        // The clients and the gateway are listed.
        assert_eq!(configs[0].genesis.clients().len(), 2);
        // A second init into the same directory is refused.
        assert!(matches!(init(&Layout::loopback(4, 17_000), &cluster), Err(NodeError::Layout(_))));
        let reopened = ClusterFiles::open(&cluster).unwrap();
        assert_eq!(reopened.configs, files.configs);
        assert_eq!(reopened.client_keys, files.client_keys);
        assert_eq!(reopened.gateway_token, files.gateway_token);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut layout = Layout::loopback(4, 65_530);
        assert!(init(&layout, dir.path()).unwrap_err().to_string().contains("no room"));
        layout.base_port = 7_000;
        layout.hosts = vec![IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])];
        assert!(init(&layout, dir.path()).unwrap_err().to_string().contains("one per validator"));
        layout.validators = 0;
        assert!(init(&layout, dir.path()).unwrap_err().to_string().contains("validators must be"));
        // Nothing was written for any of them.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn clusters_that_tolerate_no_fault_are_warned_about() {
        assert_eq!((1..=8).map(faults_tolerated).collect::<Vec<_>>(), [0, 0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(validators_for(1), 4);
        for validators in 1..=3 {
            let warning = Layout::loopback(validators, 7_000).fault_warning().expect("a warning");
            assert!(warning.contains(&format!("{validators} validator")), "{warning}");
            assert!(warning.contains("tolerates 0 faulty"), "{warning}");
            assert!(warning.contains("4 validators are the fewest"), "{warning}");
        }
        for validators in [4, 5, 7, 100] {
            assert_eq!(Layout::loopback(validators, 7_000).fault_warning(), None);
        }
    }

    #[test]
    fn config_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = init(&Layout::loopback(4, 18_000), dir.path()).unwrap();
        let original = std::fs::read_to_string(&files.configs[0]).unwrap();
        let path = dir.path().join("edited.toml");
        let check = |text: String, expected: &str| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let error = NodeConfig::load(&path).unwrap_err().to_string();
            assert!(error.contains(expected), "expected {expected:?} in {error:?}");
            assert!(error.contains("edited.toml") || error.contains("genesis"), "{error}");
        };
        check(original.replace("chain_id = 1", "chain_id = 2"), "chain_id is 2");
        check(original.replace("p2p_listen = \"127.0.0.1:18000\"", "p2p_listen = \"x\""), "p2p_listen");
        check(format!("{original}\nsurprise = 1\n"), "unknown field");
        check(original.replace("wait_ms = 5000", "wait_ms = 0"), "api.wait_ms");
        // Drop one peer.
        let without_peer = original.replacen("[[peers]]", "[[ignored]]", 1);
        check(without_peer, "unknown field");
        let config: ConfigFile = toml::from_str(&original).unwrap();
        let mut missing = config.clone();
        missing.peers.pop();
        check(missing.to_toml(), "is missing");
        let mut own = config.clone();
        own.peers[0].key = public_key_hex(&NodeConfig::load(&files.configs[0]).unwrap().validator());
        check(own.to_toml(), "own key");
        let mut short = config.clone();
        short.gateway.as_mut().unwrap().token = "short".into();
        check(short.to_toml(), "gateway.token");
        let mut stranger = config;
        stranger.gateway.as_mut().unwrap().client_key = PathBuf::from("validator-1.key");
        check(stranger.to_toml(), "not listed in the genesis");
    }

    #[test]
    fn a_config_with_a_gateway_token_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let files = init(&Layout::loopback(4, 19_000), dir.path()).unwrap();
        let path = &files.configs[0];
        NodeConfig::load(path).unwrap();
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = NodeConfig::load(path).unwrap_err().to_string();
            assert!(error.contains(&format!("chmod 600 {}", path.display())), "{error}");
            assert!(error.contains("gateway token"), "{error}");
        }
        // Without a token, the config holds nothing secret: readable by others is fine.
        let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        file.gateway = None;
        let open = dir.path().join("open.toml");
        std::fs::write(&open, file.to_toml()).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        NodeConfig::load(&open).unwrap();
    }
}
