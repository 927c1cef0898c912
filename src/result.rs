//! The task's result channel: a JSON document the task writes to a file, returned either in the
//! main container's termination message (small results) or by a sidecar that prints the file to
//! its own log in a checksummed frame (large results, read through `pods/log` — no `exec`);
//! and named outputs printed as `::kpo-output name=value` log lines.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, ResourceRequirements, SeccompProfile, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use sha2::{Digest, Sha256};

/// Kubernetes keeps at most this many bytes of a termination message (and truncates silently).
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;
/// The name of the result sidecar and of the volume it shares with the main container.
pub const SIDECAR: &str = "kpo-result";
/// The prefix of output lines in the main container's log.
pub const OUTPUT_PREFIX: &str = "::kpo-output ";

/// How the result comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The file is the main container's `terminationMessagePath`: up to 4 KiB, no extra container.
    TerminationMessage,
    /// A sidecar on a shared `emptyDir` prints the file to its log once it appears.
    Sidecar,
}

/// The task file's `[result]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSpec {
    pub path: String,
    pub required: bool,
    pub via: Via,
    /// Largest result the sidecar will send.
    pub max_size: u64,
    pub sidecar_image: String,
    /// How long kpo waits, after the main container ended, for the sidecar to deliver.
    pub wait: Duration,
}

impl Default for ResultSpec {
    fn default() -> Self {
        Self {
            path: "/kpo/result.json".into(),
            required: false,
            via: Via::TerminationMessage,
            max_size: 1024 * 1024,
            sidecar_image: "busybox:1.36".into(),
            wait: Duration::from_secs(15),
        }
    }
}

/// Why a result could not be used. Never a silently shorter result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    #[error("the task wrote no result to {path}, and the task file requires one")]
    Missing { path: String },
    #[error("the result is not JSON: {0}")]
    NotJson(String),
    #[error(
        "the result is {size} bytes or more: Kubernetes keeps only {TERMINATION_MESSAGE_LIMIT} bytes of a termination message; set `via = \"sidecar\"` in [result]"
    )]
    TooLargeForMessage { size: usize },
    #[error("the result is {size} bytes, more than `max_size` ({max} bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error(
        "the result frame in the {SIDECAR} sidecar's log is truncated (no end marker after {0} base64 characters)"
    )]
    Unterminated(usize),
    #[error("cannot read the {SIDECAR} sidecar's log: {0}")]
    Unreadable(String),
    #[error("the result frame in the {SIDECAR} sidecar's log is corrupted: {0}")]
    Corrupted(String),
    #[error("the {SIDECAR} sidecar printed no result frame")]
    NoFrame,
}

/// The sidecar's program: wait for the file, wait until it stops growing, then print it framed
/// with its size and SHA-256 and exit. Its wait is bounded by `KPO_RESULT_TIMEOUT` seconds, so it
/// never keeps a pod alive on its own. Needs only a POSIX shell with `sha256sum` and `base64`.
/// The last second keeps stdout open while the runtime drains it: a runtime can otherwise drop
/// or delay the end of a container's output when the container exits.
const SIDECAR_SCRIPT: &str = r#"f="$KPO_RESULT_PATH"
end=$(( $(date +%s) + KPO_RESULT_TIMEOUT ))
while [ ! -f "$f" ]; do
  if [ "$(date +%s)" -ge "$end" ]; then echo "::kpo-result-none"; exit 0; fi
  sleep 1
done
size=$(( $(wc -c < "$f") )); prev=-1
while [ "$size" != "$prev" ]; do prev=$size; sleep 1; size=$(( $(wc -c < "$f") )); done
if [ "$size" -gt "$KPO_RESULT_MAX" ]; then echo "::kpo-result-too-large size=$size"; exit 0; fi
sum=$(sha256sum "$f" | cut -d' ' -f1)
echo "::kpo-result-begin size=$size sha256=$sum"
base64 "$f"
echo "::kpo-result-end"
sleep 1
"#;

