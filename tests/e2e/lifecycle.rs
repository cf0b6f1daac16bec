//! Stopping: a signal mid-session ends cleanly, with the database whole and the log flushed.

use crate::support::Sandbox;

#[test]
fn sigterm_during_a_session_exits_0_with_the_database_intact() {
    let sandbox = Sandbox::new();
    let mut session = sandbox.spawn_console();
    assert_eq!(session.say("/cog off fun"), "The fun cog is now off here.");
    assert_eq!(
        session.say("/ping"),
        "/ping: the fun cog is turned off here"
    );
    session.signal("-TERM");
    assert_eq!(session.wait(), 0);

    let db = rusqlite::Connection::open(sandbox.path("data/cogbox.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let value: String = db
        .query_row(
            "SELECT value FROM community_settings WHERE key = 'cog.fun'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, "disabled");
    let wal = sandbox.path("data/cogbox.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the WAL was checkpointed"
    );

    let logs: String = std::fs::read_dir(sandbox.path("data/logs"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert!(
        logs.contains("shutting down") && logs.contains("stopped cleanly"),
        "log flushed: {logs}"
    );
}

#[test]
fn sigint_stops_too() {
    let sandbox = Sandbox::new();
    let mut session = sandbox.spawn_console();
    assert_eq!(session.say("/ping"), "Pong!");
    session.signal("-INT");
    assert_eq!(session.wait(), 0);
    assert!(sandbox.dir().join("data/cogbox.db").exists());
}
