//! Evidence of misbehaviour from a real cluster: validator 0 runs as a twin (two consensus
//! instances with its key, on its one p2p network, each seeing every message and sending its own
//! votes to every peer), so that when it leads a view each instance proposes and notarizes its
//! own block. The honest validators 1 to 3 (real `tally-node` validators on loopback) report
//! the conflicting notarizes, verify and keep them; the test fetches `GET /v1/evidence` from one,
//! checks that `tally evidence verify` accepts it and names the twin, that a tampered piece is
//! refused (status 3, `unverified:`), and that the evidence survives the validator's restart.

use commonware_p2p::Receiver;
use commonware_runtime::{Runner as _, Spawner as _, Supervisor as _, tokio as runtime};
use serde_json::Value;
use std::net::TcpListener;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tally_chain::consensus::ConsensusConfig;
use tally_chain::keys::ValidatorKey;
use tally_chain::validator::{self, Channels};
use tally_node::cluster::{self, Layout};
use tally_node::node::start_network;
use tally_node::{NodeConfig, RunningNode};

/// How long the honest validators have to catch the twin. It equivocates in the first view it
/// leads (one in four); on an idle chain a view lasts up to the 10 s heartbeat, and the
/// validators first connect. Generous: a loaded test machine is slow.
const EVIDENCE_DEADLINE: Duration = Duration::from_secs(240);

type LinkSender = commonware_p2p::authenticated::lookup::Sender<ValidatorKey, runtime::Context>;
type LinkReceiver = commonware_p2p::authenticated::lookup::Receiver<ValidatorKey>;

/// One channel's messages, delivered to one of the twin's instances.
#[derive(Debug)]
struct TwinReceiver {
    messages: tokio::sync::mpsc::UnboundedReceiver<commonware_p2p::Message<ValidatorKey>>,
    capacity: NonZeroUsize,
}

impl Receiver for TwinReceiver {
    type Error = std::io::Error;
    type PublicKey = ValidatorKey;

    async fn recv(&mut self) -> Result<commonware_p2p::Message<ValidatorKey>, Self::Error> {
        self.messages.recv().await.ok_or_else(|| std::io::Error::other("the twin's network stopped"))
    }

    fn capacity(&self) -> NonZeroUsize {
        self.capacity
    }
}

/// Validator 0 as a twin, on its own runtime thread. Dropping it stops it.
struct Twin {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Twin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start_twin(config: NodeConfig) -> Twin {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (started, started_receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime_config = runtime::Config::new().with_storage_directory(config.data_dir.clone());
        runtime::Runner::new(runtime_config).start(|context| async move {
            let (oracle, channels) = start_network(&context, &config);
            // Every message from a peer reaches both instances; both send through the one network.
            let fan_out = |(sender, mut receiver): (LinkSender, LinkReceiver)| {
                let capacity = receiver.capacity();
                let (first, first_messages) = tokio::sync::mpsc::unbounded_channel();
                let (second, second_messages) = tokio::sync::mpsc::unbounded_channel();
                context.child("fan_out").spawn(move |_| async move {
                    while let Ok(message) = receiver.recv().await {
                        let _ = first.send(message.clone());
                        let _ = second.send(message);
                    }
                });
                (
                    (sender.clone(), TwinReceiver { messages: first_messages, capacity }),
                    (sender, TwinReceiver { messages: second_messages, capacity }),
                )
            };
            let Channels { votes, certificates, resolver, blocks, requests, backfill, snapshots } = channels;
            let (votes, votes_twin) = fan_out(votes);
            let (certificates, certificates_twin) = fan_out(certificates);
            let (resolver, resolver_twin) = fan_out(resolver);
            let (blocks, blocks_twin) = fan_out(blocks);
            let (requests, requests_twin) = fan_out(requests);
            let (backfill, backfill_twin) = fan_out(backfill);
            let (snapshots, snapshots_twin) = fan_out(snapshots);
            let genesis = config.genesis.genesis().clone();
            let primary = Channels { votes, certificates, resolver, blocks, requests, backfill, snapshots };
            let secondary = Channels {
                votes: votes_twin,
                certificates: certificates_twin,
                resolver: resolver_twin,
                blocks: blocks_twin,
                requests: requests_twin,
                backfill: backfill_twin,
                snapshots: snapshots_twin,
            };
            let mut instances = Vec::new();
            for (name, channels) in [("validator", primary), ("twin", secondary)] {
                let instance = validator::start(
                    context.child(name),
                    genesis.clone(),
                    config.signer.clone(),
                    ConsensusConfig::quiet(name.to_string()),
                    oracle.clone(),
                    oracle.clone(),
                    channels,
                )
                .await
                .expect("the twin is a genesis validator");
                instances.push(instance);
            }
            started.send(()).expect("the test waits for the twin");
            let _ = stopped.await;
            drop(instances);
            let _ = context.stop(0, Some(Duration::from_secs(5))).await;
        });
    });
    started_receiver.recv_timeout(Duration::from_secs(60)).expect("the twin starts");
    Twin { stop: Some(stop), thread: Some(thread) }
}

