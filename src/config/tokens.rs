//! Tokens kept out of the config file: `token_file` keys, and the files systemd's
//! `LoadCredential=` puts in `$CREDENTIALS_DIRECTORY` (`discord_token`, `telegram_token`).
//! A token read here is a `SecretString` from the first byte on.

use std::io::Read as _;
use std::path::Path;

use secrecy::SecretString;

use super::Config;

/// A token is under 200 bytes; a larger file is the wrong file.
const MAX_TOKEN_BYTES: u64 = 4096;

/// Fills each unset token from its `token_file`, or else from the credentials folder.
/// Returns the problems as (key, problem).
pub(super) fn read_token_files(
    config: &mut Config,
    credentials: Option<&Path>,
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    for (key, credential, token, file) in [
        (
            "discord.token_file",
            "discord_token",
            &mut config.discord.token,
            &config.discord.token_file,
        ),
        (
            "telegram.token_file",
            "telegram_token",
            &mut config.telegram.token,
            &config.telegram.token_file,
        ),
    ] {
        if token.is_some() {
            continue;
        }
        let from_credentials = credentials
            .map(|dir| dir.join(credential))
            .filter(|path| path.exists());
        let Some(path) = file.clone().or(from_credentials) else {
            continue;
        };
        match read_token(&path) {
            Ok(secret) => *token = Some(secret),
            Err(problem) => problems.push((key, format!("{}: {problem}", path.display()))),
        }
    }
    problems
}

/// The file's text without surrounding whitespace (editors add a final newline).
fn read_token(path: &Path) -> Result<SecretString, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_TOKEN_BYTES {
        return Err("is larger than 4 KiB, so it does not hold just a token".into());
    }
    let text = String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("is empty".into());
    }
    Ok(SecretString::from(token))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_come_from_their_file_or_else_from_systemd_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("discord.token");
        std::fs::write(&file, "discord-secret\n").unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        std::fs::write(creds.join("telegram_token"), "123:telegram-secret").unwrap();
        std::fs::write(creds.join("discord_token"), "not used: token_file wins").unwrap();

        let mut config = Config::default();
        config.discord.token_file = Some(file);
        assert!(read_token_files(&mut config, Some(&creds)).is_empty());
        let token = |t: &Option<SecretString>| t.as_ref().unwrap().expose_secret().to_owned();
        assert_eq!(token(&config.discord.token), "discord-secret");
        assert_eq!(token(&config.telegram.token), "123:telegram-secret");
    }

    #[test]
    fn an_unusable_token_file_is_named_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let mut config = Config::default();
        config.discord.token_file = Some(empty.clone());
        config.telegram.token_file = Some(dir.path().join("missing"));
        let problems = read_token_files(&mut config, None);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].0, "discord.token_file");
        assert_eq!(problems[0].1, format!("{}: is empty", empty.display()));
        assert_eq!(problems[1].0, "telegram.token_file");
        assert!(problems[1].1.contains("cannot read"), "{}", problems[1].1);
        assert!(config.discord.token.is_none() && config.telegram.token.is_none());
    }

    #[test]
    fn a_token_of_4_kib_is_read_whole_and_a_larger_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let long = "t".repeat(MAX_TOKEN_BYTES as usize);
        std::fs::write(&path, &long).unwrap();
        assert_eq!(
            read_token(&path).unwrap().expose_secret(),
            long,
            "not cut short"
        );
        std::fs::write(&path, format!("{long}\n")).unwrap();
        assert_eq!(
            read_token(&path).unwrap_err(),
            "is larger than 4 KiB, so it does not hold just a token"
        );
    }
}
