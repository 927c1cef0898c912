//! kpo's integration tests: one binary (link once), modules by subject.

mod cli;
mod e2e;
mod harness;
mod plugins;
mod results;
mod scenarios;
mod sim;
mod task_file;
