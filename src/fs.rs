//! Files that hold secrets or personal data: the data dir is created 0700 and the files in it
//! 0600 (on Unix), so other local users read nothing.

use std::io;
use std::path::Path;

/// Creates `dir` (and missing parents) readable by this user only; an existing directory is
/// left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Whether users other than this one may enter `dir` (an older install's data dir, or one
/// made by hand): worth a warning, since it holds keys and personal data.
pub fn open_to_others(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

/// Opens `path` for a new file readable by this user only (its directory created private).
fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Creates `path` empty with mode 0600 unless it exists (SQLite then opens it, and gives its
/// `-wal` and `-shm` files the same mode).
pub fn create_private_file(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    match private_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a new private file (mode 0600), creating its directory; fails if it exists.
pub fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    use std::io::Write as _;
    private_options()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(contents.as_bytes())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn data_dirs_and_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data/nested");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("data")), 0o700);
        let db = dir.join("x.db");
        create_private_file(&db).unwrap();
        create_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let key = root.path().join("keys/k.pem");
        write_private(&key, "secret").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert!(write_private(&key, "again").is_err(), "never overwrites");
    }
}
