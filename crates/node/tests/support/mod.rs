//! What the HTTP tests share: a four-validator cluster on loopback started once per test
//! binary, lone validators whose chain never finalizes, and small HTTP helpers.

#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::Value;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tally_chain::Request;
use tally_chain::keys::ClientSigner;
use tally_ledger::{Account, AccountFlags, Transfer};
use tally_node::api::signed::request_to_json;
use tally_node::cluster::{self, Layout};
use tally_node::{NodeConfig, RunningNode, key_file};

/// How long one test may take.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a submission waits for finality in the test cluster: enough for the first blocks
/// while the validators are still connecting.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub urls: Vec<String>,
    pub client: ClientSigner,
    pub chain_id: u64,
    pub gateway_token: String,
    pub genesis: tally_chain::Genesis,
    _nodes: Vec<RunningNode>,
}

pub struct Lone {
    pub url: String,
    pub client: ClientSigner,
    pub chain_id: u64,
    _node: RunningNode,
}

/// A base port with `count` free ports after it (a moment ago). Each call starts its search
/// elsewhere, since the cluster and the lone validator start at once.
pub fn free_base_port(count: u16) -> u16 {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for attempt in 0..200u32 {
        let seed = std::process::id().wrapping_mul(7_919).wrapping_add((call * 200 + attempt).wrapping_mul(104_729));
        // Below the ephemeral range (32768 and up), where outgoing connections take their ports.
        let base = 20_000 + (seed % 12_000) as u16;
        let listeners: Vec<_> =
            (0..count).map_while(|offset| TcpListener::bind((Ipv4Addr::LOCALHOST, base + offset)).ok()).collect();
        if listeners.len() == count as usize {
            return base;
        }
    }
    panic!("no free range of {count} ports");
}

/// A fresh directory for this run under cargo's scratch space. The nodes of a run live until the
/// process exits, so their directories are removed by the next run instead.
pub fn scratch(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let ours = format!("node-http-{}-", std::process::id());
    static CLEANED: std::sync::Once = std::sync::Once::new();
    CLEANED.call_once(|| {
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("node-http-") && !name.starts_with(&ours) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    let dir = root.join(format!("{ours}{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = scratch("cluster");
        let files = cluster::init(&Layout::loopback(4, free_base_port(8)), &dir).expect("init");
        let mut nodes = Vec::new();
        for path in &files.configs {
            let mut config = NodeConfig::load(path).expect("config");
            config.wait = WAIT;
            nodes.push(tally_node::run(config).expect("run"));
        }
        Cluster {
            urls: nodes.iter().map(|node| format!("http://{}", node.api_address())).collect(),
            client: key_file::read(&files.client_keys[0]).expect("client key"),
            chain_id: 1,
            gateway_token: files.gateway_token.expect("a gateway"),
            genesis: tally_node::genesis_file::GenesisFile::load(&files.genesis).expect("genesis").genesis().clone(),
            _nodes: nodes,
        }
    })
}

/// One validator of a four-validator genesis, alone: nothing ever finalizes. It waits 1.5 s
/// per submission and lets one wait at a time.
pub fn lone() -> &'static Lone {
    static LONE: OnceLock<Lone> = OnceLock::new();
    LONE.get_or_init(|| start_lone("lone", Duration::from_millis(1_500), 1))
}

/// A fresh lone validator of its own (named `name` on disk), for a test that loads it: each
/// submission waits `wait`, and `waiting_max` may wait at once.
pub fn start_lone(name: &str, wait: Duration, waiting_max: usize) -> Lone {
    let dir = scratch(name);
    let files = cluster::init(&Layout::loopback(4, free_base_port(8)), &dir).expect("init");
    let mut config = NodeConfig::load(&files.configs[0]).expect("config");
    config.wait = wait;
    config.waiting_requests_max = waiting_max;
    let node = tally_node::run(config).expect("run");
    Lone {
        url: format!("http://{}", node.api_address()),
        client: key_file::read(&files.client_keys[0]).expect("client key"),
        chain_id: 1,
        _node: node,
    }
}

pub async fn within<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test).await.expect("the test took too long");
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub async fn get(url: &str, path: &str) -> (StatusCode, Value) {
    answer(http().get(format!("{url}{path}")).send().await.unwrap()).await
}

pub async fn post(url: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    answer(http().post(format!("{url}{path}")).json(body).send().await.unwrap()).await
}

pub async fn post_raw(url: &str, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let request = http().post(format!("{url}{path}")).header("content-type", "application/json").body(body);
    answer(request.send().await.unwrap()).await
}

/// POSTs `bytes` as `application/octet-stream` (a signed request's binary encoding).
pub async fn post_binary(url: &str, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let request = http().post(format!("{url}{path}")).header("content-type", "application/octet-stream").body(bytes);
    answer(request.send().await.unwrap()).await
}

pub fn account(id: u128, flags: AccountFlags) -> Account {
    Account { id, ledger: 7, code: 10, flags, ..Account::default() }
}

pub fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 7,
        code: 20,
        user_data_64: 99,
        ..Transfer::default()
    }
}

pub fn create_accounts(chain_id: u64, id: u128, signer: &ClientSigner, accounts: &[Account]) -> Value {
    request_to_json(&Request::create_accounts(chain_id, id, tally_chain::default_expiry(), signer, accounts).unwrap())
}

pub fn create_transfers(chain_id: u64, id: u128, signer: &ClientSigner, transfers: &[Transfer]) -> Value {
    request_to_json(&Request::create_transfers(chain_id, id, tally_chain::default_expiry(), signer, transfers).unwrap())
}

pub fn statuses(answer: &Value) -> Vec<&str> {
    answer["results"].as_array().unwrap().iter().map(|result| result["status"].as_str().unwrap()).collect()
}

pub fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error: {answer}"))
}

/// Sends a request head and then `chunks` of a body over raw TCP, and reads the reply. A
/// server that refuses the body early may close the connection before it is all written, which
/// HTTP clients report as an error instead of the answer; raw TCP sees the answer.
pub async fn raw_post(url: &str, path: &str, headers: &str, chunks: Vec<Vec<u8>>) -> String {
    raw_post_as(url, path, "application/json", headers, chunks).await
}

/// `raw_post` with another content type.
pub async fn raw_post_as(url: &str, path: &str, content_type: &str, headers: &str, chunks: Vec<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: {content_type}\r\n{headers}connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in chunks {
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply).into_owned()
}
