//! One serving instance per SQLite file.
//!
//! Each instance keeps an in-process cache, and instances hear of each other's writes only over
//! PostgreSQL's LISTEN/NOTIFY or Redis: two instances on one SQLite file would serve each other's
//! stale data. The first to serve a file locks a file beside it; the next is refused.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;

use super::pool::{Backend, sqlite_file};

/// An exclusive lock on an SQLite database for serving, held until dropped.
///
/// It is an advisory lock on `DATABASE.serve-lock` (`flock` on Unix), which the operating system
/// releases when the process ends, however it ends: a crash leaves no stale lock. The file stays
/// behind, holding the last holder's pid; removing it on drop would let a new instance lock a
/// new file while a starting one still holds the old.
#[derive(Debug)]
pub struct InstanceLock {
    /// The open, locked file: closing it releases the lock.
    _file: File,
}

impl InstanceLock {
    /// Locks the database of `database_url` for this process, without waiting, when it is an
    /// SQLite file; a PostgreSQL database (whose instances share writes over a bus) or an
    /// in-memory SQLite database (which no other process sees) needs no lock: `None`.
    ///
    /// # Concurrent calls on the same database
    /// One caller gets the lock, in this process or another; the others fail at once until it
    /// drops the lock or its process ends.
    ///
    /// # Errors
    /// When another holder has the lock (the message names its pid when it could be read), or
    /// the lock file cannot be opened or locked.
    pub fn take(database_url: &str) -> anyhow::Result<Option<Self>> {
        if Backend::of_url(database_url)? == Backend::Postgres {
            return Ok(None);
        }
        let (path, query) = sqlite_file(database_url)?;
        if query.split('&').any(|param| param == "mode=memory") {
            return Ok(None);
        }
        let lock_path = PathBuf::from(format!("{path}.serve-lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder =
                    holder_pid(&mut file).map_or_else(String::new, |pid| format!(" (pid {pid})"));
                anyhow::bail!(
                    "SQLite is single-instance: another youcode serves {database_url}{holder}. \
                     Stop it, or use PostgreSQL (--database-url postgres://…) to run several \
                     instances."
                );
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        // The pid is only for the message of the next instance: failing to write it is no
        // reason not to serve.
        let _ = record_pid(&mut file);
        Ok(Some(Self { _file: file }))
    }
}

/// The pid the holder wrote, if it could be read (a holder that has just locked the file may
/// not have written it yet).
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn record_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_sqlite_url() -> String {
        let dir = std::env::temp_dir().join(format!("yc-lock-{:08x}", rand::random::<u32>()));
        format!("sqlite://{}/a.db", dir.display())
    }

    #[test]
    fn a_second_lock_on_one_file_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let url = fresh_sqlite_url();
        let first = InstanceLock::take(&url).unwrap();
        assert!(first.is_some(), "an SQLite file is locked");

        let refused = InstanceLock::take(&url).unwrap_err().to_string();
        assert!(
            refused.starts_with("SQLite is single-instance"),
            "{refused}"
        );
        assert!(
            refused.contains(&format!("{url} (pid {})", std::process::id())),
            "{refused}"
        );

        drop(first);
        assert!(InstanceLock::take(&url).unwrap().is_some());
    }

    #[test]
    fn the_lock_file_lies_beside_the_database() {
        let url = fresh_sqlite_url();
        let _lock = InstanceLock::take(&format!("{url}?mode=rwc")).unwrap();
        let path = url.trim_start_matches("sqlite://");
        assert!(std::path::Path::new(&format!("{path}.serve-lock")).exists());
    }

    #[test]
    fn postgres_and_in_memory_databases_take_no_lock() {
        let postgres = InstanceLock::take("postgres://u@h/db").unwrap();
        let memory = InstanceLock::take(&format!("{}?mode=memory", fresh_sqlite_url())).unwrap();
        assert!(postgres.is_none() && memory.is_none());
    }
}
