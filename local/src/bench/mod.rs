//! `shop-local bench`: the measuring instrument. Starts its own stack (release builds by
//! default), then measures, in this order:
//!
//! 1. cold starts: every function's binary started fresh `--cold-starts` times (its idle
//!    processes killed first), each driving one real invocation: API functions a
//!    `GET /health/<capability>` through the gateway, the payment sandbox a `GET /health`
//!    through its function URL, consumers and relays an empty batch (`{"Records": []}`),
//!    which their runtime receives, handles and answers like any other invocation, with no
//!    side effect. Spawn -> first `/next` and spawn -> first response are timed by the
//!    local Lambda Runtime API, from the instant before the spawn.
//! 2. the load: `--users` virtual shoppers for `--duration` (see [`load`]), after a catalog
//!    with plenty of stock has been set up and the stack has gone quiet. The functions'
//!    figures are reset at its start; the orders it places are followed to `paid`.
//! 3. the census (see [`census`]): AWS calls per action, for the cost per order.
//! 4. the floor (see [`floor`]): CPU per invocation of catalog-api's one-GetItem route
//!    and of the reference functions under it, `--floor-invocations` each.
//! 5. the flash sale (see [`flash`]): `--flash-orders` shoppers buying one product's
//!    `--flash-units` at once, once per `--flash-shards` count.
//! 6. live updates (see [`live`]): WebSocket connections each following one order.
//!
//! Nothing here slows the functions down: their timings are taken where the runner already
//! handles their Runtime API requests, their CPU and memory are read from `/proc` after the
//! fact, and their AWS calls go straight to the emulator during the timed load.

pub mod census;
pub mod cost;
pub mod emf;
pub mod flash;
pub mod floor;
pub mod live;
pub mod load;
pub mod meter;
pub mod report;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::client::ApiClient;
use crate::faults::FaultSettings;
use crate::lambda::LogSink;
use crate::procfs;
use crate::stack::{LocalStack, Stack, UpOptions};
use crate::topology::FUNCTION_URL_PREFIX;
use cost::{Cost, SQS_REQUESTS_PER_MESSAGE, Usage};
use load::{Action, Catalog, LoadSettings, Progress};
use report::{
    CensusFigures, FunctionFigures, Machine, Overhead, PeakFigures, Report, RouteFigures,
    SagaFigures, Settings, TailFigures,
};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub repo_root: PathBuf,
    /// Release binaries of the functions (as deployed); debug ones otherwise.
    pub release: bool,
    /// `cargo build` the functions first.
    pub build: bool,
    pub bin_dir: Option<PathBuf>,
    pub cold_starts: usize,
    pub users: usize,
    pub duration: Duration,
    pub think: Duration,
    pub seed: u64,
    /// How long to wait, after the load, for its orders to reach `paid`.
    pub saga_wait: Duration,
    pub census_repetitions: usize,
    /// Invocations of each function the floor measures; none skips it.
    pub floor_invocations: usize,
    /// WebSocket connections of the live-updates phase, each following one order; none
    /// skips it.
    pub live_connections: usize,
    /// Shoppers of the flash sale, each buying one unit; none skips it.
    pub flash_orders: usize,
    /// Units the flash sale's product has.
    pub flash_units: u32,
    /// The sale runs once per shard count of the product's stock.
    pub flash_shards: Vec<u32>,
    pub max_processes: usize,
    pub json: Option<PathBuf>,
    /// Where the functions' and the runner's log lines go.
    pub log_file: PathBuf,
}

/// Products the shoppers choose from, and the stock of each: far more than a run sells,
/// so that no checkout fails for want of stock.
const PRODUCTS: [(&str, &str, i64); 8] = [
    ("Bench Tea", "kitchen", 650),
    ("Bench Mug", "kitchen", 1200),
    ("Bench Kettle", "kitchen", 4900),
    ("Bench Novel", "books", 1599),
    ("Bench Atlas", "books", 3999),
    ("Bench Crab", "toys", 1999),
    ("Bench Kite", "toys", 2499),
    ("Bench Cable", "electronics", 899),
];
const STOCK: u32 = 1_000_000;
/// The stack is quiet when nothing has been invoked, delivered or called for this long
/// (the stream pollers look every 250 ms, the queue pollers long-poll).
const QUIET: Duration = Duration::from_millis(1500);
/// A bound on waiting for quiet, so a stack that never settles cannot hang the bench.
const QUIET_LIMIT: Duration = Duration::from_secs(60);

