//! The data folder as an appliance keeps it: one cogbox at a time, a `check` that changes
//! nothing, a backup before every migration, and backup and restore from the command line.

use cogbox::services::store::LATEST_SCHEMA;

use crate::support::Sandbox;

fn schema(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// The sorted names of the files in the sandbox's folder `dir`.
fn names(sandbox: &Sandbox, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sandbox.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn one_cogbox_per_data_folder_and_restore_only_while_it_is_stopped() {
    let sandbox = Sandbox::new();
    let mut session = sandbox.spawn_console();
    assert_eq!(session.say("/cog off fun"), "The fun cog is now off here.");
    let holder = std::fs::read_to_string(sandbox.path("data/cogbox.lock")).unwrap();

    for args in [&["run"][..], &["console"], &["restore", "backup.db"]] {
        let second = sandbox.run(args, "/ping\n");
        assert_eq!(second.code, 2, "{args:?}: {}", second.stderr);
        assert!(
            second.stderr.contains(&format!(
                "is in use by another cogbox (pid {}); stop that one first",
                holder.trim()
            )),
            "{args:?}: {}",
            second.stderr
        );
        assert!(
            second.stdout.is_empty(),
            "{args:?} must not start: {}",
            second.stdout
        );
    }

    // A backup is taken while the bot runs.
    let out = sandbox.run(&["backup", "backup.db"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("backup.db (schema {LATEST_SCHEMA})")),
        "{}",
        out.stdout
    );
    let again = sandbox.run(&["backup", "backup.db"], "");
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("backup.db already exists"),
        "{}",
        again.stderr
    );

    assert_eq!(session.say("/cog on fun"), "The fun cog is now on here.");
    session.process.signal("-TERM");
    assert_eq!(session.process.wait(), 0);

    let out = sandbox.run(&["restore", "backup.db"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("The database it replaced is kept as"),
        "{}",
        out.stdout
    );
    let kept: Vec<_> = names(&sandbox, "data")
        .into_iter()
        .filter(|n| n.starts_with("cogbox-replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let mut session = sandbox.spawn_console();
    assert_eq!(
        session.say("/ping"),
        "/ping: the fun cog is turned off here",
        "the restored database is the backup's, taken while fun was off"
    );
}

#[test]
fn check_changes_nothing_and_run_backs_up_before_it_migrates() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["check"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "(not created yet; `run` creates it at schema {LATEST_SCHEMA})"
        )),
        "{}",
        out.stdout
    );
    assert!(
        !sandbox.path("data").exists(),
        "check created the data folder"
    );

    // A database from before the first migration, holding something of the user's.
    std::fs::create_dir(sandbox.path("data")).unwrap();
    let db = sandbox.path("data/cogbox.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE mine (x); INSERT INTO mine VALUES (42);")
        .unwrap();
    let out = sandbox.run(&["check"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("(schema 0; {LATEST_SCHEMA} migration(s) pending")),
        "{}",
        out.stdout
    );
    assert_eq!(schema(&db), 0, "check migrated the database");
    assert!(!sandbox.path("data/backups").exists());
    assert_eq!(
        names(&sandbox, "data"),
        ["cogbox.db"],
        "check left files behind"
    );

    let out = sandbox.run(&["console"], "/ping\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(schema(&db), LATEST_SCHEMA as i64);
    let backups = names(&sandbox, "data/backups");
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(
        backups[0].starts_with(&format!("cogbox-before-schema-{LATEST_SCHEMA}-")),
        "{backups:?}"
    );
    let copy = sandbox.path(&format!("data/backups/{}", backups[0]));
    assert_eq!(schema(&copy), 0, "the backup is the database as it was");
    let kept: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT x FROM mine", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 42);

    // A stopped, current database: read-only, without its -wal and -shm files.
    let out = sandbox.run(&["check"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let current = format!("(schema {LATEST_SCHEMA})");
    assert!(out.stdout.contains(&current), "{}", out.stdout);
    assert_eq!(
        names(&sandbox, "data/backups").len(),
        1,
        "nothing to migrate, no backup"
    );
}

#[test]
fn restore_refuses_a_file_that_is_not_a_cogbox_database_and_changes_nothing() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.run(&["console"], "/cog off fun\n").code, 0);
    let before = std::fs::read(sandbox.path("data/cogbox.db")).unwrap();
    sandbox.write("notes.db", "these are not the tables you are looking for");
    let out = sandbox.run(&["restore", "notes.db"], "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("notes.db is not a usable cogbox backup: file is not a database"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(sandbox.path("data/cogbox.db")).unwrap(),
        before
    );
    let out = sandbox.run(&["restore", "missing.db"], "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("missing.db: No such file"),
        "{}",
        out.stderr
    );
}

#[cfg(unix)]
#[test]
fn check_warns_about_a_token_others_can_read_and_reads_tokens_from_files() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let token = sandbox.write("telegram.token", "123456:secret-from-a-file\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    sandbox.write(
        "config.toml",
        "[telegram]\ntoken_file = \"telegram.token\"\n",
    );
    let out = sandbox.run(&["check"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("platforms: telegram"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "warning:   ./telegram.token holds a token but others can read it (mode 640); \
             run: chmod 600 ./telegram.token"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("secret-from-a-file"), "{}", out.stdout);

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = sandbox.run(&["check"], "");
    assert!(!out.stdout.contains("warning:"), "{}", out.stdout);

    sandbox.write(
        "config.toml",
        "[telegram]\ntoken = \"1:x\"\ntoken_file = \"telegram.token\"\n",
    );
    let out = sandbox.run(&["check"], "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "config.toml: telegram.token_file: set either the token or a token file, not both"
        ),
        "{}",
        out.stderr
    );
}
