//! A function process's stdout or stderr, line by line, to the log sink.
//!
//! A reader task per stream. It can be asked to flush: it then reads the pipe directly (a
//! non-blocking read through a second handle on it, not waiting for the reactor) until it is
//! empty, so every line the process wrote before it answered reaches the sink before the
//! invocation is reported.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

/// Longer lines are cut into pieces of this size.
const MAX_LINE: usize = 256 * 1024;
/// A flush stops after this much, so a process that floods its output cannot hold it forever.
const FLUSH_LIMIT: usize = 8 * 1024 * 1024;
/// How long a flush waits for the reader task.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

pub(super) type FlushRequest = oneshot::Sender<()>;

/// Reads `stream` to its end in a task, calling `emit` once per line.
pub(super) fn spawn_reader<R>(
    stream: R,
    emit: impl Fn(&str) + Send + 'static,
) -> mpsc::Sender<FlushRequest>
where
    R: AsyncRead + AsFd + Unpin + Send + 'static,
{
    let (flush_tx, mut flush_rx) = mpsc::channel::<FlushRequest>(4);
    // Tokio puts the child's pipe in non-blocking mode; the duplicate shares that mode, so a
    // direct read on it never blocks.
    let direct = stream.as_fd().try_clone_to_owned().ok().map(File::from);
    tokio::spawn(async move {
        let mut stream = stream;
        let mut lines = Lines::default();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut flushes_open = true;
        loop {
            tokio::select! {
                biased;
                request = flush_rx.recv(), if flushes_open => match request {
                    Some(done) => {
                        let ended = direct.as_ref().is_some_and(|file| drain(file, &mut buffer, &mut lines, &emit));
                        let _ = done.send(());
                        if ended {
                            break;
                        }
                    }
                    None => flushes_open = false,
                },
                read = stream.read(&mut buffer) => match read {
                    Ok(0) => break,
                    Ok(n) => lines.push(&buffer[..n], &emit),
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                },
            }
        }
        lines.finish(&emit);
    });
    flush_tx
}

/// Asks each reader to flush and waits (boundedly) until they have.
pub(super) async fn flush(readers: &[mpsc::Sender<FlushRequest>]) {
    for reader in readers {
        let (done_tx, done_rx) = oneshot::channel();
        if reader.send(done_tx).await.is_ok() {
            let _ = tokio::time::timeout(FLUSH_WAIT, done_rx).await;
        }
    }
}

/// Reads what the pipe holds right now. Returns whether the stream has ended.
fn drain(file: &File, buffer: &mut [u8], lines: &mut Lines, emit: &impl Fn(&str)) -> bool {
    let mut total = 0;
    loop {
        match (&*file).read(buffer) {
            Ok(0) => return true,
            Ok(n) => {
                lines.push(&buffer[..n], emit);
                total += n;
                if total >= FLUSH_LIMIT {
                    return false;
                }
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Splits bytes into lines (lossy UTF-8, without the `\n` or `\r\n`).
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn push(&mut self, mut bytes: &[u8], emit: &impl Fn(&str)) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&bytes[..end]);
            self.emit_partial(emit);
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            self.emit_partial(emit);
            self.partial = rest;
        }
    }

    fn finish(&mut self, emit: &impl Fn(&str)) {
        if !self.partial.is_empty() {
            self.emit_partial(emit);
        }
    }

    fn emit_partial(&mut self, emit: &impl Fn(&str)) {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        emit(&String::from_utf8_lossy(&self.partial));
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn collect(chunks: &[&[u8]]) -> Vec<String> {
        let seen = Mutex::new(Vec::new());
        let emit = |line: &str| seen.lock().unwrap().push(line.to_owned());
        let mut lines = Lines::default();
        for chunk in chunks {
            lines.push(chunk, &emit);
        }
        lines.finish(&emit);
        seen.into_inner().unwrap()
    }

    #[test]
    fn lines_are_split_joined_and_capped() {
        assert_eq!(
            collect(&[b"a\nb", b"c\r\n", b"\n", b"tail"]),
            ["a", "bc", "", "tail"]
        );
        assert_eq!(collect(&[b"\xff ok\n"]), ["\u{fffd} ok"]);
        let long = vec![b'x'; MAX_LINE * 2 + 3];
        let pieces = collect(&[&long]);
        assert_eq!(
            pieces.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 3]
        );
    }

    #[tokio::test]
    async fn a_flush_delivers_what_the_child_has_written() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "echo one; printf 'two\\n'; sleep 5"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let reader = spawn_reader(child.stdout.take().unwrap(), move |line| {
            sink.lock().unwrap().push(line.to_owned())
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
            flush(std::slice::from_ref(&reader)).await;
        }
        assert_eq!(*seen.lock().unwrap(), ["one", "two"]);
        // An empty pipe: the flush returns (the direct read does not block).
        tokio::time::timeout(Duration::from_secs(1), flush(&[reader]))
            .await
            .unwrap();
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}
