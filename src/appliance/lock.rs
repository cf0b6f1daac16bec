//! One cogbox per data folder. Two bots on one database would both answer every command, and
//! with one Telegram token they would fight over `getUpdates`; a restore or an update under a
//! running bot would pull its files away. So `run`, `console`, `restore` and `update` hold an
//! exclusive lock on `<data_dir>/cogbox.lock` while they work.
//!
//! The lock is the operating system's (`flock`): it is released when the process ends, however
//! it ends, so a crash never leaves a stale lock behind. The file holds the holder's pid, only
//! to name it to the one that is turned away.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

const LOCK_FILE: &str = "cogbox.lock";

/// Holds the data folder until dropped (or the process ends).
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data folder {dir} is in use by another cogbox (pid {pid}); stop that one first \
         (e.g. `systemctl stop cogbox`)"
    )]
    Held { dir: PathBuf, pid: String },
    #[error("cannot lock the data folder: {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DataLock {
    /// Creates `data_dir` if needed and locks it, or says which process holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut pid = String::new();
                // The holder may not have written its pid yet.
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    dir: data_dir.to_owned(),
                    pid: if pid.is_empty() { "unknown" } else { pid }.to_owned(),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataLock::acquire(&data).unwrap();
        let err = DataLock::acquire(&data).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "in use by another cogbox (pid {})",
                std::process::id()
            )),
            "{err}"
        );
        drop(first);
        DataLock::acquire(&data).expect("free again once the holder is gone");
    }
}
