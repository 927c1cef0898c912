//! `kpo plugin inspect`, `kpo plugin test` and `kpo plugin wit`: for plugin authors, no cluster
//! needed.

use super::stdout::outln;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::CliError;
use crate::exit;
use crate::plugin::wit::{ContainerOutcome, Outcome, Verdict};
use crate::plugin::{self, PluginHost, PluginRole, inspect, wit};
use crate::scaffold::{self, Language};
use crate::task::PluginSpec;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Write a new plugin project into DIR (default: NAME): its source, build file, kpo's WIT
    /// contract, native unit tests, a sample input with its golden answer, a task that uses it,
    /// and a README with the commands to build, test and try it.
    ///
    /// The project builds outside kpo's repository with only the tools its README names. Every
    /// language's project does the same for a role: a mutator adds the labels of its config, a
    /// policy refuses unpinned images (and warns of missing memory limits), an interpreter skips
    /// a run that says NOTHING TO DO. Each checks its config when kpo loads it.
    New(NewArgs),
    /// Print which kpo roles a component implements (mutator, policy, interpreter), in which
    /// contract version, and its imports.
    Inspect {
        /// The component (.wasm).
        plugin: PathBuf,
        /// Also ask the plugin whether it accepts this config (JSON, what `config` in the task
        /// file would be); without it, nothing is asked of the plugin.
        #[arg(long)]
        config: Option<String>,
    },
    /// Run a plugin on a recorded input and compare the result with a golden file.
    ///
    /// A mutator gets --pod (YAML or JSON) and its result pod is compared with --expect; a
    /// refusal compares as {"refused": "<reason>"}. A validating policy gets --pod too, and its
    /// answer compares as {"admission": "accept" | "warn" | "refuse", "warnings", "reason"}.
    /// An interpreter gets --outcome (JSON: status,
    /// exit_code, phase, containers, log_tail, result, pod) and its judgement compares as
    /// {"verdict": ..., "reason": ..., "outputs": ...}. Exit 0 on a match, 1 with the
    /// differences on a mismatch; --update rewrites the golden file instead.
    Test(TestArgs),
    /// Write the WIT contract this kpo speaks into DIR (default `wit`): plugin.wit (kpo:plugin@0.2.0)
    /// and 0.1.0/plugin.wit (as released) — what `wit-bindgen`, `componentize-py` or `jco`
    /// build a plugin against — and outcome.schema.json, the JSON Schema of the outcome files
    /// `plugin test --outcome` reads and `run --record-outcome` writes.
    Wit {
        /// The folder to write into (created if missing).
        #[arg(default_value = "wit")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and dashes (a crate, package and file name).
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    lang: Language,
    /// What it does in a run: change the pod (mutator), accept or refuse it (policy), or judge
    /// how the run went (interpreter).
    #[arg(long, value_parser = ["mutator", "policy", "interpreter"])]
    role: String,
    /// The folder to write into (new or empty); default: NAME.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The contract, as this kpo was built with it: the WIT packages and the outcome files' schema
/// (path in the folder, text).
const CONTRACT: [(&str, &str); 3] = [
    ("plugin.wit", include_str!("../../wit/plugin.wit")),
    ("0.1.0/plugin.wit", include_str!("../../wit/0.1.0/plugin.wit")),
    (
        "outcome.schema.json",
        include_str!("../../wit/outcome.schema.json"),
    ),
];

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component (.wasm).
    plugin: PathBuf,
    /// Test it as a mutator on this pod.
    #[arg(long, conflicts_with = "outcome", required_unless_present = "outcome")]
    pod: Option<PathBuf>,
    /// Test it as an interpreter on this recorded outcome.
    #[arg(long)]
    outcome: Option<PathBuf>,
    /// The plugin's config, as JSON (what `config` in the task file would be).
    #[arg(long, default_value = "{}", conflicts_with = "task_file")]
    config: String,
    /// The golden file with the expected result.
    #[arg(long)]
    expect: PathBuf,
    /// Write the actual result to the golden file instead of comparing.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    context: ContextArgs,
}

