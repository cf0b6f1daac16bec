//! The command line: `run`, `console`, `init`, `check`, `backup`, `restore`, `update` and
//! `version`.
//! Exit codes: 0 done, 1 failed while running, 2 the config, the command line or the data
//! folder's state (in use by another cogbox) is wrong.

mod data;
mod update;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::adapters::slack;
use crate::app::{self, Frontends};
use crate::appliance::hygiene;
use crate::appliance::lock::DataLock;
use crate::config::{self, Config, ConfigSource};
use crate::logging;
use crate::services::store::{self, LATEST_SCHEMA};

/// The commented configuration `cogbox init` writes.
const EXAMPLE_CONFIG: &str = include_str!("../config.example.toml");
/// The line of the example that `init` replaces with a freshly generated webhook secret.
const SECRET_PLACEHOLDER: &str = "# secret_token = \"\"  # cogbox init generates one";

#[derive(Debug, Parser)]
#[command(
    name = "cogbox",
    version,
    about = "A self-hosted chat-bot appliance: Discord and Telegram bots from one binary",
    long_about = "A self-hosted chat-bot appliance: Discord and Telegram bots from one binary.\n\n\
                  With no command, `cogbox` runs the bot (see `cogbox run --help`). With no Discord \
                  or Telegram token configured it opens a local console chat instead, so you can try \
                  every command right away."
)]
pub struct Cli {
    /// Configuration file [default: ./config.toml]; a missing file means defaults plus COGBOX_* variables
    #[arg(long, short, global = true, env = "COGBOX_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the bot on every platform that has a token (the console if none has)
    Run,
    /// Chat with the bot in this terminal, as one user in one community
    Console {
        /// Act as this user instead of the owner (e.g. to try what members may do)
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Write a commented config file with a fresh webhook secret
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Validate the config, read the database without changing it, and print the effective
    /// settings (secrets hidden)
    Check,
    /// Write a consistent copy of the database, also while the bot runs
    Backup {
        /// Where to write it [default: <backup dir>/cogbox-<time>.db]
        path: Option<PathBuf>,
    },
    /// Replace the database with a backup (cogbox must be stopped); the replaced one is kept
    Restore {
        /// The backup to restore
        path: PathBuf,
    },
    /// Install the newest signed release from GitHub in place of this binary, keeping this one
    /// for --rollback (cogbox must be stopped)
    Update {
        /// Only say whether a newer release is out; change nothing
        #[arg(long, conflicts_with = "rollback")]
        check: bool,
        /// Put back the binary the last update replaced
        #[arg(long)]
        rollback: bool,
    },
    /// Print version, git commit, target and SQLite version
    Version,
    /// Set up the Slack app
    Slack {
        #[command(subcommand)]
        command: SlackCmd,
    },
}

#[derive(Debug, Subcommand)]
enum SlackCmd {
    /// Print the app manifest for the current commands and [slack] mode: create the app from it
    Manifest {
        /// The public https address Slack posts to (events mode only), e.g. https://bot.example.com
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli.config.unwrap_or_else(|| PathBuf::from("config.toml"));
    match cli.command.unwrap_or(Cmd::Run) {
        Cmd::Run => serve(&path, Frontends::Configured),
        Cmd::Console { as_user } => serve(&path, Frontends::Console { user: as_user }),
        Cmd::Init { force } => init(&path, force),
        Cmd::Check => check(&path),
        Cmd::Slack {
            command: SlackCmd::Manifest { url },
        } => slack_manifest(&path, url.as_deref()),
        Cmd::Backup { path: dest } => data::backup(&path, dest.as_deref()),
        Cmd::Restore { path: backup } => data::restore(&path, &backup),
        Cmd::Update { check: true, .. } => update::check(&path),
        Cmd::Update { rollback: true, .. } => update::rollback(&path),
        Cmd::Update { .. } => update::install(&path),
        Cmd::Version => {
            println!("{}", version());
            ExitCode::SUCCESS
        }
    }
}

/// Says what is wrong on stderr and picks the exit code: 2 for anything the user must fix.
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("cogbox: {message}");
    ExitCode::from(code)
}

fn load(path: &Path) -> Result<(Config, ConfigSource), ExitCode> {
    config::load(path).map_err(|errors| {
        for line in &errors.0 {
            eprintln!("{line}");
        }
        fail(
            2,
            format!(
                "{} problem(s) in the configuration; nothing was started",
                errors.0.len()
            ),
        )
    })
}

/// One cogbox per data folder: a second one is turned away with exit code 2.
fn lock(config: &Config) -> Result<DataLock, ExitCode> {
    DataLock::acquire(&config.bot.data_dir).map_err(|e| fail(2, e))
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fail(1, format!("cannot start the async runtime: {e}")))
}

