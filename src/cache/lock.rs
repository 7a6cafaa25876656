//! The store lock: an exclusive `flock` on `<store>/lock`, held while a job changes the store.
//!
//! A kernel lock rather than a PID file, so a job killed with SIGKILL releases it. The standard
//! library's `File::lock` is `flock(LOCK_EX)` on Linux, which needs no unsafe code and no crate.
//! Contention is reported once ("waiting for the cache lock") and then waited out.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::CacheError;

/// The lock file's name inside the store.
pub const LOCK_FILE: &str = "lock";

/// Held for as long as it lives; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Takes the lock of the store at `dir`, calling `on_wait` once if another job holds it.
    pub fn acquire(dir: &Path, on_wait: impl FnOnce(&Path)) -> Result<Self, CacheError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CacheError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait(&path);
                file.lock().map_err(|e| CacheError::io(&path, e))?;
            }
            Err(TryLockError::Error(e)) => return Err(CacheError::io(&path, e)),
        }
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_holder_waits_until_the_first_releases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = StoreLock::acquire(dir.path(), |_| panic!("uncontended")).expect("lock");
        let (waiting_tx, waiting_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let path = dir.path().to_path_buf();
        let second = std::thread::spawn(move || {
            let lock =
                StoreLock::acquire(&path, |_| waiting_tx.send(()).expect("send")).expect("lock");
            done_tx.send(()).expect("send");
            drop(lock);
        });
        waiting_rx.recv().expect("the second job reports waiting");
        // It must still be blocked: it cannot finish while the first lock is held.
        assert!(done_rx.recv_timeout(Duration::from_millis(50)).is_err());
        drop(first);
        done_rx.recv().expect("the second job gets the lock");
        second.join().expect("join");
    }
}
