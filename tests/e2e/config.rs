//! `init`, `check` and `version`, and the specific error (exit 2) for each kind of bad config.

use cogbox::services::store::LATEST_SCHEMA;

use crate::support::Sandbox;

#[test]
fn init_writes_a_private_config_with_a_fresh_secret_that_check_accepts_and_hides() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["init"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let written = std::fs::read_to_string(sandbox.path("config.toml")).unwrap();
    let secret = written
        .lines()
        .find_map(|l| l.strip_prefix("secret_token = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("init writes a webhook secret");
    assert_eq!(secret.len(), 64);
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sandbox.path("config.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the config holds secrets: only its owner may read it"
        );
    }

    let check = sandbox.run(&["check"], "");
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check.stdout.contains("config.toml (found)"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains(&format!(
            "(not created yet; `run` creates it at schema {LATEST_SCHEMA})"
        )),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("secret_token = \"<hidden>\""),
        "{}",
        check.stdout
    );
    assert!(
        !check.stdout.contains(secret),
        "check must never print a secret"
    );

    let again = sandbox.run(&["init"], "");
    assert_eq!(again.code, 2);
    assert!(
        again
            .stderr
            .contains("already exists; pass --force to overwrite it"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.path("config.toml")).unwrap(),
        written,
        "refusal must not touch it"
    );
    // A config someone made world-readable gets its new secret private all the same.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = sandbox.path("config.toml");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert_eq!(sandbox.run(&["init", "--force"], "").code, 0);
    assert_ne!(
        std::fs::read_to_string(sandbox.path("config.toml")).unwrap(),
        written,
        "a new secret each time"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sandbox.path("config.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "--force leaves the new secret readable by others"
        );
    }
}

/// Each broken file must fail with exit 2 and this exact line on stderr.
#[test]
fn each_bad_config_names_its_file_key_and_problem() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("wrong enum", b"[telegram]\nmode = \"hook\"\n", "config.toml: telegram.mode: expected \"polling\" or \"webhook\", found \"hook\""),
        ("broken TOML", b"[bot]\nname = \"x\nkeep = 3\n", "config.toml: line 2, column 10: invalid TOML: invalid basic string"),
        ("broken header", b"[bot\nname = 1\n", "config.toml: line 1, column 5: invalid TOML: invalid table header; expected `.`, `]`"),
        ("wrong type", b"[limits]\ncommands = \"five\"\n", "config.toml: limits.commands: expected a whole number above 0, found string \"five\""),
        ("zero", b"[limits]\ncommands = 0\n", "config.toml: limits.commands:"),
        ("unknown key", b"[bot]\nnmae = \"x\"\n", "config.toml: bot.nmae: unknown key (keys here: name, owners, data_dir, error_channel)"),
        ("unknown section", b"[bots]\nname = \"x\"\n", "config.toml: bots: unknown section"),
        ("bad owner", b"[bot]\nowners = [\"discord:me\"]\n", "config.toml: bot.owners: \"me\" is not a Discord id (a number)"),
        ("bad duration", b"[limits]\nwindow = \"10 minutes\"\n", "config.toml: limits.window: \"10 minutes\" is not a duration"),
        ("webhook without url", b"[telegram]\nmode = \"webhook\"\n[telegram.webhook]\nsecret_token = \"abc\"\n", "config.toml: telegram.webhook.public_url: webhook mode needs the public https URL"),
        ("webhook over http", b"[telegram]\nmode = \"webhook\"\n[telegram.webhook]\npublic_url = \"http://bot.example.com\"\nsecret_token = \"abc\"\n", "config.toml: telegram.webhook.public_url: \"http://bot.example.com\" is not an https URL"),
        ("webhook url with braces", b"[telegram]\nmode = \"webhook\"\n[telegram.webhook]\npublic_url = \"https://bot.example.com/{x}\"\nsecret_token = \"abc\"\n", "config.toml: telegram.webhook.public_url: \"https://bot.example.com/{x}\" has a path cogbox cannot listen on"),
        ("webhook on a port Telegram refuses", b"[telegram]\nmode = \"webhook\"\n[telegram.webhook]\npublic_url = \"https://bot.example.com:8080/tg\"\nsecret_token = \"abc\"\n", "config.toml: telegram.webhook.public_url: \"https://bot.example.com:8080/tg\": Telegram posts only to ports 443, 80, 88 or 8443"),
        ("webhook without secret", b"[telegram]\nmode = \"webhook\"\n[telegram.webhook]\npublic_url = \"https://bot.example.com\"\n", "config.toml: telegram.webhook.secret_token: webhook mode needs a secret token (cogbox init writes one)"),
        ("bad secret", b"[telegram.webhook]\nsecret_token = \"has spaces!\"\n", "config.toml: telegram.webhook.secret_token: must be 1-256 characters of A-Z a-z 0-9 _ -"),
        ("bad listen", b"[telegram.webhook]\nlisten = \"nowhere\"\n", "config.toml: telegram.webhook.listen: \"nowhere\" is not an address like 127.0.0.1:8443"),
        ("bad log level", b"[log]\nlevel = \"loud!!\"\n", "config.toml: log.level: \"loud!!\" is not a log filter"),
        ("bad url", b"[discord]\napi_url = \"discord.com\"\n", "config.toml: discord.api_url: \"discord.com\" is not an http(s) URL"),
        ("backups too often", b"[backup]\nevery = \"30s\"\n", "config.toml: backup.every: must be at least 1m"),
        ("missing token file", b"[discord]\ntoken_file = \"nowhere.token\"\n", "config.toml: discord.token_file: ./nowhere.token: cannot read: No such file"),
        ("token not text", b"[discord]\ntoken = true\n", "config.toml: discord.token: expected a string, found bool true"),
        ("bad prefix", b"[discord]\nprefix = \"a b\"\n", "config.toml: discord.prefix: \"a b\" must be 1-5 characters without spaces and not \"/\", or \"\" to turn prefix commands off"),
        ("bad presence", b"[discord]\npresence = \"dancing\"\n", "config.toml: discord.presence: \"dancing\" must start with playing, watching, listening to or competing in"),
        ("bad ban window", b"[discord]\nban_delete_message_days = 8\n", "config.toml: discord.ban_delete_message_days: 8 is more than Discord allows; use 0 to 7"),
        ("zero guild", b"[discord]\nguild_ids = [0]\n", "config.toml: discord.guild_ids: 0 is not a guild id"),
        ("not UTF-8", b"[bot]\nname = \"\xff\xfe\"\n", "config.toml: line 2: not UTF-8 text; save the file as UTF-8"),
        ("slack user token", b"[slack]\nbot_token = \"xoxp-1-2-secretpart\"\napp_token = \"xapp-1\"\n", "config.toml: slack.bot_token: is not a bot token (it must start with xoxb-)"),
        ("slack socket without app token", b"[slack]\nbot_token = \"xoxb-1\"\n", "config.toml: slack.app_token: socket mode needs the app-level token"),
        ("slack events without secret", b"[slack]\nbot_token = \"xoxb-1\"\nmode = \"events\"\n", "config.toml: slack.signing_secret: events mode needs the signing secret"),
        ("slack app token alone", b"[slack]\napp_token = \"xapp-1\"\n", "config.toml: slack.bot_token: is needed too"),
        ("slack wrong mode", b"[slack]\nmode = \"webhook\"\n", "config.toml: slack.mode: expected \"socket\" or \"events\", found \"webhook\""),
        ("slack built-in command", b"[slack]\ncommand = \"/remind\"\n", "config.toml: slack.command: \"/remind\" is one of Slack's built-in commands"),
        ("slack bad command", b"[slack]\ncommand = \"cogbox\"\n", "config.toml: slack.command: \"cogbox\" must be / and 1-31 of a-z 0-9 - _"),
        ("slack trailing slash", b"[slack]\napi_url = \"https://slack.com/api/\"\n", "config.toml: slack.api_url: \"https://slack.com/api/\" must not end in /"),
        ("slack bad listen", b"[slack.events]\nlisten = \"3000\"\n", "config.toml: slack.events.listen: \"3000\" is not an address"),
        ("slack unknown key", b"[slack]\ntoken = \"xoxb-1\"\n", "config.toml: slack.token: unknown key (keys here: bot_token, app_token, mode, signing_secret, command, api_url, events)"),
    ];
    for (what, file, expected) in cases {
        let sandbox = Sandbox::new();
        sandbox.write("config.toml", file);
        let out = sandbox.run(&["check"], "");
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(
            out.stderr.lines().any(|l| l.starts_with(expected)),
            "{what}: expected {expected:?} in\n{}",
            out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "{what}: nothing is printed as if it worked"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "config.toml",
        "[telegram]\nmode = \"hook\"\n[log]\nkeep = \"x\"\n[colour]\n",
    );
    let out = sandbox.run(&["run"], "");
    assert_eq!(out.code, 2);
    for expected in [
        "config.toml: telegram.mode:",
        "config.toml: log.keep:",
        "config.toml: colour: unknown section",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected:?} in\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("3 problem(s) in the configuration; nothing was started"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_huge_file_is_refused_without_parsing() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "#".repeat(10 * 1024 * 1024));
    let out = sandbox.run(&["check"], "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("config.toml: is 10.5 MB; a config file is at most 1 MiB"),
        "{}",
        out.stderr
    );
}

