//! Evidence of misbehaviour from a real cluster: validator 0 equivocates. It runs one honest
//! instance, but its network sender signs a second notarize, for another block, in every view it
//! leads, and sends it right behind the first to every peer. The honest validators 1 to 3 (real
//! `tally-node` validators on loopback) see the leader's two notarizes for one view, report the
//! conflict, verify and keep it; the test fetches `GET /v1/evidence` from one, checks that
//! `tally evidence verify` accepts it and names validator 0, that a tampered piece is refused
//! (status 3, `unverified:`), and that the evidence survives the validator's restart.
//!
//! Why the equivocator sends its two notarizes back to back, as the leader: Simplex reports a
//! conflicting notarize only when it still holds the signer's first notarize of the view. A
//! validator that learned the view's block from elsewhere first (a certificate, its own vote)
//! blocks a conflicting voter without a report. The leader's notarize is the first vote of its
//! view, and a second one right behind it on the same connection arrives before any certificate
//! can, so every honest validator catches it. (Two whole consensus instances sharing one key,
//! each proposing on its own, were caught only when their votes happened to arrive in that
//! order: about four runs in five.)

use commonware_actor::{Feedback, Unreliable};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::simplex::elector::{Config as _, Elector as _, RoundRobinElector};
use commonware_consensus::simplex::types::{Attributable as _, Notarize, Proposal, Vote};
use commonware_consensus::types::Participant;
use commonware_cryptography::certificate::Scheme as _;
use commonware_cryptography::{Hasher as _, Sha256};
use commonware_p2p::{CheckedSender, LimitedSender, Recipients, Sender as _};
use commonware_runtime::{IoBufs, Runner as _, Spawner as _, Supervisor as _, tokio as runtime};
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tally_chain::block::BlockDigest;
use tally_chain::consensus::{ConsensusConfig, Elector, Scheme, signing_scheme};
use tally_chain::keys::ValidatorKey;
use tally_chain::validator::{self, Channels};
use tally_node::cluster::{self, Layout};
use tally_node::node::start_network;
use tally_node::{NodeConfig, RunningNode};

/// How long the honest validators have to catch the equivocator. It equivocates in every view
/// it leads (one in four); on an idle chain a view lasts up to the 10 s heartbeat, and the
/// validators first connect. Generous: a loaded test machine is slow.
const EVIDENCE_DEADLINE: Duration = Duration::from_secs(240);

type LinkSender = commonware_p2p::authenticated::lookup::Sender<ValidatorKey, runtime::Context>;

/// Signs validator 0's second notarize in the views it leads.
struct Forger {
    scheme: Scheme,
    me: Participant,
    elector: RoundRobinElector<Scheme>,
    forged: AtomicUsize,
}

impl Forger {
    /// For a message that is this validator's notarize in a view it leads: the encoded notarize,
    /// signed by the same key, of another block in the same view on the same parent.
    fn conflicting(&self, message: &[u8]) -> Option<Vec<u8>> {
        let Ok(Vote::Notarize(notarize)) = Vote::<Scheme, BlockDigest>::decode(message.to_vec()) else {
            return None;
        };
        let proposal = &notarize.proposal;
        if notarize.signer() != self.me || self.elector.elect(proposal.round, ()) != self.me {
            return None;
        }
        let other = Proposal::new(proposal.round, proposal.parent, Sha256::hash(&[proposal.payload.as_ref()]));
        let forged = Notarize::sign(&self.scheme, other).expect("validator 0 signs");
        self.forged.fetch_add(1, Ordering::Relaxed);
        Some(Vote::<Scheme, BlockDigest>::Notarize(forged).encode().to_vec())
    }
}

/// Validator 0's sender on one channel; on the votes channel it equivocates.
#[derive(Clone)]
struct EquivocatingSender {
    inner: LinkSender,
    forger: Option<Arc<Forger>>,
}

impl LimitedSender for EquivocatingSender {
    type PublicKey = ValidatorKey;
    type Checked<'a> = Checked<'a>;

    fn check(&mut self, recipients: Recipients<ValidatorKey>) -> Result<Checked<'_>, SystemTime> {
        let again = self.inner.clone();
        let forger = self.forger.clone();
        let checked = self.inner.check(recipients)?;
        Ok(Checked { checked, again, forger })
    }
}

struct Checked<'a> {
    checked: <LinkSender as LimitedSender>::Checked<'a>,
    again: LinkSender,
    forger: Option<Arc<Forger>>,
}

impl CheckedSender for Checked<'_> {
    type PublicKey = ValidatorKey;

    fn recipients(&self) -> Vec<ValidatorKey> {
        self.checked.recipients()
    }

    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        let Some(forger) = self.forger else {
            return self.checked.send(message, priority);
        };
        let message = message.into().coalesce();
        let conflicting = forger.conflicting(message.as_ref());
        let recipients = self.checked.recipients();
        let feedback = self.checked.send(message, priority);
        if let Some(conflicting) = conflicting {
            // Same channel, same connections, right behind the first: each peer reads the two in
            // this order.
            let mut again = self.again;
            let sent = again.send(Recipients::Some(recipients), conflicting, priority);
            eprintln!("validator 0 equivocated: a second notarize sent to {} peers", sent.len());
        }
        feedback
    }
}

