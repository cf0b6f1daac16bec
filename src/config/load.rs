//! Reading the configuration and reporting what is wrong with it: every problem at once, each
//! as `<file or env var>: <key>: <what is wrong>`, and never a panic, whatever the file holds.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::{Figment, Metadata, Source, error::Kind};
use serde::de::DeserializeOwned;

use super::{Config, tokens};
use crate::core::duration;

/// Where systemd puts the files named by `LoadCredential=`.
const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// No sane config file comes near this; a larger one is refused before it is parsed.
const MAX_FILE_BYTES: u64 = 1 << 20;
const ENV_PREFIX: &str = "COGBOX_";
/// `COGBOX_CONFIG` names the file, `COGBOX_TEST_CLOCK_OFFSET` moves the clock for tests and
/// `COGBOX_TEST_UPDATE_KEY` names the key test releases are signed with: none is a config key.
const ENV_NOT_KEYS: &[&str] = &["config", "test_clock_offset", "test_update_key"];
const CLOCK_OFFSET_ENV: &str = "COGBOX_TEST_CLOCK_OFFSET";

/// Where the configuration came from, for `cogbox check` and the start-up log.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub found: bool,
}

/// Every problem found, one line each.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads defaults < the file at `path` (if it exists) < `COGBOX_*` env.
pub fn load(path: &Path) -> Result<(Config, ConfigSource), ConfigErrors> {
    let shown = path.display().to_string();
    let fail = |msg: String| ConfigErrors(vec![format!("{shown}: {msg}")]);
    let found = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(fail("is a folder, not a config file".into())),
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return Err(fail(format!(
                "is {:.1} MB; a config file is at most 1 MiB, so this is not one",
                meta.len() as f64 / 1e6
            )));
        }
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(fail(format!("cannot read: {e}"))),
    };
    let mut figment = Figment::new();
    if found {
        check_syntax(path).map_err(fail)?;
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(
        Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(|key| !ENV_NOT_KEYS.iter().any(|k| key == *k)),
    );

    let mut problems = Vec::new();
    let mut config = Config {
        bot: section(&figment, "bot", &shown, &mut problems),
        discord: section(&figment, "discord", &shown, &mut problems),
        telegram: section(&figment, "telegram", &shown, &mut problems),
        slack: section(&figment, "slack", &shown, &mut problems),
        log: section(&figment, "log", &shown, &mut problems),
        limits: section(&figment, "limits", &shown, &mut problems),
        retention: section(&figment, "retention", &shown, &mut problems),
        schedule: section(&figment, "schedule", &shown, &mut problems),
        test_clock_offset: None,
        backup: section(&figment, "backup", &shown, &mut problems),
        update: section(&figment, "update", &shown, &mut problems),
    };
    match std::env::var(CLOCK_OFFSET_ENV) {
        Ok(text) if !text.is_empty() => match duration::parse(&text) {
            Ok(offset) => config.test_clock_offset = Some(offset),
            Err(e) => problems.push(format!("environment {CLOCK_OFFSET_ENV}: {e}")),
        },
        _ => {}
    }
    if let Ok(top) = figment.extract::<figment::value::Dict>() {
        for key in top.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
            let source = figment
                .find_metadata(key)
                .map(|m| origin(m, &shown, key))
                .unwrap_or_default();
            problems.push(format!(
                "{source}: {key}: unknown section (sections: {})",
                SECTIONS.join(", ")
            ));
        }
    }
    let located = |key: &str, problem: String| {
        let source = figment
            .find_metadata(key)
            .map(|m| origin(m, &shown, key))
            // An unset key is fixed by adding it to the file.
            .unwrap_or_else(|| shown.clone());
        format!("{source}: {key}: {problem}")
    };
    if problems.is_empty() {
        if config.test_clock_offset.is_some() {
            if let Some(refusal) = config.clock_offset_refusal() {
                problems.push(format!("environment {CLOCK_OFFSET_ENV}: {refusal}"));
            }
        }
        for (key, problem) in config.problems() {
            problems.push(located(key, problem));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigErrors(problems));
    }
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    config.anchor_paths(base);
    let credentials = std::env::var_os(CREDENTIALS_DIRECTORY).map(PathBuf::from);
    for (key, problem) in tokens::read_token_files(&mut config, credentials.as_deref()) {
        problems.push(located(key, problem));
    }
    if !problems.is_empty() {
        return Err(ConfigErrors(problems));
    }
    Ok((
        config,
        ConfigSource {
            path: path.to_owned(),
            found,
        },
    ))
}

