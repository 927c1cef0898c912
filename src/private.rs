//! kpo's own files — the run journal (it holds result documents) and the compile cache (native
//! code that kpo loads with `unsafe`) — are the user's alone: folders owner-only (an existing one
//! that is not is refused, not used), files written whole under a name no other writer shares,
//! opened without following links and checked through the handle they are read from, so that
//! nothing swapped in between a check and a read is ever trusted.

use std::io::{Read, Write};
use std::path::Path;

/// Creates `dir` (and its parents) if needed, readable by its owner only, and makes sure the
/// folder — new or found — is this user's own, writable by no one else, and not a link: what
/// kpo keeps there could otherwise be replaced by another user.
///
/// # Errors
/// The folder cannot be created, or it is not the user's alone (the message says why).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let found = std::fs::symlink_metadata(dir)?;
    if !found.is_dir() || !trusted(&found) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not yours alone ({}): kpo keeps nothing there (make it a folder of yours with mode 0700, or remove it)",
                dir.display(),
                describe(&found)
            ),
        ));
    }
    Ok(())
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

/// Opens `path` for reading without following a link at its end, and reads it whole, if the
/// file so opened is this user's and writable by no one else: the check and the read are of
/// one and the same file, whatever is renamed into place meanwhile.
///
/// # Errors
/// The file cannot be opened or read, is a link, or is not the user's alone.
pub fn read_trusted(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = open_no_follow(std::fs::OpenOptions::new().read(true), path)?;
    let found = file.metadata()?;
    if !found.is_file() || !trusted(&found) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not yours alone ({})", path.display(), describe(&found)),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(found.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens `path` with `options`, never through a link at its end (`O_NOFOLLOW`): a link planted
/// where kpo keeps a file of its own fails to open instead of leading elsewhere.
pub fn open_no_follow(options: &mut std::fs::OpenOptions, path: &Path) -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NOFOLLOW);
    options.open(path)
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

/// Owner and mode, for a message about a file that is not trusted.
#[cfg(unix)]
fn describe(metadata: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let kind = if metadata.is_symlink() { "a link, " } else { "" };
    format!(
        "{kind}owner uid {}, mode {:o}",
        metadata.uid(),
        metadata.mode() & 0o7777
    )
}

#[cfg(not(unix))]
fn describe(_metadata: &std::fs::Metadata) -> String {
    String::new()
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
        assert!(read_trusted(&file).is_err());
    }

    /// A folder others may write to is refused, not used; so is a link where a folder should be.
    #[cfg(unix)]
    #[test]
    fn a_folder_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = create_dir(&shared).unwrap_err().to_string();
        assert!(e.contains("is not yours alone") && e.contains("mode 770"), "{e}");
        assert!(write_atomically(&shared.join("entry"), b"x").is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(create_dir(&link).is_err());
    }

    /// A link where a file of kpo's should be is not followed.
    #[cfg(unix)]
    #[test]
    fn a_link_is_never_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        write_atomically(&target, b"secret").unwrap();
        let link = dir.path().join("entry");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_trusted(&target).unwrap(), b"secret");
        assert!(read_trusted(&link).is_err());
        let opened = open_no_follow(std::fs::OpenOptions::new().append(true), &link);
        assert!(opened.is_err());
    }
}
