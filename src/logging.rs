//! Logs to stderr and to a rotating file in the log folder (tracing-appender), at the level
//! from `RUST_LOG` or `log.level`.

use std::path::Path;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation as FileRotation};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::{LogConfig, Rotation};

const LOG_BUFFER_LINES: usize = 4096;

/// Flushes the log file when dropped: keep it alive until the very end of `main`.
pub struct LogGuard {
    _guard: WorkerGuard,
}

/// Installs the global subscriber. `quiet_stderr` keeps stderr to warnings and errors, so an
/// interactive console chat is not drowned in log lines; the file still gets everything.
pub fn init(config: &LogConfig, dir: &Path, quiet_stderr: bool) -> Result<LogGuard, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("log folder {}: {e}", dir.display()))?;
    let rotation = match config.rotation {
        Rotation::Hourly => FileRotation::HOURLY,
        Rotation::Daily => FileRotation::DAILY,
        Rotation::Never => FileRotation::NEVER,
    };
    let appender = RollingFileAppender::builder()
        .rotation(rotation)
        .filename_prefix("cogbox")
        .filename_suffix("log")
        .max_log_files(config.keep)
        .build(dir)
        .map_err(|e| format!("log folder {}: {e}", dir.display()))?;
    // The default buffer preallocates 128,000 line slots (megabytes of idle memory); a
    // bot logs a few lines a second, and a full buffer drops lines rather than blocking.
    let (file_writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .finish(appender);
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let stderr_cap = if quiet_stderr {
        LevelFilter::WARN
    } else {
        LevelFilter::TRACE
    };
    let result = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter())
                .with_filter(stderr_cap),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(file_writer)
                .with_filter(filter()),
        )
        .try_init();
    if let Err(e) = result {
        return Err(format!("logging: {e}"));
    }
    std::panic::set_hook(Box::new(|info| tracing::error!(target: "panic", "{info}")));
    Ok(LogGuard { _guard: guard })
}
