//! The bench's figures: the JSON written by `--json` (the field names are a contract:
//! fields may be added, never renamed) and the table printed at the end.

use serde::{Deserialize, Serialize};

use crate::percentile::sorted_nearest_rank;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub functions: Vec<FunctionFigures>,
    pub routes: Vec<RouteFigures>,
    pub saga: SagaFigures,
    /// Every failed request, failed cold start, order that did not reach `paid`, and
    /// invocation that did not succeed.
    pub errors: u64,
    pub cost: super::cost::Cost,
    pub settings: Settings,
    pub machine: Machine,
    pub overhead: Overhead,
    /// What one request of each route costs in AWS calls, everything it sets off included.
    pub census: Vec<CensusFigures>,
    /// CPU per invocation of a handler making one AWS call, and of the layers under it.
    #[serde(default)]
    pub floor: Vec<FloorFigures>,
    /// Live updates over the WebSocket API (`bench::live`), when the phase ran.
    #[serde(default)]
    pub live: Option<super::live::LiveFigures>,
    /// The same orders with the public catalog reads served by the storefront's CloudFront
    /// distribution (`Cost::with_edge_cache`).
    #[serde(default)]
    pub cost_with_edge_cache: Option<super::cost::Cost>,
    /// What the public catalog reads cost per order at the origin, which the cache takes off.
    #[serde(default)]
    pub catalog_reads: super::cost::CatalogReads,
    /// The flash sale, once per shard count (`bench::flash`), when the phase ran.
    #[serde(default)]
    pub flash: Vec<super::flash::FlashFigures>,
}

