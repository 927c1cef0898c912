//! A picture of a batch (or of one run): one self-contained HTML page — no script, no network,
//! no font or stylesheet from elsewhere — with a bar per task and attempt, split into what the
//! time went to (waiting for a slot, pending, running, a retry's backoff) and coloured by how the
//! attempt ended, and the summary beside it. Drawn from run reports, so `kpo run --timeline` and
//! `kpo timeline RUN_ID` (from the journal, afterwards) draw the same.

use std::fmt::Write;

use jiff::Timestamp;

use crate::report::RunReport;
use crate::vocabulary::{AttemptReport, Outcome};

/// What a stretch of an attempt's time went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Before its first pod: waiting for a slot of the batch (and its plugins).
    Waiting,
    /// Between attempts: the retry's backoff, and a slot again.
    Backoff,
    /// Its pod submitted, not yet running (scheduling, pulling the image).
    Pending,
    /// Its main container running, to the attempt's end.
    Running,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Waiting => "waiting",
            Kind::Backoff => "backoff",
            Kind::Pending => "pending",
            Kind::Running => "running",
        }
    }
}

/// One stretch of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub kind: Kind,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// One attempt of a task: its stretches, how it ended, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub task: String,
    pub attempt: u32,
    pub segments: Vec<Segment>,
    pub outcome: Outcome,
    pub message: String,
}

/// The bars of `reports`, in their order; the batch began at the earliest start among them.
pub fn bars(reports: &[RunReport]) -> Vec<Bar> {
    let Some(start) = reports.iter().map(|r| r.started_at).min() else {
        return Vec::new();
    };
    let mut bars = Vec::new();
    for report in reports {
        let attempts = attempts_of(report);
        let mut before = start;
        for (i, a) in attempts.iter().enumerate() {
            let end = a.ended_at.unwrap_or(report.finished_at);
            let submitted = a.submitted_at.unwrap_or(end);
            let running = a.running_at.unwrap_or(end).max(submitted);
            let first = if i == 0 { Kind::Waiting } else { Kind::Backoff };
            let segments = [
                (first, before, submitted),
                (Kind::Pending, submitted, running),
                (Kind::Running, running, end),
            ]
            .into_iter()
            .filter(|(_, from, to)| to > from)
            .map(|(kind, from, to)| Segment { kind, from, to })
            .collect();
            bars.push(Bar {
                task: report.task.clone(),
                attempt: a.attempt,
                segments,
                outcome: a.outcome,
                message: a.message.clone(),
            });
            before = end;
        }
    }
    bars
}

/// The report's attempts; a report without them (one attempt, or an older kpo's) as one, timed
/// from its own timeline.
fn attempts_of(report: &RunReport) -> Vec<AttemptReport> {
    if !report.attempts.is_empty() {
        return report.attempts.clone();
    }
    let at = |phase: &str| report.timeline.iter().find(|e| e.phase == phase).map(|e| e.at);
    vec![AttemptReport {
        attempt: report.attempt,
        pod: report.pod.clone(),
        outcome: report.outcome,
        exit_code: report.exit_code,
        message: report.message.clone(),
        class: None,
        retried: false,
        submitted_at: at("Submitted"),
        running_at: at("Running"),
        ended_at: Some(report.finished_at),
    }]
}

