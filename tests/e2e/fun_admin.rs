//! Polls, trivia, reminders, settings, the audit log and members' data, on the console.

use crate::support::Sandbox;

#[test]
fn a_poll_counts_one_vote_per_member_and_a_new_press_moves_it() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &["console"],
        "/poll 1h Lunch? | pizza | sushi\n/vote 1 2\n/vote 1 1\n/vote 1 3\n/vote 2 1\n\
         /poll Lunch? | pizza\n/poll\n",
    );
    assert_eq!(
        out.stdout,
        "Poll #1: Lunch?\n1. pizza: 0\n2. sushi: 0\n0 votes, closes in 1h\n\
         [pizza: /vote 1 1] [sushi: /vote 1 2]\n\
         Poll #1: Lunch?\n1. pizza: 0\n2. sushi: 1\n1 vote, closes in 1h\n\
         [pizza: /vote 1 1] [sushi: /vote 1 2]\n\
         Poll #1: Lunch?\n1. pizza: 1\n2. sushi: 0\n1 vote, closes in 1h\n\
         [pizza: /vote 1 1] [sushi: /vote 1 2]\n\
         /vote: poll #1 has no option 3\n\
         /vote: there is no poll #2 here\n\
         /poll: give a question and at least two options, e.g. Lunch? | pizza | sushi\n\
         /poll: missing <poll> (usage: /poll <poll>)\n",
        "{}",
        out.stderr
    );
    // Another member's vote adds to the count; the poll outlives the session.
    let bob = sandbox.run(&["console", "--as", "bob"], "/vote 1 1\n");
    assert!(
        bob.stdout
            .contains("1. pizza: 2\n2. sushi: 0\n2 votes, closes in "),
        "{}",
        bob.stdout
    );
    // Once its hour is up the poll takes no votes, and the scheduler announced the result.
    let mut later = sandbox.command(&["console", "--as", "bob"]);
    later.env("COGBOX_TEST_CLOCK_OFFSET", "61m");
    let mut session = sandbox.spawn_console_with(later);
    assert_eq!(session.next_line(), "Poll #1: Lunch?", "the closing notice");
    assert_eq!(session.next_line(), "1. pizza: 2");
    assert_eq!(session.next_line(), "2. sushi: 0");
    assert_eq!(session.next_line(), "2 votes, closed");
    assert_eq!(session.say("/vote 1 2"), "/vote: poll #1 is closed");
}

#[test]
fn a_reminder_set_before_a_restart_is_delivered_after_it() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &["console"],
        "/remind 10m tea\n/remind 1h call mum\n/reminders\n/unremind 99\n/remind 0s x\n",
    );
    // Jobs 1 to 3 are the periodic ones from [schedule].
    assert_eq!(
        out.stdout,
        "I'll remind you in 10m (reminder #4).\n\
         I'll remind you in 1h (reminder #5).\n\
         Your reminders\n#4 in 10m: tea\n#5 in 1h: call mum\n\
         /unremind: you have no reminder #99\n\
         /remind: \"0s\" is zero; a duration must be at least 1s\n",
        "{}",
        out.stderr
    );
    let bob = sandbox.run(&["console", "--as", "bob"], "/unremind 5\n/reminders\n");
    assert_eq!(
        bob.stdout,
        "/unremind: you have no reminder #5\n\
         You have no reminders here. Set one with /remind 10m tea.\n",
        "one member cannot see or cancel another's reminders"
    );
    let cancelled = sandbox.run(&["console"], "/unremind 5\n");
    assert_eq!(cancelled.stdout, "Reminder #5 cancelled.\n");

    let mut later = sandbox.command(&["console"]);
    later.env("COGBOX_TEST_CLOCK_OFFSET", "11m");
    let mut session = sandbox.spawn_console_with(later);
    assert_eq!(session.next_line(), "Reminder for owner: tea");
    assert_eq!(
        session.say("/reminders"),
        "You have no reminders here. Set one with /remind 10m tea.",
        "delivered once, then gone"
    );
}

