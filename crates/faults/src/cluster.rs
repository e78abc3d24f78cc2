//! Four validators as real `tally start` processes: their files, their processes, and the
//! levers the nemesis pulls on them (kill, pause, a full disk, a stepped clock, damaged files).

use crate::proxy::Links;
use anyhow::{Context as _, bail};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tally_node::cluster::{self, Layout};

/// Where Debian's `faketime` package puts the library.
const FAKETIME_LIBRARIES: &[&str] =
    &["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"];

/// How long a validator may take to answer `/healthz` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One validator process and its files.
#[derive(Debug)]
pub struct Validator {
    pub config: PathBuf,
    pub api: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// The file libfaketime reads the clock's offset from (when libfaketime is installed).
    pub clock_file: PathBuf,
    /// The validator's public key, hex, as `/v1/status` names leaders.
    pub key: String,
    child: Option<Child>,
    paused: bool,
}

/// The cluster under test.
#[derive(Debug)]
pub struct Cluster {
    pub dir: PathBuf,
    pub validators: Vec<Validator>,
    pub links: Arc<Links>,
    pub client_key: PathBuf,
    pub chain_id: u64,
    tally: PathBuf,
    faketime: Option<PathBuf>,
    /// The validator whose data directory is a small tmpfs (when this process may mount one),
    /// and the tmpfs's size in MiB.
    pub tmpfs: Option<(usize, u64)>,
}