/// Runs the bench; the report, or why it could not run.
pub async fn run(options: &BenchOptions) -> Result<Report, String> {
    let status = Status::new();
    let (logs, log_file, tally) = file_logs(&options.log_file)?;
    status.say(&format!(
        "starting the stack ({} build; function logs in {})",
        if options.release { "release" } else { "debug" },
        options.log_file.display()
    ));
    let up = UpOptions {
        repo_root: options.repo_root.clone(),
        port: 0,
        seed_demo_data: false,
        release: options.release,
        build: options.build,
        bin_dir: options.bin_dir.clone(),
        run_dir: options.repo_root.join(".shop-local/bench"),
        faults: FaultSettings::default(),
        max_processes: options.max_processes,
        parameters: BTreeMap::new(),
        schedules_every: None,
        shortest_visibility_timeouts: false,
        watch: false,
        extra_binaries: if options.floor_invocations == 0 {
            Vec::new()
        } else {
            floor::BASELINES
                .iter()
                .map(|(binary, _)| (*binary).to_owned())
                .collect()
        },
    };
    let local = LocalStack::start(&up, logs.clone())
        .await
        .map_err(|e| e.to_string())?;
    let measured = measure(&local.stack, options, &status, logs.clone(), &tally).await;
    status.say("stopping the stack");
    local.stop().await;
    let _ = log_file
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .flush();
    let report = measured?;
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(report)
}

async fn measure(
    stack: &Stack,
    options: &BenchOptions,
    status: &Status,
    logs: LogSink,
    tally: &emf::MetricTally,
) -> Result<Report, String> {
    let log: Log = {
        let logs = logs.clone();
        Arc::new(move |line: &str| logs("bench", line))
    };
    let api = ApiClient::new(&stack.api_url);
    let cold = cold_starts(stack, &api, options, status, &log).await;
    status.say("setting up the catalog");
    let catalog = Arc::new(set_up_catalog(stack, &api).await?);
    let load = load(stack, &api, catalog.clone(), options, status, &log).await?;
    status.say(&format!(
        "census: AWS calls per action ({} repetitions each)",
        options.census_repetitions
    ));
    let census = census::run(
        stack,
        &api,
        &catalog,
        options.census_repetitions,
        log.as_ref(),
    )
    .await?;
    let floor = if options.floor_invocations == 0 {
        Vec::new()
    } else {
        status.say(&format!(
            "floor: one AWS call, {} invocations of each reference function and catalog-api",
            options.floor_invocations
        ));
        let product = catalog
            .products
            .first()
            .ok_or("the catalog has no product")?;
        floor::run(stack, product, options.floor_invocations, logs).await?
    };
    // After the census and the floor, for the backlog it leaves them; before live updates,
    // whose two hundred orders at once leave a backlog a sale would queue behind.
    let flash = if options.flash_orders == 0 {
        Vec::new()
    } else {
        status.say(&format!(
            "flash sale: {} shoppers at once for {} units, with {:?} shards",
            options.flash_orders, options.flash_units, options.flash_shards
        ));
        flash::run(
            stack,
            &api,
            tally,
            options.flash_orders,
            options.flash_units,
            &options.flash_shards,
            log.as_ref(),
        )
        .await?
    };
    // Last: two hundred orders at once leave the emulator a backlog (relays, reconciler)
    // that would run under the census's count and the floor's timing.
    let live = if options.live_connections == 0 {
        None
    } else {
        status.say(&format!(
            "live updates: {} WebSocket connections, each following its order to paid",
            options.live_connections
        ));
        wait_quiet(stack, None).await;
        Some(
            live::run(
                stack,
                &api,
                &catalog,
                options.live_connections,
                log.as_ref(),
            )
            .await?,
        )
    };
    let mut report = assemble(stack, options, &cold, &load, &census, floor, live);
    report.errors += flash
        .iter()
        .map(|sale| {
            sale.refused
                + sale.unsettled
                + sale.oversold
                + sale.dead_letters
                + u64::from(!sale.stock_agrees)
        })
        .sum::<u64>();
    report.flash = flash;
    Ok(report)
}

type Log = Arc<dyn Fn(&str) + Send + Sync>;
type Figures = BTreeMap<String, crate::lambda::FunctionStats>;

fn figures(stack: &Stack) -> Figures {
    stack
        .functions
        .iter()
        .map(|(name, function)| (name.clone(), function.stats()))
        .collect()
}

struct ColdStarts {
    figures: Figures,
    failures: u64,
}

