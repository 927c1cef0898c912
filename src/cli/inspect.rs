//! `kpo validate` and `kpo render`: a task's pod as it would be submitted, and what its
//! plugins and policies say of it — without running it.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;

use super::args::{PolicyArgs, RenderArgs};
use super::error::CliError;
use super::stdout::{self, outln};
use super::{connect, load_task, load_task_plugins, namespace_for};
use crate::exit;
use crate::pod::RunIdentity;
use crate::runner;
use crate::vocabulary::Mutation;

pub(super) async fn validate(path: &Path, policy: &PolicyArgs) -> Result<i32, CliError> {
    let task = load_task(path, policy)?;
    let plugins = load_task_plugins(&task).await?;
    let identity = RunIdentity::generate(&task.name);
    let prepared = runner::prepare(&task, &identity, "default", plugins.as_deref(), &[]).await?;
    show_policies(&prepared);
    // Advice, not an error: most namespaces enforce no standard.
    let violations = crate::pss::restricted_violations(&prepared.pod);
    if !violations.is_empty() {
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
    Ok(exit::SUCCESS)
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

pub(super) async fn render(args: RenderArgs) -> Result<i32, CliError> {
    let task = load_task(&args.task, &args.policy)?;
    let plugins = load_task_plugins(&task).await?;
    let identity = RunIdentity::generate(&task.name);
    let conn = match args.server {
        true => Some(connect(&args.cluster).await?),
        false => None,
    };
    let context_ns = conn.as_ref().map_or("default", |c| c.default_namespace.as_str());
    let ns = namespace_for(&args.cluster, &task, context_ns);
    let prepared = runner::prepare(&task, &identity, &ns, plugins.as_deref(), &[]).await?;
    show_policies(&prepared);
    if let Some(e) = prepared.denial() {
        if args.refused {
            print_yaml(&prepared.pod)?;
        }
        return Err(e.into());
    }
    if args.diff {
        print_diff(&prepared.mutations);
        return Ok(exit::SUCCESS);
    }
    let pod = prepared.pod;
    let Some(conn) = conn else {
        return print_yaml(&pod);
    };
    let api: Api<Pod> = Api::namespaced(conn.client.clone(), &ns);
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&dry_run, &pod).await {
        Ok(stored) => print_yaml(&stored),
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

fn print_yaml(pod: &Pod) -> Result<i32, CliError> {
    let yaml = serde_saphyr::to_string(pod)
        .map_err(|e| CliError::Internal(format!("cannot print the pod as YAML: {e}")))?;
    stdout::put(&yaml);
    Ok(exit::SUCCESS)
}
