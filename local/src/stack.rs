//! `shop-local up`: the whole topology on one machine. Starts moto, reads the templates,
//! builds and starts the functions, creates the resources, wires the event source
//! mappings and serves the API; on Ctrl-C or SIGTERM stops every process it started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::emulator::{self, Moto};
use crate::faults::{FaultSettings, Faults};
use crate::gateway::{RequestFacts, select_route};
use crate::issuer::Issuer;
use crate::lambda::{FunctionConfig, InvocationsEnded, LambdaFunction, LogSink};
use crate::mappings::{IdleReads, MappingStats, start_queue_mapping, start_stream_mapping};
use crate::template::{LoadOptions, load};
use crate::topology::{ACCOUNT_ID, REGION, Topology};

#[derive(Clone)]
pub struct UpOptions {
    pub repo_root: PathBuf,
    pub port: u16,
    pub seed_demo_data: bool,
    pub release: bool,
    /// Build the function binaries first (`cargo build`); off when they are built already.
    pub build: bool,
    /// Where the function binaries are; default `<target>/<debug|release>`.
    pub bin_dir: Option<PathBuf>,
    pub run_dir: PathBuf,
    pub faults: FaultSettings,
    /// Processes per function, unless its template reserves concurrency.
    pub max_processes: usize,
    pub parameters: BTreeMap<String, String>,
    /// Binaries to build beside the functions (the bench's reference functions).
    pub extra_binaries: Vec<String>,
    /// Runs every schedule this often instead of at its rate (tests and demos do not wait
    /// a minute for a reconciler); `None` keeps the templates' rates.
    pub schedules_every: Option<Duration>,
    /// Gives each consumed queue its consumer's timeout as visibility timeout (tests do not
    /// wait a minute for the messages of a killed invocation); off keeps the templates'.
    pub shortest_visibility_timeouts: bool,
    /// Rebuilds the functions when their sources change and reloads those whose binary
    /// changed (`up --watch`).
    pub watch: bool,
}

/// A running stack, shared by the server, the pollers and the commands.
pub struct Stack {
    pub topology: Topology,
    pub functions: BTreeMap<String, Arc<LambdaFunction>>,
    pub issuer: Issuer,
    pub events: broadcast::Sender<Value>,
    pub mapping_stats: Vec<Arc<MappingStats>>,
    pub faults: Arc<Faults>,
    pub moto_pid: u32,
    pub moto_endpoint: String,
    pub api_url: String,
    /// The storefront's files, config and sign-in endpoints.
    pub web: crate::web::Web,
    /// The WebSocket API's open connections.
    pub sockets: crate::websocket::Sockets,
    started: Instant,
    logs: LogSink,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UpError(pub String);

fn fail<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> UpError + '_ {
    move |e| UpError(format!("{context}: {e}"))
}

impl Stack {
    pub fn log(&self, who: &str, line: &str) {
        (self.logs)(who, line);
    }

    /// A function by binary name, physical name or logical id.
    pub fn function_named(&self, name: &str) -> Option<&Arc<LambdaFunction>> {
        let spec = self.topology.functions.iter().find(|f| {
            f.binary == name
                || f.name == name
                || f.logical_id == name
                || f.logical_id.rsplit('/').next() == Some(name)
        })?;
        self.functions.get(&spec.name)
    }

