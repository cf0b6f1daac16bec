//! The one SQLite database: WAL, foreign keys, a busy timeout, and numbered migrations embedded
//! in the binary. Blocking SQLite work runs on tokio's blocking pool, never on the async workers.
//!
//! Durability: every commit is synced to disk before it returns (`synchronous=FULL`), for the
//! whole store. With WAL, `NORMAL` survives a crash of cogbox but may lose the last commits on
//! a power cut, and a Raspberry Pi on a wall plug gets power cuts: a `/pay` or a ban the user
//! was told about must still be there after one. Per-transaction durability was rejected: the
//! pragma is per connection, so it would have to be switched around each bank transaction, and
//! moderation state and the scheduler's jobs deserve the same promise. The cost is one fsync of
//! the WAL per commit (the checkpoint is synced either way); chat bots commit rarely, and the
//! scheduler commits a whole batch of finished jobs at once. The economy helper's transfer bench
//! measures transfers/s under this setting (`cargo bench --bench bank`, or wherever it lands):
//! if a target is missed there, batch commits rather than weaken this.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// Migrations in order; the database's `user_version` counts how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_community_settings.sql"),
    include_str!("migrations/0002_jobs.sql"),
    include_str!("migrations/0003_audit_log.sql"),
    include_str!("migrations/0004_bank.sql"),
    include_str!("migrations/0005_mod_cases.sql"),
    include_str!("migrations/0006_fun.sql"),
    include_str!("migrations/0007_settings_key_names.sql"),
    include_str!("migrations/0008_settings_word_ids.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this cogbox knows ({known}); \
         run the newer cogbox that wrote it, or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        migrate(&mut conn, path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn, Path::new(":memory:"))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `work` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let result = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the connection itself usable.
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await?;
        Ok(result?)
    }

    /// Runs `work` with the connection on the calling thread, which must be a thread of its own
    /// (the bank's writer), never an async worker: it waits for the connection's lock.
    pub fn blocking<R>(&self, work: impl FnOnce(&mut Connection) -> R) -> R {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut conn)
    }

    /// Folds the WAL back into the main file so a copied database file is complete.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.call(|conn| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
            .await
    }

    /// The database's size in bytes (its pages; the WAL beside it is not counted).
    pub async fn size(&self) -> Result<u64, StoreError> {
        self.call(|conn| {
            conn.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            )
        })
        .await
    }

    pub async fn schema_version(&self) -> Result<usize, StoreError> {
        self.call(|conn| user_version(conn)).await
    }
}

/// The schema version this cogbox migrates databases to.
pub const LATEST_SCHEMA: usize = MIGRATIONS.len();

/// Opens an existing database read-only: nothing is created, migrated or written.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The schema version of the database at `path`, read without changing anything; `None` when
/// there is no database there yet.
pub fn schema_on_disk(path: &Path) -> Result<Option<usize>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let found = user_version(&open_read_only(path)?)?;
    if found > LATEST_SCHEMA {
        return Err(too_new(path, found));
    }
    Ok(Some(found))
}

pub fn user_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

fn too_new(path: &Path, found: usize) -> StoreError {
    StoreError::TooNew {
        path: path.to_owned(),
        found,
        known: LATEST_SCHEMA,
    }
}

/// Applies the missing migrations, each in one write transaction that also reads and bumps
/// `user_version`, so a step is applied whole or not at all, and never twice.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = user_version(&tx)?;
        let Some(sql) = MIGRATIONS.get(found) else {
            return if found > LATEST_SCHEMA {
                Err(too_new(path, found))
            } else {
                Ok(())
            };
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
        tracing::info!(version = found + 1, "database migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrates_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cogbox.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len());
        let mode: String = store
            .call(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = store
            .call(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(
            synchronous, 2,
            "commits are synced (FULL) to survive a power cut"
        );
        store
            .call(|c| c.pragma_update(None, "user_version", 99))
            .await
            .unwrap();
        drop(store);
        let err = Store::open(&path)
            .err()
            .expect("a newer schema must be refused");
        assert!(
            err.to_string()
                .contains("schema version 99, newer than this cogbox knows"),
            "{err}"
        );
    }

    #[test]
    fn settings_stored_under_numeric_communities_move_to_text_ids() {
        let mut conn = Connection::open_in_memory().unwrap();
        let to_text = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("community_settings_text"))
            .unwrap();
        for sql in &MIGRATIONS[..to_text] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute(
            "INSERT INTO community_settings VALUES ('telegram', -100123, 'prefix', '?')",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", to_text).unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let row: (String, String) = conn
            .query_row(
                "SELECT typeof(community), value FROM community_settings
                 WHERE platform = 'telegram' AND community = '-100123'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(row, ("text".into(), "?".into()));
        conn.execute(
            "INSERT INTO community_settings VALUES ('slack', 'T024BE7LH', 'prefix', '!')",
            [],
        )
        .expect("a word id fits");
    }

    #[test]
    fn settings_named_with_a_dot_keep_their_values() {
        let mut conn = Connection::open_in_memory().unwrap();
        let renaming = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("'economy_daily'"))
            .unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        conn.execute(
            "INSERT INTO community_settings VALUES ('discord', 1, 'economy.daily', '250')",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", renaming).unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let row: (String, String) = conn
            .query_row("SELECT key, value FROM community_settings", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(row, ("economy_daily".into(), "250".into()));
    }

    #[tokio::test]
    async fn after_a_checkpoint_the_file_alone_is_the_database_and_its_size_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cogbox.db");
        let store = Store::open(&path).unwrap();
        store
            .call(|c| {
                c.execute_batch(
                    "CREATE TABLE kept (x); INSERT INTO kept VALUES (zeroblob(100000));",
                )
            })
            .await
            .unwrap();
        store.checkpoint().await.unwrap();
        // What a copy of the file (without the WAL beside it) holds.
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        let rows: i64 = Connection::open(&copy)
            .unwrap()
            .query_row("SELECT count(*) FROM kept", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "the write was folded into the file");
        let size = store.size().await.unwrap();
        assert_eq!(size, std::fs::metadata(&path).unwrap().len());
        assert!(size > 100_000, "{size}");
    }

    #[test]
    fn the_schema_on_disk_is_read_without_creating_or_changing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cogbox.db");
        assert_eq!(schema_on_disk(&path).unwrap(), None);
        assert!(!path.exists(), "nothing is created");
        let conn = Connection::open(&path).unwrap();
        for version in [3, LATEST_SCHEMA] {
            conn.pragma_update(None, "user_version", version).unwrap();
            assert_eq!(schema_on_disk(&path).unwrap(), Some(version));
        }
        conn.pragma_update(None, "user_version", LATEST_SCHEMA + 1)
            .unwrap();
        assert!(matches!(
            schema_on_disk(&path),
            Err(StoreError::TooNew { found, .. }) if found == LATEST_SCHEMA + 1
        ));
        assert_eq!(user_version(&conn).unwrap(), LATEST_SCHEMA + 1);
    }
}
