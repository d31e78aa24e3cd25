//! The AWS emulator: moto, pinned in `local/requirements-moto.txt`, installed into the
//! project's venv on first use and started on a free loopback port. It exits with the
//! process that started it (it watches its stdin, which only the starter holds), so not
//! even a killed runner or test leaves it behind.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("could not prepare moto's Python environment: {0}")]
    Install(String),
    #[error("moto did not start: {0}")]
    Start(String),
}

/// Requests moto serves at once (its waitress threads). An SQS long poll holds one for its
/// whole wait (moto waits in one-second steps), and shop-local keeps one open per poller
/// of every queue mapping: when the polls took all but one of 16 threads, every other call
/// (each DynamoDB read and write of every function) queued behind them for up to a second.
/// Python threads that wait cost nothing, so the pool is sized for the polls with room.
pub const THREADS: usize = 64;

/// The long polls a stack may keep open and still leave moto most of its threads.
pub const LONG_POLL_LIMIT: usize = THREADS / 2;

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Moto {
    /// Installs moto if needed and starts it; blocks until it answers.
    pub fn start(repo_root: &Path) -> Result<Self, EmulatorError> {
        let venv = python_env(repo_root, "moto", "local/requirements-moto.txt")?;
        let mut child = Command::new(venv.join("bin/python"))
            .arg(repo_root.join("local/moto-launch.py"))
            .args(["--threads", &THREADS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group: a terminal's Ctrl-C reaches the runner, which stops
            // moto last, after the functions that still talk to it.
            .process_group(0)
            .spawn()
            .map_err(|e| EmulatorError::Start(e.to_string()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| EmulatorError::Start("no stdout".into()))?;
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .map_err(|e| EmulatorError::Start(e.to_string()))?;
        let port = first_line
            .strip_prefix("READY ")
            .and_then(|port| port.trim().parse::<u16>().ok())
            .ok_or_else(|| EmulatorError::Start(format!("unexpected first line {first_line:?}")))?;
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops moto and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The venv `name` with `requirements` installed (see `local/scripts/python-env`).
pub fn python_env(
    repo_root: &Path,
    name: &str,
    requirements: &str,
) -> Result<PathBuf, EmulatorError> {
    let output = Command::new(repo_root.join("local/scripts/python-env"))
        .args([name, requirements])
        .current_dir(repo_root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| EmulatorError::Install(e.to_string()))?;
    if !output.status.success() {
        return Err(EmulatorError::Install(format!(
            "local/scripts/python-env exited with {}",
            output.status
        )));
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}
