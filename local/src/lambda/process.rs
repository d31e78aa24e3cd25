//! One function process: its Runtime API server, the child, its log readers and the task
//! that waits for it (the only owner of the `Child`, so it is always reaped).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::AbortHandle;

use super::api::{self, Event, RuntimeApi};
use super::logs::{self, FlushRequest};

/// A SIGKILLed process is normally reaped within milliseconds; past this, give up waiting.
const REAP_WAIT: Duration = Duration::from_secs(10);

pub(super) struct Process {
    pub seq: u64,
    pub pid: u32,
    pub api: Arc<RuntimeApi>,
    pub events: mpsc::Sender<Event>,
    /// Just before the spawn.
    pub spawned_at: Instant,
    /// Its CPU time once its first invocation was answered: what it spent cold, which
    /// the bench leaves out of the CPU per warm invocation.
    pub cold_cpu: OnceLock<Duration>,
    /// `None` while running; the exit status, described, once reaped.
    exit: watch::Receiver<Option<String>>,
    kill: Arc<Notify>,
    server: AbortHandle,
    log_readers: Vec<mpsc::Sender<FlushRequest>>,
}

pub(super) struct Spawn<'a> {
    pub seq: u64,
    pub binary: &'a Path,
    pub task_root: &'a Path,
    /// Everything but `AWS_LAMBDA_RUNTIME_API`, which is added here.
    pub env: BTreeMap<String, String>,
    pub function_arn: String,
    /// Called with each stdout/stderr line.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
    /// Called once, after the process has been reaped, with its exit status.
    pub on_exit: Box<dyn FnOnce(&str) + Send>,
}

impl Process {
    pub(super) async fn start(spawn: Spawn<'_>) -> std::io::Result<Arc<Process>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (api, events) = RuntimeApi::new(spawn.function_arn);
        let server = api::serve(api.clone(), listener);

        let mut command = Command::new(spawn.binary);
        command
            .env_clear()
            .envs(&spawn.env)
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .current_dir(spawn.task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a terminal's Ctrl-C reaches the runner only, which then
            // shuts the functions down.
            .process_group(0)
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                server.abort();
                return Err(error);
            }
        };
        let pid = child.id().unwrap_or_default();

        let mut log_readers = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            let log = spawn.log.clone();
            log_readers.push(logs::spawn_reader(stdout, move |line| log(line)));
        }
        if let Some(stderr) = child.stderr.take() {
            let log = spawn.log.clone();
            log_readers.push(logs::spawn_reader(stderr, move |line| log(line)));
        }

        let (exit_tx, exit) = watch::channel(None);
        let kill = Arc::new(Notify::new());
        let kill_request = kill.clone();
        let on_exit = spawn.on_exit;
        let server_handle = server.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                () = kill_request.notified() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            server_handle.abort();
            let description = match status {
                Ok(status) => status.to_string(),
                Err(error) => format!("unknown exit status ({error})"),
            };
            let _ = exit_tx.send(Some(description.clone()));
            on_exit(&description);
        });

        Ok(Arc::new(Process {
            seq: spawn.seq,
            pid,
            api,
            events,
            spawned_at,
            cold_cpu: OnceLock::new(),
            exit,
            kill,
            server,
            log_readers,
        }))
    }

    pub(super) fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Waits until the process has exited and been reaped; its exit status, described.
    pub(super) async fn exited(&self) -> String {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(description) => description.clone().unwrap_or_default(),
            Err(_) => "unknown exit status (its waiter is gone)".to_owned(),
        }
    }

    /// Sends SIGKILL (through the waiter task); does not wait.
    pub(super) fn start_kill(&self) {
        self.kill.notify_one();
    }

    /// SIGKILL, then wait until reaped.
    pub(super) async fn kill(&self) -> String {
        self.start_kill();
        tokio::time::timeout(REAP_WAIT, self.exited())
            .await
            .unwrap_or_else(|_| format!("still not reaped {}s after SIGKILL", REAP_WAIT.as_secs()))
    }

    /// Closes the Runtime API server and its connections, leaving the process alone.
    pub(super) fn close_runtime_api(&self) {
        self.server.abort();
    }

    /// Delivers to the log sink every line the process has written so far.
    pub(super) async fn flush_logs(&self) {
        logs::flush(&self.log_readers).await;
    }

    /// Notes [`Process::cold_cpu`]; called when its first invocation is answered.
    pub(super) fn note_cold_cpu(&self) {
        if let Some(cpu) = crate::procfs::cpu_time(self.pid) {
            let _ = self.cold_cpu.set(cpu);
        }
    }

    /// The process's peak resident set size (`VmHWM`), while it is alive.
    pub(super) async fn peak_rss(&self) -> Option<u64> {
        if self.has_exited() {
            return None;
        }
        let pid = self.pid;
        tokio::task::spawn_blocking(move || crate::procfs::peak_rss(pid))
            .await
            .ok()?
    }
}
