//! Shared test plumbing: a recording observer, task loading from inline TOML, and helpers to
//! run a task on a cluster and look at what is left on it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use kpo::pod::{self, LABEL_RUN_ID, RunIdentity};
use kpo::report::{RunReport, TimelineEntry};
use kpo::supervise::{self, Observer};
use kpo::task::{self, Task};
use kube::Api;
use kube::api::ListParams;

/// Records everything a run reports, for assertions.
#[derive(Default)]
pub struct Recorder {
    /// Every container's output, byte for byte, in the order it was delivered.
    pub output: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    pub statuses: Mutex<Vec<TimelineEntry>>,
    pub notices: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn status(&self, entry: &TimelineEntry) {
        self.statuses.lock().unwrap().push(entry.clone());
    }
    fn log_bytes(&self, container: &str, bytes: &[u8]) {
        self.output
            .lock()
            .unwrap()
            .entry(container.to_owned())
            .or_default()
            .extend_from_slice(bytes);
    }
    fn notice(&self, message: &str) {
        self.notices.lock().unwrap().push(message.to_owned());
    }
}

impl Recorder {
    /// Log lines of one container, in order (as text, lossily).
    pub fn lines_of(&self, container: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.bytes_of(container))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// One container's output, exactly as delivered.
    pub fn bytes_of(&self, container: &str) -> Vec<u8> {
        self.output
            .lock()
            .unwrap()
            .get(container)
            .cloned()
            .unwrap_or_default()
    }

    pub fn saw_phase(&self, phase: &str) -> bool {
        self.statuses.lock().unwrap().iter().any(|s| s.phase == phase)
    }

    /// Whether kpo told the user something containing `text`.
    pub fn saw_notice(&self, text: &str) -> bool {
        self.notices.lock().unwrap().iter().any(|n| n.contains(text))
    }
}

/// Parses an inline task file, panicking with the loader's message if it is invalid.
pub fn task(toml: &str) -> Task {
    task::parse(toml, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// One run of `task` on `client`, with an interrupt that never comes.
pub async fn run(client: &kube::Client, task: &Task, ns: &str) -> (RunReport, Arc<Recorder>) {
    run_until(client, task, ns, std::future::pending()).await
}

/// One run of `task`, interrupted when `interrupt` resolves.
pub async fn run_until(
    client: &kube::Client,
    task: &Task,
    ns: &str,
    interrupt: impl std::future::Future<Output = ()>,
) -> (RunReport, Arc<Recorder>) {
    // RUST_LOG=kpo=debug shows the supervisor's reasoning in a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let recorder = Arc::new(Recorder::default());
    let pod = pod::build(task, &RunIdentity::generate(&task.name), ns);
    let interrupts = Box::pin(futures::stream::once(async {
        interrupt.await;
        supervise::Interrupt::Stop
    }));
    let report = supervise::launch(client.clone(), pod, &task.run, recorder.clone(), interrupts)
        .await
        .expect("the cluster is reachable");
    (report, recorder)
}

/// A whole run of `task` as `kpo run` makes it — attempts and retries, interpreters, skip codes —
/// with no plugins and an interrupt that never comes.
pub async fn run_task(client: &kube::Client, task: &Task, ns: &str) -> (RunReport, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let report = kpo::runner::run_task(
        client.clone(),
        task,
        None,
        RunIdentity::generate(&task.name),
        ns,
        recorder.clone(),
        futures::stream::pending(),
        None,
    )
    .await
    .expect("the cluster answers");
    (report, recorder)
}

/// Pods of one run that still exist (not counting those already being deleted).
pub async fn pods_of_run(client: &kube::Client, ns: &str, run_id: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().labels(&format!("{LABEL_RUN_ID}={run_id}")))
        .await
        .unwrap();
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// The kubeconfig the end-to-end suite runs with, when it is enabled: not the admin one from
/// `KPO_E2E_KUBECONFIG`, but a service account bound to exactly the Role of
/// `examples/rbac.yaml`, so the suite proves kpo needs no more.
pub fn e2e_kubeconfig() -> Option<String> {
    static RESTRICTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let admin = std::env::var("KPO_E2E_KUBECONFIG")
        .ok()
        .filter(|s| !s.is_empty())?;
    let path = RESTRICTED.get_or_init(|| {
        // Its own runtime: clients must not outlive the runtime of the test that made them.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(restricted_kubeconfig(&admin))
        })
        .join()
        .expect("setting up the e2e service account")
    });
    Some(path.clone())
}

