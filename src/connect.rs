//! Finding the cluster: the simulated one, a kubeconfig (with a chosen context), or the
//! in-cluster service account.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

#[cfg(feature = "sim")]
use crate::sim::SimCluster;

/// Where to find the cluster, as the user asked.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub sim: bool,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Use the service account of the pod kpo runs in, even where a kubeconfig exists (a
    /// scheduler's worker in the cluster whose machine also has one).
    pub in_cluster: bool,
    /// How many requests the client may start (see [`crate::client::RateLimit`]).
    pub rate: crate::client::RateLimit,
}

/// A connected cluster. Keeps the simulated cluster alive for as long as it is used.
pub struct Connection {
    pub client: Client,
    /// The namespace of the kubeconfig context (or the pod's own namespace in a cluster).
    pub default_namespace: String,
    pub server: String,
    /// Whether it is kpo's simulated cluster (nothing real is created).
    pub simulated: bool,
    #[cfg(feature = "sim")]
    _sim: Option<SimCluster>,
}

/// Why no cluster could be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot start the simulated cluster")]
    Sim(#[source] std::io::Error),
    #[error("this kpo was built without the simulated cluster (cargo feature `sim`)")]
    NoSim,
    #[error(
        "cannot use kubeconfig {} (without a cluster, try `--sim` to run on the built-in simulated cluster)",
        path.display()
    )]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no cluster configured: no usable kubeconfig (KUBECONFIG, ~/.kube/config) and not running inside a pod; pass --kubeconfig, or try `--sim` to run on the built-in simulated cluster"
    )]
    NoConfig(#[source] kube::config::InferConfigError),
    #[error(
        "--in-cluster: not running inside a pod, or its service account is not mounted (KUBERNETES_SERVICE_HOST, /var/run/secrets/kubernetes.io/serviceaccount)"
    )]
    NotInCluster(#[source] kube::config::InClusterError),
    #[error("cannot use context {context:?}")]
    Context {
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot create a client for {server}")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "cannot reach the cluster at {server}; is it running? (try `--sim` to run on the built-in simulated cluster)"
    )]
    Unreachable {
        server: String,
        #[source]
        source: kube::Error,
    },
}

impl ConnectError {
    /// Always [`crate::exit::CLUSTER_UNAVAILABLE`].
    pub fn exit_code(&self) -> i32 {
        crate::exit::CLUSTER_UNAVAILABLE
    }
}

#[cfg(feature = "sim")]
async fn simulated(rate: crate::client::RateLimit) -> Result<Connection, ConnectError> {
    let sim = SimCluster::start().await.map_err(ConnectError::Sim)?;
    Ok(Connection {
        client: sim.client_limited(rate),
        default_namespace: "default".into(),
        server: sim.url(),
        simulated: true,
        _sim: Some(sim),
    })
}

#[cfg(not(feature = "sim"))]
async fn simulated(_rate: crate::client::RateLimit) -> Result<Connection, ConnectError> {
    Err(ConnectError::NoSim)
}

/// Connects to the cluster `target` names and checks that it answers.
pub async fn connect(target: &Target) -> Result<Connection, ConnectError> {
    if target.sim {
        return simulated(target.rate).await;
    }
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    let config = match (&target.kubeconfig, &target.context) {
        _ if target.in_cluster => Config::incluster().map_err(ConnectError::NotInCluster)?,
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|source| ConnectError::Kubeconfig {
                    path: path.clone(),
                    source,
                })?
        }
        (None, Some(context)) => {
            Config::from_kubeconfig(&options)
                .await
                .map_err(|source| ConnectError::Context {
                    context: context.clone(),
                    source,
                })?
        }
        (None, None) => Config::infer().await.map_err(ConnectError::NoConfig)?,
    };
    let server = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client =
        crate::client::build_limited(config, target.rate).map_err(|source| ConnectError::Client {
            server: server.clone(),
            source,
        })?;
    client
        .apiserver_version()
        .await
        .map_err(|source| ConnectError::Unreachable {
            server: server.clone(),
            source,
        })?;
    Ok(Connection {
        client,
        default_namespace,
        server,
        simulated: false,
        #[cfg(feature = "sim")]
        _sim: None,
    })
}
