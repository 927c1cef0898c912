//! Exit codes: part of kpo's interface, documented in the README, tested in `tests/`.
//!
//! A failed task exits with its main container's own code (1-255), so a script can tell
//! `exit 3` from `exit 4`. kpo's own outcomes use codes that shells and sysexits.h already give
//! a meaning to; where a container's code collides with one, the report's `outcome` decides.

/// The main container exited 0.
pub const SUCCESS: i32 = 0;
/// The run failed without an exit code of its own (e.g. the pod was deleted by someone else).
pub const FAILED: i32 = 1;
/// Command-line usage error (clap's convention).
pub const USAGE: i32 = 2;
/// The API server refused the pod (invalid, forbidden, quota). sysexits' EX_DATAERR.
pub const REJECTED: i32 = 65;
/// No cluster could be reached, or it failed in a way kpo could not recover from. EX_UNAVAILABLE.
pub const CLUSTER_UNAVAILABLE: i32 = 69;
/// A bug in kpo. EX_SOFTWARE.
pub const INTERNAL: i32 = 70;
/// The task's result is missing (but required), not JSON, too large, or its frame is corrupted.
/// EX_IOERR.
pub const RESULT_INVALID: i32 = 74;
/// Another kpo supervises the run (its claim, a Lease, is held), or this kpo lost its claim
/// and stopped acting on the pod. Try again later. EX_TEMPFAIL.
pub const CLAIMED: i32 = 75;
/// A plugin failed: it trapped, ran out of time or memory, returned something invalid, or
/// changed what it may not. No pod was created if it was a mutator. EX_PROTOCOL.
pub const PLUGIN_FAILED: i32 = 76;
/// A plugin refused the pod: a mutator, or a validating policy in `enforce` mode. No pod was
/// created; the run still has a report (`outcome: refused`). EX_NOPERM.
pub const REFUSED: i32 = 77;
/// The task file (or a file it names: a pod template, a policy file) is invalid, redefines an
/// imposed policy, or a plugin rejected its `config`. EX_CONFIG.
pub const CONFIG: i32 = 78;
/// A batch in which some task did not succeed (nor was skipped): each task's own code is in
/// its report and the summary.
pub const BATCH_FAILED: i32 = 80;
/// Skipped: the main container exited with one of `[run] skip_on_exit_codes`, or an
/// interpreter plugin judged the run skipped (e.g. "nothing to do today").
pub const SKIPPED: i32 = 99;
/// The run's timeout or the pod's active deadline passed (GNU `timeout`'s code).
pub const TIMED_OUT: i32 = 124;
/// The pod never started its main container: unschedulable, image errors, startup timeout.
pub const NEVER_STARTED: i32 = 125;
/// Interrupted by Ctrl-C or SIGTERM (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;
