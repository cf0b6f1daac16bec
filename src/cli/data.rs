//! `cogbox backup` and `cogbox restore`.

use std::path::Path;
use std::process::ExitCode;

use super::{fail, load, lock};
use crate::services::backup::{self, BackupError};
use crate::services::store::LATEST_SCHEMA;

/// Copies the database to `dest`, or into the backup folder. Takes no lock: a backup is
/// meant to be taken while the bot runs.
pub(super) fn backup(config_path: &Path, dest: Option<&Path>) -> ExitCode {
    let config = match load(config_path) {
        Ok((config, _)) => config,
        Err(code) => return code,
    };
    let db = config.database_path();
    if !db.exists() {
        return fail(
            2,
            format!("there is no database at {} to back up yet", db.display()),
        );
    }
    let dest = match dest {
        Some(dest) => dest.to_owned(),
        None => {
            let dir = config.backup_dir();
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return fail(1, format!("{}: {e}", dir.display()));
            }
            dir.join(backup::stamped("cogbox-"))
        }
    };
    match backup::snapshot(&db, &dest).and_then(|()| backup::verify(&dest)) {
        Ok(schema) => {
            println!(
                "Backed up {} to {} (schema {schema}).",
                db.display(),
                dest.display()
            );
            ExitCode::SUCCESS
        }
        Err(e @ BackupError::Exists(_)) => fail(2, e),
        Err(e) => fail(1, e),
    }
}

/// Replaces the database with `from` while no cogbox runs on this data folder.
pub(super) fn restore(config_path: &Path, from: &Path) -> ExitCode {
    let config = match load(config_path) {
        Ok((config, _)) => config,
        Err(code) => return code,
    };
    let _lock = match lock(&config) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let db = config.database_path();
    match backup::restore(from, &db) {
        Ok(restored) => {
            println!(
                "Restored {} (schema {}) into {}.",
                from.display(),
                restored.schema,
                db.display()
            );
            if let Some(kept) = restored.kept {
                println!("The database it replaced is kept as {}.", kept.display());
            }
            if restored.schema < LATEST_SCHEMA {
                println!("`cogbox run` will migrate it, after backing it up.");
            }
            ExitCode::SUCCESS
        }
        Err(e @ (BackupError::Invalid(..) | BackupError::Io { .. })) => fail(2, e),
        Err(e) => fail(1, e),
    }
}
