//! `up --watch`: the loop `cargo lambda watch` gives one function, for the whole shop. When
//! a source file of the workspace changes, the functions are rebuilt (cargo compiles only
//! what the change reaches) and each function whose binary changed is reloaded: its next
//! invocation cold-starts the new binary, while the rest of the stack (moto's data, the
//! queues, the other functions' warm processes) stays as it was.
//!
//! Sources are polled, not watched through inotify: a walk of `functions/` and `shared/`
//! (161 files today) takes a few milliseconds, works the same on every platform, and needs
//! no dependency.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::lambda::LambdaFunction;

/// How often the sources are looked at.
const POLL: Duration = Duration::from_millis(500);

/// Where the functions' code lives, relative to the repository: every crate they build from.
const SOURCE_ROOTS: [&str; 4] = ["functions", "shared", "Cargo.toml", "Cargo.lock"];

/// A digest of every source file's path, length and modification time: it changes when a
/// file is saved, added or removed. Build output (`target/`) and templates are not sources.
pub fn sources_digest(repo_root: &Path) -> u64 {
    let mut files = Vec::new();
    for root in SOURCE_ROOTS {
        collect(&repo_root.join(root), &mut files);
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    hasher.finish()
}

fn collect(path: &Path, files: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    if metadata.is_file() {
        let is_source = path
            .extension()
            .is_some_and(|extension| extension == "rs" || extension == "toml")
            || path.file_name().is_some_and(|name| name == "Cargo.lock");
        if is_source {
            files.push((path.to_owned(), metadata.len(), metadata.modified().ok()));
        }
        return;
    }
    if path.file_name().is_some_and(|name| name == "target") {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            collect(&entry.path(), files);
        }
    }
}

/// Each function's binary: its size and modification time, to tell which ones a build
/// replaced.
fn binaries(
    functions: &BTreeMap<String, Arc<LambdaFunction>>,
) -> BTreeMap<String, Option<(u64, SystemTime)>> {
    functions
        .iter()
        .map(|(name, function)| {
            let stamp = std::fs::metadata(&function.config().binary)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (name.clone(), stamp)
        })
        .collect()
}

/// Rebuilds and reloads on every change of the sources under `repo_root`, until the task
/// is aborted. `build` is the stack's own build of its functions; `say` logs a line.
pub async fn watch<B, Fut>(
    functions: BTreeMap<String, Arc<LambdaFunction>>,
    repo_root: PathBuf,
    build: B,
    say: impl Fn(&str),
) where
    B: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut seen = sources_digest(&repo_root);
    loop {
        tokio::time::sleep(POLL).await;
        if sources_digest(&repo_root) == seen {
            continue;
        }
        // An editor saves in several writes, and a formatter may follow: build once the
        // files have held still for one poll.
        tokio::time::sleep(POLL).await;
        seen = sources_digest(&repo_root);
        let started = Instant::now();
        let before = binaries(&functions);
        say("sources changed: rebuilding the functions");
        if let Err(error) = build().await {
            say(&format!(
                "{error}; the functions keep running their previous binaries"
            ));
            continue;
        }
        let after = binaries(&functions);
        let mut reloaded = Vec::new();
        for (name, function) in &functions {
            if before.get(name) != after.get(name) {
                function.reload().await;
                reloaded.push(name.as_str());
            }
        }
        let took = started.elapsed().as_secs_f64();
        if reloaded.is_empty() {
            say(&format!(
                "rebuilt in {took:.1} s: no function's binary changed"
            ));
        } else {
            say(&format!(
                "rebuilt in {took:.1} s; reloaded {}: their next invocations start the new binaries",
                reloaded.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_changes_when_a_source_is_saved_added_or_removed_and_not_for_build_output() {
        let root = std::env::temp_dir().join(format!("shop-watch-{}", ulid::Ulid::generate()));
        let src = root.join("functions/catalog/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(root.join("functions/target/debug")).unwrap();
        std::fs::write(src.join("api.rs"), "fn a() {}").unwrap();
        let first = sources_digest(&root);
        assert_eq!(first, sources_digest(&root), "nothing changed");

        std::fs::write(root.join("functions/target/debug/catalog-api"), "binary").unwrap();
        std::fs::write(root.join("functions/catalog/template.yaml"), "x: 1").unwrap();
        assert_eq!(first, sources_digest(&root), "build output and templates");

        std::fs::write(src.join("api.rs"), "fn a() { b() }").unwrap();
        let saved = sources_digest(&root);
        assert_ne!(first, saved, "a saved file");

        std::fs::write(src.join("domain.rs"), "").unwrap();
        let added = sources_digest(&root);
        assert_ne!(saved, added, "an added file");

        std::fs::remove_file(src.join("domain.rs")).unwrap();
        assert_eq!(saved, sources_digest(&root), "a removed file");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
