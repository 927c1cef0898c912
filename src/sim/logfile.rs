//! The container runtime's log files, kept as containerd keeps them: output stored as records
//! stamped when they were stored; a line longer than the runtime's limit split into partial
//! records; output without a final newline stored as a partial record when the container ends;
//! and the file rotated once it passes a size, after which the kubelet reads only the new file.

use jiff::Timestamp;

/// containerd's `max_container_log_line_size` default.
const DEFAULT_MAX_LINE: usize = 16 * 1024;

/// One record of a log file.
#[derive(Debug, Clone)]
pub struct Record {
    pub at: Timestamp,
    /// The content: a whole line with its newline, or a partial one without.
    pub bytes: Vec<u8>,
}

impl Record {
    /// Whether the record ends a line (containerd's `F` tag, not `P`).
    pub fn ends_line(&self) -> bool {
        self.bytes.ends_with(b"\n")
    }
}

/// How the node's runtime and kubelet keep logs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest record; longer lines become partial records of this size.
    pub max_line: usize,
    /// The kubelet's `containerLogMaxSize`: the file is rotated once it is this large.
    pub rotate_at: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            rotate_at: None,
        }
    }
}

/// One container's log.
#[derive(Debug, Default)]
pub struct LogFile {
    pub records: Vec<Record>,
    /// The first record of the current file: earlier ones were rotated away.
    pub current: usize,
    /// Bytes in the current file.
    size: usize,
    /// Output that has not ended a line yet.
    open: Vec<u8>,
    /// The container has exited: nothing more comes from it.
    pub finished: bool,
}

impl LogFile {
    /// Stores what the container wrote.
    pub fn write(&mut self, mut bytes: &[u8], limits: Limits) {
        while let Some(nl) = memchr::memchr(b'\n', bytes) {
            self.open.extend_from_slice(&bytes[..nl]);
            self.store_partials(limits);
            let mut line = std::mem::take(&mut self.open);
            line.push(b'\n');
            self.store(line, limits);
            bytes = &bytes[nl + 1..];
        }
        self.open.extend_from_slice(bytes);
        self.store_partials(limits);
    }

    /// The container exited: what it left without a newline is stored as a partial record.
    pub fn finish(&mut self, limits: Limits) {
        if !self.open.is_empty() {
            let rest = std::mem::take(&mut self.open);
            self.store(rest, limits);
        }
        self.finished = true;
    }

    fn store_partials(&mut self, limits: Limits) {
        while self.open.len() > limits.max_line.max(1) {
            let rest = self.open.split_off(limits.max_line.max(1));
            let part = std::mem::replace(&mut self.open, rest);
            self.store(part, limits);
        }
    }

    fn store(&mut self, bytes: Vec<u8>, limits: Limits) {
        self.size += bytes.len();
        self.records.push(Record {
            at: Timestamp::now(),
            bytes,
        });
        if limits.rotate_at.is_some_and(|max| self.size >= max) {
            self.current = self.records.len();
            self.size = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_become_partial_records_and_a_last_line_without_newline_one_too() {
        let limits = Limits {
            max_line: 4,
            rotate_at: None,
        };
        let mut log = LogFile::default();
        log.write(b"abcdefghij\nxy", limits);
        log.write(b"z\nend", limits);
        log.finish(limits);
        let records: Vec<&[u8]> = log.records.iter().map(|r| &r.bytes[..]).collect();
        assert_eq!(records, [&b"abcd"[..], b"efgh", b"ij\n", b"xyz\n", b"end"]);
        assert!(!log.records[0].ends_line() && log.records[2].ends_line());
    }

    #[test]
    fn rotation_starts_a_new_file() {
        let limits = Limits {
            max_line: 100,
            rotate_at: Some(10),
        };
        let mut log = LogFile::default();
        log.write(b"12345\n1234\n", limits);
        assert_eq!(log.current, 2);
        log.write(b"new\n", limits);
        assert_eq!(log.current, 2);
    }
}
