//! `cogbox update`: replaces this binary with the newest signed release from GitHub, keeping
//! the replaced one as `<binary>.previous` for `cogbox update --rollback`.
//!
//! The download, the signature check and the swap are `self_update`'s; the rest is here
//! because the crate leaves it to its callers:
//! - It installs whatever release it is pointed at, so the versions are compared here (semver)
//!   and an older or equal release is never downloaded.
//! - Its HTTP is blocking (reqwest's blocking client runs its own runtime): the CLI calls this
//!   before any tokio runtime exists, never from an async worker.
//! - It prints to stdout unless told not to: its output is off, its progress bar is on only on a
//!   terminal, and the only line left is its own "Verifying downloaded file...".
//! - It replaces `current_exe()` in place, so a folder the binary cannot write to (installed
//!   by a package manager) is checked first and refused with a message, not a raw I/O error.
//!
//! **Which key is trusted.** A release archive must carry a zipsign (ed25519ph) signature, made
//! with the archive's file name as context (as `packaging/build-release.sh` signs it), by the
//! key in `packaging/release.pub`, which is compiled in. A release build trusts that key and
//! no other, whatever its config or environment say: whoever can edit `config.toml` must not be
//! able to make cogbox install their binary. Tests sign their fake releases with a key of their
//! own; only a debug build (what `cargo test` runs) reads one, from `COGBOX_TEST_UPDATE_KEY`,
//! and only while `update.api_url` is on this machine.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use self_update::backends::github;
use self_update::errors::Error as CrateError;
use semver::Version;

use crate::config::UpdateConfig;

/// The public half of the release signing key (32 bytes, as `zipsign gen-key` writes it).
const RELEASE_KEY: [u8; 32] = *include_bytes!("../../packaging/release.pub");

/// The binary's name in the release archive, `cogbox-<version>-<target>/cogbox`.
const BIN: &str = "cogbox";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("cannot get the releases of {repository} from {api_url}: {detail}")]
    Network {
        repository: String,
        api_url: String,
        detail: String,
    },
    #[error("{repository} has no release with a version number (tags like v1.2.3) yet")]
    NoReleases { repository: String },
    #[error(
        "release {version} has no archive for this machine ({asset} is missing); \
         nothing was changed"
    )]
    NoAsset { version: Version, asset: String },
    #[error(
        "cannot replace {exe}: its folder {dir} is not writable by this user ({source}). If a \
         package manager installed cogbox, update it with that; else run the update as the \
         binary's owner (e.g. `sudo cogbox update`)"
    )]
    NotWritable {
        exe: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{asset} does not carry a valid signature from cogbox's release key ({detail}); \
         it was not installed and nothing was changed"
    )]
    BadSignature { asset: String, detail: String },
    #[error("the download of {asset} broke off ({detail}); nothing was changed")]
    Truncated { asset: String, detail: String },
    #[error("cannot install {asset}: {detail}; nothing was changed")]
    Install { asset: String, detail: String },
    #[error(
        "the new binary does not run here ({detail}); the previous one was put back, nothing \
         was changed"
    )]
    Broken { detail: String },
    #[error(
        "there is no {0} to roll back to: only a binary put in place by `cogbox update` can be rolled back"
    )]
    NoPrevious(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    TestKey(String),
}

impl UpdateError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Where releases come from: `update.repository` split, and `update.api_url`.
#[derive(Clone, Debug)]
pub struct Source {
    owner: String,
    name: String,
    api_url: String,
}

impl Source {
    /// `None` when `update.repository` is not set. The config checked its shape.
    pub fn new(config: &UpdateConfig) -> Option<Self> {
        let (owner, name) = config.repository.as_deref()?.split_once('/')?;
        Some(Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
            api_url: config.api_url.trim_end_matches('/').to_owned(),
        })
    }

    fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// What `cogbox update --check` reports.
#[derive(Debug)]
pub struct Check {
    pub current: Version,
    pub newest: Version,
}

impl Check {
    pub fn available(&self) -> bool {
        self.newest > self.current
    }
}

/// What an update did.
#[derive(Debug)]
pub enum Outcome {
    /// The newest release is this version.
    UpToDate(Version),
    /// The newest release is older than this binary (a build from source, say).
    Older { newest: Version, current: Version },
    Updated {
        from: Version,
        to: Version,
        previous: PathBuf,
    },
}

pub fn current_version() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).expect("Cargo.toml's version is semver")
}

