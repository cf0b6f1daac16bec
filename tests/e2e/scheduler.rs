//! The scheduler in the real binary: periodic jobs from `[schedule]`, jobs that fell due while
//! cogbox was stopped, and the test clock offset that lets these tests move time.

use std::sync::Arc;

use chrono::Utc;
use cogbox::core::{CommunityId, ManualClock, PlatformKind, UserId};
use cogbox::services::audit::{Entry, Filter, Outcome};
use cogbox::services::{Audit, Store};

use crate::support::Sandbox;

const GROUP: CommunityId = CommunityId::new(PlatformKind::Console, 1);
const MOD: UserId = UserId::new(PlatformKind::Console, 1);

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// Writes an audit entry dated `days_ago` into the sandbox's database.
fn audit_entry(sandbox: &Sandbox, action: &str, days_ago: i64) {
    std::fs::create_dir_all(sandbox.path("data")).unwrap();
    block_on(async {
        let store = Store::open(&sandbox.path("data/cogbox.db")).unwrap();
        let clock = ManualClock::new(Utc::now() - chrono::Duration::days(days_ago));
        Audit::new(store.clone(), Arc::new(clock))
            .log(Entry::new(Some(GROUP), MOD, action), Outcome::Done)
            .await
            .unwrap();
        store.checkpoint().await.unwrap();
    });
}

fn audit_actions(sandbox: &Sandbox) -> Vec<String> {
    std::fs::create_dir_all(sandbox.path("data")).unwrap();
    block_on(async {
        let store = Store::open(&sandbox.path("data/cogbox.db")).unwrap();
        let clock = Arc::new(cogbox::core::SystemClock);
        Audit::new(store, clock)
            .query(GROUP, Filter::All, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry.action)
            .collect()
    })
}

#[test]
fn the_audit_log_keeps_its_retention_across_restarts_and_a_moved_clock() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.run(&["check"], "").code, 0, "creates the database");
    audit_entry(&sandbox, "old ban", 100);
    audit_entry(&sandbox, "recent warn", 1);

    // The periodic purge runs at the first start: older than 90 days goes.
    let out = sandbox.run(&["console"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(audit_actions(&sandbox), ["recent warn"]);

    // The next purge is due in a day. Started 95 days later, it runs at once (it fell due
    // while cogbox was stopped) and the warn is now older than the retention too.
    let mut later = sandbox.command(&["console"]);
    later.env("COGBOX_TEST_CLOCK_OFFSET", "95d");
    let out = sandbox.run_with(later, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("TEST CLOCK: running 95d ahead"),
        "a moved clock is never silent: {}",
        out.stderr
    );
    assert_eq!(audit_actions(&sandbox), Vec::<String>::new());
}

#[test]
fn a_turned_off_purge_keeps_everything() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.run(&["check"], "").code, 0);
    audit_entry(&sandbox, "old ban", 100);
    let mut off = sandbox.command(&["console"]);
    off.env("COGBOX_SCHEDULE__AUDIT_PURGE", "");
    let out = sandbox.run_with(off, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(audit_actions(&sandbox), ["old ban"]);
}

#[test]
fn the_test_clock_offset_is_refused_when_a_platform_is_real_and_shown_by_check() {
    let sandbox = Sandbox::new();
    let mut real = sandbox.command(&["check"]);
    real.env("COGBOX_TEST_CLOCK_OFFSET", "1h")
        .env("COGBOX_TELEGRAM__TOKEN", "123:abc");
    let out = sandbox.run_with(real, "");
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "environment COGBOX_TEST_CLOCK_OFFSET: COGBOX_TEST_CLOCK_OFFSET moves cogbox's clock \
             for end-to-end tests only, and telegram talks to https://api.telegram.org"
        ),
        "{}",
        out.stderr
    );

    let mut faked = sandbox.command(&["check"]);
    faked
        .env("COGBOX_TEST_CLOCK_OFFSET", "1h")
        .env("COGBOX_TELEGRAM__TOKEN", "123:abc")
        .env("COGBOX_TELEGRAM__API_URL", "http://127.0.0.1:9");
    let out = sandbox.run_with(faked, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("clock:     1h ahead of the wall clock (COGBOX_TEST_CLOCK_OFFSET"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[schedule]\naudit_purge = \"1d\""),
        "{}",
        out.stdout
    );

    // Set but empty, as a unit file or compose file leaves it: the same as unset.
    let mut empty = sandbox.command(&["check"]);
    empty
        .env("COGBOX_TEST_CLOCK_OFFSET", "")
        .env("COGBOX_TELEGRAM__TOKEN", "123:abc");
    let out = sandbox.run_with(empty, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("clock:"), "{}", out.stdout);

    let mut bad = sandbox.command(&["check"]);
    bad.env("COGBOX_TEST_CLOCK_OFFSET", "soon");
    let out = sandbox.run_with(bad, "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("environment COGBOX_TEST_CLOCK_OFFSET: \"soon\" is not a duration"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_schedule_names_the_key_and_the_file() {
    let sandbox = Sandbox::new();
    for (toml, problem) in [
        (
            "optimize = \"often\"",
            "config.toml: schedule.optimize: \"often\" is not a duration",
        ),
        (
            "expiries = \"1s\"",
            "config.toml: schedule.expiries: must be at least 10s, or \"\" to turn the job off",
        ),
    ] {
        sandbox.write("config.toml", format!("[schedule]\n{toml}\n"));
        let out = sandbox.run(&["check"], "");
        assert_eq!(out.code, 2, "{toml}");
        assert!(out.stderr.contains(problem), "{}", out.stderr);
    }
}