    pub fn stats(&self) -> Value {
        let functions: Vec<Value> = self
            .topology
            .functions
            .iter()
            .filter_map(|spec| {
                let function = self.functions.get(&spec.name)?;
                let mut stats = serde_json::to_value(function.stats()).ok()?;
                stats["binary"] = json!(spec.binary);
                stats["pids"] = json!(function.pids());
                Some(stats)
            })
            .collect();
        json!({
            "uptimeSeconds": self.started.elapsed().as_secs(),
            "apiUrl": self.api_url,
            "functions": functions,
            "mappings": self.mapping_stats.iter().map(|s| serde_json::to_value(&**s).unwrap_or(Value::Null)).collect::<Vec<_>>(),
            "faults": {"settings": self.faults.settings(), "injected": self.faults.counts()},
            "processes": {"moto": self.moto_pid},
            "motoEndpoint": self.moto_endpoint,
            "queues": self.topology.queues.iter().map(|q| json!({"logicalId": q.logical_id, "url": q.url, "deadLetter": self.topology.queues.iter().any(|other| other.redrive.as_ref().is_some_and(|r| r.dead_letter_arn == q.arn)), "redrivesTo": q.redrive.as_ref().map(|r| r.dead_letter_arn.clone()), "arn": q.arn})).collect::<Vec<_>>(),
            "tables": self.topology.tables.iter().map(|t| json!({"logicalId": t.logical_id, "name": t.name})).collect::<Vec<_>>(),
            "buses": self.topology.buses.iter().map(|b| json!({"logicalId": b.logical_id, "name": b.name})).collect::<Vec<_>>(),
            "secrets": self.topology.secrets.iter().map(|s| json!({"logicalId": s.logical_id, "name": s.name})).collect::<Vec<_>>(),
            "functionUrls": self.topology.function_urls.iter().map(|u| json!({"logicalId": u.logical_id, "function": u.function, "url": u.url})).collect::<Vec<_>>(),
            "schedules": self.topology.schedules.iter().map(|s| json!({"logicalId": s.logical_id, "function": s.function, "expression": s.expression})).collect::<Vec<_>>(),
        })
    }

    /// Calls the API as a client would, without HTTP: for seeding demo data.
    pub async fn call_api(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        claims: BTreeMap<String, String>,
    ) -> http::Response<Bytes> {
        let request_id = ulid::Ulid::generate().to_string().to_lowercase();
        let Some(matched) = select_route(&self.topology.routes, method, path) else {
            return crate::gateway::gateway_answer(
                http::StatusCode::NOT_FOUND,
                "Not Found",
                &request_id,
            );
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let body = body.to_string();
        let facts = RequestFacts {
            method,
            path,
            raw_query: "",
            headers: &headers,
            body: body.as_bytes(),
            source_ip: "127.0.0.1".into(),
            request_id: &request_id,
            claims: Some(claims),
        };
        crate::server::invoke_route(self, &matched, &facts).await
    }
}

/// The repository: the nearest directory upwards with `template.yaml` and `local/`.
pub fn find_repo_root() -> PathBuf {
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    start
        .ancestors()
        .find(|dir| {
            dir.join("template.yaml").is_file() && dir.join("local/moto-launch.py").is_file()
        })
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn stdout_logs() -> LogSink {
    // A closed stdout (`shop-local up | head`) must not panic the task that drains a
    // function's output: that function would block on its next write.
    Arc::new(|who: &str, line: &str| {
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "{who:>14} | {line}");
    })
}

/// Runs the stack until SIGINT or SIGTERM.
pub async fn up(options: UpOptions) -> Result<(), UpError> {
    let mut stop = StopSignal::install()?;
    let started = Instant::now();
    let logs = stdout_logs();
    let say = |line: &str| logs("shop-local", line);
    let (listener, api_url) = prepare(&options).await?;

    say("starting moto (installs itself into .shop-local/venvs on first use)");
    let root = options.repo_root.clone();
    let starting_moto = tokio::task::spawn_blocking(move || Moto::start(&root));
    let mut moto = tokio::select! {
        moto = starting_moto => moto.map_err(fail("moto"))?.map_err(fail("moto"))?,
        // The emulator, if it still comes up, exits with this process (its stdin closes).
        _ = stop.received() => return Ok(()),
    };
    say(&format!(
        "moto is up at {} (pid {})",
        moto.endpoint,
        moto.pid()
    ));

    let outcome = run(
        &options,
        &moto,
        listener,
        api_url,
        started,
        logs.clone(),
        &mut stop,
    )
    .await;
    moto.stop();
    let _ = std::fs::remove_file(options.run_dir.join(RUN_FILE));
    outcome
}

/// The run directory, and the API's listener on loopback with the base URL it serves
/// (`--port 0` picks a free port, so the URL is read back from the socket).
async fn prepare(options: &UpOptions) -> Result<(TcpListener, String), UpError> {
    std::fs::create_dir_all(&options.run_dir).map_err(fail("run directory"))?;
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(fail(&format!("port {}", options.port)))?;
    let api_url = format!(
        "http://{}",
        listener.local_addr().map_err(fail("listener"))?
    );
    Ok((listener, api_url))
}

/// A stack started inside this process (for `bench`), with no run file and no signal
/// handling of its own; [`LocalStack::stop`] ends every process it started.
pub struct LocalStack {
    pub stack: Arc<Stack>,
    tasks: Vec<JoinHandle<()>>,
    moto: Moto,
}

impl LocalStack {
    /// Starts moto and everything else as `up` does, logging to `logs`.
    pub async fn start(options: &UpOptions, logs: LogSink) -> Result<Self, UpError> {
        let (listener, api_url) = prepare(options).await?;
        let root = options.repo_root.clone();
        let moto = tokio::task::spawn_blocking(move || Moto::start(&root))
            .await
            .map_err(fail("moto"))?
            .map_err(fail("moto"))?;
        let (stack, tasks) = start(options, &moto, listener, api_url, logs).await?;
        Ok(Self { stack, tasks, moto })
    }