/// Every function started fresh `options.cold_starts` times, one real invocation each.
async fn cold_starts(
    stack: &Stack,
    api: &ApiClient,
    options: &BenchOptions,
    status: &Status,
    log: &Log,
) -> ColdStarts {
    for function in stack.functions.values() {
        function.reset_stats();
    }
    let mut failures = 0;
    for round in 1..=options.cold_starts {
        status.say(&format!(
            "cold starts: round {round} of {}",
            options.cold_starts
        ));
        for spec in &stack.topology.functions {
            let Some(function) = stack.functions.get(&spec.name) else {
                continue;
            };
            function.retire_idle().await;
            if let Err(error) = first_invocation(stack, api, &spec.name).await {
                failures += 1;
                log(&format!("cold start of {}: {error}", spec.binary));
            }
        }
    }
    ColdStarts {
        figures: figures(stack),
        failures,
    }
}

struct Load {
    result: load::LoadResult,
    wall: Duration,
    /// The functions' figures once everything the load set off has run.
    figures: Figures,
    cpu_before: CpuSnapshot,
    /// At the deadline: what the machine spent while the load ran.
    cpu_at_deadline: CpuSnapshot,
    /// Once quiet: what the functions spent on the load, the saga's tail included.
    cpu_settled: CpuSnapshot,
    peak_rss: BTreeMap<String, u64>,
    saga: SagaFigures,
}

