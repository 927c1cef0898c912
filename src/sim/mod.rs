//! The simulated cluster: an in-process HTTP server that speaks the Kubernetes API for what kpo
//! uses, with a simulated scheduler and kubelet behind it.
//!
//! It is part of the product (`kpo run --sim`) as much as of the tests: anyone can rehearse a
//! task, and every test talks to it over HTTP through the real `kube` client.

mod api;
mod disruptions;
mod faults;
mod handlers;
mod kubelet;
mod leases;
mod listener;
mod logfile;
mod node;
mod pod_log;
mod pod_status;
mod pods;
mod registry;
mod runtime;
mod scheduler;
mod script;
mod select;
mod store;
mod tally;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

pub use faults::{Faults, Target};
pub use tally::{Record, Write};

/// The one node of the simulated cluster.
pub const NODE_NAME: &str = "sim-node";
pub use scheduler::SCHEDULE_ANNOTATION;
pub use script::{SCRIPT_PREFIX, Script, filler_document, long_line};

/// A running simulated cluster. Dropping it stops the server.
pub struct SimCluster {
    addr: SocketAddr,
    faults: Arc<Faults>,
    tally: Arc<tally::Tally>,
    server: tokio::task::JoinHandle<()>,
}

impl SimCluster {
    /// Starts a cluster on a free loopback port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let socket = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = socket.local_addr()?;
        let faults = Arc::new(Faults::default());
        let tally = Arc::new(tally::Tally::default());
        let sim = handlers::Sim {
            store: store::Store::new(),
            faults: faults.clone(),
            tally: tally.clone(),
        };
        let listener = listener::OutageListener::new(socket, faults.clone())?;
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, api::router(sim)).await {
                tracing::error!("simulated API server stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            faults,
            tally,
            server,
        })
    }

    /// The API server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube` client for this cluster, with `default` as its namespace.
    pub fn client(&self) -> kube::Client {
        self.client_limited(crate::client::RateLimit::default())
    }

    /// A client of this cluster with a rate limit of its own.
    pub fn client_limited(&self, limit: crate::client::RateLimit) -> kube::Client {
        let uri = self.url().parse().expect("a socket address is a valid URI");
        let config = kube::Config::new(uri);
        crate::client::build_limited(config, limit).expect("a plain-HTTP config always builds a client")
    }

    /// A kubeconfig pointing at this cluster, for other processes (`kpo --kubeconfig`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kpo-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: kpo-sim\n  context:\n    cluster: kpo-sim\n    user: kpo-sim\n    namespace: default\nusers:\n- name: kpo-sim\n  user: {{}}\ncurrent-context: kpo-sim\n",
            url = self.url()
        )
    }

    /// The fault injector, to make the API server misbehave on purpose.
    /// What the server has seen so far: requests, pods created per run, the most pods at once.
    pub fn record(&self) -> Record {
        self.tally.record()
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        self.server.abort();
    }
}