    pub async fn stop(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for function in self.stack.functions.values() {
            function.shutdown().await;
        }
        self.moto.stop();
    }
}

/// What `token`, `invoke` and `tail` read to find the running stack.
pub const RUN_FILE: &str = "run.json";

async fn start(
    options: &UpOptions,
    moto: &Moto,
    listener: TcpListener,
    api_url: String,
    logs: LogSink,
) -> Result<(Arc<Stack>, Vec<JoinHandle<()>>), UpError> {
    let say = |line: &str| logs("shop-local", line);
    let load_options = LoadOptions {
        endpoint_url: moto.endpoint.clone(),
        api_url: api_url.clone(),
        parameters: options.parameters.clone(),
    };
    let mut topology =
        load(&options.repo_root.join("template.yaml"), &load_options).map_err(fail("templates"))?;
    if options.shortest_visibility_timeouts {
        let changed: Vec<String> = topology
            .shorten_visibility_timeouts()
            .into_iter()
            .map(|(queue, before, after)| format!("{queue} {before}->{after} s"))
            .collect();
        say(&format!(
            "visibility timeouts shortened to their consumers' timeouts: {}",
            changed.join(", ")
        ));
    }
    say(&format!(
        "templates: {} functions, {} routes, {} tables, {} queues, {} buses, {} rules, {} stream and {} queue mappings",
        topology.functions.len(),
        topology.routes.len(),
        topology.tables.len(),
        topology.queues.len(),
        topology.buses.len(),
        topology.rules.len(),
        topology.stream_mappings.len(),
        topology.queue_mappings.len()
    ));

    let bin_dir = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| options.repo_root.join("target"));
            target.join(if options.release { "release" } else { "debug" })
        }
    };
    if options.build {
        build_functions(options, &topology).await?;
    }
    for function in &topology.functions {
        let path = bin_dir.join(&function.binary);
        if !path.is_file() {
            return Err(UpError(format!(
                "{} is not built (looked for {})",
                function.binary,
                path.display()
            )));
        }
    }

    let config = sdk_config(&moto.endpoint).await;
    crate::provision::provision(&config, &topology)
        .await
        .map_err(fail("provisioning"))?;
    say("resources created in moto");

    let (events, _) = broadcast::channel(1024);
    let mut tasks: Vec<JoinHandle<()>> =
        vec![start_bus_tap(&config, &topology, events.clone(), logs.clone()).await?];

    let faults = Arc::new(Faults::new(options.faults));
    let invocations_ended = InvocationsEnded::default();
    let mut functions = BTreeMap::new();
    for spec in &topology.functions {
        let mut environment = spec.environment.clone();
        environment.extend([
            ("AWS_ENDPOINT_URL".to_owned(), moto.endpoint.clone()),
            ("AWS_REGION".to_owned(), REGION.to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "shop-local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "shop-local".to_owned()),
        ]);
        let config = FunctionConfig {
            display_name: spec.binary.clone(),
            function_name: spec.name.clone(),
            binary: bin_dir.join(&spec.binary),
            environment,
            timeout: Duration::from_secs(spec.timeout_seconds.into()),
            memory_mb: spec.memory_mb,
            max_processes: spec
                .reserved_concurrency
                .map(|n| n as usize)
                .unwrap_or(options.max_processes)
                .max(1),
        };
        functions.insert(
            spec.name.clone(),
            LambdaFunction::new(
                config,
                faults.for_source(&spec.name),
                logs.clone(),
                invocations_ended.clone(),
            ),
        );
    }

    let mut mapping_stats = Vec::new();
    for spec in &topology.stream_mappings {
        let function = functions
            .get(&spec.function)
            .cloned()
            .ok_or_else(|| UpError(format!("no function {}", spec.function)))?;
        let (stats, handles) = start_stream_mapping(
            &config,
            spec.clone(),
            function,
            IdleReads::after(&invocations_ended),
        )
        .await
        .map_err(fail("stream mapping"))?;
        mapping_stats.push(stats);
        tasks.extend(handles);
    }
    if topology.long_polls() > emulator::LONG_POLL_LIMIT {
        say(&format!(
            "warning: the queue mappings keep {} long polls open on moto, which serves {} \
             requests at once: every other call may wait up to a second for a thread \
             (raise emulator::THREADS)",
            topology.long_polls(),
            emulator::THREADS
        ));
    }
    for spec in &topology.queue_mappings {
        let function = functions
            .get(&spec.function)
            .cloned()
            .ok_or_else(|| UpError(format!("no function {}", spec.function)))?;
        let (stats, handles) = start_queue_mapping(
            &config,
            spec.clone(),
            function,
            faults.clone(),
            spec.pollers(),
        );
        mapping_stats.push(stats);
        tasks.extend(handles);
    }

    for spec in &topology.schedules {
        let function = functions
            .get(&spec.function)
            .cloned()
            .ok_or_else(|| UpError(format!("no function {}", spec.function)))?;
        let every = options.schedules_every.unwrap_or(spec.every);
        tasks.push(tokio::spawn(run_schedule(
            spec.clone(),
            every,
            function,
            logs.clone(),
        )));
    }

    let issuer = Issuer::load_or_create(&options.run_dir).map_err(fail("token issuer"))?;
    // The checkout offers the sandbox's test cards only where payment charges through it.
    let sandbox_payments = topology
        .function_urls
        .iter()
        .any(|url| url.logical_id.ends_with("/SandboxFunctionUrl"));
    let websocket_url = crate::websocket::client_url(&topology, &api_url);
    let stack = Arc::new(Stack {
        topology,
        functions,
        issuer,
        events,
        mapping_stats,
        faults,
        moto_pid: moto.pid(),
        moto_endpoint: moto.endpoint.clone(),
        web: crate::web::Web::new(options.repo_root.join("web"), &api_url, sandbox_payments)
            .with_websocket(websocket_url.clone()),
        api_url: api_url.clone(),
        sockets: crate::websocket::Sockets::default(),
        started: Instant::now(),
        logs: logs.clone(),
    });
    tasks.push(tokio::spawn(crate::server::serve(listener, stack.clone())));
    if options.seed_demo_data {
        seed(&stack).await;
    }
    Ok((stack, tasks))
}

