//! The economy through the real binary: every command's answers, and money that neither a
//! restart, nor a race between two processes, nor a SIGKILL mid-burst can create or lose.

use crate::support::Sandbox;

#[test]
fn a_console_session_tries_every_economy_command() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &["console"],
        "/balance\n/daily\n/daily\n/grant @bob 1500\n/pay @bob 50\n/pay @owner 5\n\
         /pay @bob 100000\n/pay @bob 0\n/take @bob 10000\n/take @bob 100\n/leaderboard\n\
         /balance @bob\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The wait is whole seconds, and a second may tick between the two claims.
    let stdout = out.stdout.replacen("23h59m59s", "23h59m5X", 1);
    let stdout = stdout.replacen("23h59m58s", "23h59m5X", 1);
    assert_eq!(
        stdout,
        "You have 0 coins.\n\
         You collected 100 coins. You now have 100 coins. Come back tomorrow.\n\
         /daily: you already collected today's; come back in 23h59m5X\n\
         Granted 1,500 coins to bob, who now has 1,500 coins.\n\
         You paid bob 50 coins. You have 50 coins left.\n\
         /pay: you can't pay yourself\n\
         /pay: you have only 50 coins\n\
         /pay: <amount> must be between 1 and 1000000000, not 0\n\
         /take: bob has only 1,550 coins\n\
         Took 100 coins from bob, who now has 1,450 coins.\n\
         Leaderboard\n\
         1. bob - 1,450 coins\n\
         2. owner - 50 coins\n\
         You are #2 with 50 coins.\n\
         bob has 1,450 coins.\n"
    );

    let db = rusqlite::Connection::open(sandbox.path("data/cogbox.db")).unwrap();
    let audited: Vec<(String, String, String)> = db
        .prepare("SELECT action, detail, outcome FROM audit_log ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let row = |a: &str, d: &str, o: &str| (a.to_owned(), d.to_owned(), o.to_owned());
    assert_eq!(
        audited,
        [
            row("economy.grant", "1,500 coins", "done"),
            row("economy.take", "10,000 coins", "failed"),
            row("economy.take", "100 coins", "done"),
        ],
        "moderators' grants and takes are audited, refusals too"
    );

    // Another member: no moderator rights, their own balance, the same rules.
    let bob = sandbox.run(
        &["console", "--as", "bob"],
        "/grant @bob 5\n/take @owner 5\n/pay @owner 1450\n/pay @owner 1\n/leaderboard\n",
    );
    assert_eq!(
        bob.stdout,
        "/grant: you need the Manage Settings permission\n\
         /take: you need the Manage Settings permission\n\
         You paid owner 1,450 coins. You have 0 coins left.\n\
         /pay: you have only 0 coins\n\
         Leaderboard\n\
         1. owner - 1,500 coins\n\
         You have no coins yet; try /daily.\n",
        "{}",
        bob.stderr
    );
}

#[test]
fn a_restart_does_not_reset_the_daily() {
    let sandbox = Sandbox::new();
    let first = sandbox.run(&["console"], "/daily\n");
    assert!(
        first.stdout.starts_with("You collected 100 coins"),
        "{first:?}"
    );
    let again = sandbox.run(&["console"], "/daily\n/balance\n");
    assert!(
        again
            .stdout
            .starts_with("/daily: you already collected today's; come back in 23h59m"),
        "{again:?}"
    );
    assert!(again.stdout.ends_with("You have 100 coins.\n"), "{again:?}");
}

/// Every balance equals the sum of the ledger rows paying in minus those paying out.
fn ledger_matches_balances(db: &rusqlite::Connection) {
    let mut stmt = db
        .prepare(
            "SELECT b.user, b.balance,
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE payee = b.user)
                  - (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE payer = b.user)
             FROM balances b",
        )
        .unwrap();
    let rows: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!rows.is_empty());
    for (user, balance, from_ledger) in rows {
        assert_eq!(balance, from_ledger, "user {user}");
    }
}

#[test]
fn sigkill_mid_burst_loses_no_answered_transfer() {
    const START: i64 = 1_000_000;
    const BURST: usize = 400;
    let sandbox = Sandbox::new();
    let mut session = sandbox.spawn_console();
    assert_eq!(
        session.say(&format!("/grant @owner {START}")),
        "Granted 1,000,000 coins to owner, who now has 1,000,000 coins."
    );
    for _ in 0..BURST {
        session.send("/pay @bob 1");
    }
    let mut answered = 0;
    while answered < BURST / 4 {
        let line = session.read().expect("answers before the kill");
        assert!(line.starts_with("You paid bob 1 coins."), "{line}");
        answered += 1;
    }
    session.process.signal("-KILL");
    // Answers already in the pipe were committed too.
    while let Some(line) = session.read() {
        assert!(line.starts_with("You paid bob 1 coins."), "{line}");
        answered += 1;
    }
    assert!(answered < BURST, "the kill came mid-burst");

    let db = rusqlite::Connection::open(sandbox.path("data/cogbox.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let balance = |name: &str| -> i64 {
        db.query_row(
            "SELECT balance FROM balances WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (owner, bob) = (balance("owner"), balance("bob"));
    assert_eq!(owner + bob, START, "no money made or lost");
    assert!(
        bob >= answered as i64,
        "every answered transfer was kept: {bob} < {answered}"
    );
    let payments: i64 = db
        .query_row("SELECT COUNT(*) FROM ledger WHERE kind = 'pay'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(payments, bob, "one ledger row per transfer");
    ledger_matches_balances(&db);
}
