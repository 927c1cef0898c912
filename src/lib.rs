//! kpo: run a TOML task as a supervised Kubernetes pod.

pub mod batch;
pub mod claim;
pub mod cli;
pub mod client;
pub mod connect;
pub mod exit;
pub mod imposed;
pub mod journal;
pub mod names;
pub mod owned;
pub mod plugin;
pub mod pod;
pub mod private;
pub mod pss;
pub mod reattach;
pub mod report;
pub mod result;
pub mod runner;
pub mod said;
#[cfg(feature = "sim")]
pub mod sim;
pub mod status;
pub mod stop;
pub mod supervise;
pub mod task;
pub mod vocabulary;
