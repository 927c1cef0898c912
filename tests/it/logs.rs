//! The log path, on the simulated and on a real cluster alike: every byte of every line,
//! exactly once — bytes that are not UTF-8, `\r`, a last line without a newline, a line far
//! longer than the runtime's record limit, and many lines fast.
//!
//! The real commands end with `sleep 1`: containerd 1.6 (the test cluster's) was seen losing
//! the end of output written just before the container exits — on the node itself, with exit 0
//! (`sim_logs::a_log_whose_end_the_runtime_lost_is_reported_as_incomplete` is that case; kpo
//! says so). What is tested here is that kpo delivers what the node stores.

use kpo::vocabulary::Outcome;

use crate::harness::{run, task};
use crate::scenarios::{Cluster, unique};

pub async fn bytes_arrive_unchanged(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "echo before; printf 'bad \\377\\376 bytes\\n'; printf '50%%\\r100%%\\n'; printf 'no newline at the end'; sleep 1"]
[annotations]
"container.sim.kpo.dev/base" = '{{"output": "before\nbad \u00ff\u00fe bytes\n50%\r100%\nno newline at the end"}}'
"#,
        name = unique("bytes"),
        image = c.image
    ));
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(
        &rec.bytes_of("base"),
        b"before\nbad \xff\xfe bytes\n50%\r100%\nno newline at the end",
    );
    // From outside, output without a last newline looks like an end the runtime lost: said so.
    let [gap] = &report.incomplete_logs[..] else {
        panic!("{:?}", report.incomplete_logs)
    };
    assert!(
        gap.reason.contains("ends in the middle of a line"),
        "{}",
        gap.reason
    );
}

pub async fn a_mebibyte_line_arrives_whole(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz | tr -d '\\n' | head -c 1048576; echo; echo after; sleep 1"]
[annotations]
"container.sim.kpo.dev/base" = '{{"long_line": 1048576, "output": "after\n"}}'
"#,
        name = unique("long"),
        image = c.image
    ));
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(
        &rec.bytes_of("base"),
        &[kpo::sim::long_line(1 << 20), b"after\n".to_vec()].concat(),
    );
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
}

pub async fn a_hundred_thousand_lines_arrive_once(c: &Cluster) {
    let t = task(&format!(
        r#"
name = "{name}"
image = "{image}"
command = ["sh", "-c", "seq 1 100000 | sed 's/^/line /'; sleep 1"]
[annotations]
"container.sim.kpo.dev/base" = '{{"log_count": 100000}}'
"#,
        name = unique("many"),
        image = c.image
    ));
    let (report, rec) = run(&c.client, &t, &c.ns).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    assert_exact(&rec.bytes_of("base"), &numbered_bytes(100_000));
    assert!(report.incomplete_logs.is_empty(), "{:?}", report.incomplete_logs);
}

/// `line 1\n` … `line N\n`.
pub fn numbered_bytes(n: usize) -> Vec<u8> {
    (1..=n).flat_map(|i| format!("line {i}\n").into_bytes()).collect()
}

/// Compares large outputs, saying where they first differ rather than printing them whole.
pub fn assert_exact(got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let around =
        |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).into_owned();
    panic!(
        "output differs at byte {at} (got {} bytes, want {}): got {:?}, want {:?}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    );
}
