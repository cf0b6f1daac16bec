//! `cogbox update [--check | --rollback]`. All of it runs before any async runtime exists:
//! `self_update`'s HTTP is blocking.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{fail, load, lock};
use crate::appliance::lock::DataLock;
use crate::appliance::update::{self, Outcome, Source, UpdateError};
use crate::config::Config;

/// Reports the newest release; changes nothing and takes no lock.
pub(super) fn check(config_path: &Path) -> ExitCode {
    let (_, source) = match configured(config_path) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match update::check(&source) {
        Ok(check) => {
            println!("this cogbox: {}", check.current);
            println!("newest release: {}", check.newest);
            if check.available() {
                println!("An update is available: `cogbox update` installs it.");
            } else {
                println!("No update: this cogbox is up to date.");
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// Installs the newest release if it is newer, while no cogbox runs on this data folder.
pub(super) fn install(config_path: &Path) -> ExitCode {
    let (config, source) = match configured(config_path) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let (exe, _lock) = match replaceable(&config) {
        Ok(found) => found,
        Err(code) => return code,
    };
    // The bar is drawn on stderr; neither a log file nor a pipe wants one.
    let progress = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    match update::install(&source, &exe, progress) {
        Ok(Outcome::UpToDate(version)) => {
            println!("cogbox {version} is already up to date; nothing was changed.");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Older { newest, current }) => {
            println!(
                "The newest release, {newest}, is older than this cogbox ({current}); \
                 nothing was changed."
            );
            ExitCode::SUCCESS
        }
        Ok(Outcome::Updated { from, to, previous }) => {
            println!(
                "Updated {} from {from} to {to}. Restart cogbox to run it (e.g. \
                 `systemctl restart cogbox`); `cogbox update --rollback` puts {from} back \
                 (kept as {}).",
                exe.display(),
                previous.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// Puts back the binary the last update replaced.
pub(super) fn rollback(config_path: &Path) -> ExitCode {
    let (config, _) = match load(config_path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let (exe, _lock) = match replaceable(&config) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match update::rollback(&exe) {
        Ok(previous) => {
            println!(
                "Rolled back: {} is the binary the last update replaced; the one it replaced \
                 is now {} (roll back again to return to it). Restart cogbox to run it.",
                exe.display(),
                previous.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// This binary, once it is known that it can be replaced (its folder is writable) and that no
/// cogbox runs on the data folder, which stays locked until the lock is dropped.
fn replaceable(config: &Config) -> Result<(PathBuf, DataLock), ExitCode> {
    let exe = update::current_exe()
        .and_then(|exe| update::ensure_writable(&exe).map(|()| exe))
        .map_err(failed)?;
    Ok((exe, lock(config)?))
}

/// The config and where releases come from; `update.repository` must be set.
fn configured(config_path: &Path) -> Result<(Config, Source), ExitCode> {
    let (config, _) = load(config_path)?;
    match Source::new(&config.update) {
        Some(source) => Ok((config, source)),
        None => Err(fail(
            2,
            format!(
                "{}: update.repository: not set; set it to the GitHub repository that \
                 publishes cogbox's releases, like \"someone/cogbox\" (or \
                 COGBOX_UPDATE__REPOSITORY)",
                config_path.display()
            ),
        )),
    }
}

fn failed(e: UpdateError) -> ExitCode {
    let code = match e {
        UpdateError::TestKey(_) => 2,
        _ => 1,
    };
    fail(code, e)
}