fn serve(path: &Path, frontends: Frontends) -> ExitCode {
    let (config, source) = match load(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let _lock = match lock(&config) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let console = matches!(frontends, Frontends::Console { .. }) || !config.has_platforms();
    let _log_guard = match logging::init(&config.log, &config.log_dir(), console) {
        Ok(guard) => guard,
        Err(e) => return fail(2, e),
    };
    if !source.found {
        tracing::info!(
            "no config file at {}: using defaults and COGBOX_* variables",
            source.path.display()
        );
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(app::run(config, frontends, crate::shutdown::signal()));
    // Dropping the runtime would wait for blocking work (a checkpoint cut short) without end.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Logging is set up by now: one log line (stderr and file) says what went wrong.
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn init(path: &Path, force: bool) -> ExitCode {
    let secret = match webhook_secret() {
        Ok(secret) => secret,
        Err(e) => {
            return fail(
                1,
                format!("cannot get randomness for the webhook secret: {e}"),
            );
        }
    };
    let text = EXAMPLE_CONFIG.replace(SECRET_PLACEHOLDER, &format!("secret_token = \"{secret}\""));
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(path).and_then(|mut file| {
        // An existing file keeps its mode when opened: make it private before the secret is in.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(text.as_bytes())
    });
    match written {
        Ok(()) => {
            println!(
                "Wrote {}. Edit it, then run `cogbox check`.",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => fail(
            2,
            format!(
                "{} already exists; pass --force to overwrite it",
                path.display()
            ),
        ),
        Err(e) => fail(1, format!("{}: {e}", path.display())),
    }
}

/// 64 characters from the webhook secret alphabet, from the OS's random source.
fn webhook_secret() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b % 64)] as char)
        .collect())
}

fn check(path: &Path) -> ExitCode {
    let (config, source) = match load(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let database = config.database_path();
    let schema = match store::schema_on_disk(&database) {
        Ok(None) => format!("not created yet; `run` creates it at schema {LATEST_SCHEMA}"),
        Ok(Some(found)) if found < LATEST_SCHEMA => format!(
            "schema {found}; {} migration(s) pending, which `run` applies after a backup",
            LATEST_SCHEMA - found
        ),
        Ok(Some(found)) => format!("schema {found}"),
        Err(e) => return fail(2, e),
    };
    let found = if source.found {
        "found"
    } else {
        "not found: defaults and COGBOX_* variables only"
    };
    println!("config:    {} ({found})", source.path.display());
    println!("database:  {} ({schema})", database.display());
    let platforms: Vec<&str> = [
        ("discord", config.discord.token.is_some()),
        ("telegram", config.telegram.token.is_some()),
        ("slack", config.slack.bot_token.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let platforms = if platforms.is_empty() {
        "console (no token set)".to_owned()
    } else {
        platforms.join(", ")
    };
    println!("platforms: {platforms}");
    if let Some(offset) = config.test_clock_offset {
        println!(
            "clock:     {} ahead of the wall clock (COGBOX_TEST_CLOCK_OFFSET: for tests only)",
            crate::core::duration::format(offset)
        );
    }
    for warning in hygiene::warnings(&hygiene::secret_files(path, &config)) {
        println!("warning:   {warning}");
    }
    match toml::to_string_pretty(&config) {
        Ok(text) => {
            println!("\n# effective configuration (secrets hidden)\n{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, format!("cannot print the configuration: {e}")),
    }
}

fn slack_manifest(path: &Path, url: Option<&str>) -> ExitCode {
    let (config, _) = match load(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let cogs = crate::cogs::all();
    let specs = cogs
        .iter()
        .flat_map(|cog| cog.commands.iter().map(|c| &c.spec));
    match slack::manifest::manifest(&config.bot.name, &config.slack, specs, url) {
        Ok(manifest) => match serde_json::to_string_pretty(&manifest) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, format!("cannot print the manifest: {e}")),
        },
        Err(e) => fail(2, format!("slack manifest: {e}")),
    }
}

fn version() -> String {
    format!(
        "cogbox {} (commit {}, {}), SQLite {}",
        env!("CARGO_PKG_VERSION"),
        env!("BUILD_GIT_COMMIT"),
        env!("BUILD_TARGET"),
        rusqlite::version()
    )
}