/// A base port with `count` free ports after it, below the ephemeral range, spread by process
/// id and attempt.
fn free_base_port(count: u16, attempt: u32) -> u16 {
    let spread = std::process::id().wrapping_mul(7_919).wrapping_add(attempt * 104_729) % 12_000;
    let mut base = 20_000 + (spread as u16 / 16) * 16;
    while !(base..base + count).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
        base = if base > 32_000 { 20_000 } else { base + 16 };
    }
    base
}

/// A cluster of four on loopback: validator 0 a twin, the others honest.
struct TwinCluster {
    layout: Layout,
    files: cluster::ClusterFiles,
    configs: Vec<NodeConfig>,
    honest: Vec<Option<RunningNode>>,
    _twin: Twin,
}

/// Starts the cluster in `dir`, elsewhere if a port was taken between the probe and the bind.
fn start_cluster(dir: &Path) -> TwinCluster {
    let mut last_error = String::new();
    for attempt in 0..5 {
        let layout = Layout::loopback(4, free_base_port(8, attempt));
        let attempt_dir = dir.join(format!("cluster-{attempt}"));
        let files = cluster::init(&layout, &attempt_dir).expect("init a cluster");
        let configs: Vec<NodeConfig> =
            files.configs.iter().map(|path| NodeConfig::load(path).expect("a config")).collect();
        // The twin's network binds inside its runtime, where a taken port is only logged.
        if let Err(error) = TcpListener::bind(configs[0].p2p_listen) {
            last_error = error.to_string();
            continue;
        }
        let twin = start_twin(configs[0].clone());
        let honest: Result<Vec<_>, _> =
            configs[1..].iter().map(|config| tally_node::run(config.clone()).map(Some)).collect();
        match honest {
            Ok(honest) => return TwinCluster { layout, files, configs, honest, _twin: twin },
            Err(error) => last_error = error.to_string(),
        }
    }
    panic!("could not start a cluster: {last_error}");
}

/// A GET's JSON answer; `None` if the validator does not answer 200 (yet).
fn get(url: &str) -> Option<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().ok()?;
        let answer = client.get(url).send().await.ok()?;
        if !answer.status().is_success() {
            return None;
        }
        answer.json().await.ok()
    })
}

fn tally(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally")).args(arguments).output().expect("run tally")
}

fn verify(file: &Path, genesis: &Path) -> Output {
    tally(&["evidence", "verify", file.to_str().unwrap(), "--genesis", genesis.to_str().unwrap()])
}

