//! Copies of the database: `cogbox backup`, the scheduled backups and their retention, the
//! backup `run` takes before it migrates, and `cogbox restore`.
//!
//! A copy is made with `VACUUM INTO` on a read-only connection of its own: one read
//! transaction, so the copy is a consistent snapshot even while the bot writes, and the bot's
//! connection is never held up. A copy only appears under its name once it is complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

use super::store::{self, LATEST_SCHEMA, StoreError};

/// Scheduled backups are named `cogbox-auto-<UTC time>.db`; only these are pruned.
const AUTO_PREFIX: &str = "cogbox-auto-";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists; choose another file name")]
    Exists(PathBuf),
    #[error("{0} is not a usable cogbox backup: {1}")]
    Invalid(PathBuf, String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A file name for a copy taken now: `<prefix><UTC time>.db`, which sorts by time.
pub fn stamped(prefix: &str) -> String {
    format!(
        "{prefix}{}.db",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    )
}

/// Writes a consistent copy of the database at `db` to `dest`, which must not exist yet.
pub fn snapshot(db: &Path, dest: &Path) -> Result<(), BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    let partial = with_suffix(dest, ".partial");
    // A leftover from a copy that was interrupted: VACUUM INTO refuses a non-empty target.
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&partial)(e)),
        _ => {}
    }
    let target = partial.to_str().ok_or_else(|| {
        BackupError::Invalid(dest.to_owned(), "the path is not UTF-8 text".into())
    })?;
    let conn = store::open_read_only(db)?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(StoreError::from)?;
    drop(conn);
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&partial))?;
    std::fs::rename(&partial, dest).map_err(io_err(dest))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Before `run` migrates an existing database, a copy of it as it was, in `dir` as
/// `cogbox-before-schema-<new version>-<time>.db`. Returns the copy's path if one was needed.
pub fn before_migrating(db: &Path, dir: &Path) -> Result<Option<PathBuf>, BackupError> {
    match store::schema_on_disk(db)? {
        Some(found) if found < LATEST_SCHEMA => {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            let dest = dir.join(stamped(&format!("cogbox-before-schema-{LATEST_SCHEMA}-")));
            snapshot(db, &dest)?;
            Ok(Some(dest))
        }
        _ => Ok(None),
    }
}

/// Checks that `path` is a whole cogbox database this version can run: it passes SQLite's
/// integrity check and its schema is neither empty nor newer than this cogbox. Returns the
/// schema version.
pub fn verify(path: &Path) -> Result<usize, BackupError> {
    let invalid = |why: String| BackupError::Invalid(path.to_owned(), why);
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(invalid("not a file".into()));
    }
    let conn = store::open_read_only(path)?;
    let check = |conn: &Connection| -> rusqlite::Result<(String, usize)> {
        let integrity = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok((integrity, store::user_version(conn)?))
    };
    let (integrity, version) = check(&conn).map_err(|e| invalid(e.to_string()))?;
    if integrity != "ok" {
        return Err(invalid(format!("integrity check failed: {integrity}")));
    }
    match version {
        0 => Err(invalid("it has no cogbox schema (version 0)".into())),
        v if v > LATEST_SCHEMA => Err(invalid(format!(
            "its schema version {v} is newer than this cogbox knows ({LATEST_SCHEMA}); \
             restore it with the newer cogbox that wrote it"
        ))),
        v => Ok(v),
    }
}

/// What [`restore`] did.
#[derive(Debug)]
pub struct Restored {
    /// The restored database's schema version.
    pub schema: usize,
    /// Where the database it replaced is kept, if there was one.
    pub kept: Option<PathBuf>,
}

/// Replaces the database at `db` with the verified copy at `backup`. The replaced database
/// (with its WAL folded in) is kept beside it as `cogbox-replaced-<time>.db`. The caller holds
/// the data folder's lock, so nothing else has `db` open.
pub fn restore(backup: &Path, db: &Path) -> Result<Restored, BackupError> {
    let schema = verify(backup)?;
    let staged = with_suffix(db, ".restoring");
    std::fs::copy(backup, &staged).map_err(io_err(&staged))?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&staged))?;
    let kept = if db.exists() {
        // Fold the WAL into the file, so the -wal left behind cannot be mistaken for the
        // restored database's.
        let conn = Connection::open(db).map_err(StoreError::from)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(StoreError::from)?;
        drop(conn);
        let kept = db.with_file_name(stamped("cogbox-replaced-"));
        std::fs::rename(db, &kept).map_err(io_err(db))?;
        Some(kept)
    } else {
        None
    };
    for stale in ["-wal", "-shm"] {
        let path = with_suffix(db, stale);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
            _ => {}
        }
    }
    std::fs::rename(&staged, db).map_err(io_err(db))?;
    Ok(Restored { schema, kept })
}

