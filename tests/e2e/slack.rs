//! `cogbox slack manifest`: what a user pastes into Slack to create the app.

use serde_json::Value;

use crate::support::Sandbox;

#[test]
fn the_manifest_declares_the_umbrella_command_with_every_cogbox_command() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "config.toml",
        "[bot]\nname = \"Helper\"\n[slack]\ncommand = \"/helper\"\n",
    );

    let out = sandbox.run(&["slack", "manifest"], "");

    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest: Value = serde_json::from_str(&out.stdout).expect("the manifest is JSON");
    assert_eq!(manifest["display_information"]["name"], "Helper");
    assert_eq!(manifest["settings"]["socket_mode_enabled"], true);
    let command = &manifest["features"]["slash_commands"][0];
    assert_eq!(command["command"], "/helper");
    let hint = command["usage_hint"].as_str().unwrap();
    for name in ["help", "roll", "kick", "cog"] {
        assert!(hint.split(" | ").any(|n| n == name), "{name} in {hint}");
    }
}

#[test]
fn events_mode_needs_the_public_address() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[slack]\nmode = \"events\"\n");

    let missing = sandbox.run(&["slack", "manifest"], "");
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("events mode needs the public https address Slack posts to: --url"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());

    let out = sandbox.run(
        &["slack", "manifest", "--url", "https://bot.example.com"],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(manifest["settings"]["socket_mode_enabled"], false);
    assert_eq!(
        manifest["settings"]["event_subscriptions"]["request_url"],
        "https://bot.example.com/slack/events"
    );
}

#[test]
fn a_bad_config_is_reported_before_any_manifest() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[slack]\ncommand = \"/remind\"\n");

    let out = sandbox.run(&["slack", "manifest"], "");

    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "config.toml: slack.command: \"/remind\" is one of Slack's built-in commands"
        ),
        "{}",
        out.stderr
    );
}
