//! What a run must not leave behind once kpo has returned: no pod of it listed — not even
//! `Terminating` — and, on the test cluster's node, no container of it running.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use kpo::pod::LABEL_RUN_ID;
use kpo::report::RunReport;
use kube::Api;
use kube::api::ListParams;

use crate::scenarios::Cluster;

/// The containerd of `../shared/cluster`'s node, read with `ctr`, when this machine runs it.
pub struct Node {
    socket: PathBuf,
}

impl Node {
    /// The kit's node (`$KPO_CLUSTER_HOME`, default `/var/lib/kpo-cluster`), if its containerd
    /// socket is here and `ctr` can be run.
    pub fn of_the_kit() -> Option<Self> {
        let home = std::env::var_os("KPO_CLUSTER_HOME").unwrap_or_else(|| "/var/lib/kpo-cluster".into());
        let socket = PathBuf::from(home).join("run/containerd/containerd.sock");
        let ctr = std::process::Command::new("ctr").arg("--version").output();
        (socket.exists() && ctr.is_ok_and(|o| o.status.success())).then_some(Self { socket })
    }

    fn ctr(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .expect("ctr runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the node's runtime stored of a container's output (its CRI log file, the records'
    /// contents joined: a `F` record ends a line, a `P` record does not), if the file is here.
    pub fn stored_log(&self, namespace: &str, pod: &str, container: &str) -> Option<Vec<u8>> {
        let dir = std::fs::read_dir("/var/log/pods").ok()?.flatten().find(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&format!("{namespace}_{pod}_")))
        })?;
        let file = std::fs::read(dir.path().join(container).join("0.log")).ok()?;
        let mut out = Vec::new();
        for record in file.split(|b| *b == b'\n').filter(|r| !r.is_empty()) {
            let mut fields = record.splitn(4, |b| *b == b' ');
            let (_, _, tag, content) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next().unwrap_or_default(),
            );
            out.extend_from_slice(content);
            if tag.starts_with(b"F") {
                out.push(b'\n');
            }
        }
        Some(out)
    }

    /// The running containers (the pod sandbox among them) of the pod with `uid`.
    pub fn running_of(&self, uid: &str) -> Vec<String> {
        let tasks = self.ctr(&["tasks", "ls"]);
        tasks
            .lines()
            .skip(1)
            .filter(|l| l.split_whitespace().nth(2) == Some("RUNNING"))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|id| {
                let info = self.ctr(&["containers", "info", id]);
                info.contains(&format!("\"io.kubernetes.pod.uid\": \"{uid}\""))
            })
            .map(str::to_owned)
            .collect()
    }
}

/// Asserts that nothing of the run is left, right now: no waiting.
pub async fn assert_nothing_left(c: &Cluster, report: &RunReport) {
    assert_nothing_listed(c, report).await;
    if let (Some(node), Some(uid)) = (&c.node, &report.uid) {
        let running = node.running_of(uid);
        assert!(running.is_empty(), "the node still runs {running:?} of pod {uid}");
    }
}

/// Asserts that no pod of the run is listed, right now. Only this for a pod that failed its
/// `activeDeadlineSeconds`: the API server deletes a `Failed` pod at once, and a v1.20 kubelet
/// never reports that such a pod's containers have stopped (they stay `running` in its status),
/// so nothing tells kpo when the node is done with it.
pub async fn assert_nothing_listed(c: &Cluster, report: &RunReport) {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), &c.ns);
    let listed = api
        .list(&ListParams::default().labels(&format!("{LABEL_RUN_ID}={}", report.run_id)))
        .await
        .unwrap();
    let left: Vec<_> = listed
        .items
        .iter()
        .map(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.clone());
            (
                p.metadata.name.clone(),
                phase,
                p.metadata.deletion_timestamp.clone(),
            )
        })
        .collect();
    assert!(
        left.is_empty(),
        "pods left behind (even Terminating counts): {left:?}"
    );
}