/// Deletes all but the newest `keep` scheduled backups in `dir`; other files are left alone.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut auto: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(AUTO_PREFIX) && n.ends_with(".db"))
        })
        .collect();
    auto.sort();
    let excess = auto.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = auto.drain(..excess).collect();
    for path in &removed {
        std::fs::remove_file(path).map_err(io_err(path))?;
    }
    Ok(removed)
}

/// Where and how often `run` backs up on its own.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub db: PathBuf,
    pub dir: PathBuf,
    pub every: Duration,
    /// How many scheduled backups to keep; at most this many files (plus one being written).
    pub keep: usize,
}

impl Schedule {
    /// Takes a backup every `every` until `cancel`, then prunes the old ones. A failed backup
    /// is logged and tried again next time: the bot keeps running.
    pub async fn run(self, cancel: CancellationToken) {
        let start = tokio::time::Instant::now() + self.every;
        let mut tick = tokio::time::interval_at(start, self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            let schedule = self.clone();
            let taken = tokio::task::spawn_blocking(move || schedule.once()).await;
            match taken {
                Ok(Ok(path)) => tracing::info!(path = %path.display(), "backup taken"),
                Ok(Err(e)) => tracing::error!("scheduled backup failed: {e}"),
                Err(e) => tracing::error!("scheduled backup failed: {e}"),
            }
        }
    }

    fn once(&self) -> Result<PathBuf, BackupError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let dest = self.dir.join(stamped(AUTO_PREFIX));
        snapshot(&self.db, &dest)?;
        prune(&self.dir, self.keep)?;
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::Store;

