//! Commands for runs a person lost track of, shown: `list`, `logs`, `delete` and `gc` (what
//! a run id names is `kpo::runs`'s to say; what is garbage, `kpo::gc`'s).

use super::stdout::outln;

use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, ResourceExt};

use std::path::{Path, PathBuf};

use super::error::CliError;
use super::machine;
use crate::exit;
use crate::gc::Step;
use crate::journal::Journal;
use crate::reattach::find_pod;
use crate::vocabulary::MAIN_CONTAINER;

/// Prints the runs this machine's journal knows, newest last.
pub fn list() -> Result<i32, CliError> {
    let journals = super::machine::this()
        .journals()
        .list()
        .map_err(|source| CliError::State {
            doing: "cannot read the run journals".into(),
            source,
        })?;
    outln!(
        "{:<28} {:<14} {:<24} {:<40} STATUS",
        "RUN",
        "BATCH",
        "TASK",
        "POD"
    );
    for j in journals {
        let status = match j.exit_code {
            Some(code) => format!("finished, exit code {code}"),
            None if j.uid.is_some() => "unfinished (kpo attach reattaches)".to_owned(),
            None => "not started".to_owned(),
        };
        let pod = j.pod.map(|p| format!("{}/{p}", j.namespace)).unwrap_or_default();
        let batch = j.batch.as_deref().unwrap_or("-");
        outln!("{:<28} {batch:<14} {:<24} {pod:<40} {status}", j.run_id, j.task);
    }
    Ok(exit::SUCCESS)
}

/// Prints the main container's log of a run (following it with `follow`).
pub async fn logs(client: &kube::Client, journal: &Journal, follow: bool) -> Result<i32, CliError> {
    let name = find_pod(client, journal).await?.name_any();
    pod_log(client, &journal.namespace, &name, follow).await
}

/// Prints the main container's log of pod `namespace/name`.
pub async fn pod_log(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    follow: bool,
) -> Result<i32, CliError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = LogParams {
        container: Some(MAIN_CONTAINER.into()),
        follow,
        ..Default::default()
    };
    let stream = api
        .log_stream(name, &params)
        .await
        .map_err(|source| CliError::Cluster {
            doing: format!("cannot read the log of {name}"),
            source,
        })?;
    // The container's bytes as they are, as `kubectl logs` prints them.
    let mut stdout = futures::io::AllowStdIo::new(std::io::stdout());
    match futures::io::copy(stream, &mut stdout).await {
        // A closed pipe (`kpo logs ... | head`) is not worth a word.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Cluster {
            doing: format!("the log of {name} was cut"),
            source: kube::Error::ReadEvents(e),
        }),
        _ => Ok(exit::SUCCESS),
    }
}

/// Deletes a run's pod — only if it is still the run's own (a UID precondition).
pub async fn delete(client: &kube::Client, journal: &Journal) -> Result<i32, CliError> {
    let name = find_pod(client, journal).await?.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &journal.namespace);
    let uid = journal.uid.clone().unwrap_or_default();
    crate::stop::stop(&api, &name, &uid, "kpo delete", None)
        .await
        .map_err(|source| CliError::Cluster {
            doing: format!("cannot delete pod {name}"),
            source,
        })?;
    eprintln!(
        "kpo: deleted pod {}/{name} of run {}",
        journal.namespace, journal.run_id
    );
    Ok(exit::SUCCESS)
}

/// `kpo gc`: [`crate::gc::collect`], each step on its own line (stdout), warnings and the count
/// on stderr.
pub async fn gc(client: &kube::Client, namespace: &str, dry_run: bool) -> Result<i32, CliError> {
    let mut said = |step: Step| match step {
        Step::Left(what) => outln!("left {what}"),
        Step::WouldDelete(what) => outln!("would delete {what}"),
        Step::Deleted(what) => outln!("deleted {what}"),
        Step::WouldRemove(what) => outln!("would remove {what}"),
        Step::Removed(what) => outln!("removed {what}"),
        Step::Failed { doing, what, error } => eprintln!(
            "kpo: warning: cannot {doing} {what}: {}",
            crate::said::shown(&error)
        ),
    };
    let collected = crate::gc::collect(client, namespace, dry_run, &mut said).await?;
    eprintln!(
        "kpo: gc: {} pod(s) deleted in {namespace}; {} record(s) of runs removed",
        collected.pods, collected.records
    );
    Ok(exit::SUCCESS)
}

/// `kpo timeline ID`: the batch (or run) `id` drawn from this machine's journal.
pub(super) fn timeline(id: &str, file: Option<PathBuf>) -> Result<i32, CliError> {
    let store = machine::this().journals();
    let reports = crate::runs::reports(&store, id)?;
    if reports.is_empty() {
        return Err(CliError::Usage(format!(
            "{id} has no finished run to draw yet (`kpo list` shows how its runs stand)"
        )));
    }
    let title = match reports.as_slice() {
        [one] if one.run_id == id => format!("run {id}: task {}", one.task),
        _ => format!("batch {id}"),
    };
    let path = file.unwrap_or_else(|| PathBuf::from(format!("{id}.html")));
    write_timeline(&path, &title, &reports)?;
    Ok(exit::SUCCESS)
}

/// Writes the timeline page of `reports` to `path`, and says where.
pub(super) fn write_timeline(
    path: &Path,
    title: &str,
    reports: &[crate::report::RunReport],
) -> Result<(), CliError> {
    std::fs::write(path, crate::timeline::page(title, reports)).map_err(|source| CliError::Write {
        doing: "write the timeline to",
        path: path.to_owned(),
        source,
    })?;
    eprintln!("kpo: drew {} run(s) into {}", reports.len(), path.display());
    Ok(())
}
