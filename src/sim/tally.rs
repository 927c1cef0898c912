//! What the simulated API server saw: requests by kind, pods created per run, and the most pods
//! that existed at once — so that tests can check `--parallel` and "one watch per namespace"
//! from the server's side, and benchmarks can count requests per task.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::faults::Target;

/// A copy of the record, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Every request that reached the server.
    pub requests: usize,
    pub creates: usize,
    /// Watch requests of pods (each watch, and each resumption of one).
    pub pod_watches: usize,
    /// Log requests of every kind; of them, those following the log (`follow=true`) and those
    /// asking for its last lines only (`tailLines`).
    pub log_reads: usize,
    pub log_follows: usize,
    pub log_tails: usize,
    /// Label-selected deletions of pods (deletecollection).
    pub collection_deletes: usize,
    pub event_lists: usize,
    /// The most pods that existed at once.
    pub peak_pods: usize,
    /// How many pods were created for each run id (`kpo.dev/run-id`).
    pub created_per_run: BTreeMap<String, usize>,
    /// Every request that may change something (all but GET), in order.
    pub writes: Vec<Write>,
}

/// A request that may change something, and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The bearer token it came with, if any: which client made it.
    pub client: Option<String>,
    pub method: String,
    pub path: String,
}

/// The record as it grows.
#[derive(Debug, Default)]
pub struct Tally(Mutex<Record>);

impl Tally {
    fn with(&self, f: impl FnOnce(&mut Record)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn request(&self, delete: bool, target: Target, path: &str, query: &str) {
        self.with(|r| {
            r.requests += 1;
            if delete && path.ends_with("/pods") {
                r.collection_deletes += 1;
            }
            match target {
                Target::Create => r.creates += 1,
                Target::Watch if path.ends_with("/pods") => r.pod_watches += 1,
                Target::Logs => {
                    r.log_reads += 1;
                    let has = |key: &str| query.split('&').any(|p| p.starts_with(key));
                    r.log_follows += usize::from(has("follow=true"));
                    r.log_tails += usize::from(has("tailLines="));
                }
                Target::Events => r.event_lists += 1,
                _ => {}
            }
        });
    }

    pub fn write(&self, client: Option<String>, method: &str, path: &str) {
        self.with(|r| {
            r.writes.push(Write {
                client,
                method: method.to_owned(),
                path: path.to_owned(),
            });
        });
    }

    /// A pod of `run_id` was created; `pods` exist now.
    pub fn created(&self, run_id: Option<&str>, pods: usize) {
        self.with(|r| {
            if let Some(id) = run_id {
                *r.created_per_run.entry(id.to_owned()).or_default() += 1;
            }
            r.peak_pods = r.peak_pods.max(pods);
        });
    }

    pub fn record(&self) -> Record {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