/// The shoppers' load on a quiet stack with fresh figures, then the wait for its orders.
async fn load(
    stack: &Stack,
    api: &ApiClient,
    catalog: Arc<Catalog>,
    options: &BenchOptions,
    status: &Status,
    log: &Log,
) -> Result<Load, String> {
    wait_quiet(stack, None).await;
    let tokens = (0..options.users)
        .map(|n| {
            let user = format!("bench-shopper-{n}");
            // A day: a token never expires during a run.
            let lifetime = Duration::from_secs(86_400);
            stack
                .issuer
                .token(&user, false, lifetime)
                .map_err(|e| format!("token: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for function in stack.functions.values() {
        function.reset_stats();
    }
    let cpu_before = CpuSnapshot::take(stack);
    let saga = SagaWatch::start(stack.events.subscribe());
    let progress = Arc::new(Progress::default());
    let settings = LoadSettings {
        users: options.users,
        duration: options.duration,
        think: options.think,
        seed: options.seed,
        request_timeout: Duration::from_secs(30),
    };
    let started = Instant::now();
    let ticker = status.ticker(progress.clone(), saga.clone(), options.duration);
    let result = load::run(api, tokens, catalog, &settings, progress, log.clone()).await;
    let wall = started.elapsed();
    let cpu_at_deadline = CpuSnapshot::take(stack);
    ticker.abort();
    status.end_progress();

    status.say(&format!(
        "waiting up to {}s for {} orders to be paid",
        options.saga_wait.as_secs(),
        result.orders.len()
    ));
    let order_ids: Vec<&str> = result.orders.iter().map(|o| o.order_id.as_str()).collect();
    saga.wait_for(&order_ids, options.saga_wait).await;
    wait_quiet(stack, None).await;
    Ok(Load {
        figures: figures(stack),
        cpu_settled: CpuSnapshot::take(stack),
        peak_rss: live_peak_rss(stack),
        saga: saga.outcome(&result.orders),
        result,
        wall,
        cpu_before,
        cpu_at_deadline,
    })
}

fn assemble(
    stack: &Stack,
    options: &BenchOptions,
    cold: &ColdStarts,
    load: &Load,
    census: &census::Census,
    floor: Vec<report::FloorFigures>,
    live: Option<live::LiveFigures>,
) -> Report {
    let functions = function_figures(stack, cold, load);
    let routes: Vec<RouteFigures> = load
        .result
        .routes
        .iter()
        .map(|(action, samples)| RouteFigures {
            route: action.route().to_owned(),
            count: samples.latencies_ms.len() as u64,
            latency_ms: report::latency(&mut samples.latencies_ms.clone()),
            errors: samples.errors,
        })
        .collect();
    let route_errors: u64 = routes.iter().map(|r| r.errors).sum();
    let saga_errors = load.saga.cancelled + load.saga.unsettled;
    // Errors of the functions no request waits on (consumers, relays, the sandbox): a
    // request's own function errors are already its route's.
    let routed: HashSet<&str> = stack
        .topology
        .routes
        .iter()
        .map(|r| r.function.as_str())
        .collect();
    let async_errors: u64 = load
        .figures
        .iter()
        .filter(|(name, _)| !routed.contains(name.as_str()))
        .map(|(_, stats)| stats.errors)
        .sum();
    let (usage, calls_per_order) = usage(stack, load, census);
    let catalog_reads = catalog_reads(stack, load, census);
    let live_errors = live.as_ref().map_or(0, |live| live.refused + live.missed);
    let cost = Cost::new(usage, calls_per_order).with_live_updates(live.as_ref());
    Report {
        cost_with_edge_cache: Some(cost.with_edge_cache(&catalog_reads)),
        catalog_reads,
        cost,
        live,
        flash: Vec::new(),
        errors: live_errors
            + route_errors
            + saga_errors
            + cold.failures
            + census.errors
            + async_errors
            + floor.iter().map(|f| f.errors).sum::<u64>(),
        floor,
        functions,
        saga: load.saga.clone(),
        overhead: overhead(stack, load, routes.iter().map(|r| r.count).sum()),
        census: census
            .costs
            .iter()
            .map(|(action, cost)| CensusFigures {
                route: action.route().to_owned(),
                calls: cost
                    .calls
                    .iter()
                    .map(|(operation, calls)| (operation.clone(), report::round(*calls)))
                    .collect(),
                dynamodb_read_units: report::round(cost.read_units),
                dynamodb_write_units: report::round(cost.write_units),
                eventbridge_entries: report::round(cost.put_events_entries),
                queue_messages: report::round(cost.queue_messages),
            })
            .collect(),
        routes,
        settings: Settings {
            cold_starts: options.cold_starts,
            users: options.users,
            duration_seconds: options.duration.as_secs(),
            think_ms: u64::try_from(options.think.as_millis()).unwrap_or(u64::MAX),
            seed: options.seed,
            release: options.release,
            max_processes: options.max_processes,
            census_repetitions: options.census_repetitions,
        },
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            arch: std::env::consts::ARCH.to_owned(),
            os: std::env::consts::OS.to_owned(),
        },
    }
}

fn function_figures(stack: &Stack, cold: &ColdStarts, load: &Load) -> Vec<FunctionFigures> {
    stack
        .topology
        .functions
        .iter()
        .filter_map(|spec| {
            let (cold_stats, stats) =
                (cold.figures.get(&spec.name)?, load.figures.get(&spec.name)?);
            let binary = stack.functions.get(&spec.name)?.config().binary.clone();
            let warm_cpu = load.cpu_settled.warm_since(&load.cpu_before, &spec.name);
            Some(FunctionFigures {
                name: spec.binary.clone(),
                binary_bytes: std::fs::metadata(&binary).map_or(0, |m| m.len()),
                cold_start_ms: PeakFigures {
                    p50: cold_stats.init_ms.p50,
                    max: cold_stats.init_ms.max,
                },
                first_response_ms: PeakFigures {
                    p50: cold_stats.first_response_ms.p50,
                    max: cold_stats.first_response_ms.max,
                },
                warm_duration_ms: TailFigures {
                    p50: stats.warm_duration_ms.p50,
                    p99: stats.warm_duration_ms.p99,
                },
                cpu_ms_per_invocation: if stats.warm_invocations == 0 {
                    0.0
                } else {
                    report::round(warm_cpu.as_secs_f64() * 1000.0 / stats.warm_invocations as f64)
                },
                max_rss_bytes: stats
                    .peak_rss_bytes
                    .max(load.peak_rss.get(&spec.name).copied().unwrap_or(0)),
                invocations: stats.invocations,
                memory_mb: spec.memory_mb,
                cold_starts: cold_stats.cold_starts,
                warm_invocations: stats.warm_invocations,
                load_cold_starts: stats.cold_starts,
                errors: stats.errors,
            })
        })
        .collect()
}

/// How many times the load took `action`.
fn times_taken(load: &Load, action: &Action) -> f64 {
    load.result
        .routes
        .get(action)
        .map_or(0.0, |samples| samples.latencies_ms.len() as f64)
}

/// What a function's invocations were billed, in GB-seconds at its template's memory.
fn billed_gb_seconds(
    spec: &crate::topology::FunctionSpec,
    stats: &crate::lambda::FunctionStats,
) -> f64 {
    let billed_seconds = (stats.warm_billed_ms + stats.cold_billed_ms) as f64 / 1000.0;
    billed_seconds * f64::from(spec.memory_mb) / 1024.0
}

/// Usage per order: Lambda and API Gateway from the load itself, the rest from the
/// census's cost of each action times how often the load took it. Also the AWS calls per
/// order, by operation.
fn usage(stack: &Stack, load: &Load, census: &census::Census) -> (Usage, BTreeMap<String, f64>) {
    let orders = load.result.orders.len() as f64;
    let per_order = |total: f64| if orders > 0.0 { total / orders } else { 0.0 };
    let gb_seconds: f64 = stack
        .topology
        .functions
        .iter()
        .filter_map(|spec| Some(billed_gb_seconds(spec, load.figures.get(&spec.name)?)))
        .sum();
    let taken = |action: &Action| times_taken(load, action);
    let total = |value: &dyn Fn(&census::ActionCost) -> f64| -> f64 {
        census
            .costs
            .iter()
            .map(|(action, cost)| taken(action) * value(cost))
            .sum()
    };
    let mut calls_per_order: BTreeMap<String, f64> = BTreeMap::new();
    for (action, cost) in &census.costs {
        for (operation, calls) in &cost.calls {
            *calls_per_order.entry(operation.clone()).or_default() += taken(action) * calls;
        }
    }
    for calls in calls_per_order.values_mut() {
        *calls = report::round(per_order(*calls));
    }
    let requests: f64 = load
        .result
        .routes
        .values()
        .map(|samples| samples.latencies_ms.len() as f64)
        .sum();
    let usage = Usage {
        lambda_requests: per_order(load.figures.values().map(|s| s.invocations as f64).sum()),
        lambda_gb_seconds: per_order(gb_seconds),
        api_requests: per_order(requests),
        eventbridge_entries: per_order(total(&|c| c.put_events_entries)),
        sqs_requests: per_order(total(&|c| c.queue_messages) * SQS_REQUESTS_PER_MESSAGE),
        dynamodb_read_units: per_order(total(&|c| c.read_units)),
        dynamodb_write_units: per_order(total(&|c| c.write_units)),
        ..Usage::default()
    };
    (usage, calls_per_order)
}

/// What the public catalog reads of the load cost per order at the origin: their
/// requests, and catalog-api's invocations and billed GB-seconds (the load calls it for
/// nothing else), and their read units from the census.
fn catalog_reads(stack: &Stack, load: &Load, census: &census::Census) -> cost::CatalogReads {
    let orders = load.result.orders.len() as f64;
    if orders == 0.0 {
        return cost::CatalogReads::default();
    }
    let cached = [Action::Browse, Action::ViewProduct];
    let taken = |action: &Action| times_taken(load, action);
    let requests: f64 = cached.iter().map(taken).sum();
    let read_units: f64 = census
        .costs
        .iter()
        .filter(|(action, _)| cached.contains(action))
        .map(|(action, cost)| taken(action) * cost.read_units)
        .sum();
    let (invocations, gb_seconds) = stack
        .topology
        .functions
        .iter()
        .filter(|spec| spec.binary == "catalog-api")
        .filter_map(|spec| Some((spec, load.figures.get(&spec.name)?)))
        .fold((0.0, 0.0), |(invocations, gb_seconds), (spec, stats)| {
            (
                invocations + stats.invocations as f64,
                gb_seconds + billed_gb_seconds(spec, stats),
            )
        });
    cost::CatalogReads {
        requests: report::round(requests / orders),
        lambda_requests: report::round(invocations / orders),
        lambda_gb_seconds: gb_seconds / orders,
        dynamodb_read_units: report::round(read_units / orders),
    }
}

/// What the runner, moto and the functions took of the machine while the load ran.
fn overhead(stack: &Stack, load: &Load, requests: u64) -> Overhead {
    let (before, after) = (&load.cpu_before, &load.cpu_at_deadline);
    let wall = load.wall.as_secs_f64().max(f64::EPSILON);
    let functions: Duration = stack
        .topology
        .functions
        .iter()
        .map(|spec| after.since(before, &spec.name))
        .sum();
    let runner = after.runner.saturating_sub(before.runner);
    let percent = |cpu: Duration| report::round(cpu.as_secs_f64() / wall * 100.0);
    Overhead {
        runner_cpu_ms_per_request: report::round(if requests == 0 {
            0.0
        } else {
            runner.as_secs_f64() * 1000.0 / requests as f64
        }),
        runner_cpu_percent: percent(runner),
        emulator_cpu_percent: percent(after.moto.saturating_sub(before.moto)),
        functions_cpu_percent: percent(functions),
    }
}

/// One real invocation of a function on a new process (its idle ones are gone).
async fn first_invocation(stack: &Stack, api: &ApiClient, function: &str) -> Result<(), String> {
    let health = stack
        .topology
        .routes
        .iter()
        .find(|route| route.function == function && route.path.starts_with("/health"));
    if let Some(route) = health {
        let (status, answer) = api.call("GET", &route.path, None, None, &[]).await?;
        return if status == 200 {
            Ok(())
        } else {
            Err(format!("GET {} answered {status}: {answer}", route.path))
        };
    }
    if stack
        .topology
        .function_urls
        .iter()
        .any(|url| url.function == function)
    {
        let path = format!("{FUNCTION_URL_PREFIX}{function}/health");
        let (status, answer) = api.call("GET", &path, None, None, &[]).await?;
        return if status == 200 {
            Ok(())
        } else {
            Err(format!("GET {path} answered {status}: {answer}"))
        };
    }
    let lambda = stack
        .functions
        .get(function)
        .ok_or_else(|| format!("no function {function}"))?;
    let behind_websocket = stack.topology.websocket.as_ref().is_some_and(|websocket| {
        websocket
            .routes
            .iter()
            .any(|route| route.function == function)
    });
    // A WebSocket route's function reads a connection (one GetItem) on `$disconnect` of
    // one it never saw; consumers and relays get an empty batch, which makes no AWS call.
    let event: &'static [u8] = if behind_websocket {
        br#"{"requestContext": {"routeKey": "$disconnect", "eventType": "DISCONNECT", "connectionId": "benchColdStart=", "connectedAt": 0, "requestTimeEpoch": 0}, "isBase64Encoded": false}"#
    } else {
        br#"{"Records": []}"#
    };
    let invocation = lambda.invoke(Bytes::from_static(event)).await;
    if invocation.outcome.is_success() {
        Ok(())
    } else {
        Err(format!("{:?}", invocation.outcome))
    }
}

async fn set_up_catalog(stack: &Stack, api: &ApiClient) -> Result<Catalog, String> {
    let admin = stack
        .issuer
        .token("bench-admin", true, Duration::from_secs(3600))
        .map_err(|e| format!("token: {e}"))?;
    let probe = stack
        .issuer
        .token("bench-probe", false, Duration::from_secs(3600))
        .map_err(|e| format!("token: {e}"))?;
    let mut products = Vec::new();
    for (name, category, price) in PRODUCTS {
        let product = serde_json::json!({"name": name, "category": category,
            "description": "A product of the bench's catalog.",
            "price": {"amount": price, "currency": "USD"}});
        products.push(
            crate::shop::product_with_stock(
                api,
                &admin,
                &probe,
                &product,
                STOCK,
                Duration::from_secs(60),
            )
            .await?,
        );
    }
    let mut categories: Vec<String> = PRODUCTS.iter().map(|(_, c, _)| (*c).to_owned()).collect();
    categories.dedup();
    Ok(Catalog {
        products,
        categories,
    })
}

/// What the stack has done so far: invocations, queue deliveries, metered calls.
pub(crate) struct Activity {
    invocations: u64,
    deliveries: u64,
    queue_messages: u64,
    counts: meter::Counts,
}

impl Activity {
    fn now(stack: &Stack, meter: Option<&meter::Meter>) -> Activity {
        let queue_mappings: HashSet<&str> = stack
            .topology
            .queue_mappings
            .iter()
            .map(|m| m.logical_id.as_str())
            .collect();
        let mut deliveries = 0;
        let mut queue_messages = 0;
        for stats in &stack.mapping_stats {
            let records = stats.records.load(Ordering::Relaxed);
            deliveries += records + stats.batches.load(Ordering::Relaxed);
            if queue_mappings.contains(stats.mapping.as_str()) {
                queue_messages += records;
            }
        }
        Activity {
            invocations: stack.functions.values().map(|f| f.invocation_count()).sum(),
            deliveries,
            queue_messages,
            counts: meter.map(meter::Meter::counts).unwrap_or_default(),
        }
    }

    fn signature(&self) -> (u64, u64, u64) {
        (
            self.invocations,
            self.deliveries,
            self.counts.calls.values().sum(),
        )
    }
}

/// Waits until nothing has happened for [`QUIET`] (at most [`QUIET_LIMIT`]).
pub(crate) async fn wait_quiet(stack: &Stack, meter: Option<&meter::Meter>) {
    let give_up = Instant::now() + QUIET_LIMIT;
    let mut last = Activity::now(stack, meter).signature();
    let mut since = Instant::now();
    while Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Activity::now(stack, meter).signature();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= QUIET {
            return;
        }
    }
}

