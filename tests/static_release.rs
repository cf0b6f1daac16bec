//! The release as a user gets it: `packaging/build-release.sh` builds fully static binaries
//! (with the cheaper `static-test` profile), which run where nothing else is installed: the
//! x86_64 one in an empty root directory, the aarch64 one under `qemu-aarch64-static`. The
//! packaging files are checked too: the systemd unit with `systemd-analyze verify`, and the
//! install script's refusal to clobber a config.
//!
//! Needs zig (`pip install ziglang cargo-zigbuild`), the musl rustup targets, qemu-user-static,
//! unshare and systemd-analyze: `.ci/run` installs them. A missing tool fails the test with the
//! command that installs it, rather than skipping it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PROFILE: &str = "static-test";

fn run(command: &mut Command, stdin: &str) -> Output {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}; .ci/run shows how to install it"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Builds and packs `target` with the release script; returns the binary.
fn build(target: &str) -> PathBuf {
    let dist = Path::new(ROOT).join("target/static-test-dist");
    let out = run(
        Command::new(Path::new(ROOT).join("packaging/build-release.sh"))
            .env("TARGETS", target)
            .env("PROFILE", PROFILE)
            .env("DIST", &dist)
            .env_remove("SIGNING_KEY"),
        "",
    );
    assert!(
        out.status.success(),
        "build-release.sh failed:\n{}",
        text(&out.stderr)
    );
    let binary = Path::new(ROOT).join(format!("target/{target}/{PROFILE}/cogbox"));
    let described = text(&run(Command::new("file").arg(&binary), "").stdout);
    assert!(described.contains("statically linked"), "{described}");

    let archive = dist.join(format!(
        "cogbox-{}-{target}.tar.gz",
        env!("CARGO_PKG_VERSION")
    ));
    let listing = run(Command::new("tar").arg("tzf").arg(&archive), "");
    assert!(listing.status.success(), "{}", text(&listing.stderr));
    let mut names: Vec<String> = text(&listing.stdout)
        .lines()
        .filter_map(|l| l.split_once('/').map(|(_, name)| name.to_owned()))
        .filter(|name| !name.is_empty())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "README.md",
            "cogbox",
            "cogbox.service",
            "config.example.toml",
            "install.sh"
        ]
    );
    binary
}

/// `version`, `check` and a console session, each through `launch` (a command line that
/// runs the binary given as its last argument in some foreign environment).
fn smoke(launch: impl Fn(&[&str]) -> Command) {
    let version = run(&mut launch(&["version"]), "");
    assert!(version.status.success(), "{}", text(&version.stderr));
    assert!(
        text(&version.stdout).starts_with(&format!("cogbox {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        text(&version.stdout)
    );

    let check = run(&mut launch(&["check"]), "");
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("platforms: console (no token set)"),
        "{}",
        text(&check.stdout)
    );

    let console = run(&mut launch(&["console"]), "/ping\n/roll 1d1\n");
    assert!(console.status.success(), "{}", text(&console.stderr));
    let replies = text(&console.stdout);
    assert!(replies.contains("Pong!"), "{replies}");
    assert!(!text(&console.stderr).contains("panicked"));
}

#[test]
fn the_x86_64_binary_is_static_and_runs_in_an_empty_root() {
    let binary = build("x86_64-unknown-linux-musl");
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, root.path().join("cogbox")).unwrap();
    std::fs::write(root.path().join("config.toml"), "[bot]\nname = \"alone\"\n").unwrap();
    // Nothing else: no /lib, no /etc, no /dev, no certificate store.
    smoke(|args| {
        let mut command = Command::new("unshare");
        command
            .args(["--user", "--map-root-user", "--root"])
            .arg(root.path())
            .arg("/cogbox")
            .args(args)
            .env_clear();
        command
    });
    let mut names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cogbox", "config.toml", "data"],
        "it ran inside the root"
    );
}

#[test]
fn the_aarch64_binary_is_static_and_runs_under_qemu() {
    let binary = build("aarch64-unknown-linux-musl");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[bot]\nname = \"pi\"\n").unwrap();
    let launch = |args: &[&str]| {
        let mut command = Command::new("qemu-aarch64-static");
        command
            .arg(&binary)
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG");
        command
    };
    let started = Instant::now();
    let version = run(&mut launch(&["version"]), "");
    eprintln!(
        "aarch64 `cogbox version` under qemu: {:?}",
        started.elapsed()
    );
    assert!(
        text(&version.stdout).contains("aarch64-unknown-linux-musl"),
        "{}",
        text(&version.stdout)
    );
    smoke(launch);
}

#[test]
fn systemd_accepts_the_unit() {
    let unit = std::fs::read_to_string(Path::new(ROOT).join("packaging/cogbox.service")).unwrap();
    for needed in [
        "User=cogbox",
        "StateDirectory=cogbox",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "LoadCredential=telegram_token:",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    // verify wants ExecStart's binary to exist: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cogbox.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/cogbox", env!("CARGO_BIN_EXE_cogbox")),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&path), "");
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("cogbox.service:"),
        "systemd has remarks about the unit: {said}"
    );
}

#[test]
fn install_script_keeps_an_existing_config() {
    let unpacked = tempfile::tempdir().unwrap();
    for (from, to) in [
        (env!("CARGO_BIN_EXE_cogbox"), "cogbox"),
        ("packaging/cogbox.service", "cogbox.service"),
        ("packaging/install.sh", "install.sh"),
        ("config.example.toml", "config.example.toml"),
    ] {
        std::fs::copy(Path::new(ROOT).join(from), unpacked.path().join(to)).unwrap();
    }
    let dest = tempfile::tempdir().unwrap();
    let install = || {
        let out = run(
            Command::new("sh")
                .arg(unpacked.path().join("install.sh"))
                .env("DESTDIR", dest.path()),
            "",
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert!(install().contains("wrote"));
    let config = dest.path().join("etc/cogbox/config.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("data_dir = \"/var/lib/cogbox\""),
        "{written}"
    );
    std::fs::write(&config, "[bot]\nname = \"mine\"\n").unwrap();
    assert!(install().contains("kept the existing"));
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "[bot]\nname = \"mine\"\n"
    );
    assert!(dest.path().join("usr/local/bin/cogbox").exists());
    assert!(
        dest.path()
            .join("etc/systemd/system/cogbox.service")
            .exists()
    );
}