/// Waits until one of `urls` serves evidence against `twin`; returns that validator's index in
/// `urls` and its answer.
fn wait_for_evidence(urls: &[String], twin: &str) -> (usize, Value) {
    let started = Instant::now();
    loop {
        for (index, url) in urls.iter().enumerate() {
            if let Some(answer) = get(&format!("{url}/v1/evidence"))
                && answer["evidence"]
                    .as_array()
                    .is_some_and(|pieces| pieces.iter().any(|piece| piece["validator"] == twin))
            {
                return (index, answer);
            }
        }
        assert!(
            started.elapsed() < EVIDENCE_DEADLINE,
            "no honest validator kept evidence against the twin within {EVIDENCE_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Ignored in CI: it fails about one run in five. Simplex reports a conflicting notarize only
/// when a validator already holds the twin's first one; a validator that learned the other
/// proposal first (by voting for it) blocks the twin without a report, and a blocked twin is not
/// heard again. Delaying the second instance's messages by 400 ms made it fail outright (its
/// votes then arrive after the view is over). Run it with
/// `cargo test --release -p tally --test evidence -- --ignored`.
#[test]
#[ignore = "flaky: Simplex blocks the twin without a report when it learned the other proposal first"]
fn a_twin_is_caught_and_the_evidence_verifies_offline() {
    // The validators' warnings (the evidence kept, peers blocked) show with a failure.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let TwinCluster { layout, files, configs, mut honest, _twin } = start_cluster(dir.path());
    let twin_key = tally_node::hex::encode(configs[0].validator().as_ref());
    let urls: Vec<String> = (1..4).map(|index| format!("http://127.0.0.1:{}", layout.ports(index).1)).collect();

    let (index, answer) = wait_for_evidence(&urls, &twin_key);
    let pieces = answer["evidence"].as_array().unwrap();
    for piece in pieces {
        assert_eq!(piece["validator"], twin_key.as_str(), "only the twin is accused: {answer}");
        assert!(
            ["conflicting_notarize", "conflicting_finalize", "nullify_finalize"]
                .contains(&piece["kind"].as_str().unwrap())
        );
    }
    let status = get(&format!("{}/v1/status", urls[index])).expect("a status");
    assert!(status["evidence"].as_u64().unwrap() >= pieces.len() as u64);
    let counted =
        status["validators"].as_array().unwrap().iter().find(|validator| validator["key"] == twin_key.as_str());
    assert!(counted.unwrap()["faults"].as_u64().unwrap() >= 1, "the status counts the twin's faults: {status}");

    // Checked offline: the whole answer, then one piece.
    let saved = dir.path().join("evidence.json");
    std::fs::write(&saved, answer.to_string()).unwrap();
    let output = verify(&saved, &files.genesis);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    eprintln!("tally evidence verify, on validator {}'s answer:\n{stdout}", index + 1);
    assert!(stdout.contains(&format!("proven: validator {twin_key} ")), "{stdout}");
    let one = dir.path().join("piece.json");
    std::fs::write(&one, pieces[0].to_string()).unwrap();
    assert!(verify(&one, &files.genesis).status.success());

    // A piece with one byte of a signature flipped, or blaming another validator, is refused.
    let proof = pieces[0]["proof"].as_str().unwrap();
    let flip = proof.len() - 10;
    let flipped =
        format!("{}{}{}", &proof[..flip], if &proof[flip..flip + 1] == "0" { "1" } else { "0" }, &proof[flip + 1..]);
    let innocent = tally_node::hex::encode(configs[1].validator().as_ref());
    for (what, tampered) in [("proof", Value::from(flipped)), ("validator", Value::from(innocent))] {
        let mut piece = pieces[0].clone();
        piece[what] = tampered;
        std::fs::write(&one, piece.to_string()).unwrap();
        let output = verify(&one, &files.genesis);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "a tampered {what} is refused: {stderr}");
        assert!(stderr.starts_with("unverified:"), "{stderr}");
    }

    // The evidence survives the validator's restart.
    let kept: Vec<Value> = pieces.clone();
    honest[index].take().unwrap().stop().expect("an orderly stop");
    honest[index] = Some(tally_node::run(configs[index + 1].clone()).expect("the validator starts again"));
    let started = Instant::now();
    let again = loop {
        if let Some(answer) = get(&format!("{}/v1/evidence", urls[index])) {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the restarted validator answers");
        std::thread::sleep(Duration::from_millis(200));
    };
    let again = again["evidence"].as_array().unwrap();
    assert!(kept.iter().all(|piece| again.contains(piece)), "kept before: {kept:?}, after the restart: {again:?}");
}