/// The run as the plugin is told of it (its `context`), as a task would set it.
#[derive(Debug, Args)]
struct ContextArgs {
    /// Take the plugin's entry from this task file — its config, `writable`, grants, memory and
    /// timeout, found by the component's path — and the task's name and namespace, as a run of
    /// the task would.
    #[arg(long, value_name = "TASK.toml", conflicts_with_all = ["task", "namespace"])]
    task_file: Option<PathBuf>,
    /// The task's name.
    #[arg(long = "task", value_name = "NAME", default_value = "plugin-test")]
    task: String,
    /// The namespace the pod runs in.
    #[arg(long, value_name = "NAME", default_value = "default")]
    namespace: String,
    /// The run's id.
    #[arg(long, value_name = "ID", default_value = "test")]
    run_id: String,
    /// Which attempt of the run this is (1 for the first).
    #[arg(long, value_name = "N", default_value_t = 1)]
    attempt: u32,
    /// How the run's earlier attempts ended: a JSON list of outcomes, each as --outcome takes
    /// one, oldest first.
    #[arg(long, value_name = "FILE")]
    earlier: Option<PathBuf>,
}

impl ContextArgs {
    /// The plugin's entry and the context of its call: from the task file, or from the flags.
    fn entry(&self, plugin: &Path, config: &str) -> Result<(PluginSpec, wit::Context), CliError> {
        let Some(file) = &self.task_file else {
            let spec = PluginSpec {
                config: parse_config(config)?,
                ..PluginSpec::at(plugin)
            };
            return Ok((spec, self.context(&self.task, &self.namespace)?));
        };
        let task = crate::task::load(file)?;
        let wanted = std::fs::canonicalize(plugin).ok();
        let entries = || {
            task.mutators
                .iter()
                .chain(&task.policies)
                .chain(&task.interpreters)
        };
        let Some(spec) =
            entries().find(|s| wanted.is_some() && std::fs::canonicalize(&s.path).ok() == wanted)
        else {
            let used: Vec<String> = entries().map(|s| s.path.display().to_string()).collect();
            return Err(CliError::Input(format!(
                "{} names no plugin at {} (it names: {})",
                file.display(),
                plugin.display(),
                if used.is_empty() {
                    "none".to_owned()
                } else {
                    used.join(", ")
                }
            )));
        };
        let namespace = task.namespace.as_deref().unwrap_or("default");
        Ok((spec.clone(), self.context(&task.name, namespace)?))
    }