/// Applies `examples/rbac.yaml` with the admin credentials and writes a kubeconfig that uses a
/// token of its service account.
async fn restricted_kubeconfig(admin: &str) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::{Patch, PatchParams, PostParams};

    let client = e2e_client(admin).await;
    let rbac =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rbac.yaml")).unwrap();
    let apply = PatchParams::apply("kpo-e2e").force();
    for doc in rbac.split("\n---\n") {
        let value: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
        let name = value["metadata"]["name"].as_str().unwrap().to_owned();
        let patch = Patch::Apply(&value);
        match value["kind"].as_str() {
            Some("ServiceAccount") => drop(
                Api::<ServiceAccount>::default_namespaced(client.clone())
                    .patch(&name, &apply, &patch)
                    .await
                    .unwrap(),
            ),
            Some("Role") => drop(
                Api::<Role>::default_namespaced(client.clone())
                    .patch(&name, &apply, &patch)
                    .await
                    .unwrap(),
            ),
            Some("RoleBinding") => drop(
                Api::<RoleBinding>::default_namespaced(client.clone())
                    .patch(&name, &apply, &patch)
                    .await
                    .unwrap(),
            ),
            other => panic!("unexpected kind {other:?} in examples/rbac.yaml"),
        }
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = Api::<ServiceAccount>::default_namespaced(client)
        .create_token_request("kpo", &PostParams::default(), &request)
        .await
        .expect("a token for the kpo service account")
        .status
        .expect("token status")
        .token;
    let mut kubeconfig = kube::config::Kubeconfig::read_from(admin).unwrap();
    for named in &mut kubeconfig.auth_infos {
        named.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.clone().into()),
            ..Default::default()
        });
    }
    let dir = std::env::temp_dir().join(format!("kpo-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_saphyr::to_string(&kubeconfig).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

pub fn e2e_image() -> String {
    std::env::var("KPO_E2E_IMAGE").unwrap_or_else(|_| "busybox:1.36".into())
}

/// A client for the real cluster of the end-to-end suite.
pub async fn e2e_client(path: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("KPO_E2E_KUBECONFIG is readable");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("valid kubeconfig");
    kpo::client::build(config).expect("client")
}

/// The compiled component of a plugin in `plugins/` (e.g. `add-labels`, `hostile/spin`), built
/// once per test run with the wasm32-wasip2 target (installed if missing).
pub fn plugin(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    static JS: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    static PYTHON: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    static C: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    let other = match name {
        "js/inject-sidecar" | "js/require-labels" | "js/throw" => Some(JS.get_or_init(build_js)),
        "python/result-check" => Some(PYTHON.get_or_init(build_python)),
        "c/require-limits" => Some(C.get_or_init(build_c)),
        _ => None,
    };
    if let Some(built) = other {
        let dir = built.clone().unwrap_or_else(|e| panic!("{e}"));
        let file = name.rsplit('/').next().unwrap_or(name).replace('-', "_");
        return dir.join(format!("{file}.wasm"));
    }
    if let Some(guest) = name.strip_prefix("hostile/")
        && let Some(text) = hostile_text(guest)
    {
        return assemble(guest, &text);
    }
    let dir = BUILT
        .get_or_init(build_plugins)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let file = name.rsplit('/').next().unwrap_or(name);
    let crate_name = if name.starts_with("hostile/") {
        format!("hostile_{file}")
    } else {
        file.to_owned()
    };
    dir.join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// A hostile guest written in the component model's text format (`plugins/hostile/wat/`): its
/// sections filled into the shell they share. `None` when the guest is a Rust crate.
fn hostile_text(guest: &str) -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/hostile/wat");
    let own = std::fs::read_to_string(dir.join(format!("{guest}.wat"))).ok()?;
    let shell = std::fs::read_to_string(dir.join("shell.wat")).expect("plugins/hostile/wat/shell.wat");
    let mut sections: std::collections::HashMap<String, String> = Default::default();
    let mut current = None;
    for line in own.lines() {
        match line.trim().strip_prefix(";; @") {
            Some(section) => current = Some(section.to_owned()),
            None => {
                if let Some(section) = &current {
                    let text = sections.entry(section.clone()).or_default();
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    Some(
        shell
            .lines()
            .map(|line| match line.trim().strip_prefix(";; @") {
                Some(section) => sections.remove(section).unwrap_or_default(),
                None => format!("{line}\n"),
            })
            .collect(),
    )
}

/// Assembles a component from its text into the tests' target folder: `hostile_<guest>.wasm`.
fn assemble(guest: &str, text: &str) -> std::path::PathBuf {
    let bytes = wat::parse_str(text).unwrap_or_else(|e| panic!("plugins/hostile/wat/{guest}.wat: {e}"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wat");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("hostile_{}.wasm", guest.replace('-', "_")));
    // Tests assemble at once: each writes a file of its own and moves it into place.
    let mut file = tempfile::NamedTempFile::new_in(&dir).unwrap();
    std::io::Write::write_all(&mut file, &bytes).unwrap();
    file.persist(&path).unwrap();
    path
}

/// Rust's wasm32-wasip2 target (installed if missing): Rust guests build with it, and C ones
/// link with the `wasm-component-ld` it brings.
pub fn wasm_target() -> Result<(), String> {
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if installed.is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2")) {
        let ok = std::process::Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status();
        if !ok.is_ok_and(|s| s.success()) {
            return Err("cannot install the wasm32-wasip2 target (rustup target add wasm32-wasip2)".into());
        }
    }
    Ok(())
}

/// The C toolchain for components, installed if missing as `kpo plugin new --lang c`'s README
/// says: Debian's clang, lld, wasi-libc, compiler runtime and jsmn, and wit-bindgen's C generator
/// from crates.io (minutes to build, once per machine).
pub fn c_toolchain() -> Result<(), String> {
    static READY: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    READY
        .get_or_init(|| {
            wasm_target()?;
            let packages = [
                "clang",
                "lld",
                "wasi-libc",
                "libclang-rt-dev-wasm32",
                "libjsmn-dev",
                "make",
            ];
            let missing = std::process::Command::new("dpkg")
                .args(["-s"])
                .args(packages)
                .output()
                .is_ok_and(|o| !o.status.success());
            if missing {
                step(
                    std::process::Command::new("apt-get")
                        .args(["install", "-y", "-q"])
                        .args(packages)
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                    "apt-get install (the C toolchain)",
                )?;
            }
            let bindgen = std::process::Command::new("wit-bindgen")
                .arg("--version")
                .output();
            if !bindgen.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(" 0.63.0")) {
                step(
                    std::process::Command::new(env!("CARGO"))
                        .args([
                            "install",
                            "wit-bindgen-cli",
                            "--version",
                            "0.63.0",
                            "--locked",
                            "--quiet",
                        ])
                        .env_remove("CARGO_TARGET_DIR")
                        .env_remove("RUSTFLAGS"),
                    "cargo install wit-bindgen-cli",
                )?;
            }
            Ok(())
        })
        .clone()
}

/// The C example plugin, built with its own Makefile; the folder it is copied into.
fn build_c() -> Result<std::path::PathBuf, String> {
    c_toolchain()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let out = root.join("target/c");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let dir = root.join("c/require-limits");
    step(
        std::process::Command::new("make").current_dir(&dir),
        "make (plugins/c/require-limits)",
    )?;
    std::fs::copy(dir.join("require_limits.wasm"), out.join("require_limits.wasm"))
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn build_plugins() -> Result<std::path::PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    wasm_target()?;
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins/Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .status()
        .map_err(|e| format!("cannot run cargo to build the plugins: {e}"))?;
    if !status.success() {
        return Err("building the plugins failed (cargo build in plugins/)".into());
    }
    Ok(root.join("plugins/target/wasm32-wasip2/release"))
}

/// Runs a build step, with its output on failure.
pub fn step(cmd: &mut std::process::Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The JavaScript plugins, built with componentize-qjs from npm (installed into their folder);
/// the folder they are built into.
fn build_js() -> Result<std::path::PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/js");
    if !dir.join("node_modules/.bin/componentize-qjs").exists() {
        step(
            std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            "npm ci",
        )?;
    }
    std::fs::create_dir_all(dir.join("../target/js")).map_err(|e| e.to_string())?;
    step(
        std::process::Command::new("npm")
            .args(["run", "build"])
            .current_dir(&dir),
        "npm run build",
    )?;
    Ok(dir.join("../target/js"))
}

/// The Python plugin (contract 0.1.0), built with componentize-py from PyPI (installed with pip
/// if missing); the folder it is built into.
fn build_python() -> Result<std::path::PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/python/result-check");
    let have = std::process::Command::new("componentize-py")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        step(
            std::process::Command::new("python3")
                .args(["-m", "pip", "install", "-q", "-r", "requirements.txt"])
                .current_dir(&dir),
            "pip install componentize-py",
        )?;
    }
    std::fs::create_dir_all(dir.join("../../target/python")).map_err(|e| e.to_string())?;
    step(
        std::process::Command::new("componentize-py")
            .args([
                "-d",
                "../../../wit/0.1.0",
                "-w",
                "interpreter-plugin",
                "componentize",
                "app",
                "-o",
            ])
            .arg("../../target/python/result_check.wasm")
            .current_dir(&dir),
        "componentize-py",
    )?;
    Ok(dir.join("../../target/python"))
}

/// The tests' own compile cache (under the target folder), never the user's `~/.cache/kpo`.
pub fn plugin_cache() -> Option<std::path::PathBuf> {
    Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"))
}

/// The `kpo` binary, with its journal, compile cache and configuration (policies) in this test
/// process's temporary folder rather than the user's home.
pub fn kpo_command() -> std::process::Command {
    let scratch = std::env::temp_dir().join(format!("kpo-tests-{}", std::process::id()));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kpo"));
    cmd.env_remove("RUST_LOG")
        .env("KPO_STATE_DIR", scratch.join("state"))
        .env("KPO_CACHE_DIR", scratch.join("cache"))
        .env("KPO_CONFIG_DIR", scratch.join("config"));
    cmd
}

/// Held by the real-cluster tests that load this two-core machine and its one node hard (dozens
/// of pods, floods of output, components compiled for a minute) and by those whose waits such a
/// load stretches past their patience (a kill timed to the journal, which needs kpo's log stream
/// to start before the task's output ends; seen in CI: it did not): they take turns, the rest of
/// the suite runs beside them.
pub fn node_to_myself() -> std::sync::MutexGuard<'static, ()> {
    static NODE: Mutex<()> = Mutex::new(());
    NODE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long a test waits for something the cluster or kpo will do before it fails.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until `check` finds what it looks for, asking again every 20 ms, for at most
/// [`PATIENCE`]; fails the test naming `what` it waited for. Tests synchronise on this (or on
/// [`wait_until`]), never on a sleep.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// [`wait_for`] a condition.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// The first pod that `selector` (a label selector, or empty) finds running, once there is one.
pub async fn running_pod(api: &Api<Pod>, selector: &str) -> Pod {
    let params = ListParams::default().labels(selector);
    wait_for("a running pod", || async {
        let pods = api.list(&params).await.map(|l| l.items).unwrap_or_default();
        pods.into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await
}

/// The file of run `run_id`'s journal in the state folder `state` with extension `ext` (`json`
/// or `cursors`): named by the run id and a key of its cluster and namespace. `None` until
/// there is one.
pub fn journal_file(state: &Path, run_id: &str, ext: &str) -> Option<std::path::PathBuf> {
    let prefix = format!("{run_id}.");
    let suffix = format!(".{ext}");
    std::fs::read_dir(state.join("runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(&prefix)
                && name.ends_with(&suffix)
                && !name[prefix.len()..name.len() - suffix.len()].contains('.')
        })
}
