//! Helpers shared by the end-to-end tests: a temporary folder to run the real `cogbox` binary
//! in, with a clean environment and a deadline on every run.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Long enough for a loaded CI machine, short enough that a hang fails the test.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Sandbox {
    dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The audit log's (action, outcome, outcome detail) rows, oldest first; readable while
    /// cogbox runs (WAL).
    pub fn audit_log(&self) -> Vec<(String, String, Option<String>)> {
        let db = rusqlite::Connection::open(self.path("data/cogbox.db")).expect("the database");
        let mut rows = db
            .prepare("SELECT action, outcome, outcome_detail FROM audit_log ORDER BY id")
            .expect("the audit log");
        rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("audit rows")
            .map(|row| row.expect("an audit row"))
            .collect()
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// `cogbox` run in the sandbox, with no COGBOX_* or RUST_LOG from the outside world.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_cogbox")), args)
    }

    /// [`Sandbox::command`] with another copy of the binary.
    pub fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("COGBOX_") {
                command.env_remove(key);
            }
        }
        command
    }

    /// Runs `cogbox args` to the end with `stdin` as its input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(self.command(args), stdin)
    }

    pub fn run_with(&self, mut command: Command, stdin: &str) -> Output {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cogbox");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
        let output = match rx.recv_timeout(DEADLINE) {
            Ok(output) => output.expect("wait for cogbox"),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("cogbox did not finish within {DEADLINE:?}");
            }
        };
        let out = Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(
            !out.stderr.contains("panicked"),
            "cogbox panicked: {}",
            out.stderr
        );
        out
    }

    /// Starts `command` in the background with its output collected; it is killed if the
    /// test ends without waiting for it.
    pub fn spawn(&self, mut command: Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cogbox");
        let (stderr, reader) = collect(child.stderr.take().unwrap());
        Running {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Starts a console session that stays open, for tests that talk and signal.
    pub fn spawn_console(&self) -> Session {
        self.spawn_console_with(self.command(&["console"]))
    }

    /// [`Sandbox::spawn_console`] with a command of the test's own (an environment to set).
    pub fn spawn_console_with(&self, mut command: Command) -> Session {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cogbox console");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (stderr, reader) = collect(child.stderr.take().unwrap());
        Session {
            process: Running {
                child,
                stderr,
                reader: Some(reader),
            },
            stdin,
            lines: read_lines(stdout),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn read_lines(stdout: BufReader<ChildStdout>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Gathers a stream's text on a thread, so a chatty process never blocks on a full pipe.
fn collect(stream: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    (text, reader)
}

/// A `cogbox` process running in the background.
pub struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit and returns its exit code; [`stderr`](Self::stderr) is
    /// then complete. Blocks the thread, so async tests call it in `block_in_place`.
    pub fn wait(&mut self) -> i32 {
        let code = self.exit_code();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader");
        }
        let stderr = self.stderr();
        assert!(!stderr.contains("panicked"), "cogbox panicked: {stderr}");
        code
    }

    fn exit_code(&mut self) -> i32 {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for cogbox") {
                return status.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "cogbox did not exit within {DEADLINE:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `cogbox console`.
pub struct Session {
    pub process: Running,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Session {
    /// The next line the console prints, unprompted or not.
    pub fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("a line from the console")
    }

    /// Sends one line and returns the first line of the answer.
    pub fn say(&mut self, line: &str) -> String {
        self.send(line);
        self.lines
            .recv_timeout(DEADLINE)
            .expect("an answer from the console")
    }

    /// Sends one line without waiting for its answer.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the console");
    }

    /// The next line of output; `None` once the console's output has ended.
    pub fn read(&self) -> Option<String> {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no output within {DEADLINE:?}"),
        }
    }
}