    fn count_rows(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM burst", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_backup_taken_during_a_burst_of_writes_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cogbox.db");
        let store = Store::open(&db).unwrap();
        store
            .call(|c| c.execute_batch("CREATE TABLE burst (n INTEGER, pad TEXT)"))
            .await
            .unwrap();
        let writer = {
            let db = db.clone();
            std::thread::spawn(move || {
                let conn = Connection::open(&db).unwrap();
                // Consistency is under test, not durability: no fsync per commit.
                conn.pragma_update(None, "synchronous", "OFF").unwrap();
                for n in 0..1000 {
                    // Two rows per transaction: a torn copy would hold an odd count.
                    conn.execute_batch(&format!(
                        "BEGIN; INSERT INTO burst VALUES ({n}, randomblob(200));
                         INSERT INTO burst VALUES ({n}, randomblob(200)); COMMIT;"
                    ))
                    .unwrap();
                }
            })
        };
        let mut copies = Vec::new();
        while !writer.is_finished() {
            let dest = dir.path().join(format!("copy-{}.db", copies.len()));
            snapshot(&db, &dest).unwrap();
            copies.push(dest);
        }
        writer.join().unwrap();
        assert!(!copies.is_empty());
        for copy in &copies {
            assert_eq!(verify(copy).unwrap(), LATEST_SCHEMA);
            let rows = count_rows(copy);
            assert_eq!(rows % 2, 0, "{} holds half a transaction", copy.display());
        }
        let last = dir.path().join("last.db");
        snapshot(&db, &last).unwrap();
        assert_eq!(count_rows(&last), 2000);
        assert!(matches!(snapshot(&db, &last), Err(BackupError::Exists(_))));
    }

    #[test]
    fn restore_refuses_a_bad_file_and_keeps_the_replaced_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cogbox.db");
        let store = Store::open(&db).unwrap();
        let backup = dir.path().join("backup.db");
        snapshot(&db, &backup).unwrap();
        // A write after the backup, left in the WAL by a connection that is still open.
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE later (x); INSERT INTO later VALUES (1);")
            .unwrap();
        drop(store);

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
        let empty = dir.path().join("empty.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let newer = dir.path().join("newer.db");
        snapshot(&db, &newer).unwrap();
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", LATEST_SCHEMA + 1)
            .unwrap();
        for (bad, why) in [
            (&garbage, "file is not a database"),
            (&empty, "no cogbox schema"),
            (&newer, "newer than this cogbox knows"),
        ] {
            let err = restore(bad, &db).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(!dir.path().join("cogbox.db.restoring").exists());
        drop(conn);

        let restored = restore(&backup, &db).unwrap();
        assert_eq!(restored.schema, LATEST_SCHEMA);
        let kept = restored.kept.expect("the old database is kept");
        let later: i64 = Connection::open(&kept)
            .unwrap()
            .query_row("SELECT x FROM later", [], |r| r.get(0))
            .unwrap();
        assert_eq!(later, 1, "the kept copy holds what was in the WAL");
        let restored = Connection::open(&db).unwrap();
        let tables: i64 = restored
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'later'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the restored database is the backup");
        assert_eq!(store::user_version(&restored).unwrap(), LATEST_SCHEMA);
    }

    #[test]
    fn pruning_keeps_the_newest_scheduled_backups_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "cogbox-auto-20260101T000000.000000Z.db",
            "cogbox-auto-20260103T000000.000000Z.db",
            "cogbox-auto-20260102T000000.000000Z.db",
            "cogbox-before-schema-2-20250101T000000.000000Z.db",
            "mine.db",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(
            removed,
            vec![dir.path().join("cogbox-auto-20260101T000000.000000Z.db")]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "cogbox-auto-20260102T000000.000000Z.db",
                "cogbox-auto-20260103T000000.000000Z.db",
                "cogbox-before-schema-2-20250101T000000.000000Z.db",
                "mine.db"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_schedule_backs_up_every_period_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cogbox.db");
        drop(Store::open(&db).unwrap());
        let backups = dir.path().join("backups");
        let schedule = Schedule {
            db,
            dir: backups.clone(),
            every: Duration::from_secs(3600),
            keep: 2,
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(schedule.run(cancel.clone()));
        let count = || {
            std::fs::read_dir(&backups).map_or(0, |d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".db")
                })
                .count()
            })
        };
        tokio::time::sleep(Duration::from_secs(3599)).await;
        assert_eq!(count(), 0, "nothing before the first period ends");
        // The paused clock does not move while a backup runs on the blocking pool, so each
        // period's copy is on disk a second after the period ends.
        for expected in [1, 2, 2] {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            assert_eq!(count(), expected);
        }
        cancel.cancel();
        task.await.unwrap();
    }

    #[test]
    fn a_leftover_partial_copy_is_replaced_and_one_that_cannot_be_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cogbox.db");
        drop(Store::open(&db).unwrap());
        // An earlier `cogbox backup` to the same name, interrupted.
        std::fs::write(dir.path().join("copy.db.partial"), "half a copy").unwrap();
        let copy = dir.path().join("copy.db");
        snapshot(&db, &copy).unwrap();
        assert_eq!(verify(&copy).unwrap(), LATEST_SCHEMA);
        assert!(!dir.path().join("copy.db.partial").exists());

        // One that cannot be removed: the error names it, rather than SQLite's "unable to
        // open database file".
        let stuck = dir.path().join("stuck.db.partial");
        std::fs::create_dir(&stuck).unwrap();
        std::fs::write(stuck.join("x"), "x").unwrap();
        let err = snapshot(&db, &dir.path().join("stuck.db")).unwrap_err();
        assert!(
            matches!(&err, BackupError::Io { path, .. } if *path == stuck),
            "{err}"
        );
        assert!(!dir.path().join("stuck.db").exists());
    }

    #[test]
    fn only_a_database_about_to_be_migrated_is_copied_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cogbox.db");
        let backups = dir.path().join("backups");
        assert!(
            before_migrating(&db, &backups).unwrap().is_none(),
            "no database yet"
        );
        drop(Store::open(&db).unwrap());
        assert!(
            before_migrating(&db, &backups).unwrap().is_none(),
            "a current database is not copied at every start"
        );
        assert!(!backups.exists());
        let older = LATEST_SCHEMA - 1;
        Connection::open(&db)
            .unwrap()
            .pragma_update(None, "user_version", older)
            .unwrap();
        let copy = before_migrating(&db, &backups)
            .unwrap()
            .expect("a copy before migrating");
        assert!(copy.starts_with(&backups), "{}", copy.display());
        assert_eq!(verify(&copy).unwrap(), older, "the database as it was");
    }

    #[test]
    fn a_stale_wal_that_cannot_be_removed_stops_the_restore() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cogbox.db");
        drop(Store::open(&db).unwrap());
        let backup = dir.path().join("backup.db");
        snapshot(&db, &backup).unwrap();
        let target = dir.path().join("restored.db");
        let wal = dir.path().join("restored.db-wal");
        std::fs::create_dir(&wal).unwrap();
        std::fs::write(wal.join("x"), "x").unwrap();
        let err = restore(&backup, &target).unwrap_err();
        assert!(
            matches!(&err, BackupError::Io { path, .. } if *path == wal),
            "{err}"
        );
        assert!(
            !target.exists(),
            "not restored beside a WAL that SQLite would read with it"
        );
    }
}
