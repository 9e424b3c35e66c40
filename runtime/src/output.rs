//! The one output writer of `ftc` and `ftl-run`: every file or artifact directory a command
//! writes goes through here. A file is written to a new temporary file beside the target
//! (random name, created with `O_EXCL`, so a planted file or symlink cannot redirect it),
//! synced, given the mode of the file it replaces, and renamed over the target; on every error
//! the temporary file is removed. The target must be a regular file or not exist: a symbolic
//! link, a directory, a device or a FIFO is refused, never replaced or written through.
//! An artifact directory is built complete in a temporary directory and swapped into place.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An output that was refused or could not be written.
#[derive(Debug)]
pub struct OutputError {
    /// The target.
    pub path: PathBuf,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for OutputError {}

fn refuse(path: &Path, message: impl Into<String>) -> OutputError {
    OutputError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// What is at a target path now.
enum Existing {
    Nothing,
    File(Permissions),
    Dir,
}

fn existing(path: &Path) -> Result<Existing, OutputError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(refuse(
            path,
            "is a symbolic link; refusing to replace it (give the path it points to instead)",
        )),
        Ok(m) if m.is_file() => Ok(Existing::File(m.permissions())),
        Ok(m) if m.is_dir() => Ok(Existing::Dir),
        Ok(_) => Err(refuse(
            path,
            "is not a regular file (a device, FIFO or socket); refusing to replace it",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Nothing),
        Err(e) => Err(refuse(path, e.to_string())),
    }
}

/// The directory a target lives in and its file name.
fn split(path: &Path) -> Result<(PathBuf, String), OutputError> {
    let name = path
        .file_name()
        .ok_or_else(|| refuse(path, "the output path names no file"))?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// New files get `0666` less the umask, as `open(2)` gives them.
#[cfg(unix)]
fn new_file_permissions() -> Permissions {
    use std::os::unix::fs::PermissionsExt;
    Permissions::from_mode(0o666)
}

/// Writes the file `path` with `write`, atomically (see the module comment).
pub fn write_file(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), OutputError> {
    let mode = match existing(path)? {
        Existing::Nothing => None,
        Existing::File(p) => Some(p),
        Existing::Dir => return Err(refuse(path, "is a directory; refusing to replace it")),
    };
    let (dir, name) = split(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(new_file_permissions())
        .tempfile_in(&dir)
        .map_err(|e| {
            refuse(
                path,
                format!("cannot create a file in {}: {e}", dir.display()),
            )
        })?;
    let io = |e: io::Error| refuse(path, e.to_string());
    if let Some(p) = mode {
        tmp.as_file().set_permissions(p).map_err(io)?;
    }
    write(tmp.as_file_mut()).map_err(io)?;
    tmp.as_file_mut().flush().map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    // Dropping the temporary file on any error above removes it; `persist` renames it.
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path`, atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_file(path, |f| f.write_all(bytes))
}

/// Writes the directory `path` by `fill`ing a fresh temporary directory beside it and moving
/// that into place. An existing `path` is replaced only when `replaceable` says it is one of
/// ours (an earlier artifact); anything else is refused untouched.
pub fn write_dir(
    path: &Path,
    replaceable: impl Fn(&Path) -> bool,
    fill: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), OutputError> {
    let replace = match existing(path)? {
        Existing::Nothing => false,
        Existing::Dir if replaceable(path) => true,
        Existing::Dir => {
            return Err(refuse(
                path,
                "is a directory that is not an artifact; refusing to replace it",
            ))
        }
        Existing::File(_) => return Err(refuse(path, "is a file; refusing to replace it")),
    };
    let (dir, name) = split(path)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempdir_in(&dir)
        .map_err(|e| {
            refuse(
                path,
                format!("cannot create a directory in {}: {e}", dir.display()),
            )
        })?;
    fill(tmp.path()).map_err(|m| refuse(path, m))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), Permissions::from_mode(0o755))
            .map_err(|e| refuse(path, e.to_string()))?;
    }
    let staged = tmp.keep();
    let failed = |e: io::Error| {
        let _ = fs::remove_dir_all(&staged);
        refuse(path, e.to_string())
    };
    if !replace {
        return fs::rename(&staged, path).map_err(failed);
    }
    // Move the old artifact aside, then the new one in: a reader sees the old or the new
    // artifact whole, never a mix of their files. Dropping `aside` removes the old one.
    let aside = tempfile::Builder::new()
        .prefix(&format!(".{name}.old."))
        .tempdir_in(&dir)
        .map_err(failed)?;
    let old = aside.path().join("old");
    fs::rename(path, &old).map_err(failed)?;
    fs::rename(&staged, path).map_err(|e| {
        let _ = fs::rename(&old, path);
        failed(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_regular_files_keeping_their_mode_and_refuses_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        write_bytes(&target, b"one").unwrap();
        fs::set_permissions(&target, Permissions::from_mode(0o600)).unwrap();
        write_bytes(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_bytes(&link, b"x")
            .unwrap_err()
            .message
            .contains("symbolic link"));
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());

        let e = write_bytes(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
        assert!(fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device_like());

        let failing = write_file(&target, |_| Err(io::Error::other("disk full")));
        assert!(failing.is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "no temporary file is left: {names:?}");
    }

    trait CharDevice {
        fn is_char_device_like(&self) -> bool;
    }
    impl CharDevice for fs::FileType {
        fn is_char_device_like(&self) -> bool {
            use std::os::unix::fs::FileTypeExt;
            self.is_char_device()
        }
    }

    #[test]
    fn directories_are_swapped_whole_and_foreign_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.ftlpack");
        let fill = |text: &'static str| {
            move |d: &Path| fs::write(d.join("f"), text).map_err(|e| e.to_string())
        };
        let ours = |p: &Path| p.join("f").exists();
        write_dir(&target, ours, fill("one")).unwrap();
        write_dir(&target, ours, fill("two")).unwrap();
        assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "two");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 1);
        assert!(write_dir(&target, ours, |_| Err("failed".into())).is_err());
        assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "two");
        let foreign = dir.path().join("home");
        fs::create_dir(&foreign).unwrap();
        fs::write(foreign.join("notes"), "mine").unwrap();
        assert!(write_dir(&foreign, ours, fill("x")).is_err());
        assert_eq!(fs::read_to_string(foreign.join("notes")).unwrap(), "mine");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary directory is left"
        );
    }
}