/// Validator 0, equivocating, on its own runtime thread. Dropping it stops it.
struct Equivocator {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Equivocator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start_equivocator(config: NodeConfig) -> Equivocator {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (started, started_receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime_config = runtime::Config::new().with_storage_directory(config.data_dir.clone());
        runtime::Runner::new(runtime_config).start(|context| async move {
            let (oracle, channels) = start_network(&context, &config);
            let genesis = config.genesis.genesis().clone();
            let scheme = signing_scheme(&genesis, config.signer.clone()).expect("validator 0 is in the genesis");
            let me = scheme.me().expect("validator 0 signs").index();
            let elector = Elector::default().build(scheme.participants());
            let forger = Arc::new(Forger { scheme, me, elector, forged: AtomicUsize::new(0) });
            let plain = |(inner, receiver)| (EquivocatingSender { inner, forger: None }, receiver);
            let Channels { votes, certificates, resolver, blocks, requests, backfill, snapshots } = channels;
            let (votes_sender, votes_receiver) = votes;
            let channels = Channels {
                votes: (EquivocatingSender { inner: votes_sender, forger: Some(forger.clone()) }, votes_receiver),
                certificates: plain(certificates),
                resolver: plain(resolver),
                blocks: plain(blocks),
                requests: plain(requests),
                backfill: plain(backfill),
                snapshots: plain(snapshots),
            };
            let instance = validator::start(
                context.child("validator"),
                genesis,
                config.signer.clone(),
                ConsensusConfig::quiet("validator".to_string()),
                oracle.clone(),
                oracle,
                channels,
            )
            .await
            .expect("validator 0 is a genesis validator");
            started.send(()).expect("the test waits for validator 0");
            let _ = stopped.await;
            eprintln!("validator 0 equivocated in {} views", forger.forged.load(Ordering::Relaxed));
            drop(instance);
            let _ = context.stop(0, Some(Duration::from_secs(5))).await;
        });
    });
    started_receiver.recv_timeout(Duration::from_secs(60)).expect("validator 0 starts");
    Equivocator { stop: Some(stop), thread: Some(thread) }
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

/// A cluster of four on loopback: validator 0 equivocates, the others are honest.
struct EquivocatingCluster {
    layout: Layout,
    files: cluster::ClusterFiles,
    configs: Vec<NodeConfig>,
    honest: Vec<Option<RunningNode>>,
    _equivocator: Equivocator,
}

/// Starts the cluster in `dir`, elsewhere if a port was taken between the probe and the bind.
fn start_cluster(dir: &Path) -> EquivocatingCluster {
    let mut last_error = String::new();
    for attempt in 0..5 {
        let layout = Layout::loopback(4, free_base_port(8, attempt));
        let attempt_dir = dir.join(format!("cluster-{attempt}"));
        let files = cluster::init(&layout, &attempt_dir).expect("init a cluster");
        let configs: Vec<NodeConfig> =
            files.configs.iter().map(|path| NodeConfig::load(path).expect("a config")).collect();
        // Validator 0's network binds inside its runtime, where a taken port is only logged.
        if let Err(error) = TcpListener::bind(configs[0].p2p_listen) {
            last_error = error.to_string();
            continue;
        }
        let equivocator = start_equivocator(configs[0].clone());
        let honest: Result<Vec<_>, _> =
            configs[1..].iter().map(|config| tally_node::run(config.clone()).map(Some)).collect();
        match honest {
            Ok(honest) => return EquivocatingCluster { layout, files, configs, honest, _equivocator: equivocator },
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

/// Waits until one of `urls` serves evidence against `accused`; returns that validator's index in
/// `urls` and its answer.
fn wait_for_evidence(urls: &[String], accused: &str) -> (usize, Value) {
    let started = Instant::now();
    loop {
        for (index, url) in urls.iter().enumerate() {
            if let Some(answer) = get(&format!("{url}/v1/evidence"))
                && answer["evidence"]
                    .as_array()
                    .is_some_and(|pieces| pieces.iter().any(|piece| piece["validator"] == accused))
            {
                return (index, answer);
            }
        }
        assert!(
            started.elapsed() < EVIDENCE_DEADLINE,
            "no honest validator kept evidence against validator 0 within {EVIDENCE_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_equivocating_validator_is_caught_and_the_evidence_verifies_offline() {
    // The validators' warnings (the evidence kept, peers blocked) show with a failure.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let EquivocatingCluster { layout, files, configs, mut honest, _equivocator } = start_cluster(dir.path());
    let accused = tally_node::hex::encode(configs[0].validator().as_ref());
    let urls: Vec<String> = (1..4).map(|index| format!("http://127.0.0.1:{}", layout.ports(index).1)).collect();

    let (index, answer) = wait_for_evidence(&urls, &accused);
    let pieces = answer["evidence"].as_array().unwrap();
    for piece in pieces {
        assert_eq!(piece["validator"], accused.as_str(), "only validator 0 is accused: {answer}");
        assert!(
            ["conflicting_notarize", "conflicting_finalize", "nullify_finalize"]
                .contains(&piece["kind"].as_str().unwrap())
        );
    }
    let status = get(&format!("{}/v1/status", urls[index])).expect("a status");
    assert!(status["evidence"].as_u64().unwrap() >= pieces.len() as u64);
    let counted =
        status["validators"].as_array().unwrap().iter().find(|validator| validator["key"] == accused.as_str());
    assert!(counted.unwrap()["faults"].as_u64().unwrap() >= 1, "the status counts validator 0's faults: {status}");

    // Checked offline: the whole answer, then one piece.
    let saved = dir.path().join("evidence.json");
    std::fs::write(&saved, answer.to_string()).unwrap();
    let output = verify(&saved, &files.genesis);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    eprintln!("tally evidence verify, on validator {}'s answer:\n{stdout}", index + 1);
    assert!(stdout.contains(&format!("proven: validator {accused} ")), "{stdout}");
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
