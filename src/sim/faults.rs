//! Faults the simulated API server can inject, so tests can prove kpo survives them.
//!
//! Each fault has a budget (how many times it fires) so a test can cut a stream a few times and
//! still expect the run to finish.

use std::sync::Mutex;
use std::time::Duration;

/// Which requests a failure applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Any,
    Create,
    Watch,
    Logs,
    Events,
}

#[derive(Debug, Default)]
struct State {
    drop_watch: Option<(usize, usize)>,
    drop_logs: Option<(usize, usize)>,
    cut_log_reads: Option<(usize, usize)>,
    stall_logs: usize,
    gone_on_watch: usize,
    failures: Vec<(Target, u16, usize)>,
    latency: Duration,
    down_until: Option<std::time::Instant>,
    partitioned: Option<(String, std::time::Instant)>,
    cut_results: usize,
    lag_results: usize,
    evictions: usize,
    preemptions: usize,
    token: Option<String>,
    log_limits: super::logfile::Limits,
    log_stream_rate: Option<usize>,
    log_read_rate: Option<usize>,
    whole_line_prefixes: bool,
    runtime_lags: usize,
    lost_log_ends: usize,
    container_removals: usize,
}

/// Handle to the fault injector of a [`SimCluster`](super::SimCluster).
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
    /// Woken when an outage starts, so open streams end at once.
    outage: tokio::sync::Notify,
}

impl Faults {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Closes each watch stream after `events` object events, `times` times in all.
    pub fn drop_watches(&self, events: usize, times: usize) {
        self.with(|s| s.drop_watch = Some((events, times)));
    }

    /// Rotates each container's log file once it holds `bytes` (the kubelet's
    /// `containerLogMaxSize`); log requests then read only the new file, as the kubelet's do.
    pub fn rotate_logs_at(&self, bytes: usize) {
        self.with(|s| s.log_limits.rotate_at = Some(bytes));
    }

    /// containerd cuts the line it is copying when a rotated log is reopened: the line's first
    /// byte ends the old file as a partial record, its rest begins the new file a moment later.
    pub fn split_lines_at_rotation(&self) {
        self.with(|s| s.log_limits.split_at_rotation = true);
    }

    /// The kubelet checks log sizes only every `interval` (its `containerLogMonitorInterval`, 10 s
    /// on v1.20), so a file is rotated at most that often.
    pub fn check_log_sizes_every(&self, interval: Duration) {
        self.with(|s| s.log_limits.rotate_every = Some(interval));
    }

    /// Followed log streams send at most `bytes_per_second`, as a kubelet under load does: its
    /// follower falls behind the container, and may be more than a file behind when the log
    /// rotates.
    pub fn slow_log_streams(&self, bytes_per_second: usize) {
        self.with(|s| s.log_stream_rate = Some(bytes_per_second));
    }

    /// Plain (not followed) log reads send at most `bytes_per_second` too: reading the rest of
    /// a long log after its container's exit takes a while.
    pub fn slow_log_reads(&self, bytes_per_second: usize) {
        self.with(|s| s.log_read_rate = Some(bytes_per_second));
    }

    pub(super) fn log_read_rate(&self) -> Option<usize> {
        self.with(|s| s.log_read_rate)
    }

    pub(super) fn log_stream_rate(&self) -> Option<usize> {
        self.with(|s| s.log_stream_rate)
    }

    /// Timestamps only the first record of a line split into partial records, as newer kubelets
    /// do; by default every record gets one, as a v1.20 kubelet does.
    pub fn prefix_whole_lines_only(&self) {
        self.with(|s| s.whole_line_prefixes = true);
    }

    /// For the next `times` containers, the runtime reports the exit while it still copies the
    /// last 32 KiB of output, which it stores 80 ms after the report. Runtimes store output
    /// before they report the exit (containerd, dockershim, CRI-O); this is the window in which
    /// containerd writes the last of a container's output, widened. A log whose last line is
    /// longer than a record then visibly ends in a partial record at the report; one of short
    /// lines would look finished to anyone who reads it, the kubelet's own follower included.
    pub fn lag_runtime(&self, times: usize) {
        self.with(|s| s.runtime_lags = times);
    }

    /// For the next `times` containers, the runtime stops storing output partway through a line
    /// — the container still exits 0 — as containerd 1.6 was seen doing with fast output under load.
    pub fn lose_log_ends(&self, times: usize) {
        self.with(|s| s.lost_log_ends = times);
    }

    pub(super) fn take_lost_log_end(&self) -> bool {
        self.with(|s| take_one(&mut s.lost_log_ends))
    }

    /// For the next `times` pods, the node removes containers as soon as they exit: their log
    /// requests then get `200` with the kubelet's error text instead of the log.
    pub fn remove_containers(&self, times: usize) {
        self.with(|s| s.container_removals = times);
    }

    pub(super) fn log_limits(&self) -> super::logfile::Limits {
        self.with(|s| s.log_limits)
    }

    pub(super) fn whole_line_prefixes(&self) -> bool {
        self.with(|s| s.whole_line_prefixes)
    }

    pub(super) fn take_runtime_lag(&self) -> bool {
        self.with(|s| take_one(&mut s.runtime_lags))
    }

    pub(super) fn take_container_removal(&self) -> bool {
        self.with(|s| take_one(&mut s.container_removals))
    }

    /// Closes each followed log stream after `lines` lines, `times` times in all.
    pub fn drop_logs(&self, lines: usize, times: usize) {
        self.with(|s| s.drop_logs = Some((lines, times)));
    }

    /// Ends each plain (not followed) log read cleanly after `lines` lines, `times` times in all,
    /// as an answer cut short on its way through an API server looks.
    pub fn cut_log_reads(&self, lines: usize, times: usize) {
        self.with(|s| s.cut_log_reads = Some((lines, times)));
    }