/// The archive of `version` for the target this binary was built for.
pub fn asset_name(version: &Version) -> String {
    format!("cogbox-{version}-{}.tar.gz", env!("BUILD_TARGET"))
}

/// The newest release (by semver, pre-releases left out), changing nothing.
pub fn check(source: &Source) -> Result<Check, UpdateError> {
    let newest = newest(source)?;
    Ok(Check {
        current: current_version(),
        newest: newest.0,
    })
}

/// The newest release's version and its assets' names.
fn newest(source: &Source) -> Result<(Version, Vec<String>), UpdateError> {
    let releases = github::ReleaseList::configure()
        .repo_owner(&source.owner)
        .repo_name(&source.name)
        .with_url(&source.api_url)
        .build()
        .and_then(|list| list.fetch())
        .map_err(|e| UpdateError::Network {
            repository: source.repository(),
            api_url: source.api_url.clone(),
            detail: e.to_string(),
        })?;
    releases
        .into_iter()
        .filter_map(|release| {
            let version = Version::parse(&release.version).ok()?;
            let assets = release.assets.into_iter().map(|a| a.name).collect();
            version.pre.is_empty().then_some((version, assets))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .ok_or_else(|| UpdateError::NoReleases {
            repository: source.repository(),
        })
}

/// The binary to replace: this one.
pub fn current_exe() -> Result<PathBuf, UpdateError> {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(UpdateError::io(Path::new("the running binary")))
}

/// Refuses early, before anything is downloaded, when `exe`'s folder cannot be written.
pub fn ensure_writable(exe: &Path) -> Result<(), UpdateError> {
    let dir = exe.parent().unwrap_or(Path::new("/"));
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).map_err(|e| UpdateError::NotWritable {
        exe: exe.to_owned(),
        dir: dir.to_owned(),
        source: e.into(),
    })
}

fn previous_path(exe: &Path) -> PathBuf {
    let mut name = exe.as_os_str().to_owned();
    name.push(".previous");
    PathBuf::from(name)
}

/// Keeps `exe` beside itself under a temporary name, for [`previous_path`]: as a hard link,
/// which costs nothing, since `exe` is only ever replaced by a rename, never written into
/// (a copy where the file system has no hard links).
fn stage_previous(exe: &Path) -> Result<PathBuf, UpdateError> {
    let mut staged = previous_path(exe).into_os_string();
    staged.push(".part");
    let staged = PathBuf::from(staged);
    // Left over by an update that was killed halfway.
    let _ = std::fs::remove_file(&staged);
    let kept = std::fs::hard_link(exe, &staged).or_else(|e| match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Err(e),
        _ => std::fs::copy(exe, &staged).map(drop),
    });
    match kept {
        Ok(()) => Ok(staged),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(UpdateError::NotWritable {
                exe: exe.to_owned(),
                dir: exe.parent().unwrap_or(Path::new("/")).to_owned(),
                source: e,
            })
        }
        Err(e) => Err(UpdateError::io(&staged)(e)),
    }
}

/// Installs the newest release over `exe` if it is newer, keeping `exe` as `exe.previous`.
/// `progress` shows a download bar (on a terminal only).
pub fn install(source: &Source, exe: &Path, progress: bool) -> Result<Outcome, UpdateError> {
    let keys = trusted_keys(&source.api_url)?;
    let current = current_version();
    let (newest, assets) = newest(source)?;
    if newest == current {
        return Ok(Outcome::UpToDate(current));
    }
    if newest < current {
        return Ok(Outcome::Older { newest, current });
    }
    let asset = asset_name(&newest);
    if !assets.contains(&asset) {
        return Err(UpdateError::NoAsset {
            version: newest,
            asset,
        });
    }
    let staged = stage_previous(exe)?;
    let installed = github::Update::configure()
        .repo_owner(&source.owner)
        .repo_name(&source.name)
        .with_url(&source.api_url)
        .bin_name(BIN)
        .bin_install_path(exe)
        .target(env!("BUILD_TARGET"))
        // The whole file name: the asset is picked by exact name, never by a part of it.
        .identifier(&asset)
        .bin_path_in_archive("cogbox-{{ version }}-{{ target }}/{{ bin }}")
        .current_version(&current.to_string())
        // The workflow tags releases `v<version>`.
        .target_version_tag(&format!("v{newest}"))
        .verifying_keys(keys)
        .show_output(false)
        .show_download_progress(progress)
        .no_confirm(true)
        .build()
        .and_then(|update| update.update_extended());
    if let Err(e) = installed {
        let _ = std::fs::remove_file(&staged);
        return Err(classify(e, &asset, source));
    }
    if let Err(detail) = runs_as(exe, &newest) {
        // The copy of the binary that ran this goes back; an older `.previous` stays.
        std::fs::rename(&staged, exe).map_err(UpdateError::io(exe))?;
        return Err(UpdateError::Broken { detail });
    }
    let previous = previous_path(exe);
    std::fs::rename(&staged, &previous).map_err(UpdateError::io(&previous))?;
    Ok(Outcome::Updated {
        from: current,
        to: newest,
        previous,
    })
}

