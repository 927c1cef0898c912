//! The timeline page (`kpo run --timeline`, `kpo timeline ID`) as a browser shows it: loaded in
//! Debian's headless Chromium (driven by playwright-core from npm, `tests/browser/`), its bars,
//! their order, colours and a failing task's reason read from the DOM, and a screenshot kept
//! in the target folder (`target/artifacts/timeline.png`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{kpo_command, step};

/// Debian's Chromium and playwright-core, installed when missing.
fn browser() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !Path::new("/usr/bin/chromium").exists() {
        step(
            std::process::Command::new("apt-get")
                .args(["install", "-y", "-q", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install chromium",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        step(
            std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            "npm ci (tests/browser)",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

/// What Chromium shows of `page`; its screenshot goes to `shot`.
fn shown(page: &Path, shot: &Path) -> Value {
    let dir = browser();
    let out = std::process::Command::new("node")
        .arg(dir.join("timeline.mjs"))
        .arg(page)
        .arg(shot)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

const SUCCEEDED: &str = "rgb(67, 160, 71)";
const FAILED: &str = "rgb(229, 57, 53)";
const BACKOFF: &str = "rgb(255, 183, 77)";
const WAITING: &str = "rgb(189, 189, 189)";

#[test]
fn a_batch_timeline_shows_each_attempt_as_a_browser_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let page = dir.path().join("batch.html");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/batch");
    // Two slots for four tasks: the last two wait for one.
    let out = kpo_command()
        .args([
            "run",
            "--sim",
            "--run-id",
            "drawn",
            "--parallel",
            "2",
            "--timeline",
        ])
        .arg(&page)
        .arg(&examples)
        .env("KPO_STATE_DIR", &state)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(kpo::exit::BATCH_FAILED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let seen = shown(&page, &artifacts.join("timeline.png"));
    assert_eq!(
        seen["requests"],
        serde_json::json!([]),
        "the page fetches nothing"
    );
    assert_eq!(seen["scripts"], 0);
    let bars = seen["bars"].as_array().unwrap();
    let rows: Vec<(String, u64)> = bars
        .iter()
        .map(|b| {
            (
                b["task"].as_str().unwrap().to_owned(),
                b["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    // extract and load start at once, in either order; report and transform wait for a slot.
    let mut first_two = [rows[0].0.clone(), rows[1].0.clone()];
    first_two.sort();
    assert_eq!(first_two, ["extract", "load"], "{rows:?}");
    let names = |list: &[(&str, u64)]| list.iter().map(|(t, a)| (t.to_string(), *a)).collect::<Vec<_>>();
    assert_eq!(
        rows[2..],
        names(&[("report", 1), ("transform", 1), ("transform", 2)])
    );
    let segments = |i: usize| bars[i]["segments"].as_array().unwrap().clone();
    // Tasks in the order their pods were submitted.
    let submitted = |i: usize| {
        segments(i)
            .iter()
            .find(|s| s["kind"] == "pending")
            .map(|s| s["x"].as_f64().unwrap())
            .unwrap()
    };
    assert!(
        (0..3).all(|i| submitted(i) <= submitted(i + 1) + 0.5),
        "{bars:#?}"
    );
    let kinds = |i: usize| {
        segments(i)
            .iter()
            .map(|s| s["kind"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let fill_of = |i: usize, kind: &str| {
        segments(i)
            .iter()
            .find(|s| s["kind"] == kind)
            .map(|s| s["fill"].as_str().unwrap().to_owned())
    };
    assert_eq!(fill_of(0, "running").as_deref(), Some(SUCCEEDED));
    assert_eq!(fill_of(3, "running").as_deref(), Some(FAILED));
    assert_eq!(fill_of(0, "waiting").as_deref(), Some(WAITING));
    // The retry: its backoff first, then its pod.
    assert_eq!(
        kinds(4).first().map(String::as_str),
        Some("backoff"),
        "{:?}",
        kinds(4)
    );
    assert_eq!(fill_of(4, "backoff").as_deref(), Some(BACKOFF));
    // The third task waited for a slot: a longer wait than the first's.
    let wait = |i: usize| {
        segments(i)
            .iter()
            .find(|s| s["kind"] == "waiting")
            .map_or(0.0, |s| s["width"].as_f64().unwrap())
    };
    assert!(wait(2) > wait(0) + 20.0, "{} vs {}", wait(2), wait(0));
    // Bars run left to right: the retry starts where the first attempt ended.
    let end = |i: usize| {
        segments(i)
            .last()
            .map(|s| s["x"].as_f64().unwrap() + s["width"].as_f64().unwrap())
            .unwrap()
    };
    let start = |i: usize| segments(i)[0]["x"].as_f64().unwrap();
    assert!((start(4) - end(3)).abs() < 1.5, "{} {}", start(4), end(3));
    assert_eq!(bars[3]["reason"], "base exited 3 (Error)");
    assert_eq!(bars[0]["reason"], Value::Null);
    assert_eq!(seen["summary"].as_array().unwrap().len(), 4);
    assert_eq!(seen["summary"][3][1], "failed");

    // Drawn again afterwards from the journal: the same page.
    let again = dir.path().join("again.html");
    let out = kpo_command()
        .args(["timeline", "drawn", "-o"])
        .arg(&again)
        .env("KPO_STATE_DIR", &state)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&page).unwrap()
    );
    let out = kpo_command()
        .args(["timeline", "nosuch"])
        .env("KPO_STATE_DIR", &state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(kpo::exit::USAGE));
}
