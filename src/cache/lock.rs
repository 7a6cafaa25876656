//! The store lock: an exclusive `flock` on `<store>/lock`, held while a job changes the store.
//!
//! A kernel lock rather than a PID file, so a job killed with SIGKILL releases it. The standard
//! library's `File::try_lock` is `flock(LOCK_EX|LOCK_NB)` on Linux, which needs no unsafe code.
//! Contention is reported once ("waiting for the cache lock") and then waited out for a bounded
//! time, polling: a hung holder makes the next job go on without the cache, not hang with it.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    /// Takes the lock of the store at `dir`, calling `on_wait` once if another job holds it,
    /// and giving up with [`CacheError::LockTimeout`] after `timeout`.
    pub fn acquire(
        dir: &Path,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> Result<Self, CacheError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| CacheError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait(&path);
                wait_for(&file, &path, timeout)?;
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

/// How often a waiting job tries the lock again.
const POLL: Duration = Duration::from_millis(100);

/// Polls the lock of `file` until it is taken or `timeout` has passed.
fn wait_for(file: &File, path: &Path, timeout: Duration) -> Result<(), CacheError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CacheError::LockTimeout {
                path: path.display().to_string(),
                seconds: timeout.as_secs(),
            });
        }
        std::thread::sleep(POLL.min(left));
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(CacheError::io(path, e)),
        }
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
        let long = Duration::from_secs(60);
        let first = StoreLock::acquire(dir.path(), long, |_| panic!("uncontended")).expect("lock");
        let (waiting_tx, waiting_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let path = dir.path().to_path_buf();
        let second = std::thread::spawn(move || {
            let on_wait = |_: &Path| waiting_tx.send(()).expect("send");
            let lock = StoreLock::acquire(&path, long, on_wait).expect("lock");
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

    #[test]
    fn a_held_lock_is_waited_for_at_most_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _held = StoreLock::acquire(dir.path(), Duration::ZERO, |_| {}).expect("lock");
        let start = std::time::Instant::now();
        let second = StoreLock::acquire(dir.path(), Duration::from_millis(300), |_| {});
        let waited = start.elapsed();
        assert!(
            matches!(second, Err(CacheError::LockTimeout { .. })),
            "{second:?}"
        );
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