/// The folder of the result file, which the sidecar mode shares through an `emptyDir`.
pub fn folder(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The sidecar container for `spec`, with its wait bounded by `timeout`.
pub fn sidecar(spec: &ResultSpec, timeout: Duration) -> Container {
    let env = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    };
    let small = |cpu: &str, memory: &str| {
        Some(
            [
                ("cpu".to_owned(), Quantity(cpu.into())),
                ("memory".to_owned(), Quantity(memory.into())),
            ]
            .into(),
        )
    };
    Container {
        name: SIDECAR.into(),
        image: Some(spec.sidecar_image.clone()),
        command: Some(vec!["sh".into(), "-c".into(), SIDECAR_SCRIPT.into()]),
        env: Some(vec![
            env("KPO_RESULT_PATH", spec.path.clone()),
            env("KPO_RESULT_MAX", spec.max_size.to_string()),
            env("KPO_RESULT_TIMEOUT", timeout.as_secs().max(1).to_string()),
        ]),
        volume_mounts: Some(vec![mount(spec)]),
        resources: Some(ResourceRequirements {
            requests: small("10m", "16Mi"),
            limits: small("500m", "64Mi"),
            ..Default::default()
        }),
        security_context: Some(restricted()),
        ..Default::default()
    }
}

/// kpo's own container meets the `restricted` Pod Security Standard, so a namespace enforcing it
/// accepts every pod whose task's containers do: not root (nobody, which may read the shared
/// file), no privilege escalation, no capabilities, the runtime's default seccomp profile.
fn restricted() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65534),
        run_as_group: Some(65534),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

/// The shared volume's mount, the same in the main container and the sidecar.
pub fn mount(spec: &ResultSpec) -> VolumeMount {
    VolumeMount {
        name: SIDECAR.into(),
        mount_path: folder(&spec.path).into(),
        ..Default::default()
    }
}

/// Reads a termination message as a result.
pub fn from_message(message: Option<&str>) -> Result<Option<Vec<u8>>, ResultError> {
    match message {
        None | Some("") => Ok(None),
        Some(m) if m.len() >= TERMINATION_MESSAGE_LIMIT => {
            Err(ResultError::TooLargeForMessage { size: m.len() })
        }
        Some(m) => Ok(Some(m.as_bytes().to_vec())),
    }
}

/// Reads the sidecar's log: the result bytes, checked against the frame's size and SHA-256.
/// `max` is the `max_size` the sidecar was given, for the message when it refused a result.
pub fn from_frame(log: &str, max: u64) -> Result<Option<Vec<u8>>, ResultError> {
    let mut lines = log.lines();
    let header = loop {
        match lines.next() {
            None => return Err(ResultError::NoFrame),
            Some("::kpo-result-none") => return Ok(None),
            Some(l) if l.starts_with("::kpo-result-too-large") => {
                let size = field(l, "size").and_then(|s| s.parse().ok()).unwrap_or(0);
                return Err(ResultError::TooLarge { size, max });
            }
            Some(l) if l.starts_with("::kpo-result-begin ") => break l,
            Some(_) => {}
        }
    };
    let size: usize = field(header, "size")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ResultError::Corrupted(format!("bad header {header:?}")))?;
    let sum =
        field(header, "sha256").ok_or_else(|| ResultError::Corrupted(format!("bad header {header:?}")))?;
    let mut encoded = String::new();
    let mut ended = false;
    for l in lines {
        if l == "::kpo-result-end" {
            ended = true;
            break;
        }
        encoded.push_str(l.trim_end());
    }
    if !ended {
        return Err(ResultError::Unterminated(encoded.len()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|e| ResultError::Corrupted(format!("invalid base64: {e}")))?;
    if bytes.len() != size {
        return Err(ResultError::Corrupted(format!(
            "{} bytes instead of {size}",
            bytes.len()
        )));
    }
    let actual = format!("{:x}", Sha256::digest(&bytes));
    if actual != sum {
        return Err(ResultError::Corrupted(format!(
            "SHA-256 {actual} instead of {sum}"
        )));
    }
    Ok(Some(bytes))
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
}

/// A result document: as parsed, and exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: serde_json::Value,
    pub bytes: Vec<u8>,
}

/// The result as JSON, or why not; `None` when there is none and none is required.
pub fn document(bytes: Option<Vec<u8>>, spec: &ResultSpec) -> Result<Option<Document>, ResultError> {
    match bytes {
        None if spec.required => Err(ResultError::Missing {
            path: spec.path.clone(),
        }),
        None => Ok(None),
        Some(bytes) => match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(Document { value, bytes })),
            Err(e) => Err(ResultError::NotJson(e.to_string())),
        },
    }
}

/// The most `::kpo-output` names a run keeps: a task printing a name per line for an hour must
/// not grow kpo's memory, its report or its journal without end.
pub const MAX_OUTPUTS: usize = 100;
/// The longest `::kpo-output` value kpo keeps, in bytes; a longer one is ignored.
pub const MAX_OUTPUT_VALUE: usize = 4096;

