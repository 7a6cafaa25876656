//! Atomic writes: a reader sees the old file or the new one, never a torn one, even after a
//! crash or a full disk. The sequence is the canonical one: a fresh temp file in the same folder
//! (a rename across file systems is not atomic), write, fsync the file, rename over the target,
//! fsync the folder so the rename itself is durable. On failure the temp file is removed.
//!
//! A killed writer cannot remove its temp file, so the next write of the same target does: the
//! writer holds an exclusive `flock` on its temp file until the rename, and the kernel drops it
//! when the process dies, so a temp file whose lock can be taken has no live writer. (A pid in
//! the name would not prove it: pids are reused, and a job in another container sharing the
//! folder has pids of its own.)

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A temp file next to its target; removed on drop unless [`AtomicFile::commit`] ran.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Creates a fresh, exclusively created and locked temp file in `target`'s folder, first
    /// removing the temp files of `target` that no live writer holds.
    pub fn create(target: &Path) -> io::Result<Self> {
        let dir = parent(target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        remove_stale_temps(dir, &name);
        loop {
            let temp = dir.join(format!(".{name}.{}.tmp", random_suffix()?));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.lock()?;
            // A sweeper may have taken it between the create and the lock: then it is gone.
            let ours = std::fs::symlink_metadata(&temp)
                .is_ok_and(|m| m.ino() == file.metadata().map_or(0, |f| f.ino()));
            if ours {
                return Ok(Self {
                    file: Some(file),
                    temp,
                    target: target.to_path_buf(),
                });
            }
        }
    }

    /// The open temp file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until commit")
    }

    /// Flushes the temp file to disk, renames it over the target and syncs the folder.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("the file is open until commit");
        file.sync_all()?;
        let renamed = std::fs::rename(&self.temp, &self.target);
        // Unlocked only once renamed, so no sweeper takes it for a dead writer's.
        drop(file);
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&self.temp);
            return Err(e);
        }
        sync_dir(parent(&self.target))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Removes the temp files of the target `name` in `dir` (`.NAME.<hex>.tmp`) whose lock can be
/// taken: their writers are dead. A link is removed itself. Failures are left for next time.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let hex = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"));
        if !hex.is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path);
        if let Ok(file) = opened {
            match file.try_lock() {
                Ok(()) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(TryLockError::WouldBlock | TryLockError::Error(_)) => {}
            }
        }
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(target)?;
    file.file().write_all(bytes)?;
    file.commit()
}

/// Makes renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// 16 random hex characters: temp and staging names that no other job can guess or reuse.
pub fn random_suffix() -> io::Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| io::Error::other(err.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("index.json");
        write(&target, b"old").expect("write");
        write(&target, b"new").expect("write");
        assert_eq!(std::fs::read(&target).expect("read"), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn an_abandoned_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("state");
        write(&target, b"old").expect("write");
        {
            let mut file = AtomicFile::create(&target).expect("create");
            file.file().write_all(b"half").expect("write");
            // Dropped without commit, as when the disk fills mid-write.
        }
        assert_eq!(std::fs::read(&target).expect("read"), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn a_dead_writers_temp_file_goes_and_a_live_ones_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("c.tzst");
        // Left by a killed writer: nobody holds its lock.
        let dead = dir.path().join(".c.tzst.0123456789abcdef.tmp");
        std::fs::write(&dead, "half").expect("write");
        // A live writer's.
        let live = AtomicFile::create(&dir.path().join("c.tzst")).expect("create");
        // Another target's, and a file that only looks alike.
        let other = dir.path().join(".d.tzst.0123456789abcdef.tmp");
        std::fs::write(&other, "x").expect("write");
        write(&target, b"new").expect("write");
        assert!(!dead.exists(), "the dead writer's temp file stayed");
        assert!(live.temp.exists(), "a live writer's temp file was removed");
        assert!(other.exists());
        drop(live);
    }
}