impl Cluster {
    /// Writes a 4-validator cluster into `dir` (emptied first) whose validators reach each
    /// other only through `Links`, mounts a tmpfs of `tmpfs_mib` MiB as `disk_victim`'s data
    /// directory where mounting is allowed, and starts every validator.
    pub async fn start(
        dir: &Path,
        tally: &Path,
        base_port: u16,
        disk_victim: usize,
        tmpfs_mib: u64,
    ) -> anyhow::Result<Self> {
        if dir.exists() {
            kill_leftovers(dir);
            unmount_below(dir);
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        let files = cluster::init(&Layout::loopback(4, base_port), dir).context("cannot write the cluster's files")?;
        let genesis: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files.genesis)?)?;
        let entries = genesis["validators"].as_array().context("the genesis lists no validators")?;
        let mut targets = Vec::new();
        for config in &files.configs {
            let table: toml::Table = std::fs::read_to_string(config)?.parse()?;
            let listen = table["p2p_listen"].as_str().context("p2p_listen")?;
            targets.push(listen.replace("0.0.0.0", "127.0.0.1").parse()?);
        }
        let links = Links::start(&targets).await?;
        let faketime = FAKETIME_LIBRARIES.iter().map(PathBuf::from).find(|path| path.exists());
        let mut validators = Vec::new();
        for (index, config) in files.configs.iter().enumerate() {
            let mut table: toml::Table = std::fs::read_to_string(config)?.parse()?;
            // Every peer is dialed through its link's proxy.
            let peers = table.get_mut("peers").and_then(|peers| peers.as_array_mut()).context("peers")?;
            for peer in peers {
                let key = peer["key"].as_str().context("peer key")?.to_string();
                let to = entries
                    .iter()
                    .position(|entry| entry["key"].as_str() == Some(&key))
                    .context("a peer the genesis does not list")?;
                peer.as_table_mut()
                    .context("peer")?
                    .insert("p2p".into(), toml::Value::String(links.dial_address(index, to).to_string()));
            }
            // Rewriting in place keeps the file's mode.
            std::fs::write(config, toml::to_string(&table)?)?;
            let base = config.parent().context("config dir")?;
            let data_dir = base.join(table["data_dir"].as_str().context("data_dir")?);
            let api = format!(
                "http://{}",
                table["api_listen"].as_str().context("api_listen")?.replace("0.0.0.0", "127.0.0.1")
            );
            let clock_file = dir.join(format!("clock-{index}"));
            std::fs::write(&clock_file, "+0\n")?;
            validators.push(Validator {
                config: config.clone(),
                api,
                data_dir,
                log: dir.join(format!("validator-{index}.log")),
                clock_file,
                key: entries[index]["key"].as_str().context("validator key")?.to_string(),
                child: None,
                paused: false,
            });
        }
        let tmpfs = mount_tmpfs(&validators[disk_victim].data_dir, tmpfs_mib).then_some((disk_victim, tmpfs_mib));
        let mut cluster = Self {
            dir: dir.to_path_buf(),
            validators,
            links,
            client_key: files.client_keys[0].clone(),
            chain_id: 1,
            tally: tally.to_path_buf(),
            faketime,
            tmpfs,
        };
        for index in 0..cluster.validators.len() {
            cluster.spawn(index)?;
        }
        for index in 0..cluster.validators.len() {
            cluster.wait_healthy(index, START_TIMEOUT).await?;
        }
        Ok(cluster)
    }

    /// Whether clocks can be stepped (libfaketime is installed).
    pub fn can_step_clocks(&self) -> bool {
        self.faketime.is_some()
    }

    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let validator = &mut self.validators[index];
        assert!(validator.child.is_none(), "validator {index} is already running");
        let log = OpenOptions::new().create(true).append(true).open(&validator.log)?;
        let mut command = Command::new(&self.tally);
        command
            .args(["start", "--config"])
            .arg(&validator.config)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(library) = &self.faketime {
            // Only the wall clock moves, as when NTP steps it; the monotonic clock is left alone.
            command
                .env("LD_PRELOAD", library)
                .env("FAKETIME_TIMESTAMP_FILE", &validator.clock_file)
                .env("FAKETIME_CACHE_DURATION", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = command.spawn().with_context(|| format!("cannot start {}", self.tally.display()))?;
        validator.child = Some(child);
        validator.paused = false;
        Ok(())
    }

    /// Starts a validator that is down.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        if self.is_running(index) {
            return Ok(());
        }
        self.validators[index].child = None;
        self.spawn(index)
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self, index: usize) {
        let validator = &mut self.validators[index];
        if let Some(mut child) = validator.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        validator.paused = false;
    }

    /// SIGSTOP: the process stays, frozen, with its sockets open.
    pub fn pause(&mut self, index: usize) {
        if let Some(child) = &self.validators[index].child {
            signal(child.id(), "STOP");
            self.validators[index].paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self, index: usize) {
        if let Some(child) = &self.validators[index].child
            && self.validators[index].paused
        {
            signal(child.id(), "CONT");
        }
        self.validators[index].paused = false;
    }

    /// Whether the process is alive (paused or not).
    pub fn is_running(&mut self, index: usize) -> bool {
        match &mut self.validators[index].child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// How the process ended, if it ended on its own.
    pub fn exit_status(&mut self, index: usize) -> Option<std::process::ExitStatus> {
        self.validators[index].child.as_mut().and_then(|child| child.try_wait().ok().flatten())
    }

    pub fn pid(&self, index: usize) -> Option<u32> {
        self.validators[index].child.as_ref().map(Child::id)
    }

    /// Steps the validator's wall clock by `seconds` (negative: back) from true time.
    pub fn step_clock(&self, index: usize, seconds: i64) -> anyhow::Result<()> {
        std::fs::write(&self.validators[index].clock_file, format!("{seconds:+}\n"))?;
        Ok(())
    }

    /// Fills the tmpfs data directory of the disk victim to the last byte. Returns the filler's
    /// path, to remove to free the disk.
    pub fn fill_disk(&self) -> anyhow::Result<PathBuf> {
        let Some((index, _)) = self.tmpfs else { bail!("no validator's data directory is a tmpfs") };
        let filler = self.validators[index].data_dir.join("nemesis-filler");
        let mut file = File::create(&filler)?;
        let block = vec![0xA5u8; 1 << 20];
        loop {
            use std::io::Write as _;
            if file.write_all(&block).is_err() {
                break;
            }
        }
        // The last partial megabyte, byte by byte in small pieces.
        for _ in 0..1024 {
            use std::io::Write as _;
            if file.write_all(&block[..1024]).is_err() {
                break;
            }
        }
        Ok(filler)
    }

    /// Flips `count` random bytes (positions drawn by `pick`) in the validator's data files.
    /// The validator must be stopped. Returns what was flipped, for the report.
    pub fn flip_bytes(
        &self,
        index: usize,
        count: usize,
        mut pick: impl FnMut(u64) -> u64,
    ) -> anyhow::Result<Vec<String>> {
        let files: Vec<(PathBuf, u64)> = walk(&self.validators[index].data_dir)
            .into_iter()
            .filter(|(path, size)| *size > 0 && !path.ends_with("nemesis-filler"))
            .collect();
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut flipped = Vec::new();
        for _ in 0..count {
            let (path, size) = &files[pick(files.len() as u64) as usize];
            let offset = pick(*size);
            let mut bytes = std::fs::read(path)?;
            let Some(byte) = bytes.get_mut(offset as usize) else { continue };
            *byte ^= 1 << pick(8);
            std::fs::write(path, &bytes)?;
            let name = path.strip_prefix(&self.validators[index].data_dir).unwrap_or(path);
            flipped.push(format!("{}@{offset}/{size}", name.display()));
        }
        Ok(flipped)
    }

    /// Removes everything in a stopped validator's data directory (the directory stays: it
    /// may be a tmpfs mount point).
    pub fn empty_data_dir(&self, index: usize) {
        for entry in std::fs::read_dir(&self.validators[index].data_dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }

    /// Waits until the validator answers `/healthz` with 200.
    pub async fn wait_healthy(&mut self, index: usize, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let deadline = tokio::time::Instant::now() + timeout;
        let url = format!("{}/healthz", self.validators[index].api);
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if !self.is_running(index) {
                bail!(
                    "validator {index} exited ({:?}); see {}",
                    self.exit_status(index),
                    self.validators[index].log.display()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "validator {index} is not healthy after {timeout:?}; see {}",
                    self.validators[index].log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether the validator's API says it halted (503 on `/healthz`).
    pub async fn is_halted(&self, index: usize) -> bool {
        let Ok(http) = reqwest::Client::builder().timeout(Duration::from_secs(2)).build() else { return false };
        let url = format!("{}/healthz", self.validators[index].api);
        match http.get(url).send().await {
            Ok(response) => response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE,
            Err(_) => false,
        }
    }

    /// Gives a stopped validator an empty data directory and starts it: it rejoins from its
    /// peers, as on a replaced disk.
    pub fn rejoin(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index);
        self.empty_data_dir(index);
        self.restart(index)
    }

    /// Resident memory of the validator's process, in KiB.
    pub fn rss_kib(&self, index: usize) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(index)?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Bytes the validator keeps in its data directory (the nemesis's filler file is not counted).
    pub fn disk_bytes(&self, index: usize) -> u64 {
        walk(&self.validators[index].data_dir)
            .iter()
            .filter(|(path, _)| !path.ends_with("nemesis-filler"))
            .map(|(_, size)| size)
            .sum()
    }

    /// Stops every process and unmounts the tmpfs.
    pub fn shut_down(&mut self) {
        for index in 0..self.validators.len() {
            self.resume(index);
            self.kill(index);
        }
        unmount_below(&self.dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Every file below `dir` with its size.
fn walk(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                files.push((entry.path(), meta.len()));
            }
        }
    }
    files
}

/// Kills validators that an earlier run, cut short, left running with their configs in `dir`
/// (found by their command lines).
fn kill_leftovers(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else { return };
    let needle = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(command_line) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
        if pid != std::process::id() && command_line.contains(" start --config ") && command_line.contains(&needle) {
            signal(pid, "CONT");
            signal(pid, "KILL");
        }
    }
}

/// Mounts a tmpfs of `mib` MiB at `dir`. False where this process may not mount (not root).
fn mount_tmpfs(dir: &Path, mib: u64) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "tally-faults"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Unmounts every tmpfs this suite mounted below `dir` (left by an earlier run that was cut
/// short, too).
fn unmount_below(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else { return };
    let Ok(dir) = dir.canonicalize() else { return };
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(target)) = (fields.next(), fields.next()) else { continue };
        if source == "tally-faults" && Path::new(target).starts_with(&dir) {
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
}