#[test]
fn settings_are_listed_set_reset_and_audited_by_those_allowed() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &["console"],
        "/settings set log_channel 42\n/settings\n/settings set nope 1\n\
         /settings set log_channel\n/settings reset\n/settings reset log_channel\n/cog off fun\n",
    );
    assert_eq!(
        out.stdout,
        "log_channel is now 42.\n\
         owner set log_channel to this channel.\n\
         Settings\n\
         Change one with /settings set <key> <value>, or /settings reset <key>.\n\
         log_channel: 42 (default: off) - Where every moderation case is posted (#channel, or a chat id), none for nowhere\n\
         prefix: off (default) - The prefix of text commands here (Discord); off uses the configured one\n\
         welcome_message: off (default) - Said to each member who joins, {user} being their name; none for silence\n\
         economy_daily: 100 (default) - What /daily pays before the streak bonus\n\
         economy_currency: coins (default) - The name of the money, as in \"120 coins\"\n\
         warn_mute_at: 3 (default) - Active warnings that mute a member automatically, or off\n\
         warn_mute_for: 1h (default) - How long the automatic mute lasts\n\
         warn_kick_at: 5 (default) - Active warnings that kick a member automatically, or off\n\
         warn_ban_at: 7 (default) - Active warnings that ban a member automatically, or off\n\
         warn_expiry: off (default) - How long a warning counts, e.g. 30d; forever until set\n\
         /settings: there is no setting \"nope\" (settings: log_channel, prefix, welcome_message, economy_daily, economy_currency, warn_mute_at, warn_mute_for, warn_kick_at, warn_ban_at, warn_expiry)\n\
         /settings: give a value (usage: /settings set log_channel <value>)\n\
         /settings: which setting? (usage: /settings reset <key>)\n\
         log_channel is back to its default (off).\n\
         The fun cog is now off here.\n",
        "{}",
        out.stderr
    );
    let audit = sandbox.run(&["console"], "/audit\n/audit @alice\n");
    let owner = "console:6001463962888423034";
    let lines: Vec<&str> = audit.stdout.lines().collect();
    assert_eq!(lines[0], "Audit log");
    let tails: Vec<String> = lines[1..4]
        .iter()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap().to_owned())
        .collect();
    assert_eq!(
        tails,
        [
            format!("{owner} cog.off fun (done)"),
            format!("{owner} settings.reset log_channel: 42 -> off (done)"),
            format!("{owner} settings.set log_channel: off -> 42 (done)"),
        ],
        "newest first: {}",
        audit.stdout
    );
    assert!(
        audit
            .stdout
            .ends_with("Audit log\nNothing in the audit log yet.\n")
    );

    let alice = sandbox.run(
        &["console", "--as", "alice"],
        "/settings set log_channel 1\n/settings reset log_channel\n/audit\n/forget @bob\n/status\n",
    );
    assert_eq!(
        alice.stdout,
        "/settings: you need the Manage Settings permission\n\
         /settings: you need the Manage Settings permission\n\
         /audit: you need the Manage Settings permission\n\
         /forget: you need the Manage Settings permission\n\
         /status: only the bot's owners can do that\n"
    );
}