/// CPU time of a function's live processes, by pid.
fn processes_cpu(function: &crate::lambda::LambdaFunction) -> HashMap<u32, Duration> {
    function
        .pids()
        .into_iter()
        .filter_map(|pid| procfs::cpu_time(pid).map(|cpu| (pid, cpu)))
        .collect()
}

/// The CPU that processes spent between two readings, by pid. A process missing from
/// `before` (started in between) counts from its reading in `first_answer` when it has
/// one (its init and first invocation left out), else from its start.
fn cpu_spent(
    after: &HashMap<u32, Duration>,
    before: Option<&HashMap<u32, Duration>>,
    first_answer: Option<&HashMap<u32, Duration>>,
) -> Duration {
    after
        .iter()
        .map(|(pid, cpu)| {
            let start = before
                .and_then(|pids| pids.get(pid))
                .or_else(|| first_answer.and_then(|pids| pids.get(pid)))
                .copied()
                .unwrap_or_default();
            cpu.saturating_sub(start)
        })
        .sum()
}

/// CPU time of the function processes (by pid), the runner and moto, at one instant.
struct CpuSnapshot {
    functions: BTreeMap<String, HashMap<u32, Duration>>,
    /// Each process's CPU time when it had answered its first invocation.
    cold: BTreeMap<String, HashMap<u32, Duration>>,
    runner: Duration,
    moto: Duration,
}

