//! A real cluster on loopback for the client tests: `tally-node` validators in this process,
//! each on its own runtime thread, with real TCP between them and real files.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;
use tally_client::{Client, ClientOptions, ClientSigner};
use tally_node::cluster::{self, ClusterFiles, Layout};
use tally_node::genesis_file::GenesisFile;
use tally_node::{NodeConfig, RunningNode};

/// A running cluster. Validators can be stopped one by one; the rest stop when it is dropped.
#[derive(Debug)]
pub struct Cluster {
    pub files: ClusterFiles,
    pub chain_id: u64,
    /// Each validator's API URL, in genesis order.
    pub urls: Vec<String>,
    nodes: Mutex<Vec<Option<RunningNode>>>,
    /// Removed on drop, when the cluster has its own temporary directory.
    _temporary: Option<tempfile::TempDir>,
}

/// Whether `count` ports from `base` can be bound on loopback right now.
fn ports_free(base: u16, count: u16) -> bool {
    (base..base + count).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok())
}

/// A base port with `count` free ports after it, spread by process id so that test binaries
/// running side by side start apart.
fn free_base_port(count: u16, attempt: u32) -> u16 {
    // Below 32,768, where Linux draws the ports of outgoing connections, so that none of those
    // takes a port between the check and the bind.
    let spread = (std::process::id().wrapping_mul(7_919).wrapping_add(attempt * 104_729)) % 12_000;
    let mut base = 20_000 + (spread as u16 / 16) * 16;
    while !ports_free(base, count) {
        base = if base > 32_000 { 20_000 } else { base + 16 };
    }
    base
}

impl Cluster {
    /// Starts `validators` validators in a temporary directory; `adjust` may change each
    /// validator's config (by index) before it starts.
    pub fn start(validators: usize, adjust: impl Fn(usize, &mut NodeConfig)) -> Self {
        Self::start_in(None, validators, adjust)
    }

    /// Starts a cluster that lives as long as the test process (a `static`, never dropped): its
    /// files go to `target/tmp/<name>`, emptied first, instead of a temporary directory that
    /// would never be removed.
    pub fn start_shared(name: &str, validators: usize, adjust: impl Fn(usize, &mut NodeConfig)) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        Self::start_in(Some(dir), validators, adjust)
    }

    fn start_in(fixed: Option<PathBuf>, validators: usize, adjust: impl Fn(usize, &mut NodeConfig)) -> Self {
        let mut last_error = String::new();
        for attempt in 0..5 {
            let (temporary, dir) = match &fixed {
                Some(dir) => {
                    if dir.exists() {
                        std::fs::remove_dir_all(dir).expect("remove the previous run's cluster");
                    }
                    (None, dir.clone())
                }
                None => {
                    let temporary = tempfile::tempdir().expect("a temporary directory");
                    let dir = temporary.path().to_path_buf();
                    (Some(temporary), dir)
                }
            };
            let base_port = free_base_port(2 * validators as u16, attempt);
            let files = cluster::init(&Layout::loopback(validators, base_port), &dir).expect("init a cluster");
            let mut nodes = Vec::with_capacity(validators);
            let mut failed = None;
            for (index, path) in files.configs.iter().enumerate() {
                let mut config = NodeConfig::load(path).expect("a config that init wrote loads");
                adjust(index, &mut config);
                match tally_node::run(config) {
                    Ok(node) => nodes.push(Some(node)),
                    Err(error) => {
                        failed = Some(error.to_string());
                        break;
                    }
                }
            }
            if let Some(error) = failed {
                // A port was taken between the probe and the bind: start over elsewhere.
                last_error = error;
                continue;
            }
            let urls = (0..validators)
                .map(|index| format!("http://127.0.0.1:{}", Layout::loopback(validators, base_port).ports(index).1))
                .collect();
            let chain_id = GenesisFile::load(&files.genesis).expect("the genesis that init wrote").chain_id();
            return Self { files, chain_id, urls, nodes: Mutex::new(nodes), _temporary: temporary };
        }
        panic!("could not start a cluster: {last_error}");
    }

    /// The key file of the client listed in the genesis.
    pub fn client_key_path(&self) -> &Path {
        &self.files.client_keys[0]
    }

    pub fn signer(&self) -> ClientSigner {
        tally_client::load_signer(self.client_key_path()).expect("the client key that init wrote")
    }

    /// A client of the validators at `urls`, signing as the genesis client.
    pub fn client(&self, urls: &[String]) -> Client {
        Client::with_options(urls, self.chain_id, self.signer(), test_options()).expect("a client")
    }

    /// Stops validator `index` and waits until it has stopped.
    pub fn stop(&self, index: usize) {
        let node = self.nodes.lock().expect("not poisoned")[index].take();
        if let Some(node) = node {
            node.stop().expect("an orderly stop");
        }
    }

    /// The cluster directory (genesis, configs, keys).
    pub fn dir(&self) -> PathBuf {
        self.files.dir.clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let nodes = std::mem::take(&mut *self.nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for node in nodes.into_iter().flatten() {
            let _ = node.stop();
        }
    }
}

/// Client bounds for tests: generous waits (the machine is shared), quick backoff.
pub fn test_options() -> ClientOptions {
    ClientOptions {
        submit_wait: Duration::from_secs(90),
        read_wait: Duration::from_secs(20),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(500),
        ..ClientOptions::default()
    }
}

/// A URL where nothing listens: a port bound and released at once.
pub fn dead_url() -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Runs the `tally` binary with `args`, without the environment variables that would give it a
/// cluster other than the one the test names.
pub fn tally(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command.args(args);
    for name in ["TALLY_VALIDATORS", "TALLY_CLIENT_KEY", "TALLY_CHAIN_ID", "TALLY_GENESIS"] {
        command.env_remove(name);
    }
    command.output().expect("run tally")
}

/// A command's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
