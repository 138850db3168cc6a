//! The Python package (`python/`): builds it with maturin into a wheel, installs the wheel
//! into a directory under the target directory, and runs its pytest suite
//! (`python/tests/`: the API against a dict oracle, a hypothesis model, Arrow outputs read
//! by pyarrow, polars, pandas and DuckDB, threads, errors, a SIGKILL crash test and the
//! examples of `python/README.md`).
//!
//! The package is its own cargo workspace (it links against the Python interpreter, which
//! this workspace's test binaries must not), so this test drives it from outside, as a
//! user would. Without maturin or the test modules it is skipped with a printed reason,
//! unless `CI=true`, where it fails (CI installs them: `.ci/run`).
//!
//! The build uses the release profile, as `pip install ./python` does (opt-level 1
//! compiled in 15% less CPU time but ran the suite 7x slower), with the engine's invariant
//! checks (feature `invariants`), as every Rust test run has them; its target directory
//! (`target/tmp/python-target`) persists between runs, so a rerun rebuilds only
//! what changed. The same compile lints the package: `clippy-driver` is cargo's
//! `RUSTC_WORKSPACE_WRAPPER` (as `cargo clippy` sets it, so it wraps only the package's
//! own crate) and `-D warnings` denies every warning, which equals `cargo clippy
//! --all-targets -- -D warnings` for a crate whose one target is its library, without a
//! second, check-mode build of every dependency (155 s from clean on this 2-core VM).

use std::path::{Path, PathBuf};
use std::process::Command;

const MODULES: [&str; 7] = [
    "maturin",
    "pytest",
    "hypothesis",
    "pyarrow",
    "polars",
    "duckdb",
    "pandas",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The modules the system Python cannot import.
fn missing_modules() -> Vec<&'static str> {
    MODULES
        .into_iter()
        .filter(|m| {
            !Command::new(python())
                .args(["-c", &format!("import {m}")])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect()
}

fn available() -> bool {
    let missing = missing_modules();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} cannot import {} (pip install {})",
        python(),
        missing.join(", "),
        missing.join(" ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the Python package test needs them in CI: {why}");
    }
    eprintln!("SKIPPED Python package test: {why}");
    false
}

/// Runs `command`, panicking with its name if it fails.
fn run(what: &str, command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// True if clippy can lint the build; without it, CI fails and a local run says so.
fn clippy_available() -> bool {
    let found = Command::new("clippy-driver")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let why = "clippy-driver is not installed (rustup component add clippy)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the Python package's lint needs it in CI: {why}");
        }
        eprintln!("NOT LINTED: the Python package builds without clippy: {why}");
    }
    found
}

/// Builds (and, with clippy, lints) the wheel for `interpreter`; returns its path.
fn build_wheel(interpreter: &Path, scratch: &Path) -> PathBuf {
    let wheels = scratch.join("python-wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    let mut maturin = Command::new(interpreter);
    if clippy_available() {
        maturin
            .env("RUSTC_WORKSPACE_WRAPPER", "clippy-driver")
            .env("RUSTFLAGS", "-D warnings");
    }
    run(
        "maturin build",
        maturin
            .args(["-m", "maturin", "build", "--release", "--quiet"])
            .args(["--features", "invariants"])
            .arg("--manifest-path")
            .arg(repo().join("python/Cargo.toml"))
            .arg("--interpreter")
            .arg(interpreter)
            .arg("--out")
            .arg(&wheels)
            .env("CARGO_TARGET_DIR", scratch.join("python-target")),
    );
    let wheel = std::fs::read_dir(&wheels)
        .expect("maturin wrote its output directory")
        .map(|e| e.expect("a readable directory entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("maturin built a wheel");
    wheel
}

#[test]
fn python_package_passes_its_pytest_suite() {
    if !available() {
        return;
    }
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let interpreter = PathBuf::from(python());
    let wheel = build_wheel(&interpreter, &scratch);
    // Installed into a directory of its own, first on PYTHONPATH: nothing is installed
    // into the interpreter's environment, whose pyarrow, pytest and the rest it uses.
    let site = scratch.join("python-site");
    run(
        "pip install the wheel",
        Command::new(&interpreter)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--no-index", "--upgrade", "--target"])
            .arg(&site)
            .arg(&wheel),
    );
    run(
        "pytest python/tests",
        Command::new(&interpreter)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(repo().join("python/tests"))
            .env("PYTHONPATH", &site)
            .env("CHRONOKV_EXPECT_INVARIANTS", "1")
            // Not python/: `python -m` puts the working directory first on sys.path, and
            // python/chronokv (the sources, without the native module) would shadow the
            // installed package.
            .current_dir(&scratch),
    );
}
