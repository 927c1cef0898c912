//! The simulated container runtime: plays a container's script into its log file, writes its
//! files and termination message, stops it on SIGTERM or SIGKILL.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ContainerState, ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::node::Node;
use super::script::{Script, filler_document, latin1, long_line};

/// Whether a container using `memory` exceeds its memory limit (none: it may use any).
fn over_its_limit(c: &Container, memory: Option<&str>) -> bool {
    let limit = c
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"));
    match (memory, limit) {
        (Some(used), Some(limit)) => {
            crate::names::quantity_value(used) > crate::names::quantity_value(&limit.0)
        }
        _ => false,
    }
}

impl Node {
    /// Plays the container's script; returns its exit code.
    pub(super) async fn run_container(&self, pod: &Pod, c: &Container, native_sidecar: bool) -> i32 {
        let script = Script::of(pod, &c.name);
        if c.name == crate::result::SIDECAR && env_of(c, "KPO_RESULT_PATH").is_some() {
            return self.result_sidecar(c).await;
        }
        let started = tokio::time::Instant::now();
        let lagging = self.faults.take_runtime_lag();
        let losing = self.faults.take_lost_log_end();
        let mut unstored = Vec::new();
        let mut write = |bytes: &[u8]| {
            if lagging || losing {
                unstored.extend_from_slice(bytes);
            } else {
                self.store
                    .append_log(&self.uid, &c.name, bytes, self.faults.log_limits());
            }
        };
        let pattern = script.log_line.as_deref().unwrap_or("line {n}");
        let generated = (1..=script.log_count).map(|i| pattern.replace("{n}", &i.to_string()));
        for line in script.logs.iter().cloned().chain(generated) {
            write(format!("{line}\n").as_bytes());
            if script.log_interval_ms > 0 {
                tokio::time::sleep(Duration::from_millis(script.log_interval_ms)).await;
            }
        }
        if let Some(size) = script.long_line {
            write(&long_line(size));
        }
        if let Some(text) = &script.output {
            write(&latin1(text));
        }
        if let Some(key) = &script.until_annotated {
            let annotated = |pod: Option<&Pod>| {
                pod.is_none_or(|p| {
                    p.metadata
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key(key))
                })
                .then_some(())
            };
            self.until(annotated).await;
        }
        match script.duration_ms {
            Some(ms) => tokio::time::sleep_until(started + Duration::from_millis(ms)).await,
            None if native_sidecar => std::future::pending().await,
            None => {}
        }
        let (code, reason) = match (
            script.oom || over_its_limit(c, script.memory.as_deref()),
            script.exit_code,
        ) {
            (true, _) => (137, "OOMKilled"),
            (false, 0) => (0, "Completed"),
            (false, n) => (n, "Error"),
        };
        let written = script.write_path.as_ref().map(|path| {
            let content = match (&script.write, script.write_size) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, Some(size)) => filler_document(size),
                (None, None) => Vec::new(),
            };
            self.store
                .lock()
                .files
                .insert((self.uid.clone(), path.clone()), content.clone());
            (path, content)
        });
        // The kubelet reads the termination message from the file, keeping at most 4 KiB.
        let from_file = written
            .filter(|(path, _)| c.termination_message_path.as_ref() == Some(path))
            .map(|(_, content)| {
                let kept = &content[..content.len().min(crate::result::TERMINATION_MESSAGE_LIMIT)];
                String::from_utf8_lossy(kept).into_owned()
            });
        let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") && code != 0;
        let message = script
            .termination_message
            .clone()
            .or(from_file)
            .or_else(|| fallback.then(|| self.log_tail(&c.name)));
        if losing {
            // Two thirds stored, cut in the middle of a line; the rest never.
            let mut kept = unstored.len() * 2 / 3;
            while kept > 1 && unstored[kept - 1] == b'\n' {
                kept -= 1;
            }
            unstored.truncate(kept);
            self.store
                .append_log(&self.uid, &c.name, &unstored, self.faults.log_limits());
            unstored.clear();
        }
        // A lagging runtime reports the exit while it still copies the last 32 KiB.
        let limits = self.faults.log_limits();
        let (stored, copying) = unstored.split_at(unstored.len().saturating_sub(32 * 1024));
        self.store.append_log(&self.uid, &c.name, stored, limits);
        self.terminate(&c.name, code, reason, message);
        if !copying.is_empty() {
            tokio::time::sleep(Duration::from_millis(80)).await;
            self.store.append_log(&self.uid, &c.name, copying, limits);
        }
        if lagging {
            self.store
                .finish_log(&self.uid, &c.name, self.faults.log_limits());
        }
        code
    }

    /// Plays kpo's result sidecar (`crate::result`'s shell script): waits for the result file in
    /// the shared folder, prints it framed, exits 0.
    async fn result_sidecar(&self, c: &Container) -> i32 {
        let path = env_of(c, "KPO_RESULT_PATH").unwrap_or_default();
        let max: usize = env_of(c, "KPO_RESULT_MAX")
            .and_then(|m| m.parse().ok())
            .unwrap_or(usize::MAX);
        let timeout: u64 = env_of(c, "KPO_RESULT_TIMEOUT")
            .and_then(|t| t.parse().ok())
            .unwrap_or(86_400);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let content = loop {
            if let Some(bytes) = self
                .store
                .lock()
                .files
                .get(&(self.uid.clone(), path.clone()))
                .cloned()
            {
                break Some(bytes);
            }
            if tokio::time::Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut lines = match content {
            None => vec!["::kpo-result-none".to_owned()],
            Some(bytes) if bytes.len() > max => vec![format!("::kpo-result-too-large size={}", bytes.len())],
            Some(bytes) => crate::result::frame(&bytes),
        };
        if self.faults.take_result_cut() {
            // A log cut mid-frame: the last data line and the end marker never arrive.
            lines.truncate(lines.len().saturating_sub(2));
        }
        let late = if self.faults.take_result_lag() {
            lines.split_off(lines.len().saturating_sub(2))
        } else {
            Vec::new()
        };
        let limits = self.faults.log_limits();
        for line in lines {
            self.store
                .append_log(&self.uid, &c.name, format!("{line}\n").as_bytes(), limits);
        }
        self.terminate(&c.name, 0, "Completed", None);
        if !late.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for line in late {
                self.store
                    .append_log(&self.uid, &c.name, format!("{line}\n").as_bytes(), limits);
            }
        }
        0
    }

    /// The kubelet's fallback termination message: the tail of the container's log.
    fn log_tail(&self, container: &str) -> String {
        let inner = self.store.lock();
        let log: Vec<u8> = inner
            .logs
            .get(&(self.uid.clone(), container.to_owned()))
            .map(|l| l.records.iter().flat_map(|r| r.bytes.iter().copied()).collect())
            .unwrap_or_default();
        fallback_message(&log)
    }

    pub(super) fn terminate(&self, container: &str, code: i32, reason: &str, message: Option<String>) {
        if self.removes_containers {
            let key = (self.uid.clone(), container.to_owned());
            self.store.lock().removed.insert(key);
        }
        self.store
            .finish_log(&self.uid, container, self.faults.log_limits());
        let started_at = self
            .store
            .get_pod(&self.ns, &self.name, &self.uid)
            .and_then(|p| crate::status::of(&p, container).and_then(|s| s.state.clone()))
            .and_then(|s| s.running)
            .and_then(|r| r.started_at);
        self.set_state(
            container,
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(reason.into()),
                    message,
                    started_at,
                    finished_at: Some(Time(Timestamp::now())),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
    }

    /// Stops every running container as a deletion or deadline does: SIGTERM, then SIGKILL
    /// after the grace period for those that ignore it.
    pub(super) async fn kill(&self, created: &Pod, grace: i64) {
        let Some(pod) = self.store.get_pod(&self.ns, &self.name, &self.uid) else {
            return;
        };
        let running: Vec<String> = crate::status::all(&pod)
            .filter(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
            .map(|s| s.name.clone())
            .collect();
        let stubborn = running.iter().any(|c| Script::of(created, c).ignore_sigterm);
        for c in &running {
            self.event(&pod, "Normal", "Killing", &format!("Stopping container {c}"));
        }
        // As a v1.20 kubelet does, a pod none of whose containers ever started (an image that
        // cannot be pulled, a missing Secret) waits out its whole grace period, its sandbox
        // running, before it is removed.
        let mut statuses = crate::status::all(&pod).peekable();
        let never_started = statuses.peek().is_some()
            && statuses.all(|s| s.state.as_ref().is_some_and(|st| st.waiting.is_some()));
        let wait = if stubborn || never_started {
            Duration::from_secs(grace.max(0) as u64)
        } else {
            Duration::from_millis(20)
        };
        tokio::time::sleep(wait).await;
        for c in &running {
            let code = if Script::of(created, c).ignore_sigterm {
                137
            } else {
                143
            };
            self.terminate(c, code, "Error", None);
        }
        // A container still waiting for its image will never start.
        for s in crate::status::all(&pod).filter(|s| s.state.as_ref().is_some_and(|st| st.waiting.is_some()))
        {
            self.store
                .finish_log(&self.uid, &s.name, self.faults.log_limits());
        }
    }
}

fn env_of(c: &Container, name: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

/// The last 80 lines of a log, at most 2 KiB of them, cut where a character starts.
fn fallback_message(log: &[u8]) -> String {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    let cut = tail.len().saturating_sub(2048);
    let cut = (cut..=tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[cut..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_message_never_cuts_a_character() {
        // 2049 bytes: the 2 KiB cut falls inside the first two-byte character.
        let log = format!("{}a", "é".repeat(1024)).into_bytes();
        let message = fallback_message(&log);
        assert_eq!(message, format!("{}a", "é".repeat(1023)));
        let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let message = fallback_message(lines.as_bytes());
        assert!(
            message.starts_with("line 20\n") && message.ends_with("line 99"),
            "{message}"
        );
    }
}
