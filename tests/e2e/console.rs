//! The console chat: the same commands, permissions and storage as the real platforms.

use crate::support::Sandbox;

#[test]
fn a_piped_session_answers_each_line_exactly() {
    let sandbox = Sandbox::new();
    let input = "/roll 3d1+2\n/help roll\n/nope\n/roll d0\n/roll 101d6\n/roll\n/choose tea\n\
                 hello\n\n!ping\n/help nothing\n";
    let out = sandbox.run(&["console"], input);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "3d1+2: [1, 1, 1] + 2 = 5\n\
         /roll <dice>\n\
         Roll dice, e.g. 2d6 or 1d20+5\n\
         <dice>: Dice to roll: NdM with an optional +K or -K\n\
         Unknown command /nope. Try /help.\n\
         /roll: \"d0\" is not a dice expression (try 2d6 or 1d20+5)\n\
         /roll: at most 100 dice at once\n\
         /roll: missing <dice> (usage: /roll <dice>)\n\
         /choose: give at least two options separated by |, e.g. tea | coffee\n\
         (commands start with / - try /help)\n\
         Pong!\n\
         /help: there is no command /nothing\n"
    );
}

#[test]
fn roll_2d6_shows_two_faces_and_their_sum() {
    let out = Sandbox::new().run(&["console"], "/roll 2d6\n");
    let line = out.stdout.trim_end();
    let faces = line
        .strip_prefix("2d6: [")
        .and_then(|rest| rest.split_once("] = "))
        .unwrap_or_else(|| panic!("unexpected roll output: {line:?}"));
    let dice: Vec<u32> = faces.0.split(", ").map(|f| f.parse().unwrap()).collect();
    assert_eq!(dice.len(), 2);
    assert!(dice.iter().all(|d| (1..=6).contains(d)), "{line}");
    assert_eq!(faces.1.parse::<u32>().unwrap(), dice.iter().sum::<u32>());
}

#[test]
fn help_lists_every_command_by_cog() {
    let out = Sandbox::new().run(&["console"], "/help\n");
    assert_eq!(
        out.stdout,
        "Commands\n\
         Type /help <command> for details.\n\
         help: /help [command] - List the commands, or explain one\n\
         admin:\n  \
           /cogs - Show which cogs are on in this community\n  \
           /cog <action> <cog> - Turn a cog on or off in this community\n  \
           /settings [action] [key] [value] - Show this community's settings, or set or reset one\n  \
           /audit [user] - Show the audit log, or what a member did or had done\n  \
           /mydata - Get what the bot stores about you here, by direct message\n  \
           /forget <user> - Erase what the bot stores about a member here\n  \
           /status - How the bot is doing (owners only)\n\
         moderation:\n  \
           /mute <user> <duration> [reason] - Stop a member from talking for a while\n  \
           /unmute <user> - Let a muted member talk again\n  \
           /kick <user> [reason] - Remove a member; they may rejoin\n  \
           /ban <user> [duration] [reason] - Remove a member and keep them out\n  \
           /unban <user> - Let a banned user back in (give their id)\n  \
           /purge <count> - Delete the latest messages in this channel\n  \
           /warn <user> <reason> - Warn a member; enough warnings mute, kick or ban\n  \
           /warnings [user] - A member's active warnings, or everyone's\n  \
           /unwarn <case> - Remove a warning by its case number\n  \
           /modlog [user] - The latest moderation cases, of one member or all\n\
         economy:\n  \
           /balance [user] - Show your balance, or a member's\n  \
           /daily - Collect your daily payout; days in a row pay more\n  \
           /pay <user> <amount> - Give some of your money to a member\n  \
           /leaderboard - The richest members here, and your place\n  \
           /grant <user> <amount> - Give a member money from nowhere\n  \
           /take <user> <amount> - Take money away from a member\n\
         fun:\n  \
           /ping - Check that the bot is alive\n  \
           /roll <dice> - Roll dice, e.g. 2d6 or 1d20+5\n  \
           /coinflip - Flip a coin\n  \
           /8ball <question> - Ask the magic 8-ball a yes/no question\n  \
           /choose <options> - Pick one of several options, e.g. tea | coffee\n  \
           /remind <duration> <text> - Remind you of something later, e.g. 10m tea\n  \
           /reminders - List the reminders you set here\n  \
           /unremind <id> - Cancel one of your reminders\n  \
           /poll <poll> - Ask a question with a button per answer\n  \
           /trivia [scores] - Answer a trivia question, or see the scores\n"
    );
}