#[test]
fn environment_overrides_the_file_and_is_named_in_errors() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[bot]\nname = \"from-file\"\n");
    let mut command = sandbox.command(&["check"]);
    command
        .env("COGBOX_BOT__NAME", "from-env")
        .env("COGBOX_TELEGRAM__TOKEN", "12345");
    let out = sandbox.run_with(command, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("name = \"from-env\""), "{}", out.stdout);
    assert!(
        out.stdout.contains("platforms: telegram"),
        "a digits-only token is still a token: {}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("12345"),
        "the token must never be printed"
    );

    let mut command = sandbox.command(&["check"]);
    command.env("COGBOX_TELEGRAM__MODE", "hook");
    let out = sandbox.run_with(command, "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("environment COGBOX_TELEGRAM__MODE: telegram.mode: expected \"polling\" or \"webhook\", found \"hook\""),
        "{}",
        out.stderr
    );
}

#[test]
fn the_config_path_comes_from_the_flag_then_the_environment() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("etc")).unwrap();
    sandbox.write("etc/cogbox.toml", "[bot]\nname = \"elsewhere\"\n");
    let out = sandbox.run(&["check", "--config", "etc/cogbox.toml"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("name = \"elsewhere\""));
    assert!(
        out.stdout
            .contains("database:  etc/data/cogbox.db (not created yet"),
        "data_dir is relative to the config file: {}",
        out.stdout
    );

    let mut command = sandbox.command(&["check"]);
    command.env("COGBOX_CONFIG", "etc/cogbox.toml");
    let out = sandbox.run_with(command, "");
    assert!(
        out.stdout.contains("name = \"elsewhere\""),
        "{}",
        out.stderr
    );

    let out = sandbox.run(&["check", "--config", "missing.toml"], "");
    assert_eq!(out.code, 0, "a missing file means defaults: {}", out.stderr);
    assert!(
        out.stdout.contains("missing.toml (not found"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_database_from_a_newer_cogbox_is_refused() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("data")).unwrap();
    let db = rusqlite::Connection::open(sandbox.path("data/cogbox.db")).unwrap();
    db.pragma_update(None, "user_version", 42).unwrap();
    drop(db);
    let out = sandbox.run(&["check"], "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!(
            "has schema version 42, newer than this cogbox knows ({LATEST_SCHEMA})"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn version_names_commit_target_and_sqlite() {
    let out = Sandbox::new().run(&["version"], "");
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .starts_with(&format!("cogbox {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("SQLite 3."), "{}", out.stdout);
}

#[test]
fn slack_comes_from_the_environment_and_is_checked_with_secrets_hidden() {
    let sandbox = Sandbox::new();
    let slack = |command: &mut std::process::Command| {
        command
            .env("COGBOX_SLACK__BOT_TOKEN", "xoxb-1111-secret-bot-part")
            .env("COGBOX_SLACK__APP_TOKEN", "xapp-1-A1-secret-app-part")
            .env("COGBOX_SLACK__SIGNING_SECRET", "secret-signing-part")
            .env("COGBOX_SLACK__MODE", "events")
            .env("COGBOX_SLACK__EVENTS__LISTEN", "127.0.0.1:3999")
            .env("COGBOX_SLACK__COMMAND", "/bot")
            .env("COGBOX_SLACK__API_URL", "http://127.0.0.1:9/api");
    };
    let mut command = sandbox.command(&["check"]);
    slack(&mut command);
    let out = sandbox.run_with(command, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    for shown in [
        "platforms: slack",
        "[slack]\nbot_token = \"<hidden>\"\napp_token = \"<hidden>\"\nmode = \"events\"\nsigning_secret = \"<hidden>\"\ncommand = \"/bot\"\napi_url = \"http://127.0.0.1:9/api\"",
        "[slack.events]\nlisten = \"127.0.0.1:3999\"",
    ] {
        assert!(out.stdout.contains(shown), "{shown:?} in\n{}", out.stdout);
    }
    for secret in ["secret-bot-part", "secret-app-part", "secret-signing-part"] {
        assert!(!out.stdout.contains(secret), "{}", out.stdout);
    }

    let mut command = sandbox.command(&["check"]);
    command.env("COGBOX_SLACK__BOT_TOKEN", "xoxp-user-token-secret");
    let out = sandbox.run_with(command, "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("environment COGBOX_SLACK__BOT_TOKEN: slack.bot_token: is not a bot token"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("user-token-secret"), "{}", out.stderr);

    // With Slack configured and unreachable, run says where it could not reach, and nothing
    // secret, and exits 1 (the config is fine; the network is not).
    let mut command = sandbox.command(&["run"]);
    slack(&mut command);
    let out = sandbox.run_with(command, "");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("slack: cannot reach the Web API at http://127.0.0.1:9/api"),
        "{}",
        out.stderr
    );
    for secret in ["secret-bot-part", "secret-app-part", "secret-signing-part"] {
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    }
}
