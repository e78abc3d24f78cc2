//! The nemesis: one fault at a time, drawn from the seed, each held for a while and then
//! healed, until the run's time is up. At most one validator is harmed at once (f = 1 of 4),
//! except a split of the cluster in two halves and a crash of all four, which stop progress
//! until they heal but must not lose anything.

use crate::cluster::Cluster;
use crate::draw::Draw;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
        Kind::ALL
            .into_iter()
            .filter(|kind| match kind {
                Kind::FillDisk => self.cluster.tmpfs.is_some(),
                Kind::StepClock => self.cluster.can_step_clocks(),
                _ => true,
            })
            .collect()
    }

    /// Runs faults until `until`, then heals everything.
    pub async fn run(&mut self, until: Instant) {
        let kinds = self.available();
        while Instant::now() < until {
            let quiet = self.draw.millis(2_000, 6_000);
            self.sleep(quiet).await;
            if Instant::now() >= until {
                break;
            }
            let kind = kinds[self.draw.below(kinds.len())];
            let hold = self.draw.millis(3_000, 10_000);
            let detail = self.inject(kind, hold).await;
            println!("[{:>6.1}s] {:?}: {detail}", self.started.elapsed().as_secs_f64(), kind);
            self.outcome.events.push(Event { at: self.started.elapsed(), kind, detail });
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
        self.outcome.samples.push(Sample {
            at: self.started.elapsed(),
            rss_kib: (0..count).map(|index| self.cluster.rss_kib(index)).collect(),
            disk_bytes: (0..count).map(|index| self.cluster.disk_bytes(index)).collect(),
        });
    }

    async fn inject(&mut self, kind: Kind, hold: Duration) -> String {
        let count = self.cluster.validators.len();
        let victim = self.draw.below(count);
        match kind {
            Kind::Kill => {
                self.cluster.kill(victim);
                self.sleep(hold).await;
                self.restart(victim, "after kill -9");
                format!("validator {victim} down for {hold:?}")
            }
            Kind::KillLeader => {
                let leader = self.leader().await.unwrap_or(victim);
                self.cluster.kill(leader);
                self.sleep(hold).await;
                self.restart(leader, "after kill -9");
                format!("leader {leader} down for {hold:?}")
            }
            Kind::Pause => {
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
                let partner = (victim + 1 + self.draw.below(count - 1)) % count;
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
                self.cluster.kill(victim);
                let flips = self.draw.between(1, 4) as usize;
                let label = self.draw.next();
                let mut draw = self.draw.fork(label);
                let flipped = match self.cluster.flip_bytes(victim, flips, |below| draw.next() % below.max(1)) {
                    Ok(flipped) => flipped.join(", "),
                    Err(error) => format!("could not flip: {error}"),
                };
                self.restart(victim, "after bytes were flipped");
                self.sleep(hold).await;
                format!("validator {victim}: {flipped}")
            }
            Kind::FillDisk => {
                let (index, size) = self.cluster.tmpfs.expect("only drawn with a tmpfs");
                let filled = self.cluster.fill_disk();
                self.sleep(hold).await;
                match filled {
                    Ok(path) => self.filler = Some(path),
                    Err(error) => return format!("could not fill validator {index}'s disk: {error}"),
                }
                format!("validator {index}'s {size} MiB disk full for {hold:?}")
            }
            Kind::StepClock => {
                let magnitude = self.draw.between(2, 30) as i64;
                let seconds = if self.draw.chance(1, 2) { magnitude } else { -magnitude };
                let _ = self.cluster.step_clock(victim, seconds);
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
        }
    }

    /// The index of the validator that leads the current view, as a running validator sees it.
    async fn leader(&mut self) -> Option<usize> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
        for validator in &self.cluster.validators {
            let Ok(response) = http.get(format!("{}/v1/status", validator.api)).send().await else { continue };
            let Ok(status) = response.json::<serde_json::Value>().await else { continue };
            let leader = status["leader"].as_str()?;
            return self.cluster.validators.iter().position(|validator| validator.key == leader);
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
            if !self.cluster.is_running(index) {
                let status = self.cluster.exit_status(index);
                let last = last_lines(&self.cluster.validators[index].log, 3);
                self.outcome.stopped_on_their_own.push(format!("validator {index} exited ({status:?}): {last}"));
                self.restart(index, "after it exited");
            } else if self.is_halted(index).await {
                let last = last_lines(&self.cluster.validators[index].log, 3);
                self.outcome.stopped_on_their_own.push(format!("validator {index} halted: {last}"));
                self.cluster.kill(index);
                self.restart(index, "after it halted");
            }
        }
    }

    async fn is_halted(&self, index: usize) -> bool {
        let Ok(http) = reqwest::Client::builder().timeout(Duration::from_secs(2)).build() else { return false };
        let url = format!("{}/healthz", self.cluster.validators[index].api);
        match http.get(url).send().await {
            Ok(response) => response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE,
            Err(_) => false,
        }
    }
}

/// The last `count` lines of a log, joined, for a report.
pub fn last_lines(path: &std::path::Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join(" | ")
}
