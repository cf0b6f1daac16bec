//! `cogbox update`: replaces this binary with the newest signed release from GitHub, keeping
//! the replaced one as `<binary>.previous` for `cogbox update --rollback`.
//!
//! `self_update` lists the releases, downloads the archive, unpacks it and swaps the binary;
//! the steps are called one by one rather than through its all-in-one `update_extended`, which
//! pulls in the whole `regex` crate (for a `{{ version }}` template) and prints to stdout. So:
//! - The versions are compared here (semver): an older or equal release is never downloaded.
//! - The signature is checked here, with `zipsign_api` exactly as `self_update`'s `signatures`
//!   feature checks it (the archive's file name is the context), before anything is unpacked.
//! - The new binary must answer `version` with the new version before it replaces this one.
//! - The HTTP is blocking (reqwest's blocking client runs its own runtime): the CLI calls this
//!   before any tokio runtime exists, never from an async worker.
//! - Only the progress bar is drawn (on stderr), and only on a terminal.
//! - A folder the binary cannot be written to (a package manager installed it) is refused
//!   before anything is downloaded, with a message rather than a raw I/O error.
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

use reqwest::header::{ACCEPT, HeaderValue};
use self_update::backends::github;
use self_update::errors::Error as CrateError;
use self_update::update::ReleaseAsset;
use self_update::{Download, Extract};
use semver::Version;

use crate::config::UpdateConfig;

/// The public half of the release signing key (32 bytes, as `zipsign gen-key` writes it).
const RELEASE_KEY: [u8; 32] = *include_bytes!("../../packaging/release.pub");

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
    #[error("cannot download {asset}: {detail}; nothing was changed")]
    Download { asset: String, detail: String },
    #[error("cannot install {asset}: {detail}; nothing was changed")]
    Install { asset: String, detail: String },
    #[error(
        "the new binary does not run here ({detail}); it was not installed, nothing was changed"
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

fn current_version() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).expect("Cargo.toml's version is semver")
}

/// The archive of `version` for the target this binary was built for.
fn asset_name(version: &Version) -> String {
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

/// The newest release's version and its assets.
fn newest(source: &Source) -> Result<(Version, Vec<ReleaseAsset>), UpdateError> {
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
            version.pre.is_empty().then_some((version, release.assets))
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
/// `progress` shows a download bar.
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
    let name = asset_name(&newest);
    let Some(asset) = assets.iter().find(|a| a.name == name) else {
        return Err(UpdateError::NoAsset {
            version: newest,
            asset: name,
        });
    };
    let work = self_update::TempDir::new().map_err(UpdateError::io(&std::env::temp_dir()))?;
    let archive = work.path().join(&name);
    download(asset, &archive, progress)?;
    verify(&archive, &name, &keys)?;
    // packaging/build-release.sh packs `cogbox-<version>-<target>/cogbox`.
    let inside = Path::new(name.trim_end_matches(".tar.gz")).join("cogbox");
    Extract::from_source(&archive)
        .extract_file(work.path(), &inside)
        .map_err(|e| UpdateError::Install {
            asset: name.clone(),
            detail: format!("no {} in it ({e})", inside.display()),
        })?;
    let new_exe = work.path().join(&inside);
    runs_as(&new_exe, &newest).map_err(|detail| UpdateError::Broken { detail })?;
    let staged = stage_previous(exe)?;
    if let Err(e) = self_update::self_replace::self_replace(&new_exe) {
        let _ = std::fs::remove_file(&staged);
        return Err(UpdateError::io(exe)(e));
    }
    let previous = previous_path(exe);
    std::fs::rename(&staged, &previous).map_err(UpdateError::io(&previous))?;
    Ok(Outcome::Updated {
        from: current,
        to: newest,
        previous,
    })
}

/// Downloads `asset` through the API (GitHub answers with a redirect to the file).
fn download(asset: &ReleaseAsset, to: &Path, progress: bool) -> Result<(), UpdateError> {
    let mut file = std::fs::File::create(to).map_err(UpdateError::io(to))?;
    let mut request = Download::from_url(&asset.download_url);
    request
        .set_header(ACCEPT, HeaderValue::from_static("application/octet-stream"))
        .show_progress(progress);
    request.download_to(&mut file).map_err(|e| {
        let asset = asset.name.clone();
        match e {
            // A body cut short surfaces from reqwest, directly or through its `Read`.
            CrateError::Reqwest(e) if e.is_body() || e.is_decode() => UpdateError::Truncated {
                asset,
                detail: e.to_string(),
            },
            CrateError::Io(e)
                if e.get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<reqwest::Error>().is_some()) =>
            {
                UpdateError::Truncated {
                    asset,
                    detail: e.to_string(),
                }
            }
            e => UpdateError::Download {
                asset,
                detail: e.to_string(),
            },
        }
    })
}

/// Checks the zipsign signature in the archive's gzip header, with its file name as context.
fn verify(archive: &Path, name: &str, keys: &[[u8; 32]]) -> Result<(), UpdateError> {
    let bad = |detail: String| UpdateError::BadSignature {
        asset: name.to_owned(),
        detail,
    };
    let keys = zipsign_api::verify::collect_keys(keys.iter().copied().map(Ok))
        .map_err(|e| bad(e.to_string()))?;
    let mut file = std::fs::File::open(archive).map_err(UpdateError::io(archive))?;
    zipsign_api::verify::verify_tar(&mut file, &keys, Some(name.as_bytes()))
        .map(drop)
        .map_err(|e| bad(e.to_string()))
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
            "`cogbox version` said {:?}",
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
