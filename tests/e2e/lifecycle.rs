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
    // A second connection stays open across the stop, as a backup tool's might: cogbox's own
    // closing is then not the last one, so only its explicit checkpoint empties the WAL.
    let db = rusqlite::Connection::open(sandbox.path("data/cogbox.db")).unwrap();
    db.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap();
    session.process.signal("-TERM");
    assert_eq!(session.process.wait(), 0);
    let wal = sandbox.path("data/cogbox.db-wal");
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).ok(),
        Some(0),
        "the WAL was checkpointed and truncated at stop"
    );

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
    session.process.signal("-INT");
    assert_eq!(session.process.wait(), 0);
    assert!(sandbox.dir().join("data/cogbox.db").exists());
}