/// One function invoked again and again on one warm process with the same event (see
/// `bench::floor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FloorFigures {
    pub name: String,
    pub description: String,
    pub binary_bytes: u64,
    /// User + system CPU of its process per counted invocation (the warm-up's excluded).
    pub cpu_ms_per_invocation: f64,
    pub max_rss_bytes: u64,
    /// Counted invocations.
    pub invocations: u64,
    /// Invocations, the warm-up's included, that failed or did not answer 200.
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CensusFigures {
    pub route: String,
    /// By `<service>.<operation>`.
    pub calls: std::collections::BTreeMap<String, f64>,
    pub dynamodb_read_units: f64,
    pub dynamodb_write_units: f64,
    pub eventbridge_entries: f64,
    pub queue_messages: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionFigures {
    pub name: String,
    pub binary_bytes: u64,
    /// Spawn to the process's first `GET /runtime/invocation/next`.
    pub cold_start_ms: PeakFigures,
    /// Spawn to the first `POST /runtime/invocation/<id>/response`.
    pub first_response_ms: PeakFigures,
    /// Invocation handed out to response posted, each process's first excluded (load).
    pub warm_duration_ms: TailFigures,
    /// User + system CPU of the function's processes during the load, per warm
    /// invocation: a process started during the load counts from its first answer on.
    pub cpu_ms_per_invocation: f64,
    pub max_rss_bytes: u64,
    /// Invocations during the load.
    pub invocations: u64,
    /// The templates' MemorySize.
    pub memory_mb: u32,
    /// Cold starts measured (the samples of coldStartMs / firstResponseMs).
    pub cold_starts: u64,
    /// Warm invocations measured (the samples of warmDurationMs, the last 10 000 at most).
    pub warm_invocations: u64,
    /// Processes started during the load.
    pub load_cold_starts: u64,
    /// Invocations during the load that did not succeed.
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PeakFigures {
    pub p50: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TailFigures {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyFigures {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteFigures {
    pub route: String,
    pub count: u64,
    pub latency_ms: LatencyFigures,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SagaFigures {
    /// Orders the load placed (checkouts answered 202).
    pub orders: u64,
    /// Over the paid ones.
    pub checkout_to_paid_ms: TailFigures,
    pub paid: u64,
    pub cancelled: u64,
    /// Neither paid nor cancelled when the bench stopped waiting.
    pub unsettled: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub cold_starts: usize,
    pub users: usize,
    pub duration_seconds: u64,
    pub think_ms: u64,
    pub seed: u64,
    pub release: bool,
    pub max_processes: usize,
    pub census_repetitions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub cpus: usize,
    pub arch: String,
    pub os: String,
}

/// What the runner and the emulator cost the machine during the load: the functions share
/// its cores with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overhead {
    /// The runner (gateway, Runtime APIs, pollers, these virtual users, the bench's
    /// bookkeeping): CPU in milliseconds per API request of the load.
    pub runner_cpu_ms_per_request: f64,
    /// The runner's CPU over the load's wall time, in percent of one core.
    pub runner_cpu_percent: f64,
    /// moto's, likewise.
    pub emulator_cpu_percent: f64,
    /// The functions' processes together, likewise.
    pub functions_cpu_percent: f64,
}

/// p50/p90/p99 of `samples` (sorted here).
pub fn latency(samples: &mut [f64]) -> LatencyFigures {
    samples.sort_by(f64::total_cmp);
    LatencyFigures {
        p50: round(sorted_nearest_rank(samples, 0.50)),
        p90: round(sorted_nearest_rank(samples, 0.90)),
        p99: round(sorted_nearest_rank(samples, 0.99)),
    }
}

/// p50/p99 of `samples` (sorted here).
pub fn tail(samples: &mut [f64]) -> TailFigures {
    samples.sort_by(f64::total_cmp);
    TailFigures {
        p50: round(sorted_nearest_rank(samples, 0.50)),
        p99: round(sorted_nearest_rank(samples, 0.99)),
    }
}

/// To the microsecond (of milliseconds): finer is noise, and the JSON stays readable.
pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!(
            "\nshop-local bench: {} users for {}s, {} cold starts per function, seed {}, {} build, {} CPUs",
            self.settings.users,
            self.settings.duration_seconds,
            self.settings.cold_starts,
            self.settings.seed,
            if self.settings.release {
                "release"
            } else {
                "debug"
            },
            self.machine.cpus,
        ));
        line(String::new());
        line(format!(
            "  {:<18} {:>7} {:>15} {:>15} {:>15} {:>8} {:>8} {:>7} {:>6}",
            "function",
            "binary",
            "ready p50/max",
            "1st resp p50/max",
            "warm p50/p99",
            "CPU/warm",
            "peak RSS",
            "invoc.",
            "memory"
        ));
        for f in &self.functions {
            line(format!(
                "  {:<18} {:>5.1}MB {:>6.1}/{:>6.1}ms {:>6.1}/{:>6.1}ms {:>6.2}/{:>6.2}ms {:>6.3}ms {:>6.1}MB {:>7} {:>4}MB",
                f.name,
                mib(f.binary_bytes),
                f.cold_start_ms.p50,
                f.cold_start_ms.max,
                f.first_response_ms.p50,
                f.first_response_ms.max,
                f.warm_duration_ms.p50,
                f.warm_duration_ms.p99,
                f.cpu_ms_per_invocation,
                mib(f.max_rss_bytes),
                f.invocations,
                f.memory_mb,
            ));
        }
        line(String::new());
        line(format!(
            "  {:<32} {:>7} {:>9} {:>9} {:>9} {:>7}",
            "route", "count", "p50", "p90", "p99", "errors"
        ));
        for r in &self.routes {
            line(format!(
                "  {:<32} {:>7} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7}",
                r.route, r.count, r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99, r.errors
            ));
        }
        line(String::new());
        line(format!(
            "  saga: {} orders, {} paid, {} cancelled, {} unsettled; checkout -> paid p50 {:.0} ms, p99 {:.0} ms",
            self.saga.orders,
            self.saga.paid,
            self.saga.cancelled,
            self.saga.unsettled,
            self.saga.checkout_to_paid_ms.p50,
            self.saga.checkout_to_paid_ms.p99,
        ));
        line(format!(
            "  machine: runner {:.1} ms CPU per request ({:.0}% of a core), moto {:.0}%, functions {:.0}%",
            self.overhead.runner_cpu_ms_per_request,
            self.overhead.runner_cpu_percent,
            self.overhead.emulator_cpu_percent,
            self.overhead.functions_cpu_percent,
        ));
        if !self.floor.is_empty() {
            line(String::new());
            line(format!(
                "  one AWS call: {} invocations each, one after the other on one warm process",
                self.floor[0].invocations
            ));
            line(format!(
                "  {:<18} {:>8} {:>8} {:>7}  {}",
                "function", "CPU/call", "peak RSS", "errors", "what it does"
            ));
            for f in &self.floor {
                line(format!(
                    "  {:<18} {:>6.3}ms {:>6.1}MB {:>7}  {}",
                    f.name,
                    f.cpu_ms_per_invocation,
                    mib(f.max_rss_bytes),
                    f.errors,
                    f.description
                ));
            }
        }
        if let Some(live) = &self.live {
            line(String::new());
            line(format!(
                "  live updates: {} connections, {} orders followed to paid or cancelled ({} cancelled), {} pushes received, {} missed, {} refused",
                live.connections,
                live.orders,
                live.cancelled,
                live.messages,
                live.missed,
                live.refused
            ));
            line(format!(
                "    push latency (occurredAt -> client) p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms; connect p50 {:.0} ms, p99 {:.0} ms",
                live.push_latency_ms.p50,
                live.push_latency_ms.p90,
                live.push_latency_ms.p99,
                live.connect_ms.p50,
                live.connect_ms.p99,
            ));
            line(format!(
                "    per order: {:.1} s connected, {:.2} socket invocations",
                live.connection_seconds_per_order, live.socket_invocations_per_order
            ));
        }
        if !self.flash.is_empty() {
            line(String::new());
            line(format!(
                "  flash sale: {} shoppers at once for {} units of one product",
                self.flash[0].orders + self.flash[0].refused,
                self.flash[0].units
            ));
            line(format!(
                "  {:>6} {:>5} {:>12} {:>12} {:>9} {:>8} {:>12} {:>4} {:>8} {:>9} {:>9}",
                "shards",
                "paid",
                "out of stock",
                "other cancel",
                "unsettled",
                "oversold",
                "stock agrees",
                "DLQ",
                "settle s",
                "conflicts",
                "per order"
            ));
            for sale in &self.flash {
                line(format!(
                    "  {:>6} {:>5} {:>12} {:>12} {:>9} {:>8} {:>12} {:>4} {:>8.1} {:>9} {:>9.2}",
                    sale.shards,
                    sale.paid,
                    sale.cancelled_out_of_stock,
                    sale.cancelled_otherwise,
                    sale.unsettled,
                    sale.oversold,
                    if sale.stock_agrees { "yes" } else { "NO" },
                    sale.dead_letters,
                    sale.settle_seconds,
                    sale.conflicts_retried,
                    sale.conflicts_per_order
                ));
            }
        }
        line(String::new());
        for text in self.cost.table() {
            line(text);
        }
        if let Some(cached) = &self.cost_with_edge_cache {
            line(String::new());
            line(format!(
                "  with the catalog cached at the edge ({:.2} catalog reads per order, {:.2} catalog-api invocations, {:.2} RRU):",
                self.catalog_reads.requests,
                self.catalog_reads.lambda_requests,
                self.catalog_reads.dynamodb_read_units
            ));
            for text in cached.table() {
                line(text);
            }
        }
        line(String::new());
        line(format!("  errors: {}", self.errors));
        out
    }
}
