//! `cogbox update` against a fake GitHub releases API on 127.0.0.1. `self_update` always
//! replaces the running binary, so each test runs a copy of the built binary (a hard link: the
//! update renames over it and never writes into it) from a folder of its own.
//!
//! The "new release" in the archives is a two-line shell script that answers `version` as a
//! cogbox of that version would. A real cogbox of another version would need a second build of
//! the whole crate; what is under test is how the running binary gets, checks and swaps the
//! file, and `cogbox update` itself runs `<new binary> version` before it keeps it.
//!
//! Releases are signed with a key pair made by each test; the debug binary trusts its public
//! half through `COGBOX_TEST_UPDATE_KEY`, which a release build ignores (see
//! `src/appliance/update.rs`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use zipsign_api::SigningKey;

use crate::fake_releases::FakeReleases;
use crate::support::{Output, Sandbox};

const REPOSITORY: &str = "someone/cogbox";
const CURRENT: &str = env!("CARGO_PKG_VERSION");

/// The target triple the binary was built for, from `cogbox version`.
fn target() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cogbox"))
        .arg("version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // cogbox 0.1.0 (commit abc1234, x86_64-unknown-linux-gnu), SQLite 3.50.2
    let inside = text.split_once('(').unwrap().1.split_once(')').unwrap().0;
    inside.rsplit(", ").next().unwrap().to_owned()
}

fn new_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    SigningKey::from_bytes(&seed)
}

/// A stand-in for a cogbox of `version`: it answers `version` as cogbox does.
fn fake_binary(version: &str) -> Vec<u8> {
    format!(
        "#!/bin/sh\necho \"cogbox {version} (commit test, {}), SQLite 3\"\n",
        target()
    )
    .into_bytes()
}

/// `cogbox-<version>-<target>.tar.gz` as packaging/build-release.sh packs it (a folder of that
/// name holding the binary and README.md), signed by `key` as `zipsign sign tar` signs it: the
/// file name is the signature's context.
fn archive(
    version: &str,
    target: &str,
    binary: &[u8],
    key: Option<&SigningKey>,
) -> (String, Vec<u8>) {
    let name = format!("cogbox-{version}-{target}");
    let stage = tempfile::tempdir().unwrap();
    let folder = stage.path().join(&name);
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("cogbox"), binary).unwrap();
    chmod(&folder.join("cogbox"), "755");
    std::fs::write(folder.join("README.md"), "cogbox\n").unwrap();
    let file = format!("{name}.tar.gz");
    let tarball = stage.path().join(&file);
    let status = Command::new("tar")
        .arg("-C")
        .arg(stage.path())
        .args(["--owner=0", "--group=0", "-czf"])
        .arg(&tarball)
        .arg(&name)
        .status()
        .unwrap();
    assert!(status.success(), "tar failed");
    let bytes = match key {
        None => std::fs::read(&tarball).unwrap(),
        Some(key) => {
            let mut signed = std::io::Cursor::new(Vec::new());
            zipsign_api::sign::copy_and_sign_tar(
                &mut File::open(&tarball).unwrap(),
                &mut signed,
                std::slice::from_ref(key),
                Some(file.as_bytes()),
            )
            .unwrap();
            signed.into_inner()
        }
    };
    (file, bytes)
}

/// Whether two files hold the same bytes, read a piece at a time (the debug binary is large).
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (
        BufReader::with_capacity(1 << 20, File::open(a).unwrap()),
        BufReader::with_capacity(1 << 20, File::open(b).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut a, &mut x);
        let m = read_full(&mut b, &mut y);
        if n != m || x[..n] != y[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).unwrap() {
            0 => break,
            n => filled += n,
        }
    }
    filled
}

/// An installed cogbox (`bin/cogbox`, a copy of the built one) whose config points at a fake
/// releases server, and the key the test signs good releases with.
struct Installed {
    sandbox: Sandbox,
    fake: FakeReleases,
    key: SigningKey,
    exe: PathBuf,
}

