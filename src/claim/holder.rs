//! Who holds a claim, and whether that holder is a kpo process of this machine that is gone.
//!
//! A hostname and a PID do not name a process: two containers of one pod share the hostname,
//! each with its own PID namespace, and a kpo that is PID 1 in its container shares its PID with
//! every kpo before it. So a holder is judged gone — its claim free without waiting for it to
//! expire — only by an identity two processes cannot share: the boot (the kernel's boot id), the
//! PID namespace, the PID and the process's start time, recorded beside the holder's name in the
//! Lease's [`PROCESS_ANNOTATION`]. A holder in another boot or PID namespace, or one whose record
//! is missing or names another holder (an older kpo, or anyone who can write the Lease), is never
//! judged from here: its claim expires.

/// The Lease annotation recording the holder's process: `<holder> boot=… pidns=… pid=… start=…`.
pub const PROCESS_ANNOTATION: &str = "kpo.dev/holder-process";

/// One process, as no other process on any machine can be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    boot: String,
    pid_ns: String,
    pid: u32,
    /// Clock ticks after boot at which it started (`/proc/PID/stat`, field 22).
    start: u64,
}

impl Process {
    /// This process; `None` where the system does not say (not Linux, no `/proc`).
    pub fn this() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            boot: boot_id()?,
            pid_ns: pid_namespace()?,
            pid,
            start: start_time(pid)?,
        })
    }

    /// The annotation's value for `holder` running as this process.
    pub fn record(&self, holder: &str) -> String {
        format!(
            "{holder} boot={} pidns={} pid={} start={}",
            self.boot, self.pid_ns, self.pid, self.start
        )
    }

    /// The process a record names, if the record is one and is `holder`'s.
    pub fn of_record(record: &str, holder: &str) -> Option<Self> {
        let rest = record.strip_prefix(holder)?.strip_prefix(' ')?;
        let mut fields = rest.split(' ').map(|f| f.split_once('='));
        let mut next = |key: &str| match fields.next() {
            Some(Some((k, v))) if k == key => Some(v.to_owned()),
            _ => None,
        };
        let process = Self {
            boot: next("boot")?,
            pid_ns: next("pidns")?,
            pid: next("pid")?.parse().ok()?,
            start: next("start")?.parse().ok()?,
        };
        fields.next().is_none().then_some(process)
    }

    /// Whether this names a process that is gone, as seen by `observer`: the same boot and PID
    /// namespace, and its PID runs no process or one that started at another time.
    pub fn is_gone_for(&self, observer: &Process) -> bool {
        if self == observer || self.boot != observer.boot || self.pid_ns != observer.pid_ns {
            return false;
        }
        start_time(self.pid) != Some(self.start)
    }
}

/// The name a claim gives its holder on machine `host`: the machine, the process, and a random
/// part for two kpo of one process. For people; [`Process`] is what is judged.
pub fn name(host: &str) -> String {
    format!("{host}/{}/{}", std::process::id(), crate::names::random_suffix(4))
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_owned()).filter(|id| !id.is_empty() && !id.contains(' '))
}

fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_str()?;
    Some(link.to_owned()).filter(|l| !l.contains(' '))
}

/// When process `pid` started, in clock ticks after boot; `None` if no such process runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Process {
        Process::this().expect("a Linux /proc")
    }

    #[test]
    fn a_record_reads_back_only_for_its_own_holder() {
        let record = me().record("host/12/abcd");
        assert_eq!(Process::of_record(&record, "host/12/abcd"), Some(me()));
        assert_eq!(Process::of_record(&record, "host/12/abc"), None);
        assert_eq!(Process::of_record(&record, "other/12/abcd"), None);
        assert_eq!(
            Process::of_record(&format!("{record} extra=1"), "host/12/abcd"),
            None
        );
        assert_eq!(Process::of_record("host/12/abcd", "host/12/abcd"), None);
    }

    #[test]
    fn only_a_process_of_this_boot_and_namespace_can_be_judged_gone() {
        let me = me();
        assert!(!me.is_gone_for(&me), "this process is alive");
        let dead = Process {
            pid: i32::MAX as u32,
            ..me.clone()
        };
        assert!(dead.is_gone_for(&me), "no process has that PID");
        // PID 1 in a container: the same PID, another start time — the kpo before this one.
        let earlier = Process {
            start: me.start.saturating_sub(1),
            ..me.clone()
        };
        assert!(earlier.is_gone_for(&me));
        // Another PID namespace (another container of the pod, same hostname): never judged.
        let elsewhere = Process {
            pid_ns: "pid:[1]".into(),
            ..dead.clone()
        };
        assert!(!elsewhere.is_gone_for(&me));
        let other_boot = Process {
            boot: "another-boot".into(),
            ..dead
        };
        assert!(!other_boot.is_gone_for(&me));
    }
}