    /// The context the flags describe, for this task and namespace.
    fn context(&self, task: &str, namespace: &str) -> Result<wit::Context, CliError> {
        let earlier = match &self.earlier {
            None => Vec::new(),
            Some(path) => {
                let files: Vec<OutcomeFile> = serde_json::from_value(read_value(path)?).map_err(|e| {
                    CliError::Input(format!("{} is not a list of outcomes: {e}", path.display()))
                })?;
                files
                    .into_iter()
                    .map(Outcome::try_from)
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(wit::Context {
            attempt: self.attempt,
            earlier,
            ..plugin::context(task, namespace, &self.run_id)
        })
    }
}

pub async fn handle(command: PluginCommand) -> Result<i32, CliError> {
    let host = || super::machine::this().plugin_host();
    match command {
        PluginCommand::Inspect { plugin, config } => {
            let config = config.as_deref().map(parse_config).transpose()?;
            let checked = config.is_some();
            let i = inspect::inspect(&host()?, &plugin, config).await?;
            let roles = if i.roles.is_empty() {
                "none (not a kpo plugin)".to_owned()
            } else {
                i.roles.join(", ")
            };
            outln!("{}\n  roles:    {roles}", plugin.display());
            outln!("  contract: {}", i.contract);
            outln!("  exports:  {}", i.exports.join(", "));
            outln!("  imports:  {}", i.imports.join(", "));
            for what in &i.denied {
                outln!("  denied:   {what}");
            }
            if checked {
                outln!("  config:   accepted");
            }
            Ok(exit::SUCCESS)
        }
        PluginCommand::Test(args) => test(&host()?, &args).await,
        PluginCommand::Wit { dir } => write_contract(&dir),
        PluginCommand::New(args) => new_project(&args),
    }
}

/// Writes a new plugin project and says what to do next.
fn new_project(args: &NewArgs) -> Result<i32, CliError> {
    let role = match args.role.as_str() {
        "mutator" => PluginRole::Mutator,
        "policy" => PluginRole::Policy,
        _ => PluginRole::Interpreter,
    };
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    let written = scaffold::project(&args.name, args.lang, role, &CONTRACT)
        .and_then(|project| project.write(&dir).map(|()| project));
    let project = written.map_err(|e| match e {
        scaffold::ScaffoldError::Write { path, source } => CliError::Write {
            doing: "write the plugin project to",
            path,
            source,
        },
        other => CliError::Usage(other.to_string()),
    })?;
    eprintln!(
        "kpo: wrote {} ({} files): a {} plugin in {}; its README.md says how to build, test and try it",
        dir.display(),
        project.files.len(),
        role.name(),
        args.lang.name()
    );
    Ok(exit::SUCCESS)
}

/// Writes [`CONTRACT`] into `dir`, saying each file it wrote.
fn write_contract(dir: &Path) -> Result<i32, CliError> {
    for (name, text) in CONTRACT {
        let path = dir.join(name);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        written.map_err(|source| CliError::Write {
            doing: "write the plugin contract to",
            path: path.clone(),
            source,
        })?;
        eprintln!("kpo: wrote {}", path.display());
    }
    Ok(exit::SUCCESS)
}

fn read_value(path: &Path) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    serde_saphyr::from_str(&text)
        .map_err(|e| CliError::Input(format!("{} is not YAML or JSON: {e}", path.display())))
}

/// Compares (or with `--update`, records) the plugin's result; the differences on stdout.
async fn test(host: &PluginHost, args: &TestArgs) -> Result<i32, CliError> {
    let actual = actual(host, args).await?;
    if args.update {
        let text = format!("{}\n", serde_json::to_string_pretty(&actual).unwrap_or_default());
        std::fs::write(&args.expect, text).map_err(|source| CliError::Write {
            doing: "write the golden file",
            path: args.expect.clone(),
            source,
        })?;
        eprintln!("kpo: wrote {}", args.expect.display());
        return Ok(exit::SUCCESS);
    }
    if !args.expect.exists() {
        return Err(CliError::Input(format!(
            "no golden file {}: `--update` writes what the plugin answers there, to check and keep",
            args.expect.display()
        )));
    }
    let expected = read_value(&args.expect)?;
    if expected != actual {
        let patch = json_patch::diff(&expected, &actual);
        outln!("{}", serde_json::to_string_pretty(&patch).unwrap_or_default());
        return Err(CliError::Mismatch(format!(
            "MISMATCH: what {} answered differs from the golden file {} (the JSON patch from golden to answer is on stdout)",
            args.plugin.display(),
            args.expect.display()
        )));
    }
    eprintln!(
        "kpo: ok: {} matches {}",
        args.plugin.display(),
        args.expect.display()
    );
    Ok(exit::SUCCESS)
}

/// `--config`: JSON, as `config` in a task file would be.
fn parse_config(text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text).map_err(|e| CliError::Usage(format!("--config is not JSON: {e}")))
}