#[test]
fn with_no_token_plain_cogbox_opens_the_console() {
    let out = Sandbox::new().run(&[], "/ping\n");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Pong!\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_member_lacks_admin_rights_and_is_rate_limited_once() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[limits]\ncommands = 3\nwindow = \"1h\"\n");
    let out = sandbox.run(
        &["console", "--as", "alice"],
        "/cog off fun\n/ping\n/ping\n/ping\n/ping\n/ping\n",
    );
    assert_eq!(
        out.stdout,
        "/cog: you need the Manage Settings permission\n\
         Pong!\n\
         Pong!\n\
         You're sending commands too fast; try again in 20m.\n"
    );
}

#[test]
fn an_owner_named_in_config_keeps_owner_rights_under_their_name() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[bot]\nowners = [\"console:alice\"]\n");
    let out = sandbox.run(&["console", "--as", "alice"], "/cog off fun\n");
    assert_eq!(out.stdout, "The fun cog is now off here.\n");
    let out = sandbox.run(&["console", "--as", "bad name!"], "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("a console user name is 1-32 letters"),
        "{}",
        out.stderr
    );
}

#[test]
fn cog_switches_persist_across_sessions() {
    let sandbox = Sandbox::new();
    let first = sandbox.run(
        &["console"],
        "/cog off fun\n/cog off help\n/cog off dance\n",
    );
    assert_eq!(
        first.stdout,
        "The fun cog is now off here.\n\
         /cog: the help cog cannot be turned off\n\
         /cog: there is no cog \"dance\" (cogs: help, admin, moderation, economy, fun)\n"
    );
    let second = sandbox.run(&["console"], "/ping\n/cogs\n/cog on fun\n/ping\n");
    assert_eq!(
        second.stdout,
        "/ping: the fun cog is turned off here\n\
         Cogs\n\
         help: on - What the bot can do\n\
         admin: on - Community settings\n\
         moderation: on - Mute, kick, ban and warn members; clear messages; the case log\n\
         economy: on - Balances, a daily payout, payments and a leaderboard\n\
         fun: off - Dice, coins, polls, trivia and other small games\n\
         The fun cog is now on here.\n\
         Pong!\n"
    );
}

#[test]
fn moderation_commands_check_rights_targets_and_arguments() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &["console"],
        "/mute @bob 10m spamming links\n/mute @bob 30d\n/mute @owner 1m\n/kick bob\n/kick @bob\n\
         /ban <@42> bye\n/unmute @bob\n/unban 42\n/purge 5\n/purge 1001\n",
    );
    assert_eq!(
        out.stdout,
        "Muted bob for 10m. Reason: spamming links\n\
         /mute: \"30d\" is too long (at most 28d)\n\
         /mute: you can't mute yourself\n\
         /kick: \"bob\" is not a user (mention them, e.g. @name)\n\
         Kicked bob.\n\
         Banned user 42. Reason: bye\n\
         Unmuted bob.\n\
         Unbanned user 42.\n\
         Deleted 5 messages.\n\
         /purge: <count> must be between 1 and 1000, not 1001\n"
    );
    sandbox.write("config.toml", "[bot]\nowners = [\"console:carol\"]\n");
    let out = sandbox.run(&["console"], "/kick @carol\n");
    assert_eq!(
        out.stdout,
        "/kick: carol owns this bot and can't be moderated\n"
    );
    let out = sandbox.run(
        &["console", "--as", "alice"],
        "/ban @bob\n/mute @owner 5m\n",
    );
    assert_eq!(
        out.stdout,
        "/ban: you need the Ban Members permission\n\
         /mute: you need the Mute Members permission\n"
    );
}

/// `/modlog` and `/warnings` lines with each `2026-12-02 10:00 UTC` shown as `T`: the times
/// depend on the clock.
fn timeless(text: &str) -> String {
    let mut out = text.to_owned();
    while let Some(utc) = out.find(" UTC") {
        out.replace_range(utc.saturating_sub(16)..utc + 4, "T");
    }
    out
}