impl Installed {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let fake = FakeReleases::start(REPOSITORY);
        std::fs::create_dir(sandbox.path("bin")).unwrap();
        let exe = sandbox.path("bin/cogbox");
        std::fs::hard_link(env!("CARGO_BIN_EXE_cogbox"), &exe).unwrap();
        sandbox.write(
            "config.toml",
            format!(
                "[update]\nrepository = \"{REPOSITORY}\"\napi_url = \"{}\"\n",
                fake.api_url()
            ),
        );
        let key = new_key();
        sandbox.write("test.pub", key.verifying_key().to_bytes());
        Self {
            sandbox,
            fake,
            key,
            exe,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command_of(&self.exe, args);
        command.env("COGBOX_TEST_UPDATE_KEY", self.sandbox.path("test.pub"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.sandbox.run_with(self.command(args), "")
    }

    /// Publishes `version` with a good archive for this machine holding a stand-in binary.
    fn publish_signed(&self, version: &str) -> Vec<u8> {
        let binary = fake_binary(version);
        let asset = archive(version, &target(), &binary, Some(&self.key));
        self.fake.publish(&format!("v{version}"), vec![asset]);
        binary
    }

    /// The binary is the one built, byte for byte, and nothing else is in its folder.
    fn assert_unchanged(&self, case: &str) {
        assert!(
            same_bytes(&self.exe, Path::new(env!("CARGO_BIN_EXE_cogbox"))),
            "{case}: the binary changed"
        );
        let names: Vec<String> = std::fs::read_dir(self.sandbox.path("bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["cogbox"], "{case}: files left beside the binary");
    }
}

#[test]
fn a_signed_newer_release_installs_after_check_and_the_replaced_binary_is_kept() {
    let installed = Installed::new();
    installed.publish_signed("0.0.9");
    let new_binary = installed.publish_signed("0.2.0");

    let out = installed.run(&["update", "--check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("this cogbox: {CURRENT}\n"))
            && out.stdout.contains("newest release: 0.2.0\n")
            && out.stdout.contains("An update is available"),
        "{}",
        out.stdout
    );
    installed.assert_unchanged("--check");
    assert_eq!(
        installed.fake.downloads(),
        0,
        "--check downloaded an archive"
    );

    let out = installed.run(&["update"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("from {CURRENT} to 0.2.0. Restart cogbox")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.lines().count() == 1 && out.stderr.is_empty(),
        "one line says what happened; no progress bar or chatter on a pipe: {out:?}"
    );
    assert_eq!(std::fs::read(&installed.exe).unwrap(), new_binary);
    let version = Command::new(&installed.exe)
        .arg("version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("cogbox 0.2.0 "),
        "{version:?}"
    );
    let previous = installed.sandbox.path("bin/cogbox.previous");
    assert!(
        same_bytes(&previous, Path::new(env!("CARGO_BIN_EXE_cogbox"))),
        "the replaced binary is kept for --rollback"
    );
}

#[test]
fn tampered_wrongly_signed_unsigned_cut_short_and_missing_archives_are_refused() {
    let target = target();
    let cases: [(&str, &str); 5] = [
        (
            "tampered",
            "does not carry a valid signature from cogbox's release key",
        ),
        (
            "wrong key",
            "does not carry a valid signature from cogbox's release key",
        ),
        (
            "unsigned",
            "does not carry a valid signature from cogbox's release key",
        ),
        ("cut short", "broke off"),
        (
            "no archive for this machine",
            "has no archive for this machine",
        ),
    ];
    for (case, expected) in cases {
        let installed = Installed::new();
        let binary = fake_binary("0.2.0");
        let asset = match case {
            "tampered" => {
                let (name, mut bytes) = archive("0.2.0", &target, &binary, Some(&installed.key));
                // A byte of the compressed data, after the signature in the gzip header.
                let at = bytes.len() - 40;
                bytes[at] ^= 0x01;
                (name, bytes)
            }
            "wrong key" => archive("0.2.0", &target, &binary, Some(&new_key())),
            "unsigned" => archive("0.2.0", &target, &binary, None),
            "cut short" => {
                installed.fake.cut_downloads_short();
                archive("0.2.0", &target, &binary, Some(&installed.key))
            }
            _ => archive(
                "0.2.0",
                "aarch64-unknown-linux-musl-not-this",
                &binary,
                Some(&installed.key),
            ),
        };
        installed.fake.publish("v0.2.0", vec![asset]);
        let out = installed.run(&["update"]);
        assert_eq!(out.code, 1, "{case}: {out:?}");
        assert!(
            out.stderr.contains(expected) && out.stderr.contains("nothing was changed"),
            "{case}: {}",
            out.stderr
        );
        installed.assert_unchanged(case);
    }
}

#[test]
fn an_older_or_equal_release_is_not_installed() {
    for (version, expected) in [
        (
            "0.0.9",
            format!(
                "The newest release, 0.0.9, is older than this cogbox ({CURRENT}); nothing was changed."
            ),
        ),
        (
            CURRENT,
            format!("cogbox {CURRENT} is already up to date; nothing was changed."),
        ),
    ] {
        let installed = Installed::new();
        installed.publish_signed(version);
        let out = installed.run(&["update"]);
        assert_eq!(out.code, 0, "{version}: {}", out.stderr);
        assert!(out.stdout.contains(&expected), "{version}: {}", out.stdout);
        installed.assert_unchanged(version);
        assert_eq!(installed.fake.downloads(), 0, "{version} was downloaded");
    }
}

#[test]
fn rollback_puts_the_replaced_binary_back_and_a_second_one_undoes_it() {
    let installed = Installed::new();
    let out = installed.run(&["update", "--rollback"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("there is no")
            && out.stderr.contains("cogbox.previous to roll back to"),
        "{}",
        out.stderr
    );
    installed.assert_unchanged("nothing to roll back");

    // What an update from 0.0.1 left behind.
    let old = fake_binary("0.0.1");
    let previous = installed.sandbox.write("bin/cogbox.previous", &old);
    let out = installed.run(&["update", "--rollback"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Rolled back"), "{}", out.stdout);
    assert_eq!(std::fs::read(&installed.exe).unwrap(), old);
    assert!(same_bytes(
        &previous,
        Path::new(env!("CARGO_BIN_EXE_cogbox"))
    ));

    // The rolled-back binary is a stand-in that cannot run cogbox: put the real one back by
    // hand and roll back again from it, which swaps the two once more.
    std::fs::rename(&previous, &installed.exe).unwrap();
    std::fs::write(&previous, &old).unwrap();
    let out = installed.run(&["update", "--rollback"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read(&installed.exe).unwrap(), old);
}

#[test]
fn a_folder_this_user_cannot_write_is_refused_before_anything_is_downloaded() {
    let installed = Installed::new();
    installed.publish_signed("0.2.0");
    let bin = installed.sandbox.path("bin");
    let mut command = installed.command(&["update"]);
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if uid == b"0\n" {
        // Root writes anywhere: run as nobody, as a user whose binary a package manager owns.
        for dir in [installed.sandbox.dir(), &bin] {
            chmod(dir, "755");
        }
        chmod(&installed.sandbox.path("test.pub"), "644");
        chmod(&installed.sandbox.path("config.toml"), "644");
        std::os::unix::process::CommandExt::uid(&mut command, 65534);
        std::os::unix::process::CommandExt::gid(&mut command, 65534);
    } else {
        chmod(&bin, "555");
    }
    let out = installed.sandbox.run_with(command, "");
    chmod(&bin, "755");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "its folder {} is not writable by this user",
            std::fs::canonicalize(&bin).unwrap().display()
        )) && out.stderr.contains("If a package manager installed cogbox"),
        "{}",
        out.stderr
    );
    assert_eq!(installed.fake.downloads(), 0);
    installed.assert_unchanged("not writable");
}

fn chmod(path: &Path, mode: &str) {
    assert!(
        Command::new("chmod")
            .arg(mode)
            .arg(path)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn update_waits_for_a_stopped_bot_and_needs_a_repository_and_a_local_test_key() {
    let installed = Installed::new();
    installed.publish_signed("0.2.0");
    let mut session = installed.sandbox.spawn_console();
    assert_eq!(session.say("/ping"), "Pong!");
    let out = installed.run(&["update"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("is in use by another cogbox"),
        "{}",
        out.stderr
    );
    session.process.signal("-TERM");
    assert_eq!(session.process.wait(), 0);
    installed.assert_unchanged("locked");

    let mut command = installed.command(&["update"]);
    command.env("COGBOX_UPDATE__API_URL", "https://api.github.com");
    let out = installed.sandbox.run_with(command, "");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("COGBOX_TEST_UPDATE_KEY is for tests against a server on this machine"),
        "{}",
        out.stderr
    );

    installed
        .sandbox
        .write("config.toml", "[update]\nrepository = \"nope\"\n");
    let out = installed.run(&["update", "--check"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("config.toml: update.repository: \"nope\" is not a GitHub repository"),
        "{}",
        out.stderr
    );
    installed.sandbox.write("config.toml", "");
    let out = installed.run(&["update"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("config.toml: update.repository: not set"),
        "{}",
        out.stderr
    );
    installed.assert_unchanged("not configured");
}