/// Collects `::kpo-output name=value` lines; the last value of a name wins. At most
/// [`MAX_OUTPUTS`] names and values of at most [`MAX_OUTPUT_VALUE`] bytes are kept; the lines
/// beyond are counted.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    pub values: BTreeMap<String, String>,
    /// `::kpo-output` lines not kept: a new name past [`MAX_OUTPUTS`], or a value too long.
    pub ignored: u64,
}

impl Outputs {
    pub fn read(&mut self, line: &str) {
        let Some((name, value)) = line
            .strip_prefix(OUTPUT_PREFIX)
            .and_then(|rest| rest.split_once('='))
        else {
            return;
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return;
        }
        let room = self.values.len() < MAX_OUTPUTS || self.values.contains_key(name);
        if !room || value.len() > MAX_OUTPUT_VALUE || name.len() > MAX_OUTPUT_VALUE {
            self.ignored += 1;
            return;
        }
        self.values.insert(name.to_owned(), value.to_owned());
    }
}

/// The frame the sidecar prints for `bytes` (what `SIDECAR_SCRIPT` does), for the simulated
/// cluster and tests.
pub fn frame(bytes: &[u8]) -> Vec<String> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut lines = vec![format!(
        "::kpo-result-begin size={} sha256={:x}",
        bytes.len(),
        Sha256::digest(bytes)
    )];
    lines.extend(
        encoded
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned()),
    );
    lines.push("::kpo-result-end".into());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_detected() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let log = format!("noise\n{}\n", frame(&data).join("\n"));
        assert_eq!(from_frame(&log, 1).unwrap().unwrap(), data);

        let mut lines = frame(&data);
        lines.pop();
        assert!(matches!(
            from_frame(&lines.join("\n"), 1),
            Err(ResultError::Unterminated(_))
        ));

        let mut lines = frame(&data);
        // Same length, one character changed: still valid base64, different bytes.
        let swap = if lines[3].starts_with('C') { "D" } else { "C" };
        lines[3].replace_range(0..1, swap);
        assert!(matches!(
            from_frame(&lines.join("\n"), 1),
            Err(ResultError::Corrupted(_))
        ));

        let mut lines = frame(&data);
        lines.remove(2);
        assert!(matches!(
            from_frame(&lines.join("\n"), 1),
            Err(ResultError::Corrupted(_))
        ));

        assert_eq!(from_frame("::kpo-result-none\n", 1), Ok(None));
        assert_eq!(from_frame("nothing", 1), Err(ResultError::NoFrame));
    }

    #[test]
    fn termination_messages() {
        assert_eq!(from_message(Some("{}")), Ok(Some(b"{}".to_vec())));
        assert_eq!(from_message(None), Ok(None));
        assert!(matches!(
            from_message(Some(&"a".repeat(4096))),
            Err(ResultError::TooLargeForMessage { size: 4096 })
        ));
    }

    #[test]
    fn outputs_from_log_lines() {
        let mut o = Outputs::default();
        for l in [
            "::kpo-output rows=42",
            "::kpo-output url=http://x/?a=b",
            "::kpo-output rows=43",
            "::kpo-output bad name=1",
            "plain",
        ] {
            o.read(l);
        }
        assert_eq!(
            o.values,
            BTreeMap::from([
                ("rows".into(), "43".into()),
                ("url".into(), "http://x/?a=b".into())
            ])
        );
    }

    #[test]
    fn outputs_are_bounded_in_number_and_size() {
        let mut o = Outputs::default();
        for i in 0..1000 {
            o.read(&format!("::kpo-output n{i}={i}"));
        }
        o.read(&format!("::kpo-output n0={}", "x".repeat(MAX_OUTPUT_VALUE + 1)));
        o.read("::kpo-output n1=changed");
        assert_eq!(o.values.len(), MAX_OUTPUTS);
        assert_eq!(o.values["n1"], "changed");
        assert_eq!(o.values["n0"], "0");
        assert_eq!(o.ignored, 901);
    }

    #[test]
    fn documents() {
        let spec = ResultSpec {
            required: true,
            ..Default::default()
        };
        assert!(matches!(document(None, &spec), Err(ResultError::Missing { .. })));
        assert!(matches!(
            document(Some(b"{oops".to_vec()), &spec),
            Err(ResultError::NotJson(_))
        ));
        assert_eq!(
            document(Some(b"{\"a\":1}".to_vec()), &spec)
                .unwrap()
                .unwrap()
                .value["a"],
            1
        );
        assert_eq!(folder("/kpo/result.json"), "/kpo");
        assert_eq!(folder("/result.json"), "/");
    }
}
