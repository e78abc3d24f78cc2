//! The nemesis: one fault at a time, drawn from the seed, each held for a while and then
//! healed, until the run's time is up. At most one validator is harmed at once (f = 1 of 4),
//! except a split of the cluster in two halves and a crash of all four, which stop progress
//! until they heal but must not lose anything.

use crate::cluster::Cluster;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tally_sim::scenario::Draw;

/// The kinds of fault, in the order the report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Kill,
    KillLeader,
    Pause,
    Isolate,
    Split,
    FlipBytes,
    FillDisk,
    StepClock,
    CrashAll,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Kill,
        Kind::KillLeader,
        Kind::Pause,
        Kind::Isolate,
        Kind::Split,
        Kind::FlipBytes,
        Kind::FillDisk,
        Kind::StepClock,
        Kind::CrashAll,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Kill => "kill -9 a validator, restart it",
            Kind::KillLeader => "kill -9 the current leader, restart it",
            Kind::Pause => "SIGSTOP a validator, SIGCONT it",
            Kind::Isolate => "cut every link of a validator, heal",
            Kind::Split => "cut the cluster into halves, heal",
            Kind::FlipBytes => "flip bytes in a stopped validator's data files",
            Kind::FillDisk => "fill a validator's disk (tmpfs), free it",
            Kind::StepClock => "step a validator's wall clock forward or back, restore",
            Kind::CrashAll => "kill -9 all four at once, restart them",
        }
    }
}

/// One fault as it happened.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub kind: Kind,
    /// False when the fault could not be injected (the detail says why): it is not counted.
    pub injected: bool,
    pub detail: String,
}

/// Memory and disk of every validator at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    pub rss_kib: Vec<Option<u64>>,
    pub disk_bytes: Vec<u64>,
}

/// What the nemesis did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: Vec<Event>,
    /// Validators that stopped on their own (not by the nemesis's hand), and what the log said.
    pub stopped_on_their_own: Vec<String>,
    pub samples: Vec<Sample>,
    /// When the last fault was healed.
    pub last_heal: Option<Instant>,
    /// Every stop of a validator the nemesis did not cause by its own hand: (validator, reason).
    pub halts: Vec<(usize, String)>,
    /// Validators whose files the nemesis damaged or whose disk it filled: a fail-stop on a
    /// storage error is expected of them, of no other.
    pub damaged: std::collections::BTreeSet<usize>,
    /// Validators that stopped for damage they could not repair, and were given an empty data
    /// directory to rejoin from their peers (as an operator replaces a disk): they hold the
    /// state, but not the history of outcomes from before they rejoined.
    pub rejoined: std::collections::BTreeSet<usize>,
}

pub struct Nemesis<'a> {
    pub cluster: &'a mut Cluster,
    pub draw: Draw,
    pub started: Instant,
    pub sample_every: Option<Duration>,
    pub outcome: Outcome,
    filler: Option<PathBuf>,
    last_sample: Option<Instant>,
}

impl<'a> Nemesis<'a> {
    pub fn new(cluster: &'a mut Cluster, draw: Draw, started: Instant, sample_every: Option<Duration>) -> Self {
        Self { cluster, draw, started, sample_every, outcome: Outcome::default(), filler: None, last_sample: None }
    }

    fn available(&self) -> Vec<Kind> {
        let missing = self.unavailable();
        Kind::ALL.into_iter().filter(|kind| !missing.iter().any(|(gone, _)| gone == kind)).collect()
    }

    /// The kinds that cannot be injected on this machine, and why.
    pub fn unavailable(&self) -> Vec<(Kind, &'static str)> {
        let mut missing = Vec::new();
        if self.cluster.tmpfs.is_none() {
            missing.push((Kind::FillDisk, "mounting a tmpfs needs root"));
        }
        if !self.cluster.can_step_clocks() {
            missing.push((Kind::StepClock, "libfaketime is not installed (Debian's faketime)"));
        }
        missing
    }

    /// Runs faults until `until`, then heals everything. The kinds come in rounds, each round
    /// every available kind once in an order drawn from the seed, so that a run of a few
    /// minutes meets every kind.
    pub async fn run(&mut self, until: Instant) {
        let kinds = self.available();
        let mut round: Vec<Kind> = Vec::new();
        while Instant::now() < until {
            let quiet = self.draw.millis(2_000, 5_000);
            self.sleep(quiet).await;
            if Instant::now() >= until {
                break;
            }
            if round.is_empty() {
                round = kinds.clone();
                for index in (1..round.len()).rev() {
                    round.swap(index, self.draw.index(index + 1));
                }
            }
            let kind = round.pop().expect("a round holds every available kind");
            let hold = self.draw.millis(3_000, 8_000);
            let (injected, detail) = match self.inject(kind, hold).await {
                Ok(detail) => (true, detail),
                Err(why) => (false, format!("not injected: {why}")),
            };
            println!("[{:>6.1}s] {:?}: {detail}", self.started.elapsed().as_secs_f64(), kind);
            self.outcome.events.push(Event { at: self.started.elapsed(), kind, injected, detail });
            self.heal_all().await;
        }
        self.heal_all().await;
        self.outcome.last_heal = Some(Instant::now());
    }

