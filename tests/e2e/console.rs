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
           /purge <count> - Delete the latest messages in this channel\n\
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
           /vote <poll> <option> - Vote in a poll (what its buttons do)\n  \
           /trivia [scores] - Answer a trivia question, or see the scores\n  \
           /answer <question> <answer> - Answer a trivia question (what its buttons do)\n"
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
         /cog: there is no cog \"dance\" (cogs: help, admin, moderation, fun)\n"
    );
    let second = sandbox.run(&["console"], "/ping\n/cogs\n/cog on fun\n/ping\n");
    assert_eq!(
        second.stdout,
        "/ping: the fun cog is turned off here\n\
         Cogs\n\
         help: on - What the bot can do\n\
         admin: on - Community settings\n\
         moderation: on - Mute, kick and ban members; clear messages\n\
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
         /mute: <duration> must be between 1s and 28d, not 30d\n\
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
