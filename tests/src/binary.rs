//! The real `modsignal` binary, for tests that run it as a child process (to `kill -9` it, or
//! to send it signals), and [`modsignal_command`] to start it with what every such test needs.
//!
//! Cargo gives integration tests the path of their own package's binaries only
//! (`CARGO_BIN_EXE_*`), and `modsignal` belongs to `crates/modsignal`. So it is built here, once
//! per test process, by the cargo that runs the tests, with the same profile and into the same
//! target directory: cargo decides whether it is fresh, so a stale binary is never run, and after
//! `cargo test --workspace` there is little left to build. `MODSIGNAL_TEST_BINARY` names a binary
//! to use instead (to test a release build, or a build from elsewhere).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::broker::kill_with_parent;

/// The path of a freshly built `modsignal` binary.
///
/// # Panics
/// When the build fails (cargo's diagnostics are on the test's output).
pub fn modsignal_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os("MODSIGNAL_TEST_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build(),
    })
    .clone()
}

/// A command that runs [`modsignal_binary`] as the tests need it: without the `MODSIGNAL_*`
/// variables of the test's environment (a `MODSIGNAL_OUTPUT`, say, must not change the run;
/// `MODSIGNAL_LOG` is kept, to choose what it logs), with no standard input, its standard
/// output discarded (a test that reads it sets another), and killed with the thread that starts
/// it, so that a test that panics or is killed leaves no process behind.
pub fn modsignal_command() -> Command {
    let mut cmd = Command::new(modsignal_binary());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MODSIGNAL_") && k != "MODSIGNAL_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    kill_with_parent(&mut cmd);
    cmd
}

fn build() -> PathBuf {
    // Cargo sets CARGO for the tests it runs; a test binary started by hand falls back to the
    // cargo that built it, then to the one on the PATH.
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "--locked", "-p", "modsignal", "--bin", "modsignal"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    // With CARGO_TARGET_DIR set, the nested build inherits it; otherwise the target directory
    // is the one this test binary was built into (`<target>/<profile>/deps/<test>`), which may
    // have been chosen with --target-dir.
    if std::env::var_os("CARGO_TARGET_DIR").is_none()
        && let Some(dir) = own_target_dir()
    {
        cmd.arg("--target-dir").arg(dir);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&cargo).display()));
    assert!(
        out.status.success(),
        "`cargo build -p modsignal` failed ({}); its errors are above",
        out.status
    );
    // The last artifact message for the `modsignal` binary names the executable.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "modsignal")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported the modsignal executable")
}

/// `<target>` from this test binary's path, `<target>/<profile>/deps/<name>`.
fn own_target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    deps.parent()?.parent().map(Path::to_path_buf)
}