    /// The next `times` followed log streams never end, even after their container has exited.
    pub fn stall_logs(&self, times: usize) {
        self.with(|s| s.stall_logs = times);
    }

    /// The next `times` watches that resume from a resource version answer 410 Gone.
    pub fn expire_watches(&self, times: usize) {
        self.with(|s| s.gone_on_watch = times);
    }

    /// The next `times` requests of `target` answer with HTTP `status` (500, 429, ...).
    pub fn fail(&self, target: Target, status: u16, times: usize) {
        self.with(|s| s.failures.push((target, status, times)));
    }

    /// The next `times` pods are evicted shortly after they start running, as a kubelet under
    /// memory pressure does.
    pub fn evict(&self, times: usize) {
        self.with(|s| s.evictions = times);
    }

    pub(super) fn take_eviction(&self) -> bool {
        self.with(|s| take_one(&mut s.evictions))
    }

    /// The next `times` pods are preempted shortly after they start running: the scheduler
    /// marks them with a DisruptionTarget condition and deletes them for a higher-priority pod.
    pub fn preempt(&self, times: usize) {
        self.with(|s| s.preemptions = times);
    }

    pub(super) fn take_preemption(&self) -> bool {
        self.with(|s| take_one(&mut s.preemptions))
    }

    /// The next `times` result sidecars lose the end of their frame.
    pub fn cut_results(&self, times: usize) {
        self.with(|s| s.cut_results = times);
    }

    pub(super) fn take_result_cut(&self) -> bool {
        self.with(|s| take_one(&mut s.cut_results))
    }

    /// The next `times` result sidecars are reported ended a second before the end of their
    /// frame reaches the log (as once seen in CI against containerd 1.6).
    pub fn lag_results(&self, times: usize) {
        self.with(|s| s.lag_results = times);
    }

    pub(super) fn take_result_lag(&self) -> bool {
        self.with(|s| take_one(&mut s.lag_results))
    }

    /// Makes the API server unavailable for `duration`: its port refuses connections, open
    /// watch and log streams end, and a request on a connection that was already open is
    /// answered 503 and the connection closed.
    pub fn outage(&self, duration: Duration) {
        self.with(|s| s.down_until = Some(std::time::Instant::now() + duration));
        self.outage.notify_waiters();
    }

    /// Cuts the client with bearer token `token` off for `duration`, as a network partition
    /// between it and the API server does: its requests are answered 503 and the connection
    /// closed, while every other client goes on (another kpo can take a Lease over meanwhile).
    pub fn partition(&self, token: &str, duration: Duration) {
        let until = std::time::Instant::now() + duration;
        self.with(|s| s.partitioned = Some((token.to_owned(), until)));
    }

    /// Whether a request with this `Authorization` header is cut off by a partition now.
    pub(super) fn cut_off(&self, authorization: Option<&str>) -> bool {
        self.with(|s| {
            s.partitioned.as_ref().is_some_and(|(token, until)| {
                std::time::Instant::now() < *until
                    && authorization == Some(format!("Bearer {token}").as_str())
            })
        })
    }

    pub(super) fn is_down(&self) -> bool {
        self.down_until().is_some()
    }

    /// When the current outage ends, if one is under way.
    pub(super) fn down_until(&self) -> Option<std::time::Instant> {
        self.with(|s| s.down_until.filter(|t| std::time::Instant::now() < *t))
    }

    /// Resolves when an outage starts.
    pub(super) async fn outage_started(&self) {
        self.outage.notified().await;
    }

    /// Requires `Authorization: Bearer <token>` on every request from now on (`None`: anyone);
    /// other credentials get 401, as expired ones do.
    pub fn require_token(&self, token: Option<&str>) {
        self.with(|s| s.token = token.map(String::from));
    }

    pub(super) fn accepts(&self, authorization: Option<&str>) -> bool {
        self.with(|s| {
            s.token
                .as_ref()
                .is_none_or(|t| authorization == Some(format!("Bearer {t}").as_str()))
        })
    }

    /// Delays every response by `latency`.
    pub fn latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    pub(super) fn current_latency(&self) -> Duration {
        self.with(|s| s.latency)
    }

    /// Takes one watch-drop from the budget, returning after how many events to drop.
    pub(super) fn take_watch_drop(&self) -> Option<usize> {
        self.with(|s| take(&mut s.drop_watch))
    }

    pub(super) fn take_log_drop(&self) -> Option<usize> {
        self.with(|s| take(&mut s.drop_logs))
    }

    pub(super) fn take_log_read_cut(&self) -> Option<usize> {
        self.with(|s| take(&mut s.cut_log_reads))
    }

    pub(super) fn take_log_stall(&self) -> bool {
        self.with(|s| take_one(&mut s.stall_logs))
    }

    pub(super) fn take_gone(&self) -> bool {
        self.with(|s| take_one(&mut s.gone_on_watch))
    }

    pub(super) fn take_failure(&self, target: Target) -> Option<u16> {
        self.with(|s| {
            let hit = s
                .failures
                .iter_mut()
                .find(|(t, _, n)| *n > 0 && (*t == Target::Any || *t == target))?;
            hit.2 -= 1;
            Some(hit.1)
        })
    }
}

fn take(slot: &mut Option<(usize, usize)>) -> Option<usize> {
    let (after, times) = slot.as_mut()?;
    if *times == 0 {
        return None;
    }
    *times -= 1;
    Some(*after)
}

fn take_one(n: &mut usize) -> bool {
    let hit = *n > 0;
    *n = n.saturating_sub(1);
    hit
}
