//! Warnings `cogbox check` gives about where tokens are kept: a file holding a token should be
//! readable by its owner only, and never be tracked by git, where it would end up pushed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::Config;

/// Keys of the config file that hold secrets.
const SECRET_KEYS: &[&[&str]] = &[
    &["discord", "token"],
    &["telegram", "token"],
    &["telegram", "webhook", "secret_token"],
];

/// The files that hold a secret: the config file when it has one, and the token files.
pub fn secret_files(config_path: &Path, config: &Config) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if file_has_secret(config_path) {
        files.push(config_path.to_owned());
    }
    files.extend(
        [&config.discord.token_file, &config.telegram.token_file]
            .into_iter()
            .flatten()
            .cloned(),
    );
    files
}

fn file_has_secret(path: &Path) -> bool {
    let Some(table) = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
    else {
        return false;
    };
    SECRET_KEYS.iter().any(|keys| {
        let mut value = None::<&toml::Value>;
        for (depth, key) in keys.iter().enumerate() {
            value = if depth == 0 {
                table.get(*key)
            } else {
                value.and_then(|v| v.get(key))
            };
        }
        value.is_some_and(|v| v.as_str().is_none_or(|s| !s.is_empty()))
    })
}

/// One line per problem with a file holding a secret, saying how to fix it.
pub fn warnings(files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for path in files {
        let shown = path.display();
        if let Some(mode) = loose_mode(path) {
            out.push(format!(
                "{shown} holds a token but others can read it (mode {mode:03o}); \
                 run: chmod 600 {shown}"
            ));
        }
        if tracked_by_git(path) {
            out.push(format!(
                "{shown} holds a token and is tracked by git: run `git rm --cached {shown}`, \
                 add it to .gitignore, and rotate the token if it was ever pushed"
            ));
        }
    }
    out
}

/// The permission bits when group or others may read the file.
#[cfg(unix)]
fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_: &Path) -> Option<u32> {
    None
}

/// Asks git, when it is installed; a machine without git has no repository to leak from.
fn tracked_by_git(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--error-unmatch", "--"])
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_readable_or_git_tracked_token_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, "[discord]\ntoken = \"abc\"\n").unwrap();
        std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let token_file = dir.path().join("telegram.token");
        std::fs::write(&token_file, "123:abc").unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut config = Config::default();
        config.telegram.token_file = Some(token_file.clone());

        let files = secret_files(&config_path, &config);
        assert_eq!(files, vec![config_path.clone(), token_file.clone()]);
        let found = warnings(&files);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("others can read it (mode 644)"),
            "{}",
            found[0]
        );

        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .output()
                .expect("git is installed where the tests run")
        };
        git(&["init", "-q"]);
        git(&["add", "telegram.token"]);
        let found = warnings(&files);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[1].contains("telegram.token holds a token and is tracked by git"));

        std::fs::write(&config_path, "[discord]\nprefix = \"!\"\n").unwrap();
        assert_eq!(secret_files(&config_path, &config), vec![token_file]);
    }
}