    /// Sleeps, sampling memory and disk on the way when asked to.
    async fn sleep(&mut self, duration: Duration) {
        let end = Instant::now() + duration;
        loop {
            if let Some(every) = self.sample_every
                && self.last_sample.is_none_or(|at| at.elapsed() >= every)
            {
                self.sample();
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(Duration::from_millis(500))).await;
        }
    }

    pub fn sample(&mut self) {
        let count = self.cluster.validators.len();
        self.last_sample = Some(Instant::now());
        let sample = Sample {
            at: self.started.elapsed(),
            rss_kib: (0..count).map(|index| self.cluster.rss_kib(index)).collect(),
            disk_bytes: (0..count).map(|index| self.cluster.disk_bytes(index)).collect(),
        };
        // Printed as it is taken, so that a long run's figures survive whatever ends it.
        println!(
            "[{:>6.1}s] sample: RSS MiB {:?}, data MiB {:?}",
            sample.at.as_secs_f64(),
            sample.rss_kib.iter().map(|kib| kib.map(|kib| kib / 1024)).collect::<Vec<_>>(),
            sample.disk_bytes.iter().map(|bytes| bytes >> 20).collect::<Vec<_>>()
        );
        self.outcome.samples.push(sample);
    }

    async fn inject(&mut self, kind: Kind, hold: Duration) -> Result<String, String> {
        let count = self.cluster.validators.len();
        let victim = self.draw.index(count);
        Ok(match kind {
            Kind::Kill => {
                self.kill_for(victim, hold).await?;
                format!("validator {victim} down for {hold:?}")
            }
            Kind::KillLeader => {
                let leader = self.leader().await.ok_or("no validator named a leader")?;
                self.kill_for(leader, hold).await?;
                format!("leader {leader} down for {hold:?}")
            }
            Kind::Pause => {
                self.ensure_running(victim)?;
                self.cluster.pause(victim);
                self.sleep(hold).await;
                self.cluster.resume(victim);
                format!("validator {victim} stopped for {hold:?}")
            }
            Kind::Isolate => {
                for other in (0..count).filter(|other| *other != victim) {
                    self.cluster.links.cut(victim, other);
                }
                self.sleep(hold).await;
                self.cluster.links.heal_all();
                format!("validator {victim} cut off for {hold:?}")
            }
            Kind::Split => {
                let partner = (victim + 1 + self.draw.index(count - 1)) % count;
                let half: Vec<usize> = vec![victim, partner];
                for a in &half {
                    for b in (0..count).filter(|b| !half.contains(b)) {
                        self.cluster.links.cut(*a, b);
                    }
                }
                self.sleep(hold).await;
                self.cluster.links.heal_all();
                format!("{half:?} apart from the others for {hold:?}")
            }
            Kind::FlipBytes => {
                self.outcome.damaged.insert(victim);
                self.cluster.kill(victim);
                let flips = self.draw.between(1, 4) as usize;
                let mut draw = Draw::new(self.draw.next_u64());
                let flipped = self.cluster.flip_bytes(victim, flips, |below| draw.below(below.max(1)));
                self.restart(victim, "after bytes were flipped");
                let flipped = flipped.map_err(|error| format!("could not flip: {error}"))?;
                if flipped.is_empty() {
                    return Err(format!("validator {victim} has no data files yet"));
                }
                self.sleep(hold).await;
                format!("validator {victim}: {}", flipped.join(", "))
            }
            Kind::FillDisk => {
                let (index, size) = self.cluster.tmpfs.ok_or("no tmpfs")?;
                self.outcome.damaged.insert(index);
                let filler = self.cluster.fill_disk().map_err(|error| format!("could not fill the disk: {error}"))?;
                self.filler = Some(filler);
                self.sleep(hold).await;
                format!("validator {index}'s {size} MiB disk full for {hold:?}")
            }
            Kind::StepClock => {
                let magnitude = self.draw.between(2, 30) as i64;
                let seconds = if self.draw.chance(1, 2) { magnitude } else { -magnitude };
                self.cluster
                    .step_clock(victim, seconds)
                    .map_err(|error| format!("could not step the clock: {error}"))?;
                self.sleep(hold).await;
                format!("validator {victim}'s clock {seconds:+} s for {hold:?}")
            }
            Kind::CrashAll => {
                for index in 0..count {
                    self.cluster.kill(index);
                }
                let down = self.draw.millis(500, 3_000);
                self.sleep(down).await;
                for index in 0..count {
                    self.restart(index, "after the whole cluster crashed");
                }
                format!("all down for {down:?}")
            }
        })
    }

