//! The sample events of `events/<capability>/`: every function's test input, and what
//! `shop-local invoke` and the e2e suite feed the functions. Each file must stay both
//! exercised and invokable, or it drifts from what the code accepts.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::workspace_root;

/// `events/<capability>/<name>`, parsed.
pub fn fixture(capability: &str, name: &str) -> Value {
    let path = workspace_root().join("events").join(capability).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file names in `events/<capability>/`, sorted so a failure names the same file
/// on every run.
fn names(capability: &str) -> Vec<String> {
    let dir = workspace_root().join("events").join(capability);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts every sample of the capability is both exercised (some file under
/// `functions/<capability>/tests/` names it as a string literal) and invokable (see
/// [`assert_names_a_function`]); answers how many samples there are.
pub fn assert_all_used_and_invokable(capability: &str) -> usize {
    let names = names(capability);
    assert_used(capability, &names);
    for name in &names {
        assert_names_a_function(capability, name);
    }
    names.len()
}

fn assert_used(capability: &str, names: &[String]) {
    let tests: String = rust_files(
        &workspace_root()
            .join("functions")
            .join(capability)
            .join("tests"),
    )
    .into_iter()
    .map(|path| std::fs::read_to_string(path).unwrap())
    .collect();
    for name in names {
        assert!(
            tests.contains(&format!("\"{name}\"")),
            "events/{capability}/{name} is used by no test"
        );
    }
}

/// The sample's prefix (`api`, `consumer`, `relay`) names a function of the capability,
/// `<capability>-<prefix>`, and it is a JSON object: the e2e suite invokes each sample
/// with the function its prefix names, and a file naming none would be invoked against
/// nothing.
fn assert_names_a_function(capability: &str, name: &str) {
    let manifest_path = workspace_root()
        .join("functions")
        .join(capability)
        .join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let prefix = name.split('-').next().unwrap();
    assert!(
        manifest.contains(&format!("name = \"{capability}-{prefix}\"")),
        "events/{capability}/{name}: no function {capability}-{prefix}"
    );
    assert!(fixture(capability, name).is_object(), "{name}");
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
