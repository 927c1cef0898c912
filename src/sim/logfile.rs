//! The container runtime's log files, kept as containerd keeps them: output stored as records
//! stamped when they were stored; a line longer than the runtime's limit split into partial
//! records; output without a final newline stored as a partial record when the container ends;
//! and the file rotated once it passes a size (when the kubelet next checks), after which the
//! kubelet reads only the new file.

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
    /// The kubelet's `containerLogMonitorInterval` (10 s on v1.20): how often it checks sizes,
    /// so how soon after the last rotation the next may come. `None`: at once.
    pub rotate_every: Option<std::time::Duration>,
    /// containerd cuts the line it is copying when the log is reopened after a rotation: its
    /// first byte ends the old file as a partial record, its rest begins the new file, stamped
    /// a moment later (seen on the test cluster).
    pub split_at_rotation: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            rotate_at: None,
            rotate_every: None,
            split_at_rotation: false,
        }
    }
}

/// One container's log.
#[derive(Debug, Default)]
pub struct LogFile {
    pub records: Vec<Record>,
    /// The first record of the current file: earlier ones were rotated away.
    pub current: usize,
    /// The first record of each file, oldest first (the first is 0).
    pub starts: Vec<usize>,
    /// When the file was last rotated.
    rotated: Option<std::time::Instant>,
    /// The next line stored is cut across the rotation that just happened.
    split_next: bool,
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

    fn store(&mut self, mut bytes: Vec<u8>, limits: Limits) {
        let mut at = Timestamp::now();
        if std::mem::take(&mut self.split_next) && bytes.len() > 1 {
            let rest = bytes.split_off(1);
            self.records.push(Record { at, bytes });
            // The line's first byte ends the old file.
            self.current = self.records.len();
            if let Some(start) = self.starts.last_mut() {
                *start = self.current;
            }
            bytes = rest;
            at += jiff::SignedDuration::from_micros(37);
        }
        self.size += bytes.len();
        self.records.push(Record { at, bytes });
        let due = limits
            .rotate_every
            .is_none_or(|every| self.rotated.is_none_or(|at| at.elapsed() >= every));
        if due && limits.rotate_at.is_some_and(|max| self.size >= max) {
            self.current = self.records.len();
            self.starts.push(self.current);
            self.rotated = Some(std::time::Instant::now());
            self.split_next = limits.split_at_rotation;
            self.size = 0;
        }
    }

    /// Where a reader that has read the records before `next` goes on: at `next` within the file
    /// it read last; at the end of a file that was rotated away, at the start of the *current*
    /// file — as a v1.20 kubelet's follower reopens the log's path, skipping every file rotated
    /// meanwhile. With the end of the file it reads then.
    pub fn reader_at(&self, next: usize) -> (usize, usize) {
        let end = self
            .starts
            .iter()
            .copied()
            .find(|&s| s >= next.max(1))
            .unwrap_or(self.records.len());
        if next == end && end < self.records.len() {
            return (self.current, self.records.len());
        }
        (next, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_become_partial_records_and_a_last_line_without_newline_one_too() {
        let limits = Limits {
            max_line: 4,
            ..Limits::default()
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
    fn a_follower_at_the_end_of_a_rotated_file_skips_to_the_current_one() {
        let limits = Limits {
            max_line: 100,
            rotate_at: Some(4),
            ..Limits::default()
        };
        let mut log = LogFile::default();
        log.write(
            b"aaa
bbb
ccc
",
            limits,
        );
        assert_eq!(log.starts, [1, 2, 3]);
        // Within its file, a reader goes on; at the end of file 0 it reopens the current file.
        assert_eq!(log.reader_at(0), (0, 1));
        // Done with file 0 (rotated away, like files 1 and 2): on at the current file.
        assert_eq!(log.reader_at(1), (3, 3));
        assert_eq!(log.reader_at(3), (3, 3));
        log.write(b"ddd\n", limits);
        assert_eq!(log.reader_at(3), (4, 4));
    }

    #[test]
    fn rotation_starts_a_new_file() {
        let limits = Limits {
            max_line: 100,
            rotate_at: Some(10),
            ..Limits::default()
        };
        let mut log = LogFile::default();
        log.write(b"12345\n1234\n", limits);
        assert_eq!(log.current, 2);
        log.write(b"new\n", limits);
        assert_eq!(log.current, 2);
    }
}