#[test]
fn status_shows_what_an_owner_needs_to_know() {
    let out = Sandbox::new().run(&["console"], "/remind 1h x\n/status\n");
    let lines: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(lines[0], format!("cogbox {}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("uptime: "), "{}", out.stdout);
    assert!(
        lines[2].starts_with("memory: ") && lines[2].ends_with(" MiB"),
        "{}",
        out.stdout
    );
    assert!(lines[3].starts_with("database: ") && lines[3].ends_with(" MiB"));
    assert_eq!(
        lines[4..],
        ["platforms: console", "jobs: 4 pending, 0 failed"]
    );
}

#[test]
fn mydata_sends_what_is_stored_and_forget_erases_it_but_the_audit_log() {
    let sandbox = Sandbox::new();
    sandbox.run(
        &["console", "--as", "bob"],
        "/poll Tea? | yes | no\n/vote 1 1\n/remind 1h stretch\n/daily\n",
    );
    // A direct message arrives between commands: a session that stays open waits for it.
    let mut session = sandbox.spawn_console_with(sandbox.command(&["console", "--as", "bob"]));
    let bob = "console:10874223847605546";
    assert_eq!(
        session.say("/mydata"),
        "I sent you your data by direct message."
    );
    assert_eq!(session.next_line(), "(direct message) Your data");
    assert_eq!(
        session.next_line(),
        format!(
            "What cogbox stores about you in this community (you are {bob}). The audit log \
             also records moderation and settings changes by or about you."
        )
    );
    assert_eq!(session.next_line(), "Poll votes: poll #1 \"Tea?\": yes");
    assert_eq!(session.next_line(), "Trivia score: nothing");
    let reminders = session.next_line();
    assert!(
        reminders.starts_with("Reminders: #4 due ") && reminders.ends_with(" UTC: stretch"),
        "{reminders}"
    );
    assert_eq!(session.next_line(), "Money:");
    assert_eq!(session.next_line(), "  balance 100");
    assert!(session.next_line().starts_with("  last /daily at "));
    assert!(
        session
            .next_line()
            .starts_with("  ledger #1: daily in 100 at ")
    );
    assert_eq!(session.next_line(), "Moderation cases (kept): nothing");
    drop(session);

    let forgot = sandbox.run(&["console"], "/forget @bob\n/audit @bob\n");
    let lines: Vec<&str> = forgot.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Erased bob's data here (poll votes: 1, trivia score: 0, reminders: 1, money: 2, \
         moderation cases (kept): 0). Kept: the audit log's entries by and about them, which are \
         kept for the configured retention (retention.audit_log_days) and then purged; their \
         moderation cases; and the bank's ledger rows, which explain other members' balances \
         too."
    );
    assert!(
        lines[2].ends_with(&format!(
            "data.forget {bob} poll votes: 1, trivia score: 0, reminders: 1, money: 2, \
             moderation cases (kept): 0 (done)"
        )),
        "{}",
        forgot.stdout
    );
    let mut session = sandbox.spawn_console_with(sandbox.command(&["console", "--as", "bob"]));
    session.say("/mydata");
    let mut dm: Vec<String> = (0..5).map(|_| session.next_line()).collect();
    dm.drain(..2);
    assert_eq!(
        dm,
        [
            "Poll votes: nothing",
            "Trivia score: nothing",
            "Reminders: nothing"
        ]
    );
    drop(session);
    let after = sandbox.run(&["console", "--as", "bob"], "/vote 1 2\n");
    assert!(
        after.stdout.contains("1. yes: 0\n2. no: 1\n"),
        "{}",
        after.stdout
    );
}

#[test]
fn trivia_takes_one_try_per_member_and_scores_the_first_right_answer() {
    let sandbox = Sandbox::new();
    let asked = sandbox.run(&["console"], "/trivia\n");
    let lines: Vec<&str> = asked.stdout.lines().collect();
    assert_eq!(lines[0], "Trivia #1", "{}", asked.stdout);
    let source = include_str!("../../assets/trivia.txt");
    let answers: Vec<&str> = source
        .lines()
        .find_map(|l| l.strip_prefix(lines[1]).and_then(|r| r.strip_prefix('|')))
        .expect("the question is one of the file's")
        .split('|')
        .collect();
    // `[answer: /answer 1 n]` buttons, the right one somewhere among them.
    let buttons: Vec<(String, String)> = lines[2]
        .split("] [")
        .map(|b| {
            let (label, command) = b.trim_matches(['[', ']']).split_once(": /").unwrap();
            (label.to_owned(), format!("/{command}"))
        })
        .collect();
    assert_eq!(buttons.len(), 4);
    let right = buttons
        .iter()
        .find(|(label, _)| label == answers[0])
        .unwrap();
    let wrong = buttons
        .iter()
        .find(|(label, _)| label != answers[0])
        .unwrap();

    let alice = sandbox.run(
        &["console", "--as", "alice"],
        &format!("{}\n{}\n", wrong.1, right.1),
    );
    assert_eq!(
        alice.stdout,
        format!(
            "/answer: {} is not it, alice; that was your one try at #1\n\
             /answer: you already had your try at question #1\n",
            wrong.0
        )
    );
    let bob = sandbox.run(&["console", "--as", "bob"], &format!("{}\n", right.1));
    assert_eq!(
        bob.stdout,
        format!(
            "Trivia #1\n{}\nbob got it: {}. (1 point)\n[Another question: /trivia]\n",
            lines[1], answers[0]
        )
    );
    let late = sandbox.run(
        &["console"],
        &format!("{}\n/answer 7 1\n/trivia scores\n", right.1),
    );
    assert_eq!(
        late.stdout,
        "/answer: question #1 has already been answered\n\
         /answer: there is no trivia question #7 here (questions last a day)\n\
         Trivia scores\n1. bob: 1\n"
    );
}
