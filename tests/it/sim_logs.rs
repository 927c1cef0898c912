//! The log path under what only the simulated cluster can stage: partial records of either
//! kubelet, reconnects that land inside a long line, a runtime that stores output after the
//! container's exit, the kubelet's own words where the log should be, and log rotation.

use std::time::Duration;

use kpo::sim::SimCluster;
use kpo::vocabulary::Outcome;

use crate::harness::{run, task};
use crate::logs::{assert_exact, numbered_bytes};
use crate::scenarios::Cluster;
use crate::sim::sim;

fn scripted(name: &str, script: &str) -> kpo::task::Task {
    task(&format!(
        "name = \"{name}\"\nimage = \"busybox\"\n[annotations]\n\"container.sim.kpo.dev/base\" = '{script}'\n"
    ))
}

/// A 1 MiB line between two short ones, its follow stream cut inside it twice.
async fn long_line_cut_inside(sim: &SimCluster, c: &Cluster) {
    sim.faults().drop_logs(9, 2);
    let t = scripted(
        "long",
        r#"{"logs": ["first"], "long_line": 1048576, "output": "last\n", "duration_ms": 1500}"#,
    );
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    let want = [
        b"first\n".to_vec(),
        kpo::sim::long_line(1 << 20),
        b"last\n".to_vec(),
    ]
    .concat();
    assert_exact(&rec.bytes_of("base"), &want);
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_20_kubelets_partial_records_are_joined_across_reconnects() {
    let (sim, c) = sim().await;
    long_line_cut_inside(&sim, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_kubelets_whole_lines_are_read_across_reconnects() {
    let (sim, c) = sim().await;
    sim.faults().prefix_whole_lines_only();
    long_line_cut_inside(&sim, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_the_runtime_stores_after_the_exit_is_read_to_its_end() {
    let (sim, c) = sim().await;
    // About 130 KB ending in a 100 KiB line, of which the last 32 KiB are stored 80 ms after the
    // exit is reported: read at the exit, the log ends in a partial record.
    sim.faults().lag_runtime(1);
    let script = r#"{"log_count": 3000, "long_line": 102400}"#;
    let (report, rec) = run(&c.client, &scripted("lagging", script), &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    let mut want = numbered_bytes(3_000);
    want.extend_from_slice(&kpo::sim::long_line(102_400));
    assert_exact(&rec.bytes_of("base"), &want);
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
}

/// No fixed settle: once the live stream has delivered a log that ends with a whole line, one
/// read after the exit — the stream dropped at once — finds nothing new, and that is its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_ends_cleanly_is_read_once_after_the_exit() {
    let (sim, c) = sim().await;
    let t = scripted("once", r#"{"log_count": 5, "duration_ms": 1000}"#);
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(&rec.bytes_of("base"), &numbered_bytes(5));
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
    // The live stream while it ran, then one plain read (and a look at the last record beside it).
    let record = sim.record();
    assert_eq!(
        record.log_reads - record.log_follows - record.log_tails,
        1,
        "{record:?}"
    );
}

/// A log the live stream never saw is read to its end in one round trip: the read brings all of
/// it, and the log's last record, asked for at the same time, shows that it reached the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_the_live_stream_missed_is_read_once_after_the_exit() {
    let (sim, c) = sim().await;
    sim.faults().drop_logs(0, 1000);
    let t = scripted("unseen", r#"{"log_count": 20}"#);
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(&rec.bytes_of("base"), &numbered_bytes(20));
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
    let record = sim.record();
    let plain = record.log_reads - record.log_follows - record.log_tails;
    assert_eq!((plain, record.log_tails), (1, 1), "{record:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelets_own_words_are_never_printed_as_output() {
    let (sim, c) = sim().await;
    sim.faults().remove_containers(1);
    let t = scripted("removed", r#"{"log_count": 5, "log_interval_ms": 100}"#);
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(&rec.bytes_of("base"), &numbered_bytes(5));
    assert_eq!(report.incomplete_logs.len(), 1, "{:?}", report.incomplete_logs);
    let reason = &report.incomplete_logs[0].reason;
    assert!(
        reason.contains("unable to retrieve container logs for containerd://"),
        "{reason}"
    );
    let said = rec
        .notices
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.contains("may be incomplete"))
        .count();
    assert_eq!(said, 1, "said once: {:?}", rec.notices.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_followed_across_rotations_is_complete() {
    let (sim, c) = sim().await;
    sim.faults().rotate_logs_at(16 * 1024);
    let t = scripted("rotating", r#"{"log_count": 3000, "log_interval_ms": 1}"#);
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(&rec.bytes_of("base"), &numbered_bytes(3000));
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
}

/// containerd cuts the line it is copying when the kubelet reopens a rotated log: the line's
/// first byte ends the old file as a partial record, its rest begins the new one, and a v1.20
/// kubelet stamps both (seen on the test cluster as `l2026-12-03T10:57:38.463730928Z ine 347487`).
/// Every line arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_cut_by_a_rotation_arrives_whole() {
    let (sim, c) = sim().await;
    sim.faults().rotate_logs_at(16 * 1024);
    sim.faults().split_lines_at_rotation();
    let t = scripted("cut", r#"{"log_count": 3000, "log_interval_ms": 1}"#);
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(&rec.bytes_of("base"), &numbered_bytes(3000));
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_rotated_away_during_a_reconnect_is_reported_never_repeated() {
    let (sim, c) = sim().await;
    // Each cut costs a reconnect pause, in which the file rotates more than once.
    sim.faults().rotate_logs_at(1024);
    sim.faults().drop_logs(200, 4);
    let t = scripted("rotated", r#"{"log_count": 3000, "log_interval_ms": 1}"#);
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    // A line cut by a reconnect whose rest was rotated away is damaged (and reported).
    let lines = rec.lines_of("base");
    let numbers: Vec<usize> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("line ").and_then(|n| n.parse().ok()))
        .collect();
    assert!(
        lines.len() - numbers.len() <= 4,
        "at most one damaged line per cut: {lines:?}"
    );
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "no line twice, none out of order"
    );
    assert!(numbers.len() < 3000, "the scenario loses output to rotation");
    assert_eq!(report.incomplete_logs.len(), 1, "{:?}", report.incomplete_logs);
    assert!(
        report.incomplete_logs[0].reason.contains("rotated"),
        "{:?}",
        report.incomplete_logs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_whose_end_the_runtime_lost_is_reported_as_incomplete() {
    let (sim, c) = sim().await;
    sim.faults().lose_log_ends(1);
    let (report, rec) = run(&c.client, &scripted("lost", r#"{"log_count": 3000}"#), &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    let got = rec.bytes_of("base");
    assert!(got.len() < numbered_bytes(3000).len() && numbered_bytes(3000).starts_with(&got));
    let [gap] = &report.incomplete_logs[..] else {
        panic!("{:?}", report.incomplete_logs)
    };
    assert!(gap.reason.contains("did not store the rest"), "{}", gap.reason);
}

/// A v1.20 kubelet's follower reads the file it opened to the end, then reopens the log's path:
/// behind a fast container on a loaded node (a follower slower than the container), files
/// rotated meanwhile are skipped whole, the stream never saying so. The sim models both (a
/// follower of 64 KB/s, a 1 MB/s container, sizes checked every 4 s as the kubelet does every
/// 10 s); kpo, which looks at the start of the current file while output flows, reports the log
/// as incomplete and says between which times output is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_file_the_kubelet_skipped_is_reported() {
    let (sim, c) = sim().await;
    sim.faults().rotate_logs_at(256 * 1024);
    sim.faults().check_log_sizes_every(Duration::from_secs(4));
    sim.faults().slow_log_streams(64 * 1024);
    let padding = "x".repeat(1000);
    let t = scripted(
        "skipped",
        &format!(r#"{{"log_count": 3500, "log_line": "line {{n}} {padding}", "log_interval_ms": 4}}"#),
    );
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    let numbers: Vec<usize> = rec
        .lines_of("base")
        .iter()
        .filter_map(|l| l.strip_prefix("line ")?.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "no line twice, none out of order"
    );
    assert!(
        numbers.len() < 3500,
        "the model skipped no file: the test staged nothing"
    );
    let [incomplete] = &report.incomplete_logs[..] else {
        panic!("a skipped file went unreported: {:?}", report.incomplete_logs)
    };
    assert!(
        incomplete
            .reason
            .contains("skipped a rotated log file: output written between"),
        "{}",
        incomplete.reason
    );
}
