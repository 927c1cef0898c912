//! The script of a simulated container: what it prints, how long it runs, how it ends —
//! from its `container.sim.kpo.dev/<container>` annotation, so that any task file can be
//! rehearsed. A real cluster ignores the annotation.

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

/// Annotation prefix of per-container scripts.
pub const SCRIPT_PREFIX: &str = "container.sim.kpo.dev/";

/// What one container does, from its `container.sim.kpo.dev/<name>` annotation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Script {
    /// Exit code when it finishes by itself.
    pub exit_code: i32,
    /// Lines printed, in order.
    pub logs: Vec<String>,
    /// Further generated lines `line 1`, `line 2`, ...
    pub log_count: usize,
    /// ... or of this text, `{n}` standing for the line's number (`::kpo-output n{n}={n}`).
    pub log_line: Option<String>,
    /// Pause after each line.
    pub log_interval_ms: u64,
    /// After the lines, one line of this many bytes (a repeating `0-9a-z` pattern) and its
    /// newline ...
    pub long_line: Option<usize>,
    /// ... then these bytes, exactly as given: each character up to U+00FF is one byte (so
    /// `"\u00ff"` is the byte 0xFF, invalid UTF-8), no newline added.
    pub output: Option<String>,
    /// After its output, runs on until its pod carries this annotation: a test's hand on the
    /// container, where a real one would be told with `kubectl exec`.
    pub until_annotated: Option<String>,
    /// Total run time; without it a container exits after its logs (a native sidecar runs on).
    pub duration_ms: Option<u64>,
    /// Ends as OOMKilled with exit code 137.
    pub oom: bool,
    /// The memory the container uses, as a quantity (`"200Mi"`): above its memory limit it ends
    /// OOMKilled (137), as the kernel kills a cgroup over its limit; within it, it runs on.
    pub memory: Option<String>,
    pub termination_message: Option<String>,
    /// Ignores SIGTERM, so deletion waits for the whole grace period.
    pub ignore_sigterm: bool,
    /// `ok` (default), `not-found`, `unauthorized` or `rate-limited`.
    pub pull: Option<String>,
    /// Time the image pull takes: a slow start.
    pub pull_ms: u64,
    /// A file the container writes before it exits (its `terminationMessagePath`, or a file a
    /// sidecar reads) ...
    pub write_path: Option<String>,
    /// ... with this content ...
    pub write: Option<String>,
    /// ... or with a JSON document of exactly this many bytes (see [`filler_document`]).
    pub write_size: Option<usize>,
}

impl Script {
    pub fn parse(text: &str) -> Result<Self, String> {
        let script: Script = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match script.pull.as_deref() {
            None | Some("ok" | "not-found" | "unauthorized" | "rate-limited") => Ok(script),
            Some(other) => Err(format!("unknown pull outcome {other:?}")),
        }
    }

    pub(super) fn of(pod: &Pod, container: &str) -> Self {
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(&format!("{SCRIPT_PREFIX}{container}")))
            .and_then(|s| Script::parse(s).ok())
            .unwrap_or_default()
    }
}

/// A JSON document of exactly `size` bytes (at least 13), the same for every call: large
/// results for tests, checkable byte for byte.
pub fn filler_document(size: usize) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut doc = b"{\"filler\":\"".to_vec();
    doc.extend((0..size.saturating_sub(13)).map(|i| alphabet[i % alphabet.len()]));
    doc.extend(b"\"}");
    doc
}

/// Bytes from a string whose characters are all at most U+00FF, one byte each (Latin-1), so
/// that a script in JSON can hold any bytes; other characters are written as UTF-8.
pub(super) fn latin1(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for ch in text.chars() {
        match u8::try_from(u32::from(ch)) {
            Ok(b) => bytes.push(b),
            Err(_) => bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    bytes
}

/// A line of `size` bytes of a repeating `0-9a-z` pattern, with its newline.
pub fn long_line(size: usize) -> Vec<u8> {
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut line: Vec<u8> = (0..size).map(|i| alphabet[i % alphabet.len()]).collect();
    line.push(b'\n');
    line
}