/// Invokes the function of `spec` every `every`, as EventBridge invokes a schedule's target:
/// asynchronously (nobody waits for the answer), one invocation per tick, each tick
/// skipped while the previous invocation still runs (Lambda would run them side by side;
/// a reconciler's runs only meet through conditional writes either way). A failed
/// invocation is logged; the next tick runs regardless.
async fn run_schedule(
    spec: crate::topology::ScheduleSpec,
    every: Duration,
    function: Arc<LambdaFunction>,
    logs: LogSink,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick of an interval is at once; EventBridge's is one period in.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let event = serde_json::json!({
            "version": "0",
            "id": ulid::Ulid::generate().to_string().to_lowercase(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": REGION,
            "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{}", spec.logical_id.replace('/', "-"))],
            "detail": {},
        });
        let invocation = function.invoke(Bytes::from(event.to_string())).await;
        if let Some(error) = invocation.error_payload() {
            logs(
                "schedule",
                &format!("{} ({}) failed: {error}", spec.logical_id, spec.expression),
            );
        }
    }
}

/// What `up` does once moto runs: start everything (a stop signal during start-up ends
/// it there, and dropping what was started kills its processes, `cargo build` included),
/// then serve until the signal.
async fn run(
    options: &UpOptions,
    moto: &Moto,
    listener: TcpListener,
    api_url: String,
    started: Instant,
    logs: LogSink,
    stop: &mut StopSignal,
) -> Result<(), UpError> {
    let say = |line: &str| logs("shop-local", line);
    let starting = start(options, moto, listener, api_url.clone(), logs.clone());
    let (stack, tasks) = tokio::select! {
        ready = starting => ready?,
        _ = stop.received() => {
            say("stopped while starting");
            return Ok(());
        }
    };
    // Written only now, so `token`, `invoke` and `tail` never find a stack that is not ready.
    let run_file =
        json!({"apiUrl": api_url, "motoEndpoint": moto.endpoint, "pid": std::process::id()});
    std::fs::write(options.run_dir.join(RUN_FILE), run_file.to_string())
        .map_err(fail("run file"))?;

    print_ready_screen(&stack, started);
    let watching = options.watch.then(|| {
        say("watching functions/ and shared/: a saved change rebuilds and reloads the functions it reaches");
        let build_options = Arc::new(options.clone());
        let (build_stack, log_stack) = (stack.clone(), stack.clone());
        tokio::spawn(crate::watch::watch(
            stack.functions.clone(),
            options.repo_root.clone(),
            move || {
                let (options, stack) = (build_options.clone(), build_stack.clone());
                async move {
                    build_functions(&options, &stack.topology)
                        .await
                        .map_err(|error| error.0)
                }
            },
            move |line| log_stack.log("watch", line),
        ))
    });

    stop.received().await;
    say("stopping");
    if let Some(watching) = watching {
        watching.abort();
    }
    for task in &tasks {
        task.abort();
    }
    for function in stack.functions.values() {
        function.shutdown().await;
    }
    print_summary(&stack);
    Ok(())
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "shop-local",
            "shop-local",
            None,
            None,
            "shop-local",
        ))
        .load()
        .await
}

