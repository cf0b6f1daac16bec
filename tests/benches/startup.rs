//! `cogbox console` started as a user would: the time to its first answer, and its memory once
//! it is idle.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::memory;

/// What one start of the console measured.
pub struct Start {
    pub first_answer: Duration,
    /// Idle RSS in MiB (NaN where `/proc` is missing).
    pub rss: f64,
    /// The idle memory and threads, described.
    pub idle: String,
}

/// Starts `cogbox console` in `dir`, times the answer to `/ping`, waits `settle` for start-up
/// allocations to settle, reads its memory and closes it.
pub fn ping(dir: &Path, settle: Duration) -> Start {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cogbox"))
        .arg("console")
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "/ping").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first_answer = started.elapsed();
    assert_eq!(line, "Pong!\n");
    std::thread::sleep(settle);
    let rss = memory::rss(child.id()).unwrap_or(f64::NAN);
    let idle = memory::describe(child.id());
    drop(stdin);
    child.wait().unwrap();
    Start {
        first_answer,
        rss,
        idle,
    }
}