/// Whether `exe version` runs and names `version`.
fn runs_as(exe: &Path, version: &Version) -> Result<(), String> {
    let out = Command::new(exe)
        .arg("version")
        .output()
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && said.starts_with(&format!("cogbox {version} ")) {
        Ok(())
    } else {
        Err(format!(
            "`{} version` said {:?}",
            exe.display(),
            said.lines().next().unwrap_or("")
        ))
    }
}

/// Puts `exe.previous` back in place of `exe`, and `exe` where `exe.previous` was, so a second
/// rollback undoes the first. `exe` is replaced in one rename: it never goes missing.
pub fn rollback(exe: &Path) -> Result<PathBuf, UpdateError> {
    let previous = previous_path(exe);
    if !previous.exists() {
        return Err(UpdateError::NoPrevious(previous));
    }
    let staged = stage_previous(exe)?;
    if let Err(e) = std::fs::rename(&previous, exe) {
        let _ = std::fs::remove_file(&staged);
        return Err(UpdateError::io(exe)(e));
    }
    std::fs::rename(&staged, &previous).map_err(UpdateError::io(&previous))?;
    Ok(previous)
}

/// Names what went wrong in `self_update`'s terms as what the user can act on.
fn classify(e: CrateError, asset: &str, source: &Source) -> UpdateError {
    let asset = asset.to_owned();
    let broke_off = |detail: String| UpdateError::Truncated {
        asset: asset.clone(),
        detail,
    };
    match e {
        CrateError::Signature(e) => UpdateError::BadSignature {
            asset,
            detail: e.to_string(),
        },
        CrateError::NoSignatures(kind) => UpdateError::BadSignature {
            asset,
            detail: format!("cannot check signatures of {kind:?} files"),
        },
        // A body cut short surfaces from reqwest, directly or through its `Read`.
        CrateError::Reqwest(e) if e.is_body() || e.is_decode() => broke_off(e.to_string()),
        CrateError::Io(e)
            if e.get_ref()
                .is_some_and(|inner| inner.downcast_ref::<reqwest::Error>().is_some()) =>
        {
            broke_off(e.to_string())
        }
        CrateError::Io(e) if e.kind() == ErrorKind::UnexpectedEof => broke_off(e.to_string()),
        e @ (CrateError::Reqwest(_) | CrateError::Network(_) | CrateError::Update(_)) => {
            UpdateError::Network {
                repository: source.repository(),
                api_url: source.api_url.clone(),
                detail: e.to_string(),
            }
        }
        e => UpdateError::Install {
            asset,
            detail: e.to_string(),
        },
    }
}

/// The keys a release must be signed with: the compiled-in one, except in a debug build under
/// test (see the module's documentation).
fn trusted_keys(api_url: &str) -> Result<Vec<[u8; 32]>, UpdateError> {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os(TEST_KEY_ENV) {
        if !crate::config::is_loopback_url(api_url) {
            return Err(UpdateError::TestKey(format!(
                "{TEST_KEY_ENV} is for tests against a server on this machine, and \
                 update.api_url is {api_url}; unset it"
            )));
        }
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(UpdateError::io(&path))?;
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            UpdateError::TestKey(format!(
                "{TEST_KEY_ENV}: {} is not a 32-byte public key",
                path.display()
            ))
        })?;
        return Ok(vec![key]);
    }
    let _ = api_url;
    Ok(vec![RELEASE_KEY])
}

/// Names a public key file that replaces [`RELEASE_KEY`] in debug builds, for tests.
#[cfg(debug_assertions)]
const TEST_KEY_ENV: &str = "COGBOX_TEST_UPDATE_KEY";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_key_is_a_valid_ed25519_point() {
        let keys = std::iter::once(Ok(RELEASE_KEY));
        zipsign_api::verify::collect_keys(keys).expect("packaging/release.pub is a public key");
    }
}