/// Runs the plugin on the recorded input; the result in its golden-file form.
async fn actual(host: &PluginHost, args: &TestArgs) -> Result<Value, CliError> {
    let (spec, ctx) = args.context.entry(&args.plugin, &args.config)?;
    let loaded = host.load(&spec).await?;
    if let Some(path) = &args.pod {
        let pod: Pod = serde_json::from_value(read_value(path)?)
            .map_err(|e| CliError::Input(format!("{} is not a Pod: {e}", path.display())))?;
        // A pod goes to a mutator, or to a policy when the component is one and no mutator.
        if !loaded.serves(PluginRole::Mutator) && loaded.serves(PluginRole::Policy) {
            let json = serde_json::to_string(&pod).unwrap_or_default();
            return Ok(match plugin::call_validate(host, &loaded, &json, &ctx).await? {
                wit::Admission::Accept => json!({ "admission": "accept" }),
                wit::Admission::Warn(w) => json!({ "admission": "warn", "warnings": w }),
                wit::Admission::Refuse(r) => json!({ "admission": "refuse", "reason": r }),
            });
        }
        loaded.require(PluginRole::Mutator)?;
        return match plugin::mutate(host, std::slice::from_ref(&loaded), pod, &ctx).await {
            Ok(mutated) => {
                // The golden file is the pod; what the mutator warned of is shown beside it.
                for w in mutated.warnings {
                    eprintln!("kpo: warning from {}: {}", w.plugin, crate::said::said(w.message));
                }
                Ok(serde_json::to_value(mutated.pod).unwrap_or_default())
            }
            Err(plugin::PluginError::Refused { reason, .. }) => Ok(json!({ "refused": reason })),
            Err(e) => Err(e.into()),
        };
    }
    loaded.require(PluginRole::Interpreter)?;
    let path = args.outcome.as_deref().unwrap_or(Path::new("-"));
    let recorded: OutcomeFile = serde_json::from_value(read_value(path)?)
        .map_err(|e| CliError::Input(format!("{} is not an outcome: {e}", path.display())))?;
    let judgement = plugin::call_interpret(host, &loaded, &recorded.try_into()?, &ctx).await?;
    let (verdict, reason) = match judgement.verdict {
        Verdict::Success => ("success", None),
        Verdict::Failure(r) => ("failure", Some(r)),
        Verdict::Skip(r) => ("skip", Some(r)),
        Verdict::Retry(r) => ("retry", Some(r)),
    };
    let outputs = judgement
        .outputs
        .and_then(|o| serde_json::from_str::<Value>(&o).ok());
    Ok(json!({ "verdict": verdict, "reason": reason, "outputs": outputs }))
}

/// A recorded outcome, as plugin authors write it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeFile {
    #[serde(default = "first")]
    attempt: u32,
    status: String,
    #[serde(default)]
    exit_code: i32,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    containers: Vec<ContainerFile>,
    #[serde(default)]
    log_tail: Vec<String>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    pod: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerFile {
    name: String,
    role: String,
    exit_code: Option<i32>,
    reason: Option<String>,
    message: Option<String>,
}

fn first() -> u32 {
    1
}

impl TryFrom<OutcomeFile> for Outcome {
    type Error = CliError;

    fn try_from(f: OutcomeFile) -> Result<Self, CliError> {
        let containers = f
            .containers
            .into_iter()
            .map(|c| {
                Ok(ContainerOutcome {
                    role: plugin::terms::role_named(&c.role)
                        .ok_or_else(|| unknown("role", &c.role, plugin::terms::role_names()))?,
                    name: c.name,
                    exit_code: c.exit_code,
                    reason: c.reason,
                    message: c.message,
                })
            })
            .collect::<Result<_, CliError>>()?;
        Ok(Outcome {
            attempt: f.attempt,
            status: plugin::terms::status_named(&f.status)
                .ok_or_else(|| unknown("status", &f.status, plugin::terms::status_names()))?,
            exit_code: f.exit_code,
            phase: f.phase,
            containers,
            log_tail: f.log_tail,
            result: f.result.map(|r| r.to_string()),
            pod: f.pod.map(|p| p.to_string()).unwrap_or_default(),
        })
    }
}

/// A recorded word the contract does not know, with the words it does.
fn unknown(what: &str, word: &str, known: Vec<&str>) -> CliError {
    CliError::Input(format!("{what} `{word}` is none of {}", known.join(", ")))
}