impl CpuSnapshot {
    fn take(stack: &Stack) -> CpuSnapshot {
        CpuSnapshot {
            functions: stack
                .functions
                .iter()
                .map(|(name, function)| (name.clone(), processes_cpu(function)))
                .collect(),
            cold: stack
                .functions
                .iter()
                .map(|(name, function)| (name.clone(), function.cold_cpu()))
                .collect(),
            runner: procfs::cpu_time(std::process::id()).unwrap_or_default(),
            moto: procfs::cpu_time(stack.moto_pid).unwrap_or_default(),
        }
    }

    /// The function's CPU between `before` and this snapshot; a process started in
    /// between counts from its start. A process that exited in between is lost (none
    /// does in a bench run: no faults are injected).
    fn since(&self, before: &CpuSnapshot, function: &str) -> Duration {
        self.spent(before, function, false)
    }

    /// As [`CpuSnapshot::since`], but a process started in between counts from its first
    /// invocation's answer: its init and first invocation are not warm work.
    fn warm_since(&self, before: &CpuSnapshot, function: &str) -> Duration {
        self.spent(before, function, true)
    }

    fn spent(&self, before: &CpuSnapshot, function: &str, warm_only: bool) -> Duration {
        let Some(after) = self.functions.get(function) else {
            return Duration::ZERO;
        };
        cpu_spent(
            after,
            before.functions.get(function),
            self.cold.get(function).filter(|_| warm_only),
        )
    }
}

