//! The validator's Prometheus metrics (`GET /metrics`): Tally's own, prefixed `tally_`, then
//! those Commonware's runtime, p2p and consensus keep (storage syncs, bytes sent, peers).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// How a submission ended, the label of `tally_requests_total`.
pub type ResultLabel = Vec<(&'static str, &'static str)>;

/// Tally's metrics of one validator.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    finalized_height: Gauge,
    view: Gauge,
    finalization_latency: Histogram,
    mempool_requests: Gauge,
    requests: Family<ResultLabel, Counter>,
    requests_finalized: Gauge,
    request_names_held: Gauge,
    blocks_refused: Gauge,
    byzantine_evidence: Gauge,
    records_repairing: Gauge,
    blocks_delivered_again: Gauge,
    connected_peers: Gauge,
    halted: Gauge,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tally");
        let finalized_height = Gauge::default();
        registry.register("finalized_height", "Height of the last finalized, durable block", finalized_height.clone());
        let view = Gauge::default();
        registry.register("view", "Current consensus view", view.clone());
        // 10 ms to about 20 s.
        let finalization_latency = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        registry.register(
            "finalization_latency_seconds",
            "Time from a submission to this validator until its outcome is final and durable",
            finalization_latency.clone(),
        );
        let mempool_requests = Gauge::default();
        registry.register("mempool_requests", "Requests held in the mempool", mempool_requests.clone());
        let requests = Family::<ResultLabel, Counter>::default();
        registry.register(
            "requests",
            "Submissions to this validator by result (finalized, pending, or the error code)",
            requests.clone(),
        );
        let requests_finalized = Gauge::default();
        registry.register("requests_finalized", "Requests finalized by the chain", requests_finalized.clone());
        let request_names_held = Gauge::default();
        registry.register(
            "request_names_held",
            "Included requests whose names the chain holds for retries (until ten minutes past their expiry)",
            request_names_held.clone(),
        );
        let blocks_refused = Gauge::default();
        registry.register(
            "blocks_refused",
            "Proposed blocks this validator refused because they broke a rule",
            blocks_refused.clone(),
        );
        let byzantine_evidence = Gauge::default();
        registry.register(
            "byzantine_evidence",
            "Evidence of Byzantine behaviour seen (conflicting votes, invalid blocks)",
            byzantine_evidence.clone(),
        );
        let records_repairing = Gauge::default();
        registry.register(
            "records_repairing",
            "Damaged finalized records found on this validator's disk and not yet fetched again from peers",
            records_repairing.clone(),
        );
        let blocks_delivered_again = Gauge::default();
        registry.register(
            "blocks_delivered_again",
            "Finalized blocks delivered to this validator that it had already executed (after a restart, or below \
             the snapshot it started from)",
            blocks_delivered_again.clone(),
        );
        let connected_peers = Gauge::default();
        registry.register("connected_peers", "Validators connected over p2p", connected_peers.clone());
        let halted = Gauge::default();
        registry.register("halted", "1 if this validator has stopped working, else 0", halted.clone());
        Self {
            registry,
            finalized_height,
            view,
            finalization_latency,
            mempool_requests,
            requests,
            requests_finalized,
            request_names_held,
            blocks_refused,
            byzantine_evidence,
            records_repairing,
            blocks_delivered_again,
            connected_peers,
            halted,
        }
    }

    /// Counts a submission's result.
    pub fn count_request(&self, result: &'static str) {
        self.requests.get_or_create(&vec![("result", result)]).inc();
    }

    pub fn observe_finalization(&self, latency: Duration) {
        self.finalization_latency.observe(latency.as_secs_f64());
    }

    /// Sets the gauges that mirror the chain's status.
    pub fn set_chain(&self, progress: ChainGauges) {
        self.finalized_height.set(saturating_i64(progress.finalized_height));
        self.view.set(saturating_i64(progress.view));
        self.mempool_requests.set(saturating_i64(progress.mempool_requests));
        self.requests_finalized.set(saturating_i64(progress.requests_finalized));
        self.request_names_held.set(saturating_i64(progress.request_names_held));
        self.blocks_refused.set(saturating_i64(progress.blocks_refused));
        self.byzantine_evidence.set(saturating_i64(progress.evidence));
        self.records_repairing.set(saturating_i64(progress.records_repairing));
        self.blocks_delivered_again.set(saturating_i64(progress.blocks_delivered_again));
    }

    pub fn set_connected_peers(&self, peers: usize) {
        self.connected_peers.set(saturating_i64(peers as u64));
    }

    pub fn set_halted(&self, halted: bool) {
        self.halted.set(i64::from(halted));
    }

    /// The OpenMetrics text of Tally's metrics followed by `runtime` (Commonware's text, which
    /// ends the exposition with `# EOF`).
    pub fn encode(&self, runtime: &str) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        let ours = text.strip_suffix("# EOF\n").unwrap_or(&text);
        let mut all = String::with_capacity(ours.len() + runtime.len());
        all.push_str(ours);
        all.push_str(runtime);
        if !runtime.ends_with("# EOF\n") {
            all.push_str("# EOF\n");
        }
        all
    }
}

/// The chain's progress, as the gauges show it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChainGauges {
    pub finalized_height: u64,
    pub view: u64,
    pub mempool_requests: u64,
    pub requests_finalized: u64,
    pub request_names_held: u64,
    pub blocks_refused: u64,
    pub evidence: u64,
    pub records_repairing: u64,
    pub blocks_delivered_again: u64,
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The number of peers Commonware's p2p tracker lists as connected, from its metrics text: one
/// sample of its `connected` family per connected peer.
pub fn connected_peers(runtime: &str) -> usize {
    runtime
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split('{').next().is_some_and(|name| name.contains("_tracker") && name.ends_with("_connected"))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_metric_once_with_one_eof() {
        let metrics = NodeMetrics::new();
        metrics.count_request("finalized");
        metrics.observe_finalization(Duration::from_millis(300));
        metrics.set_chain(ChainGauges { finalized_height: 5, ..ChainGauges::default() });
        let text = metrics.encode("# TYPE runtime_x counter\nruntime_x_total 1\n# EOF\n");
        for name in [
            "tally_finalized_height 5",
            "tally_view",
            "tally_finalization_latency_seconds_bucket",
            "tally_mempool_requests",
            "tally_requests_total{result=\"finalized\"} 1",
            "tally_byzantine_evidence",
            "tally_connected_peers",
            "runtime_x_total 1",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn counts_connected_peers_from_the_tracker() {
        let text = "# HELP network_tracker_directory_connected x\n\
                    network_tracker_directory_connected{peer=\"a\"} 1\n\
                    network_tracker_directory_connected{peer=\"b\"} 2\n\
                    network_tracker_directory_tracked 3\n";
        assert_eq!(connected_peers(text), 2);
    }
}