const WIDTH: f64 = 600.0;
const LABEL: f64 = 200.0;
const ROW: f64 = 28.0;
/// How much of a reason a bar shows (the summary has it whole, escaped).
const REASON_CHARS: usize = 120;

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#212121}\
h1{font-size:18px}\
.layout{display:flex;gap:32px;align-items:flex-start;flex-wrap:wrap}\
svg text{font:12px system-ui,sans-serif}\
.seg.waiting{fill:#bdbdbd}.seg.backoff{fill:#ffb74d}.seg.pending{fill:#64b5f6}\
.seg.running.succeeded{fill:#43a047}.seg.running.failed{fill:#e53935}\
.seg.running.timed_out{fill:#8e24aa}.seg.running.never_started{fill:#6d4c41}\
.seg.running.rejected,.seg.running.refused,.seg.running.interrupted,.seg.running.error{fill:#546e7a}\
.reason{fill:#b71c1c}.axis{fill:#757575}\
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #e0e0e0;text-align:left}\
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}";

/// The page: a title, the bars and a legend, and the summary table — tasks in the order they
/// started (then by name), however `reports` came.
pub fn page(title: &str, reports: &[RunReport]) -> String {
    let mut reports = reports.to_vec();
    reports.sort_by(|a, b| (a.started_at, &a.task).cmp(&(b.started_at, &b.task)));
    let reports = reports.as_slice();
    let bars = bars(reports);
    let start = bars.iter().flat_map(|b| b.segments.first()).map(|s| s.from).min();
    let end = bars.iter().flat_map(|b| b.segments.last()).map(|s| s.to).max();
    let span = match (start, end) {
        (Some(s), Some(e)) => (e.as_millisecond() - s.as_millisecond()).max(1) as f64,
        _ => 1.0,
    };
    let x = |t: Timestamp| {
        let ms = (t.as_millisecond() - start.map_or(0, |s| s.as_millisecond())) as f64;
        LABEL + ms / span * WIDTH
    };
    let height = ROW * bars.len() as f64 + 30.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\">",
        LABEL + WIDTH + 260.0
    );
    for (row, bar) in bars.iter().enumerate() {
        let y = ROW * row as f64;
        let label = match bar.attempt {
            1 => bar.task.clone(),
            n => format!("{} #{n}", bar.task),
        };
        let _ = write!(
            svg,
            "<g class=\"bar\" data-task=\"{}\" data-attempt=\"{}\" data-outcome=\"{}\"><text x=\"0\" y=\"{}\">{}</text>",
            escape(&bar.task),
            bar.attempt,
            bar.outcome.name(),
            y + 17.0,
            escape(&label)
        );
        for seg in &bar.segments {
            let outcome = match seg.kind {
                Kind::Running => format!(" {}", bar.outcome.name()),
                _ => String::new(),
            };
            let seconds = (seg.to.as_millisecond() - seg.from.as_millisecond()) as f64 / 1000.0;
            let _ = write!(
                svg,
                "<rect class=\"seg {}{outcome}\" data-kind=\"{}\" x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"18\"><title>{} {:.1}s</title></rect>",
                seg.kind.name(),
                seg.kind.name(),
                x(seg.from),
                y + 4.0,
                (x(seg.to) - x(seg.from)).max(1.0),
                seg.kind.name(),
                seconds
            );
        }
        if bar.outcome != Outcome::Succeeded {
            let reason: String = bar.message.chars().take(REASON_CHARS).collect();
            let last = bar.segments.last().map_or(LABEL, |s| x(s.to));
            let _ = write!(
                svg,
                "<text class=\"reason\" x=\"{:.1}\" y=\"{}\">{}</text>",
                last + 6.0,
                y + 17.0,
                escape(&reason)
            );
        }
        svg.push_str("</g>");
    }
    let _ = write!(
        svg,
        "<text class=\"axis\" x=\"{LABEL}\" y=\"{}\">0 s</text><text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.1} s</text></svg>",
        height - 6.0,
        LABEL + WIDTH,
        height - 6.0,
        span / 1000.0
    );
    let mut rows = String::new();
    for r in reports {
        let seconds = (r.finished_at.as_millisecond() - r.started_at.as_millisecond()) as f64 / 1000.0;
        let _ = write!(
            rows,
            "<tr class=\"task\" data-task=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{seconds:.1} s</td><td>{}</td><td>{}</td></tr>",
            escape(&r.task),
            escape(&r.task),
            r.outcome.name(),
            r.exit_code,
            r.attempts.len().max(1),
            escape(&r.message)
        );
    }
    let legend: String = [
        ("waiting for a slot", "#bdbdbd"),
        ("pending", "#64b5f6"),
        ("running: succeeded", "#43a047"),
        ("running: failed", "#e53935"),
        ("retry backoff", "#ffb74d"),
    ]
    .iter()
    .map(|(what, colour)| format!("<span style=\"background:{colour}\"></span>{what}"))
    .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head>\
<body><h1>{title}</h1><p class=\"legend\">{legend}</p><div class=\"layout\"><div class=\"timeline\">{svg}</div>\
<table class=\"summary\"><thead><tr><th>task</th><th>outcome</th><th>exit</th><th>duration</th><th>attempts</th><th>why</th></tr></thead>\
<tbody>{rows}</tbody></table></div></body></html>\n",
        title = escape(title)
    )
}

/// Text made safe inside HTML and its attributes: what a pod or plugin said cannot become markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TimelineEntry;
    use crate::task::OnFinish;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap()
    }

    fn entry(phase: &str, ms: i64) -> TimelineEntry {
        TimelineEntry {
            at: at(ms),
            phase: phase.into(),
            detail: None,
        }
    }

    #[test]
    fn a_late_task_waits_and_a_retried_one_backs_off() {
        let mut first = RunReport::new("first", "r1", "ns", "p", 1, OnFinish::Delete);
        first.started_at = at(0);
        first.finished_at = at(3000);
        first.outcome = Outcome::Succeeded;
        first.timeline = vec![entry("Submitted", 100), entry("Running", 500)];
        let mut second = RunReport::new("second", "r2", "ns", "p", 2, OnFinish::Delete);
        second.started_at = at(1000);
        second.finished_at = at(9000);
        second.outcome = Outcome::Failed;
        let attempt = |n: u32, times: [i64; 3]| AttemptReport {
            attempt: n,
            pod: String::new(),
            outcome: Outcome::Failed,
            exit_code: 3,
            message: "base exited 3 <Error>".into(),
            class: None,
            retried: n == 1,
            submitted_at: Some(at(times[0])),
            running_at: Some(at(times[1])),
            ended_at: Some(at(times[2])),
        };
        second.attempts = vec![attempt(1, [1100, 1500, 4000]), attempt(2, [6000, 6200, 9000])];
        let bars = bars(&[first, second.clone()]);
        let kinds = |b: &Bar| b.segments.iter().map(|s| s.kind).collect::<Vec<_>>();
        assert_eq!(kinds(&bars[0]), [Kind::Waiting, Kind::Pending, Kind::Running]);
        assert_eq!(
            bars[1].segments[0],
            Segment {
                kind: Kind::Waiting,
                from: at(0),
                to: at(1100)
            }
        );
        assert_eq!(
            bars[2].segments[0],
            Segment {
                kind: Kind::Backoff,
                from: at(4000),
                to: at(6000)
            }
        );
        let html = page("batch <b>", &[second]);
        assert!(html.contains("batch &lt;b&gt;") && html.contains("base exited 3 &lt;Error&gt;"));
        // Self-contained: no script, nothing fetched (the SVG namespace is the only address).
        assert!(!html.contains("<script"));
        assert_eq!(html.matches("http").count(), 1);
    }

    #[test]
    fn escape_leaves_no_markup_and_no_control_character() {
        assert_eq!(
            escape("<a href='x'>&\"\u{1b}[31m"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;\u{fffd}[31m"
        );
    }
}
