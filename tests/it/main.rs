//! kpo's integration tests: one binary (link once), modules by subject.

mod batches;
mod claims;
mod cli;
mod cli_edge;
mod corpus;
mod disruptions;
mod e2e;
mod fuzz;
mod harness;
mod inert;
mod layering;
mod leftovers;
mod limits;
mod logs;
mod matrix;
mod plugins;
mod policies;
mod readme;
mod reattach;
mod results;
mod retries;
mod runs;
mod scenarios;
mod sim;
mod sim_logs;
mod task_file;