    /// `kill -9` a running validator, and restart it after `hold`.
    async fn kill_for(&mut self, index: usize, hold: Duration) -> Result<(), String> {
        self.ensure_running(index)?;
        self.cluster.kill(index);
        self.sleep(hold).await;
        self.restart(index, "after kill -9");
        Ok(())
    }

    fn ensure_running(&mut self, index: usize) -> Result<(), String> {
        if self.cluster.is_running(index) { Ok(()) } else { Err(format!("validator {index} is not running")) }
    }

    /// The index of the validator that leads the current view, as a running validator sees it.
    /// Asks every validator in turn, for up to 5 s (just after a crash, none may know yet).
    async fn leader(&mut self) -> Option<usize> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            for validator in &self.cluster.validators {
                let Ok(response) = http.get(format!("{}/v1/status", validator.api)).send().await else { continue };
                let Ok(status) = response.json::<serde_json::Value>().await else { continue };
                let Some(leader) = status["leader"].as_str() else { continue };
                if let Some(index) = self.cluster.validators.iter().position(|validator| validator.key == leader) {
                    return Some(index);
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }

    fn restart(&mut self, index: usize, why: &str) {
        if let Err(error) = self.cluster.restart(index) {
            self.outcome.stopped_on_their_own.push(format!("validator {index} could not restart {why}: {error}"));
        }
    }

    /// Heals every fault: links whole, processes running and resumed, clocks true, disk free.
    /// A validator that stopped on its own, or halted (fail-stop after a full disk, say), is
    /// noted and started again, as an operator would.
    pub async fn heal_all(&mut self) {
        self.cluster.links.heal_all();
        assert!(!self.cluster.links.any_cut(), "every link is whole after healing");
        if let Some(filler) = self.filler.take() {
            let _ = std::fs::remove_file(filler);
        }
        for index in 0..self.cluster.validators.len() {
            self.cluster.resume(index);
            let _ = self.cluster.step_clock(index, 0);
            let why = if !self.cluster.is_running(index) {
                format!("exited ({:?})", self.cluster.exit_status(index))
            } else if self.is_halted(index).await {
                String::from("halted")
            } else {
                continue;
            };
            let reason = halt_reason(&self.cluster.validators[index].log);
            self.outcome.stopped_on_their_own.push(format!("validator {index} {why}: {reason}"));
            self.outcome.halts.push((index, reason));
            self.cluster.kill(index);
            self.restart(index, "after it stopped");
            // Started again on the same files: if it stops again, the damage is for good. (A
            // validator answers /healthz before its consensus has opened its journal, so give
            // it a few seconds more after the first answer.)
            let healthy = self.cluster.wait_healthy(index, Duration::from_secs(15)).await.is_ok();
            tokio::time::sleep(Duration::from_secs(5)).await;
            if !healthy || !self.cluster.is_running(index) || self.is_halted(index).await {
                let reason = halt_reason(&self.cluster.validators[index].log);
                self.outcome
                    .stopped_on_their_own
                    .push(format!("validator {index} stopped again ({reason}); rejoined with an empty data directory"));
                self.outcome.halts.push((index, reason));
                self.outcome.rejoined.insert(index);
                if let Err(error) = self.cluster.rejoin(index) {
                    self.outcome.stopped_on_their_own.push(format!("validator {index} could not rejoin: {error}"));
                }
            }
        }
    }

    async fn is_halted(&self, index: usize) -> bool {
        self.cluster.is_halted(index).await
    }
}

/// The reason of the newest halt or panic in a validator's log.
pub fn halt_reason(log: &std::path::Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    // The task's own error names the cause; the node's line after it only says that it halted.
    let newest = |needle: &str| text.lines().rev().find(|line| line.contains(needle)).map(str::to_string);
    newest("task panicked err=")
        .or_else(|| newest("validator halted"))
        .map(|line| line.split("err=").last().unwrap_or(&line).trim().to_string())
        .unwrap_or_else(|| last_lines(log, 1))
}

/// The last `count` lines of a log, joined, for a report.
pub fn last_lines(path: &std::path::Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join(" | ")
}