const SECTIONS: &[&str] = &[
    "bot",
    "discord",
    "telegram",
    "slack",
    "log",
    "limits",
    "retention",
    "schedule",
    "backup",
    "update",
];

/// Extracts one section, recording its problems instead of stopping at them, so one run
/// reports what is wrong in every section.
fn section<T: DeserializeOwned + Default>(
    figment: &Figment,
    name: &str,
    shown: &str,
    problems: &mut Vec<String>,
) -> T {
    if !figment.contains(name) {
        return T::default();
    }
    match figment.extract_inner::<T>(name) {
        Ok(value) => value,
        Err(errors) => {
            for e in errors {
                // figment appends the extracted key after the path inside it.
                let mut path = e.path.clone();
                if path.last().map(String::as_str) == Some(name) {
                    path.pop();
                }
                path.insert(0, name.to_owned());
                let key = path.join(".");
                let source = e
                    .metadata
                    .as_ref()
                    .map(|m| origin(m, shown, &key))
                    .unwrap_or_else(|| shown.to_owned());
                problems.push(format!("{source}: {key}: {}", describe(&e.kind)));
            }
            T::default()
        }
    }
}

/// Names the file, or the environment variable, a value came from: the only two providers.
fn origin(meta: &Metadata, shown: &str, key: &str) -> String {
    match &meta.source {
        Some(Source::File(_)) => shown.to_owned(),
        _ => format!(
            "environment {ENV_PREFIX}{}",
            key.replace('.', "__").to_uppercase()
        ),
    }
}

fn describe(kind: &Kind) -> String {
    let quoted = |items: &[&str]| items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>();
    match kind {
        Kind::UnknownVariant(found, expected) => {
            let mut options = quoted(expected);
            let last = options.pop().unwrap_or_default();
            let options = if options.is_empty() {
                last
            } else {
                format!("{} or {last}", options.join(", "))
            };
            format!("expected {options}, found \"{found}\"")
        }
        Kind::UnknownField(_, expected) => {
            format!("unknown key (keys here: {})", expected.join(", "))
        }
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
            format!("expected {}, found {found}", plain_type(expected))
        }
        other => other.to_string(),
    }
}

/// Says serde's Rust type names in a user's words.
fn plain_type(expected: &str) -> &str {
    match expected {
        "a nonzero u32" => "a whole number above 0",
        "u8" | "u16" | "u32" | "u64" | "usize" | "a u32" | "a u64" | "a usize" => "a whole number",
        "a boolean" | "bool" => "true or false",
        other => other,
    }
}

/// Parses the file as TOML first, for an error that points at the line and column, and reads
/// it as bytes so a file that is not UTF-8 gets its own message.
fn check_syntax(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("line {line}: not UTF-8 text; save the file as UTF-8")
    })?;
    toml::from_str::<toml::Table>(&text).map(drop).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start).min(text.len());
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let message: Vec<&str> = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        format!(
            "line {line}, column {column}: invalid TOML: {}",
            message.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_up_to_1_mib_is_read_and_a_larger_one_is_refused_unparsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut text = "# padding\n".repeat(MAX_FILE_BYTES as usize / 10);
        text.push_str(&"#".repeat(MAX_FILE_BYTES as usize - text.len() - 1));
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let (_, source) = load(&path).expect("a 1 MiB file of comments is a config");
        assert!(source.found);
        text.insert(0, '#');
        std::fs::write(&path, &text).unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("is 1.0 MB; a config file is at most 1 MiB, so this is not one"),
            "{error}"
        );
    }

    #[test]
    fn only_a_missing_file_means_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let (_, source) = load(&dir.path().join("config.toml")).unwrap();
        assert!(!source.found, "no file: the defaults");

        let error = load(dir.path()).unwrap_err().to_string();
        assert!(
            error.ends_with(": is a folder, not a config file"),
            "{error}"
        );

        // A path through a file cannot be read (ENOTDIR): an error, not the defaults.
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = load(&file.join("config.toml")).unwrap_err().to_string();
        assert!(
            error.contains("config.toml: cannot read: Not a directory"),
            "{error}"
        );
    }
}