#[test]
fn warnings_escalate_once_and_the_modlog_keeps_every_case() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[bot]\nowners = [\"console:carol\"]\n");
    let out = sandbox.run(
        &["console"],
        "/warn @bob spam\n/warn @bob more spam\n/warn @bob links\n/warn @bob\n/warn @carol rude\n\
         /warnings @bob\n/unwarn 1\n/unwarn 1\n/unwarn 4\n/unwarn 99\n/warn @bob again\n",
    );
    assert_eq!(
        timeless(&out.stdout),
        "Warned bob (1 active warning). Reason: spam\n\
         Case: #1\n\
         Warned bob (2 active warnings). Reason: more spam\n\
         Case: #2\n\
         Warned bob (3 active warnings). Reason: links\n\
         Case: #3\n\
         Automatic: Muted bob for 1h. (case #4)\n\
         /warn: missing <reason> (usage: /warn <user> <reason>)\n\
         /warn: carol owns this bot and can't be moderated\n\
         Active warnings for bob\n\
         #3 warn bob by owner, T: links\n\
         #2 warn bob by owner, T: more spam\n\
         #1 warn bob by owner, T: spam\n\
         Removed warning #1 of bob.\n\
         /unwarn: warning #1 was already removed\n\
         /unwarn: there is no warning #4 here\n\
         /unwarn: there is no warning #99 here\n\
         Warned bob (3 active warnings). Reason: again\n\
         Case: #5\n\
         Automatic: Muted bob for 1h. (case #6)\n"
    );
    let out = sandbox.run(&["console"], "/modlog @bob\n");
    assert_eq!(
        timeless(&out.stdout),
        "Cases for bob, newest first\n\
         #6 mute bob (until T) by owner, T: automatic: 3 warnings (after warning #5); done\n\
         #5 warn bob by owner, T: again\n\
         #4 mute bob (until T) by owner, T: automatic: 3 warnings (after warning #3); done\n\
         #3 warn bob by owner, T: links\n\
         #2 warn bob by owner, T: more spam\n\
         #1 warn bob by owner, T: spam; removed\n"
    );
    let out = sandbox.run(
        &["console", "--as", "alice"],
        "/warn @bob spam\n/warnings\n/unwarn 2\n/modlog\n",
    );
    assert_eq!(
        out.stdout,
        "/warn: you need the Mute Members permission\n\
         /warnings: you need the Mute Members permission\n\
         /unwarn: you need the Mute Members permission\n\
         /modlog: you need the Mute Members permission\n"
    );
}

/// The moderation cases in the sandbox's database, as `(action, outcome)`, oldest first.
fn cases(sandbox: &Sandbox) -> Vec<(String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = cogbox::services::Store::open(&sandbox.path("data/cogbox.db")).unwrap();
        let community = cogbox::adapters::console::COMMUNITY;
        let mut listed = cogbox::services::Cases::new(store)
            .list(community, None, false, chrono::Utc::now())
            .await
            .unwrap();
        listed.reverse();
        listed
            .into_iter()
            .map(|c| (c.action.as_str().to_owned(), format!("{:?}", c.outcome)))
            .collect()
    })
}

#[test]
fn a_ten_minute_mute_is_lifted_when_cogbox_was_stopped_across_its_end() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(&["console"], "/mute @bob 10m spam\n");
    assert_eq!(out.stdout, "Muted bob for 10m. Reason: spam\n");
    // Restarted before the end: nothing is lifted.
    assert_eq!(sandbox.run(&["console"], "/ping\n").stdout, "Pong!\n");
    assert_eq!(cases(&sandbox), [("mute".into(), "Done".into())]);
    // Started again 11 minutes on (the clock moved): the lift fell due while cogbox was stopped
    // and runs at once, as a case of its own.
    let mut later = sandbox.command(&["console"]);
    later.env("COGBOX_TEST_CLOCK_OFFSET", "11m");
    let _session = sandbox.spawn_console_with(later);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = cases(&sandbox);
        if now.len() == 2 && now[1].1 != "Pending" {
            assert_eq!(now[1], ("unmute".into(), "Done".into()));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not lifted: {now:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
