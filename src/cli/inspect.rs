//! `kpo validate` and `kpo render`: a task's pod as it would be submitted, and what its
//! plugins and policies say of it — without running it.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;

use super::args::{ParamArgs, PolicyArgs, RenderArgs};
use super::error::CliError;
use super::stdout::{self, outln};
use super::{connect, load_members, load_task_plugins, namespace_for};
use crate::exit;
use crate::pod::RunIdentity;
use crate::runner;
use crate::task::Task;
use crate::vocabulary::Mutation;

/// Checks the task — each member of a matrix — as a run would prepare it.
pub(super) async fn validate(path: &Path, policy: &PolicyArgs, params: &ParamArgs) -> Result<i32, CliError> {
    // The members of a matrix share their advice: it is given once.
    let mut advised = std::collections::BTreeSet::new();
    for task in load_members(path, policy, &params.given()?)? {
        validate_one(path, &task, &mut advised).await?;
    }
    Ok(exit::SUCCESS)
}

async fn validate_one(
    path: &Path,
    task: &Task,
    advised: &mut std::collections::BTreeSet<Vec<String>>,
) -> Result<(), CliError> {
    let plugins = load_task_plugins(task).await?;
    let identity = RunIdentity::generate(&task.name);
    let prepared = runner::prepare(task, &identity, "default", plugins.as_deref(), &[]).await?;
    show_policies(&prepared);
    // Advice, not an error: most namespaces enforce no standard.
    let violations = crate::pss::restricted_violations(&prepared.pod);
    if !violations.is_empty() && advised.insert(violations.clone()) {
        eprintln!(
            "kpo: warning: a namespace enforcing the restricted Pod Security Standard would refuse this pod (labelled {}=restricted; Kubernetes 1.23+):",
            crate::pss::ENFORCE_LABEL
        );
        for v in violations {
            eprintln!("kpo:   {v}");
        }
    }
    // A pod a policy refuses is no valid task: the refusal is the answer, not "is valid".
    if let Some(e) = prepared.denial() {
        return Err(e.into());
    }
    outln!("{}: task {:?} is valid", path.display(), task.name);
    Ok(())
}

/// Which policies apply, where each comes from and what it says; and the plugins' warnings.
fn show_policies(prepared: &runner::Prepared) {
    for c in &prepared.policies {
        let answer = match &c.reason {
            Some(why) => format!("{}: {why}", c.admission.name()),
            None => c.admission.name().to_owned(),
        };
        eprintln!(
            "kpo: policy {} ({}, from {}): {answer}",
            c.policy,
            c.mode.name(),
            c.source
        );
    }
    for w in &prepared.warnings {
        eprintln!("kpo: warning from {}: {}", w.plugin, w.message);
    }
}

/// Prints the pod of the task — of each member of a matrix, or `--only` one.
pub(super) async fn render(args: RenderArgs) -> Result<i32, CliError> {
    let mut tasks = load_members(&args.task, &args.policy, &args.params.given()?)?;
    if let Some(only) = &args.only {
        let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
        tasks.retain(|t| &t.name == only);
        if tasks.is_empty() {
            return Err(CliError::Usage(format!(
                "--only {only}: {} has no such task (it has: {})",
                args.task.display(),
                names.join(", ")
            )));
        }
    }
    for task in &tasks {
        render_one(&args, task).await?;
    }
    Ok(exit::SUCCESS)
}

async fn render_one(args: &RenderArgs, task: &Task) -> Result<(), CliError> {
    let plugins = load_task_plugins(task).await?;
    let identity = RunIdentity::generate(&task.name);
    let conn = match args.server {
        true => Some(connect(&args.cluster).await?),
        false => None,
    };
    let context_ns = conn.as_ref().map_or("default", |c| c.default_namespace.as_str());
    let ns = namespace_for(&args.cluster, task, context_ns);
    let prepared = runner::prepare(task, &identity, &ns, plugins.as_deref(), &[]).await?;
    show_policies(&prepared);
    if let Some(e) = prepared.denial() {
        if args.refused {
            print_yaml(&prepared.pod);
        }
        return Err(e.into());
    }
    if args.diff {
        print_diff(&prepared.mutations);
        return Ok(());
    }
    let pod = prepared.pod;
    let Some(conn) = conn else {
        print_yaml(&pod);
        return Ok(());
    };
    let api: Api<Pod> = Api::namespaced(conn.client.clone(), &ns);
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&dry_run, &pod).await {
        Ok(stored) => {
            print_yaml(&stored);
            Ok(())
        }
        Err(kube::Error::Api(s)) => Err(CliError::Rejected(crate::said::said(s.message))),
        Err(source) => Err(CliError::Cluster {
            doing: "cannot ask the API server for a dry run".into(),
            source,
        }),
    }
}

/// Each mutator's RFC 6902 patch, one JSON document per plugin after a `# plugin` line.
fn print_diff(mutations: &[Mutation]) {
    if mutations.is_empty() {
        eprintln!("kpo: the task has no mutators; nothing changes the pod");
    }
    for m in mutations {
        outln!("# plugin {}: {} change(s)", m.plugin, m.patch.0.len());
        outln!("{}", serde_json::to_string_pretty(&m.patch).unwrap_or_default());
    }
}

/// The pod as one YAML document (`---` first, so that several make one stream).
fn print_yaml(pod: &Pod) {
    let yaml = serde_saphyr::to_string(pod).unwrap_or_default();
    stdout::put(&format!("---\n{yaml}"));
}
