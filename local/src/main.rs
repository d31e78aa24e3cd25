//! The `shop-local` command line. See `shop-local --help`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use shop_local::bench::{self, BenchOptions};
use shop_local::client::{call_local, http_client, running_stack};
use shop_local::dead_letters;
use shop_local::faults::FaultSettings;
use shop_local::issuer::Issuer;
use shop_local::stack::{UpOptions, find_repo_root, up};

#[derive(Parser)]
#[command(
    name = "shop-local",
    about = "Runs the whole shop on this machine: no Docker, no AWS account.",
    version
)]
struct Cli {
    /// Where a running stack keeps its run file and token key (default: .shop-local/run in the repository).
    #[arg(long, global = true, env = "SHOP_LOCAL_RUN_DIR")]
    run_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build and start everything in the foreground; Ctrl-C stops it all.
    Up {
        /// The API's port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Start with an empty catalog.
        #[arg(long)]
        no_seed: bool,
        /// Run release builds of the functions (as deployed), not debug ones.
        #[arg(long)]
        release: bool,
        /// Use the binaries already built instead of running `cargo build` first.
        #[arg(long)]
        no_build: bool,
        /// Directory holding the function binaries (default: target/debug or target/release).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Processes per function at most, unless its template reserves concurrency.
        #[arg(long, default_value_t = 4)]
        max_processes: usize,
        /// Fault: kill a function's process during an invocation with this probability.
        #[arg(long, default_value_t = 0.0)]
        kill_probability: f64,
        /// Fault: deliver an SQS message a second time with this probability.
        #[arg(long, default_value_t = 0.0)]
        duplicate_probability: f64,
        /// Fault: hold each SQS delivery back by up to this many milliseconds.
        #[arg(long, default_value_t = 0)]
        max_delay_ms: u64,
        /// Seed of the fault generator; the same seed replays the same decisions.
        #[arg(long, default_value_t = 1)]
        fault_seed: u64,
        /// Root template parameters, as Name=Value (e.g. Stage=prod).
        #[arg(long = "parameter", value_parser = parse_parameter)]
        parameters: Vec<(String, String)>,
        /// Run every schedule (the payment reconciler's rate(1 minute)) every this many
        /// seconds instead.
        #[arg(long)]
        schedules_every: Option<u64>,
        /// Give each queue a function consumes that function's timeout as its visibility
        /// timeout, the shortest AWS accepts: a failed batch comes back in seconds, not
        /// after the template's minute
        #[arg(long)]
        shortest_visibility_timeouts: bool,
        /// Rebuild the functions when a source under functions/ or shared/ changes, and
        /// reload each function whose binary changed (its next invocation starts the new
        /// one); moto's data and the rest of the stack stay up
        #[arg(long, conflicts_with_all = ["no_build", "bin_dir"])]
        watch: bool,
    },
    /// Print a bearer token the running stack accepts.
    Token {
        #[arg(long)]
        user: String,
        /// Put the user in the admin group.
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Invoke one function of the running stack with an event file and print the result.
    Invoke {
        /// Binary name (catalog-api), function name or logical id.
        function: String,
        #[arg(long)]
        event: PathBuf,
    },
    /// Print the environment a function runs with in the running stack, as KEY=VALUE
    /// lines: to run it outside, `cargo lambda watch --env-file` (README, "Which loop when").
    Env {
        /// Binary name (catalog-api), function name or logical id.
        function: String,
    },
    /// Measure the shop: cold starts, a load of virtual shoppers, the saga, the cost per order.
    Bench {
        /// Times each function is started fresh for the cold-start figures.
        #[arg(long, default_value_t = 5)]
        cold_starts: usize,
        /// Virtual shoppers.
        #[arg(long, default_value_t = 20)]
        users: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 120)]
        duration: u64,
        /// A shopper's mean pause between two steps, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        think_ms: u64,
        /// Seed of the shoppers' choices; the same seed replays the same choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds to wait after the load for its orders to be paid.
        #[arg(long, default_value_t = 60)]
        saga_wait: u64,
        /// Repetitions of each action when counting AWS calls for the cost.
        #[arg(long, default_value_t = 3)]
        census_repetitions: usize,
        /// Invocations of each function measured for the floor of one AWS call (0 skips it).
        #[arg(long, default_value_t = 2000)]
        floor_invocations: usize,
        /// WebSocket connections of the live-updates phase, each following one order (0 skips it).
        #[arg(long, default_value_t = 200)]
        live_connections: usize,
        /// Shoppers of the flash sale, each buying one unit of one product at once (0 skips it).
        #[arg(long, default_value_t = 100)]
        flash_orders: usize,
        /// Units of the flash sale's product.
        #[arg(long, default_value_t = 50)]
        flash_units: u32,
        /// Shard counts of the product's stock, comma-separated: the sale runs once per count.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 8])]
        flash_shards: Vec<u32>,
        /// Processes per function at most, unless its template reserves concurrency.
        #[arg(long, default_value_t = 4)]
        max_processes: usize,
        /// Measure debug builds of the functions instead of release ones (for tests).
        #[arg(long)]
        debug: bool,
        /// Use the binaries already built instead of running `cargo build` first.
        #[arg(long)]
        no_build: bool,
        /// Directory holding the function binaries (default: target/release or target/debug).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Where the functions' log lines go (default: .shop-local/bench.log).
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// What the dead-letter queues hold, and sending it back.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The events the outbox relays parked (could not publish), and publishing them again.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Print the events crossing the bus as they pass.
    Tail {
        /// Print each event's full EventBridge JSON instead of one summary line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Every dead-letter queue's messages (or one queue's: PaymentDLQ, payment/PaymentDLQ).
    List { queue: Option<String> },
    /// Moves every message of a dead-letter queue back to the queue it came from.
    Redrive { queue: String },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// The parked events of every capability (or of one: payment).
    Parked { capability: Option<String> },
    /// Publishes the parked events again, removing each once the bus took it.
    Replay { capability: Option<String> },
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected Name=Value, got {text}"))
}

fn probability(name: &str, value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("--{name} must be between 0 and 1"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let repo_root = find_repo_root();
    let run_dir = cli
        .run_dir
        .clone()
        .unwrap_or_else(|| repo_root.join(".shop-local/run"));
    let result = match cli.command {
        Command::Up {
            port,
            no_seed,
            release,
            no_build,
            bin_dir,
            max_processes,
            kill_probability,
            duplicate_probability,
            max_delay_ms,
            fault_seed,
            parameters,
            schedules_every,
            shortest_visibility_timeouts,
            watch,
        } => {
            let faults = probability("kill-probability", kill_probability).and_then(|kill| {
                Ok(FaultSettings {
                    kill,
                    kill_during: 0.5,
                    duplicate: probability("duplicate-probability", duplicate_probability)?,
                    max_delay: Duration::from_millis(max_delay_ms),
                    seed: fault_seed,
                })
            });
            match faults {
                Ok(faults) => up(UpOptions {
                    repo_root,
                    port,
                    seed_demo_data: !no_seed,
                    release,
                    build: !no_build,
                    bin_dir,
                    run_dir,
                    faults,
                    max_processes,
                    parameters: parameters.into_iter().collect::<BTreeMap<_, _>>(),
                    extra_binaries: Vec::new(),
                    schedules_every: schedules_every.map(Duration::from_secs),
                    shortest_visibility_timeouts,
                    watch,
                })
                .await
                .map_err(|e| e.to_string()),
                Err(message) => Err(message),
            }
        }
        Command::Token { user, admin, ttl } => Issuer::load(&run_dir)
            .and_then(|issuer| issuer.token(&user, admin, Duration::from_secs(ttl)))
            .map(|token| println!("{token}"))
            .map_err(|e| e.to_string()),
        Command::Invoke { function, event } => invoke(&run_dir, &function, &event).await,
        Command::Env { function } => environment(&run_dir, &function).await,
        Command::Tail { json } => tail(&run_dir, json).await,
        Command::Dlq { command } => match command {
            DlqCommand::List { queue } => dead_letters::list(&run_dir, queue.as_deref()).await,
            DlqCommand::Redrive { queue } => dead_letters::redrive(&run_dir, &queue).await,
        },
        Command::Events { command } => match command {
            EventsCommand::Parked { capability } => {
                dead_letters::list_parked(&run_dir, capability.as_deref()).await
            }
            EventsCommand::Replay { capability } => {
                dead_letters::replay(&run_dir, capability.as_deref()).await
            }
        },
        Command::Bench {
            cold_starts,
            users,
            duration,
            think_ms,
            seed,
            saga_wait,
            census_repetitions,
            floor_invocations,
            live_connections,
            flash_orders,
            flash_units,
            flash_shards,
            max_processes,
            debug,
            no_build,
            bin_dir,
            json,
            log_file,
        } => {
            let options = BenchOptions {
                release: !debug,
                build: !no_build,
                bin_dir,
                cold_starts,
                users,
                duration: Duration::from_secs(duration),
                think: Duration::from_millis(think_ms),
                seed,
                saga_wait: Duration::from_secs(saga_wait),
                census_repetitions,
                floor_invocations,
                live_connections,
                flash_orders,
                flash_units,
                flash_shards,
                max_processes: max_processes.max(1),
                json,
                log_file: log_file.unwrap_or_else(|| repo_root.join(".shop-local/bench.log")),
                repo_root,
            };
            bench::run(&options)
                .await
                .map(|report| print!("{}", report.table()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shop-local: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn environment(run_dir: &std::path::Path, function: &str) -> Result<(), String> {
    let path = format!("env/{function}");
    let environment = call_local(run_dir, http::Method::GET, &path, Bytes::new()).await?;
    for (name, value) in environment.as_object().into_iter().flatten() {
        println!(
            "{name}={}",
            dotenv_value(value.as_str().unwrap_or_default())
        );
    }
    Ok(())
}

/// `value` as a .env file holds it: bare when plain, else double-quoted with `"` and `\`
/// escaped (how dotenv parsers, cargo-lambda's among them, read quoted values).
fn dotenv_value(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:@,+=".contains(c));
    if plain && !value.is_empty() {
        value.to_owned()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

async fn invoke(
    run_dir: &std::path::Path,
    function: &str,
    event: &std::path::Path,
) -> Result<(), String> {
    let payload = std::fs::read(event).map_err(|e| format!("{}: {e}", event.display()))?;
    serde_json::from_slice::<serde_json::Value>(&payload)
        .map_err(|e| format!("{} is not JSON: {e}", event.display()))?;
    let path = format!("invoke/{function}");
    let body = call_local(run_dir, http::Method::POST, &path, Bytes::from(payload)).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    if body["outcome"] == "success" {
        Ok(())
    } else {
        Err(format!("the invocation ended: {}", body["outcome"]))
    }
}

async fn tail(run_dir: &std::path::Path, raw: bool) -> Result<(), String> {
    let api_url = running_stack(run_dir)?;
    let request = http::Request::get(format!("{api_url}/_local/events"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = http_client()
        .request(request)
        .await
        .map_err(|e| format!("cannot reach {api_url}: {e}"))?;
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    eprintln!("shop-local: tailing the bus of {api_url} (Ctrl-C stops)");
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(dropped) = event.get("dropped") {
                eprintln!("shop-local: {dropped} events went by while this reader was behind");
                continue;
            }
            if raw {
                println!("{event}");
            } else {
                println!(
                    "{} {:<16} {:<24} {}",
                    event["detail"]["metadata"]["occurredAt"]
                        .as_str()
                        .unwrap_or("-"),
                    event["source"].as_str().unwrap_or("?"),
                    event["detail-type"].as_str().unwrap_or("?"),
                    event["detail"]["data"]
                );
            }
        }
    }
    Err("the stack stopped".into())
}

#[cfg(test)]
mod tests {
    use super::dotenv_value;

    #[test]
    fn env_values_are_bare_when_plain_and_quoted_with_escapes_otherwise() {
        assert_eq!(
            dotenv_value("http://127.0.0.1:4566"),
            "http://127.0.0.1:4566"
        );
        assert_eq!(dotenv_value(""), "\"\"");
        assert_eq!(dotenv_value("a b # c"), "\"a b # c\"");
        assert_eq!(dotenv_value(r#"say "hi" \ bye"#), r#""say \"hi\" \\ bye""#);
    }
}
