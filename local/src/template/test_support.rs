//! In-memory templates for the tests: the root template is at [`ROOT`], nested ones at the
//! paths their `Location` resolves to.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::document::read_tree;
use super::{LoadOptions, Loader, Result, load_with};
use crate::topology::Topology;

pub(super) const ROOT: &str = "/t/template.yaml";

pub(super) fn options() -> LoadOptions {
    LoadOptions {
        endpoint_url: "http://127.0.0.1:4566".to_string(),
        api_url: "http://127.0.0.1:3000".to_string(),
        parameters: BTreeMap::new(),
    }
}

/// A file system holding only `files`, as (path, contents).
fn in_memory(files: &[(&str, &str)]) -> impl Fn(&Path) -> io::Result<String> + use<> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), text.to_string()))
        .collect();
    move |path: &Path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

/// Loads in-memory templates: `files` maps paths to contents, the root's path being [`ROOT`].
pub(super) fn load_files(files: &[(&str, &str)], options: &LoadOptions) -> Result<Topology> {
    load_with(Path::new(ROOT), options, &in_memory(files))
}

/// Every Output of the root template `root` (with `nested` templates), evaluated.
pub(super) fn outputs_with(
    root: &str,
    nested: &[(&str, &str)],
    options: &LoadOptions,
) -> Result<BTreeMap<String, Json>> {
    let files: Vec<(&str, &str)> = nested.iter().copied().chain([(ROOT, root)]).collect();
    let loader = Loader::new(options, read_tree(Path::new(ROOT), &in_memory(&files))?);
    loader.check_parameters()?;
    loader.stacks[0]
        .outputs
        .keys()
        .map(|name| Ok((name.clone(), loader.output(0, name)?)))
        .collect()
}

pub(super) fn outputs(root: &str) -> BTreeMap<String, Json> {
    expect_ok(outputs_with(root, &[], &options()))
}

pub(super) fn outputs_error(root: &str) -> String {
    expect_error(outputs_with(root, &[], &options()))
}

/// The topology of the single template `root`.
pub(super) fn topology_of(root: &str) -> Topology {
    expect_ok(load_files(&[(ROOT, root)], &options()))
}

pub(super) fn topology_error(root: &str) -> String {
    expect_error(load_files(&[(ROOT, root)], &options()))
}

/// Fails the test with the error's message, which names file and logical id, not its Debug.
pub(super) fn expect_ok<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|error| panic!("{error}"))
}

pub(super) fn expect_error<T: Debug>(result: Result<T>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.to_string(),
    }
}
