//! A run's pauses: while its claim cannot be renewed (the API server or the network is away),
//! kpo acts on nothing; the user sees when that starts and ends, and the run's timeline keeps it.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::{Observer, human};
use crate::claim::{Standing, Warrant};
use crate::report::TimelineEntry;

/// Shows the claim's pauses as they happen and keeps them for the timeline.
pub(super) struct Pauses {
    seen: Arc<Mutex<Vec<TimelineEntry>>>,
    showing: Option<tokio::task::JoinHandle<()>>,
}

impl Pauses {
    pub(super) fn watch(warrant: &Warrant, observer: Arc<dyn Observer>) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let showing = warrant.changes().map(|mut changes| {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut paused_at: Option<Timestamp> = None;
                loop {
                    let entry = {
                        let now = changes.borrow_and_update();
                        match (&*now, paused_at) {
                            (Standing::Paused { since, why, .. }, None) => {
                                paused_at = Some(*since);
                                Some(entry(
                                    *since,
                                    "Paused",
                                    format!(
                                        "{why}; acting on nothing until the API server answers, still reading"
                                    ),
                                ))
                            }
                            (Standing::Held { .. }, Some(since)) => {
                                paused_at = None;
                                // To the second: the pause's length, not the clock's precision.
                                let lasted = Timestamp::now().duration_since(since).unsigned_abs();
                                let lasted =
                                    std::time::Duration::from_secs(lasted.as_secs_f64().round() as u64);
                                Some(entry(
                                    Timestamp::now(),
                                    "Resumed",
                                    format!("the claim renewed after a pause of {}", human(lasted)),
                                ))
                            }
                            _ => None,
                        }
                    };
                    if let Some(entry) = entry {
                        observer.status(&entry);
                        seen.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
                    }
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            })
        });
        Self { seen, showing }
    }

    /// Stops watching and puts the pauses seen into `timeline`, in order of time.
    pub(super) fn into_timeline(self, timeline: &mut Vec<TimelineEntry>) {
        if let Some(showing) = self.showing {
            showing.abort();
        }
        timeline.extend(self.seen.lock().unwrap_or_else(|e| e.into_inner()).drain(..));
        timeline.sort_by_key(|e| e.at);
    }
}

fn entry(at: Timestamp, phase: &str, detail: String) -> TimelineEntry {
    TimelineEntry {
        at,
        phase: phase.into(),
        detail: Some(detail),
    }
}