fn live_peak_rss(stack: &Stack) -> BTreeMap<String, u64> {
    stack
        .functions
        .iter()
        .map(|(name, function)| (name.clone(), processes_peak_rss(function)))
        .collect()
}

/// The highest peak RSS among a function's live processes (0 when none is alive).
fn processes_peak_rss(function: &crate::lambda::LambdaFunction) -> u64 {
    function
        .pids()
        .into_iter()
        .filter_map(procfs::peak_rss)
        .max()
        .unwrap_or(0)
}

/// The orders' fates, as the bus tells them: OrderPaid or OrderCancelled (with its
/// reason), each with the instant it happened, its `occurredAt`, stamped in the same
/// transaction as the status change. Watching the bus costs the stack nothing more (the
/// runner's tap already reads every event), where polling each order would add API
/// traffic of its own to the load.
#[derive(Clone)]
struct SagaWatch {
    seen: Arc<Mutex<SagaSeen>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct SagaSeen {
    paid: HashMap<String, SystemTime>,
    /// The cancellation's reason (`out_of_stock`, ...) and when it happened.
    cancelled: HashMap<String, (String, SystemTime)>,
    /// Events the watcher missed for falling behind.
    missed: u64,
}

impl SagaWatch {
    fn start(mut events: broadcast::Receiver<Value>) -> SagaWatch {
        let seen = Arc::new(Mutex::new(SagaSeen::default()));
        let writer = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let data = &event["detail"]["data"];
                        let Some(order_id) = data["orderId"].as_str() else {
                            continue;
                        };
                        let at = event["detail"]["metadata"]["occurredAt"]
                            .as_str()
                            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                            .map(SystemTime::from)
                            .unwrap_or_else(SystemTime::now);
                        let mut seen = writer.lock().unwrap_or_else(PoisonError::into_inner);
                        match event["detail-type"].as_str() {
                            Some("OrderPaid") => {
                                seen.paid.insert(order_id.to_owned(), at);
                            }
                            Some("OrderCancelled") => {
                                let reason = data["reason"].as_str().unwrap_or("unknown");
                                seen.cancelled
                                    .insert(order_id.to_owned(), (reason.to_owned(), at));
                            }
                            _ => {}
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        writer.lock().unwrap_or_else(PoisonError::into_inner).missed += missed;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        SagaWatch {
            seen,
            task: Arc::new(task),
        }
    }

    fn stop(&self) {
        self.task.abort();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SagaSeen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn paid_count(&self) -> usize {
        self.lock().paid.len()
    }

    /// Until every order is paid or cancelled, or `limit` has passed.
    async fn wait_for(&self, orders: &[&str], limit: Duration) {
        let give_up = Instant::now() + limit;
        while Instant::now() < give_up {
            let settled = {
                let seen = self.lock();
                orders
                    .iter()
                    .all(|id| seen.paid.contains_key(*id) || seen.cancelled.contains_key(*id))
            };
            if settled {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn outcome(&self, orders: &[load::PlacedOrder]) -> SagaFigures {
        self.stop();
        let seen = self.lock();
        let mut latencies = Vec::new();
        let (mut cancelled, mut unsettled) = (0, 0);
        for order in orders {
            if let Some(paid_at) = seen.paid.get(&order.order_id) {
                // The same clock stamped both; a clock step in between would show as 0.
                let millis = paid_at
                    .duration_since(order.checkout_sent)
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                latencies.push(millis);
            } else if seen.cancelled.contains_key(&order.order_id) {
                cancelled += 1;
            } else {
                unsettled += 1;
            }
        }
        SagaFigures {
            orders: orders.len() as u64,
            paid: latencies.len() as u64,
            checkout_to_paid_ms: report::tail(&mut latencies),
            cancelled,
            unsettled,
        }
    }
}

/// The bench's own lines on stderr: plain lines for its phases, and during the load one
/// progress line, rewritten in place on a terminal, printed every 10 s otherwise.
#[derive(Clone)]
struct Status {
    terminal: bool,
    started: Instant,
}

impl Status {
    fn new() -> Status {
        Status {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    fn say(&self, line: &str) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "bench {:>5.1}s | {line}",
            self.started.elapsed().as_secs_f64()
        );
    }

    fn ticker(
        &self,
        progress: Arc<Progress>,
        saga: SagaWatch,
        duration: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let status = self.clone();
        let every = if self.terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        tokio::spawn(async move {
            let load_started = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                let line = format!(
                    "load {:>4}s/{}s  requests {}  errors {}  orders {}  paid {}",
                    load_started.elapsed().as_secs(),
                    duration.as_secs(),
                    progress.requests.load(Ordering::Relaxed),
                    progress.errors.load(Ordering::Relaxed),
                    progress.orders.load(Ordering::Relaxed),
                    saga.paid_count(),
                );
                if status.terminal {
                    let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}");
                } else {
                    status.say(&line);
                }
            }
        })
    }

    fn end_progress(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr().lock());
        }
    }
}

/// Every log line of the run goes to the log file, not the terminal: the table is the
/// bench's output. Written through a buffer: the functions must not wait on the disk.
type LogFile = Arc<Mutex<std::io::BufWriter<std::fs::File>>>;

/// The sink also tallies the functions' EMF metrics as it writes them.
fn file_logs(path: &std::path::Path) -> Result<(LogSink, LogFile, emf::MetricTally), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let log_file: LogFile = Arc::new(Mutex::new(std::io::BufWriter::new(file)));
    let writer = log_file.clone();
    let tally = emf::MetricTally::default();
    let counter = tally.clone();
    let sink: LogSink = Arc::new(move |who: &str, line: &str| {
        counter.observe(line);
        let mut writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(writer, "{who:>18} | {line}");
    });
    Ok((sink, log_file, tally))
}

#[cfg(test)]
mod tests;
