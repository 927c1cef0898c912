//! kpo's own files — the run journal (it holds result documents) and the compile cache (native
//! code that kpo loads with `unsafe`) — are the user's alone: folders owner-only, files written
//! whole under a name no other writer shares, and a cache entry someone else could have written
//! never trusted.

use std::io::Write;
use std::path::Path;

/// Creates `dir` (and its parents) if needed; a folder kpo creates is readable by its owner only.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never half of
/// one, and never another writer's: each write has a temporary file of its own (owner-only),
/// renamed into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Whether a file may be trusted as kpo's own: owned by this user, writable by no one else.
#[cfg(unix)]
pub fn trusted(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    metadata.uid() == me && metadata.mode() & 0o022 == 0
}

#[cfg(not(unix))]
pub fn trusted(_metadata: &std::fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_never_swap_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let path = dir.path().join("cache").join(format!("{t}.bin"));
                std::thread::spawn(move || {
                    for _ in 0..40 {
                        write_atomically(&path, &vec![t; 256 * 1024]).unwrap();
                        let read = std::fs::read(&path).unwrap();
                        assert!(read.iter().all(|b| *b == t), "file {t} holds another's bytes");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn folders_and_files_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a").join("b").join("entry");
        write_atomically(&file, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("a").join("b")), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert!(trusted(&std::fs::metadata(&file).unwrap()));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!trusted(&std::fs::metadata(&file).unwrap()));
    }
}