async fn build_functions(options: &UpOptions, topology: &Topology) -> Result<(), UpError> {
    let mut command =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Stopped during the build, the runner drops this future: cargo must not outlive it.
    command.kill_on_drop(true);
    command.current_dir(&options.repo_root).arg("build");
    if options.release {
        command.arg("--release");
    }
    for binary in topology
        .functions
        .iter()
        .map(|function| &function.binary)
        .chain(&options.extra_binaries)
    {
        command.args(["--bin", binary]);
    }
    let extra = match options.extra_binaries.len() {
        0 => String::new(),
        n => format!(" and {n} other binaries"),
    };
    println!(
        "{:>14} | building {} functions{extra} (cargo build{})",
        "shop-local",
        topology.functions.len(),
        if options.release { " --release" } else { "" }
    );
    let status = command.status().await.map_err(fail("cargo build"))?;
    if status.success() {
        Ok(())
    } else {
        Err(UpError(format!("cargo build failed ({status})")))
    }
}

/// Every event that crosses a bus also lands in a queue of the runner's, so `tail` and
/// the log can show the traffic without touching any capability's queue.
async fn start_bus_tap(
    config: &aws_config::SdkConfig,
    topology: &Topology,
    events: broadcast::Sender<Value>,
    logs: LogSink,
) -> Result<JoinHandle<()>, UpError> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let eventbridge = aws_sdk_eventbridge::Client::new(config);
    let tap = sqs
        .create_queue()
        .queue_name("shop-local-tap")
        .send()
        .await
        .map_err(|e| UpError(format!("tap queue: {e}")))?;
    let url = tap.queue_url.unwrap_or_default();
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:shop-local-tap");
    for bus in &topology.buses {
        eventbridge
            .put_rule()
            .name("shop-local-tap")
            .event_bus_name(&bus.name)
            .event_pattern(r#"{"source": [{"prefix": ""}]}"#)
            .send()
            .await
            .map_err(|e| UpError(format!("tap rule: {e}")))?;
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("tap")
            .arn(&arn)
            .build()
            .map_err(|e| UpError(e.to_string()))?;
        eventbridge
            .put_targets()
            .rule("shop-local-tap")
            .event_bus_name(&bus.name)
            .targets(target)
            .send()
            .await
            .map_err(|e| UpError(format!("tap target: {e}")))?;
    }
    Ok(tokio::spawn(async move {
        loop {
            let Ok(received) = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(crate::mappings::SQS_LONG_POLL_SECONDS)
                .send()
                .await
            else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            for message in received.messages.unwrap_or_default() {
                if let Some(event) = message
                    .body()
                    .and_then(|body| serde_json::from_str::<Value>(body).ok())
                {
                    logs(
                        "bus",
                        &format!(
                            "{} {} {}",
                            event["source"].as_str().unwrap_or("?"),
                            event["detail-type"].as_str().unwrap_or("?"),
                            event["detail"]["metadata"]["eventId"]
                                .as_str()
                                .unwrap_or("")
                        ),
                    );
                    let _ = events.send(redacted(event));
                }
                if let Some(handle) = message.receipt_handle() {
                    let _ = sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
    }))
}

/// The names of the fields that carry a customer's means of payment.
const REDACTED_FIELDS: &[&str] = &["paymentToken"];

/// `event` with every field [`REDACTED_FIELDS`] names replaced, wherever it is: what the
/// live feed (`shop-local tail`) shows, so a token never reaches a terminal or its
/// scrollback.
pub fn redacted(mut event: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    if REDACTED_FIELDS.contains(&name.as_str()) {
                        *field = Value::String("<redacted>".into());
                    } else {
                        walk(field);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut event);
    event
}

/// A small demo catalog, created through the catalog's own API function.
async fn seed(stack: &Stack) {
    let products = [
        (
            "The Rust Programming Language",
            "books",
            3999,
            "The official book, 2nd edition.",
        ),
        (
            "Zero To Production In Rust",
            "books",
            4500,
            "Backend development in Rust.",
        ),
        (
            "Designing Data-Intensive Applications",
            "books",
            4299,
            "The big ideas behind reliable systems.",
        ),
        ("Ferris Plush", "toys", 1999, "A soft, friendly crab."),
        (
            "Enamel Mug",
            "kitchen",
            1200,
            "Holds 350 ml of tea or coffee.",
        ),
        ("Pour-Over Kettle", "kitchen", 4900, "Gooseneck, 1 litre."),
        (
            "Mechanical Keyboard",
            "electronics",
            12900,
            "Tenkeyless, hot-swappable switches.",
        ),
        (
            "USB-C Hub",
            "electronics",
            3499,
            "Seven ports, 100 W pass-through.",
        ),
    ];
    let admin = BTreeMap::from([
        ("sub".to_owned(), "shop-local-seed".to_owned()),
        ("cognito:groups".to_owned(), "[admin]".to_owned()),
    ]);
    let mut stocked = 0;
    for (n, (name, category, amount, description)) in products.into_iter().enumerate() {
        let body = json!({"name": name, "category": category, "description": description, "price": {"amount": amount, "currency": "USD"}});
        let response = stack
            .call_api("POST", "/products", &body, admin.clone())
            .await;
        let created: Option<String> = (response.status() == http::StatusCode::CREATED)
            .then(|| serde_json::from_slice::<serde_json::Value>(response.body()).ok())
            .flatten()
            .and_then(|product| product["id"].as_str().map(str::to_owned));
        let Some(id) = created else {
            stack.log(
                "shop-local",
                &format!(
                    "seeding {name} failed: {} {}",
                    response.status(),
                    String::from_utf8_lossy(response.body())
                ),
            );
            continue;
        };
        // Enough to buy at once; one product nearly sold out, to see the saga say no.
        let available = if n == 3 { 2 } else { 25 };
        let response = stack
            .call_api(
                "PUT",
                &format!("/inventory/{id}"),
                &json!({"available": available}),
                admin.clone(),
            )
            .await;
        if response.status() == http::StatusCode::OK {
            stocked += 1;
        } else {
            stack.log(
                "shop-local",
                &format!(
                    "stocking {name} failed: {} {}",
                    response.status(),
                    String::from_utf8_lossy(response.body())
                ),
            );
        }
    }
    stack.log(
        "shop-local",
        &format!("seeded {stocked} demo products with stock"),
    );
}

fn print_ready_screen(stack: &Stack, started: Instant) {
    let url = &stack.api_url;
    let functions: Vec<String> = stack
        .topology
        .functions
        .iter()
        .map(|f| f.binary.clone())
        .collect();
    let token = stack
        .issuer
        .token("admin-1", true, Duration::from_secs(3600))
        .unwrap_or_default();
    println!(
        "\nshop-local: ready at {url} (in {:.1}s)\n\n  functions  {}\n  routes     {}\n  websocket  {}\n  emulator   moto at {}\n  stats      {url}/_local/stats\n\n  Try it:\n    curl -s {url}/products\n    TOKEN={token}\n    curl -s -X POST {url}/products -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n      -d '{{\"name\": \"Tea\", \"category\": \"kitchen\", \"price\": {{\"amount\": 650, \"currency\": \"USD\"}}}}'\n  More tokens: shop-local token --user ID [--admin]   Events: shop-local tail   Stop: Ctrl-C\n\n  open {url}/ to shop (sign in with any name; tick Administrator to run the shop)\n",
        started.elapsed().as_secs_f64(),
        functions.join(", "),
        stack.topology.routes.len(),
        crate::websocket::client_url(&stack.topology, url).map_or_else(
            || "none".to_owned(),
            |ws| format!("{ws}?token=<access token>")
        ),
        stack.moto_endpoint,
    );
}

fn print_summary(stack: &Stack) {
    println!("\nshop-local: per-function figures of this run");
    println!(
        "  {:<16} {:>6} {:>5} {:>9} {:>9} {:>9} {:>6} {:>9}",
        "function", "calls", "cold", "init p50", "dur p50", "dur p99", "errors", "peak RSS"
    );
    for spec in &stack.topology.functions {
        let Some(function) = stack.functions.get(&spec.name) else {
            continue;
        };
        let stats = function.stats();
        println!(
            "  {:<16} {:>6} {:>5} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>6} {:>7.1}MB",
            spec.binary,
            stats.invocations,
            stats.cold_starts,
            stats.init_ms.p50,
            stats.duration_ms.p50,
            stats.duration_ms.p99,
            stats.errors,
            stats.peak_rss_bytes as f64 / 1_048_576.0,
        );
    }
}

/// SIGINT and SIGTERM, listened for from the first moment of `up`: a stop during the
/// build or the provisioning must stop what was started, not kill the runner outright.
pub struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn install() -> Result<Self, UpError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).map_err(fail("SIGINT handler"))?,
            terminate: signal(SignalKind::terminate()).map_err(fail("SIGTERM handler"))?,
        })
    }

    pub async fn received(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::redacted;

    #[test]
    fn the_live_feed_never_shows_a_payment_token() {
        let event = json!({"detail-type": "OrderStockConfirmed", "detail": {"data": {
            "orderId": "o", "paymentToken": "tok_visa_4242", "lines": [{"paymentToken": "x"}]}}});
        let shown = redacted(event).to_string();
        assert!(!shown.contains("tok_visa"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("\"orderId\":\"o\""));
    }
}
