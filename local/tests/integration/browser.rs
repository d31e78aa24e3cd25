//! The storefront and the operations console in a real browser: headless Chromium, driven
//! through Playwright by `local/tests/browser/journeys.py`, against this test's own
//! `shop-local up`. The journeys are written in Python because Playwright's Python API
//! drives the system's Chromium with nothing but pip (no Node.js, no browser download).
//!
//! Chromium is the system's: `SHOP_CHROMIUM`, else `chromium` (Debian's package) or
//! `chromium-browser` / `google-chrome` on the PATH. `local/scripts/test` installs Debian's
//! where it can; elsewhere this test fails, saying how to get one, rather than passing
//! without a browser. Screenshots of every page, desktop and phone, are written to
//! `target/screenshots/`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Runner, repo_root};

/// The browser to drive, or a failure that says how to get one.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("SHOP_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(found) = std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
        {
            return found;
        }
    }
    panic!(
        "the browser tests need Chromium and found none: install it (Debian/Ubuntu: \
         `sudo apt-get install chromium`; macOS: `brew install --cask chromium`) or set \
         SHOP_CHROMIUM to a Chromium or Chrome binary. local/scripts/test installs Debian's \
         package itself when it runs as root with apt-get."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_can_shop_and_an_admin_can_run_the_shop_in_a_real_browser() {
    let chromium = chromium();
    let root = repo_root();
    let venv = shop_local::emulator::python_env(&root, "browser", "local/requirements-browser.txt")
        .expect("Playwright installs into its venv");
    let stack = Runner::start(&[]);
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("target/ is writable");
    let shots = shots.canonicalize().unwrap_or(shots);
    let output = Command::new(venv.join("bin/python"))
        .arg(root.join("local/tests/browser/journeys.py"))
        .args(["--url", &stack.url])
        .arg("--shots")
        .arg(&shots)
        .arg("--chromium")
        .arg(&chromium)
        .current_dir(&stack.run_dir)
        .output()
        .expect("the journeys run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    let pids = stack.started_pids().await;
    stack.stop_with("TERM", &pids);
    assert!(
        output.status.success(),
        "a browser journey failed (screenshots of the failing pages in {}):\n{stdout}\n{}",
        shots.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
